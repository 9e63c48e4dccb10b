#include "dataplane/neighbour.hpp"

#include <cstring>

#include <rte_hash_crc.h>
#include <rte_rcu_qsbr.h>

namespace lb::dp {

namespace {
uint32_t slot_of(rte_be32_t ip) noexcept {
    return rte_hash_crc_4byte(ip, 0x2545f491u) & (NeighbourTable::kSlots - 1);
}
uint32_t next(uint32_t s) noexcept {
    return (s + 1) & (NeighbourTable::kSlots - 1);
}
uint64_t pack(const rte_ether_addr& mac, uint16_t port, NeighState st) noexcept {
    uint64_t w = 0;
    std::memcpy(&w, mac.addr_bytes, 6);
    return w | uint64_t(port & 0xff) << 48 | uint64_t(st) << 56;
}
}  // namespace

NeighbourTable::NeighbourTable() : slots_(new Slot[kSlots]), own_(new Own[kSlots]()) {
    retiring_.reserve(kSlots);
}

int32_t NeighbourTable::find(rte_be32_t ip) const noexcept {
    if (ip == 0 || ip == kTombstone) {
        return -1;
    }
    uint32_t s = slot_of(ip);
    for (uint32_t probe = 0; probe < kWindow; ++probe, s = next(s)) {
        const uint32_t k = slots_[s].ip.load(std::memory_order_acquire);
        if (k == ip) {
            return int32_t(s);
        }
        if (k == 0) {
            return -1;  // keys never return to 0: ip was never placed beyond here
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
    if (slots_[s].used.load(std::memory_order_relaxed) == 0) {
        slots_[s].used.store(1, std::memory_order_relaxed);
    }
    return true;
}

int32_t NeighbourTable::claim(rte_be32_t ip) noexcept {
    if (ip == 0 || ip == kTombstone) {
        return -1;
    }
    uint32_t s = slot_of(ip);
    int32_t free = -1;
    for (uint32_t probe = 0; probe < kWindow; ++probe, s = next(s)) {
        const uint32_t k = slots_[s].ip.load(std::memory_order_relaxed);
        if (k == ip && own_[s] == Own::Live) {
            return int32_t(s);
        }
        if (free < 0 && (own_[s] == Own::Never || own_[s] == Own::Free)) {
            free = int32_t(s);
        }
        if (k == 0) {
            break;
        }
    }
    if (free < 0) {
        return -1;
    }
    Slot& sl = slots_[free];
    // Word first, key second: a reader that sees the key sees a complete word.
    sl.word.store(uint64_t(NeighState::Incomplete) << 56, std::memory_order_release);
    sl.used.store(0, std::memory_order_relaxed);
    sl.ip.store(ip, std::memory_order_release);
    own_[free] = Own::Live;
    ++live_;
    generation_.fetch_add(1, std::memory_order_release);
    return free;
}

void NeighbourTable::write(uint32_t slot, const rte_ether_addr& mac, uint16_t port,
                           NeighState st) noexcept {
    const uint64_t w = pack(mac, port, st);
    if (slots_[slot].word.load(std::memory_order_relaxed) == w) {
        return;  // no change: the workers' caches stay valid
    }
    slots_[slot].word.store(w, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
}

void NeighbourTable::release(uint32_t slot) noexcept {
    if (own_[slot] != Own::Live) {
        return;
    }
    Slot& sl = slots_[slot];
    sl.word.store(0, std::memory_order_release);
    sl.ip.store(kTombstone, std::memory_order_release);
    generation_.fetch_add(1, std::memory_order_release);
    --live_;
    if (qsbr_ == nullptr) {
        own_[slot] = Own::Free;
        return;
    }
    own_[slot] = Own::Retiring;
    retiring_.push_back({slot, rte_rcu_qsbr_start(qsbr_)});
}

void NeighbourTable::reclaim() noexcept {
    while (retire_head_ < retiring_.size() &&
           rte_rcu_qsbr_check(qsbr_, retiring_[retire_head_].token, false) == 1) {
        own_[retiring_[retire_head_].slot] = Own::Free;
        ++retire_head_;
    }
    if (retire_head_ == retiring_.size()) {
        retiring_.clear();
        retire_head_ = 0;
    }
}

NeighState NeighbourTable::state_at(uint32_t slot) const noexcept {
    return NeighState(slots_[slot].word.load(std::memory_order_relaxed) >> 56);
}

bool NeighbourTable::mac_at(uint32_t slot, rte_ether_addr& mac) const noexcept {
    const uint64_t w = slots_[slot].word.load(std::memory_order_relaxed);
    std::memcpy(mac.addr_bytes, &w, 6);
    const auto st = NeighState(w >> 56);
    return st == NeighState::Reachable || st == NeighState::Static;
}

bool NeighbourTable::take_used(uint32_t slot) noexcept {
    if (slots_[slot].used.load(std::memory_order_relaxed) == 0) {
        return false;
    }
    slots_[slot].used.store(0, std::memory_order_relaxed);
    return true;
}

bool NeighbourTable::set(rte_be32_t ip, const rte_ether_addr& mac, uint16_t port,
                         NeighState st) noexcept {
    const int32_t s = claim(ip);
    if (s < 0) {
        return false;
    }
    write(uint32_t(s), mac, port, st);
    return true;
}

void NeighbourTable::set_state(rte_be32_t ip, NeighState st) noexcept {
    const int32_t s = find(ip);
    if (s < 0) {
        return;
    }
    const uint64_t w = slots_[s].word.load(std::memory_order_relaxed);
    const uint64_t nw = (w & ~(uint64_t(0xff) << 56)) | uint64_t(st) << 56;
    if (nw != w) {
        slots_[s].word.store(nw, std::memory_order_release);
        generation_.fetch_add(1, std::memory_order_release);
    }
}

NeighState NeighbourTable::state(rte_be32_t ip) const noexcept {
    const int32_t s = find(ip);
    return s < 0 ? NeighState::Empty
                 : NeighState(slots_[s].word.load(std::memory_order_acquire) >> 56);
}

void NeighbourTable::remove(rte_be32_t ip) noexcept {
    const int32_t s = find(ip);
    if (s >= 0) {
        release(uint32_t(s));
    }
}

}  // namespace lb::dp
