"""Shared vocabulary of the golden tests' generators (tests/golden/NNN_name/gen.py).

The topology every lb.conf describes:

    client 198.51.100.2 --- port 0 198.51.100.1/24  [lb]  port 1 10.10.0.1/24 --- 10.10.0.2 real
    client 198.51.100.3     (outside)                          (inside)          10.10.0.3 real
    router 198.51.100.254                                                        10.10.0.254 router

    VIP 198.51.100.10: tcp/80 rr -> 10.10.0.2:8080, 10.10.0.3:8080 (nat)
                       udp/53 rr -> 10.10.0.2:5353, 10.10.0.3:5353 (nat)

A generator builds the frames that arrive on each port (send0: outside, send1: inside) and the
frames lb must transmit on each port (expect0, expect1), then calls write(). Expected frames are
built with every checksum deleted so that scapy recomputes it: lb updates checksums
incrementally, and for valid input that equals a full recompute.
"""
import os
import struct
import sys

from scapy.all import (  # noqa: F401  (re-exported for the generators)
    ARP, ICMP, IP, IPv6, TCP, UDP, Dot1Q, Ether, Packet, Padding, Raw, conf)

from scapy.layers.inet import ICMPerror, IPerror, TCPerror, UDPerror  # noqa: E402

conf.verb = 0
# Dissect nothing above L4 (no DNS on port 53/5353, ...): payloads stay Raw bytes, so that
# rebuilding a parsed frame reproduces its payload byte for byte.
conf.layers.filter([Ether, Dot1Q, ARP, IP, IPv6, TCP, UDP, ICMP, IPerror, TCPerror, UDPerror,
                    ICMPerror, Raw, Padding])

# Port 0, the outside.
P0_MAC = "02:00:00:00:00:01"
P0_IP = "198.51.100.1"
# Port 1, the inside.
P1_MAC = "02:00:00:00:01:01"
P1_IP = "10.10.0.1"

VIP = "198.51.100.10"

CLIENT_A, CLIENT_A_MAC = "198.51.100.2", "02:00:00:00:00:02"
CLIENT_B, CLIENT_B_MAC = "198.51.100.3", "02:00:00:00:00:03"
ROUTER_OUT, ROUTER_OUT_MAC = "198.51.100.254", "02:00:00:00:00:fe"

REAL1, REAL1_MAC = "10.10.0.2", "02:00:00:00:01:02"
REAL2, REAL2_MAC = "10.10.0.3", "02:00:00:00:01:03"
ROUTER_IN, ROUTER_IN_MAC = "10.10.0.254", "02:00:00:00:01:fe"

REAL_MAC = {REAL1: REAL1_MAC, REAL2: REAL2_MAC}
CLIENT_MAC = {CLIENT_A: CLIENT_A_MAC, CLIENT_B: CLIENT_B_MAC}

TCP_PORT, TCP_REAL_PORT = 80, 8080
UDP_PORT, UDP_REAL_PORT = 53, 5353

ETH_MIN = 60  # minimum Ethernet frame without FCS, as a NIC delivers it


def pad(frame, size=ETH_MIN):
    """Pads a frame with zero bytes to `size` (a NIC's padding of a short frame)."""
    raw = bytes(frame)
    if len(raw) < size:
        raw += b"\x00" * (size - len(raw))
    return Ether(raw)


def rebuild(pkt):
    """A copy of `pkt` with every IP/TCP/UDP/ICMP checksum and length recomputed by scapy,
    keeping any trailing Ethernet padding as it was."""
    pkt = pkt.copy()
    padding = pkt.getlayer(Padding)
    pad_bytes = bytes(padding.load) if padding is not None else b""
    if padding is not None:
        padding.underlayer.remove_payload()
    for layer in (IP, TCP, UDP, ICMP):
        lay = pkt.getlayer(layer)
        while lay is not None:
            if hasattr(lay, "chksum") and not (layer is UDP and lay.chksum == 0):
                lay.chksum = None
            lay = lay.payload.getlayer(layer) if lay.payload else None
    raw = bytes(pkt) + pad_bytes
    return Ether(raw)


def nat_in(frame, real, real_port, real_mac=None):
    """What lb sends on port 1 for a client frame to the VIP: eth P1_MAC -> real's MAC,
    IP dst = real, L4 dport = real_port, TTL - 1, checksums fixed; the rest unchanged."""
    out = frame.copy()
    out[Ether].src = P1_MAC
    out[Ether].dst = real_mac or REAL_MAC[real]
    out[IP].dst = real
    out[IP].ttl -= 1
    l4 = out[IP].payload
    l4.dport = real_port
    return rebuild(out)


