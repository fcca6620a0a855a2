"""The operator's view, as stories on one node that keeps its state: the log file (parallel writers,
rotation, an unwritable path), a DEL that meets a corrupt record among live ones, `doctor` over
networks that conflict (two networks and a pool on one device, one on the host's uplink), YAML
NADs for `inventory`, and the repair loop's findings and metrics. The frozen binary throughout.

The host's uplink (eth0) is only ever read: no config naming it reaches ADD.
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import BINARY, NODE, Plugin, Sandbox, conf_for, link_json, link_names, pod_env, refund_to_host

LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) node=(\S+)((?: \w+=\S+)*) pid=\d+: (.*)$"
)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Plugin:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    return Plugin([str(BINARY)], str(tmp_path_factory.mktemp("operators") / "state"))


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log file and its rotated backups, parsed; a line that does not parse fails."""
    lines = []
    for file in sorted(path.parent.glob(path.name + "*")):
        if file.name.endswith(".lock"):
            continue
        for text in file.read_text().splitlines():
            match = LINE.match(text)
            assert match, f"not a whole log line in {file.name}: {text!r}"
            fields = dict(pair.split("=", 1) for pair in match.group(3).split())
            lines.append({"level": match.group(1), "node": match.group(2), **fields, "text": match.group(4)})
    return lines


def tool(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BINARY), *args], input=stdin.decode() if stdin else None, capture_output=True, text=True, timeout=60
    )


def test_1_the_log_file_tells_what_happened_to_which_device_of_which_pod(
    node: Plugin, sandbox: Sandbox, tmp_path: Path
) -> None:
    log = tmp_path / "logs" / "host-device.log"
    dev, _ = sandbox.veth("lg")
    bridge, port = sandbox.bridge("lb"), sandbox.veth("lp")[0]
    subprocess.run(["ip", "link", "set", port, "master", bridge], check=True)
    pod = sandbox.pod("l1")
    conf = conf_for(node, device=dev, logFile=str(log))
    assert node.run("ADD", conf, **pod_env(pod, "logged")).status == 0
    assert node.run("ADD", conf, **pod_env(pod, "logged")).code == 101  # the same attachment again
    refused = node.run("ADD", conf_for(node, device=port, logFile=str(log)), **pod_env(pod, "port", "net2"))
    assert refused.code == 101
    assert node.run("DEL", conf, **pod_env(pod, "logged")).status == 0
    lines = log_lines(log)
    assert stat.S_IMODE(log.stat().st_mode) == 0o600 and stat.S_IMODE(log.parent.stat().st_mode) == 0o700
    assert all(line["node"] == NODE and line["network"] == "tnet" for line in lines)
    added = [x for x in lines if x["command"] == "ADD" and x["level"] == "INFO"]
    assert added and added[0]["container"] == "logged" and added[0]["device"] == dev and dev in added[0]["text"]
    refusals = [x for x in lines if x["level"] == "ERROR"]
    assert len(refusals) == 2 and "already has net1" in refusals[0]["text"]
    assert f"port of {bridge}" in refusals[1]["text"] and refusals[1]["container"] == "port"
    given_back = [x for x in lines if x["command"] == "DEL"]
    assert given_back[-1]["device"] == dev and f"as {dev}" in given_back[-1]["text"]


@pytest.mark.parametrize("where", ["/proc/version/host-device.log", "/nonexistent-tdir/sub/host-device.log", "rel.log"])
def test_2_a_log_file_that_cannot_be_written_costs_one_warning_not_the_call(
    node: Plugin, sandbox: Sandbox, where: str
) -> None:
    dev, _ = sandbox.veth("uw")
    pod = sandbox.pod("uw")
    conf = conf_for(node, device=dev, logFile=where)
    for command in ("ADD", "DEL"):
        out = node.run(command, conf, **pod_env(pod, "unwritable"))
        assert out.status == 0, out.stdout
        warnings = [line for line in out.stderr.splitlines() if "WARNING" in line and where in line]
        assert len(warnings) == 1, out.stderr
    assert dev in link_names()
    assert not Path("/nonexistent-tdir").exists()


