#pragma once
// Neighbour (ARP) table: written by the control thread only, read by every worker without locks.
// Keys are never removed once written (a slot keeps its address for the process's life), so a
// reader that finds the address reads one 64-bit word that holds MAC, port and state together.
#include <atomic>
#include <cstdint>
#include <memory>

#include <rte_byteorder.h>
#include <rte_ether.h>

namespace lb::dp {

enum class NeighState : uint8_t { Empty = 0, Incomplete = 1, Reachable = 2, Static = 3 };

class NeighbourTable {
public:
    static constexpr uint32_t kSlots = 8192;

    NeighbourTable();

    // Worker side. True and fills mac when the entry is Reachable or Static.
    bool lookup(rte_be32_t ip, rte_ether_addr& mac) const noexcept;

    // Control side. Returns false when the table is full.
    bool set(rte_be32_t ip, const rte_ether_addr& mac, uint16_t port, NeighState st) noexcept;
    void set_state(rte_be32_t ip, NeighState st) noexcept;
    NeighState state(rte_be32_t ip) const noexcept;

    // Bumped by every change (set or set_state that changes an entry): a worker's cache of
    // lookups is valid while this stays the same.
    uint32_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

private:
    std::atomic<uint32_t> generation_{0};
    struct Slot {
        std::atomic<uint32_t> ip{0};
        std::atomic<uint64_t> word{0};  // mac (bytes 0..5) | port << 48 | state << 56
    };
    int32_t find(rte_be32_t ip) const noexcept;
    std::unique_ptr<Slot[]> slots_;
};

}  // namespace lb::dp
