#!/usr/bin/python3
"""LVS-TUN, tunnel_source: tcp/80 sets tunnel_source = "198.51.100.1" (port 0's address, not
the egress port's), so its tunnel packets leave port 1 with outer src 198.51.100.1; udp/53 has
no tunnel_source, so its outer src is the egress interface's address, 10.10.0.1. Everything
else as in 014/015 (next hop = the real's MAC, eth src = P1_MAC)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

send0 = [
    client_tcp(40000, "S", seq=100, ip_id=0x1601),                          # tcp -> .2
    client_udp(33333, b"query number one", ip_id=0x1602),                  # udp -> .2
    client_tcp(40001, "S", seq=200, ip_id=0x1603, client=CLIENT_B),         # tcp -> .3
    client_tcp(40000, "A", seq=101, ack=901, ip_id=0x1604),                 # tcp -> .2
    client_udp(33334, b"query number two", ip_id=0x1605, client=CLIENT_B),  # udp -> .3
]
expect1 = [
    tun(send0[0], REAL1, REAL1_MAC, P0_IP),
    tun(send0[1], REAL1, REAL1_MAC, P1_IP),
    tun(send0[2], REAL2, REAL2_MAC, P0_IP),
    tun(send0[3], REAL1, REAL1_MAC, P0_IP),
    tun(send0[4], REAL2, REAL2_MAC, P1_IP),
]

write(send0, [], [], expect1, counters={
    "rx": 5,
    "tx": 5,
    "conns_created": 4,
    "tunnel_encapsulated": 5,
})
