// The burst pipeline: parse and classify every frame, look up its connection, schedule the
// burst's new connections ahead of their handlers, then hand each frame to its handler.
#include <algorithm>
#include <cstring>

#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "dataplane/checksum.hpp"
#include "dataplane/forward.hpp"
#include "dataplane/sched.hpp"
#include "dataplane/wire.hpp"
#include "dataplane/worker_inline.hpp"

namespace lb::dp {

uint16_t Worker::owner_of(rte_be32_t client_ip, uint16_t n_workers) noexcept {
    const uint32_t h = rte_hash_crc_4byte(client_ip, 0x51ed27u);
    return uint16_t((uint64_t(h) * n_workers) >> 32);
}

bool Worker::redirect_to_owner(const Snapshot& snap, rte_mbuf* m, rte_be32_t client) noexcept {
    const uint16_t owner = owner_of(client & snap.owner_mask, n_workers_);
    if (owner == id_) {
        return false;
    }
    stage_redirect(owner, m);
    return true;
}

// The frame's first checks: one segment, well formed, on a port with an interface, to our MAC
// (or broadcast ARP), from a source that can be right (Linux drops martians before IPVS sees
// them, land packets included). false: dropped. true: it.p is the parsed frame.
[[gnu::always_inline]] inline bool Worker::admit(const Snapshot& snap, rte_mbuf* m,
                                                 Item& it) noexcept {
    const uint8_t* f = frame_of(m);
    Drop why{};
    if (m->nb_segs != 1) {
        drop(m, Drop::Unsupported);
        return false;
    }
    if (parse_frame(f, rte_pktmbuf_data_len(m), it.p, why) != ParseResult::Ok) {
        drop(m, why);
        return false;
    }
    const Interface* ifc = snap.interface_of(m->port);
    if (ifc == nullptr) {
        drop(m, Drop::NotForUs);
        return false;
    }
    const Parsed& p = it.p;
    const bool mac_ours = std::memcmp(f, ifc->mac.addr_bytes, RTE_ETHER_ADDR_LEN) == 0;
    if (!mac_ours && !(p.l3 == L3::Arp && p.dst_mac_broadcast)) {
        drop(m, Drop::NotForUs);
        return false;
    }
    if (p.l3 == L3::Arp) {
        return true;
    }
    const uint8_t first = uint8_t(rte_be_to_cpu_32(p.src) >> 24);
    if (first == 0 || first == 127 || first >= 224 || snap.addr_class(p.src) != 0) {
        drop(m, Drop::Martian);
        return false;
    }
    return true;
}

// An IPv4 packet by what its destination is to us: its kind and connection key, or false when
// m was answered here (echo: it.kind set) or dropped.
[[gnu::always_inline]] inline bool Worker::kind_by_destination(rte_mbuf* m, Item& it,
                                                               uint8_t dst_class) noexcept {
    const Parsed& p = it.p;
    const bool l4_ports = p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP;
    const bool echo = p.proto == IPPROTO_ICMP && p.icmp_type == RTE_IP_ICMP_ECHO_REQUEST;
    const auto quote = [&] {
        return p.proto == IPPROTO_ICMP && is_icmp_error(p.icmp_type) &&
               parse_icmp_quote(frame_of(m), rte_pktmbuf_data_len(m), p, it.q);
    };
    if ((dst_class & Snapshot::kAddrVip) != 0) {
        if (l4_ports) {
            // No service (deleted, or never there): only an existing connection goes on.
            // The service is looked up only when no connection is found (handle_inbound).
            it.kind = Kind::Inbound;
            it.key = {p.src, p.dst, p.sport, p.dport, p.proto};
        } else if (echo) {
            it.kind = Kind::Echo;
            return false;
        } else if (quote()) {
            // Quotes our reply VIP -> client: reversed, it is the connection's inbound tuple.
            it.kind = Kind::IcmpToVip;
            it.key = {it.q.dst, it.q.src, it.q.dport, it.q.sport, it.q.proto};
        } else {
            drop(m, p.proto == IPPROTO_ICMP ? Drop::IcmpUnmatched : Drop::NoService);
            return false;
        }
    } else if ((dst_class & Snapshot::kAddrLocal) != 0) {
        if (echo) {
            it.kind = Kind::Echo;
            return false;
        }
        drop(m, p.proto == IPPROTO_ICMP ? Drop::IcmpUnmatched : Drop::NotForUs);
        return false;
    } else if (l4_ports) {
        it.kind = Kind::Outbound;
        it.key = {p.src, p.dst, p.sport, p.dport, p.proto};
    } else if (quote()) {
        // Quotes client -> real: reversed, it is the connection's outbound tuple.
        it.kind = Kind::IcmpFromInside;
        it.key = {it.q.dst, it.q.src, it.q.dport, it.q.sport, it.q.proto};
    } else {
        drop(m, p.proto == IPPROTO_ICMP ? Drop::IcmpUnmatched : Drop::NotForUs);
        return false;
    }
    if (it.key.proto != IPPROTO_TCP && it.key.proto != IPPROTO_UDP) {
        drop(m, Drop::IcmpUnmatched);
        it.kind = Kind::Done;
        return false;
    }
    return true;
}

void Worker::classify(const Snapshot& snap, rte_mbuf* m, Item& it) noexcept {
    it.kind = Kind::Done;
    if (!admit(snap, m, it)) {
        return;
    }
    const Parsed& p = it.p;
    if (p.l3 == L3::Arp) {
        it.kind = Kind::Arp;
        return;
    }
    const uint8_t dst_class = snap.addr_class(p.dst);
    if (p.frag_later) {
        it.kind = Kind::FragLater;
        it.key = {p.src, p.dst, 0, 0, p.proto};
        // The same owner as the datagram's first fragment: the client's.
        if (n_workers_ > 1 &&
            redirect_to_owner(snap, m, (dst_class & Snapshot::kAddrVip) != 0 ? p.src : p.dst)) {
            it.kind = Kind::Done;
        }
        return;
    }
    if (!kind_by_destination(m, it, dst_class)) {
        return;
    }
    // The client address appears in both directions: the owner is the client's.
    const bool client_is_src = it.kind == Kind::Inbound || it.kind == Kind::IcmpFromInside;
    if (n_workers_ > 1 && redirect_to_owner(snap, m, client_is_src ? it.key.src : it.key.dst)) {
        it.kind = Kind::Done;
        return;
    }
    it.hash = ConnTable::hash(it.key);
}

// Stage 1: every frame parsed and classified, the first bucket of its connection prefetched
// (the egress cache dropped first when the snapshot or the neighbour table changed).
[[gnu::always_inline]] inline void Worker::stage_classify(const Snapshot& snap, rte_mbuf** pkts,
                                                          uint16_t n) noexcept {
    Item* items = items_.data();
    const uint32_t neigh_gen = neigh_.generation();
    if (snap.uid != egress_snap_ || neigh_gen != egress_gen_) {
        for (Egress& e : egress_) {
            e.dst = 0;
        }
        egress_snap_ = snap.uid;
        egress_gen_ = neigh_gen;
    }
    for (uint16_t i = 0; i < n; ++i) {
        if (i + 3 < n) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 3], void*));
        }
        classify(snap, pkts[i], items[i]);
        if (items[i].kind >= Kind::Inbound && items[i].kind != Kind::FragLater) {
            conns.prefetch(items[i].hash);
        }
    }
}

