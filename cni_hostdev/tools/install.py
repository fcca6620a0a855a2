"""`host-device install`: put this very binary into a CNI bin dir the way runtimes need it.

Never `cp` over a plugin that may be executing ("text file busy", or a runtime
exec'ing a half-written file): write a temp file beside the target, fsync,
chmod, rename over it, then re-hash what landed. Fail closed on any mismatch.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
from typing import BinaryIO

from cni_hostdev import __version__
from cni_hostdev.atomic_files import write_atomically

CHUNK = 1 << 20
# The unpacked layout travels inside the static file: a tar appended after the static
# launcher (packaging/launcher.c), found through this trailer at the very end of the file.
PAYLOAD_MAGIC = b"HOSTDEV-UNPACKED"
TRAILER = "<16sQQ32s"
LAUNCHER = "host-device"
# In an unpacked tree the entry is the static launcher, as at the front of the single file, with a
# trailer naming the build but no payload: it execs this frozen program beside it.
TREE_PROGRAM = "host-device.bin"
INTERP_PLACEHOLDER = "/host-device-loader-placeholder/" + "_" * 200 + "/ld.so"
PT_INTERP = 3


class InstallError(Exception):
    pass


def running_binary() -> str:
    """The single file this process came from: the launcher names it, having exec'd its unpacked cache."""
    candidate = os.environ.get("HOST_DEVICE_SELF")
    if candidate and os.path.isfile(candidate) and read_payload(candidate) is not None:
        return os.path.realpath(candidate)
    raise InstallError("install copies the single static file; run it as dist/host-device (not from the source tree)")


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def install(source: str, bin_dir: str, name: str = "host-device") -> str:
    """Install `source` as `bin_dir/name`; return 'installed' or 'unchanged'. (`--sha256` is checked
    by the caller, for both layouts.)"""
    payload_hash = sha256_of(source)
    if not os.path.isdir(bin_dir):
        raise InstallError(f"bin dir {bin_dir} does not exist (is the host path mounted?)")
    target = os.path.join(bin_dir, name)
    if os.path.isfile(target) and not os.path.islink(target) and sha256_of(target) == payload_hash:
        return "unchanged"

    def copy(out: BinaryIO) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, out, CHUNK)

    def matches_payload(temp: str) -> None:
        if sha256_of(temp) != payload_hash:
            raise InstallError(f"copy {temp} does not match the payload's sha256 {payload_hash}")

    try:
        write_atomically(target, copy, mode=0o755, check=matches_payload)
    except OSError as err:
        raise InstallError(f"cannot install into {bin_dir}: {err}") from None
    landed = sha256_of(target)
    if landed != payload_hash:
        raise InstallError(f"{target} has sha256 {landed} after install, expected {payload_hash}")
    return "installed"


