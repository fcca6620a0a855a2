"""Find the host device a config selects, and what sysfs knows about it.

Virtual devices have no `device` link in sysfs, and virtio NICs keep their net
directory one level below the PCI function (`.../0000:00:04.0/virtio3/net/`):
neither may break a lookup.
"""

from __future__ import annotations

import os

from cni_hostdev.config import Candidate, Selectors, normalize_pci
from cni_hostdev.errors import DEVICE_NOT_FOUND, INVALID_CONFIG, CniError
from cni_hostdev.identifiers import is_pci_name
from cni_hostdev.netlink import Link, Rtnl

SYSFS = "/sys"  # tests point this at a fake tree


def _net_names_under(device_dir: str) -> list[str]:
    """Net device names below a bus device directory, also one level down (virtioN/net)."""
    names: list[str] = []
    direct = os.path.join(device_dir, "net")
    if os.path.isdir(direct):
        names.extend(sorted(os.listdir(direct)))
    if not names:
        try:
            children = sorted(os.listdir(device_dir))
        except OSError:
            return names
        for child in children:
            nested = os.path.join(device_dir, child, "net")
            if os.path.isdir(nested) and not os.path.islink(os.path.join(device_dir, child)):
                names.extend(sorted(os.listdir(nested)))
    return names


def _one_name(names: list[str], what: str) -> str:
    if not names:
        raise CniError(DEVICE_NOT_FOUND, f"{what} has no network device (bound to a userspace driver, or no driver?)")
    if len(names) > 1:
        raise CniError(
            INVALID_CONFIG,
            f"{what} has several network devices ({', '.join(names)}); select one by device",
            about_device=True,
        )
    return names[0]


def _name_for_kernelpath(path: str) -> str:
    real = os.path.realpath(SYSFS + path[len("/sys") :])
    devices_root = os.path.join(SYSFS, "devices") + "/"
    if not real.startswith(devices_root):
        raise CniError(INVALID_CONFIG, f"config key kernelpath {path!r} resolves outside /sys/devices/")
    if not os.path.isdir(real):
        raise CniError(DEVICE_NOT_FOUND, f"kernelpath {path} does not exist")
    if os.path.basename(os.path.dirname(real)) == "net":
        return os.path.basename(real)
    return _one_name(_net_names_under(real), f"kernelpath {path}")


def _name_for_pci(address: str, key: str) -> str:
    address = normalize_pci(address)
    device_dir = os.path.join(SYSFS, "bus", "pci", "devices", address)
    if not os.path.exists(device_dir):
        raise CniError(DEVICE_NOT_FOUND, f"{key} {address}: no such PCI device")
    return _one_name(_net_names_under(os.path.realpath(device_dir)), f"{key} {address}")


def _name_for_aux(name: str) -> str:
    device_dir = os.path.join(SYSFS, "bus", "auxiliary", "devices", name)
    if not os.path.exists(device_dir):
        raise CniError(DEVICE_NOT_FOUND, f"deviceID {name}: no such PCI or auxiliary device")
    return _one_name(_net_names_under(os.path.realpath(device_dir)), f"deviceID {name}")


def pci_address_of(name: str) -> str | None:
    """The PCI function behind a host net device, or None for virtual devices."""
    link = os.path.join(SYSFS, "class", "net", name, "device")
    try:
        real = os.path.realpath(link, strict=True)
    except OSError:
        return None
    for candidate in (real, os.path.dirname(real)):
        base = os.path.basename(candidate)
        if is_pci_name(base) and "/pci" in candidate:
            return base
    return None


def driver_of(link: Link) -> str | None:
    """The kernel driver behind a host net device (mlx5_core, virtio_net); for a virtual device,
    which has none in sysfs, its kind (veth, macvlan), which is what ethtool calls its driver."""
    try:
        return os.path.basename(os.readlink(os.path.join(SYSFS, "class", "net", link.name, "device", "driver")))
    except OSError:
        return link.kind


def _kernelpath_names(path: str) -> set[str]:
    real = os.path.realpath(SYSFS + path[len("/sys") :])
    if not real.startswith(os.path.join(SYSFS, "devices") + "/") or not os.path.isdir(real):
        return set()
    if os.path.basename(os.path.dirname(real)) == "net":
        return {os.path.basename(real)}
    return set(_net_names_under(real))


