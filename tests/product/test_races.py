"""Races between calls of the plugin: parallel ADDs and DELs, ADD against GC, late DELs, held locks."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import Plugin, Sandbox, conf_for, link_json, link_names, pod_env


def test_two_pods_racing_for_one_device(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pods = [sandbox.pod("ra"), sandbox.pod("rb")]
    conf = json.dumps(conf_for(source_plugin, device=dev)).encode()
    for round_ in range(16):
        procs = []
        for n, pod in enumerate(pods):
            env = {
                **os.environ,
                **source_plugin.base_env,
                "CNI_COMMAND": "ADD",
                "CNI_PATH": "/usr/lib/cni",
                **pod_env(pod, f"race{n}"),
            }
            procs.append(
                subprocess.Popen(
                    source_plugin.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
                )
            )
        outcomes = []
        for proc in procs:
            stdout, _ = proc.communicate(conf, timeout=60)
            outcomes.append((proc.returncode, json.loads(stdout)))
        winners = [n for n, (rc, _) in enumerate(outcomes) if rc == 0]
        assert len(winners) == 1, f"round {round_}: {outcomes}"
        loser = outcomes[1 - winners[0]][1]
        assert loser["code"] == 101 and f"race{winners[0]}" in loser["msg"], loser
        places = [pod for pod in pods if "net1" in link_names(pod)]
        assert places == [pods[winners[0]]] and dev not in link_names()
        release = source_plugin.run("DEL", conf_for(source_plugin), **pod_env(pods[winners[0]], f"race{winners[0]}"))
        assert release.status == 0 and dev in link_names()


def test_lock_held_too_long_means_try_again_later(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    lock_dir = Path(source_plugin.data_dir) / "locks"
    lock_dir.mkdir(parents=True)
    with open(lock_dir / f"addr-{(link_json(dev) or {})['address'].replace(':', '_')}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        out = source_plugin.run("ADD", conf_for(source_plugin, device=dev, lockTimeout=0.3), **pod_env(pod))
    assert out.code == 11 and out.out is not None and dev in out.out["msg"]
    assert dev in link_names()


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
    gc_conf = conf_for(
        source_plugin, "1.1.0", **{"cni.dev/valid-attachments": [{"containerID": "racer", "ifname": "net1"}]}
    )
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
