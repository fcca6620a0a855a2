"""The kernel probe: throwaway devices in throwaway namespaces, cached per boot."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import Plugin, Sandbox, link_names


def test_probe_uses_throwaway_devices_and_caches(binary_plugin: Plugin, sandbox: Sandbox) -> None:
    ours, peer = sandbox.veth("pb")  # a device of the host's, made for this test: the probe must not touch it
    # Other t* devices may be going away with the namespaces of earlier tests (teardown is asynchronous).
    before = {name for name in link_names() if not name.startswith("t")} | {ours, peer}
    fresh = subprocess.run([binary_plugin.argv[0], "probe", "--fresh"], capture_output=True, text=True, check=True)
    report = json.loads(fresh.stdout)
    assert report["kernel"] == os.uname().release
    assert report["atomicMoveRename"] is True
    assert isinstance(report["liveRename"], bool)
    probe_names = {"probe0", "probe1", "probed", "renamed"}
    assert not probe_names & link_names(), "the probe's veths never appear in the host"
    assert before <= link_names(), "the probe removed nothing of the host"
    cached = json.loads(subprocess.run([binary_plugin.argv[0], "probe"], capture_output=True, text=True).stdout)
    assert cached["cached"] is True and cached["atomicMoveRename"] == report["atomicMoveRename"]
