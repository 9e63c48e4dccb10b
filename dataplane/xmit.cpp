// Transmit: the send lists, the neighbour and egress caches, frames held for ARP, and the
// three methods' ways out (NAT after its rewrite, IP-in-IP, direct routing).
#include <algorithm>
#include <cstring>

#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "dataplane/checksum.hpp"
#include "dataplane/sched.hpp"
#include "dataplane/wire.hpp"
#include "dataplane/worker_inline.hpp"

namespace lb::dp {

void Worker::drop(rte_mbuf* m, Drop why) noexcept {
    counters.drops[size_t(why)].add(1);
    rte_pktmbuf_free(m);
}

void Worker::stage_redirect(uint16_t worker, rte_mbuf* m) noexcept {
    Staged& r = redirect[worker];
    if (r.n == r.pkts.size()) [[unlikely]] {
        drop(m, Drop::RedirectFull);
        return;
    }
    r.pkts[r.n++] = m;
    counters.redirected_out.add(1);
}

void Worker::stage_full(uint16_t port, rte_mbuf* m) noexcept {
    Staged& t = tx[port];
    if (sink_.send == nullptr) {
        drop(m, Drop::TxFull);
        return;
    }
    const uint16_t sent = sink_.send(sink_.ctx, port, t.pkts.data(), t.n);
    counters.tx.add(sent);
    for (uint16_t k = sent; k < t.n; ++k) {
        drop(t.pkts[k], Drop::TxFull);
    }
    t.n = 1;
    t.pkts[0] = m;
}

void Worker::slow_msg(SlowMsg::Type t, uint16_t port, rte_be32_t ip, const uint8_t* mac) noexcept {
    if (n_slow == slow.size()) {
        counters.drops[size_t(Drop::SlowPathFull)].add(1);
        return;
    }
    SlowMsg& s = slow[n_slow++];
    s.type = t;
    s.port = uint8_t(port);
    s.ip = ip;
    if (mac != nullptr) {
        std::memcpy(s.mac, mac, 6);
    } else {
        std::memset(s.mac, 0, 6);
    }
}

bool Worker::neigh_lookup(rte_be32_t ip, rte_ether_addr& mac) noexcept {
    const uint32_t gen = neigh_.generation();
    if (gen != ncache_gen_) {
        for (NeighCache& e : ncache_) {
            e.ip = 0;
        }
        ncache_gen_ = gen;
    }
    NeighCache& e = ncache_[(uint32_t(ip) * 0x9E3779B1u) >> (32 - kNeighCacheBits)];
    if (e.ip == ip && ip != 0) {
        mac = e.mac;
        return true;
    }
    if (!neigh_.lookup(ip, mac)) {
        return false;
    }
    e.ip = ip;
    e.mac = mac;
    return true;
}

void Worker::send_ipv4(const Snapshot& snap, rte_mbuf* m, rte_be32_t dst) noexcept {
    const Route* r = snap.route(dst);
    if (r == nullptr) {
        drop(m, Drop::NoRoute);
        return;
    }
    send_on(snap, m, r->port, r->gateway != 0 ? r->gateway : dst);
}

void Worker::send_on(const Snapshot& snap, rte_mbuf* m, uint16_t port,
                     rte_be32_t next_hop) noexcept {
    const Interface* ifc = snap.interface_of(port);
    if (ifc == nullptr) {
        drop(m, Drop::NoRoute);
        return;
    }
    stage_l2(m, port, *ifc, next_hop);
}

void Worker::stage_l2(rte_mbuf* m, uint16_t port, const Interface& ifc, rte_be32_t next_hop,
                      rte_be32_t cache_dst, uint8_t cache_kind) noexcept {
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->src_addr = ifc.mac;
    rte_ether_addr mac;
    if (neigh_lookup(next_hop, mac)) {
        eth->dst_addr = mac;
        stage(port, m);
        if (cache_dst != 0) {
            egress_[egress_slot(cache_dst)] = {cache_dst, port,   ifc.mtu,   mac,
                                               ifc.mac,   ifc.addr, cache_kind};
        }
        return;
    }
    slow_msg(SlowMsg::Resolve, port, next_hop, nullptr);
    if (n_held_ == kHeldMax) {
        drop(m, Drop::NoNeighbour);
        return;
    }
    held_[n_held_++] = {m, next_hop, port, now_ + kHoldMs};
}

void Worker::release_held(uint32_t now_ms, bool all) noexcept {
    uint16_t keep = 0;
    for (uint16_t i = 0; i < n_held_; ++i) {
        Held h = held_[i];
        rte_ether_addr mac;
        if (!all && neigh_lookup(h.next_hop, mac)) {
            rte_pktmbuf_mtod(h.m, rte_ether_hdr*)->dst_addr = mac;
            stage(h.port, h.m);
        } else if (all || expired(h.deadline, now_ms)) {
            drop(h.m, Drop::NoNeighbour);
        } else {
            held_[keep++] = h;
        }
    }
    n_held_ = keep;
}

void Worker::xmit_dr(const Snapshot& snap, rte_mbuf* m, rte_be32_t real) noexcept {
    if (const Egress* e = egress_hit(real, kEgressOnLink)) {
        put_l2(m, *e);
        return;
    }
    const Interface* ifc = snap.on_link(real);
    if (ifc == nullptr) {
        drop(m, Drop::NoRoute);
        return;
    }
    stage_l2(m, ifc->port, *ifc, real, real, kEgressOnLink);
}

void Worker::xmit_tunnel(const Snapshot& snap, rte_mbuf* m, rte_be32_t real,
                         rte_be32_t tunnel_src, bool answer_too_big) noexcept {
    const auto* inner = header_at<const rte_ipv4_hdr>(frame_of(m) + kEth);
    const uint16_t inner_len = rte_be_to_cpu_16(inner->total_length);
    const bool df = (inner->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG)) != 0;
    // Ethernet padding is not part of the packet the real gets.
    rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_data_len(m) - kEth - inner_len));
    const Egress* e = egress_hit(real, kEgressRouted);
    if (e != nullptr && inner_len + 20u <= e->mtu) {
        // The usual case: the real's way is known and the packet fits.
        if (!encapsulate(m, real, tunnel_src != 0 ? tunnel_src : e->src_addr)) {
            return;
        }
        put_l2(m, *e);
        return;
    }
    const Route* r = snap.route(real);
    const Interface* ifc = r != nullptr ? snap.interface_of(r->port) : nullptr;
    if (ifc == nullptr) {
        drop(m, Drop::NoRoute);
        return;
    }
    if (inner_len + 20u > ifc->mtu && df) {
        if (answer_too_big) {
            send_frag_needed(snap, m, inner_len, uint16_t(ifc->mtu - 20));
        } else {
            drop(m, Drop::TooBig);
        }
        return;
    }
    const rte_be32_t next_hop = r->gateway != 0 ? r->gateway : real;
    rte_ether_addr mac;
    const bool resolved = neigh_lookup(next_hop, mac);
    if (!resolved && inner_len + 20u > ifc->mtu) {
        // Fragments are not held: ask for the MAC and let the sender retry.
        slow_msg(SlowMsg::Resolve, r->port, next_hop, nullptr);
        drop(m, Drop::NoNeighbour);
        return;
    }
    if (!encapsulate(m, real, tunnel_src != 0 ? tunnel_src : ifc->addr)) {
        return;
    }
    if (inner_len + 20u > ifc->mtu) {
        send_fragments(m, r->port, mac, ifc->mac, ifc->mtu, counters.tunnel_fragments);
        return;
    }
    stage_l2(m, r->port, *ifc, next_hop, real, kEgressRouted);
}

