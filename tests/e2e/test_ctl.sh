#!/usr/bin/env bash
# End-to-end tests of lbctl (ipvsadm's verbs on a running lb), reload, write-config and the
# metrics endpoint, in the NAT lab (lib.sh), with 1 worker and again with 2 workers. lb runs
# conf/nat.conf (nat-2workers.conf) with its control socket moved and `metrics =
# "127.0.0.1:9100"` added: TCP VIP:80 rr and UDP VIP:53 rr over rs1 10.10.0.2 and rs2 10.10.0.3
# (rs3 10.10.0.4 is a second address of rs2's host with its own web server).
#
#   add-real-*     50 connections held open on :80 (25/25); `lbctl -a ... -r rs3 -m`: none of
#                  the 50 fails or moves; 30 connections opened after it go rs1/rs2/rs3 10 each
#   conns-list     `lbctl -L -n -c`: each of those 30 held connections is ESTABLISHED with its
#                  client port, the VIP and its real
#   weight0-*      `lbctl -e ... -r rs3 -m -w 0`: new connections avoid rs3; its 10 held
#                  connections end fine; its ActiveConn goes from 10 to 0
#   delete-*       `lbctl -d ... -r rs2`: gone from -L -n, new connections avoid it, its held
#                  connections go on until they end (as with a reload: never re-scheduled)
#   save-clear, restore-*  with :81 sh (sh-port) and thresholds -x/-y, :82 wrr -p 60 -M /24 and
#                  UDP :53: `-S > f; -C` empties the table, `-R < f` gives back the same -L -n
#                  (configuration columns), --thresholds and -S; traffic flows on every service
#   refuse-*       a bad address (usage error, 2), an unreachable real, a duplicate service,
#                  -d of a missing real (refused by lb, 1), an unknown scheduler (2), `-A` of a
#                  real's address as a VIP, `-a` of the VIP as a real (1): each with its
#                  message, and -S unchanged; then the VIP still serves (refuse-serving)
#   retired-vip    UDP 198.51.100.30:53 -> rs1 with a 3 s UDP timeout: after `-D` the address
#                  still answers ping while its connections live, then stops (seconds, not the
#                  timeout bound) and the log says so; the timeouts are put back
#   garbage-*      100 connections writing garbage (random bytes, requests cut short, lines
#                  that are not quite requests, an old lbctl's frames) to the control socket,
#                  one line over the 8 MiB limit, one idle client and five cut-short requests
#                  left open: lbctl -L -n answers within 1 s, the table is unchanged, traffic
#                  flows
#   protocol-hand  the control socket by hand (socat, or python without it): `{"cmd":"status"}`
#                  is answered with one JSON line naming the VIP, `{"cmd":"connections"}` with
#                  the listing's lines and its count, a request of version 3 with an error
#   protocol-old-lbctl  an lbctl of the binary protocol 3 gets an Error frame it can print:
#                  "lb speaks control protocol 4; this lbctl speaks protocol 3 and is too old:
#                  ...", and lb logs the refusal
#   write-config   `lbctl --write-config F`: `lb -c F --check` passes, F has the runtime changes
#   reload-*       --write-config over lb's own file, then SIGHUP: -S unchanged; SIGHUP with a
#                  changed file: applied; with a broken one: refused, FILE:LINE: in the log,
#                  the old config still serving
#   metrics-*      10 connections to a new service :83: lb_service_connections_total and
#                  lb_real_connections_total exact, packets equal to lbctl --stats --exact;
#                  lb_worker_drops_total with reason labels for every worker,
#                  lb_mbuf_pool_in_use; under traffic the rate gauges and `lbctl -L -n --rate`
#                  CPS and InPPS become > 0
#   workers, json  `lbctl --workers` lists every worker; every --json output parses
#   sigterm        lb exits 0 on SIGTERM
#
# usage: tests/e2e/test_ctl.sh [--workers 1|2|1,2] [--keep-tmp]
# env: LB_BUILD_DIR (default build): where lb/lb and tools/lbctl are.
#
# Prints `PASS name` or `FAIL name: why` per check and ends with `N passed, N failed`.
# Exit status 0 only if nothing failed. Needs root.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"

suite_args "$@"
suite_begin ctl
same() {  # same BEFORE AFTER: "unchanged", or "CHANGED: AFTER" on one line
    if [ "$1" = "$2" ]; then echo unchanged; else echo "CHANGED: $(oneline "$2")"; fi
}

VIP=$LAB_VIP
RS1=10.10.0.2
RS2=10.10.0.3
RS3=10.10.0.4  # a second address of rs2's host, with its own web server naming itself rs3
VIP2=198.51.100.30  # a VIP added and deleted by check_retired
METRICS=127.0.0.1:9100

# ---- helpers ----------------------------------------------------------------------------------

ctl() { lab_lbctl "$SOCK" "$@"; }

# ctl_rc ARGS...: runs lbctl, sets CTL_OUT (stdout and stderr) and CTL_RC.
ctl_rc() {
    CTL_OUT=$(lab_lbctl "$SOCK" "$@" 2>&1) && CTL_RC=0 || CTL_RC=$?
}

# The client's source ports for held connections come from one counter, below the kernel's
# ephemeral range (32768..), so that -c entries can be matched to them.
SPORT=20000

# seq_run PORT COUNT: COUNT sequential GET / to VIP:PORT. Sets OUT, RC, PER ("rs1:5,rs2:5").
seq_run() {
    OUT=$(lab_client timeout 60 "$LAB_PY" "$LAB_E2E_DIR/client.py" seq --host "$VIP" \
        --port "$1" --count "$2" --timeout 3 2>&1) && RC=0 || RC=$?
    PER=$(echo "$OUT" | sed -n 's/^seq .* by-server=\([^ ]*\) order=.*/\1/p')
}

# udp_run COUNT: COUNT datagrams to VIP:53 from COUNT source ports. Sets OUT, RC.
udp_run() {
    OUT=$(lab_client timeout 30 "$LAB_PY" "$LAB_E2E_DIR/client.py" udp --host "$VIP" --port 53 \
        --count "$1" --timeout 2 2>&1) && RC=0 || RC=$?
}

