#!/usr/bin/env bash
# Build dist/host-device: PyInstaller one-file, then staticx so it needs nothing from the node,
# with the unpacked (no-extraction) layout appended for `host-device install`.
# Usage: packaging/freeze.sh PYTHON   (a venv interpreter with pyinstaller and staticx installed)
set -euo pipefail
py=${1:?usage: freeze.sh PYTHON}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rm -rf build/pyinstaller build/norunpath build/dist
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath build/pyinstaller --distpath build/dist packaging/host-device.spec
mkdir -p dist
# --no-compress: the compressed archive costs ~0.7 s of decompression on every exec.
"$(dirname "$py")/staticx" --strip --no-compress build/dist/host-device-dynamic dist/host-device.new
"$py" packaging/unpacked.py build/dist/host-device-onedir dist/host-device.new
chmod 0755 dist/host-device.new
mv -f dist/host-device.new dist/host-device
echo "built dist/host-device ($(du -h dist/host-device | cut -f1))"
