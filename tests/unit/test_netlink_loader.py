"""The start-up trick of cni_hostdev/netlink_loader.py, pinned: a pyroute2 release that changes what
its message modules import, or what they take from what they import, must fail here, not at a
user's ADD.

Each case runs a fresh interpreter: the loader's effects are on sys.modules at import time.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, Sandbox, ip

PROBE = """
import json, sys
before = set(sys.modules)
from cni_hostdev import netlink, netlink_loader
links_only = sorted(m for m in set(sys.modules) - before if m.startswith("pyroute2"))
netlink.rtmsg(), netlink.ifaddrmsg()
after_load = set(sys.modules)
fell_while_loading = list(netlink_loader.fell_through)
loaded = sorted(m for m in after_load - before if m.startswith("pyroute2"))
left = sorted(m for m in netlink_loader.answers() if isinstance(sys.modules.get(m), netlink_loader.StandIn))
left += sorted(m for m in sys.modules if m.startswith(netlink_loader.PLUGINS_PACKAGE))
left += [m for m in (netlink_loader.WIRELESS, "pyroute2.config") if m in sys.modules]
placeholder = sys.modules["pyroute2"]
rule = netlink.fibmsg()
kinds = {}
if len(sys.argv) > 1:  # a netns (a path) to list the links of: the client at work
    from cni_hostdev import netns
    with netns.entered(netns.open_netns(sys.argv[1])):
        rtnl = netlink.Rtnl()
    with rtnl:
        kinds = {link.name: link.kind for link in rtnl.links()}
