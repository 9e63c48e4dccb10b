#!/usr/bin/python3
"""LVS-TUN to reals beyond a router: tcp/80 rr -> 10.10.0.2 (on port 1's subnet),
203.0.113.20 (route via the inside router 10.10.0.254), 192.0.2.30 (route via the outside
router 198.51.100.254), all tun. The outer dst is always the real; the Ethernet dst is the next
hop: the real's own MAC when on link, else the route's gateway's MAC. The egress port follows
the route, and with it the Ethernet src and the outer src (the egress interface's address):
192.0.2.30's tunnel packets leave port 0, from P0_MAC and 198.51.100.1."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

FAR_IN, FAR_OUT = "203.0.113.20", "192.0.2.30"

send0 = [
    client_tcp(40000, "S", seq=10, ip_id=0x1701),                  # -> 10.10.0.2
    client_tcp(40001, "S", seq=20, ip_id=0x1702),                  # -> 203.0.113.20
    client_tcp(40002, "S", seq=30, ip_id=0x1703, client=CLIENT_B),  # -> 192.0.2.30
    client_tcp(40001, "A", seq=21, ack=501, ip_id=0x1704),         # -> 203.0.113.20
    client_tcp(40002, "PA", seq=31, ack=601, ip_id=0x1705, client=CLIENT_B,
               data=payload(700, 3)),                              # -> 192.0.2.30
    client_tcp(40003, "S", seq=40, ip_id=0x1706),                  # -> 10.10.0.2
]
expect1 = [
    tun(send0[0], REAL1, REAL1_MAC, P1_IP),
    tun(send0[1], FAR_IN, ROUTER_IN_MAC, P1_IP),
    tun(send0[3], FAR_IN, ROUTER_IN_MAC, P1_IP),
    tun(send0[5], REAL1, REAL1_MAC, P1_IP),
]
expect0 = [
    tun(send0[2], FAR_OUT, ROUTER_OUT_MAC, P0_IP, eth_src=P0_MAC),
    tun(send0[4], FAR_OUT, ROUTER_OUT_MAC, P0_IP, eth_src=P0_MAC),
]

write(send0, [], expect0, expect1, counters={
    "rx": 6,
    "tx": 6,
    "conns_created": 4,
    "tunnel_encapsulated": 6,
})
