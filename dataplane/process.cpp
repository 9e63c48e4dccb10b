// The packet logic of a worker: classify, connection lookup, schedule, NAT, ICMP, ARP.
#include <cstring>

#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_prefetch.h>

#include "dataplane/checksum.hpp"
#include "dataplane/sched.hpp"
#include "dataplane/worker.hpp"

namespace lb::dp {

namespace {

constexpr uint8_t kSyn = 0x02, kFin = 0x01, kRst = 0x04, kAck = 0x10;
constexpr uint16_t kEth = 14;

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
    const uint16_t from = rd16(ip + 8);
    ip[8] = uint8_t(ip[8] - 1);
    wr16(ip + 10, csum_replace2(rd16(ip + 10), from, rd16(ip + 8)));
    return true;
}

}  // namespace

uint16_t Worker::owner_of(rte_be32_t client_ip, rte_be16_t client_port,
                          uint16_t n_workers) noexcept {
    const uint32_t h = rte_hash_crc_4byte(client_port, rte_hash_crc_4byte(client_ip, 0x51ed27u));
    return uint16_t((uint64_t(h) * n_workers) >> 32);
}

void Worker::drop(rte_mbuf* m, Drop why) noexcept {
    counters.drops[size_t(why)].add(1);
    rte_pktmbuf_free(m);
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

uint32_t Worker::timeout_of(const Timeouts& t, const Conn& c) noexcept {
    if (c.proto != IPPROTO_TCP) {
        return t.udp;
    }
    switch (TcpState(c.state)) {
    case TcpState::Established: return t.tcp_established;
    case TcpState::FinWait: return t.tcp_fin_wait;
    case TcpState::CloseWait: return t.tcp_close_wait;
    case TcpState::LastAck: return t.tcp_last_ack;
    case TcpState::TimeWait: return t.tcp_time_wait;
    case TcpState::Close: return t.tcp_close;
    default: return t.tcp_syn_recv;
    }
}

void Worker::gauge(const Conn& c, bool add) noexcept {
    TrafficCounters& r = real_stats[c.real_slot];
    Counter& g = c.proto == IPPROTO_TCP && TcpState(c.state) == TcpState::Established
                     ? r.active
                     : r.inactive;
    if (add) {
        g.add(1);
    } else {
        g.sub(1);
    }
}

void Worker::remove_conn(uint32_t idx) noexcept {
    gauge(conns.at(idx), false);
    conns.remove(idx);
}

void Worker::expire(uint32_t now_ms, uint32_t budget) noexcept {
    const uint32_t n = conns.sweep(now_ms, budget, [this](const Conn& c) { gauge(c, false); });
    if (n != 0) {
        counters.conns_expired.add(n);
    }
}

uint32_t Worker::find_live(const FlowKey& k, uint32_t h, Dir want, uint32_t now) noexcept {
    Dir d{};
    const uint32_t idx = conns.lookup(k, h, d);
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
    const bool l4_ports = p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP;
    if (snap.is_vip(p.dst)) {
        if (l4_ports) {
            it.svc = snap.find_service(p.dst, p.dport, p.proto);
            if (it.svc == nullptr) {
                drop(m, Drop::NoService);
                return;
            }
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
    } else if (snap.is_local(p.dst)) {
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
    if (n_workers_ > 1) {
        // The client address and port appear in both directions: hash them to the owner.
        const bool client_is_src = it.kind == Kind::Inbound || it.kind == Kind::IcmpFromInside;
        const uint16_t owner = client_is_src ? owner_of(it.key.src, it.key.sport, n_workers_)
                                             : owner_of(it.key.dst, it.key.dport, n_workers_);
        if (owner != id_) {
            Staged& r = redirect[owner];
            r.pkts[r.n++] = m;
            counters.redirected_out.add(1);
            it.kind = Kind::Done;
            return;
        }
    }
    it.hash = ConnTable::hash(it.key);
}

void Worker::process_burst(const Snapshot& snap, rte_mbuf** pkts, uint16_t n,
                           uint32_t now) noexcept {
    Item items[kBurst];
    for (uint16_t i = 0; i < n; ++i) {
        if (i + 3 < n) {
            rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 3], void*));
        }
        classify(snap, pkts[i], items[i]);
        if (items[i].kind >= Kind::Inbound) {
            conns.prefetch(items[i].hash);
        }
    }
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
        }
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
    if (op == 1 && for_us) {
        if (sender_on_link) {
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
        Staged& t = tx[m->port];
        t.pkts[t.n++] = m;
        return;
    }
    if (op == 2 && target == ifc.addr && sender_on_link) {
        slow_msg(SlowMsg::Learn, m->port, sender, a + 8);
        counters.consumed.add(1);
        rte_pktmbuf_free(m);
        return;
    }
    drop(m, Drop::ArpIgnored);
}

