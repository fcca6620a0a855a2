"""Device lookup by PCI address, kernel path and deviceID, over a fake sysfs tree naming real veths.

Real PCI NICs live in the conformance VMs; here the sysfs layout (including the
virtio nesting `0000:00:04.0/virtio3/net/NAME`) is reproduced in a temp dir.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cni_hostdev import lookup
from cni_hostdev.config import Selectors
from cni_hostdev.errors import CniError
from cni_hostdev.netlink import Rtnl
from tests.conftest import Sandbox


@pytest.fixture
def fake_sysfs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "sys"
    monkeypatch.setattr(lookup, "SYSFS", str(root))
    return root


@pytest.fixture
def rtnl() -> Iterator[Rtnl]:
    with Rtnl() as sock:
        yield sock


def _pci_function(root: Path, address: str, netdev: str, *, virtio: bool) -> Path:
    function = root / "devices" / "pci0000:00" / address
    net_parent = function / "virtio3" if virtio else function
    (net_parent / "net" / netdev).mkdir(parents=True)
    bus = root / "bus" / "pci" / "devices"
    bus.mkdir(parents=True, exist_ok=True)
    os.symlink(function, bus / address)
    cls = root / "class" / "net" / netdev
    cls.mkdir(parents=True)
    os.symlink(net_parent, cls / "device")
    return function


@pytest.mark.parametrize("virtio", [False, True], ids=["plain", "virtio-nested"])
def test_pci_selectors_find_the_net_device(fake_sysfs: Path, rtnl: Rtnl, sandbox: Sandbox, virtio: bool) -> None:
    dev, _ = sandbox.veth()
    _pci_function(fake_sysfs, "0000:00:04.0", dev, virtio=virtio)
    for sel in (
        Selectors(pci_bus_id="0000:00:04.0"),
        Selectors(pci_bus_id="00:04.0"),
        Selectors(device_id="0000:00:04.0"),
        Selectors(kernelpath="/sys/devices/pci0000:00/0000:00:04.0"),
        Selectors(device=dev, pci_bus_id="0000:00:04.0"),
    ):
        assert lookup.find_device(rtnl, sel).name == dev, sel
    assert lookup.pci_address_of(dev) == "0000:00:04.0"


def test_auxiliary_device_id(fake_sysfs: Path, rtnl: Rtnl, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    sf = fake_sysfs / "devices" / "pci0000:00" / "0000:00:06.0" / "mlx5_core.sf.4"
    (sf / "net" / dev).mkdir(parents=True)
    aux = fake_sysfs / "bus" / "auxiliary" / "devices"
    aux.mkdir(parents=True)
    os.symlink(sf, aux / "mlx5_core.sf.4")
    assert lookup.find_device(rtnl, Selectors(device_id="mlx5_core.sf.4")).name == dev


def test_pci_function_without_netdev_says_so(fake_sysfs: Path, rtnl: Rtnl) -> None:
    function = fake_sysfs / "devices" / "pci0000:00" / "0000:00:05.0"
    function.mkdir(parents=True)
    (fake_sysfs / "bus" / "pci" / "devices").mkdir(parents=True)
    os.symlink(function, fake_sysfs / "bus" / "pci" / "devices" / "0000:00:05.0")
    with pytest.raises(CniError) as err:
        lookup.find_device(rtnl, Selectors(pci_bus_id="0000:00:05.0"))
    assert err.value.code == 100 and "0000:00:05.0" in err.value.msg


def test_kernelpath_symlink_escaping_sysfs_devices_is_refused(fake_sysfs: Path, rtnl: Rtnl, tmp_path: Path) -> None:
    (fake_sysfs / "devices").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", fake_sysfs / "devices" / "sneaky")
    with pytest.raises(CniError) as err:
        lookup.find_device(rtnl, Selectors(kernelpath="/sys/devices/sneaky"))
    assert err.value.code == 7 and "/sys/devices/sneaky" in err.value.msg


def test_virtual_device_has_no_pci_address(rtnl: Rtnl, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    assert lookup.pci_address_of(dev) is None
