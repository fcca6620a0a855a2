"""DEL on real veths and namespaces: the device home as it was, however the pod or the runtime left things."""

from __future__ import annotations

import pytest

from tests.conftest import STRATEGIES, Plugin, Sandbox, conf_for, ip, is_up, link_json, pod_env, record_files


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_down_device_comes_back_down(source_plugin: Plugin, sandbox: Sandbox, strategy: str) -> None:
    dev, _ = sandbox.veth(up=False)
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev, moveStrategy=strategy)
    assert source_plugin.run("ADD", conf, **pod_env(pod)).status == 0
    inside = link_json("net1", pod)
    assert inside is not None and is_up(inside), "ADD brings the device up in the pod"
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0
    after = link_json(dev)
    assert after is not None and not is_up(after)
    assert "ifalias" not in after or after["ifalias"] in ("", None)


def test_del_restores_what_the_pod_changed(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    original = link_json(dev)
    assert original is not None
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod)).status == 0
    ip("-n", pod, "link", "set", "net1", "down")
    ip("-n", pod, "link", "set", "net1", "mtu", "1280", "address", "02:00:00:00:00:42", "name", "renamed0")
    deleted = source_plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout
    after = link_json(dev)
    assert after is not None, "DEL finds the device though the pod renamed it"
    assert after["mtu"] == original["mtu"] and after["address"] == original["address"] and is_up(after)


def test_del_with_vanished_or_empty_netns_succeeds(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod)).status == 0
    ip("netns", "del", pod)
    gone = source_plugin.run("DEL", conf, **pod_env(pod))
    assert gone.status == 0, gone.stdout
    assert "no longer exists" in gone.stderr, "a vanished virtual device is logged"
    assert record_files(source_plugin) == []
    empty = source_plugin.run("DEL", conf, **{**pod_env(pod), "CNI_NETNS": ""})
    assert empty.status == 0


def test_del_of_a_name_add_would_refuse_succeeds(source_plugin: Plugin) -> None:
    out = source_plugin.run("DEL", conf_for(source_plugin), CNI_CONTAINERID="c", CNI_IFNAME="net%d")
    assert out.status == 0 and out.out is None
    assert "never attachable" in out.stderr
