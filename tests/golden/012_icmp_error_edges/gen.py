#!/usr/bin/python3
"""ICMP error translation, corner cases of the quote:

  from the outside (to the VIP, quoting VIP:53 -> client):
    - a UDP datagram with checksum 0: the quoted checksum stays 0
    - only IP header + 8 bytes of a longer datagram: the quoted UDP checksum is there (it is in
      the first 8 bytes) and is updated, though the data it covers is not
    - time exceeded (type 11) instead of destination unreachable
  from the inside (to the client, quoting client -> real:8080):
    - a quoted IP header with options (IHL 6): the quoted ports sit after them
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

DNS_Q = (b"\xa1\xb2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         b"\x03www\x07example\x03com\x00\x00\x01\x00\x01")
DNS_A = DNS_Q[:2] + b"\x81\x80" + DNS_Q[4:6] + b"\x00\x01" + DNS_Q[8:] + \
    bytes.fromhex("c00c000100010000012c00045db8d822")


def query(client, cmac, sport, ip_id, chksum=None):
    u = UDP(sport=sport, dport=UDP_PORT)
    if chksum is not None:
        u.chksum = chksum
    return Ether(dst=P0_MAC, src=cmac) / IP(src=client, dst=VIP, id=ip_id) / u / Raw(DNS_Q)


def answer(src, sport, client, dport, chksum=None):
    """The answer as the outside router saw it (src VIP:53) or as the real sent it."""
    u = UDP(sport=sport, dport=dport)
    if chksum is not None:
        u.chksum = chksum
    return IP(src=src, dst=client, id=0xD0D0, ttl=63) / u / Raw(DNS_A)


def out_err(typ, code, quoted, ip_id, mtu=0):
    return icmp_error(ROUTER_OUT_MAC, P0_MAC, ROUTER_OUT, VIP, typ, code, quoted, ttl=250,
                      ip_id=ip_id, mtu=mtu)


def to_real(err, real, new_quote):
    ip, icmp = err[IP], err[ICMP]
    return Ether(dst=REAL_MAC[real], src=P1_MAC) / \
        IP(src=ip.src, dst=real, ttl=ip.ttl - 1, id=ip.id) / \
        ICMP(type=icmp.type, code=icmp.code, nexthopmtu=icmp.nexthopmtu) / Raw(new_quote)


def to_client(err, new_quote):
    ip, icmp = err[IP], err[ICMP]
    return Ether(dst=CLIENT_A_MAC, src=P0_MAC) / \
        IP(src=VIP, dst=ip.dst, ttl=ip.ttl - 1, id=ip.id) / \
        ICMP(type=icmp.type, code=icmp.code, nexthopmtu=icmp.nexthopmtu) / Raw(new_quote)


def client_seg(dst, dport):
    ip = IP(src=CLIENT_A, dst=dst, ttl=63, id=0x7373, flags="DF", options=[Raw(b"\x01\x01\x01\x00")])
    return ip / TCP(sport=40000, dport=dport, flags="PA", seq=77, ack=88, window=502) / \
        Raw(bytes(range(200)))


q_a = query(CLIENT_A, CLIENT_A_MAC, 33333, 0x0A01, chksum=0)   # -> .2:5353, no checksum
q_b = query(CLIENT_B, CLIENT_B_MAC, 44444, 0x0A02)             # -> .3:5353
q_c = query(CLIENT_B, CLIENT_B_MAC, 44445, 0x0A03)             # -> .2:5353
syn = Ether(dst=P0_MAC, src=CLIENT_A_MAC) / IP(src=CLIENT_A, dst=VIP, id=0x0A04, flags="DF") / \
    TCP(sport=40000, dport=TCP_PORT, flags="S", seq=76, window=64240)  # -> .2:8080

e_zero = out_err(3, 4, ip_bytes(answer(VIP, UDP_PORT, CLIENT_A, 33333, chksum=0)), 0x0B01,
                 mtu=1400)
e_short = out_err(3, 4, quote(answer(VIP, UDP_PORT, CLIENT_B, 44444), 28), 0x0B02, mtu=1400)
e_ttl = out_err(11, 0, ip_bytes(answer(VIP, UDP_PORT, CLIENT_B, 44445)), 0x0B03)
e_opts = icmp_error(ROUTER_IN_MAC, P1_MAC, ROUTER_IN, CLIENT_A, 3, 4,
                    quote(client_seg(REAL1, TCP_REAL_PORT), 24 + 20 + 8), ttl=64, ip_id=0x0B04,
                    mtu=1400)

send0 = [pad(f) for f in (q_a, q_b, q_c, syn)] + [e_zero, e_short, e_ttl]
send1 = [e_opts]
expect1 = [
    nat_in(send0[0], REAL1, UDP_REAL_PORT),
    nat_in(send0[1], REAL2, UDP_REAL_PORT),
    nat_in(send0[2], REAL1, UDP_REAL_PORT),
    nat_in(send0[3], REAL1, TCP_REAL_PORT),
    to_real(e_zero, REAL1, ip_bytes(answer(REAL1, UDP_REAL_PORT, CLIENT_A, 33333, chksum=0))),
    to_real(e_short, REAL2, quote(answer(REAL2, UDP_REAL_PORT, CLIENT_B, 44444), 28)),
    to_real(e_ttl, REAL1, ip_bytes(answer(REAL1, UDP_REAL_PORT, CLIENT_B, 44445))),
]
expect0 = [to_client(e_opts, quote(client_seg(VIP, TCP_PORT), 24 + 20 + 8))]
assert expect1[4][ICMP].payload.load[26:28] == b"\x00\x00"  # quoted UDP checksum stays 0

write(send0, send1, expect0, expect1, counters={
    "rx": 8,
    "tx": 8,
    "conns_created": 4,
    "icmp_errors_translated": 4,
})
