#!/usr/bin/env bash
# `make reproduce`: build this commit twice, in two fresh clones at different paths, one after the
# other, each with its own virtualenv installed from requirements.lock, and compare the single
# file, its SBOM and the release tarball byte for byte (packaging/compare_builds.py names the first
# member that differs). Exit status 0 when all three are identical.
# Usage: packaging/reproduce.sh [COMMIT]   (default HEAD; uncommitted changes are not built)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$root" rev-parse "${1:-HEAD}")
if [[ -n $(git -C "$root" status --porcelain --untracked-files=no) ]]; then
    echo "reproduce: the checkout has uncommitted changes; building commit ${commit:0:12} without them" >&2
fi
scratch=$(mktemp -d /tmp/reproduce.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
# Different depths and names: a path that leaked into the build would show.
trees=("$scratch/a" "$scratch/second/clone-of-the-same-commit")
for tree in "${trees[@]}"; do
    git clone -q --no-hardlinks "$root" "$tree"
    git -C "$tree" checkout -q --detach "$commit"
    echo "# building ${commit:0:12} in $tree"
    start=$SECONDS
    make -C "$tree" -s binary release PYTHON="${PYTHON:-python3}" >"$tree.log" 2>&1 ||
        { tail -30 "$tree.log" >&2; echo "reproduce: the build in $tree failed" >&2; exit 2; }
    echo "#   $((SECONDS - start)) s"
done
"${trees[0]}/.venv/bin/python" "$root/packaging/compare_builds.py" "${trees[0]}/dist" "${trees[1]}/dist"
