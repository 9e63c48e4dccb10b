#include "dataplane/parse.hpp"

#include <cstring>

#include <rte_ether.h>
#include <rte_ip.h>

#include "dataplane/checksum.hpp"

namespace lb::dp {

namespace {

inline uint16_t load_be16(const uint8_t* p) noexcept { return uint16_t(p[0] << 8 | p[1]); }

inline rte_be32_t load_raw32(const uint8_t* p) noexcept {
    rte_be32_t v;
    std::memcpy(&v, p, 4);
    return v;
}
inline rte_be16_t load_raw16(const uint8_t* p) noexcept {
    rte_be16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

constexpr uint16_t kEthHdr = 14;
constexpr uint16_t kArpLen = 28;

}  // namespace

ParseResult parse_frame(const uint8_t* f, uint32_t len, Parsed& out, Drop& reason) noexcept {
    if (len < kEthHdr) {
        reason = Drop::Malformed;
        return ParseResult::Drop;
    }
    uint32_t mac_hi;
    uint16_t mac_lo;
    std::memcpy(&mac_hi, f, 4);
    std::memcpy(&mac_lo, f + 4, 2);
    out.dst_mac_broadcast = mac_hi == 0xffffffffu && mac_lo == 0xffffu;
    out.dst_mac_multicast = (f[0] & 1) != 0 && !out.dst_mac_broadcast;
    const uint16_t ethertype = load_be16(f + 12);
    out.l3_off = kEthHdr;
    if (ethertype == RTE_ETHER_TYPE_ARP) {
        if (len < kEthHdr + kArpLen) {
            reason = Drop::Malformed;
            return ParseResult::Drop;
        }
        const uint8_t* a = f + kEthHdr;
        // Ethernet/IPv4 ARP only: htype 1, ptype 0x0800, hlen 6, plen 4.
        if (load_be16(a) != 1 || load_be16(a + 2) != RTE_ETHER_TYPE_IPV4 || a[4] != 6 ||
            a[5] != 4) {
            reason = Drop::Malformed;
            return ParseResult::Drop;
        }
        out.l3 = L3::Arp;
        out.src = load_raw32(a + 14);
        out.dst = load_raw32(a + 24);
        out.sport = load_raw16(a + 6);  // opcode, network order
        return ParseResult::Ok;
    }
    if (ethertype != RTE_ETHER_TYPE_IPV4) {
        reason = Drop::Unsupported;  // IPv6, VLAN tags, anything else
        return ParseResult::Drop;
    }
    const uint8_t* ip = f + kEthHdr;
    const uint32_t avail = len - kEthHdr;
    if (avail < 20) {
        reason = Drop::Malformed;
        return ParseResult::Drop;
    }
    const uint16_t ihl = uint16_t((ip[0] & 0x0f) * 4);
    const uint16_t total = load_be16(ip + 2);
    if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl || total > avail) {
        reason = Drop::Malformed;
        return ParseResult::Drop;
    }
    // Without options (nearly always) the sum is five straight-line additions.
    if (csum_fold(ihl == 20 ? csum_partial(ip, 20) : csum_partial(ip, ihl)) != 0xffff) {
        reason = Drop::Malformed;
        return ParseResult::Drop;
    }
    out.l3 = L3::Ipv4;
    out.proto = ip[9];
    out.ip_len = total;
    out.l4_len = uint16_t(total - ihl);
    out.src = load_raw32(ip + 12);
    out.dst = load_raw32(ip + 16);
    out.sport = out.dport = 0;
    out.tcp_flags = 0;
    out.icmp_type = 0;
    out.ip_id = load_raw16(ip + 4);
    const uint16_t frag = load_be16(ip + 6);
    out.frag_first = false;
    out.frag_later = false;
    if ((frag & 0x3fff) != 0) {  // MF set or offset != 0
        if (out.proto != IPPROTO_TCP && out.proto != IPPROTO_UDP) {
            out.l4_off = 0;
            reason = Drop::Fragment;
            return ParseResult::Drop;
        }
        if ((frag & 0x1fff) != 0) {
            out.frag_later = true;  // the ports are in the first fragment only
            out.l4_off = 0;
            return ParseResult::Ok;
        }
        out.frag_first = true;
    }
    out.l4_off = uint16_t(kEthHdr + ihl);
    const uint8_t* l4 = f + out.l4_off;
    switch (out.proto) {
    case IPPROTO_TCP: {
        if (out.l4_len < 20) {
            reason = Drop::Malformed;
            return ParseResult::Drop;
        }
        const uint16_t doff = uint16_t((l4[12] >> 4) * 4);
        if (doff < 20 || doff > out.l4_len) {
            reason = Drop::Malformed;
            return ParseResult::Drop;
        }
        out.sport = load_raw16(l4);
        out.dport = load_raw16(l4 + 2);
        out.tcp_flags = l4[13];
        break;
    }
    case IPPROTO_UDP: {
        if (out.l4_len < 8) {
            reason = Drop::Malformed;
            return ParseResult::Drop;
        }
        const uint16_t ulen = load_be16(l4 + 4);
        // A first fragment carries only part of the datagram its length describes.
        if (ulen < 8 || (ulen > out.l4_len && !out.frag_first)) {
            reason = Drop::Malformed;
            return ParseResult::Drop;
        }
        out.sport = load_raw16(l4);
        out.dport = load_raw16(l4 + 2);
        break;
    }
    case IPPROTO_ICMP: {
        if (out.l4_len < 8) {
            reason = Drop::Malformed;
            return ParseResult::Drop;
        }
        out.icmp_type = l4[0];
        out.sport = load_raw16(l4 + 4);  // echo identifier
        break;
    }
    default:
        break;  // other protocols: the caller decides (nothing we serve)
    }
    return ParseResult::Ok;
}

bool parse_icmp_quote(const uint8_t* f, uint32_t len, const Parsed& p, Quoted& q) noexcept {
    // ICMP error: 8-byte ICMP header, then the offending IPv4 header and >= 8 bytes after it.
    const uint32_t l3_end = uint32_t(p.l3_off) + p.ip_len;
    const uint32_t qoff = uint32_t(p.l4_off) + 8;
    if (l3_end > len || qoff + 20 > l3_end) {
        return false;
    }
    const uint8_t* ip = f + qoff;
    const uint16_t ihl = uint16_t((ip[0] & 0x0f) * 4);
    if ((ip[0] >> 4) != 4 || ihl < 20 || qoff + ihl + 8 > l3_end) {
        return false;
    }
    if ((load_be16(ip + 6) & 0x1fff) != 0) {
        return false;  // quotes a non-first fragment: no ports to match
    }
    q.ip_off = uint16_t(qoff);
    q.ihl = ihl;
    q.l4_avail = uint16_t(l3_end - qoff - ihl);
    q.proto = ip[9];
    q.src = load_raw32(ip + 12);
    q.dst = load_raw32(ip + 16);
    q.sport = load_raw16(ip + ihl);
    q.dport = load_raw16(ip + ihl + 2);
    return true;
}

}  // namespace lb::dp
