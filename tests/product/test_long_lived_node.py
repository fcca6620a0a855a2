"""A node that has run pods for weeks: user stories played in order on one state directory.

Nothing is wiped between the stories: each one meets the records, dead pods and reused names the
ones before it left, as every real node does. Each story ends by saying where every device it
touched is. The plugin is the frozen binary, as a runtime runs it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BINARY, Plugin, Sandbox, conf_for, ip, link_json, link_names, netns_path

HOST_LOCAL = "/usr/lib/cni/host-local"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Plugin:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    return Plugin([str(BINARY)], str(tmp_path_factory.mktemp("node") / "state"))


def env_of(container: str, netns: str, ifname: str = "net1") -> dict[str, str]:
    return {"CNI_CONTAINERID": container, "CNI_NETNS": netns_path(netns), "CNI_IFNAME": ifname}


def records(node: Plugin) -> dict[str, dict[str, Any]]:
    """network/file -> record, of every network."""
    out = {}
    root = Path(node.data_dir)
    for path in sorted(root.glob("*/*.json")):
        if path.parent.name != "locks":
            out[f"{path.parent.name}/{path.name}"] = json.loads(path.read_text())
    return out


def kill_pod(name: str, devices: tuple[str, ...] = ()) -> None:
    """The pod's netns goes without a DEL (a crash, a power loss): its veths die with it."""
    subprocess.run(["ip", "netns", "del", name], check=True, capture_output=True)
    deadline = time.monotonic() + 10
    while any(d in link_names() for d in devices) and time.monotonic() < deadline:
        time.sleep(0.02)


def recreate_veth(sandbox: Sandbox, name: str) -> None:
    """The NIC is back under its name after the reboot (a new veth, a new MAC); teardown is asynchronous."""
    deadline = time.monotonic() + 10
    while True:
        out = ip("link", "add", name, "type", "veth", "peer", "name", name + "p", check=False)
        if out.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert out.returncode == 0, out.stderr
    sandbox.links += [name, name + "p"]
    ip("link", "set", name, "up")


def new_netns(sandbox: Sandbox, name: str) -> str:
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    sandbox.netns.append(name)
    return name


@pytest.fixture
def story(sandbox: Sandbox) -> Iterator[Sandbox]:
    yield sandbox


def test_1_a_container_restarted_with_the_same_id_after_its_netns_vanished(node: Plugin, story: Sandbox) -> None:
    nic, _ = story.veth("rs")
    first = story.pod("r1")
    conf = conf_for(node, device=nic)
    assert node.run("ADD", conf, **env_of("restarted", first)).status == 0
    kill_pod(first, (nic,))
    story.netns.remove(first)
    recreate_veth(story, nic)
    second = story.pod("r2")  # podman starts the same container again: same ID, new netns, no DEL before

    again = node.run("ADD", conf, **env_of("restarted", second))
    assert again.status == 0, again.stdout
    assert "gave its device back first" in again.stderr, again.stderr
    assert link_json("net1", second) is not None and nic not in link_names()
    [record] = [r for r in records(node).values() if r["container_id"] == "restarted"]
    assert record["netns"] == netns_path(second) and record["netns_cookie"]

    assert node.run("DEL", conf, **env_of("restarted", second)).status == 0
    assert nic in link_names() and link_json("net1", second) is None


