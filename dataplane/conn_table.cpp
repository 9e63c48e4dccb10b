#include "dataplane/conn_table.hpp"

#include "dataplane/types.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include <sys/mman.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <rte_hash_crc.h>
#include <rte_prefetch.h>

namespace lb::dp {

namespace {


// Big arrays come from anonymous mappings backed by transparent huge pages where the kernel
// allows it (a table of millions of entries would otherwise miss the TLB on every lookup), and
// are touched once here so that no page fault happens on the data path.
template <class T>
T* alloc_big(size_t n, size_t& bytes) {
    constexpr size_t kHuge = size_t(2) << 20;
    bytes = std::max<size_t>(64, (n * sizeof(T) + 63) / 64 * 64);
    if (bytes >= kHuge) {
        bytes = (bytes + kHuge - 1) / kHuge * kHuge;
    }
    // Huge-page-sized arrays start on a huge page boundary: map more, unmap the slack.
    const size_t slack = bytes >= kHuge ? kHuge : 0;
    void* m = ::mmap(nullptr, bytes + slack, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (m == MAP_FAILED) {
        throw std::bad_alloc();
    }
    auto* p = static_cast<char*>(m);
    if (slack != 0) {
        const auto a = reinterpret_cast<uintptr_t>(m);
        const size_t head = ((a + kHuge - 1) & ~(kHuge - 1)) - a;
        if (head != 0) {
            ::munmap(m, head);
        }
        if (slack - head != 0) {
            ::munmap(p + head + bytes, slack - head);
        }
        p += head;
        ::madvise(p, bytes, MADV_HUGEPAGE);  // advice only: 4 KiB pages still work
    }
    std::memset(p, 0, bytes);
    return reinterpret_cast<T*>(p);
}

template <class T>
void free_big(T* p, size_t bytes) noexcept {
    if (p != nullptr) {
        ::munmap(p, bytes);
    }
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
    case TcpState::RstClient: return "RST_CLIENT";
    case TcpState::RstReal: return "RST_REAL";
    case TcpState::FinClient: return "FIN_CLIENT";
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
    // Two index slots per connection; the index at most 90 % full when the table is.
    const uint64_t slots = uint64_t(capacity_) * 2;
    const uint32_t n_buckets = next_pow2(std::max<uint64_t>(2, (slots * 10 + 9 * kSlots - 1) /
                                                                   (9 * kSlots)));
    mask_ = n_buckets - 1;
    entries_ = alloc_big<Conn>(capacity_, entries_bytes_);
    buckets_ = alloc_big<Bucket>(n_buckets, buckets_bytes_);
    for (uint32_t i = 0; i < capacity_; ++i) {
        entries_[i].tmpl = i + 1 == capacity_ ? kNone : i + 1;  // hands out 0, 1, 2, ...
    }
    free_head_ = 0;
}

ConnTable::~ConnTable() {
    free_big(entries_, entries_bytes_);
    free_big(buckets_, buckets_bytes_);
}

size_t ConnTable::memory_bytes() const noexcept { return entries_bytes_ + buckets_bytes_; }

uint64_t ConnTable::hash(const FlowKey& k) noexcept {
    // Two CRC32-C chains with different seeds over the 13 bytes of the key: the low half picks
    // the bucket, the high half gives the signature.
    const uint64_t a = uint64_t(k.src) | uint64_t(k.dst) << 32;
    const uint64_t b = uint64_t(k.sport) | uint64_t(k.dport) << 16 | uint64_t(k.proto) << 32;
    const uint32_t lo = rte_hash_crc_8byte(b, rte_hash_crc_8byte(a, 0x9e3779b9u));
    const uint32_t hi = rte_hash_crc_8byte(b, rte_hash_crc_8byte(a, 0x85ebca6bu));
    return uint64_t(hi) << 32 | lo;
}

uint32_t ConnTable::match_mask(const Bucket& bk, uint16_t sig) noexcept {
#if defined(__SSE2__)
    const __m128i want = _mm_set1_epi16(int16_t(sig));
    const __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&bk.sig[0]));
    const __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&bk.sig[2]));
    const auto m_lo = uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi16(lo, want)));
    const auto m_hi = uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi16(hi, want)));
    return (m_lo | m_hi << 4) & 0x55555u;  // slot s at bit 2*s