# hold_start NAME PORT COUNT: COUNT connections held open on VIP:PORT (from ports SPORT..),
# in the background until hold_end NAME. Waits until they are open; sets HOLD_OPEN_<NAME>
# ("N BY-SERVER"), HOLD_ORDER_<NAME> (servers in opening order), HOLD_SPORT_<NAME>.
hold_start() {
    local name=$1 port=$2 n=$3 log="$DIR/hold-$1.log"
    rm -f "$DIR/go-$name"
    lab_client timeout 150 "$LAB_PY" "$LAB_E2E_DIR/client.py" hold --host "$VIP" --port "$port" \
        --count "$n" --timeout 10 --sport "$SPORT" --go-file "$DIR/go-$name" --wait 120 \
        >"$log" 2>&1 9>&- &
    local pid=$!
    BG_PIDS+=("$pid")
    printf -v "HOLD_PID_$name" '%s' "$pid"
    printf -v "HOLD_SPORT_$name" '%s' "$SPORT"
    SPORT=$((SPORT + n))
    for _ in $(seq 1 300); do  # up to 30 s
        grep -q '^ready' "$log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    printf -v "HOLD_OPEN_$name" '%s' \
        "$(sed -n "s/^hold open=\([0-9]*\) of $n .* by-server=\([^ ]*\) .*/\1 \2/p" "$log")"
    printf -v "HOLD_ORDER_$name" '%s' "$(sed -n 's/^hold open=.* order=\([^ ]*\)$/\1/p' "$log")"
}

# hold_end NAME: ends the held connections; sets HOLD_RC, HOLD_ENDED ("OK MOVED"), HOLD_LOG.
hold_end() {
    local name=$1 pidv="HOLD_PID_$1"
    touch "$DIR/go-$name"
    wait "${!pidv}"
    HOLD_RC=$?
    HOLD_LOG="$DIR/hold-$name.log"
    HOLD_ENDED=$(sed -n 's/^hold ended-ok=\([0-9]*\) of [0-9]* moved=\([0-9]*\) .*/\1 \2/p' \
        "$HOLD_LOG")
}

# `lbctl -L -n` (or with more options) with runs of spaces squeezed, leading/trailing cut.
list_n() { ctl -L -n "$@" 2>&1 | tr -s ' ' | sed 's/^ //; s/ $//'; }

# The configuration columns of `lbctl -L -n`: service lines whole, real lines "-> ADDR FWD W".
list_conf() {
    list_n | awk '$1 == "TCP" || $1 == "UDP" { print; next }
        $1 == "->" && $2 != "RemoteAddress:Port" { print $1, $2, $3, $4 }'
}
# The same for --thresholds: "-> ADDR UTHRESHOLD LTHRESHOLD".
list_thr() {
    list_n --thresholds | awk '$1 == "TCP" || $1 == "UDP" { print; next }
        $1 == "->" && NF >= 4 { print $1, $2, $3, $4 }'
}

# real_field PORT ADDR:RPORT COLUMN: one column of a real's -L -n line (5: ActiveConn).
real_field() {
    list_n | awk -v k="$VIP:$1" -v r="$2" -v c="$3" '
        $1 == "TCP" || $1 == "UDP" { on = ($2 == k && $1 == "TCP"); next }
        on && $2 == r { print $c }'
}

# metrics: the scrape, into $DIR/metrics.txt; metric NAME LABEL-REGEX: the value of the first
# sample of NAME whose labels match.
scrape() {
    ip netns exec "$LAB_NS_DIR" curl -s --max-time 2 "http://$METRICS/metrics" \
        >"$DIR/metrics.txt" 2>&1
}
metric() {
    awk -v n="$1" -v re="$2" '
        index($0, n "{") == 1 && $1 ~ re { print $2; exit }' "$DIR/metrics.txt"
}

start_rs3() {  # rs3: 10.10.0.4 on rs2's eth0, its own web server
    ip -n "$LAB_NS_RS2" addr add "$RS3/24" dev eth0 || return 1
    ip netns exec "$LAB_NS_RS2" "$LAB_PY" "$LAB_E2E_DIR/httpd.py" --name rs3 --addr "$RS3" \
        --port 80 >"$LAB_RUN/httpd-rs3.log" 2>&1 9>&- &
    echo $! >"$LAB_RUN/httpd-rs3.pid"
    for _ in $(seq 1 50); do
        ip netns exec "$LAB_NS_RS2" curl -s --max-time 1 -o /dev/null "http://$RS3/" && return 0
        sleep 0.2
    done
    lab_die "rs3's web server did not come up"
}

# conf/nat.conf (nat-2workers.conf) with the socket moved and the metrics endpoint added.
write_conf() {  # write_conf WORKERS DST
    local src="$LAB_REPO/conf/nat.conf"
    [ "$1" -eq 1 ] || src="$LAB_REPO/conf/nat-$1workers.conf"
    lab_make_conf "$src" "$2" "$SOCK" || return 1
    local sp='[[:space:]]*'
    sed -i -E "s#^(control$sp=$sp\{${sp}socket$sp=$sp\"[^\"]*\";)#\\1 metrics = \"$METRICS\";#" "$2"
    grep -q "metrics = \"$METRICS\"" "$2" || {
        lab_die "could not add metrics to $2"
        return 1
    }
}

