"""One JSON record per attachment: what a device looked like before we took it.

Records live in `<dataDir>/<network>/<containerID>-<ifname>.json`, are written
atomically (temp file, fsync, rename, fsync of the directory), are 0600 in 0700
directories, and are never opened through a symlink. Each is indexed by its device's keys
(cni_hostdev/record_index.py): `holders` finds the records of a device without reading the rest.
"""

from __future__ import annotations

import errno
import os
import stat
import time

from cni_hostdev import logs, record_index
from cni_hostdev.atomic_files import write_atomically
from cni_hostdev.diagnostics import checkpoint
from cni_hostdev.errors import STATE_FAILURE, CniError
from cni_hostdev.lean.json import dumps_lines, loads
from cni_hostdev.locks import busy

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Literal

    from cni_hostdev.netlink import Link

    # "moving": written before the move, so that a crash leaves a record to repair from; "attached":
    # the device is in the pod; "waiting": home again, under another name while its own is taken
    # (cni_hostdev/plugin/waiting.py keeps these). "netdev" devices move; "userspace" ones (a PCI function
    # bound to a DPDK-style driver) are only recorded. "" is the strategy of records older than strategies.
    Phase = Literal["moving", "attached", "waiting"]
    Kind = Literal["netdev", "userspace"]
    Strategy = Literal["atomic", "rename-then-move", "none", ""]

log = logs.get_logger(__name__)
RECORD_SUFFIX = ".json"
# Records of devices home under another name, waiting for their own (cni_hostdev/plugin/waiting.py).
WAITING_DIR = ".waiting"
SET_ASIDE_SUFFIX = ".corrupt"  # an unreadable record, kept for inspection and never read again


def record_file(container_id: str, ifname: str) -> str:  # in its network's directory
    return f"{container_id}-{ifname}{RECORD_SUFFIX}"


_REQUIRED = (
    "network",
    "container_id",
    "ifname",
    "netns",
    "original_name",
    "original_alias",
    "mac",
    "perm_mac",
    "mtu",
    "was_up",
    "ifindex",
    "pci_address",
)


# What each field of a record holds; None where a field may be empty (or older records lack it).
_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(("network", "container_id", "ifname", "netns", "original_name", "mac"), (str,)),
    **dict.fromkeys(("strategy", "phase", "kind"), (str,)),
    **dict.fromkeys(
        ("original_alias", "perm_mac", "pci_address", "staging", "boot_id", "driver", "home_as"), (str, type(None))
    ),
    **dict.fromkeys(("mtu", "ifindex"), (int,)),
    **dict.fromkeys(("netns_cookie", "netns_inode"), (int, type(None))),
    "was_up": (bool,),
    "altnames": (list, type(None)),
    "interface_network": (dict, type(None)),
}


def _of_its_type(name: str, value: object) -> bool:
    if isinstance(value, bool) and bool not in _TYPES[name]:
        return False  # JSON's true is no ifindex
    if name == "altnames" and isinstance(value, list):
        return all(isinstance(a, str) for a in value)
    return isinstance(value, _TYPES[name])


