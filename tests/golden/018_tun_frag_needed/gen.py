#!/usr/bin/python3
"""LVS-TUN, path MTU: port 1 (the inside, toward the reals) has mtu = 1400, so a DF packet
whose tunnel packet (inner + 20) would exceed 1400 is not sent; lb answers the client with

  Ether(client's MAC, or its gateway's, <- P0_MAC) /
  IPv4(IHL 5, TOS 0xc0, ID 0, no flags, TTL 64, protocol 1, src = VIP, dst = client) /
  ICMP(type 3, code 4, unused 0, next-hop MTU 1380) / the first 548 bytes of the received packet

  syn_a     A:40000 -> .2, tunneled
  fits      inner 1380 bytes, DF: outer 1400 = the MTU, tunneled
  over      inner 1381 bytes, DF, TOS 0x28: frag-needed to A (the ICMP's TOS is still 0xc0)
  syn_r     203.0.113.77:51000, a client beyond the outside router (default route) -> .3
  over_r    inner 1500 bytes, DF: frag-needed to 203.0.113.77, Ether dst = the router's MAC
  dns       A:33333 udp -> .2, small, tunneled
  dns_big   A:33333 udp, 1400 bytes, DF: frag-needed quoting the UDP datagram
  after     A:40000 small segment after the refusals: the connection is still there, tunneled
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

MTU = 1400
REMOTE = "203.0.113.77"


def seg(sport, size, ip_id, client=CLIENT_A, tos=0, seq=1001):
    return client_tcp(sport, "PA", seq=seq, ack=5001, ip_id=ip_id, client=client, tos=tos,
                      data=payload(size - 40, ip_id & 0xFF))


syn_a = client_tcp(40000, "S", seq=1000, ip_id=0x1801)
fits = seg(40000, 1380, 0x1802)
over = seg(40000, 1381, 0x1803, tos=0x28)
syn_r = client_tcp(51000, "S", seq=7000, ip_id=0x1804, client=REMOTE, ttl=57)
over_r = seg(51000, 1500, 0x1805, client=REMOTE)
dns = client_udp(33333, b"small query", ip_id=0x1806, df=True)
dns_big = client_udp(33333, payload(1372, 9), ip_id=0x1807, df=True)
after = seg(40000, 100, 0x1808, seq=2341)

send0 = [syn_a, fits, over, syn_r, over_r, dns, dns_big, after]
expect1 = [
    tun(syn_a, REAL1, REAL1_MAC, P1_IP),
    tun(fits, REAL1, REAL1_MAC, P1_IP),
    tun(syn_r, REAL2, REAL2_MAC, P1_IP),
    tun(dns, REAL1, REAL1_MAC, P1_IP),
    tun(after, REAL1, REAL1_MAC, P1_IP),
]
expect0 = [
    frag_needed_reply(over, MTU, CLIENT_A_MAC),
    frag_needed_reply(over_r, MTU, ROUTER_OUT_MAC),
    frag_needed_reply(dns_big, MTU, CLIENT_A_MAC),
]

assert len(expect1[1]) == 14 + MTU and len(ip_of(over)) == MTU - 19
assert len(ip_of(over_r)) == 1500 and len(ip_of(dns_big)) == 1400
for e in expect0:
    assert len(e) == 14 + 576                                  # 20 + 8 + 548
    assert e[14 + 1] == 0xC0 and e[14 + 20 + 6:14 + 20 + 8] == (MTU - 20).to_bytes(2, "big")

write(send0, [], expect0, expect1, counters={
    "rx": 8,
    "tx": 8,
    "conns_created": 3,
    "tunnel_encapsulated": 5,
    "tunnel_fragments": 0,
    "frag_needed_sent": 3,
})