print(json.dumps({
    "loaded": loaded, "links_only": links_only, "fell_while_loading": fell_while_loading, "stand_ins_left": left,
    "standard_modules": sorted(m for m in after_load - before if not m.startswith(("pyroute2", "cni_hostdev"))),
    "placeholder_is_bare": not hasattr(placeholder, "IPRoute"), "rule": type(rule).__name__, "kinds": kinds,
    "files": {m: getattr(sys.modules[m], "__file__", None) for m in loaded},
}))
"""

# What the message modules bring along. A new entry means pyroute2 imports more at start-up;
# check it costs nothing (or stand it in) before adding it here.
LINK_MODULES = {
    "pyroute2",
    "pyroute2.common",
    "pyroute2.netlink",
    "pyroute2.netlink.exceptions",
    "pyroute2.netlink.rtnl",
    "pyroute2.netlink.rtnl.ifinfmsg",
}
EXPECTED_PYROUTE2_MODULES = LINK_MODULES | {"pyroute2.netlink.rtnl.ifaddrmsg", "pyroute2.netlink.rtnl.rtmsg"}
# ... and of the standard library, only C modules and what every interpreter loads anyway.
EXPECTED_STANDARD_MODULES = {"_collections", "_functools", "_socket", "_struct", "errno", "struct"}
STARTUP_MODULES = {"os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc", "__future__"}


def probe(*args: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-S", "-c", PROBE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT}:{':'.join(p for p in sys.path if p.endswith('site-packages'))}"},
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_only_the_message_modules_load_and_each_when_first_used() -> None:
    seen = probe()
    assert set(seen["links_only"]) == LINK_MODULES  # type: ignore[call-overload]
    assert set(seen["loaded"]) == EXPECTED_PYROUTE2_MODULES  # type: ignore[call-overload]
    standard = set(seen["standard_modules"])  # type: ignore[call-overload]
    assert standard <= EXPECTED_STANDARD_MODULES | STARTUP_MODULES, sorted(standard)


def test_the_package_itself_is_a_placeholder() -> None:
    assert probe()["placeholder_is_bare"], "pyroute2/__init__.py ran: the whole library is loaded"


def test_no_stand_in_is_left_and_none_was_asked_for_more_than_it_answers() -> None:
    seen = probe()
    assert seen["stand_ins_left"] == []
    assert seen["fell_while_loading"] == [], "pyroute2 now takes more from the stand-ins while loading"


def test_the_real_modules_are_back_afterwards() -> None:
    code = (
        "from cni_hostdev import netlink, netlink_loader\n"
        "import importlib, sys\n"
        "modules = {name: importlib.import_module(name) for name in netlink_loader.answers()}\n"
        "real = {name: type(module) is type(sys) and hasattr(module, '__file__') for name, module in modules.items()}\n"
        "print(all(real.values()), sorted(n for n, ok in real.items() if not ok))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.stdout.split(" ", 1)[0] == "True", out.stdout + out.stderr


def _names_taken_from(path: str, module: str) -> set[str]:
    """The names the file at `path` takes from `module`: imported, read as attributes, or getattr'd."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == module:
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == module:
            names.add(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            target, *rest = node.args
            if isinstance(target, ast.Name) and target.id == module and rest and isinstance(rest[0], ast.Constant):
                names.add(str(rest[0].value))
    return names


def test_socket_is_only_asked_for_the_names_it_answers() -> None:
    from cni_hostdev import netlink_loader

    files = probe()["files"]
    assert isinstance(files, dict)
    used = set().union(*(_names_taken_from(path, "socket") for path in files.values() if path))
    assert used <= set(netlink_loader.answers()["socket"]), sorted(used - set(netlink_loader.answers()["socket"]))


def test_typing_is_only_asked_for_the_annotation_names_it_answers() -> None:
    """pyroute2 evaluates annotations at import (no `from __future__ import annotations`): they
    may be placeholders as long as pyroute2 takes nothing else from typing."""
    from cni_hostdev import netlink_loader

    files = probe()["files"]
    assert isinstance(files, dict)
    used = set().union(*(_names_taken_from(path, "typing") for path in files.values() if path))
    assert used <= set(netlink_loader.answers()["typing"]), sorted(used)
    annotation = netlink_loader.ANNOTATION
    assert annotation[str] is annotation and annotation("T", bound=int) is annotation and (annotation | None)


def test_every_answer_is_what_the_real_module_gives() -> None:
    import _thread
    import collections
    import functools
    import socket
    import threading
    import types
    import weakref

    import pyroute2.config  # the real settings (the loader's stand-in only lives while messages load)

    from cni_hostdev import netlink_loader

    given = netlink_loader.answers()
    for name, value in given["socket"].items():
        if name not in ("AddressFamily", "socket"):
            assert value == getattr(socket, name), name
    # The two documented exceptions: an annotation, and the base of pyroute2's own socket classes.
    assert given["socket"]["AddressFamily"] is netlink_loader.ANNOTATION
    assert given["socket"]["socket"] in socket.socket.__mro__
    assert given["threading"]["Lock"] is threading.Lock and given["threading"]["local"] is threading.local
    assert type(given["threading"]["RLock"]()) is type(threading.RLock()) is _thread.RLock
    assert given["weakref"]["proxy"] is weakref.proxy and given["weakref"]["ref"] is weakref.ref
    assert given["collections"]["OrderedDict"] is collections.OrderedDict
    assert given["functools"]["partial"] is functools.partial
    assert given["types"]["FunctionType"] is types.FunctionType
    for name, value in given["pyroute2.config"].items():
        assert value == getattr(pyroute2.config, name), name


def test_a_stand_in_passes_other_names_to_the_real_module() -> None:
    from cni_hostdev.netlink_loader import StandIn, fell_through

    stand_in = StandIn("json", {})
    assert stand_in.dumps([1]) == "[1]"
    assert fell_through[-1] == "json.dumps"


def test_rules_load_later_and_the_client_sees_kinds_without_their_data_plugins(sandbox: Sandbox) -> None:
    pod = sandbox.pod()
    ip("-n", pod, "link", "add", "tvx", "type", "vxlan", "id", "42", "dstport", "4789")
    ip("-n", pod, "link", "add", "tvl", "type", "veth", "peer", "name", "tvlp")
    seen = probe(f"/run/netns/{pod}")
    assert seen["rule"] == "fibmsg"
    assert seen["kinds"] == {"lo": None, "tvx": "vxlan", "tvl": "veth", "tvlp": "veth"}
