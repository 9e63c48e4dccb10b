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

// Sum of 16-bit words as laid out in memory (the result is in memory byte order too).
inline uint32_t csum_partial(const void* data, size_t len, uint32_t sum = 0) noexcept {
    const auto* p = static_cast<const uint8_t*>(data);
    while (len >= 2) {
        uint16_t w;
        std::memcpy(&w, p, 2);
        sum += w;
        p += 2;
        len -= 2;
    }
    if (len != 0) {
        uint16_t w = 0;
        std::memcpy(&w, p, 1);
        sum += w;
    }
    return sum;
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
