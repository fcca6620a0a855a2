#!/bin/busybox sh
# /init of the conformance VM (busybox sh, PID 1). run.sh copies this file into
# the initramfs together with /conformance.env, busybox, /sbin/ip, the CNI
# plugins in /opt/cni/bin and the kernel modules listed in /modules.list.
#
# Prints one line per case on the serial console, exactly
#   PASS <name>
#   FAIL <name>: <why>
# followed, for a failure, by the case's transcript (every command, plugin
# exit status, stdout and stderr) on lines starting with "  | ". Ends with
# "CONFORMANCE-DONE" and powers off.
#
# Device layout (fixed by run.sh): three virtio-net PCI NICs at 0000:00:04.0,
# 0000:00:05.0 and 0000:00:06.0. Every case starts from the same state: all
# three in the host namespace under their boot names, down, no alias, no pod
# namespace, an empty dataDir.

/bin/busybox mkdir -p /proc /sys /dev /run /tmp /bin /sbin
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
/bin/busybox mount -t tmpfs tmpfs /run
/bin/busybox mount -t tmpfs -o size=512m tmpfs /tmp
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
# busybox's own `ip` applet wins over /sbin/ip inside busybox sh: always name it.
IP=/sbin/ip
PLUGIN=/opt/cni/bin/host-device
export CNI_PATH=/opt/cni/bin
DATA=/tmp/cni-hostdev-data
LOG=/tmp/case.log
. /conformance.env   # PLUGIN_LABEL

say() { echo "$*"; }

# --- modules and NICs -----------------------------------------------------------
while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "/modules/$mod" 2>/tmp/insmod.err || say "NOTE insmod $mod: $(cat /tmp/insmod.err)"
done < /modules.list
$IP link set lo up

PCI_A=0000:00:04.0
PCI_B=0000:00:05.0
PCI_C=0000:00:06.0

