"""Giving a recorded device back to the host, under its original name, as it was.

DEL, GC, the repair loop, an ADD that failed after the move, and an ADD that finds a dead
pod's claim all come here. The device is looked for where the record says it went (its pod,
or the staging netns of an interrupted rename-then-move), else where the kernel refunds a
physical device whose pod died: the host, under the pod's name. Only by proof (cni_hostdev/move.py).
"""

from __future__ import annotations

import os

from cni_hostdev import logs, netns, pods
from cni_hostdev.errors import INVALID_ENV, STATE_FAILURE, CniError
from cni_hostdev.faults import checkpoint
from cni_hostdev.locks import device_lock, identity
from cni_hostdev.lookup import pci_address_of
from cni_hostdev.move import STAGING_DIR, find_moved, refuse_if_name_taken, restore, restore_altnames, send_home
from cni_hostdev.netns import Namespace
from cni_hostdev.scoped import contextmanager
from cni_hostdev.state import Record, StateStore, every_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cni_hostdev.netlink import Link

log = logs.get_logger(__name__)


def record_key(record: Record) -> str:
    """The lock of a recorded device: the key ADD took it under."""
    return identity(record.pci_address, record.perm_mac, record.mac)


@contextmanager
def records_pod(record: Record, path: str | None = None) -> Iterator[Namespace | None]:
    """The record's own pod namespace at `path` (default: the recorded one), or None when that path
    no longer holds it: a namespace that took over a dead pod's path is never searched."""
    try:
        pod = pods.open_records(record, path)
    except OSError as err:
        raise CniError(INVALID_ENV, f"netns {path or record.netns} cannot be opened: {err.strerror}") from None
    try:
        yield pod
    finally:
        if pod is not None:
            pod.close()


def release(record: Record, pod: Namespace | None, host: Namespace) -> str:
    """Give the device of `record` back to the host under its original name; say what happened."""
    if record.kind == "userspace":
        return f"PCI device {record.pci_address} was never moved"
    if record.staging and os.path.lexists(record.staging):
        staged = _from_staging(record, host)
        if staged:
            return staged
    elif record.staging and not os.path.isdir(STAGING_DIR):
        # Run where /run/cni-hostdev is not visible (a container without that mount), we cannot
        # tell whether the interrupted ADD left the device in its staging netns: keep the record.
        raise CniError(
            STATE_FAILURE,
            f"device {record.original_name} may be in staging netns {record.staging}, which is not visible here",
        )
    if pod is not None:
        link = find_moved(pod.rtnl, record)
        if link is not None:
            send_home(pod.rtnl, link, host, record)
            checkpoint("returned-home")
            return f"returned {link.name} to the host as {record.original_name}"
    # The pod netns is gone or no longer holds the device: a physical device was
    # refunded to the host under its pod name (or devN), a virtual one vanished.
    return _from_host(record, host)


def _from_host(record: Record, host: Namespace) -> str:
    name = record.original_name
    link = find_refunded(host, record)
    if link is None:
        home = host.rtnl.link(name=name)
        if home is not None:
            return _never_left(record, home, host) or (
                f"device {name} is in the host, untouched (nothing proves it is the one we moved)"
            )
        what = f"device {name} no longer exists (a virtual device dies with its netns)"
        log.warning("%s/%s: %s", record.container_id, record.ifname, what)
        return what
    if link.name == name and link.alias != name:
        # Home under its own name without our marker: we never moved it (or the
        # record is not ours). Leave the device as it is.
        return _never_left(record, link, host) or f"device {name} is in the host, untouched"
    if link.name != name:
        refuse_if_name_taken(host.rtnl, name, link.name)
        if link.up:
            host.rtnl.set_link(link.index, up=False)
        host.rtnl.set_link(link.index, name=name)
        link = host.rtnl.link(index=link.index) or link
    restore(host.rtnl, link, record)
    return f"restored {name} in the host (it had come back as {link.name})"


def _never_left(record: Record, link: Link, host: Namespace) -> str | None:
    """An ADD killed just before its move leaves the device home, but without the altnames it
    dropped for the move: give those back to the very device (its ifindex and MAC, under its own
    name) of a record that never got further. Not after a reboot: an ifindex of an earlier boot
    proves nothing (and then a "moving" record and an "attached" one lead to the same result)."""
    if record.phase != "moving" or record.altnames is None:
        return None
    if record.boot_id is not None and record.boot_id != pods.boot_id():
        return None
    if (link.name, link.index, link.mac) != (record.original_name, record.ifindex, record.mac):
        return None
    if link.altnames == tuple(record.altnames):
        return None
    restore_altnames(host.rtnl, link, tuple(record.altnames), record.original_name)
    return f"device {record.original_name} never left the host; gave back its altnames"


def _from_staging(record: Record, host: Namespace) -> str | None:
    """A crash during rename-then-move left the device in the bind-mounted staging netns."""
    assert record.staging is not None
    try:
        fd = netns.open_netns(record.staging)
    except (OSError, netns.NotANetns):
        netns.unpersist(record.staging)
        return None
    staging = Namespace.open(fd)
    try:
        # The staging netns is ours alone: there the original name is proof enough.
        link = find_moved(staging.rtnl, record) or staging.rtnl.link(name=record.original_name)
        if link is not None:
            send_home(staging.rtnl, link, host, record)
    finally:
        staging.close()
    netns.unpersist(record.staging)
    if link is None:
        return None
    return f"returned {record.original_name} from the staging netns of an interrupted ADD"


