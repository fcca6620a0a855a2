#!/usr/bin/env bash
# Proves the cni-hostdev image with real podman (Debian's 4.3.1) and runc, offline:
#
#   1. `podman build` of packaging/Containerfile (FROM scratch) needs no network and
#      yields one layer holding only /host-device and its SBOM (/host-device.cdx.json),
#      with the installer as ENTRYPOINT.
#   2. `--layout file` (the single static file), run with the init container's
#      privileges and limits (root, all capabilities dropped, read-only root
#      filesystem, no-new-privileges, tmpfs /tmp, 128 MiB, half a CPU) and a host temp
#      dir as the CNI bin dir: the installed file's sha256 equals the binary's, mode
#      0755, no temp file left, and it answers CNI VERSION on the host. A second run
#      says "unchanged" and leaves the file alone; a wrong --sha256 is refused.
#      Replacing a binary that is running: a process started from the installed file
#      blocks a plain `cp` (ETXTBSY), yet an image carrying another payload installs
#      over it; the old process keeps running from the old inode, the new file runs.
#   3. The default layout, which the DaemonSet uses: the entry is a symlink to a
#      complete tree named after the payload's sha256, whose launcher's loader path is
#      the node's (--node-bin-dir), and which answers VERSION on the host. A second run
#      is a no-op; another payload swaps the entry while a process running from the
#      previous tree keeps running (that tree is kept).
#   4. The repair container with the DaemonSet's privileges (host network, root,
#      CAP_NET_ADMIN + CAP_SYS_ADMIN only, read-only root filesystem, /run/netns
#      mounted read-only with rslave propagation at /run/netns and /var/run/netns):
#      one pass keeps the record of a live pod, drops the record of a dead one, and
#      brings home the device of an ADD killed half-way (from its staging netns
#      under /run/cni-hostdev, which it unmounts on the host too); without
#      CAP_SYS_ADMIN the same pass fails (the capability is needed).
#
# Usage (as root):  packaging/image/prove.sh [path/to/host-device]   (default dist/host-device)
# Installs podman and runc (and binutils, iproute2, python3) with apt-get when missing.
# Everything podman stores goes into a private temp dir (own --root/--runroot, vfs
# storage, own containers.conf and signature policy): the machine's own podman
# configuration and images are not used or touched. Network namespaces and links it creates are named t<pid>… and removed.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
binary=$(realpath "${1:-$repo/dist/host-device}")
containerfile=$repo/packaging/Containerfile

checks=0
pass() { checks=$((checks + 1)); printf '  ok %s\n' "$*"; }
fail() { printf 'prove.sh: FAILED: %s\n' "$*" >&2; exit 1; }
step() { printf '\n== %s\n' "$*"; }

[ "$(id -u)" = 0 ] || fail "run as root"
[ -x "$binary" ] || fail "$binary is missing: run make binary first"

missing=()
for tool in podman:podman runc:runc readelf:binutils ip:iproute2 python3:python3; do
    command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    step "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi
podman --version

