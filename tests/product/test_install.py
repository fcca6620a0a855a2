"""`host-device install`: the unpacked layout and the single file, atomic, idempotent, fail-closed."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BINARY, Plugin, Sandbox, conf_for, link_json, link_names, pod_env


@pytest.fixture
def binary() -> Path:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    return BINARY


def _install(binary: Path, bin_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "install", "--bin-dir", str(bin_dir), *extra], capture_output=True, text=True, timeout=120
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _interp(path: Path) -> str:
    out = subprocess.run(["readelf", "-l", str(path)], capture_output=True, text=True, check=True).stdout
    return out.split("[Requesting program interpreter: ")[1].split("]")[0]


def test_unpacked_layout_runs_with_its_own_loader(binary: Path, tmp_path: Path, sandbox: Sandbox) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    first = _install(binary, bin_dir)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("installed ")
    assert json.loads(first.stdout.splitlines()[1])["supportedVersions"][-1] == "1.1.0"
    entry = bin_dir / "host-device"
    assert entry.is_symlink()
    bundle = bin_dir / os.readlink(entry).split("/")[0]
    assert bundle.name.startswith(".host-device-") and (bundle / ".complete").exists()
    assert _interp(bundle / "host-device.bin") == str(bundle / "_internal" / "ld.so"), "the node's libc is never used"
    assert "not a dynamic executable" in subprocess.run(["ldd", str(entry)], capture_output=True, text=True).stderr

    again = _install(binary, bin_dir)
    assert again.returncode == 0 and again.stdout.startswith("unchanged ")

    # The installed entry is a complete plugin.
    plugin = Plugin([str(entry)], str(tmp_path / "state"))
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(plugin, device=dev)
    assert plugin.run("ADD", conf, **pod_env(pod)).status == 0
    assert link_json("net1", pod) is not None
    assert plugin.run("DEL", conf, **pod_env(pod)).status == 0
    assert dev in link_names()


def test_unpacked_upgrade_swaps_the_entry_and_keeps_the_previous_bundle(binary: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    (bin_dir / ".host-device-0.0.1-aaaaaaaaaaaa").mkdir(parents=True)
    previous = bin_dir / ".host-device-0.0.2-bbbbbbbbbbbb"
    previous.mkdir()
    shutil.copy2("/bin/true", previous / "host-device")
    os.symlink(".host-device-0.0.2-bbbbbbbbbbbb/host-device", bin_dir / "host-device")
    out = _install(binary, bin_dir)
    assert out.returncode == 0, out.stderr
    current = os.readlink(bin_dir / "host-device")
    assert not current.startswith(".host-device-0.0.2")
    assert previous.exists(), "a pod's ADD may still run from the bundle just replaced"
    assert not (bin_dir / ".host-device-0.0.1-aaaaaaaaaaaa").exists(), "older bundles are removed"
    assert not [p for p in bin_dir.iterdir() if ".unpack" in p.name or ".link" in p.name], "no temp leftovers"


def test_node_bin_dir_sets_the_loader_path_seen_by_the_node(binary: Path, tmp_path: Path) -> None:
    mounted = tmp_path / "host" / "opt" / "cni" / "bin"
    mounted.mkdir(parents=True)
    out = _install(binary, mounted, "--node-bin-dir", "/opt/cni/bin")
    assert out.returncode == 0, out.stderr
    assert "valid on the node" in out.stdout
    program = (mounted / "host-device").resolve().parent / "host-device.bin"
    assert _interp(program).startswith("/opt/cni/bin/.host-device-")


def test_file_layout_replaces_a_running_binary_atomically(binary: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    target = bin_dir / "host-device"
    shutil.copy2("/bin/sleep", target)
    running = subprocess.Popen([str(target), "30"])
    try:
        out = _install(binary, bin_dir, "--layout", "file")
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("installed ")
        assert _sha(target) == _sha(binary) and os.stat(target).st_mode & 0o777 == 0o755
        assert running.poll() is None, "the old binary keeps running"
        again = _install(binary, bin_dir, "--layout", "file")
        assert again.stdout.startswith("unchanged ")
    finally:
        running.send_signal(signal.SIGKILL)
        running.wait()
    names = sorted(p.name for p in bin_dir.iterdir())
    assert names[-1] == "host-device" and all(n.startswith(".host-device.run-") for n in names[:-1]), names
    assert len(names) == 2, "the single file unpacked itself once, beside itself, for the --version check"


def test_wrong_sha256_fails_closed(binary: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = _install(binary, bin_dir, "--sha256", "0" * 64)
    assert out.returncode == 1 and "sha256" in out.stderr
    assert list(bin_dir.iterdir()) == []
    missing = _install(binary, tmp_path / "nope")
    assert missing.returncode == 1 and "does not exist" in missing.stderr


def test_unpacked_layout_works_with_a_noexec_tmp(binary: Path, tmp_path: Path, sandbox: Sandbox) -> None:
    """Runtimes' hosts often mount /tmp noexec: the installed plugin extracts nothing, so it does not care."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    assert _install(binary, bin_dir).returncode == 0
    noexec = tmp_path / "noexec"
    noexec.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,nosuid,size=64m", "tnoexec", str(noexec)], check=True)
    try:
        plugin = Plugin([str(bin_dir / "host-device")], str(tmp_path / "state"), {"TMPDIR": str(noexec)})
        dev, _ = sandbox.veth()
        pod = sandbox.pod()
        conf = conf_for(plugin, device=dev)
        added = plugin.run("ADD", conf, **pod_env(pod))
        assert added.status == 0, added.stdout + added.stderr
        assert plugin.run("DEL", conf, **pod_env(pod)).status == 0
        assert dev in link_names()
        assert list(noexec.iterdir()) == []
    finally:
        subprocess.run(["umount", "-l", str(noexec)], check=False)


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    continue
                if ppid == parent and int(entry) not in found:
                    found.add(int(entry))
                    frontier.append(int(entry))
    return found