#else
    uint32_t m = 0;
    for (int s = 0; s < kSlots; ++s) {
        m |= uint32_t(bk.sig[s] == sig) << (2 * s);
    }
    return m;
#endif
}

void ConnTable::prefetch(uint64_t h) const noexcept {
    rte_prefetch0(&buckets_[uint32_t(h) & mask_]);
}

void ConnTable::prefetch_both(uint64_t h) const noexcept {
    const auto b0 = uint32_t(h) & mask_;
    rte_prefetch0(&buckets_[b0]);
    rte_prefetch0(&buckets_[other_bucket(b0, sig_of(h))]);
}

uint32_t ConnTable::candidate(uint64_t h) const noexcept {
    const uint16_t sig = sig_of(h);
    const auto b0 = uint32_t(h) & mask_;
    const Bucket& bk = buckets_[b0];
    const uint32_t m = match_mask(bk, sig);
    if (m != 0) {
        const uint32_t ref = bk.ref[__builtin_ctz(m) / 2];
        rte_prefetch0(&entries_[ref >> 1]);
        return ref;
    }
    if (bk.spilled == 0) {
        return kNone;
    }
    rte_prefetch0(&buckets_[other_bucket(b0, sig)]);
    return kUnknown;
}

uint32_t ConnTable::candidate_second(uint64_t h) const noexcept {
    const uint16_t sig = sig_of(h);
    const Bucket& bk = buckets_[other_bucket(uint32_t(h) & mask_, sig)];
    const uint32_t m = match_mask(bk, sig);
    if (m == 0) {
        return kNone;
    }
    const uint32_t ref = bk.ref[__builtin_ctz(m) / 2];
    rte_prefetch0(&entries_[ref >> 1]);
    return ref;
}

bool ConnTable::matches(const FlowKey& k, uint32_t ref) const noexcept {
    // Inbound (ref even): client, VIP at offset 4, ports at 14; outbound: real, client at 0,
    // ports at 12 (see Conn).
    const auto* c = reinterpret_cast<const uint8_t*>(&entries_[ref >> 1]);
    const uint32_t out = ref & 1;
    uint64_t addrs, want_addrs;
    uint32_t ports, want_ports;
    std::memcpy(&addrs, c + 4 - 4 * out, 8);
    std::memcpy(&ports, c + 14 - 2 * out, 4);
    std::memcpy(&want_addrs, &k.src, 8);
    std::memcpy(&want_ports, &k.sport, 4);
    return ((addrs ^ want_addrs) | (ports ^ want_ports) |
            uint32_t(c[offsetof(Conn, proto)] ^ k.proto)) == 0;
}

uint32_t ConnTable::lookup(const FlowKey& k, uint64_t h, Dir& dir) const noexcept {
    const uint16_t sig = sig_of(h);
    const auto b0 = uint32_t(h) & mask_;
    const uint32_t cand[2] = {b0, other_bucket(b0, sig)};
    for (uint32_t b : cand) {
        const Bucket& bk = buckets_[b];
        for (uint32_t m = match_mask(bk, sig); m != 0; m &= m - 1) {
            const uint32_t ref = bk.ref[__builtin_ctz(m) / 2];
            if (matches(k, ref)) {
                dir = Dir(ref & 1);
                return ref >> 1;
            }
        }
        if (buckets_[b0].spilled == 0) {
            break;  // none of b0's keys is in the second bucket
        }
    }
    return kNone;
}

int ConnTable::free_slot(const Bucket& bk) noexcept {
    // A free slot has signature 0 (sig_of never gives 0): the first one, by the same compare
    // as a lookup's (a scan of ten slots cost a nearly full table's insert about 30
    // instructions a bucket).
    const uint32_t m = match_mask(bk, 0);
    return m != 0 ? __builtin_ctz(m) / 2 : -1;
}

