# shellcheck shell=bash
# The namespace lab shared by tools/lab and tests/e2e: one client, one director, one switch and
# two real servers, each in its own network namespace, the way the LVS-NAT experiment wires them.
#
#   lbt-client           lbt-dir (lb runs here)          lbt-sw             lbt-rs1 / lbt-rs2
#   eth0 198.51.100.2 -- lb-ext    [lb]    lb-int -- sw-dir  br0  sw-rs1 -- eth0 10.10.0.2
#   gw 198.51.100.1       (no IP)           (no IP)               sw-rs2 -- eth0 10.10.0.3
#                                                                            gw 10.10.0.1
#
# lb owns lb-ext (DPDK port 0, 198.51.100.1, VIP 198.51.100.10) and lb-int (port 1, 10.10.0.1)
# through net_af_packet; the director's kernel holds no address, so everything crossing it is lb.
# Only namespaces are created: the host's own interfaces and routes are never touched.
#
# Source this file; it defines functions and variables only. All functions need root.

LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LAB_E2E_DIR="$LAB_REPO/tests/e2e"
LAB_PY=/usr/bin/python3  # Debian's interpreter, not whatever python3 is first on PATH
LAB_BUILD=${LB_BUILD_DIR:-build}
case "$LAB_BUILD" in /*) ;; *) LAB_BUILD="$LAB_REPO/$LAB_BUILD" ;; esac
LAB_LB="$LAB_BUILD/lb/lb"
LAB_LBCTL="$LAB_BUILD/tools/lbctl"
LAB_RUN=${LAB_RUN:-/run/lbt}  # state: pid files, generated configs, logs, control socket

LAB_NS_CLIENT=lbt-client
LAB_NS_DIR=lbt-dir
LAB_NS_SW=lbt-sw
LAB_NS_RS1=lbt-rs1
LAB_NS_RS2=lbt-rs2
LAB_ALL_NS=("$LAB_NS_CLIENT" "$LAB_NS_DIR" "$LAB_NS_SW" "$LAB_NS_RS1" "$LAB_NS_RS2")

LAB_CLIENT_IP=198.51.100.2
LAB_DIR_EXT_IP=198.51.100.1
LAB_VIP=198.51.100.10
LAB_DIR_INT_IP=10.10.0.1
LAB_RS1_IP=10.10.0.2
LAB_RS2_IP=10.10.0.3
LAB_HTTP_PORT=80
LAB_UDP_VPORT=53
LAB_UDP_RPORT=5353

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
    exec 9>"/run/lbt.lock"
    if ! flock -n 9; then
        lab_log "another lab or e2e run holds /run/lbt.lock; waiting up to ${wait_s}s"
        flock -w "$wait_s" 9 || {
            lab_die "could not get /run/lbt.lock"
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

# Build the namespaces and wires. Deletes the leftovers of an earlier run first.
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

    # client eth0 <-> director lb-ext
    ip link add eth0 netns "$LAB_NS_CLIENT" type veth peer name lb-ext netns "$LAB_NS_DIR" ||
        return 1
    # director lb-int <-> switch sw-dir
    ip link add lb-int netns "$LAB_NS_DIR" type veth peer name sw-dir netns "$LAB_NS_SW" ||
        return 1
    # reals eth0 <-> switch sw-rsN
    ip link add eth0 netns "$LAB_NS_RS1" type veth peer name sw-rs1 netns "$LAB_NS_SW" || return 1
    ip link add eth0 netns "$LAB_NS_RS2" type veth peer name sw-rs2 netns "$LAB_NS_SW" || return 1

    local port
    for port in sw-dir sw-rs1 sw-rs2; do
        ip -n "$LAB_NS_SW" link set "$port" master br0
        lab_offloads_off "$LAB_NS_SW" "$port"
        ip -n "$LAB_NS_SW" link set "$port" up
    done

    # The director: link up, no addresses, no IPv6, offloads off. lb attaches with af_packet.
    for port in lb-ext lb-int; do
        ip netns exec "$LAB_NS_DIR" sysctl -qw "net.ipv6.conf.$port.disable_ipv6=1" \
            >/dev/null 2>&1 || true
        lab_offloads_off "$LAB_NS_DIR" "$port"
        ip -n "$LAB_NS_DIR" link set "$port" up
    done

    # The client, on-link with the VIP.
    lab_offloads_off "$LAB_NS_CLIENT" eth0
    ip -n "$LAB_NS_CLIENT" addr add "$LAB_CLIENT_IP/24" dev eth0
    ip -n "$LAB_NS_CLIENT" link set eth0 up
    ip -n "$LAB_NS_CLIENT" route add default via "$LAB_DIR_EXT_IP"

    # The real servers: the director's inside address is their default gateway (LVS-NAT).
    local rs ip
    for rs in "$LAB_NS_RS1:$LAB_RS1_IP" "$LAB_NS_RS2:$LAB_RS2_IP"; do
        ns=${rs%%:*}
        ip=${rs#*:}
        lab_offloads_off "$ns" eth0
        ip -n "$ns" addr add "$ip/24" dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add default via "$LAB_DIR_INT_IP"
    done
}

# Start httpd.py and udp_echo.py on both reals and wait until they answer locally.
lab_start_reals() {
    mkdir -p "$LAB_RUN"
    local spec ns name ip
    for spec in "$LAB_NS_RS1:rs1:$LAB_RS1_IP" "$LAB_NS_RS2:rs2:$LAB_RS2_IP"; do
        IFS=: read -r ns name ip <<<"$spec"
        ip netns exec "$ns" "$LAB_PY" "$LAB_E2E_DIR/httpd.py" --name "$name" --addr "$ip" \
            --port "$LAB_HTTP_PORT" >"$LAB_RUN/httpd-$name.log" 2>&1 9>&- &
        echo $! >"$LAB_RUN/httpd-$name.pid"
        ip netns exec "$ns" "$LAB_PY" "$LAB_E2E_DIR/udp_echo.py" --name "$name" --addr "$ip" \
            --port "$LAB_UDP_RPORT" >"$LAB_RUN/udp-$name.log" 2>&1 9>&- &
        echo $! >"$LAB_RUN/udp-$name.pid"
    done
    for spec in "$LAB_NS_RS1:rs1:$LAB_RS1_IP" "$LAB_NS_RS2:rs2:$LAB_RS2_IP"; do
        IFS=: read -r ns name ip <<<"$spec"
        local ok=0 i
        for i in $(seq 1 50); do  # up to 10 s
            if ip netns exec "$ns" curl -s --max-time 1 -o /dev/null "http://$ip:$LAB_HTTP_PORT/" &&
                ip netns exec "$ns" "$LAB_PY" "$LAB_E2E_DIR/client.py" udp --host "$ip" \
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
