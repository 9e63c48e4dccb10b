#!/usr/bin/python3
"""ARP: lb answers who-has for its own addresses and the VIP on the port the request came in,
padded to 60 bytes like a NIC delivers it; the reply keeps the frame's length. A request for
an address that is not ours gets no answer (arp_ignored)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403


def who_has(src_mac, src_ip, target, dst_mac="ff:ff:ff:ff:ff:ff"):
    return pad(Ether(dst=dst_mac, src=src_mac) /
               ARP(op=1, hwsrc=src_mac, psrc=src_ip, hwdst="00:00:00:00:00:00", pdst=target))


def is_at(req, port_mac):
    """The reply to `req` from the port with `port_mac`: the request's bytes rewritten in place
    (so the padding stays as it was)."""
    a = req[ARP]
    rep = Ether(dst=a.hwsrc, src=port_mac) / ARP(op=2, hwsrc=port_mac, psrc=a.pdst,
                                                  hwdst=a.hwsrc, pdst=a.psrc)
    raw = bytes(rep)
    return Ether(raw + bytes(req)[len(raw):])


send0 = [
    who_has(CLIENT_A_MAC, CLIENT_A, P0_IP),               # the port's own address
    who_has(CLIENT_A_MAC, CLIENT_A, VIP),                 # the VIP
    who_has(CLIENT_B_MAC, CLIENT_B, "198.51.100.99"),     # not ours: ignored
    who_has(ROUTER_OUT_MAC, ROUTER_OUT, VIP, dst_mac=P0_MAC),  # unicast refresh, to our MAC
]
send1 = [
    who_has(REAL1_MAC, REAL1, P1_IP),                     # the inside port's address
    who_has(REAL2_MAC, REAL2, "10.10.0.77"),              # not ours: ignored
]
expect0 = [is_at(send0[0], P0_MAC), is_at(send0[1], P0_MAC), is_at(send0[3], P0_MAC)]
expect1 = [is_at(send1[0], P1_MAC)]

write(send0, send1, expect0, expect1, counters={
    "rx": 6,
    "tx": 4,
    "arp_replies": 4,
    "drop.arp_ignored": 2,
})
