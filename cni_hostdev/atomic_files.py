"""Writing a file so that a reader sees the old one or the new one, never half of either.

A temp file beside the target (created exclusively, never through a symlink), written,
fsync'd, given its mode, checked, renamed over the target, and the directory fsync'd:
what state records, the probe cache and `host-device install` all need.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO


def write_atomically(
    path: str,
    write: Callable[[BinaryIO], object],
    *,
    mode: int = 0o600,
    check: Callable[[str], None] | None = None,
    durable: bool = True,
) -> None:
    """Replace `path` with what `write` writes. `check(temp path)` may refuse it before the rename;
    `durable=False` skips the fsyncs (a cache that is rebuilt when lost). Raises OSError."""
    directory = os.path.dirname(path) or "."
    # Not the pid alone: a writer killed mid-write leaves its temp file, and a later process
    # (or one in another pid namespace) may have the same pid.
    temp = os.path.join(directory, f".{os.path.basename(path)}.tmp{os.getpid()}-{os.urandom(4).hex()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.chmod(temp, mode)
        if check is not None:
            check(temp)
        os.replace(temp, path)
    except BaseException:
        try:
            os.unlink(temp)
        except FileNotFoundError:
            pass
        raise
    if durable:
        fsync_directory(directory)


def fsync_directory(directory: str) -> None:
    """Make the names in `directory` durable: a file created or renamed there survives a power loss."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
