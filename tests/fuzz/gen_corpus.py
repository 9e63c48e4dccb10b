#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/ (deterministic:
running it again gives the same files). Needs python3-scapy.

    tests/fuzz/gen_corpus.py

fuzz_parse     single frames: ARP, TCP/UDP/ICMP, ICMP errors, IP options, fragments, VLAN, IPv6
fuzz_packet    runs of bursts in fuzz_packet.cpp's format (flags byte, config variant byte, then
               [H][len16][frame] records) against its config: NAT, tun and dr conversations,
               persistence, held frames, ICMP errors both ways, ARP, echo, fragments, two
               workers; and against variants: small and jumbo MTUs, every real nat / tun / dr,
               a third port, a burst that fills a TX list (with and without the mid-burst sink)
fuzz_config    conf/*.conf without their comment lines, fuzz_packet's config, a broken one
fuzz_protocol  a mode byte, then request lines (JSON), reply lines, the frames of an old lbctl
"""
import json
import os
import re
import struct
import sys

from scapy.all import ARP, ICMP, IP, IPv6, TCP, UDP, Dot1Q, Ether, Raw, conf, fragment
from scapy.layers.inet import IPerror, TCPerror, UDPerror

conf.verb = 0

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CORPUS = os.path.join(HERE, "corpus")

P0_MAC, P1_MAC = "02:00:00:00:00:01", "02:00:00:00:01:01"
P0_IP, P1_IP = "198.51.100.1", "10.10.0.1"
CLIENT, CLIENT_MAC = "198.51.100.2", "02:00:00:00:00:02"
CLIENT2 = "198.51.100.3"
ROUTER_OUT = "198.51.100.254"
REMOTE = "203.0.113.9"


def mac_for(ip):
    """The MAC fuzz_packet.cpp gives a neighbour: 02:42 and the address's four bytes."""
    return "02:42:" + ":".join("%02x" % int(x) for x in ip.split("."))


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as fh:
        fh.write(bytes(data))


def out(src, dst, l4, **ip):
    """A frame arriving on port 0 from outside."""
    return Ether(dst=P0_MAC, src=CLIENT_MAC) / IP(src=src, dst=dst, **ip) / l4


def inside(src, dst, l4, **ip):
    """A frame arriving on port 1 from a real."""
    return Ether(dst=P1_MAC, src=mac_for(src)) / IP(src=src, dst=dst, **ip) / l4


# ---- fuzz_parse ---------------------------------------------------------------------------

def parse_seeds():
    syn = out(CLIENT, "198.51.100.10", TCP(sport=40000, dport=80, flags="S"))
    seeds = {
        "arp_request": Ether(dst="ff:ff:ff:ff:ff:ff", src=CLIENT_MAC) /
        ARP(op=1, hwsrc=CLIENT_MAC, psrc=CLIENT, pdst="198.51.100.10"),
        "tcp_syn": syn,
        "tcp_options": out(CLIENT, "198.51.100.10",
                           TCP(sport=40000, dport=80, flags="S",
                               options=[("MSS", 1460), ("WScale", 7)])),
        "udp": out(CLIENT, "198.51.100.10", UDP(sport=5000, dport=53) / Raw(b"q" * 12)),
        "icmp_echo": out(CLIENT, "198.51.100.10", ICMP(type=8, id=7, seq=1) / Raw(b"ping")),
        "icmp_frag_needed": out(ROUTER_OUT, "198.51.100.10",
                                ICMP(type=3, code=4, nexthopmtu=1400) /
                                IPerror(src="198.51.100.10", dst=REMOTE) /
                                TCPerror(sport=80, dport=40000)),
        "icmp_unreach_udp": inside("10.10.0.2", CLIENT,
                                   ICMP(type=3, code=3) /
                                   IPerror(src=CLIENT, dst="10.10.0.2") /
                                   UDPerror(sport=5000, dport=5353)),
        "ip_options": Ether(dst=P0_MAC, src=CLIENT_MAC) /
        IP(src=CLIENT, dst="198.51.100.10", options=[b"\x94\x04\x00\x00"]) /
        TCP(sport=40001, dport=80, flags="S"),
        "vlan": Ether(dst=P0_MAC, src=CLIENT_MAC) / Dot1Q(vlan=5) / IP(src=CLIENT, dst=P0_IP) /
        ICMP(),
        "ipv6": Ether(dst=P0_MAC, src=CLIENT_MAC) / IPv6(src="2001:db8::2", dst="2001:db8::1") /
        UDP(sport=1, dport=2),
        "truncated": bytes(syn)[:30],
    }
    frags = fragment(IP(src=CLIENT, dst="198.51.100.10", id=77) /
                     UDP(sport=5000, dport=53) / Raw(b"x" * 64), fragsize=32)
    seeds["frag_first"] = Ether(dst=P0_MAC, src=CLIENT_MAC) / frags[0]
    seeds["frag_later"] = Ether(dst=P0_MAC, src=CLIENT_MAC) / frags[1]
    for name, frame in seeds.items():
        write("fuzz_parse", name, bytes(frame))


# ---- fuzz_packet ----------------------------------------------------------------------------

# Record header bits (fuzz_packet.cpp).
PORT1, END, EXPIRE, RESOLVE, WORKER1, CHAINED = 1, 2, 0x10, 0x20, 0x40, 0x80
ADV_1MS, ADV_250MS, ADV_2S, ADV_400S = 0, 4, 8, 12


# The config variant byte (fuzz_packet.cpp): port 1's MTU, port 0's MTU, forward methods, a
# third port, the TX sink.
IN_MTU_68, IN_MTU_1500, IN_MTU_9000 = 1, 2, 3
OUT_MTU_576, OUT_MTU_9216, OUT_MTU_1280 = 4, 8, 12
ALL_NAT, ALL_TUN, ALL_DR = 0x10, 0x20, 0x30
THIRD_PORT, TX_SINK = 0x40, 0x80
P2_MAC = "02:00:00:00:02:01"


class Run:
    def __init__(self, flags=0, variant=0):
        self.data = bytearray([flags, variant])

    def frame(self, f, hdr=0):
        raw = bytes(f)
        self.data += bytes([hdr]) + struct.pack(">H", len(raw)) + raw
        return self

    def burst(self, frames, hdr=0):
        """`hdr` applies after the burst (clock, expiry, resolve) and, for WORKER1, to it."""
        for i, f in enumerate(frames):
            last = i == len(frames) - 1
            self.frame(f, port_of(f) | (hdr | END if last else hdr & WORKER1))
        return self


def port_of(f):
    """Frames to port 1's MAC, and ARP from the inside subnet, arrive on port 1."""
    if f[Ether].dst == P1_MAC or (ARP in f and f[ARP].psrc.startswith("10.10.0.")):
        return PORT1
    return 0


def tcp_in(client, vip, sport, dport, tcp_flags, payload=b"", **ip):
    return out(client, vip, TCP(sport=sport, dport=dport, flags=tcp_flags) / Raw(payload), **ip)


def tcp_back(real, rport, client, cport, flags):
    return inside(real, client, TCP(sport=rport, dport=cport, flags=flags))


def packet_seeds():
    v10, v11, v12, v13 = "198.51.100.10", "198.51.100.11", "198.51.100.12", "198.51.100.13"
    # NAT TCP conversation: the rr service hands out .2, .3, .4 (no neighbour: held, resolved).
    r = Run()
    r.burst([tcp_in(CLIENT, v10, 40000, 80, "S"), tcp_in(CLIENT, v10, 40001, 80, "S"),
             tcp_in(CLIENT, v10, 40002, 80, "S")], hdr=RESOLVE)
    r.burst([tcp_back("10.10.0.2", 8080, CLIENT, 40000, "SA"),
             tcp_back("10.10.0.3", 8080, CLIENT, 40001, "SA")], hdr=ADV_250MS)
    r.burst([tcp_in(CLIENT, v10, 40000, 80, "A", b"GET / HTTP/1.0\r\n\r\n"),
             tcp_in(CLIENT, v10, 40000, 80, "FA")], hdr=RESOLVE | ADV_2S)
    r.burst([tcp_back("10.10.0.2", 8080, CLIENT, 40000, "FA"),
             tcp_in(CLIENT, v10, 40000, 80, "A")], hdr=ADV_400S | EXPIRE)
    r.burst([tcp_in(CLIENT, v10, 40000, 80, "S")])
    write("fuzz_packet", "nat_tcp", r.data)

    # Persistent UDP (/24 mask) from two clients, then expiry of connections and templates.
    r = Run()
    r.burst([out(c, v10, UDP(sport=5000 + i, dport=53) / Raw(b"q%d" % i))
             for i, c in enumerate([CLIENT, CLIENT2, CLIENT, CLIENT2])], hdr=ADV_2S)
    r.burst([inside("10.10.0.2", CLIENT, UDP(sport=5353, dport=5000) / Raw(b"a"))],
            hdr=ADV_400S | EXPIRE)
    r.burst([out(CLIENT, v10, UDP(sport=5009, dport=53))], hdr=ADV_400S | EXPIRE)
    write("fuzz_packet", "nat_udp_persist", r.data)

    # tun: to 10.10.0.5 on the MTU 576 port (DF: fragmentation needed; no DF: fragments), to
    # 192.0.2.7 through the inside router; tun/dr UDP service with sh.
    big = b"z" * 900
    r = Run()
    r.burst([tcp_in(CLIENT, v11, 41000, 80, "S"), tcp_in(CLIENT2, v11, 41001, 80, "S")])
    r.burst([tcp_in(CLIENT, v11, 41000, 80, "A", big, flags="DF"),
             tcp_in(CLIENT2, v11, 41001, 80, "A", big)])
    r.burst([out(CLIENT, v11, UDP(sport=6000 + i, dport=53) / Raw(b"t")) for i in range(4)],
            hdr=ADV_2S)
    r.burst([tcp_in(CLIENT, v11, 41000, 80, "FA"), tcp_in(CLIENT, v11, 41000, 80, "S")])
    write("fuzz_packet", "tun", r.data)

    # dr with persistence and thresholds (lc), a real without neighbour; mh with fallback.
    r = Run(0x04)  # real slot 0 overloaded
    r.burst([tcp_in(c, v12, 42000 + i, 80, "S")
             for i, c in enumerate([CLIENT, CLIENT2, CLIENT, "198.51.100.77"])])
    r.burst([tcp_in(CLIENT, v12, 42000, 80, "A"), tcp_in(CLIENT, v12, 42000, 80, "R")],
            hdr=RESOLVE | ADV_2S)
    r.burst([tcp_in(CLIENT, v12, 43000 + i, 443, "S") for i in range(3)] +
            [tcp_in(CLIENT, v13, 44000 + i, 80, "S") for i in range(3)] +
            [out(CLIENT, v13, UDP(sport=7000, dport=53))] +
            [tcp_in(CLIENT, v13, 44100 + i, 81 + 2 * (i % 2), "S") for i in range(4)] +
            [out(CLIENT, v13, UDP(sport=7100 + i, dport=82)) for i in range(3)],
            hdr=ADV_400S | EXPIRE)
    write("fuzz_packet", "dr_persist_sched", r.data)

    # The director itself: ARP requests and replies, echo to VIP and to its addresses,
    # ICMP errors about NAT connections from both sides, a multi-segment frame.
    r = Run()
    r.burst([Ether(dst="ff:ff:ff:ff:ff:ff", src=CLIENT_MAC) /
             ARP(op=1, hwsrc=CLIENT_MAC, psrc=CLIENT, pdst=v10),
             Ether(dst=P0_MAC, src="02:00:00:00:00:33") /
             ARP(op=2, hwsrc="02:00:00:00:00:33", psrc="198.51.100.33", pdst=P0_IP,
                 hwdst=P0_MAC),
             out(CLIENT, v10, ICMP(type=8, id=1, seq=1) / Raw(b"ping")),
             out(CLIENT, P0_IP, ICMP(type=8, id=1, seq=2))])
    r.burst([Ether(dst="ff:ff:ff:ff:ff:ff", src=mac_for("10.10.0.2")) /
             ARP(op=1, hwsrc=mac_for("10.10.0.2"), psrc="10.10.0.2", pdst=P1_IP)])
    r.burst([tcp_in(REMOTE, v10, 45000, 80, "S"), out(CLIENT, v10, UDP(sport=5055, dport=53))])
    r.burst([Ether(dst=P0_MAC, src=mac_for(ROUTER_OUT)) /
             IP(src=ROUTER_OUT, dst=v10) / ICMP(type=3, code=4, nexthopmtu=1400) /
             IPerror(src=v10, dst=REMOTE) / TCPerror(sport=80, dport=45000)])
    r.burst([inside("10.10.0.2", CLIENT, ICMP(type=3, code=3) /
                    IPerror(src=CLIENT, dst="10.10.0.2") / UDPerror(sport=5055, dport=5353))])
    r.frame(tcp_in(CLIENT, v10, 45001, 80, "S"), CHAINED | END)
    write("fuzz_packet", "director", r.data)

    # Fragments of a UDP datagram to a NAT service (first, later), reordered.
    frags = fragment(IP(src=CLIENT, dst=v10, id=99) / UDP(sport=5100, dport=53) /
                     Raw(b"f" * 120), fragsize=48)
    r = Run()
    r.burst([Ether(dst=P0_MAC, src=CLIENT_MAC) / f for f in [frags[0], frags[2], frags[1]]])
    write("fuzz_packet", "fragments", r.data)

    # Two workers: clients spread over them; replies arrive at the other worker.
    r = Run(0x01)
    r.burst([tcp_in("198.51.100.%d" % (2 + i), v10, 46000, 80, "S") for i in range(6)],
            hdr=RESOLVE)
    r.burst([tcp_back("10.10.0.%d" % (2 + i % 3), 8080, "198.51.100.%d" % (2 + i), 46000, "SA")
             for i in range(6)], hdr=WORKER1)
    r.burst([out("198.51.100.%d" % (2 + i), v10, UDP(sport=5000, dport=53)) for i in range(4)],
            hdr=WORKER1 | ADV_400S | EXPIRE)
    write("fuzz_packet", "two_workers", r.data)

    # The clock starts just before its 32-bit wrap.
    r = Run(0x02)
    r.burst([tcp_in(CLIENT, v10, 47000, 80, "S")], hdr=ADV_2S)
    r.burst([tcp_in(CLIENT, v10, 47000, 80, "A")], hdr=ADV_400S | EXPIRE)
    r.burst([tcp_in(CLIENT, v10, 47000, 80, "A")])
    write("fuzz_packet", "clock_wrap", r.data)

    # A burst that makes more frames than a TX list holds: 16 datagrams of 2000 bytes without DF
    # (4 fragments each at MTU 576) and 16 small ones, all for port 1; with three ports (the
    # list after port 1's is port 2's), without and with the mid-burst sink.
    over = [out(CLIENT, v10, UDP(sport=5200 + i, dport=53) /
                Raw(bytes([i]) * (1972 if i % 2 == 0 else 60))) for i in range(32)]
    for name, variant in (("tx_overflow", THIRD_PORT), ("tx_overflow_sink", THIRD_PORT | TX_SINK)):
        r = Run(0, variant)
        r.burst(over)
        r.burst([tcp_in(CLIENT, v10, 40000, 80, "S"),
                 Ether(dst=P2_MAC, src="02:00:00:00:02:09") /
                 IP(src="203.0.113.9", dst=v11) / TCP(sport=48000, dport=80, flags="S")])
        write("fuzz_packet", name, r.data)

    # The smallest inside MTU (68: 48 bytes a fragment) and jumbo frames outside, every real tun:
    # outer fragments past a list's size, fragmentation-needed; the sink drains.
    r = Run(0, IN_MTU_68 | OUT_MTU_9216 | ALL_TUN | TX_SINK)
    r.burst([tcp_in(CLIENT, v10, 40100 + i, 80, "S") for i in range(3)], hdr=RESOLVE)
    r.burst([tcp_in(CLIENT, v10, 40100 + i, 80, "A", b"y" * 1400) for i in range(3)] +
            [tcp_in(CLIENT, v10, 40100, 80, "A", b"y" * 1400, flags="DF")])
    write("fuzz_packet", "mtu68_tun", r.data)

    # Every real dr (tun where dr cannot reach), a small outside MTU; replies from inside.
    r = Run(0x01, OUT_MTU_576 | ALL_DR | IN_MTU_1500)
    r.burst([tcp_in("198.51.100.%d" % (2 + i), v12, 49000, 80, "S") for i in range(4)],
            hdr=RESOLVE)
    r.burst([tcp_in("198.51.100.%d" % (2 + i), v12, 49000, 80, "A", b"d" * 1000)
             for i in range(4)], hdr=ADV_2S)
    write("fuzz_packet", "all_dr", r.data)

    # Every real nat, jumbo inside MTU: big replies back out through MTU 1280.
    r = Run(0, IN_MTU_9000 | OUT_MTU_1280 | ALL_NAT)
    r.burst([tcp_in(CLIENT, v11, 41000, 80, "S"), out(CLIENT, v13, UDP(sport=7000, dport=53))],
            hdr=RESOLVE)
    r.burst([inside("10.10.0.5", CLIENT, TCP(sport=80, dport=41000, flags="A") / Raw(b"r" * 1900)),
             inside("10.10.0.2", CLIENT, UDP(sport=53, dport=7000) / Raw(b"u" * 1900))])
    write("fuzz_packet", "all_nat_jumbo", r.data)


# ---- fuzz_config ----------------------------------------------------------------------------

def strip_comments(text):
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    return "\n".join(ln for ln in lines if ln.strip()) + "\n"


def config_seeds():
    confdir = os.path.join(REPO, "conf")
    for name in sorted(os.listdir(confdir)):
        if name.endswith(".conf") and "-2workers" not in name:  # near copies
            with open(os.path.join(confdir, name)) as fh:
                write("fuzz_config", name, strip_comments(fh.read()).encode())
    with open(os.path.join(HERE, "fuzz_packet.cpp")) as fh:
        src = fh.read()
    m = re.search(r'kConfig = R"\((.*?)\)";', src, re.S)
    write("fuzz_config", "fuzz_packet.conf", m.group(1).lstrip().encode())
    # A syntax error right after a string: libconfig leaks the string (tests/fuzz/lsan.supp).
    write("fuzz_config", "string_then_error.conf", b'workers"x" = [1];\n')


# ---- fuzz_protocol --------------------------------------------------------------------------

VERSION = 4


def line(name, key="cmd", **fields):
    """One message of the control protocol: a JSON line, its name first, then the version."""
    msg = {key: name, "version": VERSION}
    msg.update(fields)
    return (json.dumps(msg, separators=(",", ":")) + "\n").encode()


def op(kind, proto="tcp", vip="198.51.100.10", port=80, sched="rr", flags="", persist=0,
       mask="255.255.255.255", real="0.0.0.0", rport=0, fwd="nat", weight=1):
    return {"kind": kind, "has_service": kind not in ("clear", "set-timeout"), "proto": proto,
            "vip": vip, "port": port, "scheduler": sched, "sched_flags": flags,
            "persistence": persist, "persist_mask": mask, "real": real, "real_port": rport,
            "forward": fwd, "weight": weight, "u_threshold": 0, "l_threshold": 0, "tcp": 0,
            "tcpfin": 0, "udp": 0}


def status():
    rates = {"cps": 0, "inpps": 0, "outpps": 0, "inbps": 0, "outbps": 0}
    real = {"addr": "10.10.0.2", "port": 80, "forward": "nat", "weight": 1, "u_threshold": 0,
            "l_threshold": 0, "overloaded": False, "rates": rates, "active": 1, "inactive": 0,
            "persist": 0, "conns": 7, "in_pkts": 8, "out_pkts": 9, "in_bytes": 10,
            "out_bytes": 11}
    svc = {"proto": "tcp", "vip": "198.51.100.10", "port": 80, "scheduler": "rr",
           "persistence": 0, "persist_mask": "255.255.255.255", "sched_flags": "",
           "rates": rates, "conns": 1, "in_pkts": 2, "out_pkts": 3, "in_bytes": 4,
           "out_bytes": 5, "reals": [real]}
    return line("status", "type", conn_capacity=1048576, tcp_timeout=900, tcpfin_timeout=120,
                udp_timeout=300, services=[svc])


def workers():
    w = {"lcore": 1, "rx": 10, "tx": 9, "redirected_out": 0, "redirected_in": 0,
         "conns_created": 3, "conns_expired": 1, "conns_in_table": 2, "table_capacity": 64,
         "counters": {"arp_replies": 2}, "drops": {"malformed": 1}}
    port = {"port": 0, "name": "net_af_packet0", "ipackets": 10, "opackets": 9, "ibytes": 640,
            "obytes": 576, "imissed": 0, "ierrors": 0, "rx_nombuf": 0, "oerrors": 0,
            "rx_ring_drops": 3}
    return line("workers", "type", mbufs_total=65535, mbufs_in_use=100, workers=[w],
                ports=[port])


def connections():
    conn = line("conn", "type", proto="tcp", template=False, client="198.51.100.2",
                cport=40000, vip="198.51.100.10", vport=80, real="10.10.0.2", rport=80,
                forward="nat", state="ESTABLISHED", expire=899)
    return line("connections", "type", total=1) + conn + line("end", "type", count=1)


def legacy_frame(t, payload=b""):
    """A request of the binary protocol (versions 1 to 3): lb answers it with an Error frame."""
    return struct.pack("<IHHI", 0x3143424C, 3, t, len(payload)) + payload


def protocol_seeds():
    adds = [op("add-service", sched="wlc"), op("add-real", real="10.10.0.4", rport=80, weight=2),
            op("set-timeout"), op("zero"), op("clear")]
    seeds = {
        "get_status": b"\x00" + line("status"),
        "two_requests": b"\x00" + line("workers") + line("connections"),
        "apply": b"\x00" + line("apply", ops=adds),
        "write_config": b"\x03" + line("write-config", path="/tmp/x.conf"),
        "reload_chunked": b"\x01" + line("reload") + line("status"),
        "idle_partial": b"\x20" + line("status")[:7],
        "by_hand": b"\x00" + b'  { "cmd" : "status" }\r\n\n{"version":4,"cmd":"workers"}\n',
        "escapes": b"\x00" + b'{"cmd":"write-config","path":"/tmp/\\u00e9\\ud83d\\ude00\\n\\""}\n',
        "other_version": b"\x00" + b'{"cmd":"status","version":5}\n',
        "unknown_cmd": b"\x00" + b'{"cmd":"frobnicate","x":[1,{"y":null}]}\n',
        "bad_json": b"\x00" + b'{"cmd":"apply","ops":[{"kind":"clear",}]}\n',
        "legacy_frame": b"\x00" + legacy_frame(1),
        "legacy_apply": b"\x02" + legacy_frame(3, b"\x00" * 10),
        "status_reply": b"\x00" + status(),
        "workers_reply": b"\x00" + workers(),
        "connections_reply": b"\x00" + connections(),
        "error_reply": b"\x00" + line("error", "type", message="no \"such\" service \u00e9"),
    }
    for name, data in seeds.items():
        write("fuzz_protocol", name, data)


def main():
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    parse_seeds()
    packet_seeds()
    config_seeds()
    protocol_seeds()


if __name__ == "__main__":
    main()
