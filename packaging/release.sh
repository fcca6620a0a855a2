#!/usr/bin/env bash
# Release artifacts: host-device-<version>-linux-amd64.tgz (binary, its SBOM, README, LICENSE), the
# SBOM beside it (.cdx.json), and SHA256SUMS of both.
# Usage: packaging/release.sh [OUT_DIR]   (default dist/); dist/host-device must be built.
#
# The tarball is a function of its inputs: members sorted, owned by 0:0, the commit's time, and
# gzip without a name or time of its own (-n). `make reproduce` builds it twice and compares.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${1:-$root/dist}")
binary="$root/dist/host-device"
sbom="$root/dist/host-device.cdx.json"
[ -x "$binary" ] && [ -f "$sbom" ] || { echo "release: $binary or its SBOM is not built (make binary)" >&2; exit 1; }
if [[ -z ${SOURCE_DATE_EPOCH:-} ]]; then
    SOURCE_DATE_EPOCH=$(git -C "$root" log -1 --format=%ct 2>/dev/null) || {
        echo "release: not a git checkout: set SOURCE_DATE_EPOCH (seconds)" >&2
        exit 1
    }
fi
# The version comes from the binary itself, so the name can never disagree with what it reports.
version=$("$binary" --version | awk '{print $2}')
name="host-device-${version}-linux-amd64"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/$name" "$out"
umask 022
cp "$binary" "$stage/$name/host-device"
cp "$sbom" "$stage/$name/host-device.cdx.json"
cp "$root/README.md" "$root/LICENSE" "$stage/$name/"
chmod 0755 "$stage/$name" "$stage/$name/host-device"
chmod 0644 "$stage/$name/host-device.cdx.json" "$stage/$name/README.md" "$stage/$name/LICENSE"
tar --sort=name --format=ustar --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    -C "$stage" -cf - "$name" | gzip -n >"$out/$name.tgz.new"
mv -f "$out/$name.tgz.new" "$out/$name.tgz"
[[ $sbom -ef $out/$name.cdx.json ]] || cp "$sbom" "$out/$name.cdx.json"
(cd "$out" && sha256sum "$name.tgz" "$name.cdx.json" >SHA256SUMS && cp SHA256SUMS "$name.tgz.sha256")
echo "$out/$name.tgz"
cat "$out/SHA256SUMS"
