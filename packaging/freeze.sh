#!/usr/bin/env bash
# Build dist/host-device, the single static file: a static launcher (packaging/launcher.c)
# followed by the frozen plugin laid out unpacked with its own glibc (packaging/unpacked.py),
# and its bill of materials, dist/host-device.cdx.json (packaging/sbom.py).
# Usage: packaging/freeze.sh PYTHON   (a venv interpreter with requirements.lock installed)
#
# Same commit, same bytes: two builds of one commit, in any directory, at any time, on machines of
# the same image, give the same file (`make reproduce` checks it). What each setting below is for
# is in the README, "Reproducible builds".
set -euo pipefail
py=${1:?usage: freeze.sh PYTHON}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# Every timestamp the build writes (the payload's members, the SBOM) is the commit's.
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null) || {
        echo "freeze: not a git checkout: set SOURCE_DATE_EPOCH (seconds) to build" >&2
        exit 1
    }
fi
export SOURCE_DATE_EPOCH
# The order of sets while PyInstaller collects; marshal itself writes sets sorted (3.11).
export PYTHONHASHSEED=0
# Files the build writes are the same whoever's umask runs it.
umask 022
rm -rf build/pyinstaller build/dist
mkdir -p build/pyinstaller
"$py" -m PyInstaller --noconfirm --clean --log-level WARN \
    --workpath build/pyinstaller --distpath build/dist packaging/host-device.spec
mkdir -p dist build/launcher
# The launcher answers VERSION itself, with the plugin's own answer (cni_hostdev/versions.py).
"$py" packaging/versions_header.py >build/launcher/versions.h
# No path of this checkout in the launcher (-ffile-prefix-map), whatever its directory.
gcc -static -O2 -Wall -Wextra -Wno-format-truncation -s -ffile-prefix-map="$root"=. -Ibuild/launcher \
    -o dist/host-device.new packaging/launcher.c
"$py" packaging/unpacked.py build/dist/host-device-onedir dist/host-device.new
chmod 0755 dist/host-device.new
mv -f dist/host-device.new dist/host-device
"$py" packaging/sbom.py --binary dist/host-device --onedir build/dist/host-device-onedir \
    --collected build/pyinstaller/collected.json --copied build/dist/copied-libraries.json \
    --lock requirements.lock --out dist/host-device.cdx.json
# Unpacked caches of earlier builds (made by running dist/host-device) are stale now.
rm -rf dist/.host-device.run-*
echo "built dist/host-device ($(du -h dist/host-device | cut -f1)), sha256 $(sha256sum dist/host-device | cut -c1-64)"
