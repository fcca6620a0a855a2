"""Start-up tricks that no other test holds to what they replace (the README's table, `make tricks`):
the netlink socket through `_socket` instead of `socket`, and value classes written with `__slots__`
and `__init__` instead of `dataclasses(slots=True)`. (The lean stand-ins, the pyroute2 loader, the
bootstrap and its finder, gc off, typing off and packaging on demand have tests of their own.)"""

from __future__ import annotations

import ast
import socket

from cni_hostdev import netlink
from tests.conftest import ROOT


def test_the_netlink_socket_is_the_one_socket_would_make() -> None:
    """What netlink takes from `_socket` is what `socket` hands on: the same C objects and values."""
    import _socket

    for name in ("AF_NETLINK", "SOCK_RAW", "SOCK_CLOEXEC", "NETLINK_ROUTE", "SOL_SOCKET", "SO_RCVBUF"):
        assert getattr(_socket, name) == getattr(socket, name), name
    assert (netlink.AF_INET, netlink.AF_INET6) == (socket.AF_INET, socket.AF_INET6)
    assert socket.socket.__mro__[1] is _socket.socket, "socket.socket is _socket.socket with enum wrappers"


def slot_classes() -> list[tuple[str, ast.ClassDef]]:
    found = []
    for path in sorted((ROOT / "cni_hostdev").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(s, ast.Assign) and any(getattr(t, "id", "") == "__slots__" for t in s.targets)
                for s in node.body
            ):
                found.append((f"{path.relative_to(ROOT)}:{node.name}", node))
    return found


def test_every_value_class_sets_every_slot_in_its_init_as_a_dataclass_would() -> None:
    """A dataclass sets every field in the __init__ it writes; ours are written by hand, so a slot
    forgotten there would raise AttributeError at its first read. Each `__slots__` class with an
    `__init__` assigns every slot it declares (or inherits none it leaves unset)."""
    checked, unset = 0, {}
    for where, node in slot_classes():
        slots_node = next(
            s for s in node.body if isinstance(s, ast.Assign) and getattr(s.targets[0], "id", "") == "__slots__"
        )
        slots = {
            elt.value
            for elt in ast.walk(slots_node.value)
            if isinstance(elt, ast.Constant) and isinstance(elt.value, str) and elt.value.isidentifier()
        }
        init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
        if init is None:
            continue
        assigned = {
            target.attr
            for statement in ast.walk(init)
            for target in getattr(statement, "targets", [getattr(statement, "target", None)])
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
        }
        if any(isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "__init__" for n in ast.walk(init)):
            assigned |= slots  # it hands some on to a base's __init__: trusted for those
        checked += 1
        if slots - assigned:
            unset[where] = sorted(slots - assigned)
    assert checked >= 10, "found too few value classes: the check reads nothing"
    assert not unset, unset
