#!/usr/bin/python3
"""A client beyond a router (203.0.113.77, default route via 198.51.100.254): its SYN arrives
from the router's MAC; the real's reply leaves port 0 to the router's MAC (the route's next
hop), not to any address of the client. Same for UDP."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

REMOTE = "203.0.113.77"

syn = Ether(dst=P0_MAC, src=ROUTER_OUT_MAC) / IP(src=REMOTE, dst=VIP, id=0xA001, ttl=57,
                                                 flags="DF") / \
    TCP(sport=51000, dport=TCP_PORT, flags="S", seq=123456, window=64240,
        options=[("MSS", 1400), ("SAckOK", b""), ("Timestamp", (5, 0)), ("NOP", None),
                 ("WScale", 7)])
synack = Ether(dst=P1_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=REMOTE, id=0, flags="DF") / \
    TCP(sport=TCP_REAL_PORT, dport=51000, flags="SA", seq=999, ack=123457, window=65160,
        options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (77, 5)), ("NOP", None),
                 ("WScale", 7)])
query = Ether(dst=P0_MAC, src=ROUTER_OUT_MAC) / IP(src=REMOTE, dst=VIP, id=0xA002, ttl=57) / \
    UDP(sport=51001, dport=UDP_PORT) / Raw(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                                           b"\x03www\x07example\x03org\x00\x00\x01\x00\x01")
answer = Ether(dst=P1_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=REMOTE, id=0x0B0B) / \
    UDP(sport=UDP_REAL_PORT, dport=51001) / Raw(b"\x12\x34\x81\x80\x00\x01\x00\x00\x00\x00"
                                                b"\x00\x00\x03www\x07example\x03org\x00\x00"
                                                b"\x01\x00\x01")

send0 = [syn, query]
send1 = [synack, answer]
expect1 = [nat_in(syn, REAL1, TCP_REAL_PORT), nat_in(query, REAL1, UDP_REAL_PORT)]
expect0 = [nat_out(synack, VIP, TCP_PORT, client_mac=ROUTER_OUT_MAC),
           nat_out(answer, VIP, UDP_PORT, client_mac=ROUTER_OUT_MAC)]

write(send0, send1, expect0, expect1, counters={
    "rx": 4,
    "tx": 4,
    "conns_created": 2,
})
