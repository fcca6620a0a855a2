"""`host-device repair`: the DaemonSet's long-running loop that gives back devices of dead pods,
and keeps an eye on the node with doctor's checks.

Pods can die without DEL (node pressure, a runtime crash): the kernel then refunds a physical NIC
under its pod name. This loop finds those through the records and restores them, as GC would,
without waiting for the runtime. A device that came home under another name because its own was
taken gets its name back here once the name is free (cni_hostdev/plugin/waiting.py), and the
record index is kept in step with the records. Each pass also runs `host-device doctor`'s checks (over the
config dirs and files it is given) and logs each new finding once, so that `kubectl logs` of
the DaemonSet is the cluster's view, node by node; with `--metrics-file` it writes what it saw
for node_exporter's textfile collector. What it gives back of a network whose config (in those
dirs and files) has a `logFile` is written there too, beside that network's ADDs and DELs.
"""

from __future__ import annotations

import signal
import time

from cni_hostdev import logfile, logs, netns
from cni_hostdev.identity import record_lock_key
from cni_hostdev.locks import DEFAULT_TIMEOUT, device_lock
from cni_hostdev.plugin.release import release_records
from cni_hostdev.plugin.waiting import every_waiting, rename_home
from cni_hostdev.state import StateStore, index_missing, networks
from cni_hostdev.tools import doctor, metrics

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni_hostdev.tools.configs import Definition

log = logs.get_logger(__name__)
_SEVERITY_LEVELS = {doctor.ERROR: logs.ERROR, doctor.WARNING: logs.WARNING, doctor.INFO: logs.INFO}


class Watch:
    """What the loop is told to watch, and what it has said about it."""

    __slots__ = ("conf_dirs", "config_files", "log_files", "metrics_file", "reported", "totals", "types")

    def __init__(
        self,
        conf_dirs: list[str],
        config_files: list[str],
        metrics_file: str | None,
        types: tuple[str, ...] = ("host-device",),
    ) -> None:
        self.conf_dirs = conf_dirs
        self.config_files = config_files
        self.metrics_file = metrics_file
        self.types = types
        self.reported: set[tuple[str, str, str]] = set()
        self.totals = metrics.Totals()
        # Kept across passes, by the settings that made them: a bad or unwritable logFile is one
        # warning, not one per pass.
        self.log_files: dict[str, logfile.LogFile | None] = {}

    def log_files_of(self, found: list[Definition]) -> dict[str, logfile.LogFile]:
        """Each network's logFile, as its first definition that names one sets it."""
        chosen: dict[str, logfile.LogFile] = {}
        in_use: set[str] = set()
        for definition in found:
            config = definition.config
            if definition.network in chosen or not config.get("logFile"):
                continue
            key = repr((config.get("logFile"), config.get("logOptions"), config.get("logLevel")))
            if key not in self.log_files:
                self.log_files[key] = logfile.for_config(config)
            in_use.add(key)
            sink = self.log_files[key]
            if sink is not None:
                chosen[definition.network] = sink
        for key in set(self.log_files) - in_use:  # a config that changed or went away
            sink = self.log_files.pop(key)
            if sink is not None:
                sink.close()
        return chosen


def repair_once(
    data_dir: str, totals: metrics.Totals | None = None, log_files: dict[str, logfile.LogFile] | None = None
) -> int:
    """One pass over every network's records; returns how many failed. `log_files`: where, besides
    stderr, each network's lines go."""
    failed = 0
    given_back = 0
    for network in networks(data_dir):
        logs.to_file((log_files or {}).get(network))
        logs.context(command="repair", network=network)
        try:
            done, failures = _repair_network(data_dir, network)
        finally:
            logs.to_file(None)
            logs.context(command=None, network=None)
        given_back += done
        failed += failures
    failed += _rename_waiting(data_dir, log_files or {})
    failed += _index(data_dir)
    if totals is not None:
        totals.given_back += given_back
        totals.failed += failed
    return failed


