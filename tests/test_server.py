"""`host-device serve`: the single file hands plugin calls to a warm server, or runs them itself."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from subprocess import Popen

import pytest

from cni_hostdev import server
from tests.conftest import BINARY, ROOT, Plugin, Sandbox, conf_for, link_json, pod_env


class Server:
    def __init__(self, argv: list[str], sock: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.sock = sock
        self.log_path = log
        self._log = open(log, "wb")
        self.proc = subprocess.Popen(
            [*argv, "serve", "--socket", str(sock)], stdout=self._log, stderr=self._log, env=env
        )
        deadline = time.monotonic() + 30
        while not sock.exists():
            assert self.proc.poll() is None, f"server exited: {self.log()}"
            assert time.monotonic() < deadline, f"server did not listen: {self.log()}"
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text()

    def logged(self, *lines: str) -> str:
        """The log once it has all of `lines`: a child replies before the server reaps and logs it."""
        _wait_for(lambda: all(line in self.log() for line in lines), f"{lines} in the server's log")
        return self.log()

    def children(self) -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    status = Path(f"/proc/{entry}/status").read_text()
                except OSError:
                    continue
                if f"\nPPid:\t{self.proc.pid}\n" in status:
                    found.append(int(entry))
        return found

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=30)
        self._log.close()
        return status


def _start(argv: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    srv = Server(argv, tmp_path / "server.sock", tmp_path / "server.log", env)
    try:
        yield srv
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()
            srv.proc.wait()


@pytest.fixture
def warm(tmp_path: Path) -> Iterator[Server]:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    yield from _start([str(BINARY)], tmp_path)


def _served(plugin: Plugin, srv: Server) -> Plugin:
    return Plugin(plugin.argv, plugin.data_dir, {"CNI_HOSTDEV_SERVER": str(srv.sock)})


def _attach_and_release(plugin: Plugin, dev: str, pod: str) -> None:
    """ADD moves `dev` into `pod` as net1 and DEL gives it back, whoever runs the calls."""
    conf = conf_for(plugin, device=dev)
    added = plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout + added.stderr
    assert link_json("net1", pod) is not None and link_json(dev) is None
    deleted = plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert link_json(dev) is not None and link_json("net1", pod) is None


def _start_call(plugin: Plugin, conf: dict[str, object], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """An ADD left running, as a runtime starts it."""
    base = {"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD", "CNI_PATH": "/usr/lib/cni", **plugin.base_env}
    call = subprocess.Popen(plugin.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**base, **env})
    assert call.stdin is not None
    call.stdin.write(json.dumps(conf).encode())
    call.stdin.close()
    return call


@contextmanager
def _call_waiting_for_its_lock(plugin: Plugin, srv: Server, dev: str, pod: str) -> Iterator[tuple[Popen[bytes], int]]:
    """An ADD of `dev` handed to `srv`, its child waiting for the device's lock until the block ends."""
    lock_dir = Path(plugin.data_dir) / "locks"
    lock_dir.mkdir(parents=True)
    with open(lock_dir / f"name-{dev}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        caller = _start_call(plugin, conf_for(plugin, device=dev), pod_env(pod))
        _wait_for(lambda: srv.children(), "the server's child")
        yield caller, srv.children()[0]


def _alive(pid: int) -> bool:
    """Running, not a zombie: an orphan waits for whoever reaps it in this container."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


_SECCOMP_WRAPPER = """
import ctypes, os, sys
class Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(ctypes.c_uint64))]
def op(code, k, jt=0, jf=0):  # struct sock_filter, packed into 64 bits
    return code | jt << 16 | jf << 24 | k << 32
program = (ctypes.c_uint64 * len(PROGRAM))(*(op(*i) for i in PROGRAM))
if ctypes.CDLL(None).prctl(22, 2, ctypes.byref(Program(len(PROGRAM), program)), 0, 0) != 0:
    sys.exit("seccomp filter not installed")
