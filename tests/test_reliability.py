"""Concurrency storms, hostile state, and fuzzed input: the device is always in exactly one place."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cni_hostdev.config import parse_netconf
from cni_hostdev.errors import CniError
from cni_hostdev.plugin.call import _parse_args
from cni_hostdev.result import DNS, Interface, IPConfig, Result, Route
from cni_hostdev.versions import SUPPORTED_VERSIONS
from tests.conftest import BINARY, Plugin, Sandbox, conf_for, link_json, link_names, pod_env


def _start(plugin: Plugin, command: str, conf: dict[str, Any], **env: str) -> subprocess.Popen[bytes]:
    full = {**os.environ, **plugin.base_env, "CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni", **env}
    proc = subprocess.Popen(
        plugin.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full
    )
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(conf).encode())
    proc.stdin.close()
    return proc


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, dict[str, Any] | None]:
    assert proc.stdout is not None
    out = proc.stdout.read()
    proc.wait(timeout=120)
    return proc.returncode, json.loads(out) if out.strip() else None


def _where(dev: str, pods: list[str], ifname: str = "net1") -> list[str]:
    places = ["host"] if dev in link_names() else []
    for pod in pods:
        inside = link_json(ifname, pod)
        if inside is not None and inside.get("ifalias") == dev:
            places.append(pod)
    return places


# --- storms -----------------------------------------------------------------------------


def test_32_parallel_adds_then_32_parallel_dels(source_plugin: Plugin, sandbox: Sandbox) -> None:
    count = 32
    devs = [sandbox.veth(f"s{n}")[0] for n in range(count)]
    pods = [sandbox.pod(f"q{n}") for n in range(count)]
    confs = [conf_for(source_plugin, device=devs[n]) for n in range(count)]
    adds = [_start(source_plugin, "ADD", confs[n], **pod_env(pods[n], f"storm{n}")) for n in range(count)]
    assert [_finish(p)[0] for p in adds] == [0] * count
    for n in range(count):
        assert _where(devs[n], pods) == [pods[n]]
    dels = [_start(source_plugin, "DEL", confs[n], **pod_env(pods[n], f"storm{n}")) for n in range(count)]
    assert [_finish(p)[0] for p in dels] == [0] * count
    for n in range(count):
        assert _where(devs[n], pods) == ["host"]


def test_add_racing_gc_never_loses_the_device(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev)
    gc_conf = conf_for(source_plugin, **{"cni.dev/valid-attachments": [{"containerID": "racer", "ifname": "net1"}]})
    for round_ in range(8):
        add = _start(source_plugin, "ADD", conf, **pod_env(pod, "racer"))
        gc = _start(source_plugin, "GC", gc_conf)
        add_status, add_out = _finish(add)
        gc_status, gc_out = _finish(gc)
        assert add_status == 0 and gc_status == 0, (round_, add_out, gc_out)
        assert _where(dev, [pod]) == [pod], f"round {round_}: a valid attachment survives GC"
        assert source_plugin.run("DEL", conf, **pod_env(pod, "racer")).status == 0
        assert _where(dev, [pod]) == ["host"]


def test_late_del_of_old_pod_racing_add_of_new_pod(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    old, new = sandbox.pod("po"), sandbox.pod("pn")
    conf = conf_for(source_plugin, device=dev)
    for round_ in range(8):
        assert source_plugin.run("ADD", conf, **pod_env(old, "old")).status == 0
        late_del = _start(source_plugin, "DEL", conf, **pod_env(old, "old"))
        add_new = _start(source_plugin, "ADD", conf, **pod_env(new, "new"))
        del_status, _ = _finish(late_del)
        add_status, add_out = _finish(add_new)
        assert del_status == 0
        places = _where(dev, [old, new])
        assert len(places) == 1, f"round {round_}: device in {places}"
        if add_status == 0:
            assert places == [new]
            assert source_plugin.run("DEL", conf, **pod_env(new, "new")).status == 0
        else:
            assert add_out is not None and add_out["code"] == 101 and "old" in add_out["msg"], add_out
            assert places == ["host"]
        assert _where(dev, [old, new]) == ["host"]


# --- hostile state ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [("corrupt", b"{not json"), ("truncated", b'{"network": "tnet", "contai'), ("foreign", b'{"hello": "world"}')],
)
def test_bad_records_are_reported_and_skipped(
    source_plugin: Plugin, sandbox: Sandbox, name: str, content: bytes
) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod, "good")).status == 0
    bad = Path(source_plugin.data_dir) / "tnet" / f"{name}-net1.json"
    bad.write_bytes(content)
    gc = source_plugin.run("GC", conf_for(source_plugin, **{"cni.dev/valid-attachments": []}))
    assert gc.status == 0, gc.stdout
    assert str(bad) in gc.stderr, "GC says which record it skipped"
    assert "Traceback" not in gc.stderr
    assert dev in link_names(), "the good record was still released"
    assert bad.exists()


def test_forged_record_never_touches_a_device_we_did_not_claim(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    before = link_json(dev)
    assert before is not None
    directory = Path(source_plugin.data_dir) / "tnet"
    directory.mkdir(parents=True, mode=0o700)
    forged = {
        "network": "tnet", "container_id": "ghost", "ifname": "net1", "netns": "/run/netns/tgone",
        "original_name": dev, "original_alias": None, "mac": before["address"], "perm_mac": None,
        "mtu": 9000, "was_up": False, "ifindex": before["ifindex"], "pci_address": None, "phase": "attached",
    }  # fmt: skip
    (directory / "ghost-net1.json").write_text(json.dumps(forged))
    assert source_plugin.run("GC", conf_for(source_plugin)).status == 0
    after = link_json(dev)
    assert after is not None and after["mtu"] == before["mtu"] and "UP" in after["flags"]


def test_symlink_planted_as_a_record_is_refused(source_plugin: Plugin, sandbox: Sandbox, tmp_path: Path) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    directory = Path(source_plugin.data_dir) / "tnet"
    directory.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (directory / "ctr1-net1.json").symlink_to(victim)
    out = source_plugin.run("ADD", conf_for(source_plugin, device=dev), **pod_env(pod))
    assert out.code == 105 and out.out is not None and "ctr1-net1.json" in out.out["msg"]
    assert victim.read_text() == "precious" and dev in link_names()


# --- fuzzing: pure logic ----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
config_keys = st.sampled_from(
    ["cniVersion", "name", "type", "device", "hwaddr", "kernelpath", "pciBusID", "deviceID", "runtimeConfig",
     "moveStrategy", "dataDir", "ipam", "prevResult", "dns", "lockTimeout", "allowHostAddresses",
     "cni.dev/valid-attachments"]
)  # fmt: skip


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(config_keys, json_values, max_size=8), st.sampled_from(["ADD", "DEL", "CHECK", "GC", "STATUS"]))
def test_config_parser_only_ever_raises_cni_errors(conf: dict[str, Any], command: str) -> None:
    try:
        parse_netconf(conf, command)
    except CniError as err:
        assert err.code in (1, 4, 6, 7) and err.msg


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_cni_args_parser(value: str) -> None:
    try:
        parsed = _parse_args(value)
    except CniError as err:
        assert err.code == 4 and "CNI_ARGS" in err.msg
        return
    for key, val in parsed.items():
        assert f"{key}={val}" in value


addresses4 = st.builds(
    lambda a, p: f"10.{a % 256}.{(a // 256) % 256}.{a % 200 + 1}/{p}", st.integers(0, 65535), st.integers(8, 32)
)
addresses6 = st.builds(lambda a, p: f"fd00::{a:x}/{p}", st.integers(1, 65535), st.integers(48, 128))
routes = st.builds(
    Route,
    dst=st.sampled_from(["0.0.0.0/0", "10.0.0.0/8", "::/0", "fd00::/64"]),
    gw=st.none() | st.sampled_from(["10.0.0.1", "fd00::1"]),
    mtu=st.none() | st.integers(68, 9000),
    advmss=st.none() | st.integers(0, 9000),
    priority=st.none() | st.integers(0, 1000),
    table=st.none() | st.integers(1, 1000),
    scope=st.none() | st.integers(0, 255),
)
results = st.builds(
    Result,
    interfaces=st.lists(
        st.builds(Interface, name=st.sampled_from(["net1", "eth0"]), mac=st.sampled_from(["", "02:00:00:00:00:01"]),
                  mtu=st.none() | st.integers(68, 9000), sandbox=st.sampled_from(["", "/run/netns/p"]),
                  pci_id=st.none() | st.just("0000:00:04.0")),
        max_size=2,
    ),
    ips=st.lists(st.builds(IPConfig, address=addresses4 | addresses6, gateway=st.none() | st.just("10.0.0.1")),
                 max_size=3),
    routes=st.lists(routes, max_size=3),
    dns=st.builds(DNS, nameservers=st.lists(st.just("10.0.0.53"), max_size=1), domain=st.sampled_from(["", "x"])),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(results, st.sampled_from(SUPPORTED_VERSIONS))
def test_result_round_trip_keeps_every_field_the_version_carries(result: Result, version: str) -> None:
    if not result.can_print_as(__import__("packaging.version").version.Version(version)):
        with pytest.raises(CniError):
            result.to_json(version)
        return
    printed = result.to_json(version)
    assert Result.from_json(json.loads(json.dumps(printed)), version).to_json(version) == printed
    if version == "1.1.0":
        again = Result.from_json(printed, version)
        assert [r.table for r in again.routes] == [r.table for r in result.routes]
        assert [i.mtu or None for i in again.interfaces] == [i.mtu or None for i in result.interfaces]


# --- fuzzing: the frozen binary over hostile input ----------------------------------------------


def _corpus(dev: str, data_dir: str, rng: random.Random) -> list[tuple[str, bytes, dict[str, str]]]:
    good = {"cniVersion": "1.0.0", "name": "tnet", "type": "host-device", "device": dev, "dataDir": data_dir}
    cases: list[tuple[str, bytes, dict[str, str]]] = []
    for n in range(12):
        cases.append((f"random bytes {n}", rng.randbytes(rng.randint(1, 512)), {}))
    cases.append(("huge stdin", b'{"cniVersion": "1.0.0", "name": "' + b"x" * (8 << 20) + b'"}', {}))
    cases.append(("deep nesting", b"[" * 100000 + b"]" * 100000, {}))
    for key in ("name", "device", "dataDir", "kernelpath", "pciBusID", "moveStrategy", "cniVersion"):
        for value in (7, [], {}, True, "../../etc", "/" * 300, "a\x00b", "\u202e"):
            conf = {**good, key: value}
            cases.append((f"{key}={value!r}"[:40], json.dumps(conf).encode(), {}))
    for var, value in (("CNI_IFNAME", "../../x"), ("CNI_NETNS", "../../proc/1/ns/net"), ("CNI_CONTAINERID", "a;b"),
                       ("CNI_NETNS", "/dev/null"), ("CNI_ARGS", "=;=="), ("CNI_COMMAND", "add")):  # fmt: skip
        cases.append((f"{var}={value}", json.dumps(good).encode(), {var: value}))
    return cases


def test_frozen_binary_over_a_hostile_corpus(sandbox: Sandbox, tmp_path: Path) -> None:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    data_dir = tmp_path / "state"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cases = _corpus(dev, str(data_dir), random.Random(1234))
    for name, stdin, env in cases:
        full = {"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD", "CNI_PATH": "/usr/lib/cni", **pod_env(pod), **env}
        proc = subprocess.run([str(BINARY)], input=stdin, env=full, capture_output=True, cwd=cwd, timeout=120)
        assert proc.returncode == 1, f"{name}: {proc.stdout!r}"
        out = json.loads(proc.stdout)
        assert isinstance(out["code"], int) and out["code"] in (1, 4, 6, 7, 100), f"{name}: {out}"
        assert "Traceback" not in proc.stdout.decode() + proc.stderr.decode(), name
        assert dev in link_names() and link_names(pod) <= {"lo"}, f"{name}: something moved"
        assert list(cwd.iterdir()) == [], f"{name}: wrote into the working directory"
        assert not data_dir.exists() or not any(data_dir.rglob("*.json")), f"{name}: left a record"
    print(f"{len(cases)} hostile inputs: every one a CNI error, nothing moved")
