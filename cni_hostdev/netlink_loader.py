"""Loading pyroute2's rtnetlink message classes, each on first use, and nothing else of pyroute2 or
of what it imports.

Importing the `pyroute2` package runs its `__init__`, which loads the whole library (IPRoute,
asyncio, ssl ...): tens of milliseconds of every exec for classes we never use. So the message
modules are imported below a placeholder package object that skips `pyroute2/__init__.py`, and
only when a message of theirs is first built: a DEL, which moves a device and reads no route or
address, never loads the route and address messages.

The message modules import more than messages need: `pyroute2.config` (IPRoute's settings, which
drags in multiprocessing, platform and re), `typing` for annotations, `socket` for constants that
`_socket` holds too, `threading` for locks that `_thread` makes ... Loading those for real would
cost more than the messages. While the message modules load, each is a stand-in (`StandIn`) that
answers the few names the messages take from it with what the real module would give (the very
same C objects, or equal values) and imports the real module for any other name: a stand-in may be
slower than the real thing, never different. The data plugins of `ifinfmsg` (bond, vlan, vxlan ...)
and its wireless events decode details of a link we never read: with stand-ins, those decode as raw
bytes, as for a kind pyroute2 does not know.

What the load leaves behind is ours alone. The stand-ins leave `sys.modules`, and so do the
modules we loaded and the placeholder package: they wait in `_loaded` for the next message's load,
so a later `import pyroute2` anywhere in the process (a node tool's `from pyroute2 import IPRoute`)
loads the real library, untouched by any of this. Inside our copies, each stand-in then settles:
it keeps only the answers that are the real module's own objects (`REAL_OBJECTS`) and hands every
other name to the real module, so `common.get_address_family("::1")` is `socket.AF_INET6`, the
enum member, as in the real library. What remains different is bound by value at import and only
ever compared or annotated: `AF_INET` and its kin are the equal ints `_socket` holds, annotations
are placeholders, the modules' `log` is our logger.

`tests/unit/test_netlink_loader.py` pins which modules load, that no name falls through to a real
module while they do, that every answer equals the real module's, and what a process sees after
the load, each in a fresh interpreter started as the frozen program starts (`-I -S`): a pyroute2
release that imports or uses more fails there, not at a user's ADD.
"""

from __future__ import annotations

import _collections
import _functools
import _socket
import _thread
import _weakref
import sys

from cni_hostdev import logs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MODULES = {
    "ifinfmsg": "pyroute2.netlink.rtnl.ifinfmsg",
    "ifaddrmsg": "pyroute2.netlink.rtnl.ifaddrmsg",
    "rtmsg": "pyroute2.netlink.rtnl.rtmsg",
    "fibmsg": "pyroute2.netlink.rtnl.fibmsg",
}
PLUGINS_PACKAGE = "pyroute2.netlink.rtnl.ifinfmsg.plugins"
DATA_PLUGINS = (
    "bond", "can", "geneve", "gtp", "ipoib", "ipvlan", "team", "tun", "tuntap", "vlan", "vrf", "vti", "vti6",
    "vxlan", "xfrm",
)  # fmt: skip
WIRELESS = "pyroute2.netlink.rtnl.iw_event"
_SOCKET_NAMES = ("AF_INET", "AF_INET6", "AF_UNSPEC", "AF_BRIDGE", "AF_NETLINK", "inet_ntop", "inet_pton")
# The answers that are the real module's very own objects (tested with `is`): a stand-in keeps them
# once the messages are loaded. Every other answer (an int where `socket` has an enum member, a
# placeholder, our logger, pyroute2's settings) it drops then, so a later use gets the real one.
REAL_OBJECTS = {
    "socket": {"inet_ntop", "inet_pton"},
    "threading": {"Lock", "local"},
    "weakref": {"proxy", "ref"},
    "collections": {"OrderedDict"},
    "functools": {"partial"},
    "types": {"FunctionType"},
}
# Names asked of a stand-in that it does not answer (each then imports the real module): none
# while the messages load, in the pyroute2 release we ship.
fell_through: list[str] = []
_ModuleType = type(sys)
# pyroute2's modules as we loaded them, the placeholder package among them: out of sys.modules
# between loads, so that nothing else in the process ever imports our partial library.
_loaded: dict[str, Any] = {}


class StandIn(_ModuleType):  # type: ignore[misc,valid-type]
    """A module as pyroute2 sees it while its messages load: the names in `answers`, and the real
    module's for any other. Once settled, only the real module's own objects and the real module's
    answer for everything else."""

    def __init__(self, name: str, answers: dict[str, Any]) -> None:
        super().__init__(name)
        self.__dict__.update(answers)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        if not self.__dict__.get("_settled"):
            fell_through.append(f"{self.__name__}.{attr}")
        return getattr(self._real(), attr)

    def settle(self) -> None:
        kept = REAL_OBJECTS.get(self.__name__, set())
        for attr in [attr for attr in self.__dict__ if not attr.startswith("_") and attr not in kept]:
            del self.__dict__[attr]
        self._settled = True

    def _real(self) -> Any:
        real = self.__dict__.get("_real_module")
        if real is None:
            name = self.__name__
            mine = sys.modules.get(name) is self  # asked while the messages load: step aside
            if mine:
                del sys.modules[name]
            try:
                __import__(name)
                real = self.__dict__["_real_module"] = sys.modules[name]
            finally:
                if mine:
                    sys.modules[name] = self
        return real


