"""The frozen program's first Python code, in place of PyInstaller's own bootstrap script.

PyInstaller's bootstrap installs its importer for the PYZ archive, hooks ctypes to look for
libraries in the bundle, and scans the bundle for eggs. Our build has an empty PYZ (the spec's
`noarchive`: every module is a plain .pyc file in the bundle's directory), loads no library by
name through ctypes, and has no eggs: that work, and the imports of zlib and ctypes it needs,
cost every exec about 3 ms for nothing. What remains of it is the one fact programs read to know
they are frozen, and a finder for the bundle's .pyc files.

The interpreter's own path finder would load those files too, at about twice the cost per module:
for each import it checks that the directory has not changed, looks for five kinds of file,
builds a spec and a loader from paths, and validates a header written for source files that the
bundle does not have. An ADD imports about forty modules of the bundle; `BundleFinder` finds each
by its name alone (the bundle's layout is fixed when it is built) and reads it with one open, one
fstat and one read: about 1 ms of every exec. What it does not find, the path finder still does
(extension modules, and anything outside the bundle).

tests/unit/test_bootstrap.py loads modules through it from a bundle of its own.
"""

import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER
from marshal import loads
from posix import O_CLOEXEC, O_RDONLY, close, fstat, listdir, open, read, stat

# Annotations are strings: `from __future__ import annotations` would be one more file to load.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import CodeType, ModuleType

_HEADER = 16  # magic, flags, and two words of the source's mtime and size (or hash): PEP 552


class BundleFinder:
    """Finds `a.b.c` at `<root>/a/b/c.pyc` or `<root>/a/b/c/__init__.pyc`, and loads it."""

    def __init__(self, root: str) -> None:
        self.root = root
        # The top-level names the bundle holds, read once: any other top-level import (a builtin,
        # an extension module, a missing module) is passed on without a look at the disk.
        entries = listdir(root)
        self.top_level = {name[:-4] for name in entries if name.endswith(".pyc")} | {
            name for name in entries if "." not in name
        }

    def find_spec(
        self, name: str, path: "Sequence[str] | None" = None, target: "ModuleType | None" = None
    ) -> "ModuleSpec | None":
        if name.partition(".")[0] not in self.top_level:
            return None
        base = f"{self.root}/{name.replace('.', '/')}"
        for origin, package in ((f"{base}.pyc", False), (f"{base}/__init__.pyc", True)):
            try:
                stat(origin)
            except OSError:
                continue
            spec = ModuleSpec(name, self, origin=origin, is_package=package)  # type: ignore[arg-type]
            if package:
                spec.submodule_search_locations = [base]
            spec.has_location = True  # sets __file__, as the path finder would
            return spec
        return None

    def create_module(self, spec: ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: "ModuleType") -> None:
        spec = module.__spec__
        assert spec is not None and spec.origin is not None
        exec(self._code(spec.name, spec.origin), module.__dict__)

    def get_code(self, name: str) -> "CodeType":
        spec = self.find_spec(name)
        if spec is None or spec.origin is None:
            raise ImportError(f"{name} is not in the bundle", name=name)
        return self._code(name, spec.origin)

    def get_source(self, name: str) -> None:
        return None  # the bundle holds no sources: tracebacks show no lines, as for any .pyc

    def get_data(self, path: str) -> bytes:
        fd = open(path, O_RDONLY | O_CLOEXEC)
        try:
            size = fstat(fd).st_size
            chunks = [read(fd, size + 1)]  # one more byte than its size: one read sees the end
            while chunks[-1]:
                chunks.append(read(fd, 1 << 16))
        finally:
            close(fd)
        return b"".join(chunks)

    def _code(self, name: str, origin: str) -> "CodeType":
        data = self.get_data(origin)
        if data[:4] != MAGIC_NUMBER:
            raise ImportError(f"{origin} was compiled by another Python version", name=name, path=origin)
        code: CodeType = loads(memoryview(data)[_HEADER:])
        return code


if hasattr(sys, "_MEIPASS"):  # the frozen program (the unit test imports this file to try the finder)
    # cni_hostdev/ipam.py reads it: our start-up's variables stay out of IPAM's environment.
    sys.frozen = True  # type: ignore[attr-defined]
    # After the builtin and frozen importers: the interpreter carries os, codecs, encodings' helpers
    # ... compiled in (3.11's frozen modules), cheaper than any file; before the path finder.
    paths = [i for i, finder in enumerate(sys.meta_path) if getattr(finder, "__name__", "") == "PathFinder"]
    sys.meta_path.insert(paths[0] if paths else len(sys.meta_path), BundleFinder(sys._MEIPASS))
