"""The entry point's one policy of its own: no cyclic garbage collection in a CNI call (a short
process that leaves with os._exit), collection as usual in the node tools (which can run for days)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import gc, sys
from cni_hostdev import cli
from cni_hostdev.tools import cli as tools_cli
print("call:", gc.isenabled())
tools_cli.main = lambda args: print("tool:", gc.isenabled()) or 0
sys.argv = ["host-device", "probe"]
cli.main()
"""


def test_a_call_runs_without_the_collector_and_a_tool_with_it() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.splitlines() == ["call: False", "tool: True"], out.stderr
