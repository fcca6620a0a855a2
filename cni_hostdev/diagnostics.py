"""What tests and measurements ask of a call, inert in production: marks of an exec's phases for
`make profile`, and faults injected at named steps for the crash and rollback tests.

Marks: with CNI_HOSTDEV_PROFILE=PATH set, the plugin appends one JSON line to PATH on its way out:
`{"command": ..., "start": t, "ready": t, "done": t}` in seconds of the realtime clock (the clock
strace and the benchmark read too). `start` is the first line of the frozen entry script, `ready`
is when everything the command needs is imported and its input parsed, `done` is when the
command's own work ended and its answer is about to be written. ADD and DEL mark their steps in
between (`opened`, `chosen`, `recorded`, `moved`): see the step table of `make profile`
(tests/perf/bench.py).

Faults: inert unless CNI_HOSTDEV_TESTING=1 is set as well (a production runtime never sets it, so a
stray CNI_HOSTDEV_FAIL_AT in an environment does nothing). `CNI_HOSTDEV_FAIL_AT=step` raises there
(to prove rollback); `CNI_HOSTDEV_KILL_AT=step` SIGKILLs the process there (to prove crash recovery).
"""

from __future__ import annotations

import os
import time

_PATH = os.environ.get("CNI_HOSTDEV_PROFILE")
_marks: dict[str, float] = {}


def mark(name: str, at: float | None = None) -> None:
    if _PATH:
        _marks[name] = time.time() if at is None else at


def flush(command: str) -> None:
    if not _PATH or not _marks:
        return
    fields = ", ".join(f'"{name}": {value:.6f}' for name, value in _marks.items())
    try:
        with open(_PATH, "a") as out:
            out.write(f'{{"command": "{command}", {fields}}}\n')
    except OSError:
        pass  # a profile that cannot be written must not cost the command


class InjectedFault(RuntimeError):
    pass


def checkpoint(step: str) -> None:
    if os.environ.get("CNI_HOSTDEV_TESTING") != "1":
        return
    if os.environ.get("CNI_HOSTDEV_KILL_AT") == step:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    if os.environ.get("CNI_HOSTDEV_FAIL_AT") == step:
        raise InjectedFault(f"injected failure after step {step}")
