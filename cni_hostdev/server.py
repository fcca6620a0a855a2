"""`host-device serve`: a warm process that runs plugin commands for the single file.

Most of an exec'd Python plugin's time goes to starting the interpreter and
importing, not to the kernel. With a server running, the static launcher in front
of dist/host-device (packaging/launcher.c) does not start Python at all: it hands
the request to this process, which has everything imported and forks a child per
command. The child enters the caller's mount and network namespaces, root and
working directory, writes straight to the caller's stdout and stderr, and exits
with the status the launcher then exits with.

Nothing depends on the server being there. The launcher runs the command itself
when there is no socket, when the server is of another build (an upgraded file
never runs old code), when the caller is in another user or PID namespace, and
when a child dies by a signal. In that last case the command may have been cut
short, and running it again is what the crash-recovery design makes safe.
If the caller dies (a runtime's timeout), its child is SIGKILLed, as the plugin
itself would have been.

Wire format over a SOCK_STREAM unix socket. The server greets each caller it accepts with
b"H"; a caller not greeted within a second (a stopped or stuck server) runs the call itself.
Client to server:
  header  "<8sI"  magic b"HDSRV001", payload length; carries SCM_RIGHTS fds:
          stdout, stderr, and the caller's user, pid, mnt and net namespaces, cwd, root
  payload "<24sIIII" payload hash (hex), umask, argc, envc, stdin length;
          then argc + envc NUL-terminated strings, then stdin
Server to client, 5 bytes: b"S" + "<i" exit status (done), or b"F" + 0 (run it yourself).
"""

from __future__ import annotations

import gc
import os
import selectors
import signal
import socket
import struct
import sys
import time

from cni_hostdev import logs, netns

DEFAULT_SOCKET = "/run/cni-hostdev/server.sock"
MAGIC = b"HDSRV001"
HEADER = struct.Struct("<8sI")
PAYLOAD = struct.Struct("<24sIIII")
FD_NAMES = ("stdout", "stderr", "user", "pid", "mnt", "net", "cwd", "root")
MAX_PAYLOAD = 16 << 20
REQUEST_TIMEOUT = 2.0  # the launcher sends all at once; a stalled caller must not stall others
UPGRADE_CHECK_INTERVAL = 5.0
PR_SET_PDEATHSIG = 1

log = logs.get_logger(__name__)


class BadRequest(Exception):
    pass


class Request:
    __slots__ = ("argv", "env", "fds", "payload_hash", "stdin", "umask")

    def __init__(
        self, payload_hash: str, umask: int, argv: list[str], env: dict[str, str], stdin: bytes, fds: dict[str, int]
    ) -> None:
        self.payload_hash = payload_hash
        self.umask = umask
        self.argv = argv
        self.env = env
        self.stdin = stdin
        self.fds = fds


