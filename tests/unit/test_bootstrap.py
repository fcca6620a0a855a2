"""packaging/bootstrap.py, the frozen program's first code: in the frozen program (`sys._MEIPASS`
set) it says the program is frozen and changes nothing else of the import system; anywhere else
it does nothing. (packaging/host-device.spec checks that the executable carries it.)"""

from __future__ import annotations

import json
import subprocess

from tests.conftest import ROOT, frozen_like

RUN = """
import json, sys
before = list(sys.meta_path), list(sys.path)
if sys.argv[1] == "frozen":
    sys._MEIPASS = "/nonexistent-tbundle"
exec(compile(open(sys.argv[2]).read(), "bootstrap.py", "exec"), {"__name__": "__main__"})
after = list(sys.meta_path), list(sys.path)
print(json.dumps({"frozen": getattr(sys, "frozen", None), "unchanged": after == before}))
"""


def run(where: str) -> dict[str, object]:
    out = subprocess.run(
        [*frozen_like(RUN), where, str(ROOT / "packaging" / "bootstrap.py")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_in_the_frozen_program_it_says_so_and_nothing_more() -> None:
    assert run("frozen") == {"frozen": True, "unchanged": True}


def test_anywhere_else_it_does_nothing() -> None:
    assert run("source") == {"frozen": None, "unchanged": True}