def test_3_twenty_parallel_adds_while_the_file_rotates_lose_no_line(
    node: Plugin, sandbox: Sandbox, tmp_path: Path
) -> None:
    log = tmp_path / "busy" / "host-device.log"
    devices = [sandbox.veth(f"r{n}")[0] for n in range(20)]
    pods = [sandbox.pod(f"q{n}") for n in range(20)]
    options = {"maxSize": 0.0005, "maxBackups": 500}  # a rotation every two or three lines

    def run_all(command: str) -> None:
        procs = []
        for n, (dev, pod) in enumerate(zip(devices, pods, strict=True)):
            conf = conf_for(node, device=dev, logFile=str(log), logOptions=options)
            env = {
                "PATH": os.environ["PATH"],
                "CNI_COMMAND": command,
                "CNI_PATH": "/usr/lib/cni",
                **pod_env(pod, f"p{n}"),
            }
            proc = subprocess.Popen([str(BINARY)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(conf).encode())
            proc.stdin.close()
            procs.append(proc)
        assert [proc.wait(timeout=60) for proc in procs] == [0] * 20

    run_all("ADD")
    run_all("DEL")
    lines = log_lines(log)
    files = [f for f in log.parent.iterdir() if not f.name.endswith(".lock")]
    assert len(files) > 5, "the file rotated"
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)
    for command in ("ADD", "DEL"):
        containers = sorted(x["container"] for x in lines if x["command"] == command and x["level"] == "INFO")
        assert containers == sorted(f"p{n}" for n in range(20)), command
    assert all(dev in link_names() for dev in devices)


def test_4_a_corrupt_record_among_live_ones_never_keeps_a_del_failing(node: Plugin, sandbox: Sandbox) -> None:
    devices = [sandbox.veth(f"c{n}")[0] for n in range(3)]
    pods = [sandbox.pod(f"c{n}") for n in range(3)]
    confs = [conf_for(node, device=dev) for dev in devices]
    for n in range(3):
        assert node.run("ADD", confs[n], **pod_env(pods[n], f"live{n}")).status == 0
    record = Path(node.data_dir) / "tnet" / "live1-net1.json"
    record.write_bytes(record.read_bytes()[:40])  # cut short: a disk error, or a hand edit
    first = node.run("DEL", confs[1], **pod_env(pods[1], "live1"))
    assert first.status == 0, first.stdout
    assert devices[1] in link_names() and link_json("net1", pods[1]) is None, "home under its own name"
    assert "moved aside" in first.stderr and (record.parent / "live1-net1.json.corrupt").exists()
    assert not record.exists()
    assert node.run("DEL", confs[1], **pod_env(pods[1], "live1")).status == 0, "and again"
    gc = node.run("GC", conf_for(node, "1.1.0", **{"cni.dev/valid-attachments": [
        {"containerID": "live0", "ifname": "net1"}, {"containerID": "live2", "ifname": "net1"}]}))  # fmt: skip
    assert gc.status == 0
    for n in (0, 2):  # the live ones are untouched
        assert link_json("net1", pods[n]) is not None and (record.parent / f"live{n}-net1.json").exists()
    found = json.loads(tool("doctor", "--config", "/dev/null", "--data-dir", node.data_dir, "--json").stdout)
    assert any(f["kind"] == "set-aside-record" and "live1-net1.json.corrupt" in f["message"] for f in found["findings"])
    for n in (0, 2):
        assert node.run("DEL", confs[n], **pod_env(pods[n], f"live{n}")).status == 0
    assert all(dev in link_names() for dev in devices)


def write_networks(directory: Path, sandbox: Sandbox, uplink: str) -> dict[str, str]:
    """A config dir as a node gathers them: conflists, a YAML file of NADs (a List and a second
    document), and networks that conflict with each other and with the host."""
    shared, _ = sandbox.veth("sh")
    mac = (link_json(shared) or {})["address"]
    directory.mkdir()
    conflist = {"cniVersion": "1.1.0", "name": "net-a", "plugins": [{"type": "host-device", "device": shared}]}
    (directory / "10-a.conflist").write_text(json.dumps(conflist))
    (directory / "20-b.conf").write_text(
        json.dumps({"cniVersion": "1.1.0", "name": "net-b", "type": "host-device", "hwaddr": mac})
    )
    uplinked = {"cniVersion": "1.1.0", "name": "uplink", "plugins": [{"type": "host-device", "device": uplink}]}
    (directory / "30-uplink.conflist").write_text(json.dumps(uplinked))
    (directory / "40-bridge.conflist").write_text(
        json.dumps({"cniVersion": "1.1.0", "name": "br", "plugins": [{"type": "bridge"}]})
    )
    pool = {"cniVersion": "1.1.0", "type": "host-device", "devices": [{"namePattern": shared[:-1] + "*"}]}
    absent = {"cniVersion": "1.1.0", "type": "host-device", "pciBusID": "0000:af:00.7"}
    nads = [nad("team1", "pool-x", pool), nad("team2", "nowhere", absent)]
    (directory / "nads.yaml").write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": nads[:1]}) + "---\n" + yaml.safe_dump(nads[1])
    )
    return {"shared": shared, "mac": mac}


