"""The node's addresses, routes and policy rules: read them, judge them, create them.

Free functions over one `Rtnl` socket: the default routes that make a device the node's
uplink, the global addresses that make it the host's, what IPAM and useInterfaceNetwork
create in a pod, and the snapshots (plain data) that give a device's network back.
"""

from __future__ import annotations

import time

from cni_hostdev.netlink import (
    AF_INET,
    AF_INET6,
    IFA_F_DADFAILED,
    IFA_F_TENTATIVE,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    RT_SCOPE_LINK,
    RT_SCOPE_UNIVERSE,
    RT_TABLE_MAIN,
    RTM_GETADDR,
    RTM_GETROUTE,
    RTM_GETRULE,
    RTM_NEWADDR,
    RTM_NEWROUTE,
    RTM_NEWRULE,
    RTN_UNICAST,
    RTPROT_BOOT,
    RTPROT_RA,
    Rtnl,
    fibmsg,
    ifaddrmsg,
    rtmsg,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from cni_hostdev.result import Route

IFA_F_PERMANENT = 0x80
_ADDRESS_FLAGS = ((0x01, "temporary"), (0x100, "mngtmpaddr"), (0x800, "stable-privacy"), (0x20, "deprecated"))
# rtm_protocol values (linux/rtnetlink.h) as `ip route` names them
_ROUTE_PROTOCOLS = {
    2: "kernel",
    3: "boot",
    4: "static",
    9: "ra",
    11: "zebra",
    12: "bird",
    16: "dhcp",
    186: "bgp",
    187: "isis",
    188: "ospf",
    189: "rip",
    192: "eigrp",
}


def _address_flags(flags: int) -> str:
    """What `ip address` would say of how an address came to be: permanent (configured) or dynamic (learned)."""
    words = ["permanent" if flags & IFA_F_PERMANENT else "dynamic"]
    words += [name for bit, name in _ADDRESS_FLAGS if flags & bit]
    return ", ".join(words)


class DefaultRoute:
    """One next hop of a default route of the main table."""

    __slots__ = ("family", "gateway", "metric", "oif", "protocol")

    def __init__(self, family: int, oif: int, gateway: str | None, protocol: int, metric: int) -> None:
        self.family = family
        self.oif = oif
        self.gateway = gateway
        self.protocol = protocol
        self.metric = metric

    @property
    def from_router_advertisement(self) -> bool:
        return self.protocol == RTPROT_RA

    def describe(self) -> str:
        family = "IPv4" if self.family == AF_INET else "IPv6"
        via = f"via {self.gateway}" if self.gateway else "without a gateway"
        protocol = _ROUTE_PROTOCOLS.get(self.protocol, f"protocol {self.protocol}")
        learned = " (learned from router advertisements)" if self.from_router_advertisement else ""
        return f"{family} default route {via}, proto {protocol}, metric {self.metric}{learned}"


SNAPSHOT_FIELDS = {
    "address": ("family", "prefixlen", "scope"),
    "route": ("family", "dst_len", "src_len", "tos", "table", "proto", "scope", "type"),
    "rule": ("family", "dst_len", "src_len", "tos", "table", "action", "flags"),
}
SNAPSHOT_ATTRS = {
    "address": (
        "IFA_ADDRESS", "IFA_LOCAL", "IFA_LABEL", "IFA_BROADCAST", "IFA_FLAGS", "IFA_RT_PRIORITY", "IFA_PROTO"
    ),
    "route": (
        "RTA_DST", "RTA_SRC", "RTA_GATEWAY", "RTA_PREFSRC", "RTA_PRIORITY", "RTA_TABLE", "RTA_PREF", "RTA_METRICS"
    ),
    "rule": (
        "FRA_DST", "FRA_SRC", "FRA_IIFNAME", "FRA_OIFNAME", "FRA_PRIORITY", "FRA_FWMARK", "FRA_FWMASK", "FRA_TABLE",
        "FRA_GOTO", "FRA_SUPPRESS_PREFIXLEN", "FRA_SUPPRESS_IFGROUP", "FRA_L3MDEV", "FRA_UID_RANGE", "FRA_PROTOCOL",
        "FRA_IP_PROTO", "FRA_SPORT_RANGE", "FRA_DPORT_RANGE",
    ),
}  # fmt: skip
# Address flags a request may carry; the kernel derives the others (permanent from the lifetime).
_REQUEST_ADDRESS_FLAGS = 0x02 | 0x10 | 0x100 | 0x200 | 0x400  # nodad, home, mngtmpaddr, noprefixroute, autojoin
RTNH_F_ONLINK = 0x4


def _plain(value: Any) -> Any:
    """A decoded attribute value as JSON can hold it (nested attributes as {"attrs": [[name, value]]})."""
    if hasattr(value, "get") and "attrs" in value:
        return {"attrs": [[name, _plain(inner)] for name, inner, *_ in value["attrs"]]}
    return value


def address_of(msg: Any) -> tuple[str, int]:
    """(CIDR, IFA_F_* flags) of an address message; its IFA_FLAGS, where the kernel sends them,
    carry the flags that do not fit the header's 8 bits."""
    address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
    flags = msg.get_attr("IFA_FLAGS")
    return f"{address}/{msg['prefixlen']}", flags if flags is not None else msg["flags"]


def snapshot(kind: str, msg: Any) -> dict[str, Any]:
    """An object the kernel reported (address, route, rule) as plain data that `Rtnl.create` takes back."""
    fields = {name: msg[name] for name in SNAPSHOT_FIELDS[kind]}
    attrs = [[name, _plain(msg.get_attr(name))] for name in SNAPSHOT_ATTRS[kind] if msg.get_attr(name) is not None]
    if kind == "address":
        cache = msg.get_attr("IFA_CACHEINFO")
        if cache is not None:  # the lifetimes left, which a request sets again
            attrs.append(["IFA_CACHEINFO", {"ifa_preferred": cache["ifa_preferred"], "ifa_valid": cache["ifa_valid"]}])
        fields["flags"] = address_of(msg)[1]
    if kind == "route":
        fields["flags"] = msg["flags"] & RTNH_F_ONLINK
    return {"fields": fields, "attrs": attrs}


def global_addresses(rtnl: Rtnl, index: int | None = None) -> dict[int, list[str]]:
    """ifindex -> addresses of universe scope (what makes a device the node's own), as
    "CIDR (permanent)" or "CIDR (dynamic, ...)": how the address came to be there."""
    out: dict[int, list[str]] = {}
    for msg in dump(rtnl, "address", index):
        if msg["scope"] == RT_SCOPE_UNIVERSE:
            cidr, flags = address_of(msg)
            out.setdefault(msg["index"], []).append(f"{cidr} ({_address_flags(flags)})")
    return out


def default_routes(rtnl: Rtnl, oif: int | None = None) -> list[DefaultRoute]:
    """Default routes of the main table, one per next hop; given `oif`, only those through that link
    (the kernel filters the dump, so a full routing table, as on BGP nodes, is never dumped)."""
    found: list[DefaultRoute] = []
    for family in (AF_INET, AF_INET6):
        msg = rtmsg()
        msg["family"] = family
        if oif is not None:
            msg["attrs"] = [("RTA_OIF", oif)]
        for route in rtnl.request(msg, RTM_GETROUTE, NLM_F_DUMP):
            if route["dst_len"] != 0 or route.get_attr("RTA_TABLE") not in (None, RT_TABLE_MAIN):
                continue
            metric = route.get_attr("RTA_PRIORITY") or 0
            hops = [(route.get_attr("RTA_OIF"), route.get_attr("RTA_GATEWAY"))]
            hops += [(hop["oif"], hop.get_attr("RTA_GATEWAY")) for hop in route.get_attr("RTA_MULTIPATH") or []]
            for hop_oif, gateway in hops:
                if hop_oif and (oif is None or hop_oif == oif):
                    found.append(DefaultRoute(family, hop_oif, gateway, route["proto"], metric))
    return found


def uplink_route(rtnl: Rtnl, index: int, every_route: list[DefaultRoute] | None = None) -> DefaultRoute | None:
    """A default route through link `index` that makes it the node's uplink, or None.

    Any configured one does (static, DHCP, ...). One learned from IPv6 router advertisements,
    which any NIC on a segment with a router picks up, does only when it is the node's only
    default route of its family: moving that device would cut the node off. `every_route`,
    the node's default routes when the caller has them all already, saves the dumps.
    """
    if every_route is None:
        routes = default_routes(rtnl, index)
    else:
        routes = [r for r in every_route if r.oif == index]
    configured = [r for r in routes if not r.from_router_advertisement]
    if configured or not routes:
        return configured[0] if configured else None
    if every_route is None:
        every_route = default_routes(rtnl)
    others = {r.family for r in every_route if r.oif != index}
    alone = [r for r in routes if r.family not in others]
    return alone[0] if alone else None


def dump(rtnl: Rtnl, kind: str, index: int | None = None) -> list[Any]:
    """Every address on link `index` (every link's, for None), route through it (all tables), or
    policy rule, as decoded messages."""
    if kind == "address":
        # Given `index`, the kernel filters the dump (strict checking), so a node with thousands of
        # addresses costs no more than one with a few; older kernels ignore the filter, hence ours.
        request = ifaddrmsg()
        request["index"] = index or 0
        replies = rtnl.request(request, RTM_GETADDR, NLM_F_DUMP)
        return [m for m in replies if index is None or m["index"] == index]
    found: list[Any] = []
    for family in (AF_INET, AF_INET6):
        msg = rtmsg() if kind == "route" else fibmsg()
        msg["family"] = family
        if kind == "route":
            msg["attrs"] = [("RTA_OIF", index)]
            found += [r for r in rtnl.request(msg, RTM_GETROUTE, NLM_F_DUMP) if r.get_attr("RTA_OIF") == index]
        else:
            found += rtnl.request(msg, RTM_GETRULE, NLM_F_DUMP)
    return found


def create(rtnl: Rtnl, kind: str, snap: dict[str, Any], index: int | None = None) -> None:
    """Create an address, route or rule from its snapshot; addresses and routes on link `index`."""
    fields = dict(snap["fields"])
    attrs = [list(pair) for pair in snap["attrs"]]
    if kind == "address":
        msg, msg_type = ifaddrmsg(), RTM_NEWADDR
        fields["index"] = index
        flags = fields.pop("flags") & _REQUEST_ADDRESS_FLAGS
        attrs = [pair for pair in attrs if pair[0] != "IFA_FLAGS"] + [["IFA_FLAGS", flags]]
    elif kind == "route":
        msg, msg_type = rtmsg(), RTM_NEWROUTE
        attrs.append(["RTA_OIF", index])
    else:
        msg, msg_type = fibmsg(), RTM_NEWRULE
    for name, value in fields.items():
        msg[name] = value
    msg["attrs"] = attrs
    rtnl.request(msg, msg_type, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)


def addresses(rtnl: Rtnl, index: int) -> list[tuple[str, int]]:
    """(CIDR, IFA_F_* flags) of every address on one link."""
    return [address_of(msg) for msg in dump(rtnl, "address", index)]


DAD_TIMEOUT = 5.0  # seconds an IPv6 address may stay tentative before we go on without it


def wait_out_dad(rtnl: Rtnl, index: int, timeout: float, only: set[str] | None = None) -> str | None:
    """Wait, at most `timeout` seconds, until the IPv6 addresses of link `index` (or the `only` ones,
    plain addresses) are no longer tentative; the first that failed duplicate address detection,
    if one did."""
    deadline = time.monotonic() + timeout
    while True:
        flags = {cidr.split("/")[0]: f for cidr, f in addresses(rtnl, index) if ":" in cidr}
        watched = [a for a in flags if only is None or a in only]
        failed = [a for a in watched if flags[a] & IFA_F_DADFAILED]
        if failed:
            return failed[0]
        if not any(flags[a] & IFA_F_TENTATIVE for a in watched) or time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def add_address(rtnl: Rtnl, index: int, cidr: str) -> None:
    import ipaddress  # only IPAM needs it

    iface = ipaddress.ip_interface(cidr)
    msg = ifaddrmsg()
    msg["family"] = AF_INET if iface.version == 4 else AF_INET6
    msg["prefixlen"] = iface.network.prefixlen
    msg["index"] = index
    attrs: list[tuple[str, Any]] = [("IFA_ADDRESS", str(iface.ip))]
    if iface.version == 4:
        attrs.append(("IFA_LOCAL", str(iface.ip)))
    msg["attrs"] = attrs
    rtnl.request(msg, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)


def add_route(rtnl: Rtnl, route: Route, *, oif: int, gw: str | None = None) -> None:
    """A result's route on link `oif`, through `gw` (the route's own, or its address's gateway)."""
    import ipaddress

    network = ipaddress.ip_network(route.dst, strict=False)
    table, scope = route.table, route.scope
    msg = rtmsg()
    msg["family"] = AF_INET if network.version == 4 else AF_INET6
    msg["dst_len"] = network.prefixlen
    msg["table"] = table if table is not None and table < 256 else RT_TABLE_MAIN
    msg["proto"] = RTPROT_BOOT
    msg["scope"] = scope if scope is not None else (RT_SCOPE_UNIVERSE if gw else RT_SCOPE_LINK)
    msg["type"] = RTN_UNICAST
    attrs: list[tuple[str, Any]] = [("RTA_OIF", oif)]
    if network.prefixlen:
        attrs.append(("RTA_DST", str(network.network_address)))
    if gw:
        attrs.append(("RTA_GATEWAY", gw))
    if route.priority is not None:
        attrs.append(("RTA_PRIORITY", route.priority))
    if table is not None:
        attrs.append(("RTA_TABLE", table))
    given = (("RTAX_MTU", route.mtu), ("RTAX_ADVMSS", route.advmss))
    metrics = [(key, value) for key, value in given if value is not None]
    if metrics:
        attrs.append(("RTA_METRICS", {"attrs": metrics}))
    msg["attrs"] = attrs
    rtnl.request(msg, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)


def routes(rtnl: Rtnl, oif: int) -> list[tuple[str, str | None, int]]:
    """(dst CIDR, gateway, table) of every route leaving through `oif`, all tables."""
    out: list[tuple[str, str | None, int]] = []
    for family in (AF_INET, AF_INET6):
        msg = rtmsg()
        msg["family"] = family
        msg["attrs"] = [("RTA_OIF", oif)]
        for route in rtnl.request(msg, RTM_GETROUTE, NLM_F_DUMP):
            if route.get_attr("RTA_OIF") != oif:
                continue
            dst = route.get_attr("RTA_DST") or ("0.0.0.0" if family == AF_INET else "::")
            table = route.get_attr("RTA_TABLE") or route["table"]
            out.append((f"{dst}/{route['dst_len']}", route.get_attr("RTA_GATEWAY"), table))
    return out