def installed_version(target: str) -> str:
    """Run what was installed: its VERSION answer, as runtimes see it, and `--version`, which the
    launcher cannot answer by itself (it answers VERSION), so the frozen program runs too."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    program = subprocess.run([target, "--version"], env=env, capture_output=True, timeout=60)
    if program.returncode != 0 or program.stdout.decode().strip() != f"host-device {__version__}":
        raise InstallError(f"installed {target} failed its --version check: {program.stdout!r} {program.stderr!r}")
    proc = subprocess.run(
        [target],
        input=b'{"cniVersion":"1.1.0"}',
        env={**env, "CNI_COMMAND": "VERSION"},
        capture_output=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise InstallError(f"installed {target} failed its VERSION check: {proc.stdout!r} {proc.stderr!r}")
    return proc.stdout.decode().strip()


def read_trailer(source: str) -> tuple[int, int, bytes] | None:
    """(payload offset, payload length, sha256) from the single file's trailer; None if it has none."""
    size = struct.calcsize(TRAILER)
    with open(source, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        if end < size:
            return None
        f.seek(end - size)
        magic, offset, length, digest = struct.unpack(TRAILER, f.read(size))
    if magic != PAYLOAD_MAGIC or offset + length > end - size:
        return None
    return offset, length, digest


def read_payload(source: str) -> bytes | None:
    """The appended unpacked bundle, verified against its sha256; None if the file carries none."""
    trailer = read_trailer(source)
    if trailer is None or trailer[1] == 0:
        return None
    offset, length, digest = trailer
    with open(source, "rb") as f:
        f.seek(offset)
        payload = f.read(length)
    if hashlib.sha256(payload).digest() != digest:
        raise InstallError(f"the unpacked payload inside {source} is corrupt (sha256 mismatch)")
    return payload


def _tree_launcher(source: str) -> bytes:
    """The single file's static launcher, with a trailer that names the build and carries no payload."""
    trailer = read_trailer(source)
    assert trailer is not None
    offset, _, digest = trailer
    with open(source, "rb") as f:
        launcher = f.read(offset)
    return launcher + struct.pack(TRAILER, PAYLOAD_MAGIC, 0, 0, digest)


def set_interpreter(path: str, interpreter: str) -> None:
    """Overwrite PT_INTERP in place; the build reserved room with a long placeholder."""
    with open(path, "r+b") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:
            raise InstallError(f"{path} is not a 64-bit ELF file")
        phoff = struct.unpack_from("<Q", header, 0x20)[0]
        phentsize, phnum = struct.unpack_from("<HH", header, 0x36)
        for n in range(phnum):
            f.seek(phoff + n * phentsize)
            entry = f.read(phentsize)
            if struct.unpack_from("<I", entry, 0)[0] != PT_INTERP:
                continue
            offset, filesz = struct.unpack_from("<Q", entry, 8)[0], struct.unpack_from("<Q", entry, 32)[0]
            encoded = interpreter.encode() + b"\0"
            if len(encoded) > filesz:
                raise InstallError(f"bin dir path too long for the loader path ({len(encoded)} > {filesz} bytes)")
            f.seek(offset)
            f.write(encoded.ljust(filesz, b"\0"))
            return
    raise InstallError(f"{path} has no PT_INTERP to point at the bundled loader")


def _fsync_tree(root: str) -> None:
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def install_unpacked(source: str, bin_dir: str, node_bin_dir: str, name: str = "host-device") -> tuple[str, str]:
    """Lay the bundle out as `bin_dir/.NAME-VERSION-HASH/` and point `bin_dir/NAME` at it.

    Returns (outcome, launcher path as the node sees it). `node_bin_dir` is the bin
    dir's path on the node when we run in a container with it mounted elsewhere.
    """
    payload = read_payload(source)
    if payload is None:
        raise InstallError(f"{source} carries no unpacked bundle; use --layout file")
    if not os.path.isdir(bin_dir):
        raise InstallError(f"bin dir {bin_dir} does not exist (is the host path mounted?)")
    bundle = f".{name}-{__version__}-{hashlib.sha256(payload).hexdigest()[:12]}"
    final = os.path.join(bin_dir, bundle)
    target = os.path.join(bin_dir, name)
    link_target = os.path.join(bundle, LAUNCHER)
    node_launcher = os.path.join(node_bin_dir, link_target)
    previous = os.readlink(target) if os.path.islink(target) else None
    if previous == link_target and os.path.exists(os.path.join(final, ".complete")):
        return "unchanged", node_launcher
    if not os.path.exists(os.path.join(final, ".complete")):
        _unpack(source, payload, bin_dir, node_bin_dir, name, bundle)
    temp_link = os.path.join(bin_dir, f".{name}.link{os.getpid()}")
    try:
        if os.path.lexists(temp_link):
            os.unlink(temp_link)
        os.symlink(link_target, temp_link)
        os.replace(temp_link, target)  # one rename: a runtime sees the old entry or the new, never none
    except OSError as err:
        raise InstallError(f"cannot point {target} at {link_target}: {err}") from None
    _remove_older_bundles(bin_dir, name, bundle, previous)
    return "installed", node_launcher


def _unpack(source: str, payload: bytes, bin_dir: str, node_bin_dir: str, name: str, bundle: str) -> None:
    """The bundle, complete, at `bin_dir/bundle`: unpacked beside it, fsync'd, renamed into place."""
    import io
    import tarfile

    final = os.path.join(bin_dir, bundle)
    staging = os.path.join(bin_dir, f".{name}.unpack{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        os.mkdir(staging, 0o755)
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:") as tar:
            tar.extractall(staging, filter="data")
        program = os.path.join(staging, TREE_PROGRAM)
        os.rename(os.path.join(staging, LAUNCHER), program)
        set_interpreter(program, os.path.join(node_bin_dir, bundle, "_internal", "ld.so"))
        fd = os.open(os.path.join(staging, LAUNCHER), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o755)
        with os.fdopen(fd, "wb") as f:
            f.write(_tree_launcher(source))
        with open(os.path.join(staging, ".complete"), "w") as f:
            f.write(f"{__version__}\n")
        _fsync_tree(staging)
        shutil.rmtree(final, ignore_errors=True)
        os.rename(staging, final)
    except (OSError, tarfile.TarError) as err:
        raise InstallError(f"cannot unpack into {bin_dir}: {err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_older_bundles(bin_dir: str, name: str, bundle: str, previous: str | None) -> None:
    for entry in os.listdir(bin_dir):
        # Keep the new bundle and the one just replaced: a pod's ADD may still be running from it.
        if (
            entry.startswith(f".{name}-")
            and entry != bundle
            and (previous is None or not previous.startswith(entry + "/"))
        ):
            shutil.rmtree(os.path.join(bin_dir, entry), ignore_errors=True)
