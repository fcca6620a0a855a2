"""ADD: choose the device and lock it, record what it was, move it, configure it, answer.

Each step that changes something has its undo beside it: a failure after the move gives the
device back (and its IPAM allocation), a failure of the move itself is rolled back by the move
(cni_hostdev/move.py), and a record is kept only for a device that did not make it home.
"""

from __future__ import annotations

import os

from cni_hostdev import diagnostics, identity, logs, netns, pods, record_index
from cni_hostdev.diagnostics import checkpoint
from cni_hostdev.errors import (
    DEVICE_IN_USE,
    DEVICE_NOT_FOUND,
    INCOMPATIBLE_VERSION,
    INVALID_CONFIG,
    INVALID_ENV,
    CniError,
    node_name,
)
from cni_hostdev.lean.contextlib import contextmanager
from cni_hostdev.locks import device_lock
from cni_hostdev.lookup import driver_of, find_device, pci_address_of, userspace_function
from cni_hostdev.move import ATOMIC, RENAME_THEN_MOVE, STAGING_DIR, move_in, staging_path
from cni_hostdev.plugin import claims
from cni_hostdev.plugin.release import give_back, records_pod
from cni_hostdev.result import DNS, Interface, Result
from cni_hostdev.state import Record, StateStore, anything_waiting

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from cni_hostdev.config import NetConf
    from cni_hostdev.netlink import Link
    from cni_hostdev.netns import Namespace
    from cni_hostdev.plugin.call import Call, CniEnv
    from cni_hostdev.state import Strategy

log = logs.get_logger(__name__)


def handle(call: Call) -> dict[str, Any]:
    conf, env = call.conf, call.env
    _refuse_unanswerable(conf, env)
    store = StateStore(conf.data_dir, conf.name)
    undo_interrupted_add(store, env, conf.lock_timeout)
    with netns.pod(env.netns, required=True) as pod, netns.host() as host:
        assert pod is not None
        diagnostics.mark("opened")
        if netns.same_netns(pod.fd, host.fd):
            raise CniError(INVALID_ENV, f"CNI_NETNS {env.netns} is the host's own network namespace")
        userspace = userspace_function(conf.selectors)
        if userspace is not None:
            # Device pools (`devices`) load only for a config that has one.
            if conf.pool is not None and not _pool_admits_function(conf, *userspace):
                raise _outside_pool(conf, f"PCI device {userspace[0]} ({userspace[1]})")
            return _add_userspace(call, store, host, pod, *userspace)
        with chosen_device(conf, env, host) as (device, pci):
            diagnostics.mark("chosen")
            waited = _waited(conf, device, pci)
            record = _record(conf, env, host, pod, device, pci)
            if waited is not None:  # it goes home, in the end, under the name it waited for
                record.original_name, record.original_alias = waited.original_name, waited.original_alias
            logs.context(device=record.original_name)
            store.save(record)
            checkpoint("record-written")
            diagnostics.mark("recorded")
            moved = _move(store, record, host, pod, device)
            if waited is not None:
                from cni_hostdev.plugin import waiting

                waiting.leave(conf.data_dir, waited)
            diagnostics.mark("moved")
            ipam_result = _configure(call, store, record, host, pod, moved)
    result = _answer(conf, Interface(moved.name, moved.mac, moved.mtu, env.netns, pci), ipam_result, record)
    log.info("ADD %s: %s -> %s:%s (%s)", env.container_id, device.name, env.netns, env.ifname, record.strategy)
    return result.to_json(conf.cni_version)


def _refuse_unanswerable(conf: NetConf, env: CniEnv) -> None:
    """Before anything moves: a result this version cannot print, an IPAM plugin that is not there."""
    if conf.ipam is None and not Result().can_print_as(conf.cni_version):
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"cniVersion {conf.cni_version} results must carry an IP address; configure ipam or use 0.3.0 or later",
        )
    if conf.ipam is not None:
        from cni_hostdev import ipam

        ipam.find_plugin(str(conf.ipam["type"]), env.path)


