"""What names and addresses may look like: MACs, PCI addresses, network names, container IDs, and
the keys a device is known by.

Character classes by hand rather than `re`, which every exec would pay for to check a few short
strings; ASCII only, whole strings (a regex's `$` would also let a trailing newline through).
"""

from __future__ import annotations

_DIGITS = "0123456789"
_HEX = frozenset(_DIGITS + "abcdefABCDEF")
_WORD = frozenset(_DIGITS + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME = _WORD | frozenset(".-")


def _hex(text: str, length: int) -> bool:
    return len(text) == length and all(c in _HEX for c in text)


def is_mac(text: str) -> bool:
    """aa:bb:cc:dd:ee:ff, any case."""
    parts = text.split(":")
    return len(parts) == 6 and all(_hex(part, 2) for part in parts)


def is_pci_address(text: str) -> bool:
    """0000:00:04.0 or 00:04.0, any case."""
    address, dot, function = text.rpartition(".")
    parts = address.split(":")
    if not dot or len(function) != 1 or function not in "01234567" or len(parts) not in (2, 3):
        return False
    return (len(parts) == 2 or _hex(parts[0], 4)) and _hex(parts[-2], 2) and _hex(parts[-1], 2)


def is_plain_name(text: str) -> bool:
    """A network name or container ID: [A-Za-z0-9][A-Za-z0-9_.-]*."""
    return bool(text) and text[0] in _WORD and text[0] != "_" and all(c in _NAME for c in text)


def plain(text: str) -> str:
    """`text` with every character outside [A-Za-z0-9_.-] made `_`: safe in a file name."""
    return "".join(c if c in _NAME else "_" for c in text)


def is_aux_device(text: str) -> bool:
    """An auxiliary-bus device: driver.function.N, e.g. mlx5_core.sf.4."""
    parts = text.split(".")
    return len(parts) >= 3 and all(part and set(part) <= _WORD for part in parts) and set(parts[-1]) <= set(_DIGITS)


def is_pci_name(name: str) -> bool:
    """A PCI function as sysfs names it: 0000:00:04.0, lower case, with its domain."""
    return name.count(":") == 2 and name == name.lower() and is_pci_address(name)


def device_keys(pci: str | None, perm_mac: str | None, mac: str | None) -> list[str]:
    """Every fact a device is known by, strongest first: its PCI function, its permanent MAC, its MAC.
    The first keys its lock (identity.lock_key); the record index files a record under all of them."""
    return [f"{kind}-{fact}" for kind, fact in (("pci", pci), ("mac", perm_mac), ("addr", mac)) if fact]
