#!/usr/bin/env bash
# End-to-end tests of lb under hostile traffic and faults, in the NAT lab (lib.sh), with 1 worker
# and again with 2. lb runs conf/nat.conf (nat-2workers.conf) with: `connections.capacity =
# 4096`, a UDP service VIP:54 -> reals:5354 whose servers (udp_echo.py --digest) answer with the
# datagram's length and sha256, and a route for 198.18.0.0/15 (the flood's spoofed sources) via
# the client. tests/e2e/hostile.py builds and sends the traffic.
#
#   catalogue-*   while a 10 MB download runs (read at ~3 MB/s), the malformed-traffic
#                 catalogue of hostile.py from the client (truncated Ethernet/IP/TCP/UDP/ICMP
#                 headers, bad IHL, total lengths and checksums, bad data offsets and UDP
#                 lengths, odd TCP flag sets, TTL 0/1, VLAN, QinQ, IPv6, other ethertypes, bad
#                 ARP, random bytes, ICMP errors quoting nothing or garbage, fragments of odd
#                 kinds, land packets) and from rs1 toward lb's inside port (bad checksums,
#                 orphan fragments, stray ICMP errors and TCP, foreign ARP, VLAN, IPv6, a TTL-1
#                 datagram on a live UDP flow):
#     -download   the download arrives intact (sha256)
#     -serving    lbctl -L -n answers, a new request succeeds
#     -drops      each drop reason grew by at least the frames of its classes, and the total by
#                 at least all the frames that cannot be forwarded (hostile.py drops)
#     -forward    UDP with IP options (NOP, record route) and with Ethernet padding after it is
#                 answered by the digest server, intact
#     -martians   no connection entry has the VIP or an address of lb as its client (a land
#                 packet VIP:80 -> VIP:80, lb's own address as a source)
#     -mbufs      lbctl --workers: mbufs_in_use is back to its idle value within 5 s
#   frag-*        1400-byte UDP datagrams as 3 crafted fragments, and as an 8-byte first
#                 fragment (the UDP header alone) and the rest: the digest server's answer is
#                 right. net_af_packet's sockets are in a PACKET_FANOUT_FLAG_DEFRAG fanout group
#                 (DPDK 22.11), so the director's kernel reassembles these before lb sees them;
#                 hence, with 1 worker only (a net_pcap port has one queue), lb is restarted on
#                 net_pcap ports for frag-pcap-*: the same two, a 3000-byte datagram fragmented by
#                 the client's kernel (MTU 1500; lb forwards the later fragments itself), and 5
#                 later fragments whose first never came (drop.fragment +5)
#   flood-*       30000 spoofed SYNs (198.18.0.0/15) over ~10 s at VIP:80 while a slow 4 MB
#                 download (started before) runs and a client makes 200 sequential short
#                 connections, then 100 more after the flood: >= 90% during, 100% after, the
#                 download intact, lbctl answering all along; table occupancy, conns_evicted
#                 and drops are printed
#   fault-real-*  the web server of the real serving a download is killed (SIGKILL): the client
#                 sees the failure; requests landing on the other real still succeed; with the
#                 dead real at weight 0 (lbctl -e) every request succeeds; no mbuf leaks
#   fault-txdown-* lb's inside link (lb-int) set down under a UDP burst through lb (4000
#                 datagrams): its af_packet TX ring fills; lb does not stall (the client's ping
#                 of the VIP and lbctl answer: -nostall), every frame it could not send is
#                 counted as tx_full or the port's oerrors (-counted), and with the link up
#                 again requests succeed and the mbufs return to idle (-recovers)
#   nat-mtu-*     the inside port's mtu set to 1400 by a reload (the links stay at 1500): a
#                 2 MB upload's DF segments get ICMP fragmentation-needed, the client learns
#                 `mtu 1400` for the VIP and the upload completes (-pmtu); 1500-byte UDP
#                 datagrams without DF are fragmented by lb and answered (-fragments)
#   neigh-*       the neighbour table under forged ARP (lb's outside port reloaded as a /15 for
#                 it, so that the sources are on-link; restored after):
#     -flood      10000 forged ARP replies to lb's address and 10000 requests for the VIP from
#                 10000 distinct on-link sources (random MACs): the table stays bounded
#                 (lb_neighbour_entries <= 4200), the replies are ignored as unsolicited
#                 (neigh_unsolicited >= 8000: over 2 s, a few may be lost in the ports' rings),
#                 lb sends fewer than 1000 ARP requests (neigh_probes_sent)
#     -new-client a new address on the client (198.51.100.78) is served right after the flood
#     -new-real   a real added then with lbctl -a (10.10.0.4, a second address and web server
#                 in rs1's namespace) is served: 6 requests all succeed, rs3 among them
#     -hijack     one forged reply claiming rs1's address from the client segment and one from
#                 rs2 on the real segment (an unknown MAC): 20 requests then all succeed, lb's
#                 MAC for rs1 is unchanged (neigh_mac_changes +0), the claims are counted
#                 (neigh_claims_refused +2 or more) and logged ("neighbour 10.10.0.2: refused")
#   ctl-*         the control plane under hostile files and clients (lb runs with
#                 `control.metrics = "127.0.0.1:9109"`):
#     -fifo-sighup  the config file replaced by a FIFO nobody writes to, then SIGHUP: lbctl -L -n
#                 answers within 1 s with the same listing, requests are served, the log says
#                 the reload was refused because the file is a FIFO
#     -fifo-reload  lbctl --reload then: refused within 1 s, naming the FIFO
#     -zero-check   lb --check of a symlink to /dev/zero: exit 1 within 1 s, naming the device
#     -metrics-idle 1000 idle TCP connections to the metrics port (every fourth with half a
#                 request) held open: 5 scrapes in a row all answered (200, lb_ lines)
#     -socket-idle  300 idle connections to the control socket (every third with half a request
#                 line) held open: 5 lbctl -L -n in a row all answered, each within 1 s
#   tcp-spoof-*   an idle NAT connection (GET /hold) gets a RST (-rst), a FIN (-fin), then a RST
#                 and a SYN (-rst-syn), each spoofed from the client's address and port with a
#                 random sequence number: the connection stays ESTABLISHED (or FIN_CLIENT) with
#                 its 15 minutes, on the same real, and the held request completes on it
#   fault-kill9-* lb killed with SIGKILL (its control socket left behind) while a download runs,
#                 restarted with the same config: the download's client gets a RST within 1 s
#                 of the real's first segment that lb answers (-reset); lb starts, serves, and after SIGTERM leaves no file
#                 under /var/run/dpdk or /dev/hugepages that was not there before
#   fault-kill9-huge  the same on hugepages (a private hugetlbfs mount): the killed lb leaves
#                 its hugepage files and runtime files; the restart starts and serves over
#                 them and takes no more hugepage memory than before (skipped, with a note,
#                 when the machine has no free 2 MB hugepages)
#   fault-mbufs-* lb with `mbufs = 1023` (the minimum) under a burst (2 x 60000 UDP
#                 datagrams as fast as a raw socket sends them, 100 concurrent connections, a
#                 5 MB download): lb survives; every frame the kernel handed to lb's veths
#                 either reached lb's workers or is counted as the ports' rx loss (lbctl
#                 --workers: rx_lost, the af_packet ring drops) (-accounted); mbufs_in_use
#                 returns to idle; new requests succeed afterwards
#   sigterm       lb exits 0 on SIGTERM
#
# usage: tests/e2e/test_hostile.sh [--workers 1|2|1,2] [--keep-tmp]
# env: LB_BUILD_DIR (default build): where lb/lb and tools/lbctl are.
#      LB_HOSTILE_ONLY=ctl: only start, the ctl-* checks and sigterm (about 30 s per run);
#      LB_HOSTILE_ONLY=neigh: only start, the neigh-* checks and sigterm;
#      LB_HOSTILE_ONLY=tcp: only start, catalogue-*, tcp-spoof-* and fault-kill9-*.
#
# Prints `PASS name` or `FAIL name: why` per check and ends with `N passed, N failed`.
# Exit status 0 only if nothing failed. Needs root.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"

suite_args "$@"
ONLY=${LB_HOSTILE_ONLY:-}
case "$ONLY" in
"" | ctl | neigh | tcp) ;;
*)
    echo "LB_HOSTILE_ONLY=$ONLY: only ctl, neigh and tcp are known" >&2
    exit 2
    ;;
esac
suite_begin hostile
suite_cleanup_more() { huge_release; }

HPY="$LAB_E2E_DIR/hostile.py"
DIGEST_VPORT=54
DIGEST_RPORT=5354
FLOOD_NET=198.18.0.0/15
METRICS=127.0.0.1:9109  # in the director's namespace

# ---- config -----------------------------------------------------------------------------------

# write_conf WORKERS DST SOCKET [MBUFS]: conf/nat.conf (nat-2workers.conf) with the socket set,
# capacity 4096, the digest service, the route to the flood's sources and the metrics endpoint
# $METRICS; MBUFS replaces mbufs.
write_conf() {
    local w=$1 dst=$2 sock=$3 mbufs=${4:-} src
    if [ "$w" -eq 1 ]; then src="$LAB_REPO/conf/nat.conf"; else
        src="$LAB_REPO/conf/nat-${w}workers.conf"
    fi
    lab_make_conf "$src" "$dst.tmp" "$sock" || return 1
    $LAB_PY - "$dst.tmp" "$dst" "$mbufs" <<EOF || return 1
import re, sys
src, dst, mbufs = sys.argv[1:4]
s = open(src).read()
s, n1 = re.subn(r"capacity\s*=\s*\d+;", "capacity = 4096;", s)
if mbufs:
    s, n2 = re.subn(r"(?m)^mbufs\s*=\s*\d+;", "mbufs = %s;" % mbufs, s)
    assert n2 == 1, "no mbufs line"
i = s.rindex(");", 0, s.index("control ="))  # the end of services = ( ... );
svc = ''',
  { vip = "$LAB_VIP"; port = $DIGEST_VPORT; protocol = "udp"; scheduler = "rr";
    reals = ( { address = "$LAB_RS1_IP"; port = $DIGEST_RPORT; forward = "nat"; weight = 1; },
              { address = "$LAB_RS2_IP"; port = $DIGEST_RPORT; forward = "nat"; weight = 1; } ); }
'''
body = s[:i].rstrip()
s = body + svc + s[i:]
s += '\nroutes = ( { prefix = "$FLOOD_NET"; via = "$LAB_CLIENT_IP"; } );\n'
s, n3 = re.subn(r'(control\s*=\s*\{\s*socket\s*=\s*"[^"]*";)', r'\1 metrics = "$METRICS";', s)
assert n1 == 1, "no capacity line"
assert n3 == 1, "no control = { socket = ...; } line"
open(dst, "w").write(s)
EOF
    rm -f "$dst.tmp"
}