# The host-namespace net device of a PCI function (virtio nests it in virtioN/net).
netdev_of() {
    for d in /sys/bus/pci/devices/$1/net/* /sys/bus/pci/devices/$1/virtio*/net/*; do
        [ -e "$d" ] && { basename "$d"; return 0; }
    done
    return 1
}

wait_netdev() {  # wait_netdev PCI SECONDS
    local i=0
    while [ $i -lt $(($2 * 10)) ]; do
        netdev_of "$1" >/dev/null && return 0
        sleep 0.1; i=$((i + 1))
    done
    return 1
}

for p in $PCI_A $PCI_B $PCI_C; do
    wait_netdev $p 20 || say "NOTE no net device for $p after 20s"
done
A=$(netdev_of $PCI_A); B=$(netdev_of $PCI_B); C=$(netdev_of $PCI_C)
say "NOTE kernel $(uname -r); plugin $PLUGIN_LABEL; NICs $PCI_A=$A $PCI_B=$B $PCI_C=$C"
dmesg -n 1   # keep kernel messages off the console from here on

# --- helpers --------------------------------------------------------------------
note() { echo "$*" >> $LOG; }

# outcome STATUS: record a plugin run's exit status and /tmp/out, /tmp/err; sets RC, OUT, ERR.
outcome() {
    RC=$1
    OUT=$(cat /tmp/out); ERR=$(cat /tmp/err)
    note "  exit $RC"
    [ -n "$OUT" ] && note "  stdout: $OUT"
    [ -n "$ERR" ] && note "  stderr: $(head -c 2000 /tmp/err)"
    return $RC
}

# cni CMD CONTAINERID NETNS IFNAME CONFFILE: runs the plugin; sets RC, OUT, ERR.
cni() {
    note "\$ CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=$4 host-device < $5"
    note "  stdin: $(cat "$5")"
    CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=$4 \
        $PLUGIN < "$5" > /tmp/out 2> /tmp/err
    outcome $?
}

# GC carries neither CNI_CONTAINERID, CNI_NETNS nor CNI_IFNAME.
cni_gc() {
    note "\$ CNI_COMMAND=GC host-device < $1"
    note "  stdin: $(cat "$1")"
    env -u CNI_CONTAINERID -u CNI_NETNS -u CNI_IFNAME CNI_COMMAND=GC $PLUGIN < "$1" > /tmp/out 2> /tmp/err
    outcome $?
}

plugin_said() { echo "${OUT:-${ERR:-no output}}" | tr '\n' ' ' | head -c 400; }

WHY=""
fail() { WHY="$*"; return 1; }

host_has() { $IP link show dev "$1" >/dev/null 2>&1; }
pod_has() { $IP -n "$1" link show dev "$2" >/dev/null 2>&1; }
host_up() { $IP -o link show dev "$1" 2>/dev/null | grep -q '[<,]UP[,>]'; }
pod_up() { $IP -n "$1" -o link show dev "$2" 2>/dev/null | grep -q '[<,]UP[,>]'; }
host_links() { $IP -o link show | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | tr '\n' ' '; }
pod_links() { $IP -n "$1" -o link show 2>/dev/null | sed 's/^[0-9]*: \([^:@]*\).*/\1/' | tr '\n' ' '; }
alias_of() { cat "/sys/class/net/$1/ifalias" 2>/dev/null; }

state() { note "  host links: $(host_links)"; for ns in $(ls /run/netns 2>/dev/null); do note "  netns $ns links: $(pod_links $ns)"; done; }

newpod() { $IP netns add "$1" && note "\$ ip netns add $1"; }

# A dead pod's physical NIC comes back to the host asynchronously: wait for it.
kill_pod() {  # kill_pod NS PCI
    $IP netns del "$1"; note "\$ ip netns del $1"
    wait_netdev "$2" 15 || return 1
    note "  $2 came back to the host as $(netdev_of "$2")"
}

# Put the three NICs back as they were at boot, whatever the last case did.
reset() {
    for ns in $(ls /run/netns 2>/dev/null); do $IP netns del "$ns"; done
    rm -rf "$DATA" /tmp/out /tmp/err
    for pair in "$PCI_A $A" "$PCI_B $B" "$PCI_C $C"; do
        set -- $pair
        drv=$(basename "$(readlink /sys/bus/pci/devices/$1/driver 2>/dev/null)")
        if [ "$drv" != "virtio-pci" ]; then
            [ -n "$drv" ] && echo "$1" > "/sys/bus/pci/devices/$1/driver/unbind"
            echo > "/sys/bus/pci/devices/$1/driver_override"
            echo "$1" > /sys/bus/pci/drivers/virtio-pci/bind
        fi
        if ! wait_netdev "$1" 15; then
            say "NOTE reset: $1 has no net device in the host"
            continue
        fi
        cur=$(netdev_of "$1")
        if [ "$cur" != "$2" ]; then
            $IP link set dev "$cur" down
            $IP link set dev "$cur" name "$2" || say "NOTE reset: cannot rename $cur to $2"
        fi
        $IP link set dev "$2" down
        echo > "/sys/class/net/$2/ifalias" 2>/dev/null
    done
    : > $LOG
}

conf() {  # conf FILE VERSION NAME BODY: a network config with a dataDir under /tmp
    cat > "$1" <<EOF
{"cniVersion": "$2", "name": "$3", "type": "host-device", "dataDir": "$DATA", $4}
EOF
}

PASSED=0; FAILED=0
run_case() {  # run_case NAME FUNCTION
    reset
    WHY=""
    if "$2"; then
        say "PASS $1"; PASSED=$((PASSED + 1))
        [ "$VERBOSE" = 1 ] && { state; sed 's/^/  | /' $LOG; }
    else
        state
        say "FAIL $1: ${WHY:-no reason given}"
        sed 's/^/  | /' $LOG
        FAILED=$((FAILED + 1))
    fi
}

# --- cases ----------------------------------------------------------------------

kernel_has_live_rename() {  # live rename of an UP device arrived in 6.2
    set -- $(uname -r | sed 's/^\([0-9]*\)\.\([0-9]*\).*/\1 \2/')
    [ "$1" -gt 6 ] || { [ "$1" -eq 6 ] && [ "$2" -ge 2 ]; }
}

case_probe() {
    note "\$ host-device probe"
    $PLUGIN probe > /tmp/out 2> /tmp/err; RC=$?
    OUT=$(cat /tmp/out); ERR=$(cat /tmp/err)
    note "  exit $RC"; note "  stdout: $OUT"; [ -n "$ERR" ] && note "  stderr: $ERR"
    [ $RC -eq 0 ] || fail "probe exited $RC: $(plugin_said)" || return 1
    want=false; kernel_has_live_rename && want=true
    echo "$OUT" | grep -q '"liveRename"' || fail "probe printed no JSON with liveRename on stdout (exit $RC): $(plugin_said)" || return 1
    echo "$OUT" | grep -q "\"kernel\": *\"$(uname -r)\"" || fail "probe does not report kernel $(uname -r): $(plugin_said)" || return 1
    echo "$OUT" | grep -q '"atomicMoveRename": *true' || fail "probe reports no atomicMoveRename true: $(plugin_said)" || return 1
    echo "$OUT" | grep -q "\"liveRename\": *$want" || fail "kernel $(uname -r) wants liveRename $want: $(plugin_said)" || return 1
}

# ADD with a selector; the NIC at PCI must end up in the pod as net1, up, gone from the host.
add_and_check() {  # add_and_check NAME PCI SELECTOR-JSON
    local dev; dev=$(netdev_of "$2")
    conf /tmp/c.json 1.0.0 "$1" "$3"
    newpod pod
    cni ADD "ctr-$1" /run/netns/pod net1 /tmp/c.json || fail "ADD exited $RC: $(plugin_said)" || return 1
    pod_has pod net1 || fail "ADD exited 0 but the pod has no net1 (pod links: $(pod_links pod))" || return 1
    ! host_has "$dev" || { fail "ADD exited 0 but $dev is still in the host"; return 1; }
    echo "$OUT" | grep -q '"name": *"net1"' || fail "the result names no interface net1: $(plugin_said)" || return 1
    pod_up pod net1 || fail "net1 is down in the pod after ADD" || return 1
    return 0
}

case_add_pci() {
    add_and_check add-pci $PCI_A "\"pciBusID\": \"$PCI_A\""
}

case_add_kernelpath() {
    add_and_check add-kpath $PCI_B "\"kernelpath\": \"/sys/devices/pci0000:00/$PCI_B\""
}

case_add_deviceid_ipam() {
    add_and_check add-devid $PCI_C \
        "\"deviceID\": \"$PCI_C\", \"ipam\": {\"type\": \"static\", \"addresses\": [{\"address\": \"192.0.2.10/24\"}]}" || return 1
    $IP -n pod -o addr show dev net1 > /tmp/addr 2>&1; note "  pod net1 addresses: $(cat /tmp/addr | tr '\n' ' ')"
    grep -q 'inet 192.0.2.10/24' /tmp/addr || fail "net1 in the pod lacks 192.0.2.10/24 (has: $(grep -o 'inet6\? [^ ]*' /tmp/addr | tr '\n' ' '))" || return 1
    echo "$OUT" | grep -q '"address": *"192.0.2.10/24"' || fail "the result does not report 192.0.2.10/24: $(plugin_said)" || return 1
}

# The fallback strategy on an UP device; the host must never see another name.
case_fallback_up() {
    $IP link set dev "$A" up
    conf /tmp/c.json 1.0.0 fallback "\"device\": \"$A\", \"moveStrategy\": \"rename-then-move\""
    newpod pod
    $IP monitor link > /tmp/mon 2>&1 &
    mon=$!
    sleep 0.5
    cni ADD ctr-fallback /run/netns/pod net1 /tmp/c.json; rc=$RC
    sleep 0.5; kill $mon; wait $mon 2>/dev/null
    note "  host 'ip monitor link' during ADD: $(tr '\n' '~' < /tmp/mon | head -c 1500)"
    [ $rc -eq 0 ] || fail "ADD exited $rc: $(plugin_said)" || return 1
    pod_has pod net1 || fail "ADD exited 0 but the pod has no net1 (pod links: $(pod_links pod))" || return 1
    pod_up pod net1 || fail "net1 is down in the pod (the device was UP in the host)" || return 1
    others=$(grep -oE '^(Deleted )?[0-9]+: [^:@ ]+' /tmp/mon | sed 's/^.* //' | grep -vx "$A" | sort -u | tr '\n' ' ')
    [ -z "$others" ] || fail "the host namespace saw the device under another name: $others" || return 1
    cni DEL ctr-fallback /run/netns/pod net1 /tmp/c.json || fail "DEL exited $RC: $(plugin_said)" || return 1
    host_has "$A" || fail "after DEL the host has no $A (host links: $(host_links))" || return 1
    host_up "$A" || fail "after DEL $A is down (it was UP before ADD)" || return 1
}

case_del_restores() {
    $IP link set dev "$B" up
    mac=$(cat /sys/class/net/$B/address)
    conf /tmp/c.json 1.0.0 delnet "\"device\": \"$B\""
    newpod pod
    cni ADD ctr-del /run/netns/pod net1 /tmp/c.json || fail "ADD exited $RC: $(plugin_said)" || return 1
    cni DEL ctr-del /run/netns/pod net1 /tmp/c.json || fail "DEL exited $RC: $(plugin_said)" || return 1
    ! pod_has pod net1 || { fail "after DEL net1 is still in the pod"; return 1; }
    host_has "$B" || fail "after DEL the host has no $B (host links: $(host_links); pod links: $(pod_links pod))" || return 1
    host_up "$B" || fail "after DEL $B is down (it was UP before ADD)" || return 1
    [ "$(cat /sys/class/net/$B/address)" = "$mac" ] || fail "after DEL $B has MAC $(cat /sys/class/net/$B/address), was $mac" || return 1
    [ -z "$(alias_of "$B")" ] || fail "after DEL $B keeps alias '$(alias_of "$B")' (it had none)" || return 1
}

# ADD, then the pod netns dies without DEL: the NIC is refunded to the host under its pod name.
add_then_kill_pod() {  # add_then_kill_pod NETWORK CONTAINER DEV PCI
    conf /tmp/c.json 1.0.0 "$1" "\"device\": \"$3\""
    newpod pod
    cni ADD "$2" /run/netns/pod net1 /tmp/c.json || fail "ADD exited $RC: $(plugin_said)" || return 1
    kill_pod pod "$4" || fail "setup: $4 did not come back to the host within 15s of deleting the netns" || return 1
    REFUNDED=$(netdev_of "$4")
    state
}

case_dead_pod_del() {
    add_then_kill_pod deadpod ctr-deadpod "$A" $PCI_A || return 1
    cni DEL ctr-deadpod /run/netns/pod net1 /tmp/c.json || fail "DEL after the netns died exited $RC: $(plugin_said)" || return 1
    host_has "$A" || fail "DEL exited 0 but the refunded NIC is still $(netdev_of $PCI_A), not $A" || return 1
    [ -z "$(alias_of "$A")" ] || fail "after DEL $A keeps alias '$(alias_of "$A")' (it had none)" || return 1
}

case_dead_pod_gc() {
    add_then_kill_pod gcnet ctr-gc "$B" $PCI_B || return 1
    conf /tmp/gc.json 1.1.0 gcnet "\"device\": \"$B\", \"cni.dev/valid-attachments\": []"
    cni_gc /tmp/gc.json || fail "GC exited $RC: $(plugin_said)" || return 1
    host_has "$B" || fail "GC exited 0 but the refunded NIC is still $(netdev_of $PCI_B), not $B" || return 1
    [ -z "$(alias_of "$B")" ] || fail "after GC $B keeps alias '$(alias_of "$B")' (it had none)" || return 1
    note "  dataDir after GC: $(find $DATA -type f 2>/dev/null | tr '\n' ' ')"
}

bind_uio() {  # bind_uio PCI: a DPDK-style driver for the function; it has no net device then
    dev=$(netdev_of $1)
    echo $1 > /sys/bus/pci/devices/$1/driver/unbind || fail "setup: cannot unbind $1" || return 1
    echo uio_pci_generic > /sys/bus/pci/devices/$1/driver_override
    echo $1 > /sys/bus/pci/drivers/uio_pci_generic/bind || fail "setup: cannot bind $1 to uio_pci_generic" || return 1
    drv=$(basename "$(readlink /sys/bus/pci/devices/$1/driver)")
    note "  $1 ($dev) is now bound to $drv"
    [ "$drv" = uio_pci_generic ] || fail "setup: $1 is bound to '$drv'" || return 1
}

# A DPDK-style NIC: bound to uio_pci_generic, it has no net device; nothing to move.
case_userspace() {
    bind_uio $PCI_C || return 1
    conf /tmp/c.json 1.1.0 dpdk "\"pciBusID\": \"$PCI_C\""
    newpod pod
    before=$(pod_links pod)
    cni ADD ctr-dpdk /run/netns/pod net1 /tmp/c.json || fail "ADD exited $RC: $(plugin_said)" || return 1
    echo "$OUT" | grep -q "\"pciID\": *\"$PCI_C\"" || fail "the 1.1.0 result carries no \"pciID\": \"$PCI_C\": $(plugin_said)" || return 1
    [ "$(pod_links pod)" = "$before" ] || fail "ADD changed the pod's links: $before -> $(pod_links pod)" || return 1
    [ "$(basename "$(readlink /sys/bus/pci/devices/$PCI_C/driver)")" = uio_pci_generic ] || fail "ADD changed $PCI_C's driver" || return 1
    cni DEL ctr-dpdk /run/netns/pod net1 /tmp/c.json || fail "DEL exited $RC: $(plugin_said)" || return 1
}

# Two networks ask for the same uio-bound function: the second is refused, naming the first's
# container and network; when the first pod dies without DEL, a new ADD takes the function.
case_userspace_shared() {
    bind_uio $PCI_C || return 1
    conf /tmp/a.json 1.1.0 dpdk-a "\"pciBusID\": \"$PCI_C\""
    conf /tmp/b.json 1.1.0 dpdk-b "\"runtimeConfig\": {\"deviceID\": \"$PCI_C\"}"
    newpod pod1; newpod pod2
    cni ADD ctr-a /run/netns/pod1 net1 /tmp/a.json || fail "first ADD exited $RC: $(plugin_said)" || return 1
    cni ADD ctr-b /run/netns/pod2 net1 /tmp/b.json && fail "the second network took $PCI_C too" && return 1
    echo "$OUT" | grep -q '"code": *101' || fail "the second ADD is not code 101: $(plugin_said)" || return 1
    echo "$OUT" | grep -q "ctr-a of network dpdk-a" || fail "the refusal does not name ctr-a of dpdk-a: $(plugin_said)" || return 1
    $IP netns del pod1; note "\$ ip netns del pod1"
    cni ADD ctr-b /run/netns/pod2 net1 /tmp/b.json || fail "ADD after the holder died exited $RC: $(plugin_said)" || return 1
    echo "$OUT" | grep -q "\"pciID\": *\"$PCI_C\"" || fail "the result carries no pciID $PCI_C: $(plugin_said)" || return 1
    [ -z "$(ls $DATA/dpdk-a 2>/dev/null)" ] || fail "the dead pod's record is still there: $(ls $DATA/dpdk-a)" || return 1
    cni DEL ctr-b /run/netns/pod2 net1 /tmp/b.json || fail "DEL exited $RC: $(plugin_said)" || return 1
}

# A pool by driver: one config for the three NICs, each ADD takes the next free one, a fourth is
# refused naming every member's holder and the node; a dead pod's NIC, refunded under its pod
# name, is repaired and taken by the next ADD.
case_pool_by_driver() {
    conf /tmp/c.json 1.1.0 pool '"devices": [{"driver": "virtio_net"}]'
    for n in 1 2 3; do
        newpod "pod$n"
        cni ADD "ctr-pool$n" "/run/netns/pod$n" net1 /tmp/c.json || fail "ADD $n exited $RC: $(plugin_said)" || return 1
        pod_has "pod$n" net1 || fail "ADD $n exited 0 but pod$n has no net1" || return 1
    done
    for dev in "$A" "$B" "$C"; do
        ! host_has "$dev" || { fail "three ADDs over a pool of three left $dev in the host"; return 1; }
    done
    newpod pod4
    cni ADD ctr-pool4 /run/netns/pod4 net1 /tmp/c.json && { fail "a fourth ADD over three NICs exited 0"; return 1; }
    echo "$OUT" | grep -q '"code": *101' || fail "an exhausted pool answered no code 101: $(plugin_said)" || return 1
    echo "$OUT" | grep -q "on node $(hostname)" || fail "the refusal does not name node $(hostname): $(plugin_said)" || return 1
    for n in 1 2 3; do
        echo "$OUT" | grep -q "claimed by container ctr-pool$n " || fail "the refusal does not name ctr-pool$n: $(plugin_said)" || return 1
    done
    got=$($IP -n pod1 -o link show dev net1 | grep -o 'alias [^ ]*' | cut -d' ' -f2)
    case "$got" in "$A") p=$PCI_A ;; "$B") p=$PCI_B ;; "$C") p=$PCI_C ;; *) fail "pod1's net1 carries no alias naming A, B or C: '$got'"; return 1 ;; esac
    kill_pod pod1 "$p" || fail "setup: $p ($got) did not come back to the host within 15s of deleting pod1" || return 1
    state
    cni ADD ctr-pool4 /run/netns/pod4 net1 /tmp/c.json || fail "ADD after pod1 died exited $RC: $(plugin_said)" || return 1
    pod_has pod4 net1 || fail "ADD after pod1 died exited 0 but pod4 has no net1" || return 1
    for n in 2 3 4; do
        cni DEL "ctr-pool$n" "/run/netns/pod$n" net1 /tmp/c.json || fail "DEL $n exited $RC: $(plugin_said)" || return 1
    done
    cni DEL ctr-pool1 /run/netns/pod1 net1 /tmp/c.json || fail "the late DEL of dead pod1 exited $RC: $(plugin_said)" || return 1
    for dev in "$A" "$B" "$C"; do
        host_has "$dev" || fail "after every DEL the host has no $dev (host links: $(host_links))" || return 1
        [ -z "$(alias_of "$dev")" ] || fail "after DEL $dev keeps alias '$(alias_of "$dev")'" || return 1
    done
}