def test_2_a_reboot_keeps_records_but_not_the_netns_then_new_pods_and_a_gc(node: Plugin, story: Sandbox) -> None:
    kept, gone = story.veth("bk")[0], story.veth("bg")[0]
    old_a, old_b = story.pod("b1"), story.pod("b2")
    conf_kept, conf_gone = conf_for(node, device=kept), conf_for(node, device=gone)
    assert node.run("ADD", conf_kept, **env_of("before-a", old_a)).status == 0
    assert node.run("ADD", conf_gone, **env_of("before-b", old_b)).status == 0
    # The reboot: every netns is gone, /var/lib keeps the records (written in an earlier boot),
    # the NICs are back under their names.
    for pod, nic in ((old_a, kept), (old_b, gone)):
        kill_pod(pod, (nic,))
        story.netns.remove(pod)
        recreate_veth(story, nic)
    for path in Path(node.data_dir).glob("tnet/before-*.json"):
        record = json.loads(path.read_text())
        path.write_text(json.dumps({**record, "boot_id": "an-earlier-boot"}))

    fresh = story.pod("b3")
    added = node.run("ADD", conf_kept, **env_of("after", fresh))
    assert added.status == 0, added.stdout
    valid = {"cni.dev/valid-attachments": [{"containerID": "after", "ifname": "net1"}]}
    collected = node.run("GC", {**conf_kept, **valid})
    assert collected.status == 0, collected.stdout
    left = {r["container_id"] for r in records(node).values()}
    assert "before-a" not in left and "before-b" not in left and "after" in left
    assert link_json("net1", fresh) is not None and kept not in link_names()
    assert gone in link_names(), "the NIC a dead record named stays where the host has it"

    assert node.run("DEL", conf_kept, **env_of("after", fresh)).status == 0
    assert kept in link_names()


def test_3_a_netns_path_reused_by_the_next_pod_with_the_same_nic_name(node: Plugin, story: Sandbox) -> None:
    nic, _ = story.veth("ru")
    path_name = story.name("ns")
    new_netns(story, path_name)
    conf = conf_for(node, device=nic)
    assert node.run("ADD", conf, **env_of("dead-pod", path_name)).status == 0
    kill_pod(path_name, (nic,))
    story.netns.remove(path_name)
    recreate_veth(story, nic)
    new_netns(story, path_name)  # the next pod gets the same path, and the same NIC as net1
    assert node.run("ADD", conf, **env_of("live-pod", path_name)).status == 0
    taken = link_json("net1", path_name)
    assert taken is not None

    # The runtime's late DEL of the dead pod names the same path: the live pod keeps its NIC.
    late = node.run("DEL", conf, **env_of("dead-pod", path_name))
    assert late.status == 0, late.stdout
    assert link_json("net1", path_name) == taken and nic not in link_names()
    valid = {"cni.dev/valid-attachments": [{"containerID": "live-pod", "ifname": "net1"}]}
    assert node.run("GC", {**conf, **valid}).status == 0
    assert link_json("net1", path_name) == taken, "GC of the dead record never touches the live pod"
    assert {r["container_id"] for r in records(node).values() if r["original_name"] == nic} == {"live-pod"}

    assert node.run("DEL", conf, **env_of("live-pod", path_name)).status == 0
    assert nic in link_names() and link_json("net1", path_name) is None


def test_4_two_networks_sharing_a_device_name(node: Plugin, story: Sandbox) -> None:
    nic, _ = story.veth("sh")
    pod_a, pod_b = story.pod("sa"), story.pod("sb")
    net_a = {**conf_for(node, device=nic), "name": "tnet-a"}
    net_b = {**conf_for(node, device=nic), "name": "tnet-b"}
    assert node.run("ADD", net_a, **env_of("on-a", pod_a)).status == 0
    refused = node.run("ADD", net_b, **env_of("on-b", pod_b))
    assert refused.code == 101, refused.stdout
    assert refused.out is not None and "on-a of network tnet-a" in refused.out["msg"]
    assert link_json("net1", pod_a) is not None and link_json("net1", pod_b) is None

    assert node.run("DEL", net_a, **env_of("on-a", pod_a)).status == 0
    assert node.run("ADD", net_b, **env_of("on-b", pod_b)).status == 0
    assert link_json("net1", pod_b) is not None and link_json("net1", pod_a) is None
    assert node.run("DEL", net_b, **env_of("on-b", pod_b)).status == 0
    assert nic in link_names()


