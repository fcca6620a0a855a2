"""The libc calls Python 3.11's `os` lacks (setns, unshare, mount, umount2), through `_ctypes`.

`ctypes` is a Python layer over its C core `_ctypes`: importing it defines some forty C types
and a library loader, about 1.6 ms of every exec, for four functions that take ints and strings
and return an int. This module declares exactly that, as `ctypes.CDLL(None, use_errno=True)`
would (`c_int` is itself a bare `_SimpleCData` with type code "i"), and falls back to `ctypes`
should `_ctypes` ever lack what it uses (`THROUGH` says which). tests/unit/test_lean_libc.py compares
both, fails when the shipped interpreter takes the fallback, and takes it on purpose.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    LibcFunction = Callable[..., int]


def _through_ctypes_core() -> Callable[[str], LibcFunction]:
    import _ctypes

    class CInt(_ctypes._SimpleCData):  # type: ignore[type-arg]
        _type_ = "i"

    class Function(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = CInt

    class Library:
        """What CFuncPtr asks of a library: its dlopen handle (the program itself, with its libc)."""

        _handle = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)  # type: ignore[arg-type]

    library = Library()

    def function(name: str) -> LibcFunction:
        made: LibcFunction = Function((name, library))  # type: ignore[arg-type]
        return made

    return function


def _through_ctypes() -> Callable[[str], LibcFunction]:
    import ctypes

    library = ctypes.CDLL(None, use_errno=True)

    def function(name: str) -> LibcFunction:
        made: LibcFunction = getattr(library, name)
        return made

    return function


def _errno_through_core() -> int:
    import _ctypes

    value: int = _ctypes.get_errno()
    return value


try:
    _function = _through_ctypes_core()
    get_errno = _errno_through_core
    THROUGH = "_ctypes"
except (ImportError, AttributeError, TypeError):  # `_ctypes` changed: ctypes itself (tested)
    import ctypes as _ctypes_module

    _function = _through_ctypes()
    get_errno = _ctypes_module.get_errno
    THROUGH = "ctypes"

setns = _function("setns")
unshare = _function("unshare")
mount = _function("mount")
umount2 = _function("umount2")


def check(ret: int, what: str) -> None:
    """Raise OSError for a call that returned non-zero, with the errno it left."""
    if ret != 0:
        err = get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
