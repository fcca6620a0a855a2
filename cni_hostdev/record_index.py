"""Which records may hold a device, found from the device's keys rather than by reading every record.

An ADD refuses a device that a live attachment of any network holds. Reading every record of the
data dir to find out cost every ADD about 24 µs per attachment on the node (60 ms against 36 with
a thousand); the index answers with a few directory lookups, whatever their number.

Under `<dataDir>/.index/`, three kinds of empty file (a name that starts with `.` is never a
network's: the spec starts them with a letter or a digit):

- `keys/<key>/<network>+<record file>`: one per record and per key its device can be proven by in
  the host (cni_hostdev/identity.py): `pci-…` its PCI function, `mac-…` its permanent MAC,
  `addr-…` its MAC, as the per-device locks name them. Whenever `identity.proof` finds a record's
  device in the host, the two share one of these keys, so the records filed under a device's keys
  include every record that holds it.
- `records/<network>/<record file>:<key>:<key>…`: one per record: what the index knows.
- `stamps/<network>@<mtime>@<inode>`: the network's directory as it was when the index was last
  found to know every record in it.

The records stay the truth (cni_hostdev/state.py reads them), and the index is never trusted over
them: a lookup first compares each network directory with its stamp (a stat), and one that changed
since (a record written or removed, by anyone: a version without the index, a hand) is listed and
compared with `records/`, names only: a record the index lacks is read and indexed, an entry whose
record is gone, and whose writer is gone too, is dropped. A stamp is written only for a directory
unchanged for a second, so that a change within the kernel's clock tick is never missed. Entries
are written before their record (and fsync'd), `records/` last; they are removed before it, the
network's stamp first, then `records/`, then the keys. A crash leaves at worst entries without a
record (a key's lookup passes over them; dropped once their network is checked again) or a record
without entries in a network without a stamp (the next lookup indexes it): never a record a lookup
by its keys would miss, so never a wrong grant, and never a wrong refusal.
"""

from __future__ import annotations

import os
import time

from cni_hostdev import logs
from cni_hostdev.atomic_files import fsync_directory
from cni_hostdev.identifiers import device_keys, plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

log = logs.get_logger(__name__)
INDEX_DIR = ".index"
SETTLED_NS = 1_000_000_000  # a directory unchanged this long gets a stamp (coarse clocks tick ~4 ms)


def keys(pci: str | None, perm_mac: str | None, mac: str | None) -> list[str]:
    """Every key a device is known by (identifiers.device_keys), as a file name."""
    return [plain(key) for key in device_keys(pci, perm_mac, mac)]


def _dir(data_dir: str, *parts: str) -> str:
    return os.path.join(data_dir, INDEX_DIR, *parts)


def _create(directory: str, name: str) -> list[str]:
    """An empty file `name` in `directory`, made (0700, as every directory of the data dir) with its
    parents as needed; the directories whose names changed, to fsync for a durable entry."""
    made: list[str] = []
    try:
        fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:
        missing, path = [], directory
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for path in reversed(missing):
            try:
                os.mkdir(path, 0o700)
                made.append(os.path.dirname(path))
            except FileExistsError:
                pass
        fd = os.open(os.path.join(directory, name), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)
    return [*made, directory]


def add(data_dir: str, device_keys: list[str], network: str, record_file: str, *, durable: bool = True) -> None:
    """A record's entries, before the record itself is written (and on disk first, if `durable`):
    its keys, then what the index knows."""
    touched = []
    for key in device_keys:
        touched += _create(_dir(data_dir, "keys", key), f"{network}+{record_file}")
    touched += _create(_dir(data_dir, "records", network), ":".join([record_file, *device_keys]))
    if durable:
        for path in dict.fromkeys(touched):
            fsync_directory(path)


def remove(data_dir: str, device_keys: list[str], network: str, record_file: str) -> None:
    """A record's entries, before the record itself goes: its network's stamp first (killed after
    it, the record is indexed again by the next lookup), then what the index knows, then its keys."""
    try:
        info = os.stat(os.path.join(data_dir, network))
        names = [_dir(data_dir, "stamps", f"{network}@{info.st_mtime_ns}@{info.st_ino}")]
    except FileNotFoundError:
        names = []
    names.append(_dir(data_dir, "records", network, ":".join([record_file, *device_keys])))
    names += [_dir(data_dir, "keys", key, f"{network}+{record_file}") for key in device_keys]
    for name in names:
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass


def filed_under(data_dir: str, device_keys: list[str]) -> list[tuple[str, str]]:
    """(network, record file) of every record filed under one of `device_keys` (some may be gone)."""
    found: list[tuple[str, str]] = []
    for key in device_keys:
        try:
            names = os.listdir(_dir(data_dir, "keys", key))
        except FileNotFoundError:
            continue
        for name in names:
            network, plus, record_file = name.partition("+")
            if plus and (network, record_file) not in found:
                found.append((network, record_file))
    return found


def every_filing(data_dir: str) -> set[tuple[str, str, str]]:
    """(key, network, record file) of every key entry: for the linear checks (repair, doctor)."""
    try:
        key_dirs = os.listdir(_dir(data_dir, "keys"))
    except FileNotFoundError:
        return set()
    found = set()
    for key in key_dirs:
        for name in os.listdir(_dir(data_dir, "keys", key)):
            network, _, record_file = name.partition("+")
            found.add((key, network, record_file))
    return found


def known(data_dir: str, network: str) -> dict[str, list[str]]:
    """What the index knows of a network: each record file with its device's keys."""
    try:
        names = os.listdir(_dir(data_dir, "records", network))
    except FileNotFoundError:
        return {}
    return {record_file: device_keys for record_file, *device_keys in (name.split(":") for name in names)}


def _stamps(data_dir: str) -> dict[str, str]:
    try:
        names = os.listdir(_dir(data_dir, "stamps"))
    except FileNotFoundError:
        return {}
    return {network: stamp for network, _, stamp in (name.partition("@") for name in names)}


def reconcile(
    data_dir: str,
    networks: list[str],
    record_files: Callable[[str], list[str]],
    keys_of: Callable[[str, str], list[str] | None],
    busy: Callable[[str], bool],
    verify: bool = False,
) -> list[str]:
    """Set the index right against the records of every network whose directory changed since its
    stamp (all of them, with `verify`, which also reads every record and checks its keys): a record
    the index lacks is read (`keys_of(network, file)`) and indexed; an entry whose record is gone,
    and whose writer is gone too (`busy`: the lock of its device's first key is held), is dropped.
    What was indexed, as `network/file`."""
    stamps = _stamps(data_dir)
    filings = every_filing(data_dir) if verify else set()
    indexed: list[str] = []
    try:
        filed = os.listdir(_dir(data_dir, "records"))  # also networks whose directory is gone
    except FileNotFoundError:
        filed = []
    for network in sorted(set(networks) | set(filed)):
        try:
            info = os.stat(os.path.join(data_dir, network))
            seen = f"{info.st_mtime_ns}@{info.st_ino}"
        except FileNotFoundError:
            info, seen = None, ""
        if not verify and seen and stamps.get(network) == seen:
            continue
        indexed += _reconcile_network(
            data_dir, network, record_files(network), keys_of, busy, filings if verify else None
        )
        if info is not None and time.time_ns() - info.st_mtime_ns > SETTLED_NS:
            _stamp(data_dir, network, seen, stamps.get(network))
    if indexed:
        log.info("indexed %d state record(s) the record index lacked: %s", len(indexed), ", ".join(indexed[:5]))
    return indexed


def _reconcile_network(
    data_dir: str,
    network: str,
    files: list[str],
    keys_of: Callable[[str, str], list[str] | None],
    busy: Callable[[str], bool],
    filings: set[tuple[str, str, str]] | None,
) -> list[str]:
    """One network: `filings` (every key entry) when every record is to be read and verified."""
    entries = known(data_dir, network)
    indexed = []
    for record_file in files if filings is not None else [f for f in files if f not in entries]:
        device_keys = keys_of(network, record_file)
        if device_keys is None:
            continue
        if filings is not None and entries.get(record_file) == device_keys:
            if any((key, network, record_file) not in filings for key in device_keys):
                add(data_dir, device_keys, network, record_file)  # a key entry lost: filed again
            continue
        if record_file in entries:
            remove(data_dir, entries[record_file], network, record_file)
        add(data_dir, device_keys, network, record_file)
        indexed.append(f"{network}/{record_file}")
    present = set(files)
    for record_file, device_keys in entries.items():
        if record_file in present or (device_keys and busy(device_keys[0])):
            continue  # there, or its writer is between its entries and the record
        if not os.path.exists(os.path.join(data_dir, network, record_file)):
            remove(data_dir, device_keys, network, record_file)
    return indexed


def _stamp(data_dir: str, network: str, seen: str, old: str | None) -> None:
    directory = _dir(data_dir, "stamps")
    _create(directory, f"{network}@{seen}")
    if old is not None and old != seen:
        try:
            os.unlink(os.path.join(directory, f"{network}@{old}"))
        except FileNotFoundError:
            pass
