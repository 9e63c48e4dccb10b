#!/usr/bin/python3
"""Hostile traffic for the e2e lab (tests/e2e/test_hostile.sh). Every operation is bounded.

  hostile.py catalogue --side client|real ...   sends the malformed-traffic catalogue (frames
                                                built with scapy, sent raw on --iface) and writes
                                                a manifest: per class, the frames sent and the
                                                drop reason lb must count for them (or "forward"
                                                with the answer that proved it)
  hostile.py drops --manifest M... --before B --after A
                                                compares `lbctl --workers --json` before/after
                                                with the manifests: prints one line per reason,
                                                exits 1 if a reason or the total fell short
  hostile.py frag --host VIP --port P --size N  one UDP datagram of N bytes, fragmented by the
                  [--crafted [--fragsize B |    kernel (MTU 1500) or crafted (B-byte fragments,
                   --tiny-first]]               or an 8-byte first one and the rest); the digest
                                                server (udp_echo.py --digest) must answer with
                                                its length and sha256
  hostile.py orphan --iface ... --count N       N later fragments whose first never comes
  hostile.py flood --iface ... --count N --duration S
                                                N spoofed TCP SYNs to VIP:PORT from random
                                                sources in --net, paced over S seconds
  hostile.py udpburst --iface ... --count N     N UDP datagrams to VIP:PORT as fast as possible
  hostile.py arp --iface ... --net N --count C  forged ARP from C distinct sources of --net: a
                                                reply to lb's address and a request for the
                                                VIP from each (random MACs); or with --claim IP
                                                --claim-mac M, one reply saying IP is at M
  hostile.py legit --host H --count N --deadline S
                                                up to N sequential GET / (one connection each,
                                                no retry), stops at the deadline; the ones not
                                                tried count as failed
  hostile.py slowget --host H --size N --rate BPS
                                                GET /big?size=N read at about BPS bytes/s,
                                                sha256 checked
  hostile.py idle --tcp HOST:PORT | --unix PATH --count N [--partial-every K] --hold S
                                                opens N connections and holds them for S
                                                seconds (at most), sending nothing, or on every
                                                K-th the first bytes of a request; prints
                                                "idle open=N failed=N" once they are made
  hostile.py hold --host VIP --go FILE --timeout S
                                                GET /hold: prints "hold port=P server=rsN" once
                                                the server's first line came, waits (idle) for
                                                FILE to exist, then asks for the second line on
                                                the same connection: "hold ok" or why not
  hostile.py spoof --iface ... --vip VIP --sport P --flags F
                                                one TCP segment P -> VIP:80 with flags F and a
                                                random sequence (and acknowledgment) number, as
                                                an off-path attacker who knows the tuple
"""
import argparse
import hashlib
import json
import os
import random
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from httpd import expected_sha256  # noqa: E402  the servers' own generator

# Fragments are sent in the catalogue, but not counted there: with net_af_packet, the kernel
# reassembles IPv4 fragments before lb's sockets see them (DPDK sets PACKET_FANOUT_FLAG_DEFRAG),
# so what lb counts for them depends on the port driver. test_hostile.sh's frag-* checks count
# them on their own.
FRAG_EXPECT = "any"
PAGE_RE = re.compile(rb"^(rs\d+) (\d+\.\d+\.\d+\.\d+), it works!\n$")
ETH_P_ALL = 0x0003


# ---- raw frames -----------------------------------------------------------------------------