class Record:
    # A plain class, not a dataclass: see cni_hostdev/result.py.
    # netns_cookie, netns_inode and boot_id pin the pod's namespace (cni_hostdev/pods.py); records
    # written before they existed lack them.
    __slots__ = (
        *_REQUIRED,
        "strategy",
        "phase",
        "staging",
        "kind",
        "netns_cookie",
        "netns_inode",
        "boot_id",
        "altnames",
        "driver",
        "interface_network",
        "home_as",
    )

    def __init__(
        self,
        network: str,
        container_id: str,
        ifname: str,
        netns: str,
        original_name: str,
        original_alias: str | None,
        mac: str,
        perm_mac: str | None,
        mtu: int,
        was_up: bool,
        ifindex: int,
        pci_address: str | None,
        strategy: Strategy = "",
        phase: Phase = "attached",
        staging: str | None = None,
        kind: Kind = "netdev",
        netns_cookie: int | None = None,
        netns_inode: int | None = None,
        boot_id: str | None = None,
        altnames: list[str] | None = None,
        driver: str | None = None,
        interface_network: dict[str, Any] | None = None,
        home_as: str | None = None,
    ) -> None:
        self.network = network
        self.container_id = container_id
        self.ifname = ifname
        self.netns = netns
        self.original_name = original_name
        self.original_alias = original_alias
        self.mac = mac
        self.perm_mac = perm_mac
        self.mtu = mtu
        self.was_up = was_up
        self.ifindex = ifindex
        self.pci_address = pci_address
        self.strategy = strategy
        self.phase = phase
        self.staging = staging  # bind-mounted staging netns of rename-then-move, while in use
        self.kind = kind  # or "userspace": a PCI function bound to a DPDK-style driver, never moved
        self.netns_cookie = netns_cookie
        self.netns_inode = netns_inode
        self.boot_id = boot_id
        self.altnames = altnames  # None in records written before altnames were kept: left alone
        self.driver = driver  # what a pool's `driver` key matches while the device is in its pod
        self.interface_network = interface_network  # useInterfaceNetwork: what DEL gives back
        self.home_as = home_as  # "waiting": the name it came home under, its own being taken

    @classmethod
    def taking(
        cls,
        device: Link,
        pci: str | None,
        *,
        network: str,
        container_id: str,
        ifname: str,
        netns: str,
        strategy: Strategy,
        staging: str | None = None,
    ) -> Record:
        """The record of an ADD about to take `device`: what it is in the host now, where it goes."""
        return cls(
            network=network,
            container_id=container_id,
            ifname=ifname,
            netns=netns,
            original_name=device.name,
            original_alias=device.alias,
            mac=device.mac,
            perm_mac=device.perm_mac,
            mtu=device.mtu,
            was_up=device.up,
            ifindex=device.index,
            pci_address=pci,
            strategy=strategy,
            phase="moving",
            staging=staging,
            altnames=list(device.altnames),
        )

    def keys(self) -> list[str]:
        """What its device is indexed by (cni_hostdev/record_index.py)."""
        return record_index.keys(self.pci_address, self.perm_mac, self.mac)

    def file_name(self) -> str:
        return record_file(self.container_id, self.ifname)

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    @classmethod
    def from_json(cls, obj: Any) -> Record:
        if not isinstance(obj, dict):
            raise ValueError("record is not a JSON object")
        missing = [name for name in _REQUIRED if name not in obj]
        if missing:
            raise ValueError(f"record lacks {', '.join(missing)}")
        record = cls(**{k: v for k, v in obj.items() if k in cls.__slots__})
        wrong = [name for name in cls.__slots__ if not _of_its_type(name, getattr(record, name))]
        if wrong:
            raise ValueError(f"record has fields of the wrong type: {', '.join(wrong)}")
        if record.phase not in ("moving", "attached", "waiting") or record.kind not in ("netdev", "userspace"):
            raise ValueError(f"record has an unknown phase {record.phase!r} or kind {record.kind!r}")
        return record


class CorruptRecord(CniError):
    """What is where a record should be is no record: its content, or a symlink or directory."""


def _unreadable(path: str, err: OSError) -> CniError:
    if err.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO):
        return CorruptRecord(STATE_FAILURE, f"state record {path} is not a regular file: {err.strerror}")
    return CniError(STATE_FAILURE, f"cannot read state record {path}: {err.strerror}")


