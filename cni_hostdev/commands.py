"""The CNI commands, each reading like the spec: validate, look up, lock, act, report."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from cni_hostdev import logs, netns, pods, pool
from cni_hostdev.config import CniEnv, NetConf
from cni_hostdev.errors import (
    CHECK_FAILED,
    DEVICE_IN_USE,
    DEVICE_NOT_FOUND,
    INCOMPATIBLE_VERSION,
    INVALID_CONFIG,
    INVALID_ENV,
    NOT_AVAILABLE,
    STATE_FAILURE,
    TRY_AGAIN_LATER,
    CniError,
    node_name,
)
from cni_hostdev.faults import checkpoint
from cni_hostdev.locks import device_lock, identity
from cni_hostdev.lookup import driver_of, find_device, pci_address_of, userspace_function
from cni_hostdev.move import (
    ATOMIC,
    RENAME_THEN_MOVE,
    Namespace,
    Original,
    find_moved,
    move_in,
    refuse_if_name_taken,
    restore,
    send_home,
)
from cni_hostdev.netlink import Link
from cni_hostdev.result import DNS, Interface, Result
from cni_hostdev.state import Record, StateStore, every_record
from cni_hostdev.usage import claimed, host_use, same_device

log = logs.get_logger(__name__)
STAGING_DIR = "/run/cni-hostdev/staging"


def staging_path(network: str, env: CniEnv) -> str:
    return os.path.join(STAGING_DIR, f"{network}-{env.container_id}-{env.ifname}")


@contextlib.contextmanager
def _host() -> Iterator[Namespace]:
    space = Namespace.current()
    try:
        yield space
    finally:
        space.close()


def _open_pod(path: str, *, required: bool) -> Namespace | None:
    try:
        fd = netns.open_netns(path)
    except netns.NotANetns:
        raise CniError(INVALID_ENV, f"CNI_NETNS {path} is not a network namespace") from None
    except FileNotFoundError:
        if required:
            raise CniError(INVALID_ENV, f"CNI_NETNS {path} does not exist") from None
        return None
    except OSError as err:
        raise CniError(INVALID_ENV, f"CNI_NETNS {path} cannot be opened: {err.strerror}") from None
    return Namespace.open(fd)


@contextlib.contextmanager
def _pod(path: str, *, required: bool) -> Iterator[Namespace | None]:
    pod = _open_pod(path, required=required) if path else None
    try:
        yield pod
    finally:
        if pod is not None:
            pod.close()


def _choose_strategy(conf: NetConf) -> str:
    if conf.move_strategy != "auto":
        return conf.move_strategy
    from cni_hostdev.probe import cached_probe

    return ATOMIC if cached_probe().atomicMoveRename else RENAME_THEN_MOVE


@contextlib.contextmanager
def _records_pod(record: Record, path: str | None = None) -> Iterator[Namespace | None]:
    """The record's own pod namespace at `path` (default: the recorded one), or None when that path
    no longer holds it: a namespace that took over a dead pod's path is never searched."""
    try:
        pod = pods.open_records(record, path)
    except OSError as err:
        raise CniError(INVALID_ENV, f"netns {path or record.netns} cannot be opened: {err.strerror}") from None
    try:
        yield pod
    finally:
        if pod is not None:
            pod.close()


def _record_key(record: Record) -> str:
    return identity(record.pci_address, record.perm_mac, record.mac)


# --- ADD ------------------------------------------------------------------------


def _refuse_if_in_use(conf: NetConf, host: Namespace, device: Link) -> None:
    refusal = host_use(
        host.rtnl,
        device,
        allow_host_addresses=conf.allow_host_addresses,
        own_network_goes_along=conf.use_interface_network,
    )
    if refusal is not None:
        raise refusal


