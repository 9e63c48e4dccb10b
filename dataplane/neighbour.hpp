#pragma once
// Neighbour (ARP) table: written by the control thread, read by every worker without locks.
//
// Layout: kSlots open-addressed slots; an address lives within kWindow slots of its home slot
// (insertion gives up beyond that), so a lookup, hit or miss, reads at most kWindow keys. A slot
// holds the key and one 64-bit word (MAC | port | state): a reader that finds the key reads the
// word once. Fields, writers and readers:
//   ip    control writes (0 = never used, kTombstone = removed); workers read.
//   word  control writes; workers read.
//   used  workers set it to 1 when a lookup finds the entry (only if it is 0, so the line is not
//         written per lookup); control reads and clears it to learn which entries are in use.
// Removal (control): the word goes Empty, then the key becomes kTombstone, and the slot may take
// a different address only after an RCU grace period (rte_rcu_qsbr_start / check, never
// blocking): no reader still holds "key == old address" at that slot then. Without a qsbr
// (unit tests, the harness: one thread) a removed slot is reusable at once. Tombstones never
// lengthen a lookup beyond kWindow.
//
// Every change a worker can see bumps generation(): a worker's cache of lookups (and its
// per-real egress memory) is valid while the generation stays the same.
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include <rte_byteorder.h>
#include <rte_ether.h>

struct rte_rcu_qsbr;

namespace lb::dp {

enum class NeighState : uint8_t { Empty = 0, Incomplete = 1, Reachable = 2, Static = 3 };

class NeighbourTable {
public:
    static constexpr uint32_t kSlots = 16384;
    static constexpr uint32_t kWindow = 32;
    static constexpr uint32_t kTombstone = 0xFFFFFFFFu;  // 255.255.255.255 is never a neighbour

    NeighbourTable();

    // Worker side. True and fills mac when the entry is Reachable or Static; marks it used.
    bool lookup(rte_be32_t ip, rte_ether_addr& mac) const noexcept;

    // Control side, by address. set() returns false when no slot is free within the window.
    bool set(rte_be32_t ip, const rte_ether_addr& mac, uint16_t port, NeighState st) noexcept;
    void set_state(rte_be32_t ip, NeighState st) noexcept;
    NeighState state(rte_be32_t ip) const noexcept;
    void remove(rte_be32_t ip) noexcept;

    // Control side, by slot (control/neighbours.cpp keeps its bookkeeping per slot).
    int32_t find(rte_be32_t ip) const noexcept;
    // The slot of ip, claimed (state Incomplete) when absent; -1 when the window is full.
    int32_t claim(rte_be32_t ip) noexcept;
    void write(uint32_t slot, const rte_ether_addr& mac, uint16_t port, NeighState st) noexcept;
    void release(uint32_t slot) noexcept;
    rte_be32_t key(uint32_t slot) const noexcept {
        return slots_[slot].ip.load(std::memory_order_relaxed);
    }
    NeighState state_at(uint32_t slot) const noexcept;
    bool mac_at(uint32_t slot, rte_ether_addr& mac) const noexcept;
    // The slot's used mark; take_used() reads and clears it.
    bool used_at(uint32_t slot) const noexcept {
        return slots_[slot].used.load(std::memory_order_relaxed) != 0;
    }
    bool take_used(uint32_t slot) noexcept;
    // Bumps the generation: workers look their entries up again (and mark them used).
    void touch() noexcept { generation_.fetch_add(1, std::memory_order_release); }

    // Grace periods for removed slots: with a qsbr, a removed slot waits for every worker to pass a
    // quiescent state; reclaim() (called by control now and then) frees those that have.
    void set_qsbr(rte_rcu_qsbr* q) noexcept { qsbr_ = q; }
    void reclaim() noexcept;
    uint32_t live() const noexcept { return live_; }
    uint32_t retiring() const noexcept { return uint32_t(retiring_.size() - retire_head_); }

    uint32_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }

private:
    std::atomic<uint32_t> generation_{0};
    struct Slot {
        std::atomic<uint32_t> ip{0};
        mutable std::atomic<uint8_t> used{0};
        std::atomic<uint64_t> word{0};  // mac (bytes 0..5) | port << 48 | state << 56
    };
    enum class Own : uint8_t { Never = 0, Live, Retiring, Free };  // control's view of a slot
    std::unique_ptr<Slot[]> slots_;
    std::unique_ptr<Own[]> own_;
    struct Retired {
        uint32_t slot;
        uint64_t token;
    };
    std::vector<Retired> retiring_;  // in token order; [retire_head_, end) still waiting
    size_t retire_head_ = 0;
    rte_rcu_qsbr* qsbr_ = nullptr;
    uint32_t live_ = 0;
};

}  // namespace lb::dp
