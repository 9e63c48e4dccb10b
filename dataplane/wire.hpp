#pragma once
// Reading and writing wire fields on the packet path: unaligned loads and stores through
// memcpy (the one place they are spelled), and the rewrites every forwarding method shares (an
// address or a port with its checksums, the TTL).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "dataplane/checksum.hpp"

namespace lb::dp {

constexpr uint16_t kEth = 14;
constexpr uint16_t kMinFrame = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN;  // 60: padded

inline uint8_t* frame_of(rte_mbuf* m) noexcept { return rte_pktmbuf_mtod(m, uint8_t*); }

// The TTL of m's IPv4 header (after the Ethernet header).
inline uint8_t ttl_of(const rte_mbuf* m) noexcept {
    return rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, kEth)->time_to_live;
}

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

// The bytes of field `field` of the wire header at `hdr` (a pointer to one of DPDK's packed
// header structs): the rewrites below take a field as bytes, since a packed field's address is
// not aligned for its type.
#define LB_FIELD(hdr, field)                                                                  \
    (reinterpret_cast<uint8_t*>(hdr) + offsetof(std::remove_pointer_t<decltype(hdr)>, field))

// The wire header H at p (DPDK's header structs are packed: any alignment will do).
template <class H>
H* header_at(uint8_t* p) noexcept {
    return reinterpret_cast<H*>(p);
}
template <class H>
const H* header_at(const uint8_t* p) noexcept {
    return reinterpret_cast<const H*>(p);
}

// An IPv4 packet's header in m (after the Ethernet header).
inline rte_ipv4_hdr* ipv4_of(rte_mbuf* m) noexcept {
    return rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, kEth);
}

// Offset of the transport checksum field, or 0 when the protocol has none we maintain.
inline uint16_t l4_csum_off(uint8_t proto) noexcept {
    return proto == IPPROTO_TCP   ? uint16_t(offsetof(rte_tcp_hdr, cksum))
           : proto == IPPROTO_UDP ? uint16_t(offsetof(rte_udp_hdr, dgram_cksum))
                                  : 0;
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

// Decrements the TTL of IPv4 header ip; false when the packet must not be forwarded.
inline bool decrement_ttl(rte_ipv4_hdr* ip) noexcept {
    if (ip->time_to_live <= 1) {
        return false;
    }
    // The 16-bit word TTL+protocol, before and after: built in registers (a byte store read
    // back as a word would stall on store forwarding).
    uint8_t* word = LB_FIELD(ip, time_to_live);
    static_assert(offsetof(rte_ipv4_hdr, next_proto_id) == offsetof(rte_ipv4_hdr, time_to_live) + 1);
    const uint16_t from = rd16(word);
    const uint8_t next[2] = {uint8_t(ip->time_to_live - 1), ip->next_proto_id};
    uint16_t to;
    std::memcpy(&to, next, 2);
    wr16(word, to);
    uint8_t* sum = LB_FIELD(ip, hdr_checksum);
    wr16(sum, csum_replace2(rd16(sum), from, to));
    return true;
}

}  // namespace lb::dp
