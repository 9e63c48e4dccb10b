#pragma once
// Shared vocabulary of the data path: limits, drop reasons, forward methods, per-worker counters.
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <rte_common.h>

namespace lb::dp {

inline constexpr uint16_t kBurst = 32;

// TCP header flags.
inline constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
inline constexpr uint16_t kMaxPorts = 16;
inline constexpr uint16_t kMaxWorkers = 64;
inline constexpr uint32_t kMaxServices = 1024;
inline constexpr uint32_t kMaxReals = 16384;
// Static routes a config may hold (besides the connected subnets): the route table's groups
// (RouteTable::kMaxGroups) fit them with room to spare.
inline constexpr uint32_t kMaxRoutes = 4096;

enum class Forward : uint8_t { Nat, Tunnel, Route };
// Linux's rp_filter for an interface: strict (the route back to a source leaves by the port it
// came in on), loose (there is a route back), off.
enum class RpFilter : uint8_t { Off, Loose, Strict };
inline constexpr std::array<std::string_view, 3> kRpFilterNames = {"off", "loose", "strict"};
// IPVS's schedulers (lblc/lblcr/twos are not implemented).
enum class SchedKind : uint8_t { Rr, Wrr, Lc, Wlc, Sed, Nq, Sh, Dh, Mh, Fo, Ovf };
inline constexpr std::array<std::string_view, 11> kSchedNames = {
    "rr", "wrr", "lc", "wlc", "sed", "nq", "sh", "dh", "mh", "fo", "ovf"};

// ipvsadm --sched-flags: flag-1 is sh-fallback / mh-fallback, flag-2 sh-port / mh-port.
inline constexpr uint8_t kSchedFallback = 1;
inline constexpr uint8_t kSchedPort = 2;

// Every packet the director does not send on is counted under exactly one reason.
enum class Drop : uint8_t {
    Malformed,       // truncated or inconsistent headers, bad IPv4 checksum
    NotForUs,        // wrong destination MAC, multicast, broadcast that is not ARP, not our address
    Unsupported,     // VLAN, IPv6 and other ethertypes, IP options-bearing protocols we do not serve
    Fragment,        // a later fragment whose first was not seen (or expired); non-TCP/UDP fragments
    TtlExceeded,     // forwarded packet with TTL <= 1
    NoService,       // addressed to a VIP but no service on that port/protocol
    NoReal,          // service has no real with weight > 0
    NoConnection,    // TCP non-SYN with no connection, or return traffic with no connection
    TableFull,       // connection table full: new connection refused
    NoRoute,         // no route to the destination
    NoNeighbour,     // next hop MAC not resolved yet (resolution requested)
    IcmpUnmatched,   // ICMP error quoting nothing we track, or ICMP type we do not handle
    ArpIgnored,      // ARP not for one of our addresses
    RedirectFull,    // SPSC ring to the owning worker full
    TxFull,          // the port's TX queue refused the packet (or its full staging list had none)
    SlowPathFull,    // message ring to the control thread full (packet still handled)
    NoMbuf,          // no mbuf for a fragment (or no headroom for a tunnel header)
    TooBig,          // too big for the egress MTU, DF set, and no ICMP may answer it (an ICMP error);
                     // or more fragments than one datagram may become (Worker::kMaxFragments)
    Martian,         // impossible source: ours, a VIP, 0/8, 127/8, multicast or broadcast, a
                     // connected subnet's network or broadcast address, or one rp_filter refuses
    Count
};

inline constexpr std::array<std::string_view, size_t(Drop::Count)> kDropNames = {
    "malformed",    "not_for_us",    "unsupported", "fragment",   "ttl_exceeded",
    "no_service",   "no_real",       "no_connection", "table_full", "no_route",
    "no_neighbour", "icmp_unmatched", "arp_ignored", "redirect_full", "tx_full",
    "slowpath_full", "no_mbuf",       "too_big",     "martian"};

// A counter written by one worker and read by the control thread. Relaxed atomics compile to
// plain loads and stores on x86 and keep the cross-thread read well-defined.
struct Counter {
    std::atomic<uint64_t> v{0};
    void add(uint64_t n) noexcept { v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    void sub(uint64_t n) noexcept { v.store(v.load(std::memory_order_relaxed) - n, std::memory_order_relaxed); }
    uint64_t get() const noexcept { return v.load(std::memory_order_relaxed); }
};

// Traffic counters of one service or one real, per worker. Like IPVS: "in" is client -> real,
// "out" is real -> client, bytes are IP bytes.
struct TrafficCounters {
    Counter conns, in_pkts, out_pkts, in_bytes, out_bytes;
    Counter active, inactive;  // connections in ESTABLISHED / in any other state (gauges)
    Counter persist;           // persistence templates pointing at this real (gauge)
};

struct alignas(RTE_CACHE_LINE_SIZE) WorkerCounters {
    std::array<Counter, size_t(Drop::Count)> drops{};
    Counter rx, tx, redirected_out, redirected_in, conns_created, conns_expired;
    Counter arp_replies, icmp_echo_replies, icmp_errors_translated;
    Counter tunnel_encapsulated;  // packets sent IP-in-IP (a fragmented one counts once)
    Counter tunnel_fragments;     // outer fragments sent for tunnel packets over the egress MTU
    Counter frag_needed_sent;     // ICMP fragmentation-needed sent (DF, over a tunnel/NAT MTU)
    Counter nat_fragments;        // fragments sent for NAT packets (without DF) over the egress MTU
    Counter fragments_forwarded;  // later fragments sent after their first one
    Counter conns_evicted;        // half-open connections evicted for a new one (table full)
    Counter consumed;  // frames taken in by the director itself (ARP replies it learns from)
    Counter table_size;  // gauge: entries in the connection table (connections and templates)
    Counter frag_notes_evicted;  // fragment notes of live datagrams replaced by newer ones
    Counter resets_sent;     // RSTs for TCP segments of no connection (connections.reset_unknown)
    Counter resets_limited;  // such segments dropped (no_connection) over the RST rate limit
    Counter tcp_probes;      // probes made (teardown.cpp, reset_unknown); no mbuf: also no_mbuf
    Counter tcp_refuted;     // RSTs and FINs that the traffic after them showed not taken
};

}  // namespace lb::dp
