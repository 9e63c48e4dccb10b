#pragma once
// Frame parser: Ethernet -> ARP | IPv4 -> TCP | UDP | ICMP. Validates every length and the IPv4
// header checksum; never reads past the frame. Works on plain byte buffers so that the unit
// tests and the fuzzer drive it without an mbuf.
#include <cstdint>

#include <rte_byteorder.h>

#include "dataplane/types.hpp"

namespace lb::dp {

enum class L3 : uint8_t { Arp, Ipv4 };

struct Parsed {
    L3 l3 = L3::Ipv4;
    uint8_t proto = 0;      // IPv4 protocol
    uint8_t tcp_flags = 0;
    uint8_t icmp_type = 0;
    uint16_t l3_off = 14;
    uint16_t l4_off = 0;    // 0 when the packet is a non-first fragment
    uint16_t ip_len = 0;    // IPv4 total length
    uint16_t l4_len = 0;    // ip_len - header length
    rte_be32_t src = 0, dst = 0;
    rte_be16_t sport = 0, dport = 0;  // ICMP echo: id in sport
    rte_be16_t ip_id = 0;
    bool frag_first = false;  // a first fragment (MF set, offset 0): ports present
    bool frag_later = false;  // a later fragment (offset > 0): no transport header
    bool dst_mac_broadcast = false;
    bool dst_mac_multicast = false;
};

enum class ParseResult : uint8_t { Ok, Drop };

// On Ok, `out` describes the frame. On Drop, `reason` says why (Malformed, Unsupported,
// Fragment). TCP and UDP fragments parse Ok (frag_first / frag_later); other fragments are
// dropped as Fragment.
ParseResult parse_frame(const uint8_t* frame, uint32_t len, Parsed& out, Drop& reason) noexcept;

// The part of an ICMP error that quotes the offending packet: its IPv4 header and the first
// 8 bytes of its transport header.
struct Quoted {
    uint16_t ip_off = 0;   // offset of the quoted IPv4 header from the frame start
    uint16_t ihl = 0;      // its header length in bytes
    uint16_t l4_avail = 0; // quoted transport bytes present in the frame
    uint8_t proto = 0;
    rte_be32_t src = 0, dst = 0;
    rte_be16_t sport = 0, dport = 0;
};

inline bool is_icmp_error(uint8_t type) noexcept {
    return type == 3 || type == 11 || type == 12;  // unreachable, time exceeded, parameter problem
}

// For an ICMP error frame already parsed Ok: locates and checks the quoted header.
bool parse_icmp_quote(const uint8_t* frame, uint32_t len, const Parsed& p, Quoted& q) noexcept;

}  // namespace lb::dp
