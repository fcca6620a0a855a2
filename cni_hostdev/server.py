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
never runs old code), when the server does not vouch for the caller (below), and
when a child dies by a signal. In that last case the command may have been cut
short, and running it again is what the crash-recovery design makes safe.
If the caller dies (a runtime's timeout), its child dies of SIGIO, as the plugin
itself would have been. If the server dies, its children finish their calls and
reply themselves: a finished ADD is never run a second time.

The server runs commands with its own privileges, so it runs them only for a caller
that has all of them anyway: same uid, user and PID namespace, every effective
capability the server has, no seccomp filter at all, no no_new_privs the server
lacks, and the server's LSM label (or "unconfined"). A root process in a confined container that can
reach the socket gets nothing from it that it could not do itself. The caller is
judged by what the kernel says of the process that connected (SO_PEERCRED, and a
pidfd that proves /proc/PID still names it), never by what it sends.

Wire format over a SOCK_STREAM unix socket, integers in native byte order (both ends
are one build on one machine). The server greets each caller it vouches for with b"H";
a caller not greeted within a second (a stopped or stuck server) runs the call itself.
Client to server:
  header  "=8sI"  magic b"HDSRV002", payload length; carries SCM_RIGHTS fds:
          stdout, stderr, and the caller's mnt and net namespaces, cwd, root
  payload "=24sIIII" payload hash (hex), umask, argc, envc, stdin length;
          then argc + envc NUL-terminated strings, then stdin
Reply, 5 bytes: b"S" + "=i" exit status (done; sent by the child), or b"F" + 0 (sent
by the server: run it yourself).
"""

from __future__ import annotations

import errno
import fcntl
import gc
import os
import resource
import select
import selectors
import signal
import socket
import struct
import sys
import time

from cni_hostdev import logs, netns

DEFAULT_SOCKET = "/run/cni-hostdev/server.sock"
MAGIC = b"HDSRV002"
HEADER = struct.Struct("=8sI")
PAYLOAD = struct.Struct("=24sIIII")
REPLY = struct.Struct("=ci")
FD_NAMES = ("stdout", "stderr", "mnt", "net", "cwd", "root")
MAX_PAYLOAD = 16 << 20
REQUEST_TIMEOUT = 2.0  # the launcher sends all at once; a stalled caller must not stall others
UPGRADE_CHECK_INTERVAL = 5.0
SO_PEERPIDFD = 77  # Linux 6.5; older kernels: pidfd_open(2) of SO_PEERCRED's pid

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
                env.setdefault(key, value)  # the first wins, as for getenv(3) in the launcher and exec'd Python
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


def _ns_id(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def _same_ns(fd: int, kind: str) -> bool:
    theirs = os.fstat(fd)
    return (theirs.st_dev, theirs.st_ino) == _ns_id(f"/proc/self/ns/{kind}")


class Privileges:
    """What confines a process, as far as running a command on its behalf is concerned."""

    __slots__ = ("capabilities", "label", "namespaces", "no_new_privs", "seccomp")

    def __init__(self, proc: str) -> None:
        fields: dict[str, str] = {}
        with open(f"{proc}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        self.capabilities = int(fields["CapEff"], 16)
        self.no_new_privs = int(fields.get("NoNewPrivs", "0"))
        self.seccomp = int(fields.get("Seccomp", "0"))
        try:
            with open(f"{proc}/attr/current", "rb") as attr:
                self.label = attr.read().rstrip(b"\0\n").decode(errors="replace")
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOENT):
                raise  # a label we cannot read is not the absence of one
            self.label = ""  # no LSM that keeps a label
        self.namespaces = {kind: _ns_id(f"{proc}/ns/{kind}") for kind in ("user", "pid")}

    def shortfall(self, server: Privileges) -> str | None:
        """Why a process confined like this may not have commands run with `server`'s privileges."""
        for kind, ns in self.namespaces.items():
            if ns != server.namespaces[kind]:
                return f"it is in another {kind} namespace"
        missing = server.capabilities & ~self.capabilities
        if missing:
            return f"it lacks effective capabilities {missing:#x}"
        if self.no_new_privs > server.no_new_privs:
            return "it runs with no_new_privs"
        if self.seccomp:
            return "it runs under seccomp"  # whose filter, stricter than ours or not, we cannot tell
        if self.label not in (server.label, "unconfined"):
            return f"it runs confined by the LSM label {self.label!r}"
        return None


def _peer_pidfd(conn: socket.socket, pid: int) -> int:
    """A pidfd of the process that connected.

    Before Linux 6.5 (no SO_PEERPIDFD) it is a pidfd of whatever has `pid` now: the connecting
    process could have exited and its pid been reused in between, a window of microseconds
    that would need the whole pid space cycled through within it.
    """
    try:
        return conn.getsockopt(socket.SOL_SOCKET, SO_PEERPIDFD)
    except OSError as err:
        if err.errno != errno.ENOPROTOOPT:
            raise  # the connecting process is gone: whatever has its pid now is not the caller
        return os.pidfd_open(pid)


def vouch(conn: socket.socket, server: Privileges) -> str | None:
    """Why the process that connected must run its command itself, or None."""
    pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    if uid != os.geteuid():
        return f"pid {pid} has uid {uid}"
    try:
        pidfd = _peer_pidfd(conn, pid)
    except OSError as err:
        return f"pid {pid} cannot be pinned: {err.strerror}"
    try:
        reason = Privileges(f"/proc/{pid}").shortfall(server)
        # While the pidfd's process exists, its pid is not reused: /proc/PID was that process.
        signal.pidfd_send_signal(pidfd, 0)
    except (OSError, KeyError, ValueError) as err:
        return f"pid {pid} is gone or unreadable: {err}"
    finally:
        os.close(pidfd)
    return None if reason is None else f"pid {pid}: {reason}"


def refusal(request: Request, payload_hash: str | None) -> str | None:
    """Why this server must not run the request (the caller then runs it), or None."""
    if payload_hash is None or request.payload_hash != payload_hash:
        return f"the caller is build {request.payload_hash}, this server is build {payload_hash}"
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


def _run_child(request: Request, conn: socket.socket, go: int) -> None:
    """In the forked child: become the caller's plugin process, run the command, reply, exit.

    The child starts only once the server watches it (one byte on `go`; EOF: the server
    cannot, and the caller runs the command). It replies itself and dies with its caller
    (SIGIO when the caller's end closes), whether or not the server is still there: a server
    restarted mid-call neither loses a finished call nor leaves an abandoned one running.
    """
    try:
        if os.read(go, 1) != b"g":
            os._exit(0)
        os.close(go)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGIO):
            signal.signal(sig, signal.SIG_DFL)
        fcntl.fcntl(conn.fileno(), fcntl.F_SETOWN, os.getpid())
        fcntl.fcntl(conn.fileno(), fcntl.F_SETFL, fcntl.fcntl(conn.fileno(), fcntl.F_GETFL) | os.O_ASYNC)
        if select.select([conn], [], [], 0)[0]:
            os.kill(os.getpid(), signal.SIGIO)  # the caller left before the signal was armed
        fds = request.fds
        _close_other_fds({*fds.values(), conn.fileno()})  # the listener, other callers' sockets and children
        if not _same_ns(fds["mnt"], "mnt"):
            netns.join(fds["mnt"], netns.CLONE_NEWNS)
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
        _close_other_fds({conn.fileno()})
        os.environ.clear()
        os.environ.update(request.env)
        sys.argv = request.argv or ["host-device"]
        logs.set_level(logs.WARNING)

        from cni_hostdev import cli

        obj, status = cli.run_plugin(os.environ, request.stdin)
        cli.write_outcome(obj)
        signal.signal(signal.SIGIO, signal.SIG_IGN)  # done: the caller may hang up as soon as it reads this
        _reply(conn, b"S", status)
        os._exit(status)
    except BaseException as err:  # the caller reruns the command when we die without a status
        try:
            os.write(2, f"host-device: ERROR server child failed: {err!r}\n".encode())
        finally:
            os.kill(os.getpid(), signal.SIGKILL)


