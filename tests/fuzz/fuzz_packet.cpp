// libFuzzer target: the whole packet path. The input is a run of bursts of arbitrary frames that
// one or two workers process against a snapshot the input picks among 256 variants of one config
// (nat, tun and dr services, persistence, several schedulers, reals with and without a known
// neighbour, a 64-entry connection table; the variants change both ports' MTUs from 68 to 9216,
// every real's forward method, a third port, and whether full TX lists drain mid-burst), with a
// clock that moves on, expiry sweeps, ARP resolutions and held frames released. After every
// step the harness checks what must always hold and aborts when it does not:
//   - every mbuf is accounted for: the pool's in-use count is what sits in the workers' TX and
//     redirect staging and held lists; at the end, with all of it freed, it is back to the start;
//   - every frame given to a worker is counted once: dropped with a reason, consumed, staged
//     (fragments counted as the one frame they came from), redirected or held;
//   - a redirected frame reaches its owner and is not redirected again;
//   - what a worker stages for port p is a frame from p's MAC, and an IPv4 one has a valid header
//     (length within the frame, checksum) and a TTL above 0;
//   - the connection table and the per-real and per-service gauges agree: each gauge equals the
//     connections and templates in the table that it counts, each connection's template is a
//     live template whose count is its number of connections, each live entry is found by its
//     inbound tuple; once everything has expired the table is empty and every gauge is 0.
//
// Input: byte 0 = flags (bit 0: two workers; bit 1: the clock starts just before its 32-bit
// wrap; bits 2..7: real slots 0..5 overloaded), byte 1 = the config variant (0: kConfig as it
// is; bits 0..1: port 1's MTU 576, 68, 1500, 9000; bits 2..3: port 0's MTU 1500, 576, 9216,
// 1280; bits 4..5: forward methods as written, all nat, all tun, all dr (tun where dr cannot
// reach); bit 6: a third port, 203.0.113.1/24, that 192.0.2.0/24 is routed through; bit 7: a
// TX sink, so that a list that fills mid-burst drains at once, as in run()), then frame records
// [H][len_hi][len_lo][bytes]:
//   H bit 0     arrival port (0 or 1; with a third port, a frame to its MAC arrives there)
//   H bit 1     the burst ends after this frame (a burst also ends at 32 frames or the input's end)
//   H bits 2..3 after the burst the clock moves on by 1 ms, 250 ms, 2 s or 400 s
//   H bit 4     after the burst: an expiry sweep over the whole table
//   H bit 5     after the burst: resolve the next hops the workers have asked for so far
//   H bit 6     (two workers) the burst goes to worker 1 (taken from the burst's first frame)
//   H bit 7     the frame comes in two chained segments
// tests/fuzz/gen_corpus.py writes the seeds in this format.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <memory>
#include <vector>

#include <netinet/in.h>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "control/config.hpp"
#include "control/snapshot_builder.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/conn_table.hpp"
#include "dataplane/neighbour.hpp"
#include "dataplane/worker.hpp"

using namespace lb::dp;

namespace {

// Port 0: clients, the router to 203.0.113.0/24, tun and dr reals on 198.51.100.0/24. Port 1:
// NAT and tun reals on 10.10.0.0/24 (MTU 576: tunnelled packets get fragmented or answered
// with fragmentation-needed), a router to 192.0.2.0/24. Reals 10.10.0.4 and 198.51.100.32 have
// no neighbour entry (their frames are held until a resolution).
const char* kConfig = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; mtu = 576; } );
routes = ( { prefix = "203.0.113.0/24"; via = "198.51.100.254"; },
           { prefix = "192.0.2.0/24"; via = "10.10.0.254"; } );
