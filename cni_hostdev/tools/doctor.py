"""`host-device doctor`: this node's host-device networks checked against each other, against what
the host uses, and against the state directory, so that what would fail a pod here is found
before a pod is scheduled. Network definitions are cluster-wide, bindings are node-local: every
finding names the node, the network(s) and the device. It reads; it never changes anything.
"""

from __future__ import annotations

import os
import stat
from typing import Any

from cni_hostdev import pods, record_index
from cni_hostdev.config import NetConf, parse_netconf
from cni_hostdev.errors import CniError, node_name
from cni_hostdev.netlink import Rtnl
from cni_hostdev.plugin import pool
from cni_hostdev.plugin.waiting import every_waiting, find_home
from cni_hostdev.state import RECORD_SUFFIX, SET_ASIDE_SUFFIX, StateStore, every_record, networks, record_files
from cni_hostdev.tools.configs import PLUGIN_TYPES, ConfigError, Definition, read_dir, read_file
from cni_hostdev.tools.inventory import as_pool

ERROR, WARNING, INFO = "error", "warning", "info"
DEFAULT_CONF_DIR = "/etc/cni/net.d"


class CannotRun(Exception):
    """The checks could not run at all (exit status 2)."""


class Finding:
    __slots__ = ("device", "kind", "message", "networks", "severity")

    def __init__(
        self, severity: str, kind: str, message: str, networks: tuple[str, ...] = (), device: str = ""
    ) -> None:
        self.severity = severity
        self.kind = kind
        self.message = message
        self.networks = networks
        self.device = device

    def key(self) -> tuple[str, str, str]:
        return (self.severity, self.kind, self.message)

    def to_json(self) -> dict[str, Any]:
        return {
            "severity": self.severity,
            "kind": self.kind,
            "node": node_name(),
            "networks": list(self.networks),
            "device": self.device,
            "message": self.message,
        }


class Report:
    __slots__ = ("findings", "networks")

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        self.networks: list[tuple[str, str]] = []  # (name, where it is defined)

    def add(self, *args: Any, **kwargs: Any) -> None:
        self.findings.append(Finding(*args, **kwargs))

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def status(self) -> int:
        return 1 if self.count(ERROR) else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "node": node_name(),
            "errors": self.count(ERROR),
            "warnings": self.count(WARNING),
            "networks": [{"name": name, "origin": origin} for name, origin in self.networks],
            "findings": [f.to_json() for f in self.findings],
        }

    def render(self) -> str:
        head = (
            f"host-device doctor on node {node_name()}: {len(self.networks)} host-device network(s), "
            f"{self.count(ERROR)} error(s), {self.count(WARNING)} warning(s)"
        )
        order = {ERROR: 0, WARNING: 1, INFO: 2}
        findings = sorted(self.findings, key=lambda f: order[f.severity])
        return "\n".join([head, *(f"{f.severity.upper():8}{f.kind:18}{f.message}" for f in findings)])


def definitions(
    conf_dirs: list[str], config_files: list[str], report: Report, types: tuple[str, ...] = PLUGIN_TYPES
) -> list[Definition]:
    """The host-device networks of the given dirs and files (the node's CNI config dir by default)."""
    found: list[Definition] = []
    for directory in conf_dirs or ([] if config_files else [DEFAULT_CONF_DIR]):
        try:
            in_dir, problems = read_dir(directory, types)
        except OSError as err:
            raise CannotRun(f"cannot read CNI config dir {directory}: {err.strerror}") from None
        found += in_dir
        for problem in problems:
            report.add(ERROR, "unreadable-config", f"{problem} (on node {node_name()})")
    for path in config_files:
        try:
            found += read_file(path, types)
        except ConfigError as err:
            report.add(ERROR, "unreadable-config", f"{err} (on node {node_name()})")
    return found


def examine(found: list[Definition], data_dir: str, report: Report) -> None:
    """Every check, into `report`."""
    parsed = _parse(found, report)
    try:
        if os.path.isdir(data_dir):
            os.listdir(data_dir)  # a state dir we cannot read would look clean
        records = every_record(data_dir, quiet=True)
        with Rtnl() as rtnl:
            surveyed = [(conf, origin, pool.survey(conf, rtnl, records)) for conf, origin in parsed]
    except OSError as err:
        raise CannotRun(f"cannot read this node's devices or {data_dir}: {err.strerror or err}") from None
    _shared(surveyed, report)
    for conf, _, members in surveyed:
        _availability(conf, members, report)
    _records(data_dir, report)
    _waiting(data_dir, report)
    _index(data_dir, report)
    _data_dir(data_dir, report)
    _probe(report)


