#!/usr/bin/env bash
# Runs every suite for our plugin and for Debian's reference Go plugin, and prints a markdown
# table case by case (ours vs reference, with the reasons of failures and skips).
#
#   conformance/compare.sh [--ours PATH] [--update-readme] [suite …]
#
# --update-readme replaces the table between the "results" markers of conformance/README.md.
# The last line is our plugin's "N passed, M failed, K skipped"; exit status is run.sh's for ours.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OURS=$HERE/../dist/host-device
REF=/usr/lib/cni/host-device
UPDATE=0
SUITES=()
while (($#)); do
    case $1 in
        --ours) OURS=$2; shift 2 ;;
        --update-readme) UPDATE=1; shift ;;
        *) SUITES+=("$1"); shift ;;
    esac
done
work=$(mktemp -d /tmp/tcfcmp.XXXXXX)
trap 'rm -rf "$work"' EXIT

CF_RESULTS_FILE=$work/ours bash "$HERE/run.sh" --plugin "$OURS" "${SUITES[@]}" >"$work/ours.log" 2>&1
ours_rc=$?
CF_RESULTS_FILE=$work/ref bash "$HERE/run.sh" --plugin "$REF" --no-install "${SUITES[@]}" >"$work/ref.log" 2>&1
ours_line=$(tail -n 1 "$work/ours.log")
ref_line=$(tail -n 1 "$work/ref.log")
touch "$work/ours" "$work/ref"

# Reasons name per-run links and temp dirs: make them stable for the table.
normalize() {
    sed -E -e 's/\|/\\|/g' \
        -e 's#/tmp/t[a-z]{2}[0-9]+\.[A-Za-z0-9]+#<tmp>#g' \
        -e 's#/run/netns/t[a-z]{2}[0-9]+[a-z]+[0-9]*#<netns>#g' \
        -e 's/\bt(sp|lc|pm|cr)[0-9]+(-[a-z0-9-]+|[a-z]+[0-9]*)?\b/<tag>/g' \
        -e 's/[[:space:]]+/ /g' | cut -c1-220
}

table() {
    echo "| case | ours | reference | why (failures and skips) |"
    echo "|---|---|---|---|"
    # case order: as ours ran them, then any the reference alone printed
    { awk '{print $2}' "$work/ours" | sed 's/:$//'; awk '{print $2}' "$work/ref" | sed 's/:$//'; } |
        awk '!seen[$0]++' | while read -r name; do
        o=$(grep -m1 -E "^(PASS|FAIL|SKIP) $(printf '%s' "$name" | sed 's/[][\.*^$/]/\\&/g')(:|$)" "$work/ours")
        r=$(grep -m1 -E "^(PASS|FAIL|SKIP) $(printf '%s' "$name" | sed 's/[][\.*^$/]/\\&/g')(:|$)" "$work/ref")
        ov=${o%% *} rv=${r%% *}
        why="" ow="" rw=""
        [[ $ov != PASS && -n $o ]] && ow=$(sed -E 's/^[A-Z]+ [^:]+: ?//' <<<"$o" | normalize)
        [[ $rv != PASS && -n $r ]] && rw=$(sed -E 's/^[A-Z]+ [^:]+: ?//' <<<"$r" | normalize)
        if [[ -n $ow && $ow == "$rw" ]]; then
            why="both: $ow"
        else
            [[ -n $ow ]] && why="ours: $ow"
            [[ -n $rw ]] && why+="${why:+ — }ref: $rw"
        fi
        echo "| \`$name\` | ${ov:-—} | ${rv:-—} | $why |"
    done
    echo
    echo "Totals — ours: \`$ours_line\`; reference: \`$ref_line\`."
}

table >"$work/table.md"
if ((UPDATE)); then
    readme=$HERE/README.md
    awk -v table="$work/table.md" '
        /<!-- results:begin -->/ { print; while ((getline line < table) > 0) print line; skipping = 1; next }
        /<!-- results:end -->/ { skipping = 0 }
        !skipping { print }' "$readme" >"$work/readme" && cat "$work/readme" >"$readme"
    echo "updated $readme"
else
    cat "$work/table.md"
fi
echo "reference: $ref_line"
echo "$ours_line"
exit $ours_rc
