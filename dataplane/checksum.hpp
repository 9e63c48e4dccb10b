#pragma once
// Internet checksum helpers: incremental updates (RFC 1624, eqn. 3) over fields that stay in
// network byte order, and a full one's-complement sum for reference and for fresh headers.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include <rte_byteorder.h>

namespace lb::dp {

// Folds a 32-bit one's-complement accumulator to 16 bits.
inline uint16_t csum_fold(uint32_t sum) noexcept {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(sum);
}

// Sum of 16-bit words as laid out in memory (the result is in memory byte order too), as a
// 32-bit accumulator for csum_fold. Adds 8 bytes at a time with end-around carry: the
// one's-complement sum of 64-bit words folds to the same 16-bit sum (2^16 - 1 divides 2^64 - 1).
inline uint32_t csum_partial(const void* data, size_t len, uint32_t sum = 0) noexcept {
    const auto* p = static_cast<const uint8_t*>(data);
    uint64_t acc = sum;
    while (len >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        acc += w;
        acc += acc < w;  // end-around carry
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t w;
        std::memcpy(&w, p, 4);
        acc += w;
        acc += acc < w;
        p += 4;
        len -= 4;
    }
    if (len >= 2) {
        uint16_t w;
        std::memcpy(&w, p, 2);
        acc += w;
        acc += acc < w;
        p += 2;
        len -= 2;
    }
    if (len != 0) {
        uint16_t w = 0;
        std::memcpy(&w, p, 1);
        acc += w;
        acc += acc < w;
    }
    // 64 -> 32 bits, end-around.
    acc = (acc & 0xffffffffu) + (acc >> 32);
    acc = (acc & 0xffffffffu) + (acc >> 32);
    return uint32_t(acc);
}

// Full checksum of a buffer (memory byte order), as stored in a header field.
inline uint16_t csum_full(const void* data, size_t len, uint32_t sum = 0) noexcept {
    return uint16_t(~csum_fold(csum_partial(data, len, sum)));
}

// Checksum field `check` covered a 16-bit word that changes from `from` to `to` (all three in
// memory byte order). Returns the new field value. HC' = ~(~HC + ~m + m').
inline uint16_t csum_replace2(uint16_t check, uint16_t from, uint16_t to) noexcept {
    uint32_t sum = uint16_t(~check);
    sum += uint16_t(~from);
    sum += to;
    return uint16_t(~csum_fold(sum));
}

inline uint16_t csum_replace4(uint16_t check, uint32_t from, uint32_t to) noexcept {
    uint32_t sum = uint16_t(~check);
    sum += uint16_t(~from) + uint16_t(~(from >> 16));
    sum += uint16_t(to) + uint16_t(to >> 16);
    return uint16_t(~csum_fold(sum));
}

// UDP: a zero checksum means "none" and stays zero; a computed zero is sent as 0xffff.
inline uint16_t udp_csum_replace4(uint16_t check, uint32_t from, uint32_t to) noexcept {
    if (check == 0) {
        return 0;
    }
    const uint16_t c = csum_replace4(check, from, to);
    return c == 0 ? 0xffff : c;
}
inline uint16_t udp_csum_replace2(uint16_t check, uint16_t from, uint16_t to) noexcept {
    if (check == 0) {
        return 0;
    }
    const uint16_t c = csum_replace2(check, from, to);
    return c == 0 ? 0xffff : c;
}

}  // namespace lb::dp
