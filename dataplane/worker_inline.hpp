#pragma once
// The worker's per-packet helpers that must inline into more than one file of the packet path
// (out of line, each cost the new-connection path 15 to 30 instructions a packet): a
// connection's timeout, its TCP tracking, and the Ethernet rewrite from the egress cache.
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "dataplane/worker.hpp"

namespace lb::dp {

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

[[gnu::always_inline]] inline void Worker::put_l2(rte_mbuf* m, const Egress& e) noexcept {
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->dst_addr = e.dst_mac;
    eth->src_addr = e.src_mac;
    stage(e.port, m);
}

}  // namespace lb::dp
