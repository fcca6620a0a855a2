"""Moving a device into a pod and back, with explicit rollback.

Two strategies, both of which never rename anything in the host namespace:

* atomic: one RTM_NEWLINK carries the target netns, the pod-side name and the
  alias that remembers the original name;
* rename-then-move: move into a private unnamed netns, rename there where
  nothing watches, then move into the pod.

Whatever fails, `send_home` puts the device back under its original name with
its original attributes.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from cni_hostdev import logs, netns
from cni_hostdev.errors import MOVE_FAILED, NAME_CONFLICT, CniError
from cni_hostdev.faults import checkpoint
from cni_hostdev.netlink import Link, NetlinkError, Rtnl

log = logs.get_logger(__name__)

ATOMIC = "atomic"
RENAME_THEN_MOVE = "rename-then-move"


class Original:
    """What the device looked like in the host before we took it."""

    __slots__ = ("alias", "altnames", "mac", "mtu", "name", "network", "up")

    def __init__(
        self,
        name: str,
        alias: str | None,
        mac: str,
        mtu: int,
        up: bool,
        altnames: tuple[str, ...] | None = None,
        network: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        self.alias = alias
        self.mac = mac
        self.mtu = mtu
        self.up = up
        self.altnames = altnames  # None: not known (a record written before altnames were kept)
        self.network = network  # useInterfaceNetwork: its addresses, routes and rules (cni_hostdev/ifnet.py)


class Namespace:
    """A netns we can both name by fd (as a move target) and talk to."""

    __slots__ = ("fd", "rtnl")

    def __init__(self, fd: int, rtnl: Rtnl) -> None:
        self.fd = fd
        self.rtnl = rtnl

    @classmethod
    def open(cls, fd: int) -> Namespace:
        with netns.entered(fd):
            return cls(fd, Rtnl())

    @classmethod
    def current(cls) -> Namespace:
        """Our own netns: no setns needed (which would need CAP_SYS_ADMIN for nothing)."""
        return cls(netns.open_current(), Rtnl())

    def close(self) -> None:
        self.rtnl.close()
        os.close(self.fd)


def _move_error(what: str, device: str, err: OSError) -> CniError:
    why = err.strerror or str(err)
    if err.errno == errno.EINVAL:
        why += " (the device may be netns-local, e.g. a bridge, which cannot change namespace)"
    return CniError(MOVE_FAILED, f"{what} {device}: {why}")


def find_moved(space: Rtnl, original: Original, index_hint: int, perm_mac: str | None = None) -> Link | None:
    """Our device in a namespace known to be the record's own (the pod, by its cookie; our staging one).

    By permanent MAC where the device has one; else by the ifindex it had there together with
    its MAC or our marker (its original name as its alias); else by MAC and marker together.
    Never by name alone: any device in a pod may carry the name we gave ours.
    """
    candidates = [link for link in space.links() if not link.loopback]
    if perm_mac:
        return next((link for link in candidates if link.perm_mac == perm_mac), None)
    for link in candidates:
        if link.index == index_hint and (link.mac == original.mac or link.alias == original.name):
            return link
    for link in candidates:
        if link.alias == original.name and link.mac == original.mac:
            return link
    return None


def move_in(
    host: Namespace,
    pod: Namespace,
    device: Link,
    ifname: str,
    strategy: str,
    staging_path: str,
    network: dict[str, Any] | None = None,
) -> Link:
    """Move `device` into `pod` as `ifname`, up. On failure the device is home again.

    The staging netns of rename-then-move is bind-mounted at `staging_path` while
    in use, so that a crash leaves the device somewhere recovery can find it.
    """
    original = Original(device.name, device.alias, device.mac, device.mtu, device.up, device.altnames, network)
    if pod.rtnl.link(name=ifname) is not None:
        raise CniError(NAME_CONFLICT, f"interface {ifname} already exists in the pod network namespace")
    temp: Namespace | None = None
    try:
        drop_colliding_altnames(host.rtnl, device, pod.rtnl, ifname, "the pod")
        if strategy == ATOMIC:
            try:
                host.rtnl.set_link(device.index, netns_fd=pod.fd, name=ifname, alias=original.name)
            except NetlinkError as err:
                raise _move_error("cannot move", device.name, err) from None
            checkpoint("moved-to-pod")
        else:
            temp = Namespace.open(netns.new_private())
            netns.persist(temp.fd, staging_path)
            try:
                host.rtnl.set_link(device.index, netns_fd=temp.fd)
            except NetlinkError as err:
                raise _move_error("cannot move", device.name, err) from None
            checkpoint("moved-to-staging")
            staged = temp.rtnl.link(name=original.name)
            if staged is None:
                raise CniError(MOVE_FAILED, f"device {original.name} vanished from the staging namespace")
            if staged.up:
                temp.rtnl.set_link(staged.index, up=False)
            temp.rtnl.set_link(staged.index, name=ifname, alias=original.name)
            checkpoint("renamed")
            temp.rtnl.set_link(staged.index, netns_fd=pod.fd)
            checkpoint("moved-to-pod")
        moved = pod.rtnl.link(name=ifname)
        if moved is None or moved.alias != original.name:
            raise CniError(MOVE_FAILED, f"device {original.name} did not arrive in the pod as {ifname}")
        pod.rtnl.set_link(moved.index, up=True)
        checkpoint("up")
        result = pod.rtnl.link(index=moved.index)
        assert result is not None
        return result
    except BaseException as failure:
        _roll_back(host, pod, temp, original, ifname, device.index, failure)
        if isinstance(failure, NetlinkError):
            raise CniError(MOVE_FAILED, f"moving {original.name} into the pod failed: {failure.strerror}") from None
        raise
    finally:
        if temp is not None:
            if {link.name for link in temp.rtnl.links()} <= {"lo"}:
                netns.unpersist(staging_path)
            else:
                log.error(
                    "device %s left in staging netns %s; DEL or GC will bring it home", original.name, staging_path
                )
            temp.close()


def _roll_back(
    host: Namespace,
    pod: Namespace,
    temp: Namespace | None,
    original: Original,
    ifname: str,
    index_hint: int,
    failure: BaseException,
) -> None:
    home = host.rtnl.link(name=original.name)
    if home is not None:
        if home.index == index_hint:
            restore(host.rtnl, home, original)  # never left: give back altnames dropped for the move
        return  # never left, or already back
    for space in (pod, temp):
        if space is None:
            continue
        link = find_moved(space.rtnl, original, index_hint)
        if link is None and space is temp:
            link = space.rtnl.link(name=original.name)  # not renamed yet; nothing else lives there
        if link is None:
            continue
        try:
            send_home(space.rtnl, link, host, original)
            log.warning("rolled back %s after: %s", original.name, failure)
        except (OSError, CniError) as err:
            log.error("ROLLBACK FAILED: device %s stays in a namespace as %s: %s", original.name, link.name, err)
        return
    log.error("device %s not found anywhere during rollback after: %s", original.name, failure)


def refuse_if_name_taken(host: Rtnl, original_name: str, current_name: str) -> None:
    """A device can only go home under its own name; someone else holding it must not be clobbered."""
    holder = host.link(name=original_name)
    if holder is not None:
        raise CniError(
            NAME_CONFLICT,
            f"cannot return {current_name} to the host as {original_name}: that name is taken by another device "
            f"(ifindex {holder.index}); the device stays as {current_name} and a later DEL or GC will retry",
        )


def send_home(source: Rtnl, link: Link, host: Namespace, original: Original) -> Link:
    """One message moves the device home under its original name; then restore the rest.

    The device keeps our marker (its original name as its alias) until everything else is
    restored: a DEL killed half-way leaves a device that a retried DEL still knows as ours.
    """
    refuse_if_name_taken(host.rtnl, original.name, link.name)
    drop_colliding_altnames(source, link, host.rtnl, original.name, "the host")
    try:
        source.set_link(link.index, netns_fd=host.fd, name=original.name, alias=original.name)
    except NetlinkError as err:
        raise _move_error("cannot move back", link.name, err) from None
    home = host.rtnl.link(name=original.name)
    if home is None:
        raise CniError(MOVE_FAILED, f"device {original.name} did not arrive back in the host")
    return restore(host.rtnl, home, original)


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


def _restore_altnames(rtnl: Rtnl, link: Link, original: Original) -> None:
    """The device's altnames exactly as they were, in their order; one the host has given to
    another device meanwhile is left out, with a warning."""
    assert original.altnames is not None
    wanted = original.altnames
    kept = 0
    while kept < min(len(wanted), len(link.altnames)) and link.altnames[kept] == wanted[kept]:
        kept += 1
    for name in link.altnames[kept:]:
        rtnl.remove_altname(link.index, name)
    for name in wanted[kept:]:
        holder = rtnl.link(name=name)  # a name lookup also finds altnames
        if holder is not None and holder.index != link.index:
            log.warning("altname %s of %s not restored: the host has given it to %s", name, original.name, holder.name)
            continue
        try:
            rtnl.add_altname(link.index, name)
        except NetlinkError as err:
            if err.errno != errno.EEXIST:
                raise
            log.warning("altname %s of %s not restored: %s", name, original.name, err.strerror)


def restore(rtnl: Rtnl, link: Link, original: Original) -> Link:
    """Give back MTU, MAC, up state, altnames, its own network and, last, the alias, each only where it differs.

    The alias goes last because until then it is our marker: whatever kills us before
    the end, a retry finds the device still marked as ours and finishes the job.
    """
    if link.mtu != original.mtu:
        rtnl.set_link(link.index, mtu=original.mtu)
    if original.mac and link.mac != original.mac:
        if link.up:
            rtnl.set_link(link.index, up=False)
        rtnl.set_link(link.index, mac=original.mac)
    current = rtnl.link(index=link.index)
    assert current is not None
    if current.up != original.up:
        rtnl.set_link(link.index, up=original.up)
    if original.altnames is not None and current.altnames != original.altnames:
        _restore_altnames(rtnl, current, original)
    if original.network is not None:
        from cni_hostdev import ifnet

        ifnet.create(rtnl, current, original.network, where="the host", strict=False)
    if (current.alias or None) != (original.alias or None):
        rtnl.set_link(link.index, alias=original.alias or "")
    current = rtnl.link(index=link.index)
    assert current is not None
    return current
