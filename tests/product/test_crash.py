"""SIGKILL at every named step of ADD and DEL, then what a runtime runs next: nothing is ever lost.

The kill comes from the test-only hook (CNI_HOSTDEV_TESTING=1 + CNI_HOSTDEV_KILL_AT=step):
the process dies exactly as it would under a runtime's SIGKILL, with no cleanup.
After each kill and each follow-up, the invariant: the device is in exactly one
place — home under its original name with its original state, or in the pod fully
configured — never in a staging netns, never under a temporary name, never lost.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cni_hostdev.move import STAGING_DIR
from tests.conftest import Plugin, Sandbox, assert_index_in_step, conf_for, is_up, link_json, link_names, pod_env

ADD_STEPS = {
    "atomic": ["indexed", "record-written", "moved-to-pod", "up", "attached", "ipam-added", "ipam-applied"],
    "rename-then-move": [
        "indexed",
        "record-written",
        "moved-to-staging",
        "renamed",
        "moved-to-pod",
        "up",
        "attached",
        "ipam-added",
        "ipam-applied",
    ],
}
FOLLOW_UPS = ["DEL", "GC", "ADD"]
CASES = [(s, step, nxt) for s, steps in ADD_STEPS.items() for step in steps for nxt in FOLLOW_UPS]


def _staging_leftovers(tag: str) -> list[str]:
    directory = "/run/cni-hostdev/staging"
    return [n for n in os.listdir(directory) if tag in n] if os.path.isdir(directory) else []


def _assert_home(dev: str, mtu: int, pod: str) -> None:
    home = link_json(dev)
    assert home is not None, f"{dev} is lost"
    assert home["mtu"] == mtu and is_up(home), home
    assert home.get("ifalias") in (None, ""), "our alias marker is gone"
    assert link_names(pod) <= {"lo"}


@pytest.mark.usefixtures("reference_ipam")
@pytest.mark.parametrize(("strategy", "step", "follow_up"), CASES, ids=[f"{s}-{st}-{n}" for s, st, n in CASES])
def test_sigkill_during_add(source_plugin: Plugin, sandbox: Sandbox, strategy: str, step: str, follow_up: str) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    container = sandbox.name("c")
    conf = conf_for(
        source_plugin,
        "1.0.0",
        device=dev,
        moveStrategy=strategy,
        ipam={"type": "static", "addresses": [{"address": "10.44.0.2/24"}]},
    )
    killed = source_plugin.run(
        "ADD", conf, **pod_env(pod, container), CNI_HOSTDEV_TESTING="1", CNI_HOSTDEV_KILL_AT=step
    )
    assert killed.status == -signal.SIGKILL, f"the hook must have killed ADD at {step}: {killed.stdout}"

    if follow_up == "DEL":
        out = source_plugin.run("DEL", conf, **pod_env(pod, container))
        assert out.status == 0, out.stdout + out.stderr
        _assert_home(dev, 1500, pod)
    elif follow_up == "GC":
        out = source_plugin.run("GC", conf_for(source_plugin, "1.1.0"))
        assert out.status == 0, out.stdout + out.stderr
        if step in ("attached", "ipam-added", "ipam-applied"):
            # The attachment is complete as far as the record goes; the live pod keeps it.
            assert link_json("net1", pod) is not None and dev not in link_names()
            assert source_plugin.run("DEL", conf, **pod_env(pod, container)).status == 0
        _assert_home(dev, 1500, pod)
    else:
        out = source_plugin.run("ADD", conf, **pod_env(pod, container))
        if step in ("attached", "ipam-added", "ipam-applied"):
            assert out.code == 101 and out.out is not None and "run DEL first" in out.out["msg"]
            assert link_json("net1", pod) is not None and dev not in link_names()
        else:
            assert out.status == 0, out.stdout + out.stderr
            inside = link_json("net1", pod)
            assert inside is not None and is_up(inside) and dev not in link_names()
        assert source_plugin.run("DEL", conf, **pod_env(pod, container)).status == 0
        _assert_home(dev, 1500, pod)
    assert _staging_leftovers(container) == [], "no staging netns is left mounted"
    assert not os.listdir(Path(source_plugin.data_dir) / "tnet")
    assert_index_in_step(source_plugin.data_dir)


def test_add_killed_before_the_first_staging_netns_of_the_boot(source_plugin: Plugin, sandbox: Sandbox) -> None:
    """A fresh boot has no staging dir yet: the record of an ADD killed before it staged must still be undone."""
    try:
        os.rmdir(STAGING_DIR)  # only ever empty between calls
    except FileNotFoundError:
        pass
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev, moveStrategy="rename-then-move")
    env = pod_env(pod, sandbox.name("c"))
    killed = source_plugin.run("ADD", conf, **env, CNI_HOSTDEV_TESTING="1", CNI_HOSTDEV_KILL_AT="record-written")
    assert killed.status == -signal.SIGKILL
    out = source_plugin.run("DEL", conf, **env)
    assert out.status == 0, out.stdout + out.stderr
    _assert_home(dev, 1500, pod)


@pytest.mark.parametrize("step", ["returned-home", "unindexed"])
@pytest.mark.parametrize("strategy", ["atomic", "rename-then-move"])
def test_sigkill_during_del_then_del_again(source_plugin: Plugin, sandbox: Sandbox, strategy: str, step: str) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev, moveStrategy=strategy)
    assert source_plugin.run("ADD", conf, **pod_env(pod)).status == 0
    killed = source_plugin.run("DEL", conf, **pod_env(pod), CNI_HOSTDEV_TESTING="1", CNI_HOSTDEV_KILL_AT=step)
    assert killed.status == -signal.SIGKILL
    assert dev in link_names(), "the move home happened before the kill"
    if step == "unindexed":  # a record the index lacks: the next lookup (another device's ADD) reads it
        other, _ = sandbox.veth("o")
        assert (
            source_plugin.run("ADD", conf_for(source_plugin, device=other), **pod_env(sandbox.pod("o"), "o")).status
            == 0
        )
        assert_index_in_step(source_plugin.data_dir)
    again = source_plugin.run("DEL", conf, **pod_env(pod))
    assert again.status == 0, again.stdout
    _assert_home(dev, 1500, pod)
    assert os.listdir(Path(source_plugin.data_dir) / "tnet") == (["o-net1.json"] if step == "unindexed" else [])
    assert_index_in_step(source_plugin.data_dir)