connections = { capacity = 64; tcp_timeout = 900; tcp_fin_timeout = 120; udp_timeout = 300; };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; },
              { address = "10.10.0.3"; port = 8080; forward = "nat"; },
              { address = "10.10.0.4"; port = 8080; forward = "nat"; } ); },
  { vip = "198.51.100.10"; port = 53; protocol = "udp"; scheduler = "wrr"; persistence = 10;
    persistence_mask = "255.255.255.0";
    reals = ( { address = "10.10.0.2"; port = 5353; weight = 3; forward = "nat"; },
              { address = "10.10.0.3"; port = 5353; weight = 1; forward = "nat"; } ); },
  { vip = "198.51.100.11"; port = 80; protocol = "tcp"; scheduler = "wlc";
    reals = ( { address = "10.10.0.5"; forward = "tun"; },
              { address = "192.0.2.7"; forward = "tun"; weight = 2; } ); },
  { vip = "198.51.100.11"; port = 53; protocol = "udp"; scheduler = "sh";
    sched_flags = ["sh-fallback", "sh-port"]; tunnel_source = "198.51.100.1";
    reals = ( { address = "198.51.100.21"; forward = "tun"; },
              { address = "198.51.100.22"; forward = "dr"; } ); },
  { vip = "198.51.100.12"; port = 80; protocol = "tcp"; scheduler = "lc"; persistence = 30;
    reals = ( { address = "198.51.100.31"; forward = "dr"; u_threshold = 3; l_threshold = 1; },
              { address = "198.51.100.32"; forward = "dr"; },
              { address = "10.10.0.2"; port = 80; forward = "nat"; } ); },
  { vip = "198.51.100.12"; port = 443; protocol = "tcp"; scheduler = "mh"; mh_table_size = 251;
    sched_flags = ["mh-fallback"];
    reals = ( { address = "10.10.0.2"; port = 443; forward = "nat"; },
              { address = "10.10.0.3"; port = 443; forward = "nat"; weight = 0; },
              { address = "198.51.100.21"; forward = "tun"; } ); },
  { vip = "198.51.100.13"; port = 80; protocol = "tcp"; scheduler = "ovf";
    reals = ( { address = "10.10.0.3"; port = 80; weight = 2; u_threshold = 2; },
              { address = "198.51.100.22"; forward = "dr"; } ); },
  { vip = "198.51.100.13"; port = 53; protocol = "udp"; scheduler = "dh";
    reals = ( { address = "10.10.0.2"; forward = "nat"; },
              { address = "10.10.0.5"; forward = "tun"; } ); },
  { vip = "198.51.100.13"; port = 81; protocol = "tcp"; scheduler = "sed";
    reals = ( { address = "10.10.0.2"; weight = 3; }, { address = "10.10.0.3"; } ); },
  { vip = "198.51.100.13"; port = 82; protocol = "udp"; scheduler = "nq";
    reals = ( { address = "10.10.0.2"; }, { address = "10.10.0.4"; weight = 2; } ); },
  { vip = "198.51.100.13"; port = 83; protocol = "tcp"; scheduler = "fo";
    reals = ( { address = "10.10.0.3"; weight = 1; }, { address = "10.10.0.2"; weight = 5; } ); }
);
)";

constexpr uint32_t kCapacity = 64;
constexpr uint16_t kMaxBursts = 24;
constexpr uint32_t kMaxFrame = 2048;  // RTE_MBUF_DEFAULT_DATAROOM
constexpr uint32_t kAdvanceMs[4] = {1, 250, 2000, 400000};

rte_mempool* g_pool = nullptr;
unsigned g_baseline = 0;
// [variant][workers - 1], built when an input first asks for it.
std::unique_ptr<Snapshot> g_snap[256][2];
uint32_t g_svc_slots = 0, g_real_slots = 0;
const std::array<rte_ether_addr, kMaxPorts> kPortMacs = [] {
    std::array<rte_ether_addr, kMaxPorts> m{};
    m[0] = {{0x02, 0, 0, 0, 0, 0x01}};
    m[1] = {{0x02, 0, 0, 0, 1, 0x01}};
    m[2] = {{0x02, 0, 0, 0, 2, 0x01}};
    return m;
}();

void replace_once(std::string& s, const std::string& from, const std::string& to) {
    const size_t at = s.find(from);
    if (at == std::string::npos) {
        std::fprintf(stderr, "fuzz_packet: '%s' is not in kConfig\n", from.c_str());
        std::abort();
    }
    s.replace(at, from.size(), to);
}

