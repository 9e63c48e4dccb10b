"""TRex stateless profile: client traffic for lb on a real port (docs/benchmarking.md,
"Benchmarking on real ports").

    trex> start -f tools/trex/lb_stl.py -p 0 -m 5 -t flows=65536,size=64,syn_share=0

Streams, all to VIP:VPORT from clients whose tuples a tuple generator walks through (the address
first, then the source port), so that FLOWS distinct (address, port) pairs repeat in a fixed
order:

  open  a single burst of FLOWS SYNs, one per flow, at OPEN_PPS; then starts `est`. lb makes
        connections from SYNs only (until connections.sloppy_tcp): without it the ACKs below
        are dropped as no_connection. --no_open leaves it out (sloppy_tcp, or when the
        connections already exist).
  est   the established flows: ACKs (PSH+ACK when the frame has room for data), continuous,
        (1 - SYN_SHARE) of 1 Mpps before -m scales it.
  new   with SYN_SHARE > 0: SYNs of new tuples from NEW_CLIENTS (a range disjoint from
        CLIENTS), each tuple once until the generator wraps (2^32 tuples at most), SYN_SHARE of
        1 Mpps; the connection-setup rate. lb keeps each as a half-open connection for
        tcp_syn_recv seconds, then evicts it under pressure (conns_evicted).

-m N is therefore N Mpps of steady traffic (the opening burst is scaled by N too). Frames are
SIZE bytes on the wire with the FCS (64: 60 given to the NIC). The Ethernet destination is the
port's (trex_cfg.yaml `dest_mac`, or `l2 -p 0 --dst MAC` in service mode): lb's port MAC.
Checksums are fixed by the field engine (in software).
"""
import argparse
import ipaddress
import os

# TRex's own package (on the console's path): STLStream, STLVM, ... and scapy's layers.
from trex_stl_lib.api import *  # noqa: F401,F403

SYN, PSH, ACK = 0x02, 0x08, 0x10


def host_range(cidr):
    net = ipaddress.ip_network(cidr, strict=True)
    first, last = net.network_address, net.broadcast_address
    if net.prefixlen <= 30:
        first, last = first + 1, last - 1
    return str(first), str(last), int(last) - int(first) + 1


class LbProfile:
    def packet(self, a, flags, src, sport):
        l4 = (TCP(sport=sport, dport=a.vport, flags=flags, window=65535) if a.proto == "tcp"
              else UDP(sport=sport, dport=a.vport))
        pkt = Ether() / IP(src=src, dst=a.vip, ttl=64, flags="DF") / l4
        room = a.size - 4 - len(pkt)
        if room < 0:
            raise ValueError(f"size {a.size}: the headers alone take {len(pkt) + 4} bytes")
        # SYNs carry no data (Ethernet padding fills the frame); other packets fill it with data.
        if a.proto == "tcp" and flags & SYN:
            return pkt / Padding(load=b"\0" * room) if room else pkt
        if a.proto == "tcp" and room > 0:
            pkt[TCP].flags = flags | PSH
        return pkt / (b"x" * room)

    def vm(self, a, first, last, n_addr, flows):
        vm = STLVM()
        port_max = min(65535, 1024 + (flows - 1) // n_addr)
        vm.tuple_var(name="t", ip_min=first, ip_max=last, port_min=1024, port_max=port_max,
                     limit_flows=flows)
        vm.write(fv_name="t.ip", pkt_offset="IP.src")
        vm.write(fv_name="t.port", pkt_offset="TCP.sport" if a.proto == "tcp" else "UDP.sport")
        vm.fix_chksum()  # IPv4 and TCP/UDP, in software
        return vm

    def get_streams(self, tunables, **kwargs):
        p = argparse.ArgumentParser(prog=os.path.basename(__file__),
                                    formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        p.add_argument("--flows", type=int, default=1024, help="established flows")
        p.add_argument("--size", type=int, default=64, help="frame size with the FCS")
        p.add_argument("--proto", choices=("tcp", "udp"), default="tcp")
        p.add_argument("--syn_share", type=float, default=0.0,
                       help="share of the steady rate that is SYNs of new tuples, 0..1")
        p.add_argument("--vip", default="198.51.100.10")
        p.add_argument("--vport", type=int, default=80)
        p.add_argument("--clients", default="198.18.0.0/16", help="the flows' clients")
        p.add_argument("--new_clients", default="198.19.0.0/16",
                       help="the new tuples' clients (disjoint from --clients)")
        p.add_argument("--open_pps", type=float, default=100000,
                       help="rate of the opening SYN burst before -m")
        p.add_argument("--no_open", action="store_true", help="no opening SYN burst")
        a = p.parse_args(tunables)
        if not 64 <= a.size <= 9216:
            p.error("--size: 64..9216")
        if not 0.0 <= a.syn_share <= 1.0:
            p.error("--syn_share: 0..1")
        if not 1 <= a.vport <= 65535:
            p.error("--vport: 1..65535")
        first, last, n_addr = host_range(a.clients)
        nfirst, nlast, n_new = host_range(a.new_clients)
        if ipaddress.ip_network(a.clients).overlaps(ipaddress.ip_network(a.new_clients)):
            p.error("--clients and --new_clients overlap")
        if not 1 <= a.flows <= n_addr * 64512:
            p.error(f"--flows: 1..{n_addr * 64512} for {a.clients}")
        if a.proto == "udp" and a.syn_share > 0:
            p.error("--syn_share is for TCP (UDP flows have no SYN)")

        est_flags = ACK if a.proto == "tcp" else 0
        streams = []
        est_pps = 1e6 * (1.0 - a.syn_share)
        if est_pps > 0:
            est = STLStream(
                name="est", self_start=a.no_open or a.proto == "udp",
                packet=STLPktBuilder(pkt=self.packet(a, est_flags, first, 1024),
                                     vm=self.vm(a, first, last, n_addr, a.flows)),
                mode=STLTXCont(pps=est_pps))
            if not a.no_open and a.proto == "tcp":
                streams.append(STLStream(
                    name="open", next="est",
                    packet=STLPktBuilder(pkt=self.packet(a, SYN, first, 1024),
                                         vm=self.vm(a, first, last, n_addr, a.flows)),
                    mode=STLTXSingleBurst(pps=a.open_pps, total_pkts=a.flows)))
            streams.append(est)
        if a.syn_share > 0:
            streams.append(STLStream(
                name="new",
                packet=STLPktBuilder(pkt=self.packet(a, SYN, nfirst, 1024),
                                     vm=self.vm(a, nfirst, nlast, n_new,
                                                min(n_new * 64512, 2**32 - 1))),
                mode=STLTXCont(pps=1e6 * a.syn_share)))
        return streams


def register():
    return LbProfile()
