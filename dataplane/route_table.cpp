#include "dataplane/route_table.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "dataplane/snapshot.hpp"

namespace lb::dp {

RouteTable::RouteTable() : top_(size_t(1) << 16, 0) {}

uint16_t RouteTable::group_of(uint16_t* top_slot, size_t group_slot) {
    const uint16_t e = top_slot != nullptr ? *top_slot : groups_[group_slot];
    if (e & kGroup) {
        return e & kIndex;
    }
    const size_t g = groups_.size() >> 8;
    if (g >= kMaxGroups) {
        throw std::length_error("route table: more than " + std::to_string(kMaxGroups) +
                                " groups");
    }
    groups_.resize(groups_.size() + 256, e);
    const uint16_t link = uint16_t(kGroup | g);
    (top_slot != nullptr ? *top_slot : groups_[group_slot]) = link;
    return uint16_t(g);
}

void RouteTable::build(std::span<const Route> routes, std::span<const rte_be32_t> martians) {
    std::fill(top_.begin(), top_.end(), 0);
    groups_.clear();
    // Paint shortest first, so that each longer prefix overwrites its part of the shorter ones;
    // among equal prefixes, the one listed first is painted last and wins, as in a scan.
    for (size_t i = routes.size(); i-- > 0;) {
        const Route& r = routes[i];
        if (i + 1 < routes.size() && routes[i + 1].prefix_len > r.prefix_len) {
            throw std::invalid_argument("route table: routes not longest prefix first");
        }
        const uint32_t p = rte_be_to_cpu_32(r.prefix);
        const uint16_t leaf = uint16_t(i + 1);
        if (i + 1 > kIndex) {
            throw std::length_error("route table: too many routes");
        }
        if (r.prefix_len <= 16) {
            const size_t first = p >> 16, n = size_t(1) << (16 - r.prefix_len);
            std::fill(top_.begin() + first, top_.begin() + first + n, leaf);
            continue;
        }
        const size_t g1 = group_of(&top_[p >> 16], 0);
        if (r.prefix_len <= 24) {
            const size_t first = (g1 << 8) | ((p >> 8) & 0xFF);
            const size_t n = size_t(1) << (24 - r.prefix_len);
            std::fill(groups_.begin() + first, groups_.begin() + first + n, leaf);
            continue;
        }
        const size_t g2 = group_of(nullptr, (g1 << 8) | ((p >> 8) & 0xFF));
        const size_t first = (g2 << 8) | (p & 0xFF), n = size_t(1) << (32 - r.prefix_len);
        std::fill(groups_.begin() + first, groups_.begin() + first + n, leaf);
    }
    for (const rte_be32_t m : martians) {
        const uint32_t a = rte_be_to_cpu_32(m);
        const size_t g1 = group_of(&top_[a >> 16], 0);
        const size_t g2 = group_of(nullptr, (g1 << 8) | ((a >> 8) & 0xFF));
        groups_[(g2 << 8) | (a & 0xFF)] |= kMartian;
    }
}

}  // namespace lb::dp
