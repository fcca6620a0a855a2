#!/usr/bin/env bash
# podman suite: podman 4.3.1 (Debian) with its CNI backend runs the plugin for real.
#
#   conformance/podman/run.sh [--plugin PATH]      (root; default PATH: dist/host-device)
#
# Nothing of the machine's own container configuration is used or changed: CONTAINERS_CONF
# points at a private file (CNI backend, runc, cgroupfs, a private network_config_dir and
# plugin dir), and podman runs with private --root/--runroot/--tmpdir under a temp dir. The
# image is a busybox-static rootfs imported with `podman import` (no registry).
# Each case gets its own veth end and its own network (a .conflist with static IPAM at
# cniVersion 1.0.0). Last line: "N passed, M failed".
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
cf_plugin_args "$@"
cf_init pm
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
for tool in podman runc conmon; do
    command -v "$tool" >/dev/null || [[ -x /usr/libexec/podman/$tool || -x /usr/bin/$tool ]] ||
        { echo "$tool is missing (apt-get install podman runc)" >&2; exit 2; }
done
BUSYBOX=$(command -v busybox || true)
[[ -n $BUSYBOX ]] && ldd "$BUSYBOX" >/dev/null 2>&1 && BUSYBOX=""   # want the static one
[[ -z $BUSYBOX && -x /bin/busybox ]] && ! ldd /bin/busybox >/dev/null 2>&1 && BUSYBOX=/bin/busybox
[[ -n $BUSYBOX ]] || { echo "a static busybox is missing (apt-get install busybox-static)" >&2; exit 2; }

BIN=$(cf_bindir)
PM=$CF_TMP/podman
NETDIR=$PM/networks
DATA=$CF_TMP/data
mkdir -p "$NETDIR" "$PM/root" "$PM/runroot" "$PM/tmp"
cat >"$PM/containers.conf" <<EOF
[containers]
default_ulimits = []
[network]
network_backend = "cni"
cni_plugin_dirs = ["$BIN", "/usr/lib/cni"]
network_config_dir = "$NETDIR"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$PM/containers.conf
P=(podman --root "$PM/root" --runroot "$PM/runroot" --tmpdir "$PM/tmp" --storage-driver vfs)
# On exit: remove every container of this private store, then any mount left under it.
CF_EXIT_HOOKS+=("${P[*]} rm -af -t 0")
CF_EXIT_HOOKS+=("grep -o ' ${CF_TMP}[^ ]*' /proc/mounts | sort -r | xargs -r umount -l")

echo "# podman suite: plugin $CF_PLUGIN, $(podman --version), runtime runc, CNI backend"

# --- image: busybox-static rootfs, imported -------------------------------------------------
IMG=localhost/${CF_TAG}-busybox:latest
ROOTFS=$CF_TMP/rootfs
mkdir -p "$ROOTFS"/{bin,proc,sys,dev,etc,tmp}
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
for applet in $("$BUSYBOX" --list); do
    [[ $applet == busybox ]] || ln -sf busybox "$ROOTFS/bin/$applet"
done
if ! tar -C "$ROOTFS" -c . | "${P[@]}" import - "$IMG" >"$CF_TMP/import.log" 2>&1; then
    cat "$CF_TMP/import.log" >&2
    echo "podman import failed" >&2
    exit 2
fi

N=0
# new_case: DEV (a veth end, up), NET (a network for DEV, static 192.0.2.40/24, 1.0.0).
new_case() {
    N=$((N + 1))
    DEV=${CF_TAG}c${N}
    NET=${CF_TAG}net${N}
    cf_veth "$DEV" || { echo "setup failed" >&2; exit 3; }
    MAC=$(link_mac - "$DEV")
    cat >"$NETDIR/$NET.conflist" <<EOF
{"cniVersion":"1.0.0","name":"$NET","plugins":[{"type":"host-device","device":"$DEV","dataDir":"$DATA",
 "ipam":{"type":"static","addresses":[{"address":"192.0.2.40/24","gateway":"192.0.2.254"}]}}]}
EOF
}

# in_container_problem OUTPUT IFNAME: OUTPUT is `ip -o link show IFNAME; ip -o addr show IFNAME`
# run inside the container; echoes why it does not show DEV as IFNAME with its MAC, up, addressed.
in_container_problem() {
    local out=$1 ifname=$2
    grep -q "^[0-9]*: ${ifname}[:@]" <<<"$out" || { echo "container has no $ifname: $(head -c 300 <<<"$out" | tr '\n' ' ')"; return; }
    grep -q "link/ether $MAC" <<<"$out" || { echo "$ifname in the container does not have MAC $MAC: $(head -c 300 <<<"$out" | tr '\n' ' ')"; return; }
    grep -qE "^[0-9]*: ${ifname}[:@][^<]*<([^>]*,)?UP[,>]" <<<"$out" || { echo "$ifname is not up in the container"; return; }
    grep -q "inet 192.0.2.40/24" <<<"$out" || echo "$ifname lacks 192.0.2.40/24 in the container: $(grep inet <<<"$out" | tr '\n' ' ')"
}

