"""Device pools (`devices`): one cluster-wide list of candidates, a node-local pick.

A survey says, for every candidate, which devices of this node it names and whether each is
free, the host's own, or held by an attachment; ADD takes the first free one under its lock,
STATUS and `inventory --config` report the same survey, and an exhausted pool's refusal lists it.
A device home under another name while its own is taken (cni_hostdev/plugin/waiting.py) is the
member its own name makes it, and free. ADD asks the record index about the devices it sees
(cni_hostdev/record_index.py) rather than reading every record: its cost does not grow with the
attachments of the node; the reports, and an ADD that finds no free member, read them all.
"""

from __future__ import annotations

from cni_hostdev import identity, logs, pods, record_index
from cni_hostdev.config import Candidate, NetConf
from cni_hostdev.errors import DEVICE_IN_USE, TRY_AGAIN_LATER, CniError, node_name
from cni_hostdev.lean.contextlib import contextmanager
from cni_hostdev.locks import acquire
from cni_hostdev.lookup import candidate_matches, driver_of, kernelpath_holds_pci, pci_address_of, pool_members
from cni_hostdev.netlink import Link, Rtnl
from cni_hostdev.netns import Namespace
from cni_hostdev.plugin.claims import (
    NodeNetwork,
    claimed,
    host_use,
    record_selected,
    refuse_if_host_uses,
    refuse_live_claims_repair_dead,
    selected_by_any,
)
from cni_hostdev.plugin.release import release_and_forget
from cni_hostdev.state import Record, anything_waiting, every_record, holders, index_missing

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

log = logs.get_logger(__name__)

FREE, CLAIMED, HOST, STALE, ABSENT = "free", "claimed", "host", "stale", "absent"


class Member:
    """One device a candidate names on this node (or, ABSENT, the candidate that names none)."""

    __slots__ = ("candidate", "driver", "link", "mac", "name", "pci", "state", "why")

    def __init__(
        self,
        candidate: Candidate,
        state: str,
        why: str = "",
        *,
        link: Link | None = None,
        name: str = "",
        mac: str = "",
        pci: str | None = None,
        driver: str | None = None,
    ) -> None:
        self.candidate = candidate
        self.state = state
        self.why = why
        self.link = link
        self.name = name
        self.mac = mac
        self.pci = pci
        self.driver = driver


def admits_function(pool: tuple[Candidate, ...], pci: str, driver: str | None = None) -> bool:
    """Whether a PCI function without a net device (bound to vfio-pci, say) is one of the pool's."""
    return any(identity.selects_function(candidate, pci, driver, kernelpath_holds_pci) for candidate in pool)


def admits(pool: tuple[Candidate, ...], link: Link) -> bool:
    return any(candidate_matches(candidate, link) for candidate in pool)


def _in_host(conf: NetConf, rtnl: Rtnl) -> list[tuple[Candidate, Link, Record | None]]:
    """The pool's devices in the host, each with the record of its wait if it waits for its name; a
    waiting device first among its candidate's: it is the device its name means, not the squatter."""
    assert conf.pool is not None
    found: list[tuple[Candidate, Link, Record | None]] = [(c, link, None) for c, link in pool_members(rtnl, conf.pool)]
    if not anything_waiting(conf.data_dir):
        return found
    from cni_hostdev.plugin import waiting  # only a node where a device waits for its name loads it

    for candidate, record, link in waiting.meant(conf.pool, conf.data_dir, rtnl):
        found = [entry for entry in found if entry[1].index != link.index]
        at = next((i for i, entry in enumerate(found) if entry[0].position >= candidate.position), len(found))
        found.insert(at, (candidate, link, record))
    return found


def survey(conf: NetConf, rtnl: Rtnl, records: list[Record] | None) -> list[Member]:
    """Every candidate's devices on this node, in the pool's order of preference, each with its state.
    `records` None: only the devices in the host, each weighed against the records the index names
    for it (what an ADD needs); else against `records`, and theirs in pods are listed too."""
    assert conf.pool is not None
    members: list[Member] = []
    held: set[int] = set()  # records accounted for by a device in the host
    node = NodeNetwork(rtnl)
    if records is None:
        index_missing(conf.data_dir)
    for candidate, link, waited in _in_host(conf, rtnl):
        pci = pci_address_of(link.name)
        member = Member(candidate, FREE, link=link, name=link.name, mac=link.perm_mac or link.mac, pci=pci)
        member.driver = driver_of(link)
        if waited is not None:
            member.why = f"home as {link.name} while {waited.original_name}, its name, is taken"
        weighed = (
            records
            if records is not None
            else holders(conf.data_dir, record_index.keys(pci, link.perm_mac, link.mac), checked=True)
        )
        for record in weighed:
            if record.kind != "userspace" and identity.proof(record, link, identity.HOST, pci) is not None:
                held.add(id(record))
                if pods.alive(record):
                    member.state, member.why = CLAIMED, claimed(link.name, record, conf.name).msg
        if member.state == FREE:
            refusal = host_use(
                rtnl,
                link,
                allow_host_addresses=conf.allow_host_addresses,
                own_network_goes_along=conf.use_interface_network,
                node=node,
            )
            if refusal is not None:
                member.state, member.why = HOST, refusal.msg
        members.append(member)
    members += _in_pods(conf, [record for record in records or [] if id(record) not in held])
    named = {id(m.candidate) for m in members}
    for candidate in conf.pool:
        if id(candidate) not in named:
            why = f"devices[{candidate.position - 1}] ({candidate.describe()}) is not present on this node"
            members.append(Member(candidate, ABSENT, why))
    members.sort(key=lambda m: m.candidate.position)
    return members


