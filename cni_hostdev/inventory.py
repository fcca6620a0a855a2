"""`host-device inventory`: which devices of this node are free, claimed, or the host's own."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass

from cni_hostdev import lookup
from cni_hostdev.config import DEFAULT_DATA_DIR
from cni_hostdev.lookup import pci_address_of
from cni_hostdev.netlink import Link, Rtnl
from cni_hostdev.state import StateStore, networks


@dataclass
class Entry:
    name: str
    mac: str
    pci: str
    driver: str
    state: str
    detail: str = ""


def _driver(name: str) -> str:
    try:
        return os.path.basename(os.readlink(os.path.join(lookup.SYSFS, "class", "net", name, "device", "driver")))
    except OSError:
        return ""


def _host_use(link: Link, names: dict[int, str], uplinks: set[int], addresses: dict[int, list[str]]) -> str:
    if link.kind == "bridge":
        return "bridge (netns-local)"
    if link.master:
        return f"port of {names.get(link.master, link.master)}"
    if link.index in uplinks:
        return "uplink (default route)"
    if link.index in addresses:
        return f"address {addresses[link.index][0]}"
    return ""


def collect(data_dir: str = DEFAULT_DATA_DIR) -> list[Entry]:
    from cni_hostdev import pods

    entries: list[Entry] = []
    with Rtnl() as rtnl:
        links = [link for link in rtnl.links() if not link.loopback]
        routes = rtnl.default_routes()
        uplinks = {link.index for link in links if rtnl.uplink_route(link.index, routes)}  # the rule ADD applies
        addresses = rtnl.global_addresses()
    names = {link.index: link.name for link in links}
    for link in links:
        use = _host_use(link, names, uplinks, addresses)
        entries.append(
            Entry(
                name=link.name,
                mac=link.perm_mac or link.mac,
                pci=pci_address_of(link.name) or "",
                driver=_driver(link.name) or (link.kind or ""),
                state="host" if use else "free",
                detail=use,
            )
        )
    for network in networks(data_dir):
        for record in StateStore(data_dir, network).all():
            alive = pods.alive(record)
            entries.append(
                Entry(
                    name=record.original_name or record.pci_address or "",
                    mac=record.perm_mac or record.mac,
                    pci=record.pci_address or "",
                    driver="userspace" if record.kind == "userspace" else "",
                    state="claimed" if alive else "stale",
                    detail=f"{network}: container {record.container_id} netns {record.netns} as {record.ifname}"
                    + ("" if alive else " (netns gone: DEL or GC will repair)"),
                )
            )
    return entries


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
