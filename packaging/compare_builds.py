"""Compare two builds of one commit, artifact by artifact, and name the first part that differs.

Usage: compare_builds.py DIST_A DIST_B
Each DIST is a `dist/` directory holding host-device, host-device.cdx.json and the release
tarball. Prints a sha256 pair per artifact; for a pair that differs, the first member that does
(the launcher, a member of the payload, a member of the tarball, a key of the SBOM). Exit status
0 when every artifact is the same bytes, 1 otherwise.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import io
import json
import os
import struct
import sys
import tarfile
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cni_hostdev.tools.install import PAYLOAD_MAGIC, TRAILER

HEADER_FIELDS = ("name", "type", "mode", "uid", "gid", "uname", "gname", "mtime", "size", "linkname")


def first_difference(a: bytes, b: bytes) -> int:
    for offset, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return offset
    return min(len(a), len(b))


def tar_difference(a: bytes, b: bytes, where: str) -> str | None:
    """The first member of two tar archives whose place, header or content differs."""
    with tarfile.open(fileobj=io.BytesIO(a)) as ta, tarfile.open(fileobj=io.BytesIO(b)) as tb:
        ma, mb = ta.getmembers(), tb.getmembers()
        for index, (x, y) in enumerate(zip(ma, mb, strict=False)):
            if x.name != y.name:
                return f"{where}: member {index} is {x.name!r} in one, {y.name!r} in the other (order or contents)"
            for field in HEADER_FIELDS:
                if getattr(x, field) != getattr(y, field):
                    return f"{where}: {x.name}: header field {field}: {getattr(x, field)!r} != {getattr(y, field)!r}"
            if x.isfile():
                fa, fb = ta.extractfile(x), tb.extractfile(y)
                assert fa is not None and fb is not None
                da, db = fa.read(), fb.read()
                if da != db:
                    inner = binary_difference(da, db, f"{where}: {x.name}") if x.name.endswith("host-device") else None
                    return inner or f"{where}: {x.name}: content differs from byte {first_difference(da, db)}"
        if len(ma) != len(mb):
            return f"{where}: {len(ma)} members in one, {len(mb)} in the other"
    return None


def binary_difference(a: bytes, b: bytes, where: str) -> str | None:
    """Where two single files differ: the launcher, or the first member of the payload."""
    if a == b:
        return None
    parts = []
    size = struct.calcsize(TRAILER)
    for data in (a, b):
        magic, offset, length, _ = struct.unpack(TRAILER, data[-size:])
        if magic != PAYLOAD_MAGIC:
            return f"{where}: one is not a single file with a payload"
        parts.append((data[:offset], data[offset : offset + length]))
    (launcher_a, payload_a), (launcher_b, payload_b) = parts
    if launcher_a != launcher_b:
        return f"{where}: the launcher differs from byte {first_difference(launcher_a, launcher_b)}"
    return tar_difference(payload_a, payload_b, f"{where}: payload") or f"{where}: the trailer differs"


def json_difference(a: Any, b: Any, where: str) -> str | None:
    if type(a) is not type(b):
        return f"{where}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{where}.{key}: present in one only"
            found = json_difference(a[key], b[key], f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            found = json_difference(x, y, f"{where}[{index}]")
            if found:
                return found
        return None if len(a) == len(b) else f"{where}: {len(a)} items != {len(b)}"
    return None if a == b else f"{where}: {a!r} != {b!r}"


def compare(name: str, a: bytes, b: bytes) -> str | None:
    if a == b:
        return None
    if name.endswith(".tgz"):
        return tar_difference(gzip.decompress(a), gzip.decompress(b), name) or f"{name}: the gzip wrapper differs"
    if name.endswith(".json"):
        return json_difference(json.loads(a), json.loads(b), name) or f"{name}: formatting differs"
    return binary_difference(a, b, name)


def main() -> int:
    dist_a, dist_b = sys.argv[1:3]
    names = ["host-device", "host-device.cdx.json"]
    names += sorted(os.path.basename(p) for p in glob.glob(os.path.join(dist_a, "host-device-*.tgz")))
    same = True
    for name in names:
        a, b = (open(os.path.join(d, name), "rb").read() for d in (dist_a, dist_b))
        digests = [hashlib.sha256(data).hexdigest() for data in (a, b)]
        verdict = "same" if a == b else "DIFFERENT"
        print(f"{verdict:9} {name}\n          {digests[0]}\n          {digests[1]}")
        if a != b:
            same = False
            print(f"          first difference: {compare(name, a, b)}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
