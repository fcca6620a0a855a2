"""DEL: release the IPAM allocation, then give the recorded device back; repeatable, never stuck.

A second DEL, a DEL with an empty or vanished netns, a DEL of an ifname no ADD would take: all
succeed, because the runtime retries a failed DEL forever and the pod stays terminating.
"""

from __future__ import annotations

from cni_hostdev import diagnostics, logs, netns
from cni_hostdev.identity import record_lock_key
from cni_hostdev.locks import device_lock
from cni_hostdev.plugin.call import Call
from cni_hostdev.plugin.release import give_back, records_pod
from cni_hostdev.state import CorruptRecord, StateStore, index_missing

log = logs.get_logger(__name__)


def handle(call: Call) -> None:
    conf, env = call.conf, call.env
    if not env.attachable:
        log.warning("DEL %s: CNI_IFNAME %r was never attachable; nothing to do", env.container_id, env.ifname)
        return
    # IPAM first: an allocation must not leak even when the netns or the device is gone.
    if conf.ipam is not None:
        call.ipam("DEL")
    store = StateStore(conf.data_dir, conf.name)
    try:
        record = store.load(env.container_id, env.ifname)
    except CorruptRecord as corrupt:
        # Failing on it would fail every retry, and the pod would stay terminating: what the pod
        # itself proves is given back, then the record goes aside for inspection. (A record that
        # only cannot be read now, EIO or EMFILE, fails this DEL: the retry reads it.)
        from cni_hostdev.plugin.unreadable_record import release_without_record

        log.warning("DEL %s/%s: %s; giving back what the pod proves", env.container_id, env.ifname, corrupt.msg)
        what = release_without_record(
            conf.data_dir, conf.name, env.container_id, env.netns, env.ifname, conf.lock_timeout
        )
        aside = store.set_aside(env.container_id, env.ifname)
        log.warning("DEL %s/%s without its record: %s; %s", env.container_id, env.ifname, what, _aside(aside))
        return
    if record is None:
        # An ADD killed before its record left an index entry, maybe: the index is set right.
        index_missing(conf.data_dir)
        log.info("DEL %s/%s: nothing recorded, nothing to do", env.container_id, env.ifname)
        return
    logs.context(device=record.original_name or record.pci_address)
    with (
        device_lock(
            conf.data_dir, record_lock_key(record), record.original_name or str(record.pci_address), conf.lock_timeout
        ),
        # An empty CNI_NETNS means the runtime lost track of the pod, not that the device left it.
        records_pod(record, env.netns or record.netns) as pod,
        netns.host() as host,
    ):
        diagnostics.mark("opened")
        what = give_back(store, record, pod, host)
        diagnostics.mark("moved")
    log.info("DEL %s/%s: %s", env.container_id, env.ifname, what)


def _aside(path: str | None) -> str:
    if path is None:
        return "it could not be moved aside and will be met again"
    return f"moved aside to {path}, kept for inspection and never read again"
