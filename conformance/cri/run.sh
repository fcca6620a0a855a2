#!/usr/bin/env bash
# cri suite: Debian's containerd (1.6, its built-in CRI plugin) runs the plugin as a pod's primary
# network, driven over the CRI runtime.v1 gRPC API exactly as kubelet drives it.
#
#   conformance/cri/run.sh [--plugin PATH]         (root; default PATH: dist/host-device)
#
# Nothing of the machine's own containerd is used or changed (/etc/containerd, /run/containerd,
# /var/lib/containerd): a private containerd runs with its own config, root, state and socket
# under the run's temp dir, inside a private mount namespace whose /run/containerd and
# /var/lib/cni are its own (containerd 1.6's shims put their sockets in the fixed
# /run/containerd/s, libcni its result cache in /var/lib/cni). The sandbox image is
# a static pause program built here and imported with ctr; the CRI client is cri.py (grpcio +
# protobuf, the runtime.v1 descriptor taken from the containerd binary at run time).
# Python: $CRI_PYTHON, else the repo's .venv, must import grpc and google.protobuf.
# Each case gets its own veth end (MTU 1450) as the network's `device`, host-local IPAM
# (198.51.100.0/24). Last line: "N passed, M failed".
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib.sh"
cf_plugin_args "$@"
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
for tool in containerd ctr runc gcc unshare nsenter jq ip timeout; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install containerd runc gcc libc6-dev jq iproute2)" >&2; exit 2; }
done
[[ -f /usr/lib/x86_64-linux-gnu/libc.a || -n $(find /usr/lib -name libc.a -print -quit 2>/dev/null) ]] ||
    { echo "a static libc is missing (apt-get install libc6-dev)" >&2; exit 2; }
for p in host-local loopback; do
    [[ -x /usr/lib/cni/$p ]] || { echo "/usr/lib/cni/$p is missing (apt-get install containernetworking-plugins)" >&2; exit 2; }
done
PY=${CRI_PYTHON:-$CF_REPO/.venv/bin/python}
"$PY" -c 'import grpc, google.protobuf' 2>/dev/null ||
    { echo "$PY cannot import grpc and google.protobuf: set CRI_PYTHON to a python with grpcio and protobuf" >&2; exit 2; }
cf_init cr

# --- private layout ---------------------------------------------------------------------------
CTRD=$CF_TMP/ctrd                 # containerd's config, root, state, socket, runc root, log
SOCK=$CTRD/c.sock
BIN=$CF_TMP/bin                   # the CRI plugin's CNI bin_dir
NETD=$CF_TMP/net.d                # ... and conf_dir
HDDATA=$CF_TMP/hd-data            # the plugin's dataDir
IPAMDATA=$CF_TMP/ipam             # host-local's dataDir
CALLS=$CF_TMP/calls.log           # one line per plugin run: COMMAND CONTAINERID NETNS
NET=${CF_TAG}-net
IMG=localhost/${CF_TAG}-pause:1
PROTO=$CF_TMP/runtime-v1.pb
mkdir -p "$CTRD"/{root,state,runc,opt} "$BIN" "$NETD" "$HDDATA" "$IPAMDATA" "$CF_TMP/plugin" "$CF_TMP/logs"
HOLDER="" CTRD_PID=""

# The plugin under test, as `host-device`, behind a two-line wrapper that logs each run (which
# command for which sandbox, with which netns) and execs it; the reference IPAM plugins by its side.
cp "$CF_PLUGIN" "$CF_TMP/plugin/host-device"
cat >"$BIN/host-device" <<EOF
#!/bin/bash
printf '%s %s %s\n' "\${CNI_COMMAND:-}" "\${CNI_CONTAINERID:-}" "\${CNI_NETNS:--}" >>"$CALLS"
exec -a "\$0" "$CF_TMP/plugin/host-device" "\$@"
EOF
chmod 755 "$BIN/host-device"
for p in host-local loopback static; do ln -s "/usr/lib/cni/$p" "$BIN/$p"; done
touch "$CALLS"

cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$IMG"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
        Root = "$CTRD/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$BIN"
    conf_dir = "$NETD"
    max_conf_num = 1
EOF

