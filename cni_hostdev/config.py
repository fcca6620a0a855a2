"""The network config, fully validated: the typed model (NetConf, Selectors, pool Candidates).

Nothing here touches the kernel: every complaint about input is raised before
any device is looked at. The CNI_* environment is cni_hostdev/plugin/call.py's.
"""

from __future__ import annotations

import os

from cni_hostdev.errors import DECODE_FAILURE, INVALID_CONFIG, INVALID_ENV, CniError
from cni_hostdev.identifiers import is_aux_device, is_mac, is_pci_address, is_plain_name
from cni_hostdev.lean.json import dumps, loads
from cni_hostdev.result import DNS, Result
from cni_hostdev.versions import supported

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MOVE_STRATEGIES = ("auto", "atomic", "rename-then-move")
DEFAULT_DATA_DIR = "/var/lib/cni/host-device"
IFNAMSIZ = 16


def validate_ifname(name: str, what: str) -> None:
    problem = None
    if not name:
        problem = "is empty"
    elif len(name.encode()) >= IFNAMSIZ:
        problem = f"is longer than {IFNAMSIZ - 1} bytes"
    elif name in (".", ".."):
        problem = "is not a valid interface name"
    elif any(c in name for c in "/:%") or any(c.isspace() for c in name):
        # '%' would make the kernel pick a name (net%d -> net0) other than the one asked for.
        problem = "contains '/', ':', '%' or whitespace"
    if problem:
        raise CniError(INVALID_ENV if what.startswith("CNI_") else INVALID_CONFIG, f"{what} {name!r} {problem}")


def normalize_pci(address: str) -> str:
    address = address.lower()
    return address if address.count(":") == 2 else f"0000:{address}"


# Plain classes, not dataclasses: see cni_hostdev/result.py.
class Selectors:
    __slots__ = ("device", "device_id", "hwaddr", "kernelpath", "pci_bus_id")

    def __init__(
        self,
        device: str | None = None,
        hwaddr: str | None = None,
        kernelpath: str | None = None,
        pci_bus_id: str | None = None,
        device_id: str | None = None,
    ) -> None:
        self.device = device
        self.hwaddr = hwaddr
        self.kernelpath = kernelpath
        self.pci_bus_id = pci_bus_id
        self.device_id = device_id

    def any(self) -> bool:
        return any((self.device, self.hwaddr, self.kernelpath, self.pci_bus_id, self.device_id))


POOL_KEYS = ("device", "hwaddr", "kernelpath", "pciBusID", "namePattern", "driver")


class Candidate:
    """One entry of a `devices` pool: every key it gives must match a device for it to be taken."""

    __slots__ = ("driver", "name_pattern", "position", "selectors")

    def __init__(
        self, position: int, selectors: Selectors, name_pattern: str | None = None, driver: str | None = None
    ) -> None:
        self.position = position  # 1-based, as a user counts the list
        self.selectors = selectors
        self.name_pattern = name_pattern
        self.driver = driver

    def describe(self) -> str:
        """The candidate as the config wrote it: `device ens4f1`, `namePattern "ens*f1" and driver mlx5_core`."""
        sel = self.selectors
        given = [
            f"device {sel.device}" if sel.device else "",
            f"hwaddr {sel.hwaddr}" if sel.hwaddr else "",
            f"kernelpath {sel.kernelpath}" if sel.kernelpath else "",
            f"pciBusID {sel.pci_bus_id}" if sel.pci_bus_id else "",
            f"namePattern {dumps(self.name_pattern)}" if self.name_pattern else "",
            f"driver {self.driver}" if self.driver else "",
        ]
        return " and ".join(g for g in given if g)