def _claims_of(store: StateStore, device: Link, pci: str | None, env: CniEnv, host: Namespace) -> Link:
    """Refuse a device another live attachment holds; repair and forget claims whose pod died.

    Returns the device as it is afterwards: a repair gives a refunded device its name back.
    """
    repaired = False
    for record in every_record(store.root):
        if (record.network, record.container_id, record.ifname) == (store.network, env.container_id, env.ifname):
            continue
        if record.kind == "userspace" or not same_device(record, device, pci):
            continue
        if pods.alive(record):
            raise claimed(device.name, record, store.network)
        log.warning("claim of %s by %s is stale (netns gone); repairing", device.name, record.container_id)
        release(record, None, host)
        StateStore(store.root, record.network).remove(record.container_id, record.ifname)
        repaired = True
    current = host.rtnl.link(index=device.index) if repaired else device
    if current is None:
        raise CniError(DEVICE_IN_USE, f"device {device.name} changed while its stale claims were repaired; retry")
    return current


def _find_unclaimed(conf: NetConf, host: Namespace, store: StateStore) -> Link:
    """The selected device; if a pod holds it, say which pod; if a dead pod held it, repair first."""
    try:
        return find_device(host.rtnl, conf.selectors)
    except CniError as err:
        if err.code != DEVICE_NOT_FOUND:
            raise
        wanted = conf.selectors.device
        repaired = False
        for record in every_record(conf.data_dir):
            if record.kind == "userspace" or (wanted and record.original_name != wanted):
                continue
            if record.network != conf.name and not wanted:
                continue  # another network's device: only a name says it is the one asked for
            if pods.alive(record):
                if wanted:
                    raise claimed(record.original_name, record, conf.name) from None
                continue
            with device_lock(conf.data_dir, _record_key(record), record.original_name, conf.lock_timeout):
                release(record, None, host)
                StateStore(conf.data_dir, record.network).remove(record.container_id, record.ifname)
                repaired = True
        if not repaired:
            raise
    return find_device(host.rtnl, conf.selectors)


def _copy_interface_network(pod: Namespace, moved: Link, network: dict[str, Any], env: CniEnv) -> None:
    from cni_hostdev import ifnet, ipam

    with netns.entered(pod.fd):
        if any(a["fields"]["family"] == socket.AF_INET6 for a in network["addresses"]):
            ipam.enable_ipv6(moved.name)  # sysctl files answer for the namespace they are opened in
    ifnet.create(pod.rtnl, moved, network, where=f"netns {env.netns}", strict=True)
    checkpoint("interface-network-copied")


def _interface(link: Link, env: CniEnv, pci: str | None) -> Interface:
    return Interface(name=link.name, mac=link.mac, mtu=link.mtu, sandbox=env.netns, pci_id=pci)


def _merge(
    conf: NetConf, iface: Interface, ipam_result: Result | None, network: dict[str, Any] | None = None
) -> Result:
    result = conf.prev_result or Result()
    result.interfaces.append(iface)
    index = len(result.interfaces) - 1
    if network is not None:
        from cni_hostdev import ifnet

        ips, routes = ifnet.result_entries(network, index)
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


def _ipam_type(conf: NetConf) -> str:
    assert conf.ipam is not None
    return str(conf.ipam["type"])


def _ipam_add(conf: NetConf, environ: Mapping[str, str], env: CniEnv) -> Result | None:
    from cni_hostdev import ipam

    if conf.ipam is None:
        return None
    raw = ipam.delegate("ADD", conf, environ, env.path)
    return ipam.parse_result(raw, conf.cni_version, _ipam_type(conf))


def _ipam_release(conf: NetConf, environ: Mapping[str, str], env: CniEnv) -> None:
    """Undo an IPAM ADD after a later failure; never mask the failure itself."""
    from cni_hostdev import ipam

    if conf.ipam is None:
        return
    try:
        ipam.delegate("DEL", conf, environ, env.path)
    except CniError as err:
        log.error("releasing IPAM after a failed ADD also failed: %s", err.msg)


