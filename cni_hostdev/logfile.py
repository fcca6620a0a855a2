"""The config's `logFile`: one line per event, appended, rotated by size, never a reason to fail.

Keys as sriov-cni and Multus spell them: `logFile` (an absolute path), `logLevel`, and
`logOptions` with `maxSize` (megabytes, default 100) and `maxBackups` (default 5; 0 keeps none).
The file is created 0600, its directory (one level, if missing) 0700.

Many plugin processes write one file at once. Each line is one write(2) on an O_APPEND fd, so
lines never mix. Writers hold a shared flock on `<logFile>.lock` while they write, and the one
that finds the file over `maxSize` renames it to `.1` (`.1` to `.2` ...) under the exclusive
lock: no line goes to a file being rotated away, none is lost. A writer that finds the file
rotated reopens the new one. Waiting for the lock is bounded: a call that once waits 0.2 s for
it writes its remaining lines without locking and leaves rotation to the next call. A file that
cannot be written costs one warning on stderr: the call goes on, logging to stderr only. Meant
for a local filesystem: flock on a hard NFS mount can block whatever the flags.
"""

from __future__ import annotations

import fcntl
import os
import stat
import time

from cni_hostdev import logs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_MAX_SIZE_MB = 100.0
DEFAULT_MAX_BACKUPS = 5
MAX_SIZE_MB = 1024.0 * 1024  # a terabyte: anything above is a typo
MAX_BACKUPS = 1000  # rotation renames every backup, under the lock
LOCK_WAIT = 0.2  # seconds, at most, once per call


class LogFile(logs.Sink):
    __slots__ = ("_fd", "_lock_fd", "failed", "level", "max_backups", "max_bytes", "path", "waited")

    def __init__(self, path: str, level: int, max_bytes: int, max_backups: int) -> None:
        self.path = path
        self.level = level
        self.max_bytes = max_bytes
        self.max_backups = max_backups
        self.failed = False
        self.waited = False  # once the lock made us wait LOCK_WAIT, this call stops locking
        self._fd: int | None = None
        self._lock_fd: int | None = None

    def write(self, level: int, text: str) -> None:
        if self.failed:
            return
        try:
            self._append(self._line(level, text))
        except Exception as err:  # whatever it is, the call goes on: it is only a log line
            self._fail(getattr(err, "strerror", None) or str(err) or type(err).__name__)

    def _line(self, level: int, text: str) -> bytes:
        stamp = time.time()
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + f".{int(stamp % 1 * 1000):03d}Z"
        line = f"{when} {logs.NAMES.get(level, str(level))} {logs.context_fields()} pid={os.getpid()}: {text}"
        return (line.replace("\n", " | ") + "\n").encode("utf-8", "replace")

    def _append(self, data: bytes) -> None:
        locked = self._lock(fcntl.LOCK_SH)
        try:
            fd = self._current()
            if os.write(fd, data) != len(data):
                raise OSError(0, "a line was cut short (a full disk?)")
            full = os.fstat(fd).st_size >= self.max_bytes
        finally:
            if locked:
                fcntl.flock(self._lock_fd_or_open(), fcntl.LOCK_UN)
        if full and locked:
            self._rotate()

    def _lock_fd_or_open(self) -> int:
        if self._lock_fd is None:
            self._prepare_directory()
            self._lock_fd = os.open(
                self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600
            )
        return self._lock_fd

    def _lock(self, how: int) -> bool:
        """Take the lock within LOCK_WAIT, once per call; False when that was not enough (the
        caller goes on without it, and so do its later lines)."""
        if self.waited:
            return False
        fd = self._lock_fd_or_open()
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, how | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self.waited = True
                    return False
                time.sleep(0.001)

    def _prepare_directory(self) -> None:
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            try:
                os.mkdir(directory, 0o700)  # one level: a missing parent is the operator's to make
            except FileExistsError:
                pass  # a parallel call made it

    def _current(self) -> int:
        """The fd of the file now at `path`: opened on first use, again after a rotation."""
        if self._fd is not None:
            try:
                now, ours = os.stat(self.path), os.fstat(self._fd)
                if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
                    return self._fd
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
        fd = os.open(self.path, flags, 0o600)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(0, "not a regular file")
        self._fd = fd
        return fd

    def _rotate(self) -> None:
        if not self._lock(fcntl.LOCK_EX):
            return  # busy: a later writer rotates
        try:
            try:
                if os.stat(self.path).st_size < self.max_bytes:
                    return  # another writer rotated it first
            except FileNotFoundError:
                return
            if self.max_backups == 0:
                os.unlink(self.path)
                return
            for n in range(self.max_backups - 1, 0, -1):
                older = f"{self.path}.{n}"
                if os.path.lexists(older):
                    os.rename(older, f"{self.path}.{n + 1}")
            os.rename(self.path, f"{self.path}.1")
        finally:
            fcntl.flock(self._lock_fd_or_open(), fcntl.LOCK_UN)

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock_fd = None

    def _fail(self, why: str) -> None:
        self.failed = True
        logs.write_stderr(f"host-device: WARNING cannot write log file {self.path}: {why}; logging to stderr only\n")


