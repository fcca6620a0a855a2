"""Whether a device is the one a record took: one rule, by where the device is and what proves it.

A name, an alias or an ifindex can be given to another device; what a record can rely on depends
on where it looks. Proofs, strongest first; a proof both sides hold decides, for or against (the
same MAC behind another PCI function is another device), and a weaker one is asked only when
the stronger cannot be:

- HOST, the node's namespace (where DEL sends the device, and where the kernel refunds a physical
  NIC whose pod died, under its pod name or devN, maybe with another ifindex): its PCI function;
  its permanent MAC; its MAC with our marker (its original name as its alias) or with its
  original name.
- POD, a namespace proven the record's own (by its cookie: cni_hostdev/pods.py): its permanent MAC;
  its ifindex there with its MAC or our marker; its MAC with our marker.
- STAGING, the private netns of an interrupted rename-then-move, where nothing else lives: as in
  the pod, else its original name.

Never a name or an alias alone, but in our own staging netns. The per-device lock is keyed by
the same facts (`lock_key`), and which recorded device a config's selector means is
`selected_by`, comparing like with like.
"""

from __future__ import annotations

from cni_hostdev.identifiers import device_keys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from cni_hostdev.config import Candidate
    from cni_hostdev.netlink import Link
    from cni_hostdev.state import Record

HOST, POD, STAGING = "host", "pod", "staging"


def proof(record: Record, link: Link, where: str, pci: str | None = None) -> str | None:
    """What proves `link`, seen in `where`, to be the record's device (None: nothing does).
    `pci` is the link's PCI function where known (sysfs shows it only in the host)."""
    if where == HOST:
        if record.pci_address and pci:
            return "its PCI function" if pci == record.pci_address else None
        if record.perm_mac and link.perm_mac:
            return "its permanent MAC" if link.perm_mac == record.perm_mac else None
        if link.mac == record.mac and record.original_name in (link.alias, link.name):
            return "its MAC and our marker" if link.alias == record.original_name else "its MAC and its name"
        return None
    if record.perm_mac:
        return "its permanent MAC" if link.perm_mac == record.perm_mac else None
    marked = link.alias == record.original_name
    if link.index == record.ifindex and (link.mac == record.mac or marked):
        return "its ifindex and its MAC" if link.mac == record.mac else "its ifindex and our marker"
    if marked and link.mac == record.mac:
        return "its MAC and our marker"
    if where == STAGING and link.name == record.original_name:
        return "its original name, in our own staging netns"
    return None


def find(
    record: Record, links: Iterable[Link], where: str, pci_of: Callable[[Link], str | None] | None = None
) -> Link | None:
    """The record's device among `links` (not loopback), by the strongest proof any of them gives."""
    candidates = [link for link in links if not link.loopback]
    best: tuple[int, Link] | None = None
    for link in candidates:
        pci = pci_of(link) if pci_of is not None and record.pci_address else None
        found = proof(record, link, where, pci)
        if found is None:
            continue
        rank = _STRENGTH.index(found)
        if best is None or rank < best[0]:
            best = (rank, link)
    return best[1] if best else None


_STRENGTH = (
    "its PCI function",
    "its permanent MAC",
    "its ifindex and its MAC",
    "its ifindex and our marker",
    "its MAC and our marker",
    "its MAC and its name",
    "its original name, in our own staging netns",
)


def lock_key(pci: str | None, perm_mac: str | None, mac: str) -> str:
    """The per-device lock's key: the most stable fact the device has, the first of the keys the
    record index files it under (never its name, which the kernel changes when it refunds a device)."""
    return (device_keys(pci, perm_mac, mac) or [f"addr-{mac}"])[0]


def record_lock_key(record: Record) -> str:
    """The lock of a recorded device: the key its ADD took it under."""
    return lock_key(record.pci_address, record.perm_mac, record.mac)


def selected_by(candidate: Candidate, record: Record, kernelpath_holds: Callable[[str, str], bool]) -> bool:
    """Whether a recorded device (in a pod now, invisible here) is one a config's selector means:
    each key against what the record knows of the device, like with like (a name with its
    original name, a MAC with its MACs, a PCI address with its PCI function)."""
    if record.kind == "userspace":
        return selects_function(candidate, record.pci_address or "", None, kernelpath_holds)
    return _matches(
        candidate,
        record.original_name,
        (record.mac, record.perm_mac),
        record.pci_address,
        record.driver,
        kernelpath_holds,
    )


def selects_function(
    candidate: Candidate, pci: str, driver: str | None, kernelpath_holds: Callable[[str, str], bool]
) -> bool:
    """Whether a PCI function without a net device (bound to vfio-pci, say) is one a selector means:
    a selector with a name or MAC can only mean a net device."""
    return _matches(candidate, None, (), pci, driver, kernelpath_holds)


def _matches(
    candidate: Candidate,
    name: str | None,
    macs: tuple[str | None, ...],
    pci: str | None,
    driver: str | None,
    kernelpath_holds: Callable[[str, str], bool],
) -> bool:
    from cni_hostdev.config import normalize_pci

    sel = candidate.selectors
    checks = (
        not sel.device or name == sel.device,
        not sel.hwaddr or sel.hwaddr.lower() in macs,
        not candidate.name_pattern or (name is not None and _fits(name, candidate.name_pattern)),
        not sel.pci_bus_id or pci == normalize_pci(sel.pci_bus_id),
        not sel.kernelpath or bool(pci and kernelpath_holds(sel.kernelpath, pci)),
        not candidate.driver or driver == candidate.driver,
    )
    return all(checks)


def _fits(name: str, pattern: str) -> bool:
    import fnmatch  # pools only: it imports re

    return fnmatch.fnmatchcase(name, pattern)
