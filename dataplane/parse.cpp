#include "dataplane/parse.hpp"

#include <cstring>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/checksum.hpp"
#include "dataplane/wire.hpp"

namespace lb::dp {

namespace {

// Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4.
[[gnu::cold, gnu::noinline]] bool parse_arp(const uint8_t* f, uint32_t len, Parsed& out) noexcept {
    if (len < sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)) {
        return false;
    }
    const auto* a = header_at<rte_arp_hdr>(f + sizeof(rte_ether_hdr));
    if (a->arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) ||
        a->arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) || a->arp_hlen != RTE_ETHER_ADDR_LEN ||
        a->arp_plen != sizeof(rte_be32_t)) {
        return false;
    }
    out.l3 = L3::Arp;
    out.src = a->arp_data.arp_sip;
    out.dst = a->arp_data.arp_tip;
    out.sport = a->arp_opcode;  // network order
    return true;
}

// The transport header of an IPv4 packet whose ports are present (not a later fragment).
[[gnu::always_inline]] inline bool parse_l4(const uint8_t* l4, Parsed& out) noexcept {
    switch (out.proto) {
    case IPPROTO_TCP: {
        if (out.l4_len < sizeof(rte_tcp_hdr)) {
            return false;
        }
        const auto* th = header_at<rte_tcp_hdr>(l4);
        const uint16_t doff = uint16_t((th->data_off >> 4) * 4);
        if (doff < sizeof(rte_tcp_hdr) || doff > out.l4_len) {
            return false;
        }
        out.sport = th->src_port;
        out.dport = th->dst_port;
        out.tcp_flags = th->tcp_flags;
        return true;
    }
    case IPPROTO_UDP: {
        if (out.l4_len < sizeof(rte_udp_hdr)) {
            return false;
        }
        const auto* uh = header_at<rte_udp_hdr>(l4);
        const uint16_t ulen = rte_be_to_cpu_16(uh->dgram_len);
        // A first fragment carries only part of the datagram its length describes.
        if (ulen < sizeof(rte_udp_hdr) || (ulen > out.l4_len && !out.frag_first)) {
            return false;
        }
        out.sport = uh->src_port;
        out.dport = uh->dst_port;
        return true;
    }
    case IPPROTO_ICMP: {
        if (out.l4_len < sizeof(rte_icmp_hdr)) {
            return false;
        }
        const auto* ih = header_at<rte_icmp_hdr>(l4);
        out.icmp_type = ih->icmp_type;
        out.sport = ih->icmp_ident;  // echo identifier
        return true;
    }
    default: return true;  // other protocols: the caller decides (nothing we serve)
    }
}

[[gnu::always_inline]] inline ParseResult parse_ipv4(const uint8_t* f, uint32_t len, Parsed& out, Drop& reason) noexcept {
    const uint32_t avail = len - sizeof(rte_ether_hdr);
    reason = Drop::Malformed;
    if (avail < sizeof(rte_ipv4_hdr)) {
        return ParseResult::Drop;
    }
    const auto* ip = header_at<rte_ipv4_hdr>(f + sizeof(rte_ether_hdr));
    const uint16_t ihl = uint16_t((ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER);
    const uint16_t total = rte_be_to_cpu_16(ip->total_length);
    if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(rte_ipv4_hdr) || total < ihl ||
        total > avail) {
        return ParseResult::Drop;
    }
    // Without options (nearly always) the sum is five straight-line additions.
    if (csum_fold(ihl == 20 ? csum_partial(ip, 20) : csum_partial(ip, ihl)) != 0xffff) {
        return ParseResult::Drop;
    }
    out.l3 = L3::Ipv4;
    out.proto = ip->next_proto_id;
    out.ip_len = total;
    out.l4_len = uint16_t(total - ihl);
    out.src = ip->src_addr;
    out.dst = ip->dst_addr;
    out.sport = out.dport = 0;
    out.tcp_flags = 0;
    out.icmp_type = 0;
    out.ip_id = ip->packet_id;
    const uint16_t frag = rte_be_to_cpu_16(ip->fragment_offset);
    out.frag_first = false;
    out.frag_later = false;
    if ((frag & (RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)) != 0) {
        if (out.proto != IPPROTO_TCP && out.proto != IPPROTO_UDP) {
            out.l4_off = 0;
            reason = Drop::Fragment;
            return ParseResult::Drop;
        }
        if ((frag & RTE_IPV4_HDR_OFFSET_MASK) != 0) {
            out.frag_later = true;  // the ports are in the first fragment only
            out.l4_off = 0;
            return ParseResult::Ok;
        }
        out.frag_first = true;
    }
    out.l4_off = uint16_t(sizeof(rte_ether_hdr) + ihl);
    return parse_l4(f + out.l4_off, out) ? ParseResult::Ok : ParseResult::Drop;
}

}  // namespace

ParseResult parse_frame(const uint8_t* f, uint32_t len, Parsed& out, Drop& reason) noexcept {
    if (len < sizeof(rte_ether_hdr)) {
        reason = Drop::Malformed;
        return ParseResult::Drop;
    }
    const auto* eth = header_at<rte_ether_hdr>(f);
    out.dst_mac_broadcast = rte_is_broadcast_ether_addr(&eth->dst_addr);
    out.dst_mac_multicast = rte_is_multicast_ether_addr(&eth->dst_addr) && !out.dst_mac_broadcast;
    out.l3_off = sizeof(rte_ether_hdr);
    if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP)) {
        if (!parse_arp(f, len, out)) {
            reason = Drop::Malformed;
            return ParseResult::Drop;
        }
        return ParseResult::Ok;
    }
    if (eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4)) {
        reason = Drop::Unsupported;  // IPv6, VLAN tags, anything else
        return ParseResult::Drop;
    }
    return parse_ipv4(f, len, out, reason);
}

bool parse_icmp_quote(const uint8_t* f, uint32_t len, const Parsed& p, Quoted& q) noexcept {
    // ICMP error: 8-byte ICMP header, then the offending IPv4 header and >= 8 bytes after it.
    const uint32_t l3_end = uint32_t(p.l3_off) + p.ip_len;
    const uint32_t qoff = uint32_t(p.l4_off) + sizeof(rte_icmp_hdr);
    if (l3_end > len || qoff + sizeof(rte_ipv4_hdr) > l3_end) {
        return false;
    }
    const auto* ip = header_at<rte_ipv4_hdr>(f + qoff);
    const uint16_t ihl = uint16_t((ip->version_ihl & RTE_IPV4_HDR_IHL_MASK) * RTE_IPV4_IHL_MULTIPLIER);
    if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(rte_ipv4_hdr) || qoff + ihl + 8 > l3_end) {
        return false;
    }
    if ((rte_be_to_cpu_16(ip->fragment_offset) & RTE_IPV4_HDR_OFFSET_MASK) != 0) {
        return false;  // quotes a non-first fragment: no ports to match
    }
    q.ip_off = uint16_t(qoff);
    q.ihl = ihl;
    q.l4_avail = uint16_t(l3_end - qoff - ihl);
    q.proto = ip->next_proto_id;
    q.src = ip->src_addr;
    q.dst = ip->dst_addr;
    const auto* ports = header_at<rte_udp_hdr>(f + qoff + ihl);  // TCP's ports sit alike
    q.sport = ports->src_port;
    q.dport = ports->dst_port;
    return true;
}

}  // namespace lb::dp
