#!/usr/bin/python3
"""Frames lb must drop without sending anything, each counted under its reason:

  not_for_us:    a frame to another unicast MAC; IPv4 to a multicast MAC; IPv4 to the broadcast
                 MAC; TCP to the director's own address (198.51.100.1:22, no service there)
  no_service:    TCP to VIP:443; UDP to VIP:80 (only tcp/80 is a service)
  no_connection: TCP SYN and UDP to 203.0.113.5 (not ours, not a VIP: lb is no open router);
                 a TCP ACK to VIP:80 with no connection; a real's reply with no connection
  unsupported:   IPv6 to our MAC; a VLAN-tagged IPv4 SYN to the VIP
  ttl_exceeded:  a SYN to VIP:80 with TTL 1
  arp_ignored:   who-has for an address that is not ours
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

ids = iter(range(0x8000, 0x9000))


def tcp(dst, dport, flags="S", eth_dst=P0_MAC, ttl=64, src=CLIENT_A, sport=42000,
        src_mac=CLIENT_A_MAC):
    return pad(Ether(dst=eth_dst, src=src_mac) / IP(src=src, dst=dst, ttl=ttl, id=next(ids)) /
               TCP(sport=sport, dport=dport, flags=flags, seq=1, ack=0 if flags == "S" else 1))


def udp(dst, dport, eth_dst=P0_MAC, src=CLIENT_A, sport=42001, payload=b"hello?"):
    return pad(Ether(dst=eth_dst, src=CLIENT_A_MAC) / IP(src=src, dst=dst, id=next(ids)) /
               UDP(sport=sport, dport=dport) / Raw(payload))


send0 = [
    # not_for_us
    tcp(VIP, TCP_PORT, eth_dst="02:00:00:00:00:99"),
    pad(Ether(dst="01:00:5e:00:00:fb", src=CLIENT_A_MAC) /
        IP(src=CLIENT_A, dst="224.0.0.251", ttl=255, id=next(ids)) /
        UDP(sport=5353, dport=5353) / Raw(b"\x00" * 12)),
    pad(Ether(dst="ff:ff:ff:ff:ff:ff", src=CLIENT_A_MAC) /
        IP(src=CLIENT_A, dst="198.51.100.255", id=next(ids)) /
        UDP(sport=137, dport=137) / Raw(b"\x00" * 12)),
    tcp(P0_IP, 22),
    # no_service
    tcp(VIP, 443),
    udp(VIP, 80),
    # no_connection
    tcp("203.0.113.5", 80),
    udp("203.0.113.5", 53),
    tcp(VIP, TCP_PORT, flags="A", sport=42002),  # answered with a RST (reset_unknown)
    # unsupported
    Ether(dst=P0_MAC, src=CLIENT_A_MAC) /
    IPv6(src="2001:db8::2", dst="2001:db8::10") / TCP(sport=42003, dport=80, flags="S"),
    pad(Ether(dst=P0_MAC, src=CLIENT_A_MAC) / Dot1Q(vlan=100) /
        IP(src=CLIENT_A, dst=VIP, id=next(ids)) / TCP(sport=42004, dport=80, flags="S")),
    # ttl_exceeded
    tcp(VIP, TCP_PORT, ttl=1, sport=42005),
    # arp_ignored
    pad(Ether(dst="ff:ff:ff:ff:ff:ff", src=CLIENT_A_MAC) /
        ARP(op=1, hwsrc=CLIENT_A_MAC, psrc=CLIENT_A, pdst="198.51.100.77")),
]
send1 = [
    # no_connection: a real answers a connection lb never made
    pad(Ether(dst=P1_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=CLIENT_A, id=next(ids)) /
        TCP(sport=TCP_REAL_PORT, dport=42006, flags="SA", seq=5, ack=2)),
    # not_for_us: a frame to another host's MAC on the inside
    pad(Ether(dst=REAL2_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=REAL2, id=next(ids)) /
        TCP(sport=1234, dport=5678, flags="S")),
]

rst = pad(Ether(dst=CLIENT_A_MAC, src=P0_MAC) / IP(src=VIP, dst=CLIENT_A, id=0, flags="DF") /
          TCP(sport=TCP_PORT, dport=42002, flags="R", seq=send0[8][TCP].ack, window=0))
write(send0, send1, [rst], [], counters={
    "rx": len(send0) + len(send1),
    "tx": 1,
    "drop.not_for_us": 5,
    "drop.no_service": 2,
    "drop.no_connection": 3,
    "drop.unsupported": 2,
    "drop.ttl_exceeded": 1,
    "drop.arp_ignored": 1,
    "drop.malformed": 0,
    "drop.fragment": 0,
    "drop.no_real": 0,
    "drop.no_route": 0,
    "drop.no_neighbour": 0,
    "drop.icmp_unmatched": 0,
    "arp_replies": 0,
    "icmp_echo_replies": 0,
})
