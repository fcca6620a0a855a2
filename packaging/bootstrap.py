"""The frozen program's first Python code, in place of PyInstaller's own bootstrap script.

PyInstaller's bootstrap installs its importer for the PYZ archive, hooks ctypes to look for
libraries in the bundle, and scans the bundle for eggs. Our build has an empty PYZ (the spec's
`noarchive`: every module is a plain .pyc file in the bundle's directory, which the interpreter's
own path finder loads), loads no library by name through ctypes, and has no eggs: that work, and
the imports of zlib and ctypes it needs, cost every exec ~2.8 ms for nothing (`make tricks`). What
remains of it is the one fact programs read to know they are frozen.

A finder of our own for the bundle's files (by name, one open each) once stood here too: measured
alone it saved 0.48 ms of an ADD (300 interleaved rounds), under the 0.5 ms a trick must pay, so
the path finder does that work again.

packaging/host-device.spec reads the executable's archive back and checks that it carries this
script (the name below), not PyInstaller's.
"""

import sys

CNI_HOSTDEV_BOOTSTRAP = "packaging/bootstrap.py"

if hasattr(sys, "_MEIPASS"):  # the frozen program
    # cni_hostdev/ipam.py reads it: our start-up's variables stay out of IPAM's environment.
    sys.frozen = True  # type: ignore[attr-defined]
