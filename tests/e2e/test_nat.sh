#!/usr/bin/env bash
# End-to-end test of LVS-NAT through lb: the seed's NAT experiment (one director, two real servers
# naming themselves, a client that sees the answers alternate) on real kernels in network
# namespaces (see lib.sh), run with 1 worker and again with 2 workers.
#
# usage: tests/e2e/test_nat.sh [--workers 1|2|1,2] [--director lb|kernel] [--keep-tmp]
#   --director kernel  checks the lab itself without lb: the director is the kernel with nftables
#                      DNAT round robin; checks that need lb are skipped. Needs `nft`.
# env: LB_BUILD_DIR (default build): where lb/lb and tools/lbctl are.
#      LB_E2E_CONF_SED: a sed script applied to the config copies (experiments only; noted).
#
# Prints `PASS name` or `FAIL name: why` per check and ends with `N passed, N failed`.
# Exit status 0 only if nothing failed. Needs root.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"

WORKERS=(1 2)
DIRECTOR=lb
KEEP_TMP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --workers)
        IFS=, read -r -a WORKERS <<<"${2:?--workers needs a value}"
        shift 2
        ;;
    --director)
        DIRECTOR=${2:?--director needs lb or kernel}
        shift 2
        ;;
    --keep-tmp)
        KEEP_TMP=1
        shift
        ;;
    -h | --help)
        sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "unknown argument: $1 (see --help)" >&2
        exit 2
        ;;
    esac
done
case "$DIRECTOR" in lb | kernel) ;; *)
    echo "--director must be lb or kernel" >&2
    exit 2
    ;;
esac

lab_require_root || exit 2
lab_lock || exit 2

TMP=$(mktemp -d /tmp/lbt-e2e.XXXXXX)
export LAB_RUN="$TMP/run"
mkdir -p "$LAB_RUN"
PASSED=0
FAILED=0
RUN_FAILED=0

