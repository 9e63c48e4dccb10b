#pragma once
// A connection's packets: a client's to the VIP (new connections opened here when the
// pipeline did not schedule them) and a NAT real's replies, rewritten and sent by method.
// Included by pipeline.cpp alone, as DPDK's l3fwd keeps its per-packet stages in headers: the
// two handlers inline into process_burst's dispatch (out of line, each packet paid 15 to 20
// instructions more for the call and the registers it saves).
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

// The live connection of a client's packet; a pure SYN on a finished one (or on a tun/dr one
// past its FIN, as IPVS's conn_reuse_mode allows) ends it, so that the SYN is scheduled afresh.
[[gnu::always_inline]] inline uint32_t Worker::live_inbound(const Snapshot& snap, const Item& it,
                                                            uint32_t now) noexcept {
    const Parsed& p = it.p;
    const uint32_t idx = find_live(it.key, it.hash, Dir::In, now, it.cand);
    if (idx == ConnTable::kNone || p.proto != IPPROTO_TCP ||
        (p.tcp_flags & (kSyn | kAck | kRst | kFin)) != kSyn) {
        return idx;
    }
    const Conn& old = conns.at(idx);
    const auto s = TcpState(old.state);
    // tun/dr see only the client: after its FIN the connection sits in FIN_WAIT.
    const bool input_only_done = Forward(old.forward) != Forward::Nat &&
                                 s == TcpState::FinWait && reuse_after_fin(snap, old, now);
    if (s == TcpState::TimeWait || s == TcpState::Close || input_only_done) {
        remove_conn(idx);
        return ConnTable::kNone;
    }
    return idx;
}

// A packet that no connection knows and the pipeline did not schedule: its service's pick, as
// the entry of a new connection (its gauges counted), or false when m was consumed (no service,
// a TCP segment that opens nothing, no real, TTL out for NAT).
[[gnu::always_inline]] inline bool Worker::schedule_inbound(const Snapshot& snap, rte_mbuf* m,
                                                            const Item& it, uint32_t now,
                                                            NewConn& out) noexcept {
    const Parsed& p = it.p;
    out.svc = snap.find_service(p.dst, p.dport, p.proto);
    if (out.svc == nullptr) {
        drop(m, Drop::NoService);
        return false;
    }
    const bool pure_syn = (p.tcp_flags & (kSyn | kAck | kRst | kFin)) == kSyn;
    if (p.proto == IPPROTO_TCP && !pure_syn &&
        (!snap.sloppy_tcp || (p.tcp_flags & kRst) != 0)) {
        if (snap.reset_unknown && (p.tcp_flags & (kRst | kSyn)) == 0) {
            send_reset(snap, m, p, p.dst, p.dport, p.src, p.sport);
            return false;
        }
        drop(m, Drop::NoConnection);
        return false;
    }
    const Service& svc = *out.svc;
    const Pick pick = svc.persistence != 0
                          ? persist_pick(svc, p, now)
                          : Pick{sched_pick(svc, SchedCtx{p.src, p.sport, p.dst,
                                                          real_stats.get(), overload})};
    if (pick.real < 0) {
        drop(m, pick.why);
        return false;
    }
    const Real& real = svc.reals[size_t(pick.real)];
    if (real.forward == Forward::Nat && ttl_of(m) <= 1) {
        drop(m, Drop::TtlExceeded);
        return false;
    }
    out.tmpl = pick.tmpl;
    out.c = new_conn(p, svc, real, pick.tmpl, now, snap.timeouts);
    out.h_out = ConnTable::hash(out_key(out.c));
    gauge(out.c, true);
    return true;
}

// Enters n into the table (evicting if it is full); the entry's index, or kNone when m was
// dropped (table full).
[[gnu::always_inline]] inline uint32_t Worker::insert_inbound(rte_mbuf* m, const Item& it,
                                                              const NewConn& n,
                                                              uint32_t now) noexcept {
    const Conn& c = n.c;
    if (Forward(c.forward) == Forward::Nat) {
        // A NAT connection with the same reply tuple (the client reused its port for another
        // service of this real) is one the real has finished with: it just accepted this SYN
        // over it. The new connection takes the replies, as in IPVS, which finds the newest
        // connection first.
        Dir d{};
        const uint32_t old = conns.lookup(out_key(c), n.h_out, d);
        if (old != ConnTable::kNone && d == Dir::Out &&
            Forward(conns.at(old).forward) == Forward::Nat) {
            remove_conn(old);
            counters.conns_expired.add(1);
        }
    }
    uint32_t idx = conns.insert(c, it.hash, n.h_out);
    if (idx == ConnTable::kNone && conns.size() == conns.capacity() && make_room(now)) {
        idx = conns.insert(c, it.hash, n.h_out);
    }
    if (burst_inserts_ <= kBurstKeys - 2) {
        note_burst_key(it.hash);
        note_burst_key(n.h_out);
    } else {
        burst_inserts_ = kBurstKeysUnknown;
    }
    if (idx == ConnTable::kNone) {
        gauge(c, false);
        drop(m, Drop::TableFull);
        return ConnTable::kNone;
    }
    if (n.tmpl != ConnTable::kNone) {
        ++conns.at(n.tmpl).tmpl;
    }
    svc_stats[c.svc_slot].conns.add(1);
    real_stats[c.real_slot].conns.add(1);
    counters.conns_created.add(1);
    return idx;
}

