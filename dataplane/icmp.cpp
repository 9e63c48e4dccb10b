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
    auto* ip = header_at<rte_ipv4_hdr>(f + kEth);
    auto* icmp = header_at<rte_icmp_hdr>(f + it.p.l4_off);
    const Interface& ifc = *snap.interface_of(m->port);
    if (!snap.source_ok(it.p.src, ifc)) {
        drop(m, Drop::Martian);  // no reply to a source that cannot be there
        return;
    }
    auto* eth = header_at<rte_ether_hdr>(f);
    eth->dst_addr = eth->src_addr;
    eth->src_addr = ifc.mac;
    ip->src_addr = it.p.dst;
    ip->dst_addr = it.p.src;
    ip->time_to_live = 64;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = csum_full(ip, uint16_t(it.p.l4_off - kEth));
    // The type and code word, before and after, for the checksum's update.
    uint8_t* type_code = LB_FIELD(icmp, icmp_type);
    const uint16_t from = rd16(type_code);
    icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
    uint8_t* sum = LB_FIELD(icmp, icmp_cksum);
    wr16(sum, csum_replace2(rd16(sum), from, rd16(type_code)));
    counters.icmp_echo_replies.add(1);
    stage(m->port, m);
}

void Worker::send_frag_needed(const Snapshot& snap, rte_mbuf* m, uint16_t inner_len,
                              uint16_t mtu, rte_be32_t from) noexcept {
    constexpr uint16_t kHead = sizeof(rte_ipv4_hdr) + sizeof(rte_icmp_hdr);  // 28
    // RFC 1812 4.3.2.3: quote as much of the packet as fits in 576 bytes.
    const uint16_t quote = std::min<uint16_t>(inner_len, 576 - kHead);
    rte_pktmbuf_trim(m, uint16_t(inner_len - quote));
    uint8_t* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, kHead));
    if (f == nullptr) {
        drop(m, Drop::NoMbuf);
        return;
    }
    const auto* q = header_at<const rte_ipv4_hdr>(f + kEth + kHead);  // the packet as received
    auto* ip = header_at<rte_ipv4_hdr>(f + kEth);
    header_at<rte_ether_hdr>(f)->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    ip->version_ihl = RTE_IPV4_VHL_DEF;
    ip->type_of_service = 0xc0;  // internetwork control, as Linux sends its ICMP errors
    ip->total_length = rte_cpu_to_be_16(uint16_t(kHead + quote));
    ip->packet_id = 0;
    ip->fragment_offset = 0;
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_ICMP;
    ip->hdr_checksum = 0;
    // From the address the client wrote to (the VIP) unless told otherwise; to the client.
    ip->src_addr = from != 0 ? from : q->dst_addr;
    ip->dst_addr = q->src_addr;
    ip->hdr_checksum = csum_full(ip, sizeof(rte_ipv4_hdr));
    auto* icmp = header_at<rte_icmp_hdr>(f + kEth + sizeof(rte_ipv4_hdr));
    icmp->icmp_type = 3;  // destination unreachable (DPDK 22.11 names only the echo types)
    icmp->icmp_code = 4;  // fragmentation needed and DF set
    icmp->icmp_cksum = 0;
    icmp->icmp_ident = 0;                     // unused
    icmp->icmp_seq_nb = rte_cpu_to_be_16(mtu);  // next-hop MTU (RFC 1191)
    icmp->icmp_cksum = csum_full(icmp, 8u + quote);
    counters.frag_needed_sent.add(1);
    send_ipv4(snap, m, ip->dst_addr);
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