// kConfig changed as the variant byte says (see the input format above), validated as a file
// would be.
lb::ctl::Config variant_config(uint8_t v) {
    static constexpr uint16_t kInMtu[4] = {576, 68, 1500, 9000};
    static constexpr uint16_t kOutMtu[4] = {1500, 576, 9216, 1280};
    std::string text = kConfig;
    replace_once(text, "mtu = 576;", "mtu = " + std::to_string(kInMtu[v & 3]) + ";");
    replace_once(text, "mac = \"02:00:00:00:00:01\"; }",
                 "mac = \"02:00:00:00:00:01\"; mtu = " + std::to_string(kOutMtu[(v >> 2) & 3]) +
                     "; }");
    if ((v & 0x40) != 0) {
        replace_once(text, "mtu = " + std::to_string(kInMtu[v & 3]) + "; } );",
                     "mtu = " + std::to_string(kInMtu[v & 3]) +
                         "; },\n { port = 2; address = \"203.0.113.1/24\"; "
                         "mac = \"02:00:00:00:02:01\"; } );");
        replace_once(text, "via = \"10.10.0.254\"", "via = \"203.0.113.254\"");
        replace_once(text, "{ prefix = \"203.0.113.0/24\"; via = \"198.51.100.254\"; },\n", "");
    }
    lb::ctl::Config cfg = lb::ctl::parse_config(text, "fuzz_packet.conf");
    const unsigned methods = (v >> 4) & 3;
    if (methods != 0) {
        for (lb::ctl::ServiceConf& svc : cfg.services) {
            for (lb::ctl::RealConf& r : svc.reals) {
                const bool on_link = (r.addr >> 24) == 10 || (r.addr >> 8) == 0xC63364 ||
                                     ((v & 0x40) != 0 && (r.addr >> 8) == 0xCB0071);
                r.forward = methods == 1   ? Forward::Nat
                            : methods == 2 ? Forward::Tunnel
                            : on_link      ? Forward::Route
                                           : Forward::Tunnel;
                if (r.forward != Forward::Nat) {
                    r.port = svc.port;  // only nat rewrites ports
                }
            }
        }
        cfg = lb::ctl::parse_config(lb::ctl::format_config(cfg), "fuzz_packet.conf");
    }
    return cfg;
}

const Snapshot* variant_snapshot(uint8_t v, uint16_t n_workers) {
    std::unique_ptr<Snapshot>& s = g_snap[v][n_workers - 1];
    if (s == nullptr) {
        s = lb::ctl::build_snapshot(variant_config(v), kPortMacs, n_workers, 1);
    }
    return s.get();
}

struct Vals {
    long a = 0, b = 0;
};

[[noreturn]] void fail(const char* what, int line, Vals v) {
    std::fprintf(stderr, "fuzz_packet: invariant violated at line %d: %s (%ld, %ld)\n", line, what,
                 v.a, v.b);
    std::fflush(stderr);
    std::abort();
}

// CHECK(condition[, a[, b]]): a and b are printed with the condition when it does not hold.
#define CHECK(cond, ...)                              \
    do {                                              \
        if (!(cond)) {                                \
            fail(#cond, __LINE__, Vals{__VA_ARGS__}); \
        }                                             \
    } while (0)

rte_be32_t ip4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return rte_cpu_to_be_32(uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d);
}

rte_ether_addr mac_for(rte_be32_t ip) {
    const auto* b = reinterpret_cast<const uint8_t*>(&ip);
    return rte_ether_addr{{0x02, 0x42, b[0], b[1], b[2], b[3]}};
}

uint16_t port_of(rte_be32_t ip) {
    const uint32_t h = rte_be_to_cpu_32(ip);
    return (h >> 24) == 10 ? 1 : (h >> 8) == 0xCB0071 ? 2 : 0;  // 10/8, 203.0.113/24, the rest
}

uint16_t rd16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

// What one worker has been given and has handed back, for the conservation check.
struct Ledger {
    uint64_t in = 0;           // frames given to process_burst
    uint64_t tx_taken = 0;     // mbufs taken off its TX staging
    uint64_t redir_taken = 0;  // frames taken off its redirect staging
};

// Worker state that lives from one input to the next: building a Worker costs more than a
// whole input (1 MB of counters). Each input leaves it as it found it (reset()): no connection,
// no held frame, nothing staged, the table's free list and sweep cursor back at their start,
// the neighbours it resolved unresolved again; so one input behaves the same alone or in a run.
struct Persistent {
    NeighbourTable neigh;
    std::unique_ptr<std::atomic<uint8_t>[]> overload =
        std::make_unique<std::atomic<uint8_t>[]>(kMaxReals);
    std::unique_ptr<Worker> single;   // 1 worker
    std::unique_ptr<Worker> pair[2];  // 2 workers
    Ledger led_single, led_pair[2];   // cumulative, like the workers' counters

