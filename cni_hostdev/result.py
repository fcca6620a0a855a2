"""CNI result types, with conversion between every result shape.

Internally a result always has the 1.1.0 shape; it is parsed from and printed
in whatever version a config or an IPAM plugin speaks.
"""

from __future__ import annotations

from cni_hostdev.errors import DECODE_FAILURE, INCOMPATIBLE_VERSION, CniError
from cni_hostdev.versions import compare

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


# Plain classes, not dataclasses: `dataclasses` imports `inspect` and compiles an
# __init__ per class at import, ~10 ms of every exec on this path.
class Interface:
    __slots__ = ("mac", "mtu", "name", "pci_id", "sandbox", "socket_path")

    def __init__(
        self,
        name: str,
        mac: str = "",
        mtu: int | None = None,
        sandbox: str = "",
        pci_id: str | None = None,
        socket_path: str | None = None,
    ) -> None:
        self.name = name
        self.mac = mac
        self.mtu = mtu
        self.sandbox = sandbox
        self.pci_id = pci_id
        self.socket_path = socket_path


class IPConfig:
    __slots__ = ("address", "gateway", "interface")

    def __init__(self, address: str, gateway: str | None = None, interface: int | None = None) -> None:
        self.address = address  # CIDR
        self.gateway = gateway
        self.interface = interface

    @property
    def family(self) -> int:
        import ipaddress  # only results with IPs need it

        return ipaddress.ip_interface(self.address).version


class Route:
    __slots__ = ("advmss", "dst", "gw", "mtu", "priority", "scope", "table")

    def __init__(
        self,
        dst: str,
        gw: str | None = None,
        mtu: int | None = None,
        advmss: int | None = None,
        priority: int | None = None,
        table: int | None = None,
        scope: int | None = None,
    ) -> None:
        self.dst = dst
        self.gw = gw
        self.mtu = mtu
        self.advmss = advmss
        self.priority = priority
        self.table = table
        self.scope = scope

    @property
    def family(self) -> int:
        import ipaddress

        return ipaddress.ip_network(self.dst, strict=False).version


class DNS:
    __slots__ = ("domain", "nameservers", "options", "search")

    def __init__(
        self,
        nameservers: list[str] | None = None,
        domain: str = "",
        search: list[str] | None = None,
        options: list[str] | None = None,
    ) -> None:
        self.nameservers = nameservers if nameservers is not None else []
        self.domain = domain
        self.search = search if search is not None else []
        self.options = options if options is not None else []

    def empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out

    @classmethod
    def from_json(cls, obj: Any) -> DNS:
        if not isinstance(obj, dict):
            return cls()
        return cls(
            nameservers=[str(x) for x in obj.get("nameservers") or []],
            domain=str(obj.get("domain") or ""),
            search=[str(x) for x in obj.get("search") or []],
            options=[str(x) for x in obj.get("options") or []],
        )


_ROUTE_EXTRAS = ("mtu", "advmss", "priority", "table", "scope")


