#!/usr/bin/python3
"""NAT inbound: SYNs to VIP:80 from two clients and several source ports. rr hands out
10.10.0.2, 10.10.0.3, 10.10.0.2, ... over new connections in arrival order; a retransmitted SYN
of an existing connection goes to the same real and creates nothing. Each SYN leaves on port 1
with eth P1_MAC -> real's MAC, dst = real:8080, TTL - 1, checksums fixed, TCP options, IP id
and flags unchanged."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("NOP", None),
        ("WScale", 7)]


def syn(client, cmac, sport, seq, ip_id, ttl=64, opts=OPTS):
    return Ether(dst=P0_MAC, src=cmac) / \
        IP(src=client, dst=VIP, ttl=ttl, id=ip_id, flags="DF") / \
        TCP(sport=sport, dport=TCP_PORT, flags="S", seq=seq, window=64240, options=opts)


send0 = [
    syn(CLIENT_A, CLIENT_A_MAC, 40000, 0x11111111, 0x0101),               # new -> .2
    syn(CLIENT_A, CLIENT_A_MAC, 40001, 0x22222222, 0x0102, ttl=128),      # new -> .3
    syn(CLIENT_B, CLIENT_B_MAC, 50000, 0x33333333, 0x0201, ttl=37),       # new -> .2
    syn(CLIENT_A, CLIENT_A_MAC, 40000, 0x11111111, 0x0103),               # retransmit -> .2
    syn(CLIENT_B, CLIENT_B_MAC, 50001, 0x44444444, 0x0202, opts=[]),      # new -> .3, padded
]
send0[4] = pad(send0[4])  # a 54-byte SYN without options arrives padded to 60 bytes
reals = [REAL1, REAL2, REAL1, REAL1, REAL2]
expect1 = [nat_in(f, r, TCP_REAL_PORT) for f, r in zip(send0, reals)]

write(send0, [], [], expect1, counters={
    "rx": 5,
    "tx": 5,
    "conns_created": 4,
})
