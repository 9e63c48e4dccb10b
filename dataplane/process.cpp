// The packet logic of a worker: classify, connection lookup, schedule, NAT, ICMP, ARP.
#include <algorithm>
#include <cstring>

#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "dataplane/checksum.hpp"
#include "dataplane/sched.hpp"
#include "dataplane/worker.hpp"

namespace lb::dp {

namespace {

constexpr uint16_t kEth = 14;
constexpr uint16_t kMinFrame = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN;  // 60: padded

inline uint8_t* frame_of(rte_mbuf* m) noexcept { return rte_pktmbuf_mtod(m, uint8_t*); }

inline uint16_t rd16(const uint8_t* p) noexcept {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
inline uint32_t rd32(const uint8_t* p) noexcept {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline void wr16(uint8_t* p, uint16_t v) noexcept { std::memcpy(p, &v, 2); }
inline void wr32(uint8_t* p, uint32_t v) noexcept { std::memcpy(p, &v, 4); }

// Offset of the transport checksum field, or 0 when the protocol has none we maintain.
inline uint16_t l4_csum_off(uint8_t proto) noexcept {
    return proto == IPPROTO_TCP ? 16 : proto == IPPROTO_UDP ? 6 : 0;
}

// Replaces a 32-bit IPv4 address field at `field` (inside an IP header whose checksum is at
// `ip_csum`) and fixes the transport checksum at `l4_csum` (nullptr: none) for the pseudo-header.
inline void rewrite_addr(uint8_t* field, uint8_t* ip_csum, uint8_t* l4_csum, bool udp,
                         uint32_t to) noexcept {
    const uint32_t from = rd32(field);
    wr32(field, to);
    wr16(ip_csum, csum_replace4(rd16(ip_csum), from, to));
    if (l4_csum != nullptr) {
        wr16(l4_csum, udp ? udp_csum_replace4(rd16(l4_csum), from, to)
                          : csum_replace4(rd16(l4_csum), from, to));
    }
}

inline void rewrite_port(uint8_t* field, uint8_t* l4_csum, bool udp, uint16_t to) noexcept {
    const uint16_t from = rd16(field);
    wr16(field, to);
    if (l4_csum != nullptr) {
        wr16(l4_csum, udp ? udp_csum_replace2(rd16(l4_csum), from, to)
                          : csum_replace2(rd16(l4_csum), from, to));
    }
}

// Decrements the TTL of the IPv4 header at ip; false when the packet must not be forwarded.
inline bool decrement_ttl(uint8_t* ip) noexcept {
    if (ip[8] <= 1) {
        return false;
    }
    // The 16-bit word TTL+protocol, before and after: built in registers (a byte store read
    // back as a word would stall on store forwarding).
    const uint16_t from = rd16(ip + 8);
    const uint8_t next[2] = {uint8_t(ip[8] - 1), ip[9]};
    uint16_t to;
    std::memcpy(&to, next, 2);
    wr16(ip + 8, to);
    wr16(ip + 10, csum_replace2(rd16(ip + 10), from, to));
    return true;
}

}  // namespace

uint16_t Worker::owner_of(rte_be32_t client_ip, uint16_t n_workers) noexcept {
    const uint32_t h = rte_hash_crc_4byte(client_ip, 0x51ed27u);
    return uint16_t((uint64_t(h) * n_workers) >> 32);
}

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

// Inlined: with the teardown states GCC took it out of line (new nat rr +17 instructions).
[[gnu::always_inline]] inline uint32_t Worker::timeout_of(const Timeouts& t,
                                                          const Conn& c) noexcept {
    if (c.proto != IPPROTO_TCP) {
        return t.udp;
    }
    switch (TcpState(c.state)) {
    case TcpState::Established:
    case TcpState::FinClient: return t.tcp_established;
    case TcpState::FinWait: return t.tcp_fin_wait;
    case TcpState::CloseWait: return t.tcp_close_wait;
    case TcpState::LastAck: return t.tcp_last_ack;
    case TcpState::TimeWait: return t.tcp_time_wait;
    case TcpState::Close:
    case TcpState::RstClient:
    case TcpState::RstReal: return t.tcp_close;
    default: return t.tcp_syn_recv;
    }
}

void Worker::gauge(const Conn& c, bool add) noexcept {
    // The service's gauges too: control reuses a removed service's counter slot only when
    // they read zero.
    TrafficCounters* both[2] = {&real_stats[c.real_slot], &svc_stats[c.svc_slot]};
    for (TrafficCounters* t : both) {
        Counter& g = is_template(c) ? t->persist
                     : c.proto == IPPROTO_TCP && TcpState(c.state) == TcpState::Established
                         ? t->active
                         : t->inactive;
        if (add) {
            g.add(1);
        } else {
            g.sub(1);
        }
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

void Worker::set_state(Conn& c, TcpState next) noexcept {
    // The gauges count ESTABLISHED (active) and the rest (inactive): only a move across that
    // line changes them.
    const bool was = TcpState(c.state) == TcpState::Established;
    if (was != (next == TcpState::Established) && !is_template(c)) {
        gauge(c, false);
        c.state = uint8_t(next);
        gauge(c, true);
        return;
    }
    c.state = uint8_t(next);
}

[[gnu::always_inline]] inline void Worker::track(const Snapshot& snap, Conn& c, const Parsed& p, Dir dir, uint32_t now,
                          const rte_mbuf* m) noexcept {
    if (p.proto == IPPROTO_TCP) {
        const auto s = TcpState(c.state);
        if (s == TcpState::Established && (p.tcp_flags & (kSyn | kFin | kRst)) == 0) {
            c.expire = now + snap.timeouts.tcp_established;  // the usual data packet: no change
            return;
        }
        if ((p.tcp_flags & (kFin | kRst)) != 0 || s > TcpState::Close || s == TcpState::FinWait)
            [[unlikely]] {
            track_tcp(snap, c, p, dir, now, m);  // teardown.cpp: the claims and the pending states
        } else {
            // tun and dr see the client's packets only. (Written out: with tcp_next_state_seen
            // here GCC made every established packet 31 instructions longer, est nat 617 -> 648.)
            const auto next = dir == Dir::Out || Forward(c.forward) == Forward::Nat
                                  ? tcp_next_state(s, dir, p.tcp_flags)
                                  : tcp_next_state_input_only(s, p.tcp_flags);
            if (next != s) {
                set_state(c, next);
            }
        }
    }
    c.expire = now + timeout_of(snap.timeouts, c);
}

void Worker::remove_conn(uint32_t idx) noexcept {
    const Conn& c = conns.at(idx);
    if (!is_template(c) && c.tmpl != ConnTable::kNone) {
        --conns.at(c.tmpl).tmpl;  // a template outlives the connections it controls
    }
    gauge(c, false);
    conns.remove(idx);
}

void Worker::expire(uint32_t now_ms, uint32_t budget) noexcept {
    const uint32_t n = conns.sweep(now_ms, budget, [this, now_ms](Conn& c) {
        if (is_template(c)) {
            if (c.tmpl != 0) {
                // Still controls connections: it lives on (IPVS re-arms it the same way).
                c.expire = now_ms + 1000;
                return false;
            }
        } else if (c.tmpl != ConnTable::kNone) {
            --conns.at(c.tmpl).tmpl;
        }
        gauge(c, false);
        return true;
    });
    if (n != 0) {
        counters.conns_expired.add(n);
    }
}

bool Worker::make_room(uint32_t now) noexcept {
    const uint32_t cap = conns.capacity();
    for (uint32_t k = 0; k < kEvictScan && k < cap; ++k) {
        const uint32_t i = evict_cursor_;
        evict_cursor_ = evict_cursor_ + 1 == cap ? 0 : evict_cursor_ + 1;
        const Conn& c = conns.at(i);
        if (!c.in_use) {
            continue;
        }
        if (expired(c.expire, now) && (!is_template(c) || c.tmpl == 0)) {
            remove_conn(i);
            counters.conns_expired.add(1);
            return true;
        }
        const auto s = TcpState(c.state);
        if (!is_template(c) && c.proto == IPPROTO_TCP &&
            (s == TcpState::SynRecv || s == TcpState::None)) {
            remove_conn(i);
            counters.conns_evicted.add(1);
            return true;
        }
    }
    return false;
}

uint32_t Worker::find_template(const FlowKey& k, uint64_t h, uint32_t now) noexcept {
    Dir d{};
    const uint32_t idx = conns.lookup(k, h, d);
    if (idx == ConnTable::kNone || d != Dir::In) {
        return ConnTable::kNone;
    }
    if (expired(conns.at(idx).expire, now) && conns.at(idx).tmpl == 0) {
        remove_conn(idx);
        counters.conns_expired.add(1);
        return ConnTable::kNone;
    }
    return idx;
}

int32_t Worker::persist_pick(const Service& svc, const Parsed& p, uint32_t now,
                             uint32_t* tmpl) noexcept {
    const uint8_t tproto = uint8_t(p.proto | kTemplateProto);
    const FlowKey k{p.src & svc.persist_mask, p.dst, 0, p.dport, tproto};
    const uint64_t h = ConnTable::hash(k);
    uint32_t t = find_template(k, h, now);
    int32_t pick = kNoReal;
    if (t != ConnTable::kNone) {
        Conn& tc = conns.at(t);
        for (size_t i = 0; i < svc.reals.size(); ++i) {
            // A quiescent real (weight 0) keeps its persistent clients, as in IPVS.
            if (svc.reals[i].addr == tc.real_ip && svc.reals[i].port == tc.real_port) {
                pick = int32_t(i);
                break;
            }
        }
        if (pick == kNoReal) {
            // Its real is gone from the service: schedule afresh and point the template there.
            pick = sched_pick(svc, SchedCtx{p.src, p.sport, p.dst, real_stats.get(), overload});
            if (pick == kNoReal) {
                return kNoReal;
            }
            const Real& r = svc.reals[size_t(pick)];
            burst_inserts_ = kBurstKeysUnknown;
            if (!conns.set_real(t, r.addr, r.port)) {
                return kNoReal;
            }
            gauge(tc, false);
            tc.real_slot = r.stats_slot;
            tc.forward = uint8_t(r.forward);
            gauge(tc, true);
        }
    } else {
        pick = sched_pick(svc, SchedCtx{p.src, p.sport, p.dst, real_stats.get(), overload});
        if (pick == kNoReal) {
            return kNoReal;
        }
        const Real& r = svc.reals[size_t(pick)];
        Conn c{};
        c.client_ip = k.src;
        c.vip = k.dst;
        c.vport = k.dport;
        c.real_ip = r.addr;
        c.real_port = r.port;
        c.proto = tproto;
        c.forward = uint8_t(r.forward);
        c.svc_slot = svc.stats_slot;
        c.real_slot = r.stats_slot;
        c.tmpl = 0;
        t = conns.insert(c);
        if (t == ConnTable::kNone && conns.size() == conns.capacity() && make_room(now)) {
            t = conns.insert(c);
        }
        burst_inserts_ = kBurstKeysUnknown;
        if (t == ConnTable::kNone) {
            *tmpl = ConnTable::kNone;
            return kNoReal - 1;  // no room for the template
        }
        gauge(conns.at(t), true);
    }
    conns.at(t).expire = now + svc.persistence * 1000;
    *tmpl = t;
    return pick;
}

uint32_t Worker::find_live(const FlowKey& k, uint64_t h, Dir want, uint32_t now,
                           uint32_t cand) noexcept {
    Dir d{};
    uint32_t idx;
    if (cand < kNoCandidate && conns.verify(k, cand)) {
        idx = cand >> 1;  // the usual case: the candidate's entry is warm and is the one
        d = Dir(cand & 1);
    } else if (cand == ConnTable::kNone && !added_in_burst(h)) {
        idx = ConnTable::kNone;  // no slot had the signature, and no key with h was added since
    } else {
        idx = conns.lookup(k, h, d);
    }
    if (idx == ConnTable::kNone || d != want) {
        return ConnTable::kNone;
    }
    if (expired(conns.at(idx).expire, now)) {
        remove_conn(idx);
        counters.conns_expired.add(1);
        return ConnTable::kNone;
    }
    return idx;
}

bool Worker::redirect_to_owner(const Snapshot& snap, rte_mbuf* m, rte_be32_t client) noexcept {
    const uint16_t owner = owner_of(client & snap.owner_mask, n_workers_);
    if (owner == id_) {
        return false;
    }
    stage_redirect(owner, m);
    return true;
}

void Worker::classify(const Snapshot& snap, rte_mbuf* m, Item& it) noexcept {
    it.kind = Kind::Done;
    const uint8_t* f = frame_of(m);
    Drop why{};
    if (m->nb_segs != 1) {
        drop(m, Drop::Unsupported);
        return;
    }
    if (parse_frame(f, rte_pktmbuf_data_len(m), it.p, why) != ParseResult::Ok) {
        drop(m, why);
        return;
    }
    const Interface* ifc = snap.interface_of(m->port);
    if (ifc == nullptr) {
        drop(m, Drop::NotForUs);
        return;
    }
    const bool mac_ours = std::memcmp(f, ifc->mac.addr_bytes, 6) == 0;
    const Parsed& p = it.p;
    if (p.l3 == L3::Arp) {
        if (!mac_ours && !p.dst_mac_broadcast) {
            drop(m, Drop::NotForUs);
            return;
        }
        it.kind = Kind::Arp;
        return;
    }
    if (!mac_ours) {
        drop(m, Drop::NotForUs);
        return;
    }
    {
        // Martian sources, as Linux drops them before IPVS sees them (land packets included).
        const uint8_t first = uint8_t(rte_be_to_cpu_32(p.src) >> 24);
        if (first == 0 || first == 127 || first >= 224 || snap.addr_class(p.src) != 0) {
            drop(m, Drop::Martian);
            return;
        }
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
    const bool l4_ports = p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP;
    if ((dst_class & Snapshot::kAddrVip) != 0) {
        if (l4_ports) {
            // No service (deleted, or never there): only an existing connection goes on.
            // The service is looked up only when no connection is found (handle_inbound).
            it.kind = Kind::Inbound;
            it.key = {p.src, p.dst, p.sport, p.dport, p.proto};
        } else if (p.proto == IPPROTO_ICMP && p.icmp_type == 8) {
            it.kind = Kind::Echo;
            return;
        } else if (p.proto == IPPROTO_ICMP && is_icmp_error(p.icmp_type) &&
                   parse_icmp_quote(f, rte_pktmbuf_data_len(m), p, it.q)) {
            // Quotes our reply VIP -> client: reversed, it is the connection's inbound tuple.
            it.kind = Kind::IcmpToVip;
            it.key = {it.q.dst, it.q.src, it.q.dport, it.q.sport, it.q.proto};
        } else {
            drop(m, p.proto == IPPROTO_ICMP ? Drop::IcmpUnmatched : Drop::NoService);
            return;
        }
    } else if ((dst_class & Snapshot::kAddrLocal) != 0) {
        if (p.proto == IPPROTO_ICMP && p.icmp_type == 8) {
            it.kind = Kind::Echo;
            return;
        }
        drop(m, p.proto == IPPROTO_ICMP ? Drop::IcmpUnmatched : Drop::NotForUs);
        return;
    } else if (l4_ports) {
        it.kind = Kind::Outbound;
        it.key = {p.src, p.dst, p.sport, p.dport, p.proto};
    } else if (p.proto == IPPROTO_ICMP && is_icmp_error(p.icmp_type) &&
               parse_icmp_quote(f, rte_pktmbuf_data_len(m), p, it.q)) {
        // Quotes client -> real: reversed, it is the connection's outbound tuple.
        it.kind = Kind::IcmpFromInside;
        it.key = {it.q.dst, it.q.src, it.q.dport, it.q.sport, it.q.proto};
    } else {
        drop(m, p.proto == IPPROTO_ICMP ? Drop::IcmpUnmatched : Drop::NotForUs);
        return;
    }
    if (it.key.proto != IPPROTO_TCP && it.key.proto != IPPROTO_UDP) {
        drop(m, Drop::IcmpUnmatched);
        it.kind = Kind::Done;
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

void Worker::process_burst(const Snapshot& snap, rte_mbuf** pkts, uint16_t n,
                           uint32_t now) noexcept {
    now_ = now;
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
    // The first buckets prefetched above have had the rest of the burst's parsing to arrive:
    // each packet's candidate entry (first slot with its signature) is noted and prefetched. The
    // handlers check the candidate's key, and look up afresh only when it is not theirs or when
    // connections were added since (earlier packets of the burst may add or remove).
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
    // A packet whose tuple no slot knows is, most likely, a new connection: it is scheduled
    // here, and its reply tuple's first bucket is prefetched for the handler's collision check
    // and insert (cold and random: the largest cost of a new connection otherwise). A tuple seen
    // twice in the burst is scheduled once: its later packets find the connection the first one
    // makes. rr and wrr take the burst's turns of a service with one increment of its cursor
    // (shared by the workers), handed out in packet order.
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
    if (n_probes_ != 0) [[unlikely]] {
        send_probes(snap);  // after the RSTs and FINs they are about, on the same ports
    }
}

void Worker::handle_arp(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept {
    uint8_t* f = frame_of(m);
    uint8_t* a = f + kEth;
    const Interface& ifc = *snap.interface_of(m->port);
    const uint16_t op = rte_be_to_cpu_16(it.p.sport);
    const rte_be32_t sender = it.p.src, target = it.p.dst;
    const bool sender_on_link = sender != 0 && (sender & ifc.mask) == (ifc.addr & ifc.mask);
    const bool for_us = snap.is_local(target) || snap.is_vip(target);
    // Never an entry for one of our own addresses or VIPs, whoever claims it.
    const bool sender_ours = snap.is_local(sender) || snap.is_vip(sender);
    if (op == 1 && for_us) {
        if (sender_on_link && !sender_ours) {
            slow_msg(SlowMsg::Learn, m->port, sender, a + 8);
        }
        // Turn the request into the reply, in place.
        std::memcpy(f, a + 8, 6);                    // eth dst = requester
        std::memcpy(f + 6, ifc.mac.addr_bytes, 6);   // eth src = us
        wr16(a + 6, rte_cpu_to_be_16(2));
        std::memcpy(a + 18, a + 8, 10);              // tha, tpa = requester's sha, spa
        std::memcpy(a + 8, ifc.mac.addr_bytes, 6);   // sha = us
        wr32(a + 14, target);                        // spa = the address asked for
        counters.arp_replies.add(1);
        stage(m->port, m);
        return;
    }
    if (op == 2 && target == ifc.addr && sender != 0 && !sender_ours) {
        // Control decides: an answer to its own probe, or a claim it refuses (and reports). One
        // from off-link can only be a claim (a known neighbour's address seen on the wrong
        // port): reported, and ignored here.
        slow_msg(SlowMsg::Reply, m->port, sender, a + 8);
        if (sender_on_link) {
            counters.consumed.add(1);
            rte_pktmbuf_free(m);
            return;
        }
    }
    drop(m, Drop::ArpIgnored);
}

void Worker::handle_echo(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept {
    uint8_t* f = frame_of(m);
    uint8_t* ip = f + kEth;
    uint8_t* icmp = f + it.p.l4_off;
    const Interface& ifc = *snap.interface_of(m->port);
    if (!snap.source_ok(it.p.src, ifc)) {
        drop(m, Drop::Martian);  // no reply to a source that cannot be there
        return;
    }
    std::memcpy(f, f + 6, 6);
    std::memcpy(f + 6, ifc.mac.addr_bytes, 6);
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

[[gnu::always_inline]] inline void Worker::put_l2(rte_mbuf* m, const Egress& e) noexcept {
    uint8_t* f = frame_of(m);
    std::memcpy(f, e.dst_mac.addr_bytes, 6);
    std::memcpy(f + 6, e.src_mac.addr_bytes, 6);
    stage(e.port, m);
}

void Worker::stage_l2(rte_mbuf* m, uint16_t port, const Interface& ifc, rte_be32_t next_hop,
                      rte_be32_t cache_dst, uint8_t cache_kind) noexcept {
    uint8_t* f = frame_of(m);
    std::memcpy(f + 6, ifc.mac.addr_bytes, 6);
    rte_ether_addr mac;
    if (neigh_lookup(next_hop, mac)) {
        std::memcpy(f, mac.addr_bytes, 6);
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
            std::memcpy(frame_of(h.m), mac.addr_bytes, 6);
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
    const uint8_t* inner = frame_of(m) + kEth;
    const uint16_t inner_len = rte_be_to_cpu_16(rd16(inner + 2));
    const bool df = (inner[6] & 0x40) != 0;
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

bool Worker::take_reset_token() noexcept {
    // Token bucket: kResetsPerSec, refilled by the burst clock.
    const uint32_t elapsed = now_ - reset_refill_ms_;
    if (elapsed != 0) {
        const uint64_t add = uint64_t(elapsed) * kResetsPerSec / 1000;
        if (add != 0) {
            reset_tokens_ = uint32_t(std::min<uint64_t>(kResetBurst, reset_tokens_ + add));
            reset_refill_ms_ = now_;
        }
    }
    if (reset_tokens_ == 0) {
        counters.resets_limited.add(1);
        return false;
    }
    --reset_tokens_;
    return true;
}

void Worker::write_tcp_segment(uint8_t* f, rte_be32_t src, rte_be16_t sport, rte_be32_t dst,
                               rte_be16_t dport, uint32_t seq, uint32_t ack,
                               uint8_t flags) noexcept {
    constexpr uint16_t kLen = sizeof(rte_ipv4_hdr) + sizeof(rte_tcp_hdr);
    wr16(f + 12, rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4));
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f + kEth);
    auto* tcp = reinterpret_cast<rte_tcp_hdr*>(f + kEth + sizeof(rte_ipv4_hdr));
    ip->version_ihl = 0x45;
    ip->type_of_service = 0;
    ip->total_length = rte_cpu_to_be_16(kLen);
    ip->packet_id = 0;
    ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
    ip->time_to_live = 64;
    ip->next_proto_id = IPPROTO_TCP;
    ip->src_addr = src;
    ip->dst_addr = dst;
    ip->hdr_checksum = 0;
    ip->hdr_checksum = csum_full(ip, sizeof(rte_ipv4_hdr));
    tcp->src_port = sport;
    tcp->dst_port = dport;
    tcp->sent_seq = rte_cpu_to_be_32(seq);
    tcp->recv_ack = rte_cpu_to_be_32(ack);
    tcp->data_off = 5 << 4;
    tcp->tcp_flags = flags;
    tcp->rx_win = 0;
    tcp->cksum = 0;
    tcp->tcp_urp = 0;
    // The pseudo-header: addresses, protocol, TCP length.
    uint32_t sum = csum_partial(&ip->src_addr, 8);
    const uint16_t proto_len[2] = {rte_cpu_to_be_16(IPPROTO_TCP),
                                   rte_cpu_to_be_16(sizeof(rte_tcp_hdr))};
    sum = csum_partial(proto_len, sizeof(proto_len), sum);
    tcp->cksum = csum_full(tcp, sizeof(rte_tcp_hdr), sum);
    std::memset(f + kEth + kLen, 0, kMinFrame - kEth - kLen);  // Ethernet padding
}

void Worker::send_segment(const Snapshot& snap, rte_mempool* pool, rte_be32_t src,
                          rte_be16_t sport, rte_be32_t dst, rte_be16_t dport, uint32_t seq,
                          uint32_t ack, uint8_t flags) noexcept {
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    uint8_t* f =
        m != nullptr ? reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, kMinFrame)) : nullptr;
    if (f == nullptr) {
        rte_pktmbuf_free(m);  // null-safe
        counters.drops[size_t(Drop::NoMbuf)].add(1);
        return;
    }
    write_tcp_segment(f, src, sport, dst, dport, seq, ack, flags);
    send_ipv4(snap, m, dst);
}

bool Worker::send_reset(const Snapshot& snap, rte_mbuf* m, const Parsed& p, rte_be32_t src,
                        rte_be16_t sport, rte_be32_t dst, rte_be16_t dport) noexcept {
    if (!take_reset_token()) {
        drop(m, Drop::NoConnection);
        return false;
    }
    uint8_t* f = frame_of(m);
    const auto* th = reinterpret_cast<const rte_tcp_hdr*>(f + p.l4_off);
    const uint32_t seq = rte_be_to_cpu_32(th->sent_seq);
    const uint32_t ack = rte_be_to_cpu_32(th->recv_ack);
    const uint32_t data_len = p.l4_len - uint32_t(th->data_off >> 4) * 4u;
    const uint8_t flags = p.tcp_flags;
    // RFC 793, a segment of no connection: with ACK, <SEQ=SEG.ACK><CTL=RST>; else
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    uint32_t r_seq = ack, r_ack = 0;
    uint8_t r_flags = kRst;
    if ((flags & kAck) == 0) {
        r_seq = 0;
        r_ack = seq + data_len + ((flags & kSyn) != 0 ? 1 : 0) + ((flags & kFin) != 0 ? 1 : 0);
        r_flags = kRst | kAck;
    }
    const uint16_t have = rte_pktmbuf_data_len(m);  // >= 14 + 20 + 20 (parsed)
    if (have >= kMinFrame) {
        rte_pktmbuf_trim(m, uint16_t(have - kMinFrame));
    } else if (rte_pktmbuf_append(m, uint16_t(kMinFrame - have)) == nullptr) {
        drop(m, Drop::NoMbuf);
        return false;
    }
    write_tcp_segment(f, src, sport, dst, dport, r_seq, r_ack, r_flags);
    counters.resets_sent.add(1);
    send_ipv4(snap, m, dst);
    return true;
}

bool Worker::encapsulate(rte_mbuf* m, rte_be32_t real, rte_be32_t src) noexcept {
    uint8_t* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, 20));
    if (f == nullptr) {
        drop(m, Drop::NoMbuf);
        return false;
    }
    const uint8_t* inner = f + kEth + 20;
    wr16(f + 12, rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4));
    uint8_t* o = f + kEth;
    o[0] = 0x45;
    o[1] = inner[1];  // TOS
    wr16(o + 2, rte_cpu_to_be_16(uint16_t(rte_be_to_cpu_16(rd16(inner + 2)) + 20)));
    std::memcpy(o + 4, inner + 4, 2);  // ID
    wr16(o + 6, (inner[6] & 0x40) != 0 ? rte_cpu_to_be_16(0x4000) : 0);
    o[8] = 64;
    o[9] = IPPROTO_IPIP;
    wr16(o + 10, 0);
    wr32(o + 12, src);
    wr32(o + 16, real);
    wr16(o + 10, csum_full(o, 20));
    counters.tunnel_encapsulated.add(1);
    return true;
}

void Worker::send_fragments(rte_mbuf* m, uint16_t port, const rte_ether_addr& dst_mac,
                            const rte_ether_addr& src_mac, uint16_t mtu, Counter& sent) noexcept {
    const uint8_t* f = frame_of(m);
    const uint8_t* o = f + kEth;
    const uint32_t ihl = (o[0] & 0x0fu) * 4u;
    const uint32_t payload = rte_be_to_cpu_16(rd16(o + 2)) - ihl;
    const uint32_t chunk = mtu > ihl ? (mtu - ihl) & ~7u : 0;
    // A fragment being fragmented again keeps its place (offset) and its MF.
    const uint16_t field = rte_be_to_cpu_16(rd16(o + 6));
    const uint32_t base = (field & 0x1fffu) * 8u;
    const uint16_t last_more = field & 0x2000;
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
        std::memcpy(g, dst_mac.addr_bytes, 6);
        std::memcpy(g + 6, src_mac.addr_bytes, 6);
        std::memcpy(g + 12, f + 12, 2);
        uint8_t* h = g + kEth;
        std::memcpy(h, o, ihl);
        if (k != 0) {
            // RFC 791: only the options with the copied flag go into the later fragments; the
            // others become NOPs (Linux's ip_options_fragment).
            for (uint32_t i = 20; i < ihl;) {
                const uint8_t type = h[i];
                if (type == 0) {
                    break;  // end of the option list
                }
                if (type == 1) {
                    ++i;
                    continue;
                }
                const uint32_t olen = i + 1 < ihl ? h[i + 1] : 0;
                if (olen < 2 || i + olen > ihl) {
                    std::memset(h + i, 1, ihl - i);
                    break;
                }
                if ((type & 0x80) == 0) {
                    std::memset(h + i, 1, olen);
                }
                i += olen;
            }
        }
        wr16(h + 2, rte_cpu_to_be_16(uint16_t(ihl + len)));
        const uint16_t more = k + 1 < n ? 0x2000 : last_more;
        wr16(h + 6, rte_cpu_to_be_16(uint16_t(more | ((base + off) / 8))));
        wr16(h + 10, 0);
        wr16(h + 10, csum_full(h, uint16_t(ihl)));
        std::memcpy(h + ihl, o + ihl + off, len);
    }
    for (uint32_t k = 0; k < n; ++k) {
        stage(port, frags[k]);
    }
    sent.add(n);
    counters.consumed.add(1);  // the original: its bytes left in the fragments
    rte_pktmbuf_free(m);
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

const Route* Worker::nat_route(const Snapshot& snap, rte_mbuf* m, rte_be32_t dst,
                               rte_be32_t icmp_from, bool may_answer) noexcept {
    const Route* r = snap.route(dst);
    const Interface* ifc = r != nullptr ? snap.interface_of(r->port) : nullptr;
    if (ifc == nullptr) {
        drop(m, Drop::NoRoute);
        return nullptr;
    }
    const uint8_t* ip = frame_of(m) + kEth;
    const uint16_t len = rte_be_to_cpu_16(rd16(ip + 2));
    if (len <= ifc->mtu || (ip[6] & 0x40) == 0) {
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
    const uint16_t len = rte_be_to_cpu_16(rd16(frame_of(m) + kEth + 2));
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
    if (real.forward == Forward::Nat && rte_pktmbuf_mtod(m, const uint8_t*)[kEth + 8] <= 1) {
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

[[gnu::always_inline]] inline void Worker::handle_inbound(const Snapshot& snap, rte_mbuf* m, const Item& it,
                            uint32_t now) noexcept {
    const Parsed& p = it.p;
    const bool tcp = p.proto == IPPROTO_TCP;
    const Service* svcp = nullptr;  // looked up only when needed
    uint32_t idx = find_live(it.key, it.hash, Dir::In, now, it.cand);
    const bool pure_syn = tcp && (p.tcp_flags & (kSyn | kAck | kRst | kFin)) == kSyn;
    if (idx != ConnTable::kNone && pure_syn) {
        const Conn& old = conns.at(idx);
        const auto s = TcpState(old.state);
        // tun/dr see only the client: after its FIN the connection sits in FIN_WAIT.
        const bool input_only_done = Forward(old.forward) != Forward::Nat &&
                                     s == TcpState::FinWait && reuse_after_fin(snap, old, now);
        if (s == TcpState::TimeWait || s == TcpState::Close || input_only_done) {
            // The client reuses the tuple of a finished connection: schedule it afresh (IPVS's
            // conn_reuse_mode, with its bit 2 for connections it sees one way only).
            remove_conn(idx);
            idx = ConnTable::kNone;
        }
    }
    if (idx != ConnTable::kNone && it.pre == Pre::Picked) {
        gauge(it.fresh, false);  // an earlier packet of this burst made the connection
    }
    uint8_t* f = frame_of(m);
    uint8_t* ip = f + kEth;
    // NAT forwards (TTL - 1); tun and dr deliver to a host that holds the VIP, like IPVS's
    // local-in hook, and leave the TTL alone.
    if (idx != ConnTable::kNone && Forward(conns.at(idx).forward) == Forward::Nat && ip[8] <= 1) {
        drop(m, Drop::TtlExceeded);
        return;
    }
    if (idx == ConnTable::kNone &&
        (it.pre == Pre::Martian ||
         (it.pre == Pre::None && !snap.source_ok(p.src, *snap.interface_of(m->port))))) {
        drop(m, Drop::Martian);
        return;
    }
    if (idx == ConnTable::kNone && it.pre == Pre::TtlExceeded) {
        drop(m, Drop::TtlExceeded);
        return;
    }
    if (idx == ConnTable::kNone) {
        Conn c;
        uint64_t h_out;
        uint32_t tmpl = ConnTable::kNone;
        if (it.pre == Pre::Picked) {
            svcp = it.svc;
            c = it.fresh;
            h_out = it.h_out;
        } else {
            svcp = snap.find_service(p.dst, p.dport, p.proto);
            if (svcp == nullptr) {
                drop(m, Drop::NoService);
                return;
            }
            if (tcp && !pure_syn && (!snap.sloppy_tcp || (p.tcp_flags & kRst) != 0)) {
                if (snap.reset_unknown && (p.tcp_flags & (kRst | kSyn)) == 0) {
                    send_reset(snap, m, p, p.dst, p.dport, p.src, p.sport);
                    return;
                }
                drop(m, Drop::NoConnection);
                return;
            }
            const Service& svc = *svcp;
            const int32_t pick =
                svc.persistence != 0
                    ? persist_pick(svc, p, now, &tmpl)
                    : sched_pick(svc, SchedCtx{p.src, p.sport, p.dst, real_stats.get(), overload});
            if (pick < 0) {
                drop(m, pick == kNoReal ? Drop::NoReal : Drop::TableFull);
                return;
            }
            const Real& real = svc.reals[size_t(pick)];
            if (real.forward == Forward::Nat && ip[8] <= 1) {
                drop(m, Drop::TtlExceeded);
                return;
            }
            c = new_conn(p, svc, real, tmpl, now, snap.timeouts);
            h_out = ConnTable::hash(out_key(c));
            gauge(c, true);
        }
        const FlowKey ok = out_key(c);
        if (Forward(c.forward) == Forward::Nat) {
            // A NAT connection with the same reply tuple (the client reused its port for
            // another service of this real) is one the real has finished with: it just
            // accepted this SYN over it. The new connection takes the replies, as in IPVS,
            // which finds the newest connection first.
            Dir d{};
            const uint32_t old = conns.lookup(ok, h_out, d);
            if (old != ConnTable::kNone && d == Dir::Out &&
                Forward(conns.at(old).forward) == Forward::Nat) {
                remove_conn(old);
                counters.conns_expired.add(1);
            }
        }
        idx = conns.insert(c, it.hash, h_out);
        if (idx == ConnTable::kNone && conns.size() == conns.capacity() && make_room(now)) {
            idx = conns.insert(c, it.hash, h_out);
        }
        if (burst_inserts_ <= kBurstKeys - 2) {
            note_burst_key(it.hash);
            note_burst_key(h_out);
        } else {
            burst_inserts_ = kBurstKeysUnknown;
        }
        if (idx == ConnTable::kNone) {
            gauge(c, false);
            drop(m, Drop::TableFull);
            return;
        }
        if (tmpl != ConnTable::kNone) {
            ++conns.at(tmpl).tmpl;
        }
        svc_stats[c.svc_slot].conns.add(1);
        real_stats[c.real_slot].conns.add(1);
        counters.conns_created.add(1);
    }
    Conn& c = conns.at(idx);
    const auto fwd = Forward(c.forward);
    track(snap, c, p, Dir::In, now, m);
    svc_stats[c.svc_slot].in_pkts.add(1);
    svc_stats[c.svc_slot].in_bytes.add(p.ip_len);
    real_stats[c.real_slot].in_pkts.add(1);
    real_stats[c.real_slot].in_bytes.add(p.ip_len);

    if (fwd == Forward::Tunnel) {
        if (svcp == nullptr) {
            svcp = snap.service_of(c.svc_slot, c.vip, c.vport, c.proto);  // nullptr: deleted
        }
        const rte_be32_t tsrc = svcp != nullptr ? svcp->tunnel_src : 0;
        if (p.frag_first) {
            note_fragment(p, FragAction::Tunnel, c.real_ip, tsrc, c);
        }
        xmit_tunnel(snap, m, c.real_ip, tsrc, true);
        return;
    }
    if (fwd == Forward::Route) {
        if (p.frag_first) {
            note_fragment(p, FragAction::Route, c.real_ip, 0, c);
        }
        xmit_dr(snap, m, c.real_ip);
        return;
    }
    if (p.frag_first) {
        note_fragment(p, FragAction::NatIn, c.real_ip, 0, c);
    }
    const Egress* e = egress_hit(c.real_ip, kEgressRouted);
    const Route* r = nullptr;
    if (e == nullptr || p.ip_len > e->mtu) {
        e = nullptr;
        // Over the egress MTU with DF: fragmentation-needed from the VIP, as IPVS answers.
        r = nat_route(snap, m, c.real_ip, 0, true);
        if (r == nullptr) {
            return;
        }
    }
    decrement_ttl(ip);
    uint8_t* l4 = f + p.l4_off;
    const bool udp = p.proto == IPPROTO_UDP;
    uint8_t* l4c = l4 + l4_csum_off(p.proto);
    rewrite_addr(ip + 16, ip + 10, l4c, udp, c.real_ip);
    rewrite_port(l4 + 2, l4c, udp, c.real_port);
    if (e != nullptr) {
        put_l2(m, *e);
        return;
    }
    xmit_nat(snap, m, *r, c.real_ip, kEgressRouted);
}

void Worker::outbound_unknown(const Snapshot& snap, rte_mbuf* m, const Parsed& p,
                              uint32_t now) noexcept {
    // A NAT real still talking to a client the director has forgotten (a restart).
    const Service* svc =
        p.proto == IPPROTO_TCP && snap.reset_unknown && (p.tcp_flags & (kRst | kSyn)) == 0
            ? snap.nat_service_of_real(p.src, p.sport, p.proto)
            : nullptr;
    if (svc != nullptr) {
        // Not while the client's tuple is a live connection (to another real): that one is not
        // the director's to end.
        const FlowKey in{p.dst, svc->vip, p.dport, svc->port, p.proto};
        if (find_live(in, ConnTable::hash(in), Dir::In, now) == ConnTable::kNone) {
            // The real hears RFC 793's answer from the client's address (<SEQ=SEG.ACK>: exactly
            // what it waits for, so it lets go), the client an ACK from the VIP that it cannot
            // accept. A client that still has the connection answers that, and its answer, a
            // segment of no connection, gets reset_unknown's RST, exact too. (A RST from here
            // with the real's sequence number misses the client's window whenever the real
            // retransmits what the client already has.)
            const auto* th = reinterpret_cast<const rte_tcp_hdr*>(frame_of(m) + p.l4_off);
            const uint32_t seq = rte_be_to_cpu_32(th->sent_seq);
            const uint32_t ack = rte_be_to_cpu_32(th->recv_ack);
            rte_mempool* pool = m->pool;
            if (send_reset(snap, m, p, p.dst, p.dport, p.src, p.sport)) {
                send_segment(snap, pool, svc->vip, svc->port, p.dst, p.dport, seq + kProbeFar,
                             ack, kAck);
                counters.tcp_probes.add(1);
            }
            return;
        }
    }
    drop(m, Drop::NoConnection);
}

[[gnu::always_inline]] inline void Worker::handle_outbound(const Snapshot& snap, rte_mbuf* m, const Item& it,
                             uint32_t now) noexcept {
    const Parsed& p = it.p;
    const uint32_t idx = find_live(it.key, it.hash, Dir::Out, now, it.cand);
    if (idx == ConnTable::kNone) {
        outbound_unknown(snap, m, p, now);
        return;
    }
    Conn& c = conns.at(idx);
    if (Forward(c.forward) != Forward::Nat) {
        // tun and dr reals answer clients directly, from the VIP; the director does not
        // translate a real's own address for them.
        drop(m, Drop::NoConnection);
        return;
    }
    uint8_t* f = frame_of(m);
    uint8_t* ip = f + kEth;
    if (ip[8] <= 1) {
        drop(m, Drop::TtlExceeded);
        return;
    }
    track(snap, c, p, Dir::Out, now, m);
    svc_stats[c.svc_slot].out_pkts.add(1);
    svc_stats[c.svc_slot].out_bytes.add(p.ip_len);
    real_stats[c.real_slot].out_pkts.add(1);
    real_stats[c.real_slot].out_bytes.add(p.ip_len);

    uint8_t* l4 = f + p.l4_off;
    const bool udp = p.proto == IPPROTO_UDP;
    uint8_t* l4c = l4 + l4_csum_off(p.proto);
    if (p.frag_first) {
        note_fragment(p, FragAction::NatOut, c.vip, 0, c);
    }
    // The route to the client is looked up; how its next hop is reached is remembered.
    const Route* r = snap.route(c.client_ip);
    const Egress* e = nullptr;
    if (r != nullptr) {
        e = egress_hit(r->gateway != 0 ? r->gateway : c.client_ip, kEgressNextHop);
        if (e != nullptr && (e->port != r->port || p.ip_len > e->mtu)) {
            e = nullptr;
        }
    }
    if (e == nullptr) {
        // Over the egress MTU with DF: fragmentation-needed to the real, from the address it
        // sent to (the kernel's ip_forward does so before IPVS sees a reply).
        r = nat_route(snap, m, c.client_ip, snap.interface_of(m->port)->addr, true);
        if (r == nullptr) {
            return;
        }
    }
    decrement_ttl(ip);
    rewrite_addr(ip + 12, ip + 10, l4c, udp, c.vip);
    rewrite_port(l4, l4c, udp, c.vport);
    if (e != nullptr) {
        put_l2(m, *e);
        return;
    }
    xmit_nat(snap, m, *r, c.client_ip, kEgressNextHop);
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
    uint8_t* ip = frame_of(m) + kEth;
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
        if (ip[8] <= 1) {
            drop(m, Drop::TtlExceeded);
            return;
        }
        const rte_be32_t dst = out ? p.dst : n.addr;
        const Route* r = nat_route(snap, m, dst, out ? snap.interface_of(m->port)->addr : 0, true);
        if (r == nullptr) {
            return;
        }
        decrement_ttl(ip);
        rewrite_addr(ip + (out ? 12 : 16), ip + 10, nullptr, false, n.addr);
        xmit_nat(snap, m, *r, dst);
        return;
    }
    case FragAction::Tunnel: xmit_tunnel(snap, m, n.addr, n.tunnel_src, false); return;
    case FragAction::Route: xmit_dr(snap, m, n.addr); return;
    }
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
    uint8_t* ip = f + kEth;
    if (!decrement_ttl(ip)) {
        drop(m, Drop::TtlExceeded);
        return;
    }
    const Quoted& q = it.q;
    uint8_t* qip = f + q.ip_off;
    uint8_t* ql4 = qip + q.ihl;
    const bool udp = q.proto == IPPROTO_UDP;
    // The quoted transport checksum is fixed only when the quote holds it (a nonzero UDP one).
    const uint16_t coff = l4_csum_off(q.proto);
    uint8_t* qc = q.l4_avail >= coff + 2 ? ql4 + coff : nullptr;
    // Outer address fixes need no transport checksum: the ICMP checksum is recomputed below.
    if (to_vip) {
        // Router outside -> VIP about our reply VIP:vport -> client: becomes -> real about
        // real:rport -> client.
        rewrite_addr(ip + 16, ip + 10, nullptr, false, c.real_ip);
        rewrite_addr(qip + 12, qip + 10, qc, udp, c.real_ip);
        rewrite_port(ql4, qc, udp, c.real_port);
    } else {
        // From inside -> client about client -> real:rport: becomes VIP -> client about
        // client -> VIP:vport (IPVS also puts the VIP in the outer source).
        rewrite_addr(ip + 12, ip + 10, nullptr, false, c.vip);
        rewrite_addr(qip + 16, qip + 10, qc, udp, c.vip);
        rewrite_port(ql4 + 2, qc, udp, c.vport);
    }
    uint8_t* icmp = f + it.p.l4_off;
    wr16(icmp + 2, 0);
    wr16(icmp + 2, csum_full(icmp, it.p.l4_len));
    counters.icmp_errors_translated.add(1);
    // No ICMP error answers an ICMP error: over the egress MTU with DF, it is dropped.
    const rte_be32_t dst = to_vip ? c.real_ip : c.client_ip;
    if (const Route* r = nat_route(snap, m, dst, 0, false)) {
        xmit_nat(snap, m, *r, dst);
    }
}

}  // namespace lb::dp
