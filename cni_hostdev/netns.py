"""Network namespaces: open and verify them, enter them, make private throwaway ones, and
hold them as `Namespace` handles (an fd to name it as a move target, a netlink socket in it).

Namespaces are switched per thread with setns(2); the plugin is single-threaded
and always switches back, so a netlink socket created inside `entered()` stays
bound to that namespace after we leave it.
"""

from __future__ import annotations

import errno
import fcntl
import os

from cni_hostdev.errors import INVALID_ENV, CniError
from cni_hostdev.lean import libc
from cni_hostdev.lean.contextlib import contextmanager
from cni_hostdev.netlink import Rtnl

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
NS_GET_NSTYPE = 0xB703  # _IO(0xb7, 0x3)
_SELF_NETNS = "/proc/thread-self/ns/net"


class NotANetns(Exception):
    pass


def _setns(fd: int) -> None:
    libc.check(libc.setns(fd, CLONE_NEWNET), "setns")


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
        _setns(fd)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def new_private() -> int:
    """A fresh, unnamed netns: it dies with its last fd, so a crash leaves nothing mounted."""
    home = open_current()
    try:
        libc.check(libc.unshare(CLONE_NEWNET), "unshare")
        try:
            return open_current()
        finally:
            _setns(home)
    finally:
        os.close(home)


MS_BIND = 0x1000
MNT_DETACH = 0x2


def persist(fd: int, path: str) -> None:
    """Bind-mount a netns at `path` so it outlives this process (a crash must not destroy what is in it)."""
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    source = f"/proc/self/fd/{fd}".encode()
    libc.check(libc.mount(source, path.encode(), b"none", MS_BIND, None), f"bind-mount netns at {path}")


def unpersist(path: str) -> None:
    if libc.umount2(path.encode(), MNT_DETACH) != 0 and libc.get_errno() not in (errno.EINVAL, errno.ENOENT):
        err = libc.get_errno()
        raise OSError(err, f"umount {path}: {os.strerror(err)}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class Namespace:
    """A netns we can both name by fd (as a move target) and talk to."""

    __slots__ = ("fd", "rtnl")

    def __init__(self, fd: int, rtnl: Rtnl) -> None:
        self.fd = fd
        self.rtnl = rtnl

    @classmethod
    def open(cls, fd: int) -> Namespace:
        """A handle on the netns of `fd`, which is the handle's from now on (closed here if the
        handle cannot be made)."""
        try:
            with entered(fd):
                return cls(fd, Rtnl())
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def current(cls) -> Namespace:
        """Our own netns: no setns needed (which would need CAP_SYS_ADMIN for nothing)."""
        return cls(open_current(), Rtnl())

    def close(self) -> None:
        self.rtnl.close()
        os.close(self.fd)


@contextmanager
def host() -> Iterator[Namespace]:
    """The namespace this call runs in: the node's."""
    space = Namespace.current()
    try:
        yield space
    finally:
        space.close()


def open_pod(path: str, *, required: bool) -> Namespace | None:
    """The namespace at CNI_NETNS `path`; None when it is gone and not `required`."""
    try:
        fd = open_netns(path)
    except NotANetns:
        raise CniError(INVALID_ENV, f"CNI_NETNS {path} is not a network namespace") from None
    except FileNotFoundError:
        if required:
            raise CniError(INVALID_ENV, f"CNI_NETNS {path} does not exist") from None
        return None
    except OSError as err:
        raise CniError(INVALID_ENV, f"CNI_NETNS {path} cannot be opened: {err.strerror}") from None
    return Namespace.open(fd)


@contextmanager
def pod(path: str, *, required: bool) -> Iterator[Namespace | None]:
    space = open_pod(path, required=required) if path else None
    try:
        yield space
    finally:
        if space is not None:
            space.close()