# --- the private mount namespace, containerd, teardown ----------------------------------------
# The holder (a `sleep`) keeps a mount namespace where /run and /var/lib are tmpfs mounts holding
# every entry of the host's /run and /var/lib bound back one by one, except two: /run/containerd
# (an empty dir: containerd 1.6's shims put their sockets in /run/containerd/s whatever the
# config says) and /var/lib/cni (libcni's result cache, which containerd cannot move: a private
# dir). So the plugin's /run/cni-hostdev is the host's, and the machine's /run/containerd and
# /var/lib/containerd are never touched. Mounts made in it (rootfs overlays, the pods' netns bind
# mounts under the state dir) never reach the host's namespace. containerd, restarted or not,
# runs in it.
HOLDER_SCRIPT='set -e
D=$1
# private_child PARENT CHILD: PARENT becomes a tmpfs with the host entries bound back, CHILD new.
private_child() {
    host=$D/host${1//\//-}
    mkdir -p "$host"
    mount --rbind "$1" "$host"
    mount -t tmpfs -o mode=755 tcr-private "$1"
    for e in "$host"/* "$host"/.[!.]*; do
        [ -e "$e" ] || [ -L "$e" ] || continue
        n=${e##*/}
        [ "$n" = "$2" ] && continue
        if [ -L "$e" ]; then cp -P "$e" "$1/$n"
        elif [ -d "$e" ]; then mkdir -p "$1/$n"; mount --rbind "$e" "$1/$n"
        else touch "$1/$n"; mount --bind "$e" "$1/$n"; fi
    done
    mkdir -p "$1/$2"
}
private_child /run containerd
private_child /var/lib cni
: >"$D/holder.ready"
exec sleep 100000'

start_holder() {
    unshare --mount --propagation slave -- bash -c "$HOLDER_SCRIPT" holder "$CTRD" </dev/null >"$CTRD/holder.log" 2>&1 &
    HOLDER=$!
    wait_until 10 test -e "$CTRD/holder.ready" || { echo "mount namespace set-up failed: $(cat "$CTRD/holder.log")" >&2; exit 2; }
}

# in_ctrd CMD...: CMD in containerd's mount namespace.
in_ctrd() { nsenter -t "$HOLDER" -m -- "$@"; }
# in_pod NETNS CMD...: CMD in a pod's network namespace (NETNS: its path, a mount of containerd's).
in_pod() { local ns=$1; shift; nsenter -t "$HOLDER" -m -- nsenter --net="$ns" -- "$@"; }

cri() { "$PY" "$HERE/cri.py" call --sock "$SOCK" --proto "$PROTO" --timeout "${CRI_TIMEOUT:-60}" "$@"; }

start_containerd() {
    nsenter -t "$HOLDER" -m -- containerd --config "$CTRD/config.toml" </dev/null >>"$CTRD/containerd.log" 2>&1 &
    CTRD_PID=$!
    wait_until 20 eval 'cri Version "{}" >/dev/null 2>&1' ||
        { echo "containerd did not answer: $(tail -n 5 "$CTRD/containerd.log")" >&2; return 1; }
}