def _preload() -> None:
    """Import what any command needs, so that a child starts with it in memory.

    It also means a child never reads the server's files again: an upgrade may remove
    the old build's tree while the server finishes its last calls, and a child runs
    chrooted into its caller's root, where they may not be.
    """
    import ipaddress  # noqa: F401
    import subprocess  # noqa: F401
    import traceback  # noqa: F401

    from cni_hostdev import cli, commands, config, faults, ipam, netlink, probe, result  # noqa: F401

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

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self.started) * 1000


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


def _standard_fds_open() -> None:
    """Started with 0, 1 or 2 closed, the listener or a caller's socket would take their place."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # each call in flight holds a few


class Server:
    def __init__(self, path: str, payload_hash: str | None) -> None:
        self.path = path
        self.payload_hash = payload_hash
        self.privileges = Privileges("/proc/self")
        os.close(os.pidfd_open(os.getpid()))  # children are watched by pidfd (Linux 5.3): fail here, not per call
        self.listener, self.inode = _listen(path)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.accepting = True
        self.calls: dict[int, _Call] = {}  # by pidfd

    def pause_accepting(self) -> None:
        if self.accepting:
            self.selector.unregister(self.listener)
            self.accepting = False

    def resume_accepting(self) -> None:
        if not self.accepting and self.listener.fileno() >= 0:
            self.selector.register(self.listener, selectors.EVENT_READ, None)
            self.accepting = True

    def close_listener(self) -> None:
        if self.listener.fileno() >= 0:
            self.pause_accepting()
            _unlink_if_ours(self.path, self.inode)
            self.listener.close()

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError as err:
            if err.errno in (errno.EMFILE, errno.ENFILE):
                # Out of fds: try again after a pause or once a call in flight gives some back.
                log.warning("out of file descriptors with %d calls in flight", len(self.calls))
                self.pause_accepting()
            return
        try:
            self._serve(conn)
        except BaseException:
            conn.close()
            raise

    def _serve(self, conn: socket.socket) -> None:
        reason = vouch(conn, self.privileges)
        if reason is not None:
            log.warning("refused a caller (it runs its command itself): %s", reason)
            conn.close()
            return
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            conn.sendall(b"H")  # the caller sends its request only once greeted (see launcher.c)
            request = read_request(conn)
        except (BadRequest, OSError, ValueError, struct.error) as err:
            log.warning("bad request: %s", err)
            conn.close()
            return
        try:
            self._start(conn, request)
        finally:
            for fd in request.fds.values():
                os.close(fd)  # the caller's stdout must reach EOF when the child and caller exit

    def _start(self, conn: socket.socket, request: Request) -> None:
        env = request.env
        reason = refusal(request, self.payload_hash)
        if reason is not None:
            log.info("caller runs %s itself: %s", env.get("CNI_COMMAND", "?"), reason)
            _hand_back(conn)
            return
        try:
            go, ready = os.pipe()
            try:
                child = os.fork()
            except OSError:
                os.close(go)
                os.close(ready)
                raise
        except OSError as err:
            log.warning("cannot start a child for %s: %s", env.get("CNI_COMMAND"), err)
            _hand_back(conn)
            return
        if child == 0:
            os.close(ready)
            _run_child(request, conn, go)
        os.close(go)
        pod = f"{env.get('CNI_CONTAINERID', '-')}/{env.get('CNI_IFNAME', '-')}"
        what = f"{env.get('CNI_COMMAND')} {pod} (child {child})"
        try:
            pidfd = os.pidfd_open(child)
        except OSError as err:
            os.close(ready)  # EOF: the child exits before it does anything
            os.waitpid(child, 0)
            log.warning("%s: cannot watch the child (%s); the caller runs it itself", what, err)
            _hand_back(conn)
            return
        call = _Call(conn, child, pidfd, what)
        self.calls[pidfd] = call
        self.selector.register(pidfd, selectors.EVENT_READ, call)
        os.write(ready, b"g")
        os.close(ready)

    def child_exited(self, call: _Call) -> None:
        _, wait_status = os.waitpid(call.child, 0)  # the pidfd is readable: this does not block
        if os.WIFSIGNALED(wait_status):
            _reply(call.conn, b"F")  # cut short: the caller (if still there) runs it again itself
            if os.WTERMSIG(wait_status) == signal.SIGIO:
                log.warning("%s: the caller went away after %.0f ms; the child stopped", call.what, call.elapsed_ms())
            else:
                log.warning("%s: killed by signal %d; the caller runs it itself", call.what, os.WTERMSIG(wait_status))
        else:
            # The child has replied; this copy only matters if its reply could not be sent.
            _reply(call.conn, b"S", os.WEXITSTATUS(wait_status))
            log.info("%s: status %d in %.0f ms", call.what, os.WEXITSTATUS(wait_status), call.elapsed_ms())
        call.conn.close()
        self.selector.unregister(call.pidfd)
        os.close(call.pidfd)
        del self.calls[call.pidfd]
        self.resume_accepting()


def serve(path: str = DEFAULT_SOCKET) -> int:
    payload_hash = os.environ.get("HOST_DEVICE_PAYLOAD")
    if payload_hash is None:
        log.warning("not started from the single file: every caller will run its command itself")
    _standard_fds_open()
    _raise_fd_limit()
    _preload()
    srv = Server(path, payload_hash)
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("serving plugin calls on %s (build %s)", path, payload_hash)
    # The single file we came from, or the bin dir entry of an unpacked install (which an upgrade re-points).
    self_path = os.environ.get("HOST_DEVICE_SELF") or os.environ.get("HOST_DEVICE_ENTRY")
    next_check = time.monotonic() + UPGRADE_CHECK_INTERVAL
    try:
        while not stopping or srv.calls:
            if self_path and payload_hash and not stopping and time.monotonic() >= next_check:
                next_check = time.monotonic() + UPGRADE_CHECK_INTERVAL
                if _upgraded(self_path, payload_hash):
                    stopping = True  # a supervisor (systemd, the kubelet) starts the new build's server
            if stopping:
                srv.close_listener()
            ready = srv.selector.select(timeout=1.0)
            if not ready:
                srv.resume_accepting()  # after a pause for want of fds
            for key, _ in ready:
                if key.data is None:
                    srv.accept()
                else:
                    srv.child_exited(key.data)
    finally:
        srv.close_listener()
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
        conn.sendall(REPLY.pack(kind, status))
    except OSError:
        pass  # the caller is gone; nothing to tell


def _hand_back(conn: socket.socket) -> None:
    """Tell the caller to run the command itself, and let it go."""
    _reply(conn, b"F")
    conn.close()