class Result:
    __slots__ = ("dns", "interfaces", "ips", "routes")

    def __init__(
        self,
        interfaces: list[Interface] | None = None,
        ips: list[IPConfig] | None = None,
        routes: list[Route] | None = None,
        dns: DNS | None = None,
    ) -> None:
        self.interfaces = interfaces if interfaces is not None else []
        self.ips = ips if ips is not None else []
        self.routes = routes if routes is not None else []
        self.dns = dns if dns is not None else DNS()

    def can_print_as(self, cni_version: str) -> bool:
        """0.1.0/0.2.0 results are built around ip4/ip6, so they need at least one address."""
        return compare(cni_version, "0.3.0") >= 0 or bool(self.ips)

    def to_json(self, cni_version: str) -> dict[str, Any]:
        if compare(cni_version, "0.3.0") < 0:
            return self._to_legacy_json(cni_version)
        out: dict[str, Any] = {"cniVersion": cni_version}
        if self.interfaces:
            out["interfaces"] = [_interface_json(i, cni_version) for i in self.interfaces]
        if self.ips:
            ips = []
            for ip in self.ips:
                entry: dict[str, Any] = {}
                if compare(cni_version, "1.0.0") < 0:
                    entry["version"] = str(ip.family)
                entry["address"] = ip.address
                if ip.gateway:
                    entry["gateway"] = ip.gateway
                if ip.interface is not None:
                    entry["interface"] = ip.interface
                ips.append(entry)
            out["ips"] = ips
        if self.routes:
            out["routes"] = [_route_json(r, cni_version) for r in self.routes]
        out["dns"] = self.dns.to_json()
        return out

    def _to_legacy_json(self, cni_version: str) -> dict[str, Any]:
        if not self.ips:
            raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {cni_version} cannot carry a result without IP addresses")
        out: dict[str, Any] = {"cniVersion": cni_version}
        for family, key in ((4, "ip4"), (6, "ip6")):
            ips = [ip for ip in self.ips if ip.family == family]
            if not ips:
                continue
            block: dict[str, Any] = {"ip": ips[0].address}
            if ips[0].gateway:
                block["gateway"] = ips[0].gateway
            routes = [_route_json(r, "0.2.0") for r in self.routes if r.family == family]
            if routes:
                block["routes"] = routes
            out[key] = block
        out["dns"] = self.dns.to_json()
        return out

    @classmethod
    def from_json(cls, obj: Any, cni_version: str) -> Result:
        """Parse a result printed in `cni_version` (a prevResult or an IPAM plugin's answer)."""
        if not isinstance(obj, dict):
            raise CniError(DECODE_FAILURE, f"result for cniVersion {cni_version} is not a JSON object")
        try:
            if compare(cni_version, "0.3.0") < 0:
                return cls._from_legacy_json(obj)
            result = cls(dns=DNS.from_json(obj.get("dns")))
            for i in obj.get("interfaces") or []:
                result.interfaces.append(
                    Interface(
                        name=str(i["name"]),
                        mac=str(i.get("mac") or ""),
                        mtu=i.get("mtu"),
                        sandbox=str(i.get("sandbox") or ""),
                        pci_id=i.get("pciID"),
                        socket_path=i.get("socketPath"),
                    )
                )
            for ip in obj.get("ips") or []:
                result.ips.append(IPConfig(str(ip["address"]), ip.get("gateway"), ip.get("interface")))
                _check_interface(result.ips[-1].address)
            for r in obj.get("routes") or []:
                result.routes.append(_route_from_json(r))
            return result
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise CniError(DECODE_FAILURE, f"cannot parse a cniVersion {cni_version} result: {err}") from None

    @classmethod
    def _from_legacy_json(cls, obj: dict[str, Any]) -> Result:
        result = cls(dns=DNS.from_json(obj.get("dns")))
        for key in ("ip4", "ip6"):
            block = obj.get(key)
            if not block:
                continue
            result.ips.append(IPConfig(str(block["ip"]), block.get("gateway")))
            _check_interface(result.ips[-1].address)
            for r in block.get("routes") or []:
                result.routes.append(_route_from_json(r))
        return result


def _check_interface(cidr: str) -> None:
    import ipaddress  # imported only when a result carries addresses

    ipaddress.ip_interface(cidr)


def _check_network(cidr: str) -> None:
    import ipaddress

    ipaddress.ip_network(cidr, strict=False)


def _interface_json(iface: Interface, cni_version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": iface.name}
    if iface.mac:
        out["mac"] = iface.mac
    since_110 = compare(cni_version, "1.1.0") >= 0
    if since_110 and iface.mtu:
        out["mtu"] = iface.mtu
    if iface.sandbox:
        out["sandbox"] = iface.sandbox
    if since_110:
        if iface.socket_path:
            out["socketPath"] = iface.socket_path
        if iface.pci_id:
            out["pciID"] = iface.pci_id
    return out


def _route_json(route: Route, cni_version: str) -> dict[str, Any]:
    out: dict[str, Any] = {"dst": route.dst}
    if route.gw:
        out["gw"] = route.gw
    if compare(cni_version, "1.1.0") >= 0:
        for key in _ROUTE_EXTRAS:
            value = getattr(route, key)
            if value is not None:
                out[key] = value
    return out


def _route_from_json(obj: Any) -> Route:
    route = Route(dst=str(obj["dst"]), gw=obj.get("gw"))
    _check_network(route.dst)
    for key in _ROUTE_EXTRAS:
        value = obj.get(key)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"route {key} {value!r} is not an integer")
            setattr(route, key, value)
    return route
