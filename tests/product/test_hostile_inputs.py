"""The frozen binary over a corpus of hostile inputs: always a CNI error object, never a traceback."""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path

import pytest

from tests.conftest import BINARY, Sandbox, link_names, pod_env


def _corpus(dev: str, data_dir: str, rng: random.Random) -> list[tuple[str, bytes, dict[str, str]]]:
    good = {"cniVersion": "1.0.0", "name": "tnet", "type": "host-device", "device": dev, "dataDir": data_dir}
    cases: list[tuple[str, bytes, dict[str, str]]] = []
    for n in range(12):
        cases.append((f"random bytes {n}", rng.randbytes(rng.randint(1, 512)), {}))
    cases.append(("huge stdin", b'{"cniVersion": "1.0.0", "name": "' + b"x" * (8 << 20) + b'"}', {}))
    cases.append(("deep nesting", b"[" * 100000 + b"]" * 100000, {}))
    for key in ("name", "device", "dataDir", "kernelpath", "pciBusID", "moveStrategy", "cniVersion"):
        values: tuple[object, ...] = (7, [], {}, True, "../../etc", "/" * 300, "a\x00b", "\u202e")
        for value in values:
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
