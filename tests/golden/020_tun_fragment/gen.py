#!/usr/bin/python3
"""LVS-TUN, fragmentation: a packet without DF whose tunnel packet exceeds the egress MTU is
sent as outer fragments: (mtu - 20) rounded down to a multiple of 8 bytes of the inner packet in
each, the outer header on each with its own total length and checksum, MF on all but the last,
the offset in 8-byte units, ID = the inner ID, DF 0, TTL 64, protocol 4, TOS = inner TOS; in
order. tunnel_fragments counts the fragments, tunnel_encapsulated the packets (once each).

  port 1, mtu 1400 (1376 bytes a fragment):
    udp/53 -> 10.10.0.2   small (one packet); 1450 bytes -> 1376 + 74; 1430 bytes with TOS 0x20
                          -> 1376 + 54; 1380 bytes (outer exactly 1400: one packet, no fragments)
    tcp/80 -> 10.10.0.3   SYN without DF; a 1500-byte segment without DF -> 1376 + 124
  port 0, default mtu 1500 (1480 bytes a fragment), real 192.0.2.30 via the outside router:
    udp/123               a 1500-byte datagram without DF -> 1480 + 20 (the last fragment is a
                          54-byte frame: nothing in the specification pads it)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

MTU1 = 1400
FAR = "192.0.2.30"


def dgram(sport, size, ip_id, dport=UDP_PORT, tos=0, client=CLIENT_A):
    return client_udp(sport, payload(size - 28, ip_id & 0xFF), ip_id=ip_id, tos=tos,
                      dport=dport, client=client)


small = dgram(33333, 60, 0x2001)
big = dgram(33333, 1450, 0x2002)
big_tos = dgram(33333, 1430, 0x2003, tos=0x20)
exact = dgram(33333, 1380, 0x2004)
syn = client_tcp(40000, "S", seq=5, ip_id=0x2005, df=False, client=CLIENT_B)
seg = client_tcp(40000, "PA", seq=6, ack=9, ip_id=0x2006, df=False, client=CLIENT_B,
                 data=payload(1460, 6))
ntp = dgram(123, 1500, 0x2007, dport=123)

send0 = [small, big, big_tos, syn, seg, exact, ntp]
f_big = tun_fragments(big, REAL1, REAL1_MAC, P1_IP, MTU1)
f_tos = tun_fragments(big_tos, REAL1, REAL1_MAC, P1_IP, MTU1)
f_seg = tun_fragments(seg, REAL2, REAL2_MAC, P1_IP, MTU1)
f_ntp = tun_fragments(ntp, FAR, ROUTER_OUT_MAC, P0_IP, 1500, eth_src=P0_MAC)
expect1 = [tun(small, REAL1, REAL1_MAC, P1_IP)] + f_big + f_tos + \
    [tun(syn, REAL2, REAL2_MAC, P1_IP)] + f_seg + [tun(exact, REAL1, REAL1_MAC, P1_IP)]
expect0 = f_ntp

# The fragments, spelled out: (outer total length, flags+offset field).
hdr = [(int.from_bytes(f[16:18], "big"), int.from_bytes(f[20:22], "big"))
       for f in f_big + f_tos + f_seg + f_ntp]
assert hdr == [(1396, 0x2000), (94, 172), (1396, 0x2000), (74, 172), (1396, 0x2000), (144, 172),
               (1500, 0x2000), (40, 185)], hdr
assert all(f[18:20] == ip_of(big)[4:6] for f in f_big)      # outer ID = inner ID
assert all(f[15] == 0x20 for f in f_tos)
assert len(f_ntp[1]) == 54
assert len(expect1[-1]) == 14 + MTU1

write(send0, [], expect0, expect1, counters={
    "rx": 7,
    "tx": 1 + 2 + 2 + 1 + 2 + 1 + 2,
    "conns_created": 3,
    "tunnel_encapsulated": 7,
    "tunnel_fragments": 8,
    "frag_needed_sent": 0,
})