class NetConf:
    __slots__ = (
        "allow_host_addresses",
        "cni_version",
        "data_dir",
        "dns",
        "ipam",
        "lock_timeout",
        "move_strategy",
        "name",
        "pool",
        "prev_result",
        "raw",
        "selectors",
        "type",
        "use_interface_network",
        "valid_attachments",
    )

    def __init__(
        self,
        cni_version: str,
        name: str,
        type: str,
        selectors: Selectors,
        move_strategy: str = "auto",
        data_dir: str = DEFAULT_DATA_DIR,
        ipam: dict[str, Any] | None = None,
        prev_result: Result | None = None,
        valid_attachments: tuple[tuple[str, str], ...] | None = None,
        allow_host_addresses: bool = False,
        lock_timeout: float = 10.0,
        dns: DNS | None = None,
        raw: dict[str, Any] | None = None,
        pool: tuple[Candidate, ...] | None = None,
        use_interface_network: bool = False,
    ) -> None:
        self.cni_version = cni_version
        self.name = name
        self.type = type
        self.selectors = selectors
        self.move_strategy = move_strategy
        self.data_dir = data_dir
        self.ipam = ipam
        self.prev_result = prev_result
        self.valid_attachments = valid_attachments
        self.allow_host_addresses = allow_host_addresses
        self.lock_timeout = lock_timeout
        self.dns = dns if dns is not None else DNS()
        self.raw = raw if raw is not None else {}
        self.pool = pool  # the `devices` candidates, in order of preference
        self.use_interface_network = use_interface_network

    def candidates(self) -> tuple[Candidate, ...]:
        """What the config asks for, as pool candidates: its selectors as a pool of one when it has
        any (a PCI deviceID standing for its PCI function), else its pool."""
        sel = self.selectors
        if not sel.any() and self.pool is not None:
            return self.pool
        pci = sel.pci_bus_id
        if not pci and sel.device_id and is_pci_address(sel.device_id):
            pci = sel.device_id
        return (Candidate(1, Selectors(sel.device, sel.hwaddr, sel.kernelpath, pci)),)


def _string(conf: dict[str, Any], key: str, *, where: str = "") -> str | None:
    value = conf.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise CniError(INVALID_CONFIG, f"config key {where}{key} must be a string, got {dumps(value)[:80]}")
    return value


def decode_stdin(data: bytes) -> tuple[dict[str, Any], object, CniError | None]:
    """The config on stdin, the cniVersion it asks for (what an answer, an error too, is printed
    in), and why it is no config (None when it is one), all from one decode of the UTF-8 text the
    spec requires. Only stdin that is not such a config is looked at once more, with json's own
    guess of its encoding (UTF-16 and -32 too), to name the version its error answers in."""
    try:
        conf = loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        why = CniError(DECODE_FAILURE, f"network config on stdin is not valid JSON: {err}")
        return {}, _version_of_undecodable(data), why
    except RecursionError:
        return {}, None, CniError(DECODE_FAILURE, "network config on stdin is nested too deeply to be a network config")
    if not isinstance(conf, dict):
        return {}, None, CniError(DECODE_FAILURE, "network config on stdin is not a JSON object")
    return conf, conf.get("cniVersion"), None


def _version_of_undecodable(data: bytes) -> object:
    try:
        conf = loads(data) if data.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        conf = None
    return conf.get("cniVersion") if isinstance(conf, dict) else None


def config_version(conf: dict[str, Any]) -> str:
    version = conf.get("cniVersion", "0.1.0") or "0.1.0"
    if not isinstance(version, str):
        raise CniError(INVALID_CONFIG, f"config key cniVersion must be a string, got {dumps(version)[:80]}")
    return version


def parse_netconf(conf: dict[str, Any], command: str) -> NetConf:
    """The config of `command` (whose cniVersion gate the command table checks: plugin/dispatch.py)."""
    cni_version = supported(config_version(conf))
    # In this order, so that of several problems the same one is always named first.
    name = _network_name(conf)
    plugin_type = _string(conf, "type") or ""
    selectors, pool = _selection(conf, command)
    strategy, data_dir, ipam = _move_strategy(conf), _data_dir(conf), _ipam(conf)
    prev_result = None
    if conf.get("prevResult") is not None:
        prev_result = Result.from_json(conf["prevResult"], cni_version)
    allow, use_interface_network = _flag(conf, "allowHostAddresses"), _flag(conf, "useInterfaceNetwork")
    lock_timeout = _lock_timeout(conf)
    dns = conf.get("dns")
    if dns is not None and not isinstance(dns, dict):
        raise CniError(INVALID_CONFIG, "config key dns must be an object")
    return NetConf(
        cni_version=cni_version,
        name=name,
        type=plugin_type,
        selectors=selectors,
        move_strategy=strategy,
        data_dir=data_dir,
        ipam=ipam,
        prev_result=prev_result,
        valid_attachments=_attachments(conf) if command == "GC" else None,
        allow_host_addresses=allow,
        lock_timeout=lock_timeout,
        dns=DNS.from_json(dns),
        raw=conf,
        pool=pool,
        use_interface_network=use_interface_network,
    )


