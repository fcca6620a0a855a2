"""Moving a device into a pod and back, with explicit rollback.

Two strategies, both of which never rename anything in the host namespace:

* atomic: one RTM_NEWLINK carries the target netns, the pod-side name and the
  alias that remembers the original name;
* rename-then-move: move into a private unnamed netns, rename there where
  nothing watches, then move into the pod.

What the device was in the host is its attachment's `Record` (cni_hostdev/state.py), written
before the move. Whatever fails, `send_home` puts the device back under its original name with
its original attributes; where it is found, and by what proof, is cni_hostdev/identity.py's.
"""

from __future__ import annotations

import errno
import os

from cni_hostdev import identity, logs, netns
from cni_hostdev.diagnostics import checkpoint
from cni_hostdev.errors import MOVE_FAILED, NAME_CONFLICT, CniError
from cni_hostdev.netlink import IFF_UP, Link, NetlinkError, Rtnl
from cni_hostdev.netns import Namespace
from cni_hostdev.state import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

log = logs.get_logger(__name__)

ATOMIC: Final = "atomic"
RENAME_THEN_MOVE: Final = "rename-then-move"
# Where rename-then-move bind-mounts its private netns while a device is in it: a crash
# there leaves the device somewhere the next DEL, GC or repair finds it.
STAGING_DIR = "/run/cni-hostdev/staging"


def staging_path(network: str, container_id: str, ifname: str) -> str:
    return os.path.join(STAGING_DIR, f"{network}-{container_id}-{ifname}")


def _move_error(what: str, device: str, err: OSError) -> CniError:
    why = err.strerror or str(err)
    if err.errno == errno.EINVAL:
        why += " (the device may be netns-local, e.g. a bridge, which cannot change namespace)"
    return CniError(MOVE_FAILED, f"{what} {device}: {why}")


def move_in(host: Namespace, pod: Namespace, device: Link, record: Record) -> Link:
    """Move `device` into `pod` as the record's ifname, up. On failure the device is home again.

    The staging netns of rename-then-move is bind-mounted at the record's `staging` path while
    in use, so that a crash leaves the device somewhere recovery can find it.
    """
    ifname = record.ifname
    if pod.rtnl.link(name=ifname) is not None:
        raise CniError(NAME_CONFLICT, f"interface {ifname} already exists in the pod network namespace")
    temp: Namespace | None = None
    try:
        drop_colliding_altnames(host.rtnl, device, pod.rtnl, ifname, "the pod")
        checkpoint("altnames-dropped")
        if record.strategy == ATOMIC:
            _move_atomically(host, pod, device, record)
        else:
            temp = Namespace.open(netns.new_private())
            _move_through(host, temp, pod, device, record)
        moved = pod.rtnl.link(name=ifname)
        if moved is None or moved.alias != record.original_name:
            raise CniError(MOVE_FAILED, f"device {record.original_name} did not arrive in the pod as {ifname}")
        pod.rtnl.set_link(moved.index, up=True)
        checkpoint("up")
        moved.flags |= IFF_UP  # what the kernel acknowledged; its name, MAC and MTU are as they arrived
        return moved
    except BaseException as failure:
        _roll_back(host, pod, temp, record, failure)
        if isinstance(failure, NetlinkError):
            raise CniError(
                MOVE_FAILED, f"moving {record.original_name} into the pod failed: {failure.strerror}"
            ) from None
        raise
    finally:
        if temp is not None:
            _leave_staging(temp, record)


def _move_atomically(host: Namespace, pod: Namespace, device: Link, record: Record) -> None:
    try:
        host.rtnl.set_link(device.index, netns_fd=pod.fd, name=record.ifname, alias=record.original_name)
    except NetlinkError as err:
        raise _move_error("cannot move", device.name, err) from None
    checkpoint("moved-to-pod")


