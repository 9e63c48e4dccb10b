// ICMP: echo replies from the director's addresses and VIPs, fragmentation-needed, and the
// translation of ICMP errors about a connection's packets.
#include <algorithm>
#include <cstring>

#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_udp.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "dataplane/checksum.hpp"
#include "dataplane/sched.hpp"
#include "dataplane/wire.hpp"
#include "dataplane/worker_inline.hpp"

namespace lb::dp {

void Worker::handle_echo(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept {
    uint8_t* f = frame_of(m);
    uint8_t* ip = f + kEth;
    uint8_t* icmp = f + it.p.l4_off;
    const Interface& ifc = *snap.interface_of(m->port);
    if (!snap.source_ok(it.p.src, ifc)) {
        drop(m, Drop::Martian);  // no reply to a source that cannot be there
        return;
    }
    auto* eth = header_at<rte_ether_hdr>(f);
    eth->dst_addr = eth->src_addr;
    eth->src_addr = ifc.mac;
    wr32(ip + 12, it.p.dst);
    wr32(ip + 16, it.p.src);
    ip[8] = 64;
    wr16(ip + 10, 0);
    const uint16_t ihl = uint16_t(it.p.l4_off - kEth);
    wr16(ip + 10, csum_full(ip, ihl));
    const uint16_t from = rd16(icmp);
    icmp[0] = 0;  // echo reply
    wr16(icmp + 2, csum_replace2(rd16(icmp + 2), from, rd16(icmp)));
    counters.icmp_echo_replies.add(1);
    stage(m->port, m);
}

void Worker::send_frag_needed(const Snapshot& snap, rte_mbuf* m, uint16_t inner_len,
                              uint16_t mtu, rte_be32_t from) noexcept {
    // RFC 1812 4.3.2.3: quote as much of the packet as fits in 576 bytes.
    const uint16_t quote = std::min<uint16_t>(inner_len, 576 - 28);
    rte_pktmbuf_trim(m, uint16_t(inner_len - quote));
    uint8_t* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, 28));
    if (f == nullptr) {
        drop(m, Drop::NoMbuf);
        return;
    }
    const uint8_t* q = f + kEth + 28;  // the packet as received
    uint8_t* ip = f + kEth;
    wr16(f + 12, rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4));
    ip[0] = 0x45;
    ip[1] = 0xc0;  // precedence: internetwork control, as Linux sends its ICMP errors
    wr16(ip + 2, rte_cpu_to_be_16(uint16_t(28 + quote)));
    wr32(ip + 4, 0);  // ID 0, no flags
    ip[8] = 64;
    ip[9] = IPPROTO_ICMP;
    wr16(ip + 10, 0);
    if (from != 0) {
        wr32(ip + 12, from);
    } else {
        std::memcpy(ip + 12, q + 16, 4);  // from the address the client wrote to: the VIP
    }
    std::memcpy(ip + 16, q + 12, 4);  // to the client
    wr16(ip + 10, csum_full(ip, 20));
    uint8_t* icmp = ip + 20;
    icmp[0] = 3;  // destination unreachable
    icmp[1] = 4;  // fragmentation needed and DF set
    wr16(icmp + 2, 0);
    wr16(icmp + 4, 0);
    wr16(icmp + 6, rte_cpu_to_be_16(mtu));
    wr16(icmp + 2, csum_full(icmp, 8u + quote));
    counters.frag_needed_sent.add(1);
    send_ipv4(snap, m, rd32(ip + 16));
}

void Worker::handle_icmp_error(const Snapshot& snap, rte_mbuf* m, const Item& it,
                               uint32_t now) noexcept {
    const bool to_vip = it.kind == Kind::IcmpToVip;
    if (!snap.source_ok(it.p.src, *snap.interface_of(m->port))) {
        drop(m, Drop::Martian);
        return;
    }
    const uint32_t idx = find_live(it.key, it.hash, to_vip ? Dir::In : Dir::Out, now, it.cand);
    if (idx == ConnTable::kNone) {
        drop(m, Drop::IcmpUnmatched);
        return;
    }
    const Conn& c = conns.at(idx);
    if (Forward(c.forward) != Forward::Nat) {
        if (!to_vip) {
            drop(m, Drop::IcmpUnmatched);  // tun/dr reals talk to clients directly
            return;
        }
        // About a reply the real sent the client directly: the real holds the VIP, so the
        // error goes to it as it is, by the connection's method.
        counters.icmp_errors_translated.add(1);
        if (Forward(c.forward) == Forward::Tunnel) {
            const Service* svc = snap.service_of(c.svc_slot, c.vip, c.vport, c.proto);
            xmit_tunnel(snap, m, c.real_ip, svc != nullptr ? svc->tunnel_src : 0, false);
        } else {
            xmit_dr(snap, m, c.real_ip);
        }
        return;
    }
    uint8_t* f = frame_of(m);
    rte_ipv4_hdr* ip = ipv4_of(m);
    if (!decrement_ttl(ip)) {
        drop(m, Drop::TtlExceeded);
        return;
    }
    const Quoted& q = it.q;
    auto* qip = reinterpret_cast<rte_ipv4_hdr*>(f + q.ip_off);
    auto* ql4 = reinterpret_cast<rte_udp_hdr*>(f + q.ip_off + q.ihl);  // TCP's ports sit alike
    const bool udp = q.proto == IPPROTO_UDP;
    // The quoted transport checksum is fixed only when the quote holds it (a nonzero UDP one).
    const uint16_t coff = l4_csum_off(q.proto);
    uint8_t* qc = q.l4_avail >= coff + 2 ? reinterpret_cast<uint8_t*>(ql4) + coff : nullptr;
    // Outer address fixes need no transport checksum: the ICMP checksum is recomputed below.
    if (to_vip) {
        // Router outside -> VIP about our reply VIP:vport -> client: becomes -> real about
        // real:rport -> client.
        rewrite_addr(LB_FIELD(ip, dst_addr), LB_FIELD(ip, hdr_checksum), nullptr, false,
                     c.real_ip);
        rewrite_addr(LB_FIELD(qip, src_addr), LB_FIELD(qip, hdr_checksum), qc, udp, c.real_ip);
        rewrite_port(LB_FIELD(ql4, src_port), qc, udp, c.real_port);
    } else {
        // From inside -> client about client -> real:rport: becomes VIP -> client about
        // client -> VIP:vport (IPVS also puts the VIP in the outer source).
        rewrite_addr(LB_FIELD(ip, src_addr), LB_FIELD(ip, hdr_checksum), nullptr, false, c.vip);
        rewrite_addr(LB_FIELD(qip, dst_addr), LB_FIELD(qip, hdr_checksum), qc, udp, c.vip);
        rewrite_port(LB_FIELD(ql4, dst_port), qc, udp, c.vport);
    }
    auto* icmp = reinterpret_cast<rte_icmp_hdr*>(f + it.p.l4_off);
    wr16(LB_FIELD(icmp, icmp_cksum), 0);
    wr16(LB_FIELD(icmp, icmp_cksum), csum_full(icmp, it.p.l4_len));
    counters.icmp_errors_translated.add(1);
    // No ICMP error answers an ICMP error: over the egress MTU with DF, it is dropped.
    const rte_be32_t dst = to_vip ? c.real_ip : c.client_ip;
    if (const Route* r = nat_route(snap, m, dst, 0, false)) {
        xmit_nat(snap, m, *r, dst);
    }
}

}  // namespace lb::dp