# pids_of_run: the shims serving our socket and their children (the pods' pause processes).
pids_of_run() {
    local d pid stat rest ppid shims=" "
    local -A parent=()
    for d in /proc/[0-9]*; do
        pid=${d#/proc/}
        stat=$(<"$d/stat") 2>/dev/null || continue
        rest=${stat##*) }           # after "pid (comm) ": state ppid …
        ppid=${rest#* }
        parent[$pid]=${ppid%% *}
        [[ $(tr '\0' ' ' <"$d/cmdline" 2>/dev/null) == *"-address $SOCK "* ]] && shims+="$pid "
    done
    for pid in "${!parent[@]}"; do
        [[ $shims == *" $pid "* || $shims == *" ${parent[$pid]} "* ]] && echo "$pid"
    done
}

cri_teardown() {
    local id pid
    if [[ -n $CTRD_PID ]] && kill -0 "$CTRD_PID" 2>/dev/null; then
        # What kubelet would do last: stop (DEL: the devices come home) and remove every sandbox.
        for id in $(CRI_TIMEOUT=20 cri ListPodSandbox '{}' 2>/dev/null | jq -r '.items[]?.id'); do
            CRI_TIMEOUT=20 cri StopPodSandbox "{\"pod_sandbox_id\":\"$id\"}" >/dev/null 2>&1
            CRI_TIMEOUT=20 cri RemovePodSandbox "{\"pod_sandbox_id\":\"$id\"}" >/dev/null 2>&1
        done
        kill "$CTRD_PID" 2>/dev/null
        wait_until 5 eval '! kill -0 "$CTRD_PID" 2>/dev/null' || kill -9 "$CTRD_PID" 2>/dev/null
    fi
    [[ -n $CTRD_PID ]] && wait "$CTRD_PID" 2>/dev/null
    for pid in $(pids_of_run); do kill -9 "$pid" 2>/dev/null; done
    if [[ -n $HOLDER ]] && kill -0 "$HOLDER" 2>/dev/null; then
        in_ctrd sh -c "grep -o ' $CF_TMP/[^ ]*' /proc/self/mounts | sort -r | xargs -r -n1 umount -l" 2>/dev/null
        kill "$HOLDER" 2>/dev/null
        wait "$HOLDER" 2>/dev/null
    fi
    # runc's cgroups (cgroupfs) live under the pods' cgroup_parent, /<tag>/…
    local c
    for c in /sys/fs/cgroup/*/"$CF_TAG" /sys/fs/cgroup/"$CF_TAG"; do
        [[ -d $c ]] && wait_until 5 eval "find '$c' -depth -type d -exec rmdir {} + 2>/dev/null; [[ ! -d '$c' ]]"
    done
    grep -o " $CF_TMP/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
}
CF_EXIT_HOOKS+=("cri_teardown")

echo "# cri suite: plugin $CF_PLUGIN, $(containerd --version | awk '{print $1, $3}'), runc $(runc --version | awk 'NR==1{print $3}')"

# --- the CRI descriptor, the pause image, containerd up ------------------------------------------
"$PY" "$HERE/cri.py" proto --containerd "$(command -v containerd)" --out "$PROTO" ||
    { echo "could not extract the runtime.v1 descriptor from containerd" >&2; exit 2; }
gcc -static -Os -s -o "$CF_TMP/pause" "$HERE/pause.c" || { echo "building pause failed" >&2; exit 2; }
"$PY" "$HERE/cri.py" image --pause "$CF_TMP/pause" --name "$IMG" --out "$CF_TMP/pause.tar" || exit 2
start_holder
start_containerd || exit 2
ctr -a "$SOCK" -n k8s.io images import "$CF_TMP/pause.tar" >"$CF_TMP/import.log" 2>&1 ||
    { cat "$CF_TMP/import.log" >&2; echo "ctr images import failed" >&2; exit 2; }
wait_until 10 eval 'cri ImageStatus "{\"image\":{\"image\":\"$IMG\"}}" 2>/dev/null | jq -e .image.id >/dev/null' ||
    { echo "the CRI plugin does not see $IMG" >&2; exit 2; }

# --- helpers for the cases ------------------------------------------------------------------------
N=0
# new_case: a fresh veth end DEV (up, MTU 1450; sets MAC and MTU) made the network's device:
# the conflist is rewritten inside conf_dir (a rename there, which containerd reloads) and the
# suite waits until the CRI plugin reports it loaded.
new_case() {
    N=$((N + 1))
    DEV=${CF_TAG}d${N}
    cf_veth "$DEV" "${DEV}p" || { echo "setup failed" >&2; exit 3; }
    ip link set "$DEV" mtu 1450
    MAC=$(link_mac - "$DEV")
    MTU=$(link_mtu - "$DEV")
    cat >"$NETD/.next" <<EOF
{"cniVersion":"1.0.0","name":"$NET","plugins":[{"type":"host-device","device":"$DEV","dataDir":"$HDDATA",
 "ipam":{"type":"host-local","subnet":"198.51.100.0/24","dataDir":"$IPAMDATA"}}]}
EOF
    mv "$NETD/.next" "$NETD/10-$NET.conflist"
    wait_until 10 eval 'cri Status "{\"verbose\":true}" 2>/dev/null | jq -e --arg d "$DEV" "$LOADED_DEVICES | index(\$d)" >/dev/null' ||
        { echo "containerd did not load the config for $DEV" >&2; exit 3; }
}

# The `device` of every network the CRI plugin has loaded (Status' verbose info).
LOADED_DEVICES='[.info.cniconfig // "{}" | fromjson | .Networks[]?.Config.Source | fromjson | .plugins[]?.device]'

# pod_config NAME UID ATTEMPT: a PodSandboxConfig as kubelet sends it (cgroupfs parent, pod netns).
pod_config() {
    jq -nc --arg name "$1" --arg uid "$2" --argjson attempt "$3" --arg ns "$CF_TAG" \
        --arg logs "$CF_TMP/logs/$2" --arg cg "/$CF_TAG/pod$2" '{config: {
        metadata: {name: $name, uid: $uid, namespace: $ns, attempt: $attempt},
        hostname: $name, log_directory: $logs, dns_config: {},
        labels: {"io.kubernetes.pod.name": $name, "io.kubernetes.pod.namespace": $ns, "io.kubernetes.pod.uid": $uid},
        annotations: {"kubernetes.io/config.source": "api"},
        linux: {cgroup_parent: $cg, security_context: {namespace_options: {network: 0, pid: 1, ipc: 0}}}}}'
}

# run_pod NAME UID ATTEMPT: RunPodSandbox; sets POD (its id) or ERR (what the client saw).
run_pod() {
    local out
    POD="" ERR=""
    if out=$(cri RunPodSandbox "$(pod_config "$@")" 2>"$CF_TMP/err"); then
        POD=$(jq -r .pod_sandbox_id <<<"$out")
    else
        ERR=$(tr '\n' ' ' <"$CF_TMP/err")
        ERR=${ERR% }
    fi
}

# pod_status ID: PodSandboxStatus (verbose); sets STATE, POD_IP, POD_PID, POD_NETNS.
pod_status() {
    local out info
    STATE="" POD_IP="" POD_PID="" POD_NETNS=""
    out=$(cri PodSandboxStatus "{\"pod_sandbox_id\":\"$1\",\"verbose\":true}" 2>"$CF_TMP/err") || return 1
    STATE=$(jq -r '.status.state // "SANDBOX_READY"' <<<"$out")   # proto3: the zero value is omitted
    POD_IP=$(jq -r '.status.network.ip // empty' <<<"$out")
    info=$(jq -r '.info.info // empty' <<<"$out")
    POD_PID=$(jq -r '.pid // empty' <<<"$info" 2>/dev/null)
    POD_NETNS=$(jq -r '.runtimeSpec.linux.namespaces[]? | select(.type == "network") | .path // empty' <<<"$info" 2>/dev/null)
}

# stop_pod ID / remove_pod ID: set ERR to what the client saw (empty on success).
stop_pod() { sandbox_call StopPodSandbox "$1"; }
remove_pod() { sandbox_call RemovePodSandbox "$1"; }
sandbox_call() {
    local rc
    cri "$1" "{\"pod_sandbox_id\":\"$2\"}" >/dev/null 2>"$CF_TMP/err"
    rc=$?
    ERR=$(tr '\n' ' ' <"$CF_TMP/err")
    ERR=${ERR% }
    ((rc == 0)) || ERR=${ERR:-"exit $rc"}
    return $rc
}
listed() { cri ListPodSandbox '{}' 2>/dev/null | jq -e --arg id "$1" '.items[]? | select(.id == $id)' >/dev/null; }

# in_pod_check ID: sets WHY to why pod ID does not hold DEV as eth0 (MAC, up, MTU) with the IP
# the CRI reports (in our subnet) and the host-local lease on file; empty when all holds. Runs in
# the calling shell, so STATE, POD_IP, POD_PID and POD_NETNS stay set for the caller.
in_pod_check() {
    WHY=""
    pod_status "$1" || { WHY="PodSandboxStatus failed: $(cat "$CF_TMP/err")"; return; }
    WHY=$(in_pod_problem)
}
in_pod_problem() {
    [[ $POD_IP == 198.51.100.* ]] || { echo "PodSandboxStatus network ip is '$POD_IP', expected one of 198.51.100.0/24"; return; }
    [[ -n $POD_NETNS ]] || { echo "no network namespace path in PodSandboxStatus' info"; return; }
    local link addr
    link=$(in_pod "$POD_NETNS" ip -o link show dev eth0 2>&1) ||
        { echo "no eth0 in the pod's netns: $(in_pod "$POD_NETNS" ip -br link 2>&1 | tr '\n' ' ')"; return; }
    grep -q "link/ether $MAC " <<<"$link" || { echo "eth0 in the pod is not DEV (MAC $MAC): $link"; return; }
    grep -qE '<([^>]*,)?UP[,>]' <<<"$link" || { echo "eth0 is not up in the pod"; return; }
    grep -q "mtu $MTU " <<<"$link" || { echo "eth0 in the pod does not have MTU $MTU: $link"; return; }
    addr=$(in_pod "$POD_NETNS" ip -o -4 addr show dev eth0 2>&1)
    grep -q "inet $POD_IP/24 " <<<"$addr" || { echo "eth0 in the pod lacks $POD_IP/24: $addr"; return; }
    link_exists - "$DEV" && { echo "$DEV is still in the host"; return; }
    [[ -f $IPAMDATA/$NET/$POD_IP ]] || echo "no host-local lease $IPAMDATA/$NET/$POD_IP"
}

# home_problem [NAME]: echoes why DEV is not home as NAME (default DEV) with its MAC, MTU and up
# state (checked in that order: a reason about the up state means all the rest holds).
home_problem() {
    local name=${1:-$DEV}
    link_exists - "$name" || { echo "$name is not back in the host"; return; }
    [[ $(link_mac - "$name") == "$MAC" ]] || { echo "host $name has MAC $(link_mac - "$name"), expected $MAC"; return; }
    [[ $(link_mtu - "$name") == "$MTU" ]] || { echo "host $name has MTU $(link_mtu - "$name"), expected $MTU"; return; }
    link_is_up - "$name" || echo "host $name came back down (it was up)"
}

# name_of_mac MAC: the host link carrying MAC (empty when none).
name_of_mac() { ip -o link show 2>/dev/null | awk -v m="$1" '$0 ~ "link/ether " m " " {sub(/@.*/, "", $2); sub(/:$/, "", $2); print $2; exit}'; }

# calls_for ID: the plugin runs containerd made for sandbox ID, as "CMD(netns)" words.
calls_for() {
    awk -v id="$1" '$2 == id {printf "%s%s(%s)", sep, $1, ($3 == "-" ? "no netns" : "netns"); sep = " "}' "$CALLS"
}
seen() { echo "#   seen: $*"; }

# ---------------------------------------------------------------------------------------------
# cri/run-pod: RunPodSandbox puts DEV into the pod as eth0 with the pod's IP; StopPodSandbox
# brings it home (name, MAC, MTU, up) and releases the lease; a second Stop (kubelet repeats it)
# and RemovePodSandbox succeed.
new_case
run_pod "${CF_TAG}-pod1" "${CF_TAG}-uid1" 0
why=""
[[ -n $POD ]] || why="RunPodSandbox failed: $ERR"
[[ -z $why ]] && { in_pod_check "$POD"; why=$WHY; }
verdict "cri/run-pod-device-in-pod" "$why"
if [[ -n $POD ]]; then
    ip1=$POD_IP
    why=""
    stop_pod "$POD" || why="StopPodSandbox failed: $ERR"
    [[ -z $why ]] && why=$(home_problem)
    [[ -z $why && -n $ip1 && -e $IPAMDATA/$NET/$ip1 ]] && why="host-local lease $ip1 not released"
    verdict "cri/stop-pod-device-home" "$why"
    why=""
    stop_pod "$POD" || why="second StopPodSandbox failed: $ERR"
    [[ -z $why ]] && why=$(home_problem)
    verdict "cri/stop-pod-again" "$why"
    why=""
    remove_pod "$POD" || why="RemovePodSandbox failed: $ERR"
    [[ -z $why ]] && listed "$POD" && why="sandbox still listed after RemovePodSandbox"
    [[ -z $why ]] && why=$(home_problem)
    verdict "cri/remove-pod" "$why"
    seen "plugin runs for the sandbox: $(calls_for "$POD")"
else
    fail "cri/stop-pod-device-home" "no pod (RunPodSandbox failed)"
    fail "cri/stop-pod-again" "no pod (RunPodSandbox failed)"
    fail "cri/remove-pod" "no pod (RunPodSandbox failed)"
fi

# ---------------------------------------------------------------------------------------------
# cri/second-pod-refused: while pod A holds DEV, RunPodSandbox of pod B fails and the error the
# CRI client sees names the holder (A's sandbox id); A keeps the device; B leaves no sandbox.
new_case
run_pod "${CF_TAG}-pod2a" "${CF_TAG}-uid2a" 0
A=$POD
if [[ -z $A ]]; then
    fail "cri/second-pod-refused-names-holder" "first pod: RunPodSandbox failed: $ERR"
    fail "cri/refused-pod-leaves-holder-alone" "first pod: RunPodSandbox failed: $ERR"
else
    run_pod "${CF_TAG}-pod2b" "${CF_TAG}-uid2b" 0
    B=$POD
    why=""
    if [[ -n $B ]]; then
        why="the second RunPodSandbox succeeded (sandbox $B)"
    else
        seen "RunPodSandbox error for the second pod: $ERR"
        [[ $ERR == *"$A"* ]] || why="the error does not name the holding sandbox $A: $ERR"
    fi
    verdict "cri/second-pod-refused-names-holder" "$why"
    if [[ -z $B ]]; then
        failed_id=$(grep -o 'failed to setup network for sandbox \\\?"[0-9a-f]*' <<<"$ERR" | grep -o '[0-9a-f]\{64\}' | head -n1)
        [[ -n $failed_id ]] && seen "plugin runs for the refused sandbox: $(calls_for "$failed_id")"
    fi
    in_pod_check "$A"; why=$WHY
    [[ -z $why && -z $B ]] && cri ListPodSandbox '{}' | jq -e --arg n "${CF_TAG}-pod2b" '.items[]? | select(.metadata.name == $n)' >/dev/null &&
        why="the refused pod's sandbox is still listed"
    verdict "cri/refused-pod-leaves-holder-alone" "$why"
    [[ -n $B ]] && { stop_pod "$B"; remove_pod "$B"; }
    why=""
    stop_pod "$A" || why="StopPodSandbox of the holder failed: $ERR"
    remove_pod "$A" || why=${why:-"RemovePodSandbox of the holder failed: $ERR"}
    [[ -z $why ]] && why=$(home_problem)
    verdict "cri/holder-stopped-device-home" "$why"
fi

# ---------------------------------------------------------------------------------------------
# cri/containerd-killed: containerd dies (SIGKILL) under a running pod and is started again; the
# pod is still there and ready with its device; Stop and Remove still work and DEV comes home.
new_case
run_pod "${CF_TAG}-pod3" "${CF_TAG}-uid3" 0
if [[ -z $POD ]]; then
    fail "cri/containerd-killed-pod-survives" "RunPodSandbox failed: $ERR"
    fail "cri/containerd-killed-stop-device-home" "RunPodSandbox failed: $ERR"
else
    pod_status "$POD"
    ip3=$POD_IP
    kill -9 "$CTRD_PID"
    wait "$CTRD_PID" 2>/dev/null
    why=""
    start_containerd || why="containerd did not come back"
    if [[ -z $why ]]; then
        wait_until 10 eval 'cri Status "{}" 2>/dev/null | jq -e ".status.conditions[] | select(.type == \"NetworkReady\" and .status == true)" >/dev/null' ||
            why="the CRI plugin's network is not ready after the restart"
    fi
    [[ -z $why ]] && { in_pod_check "$POD"; why=$WHY; }
    [[ -z $why && $STATE != SANDBOX_READY ]] && why="sandbox is $STATE after the restart"
    [[ -z $why && $POD_IP != "$ip3" ]] && why="pod IP changed across the restart: $ip3 → $POD_IP"
    verdict "cri/containerd-killed-pod-survives" "$why"
    why=""
    stop_pod "$POD" || why="StopPodSandbox after the restart failed: $ERR"
    remove_pod "$POD" || why=${why:-"RemovePodSandbox after the restart failed: $ERR"}
    [[ -z $why ]] && why=$(home_problem)
    [[ -z $why && -e $IPAMDATA/$NET/$ip3 ]] && why="host-local lease $ip3 not released"
    verdict "cri/containerd-killed-stop-device-home" "$why"
    seen "plugin runs for the sandbox: $(calls_for "$POD")"
fi

# ---------------------------------------------------------------------------------------------
# cri/pause-killed: the sandbox's pause process dies (kill -9); as kubelet does, StopPodSandbox of
# the dead sandbox (its netns still mounted: DEL brings DEV home), then a new RunPodSandbox for
# the same pod (same name, namespace, uid; attempt 1) gets DEV; then Stop/Remove both, DEV home.
new_case
run_pod "${CF_TAG}-pod4" "${CF_TAG}-uid4" 0
OLD=$POD
if [[ -z $OLD ]]; then
    for v in pause-killed-stop-device-home pause-killed-rerun-gets-device pause-killed-rerun-stop-device-home; do
        fail "cri/$v" "RunPodSandbox failed: $ERR"
    done
else
    pod_status "$OLD"
    why=""
    if [[ -z $POD_PID ]] || ! kill -9 "$POD_PID"; then
        why="no pause pid to kill ($POD_PID)"
    else
        wait_until 10 eval 'pod_status "$OLD"; [[ $STATE == SANDBOX_NOTREADY ]]' ||
            why="sandbox still $STATE 10 s after its pause process died"
    fi
    [[ -z $why ]] && { stop_pod "$OLD" || why="StopPodSandbox of the dead sandbox failed: $ERR"; }
    [[ -z $why ]] && why=$(home_problem)
    verdict "cri/pause-killed-stop-device-home" "$why"
    run_pod "${CF_TAG}-pod4" "${CF_TAG}-uid4" 1
    NEW=$POD
    why=""
    [[ -n $NEW ]] || why="RunPodSandbox attempt 1 failed: $ERR"
    [[ -z $why ]] && { in_pod_check "$NEW"; why=$WHY; }
    verdict "cri/pause-killed-rerun-gets-device" "$why"
    why=""
    if [[ -n $NEW ]]; then
        stop_pod "$NEW" || why="StopPodSandbox of the new sandbox failed: $ERR"
        remove_pod "$NEW" || why=${why:-"RemovePodSandbox of the new sandbox failed: $ERR"}
    fi
    remove_pod "$OLD" || why=${why:-"RemovePodSandbox of the dead sandbox failed: $ERR"}
    [[ -z $why ]] && why=$(home_problem)
    verdict "cri/pause-killed-rerun-stop-device-home" "$why"
    seen "plugin runs for the dead sandbox: $(calls_for "$OLD"); for the new one: $(calls_for "$NEW")"
fi

# ---------------------------------------------------------------------------------------------
# cri/name-taken: while the pod runs, a "squatter" link takes DEV's name in the host. Stop must
# succeed at its first try, with DEV home under a fallback name (found by MAC) with its MTU, MAC,
# altname and up state, the squatter untouched. Once the squatter is gone, `PLUGIN repair --once
# --data-dir DIR` gives DEV its name back.
new_case
ALT=${DEV}x
ip link property add dev "$DEV" altname "$ALT" || { echo "could not give $DEV the altname $ALT" >&2; exit 3; }
run_pod "${CF_TAG}-pod5" "${CF_TAG}-uid5" 0
P5=$POD
why=""
if [[ -z $P5 ]]; then
    why="RunPodSandbox failed: $ERR"
else
    in_pod_check "$P5"
    [[ -n $WHY ]] && why="the pod did not get DEV: $WHY"
fi
if [[ -n $why ]]; then
    for v in name-taken-stop-first-try name-taken-device-home-squatter-untouched name-taken-next-pod-gets-the-device \
        name-taken-repair-restores-name; do
        fail "cri/$v" "$why"
    done
    [[ -n $P5 ]] && { stop_pod "$P5"; remove_pod "$P5"; }
else
    SQ_PEER=${DEV}q
    ip link add "$DEV" type veth peer name "$SQ_PEER" || { echo "could not create the squatter $DEV" >&2; exit 3; }
    CF_LINKS+=("$SQ_PEER")
    sq_mac=$(link_mac - "$DEV")
    sq_idx=$(ip -o link show dev "$DEV" | cut -d: -f1)
    why=""
    stop_pod "$P5" || why="StopPodSandbox failed at its first try: $ERR"
    first_err=$ERR
    seen "StopPodSandbox (name taken) answered: ${first_err:-success}"
    if [[ -n $first_err ]]; then
        pod_status "$P5"
        seen "after the failed Stop: sandbox $(listed "$P5" && echo "still listed, $STATE" || echo "gone"), DEV $(
            in_pod "$POD_NETNS" ip -o link show dev eth0 >/dev/null 2>&1 && echo "still eth0 in the pod" || echo "not in the pod")"
    fi
    verdict "cri/name-taken-stop-first-try" "$why"
    # DEV home under another name, the squatter untouched.
    why=""
    if [[ -n $first_err ]]; then
        why="not home: StopPodSandbox failed"
    else
        home=$(name_of_mac "$MAC")
        if [[ -z $home ]]; then
            why="DEV (MAC $MAC) is not in the host"
        else
            seen "DEV came home as $home"
            why=$(home_problem "$home")
            alts=$(ip -j -d link show dev "$home" | jq -r '.[0].altnames // [] | join(" ")')
            [[ -z $why && $alts != "$ALT" ]] && why="host $home has altnames [$alts], expected [$ALT]"
        fi
    fi
    sq_now=$(ip -o link show dev "$DEV" 2>/dev/null)
    [[ -z $why && ( $(cut -d: -f1 <<<"$sq_now") != "$sq_idx" || $sq_now != *"link/ether $sq_mac "* ) ]] &&
        why="the squatter $DEV was changed: ${sq_now:-gone}"
    verdict "cri/name-taken-device-home-squatter-untouched" "$why"
    # A new pod while DEV waits for its name: it gets DEV, by identity, not the squatter that now
    # carries DEV's name (kubelet removes the old sandbox first).
    why=""
    if [[ -n $first_err ]]; then
        why="not reached: StopPodSandbox failed"
    else
        remove_pod "$P5" && P5_REMOVED=1 || seen "RemovePodSandbox: $ERR"
        run_pod "${CF_TAG}-pod6" "${CF_TAG}-uid6" 0
        P6=$POD
        if [[ -z $P6 ]]; then
            why="RunPodSandbox failed: $ERR"
        else
            pod_status "$P6"
            link=$(in_pod "$POD_NETNS" ip -o link show dev eth0 2>&1)
            grep -q "link/ether $MAC " <<<"$link" || why="eth0 in the new pod is not DEV (MAC $MAC): $link"
            sq_now=$(ip -o link show dev "$DEV" 2>/dev/null)
            [[ -z $why && ( $(cut -d: -f1 <<<"$sq_now") != "$sq_idx" || $sq_now != *"link/ether $sq_mac "* ) ]] &&
                why="the squatter $DEV was taken or changed: ${sq_now:-gone}"
            stop_pod "$P6" || why=${why:-"StopPodSandbox of the new pod failed: $ERR"}
            remove_pod "$P6" || seen "RemovePodSandbox: $ERR"
            seen "after the new pod, DEV is home as $(name_of_mac "$MAC") again, waiting"
        fi
    fi
    verdict "cri/name-taken-next-pod-gets-the-device" "$why"
    # The squatter leaves; repair gives DEV its name back.
    ip link del "$SQ_PEER"
    wait_until 5 eval '! link_exists - "$DEV" || [[ $(link_mac - "$DEV") == "$MAC" ]]'
    why=""
    if [[ -n $first_err ]]; then
        why="not reached: StopPodSandbox failed"
    else
        out=$(timeout 60 "$CF_TMP/plugin/host-device" repair --once --data-dir "$HDDATA" </dev/null 2>&1)
        rc=$?
        seen "repair --once: exit $rc: $(tr '\n' ' ' <<<"$out" | head -c 300)"
        ((rc == 0)) || why="repair --once exit $rc: $(tr '\n' ' ' <<<"$out" | head -c 300)"
        [[ -z $why ]] && why=$(home_problem)
        [[ -n $why ]] && why+=" (DEV is now $(name_of_mac "$MAC"))"
    fi
    verdict "cri/name-taken-repair-restores-name" "$why"
    # Whatever happened: the sandbox must go (a failed Stop is retried with the name now free).
    if [[ -n $first_err ]]; then
        stop_pod "$P5" && seen "StopPodSandbox retried with the name free: success" ||
            seen "StopPodSandbox retried with the name free: $ERR"
    fi
    [[ -n ${P5_REMOVED:-} ]] || remove_pod "$P5" || seen "RemovePodSandbox: $ERR"
    seen "plugin runs for the sandbox: $(calls_for "$P5")"
fi

cf_summary
