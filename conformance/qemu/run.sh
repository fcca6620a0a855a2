#!/usr/bin/env bash
# QEMU conformance runner: boots Debian's 6.1 and 6.12 cloud kernels (TCG) with
# three virtio-net PCI NICs and runs the cases of init.sh against a host-device
# plugin inside the VM. See README.md beside this file.
#
#   conformance/qemu/run.sh                       # our frozen dist/host-device
#   conformance/qemu/run.sh --reference           # the reference Go plugin (/usr/lib/cni/host-device)
#   conformance/qemu/run.sh --plugin PATH --kernels "6.1 6.12"
#
# Prints PASS/FAIL lines (with the transcript of each failure) and closes with
# one line "N passed, M failed". Exit status: 0 when every case passed, or when
# the plugin is the reference one (its failures are reported, not fatal); 1
# when a case failed; 2 when the runner itself could not do its job (a VM that
# did not finish counts here too).
#
# Kernels and their modules are cached outside the repository, in
# $CNI_HOSTDEV_QEMU_CACHE (default /var/cache/cni-hostdev-conformance); the
# initramfs is built in a temporary directory; console logs are kept in
# $CACHE/logs/.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${CNI_HOSTDEV_QEMU_CACHE:-/var/cache/cni-hostdev-conformance}
REFERENCE_PLUGIN=/usr/lib/cni/host-device
PLUGIN=""
KERNELS="6.1 6.12"
VM_TIMEOUT=240
VERBOSE=0
JOBS=2
MODULES="virtio_pci virtio_net veth uio_pci_generic"

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    echo "options: --plugin PATH | --reference, --kernels \"6.1 6.12\", --timeout SECONDS (per VM, default $VM_TIMEOUT), --jobs N (VMs at once, default $JOBS), --verbose (transcripts of passing cases too)"
}

die() { echo "run.sh: $*" >&2; echo "0 passed, 1 failed"; exit 2; }

while [ $# -gt 0 ]; do
    case $1 in
        --plugin) PLUGIN=${2:?--plugin needs a path}; shift 2 ;;
        --plugin=*) PLUGIN=${1#*=}; shift ;;
        --reference) PLUGIN=$REFERENCE_PLUGIN; shift ;;
        --kernels) KERNELS=${2:?--kernels needs a list}; shift 2 ;;
        --kernels=*) KERNELS=${1#*=}; shift ;;
        --timeout) VM_TIMEOUT=${2:?}; shift 2 ;;
        --jobs) JOBS=${2:?}; shift 2 ;;
        -v|--verbose) VERBOSE=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; exit 2 ;;
    esac
done

[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, kernel modules for the VM image)"

# --- what the runner needs on this machine -----------------------------------------
APT_UPDATED=""
apt_update() {
    [ -n "$APT_UPDATED" ] && return 0
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    APT_UPDATED=1
}

need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
{ [ -x /bin/busybox ] && ! ldd /bin/busybox >/dev/null 2>&1; } || need_pkgs+=(busybox-static)
[ -x /usr/lib/cni/static ] && [ -x $REFERENCE_PLUGIN ] || need_pkgs+=(containernetworking-plugins)
[ -x /usr/sbin/ip ] || need_pkgs+=(iproute2)
command -v cpio >/dev/null || need_pkgs+=(cpio)
command -v depmod >/dev/null || need_pkgs+=(kmod)
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v zstd >/dev/null || need_pkgs+=(zstd)
command -v timeout >/dev/null || need_pkgs+=(coreutils)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    echo "installing: ${need_pkgs[*]}" >&2
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_pkgs[@]}" >&2 \
        || die "apt-get install ${need_pkgs[*]} failed"
fi

# --- the plugin under test -----------------------------------------------------------
REFERENCE=""
if [ -z "$PLUGIN" ]; then
    PLUGIN=$REPO/dist/host-device
    # Rebuild only when the binary is missing or older than a source (as make would).
    stale=""
    if [ -x "$PLUGIN" ]; then
        stale=$(cd "$REPO" && find cni_hostdev packaging \( -name '*.py' -o -name '*.spec' -o -name '*.sh' \) \
            -newer dist/host-device -print -quit; [ pyproject.toml -nt dist/host-device ] && echo pyproject.toml || true)
    fi
    if [ ! -x "$PLUGIN" ] || [ -n "$stale" ]; then
        echo "building dist/host-device (make binary)${stale:+: $stale is newer}" >&2
        make -C "$REPO" binary >&2 || die "make binary failed"
    fi
fi
[ -x "$PLUGIN" ] || die "plugin $PLUGIN is not an executable file"
PLUGIN=$(realpath "$PLUGIN")
if [ "$PLUGIN" = "$(realpath $REFERENCE_PLUGIN)" ]; then
    REFERENCE=1
    LABEL="reference-$(dpkg-query -W -f '${Version}' containernetworking-plugins 2>/dev/null | sed 's/+.*//')"
elif [ "$PLUGIN" = "$(realpath -m "$REPO/dist/host-device")" ]; then
    LABEL=ours
