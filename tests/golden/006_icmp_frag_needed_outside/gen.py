#!/usr/bin/python3
"""ICMP errors from the outside (path-MTU discovery through NAT). A router on the outside,
198.51.100.254, sends "fragmentation needed, next-hop MTU 1400" to the VIP, quoting a NATed reply
VIP:80 -> client:port. lb sends it to the real of that connection on port 1: outer dst = real,
outer TTL - 1, quoted src = real, quoted sport = 8080, quoted IP checksum fixed, quoted TCP/UDP
checksum fixed where the quote holds it (computed over the whole original segment, so a
truncated quote keeps it consistent with the segment the real sent), ICMP checksum fixed.

  q_tcp_long:  576-byte error quoting the first 548 bytes of a 1500-byte segment (as Linux does)
  q_tcp_short: RFC 792's minimum, IP header + 8 bytes: no TCP checksum in the quote
  q_udp:       the whole UDP datagram (VIP:53 -> client)
  q_unknown:   quotes a connection lb does not have: dropped, icmp_unmatched
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

syn_opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (100, 0)), ("NOP", None),
            ("WScale", 7)]


def syn(sport, seq, ip_id):
    return Ether(dst=P0_MAC, src=CLIENT_A_MAC) / \
        IP(src=CLIENT_A, dst=VIP, id=ip_id, flags="DF") / \
        TCP(sport=sport, dport=TCP_PORT, flags="S", seq=seq, window=64240, options=syn_opts)


def reply_seg(src, sport, dport, size):
    """The segment the real sent back to client port `dport` as the router saw it (src is the
    VIP and sport 80 after NAT; the real's own address and port before)."""
    hdr_opts = [("NOP", None), ("NOP", None), ("Timestamp", (7000, 101))]
    body = bytes((i * 7 + 3) & 0xFF for i in range(size - 52))
    return IP(src=src, dst=CLIENT_A, ttl=62, id=0x6161, flags="DF") / \
        TCP(sport=sport, dport=dport, flags="PA", seq=0x10000001, ack=0x20000001, window=509,
            options=hdr_opts) / Raw(body)


def reply_dgram(src, sport, dport):
    return IP(src=src, dst=CLIENT_A, ttl=62, id=0x6262) / UDP(sport=sport, dport=dport) / \
        Raw(bytes.fromhex("a1b2818000010001000000000377777707") + b"example" +
            bytes.fromhex("03636f6d0000010001c00c000100010000012c00045db8d822"))


def frag_needed(quoted, ip_id, mtu=1400):
    return icmp_error(ROUTER_OUT_MAC, P0_MAC, ROUTER_OUT, VIP, 3, 4, quoted, ttl=255,
                      ip_id=ip_id, mtu=mtu)


def translated(err, real, new_quote):
    """What lb sends on port 1 for the error frame `err`."""
    ip = err[IP]
    icmp = err[ICMP]
    out = Ether(dst=REAL_MAC[real], src=P1_MAC) / \
        IP(src=ip.src, dst=real, ttl=ip.ttl - 1, id=ip.id, tos=ip.tos, flags=ip.flags) / \
        ICMP(type=icmp.type, code=icmp.code, nexthopmtu=icmp.nexthopmtu) / Raw(new_quote)
    return out


syn_a = syn(40000, 0x0A0A0A0A, 0x0601)   # -> 10.10.0.2
syn_b = syn(40001, 0x0B0B0B0B, 0x0602)   # -> 10.10.0.3
dns = Ether(dst=P0_MAC, src=CLIENT_A_MAC) / IP(src=CLIENT_A, dst=VIP, id=0x0603) / \
    UDP(sport=33333, dport=UDP_PORT) / Raw(b"\xa1\xb2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                                           b"\x03www\x07example\x03com\x00\x00\x01\x00\x01")

q_tcp_long = quote(reply_seg(VIP, TCP_PORT, 40000, 1500), 548)
q_tcp_short = quote(reply_seg(VIP, TCP_PORT, 40001, 1500), 28)
q_udp = ip_bytes(reply_dgram(VIP, UDP_PORT, 33333))
q_unknown = quote(reply_seg(VIP, TCP_PORT, 49999, 1500), 548)

err_long = frag_needed(q_tcp_long, 0x0701)
err_short = frag_needed(q_tcp_short, 0x0702)
err_udp = frag_needed(q_udp, 0x0703, mtu=1280)
err_unknown = frag_needed(q_unknown, 0x0704)

send0 = [syn_a, syn_b, dns, err_long, err_short, err_udp, err_unknown]
expect1 = [
    nat_in(syn_a, REAL1, TCP_REAL_PORT),
    nat_in(syn_b, REAL2, TCP_REAL_PORT),
    nat_in(dns, REAL1, UDP_REAL_PORT),
    translated(err_long, REAL1, quote(reply_seg(REAL1, TCP_REAL_PORT, 40000, 1500), 548)),
    translated(err_short, REAL2, quote(reply_seg(REAL2, TCP_REAL_PORT, 40001, 1500), 28)),
    translated(err_udp, REAL1, ip_bytes(reply_dgram(REAL1, UDP_REAL_PORT, 33333))),
]
assert len(bytes(err_long)) == 14 + 576

write(send0, [], [], expect1, counters={
    "rx": 7,
    "tx": 6,
    "conns_created": 3,
    "icmp_errors_translated": 3,
    "drop.icmp_unmatched": 1,
})
