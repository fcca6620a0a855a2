"""Device pools (`devices`): one definition for every node, the first free device of this one.

Pools by name pattern run through real processes (source and frozen binary); pools by PCI
address and driver, and a deviceID inside or outside the pool, run in-process over a fake
sysfs naming real veths (real PCI NICs: conformance/qemu).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from cni_hostdev import lookup
from cni_hostdev.plugin import dispatch
from tests.conftest import NODE, Outcome, Plugin, Sandbox, conf_for, ip, link_json, netns_path, pod_env


def pool_of(sandbox: Sandbox, count: int) -> list[str]:
    """`count` free veth ends named TAGp1, TAGp2 …: a pattern TAGp[0-9] names them and not their peers."""
    return [sandbox.veth(f"p{n}")[0] for n in range(1, count + 1)]


def pattern(sandbox: Sandbox) -> str:
    return f"{sandbox.tag}p[0-9]"


def taken_by(pod: str, ifname: str = "net1") -> str:
    """The host name of the device in a pod: its alias, our marker."""
    info = link_json(ifname, pod)
    assert info is not None, f"no {ifname} in {pod}"
    return str(info["ifalias"])


def add(plugin: Plugin, conf: dict[str, Any], pod: str, container: str) -> Outcome:
    return plugin.run("ADD", conf, **pod_env(pod, container))


def test_first_free_in_order_of_preference(plugin: Plugin, sandbox: Sandbox) -> None:
    first, second, third = pool_of(sandbox, 3)
    conf = conf_for(plugin, devices=[{"device": second}, {"namePattern": pattern(sandbox)}])
    pods = [sandbox.pod(f"n{n}") for n in range(3)]
    picks = []
    for n, pod in enumerate(pods):
        added = add(plugin, conf, pod, f"c{n}")
        assert added.status == 0, added.stdout + added.stderr
        picks.append(taken_by(pod))
        assert added.out is not None and added.out["interfaces"][0]["mac"] == link_json("net1", pod)["address"]  # type: ignore[index]
    assert picks == [second, first, third], "the first candidate first, then the pattern's devices by name"

    record = json.loads((Path(plugin.data_dir) / "tnet" / "c1-net1.json").read_text())
    assert record["original_name"] == first, "the record says which device was taken"

    for n, pod in enumerate(pods):
        assert plugin.run("DEL", conf, **pod_env(pod, f"c{n}")).status == 0
    assert all(link_json(name) is not None for name in (first, second, third)), "every member home"


def test_exhausted_pool_names_the_node_and_every_candidate(plugin: Plugin, sandbox: Sandbox) -> None:
    first, second = pool_of(sandbox, 2)
    port, _ = sandbox.veth("q1")
    bridge = sandbox.bridge()
    ip("link", "set", port, "master", bridge)
    addressed, _ = sandbox.veth("q2")
    ip("address", "add", "198.51.100.7/24", "dev", addressed)
    conf = conf_for(
        plugin,
        devices=[
            {"namePattern": pattern(sandbox)},
            {"device": port},
            {"device": addressed},
            {"pciBusID": "0000:7f:1f.7"},
        ],
    )
    pods = [sandbox.pod(f"n{n}") for n in range(3)]
    for n, pod in enumerate(pods[:2]):
        assert add(plugin, conf, pod, f"c{n}").status == 0

    refused = add(plugin, conf, pods[2], "c2")
    assert refused.status != 0 and refused.code == 101, refused.stdout
    msg = refused.out["msg"]  # type: ignore[index]
    assert f"on node {NODE}" in msg
    assert f"device {first} is claimed by container c0 (netns {netns_path(pods[0])}, as net1)" in msg
    assert f"device {second} is claimed by container c1 (netns {netns_path(pods[1])}, as net1)" in msg
    assert f"device {port} is in use: it is a port of {bridge} (bridge)" in msg
    assert f"device {addressed} is in use by the host: it has global address 198.51.100.7/24" in msg
    assert "devices[3] (pciBusID 0000:7f:1f.7) is not present on this node" in msg
    assert link_json("net1", pods[2]) is None

    status = plugin.run("STATUS", conf)
    assert status.status != 0 and status.code == 50 and "cannot serve ADD" in status.out["msg"]  # type: ignore[index]

    # DEL frees a member: the next ADD takes it.
    assert plugin.run("DEL", conf, **pod_env(pods[1], "c1")).status == 0
    assert plugin.run("STATUS", conf).status == 0
    again = add(plugin, conf, pods[2], "c2")
    assert again.status == 0, again.stdout
    assert taken_by(pods[2]) == second
    for n in (0, 2):
        assert plugin.run("DEL", conf, **pod_env(pods[n], f"c{n}")).status == 0


def test_parallel_adds_never_share_a_device(plugin: Plugin, sandbox: Sandbox) -> None:
    members = pool_of(sandbox, 3)
    conf = conf_for(plugin, devices=[{"namePattern": pattern(sandbox)}])
    pods = [sandbox.pod(f"n{n}") for n in range(4)]
    with ThreadPoolExecutor(4) as workers:
        outcomes = list(workers.map(lambda n: add(plugin, conf, pods[n], f"c{n}"), range(4)))
    won = [n for n, outcome in enumerate(outcomes) if outcome.status == 0]
    lost = [outcome for outcome in outcomes if outcome.status != 0]
    assert len(won) == 3, [o.stdout for o in outcomes]
    assert len(lost) == 1 and lost[0].code == 101 and "pool is free" in lost[0].out["msg"]  # type: ignore[index]
    assert sorted(taken_by(pods[n]) for n in won) == sorted(members), "each member went to one pod"
    for n in won:
        assert plugin.run("DEL", conf, **pod_env(pods[n], f"c{n}")).status == 0
    assert all(link_json(name) is not None for name in members)


def test_dead_pods_pool_device_is_taken_again(plugin: Plugin, sandbox: Sandbox) -> None:
    """A pod that died without DEL: its veth is gone with it, the record is stale, the pool goes on.
    An ADD that finds a free member reads no other record (its cost does not grow with them): the
    stale record is GC's, repair's, or the first ADD's that finds the pool exhausted."""
    (only,) = pool_of(sandbox, 1)
    spare, _ = sandbox.veth("p2")
    conf = conf_for(plugin, devices=[{"namePattern": pattern(sandbox)}])
    dead, live, third = sandbox.pod("n0"), sandbox.pod("n1"), sandbox.pod("n2")
    assert add(plugin, conf, dead, "c0").status == 0
    taken = taken_by(dead)
    subprocess.run(["ip", "netns", "del", dead], check=True)
    added = add(plugin, conf, live, "c1")
    assert added.status == 0, added.stdout
    assert taken_by(live) == ({only, spare} - {taken}).pop()
    assert (Path(plugin.data_dir) / "tnet" / "c0-net1.json").exists(), "not read: a member was free"
    exhausted = add(plugin, conf, third, "c2")
    assert exhausted.status != 0 and exhausted.code == 101, exhausted.stdout
    assert not (Path(plugin.data_dir) / "tnet" / "c0-net1.json").exists(), "the exhausted pool's ADD gave it back"
    assert plugin.run("DEL", conf, **pod_env(live, "c1")).status == 0


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ([], "devices must be a non-empty list"),
        ([{}], "devices[0] must be an object"),
        ([{"device": "x", "color": "red"}], "devices[0].color is not a device selector"),
        ([{"namePattern": 3}], "devices[0].namePattern must be a string"),
        ([{"hwaddr": "nope"}], "devices[0].hwaddr 'nope' is not a MAC address"),
        ("ens1", "devices must be a non-empty list"),
    ],
)
def test_bad_pools_are_config_errors(source_plugin: Plugin, sandbox: Sandbox, devices: Any, message: str) -> None:
    pod = sandbox.pod()
    out = add(source_plugin, conf_for(source_plugin, devices=devices), pod, "c0")
    assert out.status != 0 and out.code == 7 and message in out.out["msg"], out.stdout  # type: ignore[index]