def nat_out(frame, vip, vport, client_mac=None):
    """What lb sends on port 0 for a real's reply: eth P0_MAC -> client's MAC, IP src = VIP,
    L4 sport = vport, TTL - 1, checksums fixed; the rest unchanged."""
    out = frame.copy()
    out[Ether].src = P0_MAC
    out[Ether].dst = client_mac or CLIENT_MAC[out[IP].dst]
    out[IP].src = vip
    out[IP].ttl -= 1
    l4 = out[IP].payload
    l4.sport = vport
    return rebuild(out)


def ip_bytes(ip_pkt):
    """The wire bytes of an IP packet with its checksums computed."""
    return bytes(IP(bytes(ip_pkt)))


def quote(ip_pkt, n):
    """The first n bytes of an IP packet as an ICMP error quotes it (checksums as computed
    over the whole packet, the total length field unchanged)."""
    return ip_bytes(ip_pkt)[:n]


def icmp_error(eth_src, eth_dst, src, dst, typ, code, quoted, ttl=64, ip_id=0, mtu=0):
    """An ICMP error frame: `quoted` is the raw bytes of the (possibly truncated) quote."""
    icmp = ICMP(type=typ, code=code)
    if typ == 3 and code == 4:
        icmp.nexthopmtu = mtu
    return Ether(dst=eth_dst, src=eth_src) / IP(src=src, dst=dst, ttl=ttl, id=ip_id) / icmp / \
        Raw(quoted)


# --- self-check: every frame a generator writes must be what it claims to be -------------------

def _sum16(data):
    if len(data) % 2:
        data += b"\x00"
    s = 0
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def check_ipv4(ip, quoted=False, what="frame"):
    """Asserts that the IPv4 packet `ip` (bytes) has a valid header checksum and, unless it is a
    truncated quote or a fragment, a valid L4 checksum; recurses into ICMP errors' quotes."""
    ihl = (ip[0] & 15) * 4
    assert _sum16(ip[:ihl]) == 0xFFFF, f"{what}: bad IP header checksum"
    tot = (ip[2] << 8) | ip[3]
    frag = ((ip[6] << 8) | ip[7]) & 0x3FFF
    proto = ip[9]
    if frag:
        return
    if quoted and tot > len(ip):
        return  # truncated quote: the L4 checksum covers bytes that are not here
    l4 = ip[ihl:tot]
    pseudo = ip[12:20] + bytes([0, proto]) + len(l4).to_bytes(2, "big")
    if proto == 6:
        assert _sum16(pseudo + l4) == 0xFFFF, f"{what}: bad TCP checksum"
    elif proto == 17:
        if l4[6:8] != b"\x00\x00":
            assert _sum16(pseudo + l4) == 0xFFFF, f"{what}: bad UDP checksum"
    elif proto == 1:
        assert _sum16(l4) == 0xFFFF, f"{what}: bad ICMP checksum"
        if l4[0] in (3, 4, 5, 11, 12) and len(l4) >= 28:
            check_ipv4(l4[8:], quoted=True, what=what + " (quote)")


def _check_expected(frames, name):
    for i, f in enumerate(frames):
        raw = bytes(f)
        if raw[12:14] == b"\x08\x00":
            check_ipv4(raw[14:], what=f"{name}[{i}]")


def _write(path, frames):
    """A classic little-endian pcap (Ethernet, microseconds) with fixed timestamps, so that the
    files are deterministic too."""
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, f in enumerate(frames):
            raw = bytes(f)
            fh.write(struct.pack("<IIII", 1700000000, i, len(raw), len(raw)))
            fh.write(raw)


def write(send0=(), send1=(), expect0=(), expect1=(), counters=None):
    """Writes send0.pcap, send1.pcap, expect0.pcap, expect1.pcap and, if given, expect.counters
    (a dict name -> value) into the directory named on the command line (default: cwd)."""
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    os.makedirs(out, exist_ok=True)
    _check_expected(expect0, "expect0")
    _check_expected(expect1, "expect1")
    for name, frames in (("send0", send0), ("send1", send1),
                         ("expect0", expect0), ("expect1", expect1)):
        _write(os.path.join(out, name + ".pcap"), list(frames))
    if counters is not None:
        with open(os.path.join(out, "expect.counters"), "w") as fh:
            for k, v in counters.items():
                fh.write(f"{k} {v}\n")
