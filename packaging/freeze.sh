#!/usr/bin/env bash
# Build dist/host-device, the single static file: a static launcher (packaging/launcher.c)
# followed by the frozen plugin laid out unpacked with its own glibc (packaging/unpacked.py).
# Usage: packaging/freeze.sh PYTHON   (a venv interpreter with pyinstaller installed)
set -euo pipefail
py=${1:?usage: freeze.sh PYTHON}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rm -rf build/pyinstaller build/dist
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath build/pyinstaller --distpath build/dist packaging/host-device.spec
mkdir -p dist build/launcher
# The launcher answers VERSION itself, with the plugin's own answer (cni_hostdev/versions.py).
"$py" packaging/versions_header.py >build/launcher/versions.h
gcc -static -O2 -Wall -Wextra -Wno-format-truncation -s -Ibuild/launcher \
    -o dist/host-device.new packaging/launcher.c
"$py" packaging/unpacked.py build/dist/host-device-onedir dist/host-device.new
chmod 0755 dist/host-device.new
mv -f dist/host-device.new dist/host-device
# Unpacked caches of earlier builds (made by running dist/host-device) are stale now.
rm -rf dist/.host-device.run-*
echo "built dist/host-device ($(du -h dist/host-device | cut -f1))"
