"""Die with the process the runtime started, even though that is not our parent.

The static single file runs as three processes: staticx's loader (the one a
runtime execs, and SIGKILLs on timeout), PyInstaller's bootloader, and this
interpreter. A SIGKILL of the first would leave the other two running on and
both extraction directories behind. So the interpreter watches the loader
through a pidfd and, when it dies, removes staticx's directory and exits at
once, as a SIGKILL would have it do; PyInstaller's bootloader then removes its
own directory and exits too. Interrupted work is what crash recovery handles.
"""

from __future__ import annotations

import os
import shutil
import sys


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        # The command name may contain spaces and parentheses: parse after the last ')'.
        return int(f.read().rsplit(")", 1)[1].split()[1])


def watch() -> None:
    if not (os.environ.get("STATICX_PROG_PATH") and getattr(sys, "frozen", False)):
        return
    extraction_dir = os.path.dirname(os.path.realpath(sys.executable))
    try:
        loader = _parent_of(os.getppid())
        pidfd = os.pidfd_open(loader)
    except (OSError, ValueError, IndexError):
        return
    if loader <= 1:
        return

    def wait_for_loader() -> None:
        import select

        select.select([pidfd], [], [])
        if os.path.basename(extraction_dir).startswith("staticx-"):
            shutil.rmtree(extraction_dir, ignore_errors=True)
        os._exit(137)

    import threading

    threading.Thread(target=wait_for_loader, name="lifeline", daemon=True).start()
