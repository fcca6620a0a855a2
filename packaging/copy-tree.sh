#!/usr/bin/env bash
# Copy this checkout as it is now (tracked and untracked files, not ignored ones, uncommitted
# changes included) into DIR: the scratch tree `make deps-check` and `make tricks` build in.
# Usage: packaging/copy-tree.sh DIR
set -euo pipefail
into=${1:?usage: copy-tree.sh DIR}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$into"
git -C "$root" ls-files -z --cached --others --exclude-standard |
    (cd "$root" && xargs -0 -r sh -c 'for f; do [ -f "$f" ] && printf "%s\0" "$f"; done' sh) |
    tar -C "$root" --null -T - -cf - | tar -C "$into" -xf -
