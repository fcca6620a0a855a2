"""SIGKILL at random moments of ADD and DEL, as a runtime's timeout does, then a plain DEL.

Black-box: the frozen binary, no test hooks, a timer and a kill. Whatever moment the kill hit,
the retried DEL gives the device back whole: its name, its up state, its MTU and its alias.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import time

import pytest

from tests.conftest import Plugin, Sandbox, assert_index_in_step, conf_for, ip, link_json, pod_env

ROUNDS = 32


def _killed_after(plugin: Plugin, command: str, conf: dict[str, object], delay: float, env: dict[str, str]) -> None:
    full = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni", **env}
    proc = subprocess.Popen(
        plugin.argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    time.sleep(delay)
    proc.kill()
    proc.wait()


@pytest.mark.parametrize("strategy", ["atomic", "rename-then-move"])
def test_a_retried_del_finishes_whatever_a_killed_add_or_del_began(
    binary_plugin: Plugin, sandbox: Sandbox, strategy: str
) -> None:
    dev, _ = sandbox.veth()
    ip("link", "set", dev, "mtu", "1400")
    pod = sandbox.pod()
    conf = conf_for(binary_plugin, device=dev, moveStrategy=strategy)
    env = pod_env(pod)
    before = link_json(dev)
    assert before is not None and "UP" in before["flags"]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for n in range(ROUNDS):
        # Start-up takes ~30 ms here and a move ~20 ms: spread the kills over both and past them.
        if rng.random() < 0.5:
            _killed_after(binary_plugin, "ADD", conf, rng.uniform(0.0, 0.09), env)
        else:
            added = binary_plugin.run("ADD", conf, **env)
            assert added.status == 0, f"round {n} (seed {seed}): {added.stdout}"
            _killed_after(binary_plugin, "DEL", conf, rng.uniform(0.0, 0.09), env)
        retried = binary_plugin.run("DEL", conf, **env)
        assert retried.status == 0, f"round {n} (seed {seed}): {retried.stdout}"
        home = link_json(dev)
        assert home is not None, f"round {n} (seed {seed}): {dev} is not home"
        assert "UP" in home["flags"], f"round {n} (seed {seed}): {dev} came home down"
        assert home["mtu"] == 1400, f"round {n} (seed {seed}): MTU {home['mtu']}"
        assert not home.get("ifalias"), f"round {n} (seed {seed}): alias {home.get('ifalias')!r} left"
        assert link_json("net1", pod) is None
        assert_index_in_step(binary_plugin.data_dir)
