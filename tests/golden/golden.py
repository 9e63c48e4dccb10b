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
    elif proto == 4:
        check_ipv4(l4, what=what + " (inner)")


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


# --- IP-in-IP tunnel (forward = "tun") and direct routing (forward = "dr") ----------------------
# Built from raw bytes with a checksum of our own, independent of scapy, so that the outer
# header is exactly what the specification says and nothing scapy chooses.

REAL3, REAL3_MAC = "10.10.0.4", "02:00:00:00:01:04"  # in the tun/dr cases' neighbours
REAL_MAC[REAL3] = REAL3_MAC

TUNNEL_TTL = 64
ICMP_QUOTE_MAX = 548  # 576 (the minimum reassembly size) - 20 (IP) - 8 (ICMP)


def _mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def _ip4(text):
    return bytes(int(x) for x in text.split("."))


def _csum(data):
    return (~_sum16(data)) & 0xFFFF


def eth_header(dst, src, ethertype=0x0800):
    return _mac(dst) + _mac(src) + ethertype.to_bytes(2, "big")


def ipv4_header(total_len, ip_id, flags_off, ttl, proto, src, dst, tos=0):
    """A 20-byte IPv4 header (IHL 5) with its checksum."""
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, total_len, ip_id, flags_off, ttl, proto, 0,
                      _ip4(src), _ip4(dst))
    return hdr[:10] + _csum(hdr).to_bytes(2, "big") + hdr[12:]


def ip_of(frame):
    """The IP packet a frame carries: the bytes after the Ethernet header, up to the IP total
    length (any Ethernet padding left out)."""
    raw = bytes(frame)
    assert raw[12:14] == b"\x08\x00", "not an IPv4 frame"
    tot = int.from_bytes(raw[16:18], "big")
    return raw[14:14 + tot]


def _inner_fields(inner):
    tos = inner[1]
    ip_id = int.from_bytes(inner[4:6], "big")
    df = bool(inner[6] & 0x40)
    return tos, ip_id, df


def tun(frame, real, next_hop_mac, tunnel_src, eth_src=P1_MAC):
    """What lb sends for `frame` to a tun real: Ether(next hop MAC <- egress port MAC) / outer
    IPv4 (TOS, ID and DF of the inner packet, TTL 64, protocol 4, tunnel_src -> real) / the
    inner IP packet exactly as received (no Ethernet padding). Raw bytes."""
    inner = ip_of(frame)
    tos, ip_id, df = _inner_fields(inner)
    outer = ipv4_header(len(inner) + 20, ip_id, 0x4000 if df else 0, TUNNEL_TTL, 4,
                        tunnel_src, real, tos=tos)
    return eth_header(next_hop_mac, eth_src) + outer + inner