os.execv(sys.argv[1], sys.argv[1:])
"""
SECCOMP_ALLOW = (0x06, 0x7FFF0000)  # BPF_RET|BPF_K, SECCOMP_RET_ALLOW


def under_seccomp(*program: tuple[int, ...]) -> list[str]:
    """argv that runs the rest of argv under a seccomp filter of (code, k[, jt, jf]) instructions."""
    return [sys.executable, "-c", f"PROGRAM = {list(program)!r}\n{_SECCOMP_WRAPPER}"]


def _wait_for(predicate: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_served_add_check_del(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    dev, _ = sandbox.veth()
    mac = link_json(dev)["address"]  # type: ignore[index]
    pod = sandbox.pod()
    plugin = _served(binary_plugin, warm)
    conf = conf_for(plugin, device=dev)
    added = plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout + added.stderr
    assert added.out is not None and added.out["interfaces"][0]["name"] == "net1"
    assert link_json("net1", pod)["address"] == mac  # type: ignore[index]
    assert link_json(dev) is None
    checked = plugin.run("CHECK", {**conf, "prevResult": added.out}, **pod_env(pod))
    assert checked.status == 0, checked.stdout + checked.stderr
    deleted = plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert link_json(dev)["address"] == mac  # type: ignore[index]
    log = warm.logged("ADD ctr1/net1 (child", "CHECK ctr1/net1 (child", "DEL ctr1/net1 (child")
    for command in ("ADD", "CHECK", "DEL"):
        assert f"{command} ctr1/net1 (child" in log and "status 0" in log, log


def test_served_error_reaches_the_caller(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    pod = sandbox.pod()
    plugin = _served(binary_plugin, warm)
    missing = sandbox.name("zz")
    outcome = plugin.run("ADD", conf_for(plugin, device=missing), **pod_env(pod))
    assert outcome.status == 1 and outcome.code == 100, outcome.stdout
    assert missing in outcome.out["msg"]  # type: ignore[index]
    assert missing in outcome.stderr  # the child wrote to the caller's stderr, not the server's
    assert missing not in warm.log()
    assert "status 1" in warm.logged("ADD ctr1/net1 (child")


def test_server_in_another_mount_namespace_enters_the_callers(
    sandbox: Sandbox, binary_plugin: Plugin, tmp_path: Path
) -> None:
    """As in a DaemonSet: /run/netns of the caller is not what the server sees."""
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    hidden = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount -t tmpfs none /run/netns && exec "$@"',
        "-",
    ]
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    for srv in _start([*hidden, str(BINARY)], tmp_path):
        _attach_and_release(_served(binary_plugin, srv), dev, pod)
        assert "status 0" in srv.logged("ADD ctr1/net1 (child", "DEL ctr1/net1 (child")


def test_caller_killed_mid_command_kills_its_child(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    plugin = _served(binary_plugin, warm)
    with _call_waiting_for_its_lock(plugin, warm, dev, pod) as (caller, child):
        caller.kill()  # what a runtime's timeout does
        caller.wait()
        _wait_for(lambda: not Path(f"/proc/{child}").exists(), "the child to be killed")
    assert "the child stopped" in warm.logged("the caller went away")
    assert link_json(dev) is not None  # nothing was moved
    _attach_and_release(plugin, dev, pod)


def test_child_killed_mid_command_is_rerun_by_the_caller(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    """A child dying by a signal leaves the command to the caller, as after a crash of the plugin itself."""
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    plugin = _served(binary_plugin, warm)
    conf = conf_for(plugin, device=dev)
    killed = plugin.run("ADD", conf, CNI_HOSTDEV_TESTING="1", CNI_HOSTDEV_KILL_AT="record-written", **pod_env(pod))
    assert killed.status == -signal.SIGKILL  # the rerun here died at the same step
    assert "ADD ctr1/net1" in warm.logged("killed by signal 9; the caller runs it itself")
    assert plugin.run("DEL", conf, **pod_env(pod)).status == 0
    assert link_json(dev) is not None
    _attach_and_release(plugin, dev, pod)


def test_server_of_another_build_leaves_the_command_to_the_caller(
    sandbox: Sandbox, binary_plugin: Plugin, tmp_path: Path
) -> None:
    """A server not started from this very file (here: from source) never runs its calls."""
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    for srv in _start([sys.executable, "-m", "cni_hostdev"], tmp_path, env):
        _attach_and_release(_served(binary_plugin, srv), dev, pod)
        assert "caller runs ADD itself: the caller is build" in srv.log()
        assert "(child" not in srv.log()


def test_sigterm_stops_the_server_and_callers_carry_on(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    assert warm.stop() == 0
    assert not warm.sock.exists()
    _attach_and_release(_served(binary_plugin, warm), dev, pod)
    assert "(child" not in warm.log()


def test_parallel_served_adds(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    plugin = _served(binary_plugin, warm)
    pod = sandbox.pod()
    devices = [sandbox.veth(f"v{i}")[0] for i in range(8)]
    procs = [
        _start_call(plugin, conf_for(plugin, device=dev), pod_env(pod, f"c{i}", f"net{i}"))
        for i, dev in enumerate(devices)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * len(devices)
    assert all(link_json(f"net{i}", pod) is not None for i in range(len(devices)))
    for i, dev in enumerate(devices):
        assert plugin.run("DEL", conf_for(plugin, device=dev), **pod_env(pod, f"c{i}", f"net{i}")).status == 0
    assert all(link_json(dev) is not None for dev in devices)
    _wait_for(lambda: warm.log().count("ADD c") == len(devices), "every ADD in the server's log")


def test_request_parsing_rejects_what_the_launcher_never_sends() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(struct.pack("<8sI", b"NOTMAGIC", 10))
        with pytest.raises(server.BadRequest):
            server.read_request(ours)


def test_server_stops_when_its_file_is_upgraded(tmp_path: Path) -> None:
    """An upgraded single file must not be served by the old build's code: the old server bows out."""
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    copy = tmp_path / "host-device"
    copy.write_bytes(BINARY.read_bytes())
    copy.chmod(0o755)
    for srv in _start([str(copy)], tmp_path):
        upgraded = bytearray(copy.read_bytes())
        upgraded[-1] ^= 0xFF  # another sha256 in the trailer: what a new build looks like to the server
        upgraded[-32] ^= 0xFF
        (tmp_path / "new").write_bytes(upgraded)
        (tmp_path / "new").chmod(0o755)
        os.rename(tmp_path / "new", copy)  # how `install --layout file` replaces it
        assert srv.proc.wait(timeout=30) == 0
        assert "is now build" in srv.log()
        assert not srv.sock.exists()


