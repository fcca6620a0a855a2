"""useInterfaceNetwork: the device's own host network goes into the pod with it, and comes back.

What goes: its permanent global addresses (with their flags, label and lifetimes), its routes in
every table but those the kernel or router advertisements made (those come back by themselves),
and the policy rules that use them (by their table, or by naming the device). The snapshot is
taken in the host before the move, kept in the record, created in the pod after the move, and
created again in the host when the device comes home, before our marker is taken off it: a DEL
killed half-way gives it back on the retry. The host's rules stay where they are (they do not
leave with the device), so giving them back finds them there.
"""

from __future__ import annotations

import errno

from cni_hostdev import logs, routing
from cni_hostdev.errors import MOVE_FAILED, CniError
from cni_hostdev.netlink import (
    AF_INET,
    AF_INET6,
    IFA_F_DADFAILED,
    IFA_F_TENTATIVE,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_LOCAL,
    RT_TABLE_MAIN,
    RTN_UNICAST,
    RTPROT_KERNEL,
    RTPROT_RA,
    Link,
    NetlinkError,
    Rtnl,
)
from cni_hostdev.result import IPConfig, Route
from cni_hostdev.routing import DAD_TIMEOUT, IFA_F_PERMANENT
from cni_hostdev.routing import snapshot as take

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from cni_hostdev.netns import Namespace

    Snapshot = dict[str, Any]

log = logs.get_logger(__name__)

_SHARED_TABLES = (
    0,
    253,
    RT_TABLE_MAIN,
    RT_TABLE_LOCAL,
)  # every namespace has its own; a rule to them is not the device's


def _attr(snap: Snapshot, name: str) -> Any:
    return next((value for key, value in snap["attrs"] if key == name), None)


def _address(snap: Snapshot) -> str:
    """An address snapshot's address, without its prefix length."""
    return str(_attr(snap, "IFA_LOCAL") or _attr(snap, "IFA_ADDRESS"))


def _table(snap: Snapshot) -> int:
    table = _attr(snap, "RTA_TABLE") or _attr(snap, "FRA_TABLE")
    return int(table if table is not None else snap["fields"]["table"])


def capture(rtnl: Rtnl, device: Link) -> Snapshot:
    """What of the host's network belongs to `device`, as plain data for the record."""
    addresses = [
        take("address", msg)
        for msg in routing.dump(rtnl, "address", device.index)
        if msg["scope"] == RT_SCOPE_UNIVERSE
        and (flags := routing.address_of(msg)[1]) & IFA_F_PERMANENT
        and not flags & (IFA_F_TENTATIVE | IFA_F_DADFAILED)
    ]
    routes = [
        take("route", msg)
        for msg in routing.dump(rtnl, "route", device.index)
        if msg["proto"] not in (RTPROT_KERNEL, RTPROT_RA) and msg["type"] == RTN_UNICAST
    ]
    routes = [route for route in routes if _table(route) != RT_TABLE_LOCAL]
    kept = {_address(a) for a in addresses}
    stranded = [r for r in routes if _attr(r, "RTA_PREFSRC") and _attr(r, "RTA_PREFSRC") not in kept]
    for route in stranded:
        # From an address that does not go along (a dynamic one, which the kernel drops on the move).
        log.warning("not copying the %s of %s: its source address stays behind", describe("route", route), device.name)
    routes = [r for r in routes if r not in stranded]
    tables = {_table(route) for route in routes} - set(_SHARED_TABLES)
    rules = [
        rule
        for rule in (take("rule", msg) for msg in routing.dump(rtnl, "rule"))
        if _table(rule) in tables or device.name in (_attr(rule, "FRA_IIFNAME"), _attr(rule, "FRA_OIFNAME"))
    ]
    return {"device": device.name, "addresses": addresses, "routes": routes, "rules": rules}


def _renamed(snap: Snapshot, old: str, new: str) -> Snapshot:
    """The snapshot with the device's name changed where it appears (an address label, a rule's iif/oif)."""
    if old == new:
        return snap
    attrs = []
    for key, value in snap["attrs"]:
        if key == "IFA_LABEL" and (value == old or value.startswith(old + ":")):
            value = new + value[len(old) :]
        elif key in ("FRA_IIFNAME", "FRA_OIFNAME") and value == old:
            value = new
        attrs.append([key, value])
    return {"fields": snap["fields"], "attrs": attrs}


