"""cni_hostdev/lean_json.py against the json package: the same text out, the same values and the same
errors in, without importing json (or re) for anything the plugin reads and writes every call."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cni_hostdev.lean import json as lean_json
from tests.conftest import ROOT, frozen_like

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20
)


def outcome(function: Any, argument: Any) -> tuple[str, str]:
    """What a call gives, NaN-safe: its value as json writes it, or its exception."""
    try:
        return "value", json.dumps(function(argument), sort_keys=True)
    except Exception as err:  # the exception itself is the outcome compared
        return type(err).__name__, str(err)


@settings(max_examples=300)
@given(values, st.booleans())
def test_dumps_writes_what_json_writes(value: Any, sort_keys: bool) -> None:
    assert lean_json.dumps(value, sort_keys=sort_keys) == json.dumps(value, sort_keys=sort_keys)


@settings(max_examples=300)
@given(values)
def test_loads_reads_what_json_reads(value: Any) -> None:
    text = json.dumps(value)
    for given_text in (text, text.encode(), f" \n\t{text}\r\n "):
        assert outcome(lean_json.loads, given_text) == outcome(json.loads, given_text)


@settings(max_examples=500)
@given(st.text(alphabet='{}[]",:0123456789.eE+-truefalsnul \t\n\\u\ufeff', max_size=30) | st.binary(max_size=30))
def test_bad_input_fails_as_json_fails(text: str | bytes) -> None:
    assert outcome(lean_json.loads, text) == outcome(json.loads, text)


@pytest.mark.parametrize(
    "text",
    ["", "  ", "{", "[1] x", "NaN", "-Infinity", "\ufeff{}", b"\xef\xbb\xbf{}", b"\xff", "[" * 100_000, '"\\ud800"'],
)
def test_edge_cases_fail_or_pass_as_json_does(text: str | bytes) -> None:
    assert outcome(lean_json.loads, text) == outcome(json.loads, text)


def test_what_json_cannot_hold_is_refused_as_json_refuses_it() -> None:
    for value in ({"a": object()}, {1, 2}, b"bytes"):
        assert outcome(lean_json.dumps, value) == outcome(json.dumps, value)
    looped: list[Any] = []
    looped.append(looped)
    assert outcome(lean_json.dumps, looped) == outcome(json.dumps, looped)
    assert lean_json.dumps({"n": [float("nan"), math.inf]}) == json.dumps({"n": [float("nan"), math.inf]})


def test_a_record_is_one_sorted_key_per_line() -> None:
    record = {"b": {"z": 1, "a": [1, "x"]}, "a": None}
    text = lean_json.dumps_lines(record)
    assert json.loads(text) == record
    assert text.splitlines() == ["{", ' "a": null,', ' "b": {"a": [1, "x"], "z": 1}', "}"]
    assert lean_json.dumps_lines({}) == "{}"


def test_the_plugin_s_reads_and_writes_load_neither_json_nor_re() -> None:
    code = (
        "import sys\n"
        "from cni_hostdev.lean import json as lean_json\n"
        'lean_json.dumps(lean_json.loads(b\'{"cniVersion": "1.1.0", "x": [1, 2.5, null, true]}\'))\n'
        "lean_json.dumps_lines({'a': 'b'})\n"
        "print('json' in sys.modules, 're' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr


FALLBACK_SAMPLE = """
import json as public
values = [{"cniVersion": "1.1.0", "x": [1, 2.5, None, True, "\\u00e9"]}, "text", [float("nan")], {"b": 1, "a": 2}]
same = all(lean_json.dumps(v, sort_keys=s) == public.dumps(v, sort_keys=s) for v in values for s in (False, True))
same = same and all(lean_json.loads(public.dumps(v)) == public.loads(public.dumps(v)) for v in values[:2])
try:
    lean_json.loads("[1] x")
except public.JSONDecodeError as err:
    same = same and str(err) == "Extra data: line 1 column 5 (char 4)"
print(lean_json.FAST, same)
"""


def test_the_shipped_interpreter_takes_the_fast_path() -> None:
    """Loud, not quiet: an interpreter whose `_json` changed would still be right, but slower."""
    out = subprocess.run(
        frozen_like("from cni_hostdev.lean import json as lean_json\n" + FALLBACK_SAMPLE),
        capture_output=True,
        text=True,
    )
    assert out.stdout.split() == ["True", "True"], out.stderr


@pytest.mark.parametrize(
    "breakage",
    [
        "sys.modules['_json'] = None",  # no _json at all (json then runs its pure-Python code)
        # json took what it uses of _json when it was imported: only ours sees these changes.
        "import json, _json\n_json.make_encoder = lambda *args: 1 / 0",  # its private signature changed
        "import json, _json\n_json.encode_basestring_ascii = repr",  # it writes something else
    ],
)
def test_without_a_usable_json_core_the_json_package_answers_the_same(breakage: str) -> None:
    code = f"{breakage}\nfrom cni_hostdev.lean import json as lean_json\n{FALLBACK_SAMPLE}"
    out = subprocess.run(frozen_like(code), capture_output=True, text=True)
    assert out.stdout.split() == ["False", "True"], out.stderr
