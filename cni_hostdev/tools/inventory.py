"""`host-device inventory`: which devices of this node are free, claimed, or the host's own;
with `--config`, the devices one network config (a pool) names on this node, and who holds them."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from cni_hostdev.config import DEFAULT_DATA_DIR, Candidate, NetConf, parse_netconf
from cni_hostdev.errors import CniError
from cni_hostdev.lookup import driver_of, pci_address_of
from cni_hostdev.netlink import Rtnl
from cni_hostdev.plugin.claims import NodeNetwork, host_use
from cni_hostdev.state import every_record
from cni_hostdev.tools.configs import PLUGIN_TYPES, ConfigError, read_file

__all__ = ["ConfigError", "Entry", "collect", "collect_config", "render"]


@dataclass
class Entry:
    name: str
    mac: str
    pci: str
    driver: str
    state: str
    detail: str = ""


def collect(data_dir: str = DEFAULT_DATA_DIR) -> list[Entry]:
    from cni_hostdev import pods

    entries: list[Entry] = []
    with Rtnl() as rtnl:
        links = [link for link in rtnl.links() if not link.loopback]
        node = NodeNetwork(rtnl)
        # The rules ADD applies, so that "free" here means an ADD would take it.
        uses = {link.index: host_use(rtnl, link, node=node) for link in links}
    for link in links:
        use = uses[link.index]
        entries.append(
            Entry(
                name=link.name,
                mac=link.perm_mac or link.mac,
                pci=pci_address_of(link.name) or "",
                driver=driver_of(link) or "",
                state="host" if use else "free",
                detail=_reason(use.msg) if use else "",
            )
        )
    for record in every_record(data_dir):
        alive = pods.alive(record)
        entries.append(
            Entry(
                name=record.original_name or record.pci_address or "",
                mac=record.perm_mac or record.mac,
                pci=record.pci_address or "",
                driver="userspace" if record.kind == "userspace" else "",
                state="claimed" if alive else "stale",
                detail=f"{record.network}: container {record.container_id} netns {record.netns} as {record.ifname}"
                + ("" if alive else " (netns gone: DEL or GC will repair)"),
            )
        )
    return entries


def configs_in(path: str, types: tuple[str, ...] = PLUGIN_TYPES) -> list[dict[str, Any]]:
    """Our configs in a file (netconf, conflist, NADs; JSON or YAML): at least one."""
    found = [definition.config for definition in read_file(path, types)]
    if not found:
        raise ConfigError(
            f"{path} has no host-device network config (a netconf, conflist or NAD of type {' or '.join(types)})"
        )
    return found


def collect_config(path: str, types: tuple[str, ...] = PLUGIN_TYPES) -> list[Entry]:
    """The devices the config names on this node, in its order of preference, free or by whom held."""
    from cni_hostdev.plugin import pool

    entries: list[Entry] = []
    for raw in configs_in(path, types):
        try:
            conf = parse_netconf(raw, "ADD")
        except CniError as err:
            raise ConfigError(f"{path}: {err.msg}") from None
        if conf.pool is None:
            conf.pool = as_pool(conf, path)
        with Rtnl() as rtnl:
            members = pool.survey(conf, rtnl, every_record(conf.data_dir))
        for member in members:
            where = f"{conf.name} devices[{member.candidate.position - 1}] ({member.candidate.describe()})"
            entries.append(
                Entry(
                    name=member.name or "-",
                    mac=member.mac,
                    pci=member.pci or "",
                    driver=member.driver or "",
                    state=member.state,
                    detail=where if member.state == pool.FREE else f"{where}: {_reason(member.why)}",
                )
            )
    return entries


def as_pool(conf: NetConf, path: str) -> tuple[Candidate, ...]:
    """A single-device config as a pool of one. A deviceID stands for its PCI function; an
    auxiliary device has no selector a survey can match."""
    sel = conf.selectors
    pci = sel.pci_bus_id
    if sel.device_id and not (sel.device or sel.hwaddr or sel.kernelpath or pci) and ":" not in sel.device_id:
        raise ConfigError(f"{path}: deviceID {sel.device_id} is an auxiliary device, which inventory cannot list")
    return conf.candidates()


def _reason(why: str) -> str:
    """A member's reason without the device name the row already shows."""
    return why.split(" is ", 1)[1] if why.startswith("device ") and " is " in why else why


def render(entries: list[Entry], as_json: bool) -> str:
    if as_json:
        return json.dumps([asdict(e) for e in entries], indent=2)
    header = Entry("NAME", "MAC", "PCI", "DRIVER", "STATE", "DETAIL")
    rows = [header, *entries]
    widths = [max(len(getattr(r, f)) for r in rows) for f in ("name", "mac", "pci", "driver", "state")]
    lines = []
    for r in rows:
        cells = [getattr(r, f).ljust(w) for f, w in zip(("name", "mac", "pci", "driver", "state"), widths, strict=True)]
        lines.append("  ".join([*cells, r.detail]).rstrip())
    return "\n".join(lines)