def _undo_interrupted_add(store: StateStore, env: CniEnv, lock_timeout: float) -> None:
    """A record for this very attachment: refuse if it is complete, undo it if its ADD died half-way."""
    existing = store.load(env.container_id, env.ifname)
    if existing is None:
        return
    with device_lock(store.root, _record_key(existing), existing.original_name, lock_timeout):
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
        with _host() as host, _records_pod(existing) as old_pod:
            what = release(existing, old_pod, host)
        store.remove(env.container_id, env.ifname)
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


def cmd_add(env: CniEnv, conf: NetConf, environ: Mapping[str, str]) -> dict[str, Any]:
    from cni_hostdev import ipam

    if conf.ipam is None and not Result().can_print_as(conf.version):
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"cniVersion {conf.cni_version} results must carry an IP address; configure ipam or use 0.3.0 or later",
        )
    if conf.ipam is not None:
        ipam.find_plugin(_ipam_type(conf), env.path)
    store = StateStore(conf.data_dir, conf.name)
    _undo_interrupted_add(store, env, conf.lock_timeout)
    with _pod(env.netns, required=True) as pod, _host() as host:
        assert pod is not None
        if netns.same_netns(pod.fd, host.fd):
            raise CniError(INVALID_ENV, f"CNI_NETNS {env.netns} is the host's own network namespace")
        userspace = userspace_function(conf.selectors)
        if userspace is not None:
            if conf.pool is not None and not pool.admits_function(conf.pool, *userspace):
                raise _outside_pool(conf, f"PCI device {userspace[0]} ({userspace[1]})")
            return _add_userspace(env, conf, environ, store, *userspace)
        with _chosen_device(conf, env, host, store) as (device, pci):
            moved, ipam_result, strategy, network = _attach(conf, env, environ, store, pod, host, device, pci)
    result = _merge(conf, _interface(moved, env, pci), ipam_result, network)
    log.info("ADD %s: %s -> %s:%s (%s)", env.container_id, device.name, env.netns, env.ifname, strategy)
    return result.to_json(conf.cni_version)


def _outside_pool(conf: NetConf, what: str) -> CniError:
    assert conf.pool is not None
    listed = "; ".join(f"devices[{c.position - 1}]: {c.describe()}" for c in conf.pool)
    return CniError(
        INVALID_CONFIG,
        f"deviceID {conf.selectors.device_id} is {what}, which is not one of the pool's devices ({listed})",
        about_device=True,
    )


@contextlib.contextmanager
def _chosen_device(conf: NetConf, env: CniEnv, host: Namespace, store: StateStore) -> Iterator[tuple[Link, str | None]]:
    """The device to take, with its lock held: the one selected, or the first free one of the pool.

    A deviceID (from Multus or a device plugin) wins over the pool, but must be one of its devices.
    """
    if conf.pool is not None and not conf.selectors.any():
        with _pool_pick(conf, env, host, store) as chosen:
            yield chosen
        return
    first = _find_unclaimed(conf, host, store)
    if conf.pool is not None and not pool.admits(conf.pool, first):
        raise _outside_pool(conf, f"device {first.name}")
    pci = pci_address_of(first.name)
    with device_lock(conf.data_dir, identity(pci, first.perm_mac, first.mac), first.name, conf.lock_timeout):
        # Whoever held the lock before us may have taken the device: look again.
        device = _find_unclaimed(conf, host, store)
        if device.index != first.index:
            raise CniError(DEVICE_IN_USE, f"device {first.name} changed while waiting for its lock; retry")
        device = _claims_of(store, device, pci, env, host)
        _refuse_if_in_use(conf, host, device)
        yield device, pci


