"""A small synchronous rtnetlink client bound to one network namespace.

pyroute2 encodes and decodes the messages; the socket, sequencing and error
handling are ours. Importing the `pyroute2` package itself would load the whole
library (IPRoute, asyncio, ssl ...), so only the message modules are loaded,
below a placeholder package object that skips `pyroute2/__init__.py`.
"""

from __future__ import annotations

import errno
import importlib.util
import os
import socket
import struct
import sys
import types
from typing import Any

from cni_hostdev import logs

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = 0x300
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RTM_NEWRULE = 32
RTM_GETRULE = 34
RTM_NEWLINKPROP = 108
RTM_DELLINKPROP = 109
IFF_UP = 0x1
SOL_NETLINK = 270
NETLINK_GET_STRICT_CHK = 12
SO_NETNS_COOKIE = 71  # Linux 5.14; Python's socket module has no name for it
RT_SCOPE_UNIVERSE = 0
RT_TABLE_MAIN = 254
RT_SCOPE_LINK = 253
RTPROT_BOOT = 3
RTN_UNICAST = 1
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08
IFF_LOWER_UP = 0x10000
IFF_LOOPBACK = 0x8
_HEADER = struct.Struct("=IHHII")


def _no_multiprocessing(*_: object, **__: object) -> None:
    raise RuntimeError("pyroute2's multiprocessing helpers are not available in host-device")


def _real_traceback() -> types.ModuleType:
    import traceback  # the stand-in is gone by the time pyroute2 reports a decoding error

    return traceback


def _stand_ins() -> dict[str, types.ModuleType]:
    """Modules pyroute2's message modules import for features we never use.

    Each real one costs start-up time on every exec: `multiprocessing` (~6 ms; IPRoute's
    helpers), `logging` with `traceback` (~8 ms; our stderr writer takes pyroute2's
    warnings), `platform` (~3 ms; uname and architecture, which os and struct answer).
    They stand in only while the message modules load, so a later import gets the real one.
    """
    multiprocessing = types.ModuleType("multiprocessing")
    multiprocessing.Pipe = multiprocessing.Queue = multiprocessing.Process = _no_multiprocessing  # type: ignore[attr-defined]

    logging = types.ModuleType("logging")
    logging.getLogger = logs.get_logger  # type: ignore[attr-defined]
    logging.error = logs.get_logger("pyroute2").error  # type: ignore[attr-defined]
    logging.warning = logs.get_logger("pyroute2").warning  # type: ignore[attr-defined]

    traceback = types.ModuleType("traceback")
    traceback.format_exc = lambda *a, **k: _real_traceback().format_exc(*a, **k)  # type: ignore[attr-defined]
    traceback.format_stack = lambda *a, **k: _real_traceback().format_stack(*a, **k)  # type: ignore[attr-defined]

    uname = os.uname()
    platform = types.ModuleType("platform")
    platform.uname = lambda: types.SimpleNamespace(  # type: ignore[attr-defined]
        system=uname.sysname, node=uname.nodename, release=uname.release, version=uname.version, machine=uname.machine
    )
    platform.machine = lambda: uname.machine  # type: ignore[attr-defined]
    platform.architecture = lambda executable="": (f"{struct.calcsize('P') * 8}bit", "ELF")  # type: ignore[attr-defined]
    return {"multiprocessing": multiprocessing, "logging": logging, "traceback": traceback, "platform": platform}


def _load_message_classes() -> types.SimpleNamespace:
    if "pyroute2" not in sys.modules:
        spec = importlib.util.find_spec("pyroute2")
        if spec is None or spec.submodule_search_locations is None:
            raise ImportError("pyroute2 is not installed")
        placeholder = types.ModuleType("pyroute2")
        placeholder.__path__ = list(spec.submodule_search_locations)
        placeholder.__spec__ = spec
        sys.modules["pyroute2"] = placeholder
    installed = {name: module for name, module in _stand_ins().items() if name not in sys.modules}
    sys.modules.update(installed)
    try:
        from pyroute2.netlink.rtnl import ifaddrmsg as ifaddrmsg_module
        from pyroute2.netlink.rtnl import ifinfmsg as ifinfmsg_module
        from pyroute2.netlink.rtnl import rtmsg as rtmsg_module
    finally:
        for name, module in installed.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]

    return types.SimpleNamespace(
        ifinfmsg=ifinfmsg_module.ifinfmsg, ifaddrmsg=ifaddrmsg_module.ifaddrmsg, rtmsg=rtmsg_module.rtmsg
    )