# wait_home: the device must come home within 15 s, with its name, MAC and up state.
wait_home() {
    wait_until 15 link_exists - "$DEV" || { echo "after 15 s: $(expect_home "$DEV" "$MAC" up)"; return; }
    wait_until 2 link_is_up - "$DEV"   # a DEL may still be finishing: give the up state a moment
    expect_home "$DEV" "$MAC" up
}

SHOW='ip -o link show IF; ip -o addr show IF'

# ---------------------------------------------------------------------------------------------
new_case
names=$("${P[@]}" network ls --format '{{.Name}}' 2>&1)
verdict "podman/network-listed" "$(grep -qx "$NET" <<<"$names" || echo "network ls: $(tr '\n' ' ' <<<"$names")")"

# podman/run-sees-device: `podman run --rm` with the interface name requested (net1).
out=$(timeout 120 "${P[@]}" run --rm --network "$NET:interface_name=net1" "$IMG" sh -c "${SHOW//IF/net1}" 2>&1)
rc=$?
why=""
((rc == 0)) || why="podman run exit $rc: $(head -c 300 <<<"$out" | tr '\n' ' ')"
[[ -z $why ]] && why=$(in_container_problem "$out" net1)
verdict "podman/run-sees-device-as-net1" "$why"
verdict "podman/exit-device-home" "$(wait_home)"

# podman/default-ifname: without interface_name podman asks for eth0 (the container's own).
new_case
out=$(timeout 120 "${P[@]}" run --rm --network "$NET" "$IMG" sh -c "${SHOW//IF/eth0}" 2>&1)
rc=$?
why=""
((rc == 0)) || why="podman run exit $rc: $(head -c 300 <<<"$out" | tr '\n' ' ')"
[[ -z $why ]] && why=$(in_container_problem "$out" eth0)
[[ -z $why ]] && why=$(wait_home)
verdict "podman/default-ifname-eth0-then-home" "$why"

# podman/exit-nonzero: the container fails (exit 3); the device comes home all the same.
new_case
timeout 120 "${P[@]}" run --rm --network "$NET:interface_name=net1" "$IMG" sh -c 'exit 3' >/dev/null 2>&1
rc=$?
why=""
((rc == 3)) || why="podman run exit $rc, expected 3"
[[ -z $why ]] && why=$(wait_home)
verdict "podman/exit-nonzero-device-home" "$why"

# detached containers: kill, and rm -f.
for how in kill rm-f; do
    new_case
    C=${CF_TAG}-$how
    why=""
    if ! cid=$(timeout 120 "${P[@]}" run -d --name "$C" --network "$NET:interface_name=net1" "$IMG" sleep 600 2>&1); then
        why="podman run -d: $(tr '\n' ' ' <<<"$cid" | head -c 300)"
    else
        out=$("${P[@]}" exec "$C" sh -c "${SHOW//IF/net1}" 2>&1)
        why=$(in_container_problem "$out" net1)
        [[ -z $why ]] && link_exists - "$DEV" && why="$DEV is still in the host while the container runs"
        if [[ $how == kill ]]; then
            "${P[@]}" kill "$C" >/dev/null 2>&1 || why=${why:-"podman kill failed"}
        else
            "${P[@]}" rm -f -t 0 "$C" >/dev/null 2>&1 || why=${why:-"podman rm -f failed"}
        fi
        [[ -z $why ]] && why=$(wait_home)
    fi
    verdict "podman/$how-device-home" "$why"
    if [[ $how == kill ]]; then
        # The same container started again: a fresh ADD after the DEL of the kill.
        why=""
        if ! "${P[@]}" start "$C" >/dev/null 2>"$CF_TMP/start.err"; then
            why="podman start: $(head -c 300 "$CF_TMP/start.err" | tr '\n' ' ')"
        else
            out=$("${P[@]}" exec "$C" sh -c "${SHOW//IF/net1}" 2>&1)
            why=$(in_container_problem "$out" net1)
            "${P[@]}" rm -f -t 0 "$C" >/dev/null 2>&1
            [[ -z $why ]] && why=$(wait_home)
        fi
        verdict "podman/start-again-after-kill" "$why"
    fi
    "${P[@]}" rm -f -t 0 "$C" >/dev/null 2>&1
done

cf_summary