cleanup() {
    [ -n "$LAB_LB_PID" ] && lab_stop_lb 3 >/dev/null
    lab_down
    if [ "$KEEP_TMP" -eq 1 ] || [ "$FAILED" -ne 0 ]; then
        echo "e2e: logs and configs kept in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'echo "e2e: interrupted" >&2; exit 130' INT TERM

pass() {
    echo "PASS $1"
    PASSED=$((PASSED + 1))
}
fail() {
    echo "FAIL $1: $2"
    FAILED=$((FAILED + 1))
    RUN_FAILED=$((RUN_FAILED + 1))
}
skip() { echo "SKIP $1: $2"; }
note() { echo "  $*"; }

PAGE_RE='^rs[12] 10\.10\.0\.[23], it works!$'

# The config for N workers: conf/nat.conf, conf/nat-2workers.conf, or nat.conf turned into a
# 2-worker config with sed when the latter does not exist. Only the socket path is changed.
make_conf() {  # make_conf WORKERS DST SOCKET
    local w=$1 dst=$2 sock=$3 src
    if [ "$w" -eq 1 ]; then
        src="$LAB_REPO/conf/nat.conf"
    elif [ -f "$LAB_REPO/conf/nat-${w}workers.conf" ]; then
        src="$LAB_REPO/conf/nat-${w}workers.conf"
    elif [ "$w" -eq 2 ] && [ -f "$LAB_REPO/conf/nat.conf" ]; then
        src="$dst.src"
        sed -E -e 's/"0-1"/"0-2"/' -e 's/workers([[:space:]]*[=:][[:space:]]*)\[[[:space:]]*1[[:space:]]*\]/workers\1[1, 2]/' \
            -e 's/iface=(lb-ext|lb-int)"/iface=\1,qpairs=2"/' "$LAB_REPO/conf/nat.conf" >"$src"
        note "conf/nat-2workers.conf not found: derived $src from conf/nat.conf"
    else
        src="$LAB_REPO/conf/nat.conf"
    fi
    lab_make_conf "$src" "$dst" "$sock" || return 1
    if [ -n "${LB_E2E_CONF_SED:-}" ]; then
        sed -i -E "$LB_E2E_CONF_SED" "$dst" || return 1
        note "LB_E2E_CONF_SED applied to $dst: $LB_E2E_CONF_SED"
    fi
}

# Files (not directories) under DPDK's runtime and hugepage folders.
dpdk_files() { find /dev/hugepages /var/run/dpdk ! -type d 2>/dev/null | sort; }
dpdk_dirs() { find /dev/hugepages /var/run/dpdk -type d 2>/dev/null | sort; }

# Checks lbctl -L -n --stats --exact output (file $1) against what the client did.
STATS_PY='
import re, sys
text, tcp_conns, udp_conns, big = open(sys.argv[1]).read(), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
svcs, cur = {}, None
for line in text.splitlines():
    t = line.split()
    nums = t[2:7]
    if len(t) >= 7 and t[0] in ("TCP", "UDP") and all(x.isdigit() for x in nums):
        cur = svcs[(t[0], t[1])] = {"v": list(map(int, nums)), "reals": {}}
    elif len(t) >= 7 and t[0] == "->" and cur is not None and all(x.isdigit() for x in nums):
        cur["reals"][t[1]] = list(map(int, nums))
errs = {"tcp": [], "udp": []}
def check(kind, key, conns, reals, exact=None):
    e = errs[kind]
    s = svcs.get(key)
    if s is None:
        e.append("no %s %s line in the stats" % key); return
    c, ip, op, ib, ob = s["v"]
    if c != conns: e.append("service Conns %d, expected %d" % (c, conns))
    if sorted(s["reals"]) != sorted(reals): e.append("reals %s, expected %s" % (sorted(s["reals"]), sorted(reals)))
    for i, name in enumerate(("Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")):
        tot = sum(r[i] for r in s["reals"].values())
        if s["reals"] and tot != s["v"][i]: e.append("reals %s sum %d != service %d" % (name, tot, s["v"][i]))
    if ip <= 0 or op <= 0: e.append("service InPkts %d OutPkts %d, expected > 0" % (ip, op))
    for r, v in sorted(s["reals"].items()):
        if v[0] <= 0 or v[1] <= 0 or v[2] <= 0: e.append("real %s Conns/InPkts/OutPkts %d/%d/%d, expected > 0" % (r, v[0], v[1], v[2]))
    if exact:
        for name, i in (("InPkts", 1), ("OutPkts", 2), ("InBytes", 3), ("OutBytes", 4)):
            if s["v"][i] != exact[name]: e.append("service %s %d, expected %d" % (name, s["v"][i], exact[name]))
    return s
t = check("tcp", ("TCP", "198.51.100.10:80"), tcp_conns, ["10.10.0.2:80", "10.10.0.3:80"])
if t and big:
    _, ip, op, ib, ob = t["v"]
    if ib < big: e = errs["tcp"].append("service InBytes %d < the %d-byte upload" % (ib, big))
    if ob < big: e = errs["tcp"].append("service OutBytes %d < the %d-byte download" % (ob, big))
# 10 datagrams "hello N\n" (8 bytes) answered by "rsN 10.10.0.N\n" (14 bytes); IP bytes = +28 each.
check("udp", ("UDP", "198.51.100.10:53"), udp_conns, ["10.10.0.2:5353", "10.10.0.3:5353"],
      exact={"InPkts": udp_conns, "OutPkts": udp_conns, "InBytes": 36 * udp_conns, "OutBytes": 42 * udp_conns})
for k in ("tcp", "udp"):
    print("%s %s" % (k, "; ".join(errs[k]) if errs[k] else "ok"))
'

# Checks lbctl -L -n output (file $1): services, schedulers, reals, forwarding method, weights.
LIST_PY='
import sys
want = {("TCP", "198.51.100.10:80"): ["10.10.0.2:80", "10.10.0.3:80"],
        ("UDP", "198.51.100.10:53"): ["10.10.0.2:5353", "10.10.0.3:5353"]}
got, cur, errs = {}, None, []
for line in open(sys.argv[1]).read().splitlines():
    t = line.split()
    if len(t) >= 3 and t[0] in ("TCP", "UDP") and ":" in t[1]:
        cur = got[(t[0], t[1])] = {"sched": t[2], "reals": {}}
    elif len(t) >= 4 and t[0] == "->" and ":" in t[1] and cur is not None:
        cur["reals"][t[1]] = (t[2], t[3])
for key, reals in want.items():
    s = got.get(key)
    if s is None:
        errs.append("no %s %s line" % key); continue
    if s["sched"] != "rr": errs.append("%s %s scheduler %r" % (key[0], key[1], s["sched"]))
    if sorted(s["reals"]) != reals: errs.append("%s %s reals %s" % (key[0], key[1], sorted(s["reals"])))
    for r, (fwd, w) in s["reals"].items():
        if fwd != "Masq" or w != "1": errs.append("%s forward %r weight %r, expected Masq 1" % (r, fwd, w))
print("; ".join(errs) if errs else "ok")
'

dump_lb() {  # on failure: what lb says about itself
    local sock=$1 log=$2
    if [ -n "$LAB_LB_PID" ] && [ -S "$sock" ]; then
        echo "---- lbctl -L -n --stats"
        lab_lbctl "$sock" -L -n --stats 2>&1 | sed 's/^/  /'
    fi
    if [ -f "$log" ]; then
        if grep -qE '^EAL: |\[(error|critical|warning)\]' "$log"; then
            echo "---- errors and EAL messages in $log"
            grep -E '^EAL: |\[(error|critical|warning)\]' "$log" | head -n 20 | sed 's/^/  /'
        fi
        echo "---- last 25 lines of $log"
        tail -n 25 "$log" | sed 's/^/  /'
    fi
    echo "----"
}

run_one() {  # run_one WORKERS
    local w=$1 p dir sock log conf t0=$SECONDS out rc=0 res
    RUN_FAILED=0
    if [ "$DIRECTOR" = kernel ]; then p="nat-kernel"; else p="nat-w$w"; fi
    dir="$TMP/$p"
    sock="$dir/lb.sock"
    log="$dir/lb.log"
    conf="$dir/lb.conf"
    mkdir -p "$dir"
    if [ "$DIRECTOR" = kernel ]; then
        echo "== $p: LVS-NAT, director = the kernel with nftables (checks the lab, not lb)"
    else
        echo "== $p: LVS-NAT through lb, $w worker(s)"
    fi

    local checks=(config-check start ping alternate download upload concurrent udp-alternate
        lbctl-list stats-tcp stats-udp sigterm no-leftovers)
    fail_rest() {  # every check from $1 on fails with reason $2
        local on=0 c
        for c in "${checks[@]}"; do
            [ "$c" = "$1" ] && on=1
            [ $on -eq 1 ] && fail "$p/$c" "$2"
        done
    }

    if ! lab_up >"$dir/lab.log" 2>&1 || ! lab_start_reals >>"$dir/lab.log" 2>&1; then
        fail_rest config-check "lab setup failed: $(tail -n 3 "$dir/lab.log" | tr '\n' ' ')"
        return
    fi

    local files_before dirs_before
    files_before=$(dpdk_files)
    dirs_before=$(dpdk_dirs)
    if [ "$DIRECTOR" = kernel ]; then
        skip "$p/config-check" "no lb"
        if lab_kernel_director >"$dir/kernel.log" 2>&1; then pass "$p/start"; else
            fail_rest start "kernel director: $(cat "$dir/kernel.log")"
            return
        fi
    else
        if ! make_conf "$w" "$conf" "$sock" 2>"$dir/conf.err"; then
            fail_rest config-check "$(cat "$dir/conf.err")"
            return
        fi
        out=$(timeout 20 "$LAB_LB" -c "$conf" --check 2>&1) || rc=$?
        if [ $rc -eq 0 ]; then pass "$p/config-check"; else
            fail "$p/config-check" "lb --check exited $rc: $(echo "$out" | head -n 3 | tr '\n' ' ')"
        fi
        if lab_start_lb "$conf" "$log" "$sock" 30 2>"$dir/start.err"; then
            pass "$p/start"
            note "lb pid $LAB_LB_PID, log $log"
        else
            fail "$p/start" "$(sed 's/^lab: error: //' "$dir/start.err")"
            fail_rest ping "lb did not start"
            dump_lb "$sock" "$log"
            return
        fi
    fi

    # ping: lb answers for its interface addresses and the VIP, on both sides.
    local bad=()
    for a in "$LAB_DIR_EXT_IP" "$LAB_VIP"; do
        lab_client ping -c 2 -i 0.2 -W 2 -q "$a" >/dev/null 2>&1 || bad+=("client->$a")
    done
    for ns in "$LAB_NS_RS1" "$LAB_NS_RS2"; do
        ip netns exec "$ns" ping -c 2 -i 0.2 -W 2 -q "$LAB_DIR_INT_IP" >/dev/null 2>&1 ||
            bad+=("${ns#lbt-}->$LAB_DIR_INT_IP")
    done
    if [ ${#bad[@]} -eq 0 ]; then pass "$p/ping"; else fail "$p/ping" "no answer: ${bad[*]}"; fi

    local tcp_conns=0 udp_conns=0

    # (1) 10 sequential requests alternate strictly between the two reals.
    local seq=() i ans badans=""
    for i in $(seq 1 10); do
        ans=$(lab_client curl -s --max-time 5 "http://$LAB_VIP/" 2>&1)
        tcp_conns=$((tcp_conns + 1))
        if [[ "$ans" =~ $PAGE_RE ]]; then seq+=("${ans%% *}"); else
            seq+=("?")
            badans="${badans:+$badans; }#$i: ${ans:-no answer (curl timed out or failed)}"
        fi
    done
    local alt=1
    for i in $(seq 1 9); do [ "${seq[$i]}" = "${seq[$((i - 1))]}" ] && alt=0; done
    [[ " ${seq[*]} " == *" ? "* ]] && alt=0
    if [ $alt -eq 1 ]; then pass "$p/alternate"; else
        fail "$p/alternate" "answers ${seq[*]}${badans:+ ($badans)}"
    fi

    # (2) a 10 MB download and a 10 MB upload arrive intact.
    local big=10485760
    out=$(lab_client_py download --host "$LAB_VIP" --size $big --timeout 60 2>&1) && rc=0 || rc=$?
    tcp_conns=$((tcp_conns + 1))
    note "$out"
    if [ $rc -eq 0 ]; then pass "$p/download"; else fail "$p/download" "$out"; fi
    out=$(lab_client_py upload --host "$LAB_VIP" --size $big --timeout 60 2>&1) && rc=0 || rc=$?
    tcp_conns=$((tcp_conns + 1))
    note "$out"
    if [ $rc -eq 0 ]; then pass "$p/upload"; else fail "$p/upload" "$out"; fi

    # (3) 200 concurrent short connections all succeed.
    out=$(lab_client_py concurrent --host "$LAB_VIP" --count 200 --timeout 20 2>&1) && rc=0 || rc=$?
    tcp_conns=$((tcp_conns + 200))
    note "$(echo "$out" | head -n 1)"
    if [ $rc -eq 0 ]; then pass "$p/concurrent"; else
        fail "$p/concurrent" "$(echo "$out" | tr '\n' ' ')"
    fi

    # (4) the UDP service alternates over 10 datagrams from 10 source ports.
    out=$(lab_client_py udp --host "$LAB_VIP" --port "$LAB_UDP_VPORT" --count 10 --timeout 2 2>&1) &&
        rc=0 || rc=$?
    udp_conns=$((udp_conns + 10))
    local useq
    useq=$(echo "$out" | awk '{print $2}' | tr '\n' ' ')
    if [ $rc -eq 0 ] && echo "$out" | awk 'NR > 1 && $2 == prev {bad = 1} {prev = $2}
            $2 !~ /^rs[12]$/ {bad = 1} END {exit bad || NR != 10}'; then
        pass "$p/udp-alternate"
    else
        fail "$p/udp-alternate" "answers (source port, server): $(echo "$out" | tr '\n' ' ')"
    fi
    note "udp answers: $useq"

    # (5) lbctl agrees with what the client did.
    if [ "$DIRECTOR" = kernel ]; then
        skip "$p/lbctl-list" "no lb"
        skip "$p/stats-tcp" "no lb"
        skip "$p/stats-udp" "no lb"
    else
        out=$(lab_lbctl "$sock" -L -n 2>&1) && rc=0 || rc=$?
        echo "$out" >"$dir/list.txt"
        res=$($LAB_PY -c "$LIST_PY" "$dir/list.txt" 2>&1)
        if [ $rc -eq 0 ] && [ "$res" = ok ]; then pass "$p/lbctl-list"; else
            fail "$p/lbctl-list" "lbctl exited $rc: $res; output: $(echo "$out" | tr '\n' '|')"
        fi
        # Workers publish their counters on their own; allow them up to 3 s to settle.
        local tcp_res udp_res
        for i in $(seq 1 7); do
            out=$(lab_lbctl "$sock" -L -n --stats --exact 2>&1) && rc=0 || rc=$?
            echo "$out" >"$dir/stats.txt"
            res=$($LAB_PY -c "$STATS_PY" "$dir/stats.txt" "$tcp_conns" "$udp_conns" "$big" 2>&1)
            tcp_res=$(echo "$res" | sed -n 's/^tcp //p')
            udp_res=$(echo "$res" | sed -n 's/^udp //p')
            [ $rc -eq 0 ] && [ "$tcp_res" = ok ] && [ "$udp_res" = ok ] && break
            sleep 0.5
        done
        echo "$out" | sed 's/^/  | /'
        if [ $rc -ne 0 ]; then
            fail "$p/stats-tcp" "lbctl exited $rc: $(echo "$out" | tr '\n' ' ')"
            fail "$p/stats-udp" "lbctl exited $rc"
        else
            if [ "$tcp_res" = ok ]; then pass "$p/stats-tcp"; else
                fail "$p/stats-tcp" "${tcp_res:-$res} (client made $tcp_conns TCP connections)"
            fi
            if [ "$udp_res" = ok ]; then pass "$p/stats-udp"; else
                fail "$p/stats-udp" "${udp_res:-$res} (client sent $udp_conns datagrams)"
            fi
        fi
    fi

    [ $RUN_FAILED -ne 0 ] && [ "$DIRECTOR" = lb ] && dump_lb "$sock" "$log"

    # (6) lb exits 0 on SIGTERM within 5 s and leaves no DPDK files behind.
    if [ "$DIRECTOR" = kernel ]; then
        skip "$p/sigterm" "no lb"
        skip "$p/no-leftovers" "no lb"
    else
        local t_stop=$SECONDS st
        lab_stop_lb 5
        st=$LAB_LB_STATUS
        if [ "$st" = 0 ]; then pass "$p/sigterm"; else
            fail "$p/sigterm" "$([ "$st" = timeout ] && echo "still running 5 s after SIGTERM (killed)" ||
                echo "exit status $st after $((SECONDS - t_stop)) s")"
            tail -n 20 "$log" | sed 's/^/  /'
        fi
        local new_files new_dirs
        new_files=$(comm -13 <(echo "$files_before") <(dpdk_files))
        new_dirs=$(comm -13 <(echo "$dirs_before") <(dpdk_dirs))
        if [ -z "$new_files" ]; then pass "$p/no-leftovers"; else
            fail "$p/no-leftovers" "left behind: $(echo "$new_files" | tr '\n' ' ')"
        fi
        [ -n "$new_dirs" ] && note "empty directories left behind: $(echo "$new_dirs" | tr '\n' ' ')"
    fi
    lab_down
    echo "== $p: $((SECONDS - t0)) s"
}

t_all=$SECONDS
if [ "$DIRECTOR" = kernel ]; then
    run_one 1
else
    for w in "${WORKERS[@]}"; do run_one "$w"; done
fi
echo "e2e wall time: $((SECONDS - t_all)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