@pytest.mark.parametrize("layout", ["single file", "installed"])
def test_sigkill_leaves_no_process_and_no_files(binary: Path, tmp_path: Path, sandbox: Sandbox, layout: str) -> None:
    """One process, nothing extracted per call: a runtime's SIGKILL leaves nothing behind."""
    import fcntl

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if layout == "installed":
        assert _install(binary, bin_dir).returncode == 0
    else:
        shutil.copy2(binary, bin_dir / "host-device")
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    state = tmp_path / "state"
    (state / "locks").mkdir(parents=True)
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    with open(state / "locks" / f"addr-{(link_json(dev) or {})['address'].replace(':', '_')}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # the plugin waits here until it is killed
        env = {**os.environ, "CNI_COMMAND": "ADD", "TMPDIR": str(private_tmp), **pod_env(pod)}
        proc = subprocess.Popen([str(bin_dir / "host-device")], stdin=subprocess.PIPE, env=env)
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(conf_for(Plugin([], str(state)), device=dev, lockTimeout=60)).encode())
        proc.stdin.close()
        time.sleep(1.5)
        tree = _descendants(proc.pid)
        proc.kill()
        proc.wait()
    assert tree == set(), "nothing forked that could outlive the kill"
    assert list(private_tmp.iterdir()) == [], "nothing extracted to TMPDIR"
    if layout == "single file":
        caches = [p.name for p in bin_dir.iterdir() if p.name.startswith(".host-device.run-")]
        assert len(caches) == 1, "unpacked once, beside the file, and reused"
    assert dev in link_names()


def test_single_file_prunes_caches_of_older_payloads(binary: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shutil.copy2(binary, bin_dir / "host-device")
    stale, recent = bin_dir / ".host-device.run-00000000000000000000aaaa", bin_dir / ".host-device.run-0000bbbb.tmp42"
    for leftover in (stale, recent):
        (leftover / "_internal").mkdir(parents=True)
    hour_ago = time.time() - 3600
    os.utime(stale, (hour_ago, hour_ago))
    # --version runs the frozen program (VERSION the launcher answers by itself, unpacking nothing)
    out = subprocess.run([str(bin_dir / "host-device"), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("host-device ")
    names = {p.name for p in bin_dir.iterdir()}
    assert stale.name not in names, "an older payload's cache is removed when a new one is unpacked"
    assert recent.name in names, "anything touched in the last minutes may still be in use: kept"
    assert len([n for n in names if n.startswith(".host-device.run-") and ".tmp" not in n]) == 1