def configure(conf: dict[str, Any]) -> None:
    """Set up the config's `logFile` and `logLevel`; a bad value is a warning on stderr, never a
    failure: an ADD or DEL must not fail (or a pod stay terminating) over its logging."""
    level = _level_of(conf)
    if level is not None:
        logs.set_level(level)
    elif conf.get("logLevel") is not None:
        logs.write_stderr(
            f"host-device: WARNING config key logLevel {conf['logLevel']!r} is not one of {', '.join(logs.LEVELS)}\n"
        )
    sink = for_config(conf)
    if sink is not None:
        logs.to_file(sink)


def _level_of(conf: dict[str, Any]) -> int | None:
    name = conf.get("logLevel")
    return logs.LEVELS.get(name.lower()) if isinstance(name, str) else None


def for_config(conf: dict[str, Any]) -> LogFile | None:
    """The config's `logFile`, at its `logLevel` (info when it names none it knows); None without
    one, or with a bad one (a warning on stderr)."""
    path = conf.get("logFile")
    if path is None or path == "":
        return None
    options = conf.get("logOptions") or {}
    problem = _problem(path, options)
    if problem:
        logs.write_stderr(f"host-device: WARNING {problem}; logging to stderr only\n")
        return None
    max_bytes = max(1, int(options.get("maxSize", DEFAULT_MAX_SIZE_MB) * 1024 * 1024))
    max_backups = options.get("maxBackups", DEFAULT_MAX_BACKUPS)
    level = _level_of(conf)
    return LogFile(path, level if level is not None else logs.INFO, max_bytes, max_backups)


def _problem(path: object, options: object) -> str | None:
    if not isinstance(path, str) or not path.startswith("/") or "\0" in path or path.endswith("/"):
        return f"config key logFile {path!r} is not an absolute file path"
    try:
        os.fsencode(path)
    except UnicodeError:
        return f"config key logFile {path!r} is not a file name this system can hold"
    if not isinstance(options, dict):
        return "config key logOptions must be an object"
    size = options.get("maxSize", DEFAULT_MAX_SIZE_MB)
    if isinstance(size, bool) or not isinstance(size, int | float) or not 0 < size <= MAX_SIZE_MB:
        return f"config key logOptions.maxSize {size!r} must be a number of megabytes above 0, at most {MAX_SIZE_MB:g}"
    backups = options.get("maxBackups", DEFAULT_MAX_BACKUPS)
    if isinstance(backups, bool) or not isinstance(backups, int) or not 0 <= backups <= MAX_BACKUPS:
        return f"config key logOptions.maxBackups {backups!r} must be a whole number from 0 to {MAX_BACKUPS}"
    return None
