"""Fixtures on real namespaces: every link and netns is named t<unique>… and removed even on failure."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BINARY = ROOT / "dist" / "host-device"
PROTECTED = {"eth0", "lo", "ifb0", "ifb1"}
STATIC = "/usr/lib/cni/static"  # the reference IPAM plugins (Debian's containernetworking-plugins)
STRATEGIES = ["atomic", "rename-then-move"]
NODE = os.uname().nodename  # what "on node NAME" in refusals names
_counter = itertools.count()


def frozen_like(code: str) -> list[str]:
    """The argv of a fresh interpreter started as the frozen program starts: isolated (`-I`: no
    environment, no script dir on the path), without site (`-S`), nothing preloaded; it finds the
    source tree and the venv's packages because `code` is told where they are."""
    path = [str(ROOT), *(p for p in sys.path if p.endswith("site-packages"))]
    return [sys.executable, "-I", "-S", "-c", f"import sys\nsys.path[:0] = {path!r}\n{code}"]


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert not PROTECTED & set(args), f"test tried to touch a protected device: {args}"
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def link_json(name: str, netns: str | None = None) -> dict[str, Any] | None:
    cmd = ["ip", "-j", "-d", "link", "show", "dev", name]
    if netns:
        cmd = ["ip", "-n", netns, "-j", "-d", "link", "show", "dev", name]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return None
    data: list[dict[str, Any]] = json.loads(out.stdout)
    return data[0] if data else None


def link_names(netns: str | None = None) -> set[str]:
    cmd = ["ip", "-j", "link", "show"] if netns is None else ["ip", "-n", netns, "-j", "link", "show"]
    return {entry["ifname"] for entry in json.loads(subprocess.run(cmd, capture_output=True, text=True).stdout)}


def is_up(info: dict[str, Any]) -> bool:
    return "UP" in info["flags"]


@dataclass
class Outcome:
    status: int
    out: dict[str, Any] | None
    stdout: str
    stderr: str

    @property
    def code(self) -> int | None:
        return self.out.get("code") if self.out else None


@dataclass
class Plugin:
    """Runs one CNI command through a real process: the source tree or the frozen binary."""

    argv: list[str]
    data_dir: str
    base_env: dict[str, str] = field(default_factory=dict)

    def run(self, command: str, conf: dict[str, Any] | bytes | str, **env: str) -> Outcome:
        stdin = conf if isinstance(conf, bytes) else (conf if isinstance(conf, str) else json.dumps(conf)).encode()
        full_env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_PATH": "/usr/lib/cni"}
        full_env.update(self.base_env)
        full_env.update(env)
        full_env = {k: v for k, v in full_env.items() if v is not None}
        proc = subprocess.run(self.argv, input=stdin, capture_output=True, env=full_env, timeout=60)
        stdout = proc.stdout.decode()
        out = json.loads(stdout) if stdout.strip() else None
        return Outcome(proc.returncode, out, stdout, proc.stderr.decode())


def _make_plugin(kind: str, data_dir: str) -> Plugin:
    if kind == "binary":
        if not BINARY.exists():
            pytest.skip("dist/host-device is not built (make binary)")
        return Plugin([str(BINARY)], data_dir)
    # Started as the frozen program starts, so that the source tree loads pyroute2's messages under
    # the stand-ins users see (in pytest's own process, typing and the rest are loaded already).
    return Plugin(frozen_like("from cni_hostdev.cli import main\nmain()"), data_dir)


@pytest.fixture(params=["source", "binary"])
def plugin(request: pytest.FixtureRequest, tmp_path: Path) -> Plugin:
    return _make_plugin(request.param, str(tmp_path / "state"))


@pytest.fixture
def source_plugin(tmp_path: Path) -> Plugin:
    return _make_plugin("source", str(tmp_path / "state"))


@pytest.fixture
def binary_plugin(tmp_path: Path) -> Plugin:
    return _make_plugin("binary", str(tmp_path / "state"))


