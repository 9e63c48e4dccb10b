#include "dataplane/conn_table.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

#include <rte_hash_crc.h>
#include <rte_prefetch.h>

namespace lb::dp {

namespace {

constexpr uint8_t kSyn = 0x02, kFin = 0x01, kRst = 0x04, kAck = 0x10;

template <class T>
T* alloc_array(size_t n) {
    const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, bytes == 0 ? 64 : bytes);
    if (p == nullptr) {
        throw std::bad_alloc();
    }
    std::memset(p, 0, bytes);
    return static_cast<T*>(p);
}

uint32_t next_pow2(uint64_t v) {
    uint64_t p = 1;
    while (p < v) {
        p <<= 1;
    }
    return uint32_t(p);
}

}  // namespace

const char* tcp_state_name(TcpState s) noexcept {
    switch (s) {
    case TcpState::None: return "NONE";
    case TcpState::SynRecv: return "SYN_RECV";
    case TcpState::Established: return "ESTABLISHED";
    case TcpState::FinWait: return "FIN_WAIT";
    case TcpState::CloseWait: return "CLOSE_WAIT";
    case TcpState::LastAck: return "LAST_ACK";
    case TcpState::TimeWait: return "TIME_WAIT";
    case TcpState::Close: return "CLOSE";
    default: return "?";
    }
}

TcpState tcp_next_state(TcpState s, Dir dir, uint8_t flags) noexcept {
    using S = TcpState;
    if (flags & kRst) {
        return S::Close;
    }
    if (dir == Dir::In) {
        if (flags & kSyn) {
            return s == S::Established ? S::Established : S::SynRecv;
        }
        if (flags & kFin) {
            switch (s) {
            case S::None: return S::Close;
            case S::SynRecv: return S::TimeWait;
            case S::Established: return S::CloseWait;  // the client closes first
            case S::FinWait: return S::TimeWait;       // the client answers the real's FIN
            default: return s;
            }
        }
        if (flags & kAck) {
            switch (s) {
            case S::None:
            case S::SynRecv: return S::Established;
            case S::LastAck: return S::Close;          // the client acks the real's FIN
            default: return s;
            }
        }
        return s;
    }
    if (flags & kSyn) {
        return s == S::Established ? S::Established : S::SynRecv;
    }
    if (flags & kFin) {
        switch (s) {
        case S::SynRecv: return S::TimeWait;
        case S::Established: return S::FinWait;        // the real closes first
        case S::CloseWait: return S::LastAck;          // the real answers the client's FIN
        default: return s;
        }
    }
    return s;
}

TcpState tcp_next_state_input_only(TcpState s, uint8_t flags) noexcept {
    using S = TcpState;
    if (flags & kRst) {
        return S::Close;
    }
    if (flags & kSyn) {
        return s == S::Established ? S::Established : S::SynRecv;
    }
    if (flags & kFin) {
        // The client's FIN: whoever closed first, the connection is ending. FIN_WAIT covers the
        // rest (the real's FIN and the last ACKs are not seen), with tcp_fin_timeout.
        switch (s) {
        case S::None: return S::Close;
        case S::SynRecv: return S::TimeWait;
        case S::Established: return S::FinWait;
        default: return s;
        }
    }
    if ((flags & kAck) && (s == S::None || s == S::SynRecv)) {
        return S::Established;  // the client acks the real's SYN-ACK it got directly
    }
    return s;
}

