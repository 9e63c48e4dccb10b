#!/usr/bin/python3
"""ICMP errors from the inside, addressed to a client and quoting a packet client:port ->
real:port of a connection (as it left lb on port 1). lb sends them to the client on port 0 the
way IPVS does: outer src = VIP, outer TTL - 1, quoted dst = VIP, quoted dport = the service
port, quoted IP checksum, quoted TCP/UDP checksum (where the quote holds it) and ICMP checksum
fixed.

  from router 10.10.0.254: frag needed quoting the first 548 bytes of a 1500-byte TCP segment
  from router 10.10.0.254: time exceeded quoting IP header + 8 bytes (no TCP checksum)
  from the real 10.10.0.2 itself: port unreachable quoting the whole UDP datagram
  quoting a connection lb does not have: dropped, icmp_unmatched
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

syn_opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (100, 0)), ("NOP", None),
            ("WScale", 7)]
DNS_Q = (b"\xa1\xb2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         b"\x03www\x07example\x03com\x00\x00\x01\x00\x01")


def syn(sport, seq, ip_id):
    return Ether(dst=P0_MAC, src=CLIENT_A_MAC) / \
        IP(src=CLIENT_A, dst=VIP, id=ip_id, flags="DF") / \
        TCP(sport=sport, dport=TCP_PORT, flags="S", seq=seq, window=64240, options=syn_opts)


def client_seg(dst, dport, sport, size, ttl):
    """A client's segment as it crossed the inside (dst = real:8080), or before NAT (VIP:80)."""
    body = bytes((i * 13 + 5) & 0xFF for i in range(size - 52))
    return IP(src=CLIENT_A, dst=dst, ttl=ttl, id=0x7171, flags="DF") / \
        TCP(sport=sport, dport=dport, flags="PA", seq=0x30000001, ack=0x40000001, window=502,
            options=[("NOP", None), ("NOP", None), ("Timestamp", (101, 7000))]) / Raw(body)


def client_dgram(dst, dport, ttl):
    return IP(src=CLIENT_A, dst=dst, ttl=ttl, id=0x7272) / UDP(sport=33333, dport=dport) / \
        Raw(DNS_Q)


def translated(err, new_quote):
    """What lb sends on port 0 for the inside error frame `err` (addressed to client A)."""
    ip = err[IP]
    icmp = err[ICMP]
    return Ether(dst=CLIENT_A_MAC, src=P0_MAC) / \
        IP(src=VIP, dst=ip.dst, ttl=ip.ttl - 1, id=ip.id, tos=ip.tos, flags=ip.flags) / \
        ICMP(type=icmp.type, code=icmp.code, nexthopmtu=icmp.nexthopmtu) / Raw(new_quote)


syn_a = syn(40000, 0x0A0A0A0A, 0x0801)   # -> 10.10.0.2
syn_b = syn(40001, 0x0B0B0B0B, 0x0802)   # -> 10.10.0.3
dns = Ether(dst=P0_MAC, src=CLIENT_A_MAC) / IP(src=CLIENT_A, dst=VIP, id=0x0803) / \
    UDP(sport=33333, dport=UDP_PORT) / Raw(DNS_Q)  # -> 10.10.0.2:5353

err_mtu = icmp_error(ROUTER_IN_MAC, P1_MAC, ROUTER_IN, CLIENT_A, 3, 4,
                     quote(client_seg(REAL1, TCP_REAL_PORT, 40000, 1500, 63), 548),
                     ttl=64, ip_id=0x0901, mtu=1400)
err_ttl = icmp_error(ROUTER_IN_MAC, P1_MAC, ROUTER_IN, CLIENT_A, 11, 0,
                     quote(client_seg(REAL2, TCP_REAL_PORT, 40001, 600, 1), 28),
                     ttl=64, ip_id=0x0902)
err_port = icmp_error(REAL1_MAC, P1_MAC, REAL1, CLIENT_A, 3, 3,
                      ip_bytes(client_dgram(REAL1, UDP_REAL_PORT, 63)), ttl=64, ip_id=0x0903)
err_unknown = icmp_error(ROUTER_IN_MAC, P1_MAC, ROUTER_IN, CLIENT_A, 3, 4,
                         quote(client_seg(REAL1, TCP_REAL_PORT, 45555, 1500, 63), 548),
                         ttl=64, ip_id=0x0904, mtu=1400)

send0 = [syn_a, syn_b, dns]
send1 = [err_mtu, err_ttl, err_port, err_unknown]
expect1 = [
    nat_in(syn_a, REAL1, TCP_REAL_PORT),
    nat_in(syn_b, REAL2, TCP_REAL_PORT),
    nat_in(dns, REAL1, UDP_REAL_PORT),
]
expect0 = [
    translated(err_mtu, quote(client_seg(VIP, TCP_PORT, 40000, 1500, 63), 548)),
    translated(err_ttl, quote(client_seg(VIP, TCP_PORT, 40001, 600, 1), 28)),
    translated(err_port, ip_bytes(client_dgram(VIP, UDP_PORT, 63))),
]

write(send0, send1, expect0, expect1, counters={
    "rx": 7,
    "tx": 6,
    "conns_created": 3,
    "icmp_errors_translated": 3,
    "drop.icmp_unmatched": 1,
})