class _Annotation:
    """What `Union[...]`, `Literal[...]` or `TypeVar(...)` evaluate to in pyroute2's annotations,
    which nothing reads at run time."""

    def __getitem__(self, _: object) -> _Annotation:
        return self

    def __call__(self, *_: object, **__: object) -> _Annotation:
        return self

    def __or__(self, _: object) -> _Annotation:
        return self

    __ror__ = __or__


ANNOTATION = _Annotation()


def answers() -> dict[str, dict[str, Any]]:
    """Per stand-in module, the names it answers; `traceback`, `pkgutil` and `importlib` answer
    none: the messages use them only when they fail, or for plugins we do not load.

    `socket`'s constants and functions are `_socket`'s (its enum classes, which cost `socket` most
    of its import, compare equal to those ints); two names differ on purpose: `AddressFamily`,
    only in annotations, and `socket`, which pyroute2's settings keep as the base of its own socket
    classes (IPRoute's), which we never create. pyroute2's settings answer what `ifinfmsg` reads.
    """
    pyroute2_log = logs.get_logger("pyroute2")
    socket = {name: getattr(_socket, name) for name in _SOCKET_NAMES}
    return {
        "pyroute2.config": {"AF_BRIDGE": _socket.AF_BRIDGE, "data_plugins_pkgs": [], "data_plugins_path": []},
        "logging": {"getLogger": logs.get_logger, "error": pyroute2_log.error, "warning": pyroute2_log.warning},
        "typing": {name: ANNOTATION for name in ("Any", "Callable", "Dict", "Literal", "Optional", "TypeVar", "Union")},
        "socket": socket | {"socket": _socket.socket, "AddressFamily": ANNOTATION},
        "threading": {"Lock": _thread.allocate_lock, "RLock": _thread.RLock, "local": _thread._local},
        "weakref": {"proxy": _weakref.proxy, "ref": _weakref.ref},
        "collections": {"OrderedDict": _collections.OrderedDict},
        "functools": {"partial": _functools.partial},
        "types": {"FunctionType": type(answers)},
        "traceback": {},
        "pkgutil": {},
        "importlib": {},
    }


def _find_spec(name: str) -> Any:
    """What `importlib.util.find_spec` answers for a top-level name, without importing importlib."""
    for finder in sys.meta_path:
        find = getattr(finder, "find_spec", None)
        spec = find(name, None) if find is not None else None
        if spec is not None:
            return spec
    return None


def _placeholder_package() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = _find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("pyroute2 is not installed")
    placeholder = _ModuleType("pyroute2")
    placeholder.__path__ = list(spec.submodule_search_locations)
    placeholder.__spec__ = spec
    sys.modules["pyroute2"] = placeholder


def _raw_bytes_decoders() -> dict[str, Any]:
    """Modules whose classes decode as raw bytes: `ifinfmsg`'s data plugins and wireless events."""
    from pyroute2.netlink import nlmsg_atoms

    package = _ModuleType(PLUGINS_PACKAGE)
    modules = {PLUGINS_PACKAGE: package}
    for kind in DATA_PLUGINS:
        module = _ModuleType(f"{PLUGINS_PACKAGE}.{kind}")
        setattr(module, kind, nlmsg_atoms.hex)
        setattr(package, kind, module)
        modules[module.__name__] = module
    wireless = modules[WIRELESS] = _ModuleType(WIRELESS)
    setattr(wireless, "iw_event", nlmsg_atoms.hex)  # noqa: B010 - a plain module object
    return modules


def message(name: str) -> Any:
    """The message class `name` (see MODULES), its module loaded on first use."""
    module_name = MODULES[name]
    module = _loaded.get(module_name) or sys.modules.get(module_name) or _load(module_name)
    return getattr(module, name)


def loaded_modules() -> list[str]:
    """The names of pyroute2's modules we loaded (none of them in sys.modules)."""
    return sorted(_loaded)


def _load(module_name: str) -> Any:
    package = sys.modules.get("pyroute2")
    if package is not None and package is not _loaded.get("pyroute2"):
        __import__(module_name)  # the real library is loaded already: its messages are real
        return sys.modules[module_name]
    sys.modules.update(_loaded)  # what an earlier load brought: pyroute2.netlink is not loaded twice
    _placeholder_package()
    installed: dict[str, Any] = {}
    try:
        for name, given in answers().items():
            if name not in sys.modules:
                installed[name] = sys.modules[name] = StandIn(name, given)
        if module_name == MODULES["ifinfmsg"]:
            for name, module in _raw_bytes_decoders().items():
                if name not in sys.modules:
                    installed[name] = sys.modules[name] = module
        __import__(module_name)
    finally:
        for name, module in installed.items():
            if sys.modules.get(name) is module:
                real = module.__dict__.get("_real_module")
                if real is not None:
                    sys.modules[name] = real
                else:
                    del sys.modules[name]
            if isinstance(module, StandIn):
                module.settle()
        for name in [name for name in sys.modules if name == "pyroute2" or name.startswith("pyroute2.")]:
            _loaded[name] = sys.modules.pop(name)
    return _loaded[module_name]