// A client's packet to connection c, by c's method. svc: c's service when known (tunnel source).
[[gnu::always_inline]] inline void Worker::forward_inbound(const Snapshot& snap, rte_mbuf* m,
                                                           const Parsed& p, const Conn& c,
                                                           const Service* svc) noexcept {
    const auto fwd = Forward(c.forward);
    if (fwd == Forward::Tunnel) {
        if (svc == nullptr) {
            svc = snap.service_of(c.svc_slot, c.vip, c.vport, c.proto);  // nullptr: deleted
        }
        const rte_be32_t tsrc = svc != nullptr ? svc->tunnel_src : 0;
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
    uint8_t* f = frame_of(m);
    auto* ip = header_at<rte_ipv4_hdr>(f + kEth);
    decrement_ttl(ip);
    // TCP's ports and UDP's sit alike; l4_csum_off says where the checksum is.
    auto* l4 = header_at<rte_udp_hdr>(f + p.l4_off);
    const bool udp = p.proto == IPPROTO_UDP;
    uint8_t* l4c = reinterpret_cast<uint8_t*>(l4) + l4_csum_off(p.proto);
    rewrite_addr(LB_FIELD(ip, dst_addr), LB_FIELD(ip, hdr_checksum), l4c, udp, c.real_ip);
    rewrite_port(LB_FIELD(l4, dst_port), l4c, udp, c.real_port);
    if (e != nullptr) {
        put_l2(m, *e);
        return;
    }
    xmit_nat(snap, m, *r, c.real_ip, kEgressRouted);
}

[[gnu::always_inline]] inline void Worker::handle_inbound(const Snapshot& snap, rte_mbuf* m,
                                                          const Item& it, uint32_t now) noexcept {
    const Parsed& p = it.p;
    const Service* svc = nullptr;  // looked up only when needed
    uint32_t idx = live_inbound(snap, it, now);
    if (idx != ConnTable::kNone) {
        if (it.pre == Pre::Picked) {
            gauge(it.fresh, false);  // an earlier packet of this burst made the connection
        }
        // NAT forwards (TTL - 1); tun and dr deliver to a host that holds the VIP, like IPVS's
        // local-in hook, and leave the TTL alone.
        if (Forward(conns.at(idx).forward) == Forward::Nat && ttl_of(m) <= 1) {
            drop(m, Drop::TtlExceeded);
            return;
        }
    } else {
        if (it.pre == Pre::Martian ||
            (it.pre == Pre::None && !snap.source_ok(p.src, *snap.interface_of(m->port)))) {
            drop(m, Drop::Martian);
            return;
        }
        if (it.pre == Pre::TtlExceeded) {
            drop(m, Drop::TtlExceeded);
            return;
        }
        NewConn n;
        if (it.pre == Pre::Picked) {
            n = {it.fresh, it.h_out, ConnTable::kNone, it.svc};
        } else if (!schedule_inbound(snap, m, it, now, n)) {
            return;
        }
        svc = n.svc;
        idx = insert_inbound(m, it, n, now);
        if (idx == ConnTable::kNone) {
            return;
        }
    }
    Conn& c = conns.at(idx);
    track(snap, c, p, Dir::In, now, m);
    svc_stats[c.svc_slot].in_pkts.add(1);
    svc_stats[c.svc_slot].in_bytes.add(p.ip_len);
    real_stats[c.real_slot].in_pkts.add(1);
    real_stats[c.real_slot].in_bytes.add(p.ip_len);
    forward_inbound(snap, m, p, c, svc);
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
    if (ttl_of(m) <= 1) {
        drop(m, Drop::TtlExceeded);
        return;
    }
    track(snap, c, p, Dir::Out, now, m);
    svc_stats[c.svc_slot].out_pkts.add(1);
    svc_stats[c.svc_slot].out_bytes.add(p.ip_len);
    real_stats[c.real_slot].out_pkts.add(1);
    real_stats[c.real_slot].out_bytes.add(p.ip_len);

    uint8_t* f = frame_of(m);
    auto* ip = header_at<rte_ipv4_hdr>(f + kEth);
    auto* l4 = header_at<rte_udp_hdr>(f + p.l4_off);  // TCP's ports sit alike
    const bool udp = p.proto == IPPROTO_UDP;
    uint8_t* l4c = reinterpret_cast<uint8_t*>(l4) + l4_csum_off(p.proto);
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
    rewrite_addr(LB_FIELD(ip, src_addr), LB_FIELD(ip, hdr_checksum), l4c, udp, c.vip);
    rewrite_port(LB_FIELD(l4, src_port), l4c, udp, c.vport);
    if (e != nullptr) {
        put_l2(m, *e);
        return;
    }
    xmit_nat(snap, m, *r, c.client_ip, kEgressNextHop);
}

}  // namespace lb::dp
