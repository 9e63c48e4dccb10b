#!/usr/bin/python3
"""LVS-TUN and LVS-DR reals answer clients directly, not through the director: lb keeps no
return path for their connections. tcp/80 and udp/53 rr -> 10.10.0.2 (tun), 10.10.0.3 (dr).
After one TCP and one UDP connection to each real (send0), the reals' answers arrive at lb on
port 1 anyway (send1, to P1_MAC), both as a tun/dr real really sends them (src = the VIP, which
the real holds) and as a NAT real would (src = the real's own address and the service port).
lb must not NAT or forward any of them: nothing leaves port 0, each is dropped and counted."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

DNS_Q = (b"\xa1\xb2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         b"\x03www\x07example\x03com\x00\x00\x01\x00\x01")
DNS_A = DNS_Q[:2] + b"\x81\x80" + DNS_Q[4:6] + b"\x00\x01" + DNS_Q[8:] + \
    bytes.fromhex("c00c000100010000012c00045db8d822")

syn_t = client_tcp(40000, "S", seq=1000, ip_id=0x2301)   # -> .2 tun
syn_d = client_tcp(40001, "S", seq=2000, ip_id=0x2302)   # -> .3 dr
q_t = client_udp(33333, DNS_Q, ip_id=0x2303)             # -> .2 tun
q_d = client_udp(33334, DNS_Q, ip_id=0x2304)             # -> .3 dr

send0 = [syn_t, syn_d, q_t, q_d]
expect1 = [
    tun(syn_t, REAL1, REAL1_MAC, P1_IP),
    dr(syn_d, REAL2_MAC),
    tun(q_t, REAL1, REAL1_MAC, P1_IP),
    dr(q_d, REAL2_MAC),
]


def synack(real, src, dport, ack):
    return pad(Ether(dst=P1_MAC, src=REAL_MAC[real]) / IP(src=src, dst=CLIENT_A, flags="DF") /
               TCP(sport=TCP_PORT, dport=dport, flags="SA", seq=777, ack=ack, window=65160,
                   options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (9, 1000)),
                            ("NOP", None), ("WScale", 7)]))


def answer(real, src, dport):
    return pad(Ether(dst=P1_MAC, src=REAL_MAC[real]) / IP(src=src, dst=CLIENT_A, id=0x2399) /
               UDP(sport=UDP_PORT, dport=dport) / Raw(DNS_A))


send1 = [
    synack(REAL1, VIP, 40000, 1001),     # tun real, as it answers: from the VIP
    synack(REAL2, VIP, 40001, 2001),     # dr real, from the VIP
    synack(REAL1, REAL1, 40000, 1001),   # from the real's own address: not a NAT connection
    synack(REAL2, REAL2, 40001, 2001),
    answer(REAL1, VIP, 33333),
    answer(REAL2, REAL2, 33334),
]

write(send0, send1, [], expect1, counters={
    "rx": 10,
    "tx": 4,
    "conns_created": 4,
    "tunnel_encapsulated": 2,
    "drop.no_connection": 3,  # from the reals' own addresses
    "drop.martian": 3,        # from the VIP: a source only the director may use
})
