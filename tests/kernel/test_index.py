"""The record index (cni_hostdev/record_index.py) is never trusted over the records: a data dir
written before it, an entry lost, an entry left by a killed ADD, an entry that lies about its
device: each costs at most a read, never a wrong grant or a wrong refusal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.conftest import Plugin, Sandbox, assert_index_in_step, conf_for, ip, link_json, pod_env


def holder_and_other_network(plugin: Plugin, sandbox: Sandbox) -> tuple[str, dict[str, object], dict[str, str]]:
    """A device held by a live pod of network tnet, but in the host (an operator moved it back):
    what the index is asked about; the config and pod of another network that wants it."""
    dev, _ = sandbox.veth()
    mac = link_json(dev)["address"]  # type: ignore[index]
    pod = sandbox.pod()
    ifname = sandbox.name("i")
    assert plugin.run("ADD", conf_for(plugin, device=dev), **pod_env(pod, "holder", ifname)).status == 0
    ip("-n", pod, "link", "set", ifname, "netns", "1")
    sandbox.links.append(ifname)
    other = {**conf_for(plugin, hwaddr=mac), "name": "tother"}
    return dev, other, pod_env(sandbox.pod("n2"), "taker")


def entries(plugin: Plugin) -> list[str]:
    """What the index knows, as `network+record file:key`."""
    index = Path(plugin.data_dir) / ".index" / "records"
    return sorted(f"{p.parent.name}+{p.name}" for p in index.glob("*/*"))


def refused(plugin: Plugin, conf: dict[str, object], env: dict[str, str]) -> bool:
    out = plugin.run("ADD", conf, **env)
    return out.code == 101 and out.out is not None and "claimed by container holder" in out.out["msg"]


def test_a_data_dir_from_before_the_index_is_indexed_by_the_first_lookup(plugin: Plugin, sandbox: Sandbox) -> None:
    _, other, env = holder_and_other_network(plugin, sandbox)
    shutil.rmtree(Path(plugin.data_dir) / ".index")  # as the previous version left it
    assert refused(plugin, other, env)
    assert [e.split(":")[0].rpartition("-")[0] for e in entries(plugin)] == ["tnet+holder"]
    assert_index_in_step(plugin.data_dir)


def test_a_record_written_without_its_entries_costs_a_read_never_a_wrong_grant(
    plugin: Plugin, sandbox: Sandbox
) -> None:
    """As a version without the index (or a hand) writes a record: no entries, a changed directory."""
    _, other, env = holder_and_other_network(plugin, sandbox)
    shutil.rmtree(Path(plugin.data_dir) / ".index" / "keys")
    shutil.rmtree(Path(plugin.data_dir) / ".index" / "records")
    (record,) = (Path(plugin.data_dir) / "tnet").glob("holder-*.json")
    copy = record.with_name(".copy")
    copy.write_bytes(record.read_bytes())
    time.sleep(0.01)  # past the clock tick that stamped the directory, if any
    copy.chmod(0o600)
    os.replace(copy, record)
    assert refused(plugin, other, env)
    assert_index_in_step(plugin.data_dir)


def test_an_entry_without_its_record_is_no_refusal_and_is_dropped(plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    mac = link_json(dev)["address"].replace(":", "_")  # type: ignore[index]
    index = Path(plugin.data_dir) / ".index"
    for directory in (index / "records" / "tnet", index / "keys" / f"addr-{mac}"):
        directory.mkdir(parents=True)
    (index / "records" / "tnet" / f"ghost-net1.json:addr-{mac}").touch()  # an ADD killed before its record
    (index / "keys" / f"addr-{mac}" / "tnet+ghost-net1.json").touch()
    added = plugin.run("ADD", conf_for(plugin, device=dev), **pod_env(sandbox.pod()))
    assert added.status == 0, added.stdout
    assert [e.split(":")[0] for e in entries(plugin)] == ["tnet+ctr1-net1.json"], "the stale entry is dropped"
    assert not (index / "keys" / f"addr-{mac}" / "tnet+ghost-net1.json").exists()
    assert_index_in_step(plugin.data_dir)


def test_an_entry_that_lies_about_its_device_is_set_right_by_repair(source_plugin: Plugin, sandbox: Sandbox) -> None:
    """Only what writes the index outside the plugin can make an entry lie: repair reads every record
    and sets each entry right, and doctor says what it found."""
    _, other, env = holder_and_other_network(source_plugin, sandbox)
    index = Path(source_plugin.data_dir) / ".index"
    (entry,) = list((index / "records" / "tnet").iterdir())
    entry.rename(entry.with_name(f"{entry.name.split(':')[0]}:addr-02_00_00_00_00_99"))
    for key in (index / "keys").iterdir():
        shutil.rmtree(key)
    tools_env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    data = source_plugin.data_dir
    doctor = subprocess.run([*source_plugin.argv, "doctor", "--conf-dir", str(index), "--data-dir", data, "--json"],
                            env=tools_env, capture_output=True, text=True)  # fmt: skip
    said = [f["message"] for f in json.loads(doctor.stdout)["findings"] if f["kind"] == "index"]
    assert any("keys their devices do not have" in message for message in said), said
    repair = subprocess.run([*source_plugin.argv, "repair", "--once", "--data-dir", source_plugin.data_dir],
                            env=tools_env, capture_output=True, text=True)  # fmt: skip
    assert repair.returncode == 0, repair.stderr
    assert_index_in_step(source_plugin.data_dir)
    assert refused(source_plugin, other, env)
