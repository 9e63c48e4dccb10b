#!/usr/bin/python3
"""ICMP errors from the outside for tun and dr connections. tcp/80 rr -> 10.10.0.2 (tun),
10.10.0.3 (dr); udp/53 -> 10.10.0.2 (tun). A router on the outside sends errors to the VIP
quoting what the real sent to the client (VIP:port -> client:port, since a tun/dr real answers
from the VIP). lb forwards each error to the connection's real with the connection's method and
changes nothing else in it: no TTL decrement, the quote as it came.

  err_t  frag-needed (TOS 0xc0, TTL 255, no DF), 548 bytes of VIP:80 -> A:40000 quoted
         -> tun to 10.10.0.2: outer TOS 0xc0, ID = the error's ID, DF clear, inner = the error
  err_d  frag-needed with DF set, the minimum quote (IP header + 8) of VIP:80 -> A:40001
         -> dr to 10.10.0.3: the real's MAC, the IP packet as received
  err_u  time exceeded (type 11) with DF set, quoting the whole UDP answer VIP:53 -> A:33333
         -> tun to 10.10.0.2: outer DF set
  err_x  quotes VIP:80 -> A:49999, no connection: dropped, icmp_unmatched
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

DNS_Q = (b"\xa1\xb2\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
         b"\x03www\x07example\x03com\x00\x00\x01\x00\x01")
DNS_A = DNS_Q[:2] + b"\x81\x80" + DNS_Q[4:6] + b"\x00\x01" + DNS_Q[8:] + \
    bytes.fromhex("c00c000100010000012c00045db8d822")


def reply_seg(dport, size):
    """What the real sent back to the client, as the router saw it: from VIP:80."""
    return IP(src=VIP, dst=CLIENT_A, ttl=62, id=0x6161, flags="DF") / \
        TCP(sport=TCP_PORT, dport=dport, flags="PA", seq=0x10000001, ack=0x20000001,
            window=509) / Raw(payload(size - 40, 8))


def error(typ, code, quoted, ip_id, mtu=0, tos=0, df=False):
    f = icmp_error(ROUTER_OUT_MAC, P0_MAC, ROUTER_OUT, VIP, typ, code, quoted, ttl=255,
                   ip_id=ip_id, mtu=mtu)
    f[IP].tos = tos
    f[IP].flags = "DF" if df else 0
    return Ether(bytes(f))


syn_t = client_tcp(40000, "S", seq=1, ip_id=0x2501)   # -> .2 tun
syn_d = client_tcp(40001, "S", seq=2, ip_id=0x2502)   # -> .3 dr
dns = client_udp(33333, DNS_Q, ip_id=0x2503)          # -> .2 tun

err_t = error(3, 4, quote(reply_seg(40000, 1500), 548), 0x2511, mtu=1400, tos=0xC0)
err_d = error(3, 4, quote(reply_seg(40001, 1500), 28), 0x2512, mtu=1400, df=True)
err_u = error(11, 0, ip_bytes(IP(src=VIP, dst=CLIENT_A, ttl=1, id=0x2599) /
                              UDP(sport=UDP_PORT, dport=33333) / Raw(DNS_A)), 0x2513, df=True)
err_x = error(3, 4, quote(reply_seg(49999, 1500), 548), 0x2514, mtu=1400)

send0 = [syn_t, syn_d, dns, err_t, err_d, err_u, err_x]
expect1 = [
    tun(syn_t, REAL1, REAL1_MAC, P1_IP),
    dr(syn_d, REAL2_MAC),
    tun(dns, REAL1, REAL1_MAC, P1_IP),
    tun(err_t, REAL1, REAL1_MAC, P1_IP),
    dr(err_d, REAL2_MAC),
    tun(err_u, REAL1, REAL1_MAC, P1_IP),
]
assert len(ip_of(err_t)) == 576 and len(bytes(err_d)) >= 60
assert expect1[3][15] == 0xC0 and expect1[3][20] & 0x40 == 0 and expect1[5][20] & 0x40
assert expect1[4][14 + 8] == 255   # TTL kept

write(send0, [], [], expect1, counters={
    "rx": 7,
    "tx": 6,
    "conns_created": 3,
    "tunnel_encapsulated": 4,
    "drop.icmp_unmatched": 1,
})
