"""IPAM delegation: exec the configured IPAM plugin, and apply its result inside the pod."""

from __future__ import annotations

import os
import struct
import sys

from cni_hostdev import logs, netns, routing
from cni_hostdev.config import NetConf
from cni_hostdev.errors import CHECK_FAILED, INCOMPATIBLE_VERSION, INVALID_CONFIG, IPAM_FAILURE, CniError
from cni_hostdev.lean.json import dumps, loads
from cni_hostdev.netlink import IFF_LOWER_UP, Link, NetlinkError, Rtnl
from cni_hostdev.result import IPConfig, Result
from cni_hostdev.versions import FIRST_VERSION, SUPPORTED_VERSIONS, compare

TYPE_CHECKING = False
if TYPE_CHECKING:  # not at run time: typing, and socket's enums, cost a CHECK more than its work
    from collections.abc import Mapping
    from typing import Any

log = logs.get_logger(__name__)
EXEC_TIMEOUT = 60.0
_versions_of: dict[str, tuple[str, ...] | None] = {}  # plugin path -> its supportedVersions, once per call


def find_plugin(ipam_type: str, cni_path: tuple[str, ...]) -> str:
    for directory in cni_path:
        candidate = os.path.join(directory, ipam_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CniError(
        INVALID_CONFIG,
        f"ipam plugin {ipam_type!r} not found in CNI_PATH ({':'.join(cni_path) or 'empty'})",
    )


def run(
    command: str, ipam_type: str, conf: Mapping[str, Any], environ: Mapping[str, str], cni_path: tuple[str, ...]
) -> dict[str, Any] | None:
    """Exec the IPAM plugin with our stdin and environment, only CNI_COMMAND changed."""
    import subprocess  # only configs with IPAM pay for it

    plugin = find_plugin(ipam_type, cni_path)
    env = _child_environment(environ)
    env["CNI_COMMAND"] = command
    try:
        proc = subprocess.run([plugin], input=dumps(conf).encode(), env=env, capture_output=True, timeout=EXEC_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise CniError(IPAM_FAILURE, f"ipam plugin {ipam_type} {command} did not answer in {EXEC_TIMEOUT:g}s") from None
    except OSError as err:
        raise CniError(IPAM_FAILURE, f"cannot run ipam plugin {plugin}: {err.strerror}") from None
    text = proc.stdout.decode(errors="replace").strip()
    parsed: Any = None
    if text:
        try:
            parsed = loads(text)
        except ValueError:
            parsed = None
    if proc.returncode != 0:
        if isinstance(parsed, dict) and "msg" in parsed:
            detail = f"{parsed['msg']} (code {parsed.get('code')})"
        else:
            detail = (text or proc.stderr.decode(errors="replace")).strip()[:500] or f"exit status {proc.returncode}"
        raise CniError(IPAM_FAILURE, f"ipam plugin {ipam_type} {command} failed: {detail}")
    if text and not isinstance(parsed, dict):
        raise CniError(IPAM_FAILURE, f"ipam plugin {ipam_type} {command} printed something that is not JSON")
    return parsed if isinstance(parsed, dict) else None


def _child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The runtime's environment, without what our frozen start-up added to ours.

    PyInstaller's bootloader points LD_LIBRARY_PATH at our bundled glibc (keeping the
    runtime's value in LD_LIBRARY_PATH_ORIG) and sets _PYI_* variables for itself. A
    dynamically linked IPAM plugin must load the node's libraries, not ours, and another
    frozen program must not take those variables for its own.
    """
    env = {k: v for k, v in environ.items() if not k.startswith("_PYI_")}
    if getattr(sys, "frozen", False):
        original = env.pop("LD_LIBRARY_PATH_ORIG", None)
        env.pop("LD_LIBRARY_PATH", None)
        if original is not None:
            env["LD_LIBRARY_PATH"] = original
    return env


def supported_versions(
    ipam_type: str, conf: NetConf, environ: Mapping[str, str], cni_path: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The versions the IPAM plugin says it speaks (its VERSION, asked once per call); None if it does not say."""
    plugin = find_plugin(ipam_type, cni_path)
    if plugin not in _versions_of:
        try:
            answer = run("VERSION", ipam_type, {"cniVersion": conf.cni_version}, environ, cni_path) or {}
        except CniError as err:
            log.warning(
                "ipam plugin %s does not answer VERSION (%s); speaking cniVersion %s",
                ipam_type,
                err.msg,
                conf.cni_version,
            )
            answer = {}
        listed = answer.get("supportedVersions")
        _versions_of[plugin] = tuple(v for v in listed if isinstance(v, str)) if isinstance(listed, list) else None
    return _versions_of[plugin]


def version_for(command: str, conf: NetConf, environ: Mapping[str, str], cni_path: tuple[str, ...]) -> str | None:
    """The cniVersion to speak to the IPAM plugin for `command`: the config's when it speaks it, else the
    highest version both sides speak that is not above the config's and in which `command` exists.

    None for GC and STATUS when the plugin has no such version: they are skipped then.
    """
    assert conf.ipam is not None
    ipam_type = str(conf.ipam["type"])
    skippable = command in ("GC", "STATUS")
    versions = supported_versions(ipam_type, conf, environ, cni_path)
    if versions is None:  # it does not say: speak the config's version, as to any plugin
        return None if skippable else conf.cni_version
    first = FIRST_VERSION.get(command, "0.1.0")
    ours = [v for v in SUPPORTED_VERSIONS if compare(first, v) <= 0 <= compare(conf.cni_version, v)]
    speakable = [v for v in versions if v in ours]
    if conf.cni_version in speakable:
        return conf.cni_version
    if not speakable:
        if skippable:
            return None
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"ipam plugin {ipam_type} speaks cniVersion {', '.join(versions) or 'none'}; {command} with "
            f"cniVersion {conf.cni_version} needs one of {', '.join(ours)}",
        )
    chosen = max(speakable, key=SUPPORTED_VERSIONS.index)
    log.info("ipam plugin %s does not speak cniVersion %s: %s at %s", ipam_type, conf.cni_version, command, chosen)
    return chosen


def delegate(
    command: str, conf: NetConf, environ: Mapping[str, str], cni_path: tuple[str, ...]
) -> dict[str, Any] | None:
    """Run `command` of the configured IPAM plugin at a version it speaks (see version_for).

    GC and STATUS are skipped (None) for a plugin that cannot have them. A result comes back
    in the plugin's version; parse_result reads it as such, and ours prints it in the config's.
    """
    assert conf.ipam is not None
    version = version_for(command, conf, environ, cni_path)
    if version is None:
        log.info("ipam plugin %s has no %s (it does not speak cniVersion 1.1.0): skipped", conf.ipam["type"], command)
        return None
    stdin: Mapping[str, Any] = conf.raw
    if version != conf.cni_version:
        stdin = {**conf.raw, "cniVersion": version}
        if isinstance(conf.raw.get("prevResult"), dict) and conf.prev_result is not None:
            stdin["prevResult"] = Result.from_json(conf.raw["prevResult"], conf.cni_version).to_json(version)
    return run(command, str(conf.ipam["type"]), stdin, environ, cni_path)


def parse_result(obj: dict[str, Any] | None, conf_version: str, ipam_type: str) -> Result:
    if obj is None:
        raise CniError(IPAM_FAILURE, f"ipam plugin {ipam_type} ADD printed no result")
    version = obj.get("cniVersion") if isinstance(obj.get("cniVersion"), str) else conf_version
    result = Result.from_json(obj, str(version))
    result.interfaces = []
    return result


def enable_ipv6(ifname: str) -> None:
    for name in ("all", ifname):
        path = f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6"
        try:
            with open(path, "w") as f:
                f.write("0")
        except OSError as err:
            log.debug("cannot enable IPv6 on %s: %s", name, err)


def settle_dad(rtnl: Rtnl, link: Link) -> None:
    """Wait out DAD so routes and traffic use usable addresses; DAD cannot finish without carrier."""
    current = rtnl.link(index=link.index)
    if current is None or not current.flags & IFF_LOWER_UP:
        return
    if routing.wait_out_dad(rtnl, link.index, routing.DAD_TIMEOUT) is not None:
        raise CniError(IPAM_FAILURE, f"IPv6 duplicate address detected on {link.name}")


def apply(pod_fd: int, pod: Rtnl, link: Link, result: Result) -> None:
    """Addresses, then (after DAD) routes, then neighbour announcements, all inside the pod."""
    with netns.entered(pod_fd):
        if any(ip.family == 6 for ip in result.ips):
            enable_ipv6(link.name)
        for ip in result.ips:
            ip.interface = None
            try:
                routing.add_address(pod, link.index, ip.address)
            except NetlinkError as err:
                raise CniError(
                    IPAM_FAILURE, f"cannot add address {ip.address} to {link.name}: {err.strerror}"
                ) from None
        if any(ip.family == 6 for ip in result.ips):
            settle_dad(pod, link)
        gateways = {ip.family: ip.gateway for ip in reversed(result.ips) if ip.gateway}
        for route in result.routes:
            gw = route.gw or gateways.get(route.family)
            try:
                routing.add_route(pod, route, oif=link.index, gw=gw)
            except NetlinkError as err:
                raise CniError(
                    IPAM_FAILURE, f"cannot add route {route.dst} via {gw or 'link'} on {link.name}: {err.strerror}"
                ) from None
        for ip in result.ips:
            _announce(link, ip)


def _announce(link: Link, ip: IPConfig) -> None:
    """Gratuitous ARP / unsolicited NA, so neighbours learn the device's MAC for the address."""
    import ipaddress  # lazily: ADDs without IPAM load this module too
    import socket  # likewise: its enum classes cost more than the two packets

    address = ipaddress.ip_interface(ip.address).ip
    mac = bytes.fromhex(link.mac.replace(":", ""))
    try:
        if address.version == 4:
            with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
                sock.bind((link.name, 0x0806))
                arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, address.packed, b"\0" * 6, address.packed)
                sock.send(b"\xff" * 6 + mac + b"\x08\x06" + arp)
        else:
            with socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6) as sock:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, link.name.encode())
                # type 136, code 0, checksum (kernel fills it), flags: override
                na = struct.pack("!BBHI16s", 136, 0, 0, 0x20000000, address.packed) + struct.pack("!BB6s", 2, 1, mac)
                sock.sendto(na, ("ff02::1", 0, 0, link.index))
    except OSError as err:
        log.debug("could not announce %s on %s: %s", address, link.name, err)


def verify(pod: Rtnl, link: Link, result: Result) -> None:
    """CHECK: every address and route prevResult reports is present in the pod."""
    import ipaddress

    present = {str(ipaddress.ip_interface(cidr)) for cidr, _ in routing.addresses(pod, link.index)}
    for ip in result.ips:
        if str(ipaddress.ip_interface(ip.address)) not in present:
            raise CniError(CHECK_FAILED, f"address {ip.address} is missing from {link.name}")
    routes = {str(ipaddress.ip_network(dst, strict=False)) for dst, _, _ in routing.routes(pod, link.index)}
    for route in result.routes:
        if str(ipaddress.ip_network(route.dst, strict=False)) not in routes:
            raise CniError(CHECK_FAILED, f"route to {route.dst} is missing from {link.name}")