def _in_pods(conf: NetConf, records: list[Record]) -> list[Member]:
    """The pool's devices that records hold in pods (or in dead pods: stale), not seen in the host."""
    assert conf.pool is not None
    members = []
    for record in records:
        matching = next((c for c in conf.pool if record_selected(c, record)), None)
        if matching is None:
            continue
        member = Member(
            matching,
            CLAIMED,
            name=record.original_name or record.pci_address or "",
            mac=record.perm_mac or record.mac,
            pci=record.pci_address,
            driver=record.driver,
        )
        member.why = claimed(member.name, record, conf.name).msg
        if not pods.alive(record):
            member.state = STALE
            member.why += " whose netns is gone: the next ADD, DEL or GC gives it back"
        members.append(member)
    return members


def exhausted(conf: NetConf, members: list[Member]) -> CniError:
    """The refusal of an ADD that found no free device: every candidate, and why each is not available."""
    reasons = [m.why for m in members if m.state != FREE] or ["the pool names no device"]
    return CniError(
        DEVICE_IN_USE,
        f"no device of network {conf.name}'s pool is free on node {node_name()}: " + "; ".join(reasons),
    )


@contextmanager
def pick(conf: NetConf, attachment: tuple[str, str], host: Namespace) -> Iterator[tuple[Link, str | None]]:
    """The first free device of the pool, locked. A first pass takes only locks free at once, so
    parallel ADDs spread over the pool instead of queueing on its first device; a second waits for
    the busy ones. One a parallel ADD took meanwhile is passed over: parallel ADDs never share a
    device and never fail while a free one remains. Only when none is free are the claims of dead
    pods given back, and the pool looked at again (a refunded device may be under its pod's name,
    which no candidate matches)."""
    assert conf.pool is not None
    give_back_refunded(conf, host)
    for last_try in (False, True):
        busy = [m for m in survey(conf, host.rtnl, None) if m.state == FREE and m.link]
        for patience in (0.0, conf.lock_timeout):
            waiting_for_lock = []
            for member in busy:
                assert member.link is not None
                key = identity.lock_key(member.pci, member.link.perm_mac, member.link.mac)
                try:
                    lock = acquire(conf.data_dir, key, member.link.name, patience)
                except CniError as err:
                    if err.code != TRY_AGAIN_LATER:
                        raise
                    waiting_for_lock.append(member)
                    continue
                try:
                    device = _still_free(conf, attachment, host, member)
                    if device is None:
                        continue
                    position = member.candidate.position - 1
                    log.info("pool of %s: taking %s (devices[%d])", conf.name, device.name, position)
                    yield device, member.pci
                    return
                finally:
                    lock.release()
            busy = waiting_for_lock
        if not last_try and not give_back_dead_claims(conf, host):
            break
    raise exhausted(conf, survey(conf, host.rtnl, every_record(conf.data_dir)))


def _still_free(conf: NetConf, attachment: tuple[str, str], host: Namespace, member: Member) -> Link | None:
    """`member`'s device, its lock held, if it is still free (None: taken meanwhile, or refused)."""
    link = member.link
    assert link is not None
    try:
        device = host.rtnl.link(index=link.index)
        if device is None or device.name != link.name:
            return None  # taken by the ADD that held the lock
        device = refuse_live_claims_repair_dead(conf, attachment, device, member.pci, host)
        refuse_if_host_uses(conf, host, device)
    except CniError as err:
        if err.code not in (DEVICE_IN_USE, TRY_AGAIN_LATER):
            raise
        log.info("pool of %s: passing over %s: %s", conf.name, link.name, err.msg)
        return None
    return device


def give_back_refunded(conf: NetConf, host: Namespace) -> None:
    """A pool device the kernel refunded from a dead pod, under the pod's name (which no candidate
    may match), carries our marker: its original name as its alias. Those few are looked up in the
    index, and given back under their own names before the pick, as members in their own right."""
    assert conf.pool is not None
    marked = [link for link in host.rtnl.links() if link.alias and link.alias != link.name and not link.loopback]
    if marked:
        index_missing(conf.data_dir)
    for link in marked:
        pci = pci_address_of(link.name)
        for record in holders(conf.data_dir, record_index.keys(pci, link.perm_mac, link.mac), checked=True):
            if record.original_name != link.alias or not selected_by_any(conf.pool, record) or pods.alive(record):
                continue
            if identity.proof(record, link, identity.HOST, pci) is None:
                continue
            try:
                what = release_and_forget(record, host, conf.data_dir, conf.lock_timeout)
            except (CniError, OSError) as err:
                why = getattr(err, "msg", err)
                log.warning("pool of %s: refunded %s not given back: %s", conf.name, link.name, why)
                continue
            log.warning("pool of %s: claim of %s by %s was stale: %s", conf.name, link.alias, record.container_id, what)


def give_back_dead_claims(conf: NetConf, host: Namespace) -> bool:
    """Records of pool devices whose pod died: the device is the host's again, under its own name.
    Whether any was given back."""
    assert conf.pool is not None
    given_back = False
    for record in every_record(conf.data_dir):
        if record.kind == "userspace" or not selected_by_any(conf.pool, record):
            continue
        if pods.alive(record):
            continue
        who = (conf.name, record.original_name, record.container_id)
        try:
            what = release_and_forget(record, host, conf.data_dir, conf.lock_timeout)
        except (CniError, OSError) as err:
            # One claim that cannot be repaired now must not keep the pool's other devices from pods.
            log.warning("pool of %s: stale claim of %s by %s not repaired: %s", *who, getattr(err, "msg", err))
            continue
        log.warning("pool of %s: claim of %s by %s was stale: %s", *who, what)
        given_back = True
    return given_back
