#pragma once
// Per-worker connection table. One writer (the owning worker), no locks. Each connection is one
// 32-byte entry (two per cache line) indexed twice: by its inbound tuple (client -> VIP) and by
// its outbound tuple (real -> client), so both directions find it with one lookup. The index is
// a bucketised cuckoo hash: 64-byte buckets of 10 slots (16-bit signature + entry reference),
// two candidate buckets per key, the second derived from the first and the signature, so that
// an entry can be moved to its other bucket to make room. With the index at most 90 % full, a
// connection costs 32 bytes of entry plus at most 28.5 bytes of index (14.3 at best). A key goes
// to its first bucket unless that is full; each bucket counts the keys of its own that live in
// their second bucket (spilled), so a lookup reads the second bucket only when that count is not
// zero: a packet touches two cache lines, its first bucket and its entry. Lookups take a 64-bit
// hash, computed once per packet; prefetch() warms the first bucket and candidate() the entry a
// signature points at, so that a burst overlaps its cache misses.
// Expiry is a bounded sweep over a slice of the entries per call plus a check on every lookup.
#include <cstddef>
#include <cstdint>
#include <memory>

#include <rte_byteorder.h>

namespace lb::dp {

enum class Dir : uint8_t { In = 0, Out = 1 };

enum class TcpState : uint8_t {
    None,
    SynRecv,
    Established,
    FinWait,
    CloseWait,
    LastAck,
    TimeWait,
    Close,
    // A teardown the director has not seen taken yet (dataplane/teardown.cpp): a RST passed
    // from the client (RstClient) or the real (RstReal), a FIN from the client (FinClient). An
    // off-path RST or FIN with a wrong sequence number is dropped by its receiver, whose
    // connection lives on: the traffic that follows, or the answer to the director's probe,
    // tells which it was. A SYN in these states is not a new connection to schedule afresh.
    // (After Close, all three: `s > Close` tells a pending state.)
    RstClient,
    RstReal,
    FinClient,
    Count
};
const char* tcp_state_name(TcpState s) noexcept;

// IPVS-like tracking from the director's point of view: `dir` In is client -> real.
TcpState tcp_next_state(TcpState s, Dir dir, uint8_t tcp_flags) noexcept;

// The same for tun and dr connections, where the director sees only the client's packets.
TcpState tcp_next_state_input_only(TcpState s, uint8_t tcp_flags) noexcept;
// Either, by what the director sees of the connection: both directions (NAT, or a real's
// packet) or the client's only (tun, dr).
inline TcpState tcp_next_state_seen(TcpState s, Dir dir, uint8_t tcp_flags,
                                    bool both_ways) noexcept {
    return both_ways ? tcp_next_state(s, dir, tcp_flags) : tcp_next_state_input_only(s, tcp_flags);
}

struct FlowKey {
    rte_be32_t src = 0, dst = 0;
    rte_be16_t sport = 0, dport = 0;
    uint8_t proto = 0;
};
static_assert(offsetof(FlowKey, dst) == 4 && offsetof(FlowKey, dport) == 10);

// A connection, or a persistence template (IPVS's): proto has kTemplateProto set, client_ip is
// the client's address under the service's persistence mask, client_port is 0, and `tmpl`
// counts the connections it controls. No packet carries such a proto, so a template's keys
// never match traffic.
inline constexpr uint8_t kTemplateProto = 0x80;

struct Conn {
    // In this order so that both keys are contiguous: the outbound tuple's addresses (real,
    // client) and ports start at real_ip and real_port, the inbound's (client, VIP) at
    // client_ip and client_port. Lookups compare 8 + 4 bytes.
    rte_be32_t real_ip, client_ip, vip;
    rte_be16_t real_port, client_port, vport;
    uint8_t proto;
    uint8_t state : 4;    // TcpState for TCP; unused for UDP
    uint8_t forward : 2;  // Forward
    uint8_t in_use : 1;
    uint16_t svc_slot, real_slot;
    uint32_t expire;  // ms clock: the entry is dead once now - expire >= 0 (wrap-safe)
    uint32_t tmpl;    // connection: index of its template or kNone; template: connections it
                      // controls; a free entry: the next free one
};
static_assert(sizeof(Conn) == 32, "two entries per cache line");
static_assert(offsetof(Conn, client_ip) == 4 && offsetof(Conn, vip) == 8 &&
              offsetof(Conn, real_port) == 12 && offsetof(Conn, client_port) == 14 &&
              offsetof(Conn, vport) == 16 && offsetof(Conn, proto) == 18);
static_assert(uint8_t(TcpState::Count) <= 16);

inline bool is_template(const Conn& c) noexcept { return (c.proto & kTemplateProto) != 0; }

inline FlowKey in_key(const Conn& c) noexcept {
    return {c.client_ip, c.vip, c.client_port, c.vport, c.proto};
}
inline FlowKey out_key(const Conn& c) noexcept {
    return {c.real_ip, c.client_ip, c.real_port, c.client_port, c.proto};
}

inline bool expired(uint32_t expire, uint32_t now) noexcept { return int32_t(now - expire) >= 0; }

class ConnTable {
public:
    static constexpr uint32_t kNone = UINT32_MAX;

