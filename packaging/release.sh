#!/usr/bin/env bash
# Release artifacts: host-device-<version>-linux-amd64.tgz (binary, README, LICENSE) and its .sha256.
# Usage: packaging/release.sh [OUT_DIR]   (default dist/); dist/host-device must be built.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/dist}")
binary="$root/dist/host-device"
[ -x "$binary" ] || { echo "release: $binary is not built (make binary)" >&2; exit 1; }
# The version comes from the binary itself, so the name can never disagree with what it reports.
version=$("$binary" --version | awk '{print $2}')
name="host-device-${version}-linux-amd64"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$out"
cp "$binary" "$stage/$name/host-device"
cp "$root/README.md" "$root/LICENSE" "$stage/$name/"
# Fixed owner, mode and mtime: the same inputs give the same tarball.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='@0' -C "$stage" -czf "$out/$name.tgz" "$name"
(cd "$out" && sha256sum "$name.tgz" > "$name.tgz.sha256")
echo "$out/$name.tgz"
cat "$out/$name.tgz.sha256"