def mac_bytes(m):
    return bytes(int(x, 16) for x in m.split(":"))


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def raw_socket(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return s


def send_frame(s, frame):
    """Sends one frame; ENOBUFS (the qdisc is full) is retried for up to a second."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            s.send(frame)
            return True
        except OSError as e:
            if e.errno not in (105, 11) or time.monotonic() > deadline:  # ENOBUFS, EAGAIN
                return False
            time.sleep(0.001)


def ip_header(src, dst, proto, payload_len, ttl=64, ident=0, frag=0, tos=0):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + payload_len, ident, frag, ttl, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack("!H", csum(h)) + h[12:]


def tcp_syn(src, dst, sport, dport, seq):
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 6, len(h))
    c = csum(pseudo + h)
    return h[:16] + struct.pack("!H", c) + h[18:]


def udp_dgram(src, dst, sport, dport, payload):
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17,
                                                                         8 + len(payload))
    c = csum(pseudo + h + payload) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + payload


# ---- the catalogue ----------------------------------------------------------------------------

class Catalogue:
    """Frames by class. Each class has the reason lb must count its frames under ("forward":
    sent on, checked by an answer; "any": no expectation, noted only)."""

    def __init__(self, a):
        from scapy.all import ARP, ICMP, IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw, fragment
        self.s = {"ARP": ARP, "ICMP": ICMP, "IP": IP, "TCP": TCP, "UDP": UDP, "Dot1Q": Dot1Q,
                  "Ether": Ether, "IPv6": IPv6, "Raw": Raw, "fragment": fragment}
        self.a = a
        self.classes = []  # [name, expect, [frames], note(, [frames sent after, no expectation])]
        self.rnd = random.Random(6)

    def add(self, name, expect, frames, note=""):
        self.classes.append([name, expect, [bytes(f) for f in frames], note])


def build_client(cat):
    """Frames from the client (198.51.100.2) to lb's outside port."""
    S, a, rnd = cat.s, cat.a, cat.rnd
    Ether, IP, TCP, UDP, ICMP, ARP = S["Ether"], S["IP"], S["TCP"], S["UDP"], S["ICMP"], S["ARP"]
    Dot1Q, IPv6, Raw, fragment = S["Dot1Q"], S["IPv6"], S["Raw"], S["fragment"]
    me, vip = a.src_ip, a.vip
    E = Ether(src=a.src_mac, dst=a.dst_mac)
    sp = iter(range(a.sport_base, a.sport_base + 1000))  # fresh client ports

    def ip(**kw):
        return IP(src=me, dst=vip, **kw)

    def patch(frame, off, data):
        b = bytearray(bytes(frame))
        b[off:off + len(data)] = data
        return bytes(b)

    good_udp = E / ip() / UDP(sport=next(sp), dport=53) / Raw(b"hello\n")
    # -- truncated headers
    cat.add("eth-only", "malformed", [bytes(E)[:12] + b"\x08\x00"],
            "an Ethernet header with the IPv4 type and nothing after it")
    cat.add("ip-truncated", "malformed", [bytes(good_udp)[:14 + 12]], "12 bytes of IP header")
    cat.add("tcp-truncated", "malformed",
            [bytes(E / ip(proto=6) / Raw(bytes(TCP(sport=next(sp), dport=80, flags="S"))[:10]))],
            "10 bytes of TCP header")
    cat.add("udp-truncated", "malformed", [bytes(E / ip(proto=17) / Raw(b"\x12\x34\x00\x35"))],
            "4 bytes of UDP header")
    cat.add("icmp-truncated", "malformed", [bytes(E / ip(proto=1) / Raw(b"\x08\x00\x00\x00"))],
            "4 bytes of ICMP header")
    cat.add("arp-short", "malformed", [bytes(E)[:12] + b"\x08\x06" + bytes(
        ARP(op=1, hwsrc=a.src_mac, psrc=me, pdst=a.lb_ip))[:20]], "20 of 28 ARP bytes")
    # -- IP header lies
    g = bytes(good_udp)
    cat.add("ip-bad-version", "malformed", [patch(g, 14, b"\x65")], "version 6 in an IPv4 frame")
    def fix_ipsum(b):
        b = bytearray(b)
        ihl = (b[14] & 15) * 4
        b[24:26] = b"\0\0"
        if ihl >= 20:
            b[24:26] = struct.pack("!H", csum(bytes(b[14:14 + ihl])))
        return bytes(b)
    cat.add("ip-ihl-short", "malformed", [fix_ipsum(patch(g, 14, b"\x44"))], "IHL 4 (16 bytes)")
    cat.add("ip-ihl-long", "malformed", [fix_ipsum(patch(g, 14, b"\x4f"))],
            "IHL 15 (60 bytes) in a 34-byte packet")
    cat.add("ip-total-long", "malformed", [fix_ipsum(patch(g, 16, struct.pack("!H", 1400)))],
            "total length 1400 in a 34-byte packet")
    cat.add("ip-total-short", "malformed", [fix_ipsum(patch(g, 16, struct.pack("!H", 12)))],
            "total length 12, below the header")
    cat.add("ip-bad-csum", "malformed", [patch(g, 24, struct.pack("!H", (
        struct.unpack("!H", g[24:26])[0] ^ 0x5a5a)))], "UDP to VIP:53 with a wrong IP checksum")
    # -- transport header lies
    syn = E / ip() / TCP(sport=next(sp), dport=80, flags="S", seq=1)
    b = bytes(syn)
    cat.add("tcp-doff-short", "malformed", [patch(b, 14 + 20 + 12, b"\x40")], "data offset 4")
    b = bytes(E / ip() / TCP(sport=next(sp), dport=80, flags="S", seq=1))
    cat.add("tcp-doff-long", "malformed", [patch(b, 14 + 20 + 12, b"\xf0")],
            "data offset 15 (60 bytes) in a 20-byte segment")
    b = bytes(E / ip() / UDP(sport=next(sp), dport=53) / Raw(b"hello\n"))
    cat.add("udp-len-short", "malformed", [patch(b, 14 + 20 + 4, struct.pack("!H", 4))],
            "UDP length 4")
    cat.add("udp-len-long", "malformed", [patch(b, 14 + 20 + 4, struct.pack("!H", 900))],
            "UDP length 900 in a 14-byte datagram")
    # -- odd TCP flag sets on new tuples: no connection to join, and not a SYN that opens one
    # (connections.reset_unknown, on by default: a segment with neither SYN nor RST is answered
    # with a RST, counted as resets_sent; the others are dropped as no_connection)
    for name, fl in (("tcp-syn-fin", "SF"), ("tcp-all-flags", "FSRPAUEC"), ("tcp-no-flags", ""),
                     ("tcp-xmas", "FPU"), ("tcp-syn-rst", "SR"), ("tcp-fin", "F"),
                     ("tcp-ack", "A")):
        cat.add(name, "no_connection" if "S" in fl or "R" in fl else "reset",
                [E / ip() / TCP(sport=next(sp), dport=80, flags=fl, seq=7)],
                "flags %r on a new tuple" % (fl or "none"))
    # -- TTL: a NAT hop decrements it
    cat.add("ttl0-syn", "ttl_exceeded", [E / ip(ttl=0) / TCP(sport=next(sp), dport=80,
                                                            flags="S")], "SYN with TTL 0")
    cat.add("ttl1-syn", "ttl_exceeded", [E / ip(ttl=1) / TCP(sport=next(sp), dport=80,
                                                            flags="S")], "SYN with TTL 1")
    cat.add("ttl1-udp", "ttl_exceeded", [E / ip(ttl=1) / UDP(sport=next(sp), dport=53) /
                                         Raw(b"x")], "UDP with TTL 1")
    # -- land and martians: the VIP or lb's own address as the source
    cat.add("land", a.land_expect, [E / IP(src=vip, dst=vip) / TCP(sport=80, dport=80,
                                                                    flags="S", seq=9)],
            "SYN VIP:80 -> VIP:80")
    cat.add("src-lb-addr", a.land_expect, [E / IP(src=a.lb_ip, dst=vip) /
                                           TCP(sport=next(sp), dport=80, flags="S")],
            "SYN from lb's own address to the VIP")
    # -- sources that cannot be on this side (rp_filter): the other side's subnet, this
    # subnet's network and broadcast addresses (the lab's subnets are /24s)
    net = a.lb_ip.rsplit(".", 1)[0]
    for name, src in (("src-inside", a.foreign_ip), ("src-subnet-broadcast", net + ".255"),
                      ("src-subnet-network", net + ".0")):
        cat.add(name, "martian", [E / IP(src=src, dst=vip) / TCP(sport=next(sp), dport=80,
                                                                  flags="S")],
                "SYN to the VIP from %s" % src)
    # -- no service, not for us
    cat.add("no-service-tcp", "no_service", [E / ip() / TCP(sport=next(sp), dport=81,
                                                            flags="S")], "SYN to VIP:81")
    cat.add("no-service-udp", "no_service", [E / ip() / UDP(sport=next(sp), dport=9) /
                                             Raw(b"x")], "UDP to VIP:9")
    cat.add("no-service-gre", "no_service", [E / ip(proto=47) / Raw(b"\0" * 8)],
            "protocol 47 to the VIP")
    cat.add("ip-broadcast-mac", "not_for_us",
            [Ether(src=a.src_mac, dst="ff:ff:ff:ff:ff:ff") / ip() /
             UDP(sport=next(sp), dport=53) / Raw(b"x")], "UDP to the VIP, broadcast MAC")
    cat.add("ip-multicast-mac", "not_for_us",
            [Ether(src=a.src_mac, dst="01:00:5e:00:00:fb") / IP(src=me, dst="224.0.0.251") /
             UDP(sport=5353, dport=5353) / Raw(b"x")], "mDNS-like multicast")
    cat.add("to-lb-addr-udp", "not_for_us", [E / IP(src=me, dst=a.lb_ip) /
                                            UDP(sport=next(sp), dport=53) / Raw(b"x")],
            "UDP to lb's own address")
    # -- other link and network layers
    cat.add("vlan", "unsupported", [E / Dot1Q(vlan=10) / ip() / UDP(sport=next(sp), dport=53) /
                                    Raw(b"x")], "802.1Q-tagged UDP to the VIP")
    cat.add("qinq", "unsupported", [Ether(src=a.src_mac, dst=a.dst_mac, type=0x88a8) /
                                    Dot1Q(vlan=20) / Dot1Q(vlan=10) / ip() /
                                    UDP(sport=next(sp), dport=53) / Raw(b"x")], "802.1ad QinQ")
    cat.add("ipv6", "unsupported", [E / IPv6(src="2001:db8::2", dst="2001:db8::10") /
                                    UDP(sport=next(sp), dport=53) / Raw(b"x")], "IPv6 UDP")
    cat.add("lldp-type", "unsupported", [bytes(E)[:12] + b"\x88\xcc" + b"\0" * 46],
            "ethertype 0x88cc")
    # -- bad ARP
    arp = E / ARP(op=1, hwsrc=a.src_mac, psrc=me, pdst=a.lb_ip)
    b = bytes(arp)
    cat.add("arp-bad-htype", "malformed", [patch(b, 14, b"\x00\x06")], "hardware type 6")
    cat.add("arp-bad-ptype", "malformed", [patch(b, 16, b"\x86\xdd")], "protocol type IPv6")
    cat.add("arp-bad-hlen", "malformed", [patch(b, 18, b"\x08")], "hardware length 8")
    bc = Ether(src=a.src_mac, dst="ff:ff:ff:ff:ff:ff")
    cat.add("arp-gratuitous-foreign", "arp_ignored",
            [bc / ARP(op=1, hwsrc=a.src_mac, psrc="203.0.113.5", pdst="203.0.113.5"),
             bc / ARP(op=2, hwsrc=a.src_mac, psrc="203.0.113.5", pdst="203.0.113.5",
                      hwdst="ff:ff:ff:ff:ff:ff")],
            "gratuitous request and reply for 203.0.113.5")
    cat.add("arp-spoof-inside-addr", "arp_ignored",
            [E / ARP(op=2, hwsrc=a.src_mac, psrc=a.foreign_ip, pdst=a.lb_ip, hwdst=a.dst_mac)],
            "reply claiming %s (the other side's subnet)" % a.foreign_ip)
    cat.add("arp-other-host", "arp_ignored",
            [bc / ARP(op=1, hwsrc=a.src_mac, psrc=me, pdst=a.unused_ip)],
            "who-has %s (not lb's)" % a.unused_ip)
    # -- random bytes
    fr = []
    for _ in range(10):
        body = bytearray(rnd.randbytes(rnd.randint(20, 200)))
        body[0] = rnd.choice([0x00, 0x15, 0x3f, 0x60, 0x65, 0xff])  # IP version != 4
        fr.append(bytes(E)[:12] + b"\x08\x00" + bytes(body))
    cat.add("random-ip", "malformed", fr, "IPv4 type, random bytes (version != 4)")
    fr = []
    for _ in range(10):
        et = rnd.choice([0x1234, 0x88b5, 0x9000, 0xffff, 0x0600])
        fr.append(bytes(E)[:12] + struct.pack("!H", et) + rnd.randbytes(rnd.randint(20, 200)))
    cat.add("random-ethertype", "unsupported", fr, "random ethertypes and bytes")
    # -- ICMP errors quoting nothing or garbage
    cat.add("icmp-err-empty", "icmp_unmatched", [E / ip() / ICMP(type=3, code=3)],
            "port unreachable to the VIP quoting nothing")
    garbage = bytes([0x00]) + rnd.randbytes(27)
    cat.add("icmp-err-garbage", "icmp_unmatched", [E / ip() / ICMP(type=3, code=1) /
                                                   Raw(garbage)], "quoting 28 random bytes")
    cat.add("icmp-err-unknown-flow", "icmp_unmatched",
            [E / ip() / ICMP(type=3, code=3) / IP(src=vip, dst=me) /
             UDP(sport=53, dport=next(sp))], "quoting a VIP:53 reply nobody sent")
    cat.add("icmp-err-to-lb", "icmp_unmatched",
            [E / IP(src=me, dst=a.lb_ip) / ICMP(type=11) / Raw(garbage)],
            "time exceeded to lb's address")
    # -- fragments
    fid = iter(range(a.sport_base, a.sport_base + 1000))
    data = bytes(rnd.randbytes(2000))
    dg = ip(id=next(fid)) / UDP(sport=next(sp), dport=a.digest_port) / Raw(data)
    fr = fragment(dg, fragsize=800)
    cat.add("frag-orphan-later", FRAG_EXPECT, [E / fr[1], E / fr[2]],
            "the later fragments of a datagram whose first is never sent")
    fr = fragment(ip(id=next(fid)) / UDP(sport=next(sp), dport=a.digest_port) / Raw(data),
                  fragsize=800)
    cat.add("frag-out-of-order", FRAG_EXPECT, [E / fr[2]],
            "the last fragment sent before the first (dropped); first and middle follow")
    cat.classes[-1].append([bytes(E / fr[0]), bytes(E / fr[1])])  # sent after, "any"
    body = bytes(UDP(sport=next(sp), dport=a.digest_port) / Raw(data[:56]))
    oid = next(fid)
    cat.add("frag-overlap", FRAG_EXPECT,
            [E / ip(id=oid, proto=17, flags="MF", frag=0) / Raw(body[:24]),
             E / ip(id=oid, proto=17, flags="MF", frag=2) / Raw(body[16:40]),
             E / ip(id=oid, proto=17, frag=4) / Raw(body[32:])],
            "three fragments each overlapping the one before by 8 bytes (RFC 5722)")
    fr = fragment(ip(id=next(fid)) / ICMP(type=8) / Raw(data), fragsize=800)
    cat.add("frag-icmp", FRAG_EXPECT, [E / fr[0], E / fr[1], E / fr[2]], "fragmented ping")
    t = bytes(ip(id=next(fid), flags="MF", proto=6) / Raw(bytes(TCP(sport=next(sp), dport=80,
                                                                   flags="S"))[:8]))
    cat.add("frag-tiny-tcp", FRAG_EXPECT, [bytes(E) + t],
            "a first TCP fragment with 8 bytes of TCP header (RFC 1858)")
    cat.add("frag-tcp-offset1", FRAG_EXPECT,
            [E / ip(id=next(fid), frag=1, proto=6) / Raw(b"\x00" * 8 + b"\x50\x02" + b"\0" * 6)],
            "a TCP fragment at offset 8 rewriting the header (RFC 1858), no first")
    return cat


def build_real(cat):
    """Frames from a real server (10.10.0.x) to lb's inside port."""
    S, a, rnd = cat.s, cat.a, cat.rnd
    Ether, IP, TCP, UDP, ICMP, ARP = S["Ether"], S["IP"], S["TCP"], S["UDP"], S["ICMP"], S["ARP"]
    Dot1Q, IPv6, Raw, fragment = S["Dot1Q"], S["IPv6"], S["Raw"], S["fragment"]
    me, client = a.src_ip, a.client_ip
    E = Ether(src=a.src_mac, dst=a.dst_mac)
    b = bytes(E / IP(src=me, dst=client) / UDP(sport=a.flow_rport or 5353, dport=40000) /
              Raw(b"x"))
    bb = bytearray(b)
    bb[24] ^= 0x5a
    cat.add("r-ip-bad-csum", "malformed", [bytes(bb)], "a real's UDP answer, IP checksum wrong")
    cat.add("r-ip-truncated", "malformed", [b[:14 + 16]], "16 bytes of IP header")
    cat.add("r-no-connection", "reset",
            [E / IP(src=me, dst=client) / TCP(sport=80, dport=44444, flags="A")],
            "an ACK to the client on no connection: the client hears a RST from the VIP")
    data = bytes(rnd.randbytes(2000))
    fr = fragment(IP(src=me, dst=client, id=4242) / UDP(sport=5353, dport=40001) / Raw(data),
                  fragsize=800)
    cat.add("r-frag-orphan-later", FRAG_EXPECT, [E / fr[1], E / fr[2]],
            "later fragments to the client, no first")
    garbage = bytes([0x00]) + rnd.randbytes(27)
    cat.add("r-icmp-err-garbage", "icmp_unmatched",
            [E / IP(src=me, dst=client) / ICMP(type=3, code=3) / Raw(garbage)],
            "port unreachable to the client quoting garbage")
    cat.add("r-icmp-err-to-lb", "icmp_unmatched",
            [E / IP(src=me, dst=a.lb_ip) / ICMP(type=3, code=3)], "to lb's inside address")
    cat.add("r-arp-gratuitous-foreign", "arp_ignored",
            [Ether(src=a.src_mac, dst="ff:ff:ff:ff:ff:ff") /
             ARP(op=1, hwsrc=a.src_mac, psrc="203.0.113.9", pdst="203.0.113.9")],
            "gratuitous ARP for 203.0.113.9")
    cat.add("r-vlan", "unsupported", [E / Dot1Q(vlan=5) / IP(src=me, dst=client) /
                                      UDP(sport=5353, dport=40000)], "802.1Q")
    cat.add("r-ipv6", "unsupported", [E / IPv6() / UDP()], "IPv6")
    if a.flow_cport:
        # A datagram on the live UDP flow the test made, with TTL 1: lb must not forward it.
        cat.add("r-ttl1-on-flow", "ttl_exceeded",
                [E / IP(src=me, dst=client, ttl=1) / UDP(sport=a.flow_rport, dport=a.flow_cport)
                 / Raw(b"late\n")], "a UDP answer on a live flow with TTL 1")
    return cat


def forward_checks(a):
    """Classes lb must forward: sent from bound UDP sockets so that the real's answer is read.
    Returns [name, "forward", frames_sent, note, ok]."""
    from scapy.all import IP, UDP, Ether, IPOption_NOP, IPOption_RR, Raw
    out = []
    rs = raw_socket(a.iface)
    E = Ether(src=a.src_mac, dst=a.dst_mac)
    cases = []
    # (name, builder(sport) -> frames, payload, note)
    cases.append(("ip-options-udp", lambda sp: [E / IP(src=a.src_ip, dst=a.vip, options=[
        IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP()]) /
        UDP(sport=sp, dport=a.digest_port) / Raw(b"opts\n")], b"opts\n",
        "UDP with 4 NOP IP options (IHL 6)"))
    cases.append(("ip-options-rr", lambda sp: [E / IP(src=a.src_ip, dst=a.vip, options=[
        IPOption_RR(routers=["0.0.0.0"] * 3)]) / UDP(sport=sp, dport=a.digest_port) /
        Raw(b"record-route\n")], b"record-route\n", "UDP with a record-route option"))
    cases.append(("udp-trailing-bytes", lambda sp: [bytes(E / IP(src=a.src_ip, dst=a.vip) /
                                                          UDP(sport=sp, dport=a.digest_port) /
                                                          Raw(b"pad\n")) + b"\xee" * 20],
                  b"pad\n", "Ethernet padding after the datagram"))
    sport = a.sport_base + 900
    for name, build, payload, note in cases:
        sport += 1
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((a.src_ip, sport))
        u.settimeout(2.0)
        frames = [bytes(f) for f in build(sport)]
        for f in frames:
            send_frame(rs, f)
        want = "len=%d sha256=%s" % (len(payload), hashlib.sha256(payload).hexdigest())
        try:
            ans = u.recv(4096).decode(errors="replace").strip()
        except OSError as e:
            ans = "no answer (%s)" % e
        u.close()
        ok = ans.endswith(want)
        out.append([name, "forward", len(frames), note + ("" if ok else "; got " + ans[:80]),
                    ok])
    rs.close()
    return out


def cmd_catalogue(a):
    cat = Catalogue(a)
    if a.side == "client":
        build_client(cat)
    else:
        build_real(cat)
    s = raw_socket(a.iface)
    unsent = 0
    result = []
    for cls in cat.classes:
        name, expect, frames, note = cls[:4]
        n = sum(1 for f in frames if send_frame(s, f))  # only frames sent are expected
        unsent += len(frames) - n
        for f in (cls[4] if len(cls) > 4 else []):
            unsent += not send_frame(s, f)
        result.append([name, expect, n, note, None])
        time.sleep(0.002)
    s.close()
    if a.side == "client" and a.digest_port:
        result += forward_checks(a)
    with open(a.manifest, "w") as f:
        json.dump(result, f)
    n_drop = sum(r[2] for r in result if r[1] not in ("forward", "any"))
    bad = [r for r in result if r[1] == "forward" and not r[4]]
    print("catalogue side=%s classes=%d frames=%d must-drop=%d forward-checks=%d failed=%d%s" % (
        a.side, len(result), sum(r[2] for r in result), n_drop,
        sum(1 for r in result if r[1] == "forward"), len(bad),
        " (%d frames could not be sent)" % unsent if unsent else ""))
    for r in result:
        if r[1] == "forward":
            print("  forward %-22s %s %s" % (r[0], "ok" if r[4] else "FAILED", r[3]))
    return 0 if not bad else 1


def load_workers(path):
    w = json.load(open(path))
    drops, counters = {}, {}
    for wk in w["workers"]:
        for k, v in wk["drops"].items():
            drops[k] = drops.get(k, 0) + v
        for k, v in wk.get("counters", {}).items():
            counters[k] = counters.get(k, 0) + v
        for k in ("rx", "tx", "conns_in_table"):
            counters[k] = counters.get(k, 0) + wk[k]
    return w, drops, counters


def cmd_drops(a):
    _, d0, c0 = load_workers(a.before)
    _, d1, c1 = load_workers(a.after)
    # A RST sent in answer (connections.reset_unknown) accounts for its frame as a drop does.
    d0["reset"] = c0.get("resets_sent", 0)
    d1["reset"] = c1.get("resets_sent", 0)
    want, classes = {}, {}
    for m in a.manifest:
        for name, expect, n, note, _ok in json.load(open(m)):
            if expect in ("forward", "any"):
                continue
            want[expect] = want.get(expect, 0) + n
            classes.setdefault(expect, []).append("%s:%d" % (name, n))
    delta = {k: d1.get(k, 0) - d0.get(k, 0) for k in set(d0) | set(d1)}
    total_want = sum(want.values())
    total_got = sum(delta.values())
    bad = []
    for k in sorted(set(want) | {k for k, v in delta.items() if v}):
        w, g = want.get(k, 0), delta.get(k, 0)
        flag = "ok" if g >= w else "SHORT"
        if g < w:
            bad.append("%s %d < %d" % (k, g, w))
        print("reason %-15s +%-5d expected >= %-4d %s  %s" % (k, g, w, flag,
                                                              " ".join(classes.get(k, []))))
    print("total dropped or reset +%d, frames that cannot be forwarded %d %s" % (
        total_got, total_want, "ok" if total_got >= total_want else "SHORT"))
    if total_got < total_want:
        bad.append("total %d < %d" % (total_got, total_want))
    if bad:
        print("short: " + "; ".join(bad))
    return 0 if not bad else 1


# ---- fragments ----------------------------------------------------------------------------------

def cmd_frag(a):
    rnd = random.Random(a.size)
    data = rnd.randbytes(a.size)
    want = "len=%d sha256=%s" % (len(data), hashlib.sha256(data).hexdigest())
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(a.timeout)
    if a.crafted:
        from scapy.all import IP, UDP, Ether, Raw, fragment
        u.bind((a.src_ip, 0))
        sp = u.getsockname()[1]
        rs = raw_socket(a.iface)
        whole = IP(bytes(IP(src=a.src_ip, dst=a.host, id=sp) / UDP(sport=sp, dport=a.port) /
                         Raw(data)))
        if a.tiny_first:
            # The first fragment holds the UDP header alone (8 bytes), the second the rest.
            body = bytes(whole[UDP])
            frs = [IP(src=a.src_ip, dst=a.host, id=sp, proto=17, flags="MF") / Raw(body[:8]),
                   IP(src=a.src_ip, dst=a.host, id=sp, proto=17, frag=1) / Raw(body[8:])]
        else:
            frs = fragment(whole, fragsize=a.fragsize)
        for f in frs:
            send_frame(rs, bytes(Ether(src=a.src_mac, dst=a.dst_mac) / f))
        how = "crafted, %d fragments%s" % (len(frs), " (an 8-byte first)" if a.tiny_first else "")
    else:
        u.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_MTU_DISCOVER", 10),
                     getattr(socket, "IP_PMTUDISC_DONT", 0))
        u.connect((a.host, a.port))
        u.send(data)
        how = "kernel-fragmented (MTU 1500)"
    try:
        ans = u.recv(4096).decode(errors="replace").strip()
    except OSError as e:
        ans = "no answer (%s)" % e
    ok = ans.endswith(want)
    print("frag %d bytes %s: %s %s" % (a.size, how, ans, "ok" if ok else "MISMATCH (want %s)"
                                       % want))
    return 0 if ok else 1