def describe(kind: str, snap: Snapshot) -> str:
    if kind == "address":
        return f"address {_address(snap)}/{snap['fields']['prefixlen']}"
    if kind == "route":
        return f"route to {_destination(snap)} (table {_table(snap)})"
    return f"rule {_attr(snap, 'FRA_PRIORITY') or 0}: lookup {_table(snap)}"


def _destination(snap: Snapshot) -> str:
    family = snap["fields"]["family"]
    dst = _attr(snap, "RTA_DST") or ("0.0.0.0" if family == AF_INET else "::")
    return f"{dst}/{snap['fields']['dst_len']}"


def create(rtnl: Rtnl, link: Link, network: Snapshot, *, where: str, strict: bool) -> list[str]:
    """Create the snapshot's addresses, routes and rules on `link` in the namespace of `rtnl`.

    Those already there count as created. `strict` (into the pod): the first failure raises, and
    the ADD rolls back. Otherwise (home to the host) each failure is logged and the rest goes on:
    a route the host no longer accepts must not keep a device from coming home.
    """
    failures: list[str] = []
    old = network["device"]
    # Routes without a gateway first: the gateways of the others resolve through them.
    routes = sorted(network["routes"], key=lambda r: _attr(r, "RTA_GATEWAY") is not None)
    # The kernel lists IPv6 addresses of one scope newest first: created in reverse, they list as before.
    addresses = [a for a in network["addresses"] if a["fields"]["family"] == AF_INET]
    addresses += reversed([a for a in network["addresses"] if a["fields"]["family"] == AF_INET6])
    steps = [("address", a) for a in addresses] + [("route", r) for r in routes]
    steps += [("rule", r) for r in network["rules"]]
    settled = False
    for kind, snap in steps:
        snap = _renamed(snap, old, link.name)
        if kind == "route" and not settled:
            settled = True
            sources = {_attr(r, "RTA_PREFSRC") for r in routes if r["fields"]["family"] == AF_INET6}
            _wait_until_usable(rtnl, link, sources - {None}, where, strict)
        try:
            routing.create(rtnl, kind, snap, link.index)
        except NetlinkError as err:
            if err.errno == errno.EEXIST:
                continue
            what = f"{describe(kind, snap)} of {old}: {err.strerror}"
            if strict:
                raise CniError(MOVE_FAILED, f"cannot create the {what} in {where}") from None
            failures.append(what)
            log.warning("could not give back the %s to %s", what, where)
    return failures


def into_pod(pod: Namespace, link: Link, network: Snapshot, netns_path: str) -> None:
    """The device's own network in the pod it just moved to (strict: what fails, fails the ADD)."""
    from cni_hostdev import ipam, netns

    with netns.entered(pod.fd):
        if any(a["fields"]["family"] == AF_INET6 for a in network["addresses"]):
            ipam.enable_ipv6(link.name)  # sysctl files answer for the namespace they are opened in
    create(pod.rtnl, link, network, where=f"netns {netns_path}", strict=True)


def _wait_until_usable(rtnl: Rtnl, link: Link, sources: set[str], where: str, strict: bool) -> None:
    """A route from an IPv6 address (prefsrc) is refused while that address is tentative: wait out
    its DAD, for a bounded time (a NIC just brought up may take a while to get carrier). A failed
    DAD fails an ADD; on the way home it is a warning, and the routes from it are lost with it."""
    if not sources:
        return
    failed = routing.wait_out_dad(rtnl, link.index, DAD_TIMEOUT, only=sources)
    if failed is not None:
        what = f"IPv6 address {failed} of {link.name} failed duplicate address detection in {where}"
        if strict:
            raise CniError(MOVE_FAILED, what)
        log.warning("%s", what)


def result_entries(network: Snapshot, interface: int) -> tuple[list[IPConfig], list[Route]]:
    """The addresses and routes that went along, as the result reports them."""
    ips = [IPConfig(f"{_address(a)}/{a['fields']['prefixlen']}", interface=interface) for a in network["addresses"]]
    routes = []
    for snap in network["routes"]:
        metrics = dict((_attr(snap, "RTA_METRICS") or {"attrs": []})["attrs"])
        table = _table(snap)
        scope = snap["fields"]["scope"]
        routes.append(
            Route(
                _destination(snap),
                gw=_attr(snap, "RTA_GATEWAY"),
                mtu=metrics.get("RTAX_MTU"),
                advmss=metrics.get("RTAX_ADVMSS"),
                priority=_attr(snap, "RTA_PRIORITY"),
                table=table if table != RT_TABLE_MAIN else None,
                scope=scope if scope != RT_SCOPE_UNIVERSE else None,
            )
        )
    return ips, routes