def _network_name(conf: dict[str, Any]) -> str:
    name = _string(conf, "name")
    if not name:
        raise CniError(INVALID_CONFIG, "config key name is missing")
    if not is_plain_name(name):
        raise CniError(INVALID_CONFIG, f"config key name {name!r} has characters outside [A-Za-z0-9_.-]")
    return name


def _selection(conf: dict[str, Any], command: str) -> tuple[Selectors, tuple[Candidate, ...] | None]:
    """The one device selected (and a deviceID injected by Multus), or the `devices` pool."""
    runtime = conf.get("runtimeConfig") or {}
    if not isinstance(runtime, dict):
        raise CniError(INVALID_CONFIG, "config key runtimeConfig must be an object")
    selectors = Selectors(
        device=_string(conf, "device"),
        hwaddr=_string(conf, "hwaddr"),
        kernelpath=_string(conf, "kernelpath"),
        pci_bus_id=_string(conf, "pciBusID"),
        device_id=_string(runtime, "deviceID", where="runtimeConfig.") or _string(conf, "deviceID"),
    )
    _validate_selectors(selectors)
    pool = _pool(conf, selectors)
    if command == "ADD" and not selectors.any() and pool is None:
        raise CniError(
            INVALID_CONFIG,
            "no device selected: set one of device, hwaddr, kernelpath, pciBusID, devices, deviceID "
            "or runtimeConfig.deviceID",
        )
    return selectors, pool


def _move_strategy(conf: dict[str, Any]) -> str:
    strategy = _string(conf, "moveStrategy") or "auto"
    if strategy not in MOVE_STRATEGIES:
        raise CniError(
            INVALID_CONFIG, f"config key moveStrategy {strategy!r} is not one of {', '.join(MOVE_STRATEGIES)}"
        )
    return strategy


def _data_dir(conf: dict[str, Any]) -> str:
    data_dir = _string(conf, "dataDir") or DEFAULT_DATA_DIR
    if not os.path.isabs(data_dir) or os.path.normpath(data_dir) != data_dir.rstrip("/") or data_dir.strip("/") == "":
        raise CniError(
            INVALID_CONFIG, f"config key dataDir {data_dir[:80]!r} must be a normalized absolute path below /"
        )
    return data_dir


def _ipam(conf: dict[str, Any]) -> dict[str, Any] | None:
    ipam = conf.get("ipam")
    if ipam is not None and not isinstance(ipam, dict):
        raise CniError(INVALID_CONFIG, "config key ipam must be an object")
    if not ipam:
        return None
    ipam_type = ipam.get("type")
    if not isinstance(ipam_type, str) or not ipam_type:
        raise CniError(INVALID_CONFIG, "config key ipam.type is missing")
    if "/" in ipam_type or ipam_type in (".", ".."):
        raise CniError(INVALID_CONFIG, f"config key ipam.type {ipam_type!r} must be a plain plugin name")
    return ipam


def _lock_timeout(conf: dict[str, Any]) -> float:
    lock_timeout = conf.get("lockTimeout", 10.0)
    if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int | float) or not 0 < lock_timeout <= 600:
        raise CniError(INVALID_CONFIG, f"config key lockTimeout {dumps(lock_timeout)[:80]} must be 0 < seconds <= 600")
    return float(lock_timeout)


def _flag(conf: dict[str, Any], key: str) -> bool:
    value = conf.get(key, False)
    if not isinstance(value, bool):
        raise CniError(INVALID_CONFIG, f"config key {key} must be true or false, got {dumps(value)[:80]}")
    return value


