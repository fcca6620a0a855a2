"""Config and environment parsing (pure logic: nothing here touches the kernel)."""

from __future__ import annotations

import pytest

from cni_hostdev.config import parse_netconf, validate_ifname
from cni_hostdev.errors import CniError
from cni_hostdev.plugin.dispatch import read_command_env as read_env


def test_defaults_and_runtime_device_id_wins() -> None:
    conf = parse_netconf(
        {
            "cniVersion": "1.1.0",
            "name": "n",
            "type": "host-device",
            "deviceID": "0000:00:04.0",
            "runtimeConfig": {"deviceID": "0000:00:05.0"},
        },
        "ADD",
    )
    assert conf.selectors.device_id == "0000:00:05.0"
    assert conf.move_strategy == "auto" and conf.data_dir == "/var/lib/cni/host-device"


def test_gc_attachments_old_and_new_keys() -> None:
    for key in ("cni.dev/valid-attachments", "cni.dev/attachments"):
        conf = parse_netconf({"cniVersion": "1.1.0", "name": "n", key: [{"containerID": "c", "ifname": "net1"}]}, "GC")
        assert conf.valid_attachments == (("c", "net1"),)
    assert parse_netconf({"cniVersion": "1.1.0", "name": "n"}, "GC").valid_attachments is None


def test_del_needs_no_selector_and_no_netns() -> None:
    assert not parse_netconf({"cniVersion": "1.0.0", "name": "n"}, "DEL").selectors.any()
    env = read_env({"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c", "CNI_IFNAME": "net1"})
    assert env.netns == ""


def test_cni_args_must_be_key_value_pairs() -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c", "CNI_IFNAME": "net1", "CNI_NETNS": "/x"}
    read_env({**env, "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web-0;;"})
    with pytest.raises(CniError) as err:
        read_env({**env, "CNI_ARGS": "IgnoreUnknown=1;oops"})
    assert err.value.code == 4 and "'oops'" in err.value.msg


@pytest.mark.parametrize("name", ["net1", "a" * 15, "ens1f0v3"])
def test_good_ifnames(name: str) -> None:
    validate_ifname(name, "CNI_IFNAME")


@pytest.mark.parametrize("name", ["", "a" * 16, ".", "..", "a/b", "a:b", "a b", "a\tb", "é" * 8])
def test_bad_ifnames(name: str) -> None:
    with pytest.raises(CniError) as err:
        validate_ifname(name, "CNI_IFNAME")
    assert err.value.code == 4
