"""GC on real namespaces: attachments the runtime no longer lists are given back."""

from __future__ import annotations

from tests.conftest import Plugin, Sandbox, conf_for, link_json, link_names, pod_env, record_files


def test_gc_releases_attachments_not_in_the_valid_list(source_plugin: Plugin, sandbox: Sandbox) -> None:
    keep, _ = sandbox.veth("k")
    drop, _ = sandbox.veth("d")
    pod_keep, pod_drop = sandbox.pod("nk"), sandbox.pod("nd")
    assert source_plugin.run("ADD", conf_for(source_plugin, device=keep), **pod_env(pod_keep, "keep")).status == 0
    assert source_plugin.run("ADD", conf_for(source_plugin, device=drop), **pod_env(pod_drop, "drop")).status == 0
    gc_conf = conf_for(source_plugin, **{"cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "net1"}]})
    out = source_plugin.run("GC", gc_conf)
    assert out.status == 0, out.stdout
    assert drop in link_names() and keep not in link_names()
    assert link_json("net1", pod_keep) is not None
    assert record_files(source_plugin) == ["keep-net1.json"]
    assert source_plugin.run("DEL", conf_for(source_plugin), **pod_env(pod_keep, "keep")).status == 0
