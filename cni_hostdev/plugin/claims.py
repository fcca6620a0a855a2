"""Who holds a device, and what an ADD does about it: the host (a bridge, a port, the uplink, its
addresses) and live attachments are refused, saying which device, why and by whom; claims of
dead pods are repaired (the device given back) before the device is taken.
"""

from __future__ import annotations

from cni_hostdev import identity, logs, pods, record_index, routing
from cni_hostdev.config import Candidate, NetConf
from cni_hostdev.errors import DEVICE_IN_USE, CniError
from cni_hostdev.lookup import kernelpath_holds_pci
from cni_hostdev.netlink import Link, Rtnl
from cni_hostdev.netns import Namespace
from cni_hostdev.plugin.release import release_and_forget
from cni_hostdev.state import Record, every_record, holders

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

log = logs.get_logger(__name__)
_ALLOW_HINT = 'set "allowHostAddresses": true to move it anyway'


class NodeNetwork:
    """The node's default routes and global addresses, dumped once for a survey of many devices."""

    __slots__ = ("addresses", "routes")

    def __init__(self, rtnl: Rtnl) -> None:
        self.routes = routing.default_routes(rtnl)
        self.addresses = routing.global_addresses(rtnl)


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
    uplink = routing.uplink_route(rtnl, device.index, node.routes if node else None)
    if uplink is not None:
        return CniError(
            DEVICE_IN_USE,
            f"device {device.name} is in use by the host as its uplink: it carries the node's {uplink.describe()}",
            _ALLOW_HINT,
        )
    if own_network_goes_along:
        return None
    addresses = (node.addresses if node else routing.global_addresses(rtnl, device.index)).get(device.index)
    if addresses:
        return CniError(
            DEVICE_IN_USE,
            f"device {device.name} is in use by the host: it has global address {addresses[0]}",
            _ALLOW_HINT + ', or "useInterfaceNetwork": true to move its addresses with it',
        )
    return None


def refuse_if_host_uses(conf: NetConf, host: Namespace, device: Link) -> None:
    refusal = host_use(
        host.rtnl,
        device,
        allow_host_addresses=conf.allow_host_addresses,
        own_network_goes_along=conf.use_interface_network,
    )
    if refusal is not None:
        raise refusal


def claimed(device: str, record: Record, network: str, *, what: str = "device") -> CniError:
    """The refusal of a device a live attachment holds; `network` is the one asking."""
    other = "" if record.network == network else f" of network {record.network}"
    return CniError(
        DEVICE_IN_USE,
        f"{what} {device} is claimed by container {record.container_id}{other} "
        f"(netns {record.netns}, as {record.ifname})",
    )


def refuse_live_claims_repair_dead(
    conf: NetConf, attachment: tuple[str, str], device: Link, pci: str | None, host: Namespace
) -> Link:
    """Refuse `device` if another live attachment (of any network) holds it; give it back from the
    claims of dead pods. `attachment` (container, ifname) is the caller's own, never a claim.

    Returns the device as it is afterwards: a repair gives a refunded device its name back.
    """

    def holds(record: Record) -> bool:
        return identity.proof(record, device, identity.HOST, pci) is not None

    device_keys = record_index.keys(pci, device.perm_mac, device.mac)
    repaired = refuse_live_release_dead(conf, attachment, device_keys, holds, device.name, host)
    current = host.rtnl.link(index=device.index) if repaired else device
    if current is None:
        raise CniError(DEVICE_IN_USE, f"device {device.name} changed while its stale claims were repaired; retry")
    return current


def refuse_live_release_dead(
    conf: NetConf,
    attachment: tuple[str, str],
    device_keys: list[str],
    holds: Callable[[Record], bool],
    name: str,
    host: Namespace,
    what: str = "device",
) -> bool:
    """Refuse what another live attachment (of any network) `holds`, naming it; give it back from
    the claims of dead pods. `attachment` (container, ifname) is the caller's own, never a claim.
    The records weighed are those whose index entries share a key with the device (every record
    that can hold it: cni_hostdev/record_index.py). Whether any claim was given back."""
    repaired = False
    for record in holders(conf.data_dir, device_keys):
        if (record.network, record.container_id, record.ifname) == (conf.name, *attachment) or not holds(record):
            continue
        if pods.alive(record):
            raise claimed(name, record, conf.name, what=what)
        log.warning("claim of %s by %s is stale (netns gone); repairing", name, record.container_id)
        release_and_forget(record, host, conf.data_dir, conf.lock_timeout)
        repaired = True
    return repaired


def refuse_or_repair_claims_of_missing(conf: NetConf, host: Namespace) -> bool:
    """The selected device is not in the host: a record whose device the selectors mean (by what it
    knows of the device: its name, MACs, PCI function, driver) took it. A live one is refused,
    naming it; a dead one (the kernel refunded its device under the pod's name) gives the device
    back. Whether any did."""
    candidates = conf.candidates()
    repaired = False
    for record in every_record(conf.data_dir):
        if record.kind == "userspace" or not selected_by_any(candidates, record):
            continue
        if pods.alive(record):
            raise claimed(record.original_name, record, conf.name) from None
        release_and_forget(record, host, conf.data_dir, conf.lock_timeout)
        repaired = True
    return repaired


def record_selected(candidate: Candidate, record: Record) -> bool:
    """Whether a recorded device (in a pod now) is one `candidate` means."""
    return identity.selected_by(candidate, record, kernelpath_holds_pci)


def selected_by_any(candidates: tuple[Candidate, ...], record: Record) -> bool:
    """Whether a recorded device (in a pod, or waiting for its name) is one that any of `candidates`
    means, by what the record knows of it."""
    return any(record_selected(candidate, record) for candidate in candidates)