def _recv_exact(conn: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = conn.recv(min(size, 1 << 20))
        if not chunk:
            raise BadRequest("the caller hung up mid-request")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_request(conn: socket.socket) -> Request:
    fds: list[int] = []
    try:
        data, ancillary, _, _ = conn.recvmsg(HEADER.size, socket.CMSG_SPACE(len(FD_NAMES) * 4))
        for level, kind, blob in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.extend(struct.unpack(f"{len(blob) // 4}i", blob[: len(blob) - len(blob) % 4]))
        if len(data) < HEADER.size:
            data += _recv_exact(conn, HEADER.size - len(data))
        magic, length = HEADER.unpack(data)
        if magic != MAGIC or length > MAX_PAYLOAD or length < PAYLOAD.size or len(fds) != len(FD_NAMES):
            raise BadRequest(f"not a host-device request (magic {magic!r}, {len(fds)} fds)")
        payload = _recv_exact(conn, length)
        raw_hash, umask, argc, envc, stdin_len = PAYLOAD.unpack_from(payload)
        if stdin_len > length - PAYLOAD.size:
            raise BadRequest(f"stdin length {stdin_len} exceeds the payload")
        strings = payload[PAYLOAD.size : length - stdin_len].split(b"\0")
        if len(strings) != argc + envc + 1 or strings[-1] != b"":
            raise BadRequest("malformed argument and environment strings")
        env: dict[str, str] = {}
        for entry in strings[argc : argc + envc]:
            key, sep, value = os.fsdecode(entry).partition("=")
            if sep:
                env[key] = value
        return Request(
            raw_hash.decode("ascii", "replace"),
            umask & 0o777,
            [os.fsdecode(s) for s in strings[:argc]],
            env,
            payload[length - stdin_len :],
            dict(zip(FD_NAMES, fds, strict=True)),
        )
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _same_ns(fd: int, kind: str) -> bool:
    theirs, ours = os.fstat(fd), os.stat(f"/proc/self/ns/{kind}")
    return (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino)


def refusal(request: Request, payload_hash: str | None) -> str | None:
    """Why this server must not run the request (the caller then runs it), or None."""
    if payload_hash is None or request.payload_hash != payload_hash:
        return f"the caller is build {request.payload_hash}, this server is build {payload_hash}"
    for kind in ("user", "pid"):
        if not _same_ns(request.fds[kind], kind):
            return f"the caller is in another {kind} namespace"
    if "CNI_COMMAND" not in request.env:
        return "the caller is not a plugin call (no CNI_COMMAND)"
    return None


def _close_other_fds(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own fd, closed by now


def _run_child(request: Request, server_pid: int) -> None:
    """In the forked child: become the caller's plugin process, run the command, exit."""
    status = 1
    try:
        _set_parent_death_signal(signal.SIGKILL)
        if os.getppid() != server_pid:
            os._exit(1)  # the server died before the death signal was armed
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        fds = request.fds
        _close_other_fds(set(fds.values()))  # the listener, other callers' sockets and children
        if not _same_ns(fds["mnt"], "mnt"):
            netns.join(fds["mnt"])
        os.fchdir(fds["root"])
        os.chroot(".")
        os.fchdir(fds["cwd"])
        if not _same_ns(fds["net"], "net"):
            netns.setns(fds["net"])
        os.umask(request.umask)
        os.dup2(fds["stdout"], 1)
        os.dup2(fds["stderr"], 2)
        # Fresh stream objects: whatever the server's own might hold must never reach a caller.
        sys.stdout = open(1, "w", closefd=False)
        sys.stderr = open(2, "w", closefd=False, buffering=1)
        empty, writer = os.pipe()  # stdin came in the request; no /dev/null needed in the caller's root
        os.close(writer)
        os.dup2(empty, 0)
        _close_other_fds(set())
        os.environ.clear()
        os.environ.update(request.env)
        sys.argv = request.argv or ["host-device"]
        logs.set_level(logs.WARNING)

        from cni_hostdev import cli

        obj, status = cli.run_plugin(os.environ, request.stdin)
        cli.emit(obj, status)
    except BaseException as err:  # the caller reruns the command when we die without a status
        try:
            os.write(2, f"host-device: ERROR server child failed: {err!r}\n".encode())
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    os._exit(status)


def _set_parent_death_signal(signum: int) -> None:
    import ctypes

    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")


def _preload() -> None:
    """Import what any command needs, so that a child starts with it in memory.

    It also means a child never reads the server's files again: an upgrade may remove
    the old build's tree while the server finishes its last calls.
    """
    import ipaddress  # noqa: F401
    import subprocess  # noqa: F401
    import traceback  # noqa: F401

    from cni_hostdev import cli, commands, config, ipam, netlink, probe, result  # noqa: F401

    try:
        probe.cached_probe()  # a child then only reads this boot's cache
        with netlink.Rtnl() as rtnl:
            # pyroute2 compiles a message class's attribute tables on first use: once, here
            rtnl.link(name="lo")
            rtnl.global_addresses(1)
            rtnl.default_route_ifindexes(1)
    except OSError as err:
        log.warning("warming up failed (each command will do it): %s", err)
    # Children are short-lived forks: keep the collector off the preloaded objects (and their pages shared).
    gc.freeze()


class _Call:
    __slots__ = ("child", "conn", "pidfd", "started", "what")

    def __init__(self, conn: socket.socket, child: int, pidfd: int, what: str) -> None:
        self.conn = conn
        self.child = child
        self.pidfd = pidfd
        self.what = what
        self.started = time.monotonic()


def _listen(path: str) -> tuple[socket.socket, int]:
    """The listening socket, and the inode of its file (which a later server may replace)."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    temp = f"{path}.{os.getpid()}"
    try:
        os.unlink(temp)
    except FileNotFoundError:
        pass
    old_umask = os.umask(0o177)  # the socket is root's alone: it runs commands as root
    try:
        listener.bind(temp)
    finally:
        os.umask(old_umask)
    listener.listen(128)
    inode = os.stat(temp).st_ino
    os.rename(temp, path)  # a second server replaces the first's socket, never half of it
    return listener, inode


def serve(path: str = DEFAULT_SOCKET) -> int:
    payload_hash = os.environ.get("HOST_DEVICE_PAYLOAD")
    if payload_hash is None:
        log.warning("not started from the single file: every caller will run its command itself")
    _preload()
    listener, inode = _listen(path)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, None)
    calls: dict[int, _Call] = {}  # by pidfd
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving plugin calls on %s (build %s)", path, payload_hash)
    server_pid = os.getpid()
    # The single file we came from, or the bin dir entry of an unpacked install (which an upgrade re-points).
    self_path = os.environ.get("HOST_DEVICE_SELF") or os.environ.get("HOST_DEVICE_ENTRY")
    next_check = time.monotonic() + UPGRADE_CHECK_INTERVAL
    try:
        while not stopping or calls:
            if self_path and payload_hash and not stopping and time.monotonic() >= next_check:
                next_check = time.monotonic() + UPGRADE_CHECK_INTERVAL
                if _upgraded(self_path, payload_hash):
                    stopping = True  # a supervisor (systemd, the kubelet) starts the new build's server
            if stopping and listener.fileno() >= 0:
                selector.unregister(listener)
                _unlink_if_ours(path, inode)
                listener.close()
            for key, _ in selector.select(timeout=1.0):
                if key.data is None:
                    _accept(listener, selector, calls, payload_hash, server_pid)
                else:
                    _finish(key.data, selector, calls)
    finally:
        if listener.fileno() >= 0:
            _unlink_if_ours(path, inode)
            listener.close()
    log.info("stopped")
    return 0


def _upgraded(self_path: str, payload_hash: str) -> bool:
    """Whether the single file we were started from now holds another build."""
    from cni_hostdev.install import payload_hash as hash_of

    current = hash_of(self_path)
    if current is None or current == payload_hash:
        return False
    log.info("%s is now build %s: stopping once calls in flight are done", self_path, current)
    return True


def _unlink_if_ours(path: str, inode: int) -> None:
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass


def _reply(conn: socket.socket, kind: bytes, status: int = 0) -> None:
    try:
        conn.sendall(kind + struct.pack("<i", status))
    except OSError:
        pass  # the caller is gone; nothing to tell


def _accept(
    listener: socket.socket,
    selector: selectors.BaseSelector,
    calls: dict[int, _Call],
    payload_hash: str | None,
    server_pid: int,
) -> None:
    try:
        conn, _ = listener.accept()
    except OSError:
        return
    conn.settimeout(REQUEST_TIMEOUT)
    uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
    if uid != os.geteuid():
        log.warning("refused a caller with uid %d", uid)
        conn.close()
        return
    try:
        conn.sendall(b"H")  # the caller sends its request only once greeted (see launcher.c)
    except OSError:
        conn.close()
        return
    try:
        request = read_request(conn)
    except (BadRequest, OSError, ValueError, struct.error) as err:
        log.warning("bad request: %s", err)
        conn.close()
        return
    try:
        reason = refusal(request, payload_hash)
        if reason is not None:
            log.info("caller runs %s itself: %s", request.env.get("CNI_COMMAND", "?"), reason)
            _reply(conn, b"F")
            conn.close()
            return
        try:
            child = os.fork()
        except OSError as err:
            log.warning("cannot fork for %s: %s", request.env.get("CNI_COMMAND"), err)
            _reply(conn, b"F")
            conn.close()
            return
        if child == 0:
            _run_child(request, server_pid)
    finally:
        for fd in request.fds.values():
            os.close(fd)  # the caller's stdout must reach EOF when the child and caller exit
    env = request.env
    what = f"{env.get('CNI_COMMAND')} {env.get('CNI_CONTAINERID', '-')}/{env.get('CNI_IFNAME', '-')} (child {child})"
    pidfd = os.pidfd_open(child)
    call = _Call(conn, child, pidfd, what)
    calls[pidfd] = call
    selector.register(pidfd, selectors.EVENT_READ, call)
    selector.register(conn, selectors.EVENT_READ, call)


def _finish(call: _Call, selector: selectors.BaseSelector, calls: dict[int, _Call]) -> None:
    """The child exited (tell the caller) or the caller went away (kill the child)."""
    if calls.get(call.pidfd) is not call:
        return  # both ends woke in one round; the first took care of it
    done, wait_status = os.waitpid(call.child, os.WNOHANG)
    elapsed = (time.monotonic() - call.started) * 1000
    if done == 0:
        os.kill(call.child, signal.SIGKILL)  # the caller is gone: its plugin process would be too
        os.waitpid(call.child, 0)
        log.warning("%s: the caller went away after %.0f ms; killed the child", call.what, elapsed)
    elif os.WIFEXITED(wait_status):
        _reply(call.conn, b"S", os.WEXITSTATUS(wait_status))
        log.info("%s: status %d in %.0f ms", call.what, os.WEXITSTATUS(wait_status), elapsed)
    else:
        _reply(call.conn, b"F")  # cut short by a signal: the caller runs it again itself
        log.warning("%s: killed by signal %d; the caller runs it itself", call.what, os.WTERMSIG(wait_status))
    selector.unregister(call.conn)
    selector.unregister(call.pidfd)
    call.conn.close()
    os.close(call.pidfd)
    del calls[call.pidfd]