def tun_fragments(frame, real, next_hop_mac, tunnel_src, mtu, eth_src=P1_MAC):
    """The outer fragments lb sends for a non-DF `frame` whose tunnel packet exceeds `mtu`:
    (mtu - 20) rounded down to 8 bytes of the inner packet per fragment, the outer header on
    each (its own total length, MF on all but the last, offset in 8-byte units, ID = inner ID,
    DF 0, TTL 64, protocol 4), in order. A list of raw frames."""
    inner = ip_of(frame)
    tos, ip_id, df = _inner_fields(inner)
    assert not df and len(inner) + 20 > mtu
    chunk = ((mtu - 20) // 8) * 8
    frames = []
    for off in range(0, len(inner), chunk):
        piece = inner[off:off + chunk]
        more = off + chunk < len(inner)
        outer = ipv4_header(20 + len(piece), ip_id, (0x2000 if more else 0) | (off // 8),
                            TUNNEL_TTL, 4, tunnel_src, real, tos=tos)
        frames.append(eth_header(next_hop_mac, eth_src) + outer + piece)
    return frames


def frag_needed_reply(frame, mtu, client_mac, eth_src=P0_MAC, overhead=20, src=None):
    """lb's answer to a DF `frame` whose tunnel packet exceeds the egress `mtu`: Ether(client's
    or its gateway's MAC <- eth_src) / IPv4(TOS 0xc0, ID 0, no flags, TTL 64, protocol 1,
    src = the packet's destination (the VIP), dst = its source) / ICMP(3, 4, next-hop MTU =
    mtu - 20) / the received IP packet, at most 548 bytes of it. Raw bytes.
    NAT: overhead 0 (no tunnel header), and for a real's reply src = lb's inside address."""
    inner = ip_of(frame)
    quoted = inner[:ICMP_QUOTE_MAX]
    icmp = struct.pack("!BBHHH", 3, 4, 0, 0, mtu - overhead) + quoted
    icmp = icmp[:2] + _csum(icmp).to_bytes(2, "big") + icmp[4:]
    src = src or ".".join(str(b) for b in inner[16:20])
    dst = ".".join(str(b) for b in inner[12:16])
    ip = ipv4_header(20 + len(icmp), 0, 0, 64, 1, src, dst, tos=0xC0)
    return eth_header(client_mac, eth_src) + ip + icmp


def ip_fragments(frame, mtu):
    """The fragments lb sends for `frame` (as it leaves lb: Ethernet header and IP packet, DF
    clear) whose IP packet exceeds the egress `mtu`, as the kernel's ip_fragment cuts them:
    (mtu - IHL) rounded down to 8 bytes of payload per fragment, the header on each with its
    own total length, offset (continuing the packet's own) and checksum, MF on all but the
    last (which keeps the packet's MF), options without the copied flag replaced by NOPs after
    the first. A list of raw frames."""
    raw = bytes(frame)
    eth, ip = raw[:14], raw[14:]
    ihl = (ip[0] & 0x0F) * 4
    ip = ip[:int.from_bytes(ip[2:4], "big")]
    field = int.from_bytes(ip[6:8], "big")
    assert not field & 0x4000 and len(ip) > mtu
    base, last_more = (field & 0x1FFF) * 8, field & 0x2000
    data = ip[ihl:]
    chunk = ((mtu - ihl) // 8) * 8
    frames = []
    for off in range(0, len(data), chunk):
        piece = data[off:off + chunk]
        more = 0x2000 if off + chunk < len(data) else last_more
        hdr = bytearray(ip[:ihl])
        if off:
            i = 20
            while i < ihl and hdr[i] != 0:
                if hdr[i] == 1:
                    i += 1
                    continue
                n = hdr[i + 1]
                if not hdr[i] & 0x80:
                    hdr[i:i + n] = b"\x01" * n
                i += n
        hdr[2:4] = (ihl + len(piece)).to_bytes(2, "big")
        hdr[6:8] = (more | (base + off) // 8).to_bytes(2, "big")
        hdr[10:12] = b"\x00\x00"
        hdr[10:12] = _csum(bytes(hdr)).to_bytes(2, "big")
        frames.append(eth + bytes(hdr) + piece)
    return frames


def dr(frame, real_mac, eth_src=P1_MAC):
    """What lb sends for `frame` to a dr real: Ether(real's MAC <- egress port MAC) / the IP
    packet exactly as received. Raw bytes."""
    return eth_header(real_mac, eth_src) + ip_of(frame)


SYN_OPTS = [("MSS", 1460), ("SAckOK", b""), ("Timestamp", (1000, 0)), ("NOP", None),
            ("WScale", 7)]


def payload(n, seed=0):
    """n deterministic bytes."""
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


def client_tcp(sport, flags="S", seq=1, ack=0, ip_id=1, data=b"", client=CLIENT_A,
               cmac=None, df=True, tos=0, ttl=64, opts=None, dst=VIP, dport=TCP_PORT):
    """A client's TCP segment to the VIP as it arrives on port 0 (padded to 60 bytes if short).
    opts None: SYN_OPTS on a SYN, none otherwise."""
    if opts is None:
        opts = SYN_OPTS if flags == "S" else []
    f = Ether(dst=P0_MAC, src=cmac or CLIENT_MAC.get(client, ROUTER_OUT_MAC)) / \
        IP(src=client, dst=dst, id=ip_id, flags="DF" if df else 0, tos=tos, ttl=ttl) / \
        TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=502, options=opts)
    if data:
        f = f / Raw(data)
    return pad(f)


def client_udp(sport, data, ip_id=1, client=CLIENT_A, cmac=None, df=False, tos=0, ttl=64,
               dst=VIP, dport=UDP_PORT, chksum=None):
    """A client's UDP datagram to the VIP as it arrives on port 0 (padded to 60 bytes if
    short)."""
    u = UDP(sport=sport, dport=dport)
    if chksum is not None:
        u.chksum = chksum
    return pad(Ether(dst=P0_MAC, src=cmac or CLIENT_MAC.get(client, ROUTER_OUT_MAC)) /
               IP(src=client, dst=dst, id=ip_id, flags="DF" if df else 0, tos=tos, ttl=ttl) /
               u / Raw(data))
