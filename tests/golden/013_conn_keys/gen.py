#!/usr/bin/python3
"""What identifies a connection: protocol, client address and port, real address and port.

  - client A port 33333 opens a TCP connection (-> 10.10.0.2:8080) and a UDP flow
    (-> 10.10.0.2:5353): two connections; each reply finds its own
  - client B, same port 33333, TCP: a third connection (-> 10.10.0.3:8080, rr)
  - a non-SYN from client B port 40000, which opened nothing: no connection, a RST back
    (connections.reset_unknown)
  - replies that match no connection, dropped (no_connection): from the right real but the wrong
    port (10.10.0.2:9090); from the other real (10.10.0.3:8080 for A:33333, which is .2's);
    UDP from 10.10.0.3:5353 for A:33333 (the flow is .2's)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

ids = iter(range(0xE000, 0xF000))


def c_tcp(client, cmac, sport, flags="S"):
    return pad(Ether(dst=P0_MAC, src=cmac) / IP(src=client, dst=VIP, id=next(ids)) /
               TCP(sport=sport, dport=TCP_PORT, flags=flags, seq=1000, ack=0 if flags == "S"
                   else 1, window=64240))


def c_udp(client, cmac, sport):
    return pad(Ether(dst=P0_MAC, src=cmac) / IP(src=client, dst=VIP, id=next(ids)) /
               UDP(sport=sport, dport=UDP_PORT) / Raw(b"query-from-" + client.encode()))


def r_tcp(real, rport, client, dport):
    return pad(Ether(dst=P1_MAC, src=REAL_MAC[real]) / IP(src=real, dst=client, id=next(ids)) /
               TCP(sport=rport, dport=dport, flags="SA", seq=5000, ack=1001, window=65160))


def r_udp(real, client, dport):
    return pad(Ether(dst=P1_MAC, src=REAL_MAC[real]) / IP(src=real, dst=client, id=next(ids)) /
               UDP(sport=UDP_REAL_PORT, dport=dport) / Raw(b"answer-to-" + client.encode()))


send0 = [
    c_tcp(CLIENT_A, CLIENT_A_MAC, 33333),            # tcp -> .2
    c_udp(CLIENT_A, CLIENT_A_MAC, 33333),            # udp -> .2 (its own cursor)
    c_tcp(CLIENT_B, CLIENT_B_MAC, 33333),            # tcp -> .3
    c_tcp(CLIENT_B, CLIENT_B_MAC, 40000, flags="A"),  # no connection: a RST back
]
send1 = [
    r_tcp(REAL1, TCP_REAL_PORT, CLIENT_A, 33333),    # A's TCP
    r_udp(REAL1, CLIENT_A, 33333),                   # A's UDP
    r_tcp(REAL2, TCP_REAL_PORT, CLIENT_B, 33333),    # B's TCP
    r_tcp(REAL1, 9090, CLIENT_A, 33333),             # wrong real port: no connection
    r_tcp(REAL2, TCP_REAL_PORT, CLIENT_A, 33333),    # wrong real: no connection
    r_udp(REAL2, CLIENT_A, 33333),                   # wrong real: no connection
]
expect1 = [
    nat_in(send0[0], REAL1, TCP_REAL_PORT),
    nat_in(send0[1], REAL1, UDP_REAL_PORT),
    nat_in(send0[2], REAL2, TCP_REAL_PORT),
]
expect0 = [
    # connections.reset_unknown: <SEQ=SEG.ACK><CTL=RST> from the VIP, padded to 60 bytes
    pad(Ether(dst=CLIENT_B_MAC, src=P0_MAC) / IP(src=VIP, dst=CLIENT_B, id=0, flags="DF") /
        TCP(sport=TCP_PORT, dport=40000, flags="R", seq=1, ack=0, window=0)),
    nat_out(send1[0], VIP, TCP_PORT),
    nat_out(send1[1], VIP, UDP_PORT),
    nat_out(send1[2], VIP, TCP_PORT),
]

write(send0, send1, expect0, expect1, counters={
    "rx": 10,
    "tx": 7,
    "conns_created": 3,
    "drop.no_connection": 3,
})