_messages = _load_message_classes()
_ifinfmsg: Any = _messages.ifinfmsg
_ifaddrmsg: Any = _messages.ifaddrmsg
_rtmsg: Any = _messages.rtmsg


def _fibmsg() -> Any:
    """Policy rules are needed only by useInterfaceNetwork: their module loads on first use."""
    from pyroute2.netlink.rtnl.fibmsg import fibmsg

    return fibmsg()


# What a snapshot keeps of each kind of object (header fields, attributes): enough to create it
# again as it was, nothing the kernel computes (cache info stamps, expiry counters, statistics).
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


def snapshot(kind: str, msg: Any) -> dict[str, Any]:
    """An object the kernel reported (address, route, rule) as plain data that `Rtnl.create` takes back."""
    fields = {name: msg[name] for name in SNAPSHOT_FIELDS[kind]}
    attrs = [[name, _plain(msg.get_attr(name))] for name in SNAPSHOT_ATTRS[kind] if msg.get_attr(name) is not None]
    if kind == "address":
        cache = msg.get_attr("IFA_CACHEINFO")
        if cache is not None:  # the lifetimes left, which a request sets again
            attrs.append(["IFA_CACHEINFO", {"ifa_preferred": cache["ifa_preferred"], "ifa_valid": cache["ifa_valid"]}])
        flags = msg.get_attr("IFA_FLAGS")
        fields["flags"] = flags if flags is not None else msg["flags"]
    if kind == "route":
        fields["flags"] = msg["flags"] & RTNH_F_ONLINK
    return {"fields": fields, "attrs": attrs}


class NetlinkError(OSError):
    """A request the kernel refused; `errno` is the kernel's answer."""


class Link:
    __slots__ = (
        "alias",
        "altnames",
        "flags",
        "index",
        "kind",
        "mac",
        "master",
        "mtu",
        "name",
        "parent_bus",
        "parent_dev",
        "perm_mac",
    )

    def __init__(
        self,
        index: int,
        name: str,
        flags: int,
        mtu: int,
        mac: str,
        perm_mac: str | None,
        alias: str | None,
        master: int | None,
        kind: str | None,
        parent_bus: str | None,
        parent_dev: str | None,
        altnames: tuple[str, ...] = (),
    ) -> None:
        self.index = index
        self.name = name
        self.flags = flags
        self.mtu = mtu
        self.mac = mac
        self.perm_mac = perm_mac
        self.alias = alias
        self.master = master
        self.kind = kind
        self.parent_bus = parent_bus
        self.parent_dev = parent_dev
        self.altnames = altnames

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def loopback(self) -> bool:
        return bool(self.flags & IFF_LOOPBACK)


def _link_from_msg(msg: Any) -> Link:
    kind = None
    linkinfo = msg.get_attr("IFLA_LINKINFO")
    if linkinfo is not None:
        kind = linkinfo.get_attr("IFLA_INFO_KIND")
    perm = msg.get_attr("IFLA_PERM_ADDRESS")
    props = msg.get_attr("IFLA_PROP_LIST")
    altnames = tuple(props.get_attrs("IFLA_ALT_IFNAME")) if props is not None else ()
    return Link(
        index=msg["index"],
        name=msg.get_attr("IFLA_IFNAME"),
        flags=msg["flags"],
        mtu=msg.get_attr("IFLA_MTU") or 0,
        mac=(msg.get_attr("IFLA_ADDRESS") or "").lower(),
        perm_mac=perm.lower() if perm and perm != "00:00:00:00:00:00" else None,
        alias=msg.get_attr("IFLA_IFALIAS") or None,
        master=msg.get_attr("IFLA_MASTER") or None,
        kind=kind,
        parent_bus=msg.get_attr("IFLA_PARENT_DEV_BUS_NAME"),
        parent_dev=msg.get_attr("IFLA_PARENT_DEV_NAME"),
        altnames=altnames,
    )


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
RTPROT_RA = 9


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
        family = "IPv4" if self.family == socket.AF_INET else "IPv6"
        via = f"via {self.gateway}" if self.gateway else "without a gateway"
        protocol = _ROUTE_PROTOCOLS.get(self.protocol, f"protocol {self.protocol}")
        learned = " (learned from router advertisements)" if self.from_router_advertisement else ""
        return f"{family} default route {via}, proto {protocol}, metric {self.metric}{learned}"


