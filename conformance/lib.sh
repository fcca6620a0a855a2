# shellcheck shell=bash
# Shared helpers for the conformance suites (bash; source it, do not run it).
#
# Every link and netns a suite makes is named "t<suite><pid>…" and is removed by the
# EXIT trap, also when a case fails half-way. The host's eth0, lo, ifb0 and ifb1 are never
# touched: every helper that changes a link refuses names that do not carry the run's tag.

CF_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CF_REPO=$(cd "$CF_ROOT/.." && pwd)
CF_BUILD=${CF_BUILD:-$CF_REPO/build/conformance}

CF_PASSED=0 CF_FAILED=0 CF_SKIPPED=0
CF_TAG=""
CF_TMP=""
CF_RESULTS=""          # file collecting "VERDICT name" lines (for compare.sh)
CF_LINKS=()            # host links to delete on exit
CF_NETNS=()            # netns names to delete on exit
CF_EXIT_HOOKS=()       # extra commands to run on exit (before links/netns go)

# cf_init SUITE-LETTERS: sets CF_TAG (t + 2 letters + pid, ≤ 9 chars) and the exit trap.
cf_init() {
    local letters=$1
    CF_TAG="t${letters}$(($$ % 100000))"
    CF_TMP=$(mktemp -d "/tmp/${CF_TAG}.XXXXXX")
    CF_RESULTS=${CF_RESULTS_FILE:-$CF_TMP/results}
    trap cf_cleanup EXIT
    trap 'exit 130' INT TERM
}

cf_cleanup() {
    local rc=$? hook ns l
    set +e
    for hook in "${CF_EXIT_HOOKS[@]}"; do eval "$hook" >/dev/null 2>&1; done
    for ns in "${CF_NETNS[@]}"; do
        [[ $ns == t* ]] && ip netns del "$ns" >/dev/null 2>&1
    done
    for l in "${CF_LINKS[@]}"; do cf_safe_name "$l" && ip link del "$l" >/dev/null 2>&1; done
    # Anything else carrying our tag (a device renamed by a plugin, a refunded one).
    if [[ -n $CF_TAG ]]; then
        ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
            while read -r l; do [[ $l == "$CF_TAG"* ]] && cf_safe_name "$l" && ip link del "$l" >/dev/null 2>&1; done
        ip netns list 2>/dev/null | awk '{print $1}' |
            while read -r ns; do [[ $ns == "$CF_TAG"* ]] && ip netns del "$ns" >/dev/null 2>&1; done
    fi
    [[ -n $CF_TMP && -d $CF_TMP && -z ${CF_KEEP_TMP:-} ]] && rm -rf "$CF_TMP"
    return $rc
}

# A name we may create, change or delete: ours, and never one of the host's own.
cf_safe_name() {
    case $1 in
        eth0 | lo | ifb0 | ifb1 | "") return 1 ;;
        t*) return 0 ;;
        *) return 1 ;;
    esac
}

# --- verdicts -------------------------------------------------------------------

pass() {
    echo "PASS $1"
    echo "PASS $1" >>"$CF_RESULTS"
    CF_PASSED=$((CF_PASSED + 1))
}
fail() {
    echo "FAIL $1: $2"
    echo "FAIL $1: $2" >>"$CF_RESULTS"
    CF_FAILED=$((CF_FAILED + 1))
}
skip() {
    echo "SKIP $1: $2"
    echo "SKIP $1: $2" >>"$CF_RESULTS"
    CF_SKIPPED=$((CF_SKIPPED + 1))
}
# verdict NAME WHY: PASS when WHY is empty, else FAIL with WHY.
verdict() { if [[ -z $2 ]]; then pass "$1"; else fail "$1" "$2"; fi; }

cf_summary() {
    if ((CF_SKIPPED)); then
        echo "$CF_PASSED passed, $CF_FAILED failed, $CF_SKIPPED skipped"
    else
        echo "$CF_PASSED passed, $CF_FAILED failed"
    fi
    ((CF_FAILED == 0))
}

# --- plugin under test ----------------------------------------------------------

# cf_plugin_args "$@": parses --plugin PATH (default: the repo's dist/host-device);
# sets CF_PLUGIN (absolute) and CF_ARGS (the other arguments).
cf_plugin_args() {
    CF_PLUGIN=$CF_REPO/dist/host-device
    CF_ARGS=()
    while (($#)); do
        case $1 in
            --plugin) CF_PLUGIN=$2; shift 2 ;;
            --plugin=*) CF_PLUGIN=${1#--plugin=}; shift ;;
            *) CF_ARGS+=("$1"); shift ;;
        esac
    done
    CF_PLUGIN=$(realpath "$CF_PLUGIN")
    [[ -x $CF_PLUGIN ]] || { echo "plugin $CF_PLUGIN is not an executable" >&2; exit 2; }
    return 0
}

