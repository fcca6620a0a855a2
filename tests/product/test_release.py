"""`make release`: a versioned tarball with the binary, README and license, and a checksum that verifies."""

from __future__ import annotations

import subprocess
import tarfile
import tomllib
from pathlib import Path

import pytest

from cni_hostdev import __version__
from tests.conftest import BINARY, ROOT


def test_release_tarball(tmp_path: Path) -> None:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    with open(ROOT / "pyproject.toml", "rb") as f:
        assert tomllib.load(f)["tool"]["setuptools"]["dynamic"]["version"]["attr"] == "cni_hostdev.__version__"
    out = subprocess.run([str(ROOT / "packaging" / "release.sh"), str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    name = f"host-device-{__version__}-linux-amd64"
    tgz = tmp_path / f"{name}.tgz"
    with tarfile.open(tgz) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {name, f"{name}/host-device", f"{name}/README.md", f"{name}/LICENSE"}
        assert members[f"{name}/host-device"].mode & 0o111
        tar.extractall(tmp_path / "x", filter="data")
    check = subprocess.run(["sha256sum", "-c", f"{name}.tgz.sha256"], cwd=tmp_path, capture_output=True, text=True)
    assert check.returncode == 0 and "OK" in check.stdout
    version = subprocess.run([str(tmp_path / "x" / name / "host-device"), "--version"], capture_output=True, text=True)
    assert version.stdout.strip() == f"host-device {__version__}"
