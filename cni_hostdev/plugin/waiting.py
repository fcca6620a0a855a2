"""Devices home under another name, waiting for their own.

A device goes home under its original name. When another device has taken that name in the host
meanwhile (udev naming, an operator, a driver reload), refusing the DEL would keep the pod
terminating for as long as the name stays taken: containerd keeps the sandbox and kubelet retries
until a DEL succeeds. So the device comes home all the same, under a name the kernel picks
(`dev%d`, as for a device it refunds from a dead netns under a taken name), with everything else
restored; it keeps our marker (its original name as its alias), and a record here says that it
waits: `<dataDir>/.waiting/<network>+<containerID>-<ifname>.json`, phase "waiting".

- `rename_home` (the repair loop, and `repair --once`) gives it its name as soon as the name is
  free. It is the one step that renames a device in the host namespace; the README says why that
  one is acceptable.
- `meant_by`: an ADD whose selectors mean it takes it by identity, not the squatter that now
  carries its name, and the new attachment owes the device its original name; a pool counts it
  as free.
- doctor reports each waiting device.
"""

from __future__ import annotations

import errno
import os

from cni_hostdev import identity, logs
from cni_hostdev.atomic_files import write_atomically
from cni_hostdev.errors import STATE_FAILURE, CniError, node_name
from cni_hostdev.lean.json import dumps_lines
from cni_hostdev.lookup import kernelpath_holds_pci, pci_address_of
from cni_hostdev.netlink import NetlinkError
from cni_hostdev.state import WAITING_DIR, Record, StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni_hostdev.config import Candidate, NetConf
    from cni_hostdev.netlink import Link, Rtnl
    from cni_hostdev.netns import Namespace

log = logs.get_logger(__name__)


def _path(data_dir: str, record: Record) -> str:
    return os.path.join(data_dir, WAITING_DIR, f"{record.network}+{record.file_name()}")


def park(data_dir: str, record: Record, home: Link, squatter: Link) -> str:
    """Record that the device of `record` is home as `home`, waiting for its name, which `squatter`
    holds; warn (stderr and the log file), and say what happened."""
    waiting = Record.from_json({**record.to_json(), "phase": "waiting", "home_as": home.name, "ifindex": home.index})
    waiting.staging = None
    path = _path(data_dir, waiting)
    text = dumps_lines(waiting.to_json()).encode()
    try:
        os.makedirs(os.path.dirname(path), 0o700, exist_ok=True)
        write_atomically(path, lambda out: out.write(text))
    except OSError as err:
        raise CniError(STATE_FAILURE, f"cannot record that {record.original_name} waits for its name: {err}") from None
    what = (
        f"device {record.original_name} (MAC {home.mac}) came home as {home.name}: its name is taken by another "
        f"device (ifindex {squatter.index}, {squatter.name}, MAC {squatter.mac}) on node {node_name()}; it keeps "
        f"{record.original_name} as its alias and waits for its name, which host-device repair gives back once free"
    )
    log.warning("%s/%s: %s", record.container_id, record.ifname, what)
    return f"returned to the host as {home.name}, waiting for its name {record.original_name}"


def every_waiting(data_dir: str) -> list[Record]:
    """The devices of `data_dir` that wait for their names (few: none on most nodes)."""
    return StateStore(data_dir, WAITING_DIR).all()


def leave(data_dir: str, record: Record) -> None:
    """The device no longer waits: it has its name, an ADD took it, or it is gone."""
    try:
        os.unlink(_path(data_dir, record))
    except FileNotFoundError:
        pass


def find_home(rtnl: Rtnl, record: Record) -> Link | None:
    """The waiting device in the host, by proof: its PCI function, permanent MAC, or MAC and marker."""
    return identity.find(record, rtnl.links(), identity.HOST, lambda link: pci_address_of(link.name))


def meant(candidates: tuple[Candidate, ...], data_dir: str, rtnl: Rtnl) -> list[tuple[Candidate, Record, Link]]:
    """The waiting devices that `candidates` mean, by what each record knows (its own name, MACs,
    PCI function, driver), each with the first candidate that does and the device as it is now."""
    found = []
    for record in every_waiting(data_dir):
        if record.kind == "userspace":
            continue
        candidate = next((c for c in candidates if identity.selected_by(c, record, kernelpath_holds_pci)), None)
        if candidate is None:
            continue
        link = find_home(rtnl, record)
        if link is not None:
            found.append((candidate, record, link))
    return found


def record_for(data_dir: str, link: Link, pci: str | None) -> Record | None:
    """The record of the wait of `link`, a device in the host, if it waits for its name."""
    for record in every_waiting(data_dir):
        if record.kind != "userspace" and identity.proof(record, link, identity.HOST, pci) is not None:
            return record
    return None


def meant_by(conf: NetConf, rtnl: Rtnl) -> tuple[Record, Link] | None:
    """A waiting device this network's selectors mean, with the device as it is in the host now."""
    for _, record, link in meant(conf.candidates(), conf.data_dir, rtnl):
        return record, link
    return None


def rename_home(data_dir: str, record: Record, host: Namespace) -> str | None:
    """Give a waiting device its name if it is free now (the caller holds the device's lock), and
    its own alias after it: the marker goes last. What happened, or None while it still waits."""
    link = find_home(host.rtnl, record)
    if link is None:
        leave(data_dir, record)
        return f"{record.original_name} no longer waits in the host (an ADD took it, or it is gone)"
    name = record.original_name
    if link.name != name:
        holder = host.rtnl.link(name=name)
        if holder is not None:
            return None
        _rename(host.rtnl, link, name)
    if (link.alias or None) != (record.original_alias or None):
        host.rtnl.set_link(link.index, alias=record.original_alias or "")
    leave(data_dir, record)
    return f"gave {name} its name back (it had waited as {link.name})"


def _rename(rtnl: Rtnl, link: Link, name: str) -> None:
    """Rename in place; a kernel before 6.2 renames no device that is up (EBUSY): down, rename, up."""
    try:
        rtnl.set_link(link.index, name=name)
    except NetlinkError as err:
        if err.errno != errno.EBUSY or not link.up:
            raise
        rtnl.set_link(link.index, up=False)
        try:
            rtnl.set_link(link.index, name=name)
        finally:
            rtnl.set_link(link.index, up=True)
