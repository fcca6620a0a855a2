"""cni_hostdev/lean/contextlib.py's contextmanager against contextlib's: for every way a generator and the
block inside `with` can end, the same value entered, the same exception out, the same cleanup."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cni_hostdev.lean import contextlib as lean_contextlib


def plain(log: list[str]) -> Iterator[str]:
    log.append("enter")
    yield "value"
    log.append("leave")


def with_finally(log: list[str]) -> Iterator[str]:
    try:
        yield "value"
    finally:
        log.append("cleaned")


def swallowing(log: list[str]) -> Iterator[str]:
    try:
        yield "value"
    except ValueError:
        log.append("swallowed")


def translating(log: list[str]) -> Iterator[str]:
    try:
        yield "value"
    except ValueError as err:
        raise KeyError("translated") from err


def never_yielding(log: list[str]) -> Iterator[str]:
    log.append("no yield")
    return
    yield "value"


def yielding_twice(log: list[str]) -> Iterator[str]:
    yield "one"
    yield "two"


def failing_on_leave(log: list[str]) -> Iterator[str]:
    yield "value"
    raise OSError("cleanup failed")


GENERATORS = [plain, with_finally, swallowing, translating, never_yielding, yielding_twice, failing_on_leave]


def quietly(entered: Any) -> str:
    return f"body saw {entered}"


def raising(error: BaseException) -> Callable[[Any], str]:
    def body(entered: Any) -> str:
        raise error

    return body


BODIES = {
    "returns": quietly,
    "ValueError": raising(ValueError("in block")),
    "RuntimeError": raising(RuntimeError("in block")),
    "StopIteration": raising(StopIteration("in block")),
    "KeyboardInterrupt": raising(KeyboardInterrupt()),
}


def run(decorator: Callable[..., Any], generator: Callable[[list[str]], Iterator[str]], body: str) -> tuple[Any, ...]:
    log: list[str] = []
    result = "the block did not finish"  # an exception swallowed on the way out
    try:
        with decorator(generator)(log) as entered:
            result = BODIES[body](entered)
    except BaseException as err:
        return ("raised", type(err).__name__, str(err), tuple(log))
    return ("returned", result, tuple(log))


@pytest.mark.parametrize("generator", GENERATORS, ids=lambda g: g.__name__)
@pytest.mark.parametrize("body", BODIES)
def test_behaves_as_contextlib(generator: Callable[[list[str]], Iterator[str]], body: str) -> None:
    assert run(lean_contextlib.contextmanager, generator, body) == run(contextlib.contextmanager, generator, body)


def test_keeps_the_function_s_name_and_doc() -> None:
    def documented(log: list[str]) -> Iterator[str]:
        """Says what it does."""
        yield "value"

    wrapped = lean_contextlib.contextmanager(documented)
    assert (wrapped.__name__, wrapped.__doc__) == ("documented", "Says what it does.")
