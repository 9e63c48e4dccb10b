#!/usr/bin/env bash
# End-to-end tests of lb's schedulers, persistence and config reload, in the NAT lab (lib.sh),
# with 1 worker and again with 2 workers. Each lb config is conf/nat.conf (nat-2workers.conf)
# with its services replaced by the ones below: one TCP service per check on the VIP, ports 80..,
# all NATed to the reals' port 80 (rs1 10.10.0.2, rs2 10.10.0.3; rs3 10.10.0.4 is a second
# address of rs2's host with its own web server; 10.10.0.9 is a weight-0 real with no host).
#
#   run A (one lb):
#     wrr         :80 wrr 3:1:0, 40 sequential connections: exactly 30/10/0, lbctl Conns agree
#     sh          :81 sh, 20 connections from one client: one real; :82 sh-port: both reals
#     mh          :83 mh, 20 connections from one client: one real, and every client address
#                 of 9 sticks to one real; :84 mh-port: both reals
#     persist     :85 rr persistence 30: client A sticks to one real, client B gets the other
#     wlc         :86 wlc, 40 sequential short connections: 20/20 (+-1)
#     fo          :87 fo 1:3: all to the weight-3 real
#     lc sed nq ovf  :88..91 connections held open one after the other follow IPVS's choices
#                 (lc 1:3 alternates; sed 1:3 rs2 rs2 rs1 rs2 rs2 rs2 rs1; nq 1:3 rs1 then rs2
#                 x5 then rs1; ovf 2:1 rs1 x3 then rs2 x2); afterwards 10 requests succeed
#     dh          :92 dh: every client address reaches the same real
#     sport-reuse :93 and :94 (both rs2 only): one client port to :93, then to :94; the second
#                 connection works (its replies are not taken for the closing first one's)
#     lbctl-list  -L -n: scheduler names, (sh-port) / (mh-port), persistent 30
#     reload-*    :8080 wrr 1:1 with 50 connections held open; SIGHUP with rs1 weight 0, rs2
#                 weight 2, rs3 added (weight 1): the 50 end on the real they started on, 30
#                 new connections go 20/10/0; broken files (syntax, unknown key) and a changed
#                 `workers` are refused by lbctl --reload and the running config stays
#   run B (lb restarted):
#     mh-order    :83 with its reals listed in the other order: each client address reaches the
#                 same real as in run A (Maglev tables do not depend on the order)
#     persist-mask  :85 with persistence_mask 255.255.255.0: clients A and B share one real;
#                 lbctl shows `persistent 30 mask 255.255.255.0`
#
# usage: tests/e2e/test_sched.sh [--workers 1|2|1,2] [--keep-tmp]
# env: LB_BUILD_DIR (default build): where lb/lb and tools/lbctl are.
#
# Prints `PASS name` or `FAIL name: why` per check and ends with `N passed, N failed`.
# Exit status 0 only if nothing failed. Needs root.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"

suite_args "$@"
suite_begin sched

RS1=10.10.0.2
RS2=10.10.0.3
RS3=10.10.0.4    # a second address of rs2's host, with its own web server naming itself rs3
RS_ZERO=10.10.0.9  # weight 0 only: never scheduled, no host
CLIENT_A=$LAB_CLIENT_IP
CLIENT_B=198.51.100.20
# The client's addresses: its own and 8 secondary ones on eth0.
CLIENT_ADDRS=("$CLIENT_A")
for i in $(seq 20 27); do CLIENT_ADDRS+=("198.51.100.$i"); done

# ---- configs ----------------------------------------------------------------------------------

SVCS=()
# svc PORT SCHEDULER EXTRA REAL:WEIGHT...: one TCP service on the VIP, reals on port 80. EXTRA is
# libconfig text added to the service group (e.g. `sched_flags = ["sh-port"];`), or "".
svc() {
    local port=$1 sched=$2 extra=$3 r reals=()
    shift 3
    for r in "$@"; do
        reals+=("{ address = \"${r%%:*}\"; port = 80; forward = \"nat\"; weight = ${r#*:}; }")
    done
    local joined head
    joined=$(printf '%s, ' "${reals[@]}")
    head="{ vip = \"$LAB_VIP\"; port = $port; protocol = \"tcp\"; scheduler = \"$sched\";"
    SVCS+=("  $head${extra:+ $extra}
    reals = ( ${joined%, } ); }")
}

