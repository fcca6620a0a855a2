"""GC on real namespaces: attachments the runtime no longer lists are given back."""

from __future__ import annotations

import fcntl
from pathlib import Path

from cni_hostdev.identifiers import plain
from cni_hostdev.identity import lock_key
from tests.conftest import Plugin, Sandbox, conf_for, link_json, link_names, pod_env, record_files


def test_gc_releases_attachments_not_in_the_valid_list(source_plugin: Plugin, sandbox: Sandbox) -> None:
    keep, _ = sandbox.veth("k")
    drop, _ = sandbox.veth("d")
    pod_keep, pod_drop = sandbox.pod("nk"), sandbox.pod("nd")
    assert source_plugin.run("ADD", conf_for(source_plugin, device=keep), **pod_env(pod_keep, "keep")).status == 0
    assert source_plugin.run("ADD", conf_for(source_plugin, device=drop), **pod_env(pod_drop, "drop")).status == 0
    gc_conf = conf_for(
        source_plugin, "1.1.0", **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "net1"}]}
    )
    out = source_plugin.run("GC", gc_conf)
    assert out.status == 0, out.stdout
    assert drop in link_names() and keep not in link_names()
    assert link_json("net1", pod_keep) is not None
    assert record_files(source_plugin) == ["keep-net1.json"]
    assert source_plugin.run("DEL", conf_for(source_plugin), **pod_env(pod_keep, "keep")).status == 0


def test_gc_that_cannot_give_back_says_try_again_and_keeps_the_record(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth("g")
    mac = link_json(dev)["address"]  # type: ignore[index]
    pod = sandbox.pod("ng")
    assert source_plugin.run("ADD", conf_for(source_plugin, device=dev), **pod_env(pod, "gone")).status == 0
    gc_conf = conf_for(source_plugin, "1.1.0", lockTimeout=0.2, **{"cni.dev/valid-attachments": []})
    # Another call holds the device (its lock) for longer than GC may wait.
    lock = Path(source_plugin.data_dir) / "locks" / f"{plain(lock_key(None, None, mac))}.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        blocked = source_plugin.run("GC", gc_conf)
    assert blocked.status == 1 and blocked.code == 11, blocked.stdout
    assert blocked.out is not None and dev in blocked.out["msg"] and "gone" in blocked.out["msg"]
    assert record_files(source_plugin) == ["gone-net1.json"]
    assert link_json("net1", pod) is not None, "the device stays in the pod until GC can take its lock"
    assert source_plugin.run("GC", gc_conf).status == 0
    assert record_files(source_plugin) == [] and link_json(dev) is not None
