"""The bill of materials (dist/host-device.cdx.json, packaging/sbom.py) against what dist/host-device
actually carries: read back from the executable's own payload, so the two cannot drift apart."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from typing import Any

import pytest

from cni_hostdev import __version__
from cni_hostdev.tools.install import read_payload, read_trailer
from tests.conftest import BINARY, ROOT

SBOM = BINARY.with_name("host-device.cdx.json")
PATH_PROPERTY = "cni-hostdev:bundle:path"


@pytest.fixture(scope="module")
def sbom() -> dict[str, Any]:
    if not BINARY.exists():
        pytest.skip("dist/host-device is not built (make binary)")
    document: dict[str, Any] = json.loads(SBOM.read_text())
    return document


@pytest.fixture(scope="module")
def payload() -> dict[str, bytes | None]:
    """Every member of the executable's payload: its bytes (None for a directory or a link)."""
    data = read_payload(str(BINARY))
    assert data is not None
    members: dict[str, bytes | None] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./")
            extracted = tar.extractfile(member) if member.isfile() else None
            members[name] = extracted.read() if extracted else None
    return members


def components(sbom: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for component in sbom["components"]:
        yield component
        yield from component.get("components", [])


def locked_versions() -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", (ROOT / "requirements.lock").read_text(), re.M)
    return {name.lower().replace("_", "-"): version for name, version in pins}


def is_shared_object(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".so") or ".so." in base or base == "ld.so"


def test_every_shared_object_and_only_those_are_listed_with_their_hash(
    sbom: dict[str, Any], payload: dict[str, bytes | None]
) -> None:
    in_bundle = {
        name: hashlib.sha256(data).hexdigest()
        for name, data in payload.items()
        if data is not None and (is_shared_object(name) or name == "host-device")
    }
    listed = {c["name"]: c["hashes"][0]["content"] for c in components(sbom) if c["type"] == "file"}
    assert listed == in_bundle
    assert {"_internal/libc.so.6", "_internal/ld.so", "_internal/libpython3.11.so.1.0"} <= set(listed)


def test_every_entry_of_the_bundle_is_claimed_by_exactly_one_component(
    sbom: dict[str, Any], payload: dict[str, bytes | None]
) -> None:
    claims: list[str] = [
        prop["value"]
        for component in [sbom["metadata"]["component"], *components(sbom)]
        for prop in component.get("properties", [])
        if prop["name"] == PATH_PROPERTY and prop["value"].startswith("_internal/")
    ]
    assert len(claims) == len(set(claims)), "two components claim one path"
    top_level = {
        "/".join(name.split("/")[:2])
        for name in payload
        if name.startswith("_internal/") and not is_shared_object(name.split("/")[1])
    }
    assert set(claims) == top_level
    assert "_internal/pyroute2" in claims and "_internal/cni_hostdev" in claims


def test_python_packages_are_the_locked_versions_with_a_licence(sbom: dict[str, Any]) -> None:
    locked = locked_versions()
    packages = {c["name"].lower(): c for c in sbom["components"] if c["purl"].startswith("pkg:pypi/")}
    assert {"pyroute2", "pyyaml", "packaging"} <= set(packages)
    for name, component in packages.items():
        lock_name = "pyinstaller" if component["name"] == "PyInstaller bootloader" else name
        assert component["version"] == locked[lock_name.replace("_", "-")], name
        assert component["licenses"][0]["expression"], name


def test_cpython_is_the_interpreter_that_built_it(sbom: dict[str, Any], payload: dict[str, bytes | None]) -> None:
    (cpython,) = [c for c in sbom["components"] if c["name"] == "CPython"]
    built_with = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python"), "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert cpython["version"] == built_with == ".".join(map(str, sys.version_info[:3]))
    # PY_VERSION, NUL-terminated (the linker may share it with the tail of a longer string).
    libpython = payload["_internal/libpython3.11.so.1.0"]
    assert libpython is not None and f"{built_with}\0".encode() in libpython


def test_debian_libraries_name_their_package_and_installed_version(sbom: dict[str, Any]) -> None:
    debian = {c["name"]: c for c in sbom["components"] if c["purl"].startswith("pkg:deb/debian/")}
    assert {"libc6", "libc6-dev"} <= set(debian)
    for name, component in debian.items():
        installed = subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", f"{name}:amd64"], capture_output=True, text=True, check=True
        ).stdout
        assert component["version"] == installed, name


def test_the_document_names_this_executable_and_this_lock(sbom: dict[str, Any]) -> None:
    root = sbom["metadata"]["component"]
    assert (root["name"], root["version"]) == ("cni-hostdev", __version__)
    assert root["hashes"][0]["content"] == hashlib.sha256(BINARY.read_bytes()).hexdigest()
    lock = hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()
    assert {"name": "cni-hostdev:lock:sha256", "value": lock} in root["properties"]
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    assert [dep["ref"] for dep in sbom["dependencies"]] == [root["bom-ref"]]
    trailer = read_trailer(str(BINARY))
    assert trailer is not None and trailer[1] > 0


def test_no_path_of_the_checkout_or_its_virtualenv_is_in_the_bundle(payload: dict[str, bytes | None]) -> None:
    """What `make reproduce` relies on, said where it breaks: a path of the build machine in the bundle."""
    for name, data in payload.items():
        assert data is None or (str(ROOT).encode() not in data and b"/.venv/" not in data), name
    assert any(data and b"cni_hostdev" in data for data in payload.values()), "the check reads nothing"
