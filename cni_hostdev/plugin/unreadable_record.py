"""DEL of an attachment whose record is corrupt: what the pod itself proves, and nothing more.

The device an ADD put in a pod carries our marker, its original name as its alias, until DEL
has restored everything else. With the record unreadable, that marker is all there is: the
device at CNI_IFNAME that carries it goes home under that name. A pod with CAP_NET_ADMIN could
forge a name and an alias, so the marker is believed only where nothing says otherwise: not in
the host's own namespace, not the name of a device another (readable) record took, not a device
a live attachment of that namespace proves its own. Its MTU, MAC, up state, own alias and
network were in the record: they stay as they are (the alias, our marker, is cleared).
"""

from __future__ import annotations

import os

from cni_hostdev import identity, netns, pods
from cni_hostdev.errors import CniError
from cni_hostdev.locks import device_lock
from cni_hostdev.move import send_home
from cni_hostdev.netns import Namespace
from cni_hostdev.plugin import waiting
from cni_hostdev.state import Record, every_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni_hostdev.netlink import Link


def release_without_record(
    data_dir: str, network: str, container_id: str, netns_path: str, ifname: str, lock_timeout: float
) -> str:
    """Give back the marked device at `ifname` in `netns_path`, if nothing says it is not ours;
    say what happened. Raises what a DEL with its record would (a busy lock, a name taken in
    the host, a move the kernel refuses): the caller keeps the record for the retry."""
    if not netns_path:
        return "the netns is unknown: nothing the pod can prove"
    try:
        fd = netns.open_netns(netns_path)
    except (OSError, netns.NotANetns):
        return f"netns {netns_path} is gone: nothing the pod can prove"
    with netns.host() as host:
        if netns.same_netns(fd, host.fd):
            os.close(fd)
            return f"{netns_path} is the host's own namespace: nothing to give back"
        pod = Namespace.open(fd)
        try:
            return _give_back(data_dir, pod, host, (network, container_id, netns_path, ifname), lock_timeout)
        finally:
            pod.close()


def _give_back(
    data_dir: str, pod: Namespace, host: Namespace, attachment: tuple[str, str, str, str], timeout: float
) -> str:
    _, _, netns_path, ifname = attachment
    link = _marked_device(pod, ifname)
    if link is None:
        return f"no device {ifname} carrying our marker in netns {netns_path}"
    holder = _claimed_elsewhere(data_dir, pod, link)
    if holder is not None:
        return f"{ifname} in netns {netns_path} is left alone: {holder}"
    pci = link.parent_dev if link.parent_bus == "pci" else None
    with device_lock(data_dir, identity.lock_key(pci, link.perm_mac, link.mac), link.alias or ifname, timeout):
        again = pod.rtnl.link(index=link.index)  # under the lock: as it is now
        if again is None or again.alias != link.alias or again.name != ifname:
            return f"{ifname} in netns {netns_path} changed while waiting for its lock: left alone"
        record = _marked(again, attachment)
        homecoming = send_home(pod.rtnl, again, host, record)
        if homecoming.squatter is not None:
            return waiting.park(data_dir, record, homecoming.link, homecoming.squatter)
    return (
        f"returned {ifname} to the host as {record.original_name}, by its marker (cleared); its MTU, MAC, up "
        "state and own alias were in the corrupt record and stay as they are"
    )


def _marked_device(pod: Namespace, ifname: str) -> Link | None:
    from cni_hostdev.config import validate_ifname

    link = pod.rtnl.link(name=ifname)
    if link is None or not link.alias or link.alias == link.name:
        return None
    try:
        validate_ifname(link.alias, "alias")
    except CniError:
        return None  # no interface name: no marker of ours
    return link


def _claimed_elsewhere(data_dir: str, pod: Namespace, link: Link) -> str | None:
    """What says the device is not this attachment's: another record took a device of that name,
    or a live attachment of this very namespace proves the device its own."""
    for record in every_record(data_dir, quiet=True):
        if record.kind == "userspace":
            continue
        if record.original_name == link.alias:
            return f"{link.alias} is the device of container {record.container_id} of network {record.network}"
        if pods.is_records(record, pod) and identity.proof(record, link, identity.POD) is not None:
            return f"it is the device of container {record.container_id} of network {record.network}"
    return None


def _marked(link: Link, attachment: tuple[str, str, str, str]) -> Record:
    """A record of what the device proves: its marker names it, the rest is as it is now."""
    network, container_id, netns_path, ifname = attachment
    return Record(
        network=network,
        container_id=container_id,
        ifname=ifname,
        netns=netns_path,
        original_name=link.alias or "",
        original_alias=None,
        mac=link.mac,
        perm_mac=link.perm_mac,
        mtu=link.mtu,
        was_up=False,
        ifindex=link.index,
        pci_address=None,
        altnames=None,
    )