def nad(namespace: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"config": json.dumps(config)},
    }


def test_5_doctor_names_the_node_the_networks_and_the_device_and_touches_nothing(
    node: Plugin, sandbox: Sandbox, tmp_path: Path
) -> None:
    uplink = "eth0"  # read, never moved: no config of this test reaches ADD
    before = link_json(uplink)
    confs = tmp_path / "net.d"
    made = write_networks(confs, sandbox, uplink)
    dead, pod = sandbox.veth("dd")[0], sandbox.pod("dd")
    assert node.run("ADD", conf_for(node, device=dead), **pod_env(pod, "gone")).status == 0
    subprocess.run(["ip", "netns", "del", pod], check=True)  # the pod dies without DEL
    state = sorted(str(p) for p in Path(node.data_dir).rglob("*"))
    text = tool("doctor", "--conf-dir", str(confs), "--config", str(confs / "nads.yaml"), "--data-dir", node.data_dir)
    report = json.loads(
        tool(
            "doctor",
            "--conf-dir",
            str(confs),
            "--data-dir",
            node.data_dir,
            "--json",
            "--config",
            str(confs / "nads.yaml"),
        ).stdout
    )
    assert text.returncode == 1 and f"on node {NODE}" in text.stdout
    kinds = {f["kind"]: f for f in report["findings"]}
    shared = kinds["shared-device"]
    assert set(shared["networks"]) == {"net-a", "net-b", "pool-x"} and shared["device"] == made["shared"]
    assert shared["severity"] == "error" and f"on node {NODE}" in shared["message"]
    host = kinds["in-use-by-host"]
    assert host["networks"] == ["uplink"] and host["device"] == uplink and "uplink" in host["message"]
    assert kinds["absent"]["networks"] == ["nowhere"] and kinds["absent"]["severity"] == "warning"
    stale = kinds["stale-record"]
    assert stale["device"] == dead and "gone" in stale["message"]
    assert "or forget it if it died with the netns" in stale["message"], "a veth dies with its netns"
    assert {n["name"] for n in report["networks"]} == {"net-a", "net-b", "uplink", "pool-x", "nowhere"}
    assert all(f["node"] == NODE for f in report["findings"])
    after = link_json(uplink)
    assert before and after and (after["ifindex"], after["flags"], after["address"]) == (
        before["ifindex"], before["flags"], before["address"])  # fmt: skip
    assert sorted(str(p) for p in Path(node.data_dir).rglob("*")) == state, "doctor wrote nothing"
    assert tool("doctor", "--conf-dir", str(tmp_path / "missing")).returncode == 2
    assert node.run("GC", conf_for(node)).status == 0  # the veth died with its pod: GC drops the record
    assert not (Path(node.data_dir) / "tnet" / "gone-net1.json").exists()


