#!/usr/bin/python3
"""LVS-NAT, path MTU (IPVS's ip_vs_nat_xmit; the kernel's ip_forward for the replies): both
ports have mtu = 1400. A DF packet over the egress MTU is not sent; lb answers its sender with
ICMP fragmentation-needed, next-hop MTU 1400, quoting the packet as it arrived:

  Ether(sender's MAC, or its gateway's, <- the port's MAC) /
  IPv4(IHL 5, TOS 0xc0, ID 0, no flags, TTL 64, protocol 1, src, dst = the sender) /
  ICMP(type 3, code 4, unused 0, next-hop MTU 1400) / the first 548 bytes of the packet

  src: for a client's packet the VIP (the address it wrote to, as IPVS's icmp_send picks for a
  local destination); for a real's reply lb's inside address (the reply is not for lb).

  syn_a     A:40000 -> .2:8080
  fits      1400 bytes, DF: forwarded whole (exactly the MTU)
  over      1401 bytes, DF, TOS 0x28: frag-needed to A (the ICMP's TOS is still 0xc0)
  syn_r     203.0.113.77:51000, beyond the outside router -> .3:8080
  over_r    1500 bytes, DF: frag-needed to 203.0.113.77 via the router's MAC
  dns       A:33333 udp, small, DF -> .2:5353
  dns_big   1401 bytes, DF: frag-needed quoting the UDP datagram
  after     A:40000 small segment: the connection is still there
  (port 1, the replies)
  rep_fits  .2:8080 -> A:40000, 1400 bytes, DF: forwarded from VIP:80
  rep_big   .2:8080 -> A:40000, 1401 bytes, DF: frag-needed to .2 from 10.10.0.1, on port 1
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


def reply(size, ip_id):
    return pad(Ether(dst=P1_MAC, src=REAL1_MAC) /
               IP(src=REAL1, dst=CLIENT_A, id=ip_id, flags="DF", ttl=64) /
               TCP(sport=TCP_REAL_PORT, dport=40000, flags="A", seq=5001, ack=2341,
                   window=509) / Raw(payload(size - 40, ip_id & 0xFF)))


syn_a = client_tcp(40000, "S", seq=1000, ip_id=0x3001)
fits = seg(40000, 1400, 0x3002)
over = seg(40000, 1401, 0x3003, tos=0x28)
syn_r = client_tcp(51000, "S", seq=7000, ip_id=0x3004, client=REMOTE, ttl=57)
over_r = seg(51000, 1500, 0x3005, client=REMOTE)
dns = client_udp(33333, b"small query", ip_id=0x3006, df=True)
dns_big = client_udp(33333, payload(1373, 9), ip_id=0x3007, df=True)
after = seg(40000, 100, 0x3008, seq=2341)
rep_fits = reply(1400, 0x3101)
rep_big = reply(1401, 0x3102)

send0 = [syn_a, fits, over, syn_r, over_r, dns, dns_big, after]
send1 = [rep_fits, rep_big]
expect1 = [
    nat_in(syn_a, REAL1, TCP_REAL_PORT),
    nat_in(fits, REAL1, TCP_REAL_PORT),
    nat_in(syn_r, REAL2, TCP_REAL_PORT),
    nat_in(dns, REAL1, UDP_REAL_PORT),
    nat_in(after, REAL1, TCP_REAL_PORT),
    frag_needed_reply(rep_big, MTU, REAL1_MAC, eth_src=P1_MAC, overhead=0, src=P1_IP),
]
expect0 = [
    frag_needed_reply(over, MTU, CLIENT_A_MAC, overhead=0),
    frag_needed_reply(over_r, MTU, ROUTER_OUT_MAC, overhead=0),
    frag_needed_reply(dns_big, MTU, CLIENT_A_MAC, overhead=0),
    nat_out(rep_fits, VIP, TCP_PORT),
]

assert len(bytes(expect1[1])) == 14 + MTU and len(ip_of(over)) == MTU + 1
assert len(ip_of(over_r)) == 1500 and len(ip_of(dns_big)) == MTU + 1
assert len(ip_of(rep_big)) == MTU + 1 and len(bytes(expect0[-1])) == 14 + MTU
for e in expect0[:3] + expect1[-1:]:
    assert len(e) == 14 + 576                                  # 20 + 8 + 548
    assert e[14 + 1] == 0xC0 and e[14 + 20 + 6:14 + 20 + 8] == MTU.to_bytes(2, "big")
assert expect1[-1][14 + 12:14 + 16] == bytes([10, 10, 0, 1])   # from the inside address
assert expect0[0][14 + 12:14 + 16] == bytes([198, 51, 100, 10])  # from the VIP

write(send0, send1, expect0, expect1, counters={
    "rx": 10,
    "tx": 10,
    "conns_created": 3,
    "frag_needed_sent": 4,
    "nat_fragments": 0,
    "drop.too_big": 0,
})