class StateStore:
    def __init__(self, data_dir: str, network: str) -> None:
        self.root = data_dir
        self.network = network
        self.dir = os.path.join(data_dir, network)

    def _path(self, container_id: str, ifname: str) -> str:
        return os.path.join(self.dir, record_file(container_id, ifname))

    def ensure_dir(self) -> None:
        try:
            os.makedirs(self.dir, 0o700, exist_ok=True)
            for path in (self.root, self.dir):
                if not stat.S_ISDIR(os.lstat(path).st_mode):
                    raise CniError(STATE_FAILURE, f"state directory {path} is not a directory (a symlink?)")
        except OSError as err:
            raise CniError(STATE_FAILURE, f"cannot create state directory {self.dir}: {err.strerror}") from None

    def save(self, record: Record, *, durable: bool = True) -> None:
        """Write `record` in place of the attachment's last one; `durable` waits for the disk (fsync),
        which only a record that must survive a power loss needs (see its callers). A durable write
        puts the record's index entries on disk first; a later write finds them there."""
        self.ensure_dir()
        path = self._path(record.container_id, record.ifname)
        if durable:
            try:
                record_index.add(self.root, record.keys(), self.network, record.file_name())
            except OSError as err:
                raise CniError(STATE_FAILURE, f"cannot index state record {path}: {err.strerror}") from None
            checkpoint("indexed")
        if os.path.islink(path):
            raise CniError(STATE_FAILURE, f"refusing to write state record {path}: it is a symlink")
        text = dumps_lines(record.to_json()).encode()
        try:
            write_atomically(path, lambda out: out.write(text), durable=durable)
        except OSError as err:
            raise CniError(STATE_FAILURE, f"cannot write state record {path}: {err.strerror}") from None

    def load(self, container_id: str, ifname: str) -> Record | None:
        return self.load_path(self._path(container_id, ifname))

    def load_path(self, path: str) -> Record | None:
        """The record at `path`, or None. CorruptRecord when what is there is no record (bad
        content, a symlink, a directory); CniError when it cannot be read now (EIO, EMFILE ...)."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
        except FileNotFoundError:
            return None
        except OSError as err:
            raise _unreadable(path, err) from None
        try:
            with os.fdopen(fd, "rb") as f:
                return Record.from_json(loads(f.read()))
        except (ValueError, TypeError, RecursionError) as err:
            raise CorruptRecord(STATE_FAILURE, f"state record {path} is corrupt: {err}") from None
        except OSError as err:
            raise _unreadable(path, err) from None

    def set_aside(self, container_id: str, ifname: str) -> str | None:
        """Move a corrupt record out of the way (`<record>.corrupt`, or with a time stamp after it
        when one is there already), where no command reads it again; the new path, or None when
        it could not be moved."""
        path = self._path(container_id, ifname)
        for aside in (path + SET_ASIDE_SUFFIX, f"{path}{SET_ASIDE_SUFFIX}-{time.time_ns()}"):
            try:
                os.link(path, aside, follow_symlinks=False)  # never over an earlier one
                os.unlink(path)
                return aside
            except FileExistsError:
                continue
            except OSError as err:
                log.warning("cannot move corrupt state record %s aside: %s", path, err.strerror)
                return None
        return None

    def forget(self, record: Record) -> None:
        """The attachment's index entries, then its record: killed in between, the record is still
        there for the retry, and the next lookup indexes it again (index_missing)."""
        record_index.remove(self.root, record.keys(), self.network, record.file_name())
        checkpoint("unindexed")
        try:
            os.unlink(self._path(record.container_id, record.ifname))
        except FileNotFoundError:
            pass

    def all(self, *, quiet: bool = False) -> list[Record]:
        """Every readable record of this network; unreadable ones are skipped (and logged, unless
        `quiet`: doctor reports them its own way)."""
        try:
            names = sorted(os.listdir(self.dir))
        except FileNotFoundError:
            return []
        return self.readable([name for name in names if name.endswith(RECORD_SUFFIX)], quiet=quiet)

    def readable(self, names: list[str], *, quiet: bool = False) -> list[Record]:
        """The records of this network's files `names` that can be read (a name gone is no record)."""
        records = []
        for name in names:
            try:
                record = self.load_path(os.path.join(self.dir, name))
            except CniError as err:
                if not quiet:
                    log.warning("skipping state record: %s", err.msg)
                continue
            if record is not None:
                records.append(record)
        return records


def networks(data_dir: str) -> list[str]:
    """The networks that have records under `data_dir` (one directory each; `locks` is not one)."""
    try:
        names = sorted(os.listdir(data_dir))
    except OSError:
        return []
    return [n for n in names if n != "locks" and not n.startswith(".") and os.path.isdir(os.path.join(data_dir, n))]


def every_record(data_dir: str, *, quiet: bool = False) -> list[Record]:
    """The readable records of every network under `data_dir`: a device is one device whichever
    network's config names it."""
    return [record for network in networks(data_dir) for record in StateStore(data_dir, network).all(quiet=quiet)]


def anything_waiting(data_dir: str) -> bool:
    """Whether any device of `data_dir` waits for its name: one look at a directory that is empty,
    or absent, on most nodes (so that a call loads cni_hostdev/plugin/waiting.py only when one does)."""
    return any(not name.startswith(".") for name in names_in(os.path.join(data_dir, WAITING_DIR)))


def holders(data_dir: str, device_keys: list[str], *, checked: bool = False) -> list[Record]:
    """The readable records filed under one of a device's keys: those that may hold it, each still
    to be weighed by identity.proof (cni_hostdev/record_index.py). The index is set right against
    the records first, unless the caller just did (`checked`: several devices in one call)."""
    if not checked:
        index_missing(data_dir)
    filed = record_index.filed_under(data_dir, device_keys)
    return [record for network, name in filed for record in StateStore(data_dir, network).readable([name])]


def index_missing(data_dir: str, *, verify: bool = False) -> list[str]:
    """The record index set right against the records (record_index.reconcile); what was missing."""
    return record_index.reconcile(
        data_dir,
        networks(data_dir),
        lambda network: record_files(data_dir, network),
        lambda network, record_file: _keys_of(data_dir, network, record_file),
        lambda key: busy(data_dir, key),
        verify,
    )


def _keys_of(data_dir: str, network: str, record_file: str) -> list[str] | None:
    """The keys of a record's device; None when it is gone or unreadable (skipped by every reader alike)."""
    records = StateStore(data_dir, network).readable([record_file], quiet=True)
    return records[0].keys() if records else None


def record_files(data_dir: str, network: str) -> list[str]:
    """The names of a network's record files, as they are now (none when its directory is gone)."""
    return [name for name in names_in(os.path.join(data_dir, network)) if name.endswith(RECORD_SUFFIX)]


def names_in(directory: str) -> list[str]:  # none when it cannot be read (gone, say)
    try:
        return os.listdir(directory)
    except OSError:
        return []
