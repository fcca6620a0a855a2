"""`make release`: a versioned tarball with the binary, its SBOM, README and license, checksums that
verify, and the same bytes every time it is made from the same build."""

from __future__ import annotations

import gzip
import os
import subprocess
import tarfile
import time
import tomllib
from pathlib import Path

import pytest

from cni_hostdev import __version__
from tests.conftest import BINARY, ROOT

NAME = f"host-device-{__version__}-linux-amd64"


def release(out: Path) -> Path:
    made = subprocess.run([str(ROOT / "packaging" / "release.sh"), str(out)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    return out / f"{NAME}.tgz"


@pytest.fixture
def built() -> None:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")


@pytest.mark.usefixtures("built")
def test_release_tarball(tmp_path: Path) -> None:
    with open(ROOT / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "cni_hostdev.__version__"
    tgz = release(tmp_path)
    with tarfile.open(tgz) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {
            NAME,
            f"{NAME}/host-device",
            f"{NAME}/host-device.cdx.json",
            f"{NAME}/README.md",
            f"{NAME}/LICENSE",
        }
        assert members[f"{NAME}/host-device"].mode & 0o111
        tar.extractall(tmp_path / "x", filter="data")
    for sums in (f"{NAME}.tgz.sha256", "SHA256SUMS"):
        check = subprocess.run(["sha256sum", "-c", sums], cwd=tmp_path, capture_output=True, text=True)
        assert check.returncode == 0 and "OK" in check.stdout
    assert (tmp_path / f"{NAME}.cdx.json").read_bytes() == (tmp_path / "x" / NAME / "host-device.cdx.json").read_bytes()
    version = subprocess.run([str(tmp_path / "x" / NAME / "host-device"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"host-device {__version__}"


@pytest.mark.usefixtures("built")
def test_the_tarball_is_the_same_bytes_whenever_it_is_made(tmp_path: Path) -> None:
    first = release(tmp_path / "first").read_bytes()
    time.sleep(1.1)  # another second on the clock, and another umask
    old = os.umask(0o077)
    try:
        second = release(tmp_path / "second").read_bytes()
    finally:
        os.umask(old)
    assert first == second
    with gzip.open(tmp_path / "first" / f"{NAME}.tgz") as header:
        header.read(1)
        assert isinstance(header, gzip.GzipFile) and header.mtime == 0, "gzip wrote a time of its own"
    commit_time = int(
        subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True).stdout
    )
    with tarfile.open(tmp_path / "first" / f"{NAME}.tgz") as tar:
        assert {(m.mtime, m.uid, m.gid) for m in tar.getmembers()} == {(commit_time, 0, 0)}