    Persistent() {
        const rte_be32_t known[] = {
            ip4(198, 51, 100, 2),  ip4(198, 51, 100, 254), ip4(10, 10, 0, 2),
            ip4(10, 10, 0, 3),     ip4(10, 10, 0, 5),      ip4(10, 10, 0, 254),
            ip4(198, 51, 100, 21), ip4(198, 51, 100, 22),  ip4(198, 51, 100, 31),
            ip4(203, 0, 113, 254)};
        for (rte_be32_t a : known) {
            neigh.set(a, mac_for(a), port_of(a), NeighState::Static);
        }
        single = std::make_unique<Worker>(0, 1, kCapacity, neigh);
        single->overload = overload.get();
        for (uint16_t i = 0; i < 2; ++i) {
            pair[i] = std::make_unique<Worker>(i, 2, kCapacity, neigh);
            pair[i]->overload = overload.get();
        }
    }
};
Persistent* g_state = nullptr;

// Puts an empty table back in its initial state through its public interface: fills it (every
// free index taken), finds the sweep cursor and moves it to 0, then frees the indices so that
// they are handed out again as 0, 1, 2, ...
void reset_table(ConnTable& t) {
    const uint32_t cap = t.capacity();
    CHECK(t.size() == 0, long(t.size()));
    for (uint32_t key = 1; t.size() < cap; ++key) {
        CHECK(key < 100 * cap, long(key));
        Conn c{};
        c.client_ip = key;
        c.real_ip = key;
        c.proto = 0xff;
        c.expire = 0;
        t.insert(c);  // kNone when both buckets are full: the next key goes elsewhere
    }
    uint32_t at = UINT32_MAX;
    t.sweep(0, 1, [&](Conn& c) {
        at = uint32_t(&c - &t.at(0));
        return false;
    });
    CHECK(at < cap, long(at));
    t.sweep(0, (cap - (at + 1) % cap) % cap, [](Conn&) { return false; });
    for (uint32_t i = cap; i-- > 0;) {
        t.remove(i);
    }
}

struct Harness {
    uint16_t n_workers = 1;
    uint16_t n_ports = 2;
    bool sink = false;  // full TX lists drain mid-burst (to tx_sink)
    const Snapshot* snap = nullptr;
    NeighbourTable& neigh;
    Worker* w[2] = {nullptr, nullptr};
    Ledger* led[2] = {nullptr, nullptr};
    uint32_t now = 0;
    std::vector<rte_be32_t> asked;     // next hops the workers asked control to resolve
    std::vector<rte_be32_t> resolved;  // and those resolved, undone by reset()
    bool used[2] = {false, false};     // worker k's table had entries

    Harness(uint8_t flags, uint8_t variant) : neigh(g_state->neigh) {
        n_workers = (flags & 1) != 0 ? 2 : 1;
        n_ports = (variant & 0x40) != 0 ? 3 : 2;
        sink = (variant & 0x80) != 0;
        snap = variant_snapshot(variant, n_workers);
        for (const Service& s : snap->services) {
            s.cursor.next.store(0, std::memory_order_relaxed);  // same input, same picks
        }
        for (uint32_t i = 0; i < 6; ++i) {  // the other slots stay 0
            g_state->overload[i].store((flags >> (2 + i)) & 1, std::memory_order_relaxed);
        }
        now = (flags & 2) != 0 ? 0xffffffffu - 3000 : 1000;
        if (n_workers == 1) {
            w[0] = g_state->single.get();
            led[0] = &g_state->led_single;
        } else {
            for (uint16_t i = 0; i < 2; ++i) {
                w[i] = g_state->pair[i].get();
                led[i] = &g_state->led_pair[i];
            }
        }
        for (uint16_t k = 0; k < n_workers; ++k) {
            CHECK(w[k]->held() == 0 && w[k]->conns.size() == 0 && w[k]->n_slow == 0, k);
            sinks[k] = {this, k};
            if (sink) {
                w[k]->set_tx_sink({&tx_sink, &sinks[k]});
            }
        }
    }