def _move_through(host: Namespace, temp: Namespace, pod: Namespace, device: Link, record: Record) -> None:
    """Rename-then-move: into the private `temp`, renamed there where nothing watches, on into the pod."""
    assert record.staging is not None
    netns.persist(temp.fd, record.staging)
    try:
        host.rtnl.set_link(device.index, netns_fd=temp.fd)
    except NetlinkError as err:
        raise _move_error("cannot move", device.name, err) from None
    checkpoint("moved-to-staging")
    staged = temp.rtnl.link(name=record.original_name)
    if staged is None:
        raise CniError(MOVE_FAILED, f"device {record.original_name} vanished from the staging namespace")
    if staged.up:
        temp.rtnl.set_link(staged.index, up=False)
    temp.rtnl.set_link(staged.index, name=record.ifname, alias=record.original_name)
    checkpoint("renamed")
    temp.rtnl.set_link(staged.index, netns_fd=pod.fd)
    checkpoint("moved-to-pod")


def _leave_staging(temp: Namespace, record: Record) -> None:
    assert record.staging is not None
    if {link.name for link in temp.rtnl.links()} <= {"lo"}:
        netns.unpersist(record.staging)
    else:
        log.error(
            "device %s left in staging netns %s; DEL or GC will bring it home", record.original_name, record.staging
        )
    temp.close()


def _roll_back(host: Namespace, pod: Namespace, temp: Namespace | None, record: Record, failure: BaseException) -> None:
    home = host.rtnl.link(name=record.original_name)
    if home is None or identity.proof(record, home, identity.HOST) is None:
        home = host.rtnl.link(index=record.ifindex)  # a device waiting for its name left from another
    if home is not None and identity.proof(record, home, identity.HOST) is not None:
        if home.index == record.ifindex:
            restore(host.rtnl, home, record)  # never left: give back altnames dropped for the move
        return  # never left, or already back
    for space, where in ((pod, identity.POD), (temp, identity.STAGING)):
        if space is None:
            continue
        link = identity.find(record, space.rtnl.links(), where)
        if link is None:
            continue
        try:
            send_home(space.rtnl, link, host, record)
            log.warning("rolled back %s after: %s", record.original_name, failure)
        except (OSError, CniError) as err:
            log.error("ROLLBACK FAILED: device %s stays in a namespace as %s: %s", record.original_name, link.name, err)
        return
    log.error("device %s not found anywhere during rollback after: %s", record.original_name, failure)


# Where a device comes home when another has taken its name: a number the kernel picks, as it does
# for a device it refunds from a dead netns under a taken name.
FALLBACK_NAME = "dev%d"


def send_home(source: Rtnl, link: Link, host: Namespace, record: Record) -> Homecoming:
    """One message moves the device home under its original name; then restore the rest.

    The device keeps our marker (its original name as its alias) until everything else is
    restored: a DEL killed half-way leaves a device that a retried DEL still knows as ours.
    When another device holds its name in the host, it comes home all the same, under a name the
    kernel picks (FALLBACK_NAME), restored but for the marker, which stays: it waits for its name
    (cni_hostdev/plugin/waiting.py), and the pod is not kept from ending by a name that is not ours.
    """
    name = record.original_name
    squatter = host.rtnl.link(name=name)
    for attempt in range(2):
        target = name if squatter is None else FALLBACK_NAME
        drop_colliding_altnames(source, link, host.rtnl, name if squatter is None else "", "the host")
        try:
            source.set_link(link.index, netns_fd=host.fd, name=target, alias=name)
            break
        except NetlinkError as err:
            # The name was free a moment ago and is taken now: once more, under the fallback.
            squatter = host.rtnl.link(name=name) if err.errno == errno.EEXIST and not attempt else None
            if squatter is None:
                raise _move_error("cannot move back", link.name, err) from None
    home = _arrived(host.rtnl, link, name, squatter)
    restore(host.rtnl, home, record, keep_marker=squatter is not None)
    return Homecoming(home, squatter)