# A deviceID (Multus, a device plugin) wins over the pool, but only one of the pool's devices.
case_pool_device_id() {
    conf /tmp/out.json 1.1.0 pooled "\"devices\": [{\"pciBusID\": \"$PCI_A\"}, {\"pciBusID\": \"$PCI_B\"}], \"runtimeConfig\": {\"deviceID\": \"$PCI_C\"}"
    newpod pod
    cni ADD ctr-out /run/netns/pod net1 /tmp/out.json && { fail "a deviceID outside the pool was taken"; return 1; }
    echo "$OUT" | grep -q '"code": *7' || fail "a deviceID outside the pool answered no code 7: $(plugin_said)" || return 1
    echo "$OUT" | grep -q "deviceID $PCI_C is device $C, which is not one of the pool's devices" || fail "the refusal does not say so: $(plugin_said)" || return 1
    host_has "$C" || fail "the refused ADD moved $C" || return 1
    conf /tmp/in.json 1.1.0 pooled "\"devices\": [{\"pciBusID\": \"$PCI_A\"}, {\"pciBusID\": \"$PCI_B\"}], \"runtimeConfig\": {\"deviceID\": \"$PCI_B\"}"
    cni ADD ctr-in /run/netns/pod net1 /tmp/in.json || fail "ADD of deviceID $PCI_B in the pool exited $RC: $(plugin_said)" || return 1
    ! host_has "$B" || { fail "ADD of deviceID $PCI_B exited 0 but $B is still in the host"; return 1; }
    host_has "$A" || fail "ADD of deviceID $PCI_B took $A, the pool's first" || return 1
    cni DEL ctr-in /run/netns/pod net1 /tmp/in.json || fail "DEL exited $RC: $(plugin_said)" || return 1
    host_has "$B" || fail "after DEL the host has no $B" || return 1
    # The pod dies without DEL: the NIC comes back as net1, and the next ADD's deviceID names it by PCI.
    cni ADD ctr-in /run/netns/pod net1 /tmp/in.json || fail "second ADD of $PCI_B exited $RC: $(plugin_said)" || return 1
    kill_pod pod "$PCI_B" || fail "setup: $PCI_B did not come back to the host within 15s of deleting the pod" || return 1
    state
    newpod pod2
    cni ADD ctr-next /run/netns/pod2 net1 /tmp/in.json || fail "ADD of refunded $PCI_B (deviceID in the pool) exited $RC: $(plugin_said)" || return 1
    pod_has pod2 net1 || fail "ADD exited 0 but pod2 has no net1" || return 1
    cni DEL ctr-next /run/netns/pod2 net1 /tmp/in.json || fail "DEL exited $RC: $(plugin_said)" || return 1
    host_has "$B" || fail "after the last DEL the host has no $B (host links: $(host_links))" || return 1
}

run_case probe case_probe
run_case add-pciBusID case_add_pci
run_case add-kernelpath case_add_kernelpath
run_case add-deviceID-static-ipam case_add_deviceid_ipam
run_case rename-then-move-up-device case_fallback_up
run_case del-restores-name-and-up case_del_restores
run_case dead-netns-then-del case_dead_pod_del
run_case dead-netns-then-gc case_dead_pod_gc
run_case uio-pci-generic-pciID case_userspace
run_case uio-function-shared-by-two-networks case_userspace_shared
run_case pool-by-driver-virtio_net case_pool_by_driver
run_case pool-deviceID-inside-and-outside case_pool_device_id
reset
say "CONFORMANCE-DONE $PASSED passed, $FAILED failed"
sync
poweroff -f
