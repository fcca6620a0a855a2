"""STATUS: whether an ADD could be served now: a writable state dir, a device (or a free pool
member) on this node, an IPAM plugin that says it is ready."""

from __future__ import annotations

import os

from cni_hostdev import identity, netns, pods
from cni_hostdev.errors import DEVICE_NOT_FOUND, NOT_AVAILABLE, CniError
from cni_hostdev.lookup import find_device, kernelpath_holds_pci, userspace_function
from cni_hostdev.plugin.call import Call
from cni_hostdev.state import StateStore, every_record


def handle(call: Call) -> None:
    conf = call.conf
    store = StateStore(conf.data_dir, conf.name)
    try:
        store.ensure_dir()
    except CniError as err:
        raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {err.msg}") from None
    if not os.access(store.dir, os.W_OK):
        raise CniError(NOT_AVAILABLE, f"cannot serve ADD: state directory {store.dir} is not writable")
    if conf.selectors.any() and userspace_function(conf.selectors) is None:
        with netns.host() as host:
            try:
                find_device(host.rtnl, conf.selectors)
            except CniError as err:
                if err.code != DEVICE_NOT_FOUND:
                    raise
                candidate = conf.candidates()[0]
                claims = [
                    r for r in every_record(conf.data_dir) if identity.selected_by(candidate, r, kernelpath_holds_pci)
                ]
                live = [r for r in claims if pods.alive(r)]
                holder = f" (claimed by container {live[0].container_id})" if live else ""
                raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {err.msg}{holder}", about_device=True) from None
    if conf.pool is not None and not conf.selectors.any():
        from cni_hostdev.plugin import pool

        with netns.host() as host:
            members = pool.survey(conf, host.rtnl, every_record(conf.data_dir))
        if not any(m.state in (pool.FREE, pool.STALE) for m in members):
            refusal = pool.exhausted(conf, members)
            raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {refusal.msg}", about_device=True)
    if conf.ipam is not None:
        try:
            call.ipam("STATUS")
        except CniError as err:
            raise CniError(NOT_AVAILABLE, f"cannot serve ADD: {err.msg}") from None
