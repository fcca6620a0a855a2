"""The start-up trick of cni_hostdev/netlink_loader.py, pinned: a pyroute2 release that changes what
its message modules import, or what they take from what they import, must fail here, not at a
user's ADD.

Each case runs a fresh interpreter started as the frozen program starts (`-I -S`, nothing
preloaded): in pytest's own process typing, socket and the rest are loaded already, and the
loader would never put a stand-in in their place.
"""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import ROOT, Sandbox, frozen_like, ip

PROBE = """
import json, sys
before = set(sys.modules)
from cni_hostdev import netlink, netlink_loader
links_only = netlink_loader.loaded_modules()
netlink.rtmsg(), netlink.ifaddrmsg()
after_load = set(sys.modules)
fell_while_loading = list(netlink_loader.fell_through)
loaded = netlink_loader.loaded_modules()
in_sys_modules = sorted(m for m in sys.modules if m == "pyroute2" or m.startswith("pyroute2."))
in_sys_modules += sorted(m for m, v in sys.modules.items() if isinstance(v, netlink_loader.StandIn))
placeholder = netlink_loader._loaded["pyroute2"]
rule = netlink.fibmsg()
kinds = {}
if len(sys.argv) > 1:  # a netns (a path) to list the links of: the client at work
    from cni_hostdev import netns
    with netns.entered(netns.open_netns(sys.argv[1])):
        rtnl = netlink.Rtnl()
    with rtnl:
        kinds = {link.name: link.kind for link in rtnl.links()}
print(json.dumps({
    "loaded": loaded, "links_only": links_only, "fell_while_loading": fell_while_loading,
    "in_sys_modules": in_sys_modules,
    "standard_modules": sorted(m for m in after_load - before if not m.startswith(("pyroute2", "cni_hostdev"))),
    "placeholder_is_bare": not hasattr(placeholder, "IPRoute"), "rule": type(rule).__name__, "kinds": kinds,
    "files": {m: getattr(netlink_loader._loaded[m], "__file__", None) for m in loaded},
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


def run_isolated(code: str, *args: str) -> str:
    out = subprocess.run([*frozen_like(code), *args], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def probe(*args: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(run_isolated(PROBE, *args))
    return result


def test_only_the_message_modules_load_and_each_when_first_used() -> None:
    seen = probe()
    assert set(seen["links_only"]) == LINK_MODULES
    assert set(seen["loaded"]) == EXPECTED_PYROUTE2_MODULES
    standard = set(seen["standard_modules"])
    assert standard <= EXPECTED_STANDARD_MODULES | STARTUP_MODULES, sorted(standard)


def test_the_package_itself_is_a_placeholder() -> None:
    assert probe()["placeholder_is_bare"], "pyroute2/__init__.py ran: the whole library is loaded"


def test_nothing_of_the_load_is_left_in_sys_modules_and_no_name_fell_through() -> None:
    seen = probe()
    assert seen["in_sys_modules"] == [], "our partial pyroute2 (or a stand-in) is visible to the process"
    assert seen["fell_while_loading"] == [], "pyroute2 now takes more from the stand-ins while loading"


def test_after_the_load_the_process_imports_the_real_library() -> None:
    """A node tool that loads pyroute2 itself after our messages gets all of it, untouched."""
    code = (
        "from cni_hostdev import netlink, netlink_loader\n"
        "netlink.rtmsg(), netlink.ifaddrmsg(), netlink.fibmsg()\n"
        "import importlib, socket, typing, logging, threading\n"
        "ours = netlink.ifinfmsg()\n"
        "from pyroute2 import IPRoute\n"
        "import pyroute2.common, pyroute2.netlink, pyroute2.netlink.rtnl.ifinfmsg as ifinfmsg, pyroute2.config\n"
        "real = {name: importlib.import_module(name) for name in netlink_loader.answers()}\n"
        "stand_ins = [f'{m}.{k}' for m, module in list(sys.modules.items()) if m.startswith('pyroute2')\n"
        "             for k, v in vars(module).items() if isinstance(v, netlink_loader.StandIn)]\n"
        "print(json.dumps({\n"
        "  'iproute': IPRoute.__module__,\n"
        "  'family_is_the_enum_member': pyroute2.common.get_address_family('::1') is socket.AF_INET6,\n"
        "  'socket_is_real': pyroute2.netlink.socket is socket and pyroute2.common.socket is socket,\n"
        "  'config_is_real': ifinfmsg.config is pyroute2.config,\n"
        "  'log_is_logging': type(ifinfmsg.log) is logging.Logger,\n"
        "  'annotations_are_typing': pyroute2.common.Any is typing.Any,\n"
        "  'modules_are_real': sorted(n for n, m in real.items() if isinstance(m, netlink_loader.StandIn)),\n"
        "  'stand_ins': stand_ins,\n"
        "  'ours_still_encode': ours.encode() is None and len(ours.data) > 0,\n"
        "}))\n"
    )
    seen = json.loads(run_isolated("import json\n" + code).splitlines()[-1])
    assert seen == {
        "iproute": "pyroute2.iproute.linux",
        "family_is_the_enum_member": True,
        "socket_is_real": True,
        "config_is_real": True,
        "log_is_logging": True,
        "annotations_are_typing": True,
        "modules_are_real": [],
        "stand_ins": [],
        "ours_still_encode": True,
    }


# What our own copies keep, as their globals see it: each stand-in, settled, answers with the real
# module's objects; what was bound by value at import equals the real object, or is an annotation.
OUR_COPIES = """
from cni_hostdev import netlink, netlink_loader
netlink.rtmsg(), netlink.ifaddrmsg(), netlink.fibmsg()
import importlib, socket
taken = json.loads(sys.argv[1])  # module file -> {stand-in module: [names its code takes from it]}
modules = {m.__file__: m for m in netlink_loader._loaded.values() if getattr(m, "__file__", None)}
report = {"different": [], "settled": [], "by_value": 0, "not_settled": []}
for path, module in modules.items():
    for global_name, value in vars(module).items():
        if isinstance(value, netlink_loader.StandIn):
            (report["settled"] if value.__dict__.get("_settled") else report["not_settled"]).append(value.__name__)
    for source, names in taken.get(path, {}).items():
        real = importlib.import_module(source)
        stand_in = vars(module).get(source.rpartition(".")[2])
        for name in names:
            real_value = getattr(real, name)
            if isinstance(stand_in, netlink_loader.StandIn) and getattr(stand_in, name) is not real_value:
                report["different"].append(f"{path}: {source}.{name} (attribute)")
            if name in vars(module) and vars(module)[name] is not real_value:
                ours = vars(module)[name]
                report["by_value"] += 1
                same_int = type(ours) is int and ours == real_value and hash(ours) == hash(real_value)
                annotation = ours is netlink_loader.ANNOTATION and source == "typing"
                if not (same_int and int(real_value) == ours or annotation):
                    report["different"].append(f"{path}: {source}.{name} (bound at import)")