# The services of run A; $1 is the :8080 service's state: before (wrr 1:1) or after (rs1 weight
# 0, rs2 weight 2, rs3 added with weight 1).
services_a() {
    SVCS=()
    svc 80 wrr "" "$RS1:3" "$RS2:1" "$RS_ZERO:0"
    svc 81 sh "" "$RS1:1" "$RS2:1"
    svc 82 sh 'sched_flags = ["sh-port"];' "$RS1:1" "$RS2:1"
    svc 83 mh "" "$RS1:1" "$RS2:1"
    svc 84 mh 'sched_flags = ["mh-port"];' "$RS1:1" "$RS2:1"
    svc 85 rr 'persistence = 30;' "$RS1:1" "$RS2:1"
    svc 86 wlc "" "$RS1:1" "$RS2:1"
    svc 87 fo "" "$RS1:1" "$RS2:3"
    svc 88 lc "" "$RS1:1" "$RS2:3"
    svc 89 sed "" "$RS1:1" "$RS2:3"
    svc 90 nq "" "$RS1:1" "$RS2:3"
    svc 91 ovf "" "$RS1:2" "$RS2:1"
    svc 92 dh "" "$RS1:1" "$RS2:1"
    svc 93 rr "" "$RS2:1"
    svc 94 rr "" "$RS2:1"
    svc 95 rr "" "$RS1:1" "$RS2:1"  # warm_neighbours
    if [ "$1" = before ]; then
        svc 8080 wrr "" "$RS1:1" "$RS2:1"
    else
        svc 8080 wrr "" "$RS1:0" "$RS2:2" "$RS3:1"
    fi
}

services_b() {
    SVCS=()
    svc 83 mh "" "$RS2:1" "$RS1:1"
    svc 85 rr 'persistence = 30; persistence_mask = "255.255.255.0";' "$RS1:1" "$RS2:1"
    svc 95 rr "" "$RS1:1" "$RS2:1"  # warm_neighbours
}

# write_conf WORKERS DST SOCKET: conf/nat.conf (nat-2workers.conf) with the socket set and its
# `services = ( ... );` replaced by SVCS.
write_conf() {
    local w=$1 dst=$2 sock=$3 src tmp
    if [ "$w" -eq 1 ]; then src="$LAB_REPO/conf/nat.conf"; else
        src="$LAB_REPO/conf/nat-${w}workers.conf"
    fi
    tmp="$dst.tmp"
    lab_make_conf "$src" "$tmp" "$sock" || return 1
    {
        printf 'services = (\n'
        local i n=${#SVCS[@]}
        for ((i = 0; i < n; i++)); do
            printf '%s%s\n' "${SVCS[$i]}" "$([ $i -lt $((n - 1)) ] && echo ,)"
        done
        printf ');\n'
    } >"$dst.svcs"
    awk -v f="$dst.svcs" '
        /^services[[:space:]]*=/ { while ((getline l < f) > 0) print l; skip = 1; done = 1; next }
        skip && /^\);/ { skip = 0; next }
        !skip { print }
        END { exit !done }' "$tmp" >"$dst" || {
        lab_die "no 'services = (' in $src"
        return 1
    }
    rm -f "$tmp" "$dst.svcs"
}

# ---- helpers ----------------------------------------------------------------------------------

# The client's source ports come from one counter, so that no two connections of a run share a
# (client address, port) (see check_sport_reuse for what lb does when they do). Below the
# kernel's ephemeral range (32768..), so they never meet a port the kernel picks.
SPORT=20000
# seq_run PORT COUNT [SOURCE [SPORT]]: COUNT sequential GET / to VIP:PORT, from source ports
# SPORT, SPORT+1, ... (default: the next ones of the counter). Sets OUT, RC, PER (by-server,
# e.g. "rs1:30,rs2:10") and ORDER (e.g. "rs1,rs1,rs2").
seq_run() {
    local src=() sport=${4:-$SPORT}
    [ -n "${3:-}" ] && src=(--source "$3")
    [ -z "${4:-}" ] && SPORT=$((SPORT + $2))
    OUT=$(lab_client timeout 60 "$LAB_PY" "$LAB_E2E_DIR/client.py" seq --host "$LAB_VIP" \
        --port "$1" --count "$2" --timeout 3 --sport "$sport" "${src[@]}" 2>&1) && RC=0 || RC=$?
    PER=$(echo "$OUT" | sed -n 's/^seq .* by-server=\([^ ]*\) order=.*/\1/p')
    ORDER=$(echo "$OUT" | sed -n 's/^seq .* order=\([^ ]*\)$/\1/p')
}
oneline() { echo "$*" | tr '\n' ' '; }

