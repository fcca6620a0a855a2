"""IPAM delegation with the reference plugins: results, routes, DNS, release on failure and on DEL."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Plugin, Sandbox, conf_for, ip, is_up, link_json, link_names, pod_env

# The reference IPAM plugins are the peers these tests need: CI installs them, and a machine
# without them fails here (conftest.reference_ipam) instead of skipping quietly.
pytestmark = pytest.mark.usefixtures("reference_ipam")


def static_ipam(v4: str = "10.9.0.5/24", v6: str | None = "fd09::5/64", **extra: Any) -> dict[str, Any]:
    addresses = [{"address": v4, "gateway": v4.rsplit(".", 1)[0] + ".1"}]
    if v6:
        addresses.append({"address": v6, "gateway": v6.split("::")[0] + "::1"})
    return {"type": "static", "addresses": addresses, **extra}


def host_local_ipam(data_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "type": "host-local",
        "dataDir": str(data_dir),
        "ranges": [[{"subnet": "10.77.0.0/24", "rangeStart": "10.77.0.10", "rangeEnd": "10.77.0.20"}]],
        **extra,
    }


def allocations(data_dir: Path, network: str = "tnet") -> list[str]:
    directory = data_dir / network
    if not directory.is_dir():
        return []
    return sorted(p.name for p in directory.iterdir() if p.name[0].isdigit())


def pod_addresses(pod: str, ifname: str = "net1") -> set[str]:
    out = json.loads(
        subprocess.run(
            ["ip", "-n", pod, "-j", "addr", "show", "dev", ifname], capture_output=True, text=True, check=True
        ).stdout
    )
    return {f"{a['local']}/{a['prefixlen']}" for a in out[0]["addr_info"] if a["scope"] == "global"}


def pod_routes(pod: str, family: str = "-4") -> list[dict[str, Any]]:
    out = subprocess.run(
        ["ip", "-n", pod, family, "-j", "route", "show", "table", "all"], capture_output=True, text=True, check=True
    )
    routes: list[dict[str, Any]] = json.loads(out.stdout)
    return routes


def test_static_ipam_dual_stack_routes_dns_and_check(plugin: Plugin, sandbox: Sandbox) -> None:
    dev, peer = sandbox.veth()
    ip("link", "set", peer, "up")
    pod = sandbox.pod()
    ipam = static_ipam(
        routes=[{"dst": "0.0.0.0/0"}, {"dst": "192.168.77.0/24", "gw": "10.9.0.254"}, {"dst": "::/0"}],
        dns={"nameservers": ["10.0.0.54"], "search": ["svc.local"]},
    )
    conf = conf_for(plugin, "1.0.0", device=dev, ipam=ipam, dns={"nameservers": ["10.0.0.53"]})
    added = plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout + added.stderr
    assert added.out is not None
    assert [ip_["address"] for ip_ in added.out["ips"]] == ["10.9.0.5/24", "fd09::5/64"]
    assert all(ip_["interface"] == 0 for ip_ in added.out["ips"])
    assert added.out["dns"] == {"nameservers": ["10.0.0.53", "10.0.0.54"], "search": ["svc.local"]}
    assert pod_addresses(pod) == {"10.9.0.5/24", "fd09::5/64"}
    v4 = {(r["dst"], r.get("gateway")) for r in pod_routes(pod)}
    assert ("default", "10.9.0.1") in v4, "a route without gw takes the family's gateway"
    assert ("192.168.77.0/24", "10.9.0.254") in v4
    assert ("default", "fd09::1") in {(r["dst"], r.get("gateway")) for r in pod_routes(pod, "-6")}

    check_conf = {**conf, "prevResult": added.out}
    assert plugin.run("CHECK", check_conf, **pod_env(pod)).status == 0
    ip("-n", pod, "addr", "del", "10.9.0.5/24", "dev", "net1")
    broken = plugin.run("CHECK", check_conf, **pod_env(pod))
    assert broken.code == 104 and broken.out is not None and "10.9.0.5/24" in broken.out["msg"]

    assert plugin.run("DEL", conf, **pod_env(pod)).status == 0
    home = link_json(dev)
    assert home is not None and is_up(home)


def test_ipam_route_extras_of_110(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, peer = sandbox.veth()
    ip("link", "set", peer, "up")
    pod = sandbox.pod()
    # Debian's IPAM plugins (1.1.1) predate CNI 1.1: feed a 1.1 result through a tiny IPAM shim.
    shim_dir = Path(source_plugin.data_dir).parent / "bin"
    shim_dir.mkdir()
    shim = shim_dir / "tipam"
    result = {
        "cniVersion": "1.1.0",
        "ips": [{"address": "10.8.0.5/24", "gateway": "10.8.0.1"}],
        "routes": [{"dst": "10.50.0.0/16", "mtu": 1300, "advmss": 1200, "priority": 77, "table": 100}],
    }
    shim.write_text(f"#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && echo '{json.dumps(result)}'\nexit 0\n")
    shim.chmod(0o755)
    conf = conf_for(source_plugin, device=dev, ipam={"type": "tipam"})
    added = source_plugin.run("ADD", conf, **pod_env(pod), CNI_PATH=str(shim_dir))
    assert added.status == 0, added.stdout + added.stderr
    assert added.out is not None and added.out["routes"][0]["table"] == 100
    routes = [r for r in pod_routes(pod) if r["dst"] == "10.50.0.0/16"]
    assert routes and routes[0]["table"] == "100" and routes[0]["metric"] == 77
    assert source_plugin.run("DEL", conf, **pod_env(pod), CNI_PATH=str(shim_dir)).status == 0


def test_legacy_version_with_ipam_prints_ip4(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    conf = conf_for(source_plugin, "0.2.0", device=dev, ipam=static_ipam(v6=None))
    added = source_plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout
    assert added.out is not None and added.out["ip4"]["ip"] == "10.9.0.5/24" and "interfaces" not in added.out
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0


def test_host_local_released_on_del_with_empty_netns(source_plugin: Plugin, sandbox: Sandbox, tmp_path: Path) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    ipam_dir = tmp_path / "host-local"
    conf = conf_for(source_plugin, "1.0.0", device=dev, ipam=host_local_ipam(ipam_dir))
    added = source_plugin.run("ADD", conf, **pod_env(pod))
    assert added.status == 0, added.stdout
    assert allocations(ipam_dir) == ["10.77.0.10"]
    deleted = source_plugin.run("DEL", conf, **{**pod_env(pod), "CNI_NETNS": ""})
    assert deleted.status == 0, deleted.stdout
    assert allocations(ipam_dir) == [], "host-local's allocation must be gone"
    assert dev in link_names(), "the record's netns still held the device: it comes home too"


def test_failure_after_ipam_releases_the_ip_and_the_device(
    source_plugin: Plugin, sandbox: Sandbox, tmp_path: Path
) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    ipam_dir = tmp_path / "host-local"
    ipam = host_local_ipam(ipam_dir, routes=[{"dst": "192.168.5.0/24", "gw": "172.31.99.1"}])
    out = source_plugin.run("ADD", conf_for(source_plugin, "1.0.0", device=dev, ipam=ipam), **pod_env(pod))
    assert out.status == 1 and out.code == 107
    assert out.out is not None and "192.168.5.0/24" in out.out["msg"]
    assert allocations(ipam_dir) == [], "no IP leak"
    home = link_json(dev)
    assert home is not None and is_up(home) and link_names(pod) <= {"lo"}
    assert not os.listdir(os.path.join(source_plugin.data_dir, "tnet"))


def test_missing_ipam_plugin_is_refused_before_moving(source_plugin: Plugin, sandbox: Sandbox) -> None:
    dev, _ = sandbox.veth()
    pod = sandbox.pod()
    out = source_plugin.run("ADD", conf_for(source_plugin, device=dev, ipam={"type": "tnoipam"}), **pod_env(pod))
    assert out.code == 7 and out.out is not None and "tnoipam" in out.out["msg"]
    assert dev in link_names()


def _recording_ipam(directory: Path, *, status_ok: bool = True) -> Path:
    """A CNI 1.1 IPAM stand-in that logs every command it is asked to run."""
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / "calls"
    script = directory / "tlog"
    status = "exit 0" if status_ok else 'echo \'{"cniVersion":"1.1.0","code":50,"msg":"pool exhausted"}\'; exit 1'
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$CNI_COMMAND" >> {log}\n'
        'case "$CNI_COMMAND" in\n'
        '  VERSION) echo \'{"cniVersion":"1.1.0","supportedVersions":["1.0.0","1.1.0"]}\';;\n'
        '  ADD) echo \'{"cniVersion":"1.1.0","ips":[{"address":"10.6.0.2/24"}]}\';;\n'
        f"  STATUS) {status};;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return log


def test_status_and_gc_are_forwarded_to_a_11_ipam(source_plugin: Plugin, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    log = _recording_ipam(bin_dir)
    conf = conf_for(source_plugin, ipam={"type": "tlog"})
    assert source_plugin.run("STATUS", conf, CNI_PATH=str(bin_dir)).status == 0
    assert source_plugin.run("GC", {**conf, "cni.dev/valid-attachments": []}, CNI_PATH=str(bin_dir)).status == 0
    assert log.read_text().split() == ["VERSION", "STATUS", "VERSION", "GC"]

    sick = tmp_path / "sick"
    _recording_ipam(sick, status_ok=False)
    out = source_plugin.run("STATUS", conf, CNI_PATH=str(sick))
    assert out.code == 50 and out.out is not None and "pool exhausted" in out.out["msg"]


def test_gratuitous_arp_announces_the_new_address(source_plugin: Plugin, sandbox: Sandbox) -> None:
    import socket

    dev, peer = sandbox.veth()
    ip("link", "set", peer, "up")
    pod = sandbox.pod()
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0806)) as listener:
        listener.bind((peer, 0))
        listener.settimeout(5)
        conf = conf_for(source_plugin, "1.0.0", device=dev, ipam=static_ipam(v6=None))
        assert source_plugin.run("ADD", conf, **pod_env(pod)).status == 0
        mac = link_json("net1", pod)
        assert mac is not None
        frame = listener.recv(2048)
    sender_mac, sender_ip = frame[22:28], frame[28:32]
    assert sender_mac.hex(":") == mac["address"] and socket.inet_ntoa(sender_ip) == "10.9.0.5"
    assert source_plugin.run("DEL", conf, **pod_env(pod)).status == 0
