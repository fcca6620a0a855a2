"""CNI error objects: every failure leaves the plugin as one of these."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Codes reserved by the CNI spec; ours start at 100.
INCOMPATIBLE_VERSION = 1
INVALID_ENV = 4
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50

DEVICE_NOT_FOUND = 100
DEVICE_IN_USE = 101
MOVE_FAILED = 102
NAME_CONFLICT = 103
CHECK_FAILED = 104
STATE_FAILURE = 105
NETLINK_FAILURE = 106
IPAM_FAILURE = 107
INTERNAL = 999

# Errors about a device: their messages say on which node they happened, because Multus and
# kubelet show a plugin's error in the pod's events, which do not say where the pod was scheduled.
DEVICE_CODES = frozenset((DEVICE_NOT_FOUND, DEVICE_IN_USE, MOVE_FAILED, NAME_CONFLICT))


def node_name() -> str:
    return os.uname().nodename


def on_node(msg: str) -> str:
    """`msg` with "on node NAME" at the end of its first clause (before "; what to do")."""
    if " on node " in msg:
        return msg
    fact, sep, advice = msg.partition("; ")
    return f"{fact} on node {node_name()}{sep}{advice}"


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "", *, about_device: bool | None = None) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details
        # A config error can be about a device too (a deviceID outside the pool).
        self.about_device = code in DEVICE_CODES if about_device is None else about_device

    def naming_node(self) -> CniError:
        """Itself, its message naming the node when it is about a device."""
        if self.about_device:
            self.msg = on_node(self.msg)
        return self

    def to_json(self, cni_version: str) -> dict[str, Any]:
        obj: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            obj["details"] = self.details
        return obj