def cmd_orphan(a):
    from scapy.all import IP, UDP, Ether, Raw, fragment
    rs = raw_socket(a.iface)
    n = 0
    for i in range(a.count):
        frs = fragment(IP(src=a.src_ip, dst=a.host, id=(a.id_base + i) & 0xffff) /
                       UDP(sport=a.id_base + i, dport=a.port) / Raw(b"z" * 1800), fragsize=1000)
        for f in frs[1:]:
            n += send_frame(rs, bytes(Ether(src=a.src_mac, dst=a.dst_mac) / f))
    print("orphan later fragments sent=%d" % n)
    return 0


# ---- floods -----------------------------------------------------------------------------------

def cmd_flood(a):
    net, plen = a.net.split("/")
    base = struct.unpack("!I", socket.inet_aton(net))[0]
    span = 1 << (32 - int(plen))
    rnd = random.Random(a.seed)
    eth = mac_bytes(a.dst_mac) + mac_bytes(a.src_mac) + b"\x08\x00"
    t_build = time.monotonic()
    frames = []
    for _ in range(a.count):
        src = socket.inet_ntoa(struct.pack("!I", base + rnd.randrange(1, span - 1)))
        tcp = tcp_syn(src, a.vip, rnd.randrange(1024, 65535), a.port, rnd.getrandbits(32))
        frames.append(eth + ip_header(src, a.vip, 6, len(tcp), ident=rnd.getrandbits(16)) + tcp)
    build_s = time.monotonic() - t_build
    s = raw_socket(a.iface)
    t0 = time.monotonic()
    sent = failed = 0
    batch = max(1, a.count // max(1, int(a.duration * 100)))  # ~100 batches a second
    for i in range(0, a.count, batch):
        for f in frames[i:i + batch]:
            if send_frame(s, f):
                sent += 1
            else:
                failed += 1
        target = t0 + a.duration * (i + batch) / a.count
        d = target - time.monotonic()
        if d > 0:
            time.sleep(d)
    dt = time.monotonic() - t0
    print("flood syns=%d failed=%d in %.2fs (%.0f/s; built in %.2fs) from %s" % (
        sent, failed, dt, sent / dt if dt else 0, build_s, a.net), flush=True)
    return 0


def arp_frame(eth_dst, sha, op, spa, tha, tpa):
    return (eth_dst + sha + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op) + sha +
            socket.inet_aton(spa) + tha + socket.inet_aton(tpa)).ljust(60, b"\0")


