"""Who uses a device: the host (a bridge, a port, the uplink, its addresses) or a live attachment.

The refusals say which device, why, and by whom; the node is added where they are reported.
"""

from __future__ import annotations

from cni_hostdev.errors import DEVICE_IN_USE, CniError
from cni_hostdev.netlink import Link, Rtnl
from cni_hostdev.state import Record

_ALLOW_HINT = 'set "allowHostAddresses": true to move it anyway'


class NodeNetwork:
    """The node's default routes and global addresses, dumped once for a survey of many devices."""

    __slots__ = ("addresses", "routes")

    def __init__(self, rtnl: Rtnl) -> None:
        self.routes = rtnl.default_routes()
        self.addresses = rtnl.global_addresses()


def host_use(
    rtnl: Rtnl,
    device: Link,
    *,
    allow_host_addresses: bool = False,
    own_network_goes_along: bool = False,
    node: NodeNetwork | None = None,
) -> CniError | None:
    """Why the host needs `device`, as the refusal to give; None when it is free to move.

    `own_network_goes_along` (useInterfaceNetwork): its own addresses move with it and are no
    reason to keep it, but the node's default route through it still is. `node`: the node's
    routes and addresses when the caller has them already (else dumps filtered to the device).
    """
    if device.loopback:
        return CniError(DEVICE_IN_USE, f"device {device.name} is the loopback device and cannot be moved")
    if device.kind == "bridge":
        return CniError(
            DEVICE_IN_USE, f"device {device.name} is a bridge: bridges are netns-local and cannot change namespace"
        )
    if device.master:
        master = rtnl.link(index=device.master)
        master_name = master.name if master else f"ifindex {device.master}"
        kind = f" ({master.kind})" if master and master.kind else ""
        return CniError(DEVICE_IN_USE, f"device {device.name} is in use: it is a port of {master_name}{kind}")
    if allow_host_addresses:
        return None
    uplink = rtnl.uplink_route(device.index, node.routes if node else None)
    if uplink is not None:
        return CniError(
            DEVICE_IN_USE,
            f"device {device.name} is in use by the host as its uplink: it carries the node's {uplink.describe()}",
            _ALLOW_HINT,
        )
    if own_network_goes_along:
        return None
    addresses = (node.addresses if node else rtnl.global_addresses(device.index)).get(device.index)
    if addresses:
        return CniError(
            DEVICE_IN_USE,
            f"device {device.name} is in use by the host: it has global address {addresses[0]}",
            _ALLOW_HINT + ', or "useInterfaceNetwork": true to move its addresses with it',
        )
    return None


def claimed(device: str, record: Record, network: str) -> CniError:
    """The refusal of a device a live attachment holds; `network` is the one asking."""
    other = "" if record.network == network else f" of network {record.network}"
    return CniError(
        DEVICE_IN_USE,
        f"device {device} is claimed by container {record.container_id}{other} "
        f"(netns {record.netns}, as {record.ifname})",
    )


def same_device(record: Record, device: Link, pci: str | None) -> bool:
    """Whether the host's `device` is the one `record` took: by PCI address or permanent MAC where
    both sides have one, else by MAC with its original name or with our marker (a device the
    kernel refunded under its pod name still carries the marker)."""
    if record.pci_address and pci:
        return record.pci_address == pci
    if record.perm_mac and device.perm_mac:
        return record.perm_mac == device.perm_mac
    return record.mac == device.mac and record.original_name in (device.name, device.alias)