def _parse(found: list[Definition], report: Report) -> list[tuple[NetConf, str]]:
    parsed: list[tuple[NetConf, str]] = []
    for definition in found:
        report.networks.append((definition.network, definition.origin))
        try:
            conf = parse_netconf(definition.config, "DEL")  # DEL: a selector may come at run time
            if conf.pool is None and not conf.selectors.any():
                report.add(
                    INFO,
                    "runtime-selection",
                    f"network {conf.name} ({definition.origin}) selects its device at run time (a deviceID "
                    "from Multus or a device plugin): nothing to check on node " + node_name(),
                    (conf.name,),
                )
                continue
            conf.pool = conf.pool or as_pool(conf, definition.origin)
        except ConfigError as err:  # a valid config whose device a survey cannot find (an auxiliary one)
            report.add(INFO, "cannot-survey", f"network {definition.network}: {err} (on node {node_name()})")
            continue
        except CniError as err:
            report.add(ERROR, "invalid-config", f"network {definition.network} ({definition.origin}): {err.msg}")
            continue
        parsed.append((conf, definition.origin))
    return parsed


def _identity(member: pool.Member) -> str | None:
    """What makes two members one device: its PCI function, else its (permanent) MAC."""
    if member.state == pool.ABSENT:
        return None
    return f"pci {member.pci}" if member.pci else f"mac {member.mac}" if member.mac else None


def _shared(surveyed: list[tuple[NetConf, str, list[pool.Member]]], report: Report) -> None:
    """Two networks that bind one device: the second pod of them fails on this node. Networks are
    told apart by where they are defined too: two NADs of one name in two namespaces are two."""
    binders: dict[str, dict[tuple[str, str], pool.Member]] = {}
    for conf, origin, members in surveyed:
        for member in members:
            identity = _identity(member)
            if identity is not None:
                binders.setdefault(identity, {}).setdefault((conf.name, origin), member)
    for identity, by_definition in binders.items():
        if len(by_definition) < 2:
            continue
        by_network = {name: member for (name, _), member in by_definition.items()}
        names = tuple(sorted({name for name, _ in by_definition}))
        first = next(iter(by_network.values()))
        how = "; ".join(
            f"{n}: devices[{m.candidate.position - 1}] {m.candidate.describe()}" for n, m in by_network.items()
        )
        report.add(
            ERROR,
            "shared-device",
            f"networks {', '.join(names)} all bind device {first.name} ({identity}) on node {node_name()} ({how})",
            names,
            first.name,
        )


def _availability(conf: NetConf, members: list[pool.Member], report: Report) -> None:
    """A single device the host uses; a network with no device here; a pool with none free."""
    assert conf.pool is not None
    single = len(conf.pool) == 1 and not (conf.pool[0].name_pattern or conf.pool[0].driver)
    for member in members:
        if single and member.state == pool.HOST:
            report.add(
                ERROR,
                "in-use-by-host",
                f"network {conf.name}: {member.why} on node {node_name()}",
                (conf.name,),
                member.name,
            )
    if all(m.state == pool.ABSENT for m in members):
        described = "; ".join(f"devices[{c.position - 1}]: {c.describe()}" for c in conf.pool)
        report.add(
            WARNING,
            "absent",
            f"network {conf.name} names no device present on node {node_name()} ({described})",
            (conf.name,),
        )
    elif not single and not any(m.state == pool.FREE for m in members):
        reasons = "; ".join(m.why for m in members)
        report.add(
            WARNING,
            "pool-exhausted",
            f"network {conf.name} has no free device on node {node_name()}: {reasons}",
            (conf.name,),
        )


def _records(data_dir: str, report: Report) -> None:
    """Attachments of dead pods waiting to be given back, and records that cannot be read."""
    for record in every_record(data_dir, quiet=True):
        if not pods.alive(record):
            device = record.original_name or record.pci_address or "?"
            if record.kind == "userspace":
                outcome = "DEL, GC or repair will release its claim"
            elif record.pci_address:
                outcome = "DEL, GC or repair will give it back"
            else:  # a veth, macvlan, vlan ... is destroyed with its netns rather than refunded
                outcome = "DEL, GC or repair will give it back, or forget it if it died with the netns"
            report.add(
                WARNING,
                "stale-record",
                f"network {record.network}: container {record.container_id} ({record.ifname}) holds device {device} on "
                f"node {node_name()}, but its netns {record.netns} is gone: {outcome}",
                (record.network,),
                device,
            )
    for network in networks(data_dir):
        store = StateStore(data_dir, network)
        try:
            names = sorted(os.listdir(store.dir))
        except FileNotFoundError:
            continue  # removed since it was listed
        for name in names:
            path = os.path.join(store.dir, name)
            if name.endswith(RECORD_SUFFIX):
                try:
                    store.load_path(path)
                except CniError as err:
                    where = f"(on node {node_name()}); a DEL of its attachment sets it aside"
                    report.add(ERROR, "unreadable-record", f"{err.msg} {where}", (network,))
            elif SET_ASIDE_SUFFIX in name:
                report.add(
                    WARNING,
                    "set-aside-record",
                    f"{path}: a record DEL could not read, kept for inspection (on node {node_name()})",
                    (network,),
                )


