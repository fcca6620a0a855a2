"""A device whose name another device took while it was in a pod: DEL (and GC) bring it home under
another name and succeed, the device waits for its name, repair gives it back, and an ADD takes it
by identity, never the squatter (cni_hostdev/plugin/waiting.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    NODE,
    STRATEGIES,
    Plugin,
    Sandbox,
    conf_for,
    ip,
    is_up,
    link_json,
    link_names,
    pod_env,
    record_files,
    refund_to_host,
)


def by_mac(mac: str) -> dict[str, Any] | None:
    """The host's link with this MAC: how a device is found whatever it is called."""
    found = json.loads(subprocess.run(["ip", "-j", "-d", "link", "show"], capture_output=True, text=True).stdout)
    return next((link for link in found if link.get("address") == mac and "link_netnsid" not in link), None)


def waiting_records(plugin: Plugin) -> list[dict[str, Any]]:
    directory = Path(plugin.data_dir) / ".waiting"
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))] if directory.is_dir() else []


def tool(plugin: Plugin, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    return subprocess.run([*plugin.argv, *args], env={**env, **plugin.base_env}, capture_output=True, text=True)


def squat(sandbox: Sandbox, name: str) -> dict[str, Any]:
    """Another device takes `name` in the host (udev, an operator, a driver reload)."""
    squatter = sandbox.veth("sq")[0]
    ip("link", "set", squatter, "name", name)
    sandbox.links.append(name)
    info = link_json(name)
    assert info is not None
    return info


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_del_brings_the_device_home_under_another_name_and_repair_gives_its_name_back(
    source_plugin: Plugin, sandbox: Sandbox, strategy: str
) -> None:
    dev, _ = sandbox.veth()
    ip("link", "set", dev, "mtu", "1400")
    ip("link", "property", "add", "dev", dev, "altname", sandbox.name("alt"))
    before = link_json(dev)
    assert before is not None
    pod = sandbox.pod()
    log_file = Path(source_plugin.data_dir).parent / "log" / "host-device.log"
    conf = conf_for(source_plugin, device=dev, moveStrategy=strategy, logFile=str(log_file))
    assert source_plugin.run("ADD", conf, **pod_env(pod)).status == 0
    ip("-n", pod, "link", "set", "net1", "mtu", "1280")
    squatter = squat(sandbox, dev)

    deleted = source_plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0 and deleted.out is None, deleted.stderr
    home = by_mac(before["address"])
    assert home is not None and home["ifname"] != dev and home["ifname"].startswith("dev"), home
    assert home["ifalias"] == dev, "it keeps our marker while it waits"
    assert (home["mtu"], home.get("altnames"), is_up(home)) == (1400, [sandbox.name("alt")], True)
    for fact in (dev, home["ifname"], f"ifindex {squatter['ifindex']}", squatter["address"], f"on node {NODE}"):
        assert fact in deleted.stderr, f"the warning names {fact}: {deleted.stderr}"
    assert link_json(dev) == squatter, "the squatter is untouched"
    logged = [line for line in log_file.read_text().splitlines() if " WARNING " in line]
    assert len(logged) == 1 and "came home as" in logged[0] and f"device={dev}" in logged[0], logged
    assert record_files(source_plugin) == []
    (waiting,) = waiting_records(source_plugin)
    assert (waiting["phase"], waiting["original_name"], waiting["home_as"]) == ("waiting", dev, home["ifname"])
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0, "a second DEL has nothing to do"

    still = tool(source_plugin, "repair", "--once", "--data-dir", source_plugin.data_dir)
    assert still.returncode == 0, still.stderr
    assert by_mac(before["address"])["ifname"] == home["ifname"], "it waits while the name is taken"  # type: ignore[index]
    ip("link", "del", dev)
    freed = tool(source_plugin, "repair", "--once", "--data-dir", source_plugin.data_dir)
    assert freed.returncode == 0 and f"gave {dev} its name back" in freed.stderr, freed.stderr
    back = link_json(dev)
    assert back is not None and back["address"] == before["address"] and back["mtu"] == 1400 and is_up(back)
    assert back.get("ifalias") in (None, ""), "the marker goes once it has its name"
    assert waiting_records(source_plugin) == []


def test_an_add_while_the_device_waits_takes_it_not_the_squatter(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    mac = link_json(dev)["address"]  # type: ignore[index]
    first, second = sandbox.pod(), sandbox.pod("n2")
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(first)).status == 0
    squatter = squat(sandbox, dev)
    assert source_plugin.run("DEL", conf, **pod_env(first)).status == 0
    added = source_plugin.run("ADD", conf, **pod_env(second, "ctr2"))
    assert added.status == 0, added.stdout
    inside = link_json("net1", second)
    assert inside is not None and inside["address"] == mac, "the device, by identity"
    assert link_json(dev) == squatter, "not the squatter that carries its name"
    assert waiting_records(source_plugin) == []
    (record,) = [json.loads((Path(source_plugin.data_dir) / "tnet" / "ctr2-net1.json").read_text())]
    assert record["original_name"] == dev, "the new attachment owes the device its own name"
    ip("link", "del", dev)
    assert source_plugin.run("DEL", conf, **pod_env(second, "ctr2")).status == 0
    back = link_json(dev)
    assert back is not None and back["address"] == mac and back.get("ifalias") in (None, "")


def test_a_pool_counts_a_waiting_device_as_free_and_prefers_it_to_the_squatter(
    source_plugin: Plugin, sandbox: Sandbox
) -> None:
    dev, _ = sandbox.veth()
    mac = link_json(dev)["address"]  # type: ignore[index]
    first, second = sandbox.pod(), sandbox.pod("n2")
    conf = conf_for(source_plugin, devices=[{"namePattern": dev}])
    assert source_plugin.run("ADD", conf, **pod_env(first)).status == 0
    squatter = squat(sandbox, dev)
    assert source_plugin.run("DEL", conf, **pod_env(first)).status == 0
    added = source_plugin.run("ADD", conf, **pod_env(second, "ctr2"))
    assert added.status == 0, added.stdout
    assert link_json("net1", second)["address"] == mac  # type: ignore[index]
    assert link_json(dev) == squatter


def test_gc_brings_home_under_another_name_too(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    mac = link_json(dev)["address"]  # type: ignore[index]
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod)).status == 0
    squat(sandbox, dev)
    gc = source_plugin.run("GC", {**conf, "cni.dev/valid-attachments": []})
    assert gc.status == 0, gc.stdout
    home = by_mac(mac)
    assert home is not None and home["ifalias"] == dev and home["ifname"] != dev
    assert [w["container_id"] for w in waiting_records(source_plugin)] == ["ctr1"]