    explicit ConnTable(uint32_t capacity);
    ~ConnTable();
    ConnTable(const ConnTable&) = delete;
    ConnTable& operator=(const ConnTable&) = delete;

    // Low 32 bits: the first candidate bucket; high 16: the signature.
    static uint64_t hash(const FlowKey& k) noexcept;

    uint32_t capacity() const noexcept { return capacity_; }
    uint32_t size() const noexcept { return size_; }
    // Bytes held: entries and index.
    size_t memory_bytes() const noexcept;
    size_t buckets() const noexcept { return size_t(mask_) + 1; }

    // Warms h's first bucket.
    void prefetch(uint64_t h) const noexcept;
    // Warms both of h's buckets: for an insert or a removal, whose key may well be (or go) in
    // its second bucket when the index is loaded.
    void prefetch_both(uint64_t h) const noexcept;
    // Once the first bucket is likely in cache: its first index slot with h's signature, as an
    // entry reference (index * 2 + direction), its entry prefetched; kNone when no slot has it
    // and no key of this bucket spilled (then the key is not in the table, as long as nothing is
    // inserted); kUnknown when the second bucket must be looked at too (it is prefetched).
    static constexpr uint32_t kUnknown = kNone - 1;
    uint32_t candidate(uint64_t h) const noexcept;
    // After candidate() said kUnknown: the same over the second bucket; kNone when it has no
    // slot with the signature either.
    uint32_t candidate_second(uint64_t h) const noexcept;
    // Whether the live entry of ref has key k in ref's direction.
    bool verify(const FlowKey& k, uint32_t ref) const noexcept {
        return entries_[ref >> 1].in_use && matches(k, ref);
    }

    // Finds the entry whose inbound or outbound tuple is `k`; kNone when none matches.
    uint32_t lookup(const FlowKey& k, uint64_t h, Dir& dir) const noexcept;

    // Inserts `c` (client/vip/real fields and expire set). Returns its index, or kNone when the
    // table is full or a key finds no room even after moving others (practically never below
    // a full table).
    uint32_t insert(const Conn& c) noexcept { return insert(c, hash(in_key(c)), hash(out_key(c))); }
    // The same with both keys' hashes already known.
    uint32_t insert(const Conn& c, uint64_t h_in, uint64_t h_out) noexcept;

    void remove(uint32_t idx) noexcept;
    // The same with the entry's keys' hashes already known.
    void remove(uint32_t idx, uint64_t h_in, uint64_t h_out) noexcept;

    Conn& at(uint32_t idx) noexcept { return entries_[idx]; }
    const Conn& at(uint32_t idx) const noexcept { return entries_[idx]; }