@contextlib.contextmanager
def _pool_pick(conf: NetConf, env: CniEnv, host: Namespace, store: StateStore) -> Iterator[tuple[Link, str | None]]:
    """The first free device of the pool, locked. One that a parallel ADD takes while we wait for its
    lock is passed over for the next, so parallel ADDs never share a device and never fail while a
    free one remains."""
    assert conf.pool is not None
    _give_back_dead_pool_claims(conf, host)
    for member in pool.survey(conf, host.rtnl, every_record(conf.data_dir)):
        if member.state != pool.FREE or member.link is None:
            continue
        link = member.link
        with contextlib.ExitStack() as held:
            try:
                held.enter_context(
                    device_lock(
                        conf.data_dir, identity(member.pci, link.perm_mac, link.mac), link.name, conf.lock_timeout
                    )
                )
                device = host.rtnl.link(index=link.index)
                if device is None or device.name != link.name:
                    continue  # taken by the ADD that held the lock
                device = _claims_of(store, device, member.pci, env, host)
                _refuse_if_in_use(conf, host, device)
            except CniError as err:
                if err.code not in (DEVICE_IN_USE, TRY_AGAIN_LATER):
                    raise
                log.info("pool of %s: passing over %s: %s", conf.name, link.name, err.msg)
                continue
            log.info("pool of %s: taking %s (devices[%d])", conf.name, device.name, member.candidate.position - 1)
            yield device, member.pci
            return
    raise pool.exhausted(conf, pool.survey(conf, host.rtnl, every_record(conf.data_dir)))


def _give_back_dead_pool_claims(conf: NetConf, host: Namespace) -> None:
    """Records of pool devices whose pod died: the device is the host's again, under its own name."""
    assert conf.pool is not None
    for record in every_record(conf.data_dir):
        if record.kind == "userspace" or not any(pool.record_matches(c, record) for c in conf.pool):
            continue
        if pods.alive(record):
            continue
        with device_lock(conf.data_dir, _record_key(record), record.original_name, conf.lock_timeout):
            what = release(record, None, host)
            StateStore(conf.data_dir, record.network).remove(record.container_id, record.ifname)
        log.warning(
            "pool of %s: claim of %s by %s was stale: %s", conf.name, record.original_name, record.container_id, what
        )


def _attach(
    conf: NetConf,
    env: CniEnv,
    environ: Mapping[str, str],
    store: StateStore,
    pod: Namespace,
    host: Namespace,
    device: Link,
    pci: str | None,
) -> tuple[Link, Result | None, str, dict[str, Any] | None]:
    """Record, move, configure: (the device in the pod, IPAM's result, the move strategy, the
    device's own network that went along).

    Every failure leaves the device home and no record behind, but for a device that did not
    make it home: its record is kept for DEL and GC.
    """
    from cni_hostdev import ipam

    strategy = _choose_strategy(conf)
    record = Record(
        network=conf.name,
        container_id=env.container_id,
        ifname=env.ifname,
        netns=env.netns,
        original_name=device.name,
        original_alias=device.alias,
        mac=device.mac,
        perm_mac=device.perm_mac,
        mtu=device.mtu,
        was_up=device.up,
        ifindex=device.index,
        pci_address=pci,
        strategy=strategy,
        phase="moving",
        staging=staging_path(conf.name, env) if strategy == RENAME_THEN_MOVE else None,
        altnames=list(device.altnames),
        driver=driver_of(device),
    )
    if conf.use_interface_network:
        from cni_hostdev import ifnet

        record.interface_network = ifnet.capture(host.rtnl, device)
    pods.pin(record, pod)
    if record.staging:
        # Before the record names it: DEL reads a missing staging dir as "not visible here",
        # and an ADD killed right after this save must not look like that on a fresh boot.
        os.makedirs(STAGING_DIR, mode=0o700, exist_ok=True)
    store.save(record)
    checkpoint("record-written")
    try:
        moved = move_in(host, pod, device, env.ifname, strategy, record.staging or "", record.interface_network)
    except BaseException:
        # Keep the record only if the device did not make it home: DEL and GC need it then.
        if host.rtnl.link(name=device.name) is not None:
            store.remove(env.container_id, env.ifname)
        raise
    record.phase = "attached"
    record.ifindex = moved.index
    record.staging = None
    store.save(record)
    checkpoint("attached")
    try:
        if record.interface_network is not None:
            _copy_interface_network(pod, moved, record.interface_network, env)
        ipam_result = _ipam_add(conf, environ, env)
        checkpoint("ipam-added")
        if ipam_result is not None:
            ipam.apply(pod.fd, pod.rtnl, moved, ipam_result)
            checkpoint("ipam-applied")
    except BaseException:
        _ipam_release(conf, environ, env)
        try:
            release(record, pod, host)
            store.remove(env.container_id, env.ifname)
        except (CniError, OSError) as err:
            log.error("could not return %s after a failed ADD: %s", device.name, err)
        raise
    return moved, ipam_result, strategy, record.interface_network


