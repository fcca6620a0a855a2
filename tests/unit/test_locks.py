"""Per-device locks on their own: keyed by identity, re-entered in one process, waited for across
processes, given up with code 11 naming the device, and freed when their holder dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cni_hostdev.errors import TRY_AGAIN_LATER, CniError
from cni_hostdev.identity import lock_key as identity
from cni_hostdev.locks import device_lock
from tests.conftest import ROOT

HOLDER = """
import sys, time
from cni_hostdev.locks import device_lock
with device_lock(sys.argv[1], sys.argv[2], "held"):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def hold(data_dir: Path, key: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(data_dir), key, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_the_key_is_the_most_stable_identity() -> None:
    assert identity("0000:00:04.0", "aa:bb:cc:dd:ee:ff", "11:22:33:44:55:66") == "pci-0000:00:04.0"
    assert identity(None, "aa:bb:cc:dd:ee:ff", "11:22:33:44:55:66") == "mac-aa:bb:cc:dd:ee:ff"
    assert identity(None, None, "11:22:33:44:55:66") == "addr-11:22:33:44:55:66"


def test_one_process_re_enters_its_own_lock(tmp_path: Path) -> None:
    with device_lock(str(tmp_path), "pci-0000:00:04.0", "ens4", timeout=0.2):
        with device_lock(str(tmp_path), "pci-0000:00:04.0", "ens4", timeout=0.2):
            pass
    assert (tmp_path / "locks" / "pci-0000_00_04.0.lock").exists()


def test_a_lock_held_elsewhere_is_waited_for_then_given_up_naming_the_device(tmp_path: Path) -> None:
    holder = hold(tmp_path, "mac-aa", 30)
    try:
        started = time.monotonic()
        with pytest.raises(CniError) as err:
            with device_lock(str(tmp_path), "mac-aa", "ens4", timeout=0.3):
                pass
        assert time.monotonic() - started >= 0.3
        assert err.value.code == TRY_AGAIN_LATER and "device ens4 is busy" in err.value.msg
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_whose_holder_was_killed_is_free(tmp_path: Path) -> None:
    holder = hold(tmp_path, "mac-bb", 30)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with device_lock(str(tmp_path), "mac-bb", "ens5", timeout=1):
        pass


def test_a_lock_is_taken_when_its_holder_lets_go_and_not_before(tmp_path: Path) -> None:
    holder = hold(tmp_path, "mac-cc", 0.3)
    started = time.monotonic()
    with device_lock(str(tmp_path), "mac-cc", "ens6", timeout=10):
        waited = time.monotonic() - started
        assert holder.wait(5) == 0  # it let go by leaving its block: it is ending, not still holding
    assert waited >= 0.25, "taken while its holder still held it"
    assert waited < 5, "not taken when its holder let go"