@pytest.mark.usefixtures("reference_ipam")
@pytest.mark.parametrize("ipam_type", ["static", "host-local"])
def test_5_debian_ipam_plugins_under_a_110_config(node: Plugin, story: Sandbox, tmp_path: Path, ipam_type: str) -> None:
    nic, peer = story.veth("ip")
    ip("link", "set", peer, "up")
    pod = story.pod("ip")
    ipam: dict[str, Any] = {"type": "static", "addresses": [{"address": "10.61.0.5/24", "gateway": "10.61.0.1"}]}
    if ipam_type == "host-local":
        ipam = {"type": "host-local", "dataDir": str(tmp_path / "ipam"), "ranges": [[{"subnet": "10.62.0.0/24"}]]}
    conf = conf_for(node, "1.1.0", device=nic, ipam=ipam)
    added = node.run("ADD", conf, **env_of("ipam", pod))
    assert added.status == 0, added.stdout
    assert added.out is not None and added.out["cniVersion"] == "1.1.0" and added.out["ips"]
    assert node.run("CHECK", {**conf, "prevResult": added.out}, **env_of("ipam", pod)).status == 0
    valid = {"cni.dev/valid-attachments": [{"containerID": "ipam", "ifname": "net1"}]}
    assert node.run("GC", {**conf, **valid}).status == 0
    assert link_json("net1", pod) is not None
    assert node.run("DEL", conf, **env_of("ipam", pod)).status == 0
    assert nic in link_names()
    if ipam_type == "host-local":
        assert not [p for p in (tmp_path / "ipam" / "tnet").iterdir() if p.name[0].isdigit()], "address released"


def test_6_a_second_add_while_the_pod_lives_is_refused_and_names_its_netns(node: Plugin, story: Sandbox) -> None:
    nic, _ = story.veth("tw")
    pod = story.pod("tw")
    conf = conf_for(node, device=nic)
    assert node.run("ADD", conf, **env_of("twice", pod)).status == 0
    again = node.run("ADD", conf, **env_of("twice", pod))
    assert again.code == 101 and again.out is not None
    assert f"already has net1 (device {nic}) in netns {netns_path(pod)}" in again.out["msg"]
    assert link_json("net1", pod) is not None
    assert node.run("DEL", conf, **env_of("twice", pod)).status == 0
    assert nic in link_names()


def test_7_a_record_of_the_previous_version_without_a_cookie_is_still_honoured(node: Plugin, story: Sandbox) -> None:
    nic, _ = story.veth("ov")
    pod = story.pod("ov")
    conf = conf_for(node, device=nic)
    assert node.run("ADD", conf, **env_of("older", pod)).status == 0
    [path] = Path(node.data_dir).glob("tnet/older-net1.json")
    old = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("netns_cookie", "netns_inode", "boot_id")}
    path.write_text(json.dumps(old))
    refused = node.run("ADD", conf, **env_of("older", pod))
    assert refused.code == 101, "its pod still counts as alive: the path is taken at its word"
    assert node.run("DEL", conf, **env_of("older", pod)).status == 0
    assert nic in link_names() and link_json("net1", pod) is None


def test_8_a_device_refunded_under_its_pod_name_gets_its_own_name_before_the_next_pod(
    node: Plugin, story: Sandbox
) -> None:
    """As the kernel does with a physical NIC when its pod's netns dies: back in the host under the name
    it had in the pod, our marker still on it. The next ADD (by MAC) takes it under its own name."""
    nic, _ = story.veth("rf")
    pod_name = story.name("if")
    mac = (link_json(nic) or {})["address"]
    first = story.pod("f1")
    conf = conf_for(node, hwaddr=mac)
    assert node.run("ADD", conf, **env_of("refunded", first, pod_name)).status == 0
    ip("-n", first, "link", "set", pod_name, "netns", "1")
    kill_pod(first)
    story.netns.remove(first)
    story.links.append(pod_name)
    assert pod_name in link_names() and (link_json(pod_name) or {}).get("ifalias") == nic

    second = story.pod("f2")
    assert node.run("ADD", conf, **env_of("next", second)).status == 0
    assert link_json("net1", second) is not None and pod_name not in link_names()
    [record] = [r for r in records(node).values() if r["container_id"] in ("refunded", "next")]
    assert (record["container_id"], record["original_name"]) == ("next", nic)
    assert node.run("DEL", conf, **env_of("next", second)).status == 0
    assert nic in link_names() and not (link_json(nic) or {}).get("ifalias")


