"""Entry point: a CNI call when CNI_COMMAND is set (cni_hostdev/plugin/), else a node tool (tools/)."""

from __future__ import annotations

import gc
import os
import sys

from cni_hostdev import diagnostics
from cni_hostdev.lean.json import dumps

# A CNI call is one short process that leaves with os._exit: the cyclic garbage collector would
# only walk, again and again, the tens of thousands of objects its imports create (~1.3 ms of
# every exec), to free nothing that matters. The node tools, which can run for days, turn it on.
gc.disable()

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn


def write_answer(obj: dict[str, Any] | None) -> None:
    if obj is not None:
        sys.stdout.write(dumps(obj) + "\n")
    sys.stdout.flush()
    sys.stderr.flush()


def finish(obj: dict[str, Any] | None, status: int) -> NoReturn:
    """Print the call's answer and leave at once."""
    diagnostics.mark("done")
    write_answer(obj)
    diagnostics.flush(os.environ.get("CNI_COMMAND", ""))
    # Interpreter teardown after the netlink imports costs tens of ms and does
    # nothing we need: everything is written and every fd is CLOEXEC.
    os._exit(status)


def main(started: float | None = None) -> None:
    """`started`: when the entry script began (time.time()), for the phase marks."""
    diagnostics.mark("start", started)
    args = sys.argv[1:]
    # A runtime always sets CNI_COMMAND; even an empty one means "answer as a plugin" (with code 4).
    if "CNI_COMMAND" in os.environ or (not args and not sys.stdin.isatty()):
        from cni_hostdev.plugin import dispatch

        try:
            stdin = sys.stdin.buffer.read()
        except OSError:
            stdin = b""
        obj, status = dispatch.run(os.environ, stdin)
        finish(obj, status)
    gc.enable()
    from cni_hostdev.tools.cli import main as node_tool

    sys.exit(node_tool(args))
