"""The state store on its own: records written atomically and privately, old records still read,
broken ones named and skipped, symlinks refused."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from cni_hostdev.atomic_files import write_atomically
from cni_hostdev.errors import STATE_FAILURE, CniError
from cni_hostdev.state import _REQUIRED, Record, StateStore, every_record, networks


def record(**overrides: Any) -> Record:
    fields: dict[str, Any] = {
        "network": "tnet",
        "container_id": "c1",
        "ifname": "net1",
        "netns": "/run/netns/p",
        "original_name": "ens4",
        "original_alias": None,
        "mac": "52:54:00:12:34:56",
        "perm_mac": None,
        "mtu": 1500,
        "was_up": True,
        "ifindex": 7,
        "pci_address": "0000:00:04.0",
        "phase": "attached",
    }
    fields.update(overrides)
    return Record(**fields)


def test_a_record_comes_back_as_it_was_written_private_to_root(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path), "tnet")
    written = record(altnames=["enp0s4"], driver="virtio_net", netns_cookie=4097, boot_id="b")
    store.save(written)
    loaded = store.load("c1", "net1")
    assert loaded is not None and loaded.to_json() == written.to_json()
    path = tmp_path / "tnet" / "c1-net1.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tnet").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "tnet").iterdir()] == ["c1-net1.json"], "no temp file left behind"


def test_a_record_of_an_older_version_is_read_with_what_it_has(tmp_path: Path) -> None:
    """Written before phases, pins, altnames, drivers and interface networks existed."""
    old = {k: v for k, v in record().to_json().items() if k in _REQUIRED}
    (tmp_path / "tnet").mkdir(mode=0o700)
    (tmp_path / "tnet" / "c1-net1.json").write_text(json.dumps(old))
    loaded = StateStore(str(tmp_path), "tnet").load("c1", "net1")
    assert loaded is not None
    assert (loaded.phase, loaded.kind, loaded.strategy) == ("attached", "netdev", "")
    assert loaded.altnames is None and loaded.interface_network is None and loaded.netns_cookie is None


@pytest.mark.parametrize(
    "content", ["{", "[]", json.dumps({"network": "tnet"}), json.dumps({**record().to_json(), "altnames": "ens4"})]
)
def test_a_broken_record_is_named_and_skipped(tmp_path: Path, content: str) -> None:
    store = StateStore(str(tmp_path), "tnet")
    store.save(record(container_id="good"))
    (tmp_path / "tnet" / "bad-net1.json").write_text(content)
    with pytest.raises(CniError) as err:
        store.load("bad", "net1")
    assert err.value.code == STATE_FAILURE and "bad-net1.json" in err.value.msg
    assert [r.container_id for r in store.all()] == ["good"]


def test_a_symlink_is_never_written_through(tmp_path: Path) -> None:
    store = StateStore(str(tmp_path), "tnet")
    store.ensure_dir()
    victim = tmp_path / "victim"
    victim.write_text("untouched")
    os.symlink(victim, tmp_path / "tnet" / "c1-net1.json")
    with pytest.raises(CniError) as err:
        store.save(record())
    assert err.value.code == STATE_FAILURE and "symlink" in err.value.msg
    assert victim.read_text() == "untouched"


def test_every_network_is_walked_but_the_locks(tmp_path: Path) -> None:
    StateStore(str(tmp_path), "a").save(record(network="a"))
    StateStore(str(tmp_path), "b").save(record(network="b", container_id="c2"))
    (tmp_path / "locks").mkdir()
    assert networks(str(tmp_path)) == ["a", "b"]
    assert sorted((r.network, r.container_id) for r in every_record(str(tmp_path))) == [("a", "c1"), ("b", "c2")]


def test_an_atomic_write_that_is_refused_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"old")

    def refuse(temp: str) -> None:
        assert Path(temp).read_bytes() == b"new"
        raise OSError("refused")

    with pytest.raises(OSError):
        write_atomically(str(target), lambda out: out.write(b"new"), check=refuse)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["file"]
    write_atomically(str(target), lambda out: out.write(b"new"), mode=0o644)
    assert target.read_bytes() == b"new" and stat.S_IMODE(target.stat().st_mode) == 0o644
