#!/usr/bin/env bash
# ADD -> CHECK -> DEL of a throwaway veth end into a throwaway netns, printing what each step prints.
set -euo pipefail
plugin=$(realpath "${1:-dist/host-device}")
tag="tdemo$$"
dev="${tag}a" peer="${tag}b" ns="${tag}ns" state=$(mktemp -d)
cleanup() {
    ip netns del "$ns" 2>/dev/null || true
    ip link del "$dev" 2>/dev/null || true
    rm -rf "$state"
}
trap cleanup EXIT
ip link add "$dev" type veth peer name "$peer"
ip link set "$dev" up
ip netns add "$ns"
conf=$(printf '{"cniVersion":"1.1.0","name":"demo","type":"host-device","device":"%s","dataDir":"%s"}' "$dev" "$state")
export CNI_CONTAINERID="demo-$$" CNI_NETNS="/run/netns/$ns" CNI_IFNAME=net1 CNI_PATH=/opt/cni/bin

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "host before:"; ip -br link show "$dev"
step "ADD ($dev -> $ns as net1):"
result=$(CNI_COMMAND=ADD "$plugin" <<<"$conf"); echo "$result"
step "in the pod:"; ip netns exec "$ns" ip -br link show net1
ip netns exec "$ns" ip link show net1 | grep -o 'alias .*' || true
step "host now (no $dev):"; ip -br link show "$dev" 2>&1 || true
check_conf=$(printf '%s' "$conf" | sed "s|}\$|,\"prevResult\":$result}|")
step "CHECK:"; CNI_COMMAND=CHECK "$plugin" <<<"$check_conf" && echo "(exit 0, no output: all good)"
step "DEL:"; CNI_COMMAND=DEL "$plugin" <<<"$conf" && echo "(exit 0)"
step "host after ($dev is back, up again):"; ip -br link show "$dev"
step "DEL again (idempotent):"; CNI_COMMAND=DEL "$plugin" <<<"$conf" && echo "(exit 0)"
