# shellcheck shell=bash
# The namespace lab shared by tools/lab and tests/e2e: one client, one director, one switch and
# two real servers, each in its own network namespace, wired the way the LVS experiments wire them.
# `lab_mode nat|tun|dr` picks the experiment (default nat); lab_up builds it.
#
# nat (LVS-NAT): two segments, the director in between; the reals' gateway is the director.
#
#   lbt-client           lbt-dir (lb runs here)          lbt-sw             lbt-rs1 / lbt-rs2
#   eth0 198.51.100.2 -- lb-ext    [lb]    lb-int -- sw-dir  br0  sw-rs1 -- eth0 10.10.0.2
#   gw 198.51.100.1       (no IP)           (no IP)               sw-rs2 -- eth0 10.10.0.3
#                                                                            gw 10.10.0.1
#
# lb owns lb-ext (DPDK port 0, 198.51.100.1, VIP 198.51.100.10) and lb-int (port 1, 10.10.0.1)
# through net_af_packet.
#
# tun (LVS-TUN) and dr (LVS-DR): one segment, everybody on one bridge; the reals hold the VIP
# and answer the client directly, the director only sees the client's half of each connection.
#
#   lbt-client eth0 198.51.100.2 -- sw-cl  \
#   lbt-dir    lb-ext  [lb]          -- sw-dir  br0 (lbt-sw)
#   lbt-rs1    eth0 198.51.100.11 -- sw-rs1 /  |
#   lbt-rs2    eth0 198.51.100.12 -- sw-rs2 ---'
#
# lb owns lb-ext (DPDK port 0, 198.51.100.1/24, VIP 198.51.100.10). The reals hold the VIP as a
# /32 with arp_ignore=1 / arp_announce=2 (so only lb answers ARP for it): dr on lo; tun on the
# TUN device tunl-lb of lb-ipip-decap, the user-space IP-in-IP decapsulator (this kernel may
# have no ipip module), with rp_filter off. Their web and UDP servers listen on the VIP (ports
# 80 and 53: tun and dr cannot rewrite ports).
#
# In every mode the director's kernel holds no address on lb's interfaces, so everything
# crossing them is lb. Only namespaces are created: the host's own interfaces and routes are
# never touched.
#
# Source this file; it defines functions and variables only. All functions need root.

LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_E2E_DIR="$LAB_REPO/tests/e2e"
LAB_PY=/usr/bin/python3  # Debian's interpreter, not whatever python3 is first on PATH
LAB_BUILD=${LB_BUILD_DIR:-build}
case "$LAB_BUILD" in /*) ;; *) LAB_BUILD="$LAB_REPO/$LAB_BUILD" ;; esac
LAB_LB="$LAB_BUILD/lb/lb"
LAB_LBCTL="$LAB_BUILD/tools/lbctl"
# LB_LAB_PREFIX (default lbt) names the namespaces and the state directory, so that two labs
# (two checkouts, say) can run at once.
LAB_PREFIX=${LB_LAB_PREFIX:-lbt}
LAB_RUN=${LAB_RUN:-/run/$LAB_PREFIX}  # state: pid files, generated configs, logs, control socket

LAB_NS_CLIENT=$LAB_PREFIX-client
LAB_NS_DIR=$LAB_PREFIX-dir
LAB_NS_SW=$LAB_PREFIX-sw
LAB_NS_RS1=$LAB_PREFIX-rs1
LAB_NS_RS2=$LAB_PREFIX-rs2
LAB_ALL_NS=("$LAB_NS_CLIENT" "$LAB_NS_DIR" "$LAB_NS_SW" "$LAB_NS_RS1" "$LAB_NS_RS2")

LAB_DECAP="$LAB_BUILD/tools/lb-ipip-decap"
LAB_TUN_DEV=tunl-lb  # the decapsulator's TUN device on each real (tun mode)

LAB_CLIENT_IP=198.51.100.2
LAB_DIR_EXT_IP=198.51.100.1
LAB_VIP=198.51.100.10
LAB_HTTP_PORT=80
LAB_UDP_VPORT=53

# lab_mode nat|tun|dr: the experiment lab_up builds, and the addresses that go with it:
#   LAB_RS1_IP, LAB_RS2_IP  the reals' own addresses
#   LAB_DIR_RS_IP           the director's address on the reals' segment
#   LAB_DIR_INT_IP          nat only: the director's inside address (the reals' gateway)
#   LAB_UDP_RPORT           the reals' UDP port (nat rewrites 53 to it; tun and dr cannot)
# shellcheck disable=SC2034  # read by the scripts that source this file
lab_mode() {
    case "$1" in
    nat)
        LAB_DIR_INT_IP=10.10.0.1
        LAB_RS1_IP=10.10.0.2
        LAB_RS2_IP=10.10.0.3
        LAB_DIR_RS_IP=$LAB_DIR_INT_IP
        LAB_UDP_RPORT=5353
        ;;
    tun | dr)
        LAB_DIR_INT_IP=
        LAB_RS1_IP=198.51.100.11
        LAB_RS2_IP=198.51.100.12
        LAB_DIR_RS_IP=$LAB_DIR_EXT_IP
        LAB_UDP_RPORT=$LAB_UDP_VPORT
        ;;
    *)
        lab_die "unknown lab mode '$1' (nat, tun or dr)"
        return 1
        ;;
    esac
    LAB_MODE=$1
}
lab_mode nat

LAB_LB_PID=

lab_log() { echo "lab: $*" >&2; }
lab_die() {
    echo "lab: error: $*" >&2
    return 1
}

# One lab at a time on a machine: tools/lab and the e2e test take this lock (released on exit;
# the processes the lab starts do not inherit it).
lab_lock() {
    local wait_s=${1:-1200}
    exec 9>"/run/$LAB_PREFIX.lock"
    if ! flock -n 9; then
        lab_log "another lab or e2e run holds /run/$LAB_PREFIX.lock; waiting up to ${wait_s}s"
        flock -w "$wait_s" 9 || {
            lab_die "could not get /run/$LAB_PREFIX.lock"
            return 1
        }
    fi
}

lab_require_root() {
    [ "$(id -u)" -eq 0 ] || lab_die "must run as root (network namespaces, DPDK)"
}

lab_ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx -- "$1"; }

# Offloads off so every frame crossing lb is a real, fully checksummed, MTU-sized packet.
lab_offloads_off() {  # NS IF
    ip netns exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 ||
        ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true
}

lab_quiet_ns() {  # no IPv6 chatter (router solicitations, DAD, MLD) in namespace NS
    ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
        net.ipv6.conf.default.disable_ipv6=1 >/dev/null 2>&1 || true
}

# Kill every process living in one of the lab's namespaces (we started them all), by PID.
lab_kill_ns_procs() {
    local ns pids=() pid i
    for ns in "${LAB_ALL_NS[@]}"; do
        lab_ns_exists "$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            pids+=("$pid")
        done
    done
    [ ${#pids[@]} -eq 0 ] && return 0
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for i in $(seq 1 50); do  # up to 5 s
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    sleep 0.2
}

# Tear everything down: processes, namespaces (and with them every veth and the bridge).
# Idempotent: safe on a half-built lab or on none at all.
lab_down() {
    local ns
    lab_kill_ns_procs
    for ns in "${LAB_ALL_NS[@]}"; do
        if lab_ns_exists "$ns"; then
            ip netns del "$ns" 2>/dev/null || true
        fi
    done
    rm -f "$LAB_RUN"/*.pid 2>/dev/null || true
    LAB_LB_PID=
}

# Build the namespaces and wires of the experiment chosen with lab_mode (default nat). Deletes
# the leftovers of an earlier run first.
lab_up() {
    lab_require_root || return 1
    lab_down
    mkdir -p "$LAB_RUN"
    local ns
    for ns in "${LAB_ALL_NS[@]}"; do
        ip netns add "$ns" || return 1
        lab_quiet_ns "$ns"
        ip -n "$ns" link set lo up
    done

    # The switch: a plain bridge, no STP, forwarding at once.
    ip -n "$LAB_NS_SW" link add br0 type bridge stp_state 0 forward_delay 0 || return 1
    ip -n "$LAB_NS_SW" link set br0 up

    case "$LAB_MODE" in
    nat) lab_up_nat ;;
    tun | dr) lab_up_segment ;;
    esac
}

# Plugs veth NS/IF into the switch as port SWPORT.
lab_sw_port() {  # NS IF SWPORT
    ip link add "$2" netns "$1" type veth peer name "$3" netns "$LAB_NS_SW" || return 1
    ip -n "$LAB_NS_SW" link set "$3" master br0
    lab_offloads_off "$LAB_NS_SW" "$3"
    ip -n "$LAB_NS_SW" link set "$3" up
}

# The director's side of a veth: link up, no addresses, no IPv6, offloads off. lb attaches to it
# with af_packet.
lab_dir_port() {  # IF
    ip netns exec "$LAB_NS_DIR" sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1" >/dev/null 2>&1 || true
    lab_offloads_off "$LAB_NS_DIR" "$1"
    ip -n "$LAB_NS_DIR" link set "$1" up
}

lab_host_port() {  # NS IP/LEN: eth0 of a client or real, offloads off, address, up
    lab_offloads_off "$1" eth0
    ip -n "$1" addr add "$2" dev eth0
    ip -n "$1" link set eth0 up
}

lab_up_nat() {
    # client eth0 <-> director lb-ext; director lb-int <-> switch; reals <-> switch
    ip link add eth0 netns "$LAB_NS_CLIENT" type veth peer name lb-ext netns "$LAB_NS_DIR" ||
        return 1
    lab_sw_port "$LAB_NS_DIR" lb-int sw-dir || return 1
    lab_sw_port "$LAB_NS_RS1" eth0 sw-rs1 || return 1
    lab_sw_port "$LAB_NS_RS2" eth0 sw-rs2 || return 1
    lab_dir_port lb-ext
    lab_dir_port lb-int

    # The client, on-link with the VIP.
    lab_host_port "$LAB_NS_CLIENT" "$LAB_CLIENT_IP/24"
    ip -n "$LAB_NS_CLIENT" route add default via "$LAB_DIR_EXT_IP"

    # The real servers: the director's inside address is their default gateway (LVS-NAT).
    local rs ns ip
    for rs in "$LAB_NS_RS1:$LAB_RS1_IP" "$LAB_NS_RS2:$LAB_RS2_IP"; do
        ns=${rs%%:*}
        ip=${rs#*:}
        lab_host_port "$ns" "$ip/24"
        ip -n "$ns" route add default via "$LAB_DIR_INT_IP"
    done
}

# tun and dr: client, director and reals on one bridge (the LVS "one network" set-up).
lab_up_segment() {
    lab_sw_port "$LAB_NS_CLIENT" eth0 sw-cl || return 1
    lab_sw_port "$LAB_NS_DIR" lb-ext sw-dir || return 1
    lab_sw_port "$LAB_NS_RS1" eth0 sw-rs1 || return 1
    lab_sw_port "$LAB_NS_RS2" eth0 sw-rs2 || return 1
    lab_dir_port lb-ext
    lab_host_port "$LAB_NS_CLIENT" "$LAB_CLIENT_IP/24"

    local rs ns ip
    for rs in "$LAB_NS_RS1:$LAB_RS1_IP" "$LAB_NS_RS2:$LAB_RS2_IP"; do
        ns=${rs%%:*}
        ip=${rs#*:}
        # The VIP is on this host too, but only lb may answer ARP for it: reply only for
        # addresses of the interface asked on (arp_ignore=1), and announce only eth0's own
        # address as the sender of our ARP requests (arp_announce=2).
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.arp_ignore=1 \
            net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.default.arp_ignore=1 \
            net.ipv4.conf.default.arp_announce=2 >/dev/null || return 1
        lab_host_port "$ns" "$ip/24"
        ip netns exec "$ns" sysctl -qw net.ipv4.conf.eth0.arp_ignore=1 \
            net.ipv4.conf.eth0.arp_announce=2 >/dev/null || return 1
        if [ "$LAB_MODE" = dr ]; then
            ip -n "$ns" addr add "$LAB_VIP/32" dev lo || return 1
        else
            lab_start_decap "$ns" "$ip" || return 1
        fi
    done
}

# tun: start lb-ipip-decap on real NS (own address IP), wait for its TUN device, give it the VIP.
lab_start_decap() {  # NS IP
    local ns=$1 ip=$2 name=${1#"$LAB_PREFIX"-} i
    [ -x "$LAB_DECAP" ] || {
        lab_die "$LAB_DECAP not built"
        return 1
    }
    # rp_filter off: the client's packets come in on the TUN device, its route is via eth0.
    # "default" covers the TUN device created below, "all" because the check uses the maximum.
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0 \
        net.ipv4.conf.default.rp_filter=0 >/dev/null || return 1
    ip netns exec "$ns" "$LAB_DECAP" --dev "$LAB_TUN_DEV" --local "$ip" \
        >"$LAB_RUN/decap-$name.log" 2>&1 9>&- &
    echo $! >"$LAB_RUN/decap-$name.pid"
    for i in $(seq 1 50); do  # up to 5 s
        ip -n "$ns" link show "$LAB_TUN_DEV" >/dev/null 2>&1 && break
        kill -0 "$(cat "$LAB_RUN/decap-$name.pid")" 2>/dev/null || break
        sleep 0.1
    done
    ip -n "$ns" link show "$LAB_TUN_DEV" >/dev/null 2>&1 || {
        lab_die "lb-ipip-decap on $name did not create $LAB_TUN_DEV:" \
            "$(cat "$LAB_RUN/decap-$name.log")"
        return 1
    }
    ip netns exec "$ns" sysctl -qw "net.ipv4.conf.$LAB_TUN_DEV.rp_filter=0" >/dev/null || return 1
    ip -n "$ns" addr add "$LAB_VIP/32" dev "$LAB_TUN_DEV" || return 1
    ip -n "$ns" link set "$LAB_TUN_DEV" up mtu 1500 || return 1
}

# tun: ask every decapsulator for its counters (SIGUSR1) and print the latest line of each, as
# `rs1 received=... delivered=... ...`.
lab_decap_counters() {
    local name pid
    for name in rs1 rs2; do
        pid=$(cat "$LAB_RUN/decap-$name.pid" 2>/dev/null) || continue
        kill -USR1 "$pid" 2>/dev/null || continue
    done
    sleep 0.3
    for name in rs1 rs2; do
        [ -f "$LAB_RUN/decap-$name.log" ] || continue
        echo "$name $(grep 'received=' "$LAB_RUN/decap-$name.log" | tail -n 1 | sed 's/^[^:]*: //')"
    done
}

# Start httpd.py and udp_echo.py on both reals and wait until they answer locally. In nat they
# listen on the real's own address; in tun and dr on the VIP (and name the real's address).
lab_start_reals() {
    mkdir -p "$LAB_RUN"
    local spec ns name ip listen
    for spec in "$LAB_NS_RS1:rs1:$LAB_RS1_IP" "$LAB_NS_RS2:rs2:$LAB_RS2_IP"; do
        IFS=: read -r ns name ip <<<"$spec"
        listen=$ip
        [ "$LAB_MODE" = nat ] || listen=$LAB_VIP
        ip netns exec "$ns" "$LAB_PY" "$LAB_E2E_DIR/httpd.py" --name "$name" --addr "$ip" \
            --listen "$listen" --port "$LAB_HTTP_PORT" >"$LAB_RUN/httpd-$name.log" 2>&1 9>&- &
        echo $! >"$LAB_RUN/httpd-$name.pid"
        ip netns exec "$ns" "$LAB_PY" "$LAB_E2E_DIR/udp_echo.py" --name "$name" --addr "$ip" \
            --listen "$listen" --port "$LAB_UDP_RPORT" >"$LAB_RUN/udp-$name.log" 2>&1 9>&- &
        echo $! >"$LAB_RUN/udp-$name.pid"
    done
    for spec in "$LAB_NS_RS1:rs1:$LAB_RS1_IP" "$LAB_NS_RS2:rs2:$LAB_RS2_IP"; do
        IFS=: read -r ns name ip <<<"$spec"
        listen=$ip
        [ "$LAB_MODE" = nat ] || listen=$LAB_VIP
        local ok=0 i
        for i in $(seq 1 50); do  # up to 10 s
            if ip netns exec "$ns" curl -s --max-time 1 -o /dev/null \
                "http://$listen:$LAB_HTTP_PORT/" &&
                ip netns exec "$ns" "$LAB_PY" "$LAB_E2E_DIR/client.py" udp --host "$listen" \
                    --port "$LAB_UDP_RPORT" --count 1 --timeout 0.5 >/dev/null 2>&1; then
                ok=1
                break
            fi
            sleep 0.2
        done
        [ $ok -eq 1 ] || {
            lab_die "servers on $name did not come up; see $LAB_RUN/httpd-$name.log"
            return 1
        }
    done
}

# lab_make_conf SRC DST SOCKET: copy a config, pointing its control socket at SOCKET.
lab_make_conf() {
    local src=$1 dst=$2 sock=$3
    [ -f "$src" ] || {
        lab_die "config $src not found"
        return 1
    }
    sed -E "s#(socket[[:space:]]*=[[:space:]]*)\"[^\"]*\"#\\1\"$sock\"#" "$src" >"$dst"
    grep -q "\"$sock\"" "$dst" || {
        lab_die "could not set the control socket in $dst (no 'socket = \"...\"' in $src?)"
        return 1
    }
}

# lab_start_lb CONF LOG SOCKET [TIMEOUT_S]: start lb in the director namespace, wait for its
# control socket. Sets LAB_LB_PID. Fails if lb exits or the socket does not appear in time.
lab_start_lb() {
    local conf=$1 log=$2 sock=$3 timeout=${4:-30}
    [ -x "$LAB_LB" ] || {
        lab_die "$LAB_LB not built"
        return 1
    }
    rm -f "$sock"
    mkdir -p "$(dirname "$sock")"
    ip netns exec "$LAB_NS_DIR" "$LAB_LB" -c "$conf" >"$log" 2>&1 9>&- &
    LAB_LB_PID=$!
    echo "$LAB_LB_PID" >"$LAB_RUN/lb.pid"
    local i
    for i in $(seq 1 $((timeout * 10))); do
        if ! kill -0 "$LAB_LB_PID" 2>/dev/null; then
            wait "$LAB_LB_PID" 2>/dev/null
            local rc=$?
            LAB_LB_PID=
            lab_die "lb exited (status $rc) before its control socket appeared; log: $log"
            return 1
        fi
        [ -S "$sock" ] && return 0
        sleep 0.1
    done
    lab_die "lb control socket $sock did not appear within ${timeout}s; log: $log"
    return 1
}

# lab_stop_lb [TIMEOUT_S]: SIGTERM lb and wait up to TIMEOUT_S. Sets LAB_LB_STATUS to lb's exit
# status, or to "timeout" (lb was then killed with SIGKILL) or "not-running"; returns 0 only if lb
# exited by itself. Do not call it in a subshell: only this shell can wait for lb.
LAB_LB_STATUS=
lab_stop_lb() {
    local timeout=${1:-5} pid=$LAB_LB_PID i
    LAB_LB_STATUS=not-running
    [ -n "$pid" ] || return 1
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 $((timeout * 10))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            LAB_LB_STATUS=0
            wait "$pid" 2>/dev/null || LAB_LB_STATUS=$?
            LAB_LB_PID=
            rm -f "$LAB_RUN/lb.pid"
            return 0
        fi
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    LAB_LB_PID=
    rm -f "$LAB_RUN/lb.pid"
    LAB_LB_STATUS=timeout
    return 1
}

lab_lbctl() {  # lab_lbctl SOCKET ARGS...
    local sock=$1
    shift
    timeout 10 "$LAB_LBCTL" --socket "$sock" "$@"
}

lab_client() { ip netns exec "$LAB_NS_CLIENT" "$@"; }
lab_client_py() { ip netns exec "$LAB_NS_CLIENT" "$LAB_PY" "$LAB_E2E_DIR/client.py" "$@"; }

# A stand-in director made of the kernel (addresses, forwarding, nftables DNAT with a round-robin
# counter) instead of lb: checks the lab, servers and client helpers without lb. Needs `nft`.
lab_kernel_director() {
    command -v nft >/dev/null || {
        lab_die "the kernel director needs nftables (apt-get install nftables)"
        return 1
    }
    local d=$LAB_NS_DIR
    ip -n "$d" addr add "$LAB_DIR_EXT_IP/24" dev lb-ext
    ip -n "$d" addr add "$LAB_VIP/32" dev lb-ext
    ip -n "$d" addr add "$LAB_DIR_INT_IP/24" dev lb-int
    ip netns exec "$d" sysctl -qw net.ipv4.ip_forward=1 >/dev/null
    ip netns exec "$d" nft -f - <<EOF
table ip lbt {
    chain pre {
        type nat hook prerouting priority dstnat;
        ip daddr $LAB_VIP tcp dport $LAB_HTTP_PORT dnat to numgen inc mod 2 map { 0 : $LAB_RS1_IP, 1 : $LAB_RS2_IP }
        ip daddr $LAB_VIP udp dport $LAB_UDP_VPORT dnat to numgen inc mod 2 map { 0 : $LAB_RS1_IP, 1 : $LAB_RS2_IP } : $LAB_UDP_RPORT
    }
}
EOF
}

# ---- suite scaffolding (test_lab, test_sched, test_ctl, test_hostile) -------------------------

# The script's leading comment block, without the '# ': its --help.
suite_help() { awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; }

# suite_args "$@": the options the suites share: --workers 1|2|1,2, --keep-tmp, --help.
suite_args() {
    WORKERS=(1 2)
    KEEP_TMP=0
    while [ $# -gt 0 ]; do
        case "$1" in
        --workers)
            IFS=, read -r -a WORKERS <<<"${2:?--workers needs a value}"
            shift 2
            ;;
        --keep-tmp)
            KEEP_TMP=1
            shift
            ;;
        -h | --help)
            suite_help
            exit 0
            ;;
        *)
            echo "unknown argument: $1 (see --help)" >&2
            exit 2
            ;;
        esac
    done
}

# suite_begin NAME: root and the lab lock; $TMP with $LAB_RUN in it (kept when a check failed or
# with --keep-tmp); the counters; an EXIT trap that stops what the suite started (the PIDs in
# BG_PIDS, lb), calls suite_cleanup_more when the suite defines one, and takes the lab down.
suite_begin() {
    SUITE=$1
    lab_require_root || exit 2
    lab_lock || exit 2
    TMP=$(mktemp -d "/tmp/$LAB_PREFIX-$SUITE.XXXXXX")
    export LAB_RUN="$TMP/run"
    mkdir -p "$LAB_RUN"
    PASSED=0
    FAILED=0
    RUN_FAILED=0
    BG_PIDS=()
    trap suite_cleanup EXIT
    trap 'echo "$SUITE: interrupted" >&2; exit 130' INT TERM
}

suite_cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    [ -n "$LAB_LB_PID" ] && lab_stop_lb 3 >/dev/null
    if declare -F suite_cleanup_more >/dev/null; then
        suite_cleanup_more
    fi
    lab_down
    if [ "$KEEP_TMP" -eq 1 ] || [ "$FAILED" -ne 0 ]; then
        echo "$SUITE: logs and configs kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}

pass() {
    echo "PASS $1"
    PASSED=$((PASSED + 1))
}
fail() {  # fail NAME WHY... (the words of WHY are joined with spaces)
    local name=$1
    shift
    echo "FAIL $name: $*"
    FAILED=$((FAILED + 1))
    RUN_FAILED=$((RUN_FAILED + 1))
}
skip() { echo "SKIP $1: $2"; }
note() { echo "  $*"; }
oneline() { echo "$*" | tr '\n' ' '; }