def test_pool_and_a_single_selector_exclude_each_other(source_plugin: Plugin, sandbox: Sandbox) -> None:
    (member,) = pool_of(sandbox, 1)
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=member, devices=[{"device": member}])
    out = add(source_plugin, conf, pod, "c0")
    assert out.code == 7 and "devices and device exclude each other" in out.out["msg"]  # type: ignore[index]
    assert link_json(member) is not None


# --- in-process, over a fake sysfs: PCI addresses, drivers, deviceID ---------------------------


def _fake_nic(root: Path, address: str, netdev: str, driver: str) -> None:
    function = root / "devices" / "pci0000:00" / address
    (function / "net" / netdev).mkdir(parents=True)
    drivers = root / "bus" / "pci" / "drivers" / driver
    drivers.mkdir(parents=True, exist_ok=True)
    os.symlink(drivers, function / "driver")
    bus = root / "bus" / "pci" / "devices"
    bus.mkdir(parents=True, exist_ok=True)
    os.symlink(function, bus / address)
    (root / "class" / "net" / netdev).mkdir(parents=True)
    os.symlink(function, root / "class" / "net" / netdev / "device")


@pytest.fixture
def fake_nics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox) -> list[str]:
    """Three veths posing as PCI NICs 0000:00:0a.0 (mlx5_core), 0b.0 (ice), 0c.0 (mlx5_core)."""
    root = tmp_path / "sys"
    monkeypatch.setattr(lookup, "SYSFS", str(root))
    names = pool_of(sandbox, 3)
    for name, (address, driver) in zip(
        names, [("0000:00:0a.0", "mlx5_core"), ("0000:00:0b.0", "ice"), ("0000:00:0c.0", "mlx5_core")], strict=True
    ):
        _fake_nic(root, address, name, driver)
    return names