def test_a_refunded_device_whose_name_is_taken_waits_under_the_name_it_came_back_with(
    source_plugin: Plugin, sandbox: Sandbox
) -> None:
    dev, _ = sandbox.veth()
    mac = link_json(dev)["address"]  # type: ignore[index]
    pod = sandbox.pod()
    refunded_as = sandbox.name("r")
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod, ifname=refunded_as)).status == 0
    refund_to_host(pod, refunded_as)  # what the kernel does with a physical NIC of a dead netns
    sandbox.links.append(refunded_as)
    squat(sandbox, dev)
    deleted = source_plugin.run("DEL", conf, **pod_env(pod, ifname=refunded_as))
    assert deleted.status == 0, deleted.stdout
    home = by_mac(mac)
    assert home is not None and (home["ifname"], home["ifalias"]) == (refunded_as, dev)
    assert [w["home_as"] for w in waiting_records(source_plugin)] == [refunded_as]


def test_doctor_warns_of_a_device_waiting_for_its_name(source_plugin: Plugin, sandbox: Sandbox, tmp_path: Path) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod)).status == 0
    squatter = squat(sandbox, dev)
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0
    (tmp_path / "conf").mkdir()
    out = tool(
        source_plugin, "doctor", "--conf-dir", str(tmp_path / "conf"), "--data-dir", source_plugin.data_dir, "--json"
    )
    findings = [f for f in json.loads(out.stdout)["findings"] if f["kind"] == "waiting-for-name"]
    assert [f["severity"] for f in findings] == ["warning"], out.stdout
    assert f"ifindex {squatter['ifindex']}" in findings[0]["message"] and dev in findings[0]["message"]
    assert dev in link_names(), "doctor changes nothing"
