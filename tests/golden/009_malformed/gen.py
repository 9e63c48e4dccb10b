#!/usr/bin/python3
"""Broken frames: each is dropped and counted, nothing is sent, and lb goes on working (the
last frame, a good SYN, is forwarded as usual). Every broken IPv4 header carries a correct
header checksum unless the checksum is the defect under test.

  malformed: Ethernet header cut short; IPv4 header cut short; IHL 4; IHL 15 past the total
             length; bad header checksum; total length past the frame's end; total length
             shorter than the header; TCP header cut short; UDP header cut short; ARP cut short
  fragment:  first fragment (MF, offset 0) and a later fragment (offset 1480) to VIP:80
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

ETH = bytes(Ether(dst=P0_MAC, src=CLIENT_A_MAC, type=0x0800))


def ipv4_hdr(proto, total_len, ihl=5, ip_id=0x9000, frag=0, ttl=64, src=CLIENT_A, dst=VIP,
             chksum=None, opts=b""):
    import socket
    h = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total_len, ip_id, frag, ttl, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst)) + opts
    if chksum is None:
        s = 0
        words = h[:ihl * 4] if ihl >= 5 else h[:20]
        for i in range(0, len(words), 2):
            s += (words[i] << 8) | words[i + 1]
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        chksum = (~s) & 0xFFFF
    return h[:10] + struct.pack("!H", chksum) + h[12:]


def good_syn(sport):
    return Ether(dst=P0_MAC, src=CLIENT_A_MAC) / IP(src=CLIENT_A, dst=VIP, id=0x9999) / \
        TCP(sport=sport, dport=TCP_PORT, flags="S", seq=7, window=1024)


syn_bytes = bytes(good_syn(43001)[IP])          # a whole, valid 40-byte IPv4 SYN
tcp_bytes = syn_bytes[20:]


def raw_frame(data, size=ETH_MIN):
    data = ETH + data
    return Raw(data + b"\x00" * max(0, size - len(data)))


malformed = [
    Raw(ETH[:10]),                                              # Ethernet header cut short
    Raw(ETH + syn_bytes[:10]),                                  # IPv4 header cut short
    raw_frame(ipv4_hdr(6, 40, ihl=4) + tcp_bytes),              # IHL 4
    raw_frame(ipv4_hdr(6, 40, ihl=15, opts=b"\x01" * 40)[:20] + tcp_bytes),  # IHL 15 > len
    raw_frame(ipv4_hdr(6, 40, chksum=0x1234) + tcp_bytes),      # bad header checksum
    raw_frame(ipv4_hdr(6, 200) + tcp_bytes),                    # total length past the end
    raw_frame(ipv4_hdr(6, 16) + tcp_bytes),                     # total length < header
    raw_frame(ipv4_hdr(6, 30) + tcp_bytes[:10]),                # TCP header cut short
    raw_frame(ipv4_hdr(17, 24) + struct.pack("!HH", 42000, UDP_PORT)),  # UDP header cut short
    Raw(bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=CLIENT_A_MAC) /
              ARP(op=1, hwsrc=CLIENT_A_MAC, psrc=CLIENT_A, pdst=P0_IP))[:34]),  # ARP cut short
]
# The IHL-15 frame: a 60-byte header cannot fit in a 40-byte packet (and overruns the frame).
# ICMP fragments (TCP and UDP ones are forwarded: see 030_fragments).
fragments = [
    raw_frame(ipv4_hdr(1, 40, frag=0x2000) + tcp_bytes),                 # MF, offset 0
    raw_frame(ipv4_hdr(1, 40, frag=185) + tcp_bytes),                    # offset 1480
]
good = good_syn(43002)

send0 = malformed + fragments + [good]
expect1 = [nat_in(good, REAL1, TCP_REAL_PORT)]

write(send0, [], [], expect1, counters={
    "rx": len(send0),
    "tx": 1,
    "drop.malformed": len(malformed),
    "drop.fragment": len(fragments),
    "drop.not_for_us": 0,
    "drop.unsupported": 0,
    "drop.no_connection": 0,
    "drop.no_service": 0,
    "drop.ttl_exceeded": 0,
    "conns_created": 1,
})
