"""The frozen binary is the product: static, self-contained, runnable in an empty chroot."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BINARY

CHROOT = shutil.which("chroot") or shutil.which("chroot", path="/usr/sbin:/sbin") or "/usr/sbin/chroot"


@pytest.fixture
def binary() -> Path:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    return BINARY


def test_not_a_dynamic_executable(binary: Path) -> None:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    assert "not a dynamic executable" in out.stdout + out.stderr


@pytest.fixture
def empty_root(tmp_path: Path, binary: Path) -> Iterator[Path]:
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    (root / "proc").mkdir()
    shutil.copy2(binary, root / "host-device")
    subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root / "proc")], check=False)


def test_runs_in_an_empty_chroot(empty_root: Path) -> None:
    assert sorted(p.name for p in empty_root.iterdir()) == ["host-device", "proc", "tmp"]
    out = subprocess.run(
        [CHROOT, str(empty_root), "/host-device"],
        input=b'{"cniVersion":"1.1.0"}',
        env={"CNI_COMMAND": "VERSION"},
        capture_output=True,
        check=True,
    )
    assert json.loads(out.stdout)["supportedVersions"][-1] == "1.1.0"
    probe = subprocess.run([CHROOT, str(empty_root), "/host-device", "probe", "--fresh"], capture_output=True)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout)["atomicMoveRename"] is True


def test_version_flag(binary: Path) -> None:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("host-device ")
