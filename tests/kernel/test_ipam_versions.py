"""IPAM plugins older than the config's cniVersion: delegate at the highest version both speak.

Debian's and Ubuntu's reference IPAM plugins (1.1.1) stop at cniVersion 1.0.0; a 1.1.0 config must
still work with them. Every call the IPAM plugin gets is recorded by a wrapper in front of it: its
stdin and its environment.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import STATIC, Plugin, Sandbox, conf_for, ip, link_names, pod_env

# The reference IPAM plugins are the peers these tests need: CI installs them, and a machine
# without them fails here (conftest.reference_ipam) instead of skipping quietly.
pytestmark = pytest.mark.usefixtures("reference_ipam")


class RecordedIpam:
    """A CNI_PATH directory with an IPAM plugin `name` that records each call, then runs `body`."""

    def __init__(self, root: Path, name: str, body: str) -> None:
        self.name = name
        self.dir = root / "cni-bin"
        self.log = root / "ipam-calls"
        self.dir.mkdir()
        self.log.mkdir()
        script = self.dir / name
        script.write_text(
            f'#!/bin/sh\ncall="{self.log}/$(date +%s%N).$CNI_COMMAND"\ncat > "$call.json"\nenv > "$call.env"\n{body}\n'
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        self.cni_path = f"{self.dir}:/usr/lib/cni"

    def calls(self) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
        """(command, stdin, environment) of every call so far, in order, then forgotten."""
        out = []
        for stdin_file in sorted(self.log.glob("*.json")):
            command = stdin_file.name.split(".")[1]
            env_file = stdin_file.with_suffix(".env")
            env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
            out.append((command, json.loads(stdin_file.read_text()), env))
            stdin_file.unlink()
            env_file.unlink()
        return out


@pytest.fixture
def wrapped_static(tmp_path: Path) -> RecordedIpam:
    return RecordedIpam(tmp_path, "tstatic", f'exec {STATIC} < "$call.json"')


def _static(ipam_type: str) -> dict[str, Any]:
    return {"type": ipam_type, "addresses": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1"}]}


def test_a_110_config_speaks_100_to_the_reference_ipam_plugins(
    plugin: Plugin, sandbox: Sandbox, wrapped_static: RecordedIpam
) -> None:
    dev, peer = sandbox.veth()
    ip("link", "set", peer, "up")
    pod = sandbox.pod()
    conf = conf_for(plugin, "1.1.0", device=dev, ipam=_static(wrapped_static.name))
    env = {**pod_env(pod), "CNI_PATH": wrapped_static.cni_path}

    status = plugin.run("STATUS", conf, **env)
    assert status.status == 0, status.stdout
    assert [c for c, _, _ in wrapped_static.calls()] == ["VERSION"], "STATUS is never sent to a 1.0.0 plugin"

    added = plugin.run("ADD", conf, **env)
    assert added.status == 0, added.stdout + added.stderr
    assert added.out is not None and added.out["cniVersion"] == "1.1.0"
    assert [i["address"] for i in added.out["ips"]] == ["10.9.0.5/24"]
    assert "mtu" in added.out["interfaces"][0], "the result is printed in the config's version (1.1.0 adds mtu)"
    calls = wrapped_static.calls()
    assert [(c, stdin["cniVersion"]) for c, stdin, _ in calls[1:]] == [("ADD", "1.0.0")]
    assert calls[0][0] == "VERSION", "asked once, before the first call"

    checked = plugin.run("CHECK", {**conf, "prevResult": added.out}, **env)
    assert checked.status == 0, checked.stdout
    check = [(c, stdin) for c, stdin, _ in wrapped_static.calls() if c != "VERSION"]
    assert [c for c, _ in check] == ["CHECK"]
    assert check[0][1]["cniVersion"] == "1.0.0" and check[0][1]["prevResult"]["cniVersion"] == "1.0.0"
    assert "mtu" not in check[0][1]["prevResult"]["interfaces"][0], "prevResult converted down as well"

    valid = {"cni.dev/valid-attachments": [{"containerID": "ctr1", "ifname": "net1"}]}
    collected = plugin.run("GC", {**conf, **valid}, **env)
    assert collected.status == 0, collected.stdout
    assert [c for c, _, _ in wrapped_static.calls()] == ["VERSION"], "GC is never sent to a 1.0.0 plugin"

    deleted = plugin.run("DEL", conf, **env)
    assert deleted.status == 0, deleted.stdout
    assert [(c, stdin["cniVersion"]) for c, stdin, _ in wrapped_static.calls() if c != "VERSION"] == [("DEL", "1.0.0")]
    assert dev in link_names()


def test_an_ipam_plugin_gets_the_runtimes_environment_not_our_bundles(
    plugin: Plugin, sandbox: Sandbox, wrapped_static: RecordedIpam
) -> None:
    """The frozen start-up points LD_LIBRARY_PATH at our own glibc: a dynamically linked IPAM plugin
    must load the node's libraries, with the runtime's LD_LIBRARY_PATH if it set one."""
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(plugin, "1.0.0", device=dev, ipam=_static(wrapped_static.name))
    for runtime_value in (None, "/topt/runtime-libs"):
        env = {**pod_env(pod), "CNI_PATH": wrapped_static.cni_path}
        if runtime_value:
            env["LD_LIBRARY_PATH"] = runtime_value
        assert plugin.run("ADD", conf, **env).status == 0
        assert plugin.run("DEL", conf, **env).status == 0
        calls = wrapped_static.calls()
        assert {c for c, _, _ in calls} == {"VERSION", "ADD", "DEL"}
        for command, _, seen in calls:
            assert not [k for k in seen if k.startswith("_PYI_")], command
            assert seen.get("LD_LIBRARY_PATH") == runtime_value, command
            assert seen["CNI_CONTAINERID"] == "ctr1" and seen["CNI_COMMAND"] == command


LEGACY_IPAM = """case $CNI_COMMAND in
VERSION) echo '{"cniVersion":"0.2.0","supportedVersions":["0.1.0","0.2.0"]}' ;;
ADD) echo '{"cniVersion":"0.2.0","ip4":{"ip":"10.1.2.3/24","gateway":"10.1.2.1"}}' ;;
esac"""


def test_a_legacy_ipam_result_is_converted_up_and_a_command_it_lacks_is_refused(
    plugin: Plugin, sandbox: Sandbox, tmp_path: Path
) -> None:
    legacy = RecordedIpam(tmp_path, "tlegacy", LEGACY_IPAM)
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(plugin, "1.1.0", device=dev, ipam={"type": legacy.name})
    env = {**pod_env(pod), "CNI_PATH": legacy.cni_path}
    added = plugin.run("ADD", conf, **env)
    assert added.status == 0, added.stdout + added.stderr
    assert added.out is not None and added.out["ips"] == [
        {"address": "10.1.2.3/24", "gateway": "10.1.2.1", "interface": 0}
    ]
    assert [(c, stdin["cniVersion"]) for c, stdin, _ in legacy.calls()] == [("VERSION", "1.1.0"), ("ADD", "0.2.0")]

    checked = plugin.run("CHECK", {**conf, "prevResult": added.out}, **env)
    assert checked.status == 1 and checked.code == 1 and checked.out is not None
    assert "tlegacy speaks cniVersion 0.1.0, 0.2.0" in checked.out["msg"] and "0.4.0" in checked.out["msg"]
    assert plugin.run("DEL", conf, **env).status == 0
    assert dev in link_names()
