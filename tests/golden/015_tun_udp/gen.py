#!/usr/bin/python3
"""LVS-TUN, UDP: udp/53 rr -> 10.10.0.2, 10.10.0.3 (tun). Datagrams mostly without DF: the
outer header has DF clear then, and DF set only for the one inner datagram that has it.

  q1  A:33333 -> .2, no DF, 40 bytes of DNS
  q2  B:44444 -> .3, a short datagram padded to 60 bytes on the wire: inner 32 bytes
  q3  A:33333 again: same flow, .2, TOS 0xb8 copied to the outer header
  q4  A:33334 -> .2 (third flow), DF set: outer DF set
  q5  A:33335 -> .3, UDP checksum 0 (stays 0: the inner packet is not touched), IP ID 0
  q6  B:44444 again, 1400 bytes, no DF: 1420 fits the default MTU 1500, one packet
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

DNS_Q = (b"\xa1\xb2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         b"\x03www\x07example\x03com\x00\x00\x01\x00\x01")

send0 = [
    client_udp(33333, DNS_Q, ip_id=0x1501),
    client_udp(44444, b"ping", ip_id=0x1502, client=CLIENT_B),
    client_udp(33333, DNS_Q, ip_id=0x1503, tos=0xB8),
    client_udp(33334, DNS_Q, ip_id=0x1504, df=True),
    client_udp(33335, DNS_Q, ip_id=0, chksum=0),
    client_udp(44444, payload(1372, 5), ip_id=0x1506, client=CLIENT_B),
]
reals = [REAL1, REAL2, REAL1, REAL1, REAL2, REAL2]
expect1 = [tun(f, r, REAL_MAC[r], P1_IP) for f, r in zip(send0, reals)]

assert len(ip_of(send0[1])) == 32 and len(bytes(send0[1])) == 60
assert len(ip_of(send0[5])) == 1400
for i, e in enumerate(expect1):
    assert (e[20] & 0x40 != 0) == (i == 3)      # outer DF only on q4
assert expect1[2][15] == 0xB8
assert ip_of(send0[4])[26:28] == b"\x00\x00"

write(send0, [], [], expect1, counters={
    "rx": 6,
    "tx": 6,
    "conns_created": 4,
    "tunnel_encapsulated": 6,
    "tunnel_fragments": 0,
    "frag_needed_sent": 0,
})