start_digest_servers() {
    local spec ns name ip i
    for spec in "$LAB_NS_RS1:rs1:$LAB_RS1_IP" "$LAB_NS_RS2:rs2:$LAB_RS2_IP"; do
        IFS=: read -r ns name ip <<<"$spec"
        ip netns exec "$ns" "$LAB_PY" "$LAB_E2E_DIR/udp_echo.py" --name "$name" --addr "$ip" \
            --port "$DIGEST_RPORT" --digest >"$LAB_RUN/udpd-$name.log" 2>&1 9>&- &
        echo $! >"$LAB_RUN/udpd-$name.pid"
    done
    for i in $(seq 1 30); do
        ip netns exec "$LAB_NS_RS1" ss -lnu | grep -q ":$DIGEST_RPORT " &&
            ip netns exec "$LAB_NS_RS2" ss -lnu | grep -q ":$DIGEST_RPORT " && return 0
        sleep 0.1
    done
    lab_die "digest UDP servers did not come up"
}

restart_httpd() {  # restart_httpd rs1|rs2: after a fault killed it
    local name=$1 ns ip i
    if [ "$name" = rs1 ]; then ns=$LAB_NS_RS1 ip=$LAB_RS1_IP; else ns=$LAB_NS_RS2 ip=$LAB_RS2_IP; fi
    ip netns exec "$ns" "$LAB_PY" "$LAB_E2E_DIR/httpd.py" --name "$name" --addr "$ip" \
        --port "$LAB_HTTP_PORT" >>"$LAB_RUN/httpd-$name.log" 2>&1 9>&- &
    echo $! >"$LAB_RUN/httpd-$name.pid"
    for i in $(seq 1 50); do
        ip netns exec "$ns" curl -s --max-time 1 -o /dev/null "http://$ip/" && return 0
        sleep 0.1
    done
    return 1
}

# ---- helpers ----------------------------------------------------------------------------------

mac_of() { ip -n "$1" -br link show "$2" | awk '{print $3}'; }

workers_json() {  # workers_json FILE: lbctl --workers --json into FILE
    lab_lbctl "$SOCK" --workers --json >"$1" 2>&1
}

# wj FILE EXPR: a figure from a workers JSON file: mbufs_in_use, drops.NAME, counters.NAME,
# rx, tx, conns_in_table, table_capacity (summed over the workers), port.NAME (summed over the
# ports: ipackets, rx_lost, rx_ring_drops, imissed, rx_nombuf, oerrors, ...), portN.NAME (DPDK
# port N's: 0 is lb-ext, 1 lb-int).
WJ_PY='
import json, sys
try:
    w = json.load(open(sys.argv[1]))
except Exception:
    print("?"); sys.exit(0)
k = sys.argv[2]
if k in ("mbufs_in_use", "mbufs_total"):
    print(w[k]); sys.exit(0)
if k.startswith("port"):  # port.NAME: all ports; port0.NAME: DPDK port 0 only
    which, name = k[4:].split(".", 1)
    print(sum(p[name] for p in w["ports"] if which == "" or p["port"] == int(which)))
    sys.exit(0)
t = 0
for x in w["workers"]:
    if "." in k:
        a, b = k.split(".", 1)
        t += x.get(a, {}).get(b, 0)
    else:
        t += x.get(k, 0)
print(t)
'
wj() { $LAB_PY -c "$WJ_PY" "$1" "$2"; }

# delta BEFORE AFTER KEY
delta() { echo $(($(wj "$2" "$3") - $(wj "$1" "$3"))); }

# mbufs_settle BASE: waits up to 5 s for mbufs_in_use <= BASE; sets MBUFS_NOW.
mbufs_settle() {
    local base=$1 i
    for i in $(seq 1 25); do
        workers_json "$TMP/mb.json"
        MBUFS_NOW=$(wj "$TMP/mb.json" mbufs_in_use)
        [ "$MBUFS_NOW" != "?" ] && [ "$MBUFS_NOW" -le "$base" ] && return 0
        sleep 0.2
    done
    return 1
}

# One request through lb; sets ONE_OUT.
one_request() {
    ONE_OUT=$(lab_client timeout 10 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count "${1:-1}" \
        --deadline 8 --timeout 3 2>&1)
}

dump_lb() {
    if [ -n "$LAB_LB_PID" ] && [ -S "$SOCK" ]; then
        echo "---- lbctl --workers"
        lab_lbctl "$SOCK" --workers 2>&1 | sed 's/^/  /'
    fi
    if [ -f "$LOG" ]; then
        echo "---- errors and warnings in $LOG"
        grep -E '\[(error|critical|warning)\]' "$LOG" | tail -n 20 | sed 's/^/  /'
        echo "---- last 10 lines of $LOG"
        tail -n 10 "$LOG" | sed 's/^/  /'
    fi
    echo "----"
}

# Frames the director's kernel delivered to lb's two veths (their rx_packets), summed.
link_rx() {
    ip netns exec "$LAB_NS_DIR" cat /sys/class/net/lb-ext/statistics/rx_packets \
        /sys/class/net/lb-int/statistics/rx_packets 2>/dev/null | awk '{s += $1} END {print s + 0}'
}

dpdk_files() { find /dev/hugepages /var/run/dpdk ! -type d 2>/dev/null | sort; }

start_lb() {  # start_lb CONF [keep-socket]: like lab_start_lb, but may leave a stale socket
    local conf=$1 i
    [ "${2:-}" = keep-socket ] || rm -f "$SOCK"
    ip netns exec "$LAB_NS_DIR" "$LAB_LB" -c "$conf" >>"$LOG" 2>&1 9>&- &
    LAB_LB_PID=$!
    echo "$LAB_LB_PID" >"$LAB_RUN/lb.pid"
    for i in $(seq 1 300); do
        if ! kill -0 "$LAB_LB_PID" 2>/dev/null; then
            wait "$LAB_LB_PID" 2>/dev/null
            START_ERR="lb exited (status $?) at start; log: $(tail -n 3 "$LOG" | tr '\n' ' ')"
            LAB_LB_PID=
            return 1
        fi
        # A stale socket file exists from the start: wait until lb answers on it.
        if [ -S "$SOCK" ] && lab_lbctl "$SOCK" -L -n >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    START_ERR="lb did not answer on $SOCK within 30 s"
    return 1
}

# warm: ARP both ways and a first request, so that no check pays for the first resolution.
warm() {
    lab_client ping -c 1 -W 2 -q "$LAB_VIP" >/dev/null 2>&1
    one_request 4
}

# ---- checks -----------------------------------------------------------------------------------

# metric NAME: a sample of lb's Prometheus endpoint ("?" if none).
metric() {
    ip netns exec "$LAB_NS_DIR" curl -s --max-time 2 "http://$METRICS/metrics" 2>/dev/null |
        awk -v n="$1" '$1 == n {print $2; f = 1} END {if (!f) print "?"}'
}

NEIGH_NET=198.50.0.0/15  # lb's outside port as a /15 for neigh-*: 198.50.0.0 - 198.51.255.255
NEIGH_CLIENT=198.51.100.78
NEIGH_REAL=10.10.0.4

