#!/usr/bin/python3
"""ICMP echo: lb answers pings to its port addresses and to the VIP, out the port the request
came in, to the request's source MAC (even one that is no configured neighbour): IP src/dst
swapped, TTL 64, IP id unchanged, ICMP type 0 with the same id, seq and payload. A request that
arrives with TTL 1 is answered too: it is delivered to the director, not forwarded."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

STRANGER, STRANGER_MAC = "198.51.100.50", "02:00:00:00:00:50"  # no static neighbour entry


def ping(src_mac, dst_mac, src, dst, ident, seq, payload, ttl=64, ip_id=1):
    return Ether(dst=dst_mac, src=src_mac) / IP(src=src, dst=dst, ttl=ttl, id=ip_id) / \
        ICMP(type=8, code=0, id=ident, seq=seq) / Raw(payload)


def pong(req, port_mac):
    ip = req[IP]
    ic = req[ICMP]
    return Ether(dst=req[Ether].src, src=port_mac) / \
        IP(src=ip.dst, dst=ip.src, ttl=64, id=ip.id, tos=ip.tos, flags=ip.flags) / \
        ICMP(type=0, code=0, id=ic.id, seq=ic.seq) / Raw(bytes(ic.payload))


payload56 = bytes(range(56))                    # like ping(8)'s default
payload33 = b"odd-length payload checks csum!!!"  # 33 bytes: odd length

send0 = [
    ping(CLIENT_A_MAC, P0_MAC, CLIENT_A, P0_IP, 0x1234, 1, payload56, ip_id=0x1001),
    ping(CLIENT_A_MAC, P0_MAC, CLIENT_A, VIP, 0x1234, 2, payload33, ttl=50, ip_id=0x1002),
    ping(STRANGER_MAC, P0_MAC, STRANGER, VIP, 0xbeef, 7, payload56, ttl=255, ip_id=0x1003),
    ping(CLIENT_B_MAC, P0_MAC, CLIENT_B, VIP, 0x0001, 1, payload56, ttl=1, ip_id=0x1004),
]
send1 = [
    ping(REAL1_MAC, P1_MAC, REAL1, P1_IP, 0x0042, 1, payload56, ip_id=0x2001),
]
expect0 = [pong(p, P0_MAC) for p in send0]
expect1 = [pong(p, P1_MAC) for p in send1]

write(send0, send1, expect0, expect1, counters={
    "rx": 5,
    "tx": 5,
    "icmp_echo_replies": 5,
})