def test_9_a_pool_joins_a_node_with_other_networks_claims_a_refund_and_old_records(
    node: Plugin, story: Sandbox
) -> None:
    """A pool network arrives on a node where a single-device network holds one of its NICs; one of its
    own pods dies with its NIC refunded under the pod name; a record of the previous version (no
    driver, no altnames) holds another. Every pick and the final refusal account for all of them."""
    nics = [story.veth(f"q{n}")[0] for n in (1, 2, 3)]
    single = {**conf_for(node, device=nics[0]), "name": "tnet-single"}
    pool = {**conf_for(node, devices=[{"namePattern": f"{story.tag}q[0-9]"}]), "name": "tnet-pool"}
    holder, dying, after, older, late = (story.pod(s) for s in ("ph", "pd", "pa", "po", "pl"))
    assert node.run("ADD", single, **env_of("single", holder)).status == 0

    pod_name = story.name("pq")
    assert node.run("ADD", pool, **env_of("dying", dying, pod_name)).status == 0
    assert (link_json(pod_name, dying) or {}).get("ifalias") == nics[1], "the pool skips the other network's NIC"
    ip("-n", dying, "link", "set", pod_name, "netns", "1")
    kill_pod(dying)
    story.netns.remove(dying)
    story.links.append(pod_name)

    assert node.run("ADD", pool, **env_of("after", after)).status == 0
    assert (link_json("net1", after) or {}).get("ifalias") == nics[1], "the refunded NIC, under its own name again"
    assert pod_name not in link_names()
    held = {r["container_id"]: r["original_name"] for r in records(node).values()}
    assert "dying" not in held and held["after"] == nics[1]

    [path] = Path(node.data_dir).glob("tnet-pool/after-net1.json")
    previous = {k: v for k, v in json.loads(path.read_text()).items() if k not in ("driver", "altnames")}
    path.write_text(json.dumps(previous))
    assert node.run("ADD", pool, **env_of("older", older)).status == 0
    assert (link_json("net1", older) or {}).get("ifalias") == nics[2]

    refused = node.run("ADD", pool, **env_of("late", late))
    assert refused.code == 101 and refused.out is not None, refused.stdout
    for nic, container in zip(nics, ("single of network tnet-single", "after", "older"), strict=True):
        assert f"device {nic} is claimed by container {container} " in refused.out["msg"], refused.out["msg"]
    assert f"on node {os.uname().nodename}" in refused.out["msg"]

    assert node.run("DEL", single, **env_of("single", holder)).status == 0
    for container, pod in (("after", after), ("older", older), ("dying", dying)):
        assert node.run("DEL", pool, **env_of(container, pod)).status == 0
    assert set(nics) <= link_names() and not any((link_json(n) or {}).get("ifalias") for n in nics)


def test_10_the_node_holds_no_record_of_anything_still_out(node: Plugin) -> None:
    """After all of the above, the state directory has no record left: every story gave its devices back.

    Only after them: alone, with no story run, there is nothing to look at, and that is a failure."""
    root = Path(node.data_dir)
    networks = (
        {path.name for path in root.iterdir() if path.is_dir() and path.name != "locks"} if root.exists() else set()
    )
    assert len(networks) >= 3, f"the stories before this one ran and recorded attachments: {sorted(networks)}"
    assert any((root / "locks").iterdir()), "their devices were locked"
    assert records(node) == {}
