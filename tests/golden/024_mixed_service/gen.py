#!/usr/bin/python3
"""One service, three forwarding methods: tcp/80 rr -> 10.10.0.2:8080 (nat), 10.10.0.3 (tun),
10.10.0.4 (dr); udp/53 rr -> 10.10.0.4 (dr), 10.10.0.2:5353 (nat), 10.10.0.3 (tun). rr walks
the reals in config order whatever their method; each connection's packets go to its real with
that real's method (nat: rewrite, TTL - 1; tun: IP-in-IP from 10.10.0.1; dr: MAC only), and
the NAT real's replies are still translated back to VIP:port on port 0."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

TS = [("NOP", None), ("NOP", None), ("Timestamp", (55, 66))]

syn1 = client_tcp(40000, "S", seq=100, ip_id=0x2401)                 # -> .2:8080 nat
syn2 = client_tcp(40001, "S", seq=200, ip_id=0x2402)                 # -> .3 tun
syn3 = client_tcp(40002, "S", seq=300, ip_id=0x2403)                 # -> .4 dr
syn4 = client_tcp(40003, "S", seq=400, ip_id=0x2404, client=CLIENT_B)  # -> .2:8080 nat
ack3 = client_tcp(40002, "A", seq=301, ack=3001, ip_id=0x2405, opts=TS)
ack2 = client_tcp(40001, "A", seq=201, ack=2001, ip_id=0x2406, opts=TS)
ack1 = client_tcp(40000, "A", seq=101, ack=1001, ip_id=0x2407, opts=TS)
u1 = client_udp(33333, b"question number 01", ip_id=0x2408)         # -> .4 dr
u2 = client_udp(33334, b"question number 02", ip_id=0x2409)         # -> .2:5353 nat
u3 = client_udp(33335, b"question number 03", ip_id=0x240A)         # -> .3 tun
u4 = client_udp(33336, b"question number 04", ip_id=0x240B)         # -> .4 dr
u2b = client_udp(33334, b"question number 2b", ip_id=0x240C)        # -> .2:5353 nat

send0 = [syn1, syn2, syn3, syn4, ack3, ack2, ack1, u1, u2, u3, u4, u2b]
expect1 = [
    nat_in(syn1, REAL1, TCP_REAL_PORT),
    tun(syn2, REAL2, REAL2_MAC, P1_IP),
    dr(syn3, REAL3_MAC),
    nat_in(syn4, REAL1, TCP_REAL_PORT),
    dr(ack3, REAL3_MAC),
    tun(ack2, REAL2, REAL2_MAC, P1_IP),
    nat_in(ack1, REAL1, TCP_REAL_PORT),
    dr(u1, REAL3_MAC),
    nat_in(u2, REAL1, UDP_REAL_PORT),
    tun(u3, REAL2, REAL2_MAC, P1_IP),
    dr(u4, REAL3_MAC),
    nat_in(u2b, REAL1, UDP_REAL_PORT),
]
assert all(len(bytes(f)) == 14 + len(ip_of(f)) for f in (syn3, ack3, u1, u4))  # no padding


def synack(client, dport, ack):
    return pad(Ether(dst=P1_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=client, flags="DF") /
               TCP(sport=TCP_REAL_PORT, dport=dport, flags="SA", seq=1000, ack=ack,
                   window=65160, options=[("MSS", 1460), ("NOP", None), ("NOP", None),
                                          ("SAckOK", b"")]))


answer = pad(Ether(dst=P1_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=CLIENT_A, id=0x2499) /
             UDP(sport=UDP_REAL_PORT, dport=33334) / Raw(b"answer number 2"))
send1 = [synack(CLIENT_A, 40000, 101), synack(CLIENT_B, 40003, 401), answer]
expect0 = [nat_out(send1[0], VIP, TCP_PORT), nat_out(send1[1], VIP, TCP_PORT),
           nat_out(answer, VIP, UDP_PORT)]

write(send0, send1, expect0, expect1, counters={
    "rx": 15,
    "tx": 15,
    "conns_created": 8,
    "tunnel_encapsulated": 3,
    "drop.no_connection": 0,
})