def undo_interrupted_add(store: StateStore, env: CniEnv, lock_timeout: float) -> None:
    """A record for this very attachment: refuse if it is complete, undo it if its ADD died half-way."""
    existing = store.load(env.container_id, env.ifname)
    if existing is None:
        return
    with device_lock(store.root, identity.record_lock_key(existing), existing.original_name, lock_timeout):
        existing = store.load(env.container_id, env.ifname)  # its ADD may have finished meanwhile
        if existing is None:
            return
        finished = existing.phase == "attached"
        if finished and pods.alive(existing):
            raise CniError(
                DEVICE_IN_USE,
                f"container {env.container_id} already has {env.ifname} (device {existing.original_name}) "
                f"in netns {existing.netns}; run DEL first",
            )
        with netns.host() as host, records_pod(existing) as old_pod:
            what = give_back(store, existing, old_pod, host)
    if finished:
        # A container started again after its pod's netns died without DEL (a reboot, a crash).
        log.warning(
            "ADD %s/%s: the earlier attachment's netns %s is gone; gave its device back first: %s",
            env.container_id,
            env.ifname,
            existing.netns,
            what,
        )
    else:
        log.warning("ADD %s/%s: undid an interrupted ADD: %s", env.container_id, env.ifname, what)


@contextmanager
def chosen_device(conf: NetConf, env: CniEnv, host: Namespace) -> Iterator[tuple[Link, str | None]]:
    """The device to take, with its lock held: the one selected, or the first free one of the pool.

    A deviceID (from Multus or a device plugin) wins over the pool, but must be one of its devices.
    A device waiting for its name is taken by identity, not the device that now carries its name.
    """
    attachment = (env.container_id, env.ifname)
    if conf.pool is not None and not conf.selectors.any():
        from cni_hostdev.plugin import pool  # a single device needs none of the pool's code

        with pool.pick(conf, attachment, host) as chosen:
            yield chosen
        return
    waited = _waiting_meant(conf, host)
    first = waited[1] if waited else _selected(conf, host)
    pci = pci_address_of(first.name)
    with device_lock(conf.data_dir, identity.lock_key(pci, first.perm_mac, first.mac), first.name, conf.lock_timeout):
        # Whoever held the lock before us may have taken the device: look again.
        again = _waiting_meant(conf, host) if waited else None
        device = again[1] if again else _selected(conf, host)
        if device.index != first.index:
            raise CniError(DEVICE_IN_USE, f"device {first.name} changed while waiting for its lock; retry")
        device = claims.refuse_live_claims_repair_dead(conf, attachment, device, pci, host)
        # After the repair: a refunded device is judged under its own name, not its dead pod's.
        if conf.pool is not None and not (
            _pool_admits(conf, device) or (waited and claims.selected_by_any(conf.pool, waited[0]))
        ):
            raise _outside_pool(conf, f"device {device.name}")
        claims.refuse_if_host_uses(conf, host, device)
        yield device, pci


def _waiting_meant(conf: NetConf, host: Namespace) -> tuple[Record, Link] | None:
    """A device home under another name that the selectors mean (none, on most nodes)."""
    if not anything_waiting(conf.data_dir):
        return None
    from cni_hostdev.plugin import waiting

    return waiting.meant_by(conf, host.rtnl)


def _waited(conf: NetConf, device: Link, pci: str | None) -> Record | None:
    """The record of the wait of the chosen device, if it is home under another name."""
    if not anything_waiting(conf.data_dir):
        return None
    from cni_hostdev.plugin import waiting

    return waiting.record_for(conf.data_dir, device, pci)