    // What run() does with a list that fills mid-burst: hands it to the port. Checked and
    // freed like the lists drained after the burst.
    struct SinkCtx {
        Harness* h;
        uint16_t k;
    } sinks[2];
    static uint16_t tx_sink(void* ctx, uint16_t port, rte_mbuf** pkts, uint16_t n) {
        const auto* c = static_cast<const SinkCtx*>(ctx);
        CHECK(n == kStageCap, n);  // only a full list comes here
        for (uint16_t i = 0; i < n; ++i) {
            c->h->check_staged_frame(pkts[i], port);
            rte_pktmbuf_free(pkts[i]);
        }
        c->h->led[c->k]->tx_taken += n;
        return n;
    }

    // After finish(): the state shared with the next input back as it was.
    void reset() {
        // The sweeps all cover the whole table (budget = capacity): the cursor stays at 0.
        // The free list is as it was unless an entry was inserted.
        for (uint16_t k = 0; k < n_workers; ++k) {
            if (used[k]) {
                reset_table(w[k]->conns);
            }
        }
        for (rte_be32_t a : resolved) {
            neigh.set_state(a, NeighState::Incomplete);
        }
        for (uint16_t k = 0; k < n_workers; ++k) {
            w[k]->set_tx_sink({});
        }
    }

    // ---- checks ------------------------------------------------------------------------------

    void check_staged_frame(rte_mbuf* m, uint16_t port) const {
        CHECK(m->nb_segs == 1, m->nb_segs);
        CHECK(m->pkt_len == m->data_len, long(m->pkt_len), long(m->data_len));
        const uint32_t len = m->data_len;
        CHECK(len >= 14, long(len));
        const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
        CHECK(std::memcmp(f + 6, kPortMacs[port].addr_bytes, 6) == 0, port);
        if (rd16(f + 12) != RTE_ETHER_TYPE_IPV4) {
            CHECK(rd16(f + 12) == RTE_ETHER_TYPE_ARP, rd16(f + 12));
            return;
        }
        CHECK(len >= 14 + 20, long(len));
        const uint8_t* ip = f + 14;
        const uint32_t ihl = (ip[0] & 0x0f) * 4u;
        CHECK((ip[0] >> 4) == 4 && ihl >= 20, ip[0]);
        const uint32_t total = rd16(ip + 2);
        CHECK(total >= ihl && 14 + total <= len, long(total), long(len));
        CHECK(csum_fold(csum_partial(ip, ihl)) == 0xffff, long(ihl));
    }

    uint64_t staged_segments() const {
        uint64_t n = 0;
        for (uint16_t k = 0; k < n_workers; ++k) {
            const Worker& wk = *w[k];
            for (const Staged& s : wk.tx) {
                for (uint16_t i = 0; i < s.n; ++i) {
                    n += s.pkts[i]->nb_segs;
                }
            }
            for (const Staged& s : wk.redirect) {
                for (uint16_t i = 0; i < s.n; ++i) {
                    n += s.pkts[i]->nb_segs;
                }
            }
            n += wk.held();  // held frames are single-segment: chains are dropped at once
        }
        return n;
    }

    void check_mbufs() const {
        const uint64_t in_use = rte_mempool_in_use_count(g_pool);
        CHECK(in_use == g_baseline + staged_segments(), long(in_use - g_baseline),
              long(staged_segments()));
    }

    void check_ledger(uint16_t k) const {
        const Worker& wk = *w[k];
        const Ledger& l = *led[k];
        uint64_t drops = 0;
        for (size_t d = 0; d < size_t(Drop::Count); ++d) {
            if (Drop(d) != Drop::SlowPathFull) {  // counted, but the packet went on
                drops += wk.counters.drops[d].get();
            }
        }
        uint64_t tx_now = 0, redir_now = 0;
        for (uint16_t p = 0; p < kMaxPorts; ++p) {
            tx_now += wk.tx[p].n;
            CHECK(p < n_ports || wk.tx[p].n == 0, p);  // nothing for a port without an interface
            CHECK(wk.tx[p].n <= kStageCap, p, wk.tx[p].n);
        }
        for (uint16_t i = 0; i < kMaxWorkers; ++i) {
            redir_now += wk.redirect[i].n;
            CHECK(i < n_workers || wk.redirect[i].n == 0, i);
            CHECK(wk.redirect[i].n <= kStageCap, i, wk.redirect[i].n);
        }
        CHECK(wk.redirect[k].n == 0, k);  // never to itself
        const uint64_t redirected = l.redir_taken + redir_now;
        CHECK(wk.counters.redirected_out.get() == redirected, long(redirected));
        // Fragments and probes (teardown.cpp, reset_unknown) are frames lb makes itself.
        const uint64_t out = drops + wk.counters.consumed.get() + l.tx_taken + tx_now -
                             wk.counters.tunnel_fragments.get() - wk.counters.nat_fragments.get() -
                             wk.counters.tcp_probes.get() + redirected + wk.held();
        CHECK(out == l.in, long(out), long(l.in));
    }