check_neigh() {
    local out rc i
    workers_json "$DIR/neigh-before.json"
    sed -i "s#\"$LAB_DIR_EXT_IP/24\"#\"$LAB_DIR_EXT_IP/15\"#" "$CONF"
    if ! grep -q "\"$LAB_DIR_EXT_IP/15\"" "$CONF" ||
        ! lab_lbctl "$SOCK" --reload >"$DIR/neigh-reload.log" 2>&1; then
        for i in flood new-client new-real hijack; do
            fail "$P/neigh-$i" "could not reload with a /15: $(oneline "$(cat "$DIR/neigh-reload.log")")"
        done
        return
    fi
    out=$(lab_client timeout 60 "$LAB_PY" "$HPY" arp --dst-mac "$LB_EXT_MAC" \
        --lb-ip "$LAB_DIR_EXT_IP" --vip "$LAB_VIP" --net "$NEIGH_NET" --count 10000 --duration 2 2>&1)
    note "$out"
    sleep 2  # the control thread drains the learn messages; the metrics refresh once a second
    local entries
    entries=$(metric lb_neighbour_entries)
    workers_json "$DIR/neigh-flood.json"
    local unsol probes evicted
    unsol=$(delta "$DIR/neigh-before.json" "$DIR/neigh-flood.json" counters.neigh_unsolicited)
    probes=$(delta "$DIR/neigh-before.json" "$DIR/neigh-flood.json" counters.neigh_probes_sent)
    evicted=$(delta "$DIR/neigh-before.json" "$DIR/neigh-flood.json" counters.neigh_evicted)
    note "neighbour entries $entries after the flood; unsolicited +$unsol, evicted +$evicted," \
        "probes sent +$probes, learned" \
        "+$(delta "$DIR/neigh-before.json" "$DIR/neigh-flood.json" counters.neigh_learned)," \
        "port rx_lost +$(delta "$DIR/neigh-before.json" "$DIR/neigh-flood.json" port.rx_lost)," \
        "drop.slow_path_full +$(delta "$DIR/neigh-before.json" "$DIR/neigh-flood.json" \
            drops.slow_path_full)"
    if [ "$entries" != "?" ] && [ "$entries" -le 4200 ] && [ "$unsol" -ge 8000 ] &&
        [ "$probes" -lt 1000 ]; then pass "$P/neigh-flood"; else
        fail "$P/neigh-flood" "entries $entries (<= 4200), unsolicited +$unsol (>= 8000)," \
            "probes +$probes (< 1000); $(oneline "$out")"
    fi

    # A new client right after the flood.
    ip -n "$LAB_NS_CLIENT" addr add "$NEIGH_CLIENT/24" dev eth0
    out=$(lab_client curl -s --max-time 5 --interface "$NEIGH_CLIENT" "http://$LAB_VIP/" 2>&1)
    if grep -q 'it works' <<<"$out"; then pass "$P/neigh-new-client"; else
        fail "$P/neigh-new-client" "GET from $NEIGH_CLIENT: $(oneline "$out")"
    fi
    ip -n "$LAB_NS_CLIENT" addr del "$NEIGH_CLIENT/24" dev eth0

    # A real added with lbctl -a: a second address and web server in rs1's namespace.
    ip -n "$LAB_NS_RS1" addr add "$NEIGH_REAL/24" dev eth0
    ip netns exec "$LAB_NS_RS1" "$LAB_PY" "$LAB_E2E_DIR/httpd.py" --name rs3 --addr "$NEIGH_REAL" \
        --port "$LAB_HTTP_PORT" >"$DIR/httpd-rs3.log" 2>&1 9>&- &
    local rs3_pid=$!
    BG_PIDS+=("$rs3_pid")
    for i in $(seq 1 50); do
        ip netns exec "$LAB_NS_RS1" curl -s --max-time 1 -o /dev/null "http://$NEIGH_REAL/" && break
        sleep 0.1
    done
    out=$(lab_lbctl "$SOCK" -a -t "$LAB_VIP:80" -r "$NEIGH_REAL:$LAB_HTTP_PORT" -m -w 1 2>&1) &&
        out=$(lab_client timeout 30 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count 6 \
            --deadline 20 --timeout 3 2>&1) && rc=0 || rc=$?
    if [ "$rc" -eq 0 ] && grep -q 'rs3:' <<<"$out"; then pass "$P/neigh-new-real"; else
        fail "$P/neigh-new-real" "$(oneline "$out")"
    fi
    note "new real: $(head -n 1 <<<"$out")"
    lab_lbctl "$SOCK" -d -t "$LAB_VIP:80" -r "$NEIGH_REAL:$LAB_HTTP_PORT" >/dev/null 2>&1 ||
        note "could not delete the added real"
    kill "$rs3_pid" 2>/dev/null
    wait "$rs3_pid" 2>/dev/null
    ip -n "$LAB_NS_RS1" addr del "$NEIGH_REAL/24" dev eth0

    # The hijack: rs1's address claimed from the client segment and from rs2.
    workers_json "$DIR/neigh-hijack0.json"
    local rs2_mac out1 out2
    rs2_mac=$(mac_of "$LAB_NS_RS2" eth0)
    out1=$(lab_client timeout 10 "$LAB_PY" "$HPY" arp --dst-mac "$LB_EXT_MAC" \
        --lb-ip "$LAB_DIR_EXT_IP" --claim "$LAB_RS1_IP" --claim-mac "$CLIENT_MAC" 2>&1)
    out2=$(ip netns exec "$LAB_NS_RS2" timeout 10 "$LAB_PY" "$HPY" arp --dst-mac "$LB_INT_MAC" \
        --lb-ip "$LAB_DIR_INT_IP" --claim "$LAB_RS1_IP" --claim-mac 02:de:ad:be:ef:01 2>&1)
    out=$(lab_client timeout 40 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count 20 \
        --deadline 30 --timeout 3 2>&1) && rc=0 || rc=$?
    workers_json "$DIR/neigh-hijack1.json"
    local refused changes logged
    refused=$(delta "$DIR/neigh-hijack0.json" "$DIR/neigh-hijack1.json" \
        counters.neigh_claims_refused)
    changes=$(delta "$DIR/neigh-hijack0.json" "$DIR/neigh-hijack1.json" counters.neigh_mac_changes)
    logged=$(grep -c "neighbour $LAB_RS1_IP: refused" "$LOG")
    note "hijack: $(head -n 1 <<<"$out"); claims refused +$refused, MAC changes +$changes," \
        "log lines $logged (rs2 is at $rs2_mac)"
    if [ "$rc" -eq 0 ] && [ "$refused" -ge 2 ] && [ "$changes" -eq 0 ] && [ "$logged" -ge 1 ]; then
        pass "$P/neigh-hijack"
    else
        fail "$P/neigh-hijack" "$(oneline "$out"); claims refused +$refused (>= 2), MAC" \
            "changes +$changes (0), log lines $logged (>= 1); $(oneline "$out1 $out2")"
    fi

    sed -i "s#\"$LAB_DIR_EXT_IP/15\"#\"$LAB_DIR_EXT_IP/24\"#" "$CONF"
    lab_lbctl "$SOCK" --reload >/dev/null 2>&1 || note "could not reload the original config"
}

