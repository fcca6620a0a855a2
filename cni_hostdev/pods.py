"""Which network namespace an attachment's pod had, and whether it is still the one at its path.

A netns path is a name: `ip netns del X; ip netns add X` puts another namespace at the same
path, and even the nsfs inode number comes back the same once the old one is freed. What
pins a namespace is its cookie (SO_NETNS_COOKIE, Linux 5.14), unique within a boot, together
with the boot's ID. A record made where the kernel has no cookies keeps the inode (weaker:
inodes are reused); a record of an older version of ours keeps neither, and its path is
taken at its word, as that version did.
"""

from __future__ import annotations

import os

from cni_hostdev import logs, netns
from cni_hostdev.netns import Namespace
from cni_hostdev.state import Record

log = logs.get_logger(__name__)
_BOOT_ID = "/proc/sys/kernel/random/boot_id"
_INIT_PID_NS_INODE = 0xEFFFFFFC  # PROC_PID_INIT_INO: the host's own PID namespace


_boot_ids: list[str | None] = []


def boot_id() -> str | None:
    """This boot's ID, read once per process: a call never outlives its boot."""
    if not _boot_ids:
        try:
            with open(_BOOT_ID) as f:
                _boot_ids.append(f.read().strip() or None)
        except OSError:
            return None  # asked again next time: an unreadable /proc may be a passing fault
    return _boot_ids[0]


def pin(record: Record, pod: Namespace) -> None:
    """Write into `record` what identifies `pod` for as long as it lives."""
    record.netns_cookie = pod.rtnl.netns_cookie()
    record.netns_inode = os.fstat(pod.fd).st_ino
    record.boot_id = boot_id()


def is_records(record: Record, space: Namespace) -> bool:
    """Whether `space` is the very namespace the record's pod had, not one that took its path."""
    if record.netns_cookie is not None:
        cookie = space.rtnl.netns_cookie()
        if cookie is not None:
            return cookie == record.netns_cookie
    if record.netns_inode is not None:
        return os.fstat(space.fd).st_ino == record.netns_inode
    return True


def _sees_host_pids() -> bool:
    try:
        return os.stat("/proc/self/ns/pid").st_ino == _INIT_PID_NS_INODE
    except OSError:
        return False


def open_records(record: Record, path: str | None = None) -> Namespace | None:
    """The record's pod namespace, opened at `path` (default: the recorded one); None when that path
    no longer holds it (missing, or another namespace now). Raises OSError when it cannot be opened."""
    path = path or record.netns
    if not path:
        return None
    if record.boot_id is not None and record.boot_id != boot_id():
        return None  # every namespace of an earlier boot is gone
    try:
        fd = netns.open_netns(path)
    except netns.NotANetns:
        return None  # the path now holds something else: the netns it named is gone
    except FileNotFoundError:
        return None
    space = Namespace.open(fd)
    if is_records(record, space):
        return space
    space.close()
    log.info(
        "%s now holds another network namespace: the pod of %s/%s is gone", path, record.container_id, record.ifname
    )
    return None


def alive(record: Record) -> bool:
    """False only when the record's pod namespace is known to be gone; unknown counts as alive.

    Dropping the record of a live pod would strand its device, so what we cannot judge from
    here (a /proc/PID path seen from another PID namespace, a permission problem) is alive.
    """
    if record.boot_id is not None and record.boot_id != boot_id():
        return False
    if record.netns.startswith("/proc/") and not _sees_host_pids() and not os.path.lexists(record.netns):
        return True  # another PID namespace's /proc/PID: unknown, not gone
    try:
        space = open_records(record)
    except OSError:
        return True
    if space is None:
        return False
    space.close()
    return True
