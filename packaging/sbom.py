"""Write the bill of materials of dist/host-device: CycloneDX 1.5 JSON.

What the executable bundles, each part with where it came from:
- CPython (the interpreter that froze it): libpython, its extension modules, its standard library;
- every shared library copied in from the build machine, with its Debian package and version
  (`dpkg -S`, `dpkg-query`), and the static C library the launcher is linked with;
- every Python distribution, with its exact version and licence, and the path it occupies;
- PyInstaller's bootloader, which runs the interpreter.

Each shared object of the bundle is a file component with the sha256 of the copy in the bundle
(after patchelf), and each top-level entry of the bundle's `_internal/` is claimed by exactly one
component (property `cni-hostdev:bundle:path`). A file nobody claims fails the build.
tests/product/test_sbom.py checks the result against the payload of dist/host-device.

The output is a function of the build's inputs only: sorted, its timestamp SOURCE_DATE_EPOCH, its
serial number derived from the executable's hash.

Usage: sbom.py --binary FILE --onedir DIR --collected JSON --copied JSON --lock FILE --out FILE
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import sysconfig
import uuid
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from cni_hostdev import __version__

PATH_PROPERTY = "cni-hostdev:bundle:path"
LIBS = "_internal"
BOOTLOADER = "host-device"  # PyInstaller's bootloader, patched: the onedir tree's executable
LAUNCHER_LIBC = "/usr/lib/x86_64-linux-gnu/libc.a"  # what `gcc -static` links the launcher with
# Licences where a distribution's metadata says it in prose rather than as an SPDX expression.
SPDX_BY_PROSE = {"pyinstaller": "GPL-2.0-or-later WITH Bootloader-exception"}
Component = dict[str, Any]


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_shared_object(name: str) -> bool:
    return name.endswith(".so") or ".so." in name or name == "ld.so"


def debian_package(path: str) -> tuple[str, str]:
    """The Debian package (name:arch) that installed `path`, and its version."""
    candidates = [path]
    if path.startswith("/usr/"):  # usrmerge: dpkg may know it under /lib
        candidates.append(path[len("/usr") :])
    for candidate in candidates:
        found = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if found.returncode == 0:
            package = found.stdout.split(":", 2)
            name = f"{package[0]}:{package[1].strip()}" if len(package) == 3 else package[0]
            version = subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", name], capture_output=True, text=True, check=True
            ).stdout
            return name, version
    raise SystemExit(f"sbom: no Debian package installed {path}: cannot say where it came from")


def licence_of(distribution: importlib.metadata.Distribution) -> str:
    fields = distribution.metadata.json  # lower-case keys, "-" as "_"
    name = str(fields["name"])
    expression = str(fields.get("license_expression") or SPDX_BY_PROSE.get(name.lower(), ""))
    if not expression:
        text = str(fields.get("license") or "").strip()
        expression = text if text and " " not in text else ""
    if not expression:
        raise SystemExit(f"sbom: {name} states no licence this script can read: add it to SPDX_BY_PROSE")
    return expression


def file_component(onedir: str, path: str) -> Component:
    return {
        "type": "file",
        "bom-ref": f"file:{path}",
        "name": path,
        "hashes": [{"alg": "SHA-256", "content": sha256(os.path.join(onedir, path))}],
    }


def purl_version(version: str) -> str:
    return version.replace("+", "%2B").replace(":", "%3A")


class Bundle:
    """The components of one onedir tree, filled by walking it."""

    def __init__(self, onedir: str, sources: dict[str, str], python_version: str) -> None:
        self.onedir = onedir
        self.sources = sources  # bundle path -> the file it was copied from
        self.components: dict[str, Component] = {}
        self.top_level = importlib.metadata.packages_distributions()
        lib_dir = f"python{sys.version_info.major}.{sys.version_info.minor}"  # where the bundle keeps lib-dynload
        self.stdlib = set(sys.stdlib_module_names) | {"__future__", lib_dir, "encodings"}
        self.prefix = os.path.realpath(sys.base_prefix)
        self.site = os.path.realpath(sysconfig.get_paths()["purelib"])
        self.cpython = self._component(
            "cpython",
            "framework",
            "CPython",
            python_version,
            f"pkg:generic/cpython@{python_version}",
            "PSF-2.0",
        )

    def _component(self, ref: str, kind: str, name: str, version: str, purl: str, licence: str | None) -> Component:
        if ref not in self.components:
            component: Component = {"type": kind, "bom-ref": ref, "name": name, "version": version, "purl": purl}
            if licence:
                component["licenses"] = [{"expression": licence}]
            component["properties"], component["components"] = [], []
            self.components[ref] = component
        return self.components[ref]

    def distribution(self, top_level: str) -> Component | None:
        names = sorted(set(self.top_level.get(top_level, [])))
        if not names:
            return None
        if len(names) > 1:
            raise SystemExit(f"sbom: {top_level} belongs to several distributions: {names}")
        dist = importlib.metadata.distribution(names[0])
        name, version = dist.metadata["Name"], dist.version
        return self._component(
            f"pypi:{name.lower()}@{version}",
            "library",
            name,
            version,
            f"pkg:pypi/{name.lower()}@{version}",
            licence_of(dist),
        )

    def debian(self, source: str) -> Component:
        package, version = debian_package(source)
        name, _, arch = package.partition(":")
        purl = f"pkg:deb/debian/{name}@{purl_version(version)}" + (f"?arch={arch}" if arch else "")
        return self._component(f"deb:{name}@{version}", "library", name, version, purl, None)

    def bootloader(self) -> Component:
        dist = importlib.metadata.distribution("pyinstaller")
        return self._component(
            f"pyinstaller-bootloader@{dist.version}",
            "application",
            "PyInstaller bootloader",
            dist.version,
            f"pkg:pypi/pyinstaller@{dist.version}",
            licence_of(dist),
        )

    def owner_of_shared_object(self, path: str) -> Component:
        source = self.sources.get(path)
        if source is None:
            raise SystemExit(f"sbom: {path} is in the bundle but no build step says where it came from")
        if source.startswith(self.site + os.sep):
            top = os.path.relpath(source, self.site).split(os.sep)[0].removesuffix(".py")
            owner = self.distribution(top)
            if owner is None:
                raise SystemExit(f"sbom: {source} is in site-packages but no distribution owns {top}")
            return owner
        if source.startswith(self.prefix + os.sep):
            return self.cpython
        return self.debian(source)

    def owner_of_top_level(self, name: str) -> Component | None:
        """Who claims `_internal/<name>` (a module, a package, the extension modules' dir)."""
        module = name.removesuffix(".pyc")
        if module == "cni_hostdev":
            return None  # ours: the root component
        owner = self.distribution(module)
        if owner is not None:
            return owner
        if module in self.stdlib:
            return self.cpython
        raise SystemExit(
            f"sbom: {LIBS}/{name} is in the bundle but is neither the standard library nor a distribution's"
        )

    def walk(self) -> list[str]:
        """Fill the components; return what the root component claims itself."""
        ours: list[str] = []
        self.bootloader()["components"].append(file_component(self.onedir, BOOTLOADER))
        for root, dirs, files in os.walk(self.onedir):
            dirs.sort()
            for name in sorted(files):
                path = os.path.relpath(os.path.join(root, name), self.onedir)
                if path != BOOTLOADER and is_shared_object(name) and not os.path.islink(os.path.join(root, name)):
                    self.owner_of_shared_object(path)["components"].append(file_component(self.onedir, path))
        for name in sorted(os.listdir(os.path.join(self.onedir, LIBS))):
            if is_shared_object(name):
                continue  # a file component of its own
            owner = self.owner_of_top_level(name)
            claim = {"name": PATH_PROPERTY, "value": f"{LIBS}/{name}"}
            if owner is None:
                ours.append(claim["value"])
            else:
                owner["properties"].append(claim)
        for path in sorted(os.listdir(self.onedir)):
            if path not in (BOOTLOADER, LIBS):
                raise SystemExit(f"sbom: {path} is in the bundle but not accounted for")
        return ours


def build(args: argparse.Namespace) -> dict[str, Any]:
    with open(args.collected) as f:
        sources = {dest: src for dest, src, _ in json.load(f)}
    with open(args.copied) as f:
        sources.update(json.load(f))
    # PyInstaller names what it collects relative to `_internal`.
    sources = {path if path.startswith(f"{LIBS}/") else f"{LIBS}/{path}": src for path, src in sources.items()}
    bundle = Bundle(args.onedir, sources, platform.python_version())
    ours = bundle.walk()
    launcher_libc = bundle.debian(LAUNCHER_LIBC)
    launcher_libc["properties"].append({"name": PATH_PROPERTY, "value": "launcher (static, in front of the payload)"})
    binary_hash = sha256(args.binary)
    root: Component = {
        "type": "application",
        "bom-ref": f"cni-hostdev@{__version__}",
        "name": "cni-hostdev",
        "version": __version__,
        "purl": f"pkg:generic/cni-hostdev@{__version__}",
        "licenses": [{"expression": "Apache-2.0"}],
        "hashes": [{"alg": "SHA-256", "content": binary_hash}],
        "properties": [{"name": PATH_PROPERTY, "value": path} for path in ours]
        + [{"name": "cni-hostdev:lock:sha256", "value": sha256(args.lock)}],
    }
    components = []
    for ref in sorted(bundle.components):
        component = bundle.components[ref]
        component["properties"].sort(key=lambda p: p["value"])
        component["components"].sort(key=lambda c: c["name"])
        for key in ("properties", "components"):
            if not component[key]:
                del component[key]
        components.append(component)
    stamp = datetime.datetime.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")), datetime.UTC)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'sha256:' + binary_hash)}",
        "version": 1,
        "metadata": {
            "timestamp": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "packaging/sbom.py"}]},
            "component": root,
        },
        "components": components,
        "dependencies": [{"ref": root["bom-ref"], "dependsOn": [c["bom-ref"] for c in components]}],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for option in ("--binary", "--onedir", "--collected", "--copied", "--lock", "--out"):
        parser.add_argument(option, required=True)
    args = parser.parse_args()
    document = build(args)
    with open(args.out + ".new", "w") as out:
        json.dump(document, out, indent=1, sort_keys=True)
        out.write("\n")
    os.replace(args.out + ".new", args.out)


if __name__ == "__main__":
    main()
