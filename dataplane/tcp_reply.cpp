// TCP segments the director writes itself: RFC 793's RST for a segment of no connection
// (reset_unknown, rate-limited), and the probe that asks a client whether it still has one.
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
    header_at<rte_ether_hdr>(f)->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
    auto* ip = header_at<rte_ipv4_hdr>(f + kEth);
    auto* tcp = header_at<rte_tcp_hdr>(f + kEth + sizeof(rte_ipv4_hdr));
    ip->version_ihl = RTE_IPV4_VHL_DEF;
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

}  // namespace lb::dp
