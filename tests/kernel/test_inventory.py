"""`host-device inventory`: free, claimed, stale and the host's own devices."""

from __future__ import annotations

import json
import os
import subprocess

from tests.conftest import Plugin, Sandbox, conf_for, ip, pod_env


def test_inventory_tells_free_claimed_stale_and_host_devices(source_plugin: Plugin, sandbox: Sandbox) -> None:
    free, _ = sandbox.veth("f")
    port, _ = sandbox.veth("p")
    bridge = sandbox.bridge()
    ip("link", "set", port, "master", bridge)
    claimed, _ = sandbox.veth("c")
    doomed, _ = sandbox.veth("d")
    pod, dying = sandbox.pod("n1"), sandbox.pod("n2")
    assert source_plugin.run("ADD", conf_for(source_plugin, device=claimed), **pod_env(pod, "holder")).status == 0
    assert source_plugin.run("ADD", conf_for(source_plugin, device=doomed), **pod_env(dying, "gone")).status == 0
    ip("netns", "del", dying)

    def inventory(*extra: str) -> str:
        return subprocess.run(
            [*source_plugin.argv, "inventory", "--data-dir", source_plugin.data_dir, *extra],
            env={**os.environ, **source_plugin.base_env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    by_name = {e["name"]: e for e in json.loads(inventory("--json"))}
    assert by_name[free]["state"] == "free"
    assert by_name[port]["state"] == "host" and bridge in by_name[port]["detail"]
    assert by_name[bridge]["state"] == "host" and "bridge" in by_name[bridge]["detail"]
    assert by_name["eth0"]["state"] == "host" and "uplink" in by_name["eth0"]["detail"]
    assert by_name[claimed]["state"] == "claimed" and "holder" in by_name[claimed]["detail"]
    assert by_name[doomed]["state"] == "stale" and "netns gone" in by_name[doomed]["detail"]
    table = inventory()
    assert table.splitlines()[0].split()[:5] == ["NAME", "MAC", "PCI", "DRIVER", "STATE"]
    assert any(line.startswith(free) and " free" in line for line in table.splitlines())
