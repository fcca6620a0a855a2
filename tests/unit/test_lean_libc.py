"""cni_hostdev/lean/libc.py against ctypes: the same return values and errnos, without importing ctypes."""

from __future__ import annotations

import ctypes
import errno
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from cni_hostdev.lean import libc
from tests.conftest import ROOT, frozen_like

CLONE_NEWNET = 0x40000000
reference = ctypes.CDLL(None, use_errno=True)


def outcome(function: Callable[..., int], errno_of: Callable[[], int], *args: Any) -> tuple[int, int]:
    ret = function(*args)
    return ret, errno_of() if ret != 0 else 0


def own_netns() -> int:
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@pytest.mark.parametrize(
    "name,args",
    [
        ("setns", (-1, CLONE_NEWNET)),
        ("setns", ("own", CLONE_NEWNET)),
        ("setns", ("own", 0x00020000)),  # a netns fd is not a mount namespace
        ("umount2", (b"/nonexistent-tlibc", 2)),
        ("mount", (b"/nonexistent-tlibc-a", b"/nonexistent-tlibc-b", b"none", 0x1000, None)),
    ],
)
def test_returns_and_errnos_as_ctypes(name: str, args: tuple[Any, ...]) -> None:
    fd = own_netns()
    try:
        given = tuple(fd if a == "own" else a for a in args)
        ours = outcome(getattr(libc, name), libc.get_errno, *given)
        theirs = outcome(getattr(reference, name), ctypes.get_errno, *given)
        assert ours == theirs
    finally:
        os.close(fd)


def test_check_raises_with_the_errno_left() -> None:
    with pytest.raises(OSError) as raised:
        libc.check(libc.setns(-1, CLONE_NEWNET), "setns")
    assert raised.value.errno == errno.EBADF and "setns" in str(raised.value)
    libc.check(0, "nothing failed")


def test_ctypes_itself_is_not_imported() -> None:
    code = (
        "import sys\nfrom cni_hostdev.lean import libc\nprint('ctypes' in sys.modules, libc._function.__qualname__)\n"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "_through_ctypes_core.<locals>.function"], out.stderr


def test_the_shipped_interpreter_calls_through_the_ctypes_core() -> None:
    """Loud, not quiet: the fallback would work, but cost every exec ctypes' Python layer."""
    code = "from cni_hostdev.lean import libc\nprint(libc.THROUGH, 'ctypes' in sys.modules)\n"
    out = subprocess.run(frozen_like(code), capture_output=True, text=True)
    assert out.stdout.split() == ["_ctypes", "False"], out.stderr


def test_without_what_it_uses_of_the_core_ctypes_answers_the_same() -> None:
    # ctypes keeps the names it took from `_ctypes` at import; our module then finds one missing.
    code = (
        "import ctypes, _ctypes, os, errno\n"
        "del _ctypes.dlopen\n"
        "from cni_hostdev.lean import libc\n"
        "fd = os.open('/proc/thread-self/ns/net', os.O_RDONLY)\n"
        "outcomes = [(libc.setns(-1, 0x40000000), libc.get_errno()), (libc.setns(fd, 0x40000000), 0),\n"
        "            (libc.umount2(b'/nonexistent-tlibc', 2), libc.get_errno())]\n"
        "print(libc.THROUGH, outcomes == [(-1, errno.EBADF), (0, 0), (-1, errno.ENOENT)])\n"
    )
    out = subprocess.run(frozen_like(code), capture_output=True, text=True)
    assert out.stdout.split() == ["ctypes", "True"], out.stderr
