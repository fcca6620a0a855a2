"""Refusals of host devices say exactly what they saw: the route (family, gateway, protocol, metric)
or the address (permanent or dynamic) that makes a device the node's own.

Default routes cannot be played with in the machine's own namespace, so the plugin runs inside a
throwaway namespace that plays the node (`ip netns exec`, which also gives it that namespace's /sys).
"""

from __future__ import annotations

import subprocess

from tests.conftest import Plugin, Sandbox, conf_for, pod_env


def _node(sandbox: Sandbox, plugin: Plugin) -> tuple[str, Plugin]:
    node = sandbox.pod("nd")
    return node, Plugin(["ip", "netns", "exec", node, *plugin.argv], plugin.data_dir, plugin.base_env)


def _in(node: str, *args: str) -> None:
    subprocess.run(["ip", "-n", node, *args], check=True, capture_output=True)


def _veth(node: str, sandbox: Sandbox, suffix: str) -> str:
    name = sandbox.name(suffix)
    _in(node, "link", "add", name, "type", "veth", "peer", "name", name + "p")
    _in(node, "link", "set", name, "up")
    _in(node, "link", "set", name + "p", "up")
    return name


def _links(node: str) -> set[str]:
    out = subprocess.run(["ip", "-n", node, "-br", "link"], capture_output=True, text=True).stdout
    return {line.split()[0].split("@")[0] for line in out.splitlines()}


def test_a_configured_default_route_is_named_with_its_gateway_protocol_and_metric(
    plugin: Plugin, sandbox: Sandbox
) -> None:
    node, inside = _node(sandbox, plugin)
    pod = sandbox.pod()
    uplink = _veth(node, sandbox, "up")
    _in(node, "addr", "add", "192.0.2.10/24", "dev", uplink)
    _in(node, "route", "add", "default", "via", "192.0.2.1", "dev", uplink, "metric", "100", "proto", "dhcp")
    refused = inside.run("ADD", conf_for(plugin, device=uplink), **pod_env(pod))
    assert refused.code == 101, refused.stdout
    assert refused.out is not None
    assert "IPv4 default route via 192.0.2.1, proto dhcp, metric 100" in refused.out["msg"], refused.out["msg"]
    assert uplink in _links(node)


def test_a_default_route_from_router_advertisements_counts_only_when_it_is_the_nodes_only_one(
    plugin: Plugin, sandbox: Sandbox
) -> None:
    node, inside = _node(sandbox, plugin)
    pod = sandbox.pod()
    learned = _veth(node, sandbox, "ra")
    _in(node, "-6", "route", "add", "default", "via", "fe80::1", "dev", learned, "proto", "ra", "metric", "1024")
    conf = conf_for(plugin, device=learned)
    refused = inside.run("ADD", conf, **pod_env(pod))
    assert refused.code == 101, refused.stdout
    assert refused.out is not None
    assert (
        "IPv6 default route via fe80::1, proto ra, metric 1024 (learned from router advertisements)"
        in (refused.out["msg"])
    ), refused.out["msg"]

    # The node gets a default route of its own elsewhere: the learned one no longer makes this NIC the uplink.
    uplink = _veth(node, sandbox, "st")
    _in(node, "-6", "route", "add", "default", "via", "fe80::2", "dev", uplink, "proto", "static", "metric", "10")
    added = inside.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout
    assert learned not in _links(node)
    assert inside.run("DEL", conf, **pod_env(pod)).status == 0
    assert learned in _links(node)


def test_an_address_is_named_with_how_it_came_to_be(plugin: Plugin, sandbox: Sandbox) -> None:
    node, inside = _node(sandbox, plugin)
    pod = sandbox.pod()
    configured = _veth(node, sandbox, "pm")
    _in(node, "addr", "add", "198.51.100.7/24", "dev", configured)
    refused = inside.run("ADD", conf_for(plugin, device=configured), **pod_env(pod))
    assert refused.code == 101 and refused.out is not None
    assert "global address 198.51.100.7/24 (permanent)" in refused.out["msg"], refused.out["msg"]

    learned = _veth(node, sandbox, "dy")
    _in(node, "-6", "addr", "add", "2001:db8::7/64", "dev", learned, "valid_lft", "3600", "preferred_lft", "1800")
    refused = inside.run("ADD", conf_for(plugin, device=learned), **pod_env(pod))
    assert refused.code == 101 and refused.out is not None
    assert "global address 2001:db8::7/64 (dynamic" in refused.out["msg"], refused.out["msg"]
    assert {configured, learned} <= _links(node)
