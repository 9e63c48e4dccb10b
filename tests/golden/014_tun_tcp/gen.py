#!/usr/bin/python3
"""LVS-TUN, TCP: tcp/80 rr -> 10.10.0.2, 10.10.0.3, both forward = "tun" (the second with
port = 80 given explicitly, which is allowed because it equals the service port). Every segment
of a connection leaves on port 1 IP-in-IP to that connection's real:

  Ether(real's MAC <- P1_MAC, IPv4) /
  IPv4(IHL 5, TOS = inner TOS, total = inner + 20, ID = inner ID, DF as the inner (all DF here),
       TTL 64, protocol 4, src 10.10.0.1 (port 1's address), dst = real) /
  the client's IP packet exactly as received (TTL, addresses, ports, checksums untouched;
  the Ethernet padding of a short frame left out)

Checked: two SYNs scheduled rr; the handshake ACK (a 60-byte padded frame: inner 40 bytes,
outer 60) and a 1000-byte data segment follow their connection; TOS 0x12 (DSCP + ECN) and
TTL 128 are copied / kept; a retransmitted SYN creates nothing; a third connection goes to
10.10.0.2 again; a SYN arriving with TTL 1 is tunneled too (the director is its destination,
as in IPVS: no TTL check, no decrement; the NAT path drops it, ttl_exceeded). The first frame's
outer header is also compared with literal bytes."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

syn_a = client_tcp(40000, "S", seq=0x11111111, ip_id=0x1401)
syn_b = client_tcp(50000, "S", seq=0x22222222, ip_id=0x1402, client=CLIENT_B, ttl=128,
                   tos=0x12)
ack_a = client_tcp(40000, "A", seq=0x11111112, ack=0x55555556, ip_id=0x1403)
data_a = client_tcp(40000, "PA", seq=0x11111112, ack=0x55555556, ip_id=0x1404,
                    data=payload(1000, 1), opts=[("NOP", None), ("NOP", None),
                                                 ("Timestamp", (1001, 77))])
data_b = client_tcp(50000, "PA", seq=0x22222223, ack=0x66666667, ip_id=0x1405, client=CLIENT_B,
                    ttl=128, tos=0x12, data=payload(300, 2))
resyn_a = client_tcp(40000, "S", seq=0x11111111, ip_id=0x1406)
syn_a2 = client_tcp(40001, "S", seq=0x33333333, ip_id=0x1407)
syn_ttl1 = client_tcp(40002, "S", seq=0x44444444, ip_id=0x1408, ttl=1)

send0 = [syn_a, syn_b, ack_a, data_a, data_b, resyn_a, syn_a2, syn_ttl1]
reals = [REAL1, REAL2, REAL1, REAL1, REAL2, REAL1, REAL1, REAL2]
expect1 = [tun(f, r, REAL_MAC[r], P1_IP) for f, r in zip(send0, reals)]

assert len(bytes(ack_a)) == 60 and len(ip_of(ack_a)) == 40 and len(expect1[2]) == 14 + 60
# Outer header of the first frame, by hand: total 80, ID 0x1401, DF, TTL 64, proto 4,
# checksum ~(4500+0050+1401+4000+4004+0a0a+0001+0a0a+0002) = 0x1293.
assert expect1[0][:34] == bytes.fromhex(
    "020000000102" "020000000101" "0800"
    "4500 0050 1401 4000 4004 1293 0a0a0001 0a0a0002".replace(" ", ""))
assert expect1[0][34:] == bytes(syn_a)[14:]
assert expect1[4][15] == 0x12  # outer TOS = inner TOS

write(send0, [], [], expect1, counters={
    "rx": 8,
    "tx": 8,
    "conns_created": 4,
    "tunnel_encapsulated": 8,
    "tunnel_fragments": 0,
    "frag_needed_sent": 0,
    "drop.no_connection": 0,
    "drop.ttl_exceeded": 0,
})