# hold_run PORT COUNT: COUNT connections held open one after the other, then ended at once.
# Sets OUT, RC, ORDER (the servers in opening order).
hold_run() {
    OUT=$(lab_client timeout 60 "$LAB_PY" "$LAB_E2E_DIR/client.py" hold --host "$LAB_VIP" \
        --port "$1" --count "$2" --timeout 5 --sport "$SPORT" 2>&1) && RC=0 || RC=$?
    SPORT=$((SPORT + $2))
    ORDER=$(echo "$OUT" | sed -n 's/^hold open=.* order=\([^ ]*\)$/\1/p')
}

# Conns of each real of service VIP:PORT from `lbctl -L -n --stats --exact`: "ADDR=N ...".
CONNS_PY='
import sys
want = "198.51.100.10:" + sys.argv[2]
cur, out = None, []
for line in open(sys.argv[1]):
    t = line.split()
    if len(t) >= 3 and t[0] in ("TCP", "UDP"):
        cur = t[1] if t[0] == "TCP" else None
    elif len(t) >= 3 and t[0] == "->" and cur == want:
        out.append("%s=%s" % (t[1].rsplit(":", 1)[0], t[2]))
print(" ".join(sorted(out)))
'
real_conns() {  # real_conns SOCK PORT
    lab_lbctl "$1" -L -n --stats --exact >"$TMP/stats.txt" 2>&1 || return 1
    $LAB_PY -c "$CONNS_PY" "$TMP/stats.txt" "$2"
}

# `lbctl -L -n` with runs of spaces squeezed, leading and trailing space cut.
list_n() { lab_lbctl "$1" -L -n 2>&1 | tr -s ' ' | sed 's/^ //; s/ $//'; }

# One service's part of list_n's output: its TCP line and its "-> ADDR:PORT FWD WEIGHT" lines.
list_svc() {  # list_svc LIST_TEXT PORT
    echo "$1" | awk -v k="$LAB_VIP:$2" '
        $1 == "TCP" || $1 == "UDP" { on = ($2 == k); if (on) print; next }
        on && $1 == "->" { print $1, $2, $3, $4 }'
}

start_rs3() {  # rs3: 10.10.0.4 on rs2's eth0, its own web server
    ip -n "$LAB_NS_RS2" addr add "$RS3/24" dev eth0 || return 1
    ip netns exec "$LAB_NS_RS2" "$LAB_PY" "$LAB_E2E_DIR/httpd.py" --name rs3 --addr "$RS3" \
        --port 80 >"$LAB_RUN/httpd-rs3.log" 2>&1 9>&- &
    echo $! >"$LAB_RUN/httpd-rs3.pid"
    local i
    for i in $(seq 1 50); do
        ip netns exec "$LAB_NS_RS2" curl -s --max-time 1 -o /dev/null "http://$RS3/" && return 0
        sleep 0.2
    done
    lab_die "rs3's web server did not come up"
}

# lb learns a client's MAC address when it first answers it, and drops that first answer
# (drop.no_neighbour): the real retransmits its SYN-ACK a second later. One connection to :95
# from every client address at once, so that the checks do not each wait for that.
warm_neighbours() {
    local a pids=()
    for a in "${CLIENT_ADDRS[@]}"; do
        lab_client timeout 10 "$LAB_PY" "$LAB_E2E_DIR/client.py" seq --host "$LAB_VIP" --port 95 \
            --count 1 --timeout 5 --source "$a" --sport "$SPORT" >/dev/null 2>&1 &
        pids+=($!)
        SPORT=$((SPORT + 1))
    done
    wait "${pids[@]}" 2>/dev/null
}

add_client_addrs() {
    local a
    for a in "${CLIENT_ADDRS[@]:1}"; do
        ip -n "$LAB_NS_CLIENT" addr add "$a/24" dev eth0 || return 1
    done
}

dump_lb() {  # on failure: what lb says about itself
    local sock=$1 log=$2
    if [ -n "$LAB_LB_PID" ] && [ -S "$sock" ]; then
        echo "---- lbctl -L -n --stats"
        lab_lbctl "$sock" -L -n --stats 2>&1 | sed 's/^/  /'
    fi
    if [ -f "$log" ]; then
        echo "---- errors and warnings in $log"
        grep -E '\[(error|critical|warning)\]' "$log" | tail -n 20 | sed 's/^/  /'
        echo "---- last 15 lines of $log"
        tail -n 15 "$log" | sed 's/^/  /'
    fi
    echo "----"
}

# ---- checks -----------------------------------------------------------------------------------