def test_6_inventory_reads_nads_as_kubectl_prints_them(node: Plugin, sandbox: Sandbox, tmp_path: Path) -> None:
    dev, _ = sandbox.veth("iy")
    config = {"cniVersion": "1.1.0", "type": "host-device", "dataDir": node.data_dir, "devices": [{"device": dev}]}
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump(nad("default", "single", config)))
    many = tmp_path / "many.yaml"
    many.write_text(yaml.safe_dump(nad("a", "first", config)) + "---\n" + yaml.safe_dump(nad("b", "second", config)))
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": [nad("c", "third", config)]}))
    as_json = tmp_path / "nad.json"
    as_json.write_text(json.dumps(nad("d", "fourth", config)))
    for path, networks in ((one, ["single"]), (many, ["first", "second"]), (listed, ["third"]), (as_json, ["fourth"])):
        out = tool("inventory", "--config", str(path), "--json")
        assert out.returncode == 0, out.stderr
        rows = json.loads(out.stdout)
        assert [r["name"] for r in rows] == [dev] * len(networks) and {r["state"] for r in rows} == {"free"}
        assert [r["detail"].split()[0] for r in rows] == networks
    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: [unclosed\n")
    out = tool("inventory", "--config", str(broken))
    assert out.returncode == 1 and "neither JSON nor YAML" in out.stderr and "Traceback" not in out.stderr


def test_7_the_repair_loop_logs_each_finding_once_and_writes_metrics(
    node: Plugin, sandbox: Sandbox, tmp_path: Path
) -> None:
    confs = tmp_path / "net.d"
    write_networks(confs, sandbox, "eth0")
    metrics = tmp_path / "textfile" / "cni_hostdev.prom"
    metrics.parent.mkdir()
    live, pod = sandbox.veth("ml")[0], sandbox.pod("ml")
    assert node.run("ADD", conf_for(node, device=live), **pod_env(pod, "metered")).status == 0
    args = ["repair", "--data-dir", node.data_dir, "--interval", "0.2", "--conf-dir", str(confs)]
    loop = subprocess.Popen([str(BINARY), *args, "--metrics-file", str(metrics)], stderr=subprocess.PIPE, text=True)
    time.sleep(2.0)  # several passes
    loop.send_signal(signal.SIGTERM)
    _, stderr = loop.communicate(timeout=30)
    assert loop.returncode == 0
    shared = [line for line in stderr.splitlines() if "doctor:" in line and "all bind device" in line]
    assert len(shared) == 1, stderr
    samples = dict(line.rsplit(" ", 1) for line in metrics.read_text().splitlines() if not line.startswith("#"))
    assert samples[f'cni_hostdev_attachments{{node="{NODE}",network="tnet",state="live"}}'] == "1"
    assert float(samples[f'cni_hostdev_doctor_findings{{node="{NODE}",severity="error"}}']) >= 2
    assert f'cni_hostdev_repair_given_back_total{{node="{NODE}"}}' in samples
    assert stat.S_IMODE(metrics.stat().st_mode) == 0o644 and list(metrics.parent.iterdir()) == [metrics]
    assert node.run("DEL", conf_for(node, device=live), **pod_env(pod, "metered")).status == 0


def test_8_what_repair_gives_back_is_in_the_networks_log_file_beside_its_add(
    node: Plugin, sandbox: Sandbox, tmp_path: Path
) -> None:
    dev, pod = sandbox.veth("rl")[0], sandbox.pod("rl")
    log_file = tmp_path / "logs" / "tnet.log"
    conf = conf_for(node, device=dev, logFile=str(log_file))
    confs = tmp_path / "net.d"
    confs.mkdir()
    (confs / "10-tnet.conflist").write_text(
        json.dumps({"cniVersion": "1.1.0", "name": "tnet", "plugins": [{k: v for k, v in conf.items() if k != "name"}]})
    )
    assert node.run("ADD", conf, **pod_env(pod, "refunded")).status == 0
    refund_to_host(pod, "net1")  # the pod dies without DEL; a physical NIC comes home as net1
    sandbox.links.append("net1")
    out = tool("repair", "--once", "--data-dir", node.data_dir, "--conf-dir", str(confs))
    assert out.returncode == 0, out.stderr
    assert dev in link_names() and "net1" not in link_names(), "home under its own name"
    lines = log_lines(log_file)
    added = [line for line in lines if line["command"] == "ADD" and line.get("container") == "refunded"]
    repaired = [line for line in lines if line["command"] == "repair" and "refunded/net1" in line["text"]]
    assert len(added) == 1 and added[0]["device"] == dev
    assert len(repaired) == 1 and repaired[0]["network"] == "tnet" and repaired[0]["node"] == NODE
    assert repaired[0]["level"] == "WARNING"
    assert f"restored {dev} in the host (it had come back as net1)" in repaired[0]["text"]
    again = tool("repair", "--once", "--data-dir", node.data_dir, "--conf-dir", str(confs))
    assert again.returncode == 0 and len(log_lines(log_file)) == len(lines), "nothing more to give back, nothing said"
