"""JSON in and out through the interpreter's own C codec (`_json`), without the `json` package.

`import json` imports `re`, which imports `enum`, `functools` and `collections`: about a quarter
of what a CNI call used to load, for a call that only parses one config and prints one answer.
The `json` package itself drives this same C scanner and encoder; this module drives them
directly, with the package's defaults. Whatever the fast path cannot answer (bad input, a type
JSON cannot hold, an interpreter without `_json`) goes to the `json` package, so results and
errors are exactly `json.loads`'s and `json.dumps`'s (tests/unit/test_lean_json.py compares them).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Scanner = Callable[[str, int], tuple[Any, int]]
    Quote = Callable[[str], str]
    EncoderMaker = Callable[..., Callable[[Any, int], Any]]

_WHITESPACE = " \t\n\r"  # what JSON allows between tokens; str.isspace() allows more
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _DecoderSettings:
    """What the C scanner reads from a `json.JSONDecoder`: the package's defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def _not_serializable(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _fast_path() -> tuple[Scanner, Quote, EncoderMaker] | None:
    """`_json`'s scanner, quoting and encoder maker, if this interpreter's `_json` still takes what
    we give it and writes what `json` writes; else None, and the `json` package answers everything
    (slower, never different). tests/unit/test_lean_json.py fails if the shipped interpreter falls
    back, and runs the fallback on purpose."""
    try:
        from _json import encode_basestring_ascii, make_encoder, make_scanner

        scan: Scanner = make_scanner(_DecoderSettings())  # type: ignore[arg-type]
        sample = {"a": [1, 2.5, None, True, "\u00e9"]}
        encoder = make_encoder({}, _not_serializable, encode_basestring_ascii, None, ": ", ", ", False, False, True)
        text = "".join(encoder(sample, 0))
        if text != '{"a": [1, 2.5, null, true, "\\u00e9"]}' or scan(text, 0) != (sample, len(text)):
            return None
    except Exception:  # ImportError, or a signature that changed: the public package will do
        return None
    return scan, encode_basestring_ascii, make_encoder


_fast = _fast_path()
FAST = _fast is not None  # which path this interpreter takes


def loads(text: str | bytes) -> Any:
    """`json.loads(text)`: the value, or the same exception."""
    if isinstance(text, bytes):
        # json.loads guesses UTF-16/32 from NULs and BOMs; plain UTF-8 is what the fast path takes.
        if text[:3] == b"\xef\xbb\xbf" or b"\0" in text[:4]:
            return _slow_loads(text)
        try:
            text = text.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return _slow_loads(text)
    if _fast is None or text[:1] == "\ufeff":
        return _slow_loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _fast[0](text, start)
    except Exception:  # StopIteration, a decoding error: the package says it in its own words
        return _slow_loads(text)
    if len(text.rstrip(_WHITESPACE)) != end:
        return _slow_loads(text)  # "Extra data"
    return value


def dumps(value: Any, *, sort_keys: bool = False) -> str:
    """`json.dumps(value, sort_keys=sort_keys)`."""
    if _fast is None:
        return _slow_dumps(value, sort_keys)
    _, quote, make_encoder = _fast
    if isinstance(value, str):
        return str(quote(value))
    try:
        # As json.JSONEncoder makes it for json.dumps: a fresh dict of the containers being
        # encoded (to catch cycles), no indent, the default separators, NaN allowed.
        encoder = make_encoder({}, _not_serializable, quote, None, ": ", ", ", sort_keys, False, True)
        return "".join(encoder(value, 0))
    except (TypeError, ValueError, RecursionError):
        return _slow_dumps(value, sort_keys)


def dumps_lines(value: dict[str, Any]) -> str:
    """An object one sorted key per line, its values compact: a record an operator can read and diff."""
    fields = ",\n".join(f" {dumps(key)}: {dumps(value[key], sort_keys=True)}" for key in sorted(value))
    return "{\n" + fields + "\n}" if fields else "{}"


def _slow_loads(text: str | bytes) -> Any:
    import json

    return json.loads(text)


def _slow_dumps(value: Any, sort_keys: bool) -> str:
    import json

    return json.dumps(value, sort_keys=sort_keys)
