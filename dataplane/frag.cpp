// IPv4 fragments: sending a packet over the egress MTU as fragments, and the notes that let a
// datagram's later fragments (no ports) follow its first one.
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

namespace {

// RFC 791: only the options with the copied flag go into a datagram's later fragments; in the
// IPv4 header h (ihl bytes) the others become NOPs, as Linux's ip_options_fragment does.
void nop_uncopied_options(uint8_t* h, uint32_t ihl) noexcept {
    constexpr uint8_t kEnd = 0, kNop = 1, kCopied = 0x80;
    for (uint32_t i = sizeof(rte_ipv4_hdr); i < ihl;) {
        const uint8_t type = h[i];
        if (type == kEnd) {
            break;
        }
        if (type == kNop) {
            ++i;
            continue;
        }
        const uint32_t olen = i + 1 < ihl ? h[i + 1] : 0;
        if (olen < 2 || i + olen > ihl) {
            std::memset(h + i, kNop, ihl - i);
            break;
        }
        if ((type & kCopied) == 0) {
            std::memset(h + i, kNop, olen);
        }
        i += olen;
    }
}

}  // namespace

void Worker::send_fragments(rte_mbuf* m, uint16_t port, const rte_ether_addr& dst_mac,
                            const rte_ether_addr& src_mac, uint16_t mtu, Counter& sent) noexcept {
    const uint8_t* f = frame_of(m);
    const auto* oh = header_at<const rte_ipv4_hdr>(f + kEth);
    const uint8_t* o = f + kEth;
    const uint32_t ihl = (oh->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER;
    const uint32_t payload = rte_be_to_cpu_16(oh->total_length) - ihl;
    const uint32_t chunk = mtu > ihl ? (mtu - ihl) & ~7u : 0;
    // A fragment being fragmented again keeps its place (offset) and its MF.
    const uint16_t field = rte_be_to_cpu_16(oh->fragment_offset);
    const uint32_t base = (field & RTE_IPV4_HDR_OFFSET_MASK) * RTE_IPV4_HDR_OFFSET_UNITS;
    const uint16_t last_more = field & RTE_IPV4_HDR_MF_FLAG;
    if (base + payload > 0xffffu) {
        drop(m, Drop::Malformed);  // would end beyond the largest datagram
        return;
    }
    const uint32_t n = chunk == 0 ? 0 : (payload + chunk - 1) / chunk;
    if (n == 0 || n > kMaxFragments) {
        drop(m, Drop::TooBig);  // an MTU too small for this datagram's header or size
        return;
    }
    rte_mbuf* frags[kMaxFragments];
    for (uint32_t k = 0; k < n; ++k) {
        const uint32_t off = k * chunk;
        const uint32_t len = std::min(chunk, payload - off);
        frags[k] = rte_pktmbuf_alloc(m->pool);
        uint8_t* g = frags[k] != nullptr
                         ? reinterpret_cast<uint8_t*>(rte_pktmbuf_append(
                               frags[k], uint16_t(kEth + ihl + len)))
                         : nullptr;
        if (g == nullptr) {
            for (uint32_t j = 0; j <= k; ++j) {
                rte_pktmbuf_free(frags[j]);  // null-safe
            }
            drop(m, Drop::NoMbuf);
            return;
        }
        frags[k]->port = port;
        auto* eth = header_at<rte_ether_hdr>(g);
        eth->dst_addr = dst_mac;
        eth->src_addr = src_mac;
        eth->ether_type = header_at<const rte_ether_hdr>(f)->ether_type;
        uint8_t* h = g + kEth;
        std::memcpy(h, o, ihl);
        if (k != 0) {
            nop_uncopied_options(h, ihl);
        }
        auto* hh = header_at<rte_ipv4_hdr>(h);
        hh->total_length = rte_cpu_to_be_16(uint16_t(ihl + len));
        const uint16_t more = k + 1 < n ? RTE_IPV4_HDR_MF_FLAG : last_more;
        hh->fragment_offset =
            rte_cpu_to_be_16(uint16_t(more | ((base + off) / RTE_IPV4_HDR_OFFSET_UNITS)));
        hh->hdr_checksum = 0;
        hh->hdr_checksum = csum_full(h, uint16_t(ihl));
        std::memcpy(h + ihl, o + ihl + off, len);
    }
    for (uint32_t k = 0; k < n; ++k) {
        stage(port, frags[k]);
    }
    sent.add(n);
    counters.consumed.add(1);  // the original: its bytes left in the fragments
    rte_pktmbuf_free(m);
}

uint32_t Worker::frag_set(rte_be32_t src, rte_be32_t dst, rte_be16_t id,
                          uint8_t proto) noexcept {
    const uint32_t h =
        rte_hash_crc_4byte(uint32_t(id) << 8 | proto, rte_hash_crc_4byte(dst, src));
    return (h & (kFragSets - 1)) * kFragWays;
}

Worker::FragNote* Worker::find_note(const Parsed& p) noexcept {
    FragNote* set = &frag_notes_[frag_set(p.src, p.dst, p.ip_id, p.proto)];
    for (uint32_t w = 0; w < kFragWays; ++w) {
        FragNote& n = set[w];
        if (n.src == p.src && n.dst == p.dst && n.id == p.ip_id && n.proto == p.proto &&
            n.src != 0 && !expired(n.expire, now_)) {
            return &n;
        }
    }
    return nullptr;
}

void Worker::note_fragment(const Parsed& p, FragAction a, rte_be32_t addr, rte_be32_t tunnel_src,
                           const Conn& c) noexcept {
    FragNote* n = find_note(p);
    const bool used = n != nullptr && n->used;  // the same datagram's first fragment again
    if (n == nullptr) {
        FragNote* set = &frag_notes_[frag_set(p.src, p.dst, p.ip_id, p.proto)];
        // Ranks: 0 empty or expired, 1 live but never followed, 2 followed; the oldest of the
        // lowest rank goes.
        int best_rank = 3;
        uint32_t best_age = 0;
        for (uint32_t w = 0; w < kFragWays; ++w) {
            FragNote& x = set[w];
            const bool dead = x.src == 0 || expired(x.expire, now_);
            const int rank = dead ? 0 : x.used ? 2 : 1;
            const uint32_t age = kFragNoteMs - (x.expire - now_);  // larger: older
            if (rank < best_rank || (rank == best_rank && rank != 0 && age > best_age)) {
                best_rank = rank;
                best_age = age;
                n = &x;
            }
        }
        if (best_rank != 0) {
            counters.frag_notes_evicted.add(1);
        }
    }
    *n = {p.src, p.dst, p.ip_id, p.proto, a, addr, tunnel_src, c.svc_slot, c.real_slot,
          now_ + kFragNoteMs, used};
}

void Worker::handle_frag_later(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept {
    const Parsed& p = it.p;
    FragNote* np = find_note(p);
    if (np == nullptr) {
        drop(m, Drop::Fragment);
        return;
    }
    np->used = true;
    const FragNote& n = *np;
    rte_ipv4_hdr* ip = ipv4_of(m);
    const bool out = n.action == FragAction::NatOut;
    TrafficCounters& s = svc_stats[n.svc_slot];
    TrafficCounters& r = real_stats[n.real_slot];
    (out ? s.out_pkts : s.in_pkts).add(1);
    (out ? s.out_bytes : s.in_bytes).add(p.ip_len);
    (out ? r.out_pkts : r.in_pkts).add(1);
    (out ? r.out_bytes : r.in_bytes).add(p.ip_len);
    counters.fragments_forwarded.add(1);
    switch (n.action) {
    case FragAction::NatIn:
    case FragAction::NatOut: {
        if (ip->time_to_live <= 1) {
            drop(m, Drop::TtlExceeded);
            return;
        }
        const rte_be32_t dst = out ? p.dst : n.addr;
        const Route* r = nat_route(snap, m, dst, out ? snap.interface_of(m->port)->addr : 0, true);
        if (r == nullptr) {
            return;
        }
        decrement_ttl(ip);
        rewrite_addr(out ? LB_FIELD(ip, src_addr) : LB_FIELD(ip, dst_addr),
                     LB_FIELD(ip, hdr_checksum), nullptr, false, n.addr);
        xmit_nat(snap, m, *r, dst);
        return;
    }
    case FragAction::Tunnel: xmit_tunnel(snap, m, n.addr, n.tunnel_src, false); return;
    case FragAction::Route: xmit_dr(snap, m, n.addr); return;
    }
}

}  // namespace lb::dp
