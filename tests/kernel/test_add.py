"""ADD on real veths and namespaces: what it takes, what it refuses, how it rolls back, what it answers."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from cni_hostdev import lookup
from cni_hostdev.plugin import dispatch
from tests.conftest import (
    STRATEGIES,
    Plugin,
    Sandbox,
    conf_for,
    ip,
    is_up,
    link_json,
    link_names,
    netns_path,
    pod_env,
    record_files,
)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_add_check_del_round_trip(plugin: Plugin, sandbox: Sandbox, strategy: str) -> None:
    dev, _ = sandbox.veth()
    ip("link", "set", dev, "mtu", "1400")
    ip("link", "set", dev, "alias", "uplink-of-rack-7")
    before = link_json(dev)
    assert before is not None
    pod = sandbox.pod()
    conf = conf_for(plugin, device=dev, moveStrategy=strategy)
    env = pod_env(pod)

    added = plugin.run("ADD", conf, **env)
    assert added.status == 0, added.stdout + added.stderr
    assert added.out is not None
    iface = added.out["interfaces"][-1]
    assert iface == {"name": "net1", "mac": before["address"], "mtu": 1400, "sandbox": netns_path(pod)}
    assert dev not in link_names(), "the device must have left the host"
    inside = link_json("net1", pod)
    assert inside is not None and is_up(inside)
    assert inside["ifalias"] == dev, "the original name rides along as the alias"
    assert "Traceback" not in added.stderr

    record_path = os.path.join(plugin.data_dir, "tnet", "ctr1-net1.json")
    assert stat.S_IMODE(os.stat(record_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(record_path)).st_mode) == 0o700
    with open(record_path) as f:
        record = json.load(f)
    assert record["original_name"] == dev and record["original_alias"] == "uplink-of-rack-7"
    assert record["strategy"] == strategy and record["phase"] == "attached"

    checked = plugin.run("CHECK", {**conf, "prevResult": added.out}, **env)
    assert checked.status == 0, checked.stdout

    deleted = plugin.run("DEL", conf, **env)
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    after = link_json(dev)
    assert after is not None
    assert after["mtu"] == 1400 and after["address"] == before["address"]
    assert after["ifalias"] == "uplink-of-rack-7"
    assert is_up(after)
    assert "net1" not in link_names(pod)
    assert record_files(plugin) == []

    again = plugin.run("DEL", conf, **env)
    assert again.status == 0 and again.out is None


def test_name_already_in_pod_fails_and_nothing_moves(plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    ip("-n", pod, "link", "add", "net1", "type", "veth", "peer", "name", "other1")
    out = plugin.run("ADD", conf_for(plugin, device=dev), **pod_env(pod))
    assert out.status == 1 and out.code == 103
    assert "net1" in out.out["msg"] if out.out else False
    info = link_json(dev)
    assert info is not None and is_up(info)
    assert record_files(plugin) == []


@pytest.mark.parametrize(
    ("strategy", "step"),
    [
        ("atomic", "moved-to-pod"),
        ("atomic", "up"),
        ("rename-then-move", "moved-to-staging"),
        ("rename-then-move", "renamed"),
        ("rename-then-move", "moved-to-pod"),
        ("rename-then-move", "up"),
    ],
)
def test_failure_at_any_step_rolls_back(plugin: Plugin, sandbox: Sandbox, strategy: str, step: str) -> None:
    dev, _ = sandbox.veth()
    before = link_json(dev)
    pod = sandbox.pod()
    out = plugin.run(
        "ADD",
        conf_for(plugin, device=dev, moveStrategy=strategy),
        **pod_env(pod),
        CNI_HOSTDEV_TESTING="1",
        CNI_HOSTDEV_FAIL_AT=step,
    )
    assert out.status == 1 and out.code == 999
    assert "Traceback" not in out.stdout
    after = link_json(dev)
    assert after is not None, f"device lost after failure at {step}"
    assert before is not None and after["address"] == before["address"] and is_up(after)
    assert after.get("ifalias") in (None, ""), "the alias we set is taken back"
    assert link_names(pod) <= {"lo"}
    assert record_files(plugin) == []


def test_fault_hook_is_inert_without_the_test_flag(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    out = source_plugin.run("ADD", conf_for(source_plugin, device=dev), **pod_env(pod), CNI_HOSTDEV_FAIL_AT="up")
    assert out.status == 0


def test_second_pod_is_told_who_holds_the_device(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod_a, pod_b = sandbox.pod("na"), sandbox.pod("nb")
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod_a, "ctr-a")).status == 0
    second = source_plugin.run("ADD", conf, **pod_env(pod_b, "ctr-b"))
    assert second.status == 1 and second.code == 101
    assert second.out is not None and "ctr-a" in second.out["msg"] and pod_a in second.out["msg"]
    assert link_json("net1", pod_a) is not None and link_names(pod_b) <= {"lo"}


def test_bridge_port_bridge_and_addressed_device_are_refused(source_plugin: Plugin, sandbox: Sandbox) -> None:
    pod = sandbox.pod()
    port, _ = sandbox.veth("pt")
    bridge = sandbox.bridge()
    ip("link", "set", port, "master", bridge)
    out = source_plugin.run("ADD", conf_for(source_plugin, device=port), **pod_env(pod))
    assert out.code == 101 and out.out is not None and bridge in out.out["msg"]

    out = source_plugin.run("ADD", conf_for(source_plugin, device=bridge), **pod_env(pod))
    assert out.code == 101 and out.out is not None and "bridge" in out.out["msg"]

    addressed, _ = sandbox.veth("ad")
    ip("addr", "add", "198.51.100.7/24", "dev", addressed)
    out = source_plugin.run("ADD", conf_for(source_plugin, device=addressed), **pod_env(pod))
    assert out.code == 101 and out.out is not None and "198.51.100.7/24" in out.out["msg"]
    assert link_names(pod) <= {"lo"}
    assert {port, bridge, addressed} <= link_names()

    allowed = source_plugin.run(
        "ADD", conf_for(source_plugin, device=addressed, allowHostAddresses=True), **pod_env(pod)
    )
    assert allowed.status == 0, allowed.stdout
    assert link_json("net1", pod) is not None
    assert source_plugin.run("DEL", conf_for(source_plugin), **pod_env(pod)).status == 0


@pytest.mark.parametrize("selector", ["hwaddr", "kernelpath", "device+hwaddr"])
def test_selectors_on_virtual_devices(source_plugin: Plugin, sandbox: Sandbox, selector: str) -> None:
    dev, _ = sandbox.veth()
    info = link_json(dev)
    assert info is not None
    keys: dict[str, str] = {}
    if selector == "hwaddr":
        keys["hwaddr"] = info["address"].upper()
    elif selector == "kernelpath":
        keys["kernelpath"] = f"/sys/devices/virtual/net/{dev}"
    else:
        keys = {"device": dev, "hwaddr": info["address"]}
    pod = sandbox.pod()
    conf = conf_for(source_plugin, **keys)
    out = source_plugin.run("ADD", conf, **pod_env(pod))
    assert out.status == 0, out.stdout
    assert link_json("net1", pod) is not None
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0
    assert link_json(dev) is not None


def test_disagreeing_selectors_are_a_config_error(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev_a, _ = sandbox.veth("x")
    dev_b, _ = sandbox.veth("y")
    mac_b = link_json(dev_b)
    assert mac_b is not None
    pod = sandbox.pod()
    out = source_plugin.run("ADD", conf_for(source_plugin, device=dev_a, hwaddr=mac_b["address"]), **pod_env(pod))
    assert out.code == 7 and out.out is not None and dev_a in out.out["msg"] and dev_b in out.out["msg"]
    assert {dev_a, dev_b} <= link_names()


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_result_shape_per_version(source_plugin: Plugin, sandbox: Sandbox, version: str) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, version, device=dev)
    out = source_plugin.run("ADD", conf, **pod_env(pod))
    assert out.status == 0 and out.out is not None
    assert out.out["cniVersion"] == version
    iface = out.out["interfaces"][0]
    assert iface["name"] == "net1" and iface["sandbox"] == netns_path(pod)
    assert ("mtu" in iface) == (version == "1.1.0"), "mtu in interfaces exists only since 1.1.0"
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])
def test_legacy_versions_without_ipam_are_refused_before_moving(plugin: Plugin, sandbox: Sandbox, version: str) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    out = plugin.run("ADD", conf_for(plugin, version, device=dev), **pod_env(pod))
    assert out.status == 1 and out.code == 1 and out.out is not None
    assert version in out.out["msg"]
    assert dev in link_names() and link_names(pod) <= {"lo"}


def test_prev_result_is_kept_when_chained(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": netns_path(pod)}], "dns": {}}
    conf = conf_for(source_plugin, "1.0.0", device=dev, prevResult=prev)
    out = source_plugin.run("ADD", conf, **pod_env(pod))
    assert out.status == 0 and out.out is not None
    assert [i["name"] for i in out.out["interfaces"]] == ["eth0", "net1"]
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0


def test_userspace_driver_device_is_not_moved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox
) -> None:
    sysfs = tmp_path / "sys"
    function = sysfs / "devices" / "pci0000:00" / "0000:00:09.0"
    function.mkdir(parents=True)
    driver = sysfs / "bus" / "pci" / "drivers" / "vfio-pci"
    driver.mkdir(parents=True)
    os.symlink(driver, function / "driver")
    (sysfs / "bus" / "pci" / "devices").mkdir(parents=True)
    os.symlink(function, sysfs / "bus" / "pci" / "devices" / "0000:00:09.0")
    monkeypatch.setattr(lookup, "SYSFS", str(sysfs))
    pod = sandbox.pod()
    before = link_names()
    conf = {
        "cniVersion": "1.1.0",
        "name": "tnet",
        "type": "host-device",
        "dataDir": str(tmp_path / "state"),
        "runtimeConfig": {"deviceID": "0000:00:09.0"},
    }
    environ = {"CNI_COMMAND": "ADD", "CNI_PATH": "/usr/lib/cni", "PATH": os.environ["PATH"], **pod_env(pod)}
    out, status = dispatch.run(environ, json.dumps(conf).encode())
    assert status == 0, out
    assert out is not None
    assert out["interfaces"] == [{"name": "net1", "sandbox": netns_path(pod), "pciID": "0000:00:09.0"}]
    assert link_names() == before and link_names(pod) <= {"lo"}
    record = json.loads((tmp_path / "state" / "tnet" / "ctr1-net1.json").read_text())
    assert record["kind"] == "userspace" and record["netns_cookie"] is not None, "the pod is pinned"
    again, status = dispatch.run({**environ, "CNI_CONTAINERID": "other"}, json.dumps(conf).encode())
    assert status == 1 and again is not None and again["code"] == 101 and "ctr1" in again["msg"]
    # Another network asking for the same function is told who holds it, across networks.
    other_pod = sandbox.pod("o")
    other = {**conf, "name": "tother"}
    other_env = {**environ, **pod_env(other_pod, "ctr2")}
    refused, status = dispatch.run(other_env, json.dumps(other).encode())
    assert status == 1 and refused is not None and refused["code"] == 101
    assert "ctr1 of network tnet" in refused["msg"] and "0000:00:09.0" in refused["msg"]
    # Its pod dies without DEL: the next ADD of the function, by the other network, takes it.
    subprocess.run(["ip", "netns", "del", pod], check=True)
    taken, status = dispatch.run(other_env, json.dumps(other).encode())
    assert status == 0 and taken is not None and taken["interfaces"][0]["pciID"] == "0000:00:09.0"
    assert not os.listdir(tmp_path / "state" / "tnet"), "the dead pod's claim was given back"
    out, status = dispatch.run({**other_env, "CNI_COMMAND": "DEL"}, json.dumps(other).encode())
    assert status == 0 and out is None
    assert not os.listdir(tmp_path / "state" / "tother")