class Homecoming:
    """A device back in the host: as it is there, and who holds its name if it came home under
    another (None when it has its own)."""

    __slots__ = ("link", "squatter")

    def __init__(self, link: Link, squatter: Link | None) -> None:
        self.link = link
        self.squatter = squatter


def _arrived(host: Rtnl, link: Link, name: str, squatter: Link | None) -> Link:
    """The device just moved home: under its name, or (its name taken) under the kernel's pick, found
    by its ifindex, else by our marker and its MAC."""
    home = host.link(name=name) if squatter is None else host.link(index=link.index)
    if squatter is not None and (home is None or home.alias != name or home.mac != link.mac):
        home = next((h for h in host.links() if h.alias == name and h.mac == link.mac), None)
    if home is None:
        raise CniError(MOVE_FAILED, f"device {name} did not arrive back in the host")
    return home


def drop_colliding_altnames(source: Rtnl, link: Link, target: Rtnl, new_name: str, where: str) -> None:
    """Drop the altnames of `link` that `target` already uses, or that equal its new name there.

    The kernel keeps altnames across namespaces and refuses a move with one that is taken there
    (EEXIST). They are the host's naming, no reason to fail an ADD: `restore` puts them back.
    """
    if not link.altnames:
        return
    taken = target.names_in_use() | {new_name}
    colliding = [name for name in link.altnames if name in taken]
    for name in colliding:
        source.remove_altname(link.index, name)
    if colliding:
        log.warning("moving %s without its altnames %s: %s already uses them", link.name, ", ".join(colliding), where)


def restore_altnames(rtnl: Rtnl, link: Link, wanted: tuple[str, ...], device: str) -> None:
    """The device's altnames exactly as they were, in their order; one the host has given to
    another device meanwhile is left out, with a warning."""
    kept = 0
    while kept < min(len(wanted), len(link.altnames)) and link.altnames[kept] == wanted[kept]:
        kept += 1
    for name in link.altnames[kept:]:
        rtnl.remove_altname(link.index, name)
    for name in wanted[kept:]:
        holder = rtnl.link(name=name)  # a name lookup also finds altnames
        if holder is not None and holder.index != link.index:
            log.warning("altname %s of %s not restored: the host has given it to %s", name, device, holder.name)
            continue
        try:
            rtnl.add_altname(link.index, name)
        except NetlinkError as err:
            if err.errno != errno.EEXIST:
                raise
            log.warning("altname %s of %s not restored: %s", name, device, err.strerror)


def restore(rtnl: Rtnl, link: Link, record: Record, *, keep_marker: bool = False) -> None:
    """Give back MTU, MAC, up state, altnames, its own network and, last, the alias, each only where
    it differs from `link` (the device as just read).

    The alias goes last because until then it is our marker: whatever kills us before
    the end, a retry finds the device still marked as ours and finishes the job. A device that
    waits for its name (`keep_marker`) keeps the marker until it has it.
    """
    up = link.up
    if link.mtu != record.mtu:
        rtnl.set_link(link.index, mtu=record.mtu)
    if record.mac and link.mac != record.mac:
        if up:
            rtnl.set_link(link.index, up=False)
            up = False
        rtnl.set_link(link.index, mac=record.mac)
    if up != record.was_up:
        rtnl.set_link(link.index, up=record.was_up)
    # None in records written before altnames were kept: those are left as they are.
    if record.altnames is not None and link.altnames != tuple(record.altnames):
        restore_altnames(rtnl, link, tuple(record.altnames), record.original_name)
    if record.interface_network is not None:
        from cni_hostdev import interface_network

        interface_network.create(rtnl, link, record.interface_network, where="the host", strict=False)
    if keep_marker:
        if link.alias != record.original_name:
            rtnl.set_link(link.index, alias=record.original_name)
    elif (link.alias or None) != (record.original_alias or None):
        rtnl.set_link(link.index, alias=record.original_alias or "")
