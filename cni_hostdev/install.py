"""`host-device install`: put this very binary into a CNI bin dir the way runtimes need it.

Never `cp` over a plugin that may be executing ("text file busy", or a runtime
exec'ing a half-written file): write a temp file beside the target, fsync,
chmod, rename over it, then re-hash what landed. Fail closed on any mismatch.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

CHUNK = 1 << 20


class InstallError(Exception):
    pass


def running_binary() -> str:
    """The file this process was exec'd from (staticx and PyInstaller both hide it)."""
    for candidate in (os.environ.get("STATICX_PROG_PATH"), sys.executable if getattr(sys, "frozen", False) else None):
        if candidate and os.path.isfile(candidate):
            return os.path.realpath(candidate)
    raise InstallError("install copies the frozen binary; run it from dist/host-device, not from the source tree")


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def install(source: str, bin_dir: str, name: str = "host-device", expected_sha256: str | None = None) -> str:
    """Install `source` as `bin_dir/name`; return 'installed' or 'unchanged'."""
    payload_hash = sha256_of(source)
    if expected_sha256 and payload_hash != expected_sha256.lower():
        raise InstallError(f"payload {source} has sha256 {payload_hash}, expected {expected_sha256}")
    if not os.path.isdir(bin_dir):
        raise InstallError(f"bin dir {bin_dir} does not exist (is the host path mounted?)")
    target = os.path.join(bin_dir, name)
    if os.path.isfile(target) and not os.path.islink(target) and sha256_of(target) == payload_hash:
        return "unchanged"
    tmp = os.path.join(bin_dir, f".{name}.tmp{os.getpid()}")
    try:
        with open(source, "rb") as src:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o700)
            with os.fdopen(fd, "wb") as dst:
                while chunk := src.read(CHUNK):
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        os.chmod(tmp, 0o755)
        if sha256_of(tmp) != payload_hash:
            raise InstallError(f"copy {tmp} does not match the payload's sha256 {payload_hash}")
        os.replace(tmp, target)
        dir_fd = os.open(bin_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        raise InstallError(f"cannot install into {bin_dir}: {err}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    landed = sha256_of(target)
    if landed != payload_hash:
        raise InstallError(f"{target} has sha256 {landed} after install, expected {payload_hash}")
    return "installed"


def installed_version(target: str) -> str:
    proc = subprocess.run(
        [target],
        input=b'{"cniVersion":"1.1.0"}',
        env={"CNI_COMMAND": "VERSION", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        capture_output=True,
        timeout=60,
    )
    if proc.returncode != 0:
        raise InstallError(f"installed {target} failed its VERSION check: {proc.stdout!r} {proc.stderr!r}")
    return proc.stdout.decode().strip()
