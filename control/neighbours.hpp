#pragma once
// The control thread's neighbour (ARP) policy over dp::NeighbourTable: which addresses get an
// entry, when a MAC is believed, when an entry is refreshed or reclaimed. Rules (Linux's with
// arp_accept=0, stricter on MAC changes):
// - Entries only for addresses lb needs: the next hops of reals and the gateways of routes
//   ("wanted": resolved ahead of traffic, never reclaimed), next hops a worker asks to resolve
//   (SlowMsg::Resolve), static neighbours, and on-link senders of ARP requests for lb's own
//   addresses and VIPs. Never for lb's own addresses or VIPs, 0, broadcast, multicast or an
//   interface's network or broadcast address; from ARP, never off-link.
// - A reply is taken only while lb's own probe for that address is outstanding (kAnswerMs);
//   any other reply is ignored (unsolicited) and creates nothing.
// - An existing resolved entry never takes a new MAC from a claim (a reply or a request that
//   names another MAC): the claim is refused (counted, logged) and lb verifies the entry with
//   unicast probes to the MAC it has. If that MAC answers, it stays; if it stays silent for
//   kUcastProbes probes, the entry stops being used and lb asks by broadcast: the MAC that
//   answers lb's probe is taken, and a change is logged (warn) and counted. A claim from
//   another port than the entry's (off-link there) is refused and counted, nothing verified.
// - Bounded: at most kMaxDynamic entries that are neither wanted nor static (the least useful
//   of a few after a clock hand is evicted for a newer one); the bookkeeping is one record per
//   table slot.
// - Reclaimed: a dynamic entry that no worker looked up for kStaleMs after its last
//   confirmation; an address that does not answer kBcastProbes broadcast probes.
// - Refresh probes only for entries in use (a worker looked them up since the last-but-one
//   sweep) and wanted ones; all probes share one token bucket (kProbeRate a second), wanted
//   entries first, so a flood cannot make lb send more than that.
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <rte_byteorder.h>
#include <rte_ether.h>

#include "dataplane/neighbour.hpp"
#include "dataplane/snapshot.hpp"

namespace lb::ctl {

struct NeighbourCounts {
    uint64_t learned = 0;          // entries created from requests or probe answers
    uint64_t mac_changes = 0;      // MACs changed after lb's own probe confirmed the new one
    uint64_t claims_refused = 0;   // replies/requests naming another MAC for an entry
    uint64_t unsolicited = 0;      // replies lb did not ask for, ignored
    uint64_t refused_senders = 0;  // own addresses, VIPs, off-link, broadcast... ignored
    uint64_t reclaimed = 0;        // entries removed: unused, or no answer
    uint64_t evicted = 0;          // dynamic entries removed to make room
    uint64_t full = 0;             // entries that could not be created
    uint64_t probes_sent = 0;      // ARP requests lb sent
    uint64_t probes_limited = 0;   // probes postponed by the rate limit
};

class Neighbours {
public:
    static constexpr uint64_t kProbeInterval = 1000;  // ms between probes of one address
    static constexpr uint64_t kAnswerMs = 2000;       // a probe's answer counts this long
    static constexpr uint64_t kRefreshMs = 20'000;    // re-confirm an entry in use after this
    static constexpr uint64_t kStaleMs = 30'000;      // reclaim an unused dynamic entry
    static constexpr uint64_t kSweepMs = 10'000;      // how often the used marks are collected
    static constexpr uint32_t kUcastProbes = 3;
    static constexpr uint32_t kBcastProbes = 3;
    static constexpr uint32_t kMaxDynamic = 4096;
    static constexpr uint32_t kProbeRate = 100;  // probes a second (and the burst)

    // Sends an ARP request for target on port: broadcast, or unicast to `to`.
    using Send = std::function<void(uint16_t port, rte_be32_t target, const rte_ether_addr* to)>;

    Neighbours(dp::NeighbourTable& table, Send send);

    // A worker saw an ARP request for one of lb's addresses or VIPs from `ip` (sha `mac`).
    void on_request(const dp::Snapshot& snap, uint16_t port, rte_be32_t ip,
                    const rte_ether_addr& mac, uint64_t now);
    // A worker saw an ARP reply addressed to lb's interface address from `ip`.
    void on_reply(const dp::Snapshot& snap, uint16_t port, rte_be32_t ip, const rte_ether_addr& mac,
                  uint64_t now);
    // A worker needs ip's MAC (a next hop it could not find).
    void on_resolve(const dp::Snapshot& snap, uint16_t port, rte_be32_t ip, uint64_t now);

    // The wanted set: the next hops of snap's reals and its gateways (replaces the last one).
    void want(const dp::Snapshot& snap, uint64_t now);
    struct Static {
        rte_be32_t ip;
        rte_ether_addr mac;
        uint16_t port;
    };
    // The static entries (replaces the last set).
    void set_statics(const std::vector<Static>& s);

    // Ageing, verification, probes, reclaim; call every ~100 ms.
    void tick(uint64_t now);

    const NeighbourCounts& counts() const noexcept { return counts_; }
    uint32_t entries() const noexcept { return table_.live(); }
    // The counts as name/value pairs (neigh_*), for lbctl --workers and the metrics.
    std::vector<std::pair<std::string, uint64_t>> count_pairs() const;

private:
    enum class Phase : uint8_t { Unused, Resolving, Reachable, Verifying };
    struct Info {
        uint64_t confirmed_ms = 0;
        uint64_t probed_ms = 0;  // last probe sent; 0: none outstanding
        uint64_t created_ms = 0;
        rte_ether_addr mac{};  // the MAC in use, or last known (known)
        uint16_t port = 0;
        Phase phase = Phase::Unused;
        uint8_t probes = 0;  // probes sent in this phase
        bool known = false;
        bool wanted = false;
        bool is_static = false;
        bool seen_use = false;  // a worker looked it up before the last sweep
    };

    bool acceptable(const dp::Snapshot& snap, uint16_t port, rte_be32_t ip, bool strict) const;
    // The slot for a new entry of ip (evicting a dynamic one if needed); -1 if none.
    int32_t make(rte_be32_t ip, bool dynamic, uint64_t now);
    bool dynamic(const Info& n) const { return !n.wanted && !n.is_static; }
    void take(uint32_t s, const rte_ether_addr& mac, uint64_t now);
    void refuse_claim(uint32_t s, const rte_ether_addr& mac, uint16_t port, const char* how,
                      uint64_t now);
    bool probe(uint32_t s, bool unicast, uint64_t now);
    void drop(uint32_t s);
    void step(uint32_t s, uint64_t now);
    void recount();
    bool in_use(uint32_t s) const;
    bool log_ok(uint64_t now);

    dp::NeighbourTable& table_;
    Send send_;
    std::unique_ptr<Info[]> info_;
    std::vector<uint32_t> wanted_, statics_;
    uint32_t dynamic_ = 0;  // live entries that are neither wanted nor static
    uint32_t hand_ = 0;     // eviction clock hand
    double tokens_ = kProbeRate;
    uint64_t tokens_ms_ = 0, sweep_ms_ = 0;
    uint64_t log_window_ms_ = 0;
    uint32_t logged_ = 0, suppressed_ = 0;
    NeighbourCounts counts_;
};

std::string mac_text(const rte_ether_addr& m);

}  // namespace lb::ctl
