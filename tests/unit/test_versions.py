"""cni_hostdev/versions.py: versions of the table compare by their place in it, as packaging would
compare them; `packaging` loads only for a version this build does not know."""

from __future__ import annotations

import itertools
import subprocess
import sys

import pytest
from packaging.version import Version

from cni_hostdev import versions
from cni_hostdev.errors import INCOMPATIBLE_VERSION, CniError
from tests.conftest import ROOT


def sign(value: int) -> int:
    return (value > 0) - (value < 0)


@pytest.mark.parametrize("a,b", list(itertools.product(versions.SUPPORTED_VERSIONS, repeat=2)))
def test_the_table_compares_as_packaging_does(a: str, b: str) -> None:
    assert sign(versions.compare(a, b)) == (Version(a) > Version(b)) - (Version(a) < Version(b))


@pytest.mark.parametrize(
    "a,b,expected",
    [
        ("1.2.0", "1.1.0", 1),
        ("1.1.0", "1.10.0", -1),
        ("0.4.0", "0.4", 0),
        ("2.0.0rc1", "1.1.0", 1),
        ("1.1", "1.1.0", 0),
    ],
)
def test_a_version_the_table_does_not_know_is_compared_by_packaging(a: str, b: str, expected: int) -> None:
    assert sign(versions.compare(a, b)) == expected


def test_what_is_not_a_version_is_refused_by_packaging() -> None:
    with pytest.raises(ValueError):
        versions.compare("latest", "1.1.0")


def test_a_config_speaks_only_the_table() -> None:
    assert versions.supported("0.3.1") == "0.3.1"
    with pytest.raises(CniError) as newer:
        versions.supported("1.2.0")
    assert newer.value.code == INCOMPATIBLE_VERSION and "not supported" in newer.value.msg
    with pytest.raises(CniError) as garbage:
        versions.supported("one")
    assert garbage.value.code == INCOMPATIBLE_VERSION and "is not a version" in garbage.value.msg


def loads_packaging(code: str) -> bool:
    probe = f"import sys\nfrom cni_hostdev import versions\n{code}\nprint('packaging' in sys.modules)\n"
    site = ":".join(p for p in sys.path if p.endswith("site-packages"))
    out = subprocess.run(
        [sys.executable, "-S", "-c", probe], capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": site}
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "True"


def test_packaging_loads_only_for_an_unknown_version() -> None:
    assert not loads_packaging("versions.compare('0.3.0', '1.1.0'); versions.supported('1.0.0')")
    assert loads_packaging("versions.compare('1.2.0', '1.1.0')")
