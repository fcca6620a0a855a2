"""The start-up trick of cni_hostdev/netlink_loader.py, pinned: a pyroute2 release that changes what
its message modules import must fail here, not at a user's ADD.

Each case runs a fresh interpreter: the loader's effects are on sys.modules at import time.
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

PROBE = """
import json, sys
before = set(sys.modules)
from cni_hostdev import netlink, netlink_loader
loaded = sorted(m for m in set(sys.modules) - before if m.startswith("pyroute2"))
stand_ins = {m: m in sys.modules for m in netlink_loader.STAND_INS}
placeholder = sys.modules["pyroute2"]
import logging, multiprocessing, platform, traceback
real = {
    "logging": hasattr(logging, "Handler"),
    "multiprocessing": hasattr(multiprocessing, "cpu_count"),
    "platform": hasattr(platform, "python_version"),
    "traceback": hasattr(traceback, "TracebackException"),
}
answers = netlink_loader.platform_answers()
truthful = {
    "machine": answers["machine"]() == platform.machine(),
    "architecture": answers["architecture"]()[0] == platform.architecture()[0],
    "uname": answers["uname"]().release == platform.uname().release,
}
rule = netlink_loader.fibmsg()
with netlink.Rtnl() as rtnl:
    links = [link.name for link in rtnl.links()]
print(json.dumps({
    "loaded": loaded, "stand_ins_left": stand_ins, "real_after": real, "calls": netlink_loader.calls,
    "placeholder_is_bare": not hasattr(placeholder, "IPRoute"), "rule": type(rule).__name__, "lo": "lo" in links,
    "truthful": truthful,
}))
"""

# What the message modules bring along. A new entry means pyroute2 imports more at start-up;
# check it costs nothing (or stand it in) before adding it here.
EXPECTED_PYROUTE2_MODULES = {
    "pyroute2",
    "pyroute2.common",
    "pyroute2.config",
    "pyroute2.netlink",
    "pyroute2.netlink.exceptions",
    "pyroute2.netlink.rtnl",
    "pyroute2.netlink.rtnl.ifaddrmsg",
    "pyroute2.netlink.rtnl.ifinfmsg",
    "pyroute2.netlink.rtnl.ifinfmsg.plugins",
    "pyroute2.netlink.rtnl.iw_event",
    "pyroute2.netlink.rtnl.rtmsg",
}


def probe() -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-S", "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={
            "PYTHONPATH": f"{ROOT}:{':'.join(p for p in sys.path if p.endswith('site-packages'))}",
        },
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_only_the_message_modules_load() -> None:
    loaded = set(probe()["loaded"])  # type: ignore[call-overload]
    plugins = {m for m in loaded if m.startswith("pyroute2.netlink.rtnl.ifinfmsg.plugins.")}
    assert loaded - plugins == EXPECTED_PYROUTE2_MODULES


def test_the_package_itself_is_a_placeholder() -> None:
    assert probe()["placeholder_is_bare"], "pyroute2/__init__.py ran: the whole library is loaded"


def test_the_real_modules_are_back_afterwards() -> None:
    seen = probe()
    assert seen["stand_ins_left"] == {"multiprocessing": False, "logging": False, "traceback": False, "platform": False}
    assert seen["real_after"] == {"logging": True, "multiprocessing": True, "platform": True, "traceback": True}


# The stand-ins pyroute2 calls while its message modules load: each answers as the real one would.
ANSWERING = {"logging.getLogger", "platform.uname", "platform.machine", "platform.architecture"}


def test_only_the_answering_stand_ins_are_called_and_they_tell_the_truth() -> None:
    seen = probe()
    called = set(seen["calls"])  # type: ignore[call-overload]
    assert called <= ANSWERING, f"pyroute2 now calls {sorted(called - ANSWERING)} while loading"
    assert not any(c.startswith(("multiprocessing.", "traceback.")) for c in called)
    assert seen["truthful"] == {"machine": True, "architecture": True, "uname": True}


def test_rules_load_later_and_the_client_works() -> None:
    seen = probe()
    assert seen["rule"] == "fibmsg" and seen["lo"] is True