def _repair_network(data_dir: str, network: str) -> tuple[int, int]:
    """(given back, failed) of one network's records."""
    try:
        done, failures = release_records(StateStore(data_dir, network), DEFAULT_TIMEOUT)
    except Exception as err:
        # Keep looping, whatever it was: a crash-looping DaemonSet pod repairs nothing.
        log.error("cannot repair network %s: %s", network, getattr(err, "msg", None) or f"{type(err).__name__}: {err}")
        return 0, 1
    for line in done:
        log.warning("repaired %s", line)
    for line in failures:
        log.error("cannot repair %s", line)
    return len(done), len(failures)


def _rename_waiting(data_dir: str, log_files: dict[str, logfile.LogFile]) -> int:
    """Devices home under another name get theirs back as soon as it is free; how many failed."""
    failed = 0
    waiting = every_waiting(data_dir)
    if not waiting:
        return 0
    with netns.host() as host:
        for record in waiting:
            logs.to_file(log_files.get(record.network))
            logs.context(command="repair", network=record.network, device=record.original_name)
            try:
                with device_lock(data_dir, record_lock_key(record), record.original_name, DEFAULT_TIMEOUT):
                    what = rename_home(data_dir, record, host)
                if what is not None:
                    log.warning("repaired %s/%s: %s", record.container_id, record.ifname, what)
            except Exception as err:  # one device must not keep the others waiting
                log.error("cannot give %s its name back: %s", record.original_name, getattr(err, "msg", None) or err)
                failed += 1
            finally:
                logs.to_file(None)
                logs.context(command=None, network=None, device=None)
    return failed


def _index(data_dir: str) -> int:
    """The record index in step with the records (cni_hostdev/record_index.py), as every lookup
    sets it: entries a record lacks are added, those a crash left without a record dropped. 1 if it
    could not be done."""
    try:
        index_missing(data_dir, verify=True)
    except OSError as err:
        log.error("cannot check the record index of %s: %s", data_dir, err)
        return 1
    return 0


def definitions(watch: Watch, report: doctor.Report) -> list[Definition] | None:
    """The watched networks' configs (None when they cannot be read: logged)."""
    if not (watch.conf_dirs or watch.config_files):
        return []
    try:
        return doctor.definitions(watch.conf_dirs, watch.config_files, report, watch.types)
    except Exception as err:  # the checks must never stop the repairs
        log.error("doctor: %s", err if isinstance(err, doctor.CannotRun) else f"{type(err).__name__}: {err}")
        return None


def check(data_dir: str, watch: Watch, found: list[Definition], report: doctor.Report) -> doctor.Report | None:
    """Doctor's checks; each finding logged the first pass it appears (again if it comes back)."""
    try:
        doctor.examine(found, data_dir, report)
    except Exception as err:  # the checks must never stop the repairs
        log.error("doctor: %s", err if isinstance(err, doctor.CannotRun) else f"{type(err).__name__}: {err}")
        return None
    keys = {finding.key() for finding in report.findings}
    for finding in report.findings:
        if finding.key() not in watch.reported:
            logs.emit(_SEVERITY_LEVELS[finding.severity], "doctor: %s", (finding.message,))
    for gone in watch.reported - keys:
        log.info("doctor: no longer: %s", gone[2])
    watch.reported = keys
    return report


def repair_loop(data_dir: str, interval: float, once: bool, watch: Watch | None = None) -> int:
    watch = watch or Watch([], [], None)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        report = doctor.Report()
        found = definitions(watch, report)
        failed = repair_once(data_dir, watch.totals, watch.log_files_of(found or []))
        checked = check(data_dir, watch, found, report) if found is not None else None
        if watch.metrics_file:
            try:
                metrics.write(watch.metrics_file, metrics.render(data_dir, watch.totals, checked))
            except Exception as err:  # nor must the metrics
                log.error("cannot write metrics file %s: %s", watch.metrics_file, getattr(err, "strerror", None) or err)
        if once:
            return 1 if failed else 0
        deadline = time.monotonic() + interval
        while not stopping and time.monotonic() < deadline:
            time.sleep(min(1.0, interval))
        if stopping:
            return 0