else
    LABEL=$(basename "$PLUGIN")
fi

WORK=$(mktemp -d /tmp/cni-hostdev-qemu.XXXXXX)
QEMU_PIDS=()
cleanup() {
    local f
    for f in "$WORK"/pid-*; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    for pid in "${QEMU_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Snapshot the binary: others may rebuild dist/ while the VMs run.
cp "$PLUGIN" "$WORK/host-device"

# --- kernels -------------------------------------------------------------------------
# Prints the kernel release (uname -r) for a series such as 6.1 or 6.12, downloading
# and unpacking the newest linux-image-SERIES.*-cloud-amd64-unsigned when not cached.
kernel_for() {
    local series=$1 pkg kver deb dir
    pkg=$(apt-cache pkgnames "linux-image-$series." 2>/dev/null | grep -E -- '-cloud-amd64-unsigned$' | grep -E "^linux-image-${series//./\\.}\." | sort -V | tail -1 || true)
    if [ -z "$pkg" ]; then
        apt_update >&2
        pkg=$(apt-cache pkgnames "linux-image-$series." | grep -E -- '-cloud-amd64-unsigned$' | grep -E "^linux-image-${series//./\\.}\." | sort -V | tail -1 || true)
    fi
    [ -n "$pkg" ] || { echo "no linux-image-$series.*-cloud-amd64-unsigned package known to apt" >&2; return 1; }
    kver=${pkg#linux-image-}; kver=${kver%-unsigned}
    dir=$CACHE/kernels/$kver
    if [ ! -f "$dir/.ready" ]; then
        echo "fetching $pkg" >&2
        mkdir -p "$CACHE/debs" && rm -rf "$dir" && mkdir -p "$dir"
        deb=$(ls -t "$CACHE/debs/${pkg}"_*.deb 2>/dev/null | head -1 || true)
        if [ -z "$deb" ]; then
            (cd "$CACHE/debs" && apt-get download "$pkg" >/dev/null 2>&1) \
                || { apt_update >&2; (cd "$CACHE/debs" && apt-get download "$pkg" >&2); } || return 1
            deb=$(ls -t "$CACHE/debs/${pkg}"_*.deb | head -1)
        fi
        dpkg-deb -x "$deb" "$dir"
        depmod -b "$dir" "$kver"
        [ -f "$dir/boot/vmlinuz-$kver" ] || { echo "no vmlinuz in $deb" >&2; return 1; }
        touch "$dir/.ready"
    fi
    echo "$kver"
}

# Module files for NAMEs, dependencies first (modules.dep lists them so that
# loading in reverse order works); built-in modules are skipped.
module_paths() {
    local moddir=$1; shift
    local name line m
    for name in "$@"; do
        line=$(awk -v n="${name//-/_}" '{p=$1; sub(/:$/,"",p); b=p; sub(/.*\//,"",b); sub(/\.ko(\.xz|\.zst|\.gz)?$/,"",b); gsub(/-/,"_",b); if (b==n) {print; exit}}' "$moddir/modules.dep")
        if [ -z "$line" ]; then
            grep -qE "/${name}\.ko" "$moddir/modules.builtin" && continue
            echo "module $name is neither in modules.dep nor built in" >&2; return 1
        fi
        # shellcheck disable=SC2086
        set -- ${line#*:}
        for ((i = $#; i >= 1; i--)); do echo "${!i}"; done
        echo "${line%%:*}"
    done | awk '!seen[$0]++'
}

copy_with_libs() {  # copy_with_libs ROOT FILE...: the files and every library ldd names, at the same paths
    local root=$1; shift
    local f lib
    for f in "$@"; do
        mkdir -p "$root$(dirname "$f")"; cp -L "$f" "$root$f"
        ldd "$f" 2>/dev/null | grep -oE '(/[^ ]+)' | while read -r lib; do
            [ -e "$lib" ] || continue
            mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"
        done
    done
}

# --- initramfs -----------------------------------------------------------------------
build_initramfs() {  # build_initramfs KVER OUT
    local kver=$1 out=$2 moddir=$CACHE/kernels/$1/lib/modules/$1
    local root; root=$(mktemp -d "$WORK/root.XXXXXX")
    mkdir -p "$root"/{bin,sbin,etc,proc,sys,dev,run,tmp,opt/cni/bin,modules}
    cp /bin/busybox "$root/bin/busybox"
    copy_with_libs "$root" /usr/sbin/ip /usr/lib/cni/static
    mv "$root/usr/sbin/ip" "$root/sbin/ip"
    [ -f /etc/ld.so.cache ] && cp /etc/ld.so.cache "$root/etc/"
    cp "$WORK/host-device" "$root/opt/cni/bin/host-device"
    copy_with_libs "$root" "$WORK/host-device"    # nothing for a static binary
    rm -f "$root$WORK/host-device"
    mv "$root/usr/lib/cni/static" "$root/opt/cni/bin/static"
    cp "$HERE/init.sh" "$root/init"; chmod 755 "$root/init"
    printf 'PLUGIN_LABEL=%q\nVERBOSE=%q\n' "$LABEL" "$VERBOSE" > "$root/conformance.env"
    : > "$root/modules.list"
    local rel base
    for rel in $(module_paths "$moddir" $MODULES); do
        base=$(basename "$rel"); base=${base%.xz}; base=${base%.zst}; base=${base%.gz}
        case $rel in
            *.xz) xz -dc "$moddir/$rel" > "$root/modules/$base" ;;
            *.zst) zstd -qdc "$moddir/$rel" > "$root/modules/$base" ;;
            *.gz) gzip -dc "$moddir/$rel" > "$root/modules/$base" ;;
            *) cp "$moddir/$rel" "$root/modules/$base" ;;
        esac
        echo "$base" >> "$root/modules.list"
    done
    (cd "$root" && find . | cpio -o -H newc --quiet) > "$out"
    rm -rf "$root"
}

boot() {  # boot KVER INITRD LOG SERIES
    local kver=$1 i nics=()
    for i in 4 5 6; do
        nics+=(-netdev "user,id=n$i,restrict=on,ipv6=off" -device "virtio-net-pci,netdev=n$i,addr=0x$i")
    done
    timeout --kill-after=10 "$VM_TIMEOUT" qemu-system-x86_64 \
        -accel tcg -cpu max -smp 1 -m 1024 -no-reboot \
        -display none -monitor none -serial "file:$3" \
        -kernel "$CACHE/kernels/$kver/boot/vmlinuz-$kver" -initrd "$2" \
        -append "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init" \
        -nic none "${nics[@]}" < /dev/null > "$3.qemu" 2>&1 &
    echo $! > "$WORK/pid-$4"
    wait $!
}

# --- run -----------------------------------------------------------------------------
mkdir -p "$CACHE/logs"
declare -A KVER LOGF RC
for series in $KERNELS; do
    KVER[$series]=$(kernel_for "$series") || die "cannot get a $series kernel"
done
echo "plugin: $PLUGIN ($LABEL; sha256 $(sha256sum "$WORK/host-device" | cut -c1-12), built $(date -r "$PLUGIN" '+%F %T'); tree $(cd "$REPO" && git describe --always --dirty 2>/dev/null || echo '?'))"
running=0
for series in $KERNELS; do
    kver=${KVER[$series]}
    build_initramfs "$kver" "$WORK/initrd-$series.cpio" || die "cannot build the initramfs for $kver"
    LOGF[$series]=$CACHE/logs/$LABEL-$series.log
    : > "${LOGF[$series]}"
    echo "booting $kver (TCG, timeout ${VM_TIMEOUT}s)"
    ( start=$(date +%s); rc=0; boot "$kver" "$WORK/initrd-$series.cpio" "${LOGF[$series]}" "$series" || rc=$?
      echo "$rc $(( $(date +%s) - start ))" > "$WORK/rc-$series" ) &
    QEMU_PIDS+=($!)
    running=$((running + 1))
    if [ "$running" -ge "$JOBS" ]; then wait -n || true; running=$((running - 1)); fi
done
wait || true
QEMU_PIDS=()

passed=0; failed=0; broken=""
for series in $KERNELS; do
    log=${LOGF[$series]}
    read -r rc secs < "$WORK/rc-$series" || { rc=?; secs=?; }
    echo
    echo "== ${KVER[$series]} ($LABEL): VM exit $rc after ${secs}s; console log $log"
    tr -d '\r' < "$log" | awk -v k="$series" -v verbose="$VERBOSE" '
        /^NOTE / { print "   " $0; next }
        /^PASS / { sub(/^PASS /, ""); print "PASS " k "/" $0; next }
        /^FAIL / { sub(/^FAIL /, ""); print "FAIL " k "/" $0; infail = 1; next }
        /^  \| / { if (infail || verbose) print; next }
        { infail = 0 }'
    p=$(tr -d '\r' < "$log" | grep -c '^PASS ' || true)
    f=$(tr -d '\r' < "$log" | grep -c '^FAIL ' || true)
    passed=$((passed + p)); failed=$((failed + f))
    if ! tr -d '\r' < "$log" | grep -q '^CONFORMANCE-DONE'; then
        echo "FAIL $series/vm: the VM did not finish its cases (exit $rc after ${secs}s; 124 is the ${VM_TIMEOUT}s timeout); console tail:"
        tr -d '\r' < "$log" | tail -20 | sed 's/^/  | /'
        [ -s "$log.qemu" ] && sed 's/^/  | qemu: /' "$log.qemu" | tail -5
        failed=$((failed + 1)); broken=1
    fi
done
echo
[ -n "$REFERENCE" ] && echo "(reference plugin: its failures are reported, not fatal)"
echo "$passed passed, $failed failed"
[ -n "$broken" ] && exit 2
[ "$failed" -eq 0 ] || [ -n "$REFERENCE" ] || exit 1
exit 0
