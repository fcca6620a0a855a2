"""Make the onedir build independent of the node's libc and append it to the static file.

The bundle gets its own glibc and loader; every ELF in it finds its libraries
through an $ORIGIN-relative RUNPATH, and the launcher's PT_INTERP is a long
placeholder that `host-device install` overwrites, in place, with the absolute
path of the bundled loader on the node. The result is appended to the static
single file as an uncompressed ustar behind a trailer (see cni_hostdev/tools/install.py).

Usage: unpacked.py ONEDIR STATIC_FILE
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cni_hostdev.tools.install import INTERP_PLACEHOLDER, LAUNCHER, PAYLOAD_MAGIC, TRAILER

LIBS = "_internal"
# The time every member of the payload carries: the commit's (packaging/freeze.sh sets it).
SOURCE_DATE_EPOCH = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


def is_elf(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"\x7fELF"


def system_deps(path: str) -> dict[str, str]:
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    deps = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (/\S+)", line)
        if m:
            deps[m.group(1)] = m.group(2)
        m = re.match(r"\s*(/\S+/ld-linux[^ ]*)", line)
        if m:
            deps[os.path.basename(m.group(1))] = m.group(1)
    return deps


def make_self_contained(onedir: str) -> None:
    libdir = os.path.join(onedir, LIBS)
    elves = [
        os.path.join(root, name)
        for root, _, names in os.walk(onedir)
        for name in names
        if not os.path.islink(os.path.join(root, name)) and is_elf(os.path.join(root, name))
    ]
    needed: dict[str, str] = {}
    for elf in elves:
        for soname, path in system_deps(elf).items():
            if not os.path.exists(os.path.join(libdir, soname)):
                needed[soname] = path
    for soname, path in needed.items():
        shutil.copyfile(os.path.realpath(path), os.path.join(libdir, soname))
        os.chmod(os.path.join(libdir, soname), 0o755)
    loader = next(name for name in needed if name.startswith("ld-linux"))
    os.rename(os.path.join(libdir, loader), os.path.join(libdir, "ld.so"))
    # Where each copied library came from, for the bill of materials (packaging/sbom.py).
    copied = {
        f"{LIBS}/{'ld.so' if soname == loader else soname}": os.path.realpath(path) for soname, path in needed.items()
    }
    with open(os.path.join(os.path.dirname(onedir), "copied-libraries.json"), "w") as record:
        json.dump(copied, record, indent=1, sort_keys=True)
    for elf in elves:
        rel = os.path.relpath(libdir, os.path.dirname(elf))
        subprocess.run(["patchelf", "--set-rpath", f"$ORIGIN/{rel}" if rel != "." else "$ORIGIN", elf], check=True)
    subprocess.run(["patchelf", "--set-interpreter", INTERP_PLACEHOLDER, os.path.join(onedir, LAUNCHER)], check=True)


def normalized(member: tarfile.TarInfo) -> tarfile.TarInfo:
    """A member as every build writes it, whoever and whenever builds: the same bytes for the same
    tree (owner root, no names, the commit's time, modes that say only executable or not)."""
    member.uid = member.gid = 0
    member.uname = member.gname = ""
    member.mtime = SOURCE_DATE_EPOCH
    member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
    return member


def append_payload(onedir: str, static_file: str) -> None:
    buf = io.BytesIO()
    # Uncompressed ustar: packaging/launcher.c unpacks it with a few lines of C (the
    # release tarball compresses the whole file anyway). Members in sorted order, added one by one
    # (not `tar.add(onedir)` recursing in the directory's order, which is the filesystem's).
    paths = sorted(
        os.path.relpath(os.path.join(root, name), onedir)
        for root, dirs, files in os.walk(onedir)
        for name in dirs + files
    )
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(onedir, arcname=".", recursive=False, filter=normalized)
        for path in paths:
            tar.add(os.path.join(onedir, path), arcname=f"./{path}", recursive=False, filter=normalized)
    payload = buf.getvalue()
    with open(static_file, "ab") as f:
        offset = f.tell()
        f.write(payload)
        f.write(struct.pack(TRAILER, PAYLOAD_MAGIC, offset, len(payload), hashlib.sha256(payload).digest()))


if __name__ == "__main__":
    onedir_path, static_path = sys.argv[1], sys.argv[2]
    make_self_contained(onedir_path)
    append_payload(onedir_path, static_path)
