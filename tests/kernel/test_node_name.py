"""Every refusal about a device says on which node it happened: pod events do not."""

from __future__ import annotations

from tests.conftest import NODE, Plugin, Sandbox, conf_for, ip, pod_env


def test_every_device_refusal_names_the_node(plugin: Plugin, sandbox: Sandbox) -> None:
    pod, other = sandbox.pod("n1"), sandbox.pod("n2")
    device, _ = sandbox.veth("a")
    port, _ = sandbox.veth("b")
    spare, _ = sandbox.veth("c")
    ip("link", "set", port, "master", sandbox.bridge())
    ip("-n", other, "link", "add", "net1", "type", "veth", "peer", "name", "net1p")

    cases = {
        "not found": (conf_for(plugin, device=sandbox.name("zz")), pod_env(pod), 100),
        "in use": (conf_for(plugin, device=port), pod_env(pod), 101),
        "name taken": (conf_for(plugin, device=spare), pod_env(other, "c9"), 103),
        "pool exhausted": (conf_for(plugin, devices=[{"device": port}]), pod_env(pod), 101),
    }
    assert plugin.run("ADD", conf_for(plugin, device=device), **pod_env(pod, "c1")).status == 0
    cases["claimed"] = (conf_for(plugin, device=device), pod_env(pod, "c2", "net2"), 101)
    for what, (conf, env, code) in cases.items():
        refused = plugin.run("ADD", conf, **env)
        assert refused.code == code, (what, refused.stdout)
        assert f"on node {NODE}" in refused.out["msg"], (what, refused.out)  # type: ignore[index]
    assert plugin.run("DEL", conf_for(plugin, device=device), **pod_env(pod, "c1")).status == 0