// Stage 2: the first buckets prefetched above have had the rest of the burst's parsing to
// arrive: each packet's candidate entry (first slot with its signature) is noted and
// prefetched. The handlers check the candidate's key, and look up afresh only when it is not
// theirs or when connections were added since (earlier packets of the burst may add or remove).
[[gnu::always_inline]] inline void Worker::stage_candidates(uint16_t n) noexcept {
    Item* items = items_.data();
    bool second = false;
    for (uint16_t i = 0; i < n; ++i) {
        Item& it = items[i];
        if (it.kind >= Kind::Inbound && it.kind != Kind::FragLater) {
            it.cand = conns.candidate(it.hash);
            second |= it.cand == ConnTable::kUnknown;
        }
    }
    // The few whose first bucket had no slot for them but spilled keys: their second bucket
    // was prefetched by candidate().
    for (uint16_t i = 0; second && i < n; ++i) {
        Item& it = items[i];
        if (it.kind >= Kind::Inbound && it.kind != Kind::FragLater &&
            it.cand == ConnTable::kUnknown) {
            it.cand = conns.candidate_second(it.hash);
        }
    }
}

// Stage 3: a packet whose tuple no slot knows is, most likely, a new connection: it is scheduled
// here, and its reply tuple's first bucket is prefetched for the handler's collision check
// and insert (cold and random: the largest cost of a new connection otherwise). A tuple seen
// twice in the burst is scheduled once: its later packets find the connection the first one
// makes. rr and wrr take the burst's turns of a service with one increment of its cursor
// (shared by the workers), handed out in packet order.
[[gnu::always_inline]] inline void Worker::stage_schedule(const Snapshot& snap, rte_mbuf** pkts,
                                                          uint16_t n, uint32_t now) noexcept {
    Item* items = items_.data();
    uint16_t firsts[kBurst];
    uint16_t n_firsts = 0;
    const Service* turns_svc = nullptr;
    uint64_t turns = 0;
    std::array<uint64_t, 4> seen{};
    for (uint16_t i = 0; i < n; ++i) {
        Item& it = items[i];
        const bool fresh = it.kind == Kind::Inbound && it.cand == ConnTable::kNone;
        it.pre = Pre::None;  // after the loads above: a byte stored into them would stall them
        if (!fresh) {
            continue;
        }
        // A new connection only from a source that may come in by this port (rp_filter): the
        // connection's tuple pins the source for its later packets.
        if (!snap.source_ok(it.p.src, *snap.interface_of(pkts[i]->port))) [[unlikely]] {
            it.pre = Pre::Martian;
            continue;
        }
        const uint64_t h = it.hash;
        uint64_t& word = seen[h >> 62];
        const uint64_t bit = uint64_t(1) << ((h >> 56) & 63);
        bool again = false;
        if ((word & bit) != 0) {
            for (uint16_t k = 0; k < n_firsts && !again; ++k) {
                again = items[firsts[k]].hash == h;
            }
        }
        if (!again) {
            word |= bit;
            firsts[n_firsts++] = i;
            it.svc = schedulable(snap, it);
            if (it.svc != nullptr && sched_takes_turns(*it.svc)) {
                turns_svc = turns_svc == nullptr ? it.svc : turns_svc;
                turns += it.svc == turns_svc ? 1 : 0;
            }
        }
    }
    uint64_t turn =
        turns != 0 ? turns_svc->cursor.next.fetch_add(turns, std::memory_order_relaxed) : 0;
    for (uint16_t k = 0; k < n_firsts; ++k) {
        Item& it = items[firsts[k]];
        if (it.svc == nullptr) {
            continue;
        }
        const Service& svc = *it.svc;
        const SchedCtx ctx{it.p.src, it.p.sport, it.p.dst, real_stats.get(), overload};
        const int32_t pick =
            &svc == turns_svc ? sched_pick_turn(svc, ctx, turn++) : sched_pick(svc, ctx);
        preschedule(snap, pkts[firsts[k]], it, now, pick);
    }
}

