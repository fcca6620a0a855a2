"""`host-device repair`: the loop that gives back devices of pods that died without DEL."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

from tests.conftest import Plugin, Sandbox, conf_for, link_json, link_names, pod_env, refund_to_host


def test_repair_loop_gives_back_devices_of_dead_pods_and_survives_missing_privileges(
    source_plugin: Plugin, sandbox: Sandbox
) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    refunded_as = sandbox.name("r2")
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod, ifname=refunded_as)).status == 0
    live = sandbox.pod("lv")
    other, _ = sandbox.veth("o")
    assert source_plugin.run("ADD", conf_for(source_plugin, device=other), **pod_env(live, "alive")).status == 0
    record = Path(source_plugin.data_dir) / "tnet" / "alive-net1.json"
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "phase": "moving"}))  # as if its ADD had been killed

    repair = [*source_plugin.argv, "repair", "--once", "--data-dir", source_plugin.data_dir]
    env = {**os.environ, **source_plugin.base_env}
    # Without CAP_SYS_ADMIN the loop cannot enter the pod: it says so and keeps going, no traceback.
    weak = subprocess.run(["capsh", "--drop=cap_sys_admin", "--", "-c", shlex.join(repair)], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert weak.returncode == 1 and "Traceback" not in weak.stderr and "alive" in weak.stderr, weak.stderr
    assert record.exists() and link_json("net1", live) is not None

    refund_to_host(pod, refunded_as)
    sandbox.links.append(refunded_as)
    strong = subprocess.run(repair, env=env, capture_output=True, text=True)
    assert strong.returncode == 0, strong.stderr
    assert dev in link_names() and refunded_as not in link_names(), "the refunded NIC has its name back"
    assert other in link_names(), "the interrupted ADD was undone"
    assert not os.listdir(Path(source_plugin.data_dir) / "tnet")
