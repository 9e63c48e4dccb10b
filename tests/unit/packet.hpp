#pragma once
// A small builder of Ethernet/IPv4/TCP/UDP/ICMP frames for unit tests, with correct checksums.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <arpa/inet.h>

#include "dataplane/checksum.hpp"

namespace lbtest {

using Bytes = std::vector<uint8_t>;

inline uint32_t ip(const char* s) {
    in_addr a{};
    inet_pton(AF_INET, s, &a);
    return a.s_addr;  // network order
}

// The big-endian 16-bit field at off.
inline uint16_t be16_at(const Bytes& b, size_t off) { return uint16_t(b[off] << 8 | b[off + 1]); }
inline uint32_t be32_at(const Bytes& b, size_t off) {
    return uint32_t(b[off]) << 24 | uint32_t(b[off + 1]) << 16 | uint32_t(b[off + 2]) << 8 |
           b[off + 3];
}

struct Mac {
    uint8_t b[6];
};
inline constexpr Mac kPortMac0{{0x02, 0, 0, 0, 0, 0x01}};
inline constexpr Mac kPortMac1{{0x02, 0, 0, 0, 1, 0x01}};
inline constexpr Mac kClientMac{{0x02, 0, 0, 0, 0, 0x02}};
inline constexpr Mac kBroadcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

struct Pkt {
    Mac dst_mac = kPortMac0, src_mac = kClientMac;
    uint16_t ethertype = 0x0800;
    uint32_t src = ip("198.51.100.2"), dst = ip("198.51.100.10");
    uint8_t proto = 6, ttl = 64, tcp_flags = 0x02;
    uint16_t sport = 40000, dport = 80, ip_id = 1, frag = 0;
    uint32_t seq = 1000, ack = 0;  // TCP
    uint8_t icmp_type = 8, icmp_code = 0;
    Bytes payload;
    Bytes ip_options;
    bool udp_zero_csum = false;

    Bytes build() const {
        Bytes l4;
        if (proto == 6) {
            l4.assign(20, 0);
            put16(l4, 0, sport);
            put16(l4, 2, dport);
            put32h(l4, 4, seq);
            put32h(l4, 8, ack);
            l4[12] = 5 << 4;
            l4[13] = tcp_flags;
            put16(l4, 14, 65535);
        } else if (proto == 17) {
            l4.assign(8, 0);
            put16(l4, 0, sport);
            put16(l4, 2, dport);
            put16(l4, 4, uint16_t(8 + payload.size()));
        } else if (proto == 1) {
            l4.assign(8, 0);
            l4[0] = icmp_type;
            l4[1] = icmp_code;
            put16(l4, 4, sport);
            put16(l4, 6, 1);
        }
        l4.insert(l4.end(), payload.begin(), payload.end());
        const size_t ihl = 20 + ip_options.size();
        Bytes iph(20, 0);
        iph.insert(iph.end(), ip_options.begin(), ip_options.end());
        iph[0] = uint8_t(0x40 | (ihl / 4));
        put16(iph, 2, uint16_t(ihl + l4.size()));
        put16(iph, 4, ip_id);
        put16(iph, 6, frag);
        iph[8] = ttl;
        iph[9] = proto;
        std::memcpy(&iph[12], &src, 4);
        std::memcpy(&iph[16], &dst, 4);
        const uint16_t c = lb::dp::csum_full(iph.data(), ihl);
        std::memcpy(&iph[10], &c, 2);
        if (proto == 6 || proto == 17) {
            const uint16_t lc = l4_csum(iph, l4);
            if (proto == 6) {
                std::memcpy(&l4[16], &lc, 2);
            } else if (!udp_zero_csum) {
                const uint16_t u = lc == 0 ? 0xffff : lc;
                std::memcpy(&l4[6], &u, 2);
            }
        } else if (proto == 1) {
            const uint16_t ic = lb::dp::csum_full(l4.data(), l4.size());
            std::memcpy(&l4[2], &ic, 2);
        }
        Bytes f(dst_mac.b, dst_mac.b + 6);
        f.insert(f.end(), src_mac.b, src_mac.b + 6);
        f.push_back(uint8_t(ethertype >> 8));
        f.push_back(uint8_t(ethertype));
        f.insert(f.end(), iph.begin(), iph.end());
        f.insert(f.end(), l4.begin(), l4.end());
        while (f.size() < 60) {
            f.push_back(0);
        }
        return f;
    }

    static void put16(Bytes& b, size_t off, uint16_t v) {
        b[off] = uint8_t(v >> 8);
        b[off + 1] = uint8_t(v);
    }
    static void put32h(Bytes& b, size_t off, uint32_t v) {
        put16(b, off, uint16_t(v >> 16));
        put16(b, off + 2, uint16_t(v));
    }
    // Transport checksum over the pseudo-header and the segment (memory byte order).
    static uint16_t l4_csum(const Bytes& iph, const Bytes& l4) {
        uint8_t pseudo[12];
        std::memcpy(pseudo, &iph[12], 8);
        pseudo[8] = 0;
        pseudo[9] = iph[9];
        pseudo[10] = uint8_t(l4.size() >> 8);
        pseudo[11] = uint8_t(l4.size());
        return lb::dp::csum_full(l4.data(), l4.size(), lb::dp::csum_partial(pseudo, 12));
    }
};

inline Bytes arp(uint16_t op, const Mac& sha, uint32_t spa, uint32_t tpa,
                 const Mac& eth_dst = kBroadcast) {
    Bytes f(eth_dst.b, eth_dst.b + 6);
    f.insert(f.end(), sha.b, sha.b + 6);
    const uint8_t hdr[] = {0x08, 0x06, 0, 1, 0x08, 0, 6, 4, uint8_t(op >> 8), uint8_t(op)};
    f.insert(f.end(), hdr, hdr + sizeof hdr);
    f.insert(f.end(), sha.b, sha.b + 6);
    const auto* s = reinterpret_cast<const uint8_t*>(&spa);
    f.insert(f.end(), s, s + 4);
    f.insert(f.end(), 6, 0);
    const auto* t = reinterpret_cast<const uint8_t*>(&tpa);
    f.insert(f.end(), t, t + 4);
    while (f.size() < 60) {
        f.push_back(0);
    }
    return f;
}

}  // namespace lbtest