[[gnu::always_inline]] inline bool ConnTable::place(uint32_t b, uint32_t b0, uint32_t b1, uint16_t sig, uint32_t ref) noexcept {
    Bucket& bk = buckets_[b];
    const int s = free_slot(bk);
    if (s < 0) {
        return false;
    }
    bk.sig[s] = sig;
    bk.ref[s] = ref;
    if (b == b1) {
        bk.alt = uint16_t(bk.alt | 1u << s);
        spill(b0, +1);
    }
    return true;
}

// The first bucket, else the second, else make room by moving keys and try both again. The two
// tries stay in the caller; the search for room is a call of its own (about 6 % of inserts into
// a nearly full table need it), so that the common case saves and restores no registers for it.
[[gnu::always_inline]] inline bool ConnTable::link(uint64_t h, uint32_t ref) noexcept {
    const uint16_t sig = sig_of(h);
    const auto b0 = uint32_t(h) & mask_;
    const uint32_t b1 = other_bucket(b0, sig);
    return place(b0, b0, b1, sig, ref) || place(b1, b0, b1, sig, ref) ||
           link_after_space(b0, b1, sig, ref);
}

bool ConnTable::link_after_space(uint32_t b0, uint32_t b1, uint16_t sig, uint32_t ref) noexcept {
    return make_space(b0, b1) && (place(b0, b0, b1, sig, ref) || place(b1, b0, b1, sig, ref));
}

// Both candidates are full: a breadth-first search, over the buckets their entries could move
// to, for a free slot within kDepth moves; then the entries along that path move one step each
// (the last one first), which frees a slot in b0 or b1. Bounded: at most kNodes buckets looked at.
bool ConnTable::make_space(uint32_t b0, uint32_t b1) noexcept {
    constexpr int kNodes = 2 + 2 * kSlots + 2 * kSlots * kSlots;  // three levels deep
    struct Node {
        uint32_t bucket;
        int16_t parent;  // node index; -1 for b0 and b1
        int8_t slot;     // the slot of parent's bucket whose entry moves here
    };
    Node q[kNodes];
    int n = 0;
    q[n++] = {b0, -1, -1};
    q[n++] = {b1, -1, -1};
    for (int head = 0; head < n; ++head) {
        const Bucket& bk = buckets_[q[head].bucket];
        for (int s = 0; s < kSlots && n < kNodes; ++s) {
            const uint32_t to = other_bucket(q[head].bucket, bk.sig[s]);
            bool on_path = false;  // a bucket twice on one path would move an entry twice
            for (int a = head; a >= 0 && !on_path; a = q[a].parent) {
                on_path = q[a].bucket == to;
            }
            if (on_path) {
                continue;
            }
            const int free = free_slot(buckets_[to]);
            if (free >= 0) {
                // Move slot s of q[head] into `to`, then each parent's slot one step down.
                int node = head, slot = s;
                uint32_t dst = to;
                int dst_slot = free;
                for (;;) {
                    Bucket& from = buckets_[q[node].bucket];
                    Bucket& into = buckets_[dst];
                    into.sig[dst_slot] = from.sig[slot];
                    into.ref[dst_slot] = from.ref[slot];
                    from.sig[slot] = 0;
                    // From its first bucket to its second, or back home.
                    const uint16_t was_alt = uint16_t(from.alt >> slot & 1u);
                    from.alt = uint16_t(from.alt & ~(1u << slot));
                    if (was_alt != 0) {
                        spill(dst, -1);
                    } else {
                        into.alt = uint16_t(into.alt | 1u << dst_slot);
                        spill(q[node].bucket, +1);
                    }
                    ++moves_;
                    if (q[node].parent < 0) {
                        return true;
                    }
                    dst = q[node].bucket;
                    dst_slot = slot;
                    slot = q[node].slot;
                    node = q[node].parent;
                }
            }
            q[n++] = {to, int16_t(head), int8_t(s)};
        }
    }
    return false;
}