common = netlink_loader._loaded["pyroute2.common"]
report["family"] = common.get_address_family("::1") is socket.AF_INET6
print(json.dumps(report))
"""


def _names_taken_from(path: str, module: str) -> set[str]:
    """The names the file at `path` takes from `module`: imported, read as attributes, or getattr'd."""
    names: set[str] = set()
    short = module.rpartition(".")[2]
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == module:
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == short:
            names.add(node.attr)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
            target, *rest = node.args
            if isinstance(target, ast.Name) and target.id == short and rest and isinstance(rest[0], ast.Constant):
                names.add(str(rest[0].value))
    return names


def _taken(files: dict[str, str | None], modules: list[str]) -> dict[str, dict[str, list[str]]]:
    return {
        path: {module: sorted(_names_taken_from(path, module)) for module in modules} for path in files.values() if path
    }


def test_our_copies_see_the_real_objects_or_equal_ones() -> None:
    from cni_hostdev import netlink_loader

    # The modules whose names our copies keep: every stand-in but logging (the copies log through
    # ours, which the next test holds to what they call) and pyroute2's settings (read at import).
    sources = [m for m in netlink_loader.answers() if m not in ("logging", "pyroute2.config")]
    taken = _taken(probe()["files"], sources)
    report = json.loads(run_isolated("import json\n" + OUR_COPIES, json.dumps(taken)))
    assert report["not_settled"] == []
    assert report["settled"], "no stand-in is held by our copies: the test checks nothing"
    assert report["by_value"] > 0, "nothing is bound by value: the test checks nothing"
    assert report["different"] == []
    assert report["family"] is True