def in_process(command: str, conf: dict[str, Any], pod: str, container: str) -> tuple[dict[str, Any] | None, int]:
    environ = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container,
        "CNI_NETNS": netns_path(pod),
        "CNI_IFNAME": "net1",
        "CNI_PATH": "/usr/lib/cni",
    }
    return dispatch.run(environ, json.dumps(conf).encode())


def pool_conf(tmp_path: Path, **keys: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"cniVersion": "1.1.0", "name": "tnet", "type": "host-device"}
    conf["dataDir"] = str(tmp_path / "state")
    conf.update(keys)
    return conf


def test_pool_by_driver_and_pci_address(fake_nics: list[str], sandbox: Sandbox, tmp_path: Path) -> None:
    mlx_a, ice, mlx_b = fake_nics
    conf = pool_conf(tmp_path, devices=[{"pciBusID": "0000:00:0c.0", "driver": "ice"}, {"driver": "mlx5_core"}])
    pods = [sandbox.pod(f"n{n}") for n in range(3)]
    assert in_process("ADD", conf, pods[0], "c0")[1] == 0
    assert in_process("ADD", conf, pods[1], "c1")[1] == 0
    assert [taken_by(pods[0]), taken_by(pods[1])] == [mlx_a, mlx_b], "0c.0 is not ice: only the driver candidate"
    out, status = in_process("ADD", conf, pods[2], "c2")
    assert status == 1 and out is not None and out["code"] == 101
    assert "devices[0] (pciBusID 0000:00:0c.0 and driver ice) is not present on this node" in out["msg"]
    assert f"device {mlx_a} is claimed by container c0" in out["msg"], "a device in a pod still counts by driver"
    assert link_json(ice) is not None
    for n in range(2):
        assert in_process("DEL", conf, pods[n], f"c{n}")[1] == 0


def test_device_id_must_be_one_of_the_pool(fake_nics: list[str], sandbox: Sandbox, tmp_path: Path) -> None:
    mlx_a, ice, _ = fake_nics
    pod = sandbox.pod()
    devices = [{"driver": "mlx5_core"}]
    outside = pool_conf(tmp_path, devices=devices, runtimeConfig={"deviceID": "0000:00:0b.0"})
    out, status = in_process("ADD", outside, pod, "c0")
    assert status == 1 and out is not None and out["code"] == 7
    assert f"deviceID 0000:00:0b.0 is device {ice}, which is not one of the pool's devices" in out["msg"]
    assert f"on node {socket.gethostname()}" in out["msg"]
    assert link_json(ice) is not None and link_json("net1", pod) is None

    inside = pool_conf(tmp_path, devices=devices, runtimeConfig={"deviceID": "0000:00:0c.0"})
    out, status = in_process("ADD", inside, pod, "c0")
    assert status == 0, out
    assert taken_by(pod) != mlx_a, "the deviceID wins over the pool's order"
    assert in_process("DEL", inside, pod, "c0")[1] == 0


