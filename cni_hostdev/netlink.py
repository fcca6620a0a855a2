"""A small synchronous rtnetlink client bound to one network namespace: links.

pyroute2 encodes and decodes the messages (loaded by cni_hostdev/netlink_loader.py); the
socket, sequencing and error handling are ours. Addresses, routes and rules, which only some
commands need, are in cni_hostdev/routing.py on the same socket.
"""

from __future__ import annotations

import _socket  # `socket` wraps it in enum classes, ~2 ms of every exec for constants we do not print
import errno
import os
import struct

from cni_hostdev import netlink_loader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_DUMP = 0x300
RTM_NEWLINK = 16
RTM_GETLINK = 18
RTM_NEWADDR = 20
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
AF_INET = _socket.AF_INET
AF_INET6 = _socket.AF_INET6
RT_SCOPE_UNIVERSE = 0
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
RT_SCOPE_LINK = 253
RTPROT_KERNEL = 2
RTPROT_BOOT = 3
RTPROT_RA = 9
RTN_UNICAST = 1
IFA_F_TENTATIVE = 0x40
IFA_F_DADFAILED = 0x08
IFF_LOWER_UP = 0x10000
IFF_LOOPBACK = 0x8
_HEADER = struct.Struct("=IHHII")

ifinfmsg: Any = netlink_loader.message("ifinfmsg")


def ifaddrmsg() -> Any:
    """An address message (its module loads on first use: a DEL reads no address)."""
    return netlink_loader.message("ifaddrmsg")()


def rtmsg() -> Any:
    """A route message (its module loads on first use: a DEL reads no route)."""
    return netlink_loader.message("rtmsg")()


def fibmsg() -> Any:
    """A policy rule message: only useInterfaceNetwork needs them."""
    return netlink_loader.message("fibmsg")()


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


_LINK_ATTRS = frozenset(
    (
        "IFLA_IFNAME", "IFLA_MTU", "IFLA_ADDRESS", "IFLA_PERM_ADDRESS", "IFLA_IFALIAS", "IFLA_MASTER",
        "IFLA_LINKINFO", "IFLA_PARENT_DEV_BUS_NAME", "IFLA_PARENT_DEV_NAME", "IFLA_PROP_LIST",
    )
)  # fmt: skip


def _link_from_msg(msg: Any) -> Link:
    # One pass over the attributes: pyroute2's get_attr scans all of them (forty-odd on a link)
    # for each name asked, and decodes only the values read.
    values: dict[str, Any] = {}
    for cell in msg["attrs"]:
        name = cell[0]
        if name in _LINK_ATTRS and name not in values:
            values[name] = cell[1]

    def attr(name: str) -> Any:
        return values.get(name)

    linkinfo = attr("IFLA_LINKINFO")
    perm = attr("IFLA_PERM_ADDRESS")
    props = attr("IFLA_PROP_LIST")
    return Link(
        index=msg["index"],
        name=attr("IFLA_IFNAME"),
        flags=msg["flags"],
        mtu=attr("IFLA_MTU") or 0,
        mac=(attr("IFLA_ADDRESS") or "").lower(),
        perm_mac=perm.lower() if perm and perm != "00:00:00:00:00:00" else None,
        alias=attr("IFLA_IFALIAS") or None,
        master=attr("IFLA_MASTER") or None,
        kind=linkinfo.get_attr("IFLA_INFO_KIND") if linkinfo is not None else None,
        parent_bus=attr("IFLA_PARENT_DEV_BUS_NAME"),
        parent_dev=attr("IFLA_PARENT_DEV_NAME"),
        altnames=tuple(props.get_attrs("IFLA_ALT_IFNAME")) if props is not None else (),
    )


class Rtnl:
    """One NETLINK_ROUTE socket; it stays in the netns it was created in."""

    def __init__(self) -> None:
        self._sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, _socket.NETLINK_ROUTE)
        self._sock.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVBUF, 1 << 20)
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
            value = self._sock.getsockopt(_socket.SOL_SOCKET, SO_NETNS_COOKIE, 8)
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

    def request(self, msg: Any, msg_type: int, flags: int) -> list[Any]:
        """Send one request; its replies (a dump's many), or an empty list for an ack."""
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
        msg = ifinfmsg()
        msg["index"] = index or 0
        # No IFLA_EXT_MASK: VF details (large on SR-IOV NICs) are never needed here.
        attrs: list[tuple[str, Any]] = []
        if name is not None:
            attrs.append(("IFLA_IFNAME", name))
        msg["attrs"] = attrs
        try:
            replies = self.request(msg, RTM_GETLINK, 0)
        except NetlinkError as err:
            if err.errno in (errno.ENODEV, errno.ENOENT, errno.EINVAL, errno.ERANGE):
                return None
            raise
        return _link_from_msg(replies[0]) if replies else None

    def links(self) -> list[Link]:
        msg = ifinfmsg()
        return [_link_from_msg(m) for m in self.request(msg, RTM_GETLINK, NLM_F_DUMP)]

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
        msg = ifinfmsg()
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
        self.request(msg, RTM_NEWLINK, NLM_F_ACK)

    def add_altname(self, index: int, name: str) -> None:
        self._altname(RTM_NEWLINKPROP, index, name)

    def remove_altname(self, index: int, name: str) -> None:
        self._altname(RTM_DELLINKPROP, index, name)

    def _altname(self, msg_type: int, index: int, name: str) -> None:
        msg = ifinfmsg()
        msg["index"] = index
        msg["attrs"] = [("IFLA_PROP_LIST", {"attrs": [("IFLA_ALT_IFNAME", name)]})]
        self.request(msg, msg_type, NLM_F_ACK | (NLM_F_CREATE | NLM_F_EXCL if msg_type == RTM_NEWLINKPROP else 0))

    def names_in_use(self) -> set[str]:
        """Every name and altname of this namespace: a device arriving with any of them is refused."""
        return {name for link in self.links() for name in (link.name, *link.altnames)}

    def create_veth(self, name: str, peer: str) -> None:
        msg = ifinfmsg()
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
        self.request(msg, RTM_NEWLINK, NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL)

    # --- addresses and routes --------------------------------------------------