check_catalogue() {
    local base_mb=$1 dl_log="$DIR/cat-download.log" dl_pid rc out
    workers_json "$DIR/cat-before.json"
    # The download: 10 MB read at ~3 MB/s, so that it spans the catalogue.
    lab_client timeout 40 "$LAB_PY" "$HPY" slowget --host "$LAB_VIP" --size 10485760 \
        --rate 3000000 --timeout 35 >"$dl_log" 2>&1 9>&- &
    dl_pid=$!
    BG_PIDS+=("$dl_pid")
    sleep 0.5
    # A live UDP flow for the real side's TTL-1 datagram: the client's port and its real.
    local flow flow_port flow_real
    flow=$(lab_client "$LAB_PY" -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.connect((sys.argv[1], 53))
s.send(b"flow\n")
try:
    print(s.getsockname()[1], s.recv(100).decode().split()[0])
except OSError:
    print(s.getsockname()[1], "none")
' "$LAB_VIP" 2>&1)
    read -r flow_port flow_real <<<"$flow"
    out=$(lab_client timeout 30 "$LAB_PY" "$HPY" catalogue --side client \
        --src-mac "$CLIENT_MAC" --dst-mac "$LB_EXT_MAC" --src-ip "$LAB_CLIENT_IP" \
        --lb-ip "$LAB_DIR_EXT_IP" --foreign-ip "$LAB_RS1_IP" --digest-port "$DIGEST_VPORT" \
        --manifest "$DIR/cat-client.json" 2>&1) && rc=0 || rc=$?
    echo "$out" >"$DIR/cat-client.log"
    local fwd_out=$out fwd_rc=$rc
    local rns=$LAB_NS_RS1 rip=$LAB_RS1_IP
    if [ "$flow_real" = rs2 ]; then rns=$LAB_NS_RS2 rip=$LAB_RS2_IP; fi
    local flow_args=()
    [ "$flow_real" = rs1 ] || [ "$flow_real" = rs2 ] &&
        flow_args=(--flow-cport "$flow_port" --flow-rport "$LAB_UDP_RPORT")
    out=$(ip netns exec "$rns" timeout 30 "$LAB_PY" "$HPY" catalogue --side real \
        --src-mac "$(mac_of "$rns" eth0)" --dst-mac "$LB_INT_MAC" --src-ip "$rip" \
        --lb-ip "$LAB_DIR_INT_IP" --client-ip "$LAB_CLIENT_IP" "${flow_args[@]}" \
        --manifest "$DIR/cat-real.json" 2>&1) && rc=0 || rc=$?
    echo "$out" >"$DIR/cat-real.log"
    note "$(head -n 1 "$DIR/cat-client.log")"
    note "$(head -n 1 "$DIR/cat-real.log") (flow ${flow_port:-?} on ${flow_real:-?})"

    wait "$dl_pid"
    rc=$?
    out=$(cat "$dl_log")
    note "$out"
    if [ $rc -eq 0 ]; then pass "$P/catalogue-download"; else
        fail "$P/catalogue-download" "$(oneline "$out")"
    fi

    # lb still serves.
    local list_rc=0 list
    list=$(lab_lbctl "$SOCK" -L -n 2>&1) || list_rc=$?
    one_request 1
    if [ $list_rc -eq 0 ] && grep -q "^TCP  *$LAB_VIP:80" <<<"$list" &&
        grep -q '^legit ok=1 ' <<<"$ONE_OUT"; then
        pass "$P/catalogue-serving"
    else
        fail "$P/catalogue-serving" "lbctl -L -n exited $list_rc: $(oneline "$list");" \
            "a new request: $(oneline "$ONE_OUT")"
    fi

    # Drop reasons. The frames of the forward checks were answered by then; allow the held
    # frames (ARP resolution, 1 s) to be counted.
    sleep 1.2
    workers_json "$DIR/cat-after.json"
    out=$($LAB_PY "$HPY" drops --manifest "$DIR/cat-client.json" --manifest "$DIR/cat-real.json" \
        --before "$DIR/cat-before.json" --after "$DIR/cat-after.json" 2>&1) && rc=0 || rc=$?
    echo "$out" >"$DIR/cat-drops.txt"
    echo "$out" | sed 's/^/  | /'
    if [ $rc -eq 0 ]; then pass "$P/catalogue-drops"; else
        fail "$P/catalogue-drops" "$(echo "$out" | grep -E '^(short|total)' | tr '\n' ' ')"
    fi

    if [ "$fwd_rc" -eq 0 ] && grep -q 'forward ip-options-udp  *ok' <<<"$fwd_out" &&
        ! grep -q 'FAILED' <<<"$fwd_out"; then
        pass "$P/catalogue-forward"
    else
        fail "$P/catalogue-forward" "$(echo "$fwd_out" | grep -E '^  forward|failed' |
            tr '\n' ' ')"
    fi

    # Land packets (VIP:80 -> VIP:80) and lb's own address as a source: not clients.
    local conns mart
    conns=$(lab_lbctl "$SOCK" -L -n -c 2>&1)
    echo "$conns" >"$DIR/cat-conns.txt"
    mart=$(echo "$conns" | awk -v v="$LAB_VIP" -v a="$LAB_DIR_EXT_IP" -v b="$LAB_DIR_INT_IP" '
        { split($4, s, ":"); if (s[1] == v || s[1] == a || s[1] == b) print }')
    if [ -z "$mart" ]; then pass "$P/catalogue-martians"; else
        fail "$P/catalogue-martians" "lb took a land/own-address packet as a new client:" \
            "$(oneline "$mart")"
    fi

    if mbufs_settle "$base_mb"; then pass "$P/catalogue-mbufs"; else
        fail "$P/catalogue-mbufs" "mbufs_in_use $MBUFS_NOW 5 s after the catalogue, idle" \
            "value $base_mb"
    fi
}

# check_frag [all]: fragmented UDP datagrams to the digest service. The crafted ones (1400
# bytes as 3 fragments; as an 8-byte first fragment and the rest) fit the MTU once reassembled.
# With `all` (lb on net_pcap ports, see run_pcap) also a 3000-byte datagram fragmented by the
# client's kernel and 5 later fragments whose first never comes.
check_frag() {
    local out rc b="$DIR/frag-before.json" a="$DIR/frag-after.json" pre=${FRAG_PREFIX:-frag}
    workers_json "$b"
    out=$(lab_client timeout 10 "$LAB_PY" "$HPY" frag --crafted --host "$LAB_VIP" \
        --port "$DIGEST_VPORT" --size 1400 --fragsize 512 --timeout 2 --src-mac "$CLIENT_MAC" \
        --dst-mac "$LB_EXT_MAC" --src-ip "$LAB_CLIENT_IP" 2>&1) && rc=0 || rc=$?
    note "$out"
    if [ $rc -eq 0 ]; then pass "$P/$pre-crafted"; else fail "$P/$pre-crafted" "$out"; fi
    out=$(lab_client timeout 10 "$LAB_PY" "$HPY" frag --crafted --tiny-first --host "$LAB_VIP" \
        --port "$DIGEST_VPORT" --size 1400 --timeout 2 --src-mac "$CLIENT_MAC" \
        --dst-mac "$LB_EXT_MAC" --src-ip "$LAB_CLIENT_IP" 2>&1) && rc=0 || rc=$?
    note "$out"
    if [ $rc -eq 0 ]; then pass "$P/$pre-tiny-first"; else fail "$P/$pre-tiny-first" "$out"; fi
    if [ "${1:-}" != all ]; then
        workers_json "$a"
        note "lb forwarded $(delta "$b" "$a" counters.fragments_forwarded) later fragments" \
            "itself (net_af_packet: the kernel reassembles before lb sees them)"
        return
    fi
    out=$(lab_client timeout 10 "$LAB_PY" "$HPY" frag --host "$LAB_VIP" --port "$DIGEST_VPORT" \
        --size 3000 --timeout 2 2>&1) && rc=0 || rc=$?
    note "$out"
    workers_json "$a"
    local fwd
    fwd=$(delta "$b" "$a" counters.fragments_forwarded)
    note "lb forwarded $fwd later fragments itself"
    if [ $rc -eq 0 ] && [ "$fwd" -ge 4 ]; then pass "$P/$pre-kernel-3000"; else
        fail "$P/$pre-kernel-3000" "$(oneline "$out") (fragments_forwarded +$fwd, expected" \
            ">= 4 over the 3 datagrams; drop.malformed +$(delta "$b" "$a" drops.malformed))"
    fi

    workers_json "$b"
    out=$(lab_client timeout 10 "$LAB_PY" "$HPY" orphan --src-mac "$CLIENT_MAC" \
        --dst-mac "$LB_EXT_MAC" --src-ip "$LAB_CLIENT_IP" --host "$LAB_VIP" \
        --port "$DIGEST_VPORT" --count 5 2>&1)
    sleep 0.5
    workers_json "$a"
    local d
    d=$(delta "$b" "$a" drops.fragment)
    if [ "$d" -ge 5 ]; then pass "$P/$pre-orphan"; else
        fail "$P/$pre-orphan" "5 later fragments with no first ($out): drop.fragment +$d" \
            "(expected >= 5); lb rx +$(delta "$b" "$a" rx)"
    fi
}

# The fragment checks again, with lb's ports on net_pcap (one worker: a pcap port has one
# queue), where lb receives the fragments themselves: net_af_packet's sockets are in a fanout
# group with PACKET_FANOUT_FLAG_DEFRAG (DPDK 22.11), so the director's kernel reassembles every
# datagram before lb sees it, holds orphan fragments until they expire, and lb never meets a
# fragment (a reassembled datagram over the MTU does not fit af_packet's 2048-byte frames).
run_pcap() {
    local conf="$DIR/lb-pcap.conf"
    sed -E -e 's#"--vdev=net_af_packet([0-9]+),iface=([a-z-]+)[^"]*"#"--vdev=net_pcap\1,iface=\2,phy_mac=1"#' \
        "$CONF" >"$conf"
    if ! grep -q net_pcap1 "$conf" || ! start_lb "$conf"; then
        local c
        for c in crafted tiny-first kernel-3000 orphan; do
            fail "$P/frag-pcap-$c" "lb on net_pcap ports did not start: ${START_ERR:-no vdevs}"
        done
        return
    fi
    note "lb on net_pcap ports: pid $LAB_LB_PID, config $conf"
    warm
    FRAG_PREFIX=frag-pcap check_frag all
    lab_stop_lb 5
}

check_flood() {
    local dl_log="$DIR/flood-download.log" fl_log="$DIR/flood.log" dl_pid fl_pid rc out
    workers_json "$DIR/flood-before.json"
    # The established connection: 4 MB read at ~300 kB/s (~14 s), started before the flood.
    lab_client timeout 60 "$LAB_PY" "$HPY" slowget --host "$LAB_VIP" --size 4194304 \
        --rate 300000 --timeout 50 >"$dl_log" 2>&1 9>&- &
    dl_pid=$!
    BG_PIDS+=("$dl_pid")
    sleep 1
    lab_client timeout 40 "$LAB_PY" "$HPY" flood --src-mac "$CLIENT_MAC" --dst-mac "$LB_EXT_MAC" \
        --src-ip "$LAB_CLIENT_IP" --vip "$LAB_VIP" --port 80 --net "$FLOOD_NET" --count 30000 \
        --duration 10 >"$fl_log" 2>&1 9>&- &
    fl_pid=$!
    BG_PIDS+=("$fl_pid")
    # Occupancy while it runs, once a second; each lbctl call must answer.
    (
        local i
        for i in $(seq 1 14); do
            if lab_lbctl "$SOCK" --workers --json >"$DIR/flood-s.json" 2>/dev/null; then
                echo "ok $(wj "$DIR/flood-s.json" conns_in_table)" \
                    "$(wj "$DIR/flood-s.json" counters.conns_evicted)" \
                    "$(wj "$DIR/flood-s.json" drops.table_full)"
            else
                echo "fail"
            fi
            sleep 1
        done
    ) >"$DIR/flood-samples.txt" 2>&1 9>&- &
    local smp_pid=$!
    BG_PIDS+=("$smp_pid")
    sleep 1.5
    out=$(lab_client timeout 30 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count 200 \
        --deadline 20 --timeout 2 --interval 0.02 2>&1) && rc=0 || rc=$?
    local during=$out
    wait "$fl_pid"
    note "$(cat "$fl_log")"
    workers_json "$DIR/flood-end.json"
    out=$(lab_client timeout 30 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count 100 \
        --deadline 20 --timeout 2 2>&1) && rc=0 || rc=$?
    local after=$out after_rc=$rc
    wait "$dl_pid"
    rc=$?
    local dl
    dl=$(cat "$dl_log")
    wait "$smp_pid"
    workers_json "$DIR/flood-after.json"

    local ok_during cap max_occ evicted full lbctl_fail
    ok_during=$(sed -n 's/^legit ok=\([0-9]*\) .*/\1/p' <<<"$during" | head -n 1)
    cap=$(wj "$DIR/flood-after.json" table_capacity)
    max_occ=$(awk '$1 == "ok" && $2 > m {m = $2} END {print m + 0}' "$DIR/flood-samples.txt")
    lbctl_fail=$(grep -c '^fail' "$DIR/flood-samples.txt")
    evicted=$(delta "$DIR/flood-before.json" "$DIR/flood-after.json" counters.conns_evicted)
    full=$(delta "$DIR/flood-before.json" "$DIR/flood-after.json" drops.table_full)
    note "during: $(head -n 1 <<<"$during")"
    note "after:  $(head -n 1 <<<"$after")"
    note "download: $dl"
    note "table: capacity $cap, max occupancy sampled $max_occ, at the end" \
        "$(wj "$DIR/flood-end.json" conns_in_table); conns_evicted +$evicted," \
        "drop.table_full +$full, conns_created" \
        "+$(delta "$DIR/flood-before.json" "$DIR/flood-after.json" conns_created)," \
        "drop.no_connection +$(delta "$DIR/flood-before.json" "$DIR/flood-after.json" \
            drops.no_connection); lbctl samples: $(grep -c '^ok' "$DIR/flood-samples.txt")" \
        "answered, $lbctl_fail failed"
    local d_fig a_fig
    d_fig=$(sed -n 's/^legit \(ok=[0-9]* failed=[0-9]* untried=[0-9]*\).*/\1/p' <<<"$during")
    a_fig=$(sed -n 's/^legit \(ok=[0-9]* failed=[0-9]*\).*/\1/p' <<<"$after")
    FLOOD_FIGURES="w$W: during $d_fig; after $a_fig; max occupancy $max_occ/$cap;"
    FLOOD_FIGURES+=" evicted $evicted; table_full $full"
    echo "$FLOOD_FIGURES" >>"$TMP/flood-figures.txt"
    if [ -n "$ok_during" ] && [ "$ok_during" -ge 180 ]; then pass "$P/flood-during"; else
        fail "$P/flood-during" "$(oneline "$during") (expected >= 180 of 200)"
    fi
    if [ "$after_rc" -eq 0 ]; then pass "$P/flood-after"; else
        fail "$P/flood-after" "$(oneline "$after") (expected 100 of 100)"
    fi
    if [ $rc -eq 0 ]; then pass "$P/flood-established"; else
        fail "$P/flood-established" "the download established before the flood: $dl"
    fi
    local list_rc=0
    lab_lbctl "$SOCK" -L -n >/dev/null 2>&1 || list_rc=$?
    if [ "$lbctl_fail" -eq 0 ] && [ $list_rc -eq 0 ]; then pass "$P/flood-lbctl"; else
        fail "$P/flood-lbctl" "$lbctl_fail of 14 lbctl --workers calls failed during the flood," \
            "lbctl -L -n after it exited $list_rc"
    fi
}

check_fault_real() {
    local base_mb=$1 dl_log="$DIR/fault-real-download.log" dl_pid sport=23456 i real="" rc
    lab_client timeout 40 "$LAB_PY" "$HPY" slowget --host "$LAB_VIP" --size 10485760 \
        --rate 1000000 --timeout 30 --sport "$sport" >"$dl_log" 2>&1 9>&- &
    dl_pid=$!
    BG_PIDS+=("$dl_pid")
    for i in $(seq 1 30); do
        real=$(lab_lbctl "$SOCK" -L -n -c 2>/dev/null |
            awk -v c="$LAB_CLIENT_IP:$sport" '$4 == c && $3 == "ESTABLISHED" {print $6}')
        [ -n "$real" ] && break
        sleep 0.1
    done
    local victim="" other="" vip_r
    case "${real%:*}" in
    "$LAB_RS1_IP") victim=rs1 other=rs2 ;;
    "$LAB_RS2_IP") victim=rs2 other=rs1 ;;
    esac
    if [ -z "$victim" ]; then
        fail "$P/fault-real-download" "could not find the download's connection in lbctl -c"
        kill "$dl_pid" 2>/dev/null
        wait "$dl_pid" 2>/dev/null
        return
    fi
    vip_r=${real%:*}
    sleep 1
    kill -KILL "$(cat "$LAB_RUN/httpd-$victim.pid")" 2>/dev/null
    wait "$dl_pid"
    rc=$?
    local out
    out=$(cat "$dl_log")
    note "download from $victim, its web server killed after 1 s: $out"
    if [ $rc -ne 0 ] && ! grep -q 'sha256 ok' <<<"$out"; then pass "$P/fault-real-download"; else
        fail "$P/fault-real-download" "the client did not see the failure: $out"
    fi
    # Requests: the ones on the other real work, the dead one's fail at once (refused).
    out=$(lab_client timeout 30 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count 10 \
        --deadline 20 --timeout 2 2>&1)
    note "10 requests with $victim dead: $(head -n 1 <<<"$out")"
    local okn per
    okn=$(sed -n 's/^legit ok=\([0-9]*\) .*/\1/p' <<<"$out")
    per=$(sed -n 's/.* by-server=\([^ ]*\) .*/\1/p' <<<"$out")
    if [ "${okn:-0}" -ge 4 ] && [ "$per" = "$other:$okn" ]; then pass "$P/fault-real-other"
    else
        fail "$P/fault-real-other" "$(oneline "$out") (expected >= 4 answers, all from $other)"
    fi
    # The operator takes the dead real out: every request succeeds.
    local e_rc=0 e_out
    e_out=$(lab_lbctl "$SOCK" -e -t "$LAB_VIP:80" -r "$vip_r:80" -m -w 0 2>&1) || e_rc=$?
    out=$(lab_client timeout 30 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count 10 \
        --deadline 20 --timeout 2 2>&1) && rc=0 || rc=$?
    if [ $e_rc -eq 0 ] && [ $rc -eq 0 ]; then pass "$P/fault-real-weight0"; else
        fail "$P/fault-real-weight0" "lbctl -e ... -w 0 exited $e_rc ($e_out); 10 requests:" \
            "$(oneline "$out")"
    fi
    restart_httpd "$victim" || note "could not restart $victim's web server"
    lab_lbctl "$SOCK" -e -t "$LAB_VIP:80" -r "$vip_r:80" -m -w 1 >/dev/null 2>&1
    if mbufs_settle "$base_mb"; then pass "$P/fault-real-mbufs"; else
        fail "$P/fault-real-mbufs" "mbufs_in_use $MBUFS_NOW, idle value $base_mb"
    fi
}

