#!/usr/bin/python3
"""LVS-NAT, fragmentation: a packet without DF over the egress MTU is rewritten and then sent
as fragments, as the kernel's ip_fragment cuts them after IPVS's NAT: (MTU - 20) rounded down
to 8 bytes of payload per fragment, the rewritten header on each with its own total length,
offset and checksum, MF on all but the last, ID and TTL (already decremented) of the packet.
The transport checksum, rewritten before the split, is the whole datagram's. Port 0 (outside)
has mtu = 1280 (1256 bytes a fragment), port 1 (inside) mtu = 1400 (1376).

  dns_big   A:33333 udp, 1500 bytes, no DF -> .2:5353 as 1376 + 104
  dns_fit   A:33333 udp, 1400 bytes, no DF -> one packet (exactly the MTU)
  syn_b     B:40000 -> .2:8080 (no DF)
  seg_b     B:40000, 1500 bytes, no DF -> .2:8080 as 1376 + 104
  (port 1, the replies)
  rep_udp   .2:5353 -> A:33333, 1500 bytes, no DF -> from VIP:53 as 1256 + 224
  rep_tcp   .2:8080 -> B:40000, 1280 bytes, no DF -> one packet
  nat_fragments counts the fragments; the originals count as consumed.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

MTU0, MTU1 = 1280, 1400

dns_big = client_udp(33333, payload(1500 - 28, 1), ip_id=0x3101)
dns_fit = client_udp(33333, payload(1400 - 28, 2), ip_id=0x3102)
syn_b = client_tcp(40000, "S", seq=1000, ip_id=0x3103, client=CLIENT_B, df=False)
seg_b = client_tcp(40000, "PA", seq=1001, ack=5001, ip_id=0x3104, client=CLIENT_B, df=False,
                   data=payload(1500 - 40, 4))
rep_udp = pad(Ether(dst=P1_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=CLIENT_A, id=0x3201) /
              UDP(sport=UDP_REAL_PORT, dport=33333) / Raw(payload(1500 - 28, 5)))
rep_tcp = pad(Ether(dst=P1_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=CLIENT_B, id=0x3202) /
              TCP(sport=TCP_REAL_PORT, dport=40000, flags="A", seq=5001, ack=2461,
                  window=509) / Raw(payload(1280 - 40, 6)))

send0 = [dns_big, dns_fit, syn_b, seg_b]
send1 = [rep_udp, rep_tcp]
f_dns = ip_fragments(nat_in(dns_big, REAL1, UDP_REAL_PORT), MTU1)
f_seg = ip_fragments(nat_in(seg_b, REAL1, TCP_REAL_PORT), MTU1)
f_rep = ip_fragments(nat_out(rep_udp, VIP, UDP_PORT), MTU0)
expect1 = f_dns + [nat_in(dns_fit, REAL1, UDP_REAL_PORT), nat_in(syn_b, REAL1, TCP_REAL_PORT)] + \
    f_seg
expect0 = f_rep + [nat_out(rep_tcp, VIP, TCP_PORT)]

# The fragments, spelled out: (total length, flags+offset field).
hdr = [(int.from_bytes(f[16:18], "big"), int.from_bytes(f[20:22], "big"))
       for f in f_dns + f_seg + f_rep]
assert hdr == [(1396, 0x2000), (124, 172), (1396, 0x2000), (124, 172), (1276, 0x2000),
               (244, 157)], hdr
assert all(f[22] == 63 for f in f_dns + f_seg + f_rep)       # TTL decremented once
assert len(bytes(expect1[2])) == 14 + MTU1 and len(bytes(expect0[-1])) == 14 + MTU0

write(send0, send1, expect0, expect1, counters={
    "rx": 6,
    "tx": 2 + 1 + 1 + 2 + 2 + 1,
    "conns_created": 2,
    "nat_fragments": 6,
    "frag_needed_sent": 0,
    "consumed": 3,
})
