"""The shape of the package: one idea per module, said in its docstring; no module over 400 lines;
no function over 60; no import cycle, counting imports inside functions."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "cni_hostdev"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Every cni_hostdev module `name` imports, at the top or inside a function."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in known else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {module for module in found if module in known and module != name}


def test_every_module_says_the_idea_it_owns() -> None:
    missing = [name for name, path in modules().items() if not ast.get_docstring(ast.parse(path.read_text()))]
    assert not missing, f"modules without a docstring: {missing}"


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in modules().items()}
    assert not {n: s for n, s in sizes.items() if s > MAX_MODULE_LINES}, sizes


def test_no_function_is_over_60_lines() -> None:
    long = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert not long, "name its steps: " + ", ".join(long)


def test_no_import_cycle() -> None:
    known = modules()
    graph = {name: imports_of(name, path, known) for name, path in known.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in state:
                visit(imported)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_cycle_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    """The check itself: a function-level import counts as an edge."""
    one = tmp_path / "one.py"
    one.write_text("def f():\n    from cni_hostdev import two\n")
    known = {"cni_hostdev.one": one, "cni_hostdev.two": tmp_path / "two.py"}
    assert imports_of("cni_hostdev.one", one, known) == {"cni_hostdev.two"}


def test_plugin_modules_never_import_the_node_tools() -> None:
    """tools/ builds on plugin/, never the other way round: a CNI call loads no tool."""
    known = modules()
    for name, path in known.items():
        if name.startswith("cni_hostdev.plugin"):
            assert not {m for m in imports_of(name, path, known) if m.startswith("cni_hostdev.tools")}, name


# --- ARCHITECTURE.md names only what exists ---------------------------------------------------------

DOCUMENT = ROOT / "ARCHITECTURE.md"
SEARCHED = (PACKAGE, ROOT, ROOT / "tests")  # where a name of ours is looked up, in this order
FILE_SUFFIXES = (".py", ".c", ".sh", ".spec", ".md", ".lock", ".h")
# Names the document quotes that are someone else's: the CNI spec's, PyInstaller's, CPython's.
FOREIGN = {"CNI_COMMAND", "pyiboot01_bootstrap", "_json", "_ctypes"}


def _defined(path: Path) -> dict[str, set[str]]:
    """Top-level names of a Python file, each with the names defined in its body (a class's methods)."""
    names: dict[str, set[str]] = {}
    body = list(ast.parse(path.read_text()).body)
    for node in body:  # what an `if` or a `try` at the top level defines is top-level too
        if isinstance(node, ast.If | ast.Try):
            body += [*node.body, *node.orelse, *getattr(node, "handlers", []), *getattr(node, "finalbody", [])]
        elif isinstance(node, ast.ExceptHandler):
            body += node.body
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            names[node.name] = inner if isinstance(node, ast.ClassDef) else set()
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update({t.id: set() for t in targets if isinstance(t, ast.Name)})
    return names


def _module_file(parts: list[str]) -> Path | None:
    for base in SEARCHED:
        for candidate in (base.joinpath(*parts).with_suffix(".py"), base.joinpath(*parts, "__init__.py")):
            if candidate.is_file():
                return candidate
    return None


def unresolved(reference: str) -> str | None:
    """Why `reference` (a file, a module, module.name or module.Class.method) names nothing; None if
    it names something of ours, or something that is not ours to check (the standard library's)."""
    if reference.endswith(FILE_SUFFIXES) or "." not in reference.replace("/", "."):
        if reference.endswith(FILE_SUFFIXES):
            found = any((base / reference).exists() for base in SEARCHED)
            return None if found else f"no file {reference}"
        everywhere = [_defined(p) for p in PACKAGE.rglob("*.py")] + [
            _defined(p) for p in (ROOT / "packaging").glob("*.py")
        ]
        if reference not in FOREIGN and ((reference[:1].isupper() and reference[1:2].islower()) or "_" in reference):
            if not any(
                reference in names or any(reference in inner for inner in names.values()) for names in everywhere
            ):
                return f"nothing defines {reference}"
        return None
    parts = reference.replace("/", ".").split(".")
    for split in range(len(parts), 0, -1):
        module = _module_file(parts[:split])
        if module is None:
            continue
        attributes = parts[split:]
        if not attributes:
            return None
        names = _defined(module)
        if attributes[0] not in names:
            return f"{module.relative_to(ROOT)} defines no {attributes[0]}"
        if len(attributes) > 1 and attributes[1] not in names[attributes[0]]:
            return f"{module.relative_to(ROOT)}: {attributes[0]} has no {attributes[1]}"
        return None
    ours = (PACKAGE / parts[0]).exists() or (PACKAGE / f"{parts[0]}.py").exists() or parts[0] in ("packaging", "tests")
    return f"no module {reference}" if ours else None


def test_every_name_architecture_md_mentions_exists() -> None:
    spans = re.findall(r"`([^`\s]+)`", DOCUMENT.read_text())
    references = [span for span in spans if re.fullmatch(r"[A-Za-z_][\w/]*(\.[A-Za-z_]\w*)*", span)]
    assert len(references) > 50, "the document names too little for this check to mean anything"
    broken = {reference: why for reference in references if (why := unresolved(reference))}
    assert not broken, broken


def test_the_check_catches_names_that_are_gone() -> None:
    assert unresolved("versions.parse") == "cni_hostdev/versions.py defines no parse"
    assert unresolved("plugin/claims.find_selected") == "cni_hostdev/plugin/claims.py defines no find_selected"
    assert unresolved("netlink_loader.StandIn.settle") is None
    assert unresolved("netlink_loader.StandIn.melt") == "cni_hostdev/netlink_loader.py: StandIn has no melt"
    assert (
        unresolved("packaging/bootstrap.py") is None and unresolved("packaging/gone.py") == "no file packaging/gone.py"
    )
    assert unresolved("NoSuchClass") == "nothing defines NoSuchClass"
    assert unresolved("os._exit") is None  # not ours to check


# --- package faces -----------------------------------------------------------------------------------

MAX_FACE_LINES = 40


def test_no_package_face_is_over_40_lines() -> None:
    """A package's __init__ is a face that says what is inside, or hands names on: no program."""
    long = {path: n for path in PACKAGE.rglob("__init__.py") if (n := len(path.read_text().splitlines())) > 40}
    assert not long, long


def faces_imported_from_inside(name: str, path: Path, known: dict[str, Path]) -> list[str]:
    """The names module `name` takes from its own package's face (not its submodules)."""
    package = name.rpartition(".")[0] if path.name != "__init__.py" else ""
    taken = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and package and node.module == package and not node.level:
            taken += [a.name for a in node.names if f"{package}.{a.name}" not in known]
        elif isinstance(node, ast.Import) and package:
            taken += [a.name for a in node.names if a.name == package]
    return taken


def test_no_module_imports_its_own_package_s_face() -> None:
    known = modules()
    through = {name: t for name, path in known.items() if (t := faces_imported_from_inside(name, path, known))}
    assert not through, through


def test_the_face_check_sees_a_name_taken_from_the_face(tmp_path: Path) -> None:
    module = tmp_path / "repair.py"
    module.write_text("from cni_hostdev.tools import main, doctor\n")
    known = {"cni_hostdev.tools": tmp_path / "__init__.py", "cni_hostdev.tools.doctor": tmp_path / "doctor.py"}
    assert faces_imported_from_inside("cni_hostdev.tools.repair", module, known) == ["main"]
