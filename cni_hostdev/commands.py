"""The CNI commands, each reading like the spec: validate, look up, act, report."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from cni_hostdev import netns
from cni_hostdev.config import CniEnv, NetConf
from cni_hostdev.errors import (
    CHECK_FAILED,
    DEVICE_IN_USE,
    DEVICE_NOT_FOUND,
    INCOMPATIBLE_VERSION,
    INVALID_CONFIG,
    INVALID_ENV,
    NOT_AVAILABLE,
    CniError,
)
from cni_hostdev.faults import checkpoint
from cni_hostdev.lookup import find_device, pci_address_of
from cni_hostdev.move import ATOMIC, RENAME_THEN_MOVE, Namespace, Original, find_moved, move_in, restore, send_home
from cni_hostdev.netlink import Link
from cni_hostdev.result import Interface, Result
from cni_hostdev.state import Record, StateStore

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _host() -> Iterator[Namespace]:
    space = Namespace.open(netns.open_current())
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


def _choose_strategy(conf: NetConf) -> str:
    if conf.move_strategy != "auto":
        return conf.move_strategy
    from cni_hostdev.probe import cached_probe

    return ATOMIC if cached_probe().atomicMoveRename else RENAME_THEN_MOVE


def _netns_alive(path: str) -> bool:
    try:
        os.close(netns.open_netns(path))
        return True
    except (OSError, netns.NotANetns):
        return False


def _refuse_if_in_use(conf: NetConf, env: CniEnv, host: Namespace, device: Link) -> None:
    if device.loopback:
        raise CniError(DEVICE_IN_USE, f"device {device.name} is the loopback device and cannot be moved")
    if device.kind == "bridge":
        raise CniError(
            DEVICE_IN_USE, f"device {device.name} is a bridge: bridges are netns-local and cannot change namespace"
        )
    if device.master:
        master = host.rtnl.link(index=device.master)
        master_name = master.name if master else f"ifindex {device.master}"
        raise CniError(DEVICE_IN_USE, f"device {device.name} is in use: it is a port of {master_name}")
    if not conf.raw.get("allowHostAddresses"):
        if device.index in host.rtnl.default_route_ifindexes():
            raise CniError(
                DEVICE_IN_USE,
                f"device {device.name} is in use by the host: it carries the default route "
                '(the node\'s uplink); set "allowHostAddresses": true to move it anyway',
            )
        addresses = host.rtnl.global_addresses().get(device.index)
        if addresses:
            raise CniError(
                DEVICE_IN_USE,
                f"device {device.name} is in use by the host: it has global address {addresses[0]}; "
                'set "allowHostAddresses": true to move it anyway',
            )
    for record in StateStore(conf.data_dir, conf.name).all():
        same = record.original_name == device.name or (record.perm_mac and record.perm_mac == device.perm_mac)
        if same and (record.container_id, record.ifname) != (env.container_id, env.ifname):
            if _netns_alive(record.netns):
                raise CniError(
                    DEVICE_IN_USE,
                    f"device {device.name} is claimed by container {record.container_id} (netns {record.netns})",
                )


def _find_unclaimed(conf: NetConf, host: Namespace, store: StateStore) -> Link:
    """The selected device; if it is missing because a pod holds it, say which pod."""
    try:
        return find_device(host.rtnl, conf.selectors)
    except CniError as err:
        if err.code == DEVICE_NOT_FOUND and conf.selectors.device:
            for record in store.all():
                if record.original_name == conf.selectors.device and _netns_alive(record.netns):
                    raise CniError(
                        DEVICE_IN_USE,
                        f"device {record.original_name} is claimed by container {record.container_id} "
                        f"(netns {record.netns}, as {record.ifname})",
                    ) from None
        raise


def _interface(link: Link, env: CniEnv, pci: str | None) -> Interface:
    return Interface(name=link.name, mac=link.mac, mtu=link.mtu, sandbox=env.netns, pci_id=pci)


def cmd_add(env: CniEnv, conf: NetConf) -> dict[str, Any]:
    if conf.ipam is not None:
        raise CniError(INVALID_CONFIG, f"config key ipam (type {conf.ipam.get('type')!r}) is not supported yet")
    if not Result().can_print_as(conf.version):
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"cniVersion {conf.cni_version} results must carry an IP address; configure ipam or use 0.3.0 or later",
        )
    store = StateStore(conf.data_dir, conf.name)
    existing = store.load(env.container_id, env.ifname)
    if existing is not None:
        raise CniError(
            DEVICE_IN_USE,
            f"container {env.container_id} already has {env.ifname} from device {existing.original_name}; "
            "run DEL first",
        )
    pod = _open_pod(env.netns, required=True)
    assert pod is not None
    try:
        with _host() as host:
            if netns.same_netns(pod.fd, host.fd):
                raise CniError(INVALID_ENV, f"CNI_NETNS {env.netns} is the host's own network namespace")
            device = _find_unclaimed(conf, host, store)
            _refuse_if_in_use(conf, env, host, device)
            strategy = _choose_strategy(conf)
            pci = pci_address_of(device.name)
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
            )
            store.save(record)
            checkpoint("record-written")
            try:
                moved = move_in(host, pod, device, env.ifname, strategy)
            except BaseException:
                # Keep the record only if the device did not make it home: DEL and GC need it then.
                if host.rtnl.link(name=device.name) is not None:
                    store.remove(env.container_id, env.ifname)
                raise
            record.phase = "attached"
            record.ifindex = moved.index
            store.save(record)
    finally:
        pod.close()
    result = conf.prev_result or Result()
    result.interfaces.append(_interface(moved, env, pci))
    log.info("ADD %s: %s -> %s:%s (%s)", env.container_id, device.name, env.netns, env.ifname, strategy)
    return result.to_json(conf.cni_version)


def _original(record: Record) -> Original:
    return Original(record.original_name, record.original_alias, record.mac, record.mtu, record.was_up)


def release(record: Record, pod: Namespace | None, host: Namespace) -> str:
    """Give the device of `record` back to the host; say what happened."""
    original = _original(record)
    if pod is not None:
        link = find_moved(pod.rtnl, original, record.ifname, record.ifindex)
        if link is not None:
            send_home(pod.rtnl, link, host, original)
            checkpoint("returned-home")
            return f"returned {link.name} to the host as {original.name}"
    # The pod netns is gone or no longer holds the device: a physical device was
    # refunded to the host under its pod name (or devN), a virtual one vanished.
    link = _find_refunded(host, record)
    if link is None:
        what = f"device {original.name} no longer exists (a virtual device dies with its netns)"
        log.warning("%s/%s: %s", record.container_id, record.ifname, what)
        return what
    if link.name != original.name:
        holder = host.rtnl.link(name=original.name)
        if holder is not None:
            raise CniError(
                DEVICE_IN_USE,
                f"device {original.name} came back as {link.name} but the name {original.name} is taken "
                f"(ifindex {holder.index}); leaving it as {link.name}",
            )
        if link.up:
            host.rtnl.set_link(link.index, up=False)
        host.rtnl.set_link(link.index, name=original.name)
        link = host.rtnl.link(index=link.index) or link
    restore(host.rtnl, link, original)
    return f"restored {original.name} in the host"


def _find_refunded(host: Namespace, record: Record) -> Link | None:
    links = host.rtnl.links()
    if record.pci_address:
        for link in links:
            if pci_address_of(link.name) == record.pci_address:
                return link
    if record.perm_mac:
        for link in links:
            if link.perm_mac == record.perm_mac:
                return link
    for link in links:
        if link.alias == record.original_name and link.mac == record.mac:
            return link
    for link in links:
        if link.name == record.original_name and link.mac == record.mac:
            return link
    return None


def cmd_del(env: CniEnv, conf: NetConf) -> None:
    store = StateStore(conf.data_dir, conf.name)
    record = store.load(env.container_id, env.ifname)
    if record is None:
        log.info("DEL %s/%s: nothing recorded, nothing to do", env.container_id, env.ifname)
        return
    pod = _open_pod(env.netns, required=False) if env.netns else None
    try:
        with _host() as host:
            what = release(record, pod, host)
    finally:
        if pod is not None:
            pod.close()
    store.remove(env.container_id, env.ifname)
    log.info("DEL %s/%s: %s", env.container_id, env.ifname, what)


def cmd_check(env: CniEnv, conf: NetConf) -> None:
    if conf.prev_result is None:
        raise CniError(INVALID_CONFIG, "config key prevResult is missing: CHECK needs the result of ADD")
    record = StateStore(conf.data_dir, conf.name).load(env.container_id, env.ifname)
    if record is None:
        raise CniError(CHECK_FAILED, f"no attachment recorded for container {env.container_id} interface {env.ifname}")
    pod = _open_pod(env.netns, required=True)
    assert pod is not None
    try:
        link = pod.rtnl.link(name=env.ifname)
    finally:
        pod.close()
    if link is None:
        raise CniError(CHECK_FAILED, f"interface {env.ifname} is missing from netns {env.netns}")
    reported = [i for i in conf.prev_result.interfaces if i.name == env.ifname and i.sandbox in ("", env.netns)]
    if not reported:
        raise CniError(CHECK_FAILED, f"prevResult reports no interface {env.ifname} in netns {env.netns}")
    if reported[0].mac and reported[0].mac.lower() != link.mac:
        raise CniError(CHECK_FAILED, f"interface {env.ifname} has MAC {link.mac}, prevResult says {reported[0].mac}")
    if not link.up:
        raise CniError(CHECK_FAILED, f"interface {env.ifname} in netns {env.netns} is down")


def cmd_status(conf: NetConf) -> None:
    store = StateStore(conf.data_dir, conf.name)
    try:
        store._ensure_dir()
    except CniError as err:
        raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {err.msg}") from None
    if not os.access(store.dir, os.W_OK):
        raise CniError(NOT_AVAILABLE, f"cannot serve ADD: state directory {store.dir} is not writable")
    if conf.selectors.any():
        with _host() as host:
            try:
                find_device(host.rtnl, conf.selectors)
            except CniError as err:
                if err.code != DEVICE_NOT_FOUND:
                    raise
                claims = [r for r in store.all() if _netns_alive(r.netns)]
                holder = f" (claimed by container {claims[0].container_id})" if claims else ""
                raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {err.msg}{holder}") from None


def cmd_gc(conf: NetConf) -> None:
    store = StateStore(conf.data_dir, conf.name)
    valid = set(conf.valid_attachments) if conf.valid_attachments is not None else None
    failures: list[str] = []
    with _host() as host:
        for record in store.all():
            if valid is None or (record.container_id, record.ifname) in valid:
                continue
            pod = None
            try:
                pod = _open_pod(record.netns, required=False) if record.netns else None
            except CniError:
                pod = None
            try:
                what = release(record, pod, host)
                store.remove(record.container_id, record.ifname)
                log.info("GC %s/%s: %s", record.container_id, record.ifname, what)
            except (CniError, OSError) as err:
                failures.append(f"{record.container_id}/{record.ifname}: {getattr(err, 'msg', err)}")
            finally:
                if pod is not None:
                    pod.close()
    if failures:
        raise CniError(DEVICE_IN_USE, "GC could not release: " + "; ".join(failures))
