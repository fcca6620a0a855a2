"""The repair loop's metrics, in node_exporter's textfile format (`repair --metrics-file PATH`).

Written whole after every pass, atomically (a temp file renamed over the last one), so the
textfile collector never reads half of it.
"""

from __future__ import annotations

import time

from cni_hostdev import pods
from cni_hostdev.atomic_files import write_atomically
from cni_hostdev.errors import node_name
from cni_hostdev.state import every_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni_hostdev.tools.doctor import Report

SEVERITIES = ("error", "warning", "info")


class Totals:
    """What the loop did since it started: devices given back, give-backs that failed."""

    __slots__ = ("failed", "given_back")

    def __init__(self) -> None:
        self.given_back = 0
        self.failed = 0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, value: float, **labels: str) -> str:
    given = {"node": node_name(), **labels}
    inside = ",".join(f'{key}="{_label(text)}"' for key, text in given.items())
    number = str(value) if isinstance(value, int) else repr(float(value))  # every digit: a timestamp, a count
    return f"{name}{{{inside}}} {number}"


def render(data_dir: str, totals: Totals, report: Report | None) -> str:
    counts: dict[tuple[str, str], int] = {}
    for record in every_record(data_dir, quiet=True):
        key = (record.network, "live" if pods.alive(record) else "stale")
        counts[key] = counts.get(key, 0) + 1
    stale = sum(n for (_, state), n in counts.items() if state == "stale")
    lines = [
        "# HELP cni_hostdev_attachments Attachments recorded on this node, by network and whether their pod lives.",
        "# TYPE cni_hostdev_attachments gauge",
        *(
            _sample("cni_hostdev_attachments", n, network=network, state=state)
            for (network, state), n in sorted(counts.items())
        ),
        "# HELP cni_hostdev_stale_claims Attachments whose pod is gone, their device waiting to be given back.",
        "# TYPE cni_hostdev_stale_claims gauge",
        _sample("cni_hostdev_stale_claims", stale),
        "# HELP cni_hostdev_repair_given_back_total Devices the repair loop gave back since it started.",
        "# TYPE cni_hostdev_repair_given_back_total counter",
        _sample("cni_hostdev_repair_given_back_total", totals.given_back),
        "# HELP cni_hostdev_repair_failures_total Give-backs by the repair loop that failed, since it started.",
        "# TYPE cni_hostdev_repair_failures_total counter",
        _sample("cni_hostdev_repair_failures_total", totals.failed),
    ]
    if report is not None:
        lines += [
            "# HELP cni_hostdev_doctor_findings Findings of the last doctor pass, by severity.",
            "# TYPE cni_hostdev_doctor_findings gauge",
            *(_sample("cni_hostdev_doctor_findings", report.count(s), severity=s) for s in SEVERITIES),
        ]
    lines += [
        "# HELP cni_hostdev_repair_last_pass_timestamp_seconds When the repair loop's last pass ended.",
        "# TYPE cni_hostdev_repair_last_pass_timestamp_seconds gauge",
        _sample("cni_hostdev_repair_last_pass_timestamp_seconds", round(time.time(), 3)),
    ]
    return "\n".join(lines) + "\n"


def write(path: str, text: str) -> None:
    """Replace the metrics file; readable by node_exporter, which runs as another user."""
    data = text.encode()
    write_atomically(path, lambda out: out.write(data), mode=0o644, durable=False)
