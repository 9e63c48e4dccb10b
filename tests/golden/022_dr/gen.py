#!/usr/bin/python3
"""LVS-DR: tcp/80 and udp/53 rr -> 10.10.0.2, 10.10.0.3 (forward = "dr"; 10.10.0.3 of tcp/80
with port = 80 given explicitly). Each packet leaves port 1 as

  Ether(real's MAC <- P1_MAC, IPv4) / the IP packet exactly as received

(dst still the VIP, dport still 80/53, TTL not decremented, checksums untouched). No frame here
is shorter than 60 bytes, so Ethernet padding plays no part.

  tcp: SYN A:40000 -> .2; SYN B:40001 (TTL 128, TOS 0x10) -> .3; ACK and a 1000-byte segment
       on A:40000 -> .2; a 1500-byte DF segment on B:40001 -> .3 (no tunnel overhead, so the
       full MTU fits); a retransmitted SYN -> .2, no new connection
  udp: A:33333 -> .2; B:44444 -> .3; A:33333 again -> .2; A:33334 with UDP checksum 0 -> .2;
       B:44445 with TTL 1 -> .3 (sent as is: the director is the packet's destination, as in
       IPVS; no TTL check, no decrement)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

TS = [("NOP", None), ("NOP", None), ("Timestamp", (4242, 1717))]
DNS_Q = (b"\xa1\xb2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         b"\x03www\x07example\x03com\x00\x00\x01\x00\x01")

syn_a = client_tcp(40000, "S", seq=0xA0, ip_id=0x2201)
syn_b = client_tcp(40001, "S", seq=0xB0, ip_id=0x2202, client=CLIENT_B, ttl=128, tos=0x10)
ack_a = client_tcp(40000, "A", seq=0xA1, ack=0x501, ip_id=0x2203, opts=TS)
data_a = client_tcp(40000, "PA", seq=0xA1, ack=0x501, ip_id=0x2204, opts=TS,
                    data=payload(1000, 4))
full_b = client_tcp(40001, "PA", seq=0xB1, ack=0x601, ip_id=0x2205, client=CLIENT_B, ttl=128,
                    tos=0x10, data=payload(1460, 5))
resyn_a = client_tcp(40000, "S", seq=0xA0, ip_id=0x2206)
q1 = client_udp(33333, DNS_Q, ip_id=0x2207)
q2 = client_udp(44444, DNS_Q, ip_id=0x2208, client=CLIENT_B, ttl=3)
q3 = client_udp(33333, DNS_Q, ip_id=0x2209)
q4 = client_udp(33334, DNS_Q, ip_id=0x220A, chksum=0)
q5 = client_udp(44445, DNS_Q, ip_id=0x220B, client=CLIENT_B, ttl=1)

send0 = [syn_a, syn_b, ack_a, data_a, full_b, resyn_a, q1, q2, q3, q4, q5]
reals = [REAL1, REAL2, REAL1, REAL1, REAL2, REAL1, REAL1, REAL2, REAL1, REAL1, REAL2]
expect1 = [dr(f, REAL_MAC[r]) for f, r in zip(send0, reals)]
assert all(len(bytes(f)) >= 60 and len(bytes(f)) == 14 + len(ip_of(f)) for f in send0)
assert all(e[14:] == bytes(f)[14:] for e, f in zip(expect1, send0))
assert len(ip_of(full_b)) == 1500

write(send0, [], [], expect1, counters={
    "rx": 11,
    "tx": 11,
    "conns_created": 6,
    "tunnel_encapsulated": 0,
    "tunnel_fragments": 0,
    "frag_needed_sent": 0,
    "drop.ttl_exceeded": 0,
})