class Rtnl:
    """One NETLINK_ROUTE socket; it stays in the netns it was created in."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        try:
            # Lets the kernel filter dumps by link; older kernels ignore filters and we filter here.
            self._sock.setsockopt(SOL_NETLINK, NETLINK_GET_STRICT_CHK, 1)
        except OSError:
            pass
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def netns_cookie(self) -> int | None:
        """The cookie of the netns this socket lives in: unique within a boot (Linux 5.14+, else None)."""
        try:
            value = self._sock.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
        except OSError as err:
            if err.errno in (errno.ENOPROTOOPT, errno.EINVAL):
                return None
            raise
        cookie: int = struct.unpack("=Q", value)[0]
        return cookie

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, msg: Any, msg_type: int, flags: int) -> list[Any]:
        self._seq += 1
        seq = self._seq
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = NLM_F_REQUEST | flags
        msg["header"]["sequence_number"] = seq
        msg.encode()
        self._sock.send(msg.data)
        replies: list[Any] = []
        msg_class = type(msg)
        while True:
            data = self._sock.recv(1 << 20)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, rtype, rflags, rseq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    raise NetlinkError(errno.EPROTO, "malformed netlink reply")
                if rseq == seq:
                    if rtype == NLMSG_ERROR:
                        (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                        if code:
                            raise NetlinkError(-code, os.strerror(-code))
                        return replies
                    if rtype == NLMSG_DONE:
                        return replies
                    reply = msg_class(data[offset : offset + length])
                    reply.decode()
                    replies.append(reply)
                    if not (rflags & NLM_F_MULTI) and not (flags & NLM_F_ACK):
                        return replies
                offset += (length + 3) & ~3

    # --- links ---------------------------------------------------------------

    def link(self, *, name: str | None = None, index: int | None = None) -> Link | None:
        msg = _ifinfmsg()
        msg["index"] = index or 0
        # No IFLA_EXT_MASK: VF details (large on SR-IOV NICs) are never needed here.
        attrs: list[tuple[str, Any]] = []
        if name is not None:
            attrs.append(("IFLA_IFNAME", name))
        msg["attrs"] = attrs
        try:
            replies = self._request(msg, RTM_GETLINK, 0)
        except NetlinkError as err:
            if err.errno in (errno.ENODEV, errno.ENOENT, errno.EINVAL, errno.ERANGE):
                return None
            raise
        return _link_from_msg(replies[0]) if replies else None

    def links(self) -> list[Link]:
        msg = _ifinfmsg()
        return [_link_from_msg(m) for m in self._request(msg, RTM_GETLINK, NLM_F_DUMP)]

    def set_link(
        self,
        index: int,
        *,
        netns_fd: int | None = None,
        name: str | None = None,
        alias: str | None = None,
        mtu: int | None = None,
        mac: str | None = None,
        up: bool | None = None,
    ) -> None:
        """One RTM_NEWLINK: every attribute given changes in the same kernel call."""
        msg = _ifinfmsg()
        msg["index"] = index
        if up is not None:
            msg["change"] = IFF_UP
            msg["flags"] = IFF_UP if up else 0
        attrs: list[tuple[str, Any]] = []
        if netns_fd is not None:
            attrs.append(("IFLA_NET_NS_FD", netns_fd))
        if name is not None:
            attrs.append(("IFLA_IFNAME", name))
        if alias is not None:
            attrs.append(("IFLA_IFALIAS", alias))
        if mtu is not None:
            attrs.append(("IFLA_MTU", mtu))
        if mac is not None:
            attrs.append(("IFLA_ADDRESS", mac))
        msg["attrs"] = attrs
        self._request(msg, RTM_NEWLINK, NLM_F_ACK)

    def add_altname(self, index: int, name: str) -> None:
        self._altname(RTM_NEWLINKPROP, index, name)

    def remove_altname(self, index: int, name: str) -> None:
        self._altname(RTM_DELLINKPROP, index, name)

    def _altname(self, msg_type: int, index: int, name: str) -> None:
        msg = _ifinfmsg()
        msg["index"] = index
        msg["attrs"] = [("IFLA_PROP_LIST", {"attrs": [("IFLA_ALT_IFNAME", name)]})]
        self._request(msg, msg_type, NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if msg_type == RTM_NEWLINKPROP else 0))

    def names_in_use(self) -> set[str]:
        """Every name and altname of this namespace: a device arriving with any of them is refused."""
        return {name for link in self.links() for name in (link.name, *link.altnames)}

    def create_veth(self, name: str, peer: str) -> None:
        msg = _ifinfmsg()
        msg["attrs"] = [
            ("IFLA_IFNAME", name),
            (
                "IFLA_LINKINFO",
                {
                    "attrs": [
                        ("IFLA_INFO_KIND", "veth"),
                        ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", {"attrs": [("IFLA_IFNAME", peer)]})]}),
                    ]
                },
            ),
        ]
        self._request(msg, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    # --- addresses and routes --------------------------------------------------

    def global_addresses(self, index: int | None = None) -> dict[int, list[str]]:
        """ifindex -> addresses of universe scope (what makes a device the node's own), as
        "CIDR (permanent)" or "CIDR (dynamic, ...)": how the address came to be there.

        Given `index`, the kernel filters the dump (strict checking), so a node with
        thousands of addresses costs no more than one with a few.
        """
        out: dict[int, list[str]] = {}
        request = _ifaddrmsg()
        request["index"] = index or 0
        for msg in self._request(request, RTM_GETADDR, NLM_F_DUMP):
            if index is not None and msg["index"] != index:
                continue
            if msg["scope"] != RT_SCOPE_UNIVERSE:
                continue
            address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            flags = msg.get_attr("IFA_FLAGS")
            described = _address_flags(flags if flags is not None else msg["flags"])
            out.setdefault(msg["index"], []).append(f"{address}/{msg['prefixlen']} ({described})")
        return out

    def default_routes(self, oif: int | None = None) -> list[DefaultRoute]:
        """Default routes of the main table, one per next hop; given `oif`, only those through that link
        (the kernel filters the dump, so a full routing table, as on BGP nodes, is never dumped)."""
        found: list[DefaultRoute] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            msg = _rtmsg()
            msg["family"] = family
            if oif is not None:
                msg["attrs"] = [("RTA_OIF", oif)]
            for route in self._request(msg, RTM_GETROUTE, NLM_F_DUMP):
                if route["dst_len"] != 0 or route.get_attr("RTA_TABLE") not in (None, RT_TABLE_MAIN):
                    continue
                metric = route.get_attr("RTA_PRIORITY") or 0
                hops = [(route.get_attr("RTA_OIF"), route.get_attr("RTA_GATEWAY"))]
                hops += [(hop["oif"], hop.get_attr("RTA_GATEWAY")) for hop in route.get_attr("RTA_MULTIPATH") or []]
                for hop_oif, gateway in hops:
                    if hop_oif and (oif is None or hop_oif == oif):
                        found.append(DefaultRoute(family, hop_oif, gateway, route["proto"], metric))
        return found

    def uplink_route(self, index: int, every_route: list[DefaultRoute] | None = None) -> DefaultRoute | None:
        """A default route through link `index` that makes it the node's uplink, or None.

        Any configured one does (static, DHCP, ...). One learned from IPv6 router advertisements,
        which any NIC on a segment with a router picks up, does only when it is the node's only
        default route of its family: moving that device would cut the node off. `every_route`,
        the node's default routes when the caller has them all already, saves the dumps.
        """
        if every_route is None:
            routes = self.default_routes(index)
        else:
            routes = [r for r in every_route if r.oif == index]
        configured = [r for r in routes if not r.from_router_advertisement]
        if configured or not routes:
            return configured[0] if configured else None
        if every_route is None:
            every_route = self.default_routes()
        others = {r.family for r in every_route if r.oif != index}
        alone = [r for r in routes if r.family not in others]
        return alone[0] if alone else None

    def dump(self, kind: str, index: int | None = None) -> list[Any]:
        """Every address on link `index`, route through it (all tables), or policy rule, as decoded messages."""
        if kind == "address":
            request = _ifaddrmsg()
            request["index"] = index or 0
            return [m for m in self._request(request, RTM_GETADDR, NLM_F_DUMP) if m["index"] == index]
        found: list[Any] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            msg = _rtmsg() if kind == "route" else _fibmsg()
            msg["family"] = family
            if kind == "route":
                msg["attrs"] = [("RTA_OIF", index)]
                found += [r for r in self._request(msg, RTM_GETROUTE, NLM_F_DUMP) if r.get_attr("RTA_OIF") == index]
            else:
                found += self._request(msg, RTM_GETRULE, NLM_F_DUMP)
        return found

    def create(self, kind: str, snap: dict[str, Any], index: int | None = None) -> None:
        """Create an address, route or rule from its snapshot; addresses and routes on link `index`."""
        fields = dict(snap["fields"])
        attrs = [list(pair) for pair in snap["attrs"]]
        if kind == "address":
            msg, msg_type = _ifaddrmsg(), RTM_NEWADDR
            fields["index"] = index
            flags = fields.pop("flags") & _REQUEST_ADDRESS_FLAGS
            attrs = [pair for pair in attrs if pair[0] != "IFA_FLAGS"] + [["IFA_FLAGS", flags]]
        elif kind == "route":
            msg, msg_type = _rtmsg(), RTM_NEWROUTE
            attrs.append(["RTA_OIF", index])
        else:
            msg, msg_type = _fibmsg(), RTM_NEWRULE
        for name, value in fields.items():
            msg[name] = value
        msg["attrs"] = attrs
        self._request(msg, msg_type, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def addresses(self, index: int) -> list[tuple[str, int]]:
        """(CIDR, IFA_F_* flags) of every address on one link."""
        out: list[tuple[str, int]] = []
        request = _ifaddrmsg()
        request["index"] = index
        for msg in self._request(request, RTM_GETADDR, NLM_F_DUMP):
            if msg["index"] != index:
                continue
            address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
            flags = msg.get_attr("IFA_FLAGS")
            out.append((f"{address}/{msg['prefixlen']}", flags if flags is not None else msg["flags"]))
        return out

    def add_address(self, index: int, cidr: str) -> None:
        import ipaddress  # only IPAM needs it

        iface = ipaddress.ip_interface(cidr)
        msg = _ifaddrmsg()
        msg["family"] = socket.AF_INET if iface.version == 4 else socket.AF_INET6
        msg["prefixlen"] = iface.network.prefixlen
        msg["index"] = index
        attrs: list[tuple[str, Any]] = [("IFA_ADDRESS", str(iface.ip))]
        if iface.version == 4:
            attrs.append(("IFA_LOCAL", str(iface.ip)))
        msg["attrs"] = attrs
        self._request(msg, RTM_NEWADDR, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def add_route(
        self,
        dst: str,
        *,
        oif: int,
        gw: str | None = None,
        mtu: int | None = None,
        advmss: int | None = None,
        priority: int | None = None,
        table: int | None = None,
        scope: int | None = None,
    ) -> None:
        import ipaddress

        network = ipaddress.ip_network(dst, strict=False)
        msg = _rtmsg()
        msg["family"] = socket.AF_INET if network.version == 4 else socket.AF_INET6
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
        if priority is not None:
            attrs.append(("RTA_PRIORITY", priority))
        if table is not None:
            attrs.append(("RTA_TABLE", table))
        metrics = [(key, value) for key, value in (("RTAX_MTU", mtu), ("RTAX_ADVMSS", advmss)) if value is not None]
        if metrics:
            attrs.append(("RTA_METRICS", {"attrs": metrics}))
        msg["attrs"] = attrs
        self._request(msg, RTM_NEWROUTE, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    def routes(self, oif: int) -> list[tuple[str, str | None, int]]:
        """(dst CIDR, gateway, table) of every route leaving through `oif`, all tables."""
        out: list[tuple[str, str | None, int]] = []
        for family in (socket.AF_INET, socket.AF_INET6):
            msg = _rtmsg()
            msg["family"] = family
            msg["attrs"] = [("RTA_OIF", oif)]
            for route in self._request(msg, RTM_GETROUTE, NLM_F_DUMP):
                if route.get_attr("RTA_OIF") != oif:
                    continue
                dst = route.get_attr("RTA_DST") or ("0.0.0.0" if family == socket.AF_INET else "::")
                table = route.get_attr("RTA_TABLE") or route["table"]
                out.append((f"{dst}/{route['dst_len']}", route.get_attr("RTA_GATEWAY"), table))
        return out