check_wrr() {  # :80 wrr 3:1:0
    seq_run 80 40
    local got
    got=$(real_conns "$SOCK" 80)
    for _ in $(seq 1 6); do  # workers publish their counters on their own
        [ "$got" = "$RS1=30 $RS2=10 $RS_ZERO=0" ] && break
        sleep 0.5
        got=$(real_conns "$SOCK" 80)
    done
    if [ "$RC" -eq 0 ] && [ "$PER" = "rs1:30,rs2:10" ] && [ "$got" = "$RS1=30 $RS2=10 $RS_ZERO=0" ]
    then
        pass "$P/wrr"
    else
        fail "$P/wrr" "wrr 3:1:0 over 40 connections: pages $PER (expected rs1:30,rs2:10)," \
            "lbctl Conns '$got' (expected '$RS1=30 $RS2=10 $RS_ZERO=0'); $(oneline "$OUT")"
    fi
}

check_sh() {  # :81 sh, :82 sh-port
    seq_run 81 20
    local per1=$PER out1=$OUT rc1=$RC
    seq_run 82 20
    if [ "$rc1" -eq 0 ] && [[ "$per1" =~ ^rs[12]:20$ ]]; then pass "$P/sh"; else
        fail "$P/sh" "20 connections from one client: $per1 (expected one real); $(oneline "$out1")"
    fi
    if [ "$RC" -eq 0 ] && [[ "$PER" =~ ^rs1:[0-9]+,rs2:[0-9]+$ ]]; then pass "$P/sh-port"; else
        fail "$P/sh-port" "20 connections from one client, sh-port: $PER (expected both" \
            "reals); $(oneline "$OUT")"
    fi
}

# mh :83 from every client address: 20 connections from A, 2 from each other address; sets
# MH_MAP "addr=rsN ..." (rsN, or "mixed:..." if an address reached both).
mh_map() {
    local a n bad="" map=()
    for a in "${CLIENT_ADDRS[@]}"; do
        n=2
        [ "$a" = "$CLIENT_A" ] && n=20
        seq_run 83 "$n" "$a"
        if [ "$RC" -eq 0 ] && [[ "$PER" =~ ^rs[12]:$n$ ]]; then map+=("$a=${PER%%:*}"); else
            map+=("$a=mixed:$PER")
            bad="${bad:+$bad; }$a: $(oneline "$OUT")"
        fi
    done
    MH_MAP="${map[*]}"
    MH_BAD=$bad
}

check_mh() {  # :83 mh, :84 mh-port
    mh_map
    MH_MAP_A=$MH_MAP
    if [ -z "$MH_BAD" ]; then pass "$P/mh"; else
        fail "$P/mh" "each client address should reach one real: $MH_MAP ($MH_BAD)"
    fi
    note "mh: $MH_MAP"
    seq_run 84 20
    if [ "$RC" -eq 0 ] && [[ "$PER" =~ ^rs1:[0-9]+,rs2:[0-9]+$ ]]; then pass "$P/mh-port"; else
        fail "$P/mh-port" "20 connections from one client, mh-port: $PER (expected both" \
            "reals); $(oneline "$OUT")"
    fi
}

check_persist() {  # :85 rr persistence 30
    local a1 b1 a2 b2 oa ob
    seq_run 85 10 "$CLIENT_A"
    a1=$PER oa=$OUT
    seq_run 85 10 "$CLIENT_B"
    b1=$PER ob=$OUT
    seq_run 85 5 "$CLIENT_A"
    a2=$PER oa="$oa $OUT"
    seq_run 85 5 "$CLIENT_B"
    b2=$PER ob="$ob $OUT"
    if [[ "$a1" =~ ^rs[12]:10$ ]] && [[ "$b1" =~ ^rs[12]:10$ ]] && [ "${a1%%:*}" != "${b1%%:*}" ] &&
        [ "$a2" = "${a1%%:*}:5" ] && [ "$b2" = "${b1%%:*}:5" ]; then
        pass "$P/persist"
    else
        fail "$P/persist" "rr persistence 30: A 10 then 5: $a1 / $a2, B 10 then 5: $b1 / $b2" \
            "(expected A all on one real, B all on the other); A: $(oneline "$oa")" \
            "B: $(oneline "$ob")"
    fi
}

check_wlc() {  # :86 wlc 1:1, 40 sequential short connections
    seq_run 86 40
    local n1 n2
    n1=$(echo "$PER" | sed -n 's/.*rs1:\([0-9]*\).*/\1/p')
    n2=$(echo "$PER" | sed -n 's/.*rs2:\([0-9]*\).*/\1/p')
    if [ "$RC" -eq 0 ] && [ -n "$n1" ] && [ -n "$n2" ] && [ $((n1 + n2)) -eq 40 ] &&
        [ $((n1 - n2)) -le 2 ] && [ $((n2 - n1)) -le 2 ]; then
        pass "$P/wlc"
    else
        fail "$P/wlc" "40 sequential connections: $PER (expected 20/20 +-1); $(oneline "$OUT")"
    fi
    note "wlc: $PER"
}

