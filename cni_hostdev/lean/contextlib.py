"""`contextmanager`: a generator as a `with` block, as `contextlib.contextmanager` makes one.

`contextlib` imports `collections` and `functools`, about 2 ms of every exec for the one
decorator the plugin uses from it. This is that decorator's behaviour for synchronous
generators: the code before `yield` enters, the code after it leaves, and an exception in
the block is raised at the `yield` (tests/unit/test_lean_contextlib.py holds it to contextlib's).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator
    from contextlib import AbstractContextManager as _Typed
    from types import TracebackType
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    T = TypeVar("T")


class _Scope:
    __slots__ = ("_generator",)

    def __init__(self, generator: Generator[object, None, None]) -> None:
        self._generator = generator

    def __enter__(self) -> object:
        try:
            return next(self._generator)
        except StopIteration:
            raise RuntimeError("generator didn't yield") from None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> bool:
        if kind is None:
            try:
                next(self._generator)
            except StopIteration:
                return False
            raise RuntimeError("generator didn't stop")
        if error is None:
            error = kind()
        try:
            self._generator.throw(error)
        except StopIteration as stopped:
            return stopped is not error  # the generator swallowed the error (or finished on it)
        except RuntimeError as raised:
            if raised is error or (isinstance(error, StopIteration) and raised.__cause__ is error):
                error.__traceback__ = traceback
                return False
            raise
        except BaseException as raised:
            if raised is not error:
                raise
            raised.__traceback__ = traceback
            return False
        raise RuntimeError("generator didn't stop after throw()")


def contextmanager(function: Callable[P, Iterator[T]]) -> Callable[P, _Typed[T]]:
    """Like `contextlib.contextmanager` (whose typing it borrows: the function is a generator)."""

    def scope(*args: P.args, **kwargs: P.kwargs) -> _Typed[T]:
        return _Scope(function(*args, **kwargs))  # type: ignore[arg-type,return-value]

    scope.__name__ = function.__name__
    scope.__qualname__ = function.__qualname__
    scope.__doc__ = function.__doc__
    return scope
