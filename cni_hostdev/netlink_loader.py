"""Loading pyroute2's rtnetlink message classes, and nothing else of pyroute2 or of what it imports.

Importing the `pyroute2` package runs its `__init__`, which loads the whole library (IPRoute,
asyncio, ssl ...): tens of milliseconds of every exec for classes we never use. So the message
modules are imported below a placeholder package object that skips `pyroute2/__init__.py`.

The message modules themselves import standard modules for features the messages never use
(`multiprocessing` for IPRoute's helpers, `re` for one pattern, `typing` for annotations, `socket`
for constants that `_socket` holds too ...): loading those for real would cost more than the
messages. While the message modules load, each of those is a stand-in (`StandIn`) that answers
the few names pyroute2 takes from it with what the real module would give (the very same C
objects, or the same answer computed without it) and imports the real module for any other name:
a stand-in may be slower than the real thing, never different. The stand-ins leave `sys.modules`
once the messages are loaded, so any later import gets the real module. The data plugins of
`ifinfmsg` (bond, vlan, vxlan ...) decode the kind-specific details of a link, which we never read:
with stand-ins, those details decode as raw bytes, as for a kind pyroute2 does not know.

`tests/unit/test_netlink_loader.py` pins which modules load, that no name falls through to a real
module while they do, and that every answer equals the real module's: a pyroute2 release that
imports or uses more fails there, not at a user's ADD.
"""

from __future__ import annotations

import _collections
import _functools
import _signal
import _socket
import _thread
import _weakref
import os
import struct
import sys

from cni_hostdev import logs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

MESSAGES = ("ifinfmsg", "ifaddrmsg", "rtmsg")
DATA_PLUGINS = (
    "bond", "can", "geneve", "gtp", "ipoib", "ipvlan", "team", "tun", "tuntap", "vlan", "vrf", "vti", "vti6",
    "vxlan", "xfrm",
)  # fmt: skip
PLUGINS_PACKAGE = "pyroute2.netlink.rtnl.ifinfmsg.plugins"
_SOCKET_NAMES = ("AF_INET", "AF_INET6", "AF_UNSPEC", "AF_BRIDGE", "AF_NETLINK", "inet_ntop", "inet_pton")
# Names asked of a stand-in that it does not answer (each then imports the real module): none,
# while the messages load, in the pyroute2 release we ship.
fell_through: list[str] = []
_ModuleType = type(sys)


class StandIn(_ModuleType):  # type: ignore[misc,valid-type]
    """A module as pyroute2 sees it while its messages load: the names in `answers`, and the real
    module's for any other."""

    def __init__(self, name: str, answers: dict[str, Any]) -> None:
        super().__init__(name)
        self.__dict__.update(answers)

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        fell_through.append(f"{self.__name__}.{attr}")
        return getattr(self._real(), attr)

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


class _Prefix:
    __slots__ = ("_end",)

    def __init__(self, end: int) -> None:
        self._end = end

    def end(self) -> int:
        return self._end


class _LeadingRun:
    """A pattern that is one character class repeated at the start: `^[0-9.]+`."""

    __slots__ = ("_characters",)

    def __init__(self, characters: str) -> None:
        self._characters = characters

    def match(self, text: str) -> _Prefix | None:
        end = len(text) - len(text.lstrip(self._characters))
        return _Prefix(end) if end else None


_KNOWN_PATTERNS = {"^[0-9.]+": "0123456789."}  # pyroute2's config matches the kernel release with it


def compile_pattern(pattern: str, flags: int = 0) -> Any:
    """`re.compile`, for the patterns pyroute2 compiles while loading; `re` itself for any other."""
    characters = _KNOWN_PATTERNS.get(pattern)
    if characters is not None and not flags:
        return _LeadingRun(characters)
    import re

    return re.compile(pattern, flags)


def _never(name: str) -> Callable[..., Any]:
    def refuse(*_: object, **__: object) -> Any:
        raise RuntimeError(f"pyroute2 called {name}, which host-device does not provide")

    return refuse


def _real_traceback(attr: str) -> Callable[..., Any]:
    def call(*args: object, **kwargs: object) -> Any:
        import traceback  # by the time pyroute2 reports a decoding error, the stand-in is gone

        return getattr(traceback, attr)(*args, **kwargs)

    return call


class _Uname:
    """platform.uname()'s fields, which pyroute2 reads by name."""

    def __init__(self, uname: os.uname_result) -> None:
        self.system = uname.sysname
        self.node = uname.nodename
        self.release = uname.release
        self.version = uname.version
        self.machine = uname.machine


