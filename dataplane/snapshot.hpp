#pragma once
// The one immutable object that crosses from control to the workers. Control builds it from the
// config, publishes it through an atomic pointer, and frees it only after an RCU grace period.
// Its only mutable part is the per-service scheduler cursor, shared by all workers so that rr
// and wrr hand out reals in IPVS's global order whichever worker sees a new connection.
#include <atomic>
#include <cstdint>
#include <vector>

#include <rte_byteorder.h>
#include <rte_ether.h>

#include "dataplane/route_table.hpp"
#include "dataplane/types.hpp"

namespace lb::dp {

struct Interface {
    uint16_t port = 0;
    rte_ether_addr mac{};
    rte_be32_t addr = 0;  // network order
    uint8_t prefix_len = 0;
    rte_be32_t mask = 0;  // network order
    uint16_t mtu = 1500;
    RpFilter rp_filter = RpFilter::Strict;
};

struct Route {
    rte_be32_t prefix = 0;  // network order, already masked
    rte_be32_t mask = 0;
    uint8_t prefix_len = 0;
    uint16_t port = 0;
    rte_be32_t gateway = 0;  // 0: destination is on-link
};

struct Real {
    rte_be32_t addr = 0;
    rte_be16_t port = 0;
    Forward forward = Forward::Nat;
    uint32_t weight = 1;
    uint32_t u_threshold = 0, l_threshold = 0;  // connections; 0 = none
    uint16_t stats_slot = 0;  // index into the per-worker real counters
};

// wrr: IPVS's sequence cut into runs that share the same eligible set (weight >= threshold).
struct WrrRun {
    uint64_t start = 0;       // position of the run's first pick within the period
    uint32_t threshold = 0;   // current weight (cw) of the run's levels
    uint32_t eligible = 0;    // reals with weight >= threshold
};

struct alignas(RTE_CACHE_LINE_SIZE) SchedCursor {
    std::atomic<uint64_t> next{0};
    SchedCursor() = default;
    // Copies carry the position over (control builds services by value before publishing).
    SchedCursor(const SchedCursor& o) : next(o.next.load(std::memory_order_relaxed)) {}
    SchedCursor& operator=(const SchedCursor& o) {
        next.store(o.next.load(std::memory_order_relaxed), std::memory_order_relaxed);
        return *this;
    }
};

struct Service {
    rte_be32_t vip = 0;
    rte_be16_t port = 0;
    uint8_t proto = 0;  // IPPROTO_TCP / IPPROTO_UDP
    SchedKind sched = SchedKind::Rr;
    uint8_t sched_flags = 0;  // kSchedFallback | kSchedPort
    uint32_t persistence = 0;           // seconds; 0: not persistent
    rte_be32_t persist_mask = 0xFFFFFFFF;  // network order: client address granularity
    rte_be32_t tunnel_src = 0;  // outer source for tun reals; 0: the egress interface's address
    uint16_t stats_slot = 0;
    std::vector<Real> reals;
    std::vector<uint32_t> rr_order;  // indices of reals with weight > 0, in list order
    std::vector<WrrRun> wrr_runs;
    uint64_t wrr_period = 0;
    // sh and dh: 256 buckets; mh: the Maglev table (mh_size entries). Real index or kNoSlot.
    std::vector<uint16_t> hash_table;
    uint32_t mh_size = 65537;
    mutable SchedCursor cursor;
};

// Per-state TCP timeouts and the UDP timeout, in milliseconds.
struct Timeouts {
    uint32_t tcp_syn_recv = 60'000;
    uint32_t tcp_established = 900'000;
    uint32_t tcp_fin_wait = 120'000;
    uint32_t tcp_close_wait = 60'000;
    uint32_t tcp_time_wait = 120'000;
    uint32_t tcp_close = 10'000;
    uint32_t tcp_last_ack = 30'000;
    uint32_t udp = 300'000;
};

class Snapshot {
public:
    uint64_t generation = 0;
    std::vector<Interface> interfaces;
    std::array<int16_t, kMaxPorts> iface_of_port{};  // -1: port has no interface
    std::vector<Route> routes;                        // longest prefix first
    std::vector<Service> services;
    Timeouts timeouts;
    // IPVS's sloppy_tcp: a TCP packet without a connection creates one whatever its flags
    // (but RST), so that a director taking over mid-flow (failover, replayed traffic) carries
    // on; otherwise only a SYN does.
    bool sloppy_tcp = false;
    // A TCP segment that is not a SYN or a RST and that no connection knows gets a RST, so that
    // the clients of a restarted director fail fast (connections.reset_unknown; never with
    // sloppy_tcp): to a VIP with a service, from the VIP; from a NAT real, to its client.
    bool reset_unknown = true;
    uint16_t n_workers = 1;
    // Which worker owns a connection: a hash of the client address under this mask (network
    // order), so that one client's connections, and the clients that share a persistence
    // template, all meet in one worker's table. The widest persistence mask of any service.
    rte_be32_t owner_mask = 0xFFFFFFFF;
    // For control only: counter slots this snapshot gave to a new service or real (their
    // counters start from a fresh baseline).
    std::vector<uint16_t> fresh_svc_slots, fresh_real_slots;
    // VIPs whose services were removed while connections may still use them: still ours
    // (ARP, and packets of existing connections), no new connections. Set before finalize().
    std::vector<rte_be32_t> retired_vips;

