#include "dataplane/neighbour.hpp"

#include <cstring>

#include <rte_hash_crc.h>

namespace lb::dp {

namespace {
uint32_t slot_of(rte_be32_t ip) noexcept {
    return rte_hash_crc_4byte(ip, 0x2545f491u) & (NeighbourTable::kSlots - 1);
}
uint64_t pack(const rte_ether_addr& mac, uint16_t port, NeighState st) noexcept {
    uint64_t w = 0;
    std::memcpy(&w, mac.addr_bytes, 6);
    return w | uint64_t(port & 0xff) << 48 | uint64_t(st) << 56;
}
}  // namespace

NeighbourTable::NeighbourTable() : slots_(new Slot[kSlots]) {}

int32_t NeighbourTable::find(rte_be32_t ip) const noexcept {
    uint32_t s = slot_of(ip);
    for (uint32_t probe = 0; probe < kSlots; ++probe, s = (s + 1) & (kSlots - 1)) {
        const uint32_t k = slots_[s].ip.load(std::memory_order_acquire);
        if (k == ip) {
            return int32_t(s);
        }
        if (k == 0) {
            return -1;
        }
    }
    return -1;
}

bool NeighbourTable::lookup(rte_be32_t ip, rte_ether_addr& mac) const noexcept {
    const int32_t s = find(ip);
    if (s < 0) {
        return false;
    }
    const uint64_t w = slots_[s].word.load(std::memory_order_acquire);
    const auto st = NeighState(w >> 56);
    if (st != NeighState::Reachable && st != NeighState::Static) {
        return false;
    }
    std::memcpy(mac.addr_bytes, &w, 6);
    return true;
}

bool NeighbourTable::set(rte_be32_t ip, const rte_ether_addr& mac, uint16_t port,
                         NeighState st) noexcept {
    if (ip == 0) {
        return false;
    }
    uint32_t s = slot_of(ip);
    for (uint32_t probe = 0; probe < kSlots; ++probe, s = (s + 1) & (kSlots - 1)) {
        const uint32_t k = slots_[s].ip.load(std::memory_order_relaxed);
        if (k == ip || k == 0) {
            const uint64_t w = pack(mac, port, st);
            if (k == ip && slots_[s].word.load(std::memory_order_relaxed) == w) {
                return true;  // no change: the workers' caches stay valid
            }
            // Word first, key second: a reader that sees the key sees a complete word.
            slots_[s].word.store(w, std::memory_order_release);
            generation_.fetch_add(1, std::memory_order_release);
            if (k == 0) {
                slots_[s].ip.store(ip, std::memory_order_release);
            }
            return true;
        }
    }
    return false;
}

void NeighbourTable::set_state(rte_be32_t ip, NeighState st) noexcept {
    const int32_t s = find(ip);
    if (s < 0) {
        return;
    }
    const uint64_t w = slots_[s].word.load(std::memory_order_relaxed);
    const uint64_t next = (w & ~(uint64_t(0xff) << 56)) | uint64_t(st) << 56;
    if (next != w) {
        slots_[s].word.store(next, std::memory_order_release);
        generation_.fetch_add(1, std::memory_order_release);
    }
}

NeighState NeighbourTable::state(rte_be32_t ip) const noexcept {
    const int32_t s = find(ip);
    return s < 0 ? NeighState::Empty
                 : NeighState(slots_[s].word.load(std::memory_order_acquire) >> 56);
}

}  // namespace lb::dp