def _selected(conf: NetConf, host: Namespace) -> Link:
    """The device the config selects; one missing from the host may be a dead pod's, which the
    kernel refunded under the pod's name: its claim is repaired and the device looked for again."""
    try:
        return find_device(host.rtnl, conf.selectors)
    except CniError as err:
        if err.code != DEVICE_NOT_FOUND or not claims.refuse_or_repair_claims_of_missing(conf, host):
            raise
    return find_device(host.rtnl, conf.selectors)


def _pool_admits(conf: NetConf, device: Link) -> bool:
    from cni_hostdev.plugin import pool

    assert conf.pool is not None
    return pool.admits(conf.pool, device)


def _pool_admits_function(conf: NetConf, address: str, driver: str) -> bool:
    from cni_hostdev.plugin import pool

    assert conf.pool is not None
    return pool.admits_function(conf.pool, address, driver)


def _outside_pool(conf: NetConf, what: str) -> CniError:
    assert conf.pool is not None
    listed = "; ".join(f"devices[{c.position - 1}]: {c.describe()}" for c in conf.pool)
    return CniError(
        INVALID_CONFIG,
        f"deviceID {conf.selectors.device_id} is {what}, which is not one of the pool's devices "
        f"on node {node_name()} ({listed})",
        about_device=True,
    )


def _strategy(conf: NetConf) -> Strategy:
    if conf.move_strategy == ATOMIC:
        return ATOMIC
    if conf.move_strategy == RENAME_THEN_MOVE:
        return RENAME_THEN_MOVE
    from cni_hostdev.probe import cached_probe

    return ATOMIC if cached_probe().atomicMoveRename else RENAME_THEN_MOVE


def _record(conf: NetConf, env: CniEnv, host: Namespace, pod: Namespace, device: Link, pci: str | None) -> Record:
    """What the device is in the host now, and which pod it goes to: all DEL needs to give it back."""
    strategy = _strategy(conf)
    record = Record.taking(
        device,
        pci,
        network=conf.name,
        container_id=env.container_id,
        ifname=env.ifname,
        netns=env.netns,
        strategy=strategy,
        staging=staging_path(conf.name, env.container_id, env.ifname) if strategy == RENAME_THEN_MOVE else None,
    )
    record.driver = driver_of(device)
    if conf.use_interface_network:
        from cni_hostdev import interface_network

        record.interface_network = interface_network.capture(host.rtnl, device)
    pods.pin(record, pod)
    if record.staging:
        # Before the record names it: DEL reads a missing staging dir as "not visible here",
        # and an ADD killed right after this save must not look like that on a fresh boot.
        os.makedirs(STAGING_DIR, mode=0o700, exist_ok=True)
    return record


def _move(store: StateStore, record: Record, host: Namespace, pod: Namespace, device: Link) -> Link:
    """The move; undo: the move rolls itself back, and then the record goes, if the device is home."""
    try:
        moved = move_in(host, pod, device, record)
    except BaseException:
        # Keep the record unless the device is home under its own name: DEL and GC need it then.
        home = host.rtnl.link(name=device.name)
        if home is not None and identity.proof(record, home, identity.HOST) is not None:
            store.forget(record)
        raise
    record.phase = "attached"
    record.ifindex = moved.index
    record.staging = None
    # Not fsync'd: a crash of this process leaves it in the page cache, and after a power loss
    # every pod is gone, so the durable "moving" record written before the move leads recovery
    # to the same device as this one would.
    store.save(record, durable=False)
    checkpoint("attached")
    return moved


def _configure(
    call: Call, store: StateStore, record: Record, host: Namespace, pod: Namespace, moved: Link
) -> Result | None:
    """The device's own network (useInterfaceNetwork), then IPAM's; undo: IPAM DEL, the device back home."""
    conf = call.conf
    asked_ipam = False
    try:
        if record.interface_network is not None:
            from cni_hostdev import interface_network

            interface_network.into_pod(pod, moved, record.interface_network, call.env.netns)
        asked_ipam = conf.ipam is not None
        ipam_result = _ipam_add(call)
        checkpoint("ipam-added")
        if ipam_result is not None:
            from cni_hostdev import ipam

            ipam.apply(pod.fd, pod.rtnl, moved, ipam_result)
            checkpoint("ipam-applied")
        return ipam_result
    except BaseException:
        if asked_ipam:
            _release_ipam(call)
        try:
            give_back(store, record, pod, host)
        except (CniError, OSError) as err:
            log.error("could not return %s after a failed ADD: %s", record.original_name, err)
        raise


