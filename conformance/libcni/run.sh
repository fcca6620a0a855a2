#!/usr/bin/env bash
# libcni client suite: runs .conflist chains through our own small libcni program
# (libcni/cniclient, libcni 1.1.2 from Debian) the way container runtimes do, over a matrix of
# cniVersion × IPAM × chaining with tuning × deviceID capability, and checks the real state
# with `ip` after every step.
#
#   conformance/libcni/run.sh [--plugin PATH]      (root; default PATH: dist/host-device)
#
# The plugin under test is copied as "host-device" into a private plugin dir that comes
# before /usr/lib/cni (static, host-local, tuning, loopback) in CNI_PATH.
# Last line: "N passed, M failed, K skipped".
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
cf_plugin_args "$@"
cf_init lc
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is missing (apt-get install jq)" >&2; exit 2; }

# --- build the client (GOPATH mode, offline, against Debian's libcni sources) ----------------
CLIENT=$CF_BUILD/cniclient
SRC=$CF_ROOT/libcni/cniclient
if [[ ! -x $CLIENT || $SRC/main.go -nt $CLIENT ]]; then
    command -v go >/dev/null || { echo "go is missing (apt-get install golang-go golang-github-appc-cni-dev)" >&2; exit 2; }
    [[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ]] ||
        { echo "libcni sources missing (apt-get install golang-github-appc-cni-dev)" >&2; exit 2; }
    mkdir -p "$CF_BUILD"
    (cd "$SRC" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$CF_BUILD/gocache GOFLAGS='' \
        go build -o "$CLIENT" .) || { echo "building cniclient failed" >&2; exit 2; }
fi

BIN=$(cf_bindir)
CNIPATH=$BIN:/usr/lib/cni
CACHE=$CF_TMP/cache
DATA=$CF_TMP/data
HL=$CF_TMP/hostlocal
echo "# libcni suite: plugin $CF_PLUGIN, client $CLIENT (libcni 1.1.2), CNI_PATH $CNIPATH"
N=0

new_case() { cf_new_case; }

# client CMD CONFLIST [flags…]: sets OUT and RC.
client() {
    local cmd=$1 list=$2
    shift 2
    OUT=$("$CLIENT" -conflist "$list" -path "$CNIPATH" -cache "$CACHE" -netns "$NETNS" \
        -ifname "$IFN" -id "$CID" "$@" "$cmd" 2>"$CF_TMP/stderr")
    RC=$?
}
j() { jq -r "$@" <<<"$OUT" 2>/dev/null; }
errmsg() { local e; e=$(j '.error // empty'); echo "${e:-$OUT}" | head -c 300; }

HD_STATIC='"ipam":{"type":"static","addresses":[{"address":"192.0.2.20/24","gateway":"192.0.2.254"}]}'
HD_HOSTLOCAL="\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"$HL\",\"ranges\":[[{\"subnet\":\"192.0.2.0/24\",\"rangeStart\":\"192.0.2.100\",\"rangeEnd\":\"192.0.2.120\"}]]}"
TUNE_MAC=02:00:5e:10:00:42

# conflist VERSION VARIANT → path of a .conflist for DEV.
conflist() {
    local v=$1 variant=$2 hd plugins
    hd="{\"type\":\"host-device\",\"device\":\"$DEV\",\"dataDir\":\"$DATA\""
    case $variant in
        plain) plugins="$hd}" ;;
        static) plugins="$hd,$HD_STATIC}" ;;
        host-local) plugins="$hd,$HD_HOSTLOCAL}" ;;
        before-tuning) plugins="$hd,$HD_STATIC},{\"type\":\"tuning\",\"mtu\":1400,\"mac\":\"$TUNE_MAC\"}" ;;
        after-tuning) plugins="{\"type\":\"loopback\"},{\"type\":\"tuning\",\"sysctl\":{\"net.core.somaxconn\":\"777\"}},$hd,$HD_STATIC}" ;;
        deviceid) plugins="{\"type\":\"host-device\",\"dataDir\":\"$DATA\",\"capabilities\":{\"deviceID\":true}}" ;;
    esac
    local f=$CF_TMP/$v-$variant-$N.conflist
    printf '{"cniVersion":"%s","name":"tcflibcni-%s","plugins":[%s]}\n' "$v" "$variant" "$plugins" >"$f"
    echo "$f"
}

