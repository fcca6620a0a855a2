"""useInterfaceNetwork: the device's own addresses, routes and rules go into the pod, and come back on DEL.

The plugin runs in a throwaway namespace that plays the node (`ip netns exec`), so its addresses,
routes, tables and policy rules are the test's own.
"""

from __future__ import annotations

import subprocess
import time
from typing import Any

import pytest

from tests.conftest import Plugin, Sandbox, conf_for, pod_env
from tests.kernel.test_refusals import _in, _links, _node, _veth


def _ip(node: str, *args: str) -> str:
    return subprocess.run(["ip", "-n", node, *args], check=True, capture_output=True, text=True).stdout


def network_of(node: str, device: str) -> dict[str, str]:
    """Everything `ip` shows of a device's network, for comparing before and after."""
    return {
        "addresses": _ip(node, "-d", "address", "show", "dev", device),
        "routes4": _ip(node, "route", "show", "table", "all", "dev", device),
        "routes6": _ip(node, "-6", "route", "show", "table", "all", "dev", device),
        "rules4": _ip(node, "rule", "show"),
        "rules6": _ip(node, "-6", "rule", "show"),
    }


def assert_same(before: dict[str, str], after: dict[str, str]) -> None:
    for key, shown in before.items():
        assert after[key] == shown, f"{key} before:\n{shown}\nafter:\n{after[key]}"


def give_it_a_network(node: str, device: str) -> None:
    _in(node, "address", "add", "192.0.2.5/24", "dev", device, "label", f"{device}:a")
    _in(node, "address", "add", "192.0.2.6/24", "dev", device)
    _in(node, "address", "add", "2001:db8::5/64", "dev", device, "nodad")
    _in(node, "address", "add", "2001:db8:9::5/64", "dev", device, "nodad", "noprefixroute", "preferred_lft", "0")
    _in(node, "route", "add", "198.51.100.0/24", "via", "192.0.2.1", "dev", device, "metric", "50", "mtu", "1400")
    _in(node, "route", "add", "203.0.113.0/24", "dev", device, "table", "100", "proto", "static", "scope", "link")
    _in(node, "route", "add", "default", "via", "192.0.2.1", "dev", device, "table", "100")
    _in(node, "-6", "route", "add", "2001:db8:1::/48", "via", "2001:db8::1", "dev", device, "metric", "7")
    _in(node, "rule", "add", "from", "192.0.2.5", "lookup", "100", "priority", "1000")
    _in(node, "rule", "add", "iif", device, "lookup", "100", "priority", "1001")


def networked_device(sandbox: Sandbox, plugin: Plugin) -> tuple[str, Plugin, str, str, dict[str, str]]:
    """(the node netns, the plugin run in it, a pod, a device of the node with a network, that network)."""
    node, inside = _node(sandbox, plugin)
    pod = sandbox.pod()
    device = _veth(node, sandbox, "a")
    give_it_a_network(node, device)
    return node, inside, pod, device, network_of(node, device)


@pytest.mark.parametrize("strategy", ["atomic", "rename-then-move"])
def test_the_devices_network_goes_along_and_comes_back_exactly(plugin: Plugin, sandbox: Sandbox, strategy: str) -> None:
    node, inside, pod, device, before = networked_device(sandbox, plugin)

    plain = conf_for(plugin, device=device, moveStrategy=strategy)
    refused = inside.run("ADD", plain, **pod_env(pod))
    assert refused.code == 101 and "useInterfaceNetwork" in refused.stdout, "without the key: the host's own"

    conf = conf_for(plugin, device=device, moveStrategy=strategy, useInterfaceNetwork=True)
    added = inside.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout + added.stderr
    assert device not in _links(node)
    out: dict[str, Any] = added.out or {}
    assert {ip["address"] for ip in out["ips"]} == {
        "192.0.2.5/24",
        "192.0.2.6/24",
        "2001:db8::5/64",
        "2001:db8:9::5/64",
    }
    assert all(ip["interface"] == 0 for ip in out["ips"])
    routes = {(r["dst"], r.get("gw"), r.get("table"), r.get("priority"), r.get("mtu")) for r in out["routes"]}
    assert routes == {
        ("198.51.100.0/24", "192.0.2.1", None, 50, 1400),
        ("203.0.113.0/24", None, 100, None, None),
        ("0.0.0.0/0", "192.0.2.1", 100, None, None),
        ("2001:db8:1::/48", "2001:db8::1", None, 7, None),
    }

    in_pod = network_of(pod, "net1")
    assert "inet 192.0.2.5/24 scope global net1:a" in in_pod["addresses"], "the label follows the new name"
    assert "inet6 2001:db8:9::5/64 scope global nodad deprecated noprefixroute" in in_pod["addresses"]
    assert "198.51.100.0/24 via 192.0.2.1 metric 50 mtu 1400" in in_pod["routes4"]
    assert "203.0.113.0/24 table 100 proto static scope link" in in_pod["routes4"]
    assert "default via 192.0.2.1 table 100" in in_pod["routes4"]
    assert "2001:db8:1::/48 via 2001:db8::1 metric 7" in in_pod["routes6"]
    assert "1000:\tfrom 192.0.2.5 lookup 100" in in_pod["rules4"]
    assert "1001:\tfrom all iif net1 lookup 100" in in_pod["rules4"]
    check = inside.run("CHECK", {**conf, "prevResult": out}, **pod_env(pod))
    assert check.status == 0, check.stdout

    deleted = inside.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert_same(before, network_of(node, device))