bool Worker::encapsulate(rte_mbuf* m, rte_be32_t real, rte_be32_t src) noexcept {
    uint8_t* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, 20));
    if (f == nullptr) {
        drop(m, Drop::NoMbuf);
        return false;
    }
    header_at<rte_ether_hdr>(f)->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    auto* o = header_at<rte_ipv4_hdr>(f + kEth);
    const auto* inner = header_at<const rte_ipv4_hdr>(f + kEth + sizeof(rte_ipv4_hdr));
    o->version_ihl = RTE_IPV4_VHL_DEF;
    o->type_of_service = inner->type_of_service;
    o->total_length =
        rte_cpu_to_be_16(uint16_t(rte_be_to_cpu_16(inner->total_length) + sizeof(rte_ipv4_hdr)));
    o->packet_id = inner->packet_id;
    o->fragment_offset = inner->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
    o->time_to_live = 64;
    o->next_proto_id = IPPROTO_IPIP;
    o->hdr_checksum = 0;
    o->src_addr = src;
    o->dst_addr = real;
    o->hdr_checksum = csum_full(o, sizeof(rte_ipv4_hdr));
    counters.tunnel_encapsulated.add(1);
    return true;
}

const Route* Worker::nat_route(const Snapshot& snap, rte_mbuf* m, rte_be32_t dst,
                               rte_be32_t icmp_from, bool may_answer) noexcept {
    const Route* r = snap.route(dst);
    const Interface* ifc = r != nullptr ? snap.interface_of(r->port) : nullptr;
    if (ifc == nullptr) {
        drop(m, Drop::NoRoute);
        return nullptr;
    }
    const auto* ip = header_at<const rte_ipv4_hdr>(frame_of(m) + kEth);
    const uint16_t len = rte_be_to_cpu_16(ip->total_length);
    if (len <= ifc->mtu || (ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG)) == 0) {
        return r;
    }
    if (!may_answer) {
        drop(m, Drop::TooBig);
        return nullptr;
    }
    // Ethernet padding is not part of the quoted packet.
    rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_data_len(m) - kEth - len));
    send_frag_needed(snap, m, len, ifc->mtu, icmp_from);
    return nullptr;
}

void Worker::xmit_nat(const Snapshot& snap, rte_mbuf* m, const Route& r, rte_be32_t dst,
                      uint8_t cache) noexcept {
    const Interface& ifc = *snap.interface_of(r.port);  // nat_route found it
    const rte_be32_t next_hop = r.gateway != 0 ? r.gateway : dst;
    const uint16_t len = rte_be_to_cpu_16(header_at<const rte_ipv4_hdr>(frame_of(m) + kEth)->total_length);
    if (len <= ifc.mtu) {
        const rte_be32_t key = cache == kEgressRouted    ? dst
                               : cache == kEgressNextHop ? next_hop
                                                         : 0;
        stage_l2(m, r.port, ifc, next_hop, key, cache);
        return;
    }
    // Over the MTU without DF: fragments, as the kernel's ip_fragment makes them for IPVS.
    rte_ether_addr mac;
    if (!neigh_lookup(next_hop, mac)) {
        // Fragments are not held: ask for the MAC and let the sender retry.
        slow_msg(SlowMsg::Resolve, r.port, next_hop, nullptr);
        drop(m, Drop::NoNeighbour);
        return;
    }
    rte_pktmbuf_trim(m, uint16_t(rte_pktmbuf_data_len(m) - kEth - len));
    send_fragments(m, r.port, mac, ifc.mac, ifc.mtu, counters.nat_fragments);
}

}  // namespace lb::dp
