"""Properties of the pure parsers (hypothesis): config, CNI_ARGS, results in every version."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cni_hostdev.config import parse_netconf
from cni_hostdev.errors import CniError
from cni_hostdev.plugin.call import _check_args
from cni_hostdev.result import DNS, Interface, IPConfig, Result, Route
from cni_hostdev.versions import SUPPORTED_VERSIONS

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)


config_keys = st.sampled_from(
    ["cniVersion", "name", "type", "device", "hwaddr", "kernelpath", "pciBusID", "deviceID", "runtimeConfig",
     "moveStrategy", "dataDir", "ipam", "prevResult", "dns", "lockTimeout", "allowHostAddresses",
     "cni.dev/valid-attachments", "devices", "useInterfaceNetwork", "logLevel", "logFile", "logOptions"]
)  # fmt: skip
pool_keys = st.sampled_from(["device", "hwaddr", "kernelpath", "pciBusID", "namePattern", "driver", "other"])
# A pool of candidates near the real shape, so that the pool parser's own checks get reached.
pools = st.lists(st.dictionaries(pool_keys, st.text(max_size=12) | json_values, max_size=3) | json_values, max_size=4)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(config_keys, json_values, max_size=8),
    pools,
    st.sampled_from(["ADD", "DEL", "CHECK", "GC", "STATUS"]),
)
def test_config_parser_only_ever_raises_cni_errors(conf: dict[str, Any], devices: Any, command: str) -> None:
    for candidate in (conf, {**conf, "devices": devices}):
        try:
            parse_netconf(candidate, command)
        except CniError as err:
            assert err.code in (1, 4, 6, 7) and err.msg


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["logFile", "logLevel", "logOptions", "name"]), json_values, max_size=4))
def test_log_settings_never_raise_and_never_fail_a_call(conf: dict[str, Any]) -> None:
    from cni_hostdev import logs
    from cni_hostdev.plugin.dispatch import start_logging

    try:
        start_logging({"CNI_COMMAND": "DEL"}, {**conf, "logFile": "/nonexistent-tprop/x.log"})
        start_logging({"CNI_COMMAND": "DEL"}, conf)
        logs.emit(logs.ERROR, "a line", ())
    finally:
        logs.to_file(None)
        logs.set_level(logs.WARNING)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_cni_args_parser(value: str) -> None:
    pairs = [pair for pair in value.split(";") if pair]
    well_formed = all("=" in pair and not pair.startswith("=") for pair in pairs)
    try:
        _check_args(value)
    except CniError as err:
        assert err.code == 4 and "CNI_ARGS" in err.msg and not well_formed
        return
    assert well_formed


addresses4 = st.builds(
    lambda a, p: f"10.{a % 256}.{(a // 256) % 256}.{a % 200 + 1}/{p}", st.integers(0, 65535), st.integers(8, 32)
)


addresses6 = st.builds(lambda a, p: f"fd00::{a:x}/{p}", st.integers(1, 65535), st.integers(48, 128))


routes = st.builds(
    Route,
    dst=st.sampled_from(["0.0.0.0/0", "10.0.0.0/8", "::/0", "fd00::/64"]),
    gw=st.none() | st.sampled_from(["10.0.0.1", "fd00::1"]),
    mtu=st.none() | st.integers(68, 9000),
    advmss=st.none() | st.integers(0, 9000),
    priority=st.none() | st.integers(0, 1000),
    table=st.none() | st.integers(1, 1000),
    scope=st.none() | st.integers(0, 255),
)


results = st.builds(
    Result,
    interfaces=st.lists(
        st.builds(Interface, name=st.sampled_from(["net1", "eth0"]), mac=st.sampled_from(["", "02:00:00:00:00:01"]),
                  mtu=st.none() | st.integers(68, 9000), sandbox=st.sampled_from(["", "/run/netns/p"]),
                  pci_id=st.none() | st.just("0000:00:04.0")),
        max_size=2,
    ),
    ips=st.lists(st.builds(IPConfig, address=addresses4 | addresses6, gateway=st.none() | st.just("10.0.0.1")),
                 max_size=3),
    routes=st.lists(routes, max_size=3),
    dns=st.builds(DNS, nameservers=st.lists(st.just("10.0.0.53"), max_size=1), domain=st.sampled_from(["", "x"])),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(results, st.sampled_from(SUPPORTED_VERSIONS))
def test_result_round_trip_keeps_every_field_the_version_carries(result: Result, version: str) -> None:
    if not result.can_print_as(version):
        with pytest.raises(CniError):
            result.to_json(version)
        return
    printed = result.to_json(version)
    assert Result.from_json(json.loads(json.dumps(printed)), version).to_json(version) == printed
    if version == "1.1.0":
        again = Result.from_json(printed, version)
        assert [r.table for r in again.routes] == [r.table for r in result.routes]
        assert [i.mtu or None for i in again.interfaces] == [i.mtu or None for i in result.interfaces]
