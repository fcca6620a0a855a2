"""The plugin is one exec'd process: it talks to no unix socket and hands nothing to anyone.

strace watches every command of the frozen binary, in both layouts: no unix socket is created,
connected or even looked up (so no fds, environment or config can reach another process). And
whatever fds the runtime leaves closed, no file the plugin opens can become its stdin, stdout
or stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import BINARY, Plugin, Sandbox, conf_for, link_json, link_names, pod_env

STRACE = shutil.which("strace")


@pytest.fixture
def binary() -> Path:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    return BINARY


@pytest.fixture(params=["single file", "installed"])
def frozen(request: pytest.FixtureRequest, binary: Path, tmp_path: Path) -> Plugin:
    if request.param == "single file":
        return Plugin([str(binary)], str(tmp_path / "state"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = subprocess.run([str(binary), "install", "--bin-dir", str(bin_dir)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return Plugin([str(bin_dir / "host-device")], str(tmp_path / "state"))


def _every_command(plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(plugin, device=dev)
    assert plugin.run("VERSION", conf).status == 0
    assert plugin.run("STATUS", conf).status == 0
    added = plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout
    assert link_json("net1", pod) is not None
    conf["prevResult"] = added.out
    assert plugin.run("CHECK", conf, **pod_env(pod)).status == 0
    del conf["prevResult"]
    assert plugin.run("DEL", conf, **pod_env(pod)).status == 0
    assert plugin.run("GC", {**conf, "cni.dev/valid-attachments": []}).status == 0
    assert dev in link_names()


@pytest.mark.usefixtures("strace_installed")
def test_no_unix_socket_is_created_connected_or_looked_up(frozen: Plugin, sandbox: Sandbox, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    traced = Plugin(
        [str(STRACE), "-f", "-qq", "-A", "-e", "trace=socket,connect,%file", "-o", str(trace), *frozen.argv],
        frozen.data_dir,
    )
    _every_command(traced, sandbox)
    calls = trace.read_text().splitlines()
    assert any("AF_NETLINK" in line for line in calls), "strace saw the plugin's netlink sockets"
    assert any("/run/netns/" in line for line in calls), "strace saw the plugin's file look-ups"
    unix = [line for line in calls if re.search(r"AF_(UNIX|LOCAL)|sun_path|\.sock\b", line)]
    assert unix == []


@pytest.mark.parametrize("closed", [(1,), (2,), (1, 2)])
def test_closed_stdout_or_stderr_is_dev_null_in_the_plugin(frozen: Plugin, closed: tuple[int, ...]) -> None:
    """Caught while it waits for its stdin (a pipe we keep open): Python has started and opened its files."""
    read_end, write_end = os.pipe()

    def close_them() -> None:
        for fd in closed:
            os.close(fd)

    proc = subprocess.Popen(
        frozen.argv,
        stdin=read_end,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD"},  # the launcher answers VERSION alone
        preexec_fn=close_them,
    )
    os.close(read_end)
    try:
        deadline = time.monotonic() + 30
        while not _reading_stdin(proc.pid):
            assert proc.poll() is None and time.monotonic() < deadline, "the plugin never read its stdin"
            time.sleep(0.005)
        for fd in closed:
            assert os.readlink(f"/proc/{proc.pid}/fd/{fd}") == "/dev/null"
    finally:
        os.close(write_end)
        assert proc.wait(timeout=30) == 1  # an ADD of an empty config, refused


def _reading_stdin(pid: int) -> bool:
    """Blocked in read(0, ...): /proc/PID/syscall starts with the number of read (0) and fd 0."""
    try:
        fields = Path(f"/proc/{pid}/syscall").read_text().split()
    except OSError:
        return False
    return fields[:2] == ["0", "0x0"]


@pytest.mark.usefixtures("strace_installed")
def test_the_launcher_fills_closed_stdio_before_it_opens_anything(binary: Path, tmp_path: Path) -> None:
    trace = tmp_path / "trace"
    subprocess.run(
        [
            str(STRACE),
            "-qq",
            "-e",
            "trace=execve,openat,open",
            "-o",
            str(trace),
            "sh",
            "-c",
            f"exec 0<&- 1>&- 2>&-; exec {binary}",
        ],
        env={"PATH": os.environ["PATH"], "CNI_COMMAND": "VERSION"},
        check=True,
    )
    lines = trace.read_text().splitlines()
    launched = next(n for n, line in enumerate(lines) if line.startswith(f'execve("{binary}"'))
    opens = [line for line in lines[launched + 1 :] if line.startswith("open")]
    assert [re.sub(r"^\w+\(AT_FDCWD, ", "", line) for line in opens[:3]] == [
        '"/dev/null", O_RDONLY) = 0',
        '"/dev/null", O_WRONLY) = 1',
        '"/dev/null", O_WRONLY) = 2',
    ]