// Stage 4: each frame to its handler, in arrival order.
[[gnu::always_inline]] inline void Worker::stage_handle(const Snapshot& snap, rte_mbuf** pkts,
                                                        uint16_t n, uint32_t now) noexcept {
    Item* items = items_.data();
    burst_inserts_ = 0;
    burst_filter_ = {};
    for (uint16_t i = 0; i < n; ++i) {
        Item& it = items[i];
        switch (it.kind) {
        case Kind::Done: break;
        case Kind::Arp: handle_arp(snap, pkts[i], it); break;
        case Kind::Echo: handle_echo(snap, pkts[i], it); break;
        case Kind::Inbound: handle_inbound(snap, pkts[i], it, now); break;
        case Kind::Outbound: handle_outbound(snap, pkts[i], it, now); break;
        case Kind::IcmpToVip:
        case Kind::IcmpFromInside: handle_icmp_error(snap, pkts[i], it, now); break;
        case Kind::FragLater: handle_frag_later(snap, pkts[i], it); break;
        }
    }
}

void Worker::process_burst(const Snapshot& snap, rte_mbuf** pkts, uint16_t n,
                           uint32_t now) noexcept {
    now_ = now;
    stage_classify(snap, pkts, n);
    stage_candidates(n);
    stage_schedule(snap, pkts, n, now);
    stage_handle(snap, pkts, n, now);
    if (n_probes_ != 0) [[unlikely]] {
        send_probes(snap);  // after the RSTs and FINs they are about, on the same ports
    }
}

Conn Worker::new_conn(const Parsed& p, const Service& svc, const Real& real, uint32_t tmpl,
                      uint32_t now, const Timeouts& t) noexcept {
    Conn c{};
    c.client_ip = p.src;
    c.client_port = p.sport;
    c.vip = p.dst;
    c.vport = p.dport;
    c.real_ip = real.addr;
    c.real_port = real.port;
    c.proto = p.proto;
    c.state = uint8_t(TcpState::None);
    c.forward = uint8_t(real.forward);
    c.svc_slot = svc.stats_slot;
    c.real_slot = real.stats_slot;
    c.tmpl = tmpl;
    c.expire = now + timeout_of(t, c);
    return c;
}

const Service* Worker::schedulable(const Snapshot& snap, const Item& it) noexcept {
    // Only the plain case: a SYN (or UDP) for a service without persistence. The rest is
    // scheduled by handle_inbound.
    const Parsed& p = it.p;
    if (p.proto == IPPROTO_TCP && (p.tcp_flags & (kSyn | kAck | kRst | kFin)) != kSyn) {
        return nullptr;
    }
    const Service* svc = snap.find_service(p.dst, p.dport, p.proto);
    return svc != nullptr && svc->persistence == 0 ? svc : nullptr;
}

void Worker::preschedule(const Snapshot& snap, const rte_mbuf* m, Item& it, uint32_t now,
                         int32_t pick) noexcept {
    if (pick < 0) {
        return;
    }
    const Service* svc = it.svc;
    const Parsed& p = it.p;
    const Real& real = svc->reals[size_t(pick)];
    if (real.forward == Forward::Nat && ttl_of(m) <= 1) {
        it.pre = Pre::TtlExceeded;
        return;
    }
    Conn& c = it.fresh;
    c = new_conn(p, *svc, real, ConnTable::kNone, now, snap.timeouts);
    it.h_out = ConnTable::hash(out_key(c));
    conns.prefetch_both(it.h_out);
    // Counted now, so lc and wlc see the earlier picks of this burst as they would one by one.
    gauge(c, true);
    it.pre = Pre::Picked;
}

}  // namespace lb::dp
