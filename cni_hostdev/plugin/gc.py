"""GC: give back attachments the runtime no longer knows, and those whose pod died; then IPAM's GC."""

from __future__ import annotations

from cni_hostdev import logs
from cni_hostdev.errors import TRY_AGAIN_LATER, CniError, node_name
from cni_hostdev.plugin.call import Call
from cni_hostdev.plugin.release import release_records
from cni_hostdev.state import StateStore, index_missing

log = logs.get_logger(__name__)


def handle(call: Call) -> None:
    conf = call.conf
    valid = set(conf.valid_attachments) if conf.valid_attachments is not None else None
    done, failures = release_records(StateStore(conf.data_dir, conf.name), conf.lock_timeout, valid)
    index_missing(conf.data_dir)  # and the record index set right, as a lookup would (linear, as GC is)
    for line in done:
        log.info("GC %s", line)
    log.info("GC of network %s: %d given back, %d failed", conf.name, len(done), len(failures))
    if conf.ipam is not None:
        call.ipam("GC")
    if failures:
        # Each failure (a busy lock, a staging netns not visible here) is one a later GC can get past.
        raise CniError(TRY_AGAIN_LATER, f"GC on node {node_name()} could not release: " + "; ".join(failures))
