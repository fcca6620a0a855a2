"""`make deps-check`: which pins of requirements.lock can move to the newest versions pyproject.toml's
ranges allow, and what breaks for those that cannot.

The speed of an exec'd call rests on private details of exactly the locked releases (pyroute2's
imports, PyInstaller's bootstrap, CPython's `_json` and `_ctypes`). So this resolves the newest
versions in a scratch directory (uv, from the lock), builds the single file in a scratch copy of
this tree with them, and runs the tests that hold those details (the loader, the import set, the
bootstrap, the frozen binary, the SBOM). If all the moved pins pass together, they can all move;
if not, each is tried alone, and the first failures of each are printed. Nothing of the checkout
changes: moving a pin is `make lock UPGRADE=NAME` (or `UPGRADE=all`), then `make test`.

Usage: deps_check.py [--against LOCK] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCK = os.path.join(ROOT, "requirements.lock")
UV = os.path.join(ROOT, ".venv", "bin", "uv")
TESTS = [
    "tests/unit/test_netlink_loader.py",
    "tests/unit/test_bootstrap.py",
    "tests/unit/test_lean_json.py",
    "tests/unit/test_lean_libc.py",
    "tests/kernel/test_imports.py",
    "tests/product/test_frozen.py",
    "tests/product/test_version_answer.py",
    "tests/product/test_sbom.py",
]
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([^\s\\]+)", re.M)


def pins(path: str) -> dict[str, str]:
    with open(path) as f:
        return {name.lower(): version for name, version in PIN.findall(f.read())}


def resolve(against: str, upgrade: list[str] | None, out: str) -> dict[str, str]:
    """The lock re-resolved from `against`: every pin moved (`upgrade` None) or only those named."""
    shutil.copyfile(against, out)  # uv keeps the pins it finds in the output file
    moves = ["--upgrade"] if upgrade is None else [arg for name in upgrade for arg in ("--upgrade-package", name)]
    command = [UV, "pip", "compile", "pyproject.toml", "--extra", "dev", "--generate-hashes", "--quiet"]
    command += ["--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_36", *moves, "-o", out]
    subprocess.run(command, cwd=ROOT, check=True)
    return pins(out)


def source_tree(into: str) -> None:
    """A copy of this checkout as it is now (packaging/copy-tree.sh)."""
    subprocess.run([os.path.join(ROOT, "packaging", "copy-tree.sh"), into], check=True)


def trial(label: str, lock: str, scratch: str) -> list[str]:
    """Build and test with `lock`; the failures (empty when everything passed)."""
    tree = os.path.join(scratch, label)
    source_tree(tree)
    shutil.copyfile(lock, os.path.join(tree, "requirements.lock"))
    commit_time = subprocess.run(["git", "log", "-1", "--format=%ct"], cwd=ROOT, capture_output=True, text=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": commit_time.stdout.strip() or "0"}
    build = subprocess.run(["make", "-s", "binary"], cwd=tree, capture_output=True, text=True, env=env)
    if build.returncode != 0:
        return ["the build failed:", *(build.stdout + build.stderr).strip().splitlines()[-12:]]
    python = os.path.join(tree, ".venv", "bin", "python")
    tests = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "--tb=line", *TESTS],
        cwd=tree,
        capture_output=True,
        text=True,
        env=env,
    )
    if tests.returncode == 0:
        return []
    lines = (tests.stdout + tests.stderr).strip().splitlines()
    return [line for line in lines if line.startswith(("FAILED", "ERROR", "E ", "/")) or " Error" in line][
        :12
    ] or lines[-12:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="requirements.lock", help="the lock to check (default requirements.lock)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="deps-check.")
    try:
        shown, args.against = args.against, os.path.join(ROOT, args.against)  # relative to the checkout
        locked = pins(args.against)
        newest = resolve(args.against, None, os.path.join(scratch, "newest.lock"))
        moved = sorted(name for name in newest if locked.get(name) != newest[name])
        print(f"deps-check: {shown} against the newest versions the ranges allow")
        if not moved:
            print("  every pin is the newest its range allows: nothing can move")
            return 0
        width = max(len(name) for name in moved)
        for name in moved:
            print(f"  {name:{width}}  {locked.get(name, '(new)'):>14} -> {newest[name]}")
        print(f"trying all {len(moved)} together: build, then {len(TESTS)} test files ...", flush=True)
        failures = trial("all", os.path.join(scratch, "newest.lock"), scratch)
        if not failures:
            print(f"  PASS: all {len(moved)} can move together (make lock UPGRADE=all, then make test)")
            return 0
        print("  FAIL:\n    " + "\n    ".join(failures))
        movable = []
        for name in moved:
            alone = resolve(args.against, [name], os.path.join(scratch, f"{name}.lock"))
            along = sorted(n for n in alone if locked.get(n) != alone[n] and n != name)
            print(f"trying {name} {newest[name]} alone" + (f" (with {', '.join(along)})" if along else "") + " ...")
            failures = trial(name, os.path.join(scratch, f"{name}.lock"), scratch)
            if failures:
                print("  FAIL:\n    " + "\n    ".join(failures))
            else:
                print(f"  PASS: make lock UPGRADE={name}")
                movable.append(name)
        print(f"can move: {', '.join(movable) or 'none'}; cannot: {', '.join(n for n in moved if n not in movable)}")
        return 1
    finally:
        if args.keep:
            print(f"scratch kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