def _waiting(data_dir: str, report: Report) -> None:
    """Devices home under another name while theirs is taken (cni_hostdev/plugin/waiting.py)."""
    records = every_waiting(data_dir)
    if not records:
        return
    with Rtnl() as rtnl:
        for record in records:
            link = find_home(rtnl, record)
            holder = rtnl.link(name=record.original_name)
            where = f"is home as {link.name}" if link is not None else "is no longer in the host (repair forgets it)"
            taken = (
                f"{record.original_name} is held by ifindex {holder.index} (MAC {holder.mac})"
                if holder is not None and (link is None or holder.index != link.index)
                else f"{record.original_name} is free now"
            )
            report.add(
                WARNING,
                "waiting-for-name",
                f"network {record.network}: device {record.original_name} (MAC {record.mac}) of container "
                f"{record.container_id} {where} on node {node_name()}, waiting for its name: {taken}; "
                "host-device repair gives it back once free",
                (record.network,),
                record.original_name,
            )


def _index(data_dir: str, report: Report) -> None:
    """The record index against the records (cni_hostdev/record_index.py): every ADD, DEL, GC and
    repair pass sets it right; what is out of step now is only said."""
    lacking, stale, wrong = [], [], []
    knowns = {network: record_index.known(data_dir, network) for network in networks(data_dir)}
    for network, known in knowns.items():
        files = set(record_files(data_dir, network))
        lacking += [f"{network}/{n}" for n in sorted(files - set(known))]
        stale += [f"{network}/{n}" for n in sorted(set(known) - files)]
    filings = record_index.every_filing(data_dir)
    for record in every_record(data_dir, quiet=True):
        keys = knowns.get(record.network, {}).get(record.file_name())
        unfiled = [key for key in record.keys() if (key, record.network, record.file_name()) not in filings]
        if keys is not None and (keys != record.keys() or unfiled):
            wrong.append(f"{record.network}/{record.file_name()}")
    for what, entries in (
        ("are not in the record index yet", lacking),
        ("are gone but still indexed", stale),
        ("are indexed under keys their devices do not have", wrong),
    ):
        if entries:
            report.add(
                INFO,
                "index",
                f"{len(entries)} state record(s) of {data_dir} on node {node_name()} {what} "
                f"({', '.join(entries[:3])}): the next ADD or repair pass sets the index right",
            )


def _data_dir(data_dir: str, report: Report) -> None:
    """The state directory: root's, and writable by no one else (a planted record could name any device)."""
    try:
        info = os.lstat(data_dir)
    except FileNotFoundError:
        report.add(
            INFO, "data-dir", f"{data_dir} does not exist yet on node {node_name()}: no attachment was ever recorded"
        )
        return
    problems = []
    if not stat.S_ISDIR(info.st_mode):
        problems.append("is not a directory")
    if info.st_uid != 0:
        problems.append(f"is owned by uid {info.st_uid}, not root")
    if info.st_mode & 0o022:
        problems.append(f"is writable by group or others (mode {stat.S_IMODE(info.st_mode):04o})")
    if problems:
        report.add(ERROR, "data-dir", f"state directory {data_dir} on node {node_name()} {' and '.join(problems)}")


def _probe(report: Report) -> None:
    from cni_hostdev.probe import read_cache

    cached = read_cache()
    if cached is None:
        report.add(
            INFO, "probe", f"node {node_name()} not probed yet this boot (the first ADD or `host-device probe` does)"
        )
        return
    atomic = (
        "moves and renames in one message"
        if cached.atomicMoveRename
        else "rename-then-move (no atomic move and rename)"
    )
    report.add(
        INFO,
        "probe",
        f"node {node_name()}, kernel {cached.kernel}: {atomic}; live rename {'yes' if cached.liveRename else 'no'}",
    )