# run_lifecycle NAME VERSION VARIANT: ADD → state → CHECK → DEL → state; one verdict.
run_lifecycle() {
    local name=$1 v=$2 variant=$3 list why="" cidr="" mac addr
    new_case
    list=$(conflist "$v" "$variant")
    client add "$list"
    local add_out=$OUT
    if ((RC != 0)); then
        why="ADD: $(errmsg)"
    else
        mac=$MAC
        [[ $variant == before-tuning ]] && mac=$TUNE_MAC
        case $variant in
            static | before-tuning | after-tuning) cidr=192.0.2.20/24 ;;
            host-local) cidr=$(j '[.ips[] | select(.address | startswith("192.0.2."))][0].address') ;;
        esac
        [[ $(j .cniVersion) == "$v" ]] || why="result cniVersion $(j .cniVersion), expected $v"
        [[ -z $why ]] && ! jq -e --arg n "$IFN" --arg s "$NETNS" 'any(.interfaces[]; .name == $n and .sandbox == $s)' >/dev/null <<<"$add_out" &&
            why="result has no interface $IFN with sandbox $NETNS: $(j -c .interfaces)"
        [[ -z $why ]] && why=$(expect_in_pod "$NS" "$IFN" "$mac" "$cidr")
        [[ -z $why ]] && link_exists - "$DEV" && why="$DEV is still in the host"
        if [[ -z $why && $variant == before-tuning ]]; then
            [[ $(link_mtu "$NS" "$IFN") == 1400 ]] || why="tuning's MTU 1400 not applied ($(link_mtu "$NS" "$IFN"))"
        fi
        if [[ -z $why && $variant == after-tuning ]]; then
            [[ $(ip netns exec "$NS" cat /proc/sys/net/core/somaxconn) == 777 ]] || why="tuning's sysctl not applied"
            local idx
            idx=$(j --arg n "$IFN" '[.interfaces[].name] | index($n)')
            [[ -z $why && $(j -c '[.interfaces[].name]') != '["lo","net1"]' ]] && why="result interfaces $(j -c '[.interfaces[].name]'), expected [lo, net1] (prevResult kept)"
            [[ -z $why ]] && ! jq -e --argjson i "${idx:-null}" 'any(.ips[]; .address == "192.0.2.20/24" and .interface == $i)' >/dev/null <<<"$add_out" &&
                why="result ips $(j -c .ips): 192.0.2.20/24 should point at interface $idx"
        fi
        if [[ -z $why && $v != 0.3.* ]]; then
            client check "$list"
            ((RC == 0)) || why="CHECK: $(errmsg)"
        fi
    fi
    client del "$list"
    if [[ -z $why ]] && ((RC != 0)); then why="DEL: $(errmsg)"; fi
    if [[ -z $why ]]; then
        why=$(expect_home "$DEV" "$MAC" any)
        [[ -z $why && $(link_mtu - "$DEV") != "$MTU" ]] && why="host $DEV came back with MTU $(link_mtu - "$DEV"), expected $MTU"
        [[ -z $why ]] && link_exists "$NS" "$IFN" && why="$IFN still in the pod after DEL"
        [[ -z $why && $variant == host-local && -e $HL/tcflibcni-host-local/${cidr%/*} ]] && why="host-local allocation ${cidr%/*} not released"
    fi
    verdict "$name" "$why"
    if [[ $variant == plain ]]; then
        # A runtime may call DEL again (kubelet retries, podman cleanup): it must succeed.
        client del "$list"
        verdict "libcni/$v/plain/del-again" "$( ((RC == 0)) || echo "second DEL: $(errmsg)")"
    fi
}

# deviceID capability pointing at a PCI address that does not exist: a clean CNI error,
# code 100, naming the address; nothing moved.
run_deviceid_missing() {
    local name=$1 v=$2 list why="" addr=0000:00:1f.7
    new_case
    [[ -e /sys/bus/pci/devices/$addr ]] && { skip "$name" "PCI device $addr exists on this machine"; return; }
    list=$(conflist "$v" deviceid)
    client add "$list" -cap "deviceID=\"$addr\""
    if ((RC == 0)); then
        why="ADD succeeded: $OUT"
    elif [[ $(j '.code // empty') != 100 ]]; then
        why="expected CNI error code 100, got: $(j -c .)"
    elif ! grep -q "$addr" <<<"$(j .msg)"; then
        why="msg does not name $addr: $(j .msg)"
    fi
    [[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" up)
    [[ -z $why ]] && [[ -n $(ip -n "$NS" -o link show | grep -v ': lo:') ]] && why="something was moved into the pod"
    client del "$list" -cap "deviceID=\"$addr\""
    [[ -z $why ]] && ((RC != 0)) && why="DEL after the failed ADD: $(errmsg)"
    verdict "$name" "$why"
}

# libcni's ValidateNetworkList: every plugin of the list answers VERSION with the list's version.
run_validate() {
    local name=$1 v=$2 list
    new_case
    list=$(conflist "$v" plain)
    client validate "$list"
    verdict "$name" "$( ((RC == 0)) || echo "$(errmsg)")"
}

for V in 0.3.1 0.4.0 1.0.0; do
    run_validate "libcni/$V/validate" "$V"
    for variant in plain static host-local before-tuning after-tuning; do
        run_lifecycle "libcni/$V/$variant" "$V" "$variant"
    done
    run_deviceid_missing "libcni/$V/deviceID-missing-pci" "$V"
done

# --- cniVersion 1.1.0 -------------------------------------------------------------------------
# libcni 1.1.2 cannot parse a 1.1.0 result ("unsupported CNI result version"), and Debian's
# static/host-local/tuning 1.1.1 stop at 1.0.0. What a 1.1.2-based runtime can still do at
# 1.1.0: validate the list, get errors back, and DEL after a failed ADD — which must give the
# device back.
V=1.1.0
run_validate "libcni/$V/validate" "$V"
new_case
list=$(conflist "$V" plain)
client add "$list"
why=""
if ((RC == 0)); then
    why="libcni 1.1.2 accepted a 1.1.0 result?: $OUT"
elif ! grep -q 'unsupported CNI result version' <<<"$(errmsg)"; then
    why="ADD: $(errmsg)"
fi
client del "$list"
[[ -z $why ]] && ((RC != 0)) && why="DEL: $(errmsg)"
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "libcni/$V/plain/add-refused-by-client-then-del" "$why"
for variant in static host-local before-tuning after-tuning; do
    skip "libcni/$V/$variant" "skipped: reference plugin lacks 1.1.0 (Debian's static/host-local/tuning 1.1.1 stop at 1.0.0; libcni 1.1.2 cannot parse 1.1.0 results either)"
done
run_deviceid_missing "libcni/$V/deviceID-missing-pci" "$V"

cf_summary
