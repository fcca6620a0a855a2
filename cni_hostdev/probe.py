"""What this kernel can do with a device move, found out on throwaway devices.

Everything happens in two private, unnamed namespaces: the host never sees the
probe's veth pair, and if the probe is killed the namespaces (and the veths
with them) vanish with the process.
"""

from __future__ import annotations

import os

from cni_hostdev import netns
from cni_hostdev.atomic_files import write_atomically
from cni_hostdev.lean.json import dumps, loads
from cni_hostdev.netlink import NetlinkError, Rtnl
from cni_hostdev.pods import boot_id

CACHE_DIR = "/run/cni-hostdev"
CACHE_FILE = "probe.json"


class ProbeResult:
    # Field names are the cache file's (and `host-device probe`'s) JSON keys.
    __slots__ = ("atomicMoveRename", "bootId", "cached", "kernel", "liveRename")

    def __init__(
        self, kernel: str, bootId: str, atomicMoveRename: bool, liveRename: bool, cached: bool = False
    ) -> None:
        self.kernel = kernel
        self.bootId = bootId
        self.atomicMoveRename = atomicMoveRename
        self.liveRename = liveRename
        self.cached = cached

    def to_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in self.__slots__}


def run_probe() -> ProbeResult:
    source_fd = netns.new_private()
    target_fd = netns.new_private()
    try:
        with netns.entered(source_fd):
            source = Rtnl()
        with netns.entered(target_fd):
            target = Rtnl()
        with source, target:
            source.create_veth("probe0", "probe1")
            moving = source.link(name="probe0")
            staying = source.link(name="probe1")
            assert moving is not None and staying is not None
            source.set_link(moving.index, up=True)
            try:
                source.set_link(moving.index, netns_fd=target_fd, name="probed", alias="probe0")
                arrived = target.link(name="probed")
                atomic = arrived is not None and arrived.alias == "probe0"
            except NetlinkError:
                atomic = False
            source.set_link(staying.index, up=True)
            try:
                source.set_link(staying.index, name="renamed")
                live = True
            except NetlinkError:
                live = False
    finally:
        os.close(source_fd)
        os.close(target_fd)
    return ProbeResult(kernel=os.uname().release, bootId=boot_id() or "", atomicMoveRename=atomic, liveRename=live)


def read_cache(cache_dir: str = CACHE_DIR) -> ProbeResult | None:
    """This boot's cached probe result, or None (not probed yet this boot, or unreadable)."""
    path = os.path.join(cache_dir, CACHE_FILE)
    kernel, boot = os.uname().release, boot_id()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            data = loads(f.read())
        if boot and data.get("kernel") == kernel and data.get("bootId") == boot:
            return ProbeResult(
                kernel=kernel,
                bootId=boot,
                atomicMoveRename=bool(data["atomicMoveRename"]),
                liveRename=bool(data["liveRename"]),
                cached=True,
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def cached_probe(cache_dir: str = CACHE_DIR, *, refresh: bool = False) -> ProbeResult:
    """The probe result for this boot; /run is emptied at boot, and the key guards kexec too."""
    path = os.path.join(cache_dir, CACHE_FILE)
    cached = None if refresh else read_cache(cache_dir)
    if cached is not None:
        return cached
    result = run_probe()
    text = dumps(result.to_json()).encode()
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        write_atomically(path, lambda out: out.write(text), durable=False)
    except OSError:
        pass  # an unwritable cache only costs a re-probe next time
    return result
