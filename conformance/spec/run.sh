#!/usr/bin/env bash
# Spec scenarios: the reference plugin's own test scenarios (plugins/main/host-device) and the
# CNI spec's MUSTs, run directly against the binary with CNI_* env vars and the config on stdin.
#
#   conformance/spec/run.sh [--plugin PATH]        (root; default PATH: dist/host-device)
#
# Each case prints "PASS name" or "FAIL name: why" (or "SKIP name: why"); the last line is
# "N passed, M failed, K skipped". Case names: ref/… ports a scenario of the reference plugin's
# test suite, spec/… a rule of the CNI spec, extra/… a behaviour beyond the spec (README).
set -uo pipefail
source "$(dirname "$0")/../lib.sh"
cf_plugin_args "$@"
cf_init sp
[[ $(id -u) == 0 ]] || { echo "run as root" >&2; exit 2; }
command -v jq >/dev/null || { echo "jq is missing (apt-get install jq)" >&2; exit 2; }

echo "# spec suite: plugin $CF_PLUGIN"
DATA=$CF_TMP/data
IPAM_PATH=/usr/lib/cni
N=0

new_case() { cf_new_case; }

# conf VERSION [EXTRA-JSON-MEMBERS] [NAME]: a host-device config for DEV.
conf() {
    printf '{"cniVersion":"%s","name":"%s","type":"host-device","device":"%s","dataDir":"%s"%s}' \
        "$1" "${3:-tcfspec}" "$DEV" "$DATA" "${2:+,$2}"
}

