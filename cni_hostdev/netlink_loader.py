"""Loading pyroute2's rtnetlink message classes, and nothing else of pyroute2.

Importing the `pyroute2` package runs its `__init__`, which loads the whole library (IPRoute,
asyncio, ssl ...): tens of milliseconds of every exec for classes we never use. So the message
modules are imported below a placeholder package object that skips `pyroute2/__init__.py`, and
the modules they import for features we never use (`multiprocessing`, `logging`, `traceback`,
`platform`) are stand-ins while they load, then taken away again, so that any later import gets
the real module. `tests/unit/test_netlink_loader.py` pins each of these assumptions, so a pyroute2
release that changes what its message modules import fails loudly there, not at a user's ADD.
"""

from __future__ import annotations

import importlib.util
import os
import struct
import sys
import types
from typing import Any

from cni_hostdev import logs

STAND_INS = ("multiprocessing", "logging", "traceback", "platform")
# Every call of a stand-in while the message modules load, by name ("platform.uname"). Those that
# answer (logging hands over our stderr writer, platform answers from os and struct) are expected;
# tests/unit/test_netlink_loader.py pins which, and that the others are never called.
calls: list[str] = []


def _recorded(name: str, answer: Any) -> Any:
    def called(*args: object, **kwargs: object) -> Any:
        calls.append(name)
        return answer(*args, **kwargs)

    return called


def _never(name: str) -> Any:
    def refuse(*_: object, **__: object) -> Any:
        raise RuntimeError(f"pyroute2 called {name}, which host-device does not provide")

    return _recorded(name, refuse)


def _real_traceback() -> types.ModuleType:
    import traceback  # by the time pyroute2 reports a decoding error, the stand-in is gone

    return traceback


def _stand_ins() -> dict[str, types.ModuleType]:
    """What each costs for real on every exec: `multiprocessing` ~6 ms (IPRoute's helpers),
    `logging` with `traceback` ~8 ms (our stderr writer takes pyroute2's warnings), `platform`
    ~3 ms (uname and architecture, which os and struct answer)."""
    multiprocessing = types.ModuleType("multiprocessing")
    for name in ("Pipe", "Queue", "Process"):
        setattr(multiprocessing, name, _never(f"multiprocessing.{name}"))

    logging = types.ModuleType("logging")
    logging.getLogger = _recorded("logging.getLogger", logs.get_logger)  # type: ignore[attr-defined]
    logging.error = _recorded("logging.error", logs.get_logger("pyroute2").error)  # type: ignore[attr-defined]
    logging.warning = _recorded("logging.warning", logs.get_logger("pyroute2").warning)  # type: ignore[attr-defined]

    traceback = types.ModuleType("traceback")
    traceback.format_exc = _recorded("traceback.format_exc", lambda *a, **k: _real_traceback().format_exc(*a, **k))  # type: ignore[attr-defined]
    traceback.format_stack = _recorded(  # type: ignore[attr-defined]
        "traceback.format_stack", lambda *a, **k: _real_traceback().format_stack(*a, **k)
    )

    platform = types.ModuleType("platform")
    for name, answer in platform_answers().items():
        setattr(platform, name, _recorded(f"platform.{name}", answer))
    return {"multiprocessing": multiprocessing, "logging": logging, "traceback": traceback, "platform": platform}


def platform_answers() -> dict[str, Any]:
    """What the `platform` stand-in answers, from os and struct (the real module costs ~3 ms)."""
    uname = os.uname()
    return {
        "uname": lambda: types.SimpleNamespace(
            system=uname.sysname,
            node=uname.nodename,
            release=uname.release,
            version=uname.version,
            machine=uname.machine,
        ),
        "machine": lambda: uname.machine,
        "architecture": lambda executable="": (f"{struct.calcsize('P') * 8}bit", "ELF"),
    }


def _placeholder_package() -> None:
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.submodule_search_locations is None:
        raise ImportError("pyroute2 is not installed")
    placeholder = types.ModuleType("pyroute2")
    placeholder.__path__ = list(spec.submodule_search_locations)
    placeholder.__spec__ = spec
    sys.modules["pyroute2"] = placeholder


def load() -> types.SimpleNamespace:
    """The message classes ifinfmsg, ifaddrmsg and rtmsg (fibmsg loads on first use: see `fibmsg`)."""
    _placeholder_package()
    installed = {name: module for name, module in _stand_ins().items() if name not in sys.modules}
    sys.modules.update(installed)
    try:
        from pyroute2.netlink.rtnl import ifaddrmsg as ifaddrmsg_module
        from pyroute2.netlink.rtnl import ifinfmsg as ifinfmsg_module
        from pyroute2.netlink.rtnl import rtmsg as rtmsg_module
    finally:
        for name, module in installed.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return types.SimpleNamespace(
        ifinfmsg=ifinfmsg_module.ifinfmsg, ifaddrmsg=ifaddrmsg_module.ifaddrmsg, rtmsg=rtmsg_module.rtmsg
    )


def fibmsg() -> Any:
    """A policy rule message; only useInterfaceNetwork needs them, so their module loads on first use."""
    _placeholder_package()
    from pyroute2.netlink.rtnl.fibmsg import fibmsg as message

    return message()
