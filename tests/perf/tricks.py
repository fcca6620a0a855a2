"""`make tricks`: what each start-up trick saves on its own, measured alone, in one interleaved run.

Every trick the start-up chain plays (a stand-in for a standard module, a finder, gc off ...) is code
someone must own: it stays only if its own saving is worth it (>= 0.5 ms per exec). For each trick,
a scratch copy of this tree is built with that one trick undone (the standard module or plain idiom
put back), and every build is timed against the build with all of them, interleaved, as a runtime
execs us: an ADD and a DEL of a veth, each a fresh exec. What is compared is the time from the exec
to the moment the plugin has imported everything and read its input (its `ready` mark: start-up,
imports and input, without the kernel's move, which varies by milliseconds from call to call), and
the whole ADD for reference.

All builds use one virtualenv installed from requirements.lock, without the package itself (so that
PyInstaller freezes each scratch tree's own copy, never the checkout's).

Usage: tricks.py [--rounds N] [--keep] [TRICK ...]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))
from tests.perf import bench  # noqa: E402

Patch = Callable[[Path], None]


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    if old not in text:
        raise SystemExit(f"tricks: {path} no longer has {old!r}: the patch that undoes a trick must follow the code")
    path.write_text(text.replace(old, new, 1))


def _prepend_import(path: Path, statement: str) -> None:
    """`statement` right after the module's `from __future__` line: loaded whenever the module is."""
    _edit(path, "from __future__ import annotations\n", f"from __future__ import annotations\n\n{statement}\n")


def pyinstaller_bootstrap(tree: Path) -> None:
    spec = tree / "packaging" / "host-device.spec"
    text = spec.read_text()
    start = text.index("pyz.dependencies = [")
    end = text.index("require(not pyz.toc")
    text = text[:start] + text[end:]
    check = 'require(\n    "CNI_HOSTDEV_BOOTSTRAP" in bootstrap_in(onedir_exe.name).co_names,'
    text = text.replace(check, "(\n    True,")
    spec.write_text(text)


def json_package(tree: Path) -> None:
    _edit(tree / "cni_hostdev" / "lean" / "json.py", "_fast = _fast_path()", "_fast = None")


def ctypes_package(tree: Path) -> None:
    _edit(
        tree / "cni_hostdev" / "lean" / "libc.py",
        "    _function = _through_ctypes_core()",
        "    _function = 1 / 0  # type: ignore",
    )
    _edit(
        tree / "cni_hostdev" / "lean" / "libc.py",
        "except (ImportError, AttributeError, TypeError):",
        "except Exception:",
    )


def contextlib_module(tree: Path) -> None:
    for path in (tree / "cni_hostdev").rglob("*.py"):
        text = path.read_text()
        if "from cni_hostdev.lean.contextlib import contextmanager" in text:
            path.write_text(
                text.replace(
                    "from cni_hostdev.lean.contextlib import contextmanager", "from contextlib import contextmanager"
                )
            )


def re_patterns(tree: Path) -> None:
    _prepend_import(
        tree / "cni_hostdev" / "identifiers.py",
        "import re\n\n_PATTERNS = (re.compile(r'(?:[0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}'), "
        "re.compile(r'(?:[0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]'), "
        "re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]*'))",
    )


def socket_module(tree: Path) -> None:
    _prepend_import(tree / "cni_hostdev" / "netlink.py", "import socket  # noqa: F401")


def typing_at_run_time(tree: Path) -> None:
    _prepend_import(
        tree / "cni_hostdev" / "cli.py", "import typing  # noqa: F401\nimport collections.abc  # noqa: F401"
    )


def packaging_always(tree: Path) -> None:
    _prepend_import(tree / "cni_hostdev" / "versions.py", "import packaging.version  # noqa: F401")


def real_modules_for_pyroute2(tree: Path) -> None:
    loader = tree / "cni_hostdev" / "netlink_loader.py"
    _edit(loader, "        for name, given in answers().items():", "        for name, given in {}.items():")
    _edit(loader, '        if module_name == MODULES["ifinfmsg"]:', "        if False:")


def gc_on(tree: Path) -> None:
    _edit(tree / "cni_hostdev" / "cli.py", "\ngc.disable()\n", "\n")


def dataclasses_for_values(tree: Path) -> None:
    """Measured as what dataclasses(slots=True) would cost: the module, and one generated class per
    hand-written value class an ADD loads (their __init__ and slots made at import, as the decorator
    makes them)."""
    classes = []
    on_the_path = ("result", "plugin/call", "config", "netlink", "routing", "state", "netns", "move", "logs")
    for path in (tree / "cni_hostdev" / f"{module}.py" for module in on_the_path):
        for name, slots in re.findall(
            r"^class (\w+)[^\n]*:\n(?:    \"\"\"[^\n]*\n(?:[^\n]*\n)*?)?    __slots__ = \(([^)]*)\)",
            path.read_text(),
            re.M,
        ):
            fields = re.findall(r'"(\w+)"', slots)
            if fields:
                classes.append((name, fields))
    body = "\n".join(
        f"@dataclasses.dataclass(slots=True)\nclass _{name}:\n" + "".join(f"    {f}: object = None\n" for f in fields)
        for name, fields in classes
    )
    _prepend_import(tree / "cni_hostdev" / "result.py", f"import dataclasses\n\n{body}")