# cf_bindir: a private plugin dir holding the plugin under test as "host-device".
cf_bindir() {
    local dir=$CF_TMP/bin
    mkdir -p "$dir"
    cp "$CF_PLUGIN" "$dir/host-device"
    echo "$dir"
}

# --- links and namespaces ---------------------------------------------------------

# cf_veth NAME [PEER]: a veth pair in the host, NAME up, both deleted on exit.
cf_veth() {
    local name=$1 peer=${2:-${1}p}
    cf_safe_name "$name" && cf_safe_name "$peer" || { echo "refusing link name $name/$peer" >&2; return 1; }
    ip link add "$name" type veth peer name "$peer" || return 1
    CF_LINKS+=("$name" "$peer")
    ip link set "$name" up
}

# cf_netns NAME: a named netns (/run/netns/NAME) with lo up, deleted on exit.
cf_netns() {
    cf_safe_name "$1" || return 1
    ip netns add "$1" || return 1
    CF_NETNS+=("$1")
    ip -n "$1" link set lo up
}

# link_line [NS] DEV: the `ip -o link` line of DEV (in NS, or the host when NS is "-").
link_line() {
    if [[ $1 == - ]]; then ip -o link show dev "$2" 2>/dev/null; else ip -n "$1" -o link show dev "$2" 2>/dev/null; fi
}
link_exists() { [[ -n $(link_line "$1" "$2") ]]; }
link_is_up() { link_line "$1" "$2" | grep -qE '<([^>]*,)?UP(,[^>]*)?>'; }
link_mac() { link_line "$1" "$2" | grep -o 'link/ether [0-9a-f:]*' | awk '{print $2}'; }
link_mtu() { link_line "$1" "$2" | grep -o 'mtu [0-9]*' | awk '{print $2}'; }
# link_has_addr NS DEV CIDR
link_has_addr() {
    local out
    if [[ $1 == - ]]; then out=$(ip -o addr show dev "$2" 2>/dev/null); else out=$(ip -n "$1" -o addr show dev "$2" 2>/dev/null); fi
    grep -qw "inet6\? $3" <<<"$out"
}

# expect_in_pod NS IFNAME MAC [CIDR]: echoes why not, or nothing when all holds.
expect_in_pod() {
    local ns=$1 ifname=$2 mac=$3 cidr=${4:-}
    link_exists "$ns" "$ifname" || { echo "no $ifname in netns $ns ($(ip -n "$ns" -br link 2>&1 | tr '\n' ' '))"; return; }
    [[ $(link_mac "$ns" "$ifname") == "$mac" ]] || { echo "$ifname in $ns has MAC $(link_mac "$ns" "$ifname"), expected $mac"; return; }
    link_is_up "$ns" "$ifname" || { echo "$ifname in $ns is not up"; return; }
    if [[ -n $cidr ]] && ! link_has_addr "$ns" "$ifname" "$cidr"; then
        echo "$ifname in $ns lacks $cidr ($(ip -n "$ns" -o addr show dev "$ifname" | awk '{print $4}' | tr '\n' ' '))"
    fi
}

# expect_home DEV MAC [up|down]: echoes why not, or nothing when DEV is back in the host.
expect_home() {
    local dev=$1 mac=$2 state=${3:-up}
    link_exists - "$dev" || { echo "$dev is not back in the host"; return; }
    [[ $(link_mac - "$dev") == "$mac" ]] || { echo "host $dev has MAC $(link_mac - "$dev"), expected $mac"; return; }
    if [[ $state == up ]] && ! link_is_up - "$dev"; then echo "host $dev came back down (it was up)"; fi
    if [[ $state == down ]] && link_is_up - "$dev"; then echo "host $dev came back up (it was down)"; fi
}

# wait_until SECONDS CMD...: polls CMD every 0.2 s.
wait_until() {
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        ((SECONDS >= deadline)) && return 1
        sleep 0.2
    done
}

# cf_new_case: a fresh veth end (DEV, up; its MAC and MTU) and a fresh netns (NS, NETNS), with
# CID and IFN=net1 for the case; N counts the cases of a suite.
cf_new_case() {
    N=$((N + 1))
    DEV=${CF_TAG}c${N}
    NS=${CF_TAG}n${N}
    NETNS=/run/netns/$NS
    CID=${CF_TAG}-$N
    IFN=net1
    cf_veth "$DEV" && cf_netns "$NS" || { echo "setup failed" >&2; exit 3; }
    MAC=$(link_mac - "$DEV")
    MTU=$(link_mtu - "$DEV")
}