ConnTable::ConnTable(uint32_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {
    // Two index slots per connection, buckets at most half full on average.
    const uint32_t n_buckets = next_pow2(std::max<uint64_t>(2, uint64_t(capacity_) * 2 * 2 / 8));
    mask_ = n_buckets - 1;
    entries_ = alloc_array<Conn>(capacity_);
    buckets_ = alloc_array<Bucket>(n_buckets);
    free_ = alloc_array<uint32_t>(capacity_);
    for (uint32_t i = 0; i < capacity_; ++i) {
        free_[i] = capacity_ - 1 - i;  // pop hands out 0, 1, 2, ...
    }
    free_top_ = capacity_;
}

ConnTable::~ConnTable() {
    std::free(entries_);
    std::free(buckets_);
    std::free(free_);
}

uint32_t ConnTable::hash(const FlowKey& k) noexcept {
    uint32_t h = rte_hash_crc_4byte(k.src, 0x9e3779b9u);
    h = rte_hash_crc_4byte(k.dst, h);
    h = rte_hash_crc_4byte(uint32_t(k.sport) << 16 | k.dport, h);
    h = rte_hash_crc_4byte(k.proto, h);
    return h | 1;  // signature 0 marks an empty slot
}

uint32_t ConnTable::alt_bucket(uint32_t h) const noexcept {
    // The second candidate depends only on the hash, so lookup and unlink recompute it.
    return (h ^ (((h >> 16) | 1) * 0x5bd1e995u)) & mask_;
}

void ConnTable::prefetch(uint32_t h) const noexcept { rte_prefetch0(&buckets_[h & mask_]); }

bool ConnTable::matches(const FlowKey& k, uint32_t ref) const noexcept {
    const Conn& c = entries_[ref >> 1];
    if (c.proto != k.proto) {
        return false;
    }
    if ((ref & 1) == 0) {
        return c.client_ip == k.src && c.vip == k.dst && c.client_port == k.sport &&
               c.vport == k.dport;
    }
    return c.real_ip == k.src && c.client_ip == k.dst && c.real_port == k.sport &&
           c.client_port == k.dport;
}

uint32_t ConnTable::lookup(const FlowKey& k, uint32_t h, Dir& dir) const noexcept {
    const uint32_t cand[2] = {h & mask_, alt_bucket(h)};
    for (uint32_t b : cand) {
        const Bucket& bk = buckets_[b];
        for (int s = 0; s < 8; ++s) {
            if (bk.sig[s] == h && matches(k, bk.ref[s])) {
                dir = Dir(bk.ref[s] & 1);
                return bk.ref[s] >> 1;
            }
        }
    }
    return kNone;
}

bool ConnTable::link(uint32_t h, uint32_t ref) noexcept {
    const uint32_t cand[2] = {h & mask_, alt_bucket(h)};
    int best_b = -1, best_s = -1, best_free = -1;
    for (int i = 0; i < 2; ++i) {
        Bucket& bk = buckets_[cand[i]];
        int free_slots = 0, first = -1;
        for (int s = 0; s < 8; ++s) {
            if (bk.sig[s] == 0) {
                ++free_slots;
                if (first < 0) {
                    first = s;
                }
            }
        }
        if (free_slots > best_free) {
            best_free = free_slots;
            best_b = i;
            best_s = first;
        }
    }
    if (best_free <= 0) {
        return false;
    }
    Bucket& bk = buckets_[cand[best_b]];
    bk.sig[best_s] = h;
    bk.ref[best_s] = ref;
    return true;
}

void ConnTable::unlink(uint32_t h, uint32_t ref) noexcept {
    const uint32_t cand[2] = {h & mask_, alt_bucket(h)};
    for (uint32_t b : cand) {
        Bucket& bk = buckets_[b];
        for (int s = 0; s < 8; ++s) {
            if (bk.sig[s] == h && bk.ref[s] == ref) {
                bk.sig[s] = 0;
                return;
            }
        }
    }
}

bool ConnTable::set_real(uint32_t idx, rte_be32_t real_ip, rte_be16_t real_port) noexcept {
    Conn& e = entries_[idx];
    const rte_be32_t old_ip = e.real_ip;
    const rte_be16_t old_port = e.real_port;
    const uint32_t old_hash = e.hash_out;
    unlink(old_hash, idx * 2 + 1);
    e.real_ip = real_ip;
    e.real_port = real_port;
    e.hash_out = hash(out_key(e));
    if (!link(e.hash_out, idx * 2 + 1)) {
        e.real_ip = old_ip;
        e.real_port = old_port;
        e.hash_out = old_hash;
        link(old_hash, idx * 2 + 1);  // the slot it just left is free
        return false;
    }
    return true;
}

uint32_t ConnTable::insert(const Conn& c) noexcept {
    if (free_top_ == 0) {
        return kNone;
    }
    const uint32_t idx = free_[free_top_ - 1];
    Conn& e = entries_[idx];
    e = c;
    e.in_use = 1;
    e.hash_in = hash(in_key(e));
    e.hash_out = hash(out_key(e));
    if (!link(e.hash_in, idx * 2)) {
        e.in_use = 0;
        return kNone;
    }
    if (!link(e.hash_out, idx * 2 + 1)) {
        unlink(e.hash_in, idx * 2);
        e.in_use = 0;
        return kNone;
    }
    --free_top_;
    return idx;
}

void ConnTable::remove(uint32_t idx) noexcept {
    Conn& e = entries_[idx];
    if (!e.in_use) {
        return;
    }
    unlink(e.hash_in, idx * 2);
    unlink(e.hash_out, idx * 2 + 1);
    e.in_use = 0;
    free_[free_top_++] = idx;
}

}  // namespace lb::dp