    void check_table(uint16_t k) const {
        const Worker& wk = *w[k];
        const ConnTable& t = wk.conns;
        std::vector<uint64_t> real_g(size_t(g_real_slots) * 3), svc_g(size_t(g_svc_slots) * 3);
        std::vector<uint32_t> users(kCapacity, 0);
        uint32_t live = 0;
        for (uint32_t i = 0; i < t.capacity(); ++i) {
            const Conn& c = t.at(i);
            if (!c.in_use) {
                continue;
            }
            ++live;
            CHECK(c.real_slot < g_real_slots && c.svc_slot < g_svc_slots, c.real_slot, c.svc_slot);
            const int g = is_template(c) ? 2
                          : c.proto == IPPROTO_TCP && TcpState(c.state) == TcpState::Established
                              ? 0
                              : 1;
            ++real_g[c.real_slot * 3u + unsigned(g)];
            ++svc_g[c.svc_slot * 3u + unsigned(g)];
            Dir d{};
            CHECK(t.lookup(in_key(c), ConnTable::hash(in_key(c)), d) == i && d == Dir::In, i);
            CHECK(t.lookup(out_key(c), ConnTable::hash(out_key(c)), d) == i && d == Dir::Out, i);
            if (!is_template(c) && c.tmpl != ConnTable::kNone) {
                CHECK(c.tmpl < t.capacity(), long(c.tmpl));
                const Conn& tc = t.at(c.tmpl);
                CHECK(tc.in_use && is_template(tc), i, long(c.tmpl));
                ++users[c.tmpl];
            }
        }
        CHECK(live == t.size(), long(live), long(t.size()));
        CHECK(t.check_index(), long(t.size()));  // slots, alt bits and spilled counts agree
        for (uint32_t i = 0; i < t.capacity(); ++i) {
            const Conn& c = t.at(i);
            if (c.in_use && is_template(c)) {
                CHECK(c.tmpl == users[i], long(c.tmpl), long(users[i]));
            }
        }
        for (uint32_t s = 0; s < g_real_slots; ++s) {
            const TrafficCounters& tc = wk.real_stats[s];
            CHECK(tc.active.get() == real_g[s * 3] && tc.inactive.get() == real_g[s * 3 + 1] &&
                      tc.persist.get() == real_g[s * 3 + 2],
                  s, long(tc.active.get() + tc.inactive.get() + tc.persist.get()));
        }
        for (uint32_t s = 0; s < g_svc_slots; ++s) {
            const TrafficCounters& tc = wk.svc_stats[s];
            CHECK(tc.active.get() == svc_g[s * 3] && tc.inactive.get() == svc_g[s * 3 + 1] &&
                      tc.persist.get() == svc_g[s * 3 + 2],
                  s, long(tc.active.get() + tc.inactive.get() + tc.persist.get()));
        }
    }

    // `table`: the connection table may have changed too.
    void check_all(bool table = true) const {
        check_mbufs();
        for (uint16_t k = 0; k < n_workers; ++k) {
            check_ledger(k);
            if (table) {
                check_table(k);
            }
        }
    }

    // ---- steps -------------------------------------------------------------------------------

    // Takes what worker k staged for TX, as run() hands it to the NIC: checked, then freed.
    void drain_tx(uint16_t k) {
        Worker& wk = *w[k];
        for (uint16_t p = 0; p < kMaxPorts; ++p) {
            Staged& s = wk.tx[p];
            for (uint16_t i = 0; i < s.n; ++i) {
                check_staged_frame(s.pkts[i], p);
                rte_pktmbuf_free(s.pkts[i]);
            }
            led[k]->tx_taken += s.n;
            s.n = 0;
        }
        // run() hands the messages to control, which resolves the next hops asked for.
        for (uint16_t i = 0; i < wk.n_slow; ++i) {
            if (wk.slow[i].type == SlowMsg::Resolve && asked.size() < 1024) {
                asked.push_back(wk.slow[i].ip);
            }
        }
        wk.n_slow = 0;
    }