def test_del_gives_back_the_snapshot_not_what_the_pod_made_of_it(plugin: Plugin, sandbox: Sandbox) -> None:
    """The pod's own tools took the copied network apart and added their own: the host gets back
    what the device had there, and nothing of the pod's."""
    node, inside, pod, device, before = networked_device(sandbox, plugin)
    conf = conf_for(plugin, device=device, useInterfaceNetwork=True)
    assert inside.run("ADD", conf, **pod_env(pod)).status == 0
    # The pod's own tools take the copied network apart and add their own.
    _in(pod, "address", "flush", "dev", "net1")
    _in(pod, "address", "add", "10.9.9.9/24", "dev", "net1")
    deleted = inside.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    after = network_of(node, device)
    assert "10.9.9.9" not in after["addresses"], "what the pod added leaves with the pod"
    assert_same(before, after)


def test_a_device_carrying_the_default_route_stays_refused(plugin: Plugin, sandbox: Sandbox) -> None:
    node, inside = _node(sandbox, plugin)
    pod = sandbox.pod()
    uplink = _veth(node, sandbox, "up")
    _in(node, "address", "add", "192.0.2.10/24", "dev", uplink)
    _in(node, "route", "add", "default", "via", "192.0.2.1", "dev", uplink)
    refused = inside.run("ADD", conf_for(plugin, device=uplink, useInterfaceNetwork=True), **pod_env(pod))
    assert refused.code == 101 and "IPv4 default route via 192.0.2.1" in refused.stdout, refused.stdout
    assert uplink in _links(node)

    both = conf_for(plugin, device=uplink, useInterfaceNetwork=True, allowHostAddresses=True)
    added = inside.run("ADD", both, **pod_env(pod))
    assert added.status == 0, added.stdout
    assert "default via 192.0.2.1 dev net1" in _ip(pod, "route", "show")
    assert inside.run("DEL", both, **pod_env(pod)).status == 0
    assert "default via 192.0.2.1 dev " + uplink in _ip(node, "route", "show")


def _settled(node: str, device: str) -> None:
    deadline = time.monotonic() + 10
    while "tentative" in _ip(node, "-6", "address", "show", "dev", device) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_an_address_that_fails_dad_on_the_way_home_is_a_warning_not_a_stuck_del(
    plugin: Plugin, sandbox: Sandbox
) -> None:
    """Back in the host, the device's address turns out to be another's: DEL must not fail on it
    forever (the runtime retries a failed DEL, and the pod stays terminating)."""
    node, inside = _node(sandbox, plugin)
    pod = sandbox.pod()
    device = _veth(node, sandbox, "a")
    _in(node, "address", "add", "2001:db8:5::5/64", "dev", device)
    _settled(node, device)
    _in(node, "-6", "route", "add", "2001:db8:7::/48", "via", "2001:db8:5::1", "dev", device, "src", "2001:db8:5::5")
    conf = conf_for(plugin, device=device, useInterfaceNetwork=True)
    added = inside.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout + added.stderr
    assert "2001:db8:7::/48 via 2001:db8:5::1" in _ip(pod, "-6", "route", "show", "dev", "net1")

    # While the pod runs, the node gives the address to the device's peer: at home it is a duplicate.
    _in(node, "address", "add", "2001:db8:5::5/64", "dev", device + "p", "nodad")
    deleted = inside.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert "failed duplicate address detection in the host" in deleted.stderr
    assert device in _links(node)