def test_inventory_of_a_pool(plugin: Plugin, sandbox: Sandbox, tmp_path: Path) -> None:
    first, second = pool_of(sandbox, 2)
    devices = [{"namePattern": pattern(sandbox)}, {"pciBusID": "0000:7f:1f.7"}]
    conf = conf_for(plugin, devices=devices)
    pod = sandbox.pod()
    assert add(plugin, conf, pod, "c0").status == 0

    conflist = {"cniVersion": "1.0.0", "name": "tnet", "plugins": [{k: v for k, v in conf.items() if k != "name"}]}
    nad = {"kind": "NetworkAttachmentDefinition", "spec": {"config": json.dumps(conflist)}}
    for form, content in (("conflist", conflist), ("nad", nad)):
        path = tmp_path / f"{form}.json"
        path.write_text(json.dumps(content))
        shown = subprocess.run(
            [*plugin.argv, "inventory", "--json", "--config", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, **plugin.base_env},
        )
        assert shown.returncode == 0, shown.stderr
        rows = {(row["name"], row["state"]): row["detail"] for row in json.loads(shown.stdout)}
        assert set(rows) == {(first, "claimed"), (second, "free"), ("-", "absent")}, rows
        assert f"claimed by container c0 (netns {netns_path(pod)}, as net1)" in rows[(first, "claimed")]
        assert "devices[1] (pciBusID 0000:7f:1f.7)" in rows[("-", "absent")]
    assert plugin.run("DEL", conf, **pod_env(pod, "c0")).status == 0

    broken = tmp_path / "broken.json"
    broken.write_text("name: tnet\n")
    refused = subprocess.run(
        [*plugin.argv, "inventory", "--config", str(broken)],
        capture_output=True,
        text=True,
        env={**os.environ, **plugin.base_env},
    )
    assert refused.returncode == 1 and "no host-device network config" in refused.stderr  # YAML, of nothing of ours
    assert "Traceback" not in refused.stderr


def test_a_refunded_nic_whose_name_is_taken_is_the_member_its_name_makes_it(plugin: Plugin, sandbox: Sandbox) -> None:
    """A dead pod's NIC came back under the pod's name, and the host gave its own name to another
    device meanwhile: the next ADD settles the claim (the NIC waits, under the pod's name, for its
    own) and takes the NIC, by identity, not the newcomer that carries its name."""
    first, _ = pool_of(sandbox, 2)
    conf = conf_for(plugin, devices=[{"namePattern": pattern(sandbox)}])
    dying, live = sandbox.pod("n0"), sandbox.pod("n1")
    pod_name = sandbox.name("pq")
    assert plugin.run("ADD", conf, **pod_env(dying, "c0", pod_name)).status == 0
    ip("-n", dying, "link", "set", pod_name, "netns", "1")
    subprocess.run(["ip", "netns", "del", dying], check=True)
    sandbox.netns.remove(dying)
    sandbox.links.append(pod_name)
    ip("link", "add", first, "type", "veth", "peer", "name", sandbox.name("pz"))
    sandbox.links += [first, sandbox.name("pz")]
    nic_mac, newcomer = link_json(pod_name)["address"], link_json(first)  # type: ignore[index]

    added = add(plugin, conf, live, "c1")
    assert added.status == 0, added.stdout + added.stderr
    assert f"claim of {first} by c0 was stale" in added.stderr
    assert link_json("net1", live)["address"] == nic_mac  # type: ignore[index]
    assert link_json(first) == newcomer, "the newcomer keeps the name, untouched"
    assert not (Path(plugin.data_dir) / "tnet" / f"c0-{pod_name}.json").exists()
    assert not list((Path(plugin.data_dir) / ".waiting").iterdir()), "the ADD took the waiting NIC over"
    assert plugin.run("DEL", conf, **pod_env(live, "c1")).status == 0
