"""Altnames are the host's naming: they never fail an ADD, and DEL gives them back exactly.

Linux keeps a device's altnames when it changes namespace and refuses the move when the
target already uses one of them ("An interface with the altname ... exists").
"""

from __future__ import annotations

import pytest

from tests.conftest import Plugin, Sandbox, conf_for, ip, link_json, pod_env


def altnames(name: str, netns: str | None = None) -> list[str]:
    info = link_json(name, netns)
    assert info is not None, f"{name} is missing"
    return list(info.get("altnames", []))


@pytest.mark.parametrize("strategy", ["atomic", "rename-then-move"])
def test_colliding_altnames_never_fail_add_and_come_back(plugin: Plugin, sandbox: Sandbox, strategy: str) -> None:
    device, _ = sandbox.veth("a")
    first, second, third = sandbox.name("x1"), sandbox.name("x2"), sandbox.name("x3")
    for name in (first, second, third):
        ip("link", "property", "add", "dev", device, "altname", name)
    pod = sandbox.pod()
    # In the pod, one device is named like the first altname and another carries the second as its altname.
    ip("-n", pod, "link", "add", first, "type", "veth", "peer", "name", sandbox.name("q1"))
    ip("-n", pod, "link", "add", sandbox.name("q2"), "type", "veth", "peer", "name", sandbox.name("q3"))
    ip("-n", pod, "link", "property", "add", "dev", sandbox.name("q2"), "altname", second)

    conf = conf_for(plugin, device=device, moveStrategy=strategy)
    added = plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout + added.stderr
    assert altnames("net1", pod) == [third], "the colliding altnames travel nowhere, the free one goes along"
    assert first in added.stderr and second in added.stderr, "the log says which altnames stayed behind"

    deleted = plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert altnames(device) == [first, second, third], "altnames restored exactly, in their order"
    assert altnames(first, pod) == [] and altnames(sandbox.name("q2"), pod) == [second]


def one_altname_taken_in_the_pod(sandbox: Sandbox) -> tuple[str, str, str, str]:
    """(a device with two altnames, the one a device of the pod is named, the other, the pod)."""
    device, _ = sandbox.veth("a")
    taken, kept = sandbox.name("x1"), sandbox.name("x2")
    for name in (taken, kept):
        ip("link", "property", "add", "dev", device, "altname", name)
    pod = sandbox.pod()
    ip("-n", pod, "link", "add", taken, "type", "veth", "peer", "name", sandbox.name("q1"))
    return device, taken, kept, pod


def test_altname_the_host_gave_away_is_a_warning_not_a_failure(plugin: Plugin, sandbox: Sandbox) -> None:
    device, taken, kept, pod = one_altname_taken_in_the_pod(sandbox)
    conf = conf_for(plugin, device=device)
    assert plugin.run("ADD", conf, **pod_env(pod)).status == 0

    # While the pod runs, the host names another device with the altname left behind.
    other, _ = sandbox.veth("o")
    ip("link", "property", "add", "dev", other, "altname", taken)
    deleted = plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert altnames(device) == [kept]
    assert altnames(other) == [taken], "the other device keeps the name it was given"
    assert f"altname {taken} of {device} not restored" in deleted.stderr


def test_altnames_added_in_the_pod_do_not_come_home(plugin: Plugin, sandbox: Sandbox) -> None:
    device, _ = sandbox.veth("a")
    original = sandbox.name("x1")
    ip("link", "property", "add", "dev", device, "altname", original)
    pod = sandbox.pod()
    conf = conf_for(plugin, device=device)
    assert plugin.run("ADD", conf, **pod_env(pod)).status == 0
    ip("-n", pod, "link", "property", "add", "dev", "net1", "altname", sandbox.name("p1"))
    assert plugin.run("DEL", conf, **pod_env(pod)).status == 0
    assert altnames(device) == [original]


def test_an_add_killed_after_dropping_altnames_and_before_the_move_gives_them_back(
    source_plugin: Plugin, sandbox: Sandbox
) -> None:
    device, taken, kept, pod = one_altname_taken_in_the_pod(sandbox)
    conf = conf_for(source_plugin, device=device, moveStrategy="atomic")
    killed = source_plugin.run(
        "ADD", conf, **pod_env(pod), CNI_HOSTDEV_TESTING="1", CNI_HOSTDEV_KILL_AT="altnames-dropped"
    )
    assert killed.status == -9, killed.stdout + killed.stderr
    assert altnames(device) == [kept], "killed with the colliding altname dropped and the device still home"

    deleted = source_plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert altnames(device) == [taken, kept]