def kernelpath_holds_pci(path: str, pci: str) -> bool:
    """Whether the PCI function `pci` is at or below the sysfs device `path` (its netdev may be in a pod)."""
    real = os.path.realpath(SYSFS + path[len("/sys") :]) + "/"
    return f"/{pci}/" in real


def candidate_matches(candidate: Candidate, link: Link) -> bool:
    """Whether a host device satisfies every key of a pool candidate."""
    sel = candidate.selectors
    if sel.device and link.name != sel.device:
        return False
    if sel.hwaddr and sel.hwaddr.lower() not in (link.mac, link.perm_mac):
        return False
    if candidate.name_pattern:
        import fnmatch  # pools only: it imports re

        if not fnmatch.fnmatchcase(link.name, candidate.name_pattern):
            return False
    if sel.pci_bus_id and pci_address_of(link.name) != normalize_pci(sel.pci_bus_id):
        return False
    if sel.kernelpath and link.name not in _kernelpath_names(sel.kernelpath):
        return False
    return not candidate.driver or driver_of(link) == candidate.driver


def _natural(name: str) -> list[int | str]:
    """ens9 before ens10, as a person orders them."""
    import re  # pools only

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def pool_members(rtnl: Rtnl, pool: tuple[Candidate, ...]) -> list[tuple[Candidate, Link]]:
    """The host devices a pool names, in its order of preference (within one candidate, by name);
    a device two candidates match counts once, for the first."""
    links = sorted((link for link in rtnl.links() if not link.loopback), key=lambda link: _natural(link.name))
    taken: set[int] = set()
    members: list[tuple[Candidate, Link]] = []
    for candidate in pool:
        for link in links:
            if link.index not in taken and candidate_matches(candidate, link):
                taken.add(link.index)
                members.append((candidate, link))
    return members


def driver_of_pci(address: str) -> str | None:
    try:
        return os.path.basename(os.readlink(os.path.join(SYSFS, "bus", "pci", "devices", address, "driver")))
    except OSError:
        return None


USERSPACE_DRIVERS = ("vfio-pci", "uio_pci_generic", "igb_uio")


def userspace_function(sel: Selectors) -> tuple[str, str] | None:
    """(PCI address, driver) when the selected PCI function is bound to a userspace (DPDK) driver."""
    for value in (sel.pci_bus_id, sel.device_id):
        if value and is_pci_name(normalize_pci(value)):
            address = normalize_pci(value)
            driver = driver_of_pci(address)
            if driver in USERSPACE_DRIVERS:
                return address, driver
    return None


def find_device(rtnl: Rtnl, sel: Selectors) -> Link:
    """Resolve every selector given; they must all name the same device."""
    found: list[tuple[str, Link]] = []

    def by_name(name: str, what: str) -> None:
        link = rtnl.link(name=name)
        if link is None:
            raise CniError(DEVICE_NOT_FOUND, f"{what}: no device {name!r} in the host network namespace")
        found.append((what, link))

    if sel.device:
        by_name(sel.device, f"device {sel.device}")
    if sel.hwaddr:
        wanted = sel.hwaddr.lower()
        matches = [link for link in rtnl.links() if link.mac == wanted or link.perm_mac == wanted]
        if not matches:
            raise CniError(
                DEVICE_NOT_FOUND, f"hwaddr {sel.hwaddr}: no device with this MAC in the host network namespace"
            )
        if len(matches) > 1:
            names = ", ".join(link.name for link in matches)
            raise CniError(
                INVALID_CONFIG,
                f"hwaddr {sel.hwaddr} matches several devices ({names}); select one by device",
                about_device=True,
            )
        found.append((f"hwaddr {sel.hwaddr}", matches[0]))
    if sel.kernelpath:
        by_name(_name_for_kernelpath(sel.kernelpath), f"kernelpath {sel.kernelpath}")
    if sel.pci_bus_id:
        by_name(_name_for_pci(sel.pci_bus_id, "pciBusID"), f"pciBusID {sel.pci_bus_id}")
    if sel.device_id:
        if is_pci_name(normalize_pci(sel.device_id)):
            name = _name_for_pci(sel.device_id, "deviceID")
        else:
            name = _name_for_aux(sel.device_id)
        by_name(name, f"deviceID {sel.device_id}")

    first_what, first = found[0]
    for what, link in found[1:]:
        if link.index != first.index:
            raise CniError(
                INVALID_CONFIG,
                f"selectors disagree: {first_what} is {first.name} but {what} is {link.name}",
                about_device=True,
            )
    return first
