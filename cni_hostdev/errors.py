"""CNI error objects: every failure leaves the plugin as one of these."""

from __future__ import annotations

from typing import Any

# Codes reserved by the CNI spec; ours start at 100.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
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


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> dict[str, Any]:
        obj: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            obj["details"] = self.details
        return obj