reloads() { grep -c 'reloaded ' "$LOG"; }
wait_reloaded() {  # wait_reloaded COUNT_BEFORE: up to 5 s for one more "reloaded" log line
    for _ in $(seq 1 50); do
        [ "$(reloads)" -gt "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

dump_lb() {  # on failure: what lb says about itself
    if [ -n "$LAB_LB_PID" ] && [ -S "$SOCK" ]; then
        echo "---- lbctl -L -n --stats"
        ctl -L -n --stats 2>&1 | sed 's/^/  /'
    fi
    if [ -f "$LOG" ]; then
        echo "---- errors and warnings in $LOG"
        grep -E '\[(error|critical|warning)\]' "$LOG" | tail -n 20 | sed 's/^/  /'
        echo "---- last 15 lines of $LOG"
        tail -n 15 "$LOG" | sed 's/^/  /'
    fi
    echo "----"
}

# ---- checks -----------------------------------------------------------------------------------

# 1, 9 (-c), 2, 3: add a real under held connections, quiesce it, delete another.
check_add_weight_delete() {
    hold_start A 80 50
    note "held before -a: $HOLD_OPEN_A"
    ctl_rc -a -t "$VIP:80" -r "$RS3:80" -m
    local add_rc=$CTL_RC add_out=$CTL_OUT
    hold_start B 80 30
    note "opened after -a: $HOLD_OPEN_B"
    hold_end A
    if [ "$add_rc" -eq 0 ] && [ "$HOLD_OPEN_A" = "50 rs1:25,rs2:25" ] && [ "$HOLD_RC" -eq 0 ] &&
        [ "$HOLD_ENDED" = "50 0" ]; then
        pass "$P/add-real-held"
    else
        fail "$P/add-real-held" "lbctl -a rs3 exited $add_rc ($(oneline "$add_out")); 50 held:" \
            "opened '$HOLD_OPEN_A' (expected '50 rs1:25,rs2:25'), ended ok/moved '$HOLD_ENDED'" \
            "(expected '50 0'), exit $HOLD_RC; $(tail -n 6 "$HOLD_LOG" | tr '\n' ' ')"
    fi
    if [ "$HOLD_OPEN_B" = "30 rs1:10,rs2:10,rs3:10" ]; then pass "$P/add-real-new"; else
        fail "$P/add-real-new" "30 connections after -a rs3: '$HOLD_OPEN_B' (expected" \
            "'30 rs1:10,rs2:10,rs3:10'); $(head -n 3 "$DIR/hold-B.log" | tr '\n' ' ')"
    fi

    # 9: the 30 held connections in -c, each ESTABLISHED on its real.
    ctl -L -n -c >"$DIR/conns.txt" 2>&1
    local c_rc=$?
    local bad
    bad=$($LAB_PY - "$DIR/conns.txt" "$HOLD_SPORT_B" "$HOLD_ORDER_B" "$LAB_CLIENT_IP" "$VIP" <<'EOF'
import sys
text, sport, order, client, vip = sys.argv[1:]
ips = {"rs1": "10.10.0.2", "rs2": "10.10.0.3", "rs3": "10.10.0.4"}
seen = {}
for line in open(text):
    t = line.split()
    if len(t) == 6 and t[0] == "TCP":
        seen[t[3]] = (t[2], t[4], t[5])
bad = []
for i, name in enumerate(order.split(",")):
    src = "%s:%d" % (client, int(sport) + i)
    want = ("ESTABLISHED", vip + ":80", ips.get(name, "?") + ":80")
    got = seen.get(src)
    if got != want:
        bad.append("%s: %s (expected %s)" % (src, " ".join(got) if got else "missing",
                                             " ".join(want)))
print("; ".join(bad[:5]) + (" (%d in all)" % len(bad) if bad else ""))
EOF
)
    if [ "$c_rc" -eq 0 ] && [ -z "$bad" ] && [ -n "$HOLD_ORDER_B" ]; then pass "$P/conns-list"
    else
        fail "$P/conns-list" "lbctl -L -n -c exited $c_rc; held connections: ${bad:-none held}" \
            "; first lines: $(head -n 4 "$DIR/conns.txt" | tr '\n' '|')"
    fi

    # 2: rs3 quiesced.
    local active_before
    active_before=$(real_field 80 "$RS3:80" 5)
    ctl_rc -e -t "$VIP:80" -r "$RS3:80" -m -w 0
    local e_rc=$CTL_RC e_out=$CTL_OUT w_line
    w_line=$(list_n | awk -v k="$VIP:80" -v r="$RS3:80" '
        $1 == "TCP" || $1 == "UDP" { on = ($2 == k && $1 == "TCP"); next }
        on && $2 == r { print $1, $2, $3, $4 }')
    seq_run 80 10
    if [ "$e_rc" -eq 0 ] && [ "$w_line" = "-> $RS3:80 Masq 0" ] && [ "$RC" -eq 0 ] &&
        [ "$PER" = "rs1:5,rs2:5" ]; then
        pass "$P/weight0-new"
    else
        fail "$P/weight0-new" "lbctl -e rs3 -w 0 exited $e_rc ($(oneline "$e_out")), -L -n" \
            "'$w_line' (expected '-> $RS3:80 Masq 0'); 10 new connections: $PER (expected" \
            "rs1:5,rs2:5); $(oneline "$OUT")"
    fi

    # 3: rs2 deleted.
    ctl_rc -d -t "$VIP:80" -r "$RS2:80"
    local d_rc=$CTL_RC d_out=$CTL_OUT svc80
    svc80=$(list_conf | awk -v k="$VIP:80" '
        $1 == "TCP" || $1 == "UDP" { on = ($1 == "TCP" && $2 == k); next } on' |
        tr '\n' '|')
    if [ "$d_rc" -eq 0 ] && [ "$svc80" = "-> $RS1:80 Masq 1|-> $RS3:80 Masq 0|" ]; then
        pass "$P/delete-list"
    else
        fail "$P/delete-list" "lbctl -d rs2 exited $d_rc ($(oneline "$d_out")); :80's reals in" \
            "-L -n: '$svc80' (expected '-> $RS1:80 Masq 1|-> $RS3:80 Masq 0|')"
    fi
    seq_run 80 10
    if [ "$RC" -eq 0 ] && [ "$PER" = "rs1:10" ]; then pass "$P/delete-new"; else
        fail "$P/delete-new" "10 new connections after -d rs2 (rs3 at weight 0): $PER" \
            "(expected rs1:10); $(oneline "$OUT")"
    fi

    hold_end B
    local err_rs2 err_rs3
    err_rs2=$(grep -c '^  error: .*(rs2)' "$HOLD_LOG")
    err_rs3=$(grep -c '^  error: .*(rs3)' "$HOLD_LOG")
    if [ "$HOLD_ENDED" = "30 0" ] && [ "$HOLD_RC" -eq 0 ]; then
        pass "$P/weight0-held"
        pass "$P/delete-held"
    else
        local why="held connections: ended ok/moved '$HOLD_ENDED' (expected '30 0'), exit"
        why="$why $HOLD_RC; $(tail -n 6 "$HOLD_LOG" | tr '\n' ' ')"
        if [ "$err_rs3" -eq 0 ]; then pass "$P/weight0-held"; else fail "$P/weight0-held" "$why"; fi
        if [ "$err_rs2" -eq 0 ]; then pass "$P/delete-held"; else fail "$P/delete-held" "$why"; fi
    fi

    # 2: rs3's ActiveConn drains once its connections have ended.
    local active_after
    for _ in $(seq 1 30); do
        active_after=$(real_field 80 "$RS3:80" 5)
        [ "$active_after" = 0 ] && break
        sleep 0.1
    done
    if [ "$active_before" = 10 ] && [ "$active_after" = 0 ]; then pass "$P/weight0-drain"; else
        fail "$P/weight0-drain" "rs3 ActiveConn: '$active_before' while its 10 were held" \
            "(expected 10), '$active_after' after they ended (expected 0)"
    fi
}

# 4: -S, -C, -R round trip with every kind of setting.
check_save_restore() {
    local setup_rc=0 a
    for a in "-A -t $VIP:81 -s sh -b sh-port" \
        "-a -t $VIP:81 -r $RS1:80 -m -w 1 -x 100 -y 50" \
        "-a -t $VIP:81 -r $RS2:80 -m -w 3 -x 40" \
        "-A -t $VIP:82 -s wrr -p 60 -M 255.255.255.0" \
        "-a -t $VIP:82 -r $RS1:80 -m -w 2" \
        "-a -t $VIP:82 -r $RS3:80 -m -w 1 -y 7"; do
        # shellcheck disable=SC2086  # one lbctl command line per string
        ctl $a >>"$DIR/setup-81-82.log" 2>&1 || setup_rc=$?
    done
    local l1 t1 s1 s_rc=0
    l1=$(list_conf)
    t1=$(list_thr)
    ctl -S >"$DIR/saved.txt" 2>"$DIR/save.err" || s_rc=$?
    s1=$(cat "$DIR/saved.txt")
    echo "$l1" >"$DIR/list-before.txt"
    local want_lines=("TCP $VIP:81 sh (sh-port)" "TCP $VIP:82 wrr persistent 60 mask 255.255.255.0"
        "UDP $VIP:53 rr" "-> $RS2:80 Masq 3") miss=() l
    for l in "${want_lines[@]}"; do grep -qxF -- "$l" <<<"$l1" || miss+=("'$l'"); done
    grep -qxF -- "-> $RS1:80 100 50" <<<"$t1" || miss+=("'-> $RS1:80 100 50' (thresholds)")

    local c_rc=0 after_c
    ctl -C >"$DIR/clear.out" 2>&1 || c_rc=$?
    after_c=$(list_n | grep -cE '^(TCP|UDP) ')
    if [ "$setup_rc" -eq 0 ] && [ "$s_rc" -eq 0 ] && [ ${#miss[@]} -eq 0 ] &&
        [ -s "$DIR/saved.txt" ] && [ "$c_rc" -eq 0 ] && [ "$after_c" = 0 ]; then
        pass "$P/save-clear"
    else
        fail "$P/save-clear" "setting up :81/:82 exited $setup_rc ($(oneline "$(cat \
            "$DIR/setup-81-82.log")")); missing before -S: ${miss[*]:-nothing}; -S exited" \
            "$s_rc; -C exited $c_rc; services listed after -C: $after_c (expected 0)"
    fi

    local r_rc=0 l2 t2 s2
    ctl -R <"$DIR/saved.txt" >"$DIR/restore.out" 2>&1 || r_rc=$?
    l2=$(list_conf)
    t2=$(list_thr)
    s2=$(ctl -S 2>&1)
    echo "$l2" >"$DIR/list-after.txt"
    if [ "$r_rc" -eq 0 ] && [ "$l2" = "$l1" ] && [ "$s2" = "$s1" ]; then pass "$P/restore-list"
    else
        fail "$P/restore-list" "lbctl -R exited $r_rc ($(oneline "$(cat "$DIR/restore.out")"));" \
            "-L -n config columns $([ "$l2" = "$l1" ] && echo same || echo "differ: $(diff \
                "$DIR/list-before.txt" "$DIR/list-after.txt" | grep '^[<>]' | tr '\n' '|')");" \
            "-S $([ "$s2" = "$s1" ] && echo same || echo "differs: $(oneline "$s2")")"
    fi
    if [ "$t2" = "$t1" ]; then pass "$P/restore-thresholds"; else
        fail "$P/restore-thresholds" "--thresholds before: $(oneline "$t1");" \
            "after: $(oneline "$t2")"
    fi

    local bad=""
    seq_run 80 4
    [ "$RC" -eq 0 ] && [ "$PER" = "rs1:4" ] ||
        bad="$bad :80 $PER (expected rs1:4) $(oneline "$OUT");"
    seq_run 81 4
    [ "$RC" -eq 0 ] || bad="$bad :81 $(oneline "$OUT");"
    seq_run 82 4
    [ "$RC" -eq 0 ] && [[ "$PER" =~ ^rs[13]:4$ ]] ||
        bad="$bad :82 $PER (expected one real, persistent) $(oneline "$OUT");"
    udp_run 4
    [ "$RC" -eq 0 ] || bad="$bad udp :53 $(oneline "$OUT");"
    if [ -z "$bad" ]; then pass "$P/restore-traffic"; else fail "$P/restore-traffic" "$bad"; fi
}

# 5: refused changes leave the table as it was.
check_refusals() {
    local before after
    before=$(ctl -S 2>&1)
    local rs1=${RS1//./\\.} vip=${VIP//./\\.}  # as regexes
    # name | expected status | message regex | lbctl arguments
    local cases=(
        "bad-address|2|illegal real server address.*\.300:80|-a -t $VIP:80 -r 10.10.0.300:80 -m"
        "unreachable|1|no interface or route reaches 192\.0\.2\.7|-a -t $VIP:80 -r 192.0.2.7:80 -m"
        "dup-service|1|service already exists|-A -t $VIP:80 -s rr"
        "missing-real|1|no such destination|-d -t $VIP:80 -r 10.10.0.9:80"
        "unknown-sched|2|unknown scheduler .?foo|-A -t $VIP:99 -s foo"
        "vip-is-real|1|$rs1 is a real of [TU][CD]P $vip:[0-9]+; a VIP must not be a real's address|-A -t $RS1:81 -s rr"
        "real-is-vip|1|$vip is the VIP of TCP $vip:80; a real must not be a VIP|-a -t $VIP:80 -r $VIP:80 -m"
    )
    local c name want re args
    for c in "${cases[@]}"; do
        IFS='|' read -r name want re args <<<"$c"
        # shellcheck disable=SC2086
        ctl_rc $args
        after=$(ctl -S 2>&1)
        if [ "$CTL_RC" = "$want" ] && grep -qE -- "$re" <<<"$CTL_OUT" && [ "$after" = "$before" ]
        then
            pass "$P/refuse-$name"
        else
            fail "$P/refuse-$name" "lbctl $args: exit $CTL_RC (expected $want), output" \
                "'$(oneline "$CTL_OUT")' (expected /$re/), table" \
                "$(same "$before" "$after")"
        fi
    done
    # The old config stays live: the VIP still serves.
    seq_run 80 4
    if [ "$RC" -eq 0 ]; then pass "$P/refuse-serving"; else
        fail "$P/refuse-serving" "after the refusals: $(oneline "$OUT")"
    fi
}

# 5b: a retired VIP. UDP VIP2:53 -> rs1 with a 3 s UDP timeout: after `-D` the VIP is still
# answered (ping) while its connections live, and no longer once they have expired (well before
# the 300 s bound); the log says so. The timeouts are put back.
check_retired() {
    local VIP=$VIP2 bad="" gone="" i
    local tmo  # "TCP TCPFIN UDP", as `lbctl -L --timeout` prints them
    tmo=$(ctl -L --timeout 2>&1 | awk '/^Timeout/ {print $(NF-2), $(NF-1), $NF}')
    if ! { ctl --set 0 0 3 && ctl -A -u "$VIP2:53" -s rr &&
        ctl -a -u "$VIP2:53" -r "$RS1:5353" -m; } >"$DIR/retired.log" 2>&1; then
        bad="setup: $(oneline "$(cat "$DIR/retired.log")");"
    fi
    udp_run 4
    [ "$RC" -eq 0 ] || bad="$bad udp to $VIP2:53 $(oneline "$OUT");"
    ctl -D -u "$VIP2:53" >>"$DIR/retired.log" 2>&1 || bad="$bad -D failed;"
    lab_client ping -c 1 -W 1 -q "$VIP2" >/dev/null 2>&1 ||
        bad="$bad $VIP2 not answered right after -D (its connections live);"
    list_n | grep -q "$VIP2" && bad="$bad $VIP2 still listed after -D;"
    for i in $(seq 1 30); do
        if ! lab_client ping -c 1 -W 1 -q "$VIP2" >/dev/null 2>&1; then gone=$i; break; fi
        sleep 0.5
    done
    [ -n "$gone" ] || bad="$bad $VIP2 still answered 30 tries after its connections expired;"
    grep -q "retired VIP $VIP2 is no longer answered" "$LOG" ||
        bad="$bad no 'retired VIP $VIP2 is no longer answered' in the log;"
    # shellcheck disable=SC2086
    [ -n "$tmo" ] && ctl --set $tmo >>"$DIR/retired.log" 2>&1
    if [ -z "$bad" ]; then pass "$P/retired-vip"; else fail "$P/retired-vip" "$bad"; fi
}

# 6: garbage at the control socket.
GARBAGE_PY='
import os, random, socket, struct, sys, threading
path = sys.argv[1]
rnd = random.Random(int(sys.argv[2]))
HEAD = struct.pack("<IHH", 0x3143424c, 3, 1)  # an old lbctl: magic "LBC1", version 3, GetStatus
GOOD = [b"{\"cmd\":\"status\",\"version\":4}",
        b"{\"cmd\":\"apply\",\"ops\":[{\"kind\":\"clear\"}]}",
        b"{\"cmd\":\"connections\"}", b"{\"cmd\":\"workers\"}"]
res = {"written": 0, "failed": 0}
lock = threading.Lock()
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s
def mutated():  # a request line with a few bytes changed (none of them may change the table)
    b = bytearray(rnd.choice(GOOD))
    for _ in range(rnd.randint(1, 4)):
        b[rnd.randrange(len(b))] = rnd.choice(b"{}[]:,\"\\ 0123456789aeflnrstuv.-\xff")
    return bytes(b) + b"\n"
def garbage(i):
    kind = i % 5
    if kind == 0:    # random bytes
        data = os.urandom(rnd.randint(1, 4096))
    elif kind == 1:  # a request cut short
        data = rnd.choice(GOOD)[:rnd.randint(0, 20)]
    elif kind == 2:  # a frame of the binary protocol: magic, version, type, random payload
        data = struct.pack("<IHHI", 0x3143424c, rnd.randint(0, 9), rnd.randint(0, 65535),
                           rnd.randint(0, 300)) + os.urandom(rnd.randint(0, 300))
    elif kind == 3:  # lines that are not quite requests
        data = b"".join(mutated() for _ in range(rnd.randint(1, 20)))
    else:            # lots of random bytes
        data = os.urandom(rnd.randint(12, 200000))
    try:
        s = conn()
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            while s.recv(65536):
                pass
        except OSError:
            pass  # lb may close first
        s.close()
        with lock:
            res["written"] += 1
    except OSError:
        with lock:
            res["failed"] += 1
held = [conn()]  # idle: never sends
big = conn()
try:
    big.sendall(b"{" + b" " * (9 << 20))  # a line longer than lb reads (8 MiB)
except OSError:
    pass  # lb closes it once it is over the limit
held.append(big)
for _ in range(5):  # requests cut short, left open
    t = conn()
    t.sendall(b"{\"cmd\":\"status\",\"ver")
    held.append(t)
threads = [threading.Thread(target=garbage, args=(i,)) for i in range(100)]
for t in threads:
    t.start()
for t in threads:
    t.join(20)
big.settimeout(3)
try:
    r = big.recv(4096)
    bigres = "closed" if not r else "answered"
except OSError as e:
    bigres = "no answer (%s)" % e
print("garbage written=%d failed=%d oversized=%s" % (res["written"], res["failed"], bigres),
      flush=True)
print("ready", flush=True)
sys.stdin.read()  # keeps the idle and cut-short clients open until stdin closes
'
check_garbage() {
    local before
    before=$(ctl -S 2>&1)
    local glog="$DIR/garbage.log"
    exec 8> >($LAB_PY -c "$GARBAGE_PY" "$SOCK" "$W" >"$glog" 2>&1 9>&-)
    for _ in $(seq 1 300); do
        grep -q '^ready' "$glog" 2>/dev/null && break
        sleep 0.1
    done
    note "$(grep '^garbage' "$glog")"
    local t0 t1 l_rc=0 out
    t0=$(date +%s%N)
    out=$(timeout 1 "$LAB_LBCTL" --socket "$SOCK" -L -n 2>&1) || l_rc=$?
    t1=$(date +%s%N)
    local ms=$(((t1 - t0) / 1000000))
    exec 8>&-
    local alive=0
    kill -0 "$LAB_LB_PID" 2>/dev/null && alive=1
    if grep -q '^ready' "$glog" && [ "$l_rc" -eq 0 ] && grep -q "^TCP  $VIP:80 " <<<"$out"; then
        pass "$P/garbage-list"
    else
        fail "$P/garbage-list" "with garbage written and idle/cut-short clients open: lbctl -L -n" \
            "exited $l_rc after $ms ms (expected 0 within 1 s): $(oneline "$out"); garbage:" \
            "$(oneline "$(cat "$glog")"); lb alive: $alive"
    fi
    note "lbctl -L -n answered in $ms ms"
    sleep 0.2
    local after
    after=$(ctl -S 2>&1)
    seq_run 80 4
    if [ "$alive" -eq 1 ] && [ "$after" = "$before" ] && [ "$RC" -eq 0 ]; then
        pass "$P/garbage-serving"
    else
        fail "$P/garbage-serving" "after the garbage: lb alive $alive, table" \
            "$(same "$before" "$after")," \
            "4 connections: $PER (exit $RC); $(oneline "$OUT")"
    fi
}

# 6b: the protocol by hand. `{"cmd":"status"}` (no version) through socat (python's socket
# where socat is missing) gets one JSON line with the VIP's service; `{"cmd":"connections"}`
# gets its start, one line per entry and the end with their count. An lbctl of the binary
# protocol 3 (its GetStatus frame) gets an Error frame of version 3 saying that lb speaks
# protocol 4 and that it is too old, and lb logs it; a JSON request of version 3 is told the
# same in an error line.
HAND_PY='
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
old = sys.argv[2] == "old"
s.sendall(struct.pack("<IHHI", 0x3143424c, 3, 1, 0) if old else sys.stdin.buffer.read())
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    c = s.recv(65536)
    if not c:
        break
    data += c
if old:
    magic, version, kind, length = struct.unpack("<IHHI", data[:12])
    print("frame version=%d type=%d: %s" % (version, kind, data[16:12 + length].decode()))
else:
    sys.stdout.write(data.decode())
'
CHECK_PY='
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
what, vip = sys.argv[2], sys.argv[3]
if what == "status":
    assert len(lines) == 1 and lines[0]["type"] == "status" and lines[0]["version"] == 4
    assert any(s["vip"] == vip and s["port"] == 80 for s in lines[0]["services"])
elif what == "connections":
    assert lines[0]["type"] == "connections" and lines[-1]["type"] == "end"
    assert all(l["type"] == "conn" for l in lines[1:-1])
    assert lines[-1]["count"] == len(lines) - 2
else:
    assert len(lines) == 1 and lines[0]["type"] == "error", lines
    assert "this lbctl speaks protocol 3 and is too old" in lines[0]["message"], lines
print(len(lines))
'
by_hand() {  # by_hand FILE: stdin's lines to the control socket, lb's answer into FILE
    if command -v socat >/dev/null; then
        timeout 10 socat -t 5 - "UNIX-CONNECT:$SOCK" >"$1" 2>&1
    else
        timeout 10 "$LAB_PY" -c "$HAND_PY" "$SOCK" lines >"$1" 2>&1
    fi
}

check_protocol() {
    local bad="" what out f="$DIR/hand.txt" how=python
    command -v socat >/dev/null && how=socat
    for what in status connections version3; do
        case $what in
        status) printf '{"cmd":"status"}\n' | by_hand "$f" ;;
        connections) printf '{"cmd":"connections"}\n' | by_hand "$f" ;;
        version3) printf '{"cmd":"status","version":3}\n' | by_hand "$f" ;;
        esac
        out=$("$LAB_PY" -c "$CHECK_PY" "$f" "$what" "$VIP" 2>&1) ||
            bad="$bad $what: $(oneline "$(head -c 300 "$f")") ($(oneline "$out" | tail -c 200));"
    done
    if [ -z "$bad" ]; then
        pass "$P/protocol-hand"
        note "by hand ($how): status, connections, and a request of version 3 refused"
    else
        fail "$P/protocol-hand" "through $how:$bad"
    fi
    out=$(timeout 10 "$LAB_PY" -c "$HAND_PY" "$SOCK" old </dev/null 2>&1)
    local want="frame version=3 type=199: lb speaks control protocol 4; this lbctl speaks"
    want="$want protocol 3 and is too old: use the lbctl that comes with this lb"
    if [ "$out" = "$want" ] &&
        grep -q 'refused an lbctl of the binary protocol (version 3)' "$LOG"; then
        pass "$P/protocol-old-lbctl"
    else
        fail "$P/protocol-old-lbctl" "an lbctl of protocol 3 got: $(oneline "$out"); log:" \
            "$(grep -c 'refused an lbctl' "$LOG") refusals"
    fi
}

# 7: write-config and reloads.
check_write_reload() {
    local f="$DIR/written.conf" w_rc=0 chk_rc=0 chk_out miss=()
    ctl --write-config "$f" >"$DIR/write.out" 2>&1 || w_rc=$?
    chk_out=$(timeout 20 "$LAB_LB" -c "$f" --check 2>&1) || chk_rc=$?
    # The runtime changes: rs2 deleted from :80, rs3 there at weight 0, :81 and :82 added.
    local svc80
    svc80=$(awk '/port = 80; protocol = "tcp"/ { on = 1 } on { print } on && /\); },?$/ { exit }' \
        "$f" 2>/dev/null | tr '\n' ' ')
    [[ "$svc80" == *"\"$RS3\"; port = 80; forward = \"nat\"; weight = 0;"* ]] ||
        miss+=("rs3 weight 0 in :80")
    [[ "$svc80" == *"\"$RS2\""* ]] && miss+=("rs2 still in :80")
    grep -q 'port = 81; protocol = "tcp"; scheduler = "sh"; sched_flags = \["sh-port"\];' "$f" ||
        miss+=(":81 sh sh-port")
    grep -q 'u_threshold = 100; l_threshold = 50;' "$f" || miss+=("thresholds 100/50")
    grep -q 'port = 82; .*persistence = 60; persistence_mask = "255.255.255.0";' "$f" ||
        miss+=(":82 persistence 60 mask /24")
    if [ "$w_rc" -eq 0 ] && [ "$chk_rc" -eq 0 ] && [ ${#miss[@]} -eq 0 ]; then
        pass "$P/write-config"
    else
        fail "$P/write-config" "lbctl --write-config $f exited $w_rc ($(oneline "$(cat \
            "$DIR/write.out")")); lb -c F --check exited $chk_rc ($(oneline "$chk_out"));" \
            "missing from F: ${miss[*]:-nothing}"
    fi

    # --write-config over lb's own file, then SIGHUP: nothing changes.
    local s1 n w2_rc=0
    s1=$(ctl -S 2>&1)
    cp "$CONF" "$DIR/original.conf"
    ctl --write-config >"$DIR/write2.out" 2>&1 || w2_rc=$?
    n=$(reloads)
    kill -HUP "$LAB_LB_PID"
    local ok=0 s2
    wait_reloaded "$n" && ok=1
    s2=$(ctl -S 2>&1)
    if [ "$w2_rc" -eq 0 ] && [ $ok -eq 1 ] && [ "$s2" = "$s1" ] &&
        ! cmp -s "$CONF" "$DIR/original.conf"; then
        pass "$P/reload-after-write"
    else
        fail "$P/reload-after-write" "lbctl --write-config exited $w2_rc" \
            "($(oneline "$(cat "$DIR/write2.out")")), $CONF $(cmp -s "$CONF" \
                "$DIR/original.conf" && echo unchanged || echo rewritten); reloaded: $ok; -S" \
            "$([ "$s2" = "$s1" ] && echo same || echo "differs: $(oneline "$s2")")"
    fi

    # A good file with changes: :80 becomes wlc, udp timeout 200.
    cp "$CONF" "$DIR/before-good.conf"
    sed -i -e 's/\(port = 80; protocol = "tcp"; scheduler = \)"rr"/\1"wlc"/' \
        -e 's/udp_timeout = 300;/udp_timeout = 200;/' "$CONF"
    n=$(reloads)
    kill -HUP "$LAB_LB_PID"
    ok=0
    wait_reloaded "$n" && ok=1
    local line80 tmo
    line80=$(list_n | grep -E "^TCP $VIP:80 ")
    tmo=$(ctl -L --timeout 2>&1)
    seq_run 80 4
    if [ $ok -eq 1 ] && [ "$line80" = "TCP $VIP:80 wlc" ] &&
        grep -qE ': [0-9]+ [0-9]+ 200$' <<<"$tmo" && [ "$RC" -eq 0 ] && [ "$PER" = "rs1:4" ]; then
        pass "$P/reload-good"
    else
        fail "$P/reload-good" "SIGHUP with :80 wlc and udp_timeout 200: reloaded $ok, -L -n" \
            "'$line80' (expected 'TCP $VIP:80 wlc'), --timeout '$(oneline "$tmo")'; 4" \
            "connections: $PER (expected rs1:4); log: $(tail -n 2 "$LOG" | tr '\n' ' ')"
    fi

    # A broken file: refused, FILE:LINE: in the log, the old config stays.
    local good_s
    good_s=$(ctl -S 2>&1)
    cp "$CONF" "$DIR/good.conf"
    sed -i 's/\(port = 81; protocol = "tcp";\)/\1 colour = "blue";/' "$CONF"
    local errs_before
    errs_before=$(grep -cE "${CONF//./\\.}:[0-9]+: " "$LOG")
    kill -HUP "$LAB_LB_PID"
    local logged=0
    for _ in $(seq 1 50); do
        [ "$(grep -cE "${CONF//./\\.}:[0-9]+: " "$LOG")" -gt "$errs_before" ] && logged=1 && break
        sleep 0.1
    done
    local bad_s
    bad_s=$(ctl -S 2>&1)
    seq_run 80 4
    local msg
    msg=$(grep -E "${CONF//./\\.}:[0-9]+: " "$LOG" | tail -n 1)
    if [ $logged -eq 1 ] && [ "$bad_s" = "$good_s" ] && [ "$RC" -eq 0 ] && [ "$PER" = "rs1:4" ]
    then
        pass "$P/reload-bad"
        note "refused: ${msg#*] }"
    else
        fail "$P/reload-bad" "SIGHUP with an unknown key: FILE:LINE: logged $logged; table" \
            "$(same "$good_s" "$bad_s");" \
            "4 connections: $PER (exit $RC); log: $(tail -n 2 "$LOG" | tr '\n' ' ')"
    fi
    cp "$DIR/good.conf" "$CONF"
}

# 8: the metrics endpoint.
check_metrics() {
    local a setup_rc=0
    for a in "-A -t $VIP:83 -s rr" "-a -t $VIP:83 -r $RS1:80 -m" "-a -t $VIP:83 -r $RS2:80 -m"; do
        # shellcheck disable=SC2086
        ctl $a >>"$DIR/setup-83.log" 2>&1 || setup_rc=$?
    done
    seq_run 83 10
    local seq_per=$PER seq_rc=$RC seq_out=$OUT
    local s='protocol="tcp",vip="198\.51\.100\.10",port="83"'
    local svc r1 r2 inp outp st_in st_out
    for _ in $(seq 1 20); do  # workers publish their counters on their own
        scrape
        svc=$(metric lb_service_connections_total "$s")
        r1=$(metric lb_real_connections_total "$s,real=\"$RS1\"")
        r2=$(metric lb_real_connections_total "$s,real=\"$RS2\"")
        inp=$(metric lb_service_in_packets_total "$s")
        outp=$(metric lb_service_out_packets_total "$s")
        read -r st_in st_out < <(ctl -L -n --stats --exact -t "$VIP:83" 2>&1 |
            awk -v k="$VIP:83" '$1 == "TCP" && $2 == k { print $4, $5 }')
        [ "$svc" = 10 ] && [ "$r1" = 5 ] && [ "$r2" = 5 ] && [ "$inp" = "$st_in" ] &&
            [ "$outp" = "$st_out" ] && [ "${inp:-0}" -gt 0 ] && break
        sleep 0.25
    done
    if [ "$setup_rc" -eq 0 ] && [ "$seq_rc" -eq 0 ] && [ "$svc" = 10 ] && [ "$r1" = 5 ] &&
        [ "$r2" = 5 ] && [ "$inp" = "$st_in" ] && [ "$outp" = "$st_out" ] && [ "${inp:-0}" -gt 0 ]
    then
        pass "$P/metrics-counts"
    else
        fail "$P/metrics-counts" "10 connections to :83 ($seq_per, exit $seq_rc, setup" \
            "$setup_rc):" \
            "lb_service_connections_total '$svc' (expected 10), lb_real_connections_total rs1" \
            "'$r1' rs2 '$r2' (expected 5 5), in/out packets '$inp'/'$outp' (lbctl --stats" \
            "--exact: '$st_in'/'$st_out'); $(oneline "$seq_out"); scrape:" \
            "$(grep -c . "$DIR/metrics.txt") lines, $(head -c 200 "$DIR/metrics.txt")"
    fi

    local workers reasons pool
    workers=$(grep -E '^lb_worker_drops_total\{' "$DIR/metrics.txt" |
        grep -oE 'lcore="[0-9]+"|worker="[0-9]+"' | sort -u | wc -l)
    reasons=$(grep -E '^lb_worker_drops_total\{.*reason="[a-z_]+"' "$DIR/metrics.txt" |
        grep -oE 'reason="[a-z_]+"' | sort -u | wc -l)
    pool=$(grep -cE '^lb_mbuf_pool_in_use [0-9]' "$DIR/metrics.txt")
    if [ "$workers" = "$W" ] && [ "$reasons" -ge 5 ] && [ "$pool" = 1 ]; then
        pass "$P/metrics-workers"
    else
        fail "$P/metrics-workers" "lb_worker_drops_total: $workers worker label values (expected" \
            "$W), $reasons reason labels (expected several); lb_mbuf_pool_in_use samples: $pool;" \
            "$(grep -E '^lb_(worker_drops_total|mbuf)' "$DIR/metrics.txt" | head -n 4 |
                tr '\n' '|')"
    fi

    # Rates: 2-second EWMAs, so a few seconds of traffic.
    rm -f "$DIR/stop-traffic"
    (
        while [ ! -f "$DIR/stop-traffic" ]; do
            lab_client timeout 30 "$LAB_PY" "$LAB_E2E_DIR/client.py" seq --host "$VIP" \
                --port 83 --count 20 --timeout 3 >>"$DIR/traffic.log" 2>&1
        done
    ) 9>&- &
    local tpid=$!
    BG_PIDS+=("$tpid")
    local cps inpps rline rcps rinpps t0=$SECONDS
    sleep 3
    for _ in $(seq 1 40); do
        scrape
        cps=$(metric lb_service_rate_connections_per_second "$s")
        inpps=$(metric lb_service_rate_in_packets_per_second "$s")
        rline=$(ctl -L -n --rate 2>&1 | awk -v k="$VIP:83" '$1 == "TCP" && $2 == k')
        rcps=$(echo "$rline" | awk '{ print $3 }')
        rinpps=$(echo "$rline" | awk '{ print $4 }')
        awk -v a="${cps:-0}" -v b="${inpps:-0}" -v c="${rcps:-0}" -v d="${rinpps:-0}" \
            'BEGIN { exit !(a > 0 && b > 0 && c > 0 && d > 0) }' && break
        sleep 0.25
    done
    touch "$DIR/stop-traffic"
    wait "$tpid" 2>/dev/null
    local errs
    errs=$(grep -c '^seq .* failed=[1-9]' "$DIR/traffic.log")
    if awk -v a="${cps:-0}" -v b="${inpps:-0}" -v c="${rcps:-0}" -v d="${rinpps:-0}" \
        'BEGIN { exit !(a > 0 && b > 0 && c > 0 && d > 0) }' && [ "$errs" = 0 ]; then
        pass "$P/metrics-rates"
        note "after $((SECONDS - t0)) s of traffic: metrics cps $cps inpps $inpps; lbctl --rate" \
            "'$(echo "$rline" | tr -s ' ')'"
    else
        fail "$P/metrics-rates" "after $((SECONDS - t0)) s of traffic to :83:" \
            "lb_service_rate_connections_per_second '$cps', lb_service_rate_in_packets_per_second" \
            "'$inpps', lbctl -L -n --rate '$(echo "$rline" | tr -s ' ')' (expected all > 0);" \
            "failed traffic runs: $errs"
    fi
}

# 9: --workers and --json.
check_workers_json() {
    local out rc=0 nw
    out=$(ctl --workers 2>&1) || rc=$?
    nw=$(echo "$out" | sed -n 's/^Workers: \([0-9]*\),.*/\1/p')
    local cols
    cols=$(echo "$out" | grep -m1 -E '^counter ' | grep -oE 'lcore [0-9]+' | wc -l)
    if [ "$rc" -eq 0 ] && [ "$nw" = "$W" ] && [ "$cols" = "$W" ]; then pass "$P/workers"; else
        fail "$P/workers" "lbctl --workers exited $rc: 'Workers: $nw' with $cols lcore columns" \
            "(expected $W); $(echo "$out" | head -n 3 | tr '\n' '|')"
    fi
    local bad="" args
    for args in "-L -n" "-L -n --stats" "-L -n --rate" "-L -n --thresholds" \
        "-L -n --persistent-conn" "-L -n -c" "-L --timeout" "--workers"; do
        # shellcheck disable=SC2086
        ctl $args --json >"$DIR/json.txt" 2>&1 || bad="$bad '$args --json' exited $?;"
        $LAB_PY -c 'import json, sys; json.load(open(sys.argv[1]))' "$DIR/json.txt" \
            2>/dev/null || bad="$bad '$args --json' does not parse: $(head -c 120 "$DIR/json.txt");"
    done
    local nwj
    ctl --workers --json >"$DIR/json.txt" 2>&1
    nwj=$($LAB_PY -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["workers"]))' \
        "$DIR/json.txt" 2>&1)
    [ "$nwj" = "$W" ] || bad="$bad --workers --json has '$nwj' workers (expected $W);"
    if [ -z "$bad" ]; then pass "$P/json"; else fail "$P/json" "$bad"; fi
}

run_one() {  # run_one WORKERS
    W=$1
    P="ctl-w$W"
    DIR="$TMP/$P"
    SOCK="$DIR/lb.sock"
    LOG="$DIR/lb.log"
    CONF="$DIR/lb.conf"
    mkdir -p "$DIR"
    RUN_FAILED=0
    local t0=$SECONDS
    echo "== $P: lbctl, reload, write-config and metrics on a running lb (LVS-NAT), $W worker(s)"
    local checks=(add-real-held add-real-new conns-list weight0-new delete-list delete-new
        weight0-held delete-held weight0-drain save-clear restore-list restore-thresholds
        restore-traffic refuse-bad-address refuse-unreachable refuse-dup-service
        refuse-missing-real refuse-unknown-sched refuse-vip-is-real refuse-real-is-vip
        refuse-serving retired-vip garbage-list garbage-serving protocol-hand
        protocol-old-lbctl write-config
        reload-after-write reload-good reload-bad metrics-counts metrics-workers metrics-rates
        workers json sigterm)

    lab_mode nat
    local c
    if ! { lab_up && lab_start_reals && start_rs3; } >"$DIR/lab.log" 2>&1; then
        for c in start "${checks[@]}"; do
            fail "$P/$c" "lab setup failed: $(tail -n 3 "$DIR/lab.log" | tr '\n' ' ')"
        done
        lab_down
        return
    fi
    local out rc=0
    if write_conf "$W" "$CONF" 2>"$DIR/conf.err" &&
        { out=$(timeout 20 "$LAB_LB" -c "$CONF" --check 2>&1) || rc=$?; [ $rc -eq 0 ]; } &&
        lab_start_lb "$CONF" "$LOG" "$SOCK" 30 2>"$DIR/start.err"; then
        pass "$P/start"
    else
        fail "$P/start" "config $(oneline "$(cat "$DIR/conf.err")"); lb --check exited $rc:" \
            "$(oneline "${out:-}") $(cat "$DIR/start.err" 2>/dev/null)"
        for c in "${checks[@]}"; do fail "$P/$c" "lb did not start"; done
        dump_lb
        lab_down
        return
    fi
    note "lb pid $LAB_LB_PID, config $CONF, log $LOG"
    seq_run 80 2  # the client's and the reals' neighbour entries

    check_add_weight_delete
    check_save_restore
    check_refusals
    check_retired
    check_garbage
    check_protocol
    check_write_reload
    check_metrics
    check_workers_json
    [ $RUN_FAILED -ne 0 ] && dump_lb
    lab_stop_lb 5
    if [ "$LAB_LB_STATUS" = 0 ]; then pass "$P/sigterm"; else
        fail "$P/sigterm" "lb exit status $LAB_LB_STATUS on SIGTERM"
    fi
    lab_down
    echo "== $P: $((SECONDS - t0)) s"
}

t_all=$SECONDS
for w in "${WORKERS[@]}"; do run_one "$w"; done
echo "ctl wall time: $((SECONDS - t_all)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