def platform_answers() -> dict[str, Any]:
    """What the `platform` stand-in answers, from os and struct (the real module costs ~3 ms)."""
    uname = os.uname()
    return {
        "uname": lambda: _Uname(uname),
        "machine": lambda: uname.machine,
        "architecture": lambda executable="": (f"{struct.calcsize('P') * 8}bit", "ELF"),
    }


def answers() -> dict[str, dict[str, Any]]:
    """Per stand-in module, the names it answers.

    `socket`'s constants and functions are `_socket`'s (its enum classes, which cost `socket` most
    of its import, compare equal to those ints); two names differ on purpose: `AddressFamily`,
    only in annotations, and `socket`, which pyroute2 keeps as the base of its own socket classes
    (IPRoute's), which we never create.
    """
    pyroute2_log = logs.get_logger("pyroute2")
    socket = {name: getattr(_socket, name) for name in _SOCKET_NAMES}
    return {
        "multiprocessing": {name: _never(f"multiprocessing.{name}") for name in ("Pipe", "Queue", "Process")},
        "logging": {"getLogger": logs.get_logger, "error": pyroute2_log.error, "warning": pyroute2_log.warning},
        "traceback": {name: _real_traceback(name) for name in ("format_exc", "format_stack")},
        "platform": platform_answers(),
        "typing": {name: ANNOTATION for name in ("Any", "Callable", "Dict", "Literal", "Optional", "TypeVar", "Union")},
        "socket": socket | {"socket": _socket.socket, "AddressFamily": ANNOTATION},
        "threading": {"Lock": _thread.allocate_lock, "RLock": _thread.RLock, "local": _thread._local},
        "weakref": {"proxy": _weakref.proxy, "ref": _weakref.ref},
        "collections": {"OrderedDict": _collections.OrderedDict},
        "functools": {"partial": _functools.partial},
        "re": {"compile": compile_pattern},
        "signal": {"SIGUSR1": _signal.SIGUSR1},
        "pkgutil": {},
        "importlib": {},
        "types": {"FunctionType": type(_never)},
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


def _data_plugins(raw_bytes: type) -> dict[str, Any]:
    """The plugins package and its modules, each naming `raw_bytes` as its kind's data class."""
    package = _ModuleType(PLUGINS_PACKAGE)
    modules = {PLUGINS_PACKAGE: package}
    for kind in DATA_PLUGINS:
        module = _ModuleType(f"{PLUGINS_PACKAGE}.{kind}")
        setattr(module, kind, raw_bytes)
        setattr(package, kind, module)
        modules[module.__name__] = module
    return modules


class Messages:
    """The message classes: `ifinfmsg` (links), `ifaddrmsg` (addresses), `rtmsg` (routes)."""

    __slots__ = MESSAGES

    def __init__(self, ifinfmsg: Any, ifaddrmsg: Any, rtmsg: Any) -> None:
        self.ifinfmsg = ifinfmsg
        self.ifaddrmsg = ifaddrmsg
        self.rtmsg = rtmsg


def load() -> Messages:
    """The message classes ifinfmsg, ifaddrmsg and rtmsg (fibmsg loads on first use: see `fibmsg`)."""
    _placeholder_package()
    installed = {name: StandIn(name, given) for name, given in answers().items() if name not in sys.modules}
    sys.modules.update(installed)
    plugins: dict[str, Any] = {}
    try:
        from pyroute2.netlink import nlmsg_atoms

        plugins = {name: module for name, module in _data_plugins(nlmsg_atoms.hex).items() if name not in sys.modules}
        sys.modules.update(plugins)
        from pyroute2.netlink.rtnl import ifaddrmsg as ifaddrmsg_module
        from pyroute2.netlink.rtnl import ifinfmsg as ifinfmsg_module
        from pyroute2.netlink.rtnl import rtmsg as rtmsg_module
    finally:
        for name, module in (installed | plugins).items():
            if sys.modules.get(name) is module:
                real = module.__dict__.get("_real_module")
                if real is not None:
                    sys.modules[name] = real
                else:
                    del sys.modules[name]
    return Messages(ifinfmsg_module.ifinfmsg, ifaddrmsg_module.ifaddrmsg, rtmsg_module.rtmsg)


def fibmsg() -> Any:
    """A policy rule message; only useInterfaceNetwork needs them, so their module loads on first use."""
    _placeholder_package()
    from pyroute2.netlink.rtnl.fibmsg import fibmsg as message

    return message()
