"""Levelled messages on stderr, which runtimes put in their logs.

Not the `logging` package: with what it imports (traceback, textwrap, string ...)
it costs ~8 ms of every exec, for a plugin that writes a line or two to one
stream. The format is what `logging` printed here before: `host-device: LEVEL text`.
"""

from __future__ import annotations

import sys

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
LEVELS = {"debug": DEBUG, "info": INFO, "warning": WARNING, "error": ERROR}
_NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}
_threshold = WARNING


def set_level(level: int) -> None:
    global _threshold
    _threshold = level


def enabled(level: int) -> bool:
    return level >= _threshold


def emit(level: int, msg: object, args: tuple[object, ...]) -> None:
    if level < _threshold:
        return
    text = str(msg)
    if args:
        try:
            text = text % args
        except (TypeError, ValueError):
            text = f"{text} {args!r}"  # a bad format string must not cost the command
    try:
        sys.stderr.write(f"host-device: {_NAMES.get(level, level)} {text}\n")
    except (OSError, ValueError):
        pass  # a closed stderr must not turn a success into a failure


class Logger:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def debug(self, msg: object, *args: object, **_: object) -> None:
        emit(DEBUG, msg, args)

    def info(self, msg: object, *args: object, **_: object) -> None:
        emit(INFO, msg, args)

    def warning(self, msg: object, *args: object, **_: object) -> None:
        emit(WARNING, msg, args)

    def error(self, msg: object, *args: object, **_: object) -> None:
        emit(ERROR, msg, args)

    def isEnabledFor(self, level: int) -> bool:
        return enabled(level)


def get_logger(name: str) -> Logger:
    return Logger(name)