def find_refunded(host: Namespace, record: Record) -> Link | None:
    """Our device in the host under any name (the kernel refunds a physical device to the host when
    its pod's netns dies, under the name it had there, and its ifindex may change): by PCI address,
    else by permanent MAC, else by MAC together with our marker. Never by name or alias alone."""
    links = host.rtnl.links()
    if record.pci_address:
        for link in links:
            if pci_address_of(link.name) == record.pci_address:
                return link
    if record.perm_mac:
        return next((link for link in links if link.perm_mac == record.perm_mac), None)
    for link in links:
        if link.alias == record.original_name and link.mac == record.mac:
            return link
    return None


def release_if_due(
    record: Record, host: Namespace, data_dir: str, lock_timeout: float, due: Callable[[Record], bool]
) -> str | None:
    """Under the device's lock, read `record` again; if it is still `due`, give its device back and
    drop it, and say what happened. None when it is no longer due: given back meanwhile, or made
    anew (a container started again with the same ID), whose record must stay."""
    store = StateStore(data_dir, record.network)
    with device_lock(data_dir, record_key(record), record.original_name, lock_timeout):
        # Holding the lock, no ADD or DEL of this device is running: look again.
        current = store.load(record.container_id, record.ifname)
        if current is None or not due(current):
            return None
        with records_pod(current) as pod:
            what = release(current, pod, host)
        store.remove(current.container_id, current.ifname)
    return what


def release_and_forget(record: Record, host: Namespace, data_dir: str, lock_timeout: float) -> str:
    """A dead pod's claim: give the device back and drop the record, if the pod is still dead."""
    what = release_if_due(record, host, data_dir, lock_timeout, lambda current: not pods.alive(current))
    return what or f"device {record.original_name}: its claim was settled meanwhile"


def _needs_release(record: Record, valid: set[tuple[str, str]] | None) -> bool:
    """Its pod died, the runtime no longer knows it, or its ADD was interrupted."""
    if record.phase != "attached" or not pods.alive(record):
        return True
    return valid is not None and (record.container_id, record.ifname) not in valid


def release_records(
    store: StateStore, lock_timeout: float, valid: set[tuple[str, str]] | None = None
) -> tuple[list[str], list[str]]:
    """Give back every device whose pod died, and (given `valid`) every attachment not in it.

    Returns (what was done, what failed); one bad record never stops the others.
    """
    done: list[str] = []
    failures: list[str] = []
    with netns.host() as host:
        for listed in store.all():
            if not _needs_release(listed, valid):
                continue
            try:
                what = release_if_due(listed, host, store.root, lock_timeout, lambda r: _needs_release(r, valid))
            except (CniError, OSError) as err:
                failures.append(f"{listed.container_id}/{listed.ifname}: {getattr(err, 'msg', err)}")
                continue
            if what is not None:
                done.append(f"{listed.container_id}/{listed.ifname}: {what}")
    return done, failures


def release_unrecorded(data_dir: str, netns_path: str, ifname: str, lock_timeout: float) -> str:
    """DEL of an attachment whose record cannot be read: what the pod itself proves. The device at
    `ifname` in the pod carries our marker (its original name as its alias) from its ADD: it goes
    home under that name. Not when a readable record of a live attachment holds it (a netns path
    reused by another pod), and nothing else of it can be restored (MTU, MAC, up state, its own
    alias and network are what the record held)."""
    if not netns_path:
        return "the netns is unknown: nothing the pod can prove"
    try:
        fd = netns.open_netns(netns_path)
    except (OSError, netns.NotANetns):
        return f"netns {netns_path} is gone: nothing the pod can prove"
    with netns.host() as host:
        pod = Namespace.open(fd)
        try:
            link = pod.rtnl.link(name=ifname)
            if link is None or not link.alias or link.alias == link.name or not _is_interface_name(link.alias):
                return f"no device {ifname} carrying our marker in netns {netns_path}"
            holder = _live_holder(data_dir, netns_path, link)
            if holder is not None:
                return f"{ifname} in netns {netns_path} is held by {holder}: left alone"
            record = _marked(link, netns_path, ifname)
            pci = link.parent_dev if link.parent_bus == "pci" else None
            with device_lock(data_dir, identity(pci, link.perm_mac, link.mac), link.alias, lock_timeout):
                send_home(pod.rtnl, link, host, record)
        finally:
            pod.close()
    return (
        f"returned {ifname} to the host as {record.original_name}, by its marker; its MTU, MAC, up state and "
        "alias were in the unreadable record and stay as they are"
    )


def _is_interface_name(name: str) -> bool:
    from cni_hostdev.config import validate_ifname

    try:
        validate_ifname(name, "alias")
    except CniError:
        return False
    return True


def _live_holder(data_dir: str, netns_path: str, link: Link) -> str | None:
    """The readable record of a live attachment in that netns whose device this is, if any."""
    for record in every_record(data_dir):
        if record.netns != netns_path or record.kind == "userspace":
            continue
        ours = record.perm_mac == link.perm_mac if record.perm_mac else record.mac == link.mac
        if ours and record.original_name == link.alias and pods.alive(record):
            return f"container {record.container_id} of network {record.network}"
    return None


def _marked(link: Link, netns_path: str, ifname: str) -> Record:
    """A record of what the device proves: its marker names it, the rest is as it is now."""
    return Record(
        network="",
        container_id="",
        ifname=ifname,
        netns=netns_path,
        original_name=link.alias or "",
        original_alias=None,
        mac=link.mac,
        perm_mac=link.perm_mac,
        mtu=link.mtu,
        was_up=False,
        ifindex=link.index,
        pci_address=None,
        altnames=None,
    )
