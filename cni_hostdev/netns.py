"""Network namespace handles: open, verify, enter, and private throwaway ones.

Namespaces are switched per thread with setns(2); the plugin is single-threaded
and always switches back, so a netlink socket created inside `entered()` stays
bound to that namespace after we leave it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
_SELF_NETNS = "/proc/thread-self/ns/net"

_libc = ctypes.CDLL(None, use_errno=True)


class NotANetns(Exception):
    pass


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNET), "setns")


def join(fd: int, nstype: int) -> None:
    """Enter the namespace `fd` names, which the kernel checks is of type `nstype`.

    A mount namespace (CLONE_NEWNS) needs a single-threaded process.
    """
    _check(_libc.setns(fd, nstype), "setns")


def open_netns(path: str) -> int:
    """Open `path` and make sure it is a network namespace, not any other file."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        nstype = fcntl.ioctl(fd, NS_GET_NSTYPE)
    except OSError as err:
        os.close(fd)
        if err.errno in (errno.ENOTTY, errno.EINVAL):
            raise NotANetns(path) from None
        raise
    if nstype != CLONE_NEWNET:
        os.close(fd)
        raise NotANetns(path)
    return fd


def open_current() -> int:
    return os.open(_SELF_NETNS, os.O_RDONLY | os.O_CLOEXEC)


def same_netns(fd_a: int, fd_b: int) -> bool:
    a, b = os.fstat(fd_a), os.fstat(fd_b)
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@contextmanager
def entered(fd: int) -> Iterator[None]:
    home = open_current()
    try:
        setns(fd)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)


def new_private() -> int:
    """A fresh, unnamed netns: it dies with its last fd, so a crash leaves nothing mounted."""
    home = open_current()
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare")
        try:
            return open_current()
        finally:
            setns(home)
    finally:
        os.close(home)


MS_BIND = 0x1000
MNT_DETACH = 0x2


def persist(fd: int, path: str) -> None:
    """Bind-mount a netns at `path` so it outlives this process (a crash must not destroy what is in it)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    source = f"/proc/self/fd/{fd}".encode()
    _check(_libc.mount(source, path.encode(), b"none", MS_BIND, None), f"bind-mount netns at {path}")


def unpersist(path: str) -> None:
    if _libc.umount2(path.encode(), MNT_DETACH) != 0 and ctypes.get_errno() not in (errno.EINVAL, errno.ENOENT):
        err = ctypes.get_errno()
        raise OSError(err, f"umount {path}: {os.strerror(err)}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
