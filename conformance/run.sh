#!/usr/bin/env bash
# Black-box conformance suites for a `host-device` CNI plugin binary.
#
#   conformance/run.sh [--plugin PATH] [--no-install] [suite …]
#
# suites: spec, libcni, podman, cri (default: all four, in that order). PATH defaults to the
# repo's dist/host-device (built with `make binary` when missing); pass
# --plugin /usr/lib/cni/host-device to run Debian's reference Go plugin (1.1.1) instead.
#
# Runs as root. Installs what it needs with apt-get (after one `apt-get update`) unless
# everything is there already or --no-install is given. Each suite ends with its own
# "N passed, M failed[, K skipped]" line; this script ends with the totals in the same form.
# Exit status: non-zero if any case failed for OUR plugin (or a suite could not run at all).
# For the reference plugin failures are expected: they are reported, and the exit status is 0.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
PLUGIN=""
INSTALL=1
SUITES=()
while (($#)); do
    case $1 in
        --plugin) PLUGIN=$2; shift 2 ;;
        --plugin=*) PLUGIN=${1#--plugin=}; shift ;;
        --no-install) INSTALL=0; shift ;;
        -h | --help) sed -n '2,14p' "$0"; exit 0 ;;
        spec | libcni | podman | cri) SUITES+=("$1"); shift ;;
        *) echo "unknown argument: $1 (suites: spec libcni podman cri)" >&2; exit 2 ;;
    esac
done
((${#SUITES[@]})) || SUITES=(spec libcni podman cri)
[[ $(id -u) == 0 ]] || { echo "conformance suites run as root (namespaces, links, podman)" >&2; exit 2; }

# --- what the suites need --------------------------------------------------------------------
PKGS=(iproute2 jq containernetworking-plugins)
for s in "${SUITES[@]}"; do
    case $s in
        libcni) PKGS+=(golang-go golang-github-appc-cni-dev) ;;
        podman) PKGS+=(podman runc busybox-static) ;;
        cri) PKGS+=(containerd runc gcc libc6-dev) ;;
    esac
done
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    if ((INSTALL)); then
        echo "# installing: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null ||
            { echo "apt-get install ${missing[*]} failed" >&2; exit 2; }
    else
        echo "missing packages: ${missing[*]} (drop --no-install to install them)" >&2
        exit 2
    fi
fi

if [[ -z $PLUGIN ]]; then
    PLUGIN=$REPO/dist/host-device
    if [[ ! -x $PLUGIN ]]; then
        echo "# building $PLUGIN (make binary)"
        make -C "$REPO" binary >/dev/null || { echo "make binary failed" >&2; exit 2; }
    fi
fi
PLUGIN=$(realpath "$PLUGIN")
IS_REFERENCE=0
[[ $PLUGIN == "$(realpath /usr/lib/cni/host-device 2>/dev/null)" ]] && IS_REFERENCE=1

# --- run -------------------------------------------------------------------------------------
total_p=0 total_f=0 total_s=0 broken=0
summary=()
for s in "${SUITES[@]}"; do
    echo
    echo "=== suite $s ($([[ $IS_REFERENCE == 1 ]] && echo reference || echo ours): $PLUGIN)"
    log=$(mktemp "/tmp/tcfrun-$s.XXXXXX")
    start=$SECONDS
    bash "$HERE/$s/run.sh" --plugin "$PLUGIN" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    last=$(tail -n 1 "$log")
    rm -f "$log"
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
        total_p=$((total_p + BASH_REMATCH[1]))
        total_f=$((total_f + BASH_REMATCH[2]))
        total_s=$((total_s + ${BASH_REMATCH[4]:-0}))
        summary+=("$s: $last ($((SECONDS - start)) s)")
    else
        broken=1
        summary+=("$s: did not finish (exit $rc)")
    fi
done

echo
echo "=== plugin $PLUGIN ($([[ $IS_REFERENCE == 1 ]] && echo "reference: failures are expected" || echo ours))"
printf '  %s\n' "${summary[@]}"
if ((total_s)); then
    echo "$total_p passed, $total_f failed, $total_s skipped"
else
    echo "$total_p passed, $total_f failed"
fi
((broken)) && exit 2
((IS_REFERENCE)) && exit 0
((total_f == 0))
