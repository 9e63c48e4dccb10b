#pragma once
// Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software Network Load
// Balancer", NSDI 2016, section 3.4): the lookup table of the `mh` scheduler. Control builds it;
// a worker indexes it with a hash of the client. A pure function of the reals' addresses, ports
// and weights and the table size: no DPDK, no randomness, no dependence on list order.
//
// Each backend has a permutation of the table's slots, offset + j * skip (mod size), from a fixed
// hash of its (addr, port) bytes; backends take turns claiming their next free preferred slot
// until the table is full. Unlike the paper (equal weights) and IPVS's ip_vs_mh.c (turns of
// weight >> shift per round, random hash keys, list order), here:
//   - the number of entries each backend gets is fixed first, exactly proportional to its weight
//     (maglev_entries), and the turns are interleaved smoothly so that every backend finishes at
//     the end of the fill, whatever the weights (65535 next to 1 costs nothing extra);
//   - the hash keys are constants, and the backends are ordered by (addr, port) internally, so
//     two directors whose configs list the same reals in different orders build the same table.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace lb::dp {

// addr / port in network byte order, as stored in the snapshot (the hash reads their bytes as
// they lie in memory, i.e. as on the wire, so the table is the same on any host byte order).
// weight 0..65535; 0: no entries.
struct MaglevBackend {
    uint32_t addr;
    uint16_t port;
    uint32_t weight;
};

inline constexpr uint32_t kMaglevDefaultSize = 65537;
inline constexpr uint16_t kMaglevNone = 0xFFFF;
inline constexpr size_t kMaglevMaxBackends = 65534;  // indices 0..65533; 0xFFFF means none

// Deterministic primality test (trial division; n < 2^32).
bool is_prime(uint32_t n) noexcept;

// How many table entries each backend gets (indexed like `backends`; sums to `size`, or to 0 when
// no weight is positive):
//   - a backend with weight 0 gets none;
//   - a backend with weight > 0 gets at least one, as long as no more than `size` backends have
//     a positive weight (IPVS mh too gives every positive weight at least one turn): a real that
//     is in service must be reachable;
//   - the rest are apportioned exactly by weight (largest remainder). When no backend's exact
//     share size * w / sum(w) is below one entry, each backend gets the floor or the ceiling of
//     its exact share: |entries - size * w / sum| < 1. So the relative error is below 1% for
//     every backend whose exact share is at least 100 entries (for equal weights: size >= 100 *
//     number of backends), and the absolute error is below one entry, 1 / size of the table.
// Throws std::invalid_argument as build_maglev does.
std::vector<uint32_t> maglev_entries(const std::vector<MaglevBackend>& backends, uint32_t size);

// The Maglev lookup table: entry i is an index into `backends`, or kMaglevNone everywhere when
// there is no backend or every weight is 0. Backend b holds exactly maglev_entries(...)[b]
// entries. Identical on every machine and run for the same set of backends and size, whatever
// their order in `backends` (only the returned indices follow the caller's order). Backends that
// share an (addr, port) share a permutation; list each real once.
// Throws std::invalid_argument when size < 2, size is not prime, or there are more than
// kMaglevMaxBackends backends. Cost: O(size * log(size) + size * log(backends)).
std::vector<uint16_t> build_maglev(const std::vector<MaglevBackend>& backends, uint32_t size);

// --- The pieces, exposed for tests and tools ---

// SipHash-2-4 (Aumasson and Bernstein, 2012) of `msg` under the 16-byte key `key`.
uint64_t siphash24(std::span<const uint8_t> msg, const std::array<uint8_t, 16>& key) noexcept;

// A backend's permutation of the slots: slot j of its preference list is (offset + j * skip) %
// size. With key = the 4 addr bytes then the 2 port bytes, in network order:
//   offset = siphash24(key, "lb-maglev-offset") % size
//   skip   = siphash24(key, "lb-maglev-skip..") % (size - 1) + 1
// (the SipHash keys are those 16 ASCII bytes). size must be >= 2.
struct MaglevPermutation {
    uint32_t offset;
    uint32_t skip;
};
MaglevPermutation maglev_permutation(uint32_t addr, uint16_t port, uint32_t size) noexcept;

}  // namespace lb::dp
