"""Per-device locks: every ADD, DEL and GC that touches a device holds its lock.

A lock is an flock(2) on `<dataDir>/locks/<key>.lock`, keyed by the most stable fact
the device has (cni_hostdev/identity.py's `lock_key`: PCI address, else permanent MAC,
else MAC), so two pods asking for one NIC at once are served one after the other. Not
its name: the kernel gives a device back to the host under the name it had in its pod,
and an ADD of that device must wait for the repair of the old claim, which knows it by
its original name. The kernel drops an flock when its holder dies, so a crashed plugin
never wedges a device.
"""

from __future__ import annotations

import fcntl
import os
import time

from cni_hostdev.errors import STATE_FAILURE, TRY_AGAIN_LATER, CniError
from cni_hostdev.identifiers import plain
from cni_hostdev.lean.contextlib import contextmanager

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_TIMEOUT = 10.0
# flock(2) locks belong to open files: a second open of the same lock in this
# process would wait for ourselves. Keys already held here are simply re-entered.
_held: set[str] = set()


class HeldLock:
    """A device's lock, held until `release` (a lock this process held already is re-entered: its
    release is the outer holder's)."""

    __slots__ = ("fd", "path")

    def __init__(self, path: str, fd: int | None) -> None:
        self.path = path
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            _held.discard(self.path)
            os.close(self.fd)
            self.fd = None


def _path(data_dir: str, key: str) -> str:
    return os.path.join(data_dir, "locks", plain(key) + ".lock")


def acquire(data_dir: str, key: str, device: str, timeout: float = DEFAULT_TIMEOUT) -> HeldLock:
    """The lock of `key`, waited for up to `timeout` seconds (then TRY_AGAIN_LATER, naming `device`)."""
    path = _path(data_dir, key)
    directory = os.path.dirname(path)
    if path in _held:
        return HeldLock(path, None)
    try:
        os.makedirs(directory, 0o700, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as err:
        raise CniError(STATE_FAILURE, f"cannot open lock {path} for device {device}: {err.strerror}") from None
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CniError(
                        TRY_AGAIN_LATER,
                        f"device {device} is busy: another ADD/DEL/GC has held its lock for over {timeout:g}s",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
    except BaseException:
        os.close(fd)
        raise
    _held.add(path)
    return HeldLock(path, fd)


@contextmanager
def device_lock(data_dir: str, key: str, device: str, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    lock = acquire(data_dir, key, device, timeout)
    try:
        yield
    finally:
        lock.release()


def busy(data_dir: str, key: str) -> bool:
    """Whether another call holds the lock of `key` now: whoever writes an index entry holds its
    device's lock until the record is written (cni_hostdev/state.py). A lock this call holds is not
    busy: no one else can be writing under it."""
    path = _path(data_dir, key)
    if path in _held:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: keep what may be someone's
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
