"""cni_hostdev/identity.py as a table: a device in each place, with each proof there or missing,
and the confusing ones (the same MAC behind another PCI function, the same name with another MAC,
the alias of another record, a refunded NIC renamed devN)."""

from __future__ import annotations

from typing import Any

import pytest

from cni_hostdev import identity
from cni_hostdev.config import Candidate, Selectors
from cni_hostdev.identity import HOST, POD, STAGING
from cni_hostdev.netlink import Link
from cni_hostdev.state import Record

MAC, OTHER_MAC, PERM, OTHER_PERM = "02:00:00:00:00:01", "02:00:00:00:00:02", "0c:00:00:00:00:01", "0c:00:00:00:00:02"
PCI, OTHER_PCI = "0000:00:04.0", "0000:00:05.0"


def record(**given: Any) -> Record:
    fields: dict[str, Any] = {
        "network": "tnet", "container_id": "c1", "ifname": "net1", "netns": "/run/netns/p1",
        "original_name": "ens4", "original_alias": None, "mac": MAC, "perm_mac": None, "mtu": 1500,
        "was_up": True, "ifindex": 7, "pci_address": None,
    }  # fmt: skip
    fields.update(given)
    return Record(**fields)


def link(name: str = "ens4", index: int = 7, mac: str = MAC, perm: str | None = None, alias: str | None = None) -> Link:
    return Link(index, name, 0, 1500, mac, perm, alias, None, None, None, None)


CASES = [
    # (where, record, device, its PCI in the host, the proof expected or None)
    ("host: never moved, its name and MAC", HOST, record(), link(), None, "its MAC and its name"),
    (
        "host: refunded under its pod name, marked",
        HOST,
        record(),
        link("net1", 12, alias="ens4"),
        None,
        "its MAC and our marker",
    ),
    (
        "host: refunded and renamed devN, marked",
        HOST,
        record(),
        link("dev3", 13, alias="ens4"),
        None,
        "its MAC and our marker",
    ),
    ("host: the same name with another MAC", HOST, record(), link(mac=OTHER_MAC), None, None),
    ("host: the same MAC, another name, no marker", HOST, record(), link("eth9"), None, None),
    ("host: the alias of another record", HOST, record(), link("net1", alias="ens5"), None, None),
    (
        "host: by PCI function under any name",
        HOST,
        record(pci_address=PCI),
        link("net1", mac=OTHER_MAC),
        PCI,
        "its PCI function",
    ),
    (
        "host: the same MAC behind another PCI function",
        HOST,
        record(pci_address=PCI),
        link(alias="ens4"),
        OTHER_PCI,
        None,
    ),
    (
        "host: PCI recorded, the device's unknown: its MAC",
        HOST,
        record(pci_address=PCI),
        link(alias="ens4"),
        None,
        "its MAC and our marker",
    ),
    (
        "host: by permanent MAC under any name",
        HOST,
        record(perm_mac=PERM),
        link("x", mac=OTHER_MAC, perm=PERM),
        None,
        "its permanent MAC",
    ),
    (
        "host: another permanent MAC, same MAC and marker",
        HOST,
        record(perm_mac=PERM),
        link(perm=OTHER_PERM, alias="ens4"),
        None,
        None,
    ),
    ("pod: by permanent MAC", POD, record(perm_mac=PERM), link("net1", 30, OTHER_MAC, PERM), None, "its permanent MAC"),
    ("pod: permanent MAC recorded, not there", POD, record(perm_mac=PERM), link("net1", alias="ens4"), None, None),
    ("pod: its ifindex and MAC", POD, record(), link("net1"), None, "its ifindex and its MAC"),
    (
        "pod: its ifindex and marker, MAC changed",
        POD,
        record(),
        link("net1", mac=OTHER_MAC, alias="ens4"),
        None,
        "its ifindex and our marker",
    ),
    (
        "pod: MAC and marker, another ifindex",
        POD,
        record(),
        link("net1", 40, alias="ens4"),
        None,
        "its MAC and our marker",
    ),
    ("pod: the same name and ifindex, another MAC, no marker", POD, record(), link("net1", mac=OTHER_MAC), None, None),
    ("pod: the alias of another record", POD, record(), link("net1", 40, alias="ens5"), None, None),
    ("pod: its original name alone", POD, record(), link("ens4", 40, OTHER_MAC), None, None),
    (
        "staging: its original name alone",
        STAGING,
        record(),
        link("ens4", 40, OTHER_MAC),
        None,
        "its original name, in our own staging netns",
    ),
]