# cni CMD CONF [VAR=VALUE …]: runs the plugin; VAR=@unset removes VAR. Sets OUT, RC, ERRTXT.
cni() {
    local cmd=$1 conf=$2 kv k
    shift 2
    local -A e=([CNI_COMMAND]=$cmd [CNI_CONTAINERID]=$CID [CNI_NETNS]=$NETNS [CNI_IFNAME]=$IFN [CNI_PATH]=$IPAM_PATH)
    for kv in "$@"; do e[${kv%%=*}]=${kv#*=}; done
    local envs=("PATH=$PATH")
    for k in "${!e[@]}"; do [[ ${e[$k]} == @unset ]] || envs+=("$k=${e[$k]}"); done
    OUT=$(env -i "${envs[@]}" "$CF_PLUGIN" <<<"$conf" 2>"$CF_TMP/stderr")
    RC=$?
    ERRTXT=$(head -c 300 "$CF_TMP/stderr" | tr '\n' ' ')
}

# jq on OUT; empty when OUT is not JSON.
j() { jq -r "$@" <<<"$OUT" 2>/dev/null; }
short() { tr '\n' ' ' <<<"$OUT" | head -c 200; }

# is_error [CODE]: OUT is a CNI error object (integer code, string msg), exit status non-zero.
error_problem() {
    local want=${1:-}
    ((RC != 0)) || { echo "exit status 0, expected failure (stdout: $(short))"; return; }
    jq -e 'type == "object"' >/dev/null 2>&1 <<<"$OUT" || { echo "stdout is not a JSON object: $(short)"; return; }
    [[ $(j '.code | type') == number ]] || { echo "no integer code in $(short)"; return; }
    [[ $(j '.msg | type') == string && -n $(j '.msg') ]] || { echo "no msg in $(short)"; return; }
    [[ -z $want || $(j .code) == "$want" ]] || echo "code $(j .code) (msg: $(j .msg)), expected $want"
}

ok_problem() {
    ((RC == 0)) || echo "exit $RC: $(short) $ERRTXT"
}

with_prev() { jq -c --argjson r "$2" '. + {prevResult: $r}' <<<"$1"; }

# ---------------------------------------------------------------------------------------
# ref/add-del-no-ipam[V], spec/result-cniVersion[V], spec/interface-sandbox[V], ref/check-after-add[V]
for V in 0.3.0 0.3.1 0.4.0 1.0.0 1.1.0; do
    new_case
    C=$(conf "$V")
    cni ADD "$C"
    add_out=$OUT why=$(ok_problem)
    if [[ -n $why ]]; then
        fail "ref/add-del-no-ipam[$V]" "ADD: $why"
        fail "spec/result-cniVersion[$V]" "ADD failed"
        fail "spec/interface-sandbox[$V]" "ADD failed"
        [[ $V == 0.3.* ]] || fail "ref/check-after-add[$V]" "ADD failed"
        continue
    fi
    ifaces=$(j -c '[.interfaces[] | {name, mac, sandbox}]')
    want=$(jq -nc --arg n "$IFN" --arg m "$MAC" --arg s "$NETNS" '[{name: $n, mac: $m, sandbox: $s}]')
    why=""
    [[ $ifaces == "$want" ]] || why="result interfaces $ifaces, expected $want"
    [[ -z $why ]] && why=$(expect_in_pod "$NS" "$IFN" "$MAC")
    [[ -z $why ]] && link_exists - "$DEV" && why="$DEV is still in the host"
    res_version=$(j .cniVersion) sandbox=$(j '.interfaces[0].sandbox // empty')
    if [[ $V != 0.3.* ]]; then
        cni CHECK "$(with_prev "$C" "$add_out")"
        cwhy=$(ok_problem)
        [[ -z $cwhy && -n $OUT ]] && cwhy="CHECK printed output: $(short)"
        verdict "ref/check-after-add[$V]" "$cwhy"
    fi
    cni DEL "$C"
    [[ -z $why ]] && why=$(ok_problem)
    [[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
    [[ -z $why ]] && link_exists "$NS" "$IFN" && why="$IFN is still in the pod after DEL"
    verdict "ref/add-del-no-ipam[$V]" "$why"
    verdict "spec/result-cniVersion[$V]" "$([[ $res_version == "$V" ]] || echo "result cniVersion $res_version")"
    verdict "spec/interface-sandbox[$V]" "$([[ $sandbox == "$NETNS" ]] || echo "interface sandbox '$sandbox'")"
done

# ---------------------------------------------------------------------------------------
# ref/add-del-static-ipam[V]: static IPAM; address on the device in the pod; CHECK; DEL.
for V in 0.3.1 0.4.0 1.0.0 1.1.0; do
    name="ref/add-del-static-ipam[$V]"
    if [[ $V == 1.1.0 ]]; then
        skip "$name" "skipped: reference plugin lacks 1.1.0 (Debian's static IPAM 1.1.1 supports up to 1.0.0)"
        continue
    fi
    new_case
    C=$(conf "$V" '"ipam":{"type":"static","addresses":[{"address":"192.0.2.1/24","gateway":"192.0.2.254"}]}')
    cni ADD "$C"
    add_out=$OUT why=$(ok_problem)
    if [[ -z $why ]]; then
        why=$(expect_in_pod "$NS" "$IFN" "$MAC" 192.0.2.1/24)
        [[ -z $why && $(j '.ips[0].address') != 192.0.2.1/24 ]] && why="result ips: $(j -c .ips)"
        [[ -z $why && $(j '.ips[0].interface') != 0 ]] && why="ips[0].interface is $(j '.ips[0].interface'), expected 0"
        if [[ -z $why && $V != 0.3.* ]]; then
            cni CHECK "$(with_prev "$C" "$add_out")"
            why=$(ok_problem)
            [[ -n $why ]] && why="CHECK: $why"
        fi
    else
        why="ADD: $why"
    fi
    cni DEL "$C"
    [[ -z $why ]] && why=$(ok_problem)
    [[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
    [[ -z $why ]] && ip -o addr show dev "$DEV" | grep -q 192.0.2.1 && why="the pod's address came home with $DEV"
    verdict "$name" "$why"
done

# ---------------------------------------------------------------------------------------
# spec/check-after-add-with-route: IPAM routes (via the gateway) are set in the pod, and a
# CHECK right after ADD accepts them (the spec: CHECK must pass right after ADD).
new_case
C=$(conf 1.0.0 '"ipam":{"type":"static","addresses":[{"address":"192.0.2.3/24","gateway":"192.0.2.254"}],"routes":[{"dst":"198.51.100.0/24"}]}')
cni ADD "$C"
add_out=$OUT why=$(ok_problem)
[[ -n $why ]] && why="ADD: $why"
[[ -z $why ]] && ! ip -n "$NS" route show 198.51.100.0/24 | grep -q "dev $IFN" && why="route 198.51.100.0/24 missing in the pod"
if [[ -z $why ]]; then
    cni CHECK "$(with_prev "$C" "$add_out")"
    why=$(ok_problem)
    [[ -n $why ]] && why="CHECK: $why"
fi
cni DEL "$C"
verdict "spec/check-after-add-with-route" "$why"

# ---------------------------------------------------------------------------------------
# extra/del-restores-up-state and extra/del-keeps-down-state: DEL gives the device back in
# the administrative state it had before ADD (the reference leaves it down).
for state in up down; do
    new_case
    [[ $state == down ]] && ip link set "$DEV" down
    C=$(conf 1.0.0)
    cni ADD "$C"
    why=$(ok_problem)
    [[ -n $why ]] && why="ADD: $why"
    cni DEL "$C"
    [[ -z $why ]] && why=$(ok_problem)
    [[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" "$state")
    if [[ $state == up ]]; then verdict "extra/del-restores-up-state" "$why"; else verdict "extra/del-keeps-down-state" "$why"; fi
done

# ---------------------------------------------------------------------------------------
# spec/ipam-released-on-del: host-local allocates on ADD and is released on DEL.
new_case
HL=$CF_TMP/hostlocal
C=$(conf 1.0.0 "\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"$HL\",\"ranges\":[[{\"subnet\":\"192.0.2.0/24\",\"rangeStart\":\"192.0.2.50\",\"rangeEnd\":\"192.0.2.60\"}]]}" tcfhl)
cni ADD "$C"
why=$(ok_problem)
if [[ -z $why ]]; then
    addr=$(j '.ips[0].address')
    why=$(expect_in_pod "$NS" "$IFN" "$MAC" "$addr")
    [[ -z $why && ! -e $HL/tcfhl/${addr%/*} ]] && why="host-local has no allocation file for $addr"
else
    why="ADD: $why"
fi
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
[[ -z $why && -e $HL/tcfhl/${addr%/*} ]] && why="allocation $addr not released by DEL"
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "spec/ipam-released-on-del" "$why"

# ---------------------------------------------------------------------------------------
# ref/invalid-config-no-selector: no device selector at all.
new_case
cni ADD '{"cniVersion":"1.0.0","name":"tcfspec","type":"host-device"}'
why=$(error_problem)
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "ref/invalid-config-no-selector" "$why"

# ---------------------------------------------------------------------------------------
# ref/del-with-name-taken: the reference's own test has the original name taken in the host while
# the pod lives, and expects DEL to fail until the name is free. A runtime retries a failed DEL
# forever and keeps the pod terminating meanwhile, so ours (the rule this case checks) succeeds at
# the first DEL: the device is home (found by its MAC) under another name, up, carrying its
# original name as its alias, and the device that took the name is untouched.
new_case
C=$(conf 1.0.0)
cni ADD "$C"
why=$(ok_problem)
if [[ -z $why ]]; then
    ip link add "$DEV" type veth peer name "${DEV}q" && CF_LINKS+=("${DEV}q")
    squatter=$(ip -o link show dev "$DEV" | awk '{print $1, $(NF-2)}')
    cni DEL "$C"
    why=$(ok_problem)
    [[ -n $why ]] && why="DEL with $DEV taken in the host: $why"
    home=$(ip -j link show | jq -r --arg mac "$MAC" '.[] | select(.address == $mac and (.link_netnsid | not)) | "\(.ifname) \(.ifalias // "") \(.flags | index("UP") != null)"')
    [[ -z $why && -z $home ]] && why="the device (MAC $MAC) is not in the host after DEL"
    [[ -z $why && $home != *" $DEV true" ]] && why="home as [$home], expected another name, alias $DEV, up"
    [[ -z $why && $(ip -o link show dev "$DEV" | awk '{print $1, $(NF-2)}') != "$squatter" ]] && why="the squatter changed"
    ip link del "$DEV" 2>/dev/null
    cni DEL "$C"
    [[ -z $why ]] && why=$(ok_problem)
    ip link del "${home%% *}" 2>/dev/null  # the test's veth, whatever it is called now
else
    why="ADD: $why"
fi
verdict "ref/del-with-name-taken" "$why"

# ---------------------------------------------------------------------------------------
# ref/pod-has-device-named-like-host-device: the pod already has a device called DEV.
new_case
ip -n "$NS" link add "$DEV" type veth peer name "${DEV}q" && ip -n "$NS" link set "$DEV" up
PODMAC=$(link_mac "$NS" "$DEV")
C=$(conf 1.0.0)
cni ADD "$C"
why=$(ok_problem)
[[ -n $why ]] && why="ADD: $why"
[[ -z $why ]] && why=$(expect_in_pod "$NS" "$IFN" "$MAC")
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
[[ -z $why ]] && why=$(expect_in_pod "$NS" "$DEV" "$PODMAC")
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "ref/pod-has-device-named-like-host-device" "$why"

# ---------------------------------------------------------------------------------------
# spec/ifname-taken-in-pod: CNI_IFNAME already exists in the pod ("if the plugin is unable to
# use this interface name it must return an error"): ADD fails cleanly, the host
# device stays home (name, MAC, up) and the pod's device is untouched.
new_case
ip -n "$NS" link add "$IFN" type veth peer name "${DEV}q" && ip -n "$NS" link set "$IFN" up
PODMAC=$(link_mac "$NS" "$IFN")
C=$(conf 1.0.0)
cni ADD "$C"
why=$(error_problem)
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" up)
[[ -z $why ]] && why=$(expect_in_pod "$NS" "$IFN" "$PODMAC")
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
[[ -n $why ]] || why=$(expect_in_pod "$NS" "$IFN" "$PODMAC")
[[ -n $why ]] || why=$(expect_home "$DEV" "$MAC" up)
verdict "spec/ifname-taken-in-pod" "$why"

# ---------------------------------------------------------------------------------------
# spec/version: VERSION answers with supportedVersions; spec/version-1.1.0 lists 1.1.0.
cni VERSION '{"cniVersion":"1.0.0"}'
why=$(ok_problem)
[[ -z $why ]] && ! jq -e '(.supportedVersions | index("0.4.0")) and (.supportedVersions | index("1.0.0")) and (.cniVersion | type == "string")' >/dev/null 2>&1 <<<"$OUT" && why="answer: $(short)"
verdict "spec/version" "$why"
verdict "spec/version-1.1.0" "$(jq -e '.supportedVersions | index("1.1.0")' >/dev/null 2>&1 <<<"$OUT" || echo "1.1.0 not listed: $(short)")"
cni VERSION '' CNI_CONTAINERID=@unset CNI_NETNS=@unset CNI_IFNAME=@unset
verdict "spec/version-without-config" "$(ok_problem)$(jq -e '.supportedVersions | length > 0' >/dev/null 2>&1 <<<"$OUT" || echo " answer: $(short)")"

# ---------------------------------------------------------------------------------------
# spec/del-twice, spec/del-no-output
new_case
C=$(conf 1.0.0)
cni ADD "$C"
why=$(ok_problem)
[[ -n $why ]] && why="ADD: $why"
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
verdict "spec/del-no-output" "$( ((RC == 0)) && [[ -n $OUT ]] && echo "DEL printed: $(short)")"
cni DEL "$C"
[[ -z $why ]] && { why=$(ok_problem); [[ -n $why ]] && why="second DEL: $why"; }
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "spec/del-twice" "$why"

# spec/del-unknown-container: DEL of an attachment that was never added.
new_case
cni DEL "$(conf 1.0.0)"
verdict "spec/del-unknown-container" "$(ok_problem)"

# spec/del-missing-netns: the netns is gone (the veth died with it); DEL must succeed.
new_case
C=$(conf 1.0.0)
cni ADD "$C"
why=$(ok_problem)
[[ -n $why ]] && why="ADD: $why"
ip netns del "$NS"
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
verdict "spec/del-missing-netns" "$why"

# spec/del-empty-netns: DEL with CNI_NETNS empty must succeed;
# extra/del-empty-netns-device-home: and (ours) the device still comes home.
new_case
C=$(conf 1.0.0)
cni ADD "$C"
why=$(ok_problem)
[[ -n $why ]] && why="ADD: $why"
cni DEL "$C" CNI_NETNS=
[[ -z $why ]] && why=$(ok_problem)
verdict "spec/del-empty-netns" "$why"
verdict "extra/del-empty-netns-device-home" "$(expect_home "$DEV" "$MAC" up)"
cni DEL "$C" >/dev/null

# ---------------------------------------------------------------------------------------
# Errors: JSON object with code and msg on stdout, non-zero exit.
new_case
DEV_SAVED=$DEV
DEV=${CF_TAG}zz # does not exist
cni ADD "$(conf 1.0.0)"
verdict "spec/error-json-device-missing" "$(error_problem)"
err_missing=$OUT
DEV=$DEV_SAVED
cni BOGUS "$(conf 1.0.0)"
verdict "spec/unknown-command" "$(error_problem 4)"
err_bogus=$OUT
cni ADD "$(conf 1.0.0)" CNI_CONTAINERID=@unset
verdict "spec/missing-CNI_CONTAINERID" "$(error_problem 4)"
cni ADD "$(conf 1.0.0)" CNI_IFNAME=@unset
verdict "spec/missing-CNI_IFNAME" "$(error_problem 4)"
cni ADD "$(conf 1.0.0)" CNI_NETNS=@unset
verdict "spec/missing-CNI_NETNS" "$(error_problem 4)"
cni ADD 'this is not json'
verdict "spec/invalid-json-stdin" "$(error_problem 6)"
cni ADD "$(conf 99.0.0)"
verdict "spec/unsupported-cniVersion" "$(error_problem 1)"
# An error object that carries a cniVersion carries the config's.
why=""
for e in "$err_missing" "$err_bogus"; do
    v=$(jq -r '.cniVersion // empty' <<<"$e" 2>/dev/null)
    [[ -z $v || $v == 1.0.0 ]] || why+="${why:+; }error for a 1.0.0 config says cniVersion $v: $(tr '\n' ' ' <<<"$e" | head -c 160)"
done
verdict "spec/error-cniVersion-matches-config" "$why"
why=$(expect_home "$DEV" "$MAC" up)
verdict "spec/errors-leave-device-alone" "$why"

# ---------------------------------------------------------------------------------------
# spec/check-detects-missing-interface: CHECK fails once the interface is gone from the pod.
new_case
C=$(conf 1.0.0)
cni ADD "$C"
add_out=$OUT why=$(ok_problem)
[[ -n $why ]] && why="ADD: $why"
if [[ -z $why ]]; then
    ip -n "$NS" link set "$IFN" down
    ip -n "$NS" link set "$IFN" name "${DEV}r"
    cni CHECK "$(with_prev "$C" "$add_out")"
    why=$(error_problem)
    ip -n "$NS" link set "${DEV}r" name "$IFN"
    ip -n "$NS" link set "$IFN" up
fi
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
verdict "spec/check-detects-missing-interface" "$why"

# ---------------------------------------------------------------------------------------
# spec/prevResult-passed-through: a chained ADD keeps prevResult and appends its interface;
# its IPs point at the new interface's index.
new_case
PREV='{"cniVersion":"1.0.0","interfaces":[{"name":"lo","mac":"00:00:00:00:00:00","sandbox":"'$NETNS'"}],"ips":[{"interface":0,"address":"127.0.0.1/8"}],"dns":{"nameservers":["192.0.2.53"]}}'
C=$(conf 1.0.0 '"ipam":{"type":"static","addresses":[{"address":"192.0.2.2/24"}]}')
cni ADD "$(with_prev "$C" "$PREV")"
why=$(ok_problem)
if [[ -z $why ]]; then
    got=$(j -c '[[.interfaces[].name], [.ips[] | [.interface, .address]], .dns.nameservers]')
    want="[[\"lo\",\"$IFN\"],[[0,\"127.0.0.1/8\"],[1,\"192.0.2.2/24\"]],[\"192.0.2.53\"]]"
    [[ $got == "$want" ]] || why="result $got, expected $want"
else
    why="ADD: $why"
fi
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "spec/prevResult-passed-through" "$why"

# ---------------------------------------------------------------------------------------
# extra/select-by-hwaddr, extra/select-by-kernelpath: the other selectors both plugins document.
for sel in hwaddr kernelpath; do
    new_case
    if [[ $sel == hwaddr ]]; then
        C=$(printf '{"cniVersion":"1.0.0","name":"tcfspec","type":"host-device","hwaddr":"%s","dataDir":"%s"}' "${MAC^^}" "$DATA")
    else
        C=$(printf '{"cniVersion":"1.0.0","name":"tcfspec","type":"host-device","kernelpath":"/sys/devices/virtual/net/%s","dataDir":"%s"}' "$DEV" "$DATA")
    fi
    cni ADD "$C"
    why=$(ok_problem)
    [[ -n $why ]] && why="ADD: $why"
    [[ -z $why ]] && why=$(expect_in_pod "$NS" "$IFN" "$MAC")
    cni DEL "$C"
    [[ -z $why ]] && why=$(ok_problem)
    [[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
    verdict "extra/select-by-$sel" "$why"
done

# extra/device-claimed-by-other-container: a second container asking for the same device is
# refused, and the first one keeps it.
new_case
C=$(conf 1.0.0)
cni ADD "$C"
why=$(ok_problem)
[[ -n $why ]] && why="first ADD: $why"
NS2=${CF_TAG}m${N}
cf_netns "$NS2"
if [[ -z $why ]]; then
    cni ADD "$C" CNI_CONTAINERID="$CID-other" CNI_NETNS="/run/netns/$NS2"
    why=$(error_problem)
    [[ -z $why ]] && why=$(expect_in_pod "$NS" "$IFN" "$MAC")
    cni DEL "$C" CNI_CONTAINERID="$CID-other" CNI_NETNS="/run/netns/$NS2"
    [[ -z $why ]] && why=$(ok_problem)
    [[ -n $why ]] || why=$(expect_in_pod "$NS" "$IFN" "$MAC")
fi
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "extra/device-claimed-by-other-container" "$why"

# extra/del-after-pod-changed-device: the pod renamed the device and changed its MTU and MAC;
# DEL still finds it and gives it back as it was (name, MAC, MTU).
new_case
MTU=$(link_mtu - "$DEV")
C=$(conf 1.0.0)
cni ADD "$C"
why=$(ok_problem)
[[ -n $why ]] && why="ADD: $why"
if [[ -z $why ]]; then
    ip -n "$NS" link set "$IFN" down
    ip -n "$NS" link set "$IFN" name "${DEV}r" mtu 1280 address 02:00:5e:10:00:99
    ip -n "$NS" link set "${DEV}r" up
fi
cni DEL "$C"
[[ -z $why ]] && why=$(ok_problem)
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
[[ -z $why && $(link_mtu - "$DEV") != "$MTU" ]] && why="came back with MTU $(link_mtu - "$DEV"), expected $MTU"
verdict "extra/del-after-pod-changed-device" "$why"

# extra/parallel-add-same-device: two containers ask for the same device at the same time:
# exactly one gets it, the other gets an error; after both DELs the device is home.
new_case
NS2=${CF_TAG}m${N}
cf_netns "$NS2"
C=$(conf 1.0.0)
( cni ADD "$C"; echo "$RC" >"$CF_TMP/par1" ) &
( cni ADD "$C" CNI_CONTAINERID="$CID-b" CNI_NETNS="/run/netns/$NS2"; echo "$RC" >"$CF_TMP/par2" ) &
wait
r1=$(cat "$CF_TMP/par1") r2=$(cat "$CF_TMP/par2")
why=""
if ! { [[ $r1 == 0 && $r2 != 0 ]] || [[ $r1 != 0 && $r2 == 0 ]]; }; then
    why="exit statuses $r1 and $r2: expected exactly one success"
fi
in1=$(link_exists "$NS" "$IFN" && echo 1) in2=$(link_exists "$NS2" "$IFN" && echo 1)
[[ -z $why && "$in1$in2" != 1 ]] && why="the device is in ${in1:+the first }${in2:+the second }pod(s)"
cni DEL "$C"
[[ -z $why ]] && { why=$(ok_problem); [[ -n $why ]] && why="DEL 1: $why"; }
cni DEL "$C" CNI_CONTAINERID="$CID-b" CNI_NETNS="/run/netns/$NS2"
[[ -z $why ]] && { why=$(ok_problem); [[ -n $why ]] && why="DEL 2: $why"; }
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "extra/parallel-add-same-device" "$why"

# extra/ifname-with-percent-d: "net%d" is a legal CNI_IFNAME for the spec, but the kernel
# treats %d as a template. ADD must either report the name the device really got, or fail
# and leave the device home.
new_case
C=$(conf 1.0.0)
cni ADD "$C" 'CNI_IFNAME=net%d'
if ((RC == 0)); then
    got=$(j '.interfaces[0].name')
    why=$(link_exists "$NS" "$got" || echo "result says $got, pod has: $(ip -n "$NS" -br link | awk '{print $1}' | tr '\n' ' ')")
else
    why=$(error_problem)
    [[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" up)
fi
cni DEL "$C" 'CNI_IFNAME=net%d'
[[ -z $why ]] && why=$(ok_problem)
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" any)
verdict "extra/ifname-with-percent-d" "$why"

# extra/refuses-host-netns: CNI_NETNS naming the host's own netns is an error, not a rename of
# a host device (the interface name carries the run's tag so a rename is cleaned up).
new_case
C=$(conf 1.0.0)
cni ADD "$C" CNI_NETNS=/proc/self/ns/net "CNI_IFNAME=${DEV}h"
why=$(error_problem)
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" up)
cni DEL "$C" CNI_NETNS=/proc/self/ns/net "CNI_IFNAME=${DEV}h"
link_exists - "${DEV}h" && ip link set "${DEV}h" down && ip link set "${DEV}h" name "$DEV"
verdict "extra/refuses-host-netns" "$why"

# ---------------------------------------------------------------------------------------
# CNI 1.1.0: STATUS and GC.
new_case
C=$(conf 1.1.0)
cni STATUS "$C" CNI_CONTAINERID=@unset CNI_NETNS=@unset CNI_IFNAME=@unset
verdict "spec/status[1.1.0]" "$(ok_problem)"

cni ADD "$C"
why=$(ok_problem)
[[ -n $why ]] && why="ADD: $why"
GCKEEP=$(jq -c --arg c "$CID" --arg i "$IFN" '. + {"cni.dev/valid-attachments": [{containerID: $c, ifname: $i}]}' <<<"$C")
cni GC "$GCKEEP" CNI_CONTAINERID=@unset CNI_NETNS=@unset CNI_IFNAME=@unset
[[ -z $why ]] && why=$(ok_problem)
[[ -z $why ]] && why=$(expect_in_pod "$NS" "$IFN" "$MAC")
verdict "spec/gc-keeps-valid-attachments[1.1.0]" "$why"
GCNONE=$(jq -c '. + {"cni.dev/valid-attachments": []}' <<<"$C")
cni GC "$GCNONE" CNI_CONTAINERID=@unset CNI_NETNS=@unset CNI_IFNAME=@unset
why=$(ok_problem)
[[ -z $why ]] && why=$(expect_home "$DEV" "$MAC" up)
verdict "spec/gc-releases-unknown-attachments[1.1.0]" "$why"
cni DEL "$C"
verdict "spec/del-after-gc[1.1.0]" "$(ok_problem)"

cf_summary
