#!/usr/bin/python3
"""NAT both directions: one whole HTTP exchange through the director. The client's segments
(send0) go to 10.10.0.2:8080 on port 1; the real's segments (send1) come back on port 0 from
VIP:80. The client's segments all arrive before the real's (lb polls port 0 first and each file
is one burst), which the connection state must not mind. A real's segment for a client port that
has no connection is dropped (no_connection)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

C, CMAC, CPORT = CLIENT_A, CLIENT_A_MAC, 41000
ISN_C, ISN_S = 1000, 5000000
REQ = b"GET / HTTP/1.0\r\nHost: www.example.com\r\n\r\n"
RSP = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"

ids = iter(range(0x3000, 0x4000))
sids = iter(range(0x7000, 0x8000))


def c2s(flags, seq, ack, data=b"", ts=None):
    opts = [("NOP", None), ("NOP", None), ("Timestamp", ts)] if ts else []
    f = Ether(dst=P0_MAC, src=CMAC) / IP(src=C, dst=VIP, id=next(ids), flags="DF", ttl=64) / \
        TCP(sport=CPORT, dport=TCP_PORT, flags=flags, seq=seq, ack=ack, window=502,
            options=opts)
    if data:
        f = f / Raw(data)
    return pad(f)


def s2c(flags, seq, ack, data=b"", ts=None, real=REAL1, dport=CPORT):
    opts = [("NOP", None), ("NOP", None), ("Timestamp", ts)] if ts else []
    f = Ether(dst=P1_MAC, src=REAL_MAC[real]) / \
        IP(src=real, dst=C, id=next(sids), flags="DF", ttl=64) / \
        TCP(sport=TCP_REAL_PORT, dport=dport, flags=flags, seq=seq, ack=ack, window=509,
            options=opts)
    if data:
        f = f / Raw(data)
    return pad(f)


syn_opts = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (100, 0)), ("NOP", None),
            ("WScale", 7)]
syn = pad(Ether(dst=P0_MAC, src=CMAC) / IP(src=C, dst=VIP, id=next(ids), flags="DF") /
          TCP(sport=CPORT, dport=TCP_PORT, flags="S", seq=ISN_C, window=64240, options=syn_opts))
synack = pad(Ether(dst=P1_MAC, src=REAL1_MAC) / IP(src=REAL1, dst=C, id=0, flags="DF") /
             TCP(sport=TCP_REAL_PORT, dport=CPORT, flags="SA", seq=ISN_S, ack=ISN_C + 1,
                 window=65160, options=[("MSS", 1460), ("SAckOK", b""),
                                        ("Timestamp", (900, 100)), ("NOP", None),
                                        ("WScale", 7)]))
c = ISN_C + 1
s = ISN_S + 1
send0 = [
    syn,
    c2s("A", c, s, ts=(101, 900)),                      # handshake ACK
    c2s("PA", c, s, REQ, ts=(102, 900)),                # request
    c2s("A", c + len(REQ), s + len(RSP)),               # ACK of the response: no options, padded
    c2s("FA", c + len(REQ), s + len(RSP), ts=(104, 902)),
    c2s("A", c + len(REQ) + 1, s + len(RSP) + 1, ts=(105, 903)),  # last ACK
]
send1 = [
    synack,
    s2c("A", s, c + len(REQ), ts=(901, 102)),           # ACK of the request
    s2c("PA", s, c + len(REQ), RSP, ts=(901, 102)),     # response
    s2c("FA", s + len(RSP), c + len(REQ), ts=(902, 102)),
    s2c("A", s + len(RSP) + 1, c + len(REQ) + 1, ts=(903, 104)),
    s2c("SA", 777, 888, dport=CPORT + 1),                # no such connection: dropped
]
expect1 = [nat_in(f, REAL1, TCP_REAL_PORT) for f in send0]
expect0 = [nat_out(f, VIP, TCP_PORT) for f in send1[:-1]]

write(send0, send1, expect0, expect1, counters={
    "rx": 12,
    "tx": 11,
    "conns_created": 1,
    "drop.no_connection": 1,
})