# The inside port's link goes down under a UDP burst through lb: its af_packet TX ring fills
# (the driver takes frames it cannot send: the port's oerrors; then refuses them: tx_full). lb
# must not stall (the outside port still answers ping, lbctl answers), must count every frame
# it could not send, and must carry traffic again once the link is back.
check_txdown() {
    local base_mb=$1 b="$DIR/txd-before.json" a="$DIR/txd-after.json" out rc i
    local link0 link1
    workers_json "$b"
    link0=$(ip netns exec "$LAB_NS_DIR" cat /sys/class/net/lb-int/statistics/tx_packets)
    ip netns exec "$LAB_NS_DIR" ip link set lb-int down
    out=$(lab_client timeout 30 "$LAB_PY" "$HPY" udpburst --src-mac "$CLIENT_MAC" \
        --dst-mac "$LB_EXT_MAC" --src-ip "$LAB_CLIENT_IP" --vip "$LAB_VIP" --port 53 \
        --count 4000 --size 200 2>&1)
    sleep 0.5
    local ping_out ping_rc=0 list_rc=0
    ping_out=$(lab_client ping -c 3 -i 0.2 -W 1 -q "$LAB_VIP" 2>&1) || ping_rc=$?
    lab_lbctl "$SOCK" -L -n >/dev/null 2>&1 || list_rc=$?
    workers_json "$a"
    link1=$(ip netns exec "$LAB_NS_DIR" cat /sys/class/net/lb-int/statistics/tx_packets)
    ip netns exec "$LAB_NS_DIR" ip link set lb-int up
    local got txfull oerr sent_int
    got=$(delta "$b" "$a" port0.ipackets)  # from the client, on lb-ext
    txfull=$(delta "$b" "$a" drops.tx_full)
    oerr=$(delta "$b" "$a" port.oerrors)
    sent_int=$((link1 - link0))
    note "lb-int down: $out; lb received +$got on lb-ext; tx_full +$txfull, the ports' oerrors +$oerr," \
        "lb-int sent $sent_int; tx +$(delta "$b" "$a" tx); ping of the VIP: $(tail -n 2 \
            <<<"$ping_out" | head -n 1)"
    if [ "$ping_rc" -eq 0 ] && [ "$list_rc" -eq 0 ]; then pass "$P/fault-txdown-nostall"; else
        fail "$P/fault-txdown-nostall" "with lb-int down: ping of the VIP exited $ping_rc" \
            "($(oneline "$ping_out")), lbctl -L -n exited $list_rc"
    fi
    # What lb received but could not send (the burst; the 3 pings went out on lb-ext) must be
    # in tx_full or oerrors, within a few stray frames (ARP, retransmissions).
    local lost=$((txfull + oerr)) want=$((got - 3))
    # (The burst must have filled the ring: tx_full > 0; the rest of the 4000 were lost at
    # lb-ext's receive ring and show there as rx_ring_drops.)
    if [ "$sent_int" -eq 0 ] && [ "$txfull" -gt 0 ] && [ "$lost" -ge $((want - 20)) ] &&
        [ "$lost" -le $((want + 20)) ]; then
        pass "$P/fault-txdown-counted"
    else
        fail "$P/fault-txdown-counted" "lb received $got frames on lb-ext with lb-int down (sent" \
            "$sent_int there), counted $lost as not sent (tx_full +$txfull, oerrors +$oerr);" \
            "expected about $want, and tx_full > 0"
    fi
    for i in $(seq 1 20); do
        one_request 1
        grep -q '^legit ok=1 ' <<<"$ONE_OUT" && break
        sleep 0.25
    done
    out=$(lab_client timeout 30 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count 10 \
        --deadline 20 --timeout 2 2>&1) && rc=0 || rc=$?
    if [ $rc -eq 0 ] && mbufs_settle "$base_mb"; then pass "$P/fault-txdown-recovers"; else
        fail "$P/fault-txdown-recovers" "10 requests with lb-int up again: $(oneline "$out");" \
            "mbufs_in_use ${MBUFS_NOW:-?}, idle value $base_mb"
    fi
}

# NAT over the egress MTU: the running config gets `mtu = 1400` on the inside port (a reload),
# while the links stay at 1500. A 2 MB upload's full-sized DF segments get ICMP
# fragmentation-needed from lb, the client's path-MTU discovery learns 1400 for the VIP and the
# upload completes (-pmtu); 1500-byte UDP datagrams without DF are fragmented by lb on their way
# to the real, whose kernel reassembles them, and answered (-fragments). The config is restored
# afterwards.
check_nat_mtu() {
    local b="$DIR/mtu-before.json" a="$DIR/mtu-after.json" out rc rout fn fr uout urc
    cp "$CONF" "$CONF.orig"
    sed -i -E 's#(\{ *port = 1; *address = "[0-9./]+";)#\1 mtu = 1400;#' "$CONF"
    if ! grep -q 'mtu = 1400' "$CONF" || ! lab_lbctl "$SOCK" --reload >"$DIR/mtu-reload.log" 2>&1
    then
        fail "$P/nat-mtu-pmtu" "could not set mtu = 1400 on port 1 and reload:" \
            "$(oneline "$(cat "$DIR/mtu-reload.log" 2>/dev/null)")"
        fail "$P/nat-mtu-fragments" "no reload"
        cp "$CONF.orig" "$CONF"
        return
    fi
    lab_client ip route flush cache >/dev/null 2>&1
    workers_json "$b"
    out=$(lab_client_py upload --host "$LAB_VIP" --size 2097152 --timeout 30 2>&1) && rc=0 || rc=$?
    rout=$(lab_client ip route get "$LAB_VIP" 2>&1)
    uout=$(lab_client_py udp --host "$LAB_VIP" --port 53 --count 4 --size 1472 --no-df \
        --timeout 3 2>&1) && urc=0 || urc=$?
    workers_json "$a"
    fn=$(delta "$b" "$a" counters.frag_needed_sent)
    fr=$(delta "$b" "$a" counters.nat_fragments)
    note "inside mtu 1400: $(head -n 1 <<<"$out"); client's route: $(oneline "$rout");" \
        "frag_needed_sent +$fn; 4 datagrams of 1500 bytes without DF: nat_fragments +$fr"
    if [ $rc -eq 0 ] && grep -qw 'mtu 1400' <<<"$rout" && [ "$fn" -gt 0 ]; then
        pass "$P/nat-mtu-pmtu"
    else
        fail "$P/nat-mtu-pmtu" "upload: $(oneline "$out"); route: $(oneline "$rout");" \
            "frag_needed_sent +$fn (expected the upload to succeed, 'mtu 1400', > 0)"
    fi
    if [ $urc -eq 0 ] && [ "$fr" -ge 8 ]; then pass "$P/nat-mtu-fragments"; else
        fail "$P/nat-mtu-fragments" "4 datagrams of 1472 bytes without DF: $(oneline "$uout");" \
            "nat_fragments +$fr (expected answers to all, >= 8)"
    fi
    cp "$CONF.orig" "$CONF"
    lab_lbctl "$SOCK" --reload >/dev/null 2>&1 || note "could not reload the original config"
    lab_client ip route flush cache >/dev/null 2>&1
}

# ms_since T0: milliseconds since T0 (date +%s%N).
ms_since() { echo $((($(date +%s%N) - $1) / 1000000)); }

# timed_lbctl ARGS...: lbctl with a 5 s limit; sets CTL_OUT, CTL_RC and CTL_MS.
timed_lbctl() {
    local t0
    t0=$(date +%s%N)
    CTL_OUT=$(timeout 5 "$LAB_LBCTL" --socket "$SOCK" "$@" 2>&1) && CTL_RC=0 || CTL_RC=$?
    CTL_MS=$(ms_since "$t0")
}

