"""packaging/bootstrap.py's BundleFinder, on a bundle of its own: modules, packages and their
submodules load from .pyc files by name; what the bundle lacks is left to the path finder; a file
of another Python version is refused. tests/product/test_bundle_imports.py checks that the frozen
program uses it."""

from __future__ import annotations

import importlib.util
import py_compile
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import ROOT

NAMES = ("tbundle_mod", "tbundle_pkg", "tbundle_pkg.inner", "tbundle_pkg.absent", "tbundle_elsewhere")


def _load_bootstrap() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tbootstrap", ROOT / "packaging" / "bootstrap.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _compile(bundle: Path, relative: str, source: str) -> Path:
    src = bundle.parent / "src" / relative.replace(".pyc", ".py")
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(source)
    target = bundle / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    py_compile.compile(str(src), cfile=str(target), doraise=True)
    return target


@pytest.fixture
def finder(tmp_path: Path) -> Iterator[Any]:
    bundle = tmp_path / "bundle"
    _compile(bundle, "tbundle_mod.pyc", "VALUE = 'module'\nBIG = " + repr("x" * 100_000) + "\n")
    _compile(bundle, "tbundle_pkg/__init__.pyc", "VALUE = 'package'\n")
    _compile(bundle, "tbundle_pkg/inner.pyc", "from tbundle_pkg import VALUE as OUTER\nVALUE = 'inner'\n")
    meta_path = list(sys.meta_path)
    found = _load_bootstrap().BundleFinder(str(bundle))
    assert not hasattr(sys, "frozen") and sys.meta_path == meta_path, "outside a bundle, loading it changes nothing"
    sys.meta_path.insert(0, found)
    try:
        yield found
    finally:
        sys.meta_path.remove(found)
        for name in NAMES:
            sys.modules.pop(name, None)


def test_modules_packages_and_submodules_load_from_the_bundle(finder: Any) -> None:
    import tbundle_mod  # type: ignore[import-not-found]
    import tbundle_pkg.inner  # type: ignore[import-not-found]

    assert tbundle_mod.VALUE == "module" and len(tbundle_mod.BIG) == 100_000
    assert tbundle_mod.__spec__.loader is finder
    assert tbundle_mod.__file__ == f"{finder.root}/tbundle_mod.pyc"
    assert tbundle_pkg.__path__ == [f"{finder.root}/tbundle_pkg"]
    assert tbundle_pkg.inner.OUTER == "package" and tbundle_pkg.inner.VALUE == "inner"
    assert tbundle_pkg.inner.__spec__.loader is finder


def test_what_the_bundle_lacks_is_left_to_the_next_finder(finder: Any) -> None:
    assert finder.find_spec("tbundle_elsewhere") is None
    assert finder.find_spec("json") is None, "a top-level name the bundle does not hold"
    assert finder.find_spec("tbundle_pkg.absent") is None
    with pytest.raises(ModuleNotFoundError):
        import tbundle_pkg.absent  # type: ignore[import-not-found]  # noqa: F401


def test_a_file_of_another_python_is_refused_naming_it(finder: Any) -> None:
    path = Path(finder.root) / "tbundle_mod.pyc"
    path.write_bytes(b"\x00\x00\r\n" + path.read_bytes()[4:])
    with pytest.raises(ImportError, match=r"tbundle_mod\.pyc was compiled by another Python version"):
        import tbundle_mod  # noqa: F401


def test_get_data_reads_every_byte(finder: Any, tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(bytes(range(256)) * 1000)
    assert finder.get_data(str(blob)) == blob.read_bytes()