@pytest.mark.parametrize(
    ("where", "rec", "device", "pci", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_proof(where: str, rec: Record, device: Link, pci: str | None, expected: str | None) -> None:
    assert identity.proof(rec, device, where, pci) == expected


def test_find_takes_the_strongest_proof_and_skips_loopback() -> None:
    rec = record(perm_mac=None)
    weak = link("net1", 40, alias="ens4")  # MAC and marker
    strong = link("net2", 7)  # ifindex and MAC
    loopback = Link(7, "lo", 0x8, 65536, MAC, None, "ens4", None, None, None, None)
    assert identity.find(rec, [loopback, weak, strong], POD) is strong
    assert identity.find(rec, [link("net1", mac=OTHER_MAC)], POD) is None


def test_find_in_the_host_asks_sysfs_for_the_pci_function_only_when_recorded() -> None:
    asked: list[str] = []

    def pci_of(device: Link) -> str | None:
        asked.append(device.name)
        return PCI if device.name == "net1" else None

    found = identity.find(
        record(pci_address=PCI), [link("eth9", mac=OTHER_MAC), link("net1", 20, OTHER_MAC)], HOST, pci_of
    )
    assert found is not None and found.name == "net1"
    asked.clear()
    identity.find(record(), [link()], HOST, pci_of)
    assert asked == []


@pytest.mark.parametrize(
    ("pci", "perm", "mac", "key"),
    [(PCI, PERM, MAC, f"pci-{PCI}"), (None, PERM, MAC, f"mac-{PERM}"), (None, None, MAC, f"addr-{MAC}")],
)
def test_lock_keys_use_the_most_stable_fact(pci: str | None, perm: str | None, mac: str, key: str) -> None:
    assert identity.lock_key(pci, perm, mac) == key
    assert identity.record_lock_key(record(pci_address=pci, perm_mac=perm, mac=mac)) == key


def holds(path: str, pci: str) -> bool:
    return path.endswith(pci)


@pytest.mark.parametrize(
    ("selectors", "rec", "selected"),
    [
        (Selectors(device="ens4"), record(), True),
        (Selectors(device="net1"), record(), False),  # its pod name is not the name the config means
        (Selectors(hwaddr=PERM.upper()), record(perm_mac=PERM, mac=OTHER_MAC), True),
        (Selectors(hwaddr=OTHER_MAC), record(), False),
        (Selectors(pci_bus_id="00:04.0"), record(pci_address=PCI), True),
        (Selectors(pci_bus_id="00:05.0"), record(pci_address=PCI), False),
        (Selectors(kernelpath=f"/sys/devices/pci0000:00/{PCI}"), record(pci_address=PCI), True),
        (Selectors(device="ens4", hwaddr=OTHER_MAC), record(), False),  # every key must hold
        (Selectors(pci_bus_id="00:04.0"), record(kind="userspace", original_name="", mac="", pci_address=PCI), True),
        (Selectors(device="ens4"), record(kind="userspace", original_name="", mac="", pci_address=PCI), False),
    ],
)
def test_which_recorded_device_a_selector_means(selectors: Selectors, rec: Record, selected: bool) -> None:
    assert identity.selected_by(Candidate(1, selectors), rec, holds) is selected


def test_a_name_pattern_and_a_driver_select_like_with_like() -> None:
    rec = record(driver="mlx5_core")
    assert identity.selected_by(Candidate(1, Selectors(), name_pattern="ens*", driver="mlx5_core"), rec, holds)
    assert not identity.selected_by(Candidate(1, Selectors(), name_pattern="net*"), rec, holds)