def _pool(conf: dict[str, Any], selectors: Selectors) -> tuple[Candidate, ...] | None:
    """The `devices` key: candidates in order of preference, instead of one device."""
    entries = conf.get("devices")
    if entries is None:
        return None
    if not isinstance(entries, list) or not entries:
        raise CniError(INVALID_CONFIG, "config key devices must be a non-empty list of device selectors")
    both = [key for key in ("device", "hwaddr", "kernelpath", "pciBusID") if conf.get(key) not in (None, "")]
    if both:
        raise CniError(
            INVALID_CONFIG,
            f"config keys devices and {', '.join(both)} exclude each other: list the device among the devices",
        )
    pool = []
    for position, entry in enumerate(entries, 1):
        where = f"devices[{position - 1}]."
        if not isinstance(entry, dict) or not entry:
            raise CniError(
                INVALID_CONFIG,
                f"config key devices[{position - 1}] must be an object with any of {', '.join(POOL_KEYS)}",
            )
        unknown = sorted(key for key in entry if key not in POOL_KEYS)
        if unknown:
            raise CniError(
                INVALID_CONFIG,
                f"config key {where}{unknown[0]} is not a device selector (use {', '.join(POOL_KEYS)})",
            )
        candidate = Candidate(
            position,
            Selectors(
                device=_string(entry, "device", where=where),
                hwaddr=_string(entry, "hwaddr", where=where),
                kernelpath=_string(entry, "kernelpath", where=where),
                pci_bus_id=_string(entry, "pciBusID", where=where),
            ),
            name_pattern=_string(entry, "namePattern", where=where),
            driver=_string(entry, "driver", where=where),
        )
        if not (candidate.selectors.any() or candidate.name_pattern or candidate.driver):
            raise CniError(
                INVALID_CONFIG, f"config key devices[{position - 1}] selects nothing: all its keys are empty"
            )
        _validate_selectors(candidate.selectors, where)
        pool.append(candidate)
    return tuple(pool)


def _validate_selectors(sel: Selectors, where: str = "") -> None:
    if sel.device is not None:
        validate_ifname(sel.device, f"config key {where}device")
    if sel.hwaddr is not None and not is_mac(sel.hwaddr):
        raise CniError(
            INVALID_CONFIG, f"config key {where}hwaddr {sel.hwaddr!r} is not a MAC address (aa:bb:cc:dd:ee:ff)"
        )
    if sel.kernelpath is not None:
        path = sel.kernelpath
        if not path.startswith("/sys/devices/") or ".." in path.split("/"):
            raise CniError(INVALID_CONFIG, f"config key {where}kernelpath {path!r} must be a path under /sys/devices/")
    if sel.pci_bus_id is not None and not is_pci_address(sel.pci_bus_id):
        raise CniError(
            INVALID_CONFIG, f"config key {where}pciBusID {sel.pci_bus_id!r} is not a PCI address (0000:00:04.0)"
        )
    if sel.device_id is not None and not (is_pci_address(sel.device_id) or is_aux_device(sel.device_id)):
        raise CniError(
            INVALID_CONFIG, f"config key deviceID {sel.device_id!r} is not a PCI address or an auxiliary device name"
        )


def _attachments(conf: dict[str, Any]) -> tuple[tuple[str, str], ...] | None:
    key = "cni.dev/valid-attachments" if "cni.dev/valid-attachments" in conf else "cni.dev/attachments"
    if key not in conf:
        return None
    value = conf[key]
    if not isinstance(value, list):
        raise CniError(INVALID_CONFIG, f"config key {key} must be a list")
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("containerID"), str):
            raise CniError(INVALID_CONFIG, f"config key {key} has an entry without containerID: {dumps(entry)[:80]}")
        ifname = entry.get("ifname", "")
        if not isinstance(ifname, str):
            raise CniError(INVALID_CONFIG, f"config key {key} has an entry with a non-string ifname")
        out.append((entry["containerID"], ifname))
    return tuple(out)