    void burst(uint16_t k, rte_mbuf** pkts, uint16_t n) {
        led[k]->in += n;
        w[k]->process_burst(*snap, pkts, n, now);
        // An entry inserted in a burst is still there at its end (nothing expires within it).
        used[k] = used[k] || w[k]->conns.size() != 0;
        check_all();
    }

    // Frames worker `from` staged for other workers reach them, as through the rings. A frame
    // goes to its owner, which keeps it: a second redirect would be a loop.
    void deliver_redirects(uint16_t from) {
        for (uint16_t to = 0; to < n_workers; ++to) {
            Staged& r = w[from]->redirect[to];
            while (r.n != 0) {
                const uint16_t n = std::min(kBurst, r.n);
                rte_mbuf* pkts[kBurst];
                std::memcpy(pkts, r.pkts.data(), n * sizeof(rte_mbuf*));
                std::memmove(r.pkts.data(), r.pkts.data() + n, (r.n - n) * sizeof(rte_mbuf*));
                r.n = uint16_t(r.n - n);
                led[from]->redir_taken += n;
                burst(to, pkts, n);
                for (uint16_t i = 0; i < kMaxWorkers; ++i) {
                    CHECK(w[to]->redirect[i].n == 0, to, i);
                }
                drain_tx(to);
            }
        }
    }

    // Control answers the workers' ARP questions: every next hop asked for is resolved.
    void resolve() {
        for (rte_be32_t a : asked) {
            if (neigh.state(a) != NeighState::Static) {
                neigh.set(a, mac_for(a), port_of(a), NeighState::Reachable);
                resolved.push_back(a);
            }
        }
    }

    void release(bool all) {
        for (uint16_t k = 0; k < n_workers; ++k) {
            w[k]->release_held(now, all);
            check_all(false);
            drain_tx(k);
            check_all(false);
        }
    }

    void expire() {
        for (uint16_t k = 0; k < n_workers; ++k) {
            w[k]->expire(now, kCapacity);
            check_all();
        }
    }

    // Everything is taken back: held frames dropped, staging emptied, every connection and
    // template expired. The pool is back where it started and every gauge reads 0.
    // FUZZ_PACKET_VERBOSE=1: what the input did, to check what a seed exercises.
    void report() const {
        for (uint16_t k = 0; k < n_workers; ++k) {
            const Worker& wk = *w[k];
            const WorkerCounters& c = wk.counters;
            const auto u = [](const Counter& x) {
                return static_cast<unsigned long long>(x.get());
            };
            std::fprintf(
                stderr,
                "worker %u: in %llu tx %llu held %u conns %u | redirected %llu created %llu "
                "expired %llu arp %llu echo %llu icmp_err %llu tunnel %llu frags %llu "
                "frag_needed %llu consumed %llu\n  drops:",
                k, static_cast<unsigned long long>(led[k]->in),
                static_cast<unsigned long long>(led[k]->tx_taken), wk.held(), wk.conns.size(),
                u(c.redirected_out), u(c.conns_created), u(c.conns_expired), u(c.arp_replies),
                u(c.icmp_echo_replies), u(c.icmp_errors_translated), u(c.tunnel_encapsulated),
                u(c.tunnel_fragments), u(c.frag_needed_sent), u(c.consumed));
            for (size_t d = 0; d < size_t(Drop::Count); ++d) {
                if (c.drops[d].get() != 0) {
                    std::fprintf(stderr, " %s %llu", kDropNames[d].data(), u(c.drops[d]));
                }
            }
            std::fprintf(stderr, "\n");
        }
    }

    void finish() {
        static const bool verbose = std::getenv("FUZZ_PACKET_VERBOSE") != nullptr;
        if (verbose) {
            report();
        }
        release(true);
        for (uint16_t k = 0; k < n_workers; ++k) {
            CHECK(w[k]->held() == 0, k);
        }
        CHECK(rte_mempool_in_use_count(g_pool) == g_baseline,
              long(rte_mempool_in_use_count(g_pool)), long(g_baseline));
        const uint32_t later = now + 0x40000000u;  // past every timeout, within the clock's range
        for (uint16_t k = 0; k < n_workers; ++k) {
            // First pass: connections go; a template seen before its last connection is re-armed
            // for 1 s. Second pass: the templates go.
            w[k]->expire(later, kCapacity);
            w[k]->expire(later + 2000, kCapacity);
            check_table(k);
            CHECK(w[k]->conns.size() == 0, k, long(w[k]->conns.size()));
        }
    }
};

