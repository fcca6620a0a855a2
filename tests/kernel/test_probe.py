"""The kernel probe: throwaway devices in throwaway namespaces, cached per boot."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import Plugin, link_names


def test_probe_uses_throwaway_devices_and_caches(binary_plugin: Plugin) -> None:
    before = link_names()
    fresh = subprocess.run([binary_plugin.argv[0], "probe", "--fresh"], capture_output=True, text=True, check=True)
    report = json.loads(fresh.stdout)
    assert report["kernel"] == os.uname().release
    assert report["atomicMoveRename"] is True
    assert isinstance(report["liveRename"], bool)
    probe_names = {"probe0", "probe1", "probed", "renamed"}
    assert not probe_names & link_names(), "the probe's veths never appear in the host"
    assert before - link_names() <= {n for n in before if n.startswith("t")}, "the probe removed nothing of the host"
    cached = json.loads(subprocess.run([binary_plugin.argv[0], "probe"], capture_output=True, text=True).stdout)
    assert cached["cached"] is True and cached["atomicMoveRename"] == report["atomicMoveRename"]
