"""CHECK on real namespaces: it notices a device that went missing or changed."""

from __future__ import annotations

from tests.conftest import Plugin, Sandbox, conf_for, ip, link_json, pod_env


def test_check_notices_a_missing_or_changed_device(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev)
    added = source_plugin.run("ADD", conf, **pod_env(pod))
    assert added.out is not None
    ip("-n", pod, "link", "set", "net1", "address", "02:00:00:00:00:43")
    changed = source_plugin.run("CHECK", {**conf, "prevResult": added.out}, **pod_env(pod))
    assert changed.code == 104 and changed.out is not None and "02:00:00:00:00:43" in changed.out["msg"]
    ip("-n", pod, "link", "set", "net1", "name", "moved0")
    missing = source_plugin.run("CHECK", {**conf, "prevResult": added.out}, **pod_env(pod))
    assert missing.code == 104 and missing.out is not None and "net1" in missing.out["msg"]
    no_prev = source_plugin.run("CHECK", conf, **pod_env(pod))
    assert no_prev.code == 7 and no_prev.out is not None and "prevResult" in no_prev.out["msg"]
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0
    assert link_json(dev) is not None
