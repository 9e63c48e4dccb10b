#!/usr/bin/python3
"""NAT corner cases, both directions:

  - IPv4 options (IHL 6) and a TOS/ECN byte: kept as they are; the TCP header is found past them
  - TTL 2 forwarded as TTL 1; TTL 0 inbound and TTL 1 outbound: dropped (ttl_exceeded)
  - a full-size 1514-byte frame, forwarded whole
  - checksums whose new value is 0x0000: a TCP checksum (inbound and outbound) and an IPv4
    header checksum (inbound and outbound), tuned through payload bytes and the IP id. A full
    recompute gives 0x0000 there; an incremental update that gets ones'-complement zero wrong
    gives 0xffff (RFC 1624, section 3)
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403
from golden import _sum16  # noqa: E402

IP_OPTS = b"\x01\x01\x01\x00"  # NOP NOP NOP EOL: IHL 6


def tcp_sum(src, dst, seg):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(seg))
    return _sum16(pseudo + seg)


def tail_for_zero_tcp(pkt_after_nat, base):
    """`base` + 2 bytes that make the TCP checksum of the rewritten packet compute to 0x0000."""
    ip = pkt_after_nat[IP]
    p = ip.copy()
    p[TCP].remove_payload()
    p[TCP].chksum = 0
    hdr = bytes(p[TCP])
    seg = hdr + base + b"\x00\x00"
    assert len(hdr) % 2 == 0 and len(base) % 2 == 0
    s = tcp_sum(ip.src, ip.dst, seg)
    return base + struct.pack("!H", (0xFFFF - s) or 0xFFFF)


def id_for_zero_ip(hdr_after_nat):
    """An IP id making the (rewritten) header's checksum compute to 0x0000."""
    h = bytearray(bytes(hdr_after_nat)[:20])
    h[4:6] = b"\x00\x00"
    h[10:12] = b"\x00\x00"
    return 0xFFFF - _sum16(bytes(h))


def c_syn(sport, seq, ip_id, ttl=64, tos=0, opts=b"", flags="S", payload=b""):
    ip = IP(src=CLIENT_A, dst=VIP, ttl=ttl, id=ip_id, tos=tos, flags="DF")
    if opts:
        ip.options = [Raw(opts)]
    f = Ether(dst=P0_MAC, src=CLIENT_A_MAC) / ip / \
        TCP(sport=sport, dport=TCP_PORT, flags=flags, seq=seq, ack=0 if flags == "S" else 1,
            window=64240, options=[("MSS", 1460)] if flags == "S" else [])
    return f / Raw(payload) if payload else f


def r_seg(real, dport, ip_id, ttl=64, opts=b"", flags="SA", payload=b"", seq=9000, ack=1):
    ip = IP(src=real, dst=CLIENT_A, ttl=ttl, id=ip_id, flags="DF")
    if opts:
        ip.options = [Raw(opts)]
    f = Ether(dst=P1_MAC, src=REAL_MAC[real]) / ip / \
        TCP(sport=TCP_REAL_PORT, dport=dport, flags=flags, seq=seq, ack=ack, window=65160)
    return f / Raw(payload) if payload else f


# Inbound.
syn_opts = c_syn(46000, 100, 0xB001, tos=0x12, opts=IP_OPTS)        # -> .2, IHL 6, ECT(0)
syn_ttl2 = c_syn(46001, 200, 0xB002, ttl=2)                         # -> .3, leaves with TTL 1
# -> .2, an IP id chosen so that the rewritten header's checksum is 0x0000
probe = nat_in(c_syn(46002, 300, 0), REAL1, TCP_REAL_PORT)
syn_ipz = c_syn(46002, 300, id_for_zero_ip(probe[IP]))
# Data on 46000 whose rewritten TCP checksum is 0x0000
probe = nat_in(c_syn(46000, 101, 0xB003, flags="PA", payload=b"zero-tcp-csum\x00\x00\x00"),
               REAL1, TCP_REAL_PORT)
data_z = c_syn(46000, 101, 0xB003, flags="PA",
               payload=tail_for_zero_tcp(probe, b"zero-tcp-csum\x00"))
big = c_syn(46000, 117, 0xB004, flags="A",
            payload=bytes((i * 31 + 7) & 0xFF for i in range(1460)))  # 1514-byte frame
ttl0 = c_syn(46001, 201, 0xB005, ttl=0, flags="A")                  # ttl_exceeded

# Outbound.
sa_opts = r_seg(REAL1, 46000, 0xC001, opts=IP_OPTS)
probe = nat_out(r_seg(REAL1, 46000, 0xC002, flags="PA", payload=b"zero-out\x00\x00"),
                VIP, TCP_PORT)
data_out_z = r_seg(REAL1, 46000, 0xC002, flags="PA",
                   payload=tail_for_zero_tcp(probe, b"zero-out"))
probe = nat_out(r_seg(REAL1, 46002, 0), VIP, TCP_PORT)
sa_ipz = r_seg(REAL1, 46002, id_for_zero_ip(probe[IP]))
sa_ttl1 = r_seg(REAL2, 46001, 0xC003, ttl=1)                        # ttl_exceeded

# As a NIC delivers them: short frames padded to 60 bytes (the padding must stay).
send0 = [pad(f) for f in (syn_opts, syn_ttl2, syn_ipz, data_z, big, ttl0)]
send1 = [pad(f) for f in (sa_opts, data_out_z, sa_ipz, sa_ttl1)]
syn_opts, syn_ttl2, syn_ipz, data_z, big, ttl0 = send0
expect1 = [
    nat_in(syn_opts, REAL1, TCP_REAL_PORT),
    nat_in(syn_ttl2, REAL2, TCP_REAL_PORT),
    nat_in(syn_ipz, REAL1, TCP_REAL_PORT),
    nat_in(data_z, REAL1, TCP_REAL_PORT),
    nat_in(big, REAL1, TCP_REAL_PORT),
]
expect0 = [nat_out(f, VIP, TCP_PORT) for f in send1[:3]]

# The corner cases are what they claim to be.
assert expect1[0][IP].ihl == 6 and len(bytes(expect1[4])) == 1514
assert expect1[2][IP].chksum == 0 and expect0[2][IP].chksum == 0
assert expect1[3][TCP].chksum == 0 and expect0[1][TCP].chksum == 0
assert expect1[1][IP].ttl == 1

write(send0, send1, expect0, expect1, counters={
    "rx": 10,
    "tx": 8,
    "conns_created": 3,
    "drop.ttl_exceeded": 2,
})
