"""Bad input: the right CNI error code, a message naming the culprit, no traceback, nothing moved."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Plugin, Sandbox, conf_for, link_json, link_names, pod_env

# (case id, stdin or a function of the device name, env overrides, expected code, text the message must name)
CASES: list[tuple[str, Any, dict[str, str], int, str]] = [
    ("garbage stdin", b"\xff\xfe{not json", {}, 6, "JSON"),
    ("stdin is a list", b"[1, 2]", {}, 6, "object"),
    ("unknown version", {"cniVersion": "9.9.9"}, {}, 1, "9.9.9"),
    ("version not a version", {"cniVersion": "banana"}, {}, 1, "banana"),
    ("version not a string", {"cniVersion": 1.0}, {}, 7, "cniVersion"),
    ("missing name", {"name": None}, {}, 7, "name"),
    ("name with slash", {"name": "../etc"}, {}, 7, "../etc"),
    ("no selector", {"device": None}, {}, 7, "device"),
    ("device not a string", {"device": 42}, {}, 7, "device"),
    ("device too long", {"device": "a" * 16}, {}, 7, "a" * 16),
    ("hwaddr malformed", {"hwaddr": "zz:00"}, {}, 7, "zz:00"),
    ("kernelpath outside /sys/devices", {"kernelpath": "/etc/passwd"}, {}, 7, "/etc/passwd"),
    ("kernelpath escaping", {"kernelpath": "/sys/devices/../../etc"}, {}, 7, "/sys/devices/../../etc"),
    ("pciBusID malformed", {"pciBusID": "00:zz.9"}, {}, 7, "00:zz.9"),
    ("deviceID malformed", {"runtimeConfig": {"deviceID": "../x"}}, {}, 7, "../x"),
    ("unknown moveStrategy", {"moveStrategy": "teleport"}, {}, 7, "teleport"),
    ("relative dataDir", {"dataDir": "state"}, {}, 7, "state"),
    ("ipam type with path", {"ipam": {"type": "../../bin/sh"}}, {}, 7, "../../bin/sh"),
    ("no such device", {"device": "tnosuchdev0"}, {}, 100, "tnosuchdev0"),
    ("no such PCI device", {"device": None, "pciBusID": "0000:7f:1f.7"}, {}, 100, "0000:7f:1f.7"),
    ("missing CNI_COMMAND", {}, {"CNI_COMMAND": ""}, 4, "CNI_COMMAND"),
    ("unknown CNI_COMMAND", {}, {"CNI_COMMAND": "FROB"}, 4, "FROB"),
    ("missing CNI_CONTAINERID", {}, {"CNI_CONTAINERID": ""}, 4, "CNI_CONTAINERID"),
    ("hostile CNI_CONTAINERID", {}, {"CNI_CONTAINERID": "../../x"}, 4, "../../x"),
    ("missing CNI_IFNAME", {}, {"CNI_IFNAME": ""}, 4, "CNI_IFNAME"),
    ("CNI_IFNAME too long", {}, {"CNI_IFNAME": "x" * 16}, 4, "x" * 16),
    ("CNI_IFNAME with slash", {}, {"CNI_IFNAME": "a/b"}, 4, "a/b"),
    ("CNI_IFNAME with colon", {}, {"CNI_IFNAME": "a:b"}, 4, "a:b"),
    ("CNI_IFNAME with space", {}, {"CNI_IFNAME": "a b"}, 4, "a b"),
    ("CNI_IFNAME with a kernel template", {}, {"CNI_IFNAME": "net%d"}, 4, "net%d"),
    ("early error in the config's version", {"cniVersion": "0.4.0"}, {"CNI_CONTAINERID": ""}, 4, "CNI_CONTAINERID"),
    ("CNI_IFNAME dot", {}, {"CNI_IFNAME": "."}, 4, "'.'"),
    ("CNI_IFNAME dotdot", {}, {"CNI_IFNAME": ".."}, 4, ".."),
    ("missing CNI_NETNS", {}, {"CNI_NETNS": ""}, 4, "CNI_NETNS"),
    ("relative CNI_NETNS", {}, {"CNI_NETNS": "run/netns/x"}, 4, "run/netns/x"),
    ("CNI_NETNS does not exist", {}, {"CNI_NETNS": "/run/netns/tnonexistent"}, 4, "/run/netns/tnonexistent"),
    ("CNI_NETNS is a plain file", {}, {"CNI_NETNS": "@plainfile"}, 4, "not a network namespace"),
    ("CNI_NETNS is the host", {}, {"CNI_NETNS": "/proc/1/ns/net"}, 4, "/proc/1/ns/net"),
    ("malformed CNI_ARGS", {}, {"CNI_ARGS": "novalue"}, 4, "novalue"),
    ("CHECK on 0.3.1", {"cniVersion": "0.3.1"}, {"CNI_COMMAND": "CHECK"}, 1, "0.3.1"),
    ("GC on 1.0.0", {"cniVersion": "1.0.0"}, {"CNI_COMMAND": "GC"}, 1, "1.0.0"),
    ("STATUS on 0.4.0", {"cniVersion": "0.4.0"}, {"CNI_COMMAND": "STATUS"}, 1, "0.4.0"),
    ("prevResult unparsable", {"prevResult": {"ips": [{"address": "nope"}]}}, {}, 6, "result"),
]


@pytest.mark.parametrize(("case", "stdin", "env", "code", "names"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(
    plugin: Plugin, sandbox: Sandbox, tmp_path: Path, case: str, stdin: Any, env: dict[str, str], code: int, names: str
) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    if isinstance(stdin, dict):
        conf: Any = {k: v for k, v in {**conf_for(plugin, device=dev), **stdin}.items() if v is not None}
    else:
        conf = stdin
    run_env = {**pod_env(pod), **env}
    if run_env.get("CNI_NETNS") == "@plainfile":
        plain = tmp_path / "not-a-netns"
        plain.write_text("")
        run_env["CNI_NETNS"] = str(plain)
    out = plugin.run(run_env.pop("CNI_COMMAND", "ADD"), conf, **run_env)
    assert out.status == 1, out.stdout
    assert out.out is not None and out.code == code, out.stdout
    assert names in out.out["msg"], out.out["msg"]
    assert set(out.out) <= {"cniVersion", "code", "msg", "details"}
    if isinstance(stdin, dict) and stdin.get("cniVersion") == "0.4.0":
        assert out.out["cniVersion"] == "0.4.0", "errors answer in the config's version"
    assert "Traceback" not in out.stdout + out.stderr
    info = link_json(dev)
    assert info is not None and "UP" in info["flags"], "the device must not have moved"
    assert link_names(pod) <= {"lo"}
    assert not os.path.exists(os.path.join(plugin.data_dir, "tnet")) or not os.listdir(
        os.path.join(plugin.data_dir, "tnet")
    )


def test_version_lists_every_supported_version(plugin: Plugin) -> None:
    out = plugin.run("VERSION", {"cniVersion": "1.0.0"})
    assert out.status == 0 and out.out is not None
    assert out.out["cniVersion"] == "1.1.0", "our current version, as skel answers"
    assert out.out["supportedVersions"] == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    empty = plugin.run("VERSION", b"")
    assert (empty.status, empty.out) == (0, out.out)


def test_version_answers_the_same_whatever_the_config_asks(plugin: Plugin) -> None:
    quiet = plugin.run("VERSION", {"cniVersion": "0.3.1"})
    told = plugin.run("VERSION", {"cniVersion": "0.3.1", "logLevel": "debug", "logFile": "/nonexistent/x.log"})
    assert quiet.stdout == told.stdout and (quiet.stderr, told.stderr) == ("", "")