void ConnTable::unlink(uint64_t h, uint32_t ref) noexcept {
    const uint16_t sig = sig_of(h);
    const auto b0 = uint32_t(h) & mask_;
    const uint32_t cand[2] = {b0, other_bucket(b0, sig)};
    for (uint32_t b : cand) {
        Bucket& bk = buckets_[b];
        for (int s = 0; s < kSlots; ++s) {
            if (bk.sig[s] == sig && bk.ref[s] == ref) {
                bk.sig[s] = 0;
                if ((bk.alt >> s & 1u) != 0) {
                    bk.alt = uint16_t(bk.alt & ~(1u << s));
                    spill(b0, -1);
                }
                return;
            }
        }
    }
}

bool ConnTable::check_index() const noexcept {
    std::unique_ptr<uint32_t[]> spilled(new (std::nothrow) uint32_t[size_t(mask_) + 1]());
    if (!spilled) {
        return false;
    }
    uint64_t refs = 0;
    for (uint32_t b = 0; b <= mask_; ++b) {
        const Bucket& bk = buckets_[b];
        for (int s = 0; s < kSlots; ++s) {
            const bool alt = (bk.alt >> s & 1u) != 0;
            if (bk.sig[s] == 0) {
                if (alt) {
                    return false;  // a free slot keeps no alt bit
                }
                continue;
            }
            const uint32_t ref = bk.ref[s];
            if ((ref >> 1) >= capacity_ || !entries_[ref >> 1].in_use) {
                return false;
            }
            const Conn& c = entries_[ref >> 1];
            const uint64_t h = hash((ref & 1) != 0 ? out_key(c) : in_key(c));
            const auto b0 = uint32_t(h) & mask_;
            if (sig_of(h) != bk.sig[s] || (alt ? other_bucket(b0, bk.sig[s]) : b0) != b) {
                return false;
            }
            spilled[b0] += alt ? 1 : 0;
            ++refs;
        }
    }
    for (uint32_t b = 0; b <= mask_; ++b) {
        const uint16_t n = buckets_[b].spilled;
        if (n != kSpilledMax && n != spilled[b]) {
            return false;
        }
    }
    return refs == uint64_t(size_) * 2;
}

bool ConnTable::set_real(uint32_t idx, rte_be32_t real_ip, rte_be16_t real_port) noexcept {
    Conn& e = entries_[idx];
    const rte_be32_t old_ip = e.real_ip;
    const rte_be16_t old_port = e.real_port;
    const uint64_t old_hash = hash(out_key(e));
    unlink(old_hash, idx * 2 + 1);
    e.real_ip = real_ip;
    e.real_port = real_port;
    if (!link(hash(out_key(e)), idx * 2 + 1)) {
        e.real_ip = old_ip;
        e.real_port = old_port;
        link(old_hash, idx * 2 + 1);  // the slot it just left is free
        return false;
    }
    return true;
}

uint32_t ConnTable::insert(const Conn& c, uint64_t h_in, uint64_t h_out) noexcept {
    if (free_head_ == kNone) {
        return kNone;
    }
    const uint32_t idx = free_head_;
    Conn& e = entries_[idx];
    const uint32_t next = e.tmpl;
    e = c;
    e.in_use = 1;
    if (!link(h_in, idx * 2)) {
        e.in_use = 0;
        e.tmpl = next;
        return kNone;
    }
    if (!link(h_out, idx * 2 + 1)) {
        unlink(h_in, idx * 2);
        e.in_use = 0;
        e.tmpl = next;
        return kNone;
    }
    free_head_ = next;
    ++size_;
    return idx;
}

void ConnTable::remove(uint32_t idx) noexcept {
    const Conn& e = entries_[idx];
    if (e.in_use) {
        remove(idx, hash(in_key(e)), hash(out_key(e)));
    }
}

void ConnTable::remove(uint32_t idx, uint64_t h_in, uint64_t h_out) noexcept {
    Conn& e = entries_[idx];
    if (!e.in_use) {
        return;
    }
    unlink(h_in, idx * 2);
    unlink(h_out, idx * 2 + 1);
    e.in_use = 0;
    e.tmpl = free_head_;
    free_head_ = idx;
    --size_;
}

}  // namespace lb::dp