work=$(mktemp -d /tmp/cni-hostdev-prove.XXXXXX)
tag="tpv$$" # netns and links: tpv<pid><suffix>, at most 12 characters
bg_pids=()
netns_made=()
links_made=()
P() { podman --root "$work/root" --runroot "$work/runroot" --storage-driver vfs "$@"; }
cleanup() {
    set +e
    for pid in "${bg_pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    for ns in "${netns_made[@]}"; do ip netns del "$ns" 2>/dev/null; done
    [ -n "${staging:-}" ] && umount -l "$staging" 2>/dev/null && rm -f "$staging"
    for link in "${links_made[@]}"; do ip link del "$link" 2>/dev/null; done
    P rm -af >/dev/null 2>&1
    P rmi -af >/dev/null 2>&1
    P volume prune -f >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/root" "$work/runroot" "$work/ctx" "$work/ctx-alt"
cat >"$work/containers.conf" <<'EOF'
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$work/policy.json"
export CONTAINERS_CONF=$work/containers.conf

# Work on a private copy: the binary in dist/ may be rebuilt while this runs.
cp "$binary" "$work/ctx/host-device"
sbom=$(dirname "$binary")/host-device.cdx.json
[ -f "$sbom" ] || fail "$sbom is missing: make binary writes it beside the binary"
cp "$sbom" "$work/ctx/host-device.cdx.json"
cp "$sbom" "$work/ctx-alt/host-device.cdx.json"
payload_sha=$(sha256sum "$work/ctx/host-device" | cut -d' ' -f1)
# A second payload that differs and still works: the same static file with its
# appended bundle (a tar behind a 64-byte trailer: magic, offset, length, sha256)
# rewritten with one more harmless member and a new trailer. Both layouts then see
# another payload: another file hash and another bundle name.
python3 - "$work/ctx/host-device" "$work/ctx-alt/host-device" <<'PY'
import hashlib, io, struct, sys, tarfile
TRAILER = "<16sQQ32s"
data = open(sys.argv[1], "rb").read()
size = struct.calcsize(TRAILER)
magic, offset, length, _ = struct.unpack(TRAILER, data[-size:])
assert magic == b"HOSTDEV-UNPACKED", "dist/host-device carries no unpacked bundle"
source = tarfile.open(fileobj=io.BytesIO(data[offset:offset + length]))
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as out:
    for member in source.getmembers():
        out.addfile(member, source.extractfile(member) if member.isfile() else None)
    extra = tarfile.TarInfo("./.alt")
    extra.size = 4
    out.addfile(extra, io.BytesIO(b"alt\n"))
payload = buf.getvalue()
with open(sys.argv[2], "wb") as f:
    f.write(data[:offset] + payload + struct.pack(TRAILER, magic, offset, len(payload), hashlib.sha256(payload).digest()))
PY
chmod 0755 "$work/ctx-alt/host-device"
alt_sha=$(sha256sum "$work/ctx-alt/host-device" | cut -d' ' -f1)
version=$("$work/ctx/host-device" --version | awk '{print $2}')

step "podman build (offline, FROM scratch)"
P build -q --network none --signature-policy "$work/policy.json" --build-arg "VERSION=$version" \
    -f "$containerfile" -t "cni-hostdev:$version" "$work/ctx" >/dev/null
P build -q --network none --signature-policy "$work/policy.json" \
    -f "$containerfile" -t cni-hostdev:alt "$work/ctx-alt" >/dev/null
image=localhost/cni-hostdev:$version
layers=$(P image inspect "$image" --format '{{len .RootFS.Layers}}')
[ "$layers" = 1 ] || fail "image has $layers layers, expected 1"
pass "built $image: one layer"
cid=$(P create "$image")
contents=$(P export "$cid" | tar -t | sort | tr '\n' ' ')
P rm "$cid" >/dev/null
[ "$contents" = "host-device host-device.cdx.json " ] ||
    fail "image holds [$contents], expected only host-device and its SBOM"
pass "the image holds only /host-device and its bill of materials"
cid=$(P create "$image")
P export "$cid" | tar -xO host-device.cdx.json | cmp -s - "$sbom" || fail "the image's SBOM is not the build's"
P rm "$cid" >/dev/null
pass "its SBOM is the build's (which names the lock it was built from)"
cid=$(P create "$image")
modes=$(P export "$cid" | tar -tv | awk '{print $1, $NF}' | sort | tr '\n' ' ')
P rm "$cid" >/dev/null
[ "$modes" = "-rw-r--r-- host-device.cdx.json -rwxr-xr-x host-device " ] || fail "modes in the image: $modes"
pass "modes 0755 and 0644"
entrypoint=$(P image inspect "$image" --format '{{json .Config.Entrypoint}}')
[ "$entrypoint" = '["/host-device","install","--bin-dir","/host/opt/cni/bin","--node-bin-dir","/opt/cni/bin"]' ] ||
    fail "entrypoint is $entrypoint"
pass "ENTRYPOINT $entrypoint"

# The init container's privileges and limits in packaging/manifests/base/daemonset.yaml.
# shellcheck disable=SC2054 # the commas are inside podman option values
init_flags=(--network none --user 0:0 --cap-drop ALL --security-opt no-new-privileges
    --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,exec,size=96m --memory 128m --cpus 0.5)
install_with() { # install_with BINDIR IMAGE [installer args...]: the bin dir at /host/opt/cni/bin, as in the DaemonSet
    local dir=$1 img=$2
    shift 2
    P run --rm "${init_flags[@]}" -v "$dir:/host/opt/cni/bin" "$img" --node-bin-dir "$dir" "$@"
}
# shellcheck disable=SC2012 # names made here: plain ASCII
only_entries() { # only_entries DIR NAME...: DIR holds exactly these names (no temp or staging file)
    local dir=$1
    shift
    # .host-device.run-*: where the single file unpacked itself to run (one per payload).
    [ "$(ls -A "$dir" | grep -v '^\.host-device\.run-' | sort | tr '\n' ' ')" = "$(printf '%s\n' "$@" | sort | tr '\n' ' ')" ] ||
        fail "$dir holds [$(ls -A "$dir" | tr '\n' ' ')], expected [$*]"
}
cni_version() { # cni_version FILE: run FILE as a runtime would, on the host
    # A here-string, not a pipe: VERSION is answered without reading stdin, and a writer still
    # writing when the plugin has left would die of SIGPIPE, which pipefail makes our failure.
    env -i CNI_COMMAND=VERSION PATH=/usr/bin:/bin "$1" <<<'{"cniVersion":"1.1.0"}'
}
start_long_running() { # start_long_running FILE: a long-running process exec'd from FILE; sets $old_pid
    "$1" repair --interval 60 --data-dir "$work/state-running" &
    old_pid=$!
    bg_pids+=("$old_pid")
    sleep 1
    kill -0 "$old_pid" 2>/dev/null || fail "the long-running process did not start"
}

step "--layout file: the single static file (init container privileges and limits)"
bindir=$work/bin-file
mkdir -p "$bindir"
out=$(install_with "$bindir" "$image" --layout file)
printf '%s\n' "$out" | sed 's/^/    /'
[[ $out == "installed /host/opt/cni/bin/host-device (sha256 $payload_sha)"* ]] || fail "unexpected output"
pass "reports installed, with the payload's sha256"
[ "$(sha256sum "$bindir/host-device" | cut -d' ' -f1)" = "$payload_sha" ] || fail "installed file differs"
pass "installed file's sha256 equals the binary's ($payload_sha)"
[ "$(stat -c %a "$bindir/host-device")" = 755 ] || fail "mode is $(stat -c %a "$bindir/host-device")"
pass "mode 0755"
only_entries "$bindir" host-device
pass "no temp file left in the bin dir"
cni_version "$bindir/host-device" | grep -q '"supportedVersions"' || fail "the installed file does not answer VERSION"
pass "the installed file answers CNI VERSION on the host"

before=$(stat -c '%i %Y' "$bindir/host-device")
out=$(install_with "$bindir" "$image" --layout file)
[[ $out == "unchanged /host/opt/cni/bin/host-device"* ]] || fail "second run did not skip: $out"
[ "$(stat -c '%i %Y' "$bindir/host-device")" = "$before" ] || fail "second run touched the file"
pass "second run: unchanged; same inode and mtime"

wrong=$(printf '0%.0s' {1..64})
if install_with "$bindir" "$image" --layout file --sha256 "$wrong" >"$work/out" 2>&1; then
    fail "a wrong --sha256 was accepted"
fi
[ "$(sha256sum "$bindir/host-device" | cut -d' ' -f1)" = "$payload_sha" ] || fail "file changed"
pass "a wrong --sha256 is refused, file untouched: $(tail -n1 "$work/out")"
out=$(install_with "$bindir" "$image" --layout file --sha256 "$payload_sha")
[[ $out == unchanged* ]] || fail "the right --sha256 was not accepted"
pass "the right --sha256 is accepted"

start_long_running "$bindir/host-device"
# The single file execs its unpacked cache (made once, beside it): the process runs from there.
old_exe=$(readlink "/proc/$old_pid/exe")
[[ $old_exe == "$bindir"/.host-device.run-*/host-device ]] || fail "pid $old_pid runs $old_exe, not the file's cache"
pass "pid $old_pid runs from the file's unpacked cache"
out=$(install_with "$bindir" localhost/cni-hostdev:alt --layout file)
[[ $out == "installed /host/opt/cni/bin/host-device (sha256 $alt_sha)"* ]] || fail "other payload not installed: $out"
[ "$(sha256sum "$bindir/host-device" | cut -d' ' -f1)" = "$alt_sha" ] || fail "new file not in place"
pass "another payload installs over it (sha256 $alt_sha)"
kill -0 "$old_pid" 2>/dev/null || fail "the old process died"
[ "$(readlink "/proc/$old_pid/exe")" = "$old_exe" ] || fail "old exe: $(readlink "/proc/$old_pid/exe")"
pass "the old process keeps running from its cache"
cni_version "$bindir/host-device" | grep -q '"supportedVersions"' || fail "the new file does not run"
pass "the new file runs"
only_entries "$bindir" host-device
kill "$old_pid"
wait "$old_pid" 2>/dev/null || true

step "default layout (what the DaemonSet installs): an unpacked tree and an atomic entry swap"
bindir=$work/bin-tree
mkdir -p "$bindir"
# The bundle is named after the sha256 of the payload appended to the static file;
# its trailer (the last 32 bytes) carries that digest.
bundle=.host-device-$version-$(tail -c 32 "$work/ctx/host-device" | od -An -tx1 | tr -d ' \n' | cut -c1-12)
alt_bundle=.host-device-$version-$(tail -c 32 "$work/ctx-alt/host-device" | od -An -tx1 | tr -d ' \n' | cut -c1-12)
out=$(install_with "$bindir" "$image")
printf '%s\n' "$out" | sed 's/^/    /'
[[ $out == "installed /host/opt/cni/bin/host-device -> $bindir/$bundle/host-device"* ]] || fail "unexpected output"
pass "reports installed, launcher at the node's path"
[ "$(readlink "$bindir/host-device")" = "$bundle/host-device" ] || fail "entry points at $(readlink "$bindir/host-device")"
[ -f "$bindir/$bundle/.complete" ] || fail "bundle not marked complete"
pass "host-device -> $bundle/host-device (the payload's sha256), complete"
only_entries "$bindir" host-device "$bundle"
pass "no staging dir or temp link left in the bin dir"
interp=$(readelf -l "$bindir/$bundle/host-device.bin" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ "$interp" = "$bindir/$bundle/_internal/ld.so" ] || fail "the frozen program's loader is $interp"
pass "the frozen program's loader is the bundle's own, at the node's path"
cni_version "$bindir/host-device" | grep -q '"supportedVersions"' || fail "the installed entry does not answer VERSION"
pass "the installed entry answers CNI VERSION on the host"
before=$(stat -c '%i %Y' "$bindir/$bundle/host-device")
out=$(install_with "$bindir" "$image")
[[ $out == unchanged* ]] || fail "second run did not skip: $out"
[ "$(stat -c '%i %Y' "$bindir/$bundle/host-device")" = "$before" ] || fail "second run touched the bundle"
pass "second run: unchanged; the bundle untouched"
start_long_running "$bindir/host-device"
[ "$(readlink "/proc/$old_pid/exe")" = "$bindir/$bundle/host-device.bin" ] || fail "pid $old_pid: $(readlink "/proc/$old_pid/exe")"
pass "pid $old_pid runs $bundle/host-device.bin"
out=$(install_with "$bindir" localhost/cni-hostdev:alt)
[[ $out == "installed /host/opt/cni/bin/host-device -> $bindir/$alt_bundle/host-device"* ]] || fail "other payload: $out"
[ "$(readlink "$bindir/host-device")" = "$alt_bundle/host-device" ] || fail "entry not swapped"
pass "another payload installs: host-device -> $alt_bundle/host-device"
kill -0 "$old_pid" 2>/dev/null || fail "the old process died"
[ "$(readlink "/proc/$old_pid/exe")" = "$bindir/$bundle/host-device.bin" ] || fail "old exe: $(readlink "/proc/$old_pid/exe")"
only_entries "$bindir" host-device "$bundle" "$alt_bundle"
pass "the old process keeps running from the previous bundle, which is kept"
cni_version "$bindir/host-device" | grep -q '"supportedVersions"' || fail "the new entry does not run"
pass "the new entry runs"
kill "$old_pid"
wait "$old_pid" 2>/dev/null || true

step "repair container with the DaemonSet's privileges"
state=$work/state
mkdir -p "$state" /run/cni-hostdev
live_ns=${tag}l dead_ns=${tag}d staged_ns=${tag}s live_dev=${tag}a dead_dev=${tag}b staged_dev=${tag}c
staging=/run/cni-hostdev/staging/$tag-staged-net1
for ns in "$live_ns" "$dead_ns" "$staged_ns"; do ip netns add "$ns"; netns_made+=("$ns"); done
for dev in "$live_dev" "$dead_dev" "$staged_dev"; do
    ip link add "$dev" type veth peer name "${dev}p"
    links_made+=("$dev" "${dev}p")
done
add() { # add DEVICE NETNS CONTAINER-ID [extra config JSON members]
    printf '{"cniVersion":"1.1.0","name":"%s","type":"host-device","device":"%s","dataDir":"%s"%s}' \
        "$tag" "$1" "$state" "${4:-}" |
        CNI_COMMAND=ADD CNI_CONTAINERID=$3 CNI_NETNS=/var/run/netns/$2 CNI_IFNAME=net1 CNI_PATH=/usr/lib/cni \
            "$work/ctx/host-device" >/dev/null
}
add "$live_dev" "$live_ns" live
add "$dead_dev" "$dead_ns" dead
ip netns del "$dead_ns" # the pod died without DEL (its veth died with it)
# An ADD killed half-way through rename-then-move (the plugin's test-only fault
# injection): the device sits, renamed, in a staging netns bind-mounted on the host.
if CNI_HOSTDEV_TESTING=1 CNI_HOSTDEV_KILL_AT=renamed add "$staged_dev" "$staged_ns" staged \
    ',"moveStrategy":"rename-then-move"' 2>/dev/null; then
    fail "the fault injection did not stop the ADD"
fi
if [ ! -f "$state/$tag/live-net1.json" ] || [ ! -f "$state/$tag/dead-net1.json" ] ||
    [ ! -f "$state/$tag/staged-net1.json" ]; then
    fail "ADD wrote no records: $(find "$state" -name "*.json" | tr "\n" " ")"
fi
if ! mountpoint -q "$staging" || ip link show "$staged_dev" >/dev/null 2>&1; then
    fail "the interrupted ADD did not leave its device in $staging"
fi
# shellcheck disable=SC2054
repair_flags=(--network host --user 0:0 --cap-drop ALL --security-opt no-new-privileges
    --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,exec,size=96m
    -v "$state:/var/lib/cni/host-device"
    -v /run/netns:/run/netns:ro,rslave -v /run/netns:/var/run/netns:ro,rslave
    -v /run/cni-hostdev:/run/cni-hostdev:rslave
    --entrypoint /host-device)
repair_cmd=(repair --once --data-dir /var/lib/cni/host-device)
if P run --rm "${repair_flags[@]}" --cap-add NET_ADMIN "$image" "${repair_cmd[@]}" >"$work/out" 2>&1; then
    fail "repair without CAP_SYS_ADMIN succeeded: the manifest asks for more than it needs"
fi
pass "without CAP_SYS_ADMIN a repair pass fails: $(grep -m1 'Error' "$work/out" || tail -n1 "$work/out")"
# What needs no namespace entry still gets done: the dead pod's record is released (its
# veth died with it); the interrupted ADD, whose device sits in a staging netns, waits.
[ ! -e "$state/$tag/dead-net1.json" ] || fail "the failed pass did not release the dead pod's record"
[ -f "$state/$tag/staged-net1.json" ] || fail "the failed pass dropped the interrupted ADD's record"
[ -f "$state/$tag/live-net1.json" ] || fail "the failed pass dropped the live pod's record"
pass "the failed pass released what needs no setns and kept every other record"
P run --rm "${repair_flags[@]}" --cap-add NET_ADMIN,SYS_ADMIN "$image" "${repair_cmd[@]}" >"$work/out" 2>&1 ||
    fail "repair with CAP_NET_ADMIN+CAP_SYS_ADMIN failed: $(cat "$work/out")"
pass "with CAP_NET_ADMIN and CAP_SYS_ADMIN one repair pass succeeds"
[ -f "$state/$tag/live-net1.json" ] || fail "the live pod's record was dropped"
ip -n "$live_ns" link show net1 >/dev/null || fail "the live pod lost its device"
pass "the live pod (netns seen through /var/run/netns) keeps its record and its device"
[ ! -e "$state/$tag/staged-net1.json" ] || fail "the interrupted ADD's record is still there"
ip link show "$staged_dev" >/dev/null 2>&1 || fail "the device of the interrupted ADD is not home"
if [[ $(ip -d link show "$staged_dev") == *"alias $staged_dev"* ]]; then
    fail "the device came home with our alias left on it"
fi
if mountpoint -q "$staging" || [ -e "$staging" ]; then
    fail "the staging netns is still mounted on the host"
fi
pass "the interrupted ADD's device is home, and its staging netns unmounted on the host too"
printf '{"cniVersion":"1.1.0","name":"%s","type":"host-device","device":"%s","dataDir":"%s"}' "$tag" "$live_dev" "$state" |
    CNI_COMMAND=DEL CNI_CONTAINERID=live CNI_NETNS=/var/run/netns/$live_ns CNI_IFNAME=net1 CNI_PATH=/usr/lib/cni \
        "$work/ctx/host-device" >/dev/null || fail "DEL of the live attachment failed"

printf '\nprove.sh: %d checks passed\n' "$checks"
