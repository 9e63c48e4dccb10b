#!/usr/bin/python3
"""NAT for UDP: every datagram to VIP:53 from a new client ip:port makes a connection (rr over
10.10.0.2:5353 and 10.10.0.3:5353, a cursor of its own, apart from tcp/80's); the reals' replies
go back from VIP:53. A zero UDP checksum (none) stays zero in both directions. Two datagrams are
built so that their rewritten checksum computes to zero, which UDP transmits as 0xffff (RFC 768):
an incremental update must not emit 0x0000 there (that would switch the checksum off)."""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403


def csum_sum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def udp_sum(src, dst, sport, dport, payload):
    """Ones'-complement sum of pseudo header + UDP header (checksum 0) + payload."""
    import socket
    ulen = 8 + len(payload)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, ulen)
    hdr = struct.pack("!HHHH", sport, dport, ulen, 0)
    return csum_sum(pseudo + hdr + payload)


def tail_for_zero(src, dst, sport, dport, base):
    """Two bytes appended to `base` (even length) that make the checksum of the datagram
    src:sport -> dst:dport compute to zero (sent as 0xffff)."""
    assert len(base) % 2 == 0
    s = udp_sum(src, dst, sport, dport, base + b"\x00\x00")
    w = 0xFFFF - s
    return base + struct.pack("!H", w)


ids = iter(range(0x5000, 0x6000))


def c2v(client, cmac, sport, payload, chksum=None):
    u = UDP(sport=sport, dport=UDP_PORT)
    if chksum is not None:
        u.chksum = chksum
    return pad(Ether(dst=P0_MAC, src=cmac) / IP(src=client, dst=VIP, id=next(ids), ttl=64) /
               u / Raw(payload))


def r2c(real, client, dport, payload, chksum=None):
    u = UDP(sport=UDP_REAL_PORT, dport=dport)
    if chksum is not None:
        u.chksum = chksum
    return pad(Ether(dst=P1_MAC, src=REAL_MAC[real]) / IP(src=real, dst=client, id=next(ids),
                                                          ttl=64) / u / Raw(payload))


q1 = bytes.fromhex("a1b20100000100000000000003777777076578616d706c6503636f6d0000010001")
q2 = bytes.fromhex("c3d40100000100000000000003777777076578616d706c65036e65740000010001")
q_odd = b"\x01\x02\x03"  # short and odd: padded frame, odd UDP length
# Rewritten to 10.10.0.3:5353 its checksum computes to zero.
q_edge = tail_for_zero(CLIENT_B, REAL2, 44445, UDP_REAL_PORT, b"edge-in!")
a1 = q1[:2] + bytes.fromhex("8180") + q1[4:] + bytes.fromhex("c00c000100010000012c00045db8d822")
a2 = q2[:2] + bytes.fromhex("8180") + q2[4:] + bytes.fromhex("c00c000100010000012c00045db8d823")
# From VIP:53 to B:44445 its checksum computes to zero.
a_edge = tail_for_zero(VIP, CLIENT_B, UDP_PORT, 44445, b"edge-out")

send0 = [
    c2v(CLIENT_A, CLIENT_A_MAC, 33333, q1),             # new -> .2
    c2v(CLIENT_A, CLIENT_A_MAC, 33334, q2),             # new -> .3
    c2v(CLIENT_A, CLIENT_A_MAC, 33333, q_odd),          # same connection -> .2
    c2v(CLIENT_B, CLIENT_B_MAC, 44444, q1, chksum=0),   # new -> .2, no checksum
    c2v(CLIENT_B, CLIENT_B_MAC, 44445, q_edge),         # new -> .3, checksum becomes 0xffff
]
send1 = [
    r2c(REAL1, CLIENT_A, 33333, a1),
    r2c(REAL2, CLIENT_A, 33334, a2),
    r2c(REAL1, CLIENT_B, 44444, a1, chksum=0),
    r2c(REAL2, CLIENT_B, 44445, a_edge),
]
reals = [REAL1, REAL2, REAL1, REAL1, REAL2]
expect1 = [nat_in(f, r, UDP_REAL_PORT) for f, r in zip(send0, reals)]
expect0 = [nat_out(f, VIP, UDP_PORT) for f in send1]
assert expect1[3][UDP].chksum == 0 and expect0[2][UDP].chksum == 0
assert expect1[4][UDP].chksum == 0xFFFF and expect0[3][UDP].chksum == 0xFFFF

write(send0, send1, expect0, expect1, counters={
    "rx": 9,
    "tx": 9,
    "conns_created": 4,
})
