"""Result conversion between every version's shape (pure logic)."""

from __future__ import annotations

import pytest

from cni_hostdev.errors import CniError
from cni_hostdev.result import DNS, Interface, IPConfig, Result, Route
from cni_hostdev.versions import SUPPORTED_VERSIONS


def _full() -> Result:
    return Result(
        interfaces=[Interface("net1", "02:00:00:00:00:01", 1400, "/run/netns/p", "0000:00:04.0")],
        ips=[IPConfig("10.1.2.3/24", "10.1.2.1", 0), IPConfig("fd00::3/64", "fd00::1", 0)],
        routes=[Route("0.0.0.0/0", "10.1.2.1", mtu=1300, priority=10, table=100, scope=0, advmss=1200), Route("::/0")],
        dns=DNS(["10.0.0.53"], "cluster.local", ["svc.cluster.local"], ["ndots:5"]),
    )


def test_110_carries_everything() -> None:
    out = _full().to_json("1.1.0")
    assert out["interfaces"][0] == {
        "name": "net1",
        "mac": "02:00:00:00:00:01",
        "mtu": 1400,
        "sandbox": "/run/netns/p",
        "pciID": "0000:00:04.0",
    }
    assert out["ips"][0] == {"address": "10.1.2.3/24", "gateway": "10.1.2.1", "interface": 0}
    assert out["routes"][0] == {
        "dst": "0.0.0.0/0",
        "gw": "10.1.2.1",
        "mtu": 1300,
        "advmss": 1200,
        "priority": 10,
        "table": 100,
        "scope": 0,
    }
    assert out["dns"]["search"] == ["svc.cluster.local"]


def test_100_drops_110_fields() -> None:
    out = _full().to_json("1.0.0")
    assert "mtu" not in out["interfaces"][0] and "pciID" not in out["interfaces"][0]
    assert out["routes"][0] == {"dst": "0.0.0.0/0", "gw": "10.1.2.1"}
    assert "version" not in out["ips"][0]


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0"])
def test_03x_04_have_ip_versions(version: str) -> None:
    out = _full().to_json(version)
    assert [ip["version"] for ip in out["ips"]] == ["4", "6"]
    assert out["cniVersion"] == version


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])
def test_legacy_shape(version: str) -> None:
    out = _full().to_json(version)
    assert out["ip4"] == {
        "ip": "10.1.2.3/24",
        "gateway": "10.1.2.1",
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.2.1"}],
    }
    assert out["ip6"] == {"ip": "fd00::3/64", "gateway": "fd00::1", "routes": [{"dst": "::/0"}]}
    assert "interfaces" not in out


@pytest.mark.parametrize("version", ["0.1.0", "0.2.0"])
def test_legacy_refuses_a_result_without_ips(version: str) -> None:
    result = Result(interfaces=[Interface("net1")])
    assert not result.can_print_as(version)
    with pytest.raises(CniError) as err:
        result.to_json(version)
    assert err.value.code == 1 and version in err.value.msg


@pytest.mark.parametrize("version", SUPPORTED_VERSIONS)
def test_round_trip_keeps_what_the_version_can_carry(version: str) -> None:
    printed = _full().to_json(version)
    reparsed = Result.from_json(printed, version)
    assert reparsed.to_json(version) == printed
    assert [ip.address for ip in reparsed.ips] == ["10.1.2.3/24", "fd00::3/64"]


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"ips": [{"address": "not-an-ip"}]},
        {"routes": [{"dst": "10.0.0.0/8", "mtu": "big"}]},
        {"interfaces": [{"mac": "no name"}]},
    ],
)
def test_unparsable_results_are_decode_errors(bad: object) -> None:
    with pytest.raises(CniError) as err:
        Result.from_json(bad, "1.1.0")
    assert err.value.code == 6
