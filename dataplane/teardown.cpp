// TCP teardown that an off-path host cannot forge (RFC 5961's idea, without keeping sequence
// numbers in the 32-byte connection entry).
//
// A RST or a FIN with a wrong sequence number is dropped by its receiver: the connection lives
// on there. IPVS, and lb before this, moved the connection to CLOSE (10 s) or CLOSE_WAIT (60 s)
// on any RST or FIN of its tuple, lost it when it idled, and scheduled a SYN that followed to
// another real. Here such a segment is forwarded as before, but the connection moves only to a
// pending state, and the traffic that follows tells whether the receiver took it:
//
// - A RST (from the client, any method; from a NAT real) -> RstClient / RstReal, and a probe:
//   an ACK from the VIP to the client with a sequence number half the sequence space away from
//   its window. A client that still has the connection answers with an ACK (RFC 793's answer
//   to an unacceptable segment): refuted, ESTABLISHED again. A client that has not (it sent the
//   RST, or took the real's) answers with a RST whose sequence number is the probe's
//   acknowledgment number, a keyed hash of the tuple (probe_token): confirmed, CLOSE. Any other
//   segment of the connection but a RST or a SYN refutes too: whoever sends it still has the
//   connection. Unanswered, the pending state ends as CLOSE would (tcp_close). With no probe
//   token left (the rate limit of reset_unknown), a RST changes nothing.
// - A NAT client's FIN -> FinClient (ESTABLISHED's timeout), noted with the sequence number
//   right after it: the real's ACK of exactly that number confirms it (CLOSE_WAIT, as before);
//   data from the client, or no such ACK within kFinConfirmMs, refutes it.
// - tun and dr see the client only: its FIN moves the connection to FIN_WAIT as before, noted;
//   a segment from the client afterwards with data, or with another sequence number than the
//   one right after the FIN (a download's ACKs), refutes it. A SYN within a second of the FIN
//   is counted as a new connection but stays with its real; later, IPVS's rescheduling.
// A SYN in a pending state stays with the connection's real (the RST-then-SYN re-scheduling of a
// live download is what this prevents). connections.sloppy_tcp turns all of this off.
#include <rte_hash_crc.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>

#include "dataplane/worker.hpp"