    // Unique to this object in the process (generation may repeat: tests, a restarted
    // control): what the workers' per-snapshot caches are checked against.
    const uint64_t uid;

    Snapshot();
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;

    // Builds the lookup indexes; call once after filling the vectors above.
    void finalize();

    const Interface* interface_of(uint16_t port) const noexcept {
        return port < kMaxPorts && iface_of_port[port] >= 0 ? &interfaces[iface_of_port[port]]
                                                            : nullptr;
    }
    // What an address is to the director: kAddrLocal (one of the interfaces'), kAddrVip (some
    // service listens on it, or did and has connections left), both, or 0. One probe of a small
    // open-addressed table; 0.0.0.0 is never either.
    static constexpr uint8_t kAddrLocal = 1, kAddrVip = 2;
    uint8_t addr_class(rte_be32_t addr) const noexcept {
        uint32_t slot = addr_slot(addr);
        while (addr_keys_[slot] != 0) {
            if (addr_keys_[slot] == addr) {
                return addr_kinds_[slot];
            }
            slot = (slot + 1) & addr_mask_;
        }
        return 0;
    }
    bool is_local(rte_be32_t addr) const noexcept { return (addr_class(addr) & kAddrLocal) != 0; }
    bool is_vip(rte_be32_t addr) const noexcept { return (addr_class(addr) & kAddrVip) != 0; }
    const Service* find_service(rte_be32_t vip, rte_be16_t port, uint8_t proto) const noexcept;
    // A connection's service: by its stats slot, checked against its VIP, port and protocol
    // (find_service when the slot holds another service or none); nullptr: deleted since.
    const Service* service_of(uint16_t slot, rte_be32_t vip, rte_be16_t port,
                              uint8_t proto) const noexcept {
        if (slot < svc_of_slot_.size() && svc_of_slot_[slot] >= 0) {
            const Service& s = services[size_t(svc_of_slot_[slot])];
            if (s.vip == vip && s.port == port && s.proto == proto) {
                return &s;
            }
        }
        return find_service(vip, port, proto);
    }
    // The interface whose subnet holds dst; nullptr when dst is not on a connected subnet.
    const Interface* on_link(rte_be32_t dst) const noexcept {
        for (const Interface& i : interfaces) {
            if ((dst & i.mask) == (i.addr & i.mask)) {
                return &i;
            }
        }
        return nullptr;
    }
    // The one NAT service that has real addr:port (network order) for proto; nullptr when none
    // or several have it.
    const Service* nat_service_of_real(rte_be32_t addr, rte_be16_t port,
                                       uint8_t proto) const noexcept;
    // Longest-prefix match; nullptr when no route covers dst.
    const Route* route(rte_be32_t dst) const noexcept {
        const uint16_t i = route_table_.leaf(dst) & RouteTable::kIndex;
        return i != 0 ? &routes[i - 1] : nullptr;
    }
    // Whether src may be the source of a packet that came in on `in` (Linux's source checks):
    // never a connected subnet's network or broadcast address; with rp_filter loose, a source
    // with a route back; strict, one whose route back leaves by `in`'s port. (The director's
    // own addresses, VIPs and the special ranges are refused before, in classify.) One lookup.
    bool source_ok(rte_be32_t src, const Interface& in) const noexcept {
        const uint16_t e = route_table_.leaf(src);
        if (e & RouteTable::kMartian) {
            return false;
        }
        if (in.rp_filter == RpFilter::Off) {
            return true;
        }
        const uint16_t i = e & RouteTable::kIndex;
        return i != 0 && (in.rp_filter == RpFilter::Loose || routes[i - 1].port == in.port);
    }

private:
    // Open-addressed index over services by (vip, port, proto); slot holds service index + 1.
    std::vector<uint32_t> svc_index_;
    std::vector<int32_t> svc_of_slot_;  // stats slot -> index into services, or -1
    uint32_t svc_mask_ = 0;
    // NAT reals by (addr, port, proto), sorted; svc -1: several services share the real.
    struct RealKey {
        rte_be32_t addr;
        rte_be16_t port;
        uint8_t proto;
        int32_t svc;
    };
    std::vector<RealKey> nat_reals_;
    RouteTable route_table_;  // over routes; built by finalize()
    // finalize()'s part for routes: longest prefix first, and route_table_ over them.
    void index_routes();
    // Addresses that are ours or VIPs, at most a quarter full; key 0: empty.
    uint32_t addr_slot(rte_be32_t addr) const noexcept {
        return uint32_t((uint64_t(addr) * 0x9E3779B97F4A7C15ull) >> 40) & addr_mask_;
    }
    std::vector<rte_be32_t> addr_keys_ = std::vector<rte_be32_t>(1, 0);
    std::vector<uint8_t> addr_kinds_ = std::vector<uint8_t>(1, 0);
    uint32_t addr_mask_ = 0;
};

}  // namespace lb::dp