def test_unpacked_install_is_served_too(sandbox: Sandbox, tmp_path: Path, warm: Server) -> None:
    """The entry of an unpacked install is the same static launcher: a server of its build serves it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    subprocess.run([str(BINARY), "install", "--bin-dir", str(bin_dir)], check=True, capture_output=True)
    plugin = Plugin([str(bin_dir / "host-device")], str(tmp_path / "state"), {"CNI_HOSTDEV_SERVER": str(warm.sock)})
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    _attach_and_release(plugin, dev, pod)
    assert "status 0" in warm.logged("ADD ctr1/net1 (child", "DEL ctr1/net1 (child")
    # and without the server, by itself
    _attach_and_release(Plugin(plugin.argv, plugin.data_dir, {"CNI_HOSTDEV_SERVER": "off"}), dev, pod)
    assert warm.log().count("ADD ctr1/net1 (child") == 1


def test_a_stopped_server_is_not_waited_for(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    """A server that accepts nothing (stopped, stuck) costs its callers a second, never their call."""
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    plugin = _served(binary_plugin, warm)
    os.kill(warm.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        _attach_and_release(plugin, dev, pod)
        assert time.monotonic() - started < 30
    finally:
        os.kill(warm.proc.pid, signal.SIGCONT)
    assert "(child" not in warm.log()
    _attach_and_release(plugin, dev, pod)  # awake again, it serves
    assert "status 0" in warm.logged("ADD ctr1/net1 (child")


@pytest.mark.parametrize(
    ("wrapper", "reason"),
    [
        (["setpriv", "--no-new-privs"], "it runs with no_new_privs"),
        (["setpriv", "--bounding-set", "-sys_admin"], "it lacks effective capabilities 0x200000"),
        (["unshare", "--user", "--map-root-user"], "it is in another user namespace"),
        (under_seccomp(SECCOMP_ALLOW), "it runs under seccomp"),
    ],
    ids=["no-new-privs", "no-cap-sys-admin", "user-namespace", "seccomp"],
)
def test_a_confined_root_caller_is_not_served(
    tmp_path: Path, binary_plugin: Plugin, warm: Server, wrapper: list[str], reason: str
) -> None:
    """Root that cannot do everything the server can (a confined container's root) runs its call itself."""
    plugin = Plugin([*wrapper, *binary_plugin.argv], binary_plugin.data_dir, {"CNI_HOSTDEV_SERVER": str(warm.sock)})
    outcome = plugin.run("VERSION", {"cniVersion": "1.1.0"})
    assert outcome.status == 0 and outcome.out is not None, outcome.stdout + outcome.stderr
    assert "1.1.0" in outcome.out["supportedVersions"]
    _wait_for(lambda: "refused a caller" in warm.log(), "the server's refusal")
    assert reason in warm.log(), warm.log()
    assert "(child" not in warm.log()


def test_a_caller_without_cap_sys_admin_gets_no_add_done(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    """The server would have the privileges to move the device: it must not lend them."""
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    confined = ["setpriv", "--bounding-set", "-sys_admin,-net_admin", *binary_plugin.argv]
    plugin = Plugin(confined, binary_plugin.data_dir, {"CNI_HOSTDEV_SERVER": str(warm.sock)})
    outcome = plugin.run("ADD", conf_for(plugin, device=dev), **pod_env(pod))
    assert outcome.status != 0 and outcome.out is not None and "code" in outcome.out, outcome.stdout
    assert link_json(dev) is not None and link_json("net1", pod) is None
    assert "refused a caller" in warm.log() and "(child" not in warm.log()


def test_a_full_listen_backlog_is_not_waited_for(sandbox: Sandbox, binary_plugin: Plugin, tmp_path: Path) -> None:
    """A server that stopped accepting, its backlog full: connecting must fail at once, not block."""
    sock = tmp_path / "stuck.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fillers: list[socket.socket] = []
    with listener:
        listener.bind(str(sock))
        listener.listen(0)
        for _ in range(4):
            filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            filler.setblocking(False)
            try:
                filler.connect(str(sock))
            except BlockingIOError:
                filler.close()
                break
            fillers.append(filler)
        else:
            pytest.fail("the backlog never filled")
        dev, _ = sandbox.veth()
        pod = sandbox.pod()
        plugin = Plugin(binary_plugin.argv, binary_plugin.data_dir, {"CNI_HOSTDEV_SERVER": str(sock)})
        _attach_and_release(plugin, dev, pod)  # Plugin.run gives up (and fails the test) after 60 s
        for filler in fillers:
            filler.close()


def test_a_runtime_slow_to_write_stdin_is_still_served(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    """The launcher reads all of stdin before connecting: the server never waits on a runtime."""
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    plugin = _served(binary_plugin, warm)
    conf = json.dumps(conf_for(plugin, device=dev)).encode()
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": "ADD", "CNI_PATH": "/usr/lib/cni", **plugin.base_env}
    call = subprocess.Popen(plugin.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env={**env, **pod_env(pod)})
    assert call.stdin is not None
    call.stdin.write(conf[:10])
    call.stdin.flush()
    time.sleep(server.REQUEST_TIMEOUT + 0.5)  # longer than the server waits for a request
    call.stdin.write(conf[10:])
    call.stdin.close()
    assert call.wait(timeout=60) == 0
    assert link_json("net1", pod) is not None
    assert "bad request" not in warm.logged("ADD ctr1/net1 (child")
    assert plugin.run("DEL", conf_for(plugin, device=dev), **pod_env(pod)).status == 0


def test_a_call_outlives_its_server(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    """The server dies mid-call: its child finishes and replies, and the caller does not run it again."""
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    plugin = _served(binary_plugin, warm)
    conf = conf_for(plugin, device=dev)
    with _call_waiting_for_its_lock(plugin, warm, dev, pod) as (caller, child):
        warm.proc.kill()
        warm.proc.wait()
        time.sleep(0.5)
        assert _alive(child), "the child died with its server"
        assert os.readlink(f"/proc/{caller.pid}/exe") == str(BINARY), "the caller gave up on its child"
    assert caller.stdout is not None
    out = caller.stdout.read()
    assert caller.wait(timeout=60) == 0
    assert json.loads(out)["interfaces"][0]["name"] == "net1"
    assert out.count(b'"interfaces"') == 1
    assert link_json("net1", pod) is not None
    assert plugin.run("DEL", conf, **pod_env(pod)).status == 0  # the socket is stale now: run here
    assert link_json(dev) is not None


def test_a_chrooted_caller_is_served_in_its_own_root(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    """The child runs in the caller's root, where none of the server's files are: all it needs is preloaded."""
    root = Path(binary_plugin.data_dir).parent / "root"
    for directory in ("proc", "run/netns", "srv", "usr/lib/cni", "lib64", "lib/x86_64-linux-gnu", "state"):
        (root / directory).mkdir(parents=True)
    shutil.copy(BINARY, root / "host-device")
    shutil.copy("/usr/lib/cni/static", root / "usr/lib/cni")  # IPAM: a child execs it in that root
    shutil.copy("/lib64/ld-linux-x86-64.so.2", root / "lib64")
    shutil.copy("/lib/x86_64-linux-gnu/libc.so.6", root / "lib/x86_64-linux-gnu")
    enter = (
        'mount -t proc proc "$1/proc" && mount --rbind /run/netns "$1/run/netns" && '
        'mount --bind "$2" "$1/srv" && exec chroot "$1" /host-device'
    )
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", enter, "-", str(root), str(warm.sock.parent)]
    plugin = Plugin(argv, "/state", {"CNI_HOSTDEV_SERVER": f"/srv/{warm.sock.name}"})
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(plugin, "1.0.0", device=dev, ipam={"type": "static", "addresses": [{"address": "10.45.0.2/24"}]})
    added = plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout + added.stderr
    assert added.out is not None and added.out["ips"][0]["address"] == "10.45.0.2/24"
    assert (root / "state" / "tnet").is_dir()  # the record went to the caller's root
    deleted = plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert link_json(dev) is not None and link_json("net1", pod) is None
    log = warm.logged("ADD ctr1/net1 (child", "DEL ctr1/net1 (child")
    assert "killed by signal" not in log and "status 1" not in log, log
    assert not list(root.glob(".host-device.run-*")), "the launcher ran the call itself"


def test_a_call_abandoned_after_its_server_died_stops(sandbox: Sandbox, binary_plugin: Plugin, warm: Server) -> None:
    """With no server left to kill it, the child notices its caller is gone by itself."""
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    plugin = _served(binary_plugin, warm)
    with _call_waiting_for_its_lock(plugin, warm, dev, pod) as (caller, child):
        warm.proc.kill()
        warm.proc.wait()
        caller.kill()
        caller.wait()
        _wait_for(lambda: not _alive(child), "the abandoned child to stop")
    assert link_json(dev) is not None and link_json("net1", pod) is None


def _fake_proc(root: Path, label: str | None = "unconfined", seccomp: int = 0, caps: str = "000001ffffffffff") -> str:
    """A /proc/PID as Privileges reads it; `label` None: one that cannot be read."""
    root.mkdir()
    (root / "status").write_text(f"Name:\tx\nCapEff:\t{caps}\nNoNewPrivs:\t0\nSeccomp:\t{seccomp}\n")
    (root / "ns").mkdir()
    for kind in ("user", "pid"):
        (root / "ns" / kind).symlink_to(f"/proc/self/ns/{kind}")
    if label is None:
        (root / "attr" / "current").mkdir(parents=True)
    elif label:
        (root / "attr").mkdir()
        (root / "attr" / "current").write_text(label + "\n")
    return str(root)


def test_privileges_compare_what_confines_a_process(tmp_path: Path) -> None:
    unconfined = server.Privileges(_fake_proc(tmp_path / "server"))
    assert server.Privileges(_fake_proc(tmp_path / "peer")).shortfall(unconfined) is None
    confined = server.Privileges(_fake_proc(tmp_path / "confined", label="cri-containerd.apparmor.d (enforce)"))
    assert "LSM label 'cri-containerd.apparmor.d (enforce)'" in str(confined.shortfall(unconfined))
    filtered = server.Privileges(_fake_proc(tmp_path / "filtered", seccomp=2))
    assert filtered.shortfall(unconfined) == "it runs under seccomp"
    capless = server.Privileges(_fake_proc(tmp_path / "capless", caps="000001ffffdfffff"))
    assert capless.shortfall(unconfined) == "it lacks effective capabilities 0x200000"
    # A server confined itself serves an unconfined caller; with no LSM at all, nobody has a label.
    assert unconfined.shortfall(confined) is None
    no_lsm = server.Privileges(_fake_proc(tmp_path / "bare", label=""))
    assert no_lsm.label == "" and no_lsm.shortfall(server.Privileges(_fake_proc(tmp_path / "bare2", label=""))) is None
    assert no_lsm.shortfall(unconfined) is not None
    with pytest.raises(OSError):
        server.Privileges(_fake_proc(tmp_path / "unreadable", label=None))


def test_a_caller_gone_before_it_is_vouched_for_is_refused(tmp_path: Path) -> None:
    """Whatever has the connecting process's pid later is never judged in its place."""
    path = str(tmp_path / "vouch.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connector = os.fork()
        if connector == 0:
            try:
                client.connect(path)  # the socket stays open in the parent: handed on, as an attacker would
            finally:
                os._exit(0)
        os.waitpid(connector, 0)
        conn, _ = listener.accept()
        with conn, client:
            reason = server.vouch(conn, server.Privileges("/proc/self"))
    assert reason is not None and f"pid {connector}" in reason


def test_stdin_is_kept_for_the_call_run_here_without_memfd(
    sandbox: Sandbox, binary_plugin: Plugin, warm: Server
) -> None:
    """Refused by the server after reading stdin, with no memfd_create: a large config still arrives whole."""
    if os.uname().machine != "x86_64":
        pytest.skip("the filter names memfd_create by its x86_64 number")
    no_memfd = under_seccomp(
        (0x20, 0),  # load the syscall number
        (0x15, 319, 0, 1),  # memfd_create on x86_64?
        (0x06, 0x00050000 | 38),  # then fail with ENOSYS, as an old kernel would
        SECCOMP_ALLOW,
    )
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    plugin = Plugin(
        [*no_memfd, *binary_plugin.argv],
        binary_plugin.data_dir,
        {"CNI_HOSTDEV_SERVER": str(warm.sock)},
    )
    conf = conf_for(plugin, device=dev, padding="x" * 200_000)  # more than a pipe holds by default
    added = plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout + added.stderr
    assert link_json("net1", pod) is not None
    assert "it runs under seccomp" in warm.log() and "(child" not in warm.log()
    deleted = plugin.run("DEL", conf, **pod_env(pod))
    assert deleted.status == 0, deleted.stdout + deleted.stderr
    assert link_json(dev) is not None
