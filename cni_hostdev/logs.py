"""Levelled messages: on stderr, which runtimes put in their logs, and in the config's `logFile`.

Not the `logging` package: with what it imports (traceback, textwrap, string ...) it costs
~8 ms of every exec, for a plugin that writes a line or two. On stderr the format is what
`logging` printed here before, `host-device: LEVEL text`, and only warnings and errors unless the
config's `logLevel` asks for more: runtimes may show a plugin's stderr to users. The log file
(cni_hostdev/logfile.py) gets info and above unless `logLevel` says otherwise, and every line
there names the node, the network, the container, the interface and the device (`context`).
"""

from __future__ import annotations

import os
import sys

DEBUG = 10
INFO = 20
WARNING = 30
ERROR = 40
# As sriov-cni and Multus spell them (verbose: Multus; panic: both, for their worst).
LEVELS = {
    "debug": DEBUG,
    "verbose": INFO,
    "info": INFO,
    "warning": WARNING,
    "warn": WARNING,
    "error": ERROR,
    "panic": ERROR,
}
NAMES = {DEBUG: "DEBUG", INFO: "INFO", WARNING: "WARNING", ERROR: "ERROR"}
_threshold = WARNING


class Sink:
    """Where lines go besides stderr (cni_hostdev/logfile.py's LogFile), from `level` up."""

    level = INFO

    def write(self, level: int, text: str) -> None:
        raise NotImplementedError


_file: Sink | None = None
# What every line of the log file says about the call: node, command, network, container, ifname, device.
_context: dict[str, str] = {"node": os.uname().nodename}


def set_level(level: int) -> None:
    global _threshold
    _threshold = level


def enabled(level: int) -> bool:
    return level >= _threshold or (_file is not None and level >= _file.level)


def to_file(log_file: Sink | None) -> None:
    global _file
    _file = log_file


def context(**fields: str | None) -> None:
    """Add to (or, with None, drop from) what every line of the log file names: each value one
    key=value word, whatever the caller sent."""
    for key, value in fields.items():
        if value:
            _context[key] = "".join(c if c.isprintable() and not c.isspace() else "_" for c in value[:100])
        else:
            _context.pop(key, None)


def context_fields() -> str:
    return " ".join(f"{key}={value}" for key, value in _context.items())


def emit(level: int, msg: object, args: tuple[object, ...], *, file_only: bool = False) -> None:
    to_stderr = level >= _threshold and not file_only
    to_log_file = _file is not None and level >= _file.level
    if not (to_stderr or to_log_file):
        return
    text = str(msg)
    if args:
        try:
            text = text % args
        except (TypeError, ValueError):
            text = f"{text} {args!r}"  # a bad format string must not cost the command
    if to_stderr:
        write_stderr(f"host-device: {NAMES.get(level, level)} {text}\n")
    if to_log_file and _file is not None:
        _file.write(level, text)


def write_stderr(line: str) -> None:
    try:
        sys.stderr.write(line)
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