// A frame to the third port's MAC arrives there (when the variant has one).
uint16_t arrival_port(const uint8_t* data, uint32_t len, uint8_t hdr, uint16_t n_ports) {
    if (n_ports > 2 && len >= 6 && std::memcmp(data, kPortMacs[2].addr_bytes, 6) == 0) {
        return 2;
    }
    return hdr & 1;
}

rte_mbuf* make_mbuf(const uint8_t* data, uint32_t len, uint16_t port, bool chained) {
    rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
    CHECK(m != nullptr);
    const uint32_t first = chained && len >= 2 ? len / 2 : len;
    void* d = rte_pktmbuf_append(m, uint16_t(first));
    CHECK(d != nullptr || first == 0, long(first));
    if (first != 0) {
        std::memcpy(d, data, first);
    }
    m->port = port;
    if (first != len) {
        rte_mbuf* m2 = rte_pktmbuf_alloc(g_pool);
        CHECK(m2 != nullptr);
        std::memcpy(rte_pktmbuf_append(m2, uint16_t(len - first)), data + first, len - first);
        CHECK(rte_pktmbuf_chain(m, m2) == 0);
    }
    return m;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    const char* argv[] = {"fuzz_packet", "--no-huge",      "-m",       "256",
                          "--no-shconf", "--no-telemetry", "--no-pci", "-l",
                          "0",           "--log-level",    "*:error"};
    if (rte_eal_init(int(std::size(argv)), const_cast<char**>(argv)) < 0) {
        std::fprintf(stderr, "fuzz_packet: rte_eal_init failed\n");
        std::abort();
    }
    // No per-lcore cache: the in-use count is exact.
    g_pool = rte_pktmbuf_pool_create("fuzz", 4095, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    if (g_pool == nullptr) {
        std::fprintf(stderr, "fuzz_packet: no mbuf pool\n");
        std::abort();
    }
    g_baseline = rte_mempool_in_use_count(g_pool);
    g_state = new Persistent;
    const lb::ctl::Config cfg = variant_config(0);
    g_svc_slots = uint32_t(cfg.services.size());
    for (const auto& s : cfg.services) {
        g_real_slots += uint32_t(s.reals.size());
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 2) {
        return 0;
    }
    Harness h(data[0], data[1]);
    size_t pos = 2;
    for (uint16_t b = 0; b < kMaxBursts && pos < size; ++b) {
        rte_mbuf* pkts[kBurst];
        uint16_t n = 0;
        uint8_t first_h = 0, last_h = 0;
        while (n < kBurst && pos < size) {
            const uint8_t hdr = data[pos++];
            uint32_t len = 0;
            if (pos + 2 <= size) {
                len = uint32_t(data[pos] << 8 | data[pos + 1]);
                pos += 2;
            } else {
                pos = size;
            }
            len = std::min<uint32_t>({len, kMaxFrame, uint32_t(size - pos)});
            pkts[n++] = make_mbuf(data + pos, len, arrival_port(data + pos, len, hdr, h.n_ports),
                                  (hdr & 0x80) != 0);
            pos += len;
            if (n == 1) {
                first_h = hdr;
            }
            last_h = hdr;
            if ((hdr & 2) != 0) {
                break;
            }
        }
        const uint16_t k = h.n_workers == 2 && (first_h & 0x40) != 0 ? 1 : 0;
        h.burst(k, pkts, n);
        h.drain_tx(k);
        h.deliver_redirects(k);
        h.check_all();
        if ((last_h & 0x20) != 0) {
            h.resolve();  // the answers to every question asked so far
            h.asked.clear();
        }
        h.now += kAdvanceMs[(last_h >> 2) & 3];
        h.release(false);  // run() does this every loop turn
        if ((last_h & 0x10) != 0) {
            h.expire();
        }
    }
    h.finish();
    h.reset();
    return 0;
}