namespace lb::dp {

namespace {

constexpr uint32_t kFinConfirmMs = 1000;  // the real's ACK of a client's FIN comes by then
constexpr uint32_t kFinSettleMs = 1000;   // tun/dr: a SYN this long after a FIN is a new client

bool live(TcpState s) noexcept {
    return s == TcpState::Established || s == TcpState::FinWait || s == TcpState::CloseWait ||
           s == TcpState::LastAck;
}

bool pending(TcpState s) noexcept {
    return s == TcpState::RstClient || s == TcpState::RstReal || s == TcpState::FinClient;
}

}  // namespace

uint32_t Worker::probe_token(const Conn& c) const noexcept {
    uint32_t h = rte_hash_crc_4byte(c.client_ip, probe_secret_);
    h = rte_hash_crc_4byte(c.vip, h);
    return rte_hash_crc_4byte(uint32_t(c.client_port) << 16 | c.vport, h);
}

void Worker::track_tcp(const Snapshot& snap, Conn& c, const Parsed& p, Dir dir, uint32_t now,
                       const rte_mbuf* m) noexcept {
    auto s = TcpState(c.state);
    // tun and dr see the client's packets only.
    const bool both = dir == Dir::Out || Forward(c.forward) == Forward::Nat;
    const uint8_t fl = p.tcp_flags;
    TcpState next;
    if (snap.sloppy_tcp) {
        if (pending(s)) {
            s = TcpState::Established;  // set before sloppy_tcp was turned on
        }
        next = tcp_next_state_seen(s, dir, fl, both);
    } else {
        const auto* th = reinterpret_cast<const rte_tcp_hdr*>(
            rte_pktmbuf_mtod(m, const uint8_t*) + p.l4_off);
        const uint32_t seq = rte_be_to_cpu_32(th->sent_seq);
        const uint32_t ack = rte_be_to_cpu_32(th->recv_ack);
        const uint32_t len = p.l4_len - uint32_t(th->data_off >> 4) * 4u;
        if (dir == Dir::In && (fl & kRst) != 0 && (pending(s) || live(s)) &&
            seq == probe_token(c)) {
            next = TcpState::Close;  // the client's answer to a probe: it has no connection
        } else if (s == TcpState::RstClient || s == TcpState::RstReal ||
                   (s == TcpState::FinClient && (fl & kRst) == 0)) {
            next = teardown_answer(c, s, dir, fl, ack, len, now);
        } else if ((fl & kRst) != 0 && (live(s) || s == TcpState::FinClient)) {
            next = teardown_claim(c, s, dir, fl, seq, ack, len, now, m->pool);
        } else if (both && dir == Dir::In && s == TcpState::Established &&
                   (fl & (kFin | kSyn)) == kFin) {
            next = teardown_claim(c, s, dir, fl, seq, ack, len, now, m->pool);
        } else if (!both && s == TcpState::Established && (fl & (kFin | kSyn)) == kFin) {
            note_fin(c, seq, len, now);  // tun/dr: the client's FIN, for what follows it
            next = TcpState::FinWait;
        } else if (!both && s == TcpState::FinWait && (fl & (kFin | kSyn)) == 0 &&
                   fin_refuted(c, seq, len)) {
            next = TcpState::Established;  // the client talks on as if it never sent that FIN
            counters.tcp_refuted.add(1);
        } else {
            next = tcp_next_state_seen(s, dir, fl, both);
        }
    }
    if (next != TcpState(c.state)) {
        set_state(c, next);
    }
}

uint32_t Worker::idx_of(const Conn& c) const noexcept { return uint32_t(&c - &conns.at(0)); }

void Worker::note_fin(const Conn& c, uint32_t seq, uint32_t len, uint32_t now) noexcept {
    fin_notes_[idx_of(c) & (kFinNotes - 1)] = {idx_of(c), seq + len + 1, now};
}

bool Worker::fin_refuted(const Conn& c, uint32_t seq, uint32_t len) const noexcept {
    // After its FIN a client sends no data, and its segments carry the sequence number right
    // after the FIN. (A note that gave way to a newer one: data still tells.)
    const FinNote& n = fin_notes_[idx_of(c) & (kFinNotes - 1)];
    return len != 0 || (n.idx == idx_of(c) && seq != n.end);
}

bool Worker::reuse_after_fin(const Snapshot& snap, const Conn& c, uint32_t now) noexcept {
    const FinNote& n = fin_notes_[idx_of(c) & (kFinNotes - 1)];
    if (snap.sloppy_tcp || n.idx != idx_of(c) || now - n.at >= kFinSettleMs) {
        return true;
    }
    svc_stats[c.svc_slot].conns.add(1);  // a new connection of the client's, on the same real
    real_stats[c.real_slot].conns.add(1);
    counters.conns_created.add(1);
    return false;
}

TcpState Worker::teardown_claim(Conn& c, TcpState s, Dir dir, uint8_t flags, uint32_t seq,
                                uint32_t ack, uint32_t len, uint32_t now,
                                rte_mempool* pool) noexcept {
    const uint32_t idx = idx_of(c);
    if ((flags & kRst) == 0) {
        note_fin(c, seq, len, now);  // a NAT client's FIN: the real's ACK will confirm it
        return TcpState::FinClient;
    }
    if (n_probes_ == probes_.size() || !take_reset_token()) {
        return s;  // cannot be confirmed: not taken
    }
    // Where the client's receive window is: its own ACK, or the real's sequence number.
    probes_[n_probes_++] = {idx, dir == Dir::In ? ack : seq + len, pool};
    return dir == Dir::In ? TcpState::RstClient : TcpState::RstReal;
}

TcpState Worker::teardown_answer(Conn& c, TcpState s, Dir dir, uint8_t flags, uint32_t ack,
                                 uint32_t len, uint32_t now) noexcept {
    if (s != TcpState::FinClient) {
        if ((flags & kSyn) != 0) {
            return s;  // stays with its real, and proves nothing
        }
        if ((flags & kRst) != 0) {
            // The real resets too after the client's RST: both ends are done. A repeated claim
            // proves nothing.
            return s == TcpState::RstClient && dir == Dir::Out ? TcpState::Close : s;
        }
        counters.tcp_refuted.add(1);  // whoever sends this still has the connection
        return TcpState::Established;
    }
    const uint32_t idx = idx_of(c);
    const FinNote& n = fin_notes_[idx & (kFinNotes - 1)];
    if (dir == Dir::In) {
        if (len != 0 && (flags & (kFin | kSyn)) == 0) {
            counters.tcp_refuted.add(1);  // data from a client that sent its FIN: it did not
            return TcpState::Established;
        }
        return s;  // its ACKs, the FIN again
    }
    if (n.idx != idx || ((flags & kAck) != 0 && ack == n.end)) {
        // The real took the FIN (or its note gave way to a newer one: taken, as before).
        return tcp_next_state(TcpState::CloseWait, Dir::Out, flags);
    }
    if (now - n.at >= kFinConfirmMs) {
        counters.tcp_refuted.add(1);  // the real still has not acknowledged it
        return TcpState::Established;
    }
    return s;
}

void Worker::send_probes(const Snapshot& snap) noexcept {
    for (uint16_t k = 0; k < n_probes_; ++k) {
        const Probe& pr = probes_[k];
        const Conn& c = conns.at(pr.idx);
        const auto s = TcpState(c.state);
        if (!c.in_use || (s != TcpState::RstClient && s != TcpState::RstReal)) {
            continue;  // settled within the burst
        }
        send_segment(snap, pr.pool, c.vip, c.vport, c.client_ip, c.client_port,
                     pr.seq + kProbeFar, probe_token(c), kAck);
        counters.tcp_probes.add(1);
    }
    n_probes_ = 0;
}

}  // namespace lb::dp
