"""`host-device repair`: the DaemonSet's long-running loop that gives back devices of dead pods.

Pods can die without DEL (node pressure, a runtime crash): the kernel then
refunds a physical NIC under its pod name. This loop finds those through the
records and restores them, as GC would, without waiting for the runtime.
"""

from __future__ import annotations

import signal
import time

from cni_hostdev import logs
from cni_hostdev.errors import CniError
from cni_hostdev.locks import DEFAULT_TIMEOUT
from cni_hostdev.plugin.release import release_records
from cni_hostdev.state import StateStore, networks

log = logs.get_logger(__name__)


def repair_once(data_dir: str) -> int:
    """One pass over every network's records; returns how many failed."""
    failed = 0
    for network in networks(data_dir):
        try:
            done, failures = release_records(StateStore(data_dir, network), DEFAULT_TIMEOUT)
        except (CniError, OSError) as err:
            # Keep looping: a crash-looping DaemonSet pod repairs nothing.
            log.error("cannot repair network %s: %s", network, getattr(err, "msg", err))
            failed += 1
            continue
        for line in done:
            log.warning("repaired %s", line)
        for line in failures:
            log.error("cannot repair %s", line)
        failed += len(failures)
    return failed


def repair_loop(data_dir: str, interval: float, once: bool) -> int:
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        failed = repair_once(data_dir)
        if once:
            return 1 if failed else 0
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(1.0, interval))
        if stopping:
            return 0
