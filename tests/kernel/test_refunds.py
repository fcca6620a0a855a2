"""A device the kernel refunded to the host under its pod name gets its own name back, by DEL, GC or the next ADD."""

from __future__ import annotations

import os

import pytest

from tests.conftest import Plugin, Sandbox, conf_for, ip, is_up, link_json, link_names, pod_env, refund_to_host


@pytest.mark.parametrize("repair_by", ["DEL", "GC", "ADD"])
def test_refunded_device_gets_its_name_back(source_plugin: Plugin, sandbox: Sandbox, repair_by: str) -> None:
    dev, _ = sandbox.veth()
    ip("link", "set", dev, "mtu", "1450")
    pod = sandbox.pod()
    refunded_as = sandbox.name("r1")  # a unique pod-side name, so the refund cannot clash in the host
    conf = conf_for(source_plugin, device=dev)
    assert source_plugin.run("ADD", conf, **pod_env(pod, ifname=refunded_as)).status == 0
    ip("-n", pod, "link", "set", refunded_as, "mtu", "1300")
    refund_to_host(pod, refunded_as)
    sandbox.links.append(refunded_as)
    assert refunded_as in link_names() and dev not in link_names()

    if repair_by == "DEL":
        out = source_plugin.run("DEL", conf, **pod_env(pod, ifname=refunded_as))
    elif repair_by == "GC":
        out = source_plugin.run("GC", conf_for(source_plugin))
    else:
        other = sandbox.pod("n2")
        out = source_plugin.run("ADD", conf, **pod_env(other, "ctr2"))
        assert out.status == 0, out.stdout + out.stderr
        assert link_json("net1", other) is not None
        assert source_plugin.run("DEL", conf, **pod_env(other, "ctr2")).status == 0
    assert out.status == 0, out.stdout + out.stderr
    home = link_json(dev)
    assert home is not None, f"{dev} must be home under its own name after {repair_by}"
    assert home["mtu"] == 1450 and is_up(home)
    assert refunded_as not in link_names()
    assert not os.listdir(os.path.join(source_plugin.data_dir, "tnet"))
