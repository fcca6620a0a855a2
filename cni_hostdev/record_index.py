"""Which records may hold a device, found from the device's keys rather than by reading every record.

An ADD refuses a device that a live attachment of any network holds. Reading every record of the
data dir to find out cost every ADD about 24 µs per attachment on the node (60 ms against 36 with
a thousand); the index answers from one directory listing, without opening a record.

`<dataDir>/.index/<network>+<containerID>-<ifname>.json:<key>:<key>…`: an empty file per record,
named by the record and the keys its device can be proven by in the host (cni_hostdev/identity.py):
`pci-…` its PCI function, `mac-…` its permanent MAC, `addr-…` its MAC, as the per-device locks
name them. Whenever `identity.proof` finds a record's device in the host, the two share one of
these keys (the same PCI function, permanent MAC, or MAC), so the records whose entries share a key
with a device include every record that holds it. (`:` is in no interface name, network name or
container ID, nor in a key, whose `:` are `_`.)

The records stay the truth (cni_hostdev/state.py reads them), and the index is never trusted over
them: every lookup compares the entries with the names of the record files (names only, no record
is opened), reads and indexes a record the index lacks (written by a version without the index, by
hand, or one whose DEL was killed between its entry and itself), and drops an entry whose record is
gone (an ADD killed between its entry and its record). So a missing or stale entry costs at most a
read, never a wrong grant or a wrong refusal, and the next call repairs what a crash left. An
entry is written, and fsync'd, before its record; it is removed before its record too. (A name that
starts with `.` is never a network's: the spec starts them with a letter or a digit.)
"""

from __future__ import annotations

import os

from cni_hostdev import logs
from cni_hostdev.files import fsync_directory
from cni_hostdev.names import plain

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

log = logs.get_logger(__name__)

INDEX_DIR = ".index"
NAME_MAX = 255  # a record whose entry would be longer is never indexed: every lookup reads it


def keys(pci: str | None, perm_mac: str | None, mac: str | None) -> list[str]:
    """Every key a device can be found by: its PCI function, its permanent MAC, its MAC."""
    found = [f"pci-{pci}" if pci else "", f"mac-{perm_mac}" if perm_mac else "", f"addr-{mac}" if mac else ""]
    return [plain(key) for key in found if key]


def record_entry(network: str, record_file: str) -> str:
    # `+` is in neither a network name nor a container ID: the first one splits them.
    return f"{network}+{record_file}"


def _entry(record: str, device_keys: list[str]) -> str:
    return ":".join([record, *device_keys])


def record_path(data_dir: str, record: str) -> str | None:
    network, plus, name = record.partition("+")
    return os.path.join(data_dir, network, name) if plus and network and name else None


def add(data_dir: str, device_keys: list[str], record: str, *, durable: bool = True) -> None:
    """A record's entry, before the record itself is written (and on disk first, if `durable`)."""
    entry = _entry(record, device_keys)
    if len(entry.encode()) > NAME_MAX:
        return
    root = os.path.join(data_dir, INDEX_DIR)
    try:
        fd = os.open(os.path.join(root, entry), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except FileNotFoundError:  # the first entry of this data dir: the index too, 0700 like the rest
        os.makedirs(data_dir, 0o700, exist_ok=True)
        try:
            os.mkdir(root, 0o700)
        except FileExistsError:
            pass
        fd = os.open(os.path.join(root, entry), os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
    os.close(fd)
    if durable:
        fsync_directory(root)


def remove(data_dir: str, device_keys: list[str], record: str) -> None:
    """A record's entry, before the record itself goes."""
    try:
        os.unlink(os.path.join(data_dir, INDEX_DIR, _entry(record, device_keys)))
    except FileNotFoundError:
        pass


def entries(data_dir: str) -> list[str]:
    """The index's entries, as they are named: `record:key:key…`."""
    try:
        return os.listdir(os.path.join(data_dir, INDEX_DIR))
    except FileNotFoundError:
        return []


def parse(entry: str) -> tuple[str, list[str]]:
    """(record, the keys of its device) of an entry."""
    record, *device_keys = entry.split(":")
    return record, device_keys


def sharing(names: list[str], device_keys: list[str]) -> list[str]:
    """The records whose entries carry one of `device_keys` (a key is whole between `:`s)."""
    found: list[str] = []
    for key in device_keys:
        tail = f":{key}"
        inner = f"{tail}:"
        found += [name.partition(":")[0] for name in names if name.endswith(tail) or inner in name]
    return list(dict.fromkeys(found))


def reconcile(
    data_dir: str,
    records: set[str],
    keys_of: Callable[[str], list[str] | None],
    busy: Callable[[str], bool],
    verify: bool,
) -> list[str]:
    """Set the index right against `records` (the records there are, as `network+file`) and return
    its entries then: a record it lacks is read (`keys_of` its entry) and indexed; an entry whose
    record is gone, and whose writer is gone too (`busy`: the lock of its device's first key is
    held), is dropped. With `verify`, every record is read and its entry's keys checked against it.
    The common case (nothing to do) costs two directory listings and two set differences."""
    names = entries(data_dir)
    indexed = {name.partition(":")[0] for name in names}
    unknown = records if verify else records - indexed
    gone = indexed - records
    if not unknown and not gone:
        return names
    by_record = {name.partition(":")[0]: name for name in names}
    missing = []
    for record in sorted(unknown):
        device_keys = keys_of(record)
        known = parse(by_record[record])[1] if record in by_record else None
        if device_keys is not None and device_keys != known:
            if known is not None:
                remove(data_dir, known, record)
            add(data_dir, device_keys, record)
            by_record[record] = _entry(record, device_keys)
            missing.append(record)
    for record in gone:
        device_keys = parse(by_record[record])[1]
        if device_keys and busy(device_keys[0]):
            continue  # its writer is between the entry and the record
        path = record_path(data_dir, record)
        if path is not None and os.path.exists(path):
            continue  # written since the records were listed (its writer is done by now)
        remove(data_dir, device_keys, record)
        del by_record[record]
    if missing:
        log.info("indexed %d state record(s) the record index lacked: %s", len(missing), ", ".join(missing[:5]))
    return list(by_record.values())
