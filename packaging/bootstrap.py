"""The frozen program's first Python code, in place of PyInstaller's own bootstrap script.

PyInstaller's bootstrap installs its importer for the PYZ archive, hooks ctypes to look for
libraries in the bundle, and scans the bundle for eggs. Our build has an empty PYZ (the spec's
`noarchive`: every module is a plain .pyc file that the interpreter's own path finder loads),
loads no library by name through ctypes, and has no eggs: that work, and the imports of zlib
and ctypes it needs, cost every exec about 3 ms for nothing. What remains of it is the one fact
programs read to know they are frozen.
"""

import sys

sys.frozen = True  # cni_hostdev/ipam.py reads it: our start-up's variables stay out of IPAM's environment