TRICKS: dict[str, tuple[str, Patch]] = {
    "own bootstrap": (
        "PyInstaller's bootstrap script (its archive importer, ctypes hook, egg scan)",
        pyinstaller_bootstrap,
    ),
    "lean json (_json)": ("the json package (with re, enum, functools, collections)", json_package),
    "lean libc (_ctypes)": ("ctypes' Python layer", ctypes_package),
    "lean contextlib": ("contextlib's contextmanager", contextlib_module),
    "identifiers by hand": ("re patterns", re_patterns),
    "_socket in netlink": ("the socket module (its enum classes)", socket_module),
    "no typing at run time": ("typing and collections.abc imported at run time", typing_at_run_time),
    "packaging on demand": ("packaging.version imported by every call", packaging_always),
    "pyroute2 stand-ins": (
        "the real typing, socket, threading, pyroute2.config ... and ifinfmsg's data plugins",
        real_modules_for_pyroute2,
    ),
    "gc off": ("the cyclic garbage collector on during imports", gc_on),
    "__slots__ classes": ("dataclasses(slots=True)", dataclasses_for_values),
}


def source_tree(into: Path) -> None:
    """A copy of this checkout as it is now (packaging/copy-tree.sh)."""
    subprocess.run([str(ROOT / "packaging" / "copy-tree.sh"), str(into)], check=True)


def build(python: str, tree: Path) -> Path:
    env = {**os.environ, "SOURCE_DATE_EPOCH": "0"}
    done = subprocess.run(["packaging/freeze.sh", python], cwd=tree, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"tricks: the build in {tree} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return tree / "dist" / "host-device"


def measure(binaries: dict[str, Path], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Per build: ADD's and DEL's exec-to-ready, and the whole ADD, in seconds, interleaved."""
    times: dict[str, dict[str, list[float]]] = {
        name: {"ADD ready": [], "DEL ready": [], "ADD": []} for name in binaries
    }
    work = Path(tempfile.mkdtemp(prefix="ttricks"))
    marks = work / "marks"
    with bench.fresh_names() as names:
        dev, pod = names.veth(), names.pod()
        env = {"CNI_CONTAINERID": "trick", "CNI_NETNS": f"/run/netns/{pod}", "CNI_IFNAME": "net1"}
        order = list(binaries.items())
        for round_number in range(rounds + 1):
            turn = round_number % len(order)
            for name, binary in order[turn:] + order[:turn]:
                conf = bench.conf_for(dev, str(work / f"state-{abs(hash(name))}"))
                for command in ("ADD", "DEL"):
                    marks.unlink(missing_ok=True)
                    start, reaped = bench.spawn(str(binary), command, conf, {**env, "CNI_HOSTDEV_PROFILE": str(marks)})
                    ready = json.loads(marks.read_text().splitlines()[-1])["ready"]
                    if round_number:  # the first round unpacks every single file: not timed
                        times[name][f"{command} ready"].append(ready - start)
                        if command == "ADD":
                            times[name]["ADD"].append(reaped - start)
    shutil.rmtree(work, ignore_errors=True)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("tricks", nargs="*", default=list(TRICKS))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="tricks."))
    try:
        venv = scratch / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        python = str(venv / "bin" / "python")
        lock = str(ROOT / "requirements.lock")
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "--require-hashes", "--only-binary", ":all:", "-r", lock], check=True
        )
        binaries: dict[str, Path] = {}
        for name in ["all tricks", *args.tricks]:
            tree = scratch / re.sub(r"\W+", "-", name).strip("-")
            source_tree(tree)
            if name != "all tricks":
                TRICKS[name][1](tree)
            started = time.monotonic()
            binaries[name] = build(python, tree)
            print(f"# built {name} ({time.monotonic() - started:.0f} s)", flush=True)
        times = measure(binaries, args.rounds)
        base = {key: statistics.median(values) * 1000 for key, values in times["all tricks"].items()}
        print(f"\n{args.rounds} interleaved rounds; medians in ms; saved = without the trick - with all of them\n")
        print("| trick | what it replaces | ADD: exec to ready | saved | DEL: exec to ready | saved | whole ADD |")
        print("|---|---|---|---|---|---|---|")
        for name, by_key in times.items():
            m = {key: statistics.median(values) * 1000 for key, values in by_key.items()}
            what = TRICKS[name][0] if name in TRICKS else "(the build as it is)"
            saved_add, saved_del = m["ADD ready"] - base["ADD ready"], m["DEL ready"] - base["DEL ready"]
            add, delete = f"{m['ADD ready']:.2f} | {saved_add:+.2f}", f"{m['DEL ready']:.2f} | {saved_del:+.2f}"
            print(f"| {name} | {what} | {add} | {delete} | {m['ADD']:.1f} |")
    finally:
        if args.keep:
            print(f"scratch kept in {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
