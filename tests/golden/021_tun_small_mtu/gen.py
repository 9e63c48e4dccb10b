#!/usr/bin/python3
"""LVS-TUN, a small egress MTU (port 1, mtu = 552: 532 bytes of payload, 528 a fragment):

  small    udp A:33333, no DF, small -> tunneled
  frag3    1200 bytes, no DF: three fragments, 528 + 528 + 144 bytes at offsets 0, 66, 132
  frag2    600 bytes, no DF: 528 + 72
  exact    532 bytes, DF: outer 552 = the MTU, tunneled
  over540  540 bytes, DF: too big; fragmentation-needed (MTU 532) quoting the whole packet
           (20 + 8 + 540 = 568 bytes, under the 576 limit)
  syn      tcp A:40000 -> tunneled
  over548  548 bytes, DF: the whole packet quoted, the ICMP datagram exactly 576 bytes
  over549  549 bytes, DF: 548 bytes quoted, 576 bytes
  err      an outside router's frag-needed to the VIP quoting VIP:80 -> A:40000 (576 bytes, no
           DF): forwarded to the tun real like any packet of the connection, so fragmented,
           528 + 48
  err_df   the same with DF set: too big, and an ICMP error is never answered with an ICMP
           error (RFC 1122 3.2.2; RFC 792), so nothing is sent at all. (The specification's
           rule read literally would send frag-needed to the router; that would be wrong.)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from golden import *  # noqa: E402,F403

MTU = 552


def dgram(size, ip_id, df):
    return client_udp(33333, payload(size - 28, ip_id & 0xFF), ip_id=ip_id, df=df)


def seg(size, ip_id):
    return client_tcp(40000, "PA", seq=2, ack=3, ip_id=ip_id, data=payload(size - 40, 9))


small = dgram(100, 0x2101, False)
frag3 = dgram(1200, 0x2102, False)
frag2 = dgram(600, 0x2103, False)
exact = dgram(532, 0x2104, True)
over540 = dgram(540, 0x2105, True)
syn = client_tcp(40000, "S", seq=1, ip_id=0x2106)
over548 = seg(548, 0x2107)
over549 = seg(549, 0x2108)



def router_err(ip_id, df):
    seg = IP(src=VIP, dst=CLIENT_A, ttl=62, id=0x6161, flags="DF") / \
        TCP(sport=TCP_PORT, dport=40000, flags="PA", seq=5, ack=6, window=509) / \
        Raw(payload(1460, 1))
    f = icmp_error(ROUTER_OUT_MAC, P0_MAC, ROUTER_OUT, VIP, 3, 4, quote(seg, 548), ttl=255,
                   ip_id=ip_id, mtu=1280)
    f[IP].flags = "DF" if df else 0
    return Ether(bytes(f))


err = router_err(0x2109, False)
err_df = router_err(0x210A, True)

send0 = [small, frag3, frag2, exact, over540, syn, over548, over549, err, err_df]
f3 = tun_fragments(frag3, REAL1, REAL1_MAC, P1_IP, MTU)
f2 = tun_fragments(frag2, REAL1, REAL1_MAC, P1_IP, MTU)
expect1 = [tun(small, REAL1, REAL1_MAC, P1_IP)] + f3 + f2 + \
    [tun(exact, REAL1, REAL1_MAC, P1_IP), tun(syn, REAL1, REAL1_MAC, P1_IP)] + \
    tun_fragments(err, REAL1, REAL1_MAC, P1_IP, MTU)
expect0 = [frag_needed_reply(f, MTU, CLIENT_A_MAC) for f in (over540, over548, over549)]

hdr = [(int.from_bytes(f[16:18], "big"), int.from_bytes(f[20:22], "big")) for f in f3 + f2]
assert hdr == [(548, 0x2000), (548, 0x2000 | 66), (164, 132), (548, 0x2000), (92, 66)], hdr
assert [len(f) for f in expect1[-2:]] == [14 + 548, 14 + 68] and len(ip_of(err)) == 576
assert [len(e) - 14 for e in expect0] == [568, 576, 576]
assert expect0[0][14 + 28:] == ip_of(over540)
assert all(e[14 + 26:14 + 28] == (532).to_bytes(2, "big") for e in expect0)

write(send0, [], expect0, expect1, counters={
    "rx": 10,
    "tx": 1 + 3 + 2 + 1 + 1 + 3 + 2,
    "conns_created": 2,
    "tunnel_encapsulated": 6,
    "tunnel_fragments": 7,
    "frag_needed_sent": 3,
})
