"""VERSION answered by the launcher (packaging/version.c) is the plugin's own answer, byte for byte.

The launcher answers only input it is sure about and hands everything else to the plugin,
with stdin intact; both halves are checked here against the frozen binary. Which of the two
answered shows in the phase marks: only the plugin writes them (cni_hostdev/phases.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cni_hostdev import logs
from cni_hostdev.plugin.dispatch import answer_version as _version_answer
from cni_hostdev.versions import LATEST, SUPPORTED_VERSIONS
from tests.conftest import BINARY


@pytest.fixture(scope="module")
def binary() -> Path:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    return BINARY


def _frozen(binary: Path, stdin: bytes, marks: Path) -> tuple[bytes, int, bool]:
    """(stdout, exit status, whether the Python plugin ran) of one VERSION of the frozen binary."""
    marks.unlink(missing_ok=True)
    proc = subprocess.run(
        [str(binary)],
        input=stdin,
        capture_output=True,
        env={"PATH": os.environ["PATH"], "CNI_COMMAND": "VERSION", "CNI_HOSTDEV_PROFILE": str(marks)},
        timeout=60,
    )
    return proc.stdout, proc.returncode, marks.exists()


def _expected(stdin: bytes) -> bytes:
    answer, _ = _version_answer(stdin)
    logs.set_level(logs.WARNING)  # a logLevel in stdin set it for this process
    return (json.dumps(answer) + "\n").encode()


ANSWERED_BY_THE_LAUNCHER = [
    *(json.dumps({"cniVersion": v}).encode() for v in SUPPORTED_VERSIONS),
    b'{"cniVersion":"9.9.9"}',
    b'{"cniVersion":"1.0"}',
    b'{"cniVersion":1}',
    b'{"cniVersion":null}',
    b'{"cniVersion":["1.0.0"]}',
    b'{"cniVersion":{"v":"1.0.0"}}',
    b'{"cniVersion":"1.0.0","cniVersion":"0.4.0"}',
    b'{"cniVersion":"0.4.0","cniVersion":7}',
    b"{}",
    b"",
    b" \t\n\r\x0b\x0c",
    b' {\n "cniVersion" : "0.3.1" ,\n "name" : "x" \n} \n',
    b'{"name":"a\\u00e9\\n\\"q\\"","cniVersion":"0.2.0","n":[1,-2.5e+3,0,true,false,null,{"a":[]}]}',
    json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "uplink2",
            "plugins": [{"type": "host-device", "device": "enp3s0f1", "ipam": {"type": "static"}}],
        },
        indent=2,
    ).encode(),
]

HANDED_TO_THE_PLUGIN = [
    b'{"cniVersion":"1.0.0","logLevel":"info"}',
    b'{"cni\\u0056ersion":"0.4.0"}',
    b'{"cniVersion":"0.4\\u002e0"}',
    b'{"cniVersion":"1.0.0"',
    b'{"cniVersion":"1.0.0"} trailing',
    b'{"cniVersion":"1.0.0",}',
    b"[1,2,3]",
    b'"1.0.0"',
    b"42",
    b"null",
    b'{"a":NaN,"cniVersion":"0.4.0"}',
    b'{"a":-Infinity}',
    b'{"a":01}',
    b'{"a":"\x01"}',
    b"\xef\xbb\xbf" + b'{"cniVersion":"0.4.0"}',
    '{"cniVersion":"0.4.0"}'.encode("utf-16"),
    b'{"name":"\xc3\xa9","cniVersion":"0.4.0"}',
    b'{"name":"\xff","cniVersion":"0.4.0"}',
    b'{"cniVersion":"0.4.0","x":"\x00"}',
    b'{"a":' * 100 + b"1" + b"}" * 100,
    b'{"n":' + b"1" * 5000 + b',"cniVersion":"0.4.0"}',
    b"\x0b{}",
    b"not json",
]


@pytest.mark.parametrize("stdin", ANSWERED_BY_THE_LAUNCHER, ids=repr)
def test_the_launcher_answers_what_the_plugin_would(binary: Path, tmp_path: Path, stdin: bytes) -> None:
    out, status, plugin_ran = _frozen(binary, stdin, tmp_path / "marks")
    assert (out, status) == (_expected(stdin), 0)
    assert not plugin_ran, "the launcher should have answered this itself"


@pytest.mark.parametrize("stdin", HANDED_TO_THE_PLUGIN, ids=repr)
def test_input_the_launcher_is_unsure_of_reaches_the_plugin_intact(binary: Path, tmp_path: Path, stdin: bytes) -> None:
    out, status, plugin_ran = _frozen(binary, stdin, tmp_path / "marks")
    assert plugin_ran, "the plugin should have answered this"
    assert (out, status) == (_expected(stdin), 0)


def test_a_large_config_is_handed_over_whole(binary: Path, tmp_path: Path) -> None:
    """Past one read and past a pipe's default size; the requested version proves the plugin saw it all."""
    stdin = json.dumps({"logLevel": "error", "pad": "x" * 300_000, "cniVersion": "0.3.1"}).encode()
    out, status, plugin_ran = _frozen(binary, stdin, tmp_path / "marks")
    assert plugin_ran and status == 0
    assert json.loads(out)["cniVersion"] == "0.3.1"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
versions = st.sampled_from([*SUPPORTED_VERSIONS, "2.0.0", "", "1.0.0 "]) | json_values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
    version=versions,
    spacing=st.sampled_from([None, 1, "\t"]),
    ascii_only=st.booleans(),
)
def test_random_configs_get_the_plugins_answer(
    binary: Path, tmp_path: Path, body: dict[str, object], version: object, spacing: int | str | None, ascii_only: bool
) -> None:
    stdin = json.dumps({**body, "cniVersion": version}, indent=spacing, ensure_ascii=ascii_only).encode()
    out, status, _ = _frozen(binary, stdin, tmp_path / "marks")
    assert (out, status) == (_expected(stdin), 0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=64))
def test_random_bytes_get_the_plugins_answer(binary: Path, tmp_path: Path, data: bytes) -> None:
    for stdin in (data, b'{"cniVersion":"0.4.0",' + data):
        out, status, _ = _frozen(binary, stdin, tmp_path / "marks")
        assert (out, status) == (_expected(stdin), 0)


def test_the_answer_lists_every_version_the_plugin_speaks(binary: Path, tmp_path: Path) -> None:
    out, _, _ = _frozen(binary, b"{}", tmp_path / "marks")
    assert json.loads(out) == {"cniVersion": LATEST, "supportedVersions": list(SUPPORTED_VERSIONS)}
