"""Giving a recorded device back to the host, under its original name, as it was.

DEL, GC, the repair loop, an ADD that failed after the move, and an ADD that finds a dead
pod's claim all come here. The device is looked for where the record says it went (its pod,
or the staging netns of an interrupted rename-then-move), else where the kernel refunds a
physical device whose pod died: the host, under the pod's name. Only by proof
(cni_hostdev/identity.py). When another device holds its name in the host, it comes home all the
same under another and waits for its own (cni_hostdev/plugin/waiting.py): `give_back` records that.
"""

from __future__ import annotations

import os

from cni_hostdev import identity, logs, netns, pods
from cni_hostdev.diagnostics import checkpoint
from cni_hostdev.errors import STATE_FAILURE, TRY_AGAIN_LATER, CniError
from cni_hostdev.identity import record_lock_key
from cni_hostdev.lean.contextlib import contextmanager
from cni_hostdev.locks import device_lock
from cni_hostdev.lookup import pci_address_of
from cni_hostdev.move import STAGING_DIR, Homecoming, restore, restore_altnames, send_home
from cni_hostdev.netns import Namespace
from cni_hostdev.state import Record, StateStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from cni_hostdev.netlink import Link

log = logs.get_logger(__name__)


@contextmanager
def records_pod(record: Record, path: str | None = None) -> Iterator[Namespace | None]:
    """The record's own pod namespace at `path` (default: the recorded one), or None when that path
    no longer holds it: a namespace that took over a dead pod's path is never searched."""
    try:
        pod = pods.open_records(record, path)
    except OSError as err:
        # It exists and holds a netns, but cannot be entered now (EMFILE, a namespace being set up):
        # not a fault of the call's environment; the runtime's retry may get in.
        raise CniError(TRY_AGAIN_LATER, f"netns {path or record.netns} cannot be opened: {err.strerror}") from None
    try:
        yield pod
    finally:
        if pod is not None:
            pod.close()


def give_back(store: StateStore, record: Record, pod: Namespace | None, host: Namespace) -> str:
    """`release`, then forget the record, under the device's lock (the caller's); a device that came
    home under another name is recorded as waiting for its own first. Say what happened."""
    what, homecoming = release(record, pod, host)
    if homecoming is not None and homecoming.squatter is not None:
        from cni_hostdev.plugin import waiting  # only a device whose name is taken loads it

        what = waiting.park(store.root, record, homecoming.link, homecoming.squatter)
    store.forget(record)
    return what


def release(record: Record, pod: Namespace | None, host: Namespace) -> tuple[str, Homecoming | None]:
    """Give the device of `record` back to the host under its original name; say what happened, and
    how it came home when it moved."""
    if record.kind == "userspace":
        return f"PCI device {record.pci_address} was never moved", None
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
        link = identity.find(record, pod.rtnl.links(), identity.POD)
        if link is not None:
            homecoming = send_home(pod.rtnl, link, host, record)
            checkpoint("returned-home")
            return f"returned {link.name} to the host as {homecoming.link.name}", homecoming
    # The pod netns is gone or no longer holds the device: a physical device was
    # refunded to the host under its pod name (or devN), a virtual one vanished.
    return _from_host(record, host)


def _from_host(record: Record, host: Namespace) -> tuple[str, Homecoming | None]:
    name = record.original_name
    link = find_refunded(host, record)
    if link is None:
        home = host.rtnl.link(name=name)
        if home is not None:
            return _never_left(record, home, host) or (
                f"device {name} is in the host, untouched (nothing proves it is the one we moved)"
            ), None
        what = f"device {name} no longer exists (a virtual device dies with its netns)"
        log.warning("%s/%s: %s", record.container_id, record.ifname, what)
        return what, None
    if link.name == name and link.alias != name:
        # Home under its own name without our marker: we never moved it (or the
        # record is not ours). Leave the device as it is.
        return _never_left(record, link, host) or f"device {name} is in the host, untouched", None
    came_back_as = link.name
    squatter = host.rtnl.link(name=name) if link.name != name else None
    if squatter is not None:
        # Already home, under the name the kernel gave it: it waits there, marked, for its own.
        restore(host.rtnl, link, record, keep_marker=True)
        return f"restored {name} in the host as {came_back_as}", Homecoming(link, squatter)
    if link.name != name:
        if link.up:
            host.rtnl.set_link(link.index, up=False)
        host.rtnl.set_link(link.index, name=name)
        link = host.rtnl.link(index=link.index) or link
    restore(host.rtnl, link, record)
    return f"restored {name} in the host (it had come back as {came_back_as})", Homecoming(link, None)


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


def _from_staging(record: Record, host: Namespace) -> tuple[str, Homecoming] | None:
    """A crash during rename-then-move left the device in the bind-mounted staging netns."""
    assert record.staging is not None
    try:
        fd = netns.open_netns(record.staging)
    except (OSError, netns.NotANetns):
        netns.unpersist(record.staging)
        return None
    staging = Namespace.open(fd)
    homecoming = None
    try:
        link = identity.find(record, staging.rtnl.links(), identity.STAGING)
        if link is not None:
            homecoming = send_home(staging.rtnl, link, host, record)
    finally:
        staging.close()
    netns.unpersist(record.staging)
    if homecoming is None:
        return None
    return f"returned {record.original_name} from the staging netns of an interrupted ADD", homecoming


def find_refunded(host: Namespace, record: Record) -> Link | None:
    """Our device in the host under any name: the kernel refunds a physical device to the host when
    its pod's netns dies, under the name it had there, and its ifindex may change."""
    return identity.find(record, host.rtnl.links(), identity.HOST, lambda link: pci_address_of(link.name))


def release_if_due(
    record: Record, host: Namespace, data_dir: str, lock_timeout: float, due: Callable[[Record], bool]
) -> str | None:
    """Under the device's lock, read `record` again; if it is still `due`, give its device back and
    drop it, and say what happened. None when it is no longer due: given back meanwhile, or made
    anew (a container started again with the same ID), whose record must stay."""
    store = StateStore(data_dir, record.network)
    with device_lock(data_dir, record_lock_key(record), record.original_name, lock_timeout):
        # Holding the lock, no ADD or DEL of this device is running: look again.
        current = store.load(record.container_id, record.ifname)
        if current is None or not due(current):
            return None
        with records_pod(current) as pod:
            return give_back(store, current, pod, host)


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