def cmd_arp(a):
    lb_mac = mac_bytes(a.dst_mac)
    s = raw_socket(a.iface)
    frames = []
    if a.claim:
        frames.append(arp_frame(lb_mac, mac_bytes(a.claim_mac), 2, a.claim, lb_mac, a.lb_ip))
    else:
        net, plen = a.net.split("/")
        base = struct.unpack("!I", socket.inet_aton(net))[0]
        rnd = random.Random(a.seed)
        for i in range(a.count):
            src = socket.inet_ntoa(struct.pack("!I", base + a.offset + i))
            sha = bytes([0x02, 0xee]) + rnd.getrandbits(32).to_bytes(4, "big")
            frames.append(arp_frame(lb_mac, sha, 2, src, lb_mac, a.lb_ip))
            frames.append(arp_frame(b"\xff" * 6, sha, 1, src, b"\0" * 6, a.vip))
    t0 = time.monotonic()
    sent = 0
    batch = max(1, len(frames) // max(1, int(a.duration * 100)))  # ~100 batches a second
    for i in range(0, len(frames), batch):
        sent += sum(1 for f in frames[i:i + batch] if send_frame(s, f))
        d = t0 + a.duration * (i + batch) / len(frames) - time.monotonic()
        if d > 0:
            time.sleep(d)
    print("arp frames=%d sent=%d in %.2fs" % (len(frames), sent, time.monotonic() - t0),
          flush=True)
    return 0 if sent == len(frames) else 1


def cmd_udpburst(a):
    eth = mac_bytes(a.dst_mac) + mac_bytes(a.src_mac) + b"\x08\x00"
    frames = []
    payload = b"b" * a.size
    for i in range(256):
        u = udp_dgram(a.src_ip, a.vip, 30000 + i, a.port, payload)
        frames.append(eth + ip_header(a.src_ip, a.vip, 17, len(u), ident=i) + u)
    s = raw_socket(a.iface)
    t0 = time.monotonic()
    sent = 0
    for i in range(a.count):
        try:
            s.send(frames[i & 255])
            sent += 1
        except OSError:
            pass
    dt = time.monotonic() - t0
    print("udpburst sent=%d of %d in %.2fs (%.0f/s)" % (sent, a.count, dt, sent / dt if dt else 0))
    return 0


# ---- legitimate clients -------------------------------------------------------------------

def http_get(host, port, path, timeout, sink=None, rate=0.0, sport=None):
    deadline = time.monotonic() + timeout
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        if sport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", sport))
        if rate:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.connect((host, port))
        s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path, host)).encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            s.settimeout(max(0.05, deadline - time.monotonic()))
            c = s.recv(65536)
            if not c:
                raise ConnectionError("closed before the response header")
            buf += c
        head, rest = buf.split(b"\r\n\r\n", 1)
        status = int(head.split(b" ", 2)[1])
        body = [rest]
        got = len(rest)
        if sink:
            sink(rest)
        t0 = time.monotonic()
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError("timed out reading the body after %d bytes" % got)
            s.settimeout(max(0.05, deadline - time.monotonic()))
            c = s.recv(16384 if rate else 65536)
            if not c:
                break
            got += len(c)
            if sink:
                sink(c)
            else:
                body.append(c)
            if rate:
                ahead = got / rate - (time.monotonic() - t0)
                if ahead > 0:
                    time.sleep(ahead)
        return status, b"".join(body), got
    finally:
        s.close()


