"""What an ADD and a DEL without IPAM import, pinned module by module: each exec pays for every
module it loads, so this list may only grow on purpose (and `make profile` says what it costs).

A real ADD and DEL of a veth, run from the source tree in a fresh interpreter started as the frozen
program starts (`-I -S`: no site, no environment, nothing preloaded), list what they loaded on their
way out: sys.modules, and pyroute2's modules that netlink_loader keeps out of it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import ROOT, Sandbox, frozen_like, netns_path

LISTING = """
import os, sys
before = set(sys.modules)
leave = os._exit
def listing(status):
    loaded = set(sys.modules) - before
    loader = sys.modules.get("cni_hostdev.netlink_loader")
    if loader is not None:
        loaded |= set(loader.loaded_modules())
    with open(sys.argv[1], "w") as out:
        out.write("\\n".join(sorted(loaded)))
    leave(status)
os._exit = listing
from cni_hostdev.cli import main
main()
"""

# The standard library's share: C modules and `struct`. No typing, enum, re, json, socket, ctypes,
# contextlib, collections, functools, subprocess, ipaddress, packaging.
STANDARD = {
    "__future__", "_collections", "_ctypes", "_functools", "_json", "_socket", "_struct", "errno", "fcntl", "gc",
    "struct",
}  # fmt: skip
# Links only: a DEL reads no route or address.
PYROUTE2 = {
    "pyroute2", "pyroute2.common", "pyroute2.netlink", "pyroute2.netlink.exceptions", "pyroute2.netlink.rtnl",
    "pyroute2.netlink.rtnl.ifinfmsg",
}  # fmt: skip
OURS_FOR_EVERY_CALL = {
    "cni_hostdev", "cni_hostdev.cli", "cni_hostdev.config", "cni_hostdev.errors", "cni_hostdev.identity",
    "cni_hostdev.locks", "cni_hostdev.logs", "cni_hostdev.lookup", "cni_hostdev.move", "cni_hostdev.netlink",
    "cni_hostdev.netlink_loader", "cni_hostdev.netns", "cni_hostdev.pods", "cni_hostdev.result",
    "cni_hostdev.state", "cni_hostdev.versions",
    "cni_hostdev.plugin", "cni_hostdev.plugin.call", "cni_hostdev.plugin.dispatch", "cni_hostdev.plugin.release",
    # The ground floor, by kind (issue 26; as many modules as before: a face for the stand-ins,
    # profile marks and fault injection in one module of diagnostics):
    "cni_hostdev.lean", "cni_hostdev.lean.json", "cni_hostdev.lean.libc", "cni_hostdev.lean.contextlib",
    "cni_hostdev.diagnostics", "cni_hostdev.identifiers", "cni_hostdev.atomic_files",
    # Added on purpose (issue 25): finding a device's holders without reading every record. The
    # waiting room (plugin/waiting.py) loads only where a device waits for its name.
    "cni_hostdev.record_index",
}  # fmt: skip
ADD = STANDARD | PYROUTE2 | OURS_FOR_EVERY_CALL | {
    "cni_hostdev.plugin.add", "cni_hostdev.plugin.claims", "cni_hostdev.probe", "cni_hostdev.routing",
    "pyroute2.netlink.rtnl.ifaddrmsg", "pyroute2.netlink.rtnl.rtmsg",  # the uplink and address checks
}  # fmt: skip
DEL = STANDARD | PYROUTE2 | OURS_FOR_EVERY_CALL | {"cni_hostdev.plugin.delete"}


def imports_of(command: str, conf: dict[str, object], env: dict[str, str], listing: Path) -> set[str]:
    return run_listed(command, conf, env, listing)[0]


def run_listed(command: str, conf: dict[str, object], env: dict[str, str], listing: Path) -> tuple[set[str], str]:
    """What the command imported, and what it printed."""
    proc = subprocess.run(
        [*frozen_like(LISTING), str(listing)],
        input=json.dumps(conf).encode(),
        capture_output=True,
        cwd=ROOT,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, **env},
    )
    assert proc.returncode == 0, proc.stdout.decode() + proc.stderr.decode()
    return set(listing.read_text().split()), proc.stdout.decode()


def test_an_add_and_a_del_import_exactly_these_modules(sandbox: Sandbox, tmp_path: Path) -> None:
    device, _ = sandbox.veth()
    pod = sandbox.pod()
    conf: dict[str, object] = {
        "cniVersion": "1.1.0",
        "name": "tnet",
        "type": "host-device",
        "device": device,
        "dataDir": str(tmp_path),
    }
    env = {"CNI_CONTAINERID": "imports", "CNI_NETNS": netns_path(pod), "CNI_IFNAME": "net1", "CNI_PATH": "/usr/lib/cni"}
    added = imports_of("ADD", conf, env, tmp_path / "add")
    deleted = imports_of("DEL", conf, env, tmp_path / "del")
    assert added == ADD, f"new: {sorted(added - ADD)}, gone: {sorted(ADD - added)}"
    assert deleted == DEL, f"new: {sorted(deleted - DEL)}, gone: {sorted(DEL - deleted)}"


# What a CHECK without IPAM may not load: typing, socket's enums, subprocess (IPAM's exec) ... (it does
# load ipaddress, with functools and collections, to compare the addresses it reads with the result's).
HEAVY = {"typing", "socket", "subprocess", "selectors", "enum", "re", "json", "ctypes"}


def test_a_check_without_ipam_loads_nothing_heavy(sandbox: Sandbox, tmp_path: Path) -> None:
    device, _ = sandbox.veth()
    pod = sandbox.pod()
    conf: dict[str, object] = {
        "cniVersion": "1.1.0", "name": "tnet", "type": "host-device", "device": device, "dataDir": str(tmp_path),
    }  # fmt: skip
    env = {"CNI_CONTAINERID": "check", "CNI_NETNS": netns_path(pod), "CNI_IFNAME": "net1", "CNI_PATH": "/usr/lib/cni"}
    _, added = run_listed("ADD", conf, env, tmp_path / "add")
    checked, _ = run_listed("CHECK", {**conf, "prevResult": json.loads(added)}, env, tmp_path / "check")
    assert "cni_hostdev.plugin.check" in checked
    assert not checked & HEAVY, sorted(checked & HEAVY)
    run_listed("DEL", conf, env, tmp_path / "del")
