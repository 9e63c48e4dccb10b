#pragma once
// Per-worker connection table. One writer (the owning worker), no locks. Each connection is one
// entry indexed twice: by its inbound tuple (client -> VIP) and by its outbound tuple
// (real -> client), so both directions find it with one lookup. The index is a bucketised hash
// (8 slots of signature + reference per 64-byte bucket, two candidate buckets per key). Expiry
// is a bounded sweep over a slice of the entries per call plus a check on every lookup.
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
    Count
};
const char* tcp_state_name(TcpState s) noexcept;

// IPVS-like tracking from the director's point of view: `dir` In is client -> real.
TcpState tcp_next_state(TcpState s, Dir dir, uint8_t tcp_flags) noexcept;

// The same for tun and dr connections, where the director sees only the client's packets.
TcpState tcp_next_state_input_only(TcpState s, uint8_t tcp_flags) noexcept;

struct FlowKey {
    rte_be32_t src = 0, dst = 0;
    rte_be16_t sport = 0, dport = 0;
    uint8_t proto = 0;
};

// A connection, or a persistence template (IPVS's): proto has kTemplateProto set, client_ip is
// the client's address under the service's persistence mask, client_port is 0, and `tmpl`
// counts the connections it controls. No packet carries such a proto, so a template's keys
// never match traffic.
inline constexpr uint8_t kTemplateProto = 0x80;

struct Conn {
    rte_be32_t client_ip, vip, real_ip;
    rte_be16_t client_port, vport, real_port;
    uint8_t proto;
    uint8_t state;    // TcpState for TCP; unused for UDP
    uint8_t forward;  // Forward
    uint8_t in_use;
    uint16_t svc_slot, real_slot;
    uint32_t expire;  // ms clock: the entry is dead once now - expire >= 0 (wrap-safe)
    uint32_t hash_in, hash_out;
    uint32_t tmpl;    // connection: index of its template or kNone; template: connections it controls
};
static_assert(sizeof(Conn) <= 48);

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

    static uint32_t hash(const FlowKey& k) noexcept;

    uint32_t capacity() const noexcept { return capacity_; }
    uint32_t size() const noexcept { return capacity_ - free_top_; }

    void prefetch(uint32_t h) const noexcept;

    // Finds the live entry whose inbound or outbound tuple is `k`; kNone when none matches.
    uint32_t lookup(const FlowKey& k, uint32_t h, Dir& dir) const noexcept;

    // Inserts `c` (client/vip/real fields and expire set). Returns its index, or kNone when the
    // table or both candidate buckets of a key are full.
    uint32_t insert(const Conn& c) noexcept;

    void remove(uint32_t idx) noexcept;

    Conn& at(uint32_t idx) noexcept { return entries_[idx]; }
    const Conn& at(uint32_t idx) const noexcept { return entries_[idx]; }

    // Looks at up to `budget` entries from where the previous call stopped; for each expired
    // one calls on_expire(conn), which returns true to have it removed (or re-arms it and
    // returns false). Returns the number removed.
    template <class F>
    uint32_t sweep(uint32_t now, uint32_t budget, F&& on_expire) noexcept {
        uint32_t removed = 0;
        for (uint32_t i = 0; i < budget; ++i) {
            const uint32_t idx = sweep_cursor_;
            sweep_cursor_ = sweep_cursor_ + 1 == capacity_ ? 0 : sweep_cursor_ + 1;
            Conn& c = entries_[idx];
            if (c.in_use && expired(c.expire, now) && on_expire(c)) {
                remove(idx);
                ++removed;
            }
        }
        return removed;
    }

    // Points entry idx at another real (a template whose real went away), keeping its index.
    // False (and nothing changed) when the new outbound key finds no room.
    bool set_real(uint32_t idx, rte_be32_t real_ip, rte_be16_t real_port) noexcept;

private:
    struct alignas(64) Bucket {
        uint32_t sig[8];
        uint32_t ref[8];  // entry index * 2 + direction
    };

    uint32_t alt_bucket(uint32_t h) const noexcept;
    bool link(uint32_t h, uint32_t ref) noexcept;
    void unlink(uint32_t h, uint32_t ref) noexcept;
    bool matches(const FlowKey& k, uint32_t ref) const noexcept;

    uint32_t capacity_;
    uint32_t mask_;
    Conn* entries_ = nullptr;
    Bucket* buckets_ = nullptr;
    uint32_t* free_ = nullptr;  // stack of free entry indices
    uint32_t free_top_ = 0;
    uint32_t sweep_cursor_ = 0;
};

}  // namespace lb::dp
