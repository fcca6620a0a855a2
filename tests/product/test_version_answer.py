"""VERSION as libcni's skel answers it: our current version and every version we speak, the same
bytes whatever stdin holds. The launcher (packaging/launcher.c) answers it before Python starts,
and its answer is the plugin's own (cni_hostdev/versions.py), byte for byte. Which of the two
answered shows in the phase marks: only the plugin writes them (cni_hostdev/diagnostics.py).

That libcni (its validation of a 0.3.1, 0.4.0 or 1.0.0 list) and podman accept the answer is
conformance/'s to show, with the real clients.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cni_hostdev.plugin.dispatch import answer_version
from cni_hostdev.versions import LATEST, SUPPORTED_VERSIONS
from tests.conftest import BINARY, ROOT

ANSWER = (json.dumps({"cniVersion": LATEST, "supportedVersions": list(SUPPORTED_VERSIONS)}) + "\n").encode()


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


INPUTS = [
    *(json.dumps({"cniVersion": v}).encode() for v in SUPPORTED_VERSIONS),
    b'{"cniVersion":"9.9.9"}',
    b'{"cniVersion":"1.0.0","logLevel":"debug"}',
    b"{}",
    b"",
    b"not json",
    b'{"a":' * 100_000,
    b"\xff\xfe",
    b'{"cniVersion":"1.0.0","pad":"' + b"x" * 300_000 + b'"}',
]


def test_the_plugin_answers_as_skel_does() -> None:
    answer, status = answer_version()
    assert status == 0 and (json.dumps(answer) + "\n").encode() == ANSWER


@pytest.mark.parametrize("stdin", INPUTS, ids=lambda s: repr(s[:40]))
def test_the_launcher_gives_the_plugins_answer_whatever_stdin_holds(binary: Path, tmp_path: Path, stdin: bytes) -> None:
    out, status, plugin_ran = _frozen(binary, stdin, tmp_path / "marks")
    assert (out, status) == (ANSWER, 0)
    assert not plugin_ran, "the launcher answers VERSION itself"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=64))
def test_random_bytes_get_the_same_answer(binary: Path, tmp_path: Path, data: bytes) -> None:
    assert _frozen(binary, data, tmp_path / "marks")[:2] == (ANSWER, 0)


def test_the_source_tree_answers_the_same_bytes() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "cni_hostdev"],
        input=b'{"cniVersion":"0.3.1"}',
        capture_output=True,
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "CNI_COMMAND": "VERSION"},
        timeout=60,
    )
    assert (proc.stdout, proc.returncode) == (ANSWER, 0)


def test_a_launcher_error_is_a_json_error_object_whatever_the_path(binary: Path, tmp_path: Path) -> None:
    """die() escapes what it names: a path with quotes, a backslash and a newline stays valid JSON."""
    odd = tmp_path / 'a "quoted"\\dir\nname'
    odd.mkdir()
    copy = odd / "host-device"
    copy.write_bytes(binary.read_bytes()[:-64] + bytes(64))  # its trailer gone: "no payload in"
    copy.chmod(0o755)
    proc = subprocess.run([str(copy)], input=b"{}", capture_output=True, env={"CNI_COMMAND": "ADD"}, timeout=60)
    error = json.loads(proc.stdout)
    assert proc.returncode == 1 and error["code"] == 999 and error["cniVersion"] == LATEST
    assert str(copy) in error["msg"] and "no payload" in error["msg"]
