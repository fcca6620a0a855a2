"""The CNI spec versions this plugin speaks: the table, checking a config's version, the VERSION answer.

Kept cheap to import: VERSION needs nothing else. Versions of the table compare by their place
in it; `packaging` loads only for one this build does not know (a runtime's or an IPAM plugin's
newer version, or a malformed one). packaging/versions_header.py generates the C launcher's
VERSION answer from this file.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
# The oldest cniVersion in which a command exists (the spec's own gates); the others are in all.
FIRST_VERSION = {"CHECK": "0.4.0", "GC": "1.1.0", "STATUS": "1.1.0"}
_PLACE = {version: place for place, version in enumerate(SUPPORTED_VERSIONS)}


def compare(a: str, b: str) -> int:
    """Below, at or above zero as version `a` is older than, the same as or newer than `b`.

    Raises ValueError (packaging's InvalidVersion) for one that is not a version at all."""
    if a in _PLACE and b in _PLACE:
        return _PLACE[a] - _PLACE[b]
    from packaging.version import Version

    left, right = Version(a), Version(b)
    return (left > right) - (left < right)


def known_or_latest(version: object) -> str:
    """`version` if we speak it, else the latest: what an answer (a result, an error) is printed in."""
    return version if isinstance(version, str) and version in SUPPORTED_VERSIONS else LATEST


def supported(text: str) -> str:
    """A config's cniVersion, which must be one we speak (code 1 naming it otherwise)."""
    if text in _PLACE:
        return text
    from packaging.version import InvalidVersion, Version

    from cni_hostdev.errors import INCOMPATIBLE_VERSION, CniError

    try:
        Version(text)
    except InvalidVersion:
        raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {text!r} is not a version") from None
    raise CniError(
        INCOMPATIBLE_VERSION,
        f"cniVersion {text!r} is not supported",
        f"supported versions: {', '.join(SUPPORTED_VERSIONS)}",
    )


def answer() -> dict[str, Any]:
    """The VERSION answer, as libcni's skel gives it: our current version and every one we speak,
    whatever the call sent (clients send their latest version anyway)."""
    return {"cniVersion": LATEST, "supportedVersions": list(SUPPORTED_VERSIONS)}