void Worker::handle_echo(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept {
    uint8_t* f = frame_of(m);
    uint8_t* ip = f + kEth;
    uint8_t* icmp = f + it.p.l4_off;
    const Interface& ifc = *snap.interface_of(m->port);
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
    Staged& t = tx[m->port];
    t.pkts[t.n++] = m;
}

void Worker::send_ipv4(const Snapshot& snap, rte_mbuf* m, rte_be32_t dst) noexcept {
    const Route* r = snap.route(dst);
    if (r == nullptr) {
        drop(m, Drop::NoRoute);
        return;
    }
    const rte_be32_t next_hop = r->gateway != 0 ? r->gateway : dst;
    uint8_t* f = frame_of(m);
    rte_ether_addr mac;
    if (!neigh_.lookup(next_hop, mac)) {
        slow_msg(SlowMsg::Resolve, r->port, next_hop, nullptr);
        drop(m, Drop::NoNeighbour);
        return;
    }
    const Interface* ifc = snap.interface_of(r->port);
    if (ifc == nullptr) {
        drop(m, Drop::NoRoute);
        return;
    }
    std::memcpy(f, mac.addr_bytes, 6);
    std::memcpy(f + 6, ifc->mac.addr_bytes, 6);
    Staged& t = tx[r->port];
    t.pkts[t.n++] = m;
}

void Worker::handle_inbound(const Snapshot& snap, rte_mbuf* m, const Item& it,
                            uint32_t now) noexcept {
    const Parsed& p = it.p;
    const bool tcp = p.proto == IPPROTO_TCP;
    uint32_t idx = find_live(it.key, it.hash, Dir::In, now);
    const bool pure_syn = tcp && (p.tcp_flags & (kSyn | kAck | kRst | kFin)) == kSyn;
    if (idx != ConnTable::kNone && pure_syn) {
        const auto s = TcpState(conns.at(idx).state);
        if (s == TcpState::TimeWait || s == TcpState::Close) {
            // The client reuses the tuple of a finished connection: schedule it afresh (IPVS's
            // conn_reuse_mode).
            remove_conn(idx);
            idx = ConnTable::kNone;
        }
    }
    uint8_t* f = frame_of(m);
    uint8_t* ip = f + kEth;
    if (ip[8] <= 1) {
        drop(m, Drop::TtlExceeded);
        return;
    }
    if (idx == ConnTable::kNone) {
        if (tcp && !pure_syn) {
            drop(m, Drop::NoConnection);
            return;
        }
        const Service& svc = *it.svc;
        const int32_t pick = sched_pick(svc);
        if (pick == kNoReal) {
            drop(m, Drop::NoReal);
            return;
        }
        const Real& real = svc.reals[size_t(pick)];
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
        c.expire = now + timeout_of(snap.timeouts, c);
        idx = conns.insert(c);
        if (idx == ConnTable::kNone) {
            drop(m, Drop::TableFull);
            return;
        }
        gauge(conns.at(idx), true);
        svc_stats[c.svc_slot].conns.add(1);
        real_stats[c.real_slot].conns.add(1);
        counters.conns_created.add(1);
    }
    Conn& c = conns.at(idx);
    if (tcp) {
        const auto next = tcp_next_state(TcpState(c.state), Dir::In, p.tcp_flags);
        if (next != TcpState(c.state)) {
            gauge(c, false);
            c.state = uint8_t(next);
            gauge(c, true);
        }
    }
    c.expire = now + timeout_of(snap.timeouts, c);
    svc_stats[c.svc_slot].in_pkts.add(1);
    svc_stats[c.svc_slot].in_bytes.add(p.ip_len);
    real_stats[c.real_slot].in_pkts.add(1);
    real_stats[c.real_slot].in_bytes.add(p.ip_len);

    decrement_ttl(ip);
    uint8_t* l4 = f + p.l4_off;
    const bool udp = p.proto == IPPROTO_UDP;
    uint8_t* l4c = l4 + l4_csum_off(p.proto);
    rewrite_addr(ip + 16, ip + 10, l4c, udp, c.real_ip);
    rewrite_port(l4 + 2, l4c, udp, c.real_port);
    send_ipv4(snap, m, c.real_ip);
}

void Worker::handle_outbound(const Snapshot& snap, rte_mbuf* m, const Item& it,
                             uint32_t now) noexcept {
    const Parsed& p = it.p;
    const uint32_t idx = find_live(it.key, it.hash, Dir::Out, now);
    if (idx == ConnTable::kNone) {
        drop(m, Drop::NoConnection);
        return;
    }
    uint8_t* f = frame_of(m);
    uint8_t* ip = f + kEth;
    if (!decrement_ttl(ip)) {
        drop(m, Drop::TtlExceeded);
        return;
    }
    Conn& c = conns.at(idx);
    if (p.proto == IPPROTO_TCP) {
        const auto next = tcp_next_state(TcpState(c.state), Dir::Out, p.tcp_flags);
        if (next != TcpState(c.state)) {
            gauge(c, false);
            c.state = uint8_t(next);
            gauge(c, true);
        }
    }
    c.expire = now + timeout_of(snap.timeouts, c);
    svc_stats[c.svc_slot].out_pkts.add(1);
    svc_stats[c.svc_slot].out_bytes.add(p.ip_len);
    real_stats[c.real_slot].out_pkts.add(1);
    real_stats[c.real_slot].out_bytes.add(p.ip_len);

    uint8_t* l4 = f + p.l4_off;
    const bool udp = p.proto == IPPROTO_UDP;
    uint8_t* l4c = l4 + l4_csum_off(p.proto);
    rewrite_addr(ip + 12, ip + 10, l4c, udp, c.vip);
    rewrite_port(l4, l4c, udp, c.vport);
    send_ipv4(snap, m, c.client_ip);
}

void Worker::handle_icmp_error(const Snapshot& snap, rte_mbuf* m, const Item& it,
                               uint32_t now) noexcept {
    const bool to_vip = it.kind == Kind::IcmpToVip;
    const uint32_t idx = find_live(it.key, it.hash, to_vip ? Dir::In : Dir::Out, now);
    if (idx == ConnTable::kNone) {
        drop(m, Drop::IcmpUnmatched);
        return;
    }
    const Conn& c = conns.at(idx);
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
    send_ipv4(snap, m, to_vip ? c.real_ip : c.client_ip);
}

}  // namespace lb::dp
