"""State records that are broken, forged or planted never move a device that is not ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Plugin, Sandbox, conf_for, link_json, link_names, pod_env


@pytest.mark.parametrize(
    ("name", "content"),
    [("corrupt", b"{not json"), ("truncated", b'{"network": "tnet", "contai'), ("foreign", b'{"hello": "world"}')],
)
def test_bad_records_are_reported_and_skipped(
    source_plugin: Plugin, sandbox: Sandbox, name: str, content: bytes
) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod, "good")).status == 0
    bad = Path(source_plugin.data_dir) / "tnet" / f"{name}-net1.json"
    bad.write_bytes(content)
    gc = source_plugin.run("GC", conf_for(source_plugin, "1.1.0", **{"cni.dev/valid-attachments": []}))
    assert gc.status == 0, gc.stdout
    assert str(bad) in gc.stderr, "GC says which record it skipped"
    assert "Traceback" not in gc.stderr
    assert dev in link_names(), "the good record was still released"
    assert bad.exists()


def test_forged_record_never_touches_a_device_we_did_not_claim(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    before = link_json(dev)
    assert before is not None
    directory = Path(source_plugin.data_dir) / "tnet"
    directory.mkdir(parents=True, mode=0o700)
    forged = {
        "network": "tnet", "container_id": "ghost", "ifname": "net1", "netns": "/run/netns/tgone",
        "original_name": dev, "original_alias": None, "mac": before["address"], "perm_mac": None,
        "mtu": 9000, "was_up": False, "ifindex": before["ifindex"], "pci_address": None, "phase": "attached",
    }  # fmt: skip
    (directory / "ghost-net1.json").write_text(json.dumps(forged))
    assert source_plugin.run("GC", conf_for(source_plugin)).status == 0
    after = link_json(dev)
    assert after is not None and after["mtu"] == before["mtu"] and "UP" in after["flags"]


def test_symlink_planted_as_a_record_is_refused(source_plugin: Plugin, sandbox: Sandbox, tmp_path: Path) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    directory = Path(source_plugin.data_dir) / "tnet"
    directory.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (directory / "ctr1-net1.json").symlink_to(victim)
    out = source_plugin.run("ADD", conf_for(source_plugin, device=dev), **pod_env(pod))
    assert out.code == 105 and out.out is not None and "ctr1-net1.json" in out.out["msg"]
    assert victim.read_text() == "precious" and dev in link_names()