class Sandbox:
    """Unique names for one test, and everything it created, torn down at the end."""

    def __init__(self) -> None:
        self.tag = f"t{os.getpid() % 10000}{next(_counter)}"
        self.links: list[str] = []
        self.netns: list[str] = []

    def name(self, suffix: str) -> str:
        name = f"{self.tag}{suffix}"
        assert len(name) <= 15
        return name

    def veth(self, suffix: str = "a", *, up: bool = True) -> tuple[str, str]:
        end, peer = self.name(suffix), self.name(suffix + "p")
        ip("link", "add", end, "type", "veth", "peer", "name", peer)
        self.links += [end, peer]
        if up:
            ip("link", "set", end, "up")
        return end, peer

    def bridge(self, suffix: str = "br") -> str:
        name = self.name(suffix)
        ip("link", "add", name, "type", "bridge")
        self.links.append(name)
        return name

    def pod(self, suffix: str = "ns") -> str:
        name = self.name(suffix)
        ip("netns", "add", name)
        self.netns.append(name)
        return name

    def cleanup(self) -> None:
        for ns in self.netns:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for name in self.links:
            if name not in PROTECTED:
                subprocess.run(["ip", "link", "del", name], capture_output=True)
        leftovers = [n for n in link_names() if n.startswith(self.tag)]
        for name in leftovers:
            subprocess.run(["ip", "link", "del", name], capture_output=True)


@pytest.fixture
def reference_ipam() -> str:
    """The reference IPAM plugins' dir, for tests that delegate to them. Missing is a failure, not a
    skip: CI installs them (make sysdeps), and a missing install must be red."""
    if not os.path.exists(STATIC):
        pytest.fail(f"{STATIC} is missing: install Debian's containernetworking-plugins (make sysdeps)")
    return os.path.dirname(STATIC)


@pytest.fixture
def strace_installed() -> None:
    """strace watches what the frozen binary does; as for IPAM, missing fails: make sysdeps installs it."""
    import shutil

    if shutil.which("strace") is None:
        pytest.fail("strace is missing: make sysdeps installs it")


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    try:
        yield box
    finally:
        box.cleanup()


def netns_path(name: str) -> str:
    return f"/run/netns/{name}"


def conf_for(plugin: Plugin, version: str = "1.1.0", **keys: Any) -> dict[str, Any]:
    conf: dict[str, Any] = {"cniVersion": version, "name": "tnet", "type": "host-device", "dataDir": plugin.data_dir}
    conf.update(keys)
    return conf


def pod_env(pod: str, container_id: str = "ctr1", ifname: str = "net1") -> dict[str, str]:
    return {"CNI_CONTAINERID": container_id, "CNI_NETNS": netns_path(pod), "CNI_IFNAME": ifname}


def record_files(plugin: Plugin) -> list[str]:
    directory = os.path.join(plugin.data_dir, "tnet")
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def refund_to_host(pod: str, ifname: str) -> None:
    """What the kernel does with a physical NIC when its netns dies: back to the host under the pod name."""
    ip("-n", pod, "link", "set", ifname, "netns", "1")
    ip("netns", "del", pod)


def assert_index_in_step(data_dir: str) -> None:
    """The record index names exactly the records there are, each under its device's keys (a veth's:
    its MAC), and files no key of a record that is gone (cni_hostdev/record_index.py)."""
    root, records = Path(data_dir) / ".index", Path(data_dir)
    present = {
        (p.parent.name, p.name): json.loads(p.read_text())
        for p in records.glob("*/*.json")
        if not p.parent.name.startswith(".")
    }
    known = {
        (p.parent.name, p.name.split(":")[0]): p.name.split(":")[1:] for p in root.glob("records/*/*") if p.is_file()
    }
    expected = {where: [f"addr-{record['mac'].replace(':', '_')}"] for where, record in present.items()}
    assert known == expected, (known, expected)
    filed = {(p.parent.name, *p.name.split("+", 1)) for p in root.glob("keys/*/*")}
    assert filed == {(keys[0], *where) for where, keys in expected.items()}, filed