check_fo() {  # :87 fo 1:3
    seq_run 87 10
    if [ "$RC" -eq 0 ] && [ "$PER" = "rs2:10" ]; then pass "$P/fo"; else
        fail "$P/fo" "fo 1:3: $PER (expected all 10 on rs2, the weight-3 real); $(oneline "$OUT")"
    fi
}

# check_held NAME PORT COUNT EXPECTED_ORDER WHAT: connections held open one after the other
# follow EXPECTED_ORDER; then 10 sequential requests succeed.
check_held() {
    local name=$1 port=$2 n=$3 want=$4 what=$5 hold_out hold_rc
    hold_run "$port" "$n"
    hold_out=$OUT hold_rc=$RC
    local got=$ORDER
    seq_run "$port" 10
    if [ "$hold_rc" -eq 0 ] && [ "$got" = "$want" ] && [ "$RC" -eq 0 ]; then pass "$P/$name"; else
        fail "$P/$name" "$what: held connections went $got (expected $want), hold exited" \
            "$hold_rc; then 10 requests: $PER (exit $RC); $(oneline "$hold_out") $(oneline "$OUT")"
    fi
}

check_dh() {  # :92 dh: one real for every client address
    local a per=() bad=""
    for a in "$CLIENT_A" "$CLIENT_B" 198.51.100.21; do
        seq_run 92 4 "$a"
        per+=("$a=$PER")
        [ "$RC" -eq 0 ] || bad="${bad:+$bad; }$(oneline "$OUT")"
    done
    local first=${per[0]#*=}
    if [ -z "$bad" ] && [[ "$first" =~ ^rs[12]:4$ ]] && [ "${per[1]#*=}" = "$first" ] &&
        [ "${per[2]#*=}" = "$first" ]; then
        pass "$P/dh"
    else
        fail "$P/dh" "dh: ${per[*]} (expected every address on one and the same real) $bad"
    fi
}

# Two services with the same real (:93 and :94, both rs2:80 only); one client port, first to :93
# (closed), then to :94. rs2 sees the same (client:port, rs2:80) twice and takes the new SYN over
# its TIME_WAIT; lb must translate the answers of the new connection as :94's (IPVS finds the
# newest connection first), not with the closing :93 one whose reply tuple is the same.
check_sport_reuse() {
    local port=$SPORT o1 r1
    SPORT=$((SPORT + 1))
    seq_run 93 1 "" "$port"
    o1=$OUT r1=$RC
    sleep 0.2
    seq_run 94 1 "" "$port"
    if [ "$r1" -eq 0 ] && [ "$RC" -eq 0 ] && [ "$PER" = rs2:1 ]; then pass "$P/sport-reuse"; else
        fail "$P/sport-reuse" "client port $port to :93 then to :94 (both only rs2:80): second" \
            "connection $PER (exit $RC; expected rs2:1); $(oneline "$o1") $(oneline "$OUT")"
    fi
}

check_list_a() {
    local list want=() miss=() l
    list=$(list_n "$SOCK")
    echo "$list" >"$DIR/list-a.txt"
    want=("TCP $LAB_VIP:80 wrr" "TCP $LAB_VIP:81 sh" "TCP $LAB_VIP:82 sh (sh-port)"
        "TCP $LAB_VIP:83 mh" "TCP $LAB_VIP:84 mh (mh-port)" "TCP $LAB_VIP:85 rr persistent 30"
        "TCP $LAB_VIP:86 wlc" "TCP $LAB_VIP:87 fo" "TCP $LAB_VIP:88 lc" "TCP $LAB_VIP:89 sed"
        "TCP $LAB_VIP:90 nq" "TCP $LAB_VIP:91 ovf" "TCP $LAB_VIP:92 dh" "TCP $LAB_VIP:93 rr"
        "TCP $LAB_VIP:94 rr" "TCP $LAB_VIP:8080 wrr")
    for l in "${want[@]}"; do
        grep -qxF -- "$l" <<<"$list" || miss+=("'$l'")
    done
    grep -qE "^-> $RS_ZERO:80 Masq 0 " <<<"$list" || miss+=("'-> $RS_ZERO:80 Masq 0 ...'")
    if [ ${#miss[@]} -eq 0 ]; then pass "$P/lbctl-list"; else
        fail "$P/lbctl-list" "missing ${miss[*]}; lbctl -L -n:" \
            "$(grep -E '^(TCP|UDP)' <<<"$list" | tr '\n' '|')"
    fi
}

# Reload while 50 connections are held open on :8080 (wrr 1:1).
check_reload() {
    local go="$TMP/go-$P" hold_log="$DIR/hold-8080.log" hold_pid i
    rm -f "$go"
    lab_client timeout 120 "$LAB_PY" "$LAB_E2E_DIR/client.py" hold --host "$LAB_VIP" --port 8080 \
        --count 50 --timeout 10 --sport "$SPORT" --go-file "$go" --wait 90 >"$hold_log" 2>&1 9>&- &
    hold_pid=$!
    SPORT=$((SPORT + 50))
    for i in $(seq 1 300); do  # up to 30 s
        grep -q '^ready' "$hold_log" 2>/dev/null && break
        kill -0 "$hold_pid" 2>/dev/null || break
        sleep 0.1
    done
    local held
    held=$(sed -n 's/^hold open=\([0-9]*\) of 50 .* by-server=\([^ ]*\) .*/\1 \2/p' "$hold_log")
    note "held before the reload: $held"

    local before_list reloads_before
    before_list=$(list_svc "$(list_n "$SOCK")" 8080)
    reloads_before=$(grep -c 'reloaded ' "$LOG")
    services_a after
    write_conf "$W" "$CONF" "$SOCK" || fail "$P/reload" "could not write the new config"
    kill -HUP "$LAB_LB_PID"
    local reloaded=0
    for i in $(seq 1 50); do
        [ "$(grep -c 'reloaded ' "$LOG")" -gt "$reloads_before" ] && reloaded=1 && break
        sleep 0.1
    done
    local list_after
    list_after=$(list_svc "$(list_n "$SOCK")" 8080)
    local want_after="TCP $LAB_VIP:8080 wrr
-> $RS1:80 Masq 0
-> $RS2:80 Masq 2
-> $RS3:80 Masq 1"
    if [ $reloaded -eq 1 ] && [ "$list_after" = "$want_after" ]; then pass "$P/reload-sighup"; else
        fail "$P/reload-sighup" "after SIGHUP: reloaded line in the log: $reloaded; :8080 in" \
            "lbctl -L -n: $(oneline "$list_after") (before: $(oneline "$before_list"); expected" \
            "$(oneline "$want_after")); log: $(tail -n 3 "$LOG" | tr '\n' ' ')"
    fi
    # The weight-0 real still has its held connections (ActiveConn).
    local active_rs1
    active_rs1=$(list_n "$SOCK" | awk -v k="$LAB_VIP:8080" -v r="$RS1:80" '
        $1 == "TCP" { on = ($2 == k); next } on && $2 == r { print $5 }')

    seq_run 8080 30
    local new_per=$PER new_rc=$RC new_out=$OUT
    touch "$go"
    wait "$hold_pid"
    local hold_rc=$?
    local ended
    ended=$(sed -n 's/^hold ended-ok=\([0-9]*\) of 50 moved=\([0-9]*\) .*/\1 \2/p' "$hold_log")
    if [ "$hold_rc" -eq 0 ] && [ "$held" = "50 rs1:25,rs2:25" ] && [ "$ended" = "50 0" ]; then
        pass "$P/reload-held"
    else
        fail "$P/reload-held" "50 connections held across the reload: opened '$held' (expected" \
            "'50 rs1:25,rs2:25'), ended ok / moved '$ended' (expected '50 0'), exit $hold_rc;" \
            "$(tail -n 8 "$hold_log" | tr '\n' ' ')"
    fi
    if [ "$new_rc" -eq 0 ] && [ "$new_per" = "rs2:20,rs3:10" ]; then pass "$P/reload-new-weights"
    else
        fail "$P/reload-new-weights" "30 new connections after the reload (rs1 0, rs2 2, rs3 1):" \
            "$new_per (expected rs2:20,rs3:10); $(oneline "$new_out")"
    fi
    # rs1 (weight 0 now): its 25 held connections were its only ones, and they were active.
    local conns
    conns=$(real_conns "$SOCK" 8080)
    for _ in $(seq 1 6); do
        [ "$conns" = "$RS1=25 $RS2=45 $RS3=10" ] && break
        sleep 0.5
        conns=$(real_conns "$SOCK" 8080)
    done
    if [ "$active_rs1" = 25 ] && [ "$conns" = "$RS1=25 $RS2=45 $RS3=10" ]; then
        pass "$P/reload-weight0"
    else
        fail "$P/reload-weight0" "rs1 at weight 0: ActiveConn right after the reload" \
            "'$active_rs1' (expected 25, its held connections), lbctl Conns '$conns' (expected" \
            "'$RS1=25 $RS2=45 $RS3=10')"
    fi

    # Broken files: lbctl --reload exits 1 with FILE:LINE:, lb logs it, the config stays.
    local good_list
    good_list=$(list_n "$SOCK")
    cp "$CONF" "$DIR/good.conf"
    local kind line
    for kind in syntax unknown-key workers; do
        cp "$DIR/good.conf" "$CONF"
        case "$kind" in
        syntax)  # an unterminated group in the services
            line=$(grep -n 'port = 8080' "$CONF" | cut -d: -f1)
            sed -i "${line}s/{ vip/{ vip = ; {/" "$CONF"
            ;;
        unknown-key)
            line=$(grep -n 'port = 8080' "$CONF" | cut -d: -f1)
            sed -i "${line}s/scheduler = /colour = \"blue\"; scheduler = /" "$CONF"
            ;;
        workers)
            if [ "$W" -eq 1 ]; then  # 1 -> 2 workers needs a second lcore in -l too
                sed -i -e 's/^workers = \[1\];/workers = [1, 2];/' \
                    -e 's/"-l", "0-1"/"-l", "0-2"/' "$CONF"
            else
                sed -i 's/^workers = \[1, 2\];/workers = [1];/' "$CONF"
            fi
            ;;
        esac
        local out rc=0 want_re logged=0
        out=$(lab_lbctl "$SOCK" --reload 2>&1) || rc=$?
        if [ "$kind" = workers ]; then want_re="needs a restart"; else
            want_re="${CONF//./\\.}:[0-9]+: "
        fi
        # lb's log has the same message.
        local msg
        msg=$(echo "$out" | grep -oE "${CONF//./\\.}:[0-9]+: .*|needs a restart" | head -n 1)
        [ -n "$msg" ] && grep -qF -- "$msg" "$LOG" && logged=1
        if [ $rc -eq 1 ] && grep -qE -- "$want_re" <<<"$out" && [ $logged -eq 1 ]; then
            pass "$P/reload-refused-$kind"
        else
            fail "$P/reload-refused-$kind" "lbctl --reload exited $rc (expected 1):" \
                "$(oneline "$out")" \
                "(expected /$want_re/ in it, and in lb's log: $logged); log:" \
                "$(tail -n 2 "$LOG" | tr '\n' ' ')"
        fi
    done
    cp "$DIR/good.conf" "$CONF"
    local kept_list
    kept_list=$(list_n "$SOCK")
    seq_run 8080 6
    if [ "$kept_list" = "$good_list" ] && [ "$RC" -eq 0 ] && [ "$PER" = "rs2:4,rs3:2" ]; then
        pass "$P/reload-kept"
    else
        fail "$P/reload-kept" "after the refused reloads: lbctl -L -n $([ "$kept_list" = \
            "$good_list" ] && echo unchanged || echo "changed: $(oneline "$kept_list")"), 6" \
            "requests to :8080: $PER (expected rs2:4,rs3:2); $(oneline "$OUT")"
    fi
}

check_mh_order() {  # run B: :83 with the reals in the other order
    mh_map
    if [ -z "$MH_BAD" ] && [ "$MH_MAP" = "$MH_MAP_A" ]; then pass "$P/mh-order"; else
        fail "$P/mh-order" "reals listed rs2, rs1: $MH_MAP; with rs1, rs2 (run A): $MH_MAP_A" \
            "${MH_BAD:+($MH_BAD)}"
    fi
}

check_persist_mask() {  # run B: :85 persistence 30 mask /24
    local a b oa
    seq_run 85 5 "$CLIENT_A"
    a=$PER oa=$OUT
    seq_run 85 5 "$CLIENT_B"
    b=$PER
    local list line
    list=$(list_n "$SOCK")
    line=$(echo "$list" | grep -E "^TCP $LAB_VIP:85 ")
    if [[ "$a" =~ ^rs[12]:5$ ]] && [ "$a" = "$b" ] &&
        [ "$line" = "TCP $LAB_VIP:85 rr persistent 30 mask 255.255.255.0" ]; then
        pass "$P/persist-mask"
    else
        fail "$P/persist-mask" "rr persistence 30 mask /24: A $a, B $b (expected both on one" \
            "real); lbctl: '$line' (expected 'TCP $LAB_VIP:85 rr persistent 30 mask" \
            "255.255.255.0'); $(oneline "$oa") $(oneline "$OUT")"
    fi
}

# start_lb_or_fail NAME CHECKS...: writes $CONF from SVCS, checks it, starts lb; on failure
# NAME and every check fail.
start_lb_or_fail() {
    local name=$1 out rc=0 c
    shift
    if ! write_conf "$W" "$CONF" "$SOCK" 2>"$DIR/conf.err"; then
        fail "$P/$name" "could not write $CONF: $(oneline "$(cat "$DIR/conf.err")")"
        for c in "$@"; do fail "$P/$c" "no config"; done
        return 1
    fi
    out=$(timeout 20 "$LAB_LB" -c "$CONF" --check 2>&1) || rc=$?
    if [ $rc -eq 0 ] && lab_start_lb "$CONF" "$LOG" "$SOCK" 30 2>"$DIR/start.err"; then
        pass "$P/$name"
        return 0
    fi
    fail "$P/$name" "lb --check exited $rc: $(oneline "$out") $(cat "$DIR/start.err" 2>/dev/null)"
    for c in "$@"; do fail "$P/$c" "lb did not start"; done
    dump_lb "$SOCK" "$LOG"
    return 1
}

stop_lb_check() {
    lab_stop_lb 5
    if [ "$LAB_LB_STATUS" = 0 ]; then pass "$P/$1"; else
        fail "$P/$1" "lb exit status $LAB_LB_STATUS on SIGTERM"
    fi
}

run_one() {  # run_one WORKERS
    W=$1
    P="sched-w$W"
    DIR="$TMP/$P"
    SOCK="$DIR/lb.sock"
    mkdir -p "$DIR"
    RUN_FAILED=0
    local t0=$SECONDS
    echo "== $P: schedulers, persistence and reload through lb (LVS-NAT), $W worker(s)"
    local checks_a=(wrr sh sh-port mh mh-port persist wlc fo lc sed nq ovf dh sport-reuse lbctl-list
        reload-sighup reload-held reload-new-weights reload-weight0 reload-refused-syntax
        reload-refused-unknown-key reload-refused-workers reload-kept sigterm)
    local checks_b=(mh-order persist-mask sigterm-b)

    lab_mode nat
    if ! { lab_up && lab_start_reals && start_rs3 && add_client_addrs; } >"$DIR/lab.log" 2>&1
    then
        local c
        for c in start "${checks_a[@]}" start-b "${checks_b[@]}"; do
            fail "$P/$c" "lab setup failed: $(tail -n 3 "$DIR/lab.log" | tr '\n' ' ')"
        done
        lab_down
        return
    fi

    # Run A.
    LOG="$DIR/lb-a.log"
    CONF="$DIR/lb-a.conf"
    services_a before
    MH_MAP_A=""
    if start_lb_or_fail start "${checks_a[@]}"; then
        note "lb pid $LAB_LB_PID, config $CONF, log $LOG"
        warm_neighbours
        check_wrr
        check_sh
        check_mh
        check_persist
        check_wlc
        check_fo
        check_held lc 88 6 rs1,rs2,rs1,rs2,rs1,rs2 "lc 1:3 (weights ignored, ties to the first)"
        check_held sed 89 7 rs2,rs2,rs1,rs2,rs2,rs2,rs1 "sed 1:3 ((active+1)/weight)"
        check_held nq 90 7 rs1,rs2,rs2,rs2,rs2,rs2,rs1 "nq 1:3 (an idle real first, then sed)"
        check_held ovf 91 5 rs1,rs1,rs1,rs2,rs2 "ovf 2:1 (highest weight while active <= weight)"
        check_dh
        check_sport_reuse
        check_list_a
        check_reload
        [ $RUN_FAILED -ne 0 ] && dump_lb "$SOCK" "$LOG"
        stop_lb_check sigterm
    fi

    # Run B: lb restarted.
    LOG="$DIR/lb-b.log"
    CONF="$DIR/lb-b.conf"
    services_b
    RUN_FAILED=0
    if start_lb_or_fail start-b "${checks_b[@]}"; then
        warm_neighbours
        if [ -n "$MH_MAP_A" ]; then check_mh_order; else
            fail "$P/mh-order" "no mapping from run A"
        fi
        check_persist_mask
        [ $RUN_FAILED -ne 0 ] && dump_lb "$SOCK" "$LOG"
        stop_lb_check sigterm-b
    fi
    lab_down
    echo "== $P: $((SECONDS - t0)) s"
}

t_all=$SECONDS
for w in "${WORKERS[@]}"; do run_one "$w"; done
echo "sched wall time: $((SECONDS - t_all)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
