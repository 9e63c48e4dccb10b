#pragma once
// Longest-prefix match for the snapshot's routes, in the DIR-16-8-8 shape of DPDK's rte_lpm and
// VPP's ip4 mtrie: a 64K-entry first level indexed by an address's top 16 bits, and 256-entry
// groups below it for the routes longer than /16 and /24. A lookup is one to three loads,
// whatever the number of routes (a linear scan cost every new connection about 40 instructions
// with three routes, and grew with each route). Built once per snapshot, off the packet path;
// the workers only read it.
#include <rte_byteorder.h>

#include <cstdint>
#include <span>
#include <vector>

#include "dataplane/types.hpp"

namespace lb::dp {

struct Route;

class RouteTable {
public:
    // An entry: kGroup and a group index, or a leaf: the index + 1 of the route that covers
    // the address (0: none), with kMartian when the address is a connected subnet's network or
    // broadcast address (never a valid source).
    static constexpr uint16_t kGroup = 0x8000, kMartian = 0x4000, kIndex = 0x3FFF;
    // More than the routes a config may hold (kMaxRoutes) can ever need: each route and each
    // martian address opens at most two groups.
    static constexpr size_t kMaxGroups = kIndex + 1;
    static_assert(kMaxGroups >= 2 * (kMaxRoutes + kMaxPorts) + 2 * 2 * kMaxPorts);

    RouteTable();

    // routes: longest prefix first, ties in the order they win; martians: /32s to flag.
    // Throws std::length_error when the groups would not fit (kMaxRoutes prevents it).
    void build(std::span<const Route> routes, std::span<const rte_be32_t> martians);

    uint16_t leaf(rte_be32_t addr) const noexcept {
        const uint32_t h = rte_be_to_cpu_32(addr);
        uint16_t e = top_[h >> 16];
        if (e & kGroup) [[unlikely]] {
            e = groups_[(size_t(e & kIndex) << 8) | ((h >> 8) & 0xFF)];
            if (e & kGroup) {
                e = groups_[(size_t(e & kIndex) << 8) | (h & 0xFF)];
            }
        }
        return e;
    }

private:
    // The group under `*slot`, made (filled with the leaf it replaces) when it is a leaf.
    uint16_t group_of(uint16_t* top_slot, size_t group_slot);
    std::vector<uint16_t> top_;     // 65536 entries
    std::vector<uint16_t> groups_;  // 256 entries a group
};

}  // namespace lb::dp