def _ipam_add(call: Call) -> Result | None:
    """IPAM's result for this attachment, read in the version it was printed in; None without IPAM."""
    conf = call.conf
    if conf.ipam is None:
        return None
    from cni_hostdev import ipam

    return ipam.parse_result(call.ipam("ADD"), conf.cni_version, str(conf.ipam["type"]))


def _release_ipam(call: Call) -> None:
    """Undo an IPAM ADD after a later failure; never mask the failure itself."""
    if call.conf.ipam is None:
        return
    try:
        call.ipam("DEL")
    except CniError as err:
        log.error("releasing IPAM after a failed ADD also failed: %s", err.msg)


def _answer(conf: NetConf, iface: Interface, ipam_result: Result | None, record: Record | None) -> Result:
    """prevResult, plus our interface, its own network (useInterfaceNetwork) and IPAM's result."""
    result = conf.prev_result or Result()
    result.interfaces.append(iface)
    index = len(result.interfaces) - 1
    if record is not None and record.interface_network is not None:
        from cni_hostdev import interface_network

        ips, routes = interface_network.result_entries(record.interface_network, index)
        result.ips += ips
        result.routes += routes
    dns = DNS(list(conf.dns.nameservers), conf.dns.domain, list(conf.dns.search), list(conf.dns.options))
    if ipam_result is not None:
        for ip in ipam_result.ips:
            ip.interface = index
            result.ips.append(ip)
        result.routes.extend(ipam_result.routes)
        extra = ipam_result.dns
        dns.nameservers += [n for n in extra.nameservers if n not in dns.nameservers]
        dns.domain = dns.domain or extra.domain
        dns.search += [s for s in extra.search if s not in dns.search]
        dns.options += [o for o in extra.options if o not in dns.options]
    if not dns.empty():
        result.dns = dns
    return result


def _add_userspace(
    call: Call, store: StateStore, host: Namespace, pod: Namespace, pci: str, driver: str
) -> dict[str, Any]:
    """A PCI function bound to vfio-pci/uio: nothing to move, the pod's DPDK app drives it. Held
    under its lock and its record, as a net device is: a live holder of any network is refused,
    a dead one's record given back; the record pins the pod."""
    conf, env = call.conf, call.env
    logs.context(device=pci)
    with device_lock(conf.data_dir, identity.lock_key(pci, None, ""), pci, conf.lock_timeout):
        claims.refuse_live_release_dead(
            conf,
            (env.container_id, env.ifname),
            record_index.keys(pci, None, None),
            lambda held: held.pci_address == pci,
            f"{pci} ({driver})",
            host,
            what="PCI device",
        )
        record = Record(
            network=conf.name,
            container_id=env.container_id,
            ifname=env.ifname,
            netns=env.netns,
            original_name="",
            original_alias=None,
            mac="",
            perm_mac=None,
            mtu=0,
            was_up=False,
            ifindex=0,
            pci_address=pci,
            strategy="none",
            phase="attached",
            kind="userspace",
        )
        pods.pin(record, pod)
        store.save(record)
        try:
            ipam_result = _ipam_add(call)
        except BaseException:
            store.forget(record)
            raise
    log.info("ADD %s: PCI %s is bound to %s; nothing moved", env.container_id, pci, driver)
    iface = Interface(name=env.ifname, sandbox=env.netns, pci_id=pci)
    return _answer(conf, iface, ipam_result, None).to_json(conf.cni_version)
