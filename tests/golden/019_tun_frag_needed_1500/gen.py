#!/usr/bin/python3
"""LVS-TUN, path MTU at the default mtu 1500: the tunnel costs 20 bytes, so a full-size
1500-byte DF packet from a client cannot be tunneled; lb answers fragmentation-needed with
next-hop MTU 1480 (the rest as in 018).

  syn       A:40000 -> .2
  fits      inner 1480, DF: outer 1500, tunneled
  over1     inner 1481, DF: frag-needed, MTU 1480
  full      inner 1500, DF: frag-needed, MTU 1480, 548 bytes quoted
  syn_b     B:40001 -> .3
  dns       B:33333 udp, small -> .2
  dns_full  B:33333 udp, inner 1500, DF: frag-needed to B
  dns_fits  A:33334 udp, inner 1480, no DF: outer 1500, DF clear, tunneled -> .3
(Each too-big packet belongs to a connection made by an earlier packet: whether a too-big first
packet creates its connection is left open by the specification.)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

MTU = 1500


def seg(sport, size, ip_id, client=CLIENT_A):
    return client_tcp(sport, "PA", seq=77, ack=88, ip_id=ip_id, client=client,
                      data=payload(size - 40, ip_id & 0xFF))


syn = client_tcp(40000, "S", seq=76, ip_id=0x1901)
fits = seg(40000, 1480, 0x1902)
over1 = seg(40000, 1481, 0x1903)
full = seg(40000, 1500, 0x1904)
syn_b = client_tcp(40001, "S", seq=76, ip_id=0x1905, client=CLIENT_B)
dns = client_udp(33333, b"small", ip_id=0x1908, client=CLIENT_B, df=True)
dns_full = client_udp(33333, payload(1472, 1), ip_id=0x1906, client=CLIENT_B, df=True)
dns_fits = client_udp(33334, payload(1452, 2), ip_id=0x1907)

send0 = [syn, fits, over1, full, syn_b, dns, dns_full, dns_fits]
expect1 = [
    tun(syn, REAL1, REAL1_MAC, P1_IP),
    tun(fits, REAL1, REAL1_MAC, P1_IP),
    tun(syn_b, REAL2, REAL2_MAC, P1_IP),
    tun(dns, REAL1, REAL1_MAC, P1_IP),
    tun(dns_fits, REAL2, REAL2_MAC, P1_IP),
]
expect0 = [
    frag_needed_reply(over1, MTU, CLIENT_A_MAC),
    frag_needed_reply(full, MTU, CLIENT_A_MAC),
    frag_needed_reply(dns_full, MTU, CLIENT_B_MAC),
]
assert len(expect1[1]) == 14 + 1500 and len(expect1[4]) == 14 + 1500
assert len(ip_of(full)) == 1500 and len(ip_of(dns_full)) == 1500

write(send0, [], expect0, expect1, counters={
    "rx": 8,
    "tx": 8,
    "conns_created": 4,
    "tunnel_encapsulated": 5,
    "tunnel_fragments": 0,
    "frag_needed_sent": 3,
})