def cmd_legit(a):
    t_end = time.monotonic() + a.deadline
    ok = failed = 0
    per, errors = {}, {}
    lat = []
    for i in range(a.count):
        if time.monotonic() >= t_end:
            break
        t0 = time.monotonic()
        try:
            status, body, _ = http_get(a.host, a.port, "/", min(a.timeout, max(
                0.1, t_end - time.monotonic())))
            m = PAGE_RE.match(body)
            if status != 200 or not m:
                raise ValueError("status %d body %r" % (status, body[:60]))
            ok += 1
            per[m.group(1).decode()] = per.get(m.group(1).decode(), 0) + 1
            lat.append(time.monotonic() - t0)
        except Exception as e:  # noqa: BLE001
            failed += 1
            k = "%s: %s" % (type(e).__name__, str(e)[:60])
            errors[k] = errors.get(k, 0) + 1
        if a.interval:
            time.sleep(a.interval)
    untried = a.count - ok - failed
    lat.sort()
    print("legit ok=%d failed=%d untried=%d of %d by-server=%s p50=%.3fs max=%.3fs" % (
        ok, failed, untried, a.count, ",".join("%s:%d" % kv for kv in sorted(per.items())),
        lat[len(lat) // 2] if lat else 0, lat[-1] if lat else 0))
    for k, v in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print("  error: %s (x%d)" % (k, v))
    return 0 if ok == a.count else 1


def cmd_slowget(a):
    h = hashlib.sha256()
    n = [0]

    def sink(b):
        n[0] += len(b)
        h.update(b)

    t0 = time.monotonic()
    try:
        status, _, _ = http_get(a.host, a.port, "/big?size=%d" % a.size, a.timeout, sink=sink,
                                rate=a.rate, sport=a.sport)
    except Exception as e:  # noqa: BLE001
        print("slowget failed after %.2fs, %d bytes: %s: %s" % (
            time.monotonic() - t0, n[0], type(e).__name__, e))
        return 1
    dt = time.monotonic() - t0
    want = expected_sha256(a.size)
    ok = status == 200 and n[0] == a.size and h.hexdigest() == want
    print("slowget status=%d bytes=%d/%d %.2fs %.0f kB/s sha256 %s" % (
        status, n[0], a.size, dt, n[0] / dt / 1e3 if dt else 0, "ok" if ok else "MISMATCH"))
    return 0 if ok else 1


def cmd_idle(a):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    partial = b"GET /metrics HTTP/1.1\r\nHost: x\r\n" if a.tcp else b'{"cmd":"sta'
    t_end = time.monotonic() + a.hold
    socks, failed = [], 0
    for i in range(a.count):
        try:
            if a.tcp:
                host, port = a.tcp.rsplit(":", 1)
                s = socket.create_connection((host, int(port)), timeout=2)
            else:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(2)
                s.connect(a.unix)
            if a.partial_every and i % a.partial_every == 0:
                s.send(partial)
            socks.append(s)
        except OSError:
            failed += 1
    print("idle open=%d failed=%d" % (len(socks), failed), flush=True)
    while time.monotonic() < t_end:
        time.sleep(0.1)
    for s in socks:
        s.close()
    return 0


def cmd_hold(a):
    t_end = time.monotonic() + a.timeout
    s = socket.create_connection((a.host, a.port), timeout=a.timeout)
    try:
        s.sendall(("GET /hold HTTP/1.0\r\nHost: %s\r\n\r\n" % a.host).encode())
        buf = b""
        while b" start\n" not in buf:
            c = s.recv(4096)
            if not c:
                print("hold failed: closed before the first line")
                return 1
            buf += c
        server = buf.split(b"\r\n\r\n", 1)[-1].split(b" ", 1)[0].decode()
        print("hold port=%d server=%s" % (s.getsockname()[1], server), flush=True)
        while not os.path.exists(a.go):
            if time.monotonic() >= t_end:
                print("hold failed: no go before the timeout")
                return 1
            time.sleep(0.05)
        s.sendall(b"\n")
        while b" end\n" not in buf:
            s.settimeout(max(0.05, t_end - time.monotonic()))
            c = s.recv(4096)
            if not c:
                print("hold failed: closed before the second line")
                return 1
            buf += c
        print("hold ok: the connection to %s lived" % server)
        return 0
    except OSError as e:
        print("hold failed: %s: %s" % (type(e).__name__, e))
        return 1
    finally:
        s.close()


def cmd_spoof(a):
    from scapy.all import IP, TCP, Ether  # noqa: PLC0415
    rnd = random.Random()
    f = Ether(src=a.src_mac, dst=a.dst_mac) / IP(src=a.src_ip, dst=a.vip) / TCP(
        sport=a.sport, dport=a.dport, flags=a.flags, seq=rnd.getrandbits(32),
        ack=rnd.getrandbits(32) if "A" in a.flags else 0)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((a.iface, 0))
    s.send(bytes(f))
    s.close()
    print("spoof %s %s:%d -> %s:%d sent" % (a.flags, a.src_ip, a.sport, a.vip, a.dport))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)

    def l2(p):
        p.add_argument("--iface", default="eth0")
        p.add_argument("--src-mac", required=True)
        p.add_argument("--dst-mac", required=True, help="lb's MAC on this side")
        p.add_argument("--src-ip", required=True)

    p = sub.add_parser("catalogue")
    l2(p)
    p.add_argument("--side", choices=("client", "real"), required=True)
    p.add_argument("--vip", default="198.51.100.10")
    p.add_argument("--lb-ip", required=True, help="lb's address on this side")
    p.add_argument("--client-ip", default="198.51.100.2")
    p.add_argument("--foreign-ip", default="10.10.0.2", help="an address of lb's other side")
    p.add_argument("--unused-ip", default="198.51.100.77")
    p.add_argument("--digest-port", type=int, default=0,
                   help="VIP port of the UDP digest service (forward checks; client side)")
    p.add_argument("--sport-base", type=int, default=21000)
    p.add_argument("--land-expect", default="martian")
    p.add_argument("--flow-cport", type=int, default=0, help="real side: a live UDP flow's "
                   "client port")
    p.add_argument("--flow-rport", type=int, default=0)
    p.add_argument("--manifest", required=True)

    p = sub.add_parser("drops")
    p.add_argument("--manifest", action="append", required=True)
    p.add_argument("--before", required=True)
    p.add_argument("--after", required=True)

    p = sub.add_parser("frag")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--size", type=int, default=3000)
    p.add_argument("--timeout", type=float, default=3.0)
    p.add_argument("--crafted", action="store_true")
    p.add_argument("--fragsize", type=int, default=1000, help="crafted: fragment payload bytes")
    p.add_argument("--tiny-first", action="store_true", help="crafted: an 8-byte first fragment")
    p.add_argument("--iface", default="eth0")
    p.add_argument("--src-mac")
    p.add_argument("--dst-mac")
    p.add_argument("--src-ip")

    p = sub.add_parser("orphan")
    l2(p)
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=5)
    p.add_argument("--id-base", type=int, default=50000)

    p = sub.add_parser("flood")
    l2(p)
    p.add_argument("--vip", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--net", default="198.18.0.0/15")
    p.add_argument("--count", type=int, default=30000)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=1)

    p = sub.add_parser("arp")
    p.add_argument("--iface", default="eth0")
    p.add_argument("--dst-mac", required=True, help="lb's MAC on this side")
    p.add_argument("--lb-ip", required=True, help="lb's address on this side")
    p.add_argument("--vip", default="198.51.100.10")
    p.add_argument("--net", default="198.50.0.0/15")
    p.add_argument("--offset", type=int, default=256, help="first source: --net + offset")
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--duration", type=float, default=0.0, help="spread over this many seconds")
    p.add_argument("--claim", help="one reply claiming this address instead of the flood")
    p.add_argument("--claim-mac", default="02:de:ad:be:ef:01")

    p = sub.add_parser("udpburst")
    l2(p)
    p.add_argument("--vip", required=True)
    p.add_argument("--port", type=int, default=53)
    p.add_argument("--count", type=int, default=50000)
    p.add_argument("--size", type=int, default=1000)

    p = sub.add_parser("legit")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--deadline", type=float, default=30.0)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--interval", type=float, default=0.0)

    p = sub.add_parser("slowget")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--size", type=int, required=True)
    p.add_argument("--rate", type=float, default=0.0, help="bytes/s; 0: as fast as it comes")
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--sport", type=int)
    p.add_argument("--ready-file")

    p = sub.add_parser("hold")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, default=80)
    p.add_argument("--go", required=True, help="a file whose existence ends the wait")
    p.add_argument("--timeout", type=float, default=30)
    p = sub.add_parser("spoof")
    l2(p)
    p.add_argument("--vip", required=True)
    p.add_argument("--sport", type=int, required=True)
    p.add_argument("--dport", type=int, default=80)
    p.add_argument("--flags", required=True, help="scapy's TCP flags, e.g. RA, FA, S")
    p = sub.add_parser("idle")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--tcp", help="HOST:PORT")
    g.add_argument("--unix", help="socket path")
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--partial-every", type=int, default=0)
    p.add_argument("--hold", type=float, default=30.0)

    a = ap.parse_args()
    fn = {"catalogue": cmd_catalogue, "drops": cmd_drops, "frag": cmd_frag, "orphan": cmd_orphan,
          "flood": cmd_flood, "udpburst": cmd_udpburst, "arp": cmd_arp, "legit": cmd_legit,
          "slowget": cmd_slowget, "idle": cmd_idle, "hold": cmd_hold, "spoof": cmd_spoof}[a.cmd]
    return fn(a)


if __name__ == "__main__":
    sys.exit(main())