# idle_start NAME ARGS...: hostile.py idle ARGS in the director's namespace, in the background,
# until it has made its connections (up to 20 s); sets IDLE_PID. Its output is in $DIR/NAME.log.
idle_start() {
    local name=$1 i
    shift
    ip netns exec "$LAB_NS_DIR" "$LAB_PY" "$HPY" idle "$@" >"$DIR/$name.log" 2>&1 9>&- &
    IDLE_PID=$!
    BG_PIDS+=("$IDLE_PID")
    for i in $(seq 1 200); do
        grep -q '^idle open=' "$DIR/$name.log" && return 0
        kill -0 "$IDLE_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

idle_stop() {
    kill "$IDLE_PID" 2>/dev/null
    wait "$IDLE_PID" 2>/dev/null
    IDLE_PID=
}

# The config file swapped for a FIFO nobody writes to, then SIGHUP and lbctl --reload: lb must
# not wait on it; and `lb --check` of a symlink to /dev/zero must not read it.
check_ctl_fifo() {
    local before out rc ms
    before=$(lab_lbctl "$SOCK" -L -n 2>&1)
    mv "$CONF" "$CONF.real"
    mkfifo "$CONF"
    kill -HUP "$LAB_LB_PID"
    sleep 0.5  # the control thread takes the signal on its next turn
    timed_lbctl -L -n
    one_request 4
    if [ "$CTL_RC" -eq 0 ] && [ "$CTL_MS" -lt 1000 ] && [ "$CTL_OUT" = "$before" ] &&
        grep -q '^legit ok=4 ' <<<"$ONE_OUT" &&
        grep -q "reload refused.*$CONF: cannot read: not a regular file (a FIFO)" "$LOG"; then
        pass "$P/ctl-fifo-sighup"
        note "config a FIFO, SIGHUP: lbctl -L -n answered in $CTL_MS ms, the old config serves"
    else
        fail "$P/ctl-fifo-sighup" "lbctl -L -n: exit $CTL_RC in $CTL_MS ms (limit 1000),"             "same listing as before: $([ "$CTL_OUT" = "$before" ] && echo yes || echo no);"             "4 requests: $(oneline "$ONE_OUT"); log: $(grep -c 'reload refused' "$LOG")"             "refused reloads, last: $(grep 'reload refused' "$LOG" | tail -n 1)"
    fi
    timed_lbctl --reload
    if [ "$CTL_RC" -ne 0 ] && [ "$CTL_MS" -lt 1000 ] &&
        grep -q "not a regular file (a FIFO)" <<<"$CTL_OUT"; then
        pass "$P/ctl-fifo-reload"
    else
        fail "$P/ctl-fifo-reload" "lbctl --reload: exit $CTL_RC in $CTL_MS ms:"             "$(oneline "$CTL_OUT") (expected a refusal naming the FIFO within 1 s)"
    fi
    rm -f "$CONF"
    mv "$CONF.real" "$CONF"

    ln -sf /dev/zero "$DIR/zero.conf"
    local t0
    t0=$(date +%s%N)
    out=$(timeout 10 "$LAB_LB" -c "$DIR/zero.conf" --check 2>&1) && rc=0 || rc=$?
    ms=$(ms_since "$t0")
    rm -f "$DIR/zero.conf"
    if [ "$rc" -eq 1 ] && [ "$ms" -lt 1000 ] &&
        grep -q "zero.conf: cannot read: not a regular file (a character device)" <<<"$out"; then
        pass "$P/ctl-zero-check"
    else
        fail "$P/ctl-zero-check" "lb --check of a symlink to /dev/zero: exit $rc in $ms ms:"             "$(oneline "$out" | head -c 300) (expected exit 1 within 1 s, naming the device)"
    fi
}

# 1000 idle connections to the metrics port (every fourth with half a request), then scrapes;
# 300 idle connections to the control socket (every third with half a request line), then lbctl.
check_ctl_idle() {
    local i ok=0 code ms worst=0 t0
    if idle_start idle-metrics --tcp "$METRICS" --count 1000 --partial-every 4 --hold 60; then
        for i in 1 2 3 4 5; do
            t0=$(date +%s%N)
            code=$(ip netns exec "$LAB_NS_DIR" curl -s -o "$DIR/scrape.txt" -w '%{http_code}'                 --max-time 2 "http://$METRICS/metrics" 2>/dev/null)
            ms=$(ms_since "$t0")
            [ "$ms" -gt "$worst" ] && worst=$ms
            [ "$code" = 200 ] && grep -q '^lb_' "$DIR/scrape.txt" && ok=$((ok + 1))
            sleep 0.2
        done
        if [ "$ok" -eq 5 ]; then
            pass "$P/ctl-metrics-idle"
            note "$(cat "$DIR/idle-metrics.log") to the metrics port: 5 scrapes, slowest $worst ms"
        else
            fail "$P/ctl-metrics-idle" "$(cat "$DIR/idle-metrics.log") to $METRICS: $ok of 5"                 "scrapes succeeded (last HTTP status '$code', slowest $worst ms)"
        fi
        idle_stop
    else
        fail "$P/ctl-metrics-idle" "could not open the idle connections:"             "$(oneline "$(cat "$DIR/idle-metrics.log")")"
        idle_stop
    fi

    ok=0
    worst=0
    if idle_start idle-socket --unix "$SOCK" --count 300 --partial-every 3 --hold 60; then
        for i in 1 2 3 4 5; do
            timed_lbctl -L -n
            [ "$CTL_MS" -gt "$worst" ] && worst=$CTL_MS
            [ "$CTL_RC" -eq 0 ] && [ "$CTL_MS" -lt 1000 ] && ok=$((ok + 1))
            sleep 0.2
        done
        if [ "$ok" -eq 5 ]; then
            pass "$P/ctl-socket-idle"
            note "$(cat "$DIR/idle-socket.log") to the control socket: 5 lbctl -L -n, slowest"                 "$worst ms"
        else
            fail "$P/ctl-socket-idle" "$(cat "$DIR/idle-socket.log") to $SOCK: $ok of 5"                 "lbctl -L -n answered within 1 s (slowest $worst ms; last: $(oneline "$CTL_OUT"))"
        fi
        idle_stop
    else
        fail "$P/ctl-socket-idle" "could not open the idle connections:"             "$(oneline "$(cat "$DIR/idle-socket.log")")"
        idle_stop
    fi
}

# An idle NAT connection (GET /hold: the server waits for a line) under off-path teardown: a RST
# with a random sequence number, then a FIN, then a RST and a SYN, each spoofed from the
# client's address and port. The real drops them (wrong sequence numbers); lb keeps the
# connection (the client's answer to its probe, or the traffic after the claim, shows it false)
# and the hold's second line comes on the same connection from the same real.
check_tcp_spoof() {
    local go="$DIR/hold-go" hlog="$DIR/hold.log" hpid port i st exp server before after
    rm -f "$go"
    workers_json "$DIR/spoof-before.json"
    lab_client timeout 40 "$LAB_PY" "$HPY" hold --host "$LAB_VIP" --go "$go" --timeout 30 \
        >"$hlog" 2>&1 9>&- &
    hpid=$!
    BG_PIDS+=("$hpid")
    for i in $(seq 1 50); do
        grep -q '^hold port=' "$hlog" && break
        sleep 0.1
    done
    port=$(sed -n 's/^hold port=\([0-9]*\).*/\1/p' "$hlog")
    server=$(sed -n 's/^hold port=[0-9]* server=//p' "$hlog")
    if [ -z "$port" ]; then
        touch "$go"
        wait "$hpid" 2>/dev/null
        for i in rst fin rst-syn; do
            fail "$P/tcp-spoof-$i" "no held connection: $(oneline "$(cat "$hlog")")"
        done
        return
    fi
    # conn_entry: "STATE MINUTES DESTINATION" of the connection from the client's port.
    conn_entry() {
        lab_lbctl "$SOCK" -L -n -c 2>/dev/null |
            awk -v c="$LAB_CLIENT_IP:$port" '$4 == c { split($2, t, ":"); print $3, t[1] + 0, $6 }'
    }
    spoof() {
        lab_client timeout 10 "$LAB_PY" "$HPY" spoof --src-mac "$CLIENT_MAC" \
            --dst-mac "$LB_EXT_MAC" --src-ip "$LAB_CLIENT_IP" --vip "$LAB_VIP" --sport "$port" \
            --flags "$1" >>"$DIR/spoof.log" 2>&1
    }
    before=$(conn_entry)
    spoof RA
    sleep 0.5
    after=$(conn_entry)
    read -r st exp _ <<<"$after"
    if [ "$st" = ESTABLISHED ] && [ "${exp:-0}" -ge 14 ]; then pass "$P/tcp-spoof-rst"; else
        fail "$P/tcp-spoof-rst" "a spoofed RST with a random sequence number: the connection" \
            "was '$before', is '$after' (expected ESTABLISHED, 15 minutes)"
    fi
    spoof FA
    sleep 0.5
    after=$(conn_entry)
    read -r st exp _ <<<"$after"
    if { [ "$st" = FIN_CLIENT ] || [ "$st" = ESTABLISHED ]; } && [ "${exp:-0}" -ge 14 ]; then
        pass "$P/tcp-spoof-fin"
        note "after a spoofed FIN: $after"
    else
        fail "$P/tcp-spoof-fin" "a spoofed FIN with a random sequence number: the connection" \
            "is '$after' (expected FIN_CLIENT or ESTABLISHED, 15 minutes)"
    fi
    spoof RA
    spoof S
    sleep 0.5
    after=$(conn_entry)
    touch "$go"
    wait "$hpid"
    local hold_rc=$? dst_before dst_after
    dst_before=$(awk '{print $3}' <<<"$before")
    dst_after=$(awk '{print $3}' <<<"$after")
    workers_json "$DIR/spoof-after.json"
    local probes refuted
    probes=$(delta "$DIR/spoof-before.json" "$DIR/spoof-after.json" counters.tcp_probes)
    refuted=$(delta "$DIR/spoof-before.json" "$DIR/spoof-after.json" counters.tcp_refuted)
    note "spoofed RST, FIN, RST+SYN on $LAB_CLIENT_IP:$port ($server): tcp_probes +$probes," \
        "tcp_refuted +$refuted; $(tail -n 1 "$hlog")"
    if [ $hold_rc -eq 0 ] && [ -n "$dst_after" ] && [ "$dst_after" = "$dst_before" ] &&
        [ "$refuted" -ge 2 ]; then
        pass "$P/tcp-spoof-rst-syn"
    else
        fail "$P/tcp-spoof-rst-syn" "after a spoofed RST and SYN: '$after' (was '$before');" \
            "the hold: $(oneline "$(cat "$hlog")"); tcp_refuted +$refuted (expected >= 2)"
    fi
}

# kill -9, restart with the same config and the stale socket in place.
check_kill9() {
    local files0=$1 files_run files_after new extra rc
    files_run=$(dpdk_files)
    # A download across the kill: after the restart lb knows nothing of it, and the real's
    # next segment must bring the client a RST (connections.reset_unknown), not silence.
    local dl_log="$DIR/kill9-download.log" dl_pid
    lab_client timeout 40 "$LAB_PY" "$HPY" slowget --host "$LAB_VIP" --size 104857600 \
        --rate 2000000 --timeout 35 >"$dl_log" 2>&1 9>&- &
    dl_pid=$!
    BG_PIDS+=("$dl_pid")
    sleep 1
    kill -KILL "$LAB_LB_PID"
    local t_kill
    t_kill=$(date +%s%N)
    wait "$LAB_LB_PID" 2>/dev/null
    LAB_LB_PID=
    local stale=no
    [ -S "$SOCK" ] && stale=yes
    note "lb killed with SIGKILL; control socket left behind: $stale"
    local t0=$SECONDS
    if start_lb "$CONF" keep-socket; then
        # The real's next segment (its retransmission timer backed off while lb was down) is
        # the first lb can answer: from then on, the client's RST within 1 s.
        local t_up i t_rst= t_seen= r
        t_up=$(date +%s%N)
        for i in $(seq 1 400); do
            if ! kill -0 "$dl_pid" 2>/dev/null; then
                t_rst=$(date +%s%N)
                # Ended before lb answered on its control socket: its workers were first.
                [ "$i" -eq 1 ] && t_seen=$t_up t_rst=$t_up
                break
            fi
            if [ -z "$t_seen" ]; then
                workers_json "$DIR/kill9-w.json"
                r=$(wj "$DIR/kill9-w.json" counters.resets_sent)
                [ "$r" != "?" ] && [ "$r" -gt 0 ] && t_seen=$(date +%s%N)
            fi
            sleep 0.05
        done
        wait "$dl_pid" 2>/dev/null
        local up_ms=$(((t_up - t_kill) / 1000000)) rst_ms=-1 seen_ms=-1
        [ -n "$t_seen" ] && seen_ms=$(((t_seen - t_up) / 1000000))
        [ -n "$t_rst" ] && [ -n "$t_seen" ] && rst_ms=$(((t_rst - t_seen) / 1000000))
        note "download across the kill: $(oneline "$(cat "$dl_log")"); lb back $up_ms ms after" \
            "the kill, its first RST $seen_ms ms after that, the client's end $rst_ms ms later"
        if grep -q 'ConnectionResetError' "$dl_log" && [ "$rst_ms" -ge 0 ] &&
            [ "$rst_ms" -le 1000 ]; then
            pass "$P/fault-kill9-reset"
        else
            fail "$P/fault-kill9-reset" "the download across the kill: $(oneline "$(cat \
                "$dl_log")"); lb's first RST $seen_ms ms after its return, the client's end" \
                "$rst_ms ms after that (expected a RST within 1 s)"
        fi
        one_request 4
        local dl
        dl=$(lab_client_py download --host "$LAB_VIP" --size 1048576 --timeout 20 2>&1) &&
            rc=0 || rc=$?
        if grep -q '^legit ok=4 ' <<<"$ONE_OUT" && [ $rc -eq 0 ]; then
            pass "$P/fault-kill9-restart"
            note "restarted in $((SECONDS - t0)) s; $(head -n 1 <<<"$ONE_OUT")"
        else
            fail "$P/fault-kill9-restart" "restarted, but 4 requests: $(oneline "$ONE_OUT")," \
                "1 MB download: $dl"
        fi
    else
        fail "$P/fault-kill9-reset" "lb did not restart"
        fail "$P/fault-kill9-restart" "$START_ERR"
        return 1
    fi
    new=$(comm -13 <(echo "$files0") <(dpdk_files))
    extra=$(comm -13 <(echo "$files_run") <(dpdk_files))
    lab_stop_lb 5
    local st=$LAB_LB_STATUS i
    for i in $(seq 1 15); do
        files_after=$(comm -13 <(echo "$files0") <(dpdk_files))
        [ -z "$files_after" ] && break
        sleep 0.2
    done
    local others
    others=$(pgrep -a -x lb 2>/dev/null | tr '\n' ';')
    note "DPDK files while the restarted lb ran, beyond the lab's start: $(oneline "${new:-none}")"
    if [ "$st" = 0 ] && [ -z "$extra" ] && { [ -z "$files_after" ] || [ -n "$others" ]; }; then
        pass "$P/fault-kill9-files"
        [ -z "$files_after" ] || note "files left while another lb runs ($others): $files_after"
    else
        fail "$P/fault-kill9-files" "SIGTERM status $st; files the restart added beyond the" \
            "first lb's: $(oneline "${extra:-none}"); left after SIGTERM: $(oneline \
                "${files_after:-none}")"
    fi
    return 0
}

# kill -9 of an lb on hugepages (a private hugetlbfs mount, the file prefix lbthostile): the
# killed lb leaves its hugepage files (rtemapN, the memory they hold stays taken), its runtime
# files under /var/run/dpdk/lbthostile and its control socket. The restart with the same config
# must start and serve over them, and reuse the stale hugepage files instead of taking more
# memory. Without free 2 MB hugepages on the machine it is skipped, and says so.
HUGE_MNT=
HUGE_PREFIX=${LAB_PREFIX}hostile
huge_release() {
    if [ -n "$HUGE_MNT" ]; then
        rm -f "$HUGE_MNT"/* 2>/dev/null
        umount "$HUGE_MNT" 2>/dev/null
        rmdir "$HUGE_MNT" 2>/dev/null
        HUGE_MNT=
    fi
    rm -rf "/var/run/dpdk/$HUGE_PREFIX"
}
huge_files() { find "$HUGE_MNT" -type f 2>/dev/null | wc -l; }
huge_kib() { du -sk "$HUGE_MNT" 2>/dev/null | awk '{print $1}'; }

check_kill9_huge() {
    local conf="$DIR/lb-huge.conf" free n1 k1 n2 k2 rc st
    free=$(awk '/^HugePages_Free/ {print $2}' /proc/meminfo)
    if [ "$(awk '/^Hugepagesize/ {print $2}' /proc/meminfo)" != 2048 ] || [ "${free:-0}" -lt 96 ]
    then
        note "SKIP fault-kill9-huge: $free free hugepages of $(awk '/^Hugepagesize/ {print $2}' \
            /proc/meminfo) kB (96 of 2 MB needed)"
        return 0
    fi
    HUGE_MNT="$TMP/huge"
    mkdir -p "$HUGE_MNT"
    if ! mount -t hugetlbfs -o pagesize=2M none "$HUGE_MNT"; then
        fail "$P/fault-kill9-huge" "cannot mount hugetlbfs on $HUGE_MNT"
        HUGE_MNT=
        return 0
    fi
    rm -rf "/var/run/dpdk/$HUGE_PREFIX"
    write_conf "$W" "$conf.tmp" "$SOCK" 8191 &&
        sed -E 's#"--no-huge", "-m", "[0-9]+", "--no-shconf",#"--huge-dir", "'"$HUGE_MNT"'", "--file-prefix", "'"$HUGE_PREFIX"'", "-m", "128",#' \
            "$conf.tmp" >"$conf"
    if ! grep -q -- '--huge-dir' "$conf"; then
        fail "$P/fault-kill9-huge" "could not write $conf (no --no-huge in $CONF?)"
        huge_release
        return 0
    fi
    if ! start_lb "$conf"; then
        fail "$P/fault-kill9-huge" "lb on hugepages did not start: $START_ERR"
        huge_release
        return 0
    fi
    n1=$(huge_files)
    k1=$(huge_kib)
    kill -KILL "$LAB_LB_PID"
    wait "$LAB_LB_PID" 2>/dev/null
    LAB_LB_PID=
    local stale_sock=no
    [ -S "$SOCK" ] && stale_sock=yes
    note "lb on hugepages killed with SIGKILL: $n1 hugepage files ($k1 kB) and" \
        "$(find "/var/run/dpdk/$HUGE_PREFIX" -type f 2>/dev/null | wc -l) runtime files left" \
        "behind, control socket: $stale_sock"
    if ! start_lb "$conf" keep-socket; then
        fail "$P/fault-kill9-huge" "no restart over the stale files: $START_ERR"
        huge_release
        return 0
    fi
    one_request 4
    n2=$(huge_files)
    k2=$(huge_kib)
    lab_stop_lb 5
    st=$LAB_LB_STATUS
    note "restarted: $(head -n 1 <<<"$ONE_OUT"); $n2 hugepage files ($k2 kB); SIGTERM status $st"
    if [ "$n1" -gt 0 ] && [ "$stale_sock" = yes ] && grep -q '^legit ok=4 ' <<<"$ONE_OUT" &&
        [ "$k2" -le "$k1" ] && [ "$st" = 0 ]; then
        pass "$P/fault-kill9-huge"
    else
        fail "$P/fault-kill9-huge" "hugepage files $n1 ($k1 kB) after SIGKILL, $n2 ($k2 kB)" \
            "with the restarted lb (expected no more); stale socket $stale_sock; 4 requests:" \
            "$(oneline "$ONE_OUT"); SIGTERM status $st"
    fi
    huge_release
    return 0
}

check_mbufs() {
    local conf="$DIR/lb-mbufs.conf" out rc i
    write_conf "$W" "$conf" "$SOCK" 1023 || {
        fail "$P/fault-mbufs-start" "could not write $conf"
        return
    }
    if ! start_lb "$conf"; then
        fail "$P/fault-mbufs-start" "$START_ERR"
        local c
        for c in survives accounted settle recovers; do
            fail "$P/fault-mbufs-$c" "lb with mbufs = 1023 did not start"
        done
        return
    fi
    pass "$P/fault-mbufs-start"
    warm
    local base
    workers_json "$DIR/mb-before.json"
    base=$(wj "$DIR/mb-before.json" mbufs_in_use)
    note "mbufs = 1023: total $(wj "$DIR/mb-before.json" mbufs_total), idle in use $base"
    # The burst: a UDP blast, 100 concurrent connections and a download at once.
    local offered0 offered1
    offered0=$(link_rx)
    local pids=()
    for i in 1 2; do
        lab_client timeout 30 "$LAB_PY" "$HPY" udpburst --src-mac "$CLIENT_MAC" \
            --dst-mac "$LB_EXT_MAC" --src-ip "$LAB_CLIENT_IP" --vip "$LAB_VIP" --port 53 \
            --count 60000 --size 1400 >"$DIR/mb-burst-$i.log" 2>&1 9>&- &
        pids+=($!)
    done
    lab_client_py concurrent --host "$LAB_VIP" --count 100 --timeout 10 >"$DIR/mb-conc.log" \
        2>&1 9>&- &
    pids+=($!)
    lab_client_py download --host "$LAB_VIP" --size 5242880 --timeout 20 >"$DIR/mb-dl.log" \
        2>&1 9>&- &
    pids+=($!)
    BG_PIDS+=("${pids[@]}")
    local peak=0 v alive=1
    for i in $(seq 1 40); do
        lab_lbctl "$SOCK" --workers --json >"$DIR/mb-s.json" 2>/dev/null &&
            v=$(wj "$DIR/mb-s.json" mbufs_in_use) && [ "$v" != "?" ] && [ "$v" -gt "$peak" ] &&
            peak=$v
        local running=0 p
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
        [ $running -eq 0 ] && break
        sleep 0.25
    done
    wait "${pids[@]}" 2>/dev/null
    kill -0 "$LAB_LB_PID" 2>/dev/null || alive=0
    sleep 0.5
    offered1=$(link_rx)
    workers_json "$DIR/mb-after.json"
    local b="$DIR/mb-before.json" a="$DIR/mb-after.json"
    note "burst: $(cat "$DIR"/mb-burst-*.log | tr '\n' ' ')"
    note "concurrent: $(head -n 1 "$DIR/mb-conc.log"); download: $(head -n 1 "$DIR/mb-dl.log")"
    note "lb: rx +$(delta "$b" "$a" rx), tx +$(delta "$b" "$a" tx), peak mbufs in use $peak of" \
        "1023, drops: no_mbuf +$(delta "$b" "$a" drops.no_mbuf) tx_full" \
        "+$(delta "$b" "$a" drops.tx_full) redirect_full +$(delta "$b" "$a" drops.redirect_full)" \
        "no_neighbour +$(delta "$b" "$a" drops.no_neighbour)"
    local list_rc=0
    lab_lbctl "$SOCK" -L -n >/dev/null 2>&1 || list_rc=$?
    if [ $alive -eq 1 ] && [ $list_rc -eq 0 ]; then pass "$P/fault-mbufs-survives"; else
        fail "$P/fault-mbufs-survives" "lb alive $alive, lbctl -L -n exited $list_rc;" \
            "log: $(tail -n 3 "$LOG" | tr '\n' ' ')"
    fi
    # What the kernel handed to lb's two veths against what lb's workers received: the rest
    # was lost in front of them (the af_packet rings full while lb had no mbuf to copy into)
    # and must show in the ports' loss counters (rx_lost: imissed, ierrors, rx_nombuf and the
    # kernel's ring drops). Every frame: received by a worker, or counted as port rx loss.
    local offered=$((offered1 - offered0)) got missing lost ipk unacc tol
    got=$(delta "$b" "$a" rx)
    ipk=$(delta "$b" "$a" port.ipackets)
    lost=$(delta "$b" "$a" port.rx_lost)
    missing=$((offered - got))
    unacc=$((missing - lost))
    tol=$((offered / 1000 + 20))  # stray frames between the samples (ARP, retransmissions)
    note "frames offered to lb's ports (their kernel rx_packets) +$offered; lb's workers rx" \
        "+$got (ports' ipackets +$ipk); ports' rx loss +$lost (ring drops" \
        "+$(delta "$b" "$a" port.rx_ring_drops), imissed +$(delta "$b" "$a" port.imissed)," \
        "rx_nombuf +$(delta "$b" "$a" port.rx_nombuf)); unaccounted $unacc"
    if [ "$lost" != "?" ] && [ "${unacc#-}" -le "$tol" ] && [ "$got" -eq "$ipk" ]; then
        pass "$P/fault-mbufs-accounted"
    else
        fail "$P/fault-mbufs-accounted" "$offered frames offered to lb-ext/lb-int, lb's" \
            "workers received $got (the ports delivered $ipk), the ports counted $lost as lost:" \
            "$unacc frames unaccounted (tolerance $tol)"
    fi
    if mbufs_settle "$base"; then pass "$P/fault-mbufs-settle"; else
        fail "$P/fault-mbufs-settle" "mbufs_in_use $MBUFS_NOW 5 s after the burst, idle $base"
    fi
    out=$(lab_client timeout 30 "$LAB_PY" "$HPY" legit --host "$LAB_VIP" --count 10 \
        --deadline 20 --timeout 2 2>&1) && rc=0 || rc=$?
    if [ $rc -eq 0 ]; then pass "$P/fault-mbufs-recovers"; else
        fail "$P/fault-mbufs-recovers" "10 requests after the burst: $(oneline "$out")"
    fi
}

run_one() {  # run_one WORKERS
    W=$1
    P="hostile-w$W"
    DIR="$TMP/$P"
    SOCK="$DIR/lb.sock"
    LOG="$DIR/lb.log"
    CONF="$DIR/lb.conf"
    mkdir -p "$DIR"
    RUN_FAILED=0
    local t0=$SECONDS t
    echo "== $P: hostile traffic and faults through lb (LVS-NAT), $W worker(s)"
    local checks=(start catalogue-download catalogue-serving catalogue-drops catalogue-forward
        catalogue-martians catalogue-mbufs frag-crafted frag-tiny-first
        flood-during flood-after flood-established flood-lbctl fault-real-download
        fault-real-other fault-real-weight0 fault-real-mbufs fault-txdown-nostall
        fault-txdown-counted fault-txdown-recovers nat-mtu-pmtu nat-mtu-fragments
        neigh-flood neigh-new-client neigh-new-real neigh-hijack
        ctl-fifo-sighup ctl-fifo-reload ctl-zero-check ctl-metrics-idle ctl-socket-idle
        tcp-spoof-rst tcp-spoof-fin tcp-spoof-rst-syn fault-kill9-reset fault-kill9-restart
        fault-kill9-files fault-kill9-huge fault-mbufs-start fault-mbufs-survives
        fault-mbufs-accounted fault-mbufs-settle fault-mbufs-recovers sigterm)
    lab_mode nat
    if ! { lab_up && lab_start_reals && start_digest_servers; } >"$DIR/lab.log" 2>&1; then
        local c
        for c in "${checks[@]}"; do
            fail "$P/$c" "lab setup failed: $(tail -n 3 "$DIR/lab.log" | tr '\n' ' ')"
        done
        lab_down
        return
    fi
    disown -a  # the reals' servers: a fault check kills one; no job notice for it
    CLIENT_MAC=$(mac_of "$LAB_NS_CLIENT" eth0)
    LB_EXT_MAC=$(mac_of "$LAB_NS_DIR" lb-ext)
    LB_INT_MAC=$(mac_of "$LAB_NS_DIR" lb-int)
    local files0
    files0=$(dpdk_files)
    local out rc=0
    write_conf "$W" "$CONF" "$SOCK" 2>"$DIR/conf.err" &&
        out=$(timeout 20 "$LAB_LB" -c "$CONF" --check 2>&1) || rc=$?
    if [ $rc -ne 0 ] || ! start_lb "$CONF"; then
        local c
        fail "$P/start" "config: $(cat "$DIR/conf.err") $out; ${START_ERR:-}"
        for c in "${checks[@]:1}"; do fail "$P/$c" "lb did not start"; done
        dump_lb
        lab_down
        return
    fi
    pass "$P/start"
    note "lb pid $LAB_LB_PID, config $CONF, log $LOG"
    warm
    local base_mb
    workers_json "$DIR/idle.json"
    base_mb=$(wj "$DIR/idle.json" mbufs_in_use)
    note "idle: mbufs in use $base_mb of $(wj "$DIR/idle.json" mbufs_total), table capacity" \
        "$(wj "$DIR/idle.json" table_capacity)"

    if [ -n "$ONLY" ]; then
        t=$SECONDS
        if [ "$ONLY" = ctl ]; then
            check_ctl_fifo
            check_ctl_idle
        else
            check_neigh
        fi
        note "$ONLY: $((SECONDS - t)) s"
        lab_stop_lb 5
        if [ "$LAB_LB_STATUS" = 0 ]; then pass "$P/sigterm"; else
            fail "$P/sigterm" "lb exit status $LAB_LB_STATUS on SIGTERM"
        fi
        lab_down
        echo "== $P: $((SECONDS - t0)) s"
        return
    fi
    if [ "$ONLY" = tcp ]; then
        check_catalogue "$base_mb"
        check_tcp_spoof
        check_kill9 "$files0"
        [ $RUN_FAILED -ne 0 ] && dump_lb
        lab_stop_lb 5
        lab_down
        echo "== $P: $((SECONDS - t0)) s"
        return
    fi
    t=$SECONDS
    check_catalogue "$base_mb"
    note "catalogue: $((SECONDS - t)) s"
    t=$SECONDS
    check_frag
    note "fragments: $((SECONDS - t)) s"
    t=$SECONDS
    check_flood
    note "flood: $((SECONDS - t)) s"
    t=$SECONDS
    check_fault_real "$base_mb"
    note "fault-real: $((SECONDS - t)) s"
    t=$SECONDS
    check_txdown "$base_mb"
    note "fault-txdown: $((SECONDS - t)) s"
    t=$SECONDS
    check_nat_mtu
    note "nat-mtu: $((SECONDS - t)) s"
    t=$SECONDS
    check_neigh
    note "neigh: $((SECONDS - t)) s"
    t=$SECONDS
    check_ctl_fifo
    check_ctl_idle
    note "ctl: $((SECONDS - t)) s"
    t=$SECONDS
    check_tcp_spoof
    note "tcp-spoof: $((SECONDS - t)) s"
    t=$SECONDS
    if check_kill9 "$files0"; then
        note "fault-kill9: $((SECONDS - t)) s"
        t=$SECONDS
        check_kill9_huge
        note "fault-kill9-huge: $((SECONDS - t)) s"
        t=$SECONDS
        check_mbufs
        note "fault-mbufs: $((SECONDS - t)) s"
    else
        local c
        for c in fault-kill9-files fault-kill9-huge fault-mbufs-start fault-mbufs-survives \
            fault-mbufs-accounted fault-mbufs-settle fault-mbufs-recovers; do
            fail "$P/$c" "lb did not restart after SIGKILL"
        done
    fi
    [ $RUN_FAILED -ne 0 ] && dump_lb
    if [ -n "$LAB_LB_PID" ]; then
        lab_stop_lb 5
        if [ "$LAB_LB_STATUS" = 0 ]; then pass "$P/sigterm"; else
            fail "$P/sigterm" "lb exit status $LAB_LB_STATUS on SIGTERM"
        fi
    else
        fail "$P/sigterm" "lb was not running"
    fi
    if [ "$W" -eq 1 ]; then
        t=$SECONDS
        run_pcap
        note "fragments on net_pcap: $((SECONDS - t)) s"
    else
        note "frag-pcap-*: not with $W workers (a net_pcap port has one queue)"
    fi
    lab_down
    echo "== $P: $((SECONDS - t0)) s"
}

t_all=$SECONDS
for w in "${WORKERS[@]}"; do run_one "$w"; done
if [ -f "$TMP/flood-figures.txt" ]; then
    echo "flood figures:"
    sed 's/^/  /' "$TMP/flood-figures.txt"
fi
echo "hostile wall time: $((SECONDS - t_all)) s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
