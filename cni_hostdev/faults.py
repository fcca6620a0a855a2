"""Test-only fault injection at named steps of a command.

Inert unless CNI_HOSTDEV_TESTING=1 is set as well: a production runtime never
sets it, so a stray CNI_HOSTDEV_FAIL_AT in an environment does nothing.
`CNI_HOSTDEV_FAIL_AT=step` raises there (to prove rollback); `CNI_HOSTDEV_KILL_AT=step`
SIGKILLs the process there (to prove crash recovery).
"""

from __future__ import annotations

import os


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
