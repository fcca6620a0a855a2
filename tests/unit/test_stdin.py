"""stdin is decoded once per call: the config, and the version every answer of the call is printed
in, come from one decode (cni_hostdev/config.py decode_stdin). Input that is not a UTF-8 config is
looked at once more, only to name the version its error answers in: its answer is what it was."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import frozen_like

CONFIG = {"cniVersion": "0.4.0", "name": "tnet", "type": "host-device", "device": "tnone0"}
COUNT_DECODES = """
import json, os, sys
from cni_hostdev.lean import json as lean_json
from cni_hostdev import config
calls = []
real = lean_json.loads
def counting(text):
    calls.append(type(text).__name__)
    return real(text)
config.loads = counting
from cni_hostdev.plugin import dispatch
env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_NETNS": "/run/netns/tnone", "CNI_IFNAME": "net1",
       "CNI_PATH": "/usr/lib/cni"}
answer, status = dispatch.run(env, sys.stdin.buffer.read())
print(json.dumps({"answer": answer, "status": status, "decodes": calls}))
"""


def run(stdin: bytes) -> dict[str, object]:
    out = subprocess.run(frozen_like(COUNT_DECODES), input=stdin, capture_output=True)
    assert out.returncode == 0, out.stderr.decode()
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_a_config_is_decoded_once() -> None:
    seen = run(json.dumps(CONFIG).encode())
    assert seen["decodes"] == ["str"], "one decode of the UTF-8 text"
    answer = seen["answer"]
    assert isinstance(answer, dict) and answer["cniVersion"] == "0.4.0" and answer["code"] != 6


@pytest.mark.parametrize(
    ("encoding", "msg"),
    [
        ("utf-16", "network config on stdin is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
         "invalid start byte"),
        ("utf-16-le", "network config on stdin is not valid JSON: Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)"),
        ("utf-8-sig", "network config on stdin is not valid JSON: Unexpected UTF-8 BOM (decode using utf-8-sig): "
         "line 1 column 1 (char 0)"),
    ],
)  # fmt: skip
def test_stdin_that_is_no_utf_8_config_keeps_its_answer(encoding: str, msg: str) -> None:
    """As before stdin was decoded once: code 6, in the version the config asks for, the same words."""
    seen = run(json.dumps(CONFIG).encode(encoding))
    assert seen["status"] == 1
    assert seen["answer"] == {"cniVersion": "0.4.0", "code": 6, "msg": msg}
    decodes = seen["decodes"]
    assert isinstance(decodes, list) and decodes[-1] == "bytes" and len(decodes) <= 2, "once more, to name the version"