def test_our_logger_answers_every_call_pyroute2_makes_on_its_log() -> None:
    from cni_hostdev import logs

    calls: set[str] = set()
    for path in filter(None, probe()["files"].values()):
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "log":
                calls.add(node.attr)
    assert calls, "pyroute2 logs nothing: the test checks nothing"
    assert {call for call in calls if not callable(getattr(logs.get_logger("pyroute2"), call, None))} == set()


def test_socket_is_only_asked_for_the_names_it_answers() -> None:
    from cni_hostdev import netlink_loader

    files = probe()["files"]
    used = set().union(*(_names_taken_from(path, "socket") for path in files.values() if path))
    assert used <= set(netlink_loader.answers()["socket"]), sorted(used - set(netlink_loader.answers()["socket"]))


def test_typing_is_only_asked_for_the_annotation_names_it_answers() -> None:
    """pyroute2 evaluates annotations at import (no `from __future__ import annotations`): they
    may be placeholders as long as pyroute2 takes nothing else from typing."""
    from cni_hostdev import netlink_loader

    files = probe()["files"]
    used = set().union(*(_names_taken_from(path, "typing") for path in files.values() if path))
    assert used <= set(netlink_loader.answers()["typing"]), sorted(used)
    annotation = netlink_loader.ANNOTATION
    assert annotation[str] is annotation and annotation("T", bound=int) is annotation and (annotation | None)


def test_every_answer_is_what_the_real_module_gives() -> None:
    import _thread
    import collections
    import functools
    import importlib
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
    # What a stand-in keeps after the load must be the real module's very own object.
    for module, names in netlink_loader.REAL_OBJECTS.items():
        real = importlib.import_module(module)
        for name in names:
            assert given[module][name] is getattr(real, name), f"{module}.{name}"


def test_a_stand_in_passes_other_names_to_the_real_module_and_settles_to_it() -> None:
    from cni_hostdev.netlink_loader import StandIn, fell_through

    stand_in = StandIn("json", {"dumps": repr, "JSONDecodeError": ValueError})
    assert stand_in.loads("[1]") == [1]
    assert fell_through[-1] == "json.loads"
    assert stand_in.dumps is repr
    stand_in.settle()
    import json as real

    assert stand_in.dumps is real.dumps and stand_in.JSONDecodeError is real.JSONDecodeError
    assert fell_through[-1] == "json.loads", "a settled stand-in's answers are not falling through"


def test_rules_load_later_and_the_client_sees_kinds_without_their_data_plugins(sandbox: Sandbox) -> None:
    pod = sandbox.pod()
    ip("-n", pod, "link", "add", "tvx", "type", "vxlan", "id", "42", "dstport", "4789")
    ip("-n", pod, "link", "add", "tvl", "type", "veth", "peer", "name", "tvlp")
    seen = probe(f"/run/netns/{pod}")
    assert seen["rule"] == "fibmsg"
    assert seen["kinds"] == {"lo": None, "tvx": "vxlan", "tvl": "veth", "tvlp": "veth"}