    // Looks at up to `budget` entries from where the previous call stopped; for each expired
    // one calls on_expire(conn), which returns true to have it removed (or re-arms it and
    // returns false). Returns the number removed.
    // The removals go in batches: the expired entries' four buckets are prefetched together
    // before any is unlinked, so that their cache misses overlap.
    template <class F>
    uint32_t sweep(uint32_t now, uint32_t budget, F&& on_expire) noexcept {
        constexpr uint32_t kBatch = 16;
        uint32_t idxs[kBatch];
        uint64_t h_in[kBatch], h_out[kBatch];
        uint32_t n = 0, removed = 0;
        budget = budget < capacity_ ? budget : capacity_;  // an entry at most once per call
        auto flush = [&] {
            for (uint32_t k = 0; k < n; ++k) {
                remove(idxs[k], h_in[k], h_out[k]);
            }
            removed += n;
            n = 0;
        };
        for (uint32_t i = 0; i < budget; ++i) {
            const uint32_t idx = sweep_cursor_;
            sweep_cursor_ = sweep_cursor_ + 1 == capacity_ ? 0 : sweep_cursor_ + 1;
            Conn& c = entries_[idx];
            if (c.in_use && expired(c.expire, now) && on_expire(c)) {
                idxs[n] = idx;
                h_in[n] = hash(in_key(c));
                h_out[n] = hash(out_key(c));
                prefetch_both(h_in[n]);
                prefetch_both(h_out[n]);
                if (++n == kBatch) {
                    flush();
                }
            }
        }
        flush();
        return removed;
    }

    // Points entry idx at another real (a template whose real went away), keeping its index.
    // False (and nothing changed) when the new outbound key finds no room.
    bool set_real(uint32_t idx, rte_be32_t real_ip, rte_be16_t real_port) noexcept;


    // Index slots moved to their other bucket to make room (cuckoo displacements), so far.
    uint64_t moves() const noexcept { return moves_; }
    // Tests: every index slot refers to a live entry whose key hashes to that slot's bucket (its
    // first, or its second with the slot's alt bit set), and every bucket's spilled count is the
    // number of its keys in their second bucket. False at the first inconsistency.
    bool check_index() const noexcept;

    static constexpr int kSlots = 10;

private:
    struct alignas(64) Bucket {
        uint16_t sig[kSlots];  // 0: free slot
        uint32_t ref[kSlots];  // entry index * 2 + direction
        uint16_t alt;          // bit s: slot s holds a key whose first bucket is the other one
        uint16_t spilled;      // keys whose first bucket this is, in their second; sticks at max
    };
    static constexpr uint16_t kSpilledMax = UINT16_MAX;
    static_assert(sizeof(Bucket) == 64);

    static uint16_t sig_of(uint64_t h) noexcept {
        const auto s = uint16_t(h >> 48);
        return s == 0 ? 1 : s;
    }
    // The other candidate of a key with signature sig in bucket b (an involution).
    uint32_t other_bucket(uint32_t b, uint16_t sig) const noexcept {
        return (b ^ ((uint32_t(sig) * 0x5bd1e995u) | 1u)) & mask_;
    }
    // Bit 2*s set for each slot s of bk holding sig.
    static uint32_t match_mask(const Bucket& bk, uint16_t sig) noexcept;
    // The first free slot of bk; -1 when it is full.
    static int free_slot(const Bucket& bk) noexcept;
    void spill(uint32_t b, int d) noexcept {
        uint16_t& n = buckets_[b].spilled;
        if (n != kSpilledMax) {  // saturated: stays (the second bucket is always read)
            n = uint16_t(n + d);
        }
    }
    // Puts (sig, ref) into a free slot of bucket b, one of the key's buckets b0 and b1; false
    // when b is full.
    bool place(uint32_t b, uint32_t b0, uint32_t b1, uint16_t sig, uint32_t ref) noexcept;
    bool link(uint64_t h, uint32_t ref) noexcept;
    [[gnu::noinline]] bool link_after_space(uint32_t b0, uint32_t b1, uint16_t sig,
                                            uint32_t ref) noexcept;
    bool make_space(uint32_t b0, uint32_t b1) noexcept;
    void unlink(uint64_t h, uint32_t ref) noexcept;
    bool matches(const FlowKey& k, uint32_t ref) const noexcept;

    uint32_t capacity_;
    uint32_t mask_ = 0;
    Conn* entries_ = nullptr;
    Bucket* buckets_ = nullptr;
    size_t entries_bytes_ = 0, buckets_bytes_ = 0;
    uint32_t free_head_ = kNone;  // free entries chained through Conn::tmpl
    uint32_t size_ = 0;
    uint32_t sweep_cursor_ = 0;
    uint64_t moves_ = 0;
};

}  // namespace lb::dp