def _add_userspace(
    env: CniEnv, conf: NetConf, environ: Mapping[str, str], store: StateStore, pci: str, driver: str
) -> dict[str, Any]:
    """A PCI function bound to vfio-pci/uio: nothing to move, the pod's DPDK app drives it."""
    with device_lock(conf.data_dir, identity(pci, None, pci), pci, conf.lock_timeout):
        for record in store.all():
            if record.pci_address == pci and pods.alive(record):
                raise CniError(
                    DEVICE_IN_USE,
                    f"PCI device {pci} ({driver}) is claimed by container {record.container_id} (netns {record.netns})",
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
        store.save(record)
        try:
            ipam_result = _ipam_add(conf, environ, env)
        except BaseException:
            store.remove(env.container_id, env.ifname)
            raise
    log.info("ADD %s: PCI %s is bound to %s; nothing moved", env.container_id, pci, driver)
    iface = Interface(name=env.ifname, sandbox=env.netns, pci_id=pci)
    return _merge(conf, iface, ipam_result).to_json(conf.cni_version)


# --- giving devices back ------------------------------------------------------------


def _original(record: Record) -> Original:
    altnames = tuple(record.altnames) if record.altnames is not None else None
    return Original(
        record.original_name,
        record.original_alias,
        record.mac,
        record.mtu,
        record.was_up,
        altnames,
        record.interface_network,
    )


def release(record: Record, pod: Namespace | None, host: Namespace) -> str:
    """Give the device of `record` back to the host under its original name; say what happened."""
    if record.kind == "userspace":
        return f"PCI device {record.pci_address} was never moved"
    original = _original(record)
    if record.staging and os.path.lexists(record.staging):
        staged = _from_staging(record, original, host)
        if staged:
            return staged
    elif record.staging and not os.path.isdir(STAGING_DIR):
        # Run where /run/cni-hostdev is not visible (a container without that mount), we cannot
        # tell whether the interrupted ADD left the device in its staging netns: keep the record.
        raise CniError(
            STATE_FAILURE,
            f"device {original.name} may be in staging netns {record.staging}, which is not visible here",
        )
    if pod is not None:
        link = find_moved(pod.rtnl, original, record.ifindex, record.perm_mac)
        if link is not None:
            send_home(pod.rtnl, link, host, original)
            checkpoint("returned-home")
            return f"returned {link.name} to the host as {original.name}"
    # The pod netns is gone or no longer holds the device: a physical device was
    # refunded to the host under its pod name (or devN), a virtual one vanished.
    link = find_refunded(host, record)
    if link is None:
        if host.rtnl.link(name=original.name) is not None:
            return f"device {original.name} is in the host, untouched (nothing proves it is the one we moved)"
        what = f"device {original.name} no longer exists (a virtual device dies with its netns)"
        log.warning("%s/%s: %s", record.container_id, record.ifname, what)
        return what
    if link.name == original.name and link.alias != original.name:
        # Home under its own name without our marker: we never moved it (or the
        # record is not ours). Leave the device exactly as it is.
        return f"device {original.name} is in the host, untouched"
    if link.name != original.name:
        refuse_if_name_taken(host.rtnl, original.name, link.name)
        if link.up:
            host.rtnl.set_link(link.index, up=False)
        host.rtnl.set_link(link.index, name=original.name)
        link = host.rtnl.link(index=link.index) or link
    restore(host.rtnl, link, original)
    return f"restored {original.name} in the host (it had come back as {link.name})"


def _from_staging(record: Record, original: Original, host: Namespace) -> str | None:
    """A crash during rename-then-move left the device in the bind-mounted staging netns."""
    assert record.staging is not None
    try:
        fd = netns.open_netns(record.staging)
    except (OSError, netns.NotANetns):
        netns.unpersist(record.staging)
        return None
    staging = Namespace.open(fd)
    try:
        # The staging netns is ours alone: there the original name is proof enough.
        link = find_moved(staging.rtnl, original, record.ifindex, record.perm_mac) or staging.rtnl.link(
            name=original.name
        )
        if link is not None:
            send_home(staging.rtnl, link, host, original)
    finally:
        staging.close()
    netns.unpersist(record.staging)
    return f"returned {original.name} from the staging netns of an interrupted ADD" if link is not None else None


def find_refunded(host: Namespace, record: Record) -> Link | None:
    """Our device in the host under any name (the kernel refunds a physical device to the host when
    its pod's netns dies, under the name it had there, and its ifindex may change): by PCI address,
    else by permanent MAC, else by MAC together with our marker. Never by name or alias alone."""
    links = host.rtnl.links()
    if record.pci_address:
        for link in links:
            if pci_address_of(link.name) == record.pci_address:
                return link
    if record.perm_mac:
        return next((link for link in links if link.perm_mac == record.perm_mac), None)
    for link in links:
        if link.alias == record.original_name and link.mac == record.mac:
            return link
    return None


# --- DEL, CHECK, STATUS, GC ---------------------------------------------------------


def cmd_del(env: CniEnv, conf: NetConf, environ: Mapping[str, str]) -> None:
    from cni_hostdev import ipam

    if not env.attachable:
        log.warning("DEL %s: CNI_IFNAME %r was never attachable; nothing to do", env.container_id, env.ifname)
        return
    # IPAM first: an allocation must not leak even when the netns or the device is gone.
    if conf.ipam is not None:
        ipam.delegate("DEL", conf, environ, env.path)
    store = StateStore(conf.data_dir, conf.name)
    record = store.load(env.container_id, env.ifname)
    if record is None:
        log.info("DEL %s/%s: nothing recorded, nothing to do", env.container_id, env.ifname)
        return
    with (
        device_lock(
            conf.data_dir, _record_key(record), record.original_name or str(record.pci_address), conf.lock_timeout
        ),
        # An empty CNI_NETNS means the runtime lost track of the pod, not that the device left it.
        _records_pod(record, env.netns or record.netns) as pod,
        _host() as host,
    ):
        what = release(record, pod, host)
        store.remove(env.container_id, env.ifname)
    log.info("DEL %s/%s: %s", env.container_id, env.ifname, what)


def cmd_check(env: CniEnv, conf: NetConf, environ: Mapping[str, str]) -> None:
    from cni_hostdev import ipam

    prev = conf.prev_result
    if prev is None:
        raise CniError(INVALID_CONFIG, "config key prevResult is missing: CHECK needs the result of ADD")
    if conf.ipam is not None:
        ipam.delegate("CHECK", conf, environ, env.path)
    record = StateStore(conf.data_dir, conf.name).load(env.container_id, env.ifname)
    if record is None:
        raise CniError(CHECK_FAILED, f"no attachment recorded for container {env.container_id} interface {env.ifname}")
    reported = [(n, i) for n, i in enumerate(prev.interfaces) if i.name == env.ifname and i.sandbox in ("", env.netns)]
    if not reported:
        raise CniError(CHECK_FAILED, f"prevResult reports no interface {env.ifname} in netns {env.netns}")
    position, iface = reported[0]
    if record.kind == "userspace":
        return
    with _pod(env.netns, required=True) as pod:
        assert pod is not None
        link = pod.rtnl.link(name=env.ifname)
        if link is None:
            raise CniError(CHECK_FAILED, f"interface {env.ifname} is missing from netns {env.netns}")
        if iface.mac and iface.mac.lower() != link.mac:
            raise CniError(CHECK_FAILED, f"interface {env.ifname} has MAC {link.mac}, prevResult says {iface.mac}")
        if not link.up:
            raise CniError(CHECK_FAILED, f"interface {env.ifname} in netns {env.netns} is down")
        ours = Result(
            ips=[ip for ip in prev.ips if ip.interface in (None, position)],
            routes=prev.routes if conf.ipam is not None else [],
        )
        ipam.verify(pod.rtnl, link, ours)


def cmd_status(env: CniEnv, conf: NetConf, environ: Mapping[str, str]) -> None:
    from cni_hostdev import ipam

    store = StateStore(conf.data_dir, conf.name)
    try:
        store.ensure_dir()
    except CniError as err:
        raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {err.msg}") from None
    if not os.access(store.dir, os.W_OK):
        raise CniError(NOT_AVAILABLE, f"cannot serve ADD: state directory {store.dir} is not writable")
    if conf.selectors.any() and userspace_function(conf.selectors) is None:
        with _host() as host:
            try:
                find_device(host.rtnl, conf.selectors)
            except CniError as err:
                if err.code != DEVICE_NOT_FOUND:
                    raise
                claims = [r for r in store.all() if pods.alive(r)]
                holder = f" (claimed by container {claims[0].container_id})" if claims else ""
                raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {err.msg}{holder}", about_device=True) from None
    if conf.pool is not None and not conf.selectors.any():
        with _host() as host:
            members = pool.survey(conf, host.rtnl, every_record(conf.data_dir))
        if not any(m.state == pool.FREE or m.state == pool.STALE for m in members):
            refusal = pool.exhausted(conf, members)
            raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {refusal.msg}", about_device=True)
    if conf.ipam is not None:
        try:
            ipam.delegate("STATUS", conf, environ, env.path)
        except CniError as err:
            raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {err.msg}") from None


def _needs_release(record: Record, valid: set[tuple[str, str]] | None) -> bool:
    """Its pod died, the runtime no longer knows it, or its ADD was interrupted."""
    if record.phase != "attached" or not pods.alive(record):
        return True
    return valid is not None and (record.container_id, record.ifname) not in valid


def release_records(
    store: StateStore, lock_timeout: float, valid: set[tuple[str, str]] | None = None
) -> tuple[list[str], list[str]]:
    """Give back every device whose pod died, and (given `valid`) every attachment not in it.

    Returns (what was done, what failed); one bad record never stops the others.
    """
    done: list[str] = []
    failures: list[str] = []
    with _host() as host:
        for listed in store.all():
            if not _needs_release(listed, valid):
                continue
            try:
                with device_lock(store.root, _record_key(listed), listed.original_name, lock_timeout):
                    # Holding the lock, no ADD or DEL of this device is running: look again.
                    record = store.load(listed.container_id, listed.ifname)
                    if record is None or not _needs_release(record, valid):
                        continue
                    with _records_pod(record) as pod:
                        what = release(record, pod, host)
                    store.remove(record.container_id, record.ifname)
                done.append(f"{record.container_id}/{record.ifname}: {what}")
            except (CniError, OSError) as err:
                failures.append(f"{listed.container_id}/{listed.ifname}: {getattr(err, 'msg', err)}")
    return done, failures


def cmd_gc(env: CniEnv, conf: NetConf, environ: Mapping[str, str]) -> None:
    """Release attachments the runtime no longer knows, and repair those whose pod died."""
    from cni_hostdev import ipam

    store = StateStore(conf.data_dir, conf.name)
    valid = set(conf.valid_attachments) if conf.valid_attachments is not None else None
    done, failures = release_records(store, conf.lock_timeout, valid)
    for line in done:
        log.info("GC %s", line)
    if conf.ipam is not None:
        ipam.delegate("GC", conf, environ, env.path)
    if failures:
        raise CniError(DEVICE_IN_USE, f"GC on node {node_name()} could not release: " + "; ".join(failures))
