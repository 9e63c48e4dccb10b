// lb-harness: the workers' packet code (Worker::process_burst, the expiry sweep) driven by
// synthetic mbufs from a fast tuple generator, without any PMD. One run measures one case:
// a forwarding mode, established traffic over N connections or new connections at a table
// steady state, a scheduler, one or two worker threads. tools/bench-harness runs the matrix
// and writes BENCHMARKS.md.
//
// What is timed: process_burst, freeing what it staged for TX (what a TX to net_null does) and
// the per-turn housekeeping, per burst of 32, with the TSC. The generator (filling the frames)
// and mbuf allocation are outside the timed region; "loop Mpps" includes them.
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <time.h>
#include <vector>

#include <arpa/inet.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>


#include "control/config.hpp"
#include "control/snapshot_builder.hpp"
#include "dataplane/checksum.hpp"
#include "dataplane/neighbour.hpp"
#include "dataplane/worker.hpp"

namespace {

using lb::dp::Worker;

enum class Mode { Nat, NatOut, Tun, Dr };
enum class Traffic { Established, New };

struct Options {
    Mode mode = Mode::Nat;
    Traffic traffic = Traffic::Established;
    uint64_t conns = 1 << 20;
    std::string sched = "rr";
    unsigned workers = 1;
    unsigned reals = 16;
    double seconds = 3.0;
    uint64_t packets = 0;           // exact packet count instead of seconds (callgrind)
    uint32_t syn_timeout_ms = 200;  // new connections: SYN_RECV timeout
    bool check = false;
    std::string eal_mem = "1024";
    unsigned cpu = 0;  // the CPU of worker 0 (worker 1 takes the next)
};

const char* mode_name(Mode m) {
    switch (m) {
    case Mode::Nat: return "nat";
    case Mode::NatOut: return "nat-out";
    case Mode::Tun: return "tun";
    case Mode::Dr: return "dr";
    }
    return "?";
}

[[noreturn]] void usage(const std::string& why) {
    if (!why.empty()) {
        std::fprintf(stderr, "lb-harness: %s\n", why.c_str());
    }
    std::fprintf(stderr,
                 "usage: lb-harness [--mode nat|nat-out|tun|dr] [--traffic est|new]\n"
                 "                  [--conns N] [--sched rr|wrr|lc|wlc|sh|mh|...] [--workers 1|2]\n"
                 "                  [--reals N] [--seconds S | --packets N]\n"
                 "                  [--syn-timeout-ms MS] [--check] [--mem MB] [--cpu N]\n"
                 "  est: packets of N established connections, uniformly at random\n"
                 "       (nat-out: the real's replies); the table holds exactly N.\n"
                 "  new: every packet a SYN of a new tuple; the table (capacity N) at steady\n"
                 "       state, SYN_RECV entries expiring after --syn-timeout-ms.\n"
                 "  --check: verify every frame that leaves (rewrite, checksums, nothing\n"
                 "       dropped) and exit 1 on any difference; figures are still printed.\n"
                 "  --packets: a fixed count (callgrind's runs) on a virtual clock of 0.7\n"
                 "       packets a microsecond: the same work in every run.\n");
    std::exit(2);
}

uint64_t parse_u64(std::string_view what, std::string_view s, uint64_t lo, uint64_t hi) {
    uint64_t v = 0;
    uint64_t mult = 1;
    if (!s.empty() && (s.back() == 'K' || s.back() == 'k')) {
        mult = 1000, s.remove_suffix(1);
    } else if (!s.empty() && s.back() == 'M') {
        mult = 1000000, s.remove_suffix(1);
    }
    const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > hi / mult || v * mult < lo) {
        usage(std::string(what) + ": \"" + std::string(s) + "\" is not a number in " +
              std::to_string(lo) + ".." + std::to_string(hi));
    }
    return v * mult;
}

Options parse_args(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&]() -> std::string_view {
            if (i + 1 >= argc) {
                usage(std::string(a) + " needs a value");
            }
            return argv[++i];
        };
        if (a == "--mode") {
            const auto v = value();
            o.mode = v == "nat"       ? Mode::Nat
                     : v == "nat-out" ? Mode::NatOut
                     : v == "tun"     ? Mode::Tun
                     : v == "dr"      ? Mode::Dr
                                      : (usage("unknown mode \"" + std::string(v) + "\""), Mode::Nat);
        } else if (a == "--traffic") {
            const auto v = value();
            o.traffic = v == "est"   ? Traffic::Established
                        : v == "new" ? Traffic::New
                                     : (usage("unknown traffic \"" + std::string(v) + "\""),
                                        Traffic::New);
        } else if (a == "--conns") {
            o.conns = parse_u64(a, value(), 1, 100'000'000);
        } else if (a == "--sched") {
            o.sched = std::string(value());
        } else if (a == "--workers") {
            o.workers = unsigned(parse_u64(a, value(), 1, 2));
        } else if (a == "--reals") {
            o.reals = unsigned(parse_u64(a, value(), 1, 200));
        } else if (a == "--seconds") {
            o.seconds = double(parse_u64(a, value(), 1, 600));
        } else if (a == "--packets") {
            o.packets = parse_u64(a, value(), 1, 10'000'000'000ull);
        } else if (a == "--syn-timeout-ms") {
            o.syn_timeout_ms = uint32_t(parse_u64(a, value(), 1, 60'000));
        } else if (a == "--mem") {
            o.eal_mem = std::to_string(parse_u64(a, value(), 64, 65536));
        } else if (a == "--cpu") {
            o.cpu = unsigned(parse_u64(a, value(), 0, 1023));
        } else if (a == "--check") {
            o.check = true;
        } else if (a == "-h" || a == "--help") {
            usage("");
        } else {
            usage("unknown option \"" + std::string(a) + "\"");
        }
    }
    if (o.mode == Mode::NatOut && o.traffic == Traffic::New) {
        usage("--mode nat-out needs --traffic est (replies belong to existing connections)");
    }
    return o;
}

constexpr uint32_t kVip = RTE_IPV4(198, 51, 100, 10);
constexpr uint32_t kGateway = RTE_IPV4(198, 51, 100, 254);
constexpr uint32_t kClientBase = RTE_IPV4(198, 18, 0, 0);  // 198.18.0.0/15
constexpr uint32_t kClientAddrs = 1u << 17;
constexpr uint32_t kRealBase = RTE_IPV4(10, 10, 0, 2);
constexpr uint16_t kVport = 80;
constexpr uint16_t kPortsPerAddr = 256;  // client ports 1024..1279 per client address
constexpr uint16_t kFrameLen = 60;       // a 64-byte frame without its FCS

const rte_ether_addr kMac0{{0x02, 0, 0, 0, 0, 0x01}};
const rte_ether_addr kMac1{{0x02, 0, 0, 0, 1, 0x01}};
const rte_ether_addr kGatewayMac{{0x02, 0, 0, 0, 0, 0xfe}};

rte_ether_addr real_mac(unsigned r) { return {{0x02, 0, 0, 0, 1, uint8_t(0x10 + r)}}; }

std::string config_text(const Options& o) {
    const char* fwd = o.mode == Mode::Tun ? "tun" : o.mode == Mode::Dr ? "dr" : "nat";
    const unsigned rport = o.mode == Mode::Dr || o.mode == Mode::Tun ? kVport : 8080;
    std::string reals;
    for (unsigned r = 0; r < o.reals; ++r) {
        in_addr a{htonl(kRealBase + r)};
        reals += std::string(r ? ",\n" : "") + "      { address = \"" + inet_ntoa(a) +
                 "\"; port = " + std::to_string(rport) + "; forward = \"" + fwd + "\"; }";
    }
    std::string workers;
    for (unsigned w = 0; w < o.workers; ++w) {
        workers += (w ? ", " : "") + std::to_string(w + 1);
    }
    return "eal = [\"-l\", \"0-" + std::to_string(o.workers) + "\"];\nworkers = [" + workers +
           "];\n"
           "interfaces = ( { port = 0; address = \"198.51.100.1/24\"; mac = \"02:00:00:00:00:01\"; },\n"
           "               { port = 1; address = \"10.10.0.1/16\"; mac = \"02:00:00:00:01:01\"; } );\n"
           "routes = ( { prefix = \"198.18.0.0/15\"; via = \"198.51.100.254\"; } );\n"
           "connections = { capacity = " +
           std::to_string(std::max<uint64_t>(o.conns, 1)) +
           "; };\n"
           "services = ( { vip = \"198.51.100.10\"; port = 80; protocol = \"tcp\"; scheduler = \"" +
           o.sched + "\";\n    reals = (\n" + reals + " ); } );\n";
}

// One's-complement helpers for patching a template frame.
uint16_t fold(uint32_t s) {
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return uint16_t(s);
}

// Sum of big-endian 16-bit words.
uint32_t sum_be(const uint8_t* p, size_t len) {
    uint32_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2) {
        s += uint32_t(p[i] << 8 | p[i + 1]);
    }
    return s;
}

// A frame template; the generator writes the template and patches addresses, ports and
// checksums in place.
struct Template {
    alignas(64) uint8_t bytes[64] = {};
    uint16_t ip_csum_base = 0;   // one's-complement sum of the IP header without src/dst
    uint16_t tcp_csum_base = 0;  // sum of the TCP pseudo-header and header without the tuple
};

Template make_template(const rte_ether_addr& dst_mac, const rte_ether_addr& src_mac,
                       uint8_t flags) {
    Template t;
    uint8_t* f = t.bytes;
    std::memcpy(f, dst_mac.addr_bytes, 6);
    std::memcpy(f + 6, src_mac.addr_bytes, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    ip[3] = 40;  // total length
    ip[6] = 0x40;  // DF
    ip[8] = 64;
    ip[9] = IPPROTO_TCP;
    uint8_t* tcp = ip + 20;
    tcp[7] = 1;  // seq
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14] = 0xff;
    tcp[15] = 0xff;
    // Sums with zero addresses and ports; the generator adds the tuple.
    t.ip_csum_base = fold(sum_be(ip, 20));
    uint32_t ps = sum_be(tcp, 20);
    ps += IPPROTO_TCP + 20;  // pseudo-header: protocol and TCP length
    t.tcp_csum_base = fold(ps);
    return t;
}

inline void fill(rte_mbuf* m, const Template& t, uint32_t src, uint32_t dst, uint16_t sport,
                 uint16_t dport, uint16_t port) {
    uint8_t* f = rte_pktmbuf_mtod(m, uint8_t*);
    std::memcpy(f, t.bytes, 64);
    uint8_t* ip = f + 14;
    const uint32_t s_be = htonl(src), d_be = htonl(dst);
    std::memcpy(ip + 12, &s_be, 4);
    std::memcpy(ip + 16, &d_be, 4);
    const uint32_t tuple = (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff);
    const uint16_t ipc = uint16_t(~fold(t.ip_csum_base + tuple));
    ip[10] = uint8_t(ipc >> 8);
    ip[11] = uint8_t(ipc);
    uint8_t* tcp = ip + 20;
    tcp[0] = uint8_t(sport >> 8);
    tcp[1] = uint8_t(sport);
    tcp[2] = uint8_t(dport >> 8);
    tcp[3] = uint8_t(dport);
    const uint16_t tc = uint16_t(~fold(t.tcp_csum_base + tuple + sport + dport));
    tcp[16] = uint8_t(tc >> 8);
    tcp[17] = uint8_t(tc);
    m->data_len = kFrameLen;
    m->pkt_len = kFrameLen;
    m->port = port;
}

struct Rng {
    uint64_t s;
    uint64_t next() {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        return s * 0x2545F4914F6CDD1Dull;
    }
    // Uniform in [0, n) without a division (multiply-shift).
    uint32_t below(uint32_t n) { return uint32_t(((next() >> 32) * n) >> 32); }
};

struct Shared {
    Options opt;
    const lb::dp::Snapshot* snap = nullptr;
    lb::dp::NeighbourTable* neigh = nullptr;
    rte_mempool* pool = nullptr;
    uint64_t tsc_hz = 0;
    std::atomic<int> ready{0};
    std::atomic<bool> go{false};
};

struct Result {
    uint64_t packets = 0, forwarded = 0, dropped = 0;
    uint64_t lb_cycles = 0, loop_cycles = 0;
    double cpu_share = 1.0;  // of the measured interval, the time this thread was on its CPU
    uint64_t created = 0, expired = 0, evicted = 0;
    uint32_t table_min = UINT32_MAX, table_max = 0;
    size_t memory = 0;
    uint32_t capacity = 0;
    uint64_t moves = 0;
    uint64_t check_failures = 0;
    std::string first_failure;
    std::string error;
};

struct Ctx {
    Shared* sh = nullptr;
    unsigned id = 0;
    Result res;
};

std::string drop_reasons(const lb::dp::WorkerCounters& c) {
    std::string s;
    for (size_t i = 0; i < c.drops.size(); ++i) {
        if (const uint64_t n = c.drops[i].get(); n != 0) {
            s += (s.empty() ? "" : ", ") + std::string(lb::dp::kDropNames[i]) + " " +
                 std::to_string(n);
        }
    }
    return s.empty() ? "no drops" : "drops: " + s;
}

// On a shared machine the TSC also counts the time the thread was preempted: the figures are
// also given per CPU-second, scaling the timed cycles by the thread's share of the interval.
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

uint64_t total_drops(const lb::dp::WorkerCounters& c) {
    uint64_t n = 0;
    for (const auto& d : c.drops) {
        n += d.get();
    }
    return n;
}

// Checks one frame the worker sent.
bool check_frame(const Options& o, rte_mbuf* m, uint16_t port, uint32_t client, uint16_t cport,
                 std::string& why) {
    const uint8_t* f = rte_pktmbuf_mtod(m, const uint8_t*);
    const auto* eth = reinterpret_cast<const rte_ether_hdr*>(f);
    const uint8_t* ip = f + 14;
    auto be32 = [](const uint8_t* p) {
        uint32_t v;
        std::memcpy(&v, p, 4);
        return ntohl(v);
    };
    auto be16 = [](const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); };
    auto real_index = [&](uint32_t a) { return a - kRealBase; };
    if (lb::dp::csum_full(ip, size_t(ip[0] & 0xf) * 4) != 0) {
        why = "bad IP header checksum";
        return false;
    }
    switch (o.mode) {
    case Mode::Nat: {
        const uint32_t dst = be32(ip + 16);
        const rte_ether_addr mac = real_mac(real_index(dst));
        if (real_index(dst) >= o.reals || be16(ip + 20 + 2) != 8080 || be32(ip + 12) != client ||
            be16(ip + 20) != cport || port != 1 || !rte_is_same_ether_addr(&eth->dst_addr, &mac)) {
            why = "NAT inbound not rewritten to a real";
            return false;
        }
        // TCP checksum over the pseudo-header.
        uint32_t s = lb::dp::csum_partial(ip + 12, 8);
        s += htons(IPPROTO_TCP + 20);
        if (lb::dp::csum_full(ip + 20, 20, s) != 0) {
            why = "bad TCP checksum after NAT";
            return false;
        }
        return true;
    }
    case Mode::NatOut: {
        uint32_t s = lb::dp::csum_partial(ip + 12, 8);
        s += htons(IPPROTO_TCP + 20);
        if (be32(ip + 12) != kVip || be16(ip + 20) != kVport || be32(ip + 16) != client ||
            be16(ip + 22) != cport || port != 0 ||
            !rte_is_same_ether_addr(&eth->dst_addr, &kGatewayMac) ||
            lb::dp::csum_full(ip + 20, 20, s) != 0) {
            why = "NAT reply not rewritten back to the VIP";
            return false;
        }
        return true;
    }
    case Mode::Tun: {
        const uint8_t* in = ip + 20;
        if (ip[9] != 4 || real_index(be32(ip + 16)) >= o.reals ||
            be32(ip + 12) != RTE_IPV4(10, 10, 0, 1) || be32(in + 12) != client ||
            be32(in + 16) != kVip || be16(in + 20) != cport || port != 1) {
            why = "not an IP-in-IP packet to a real with the client's packet inside";
            return false;
        }
        return true;
    }
    case Mode::Dr: {
        unsigned r = 0;
        while (r < o.reals) {
            const rte_ether_addr want = real_mac(r);
            if (rte_is_same_ether_addr(&eth->dst_addr, &want)) {
                break;
            }
            ++r;
        }
        if (r == o.reals || be32(ip + 16) != kVip || be32(ip + 12) != client ||
            be16(ip + 20) != cport || port != 1) {
            why = "DR frame not addressed to a real's MAC with the packet untouched";
            return false;
        }
        return true;
    }
    }
    return false;
}

int worker_main(void* arg) {
    auto& cx = *static_cast<Ctx*>(arg);
    Shared& sh = *cx.sh;
    const Options& o = sh.opt;
    Result& res = cx.res;
    const uint16_t nw = uint16_t(o.workers);
    const uint64_t per_worker = (o.conns + nw - 1) / nw;
    std::unique_ptr<Worker> w;
    try {
        w = std::make_unique<Worker>(uint16_t(cx.id), nw, uint32_t(per_worker), *sh.neigh);
    } catch (const std::exception& e) {
        res.error = std::string("cannot allocate the connection table: ") + e.what();
        sh.ready.fetch_add(1);
        return 1;
    }
    // Client addresses this worker owns (a real worker gets only those, by RSS or redirect).
    std::vector<uint32_t> addrs;
    for (uint32_t a = 0; a < kClientAddrs; ++a) {
        const uint32_t be = htonl(kClientBase + a);
        if (Worker::owner_of(be & sh.snap->owner_mask, nw) == cx.id) {
            addrs.push_back(kClientBase + a);
        }
    }
    const uint64_t flows = o.traffic == Traffic::Established ? per_worker : 0;
    if (flows > uint64_t(addrs.size()) * kPortsPerAddr) {
        res.error = "too many connections for the client address range";
        sh.ready.fetch_add(1);
        return 1;
    }
    auto flow_client = [&](uint64_t j) { return addrs[j / kPortsPerAddr]; };
    auto flow_port = [&](uint64_t j) { return uint16_t(1024 + j % kPortsPerAddr); };

    const Template syn = make_template(kMac0, kGatewayMac, 0x02);
    const Template ack = make_template(kMac0, kGatewayMac, 0x10);
    const lb::dp::Snapshot& snap = *sh.snap;
    const uint64_t ms_div = sh.tsc_hz / 1000;
    // With --packets (callgrind's runs) the clock is virtual: 0.7 packets a microsecond, whatever
    // the speed under valgrind, so that expiry and the sweep do the same work in every run (new
    // connections: 140K SYN_RECV entries live at 200 ms, about half of a 256K table, as in the
    // timed runs; not a full table evicting).
    const uint32_t clock0 = uint32_t(rte_rdtsc() / ms_div);
    uint64_t clock_packets = 0;
    auto now_ms = [&] {
        if (o.packets) {
            clock_packets += lb::dp::kBurst;
            return clock0 + uint32_t(clock_packets / 700);
        }
        return uint32_t(rte_rdtsc() / ms_div);
    };
    rte_mbuf* burst[lb::dp::kBurst];

    auto drain = [&](uint64_t& fwd) {
        for (auto& t : w->tx) {
            if (t.n != 0) {
                fwd += t.n;
                rte_pktmbuf_free_bulk(t.pkts.data(), t.n);
                t.n = 0;
            }
        }
        for (auto& r : w->redirect) {  // none expected: every flow is this worker's
            if (r.n != 0) {
                rte_pktmbuf_free_bulk(r.pkts.data(), r.n);
                r.n = 0;
            }
        }
        w->n_slow = 0;
    };

    // Established traffic: one SYN, then one ACK, for every flow (untimed), so that the
    // measured packets meet ESTABLISHED connections.
    std::vector<uint8_t> real_of;  // nat-out: the real of each flow
    if (flows != 0) {
        for (int pass = 0; pass < 2; ++pass) {
            uint64_t fwd = 0;
            for (uint64_t j = 0; j < flows;) {
                const auto n = uint16_t(std::min<uint64_t>(lb::dp::kBurst, flows - j));
                if (rte_pktmbuf_alloc_bulk(sh.pool, burst, n) != 0) {
                    res.error = "mbuf pool empty";
                    sh.ready.fetch_add(1);
                    return 1;
                }
                for (uint16_t k = 0; k < n; ++k, ++j) {
                    fill(burst[k], pass == 0 ? syn : ack, flow_client(j), kVip, flow_port(j), kVport,
                         0);
                }
                const uint32_t now = now_ms();
                w->process_burst(snap, burst, n, now);
                drain(fwd);
                w->housekeeping(now);
            }
            if (fwd != flows || w->conns.size() != flows) {
                res.error = "warm-up: " + std::to_string(fwd) + " of " + std::to_string(flows) +
                            " packets forwarded, " + std::to_string(w->conns.size()) +
                            " connections in the table; " + drop_reasons(w->counters);
                sh.ready.fetch_add(1);
                return 1;
            }
        }
        if (o.mode == Mode::NatOut) {
            // Entries were handed out in order: flow j is entry j.
            real_of.resize(flows);
            for (uint64_t j = 0; j < flows; ++j) {
                const auto& c = w->conns.at(uint32_t(j));
                real_of[j] = uint8_t(ntohl(c.real_ip) - kRealBase);
                if (ntohl(c.client_ip) != flow_client(j) || ntohs(c.client_port) != flow_port(j)) {
                    res.error = "warm-up: entries not in flow order";
                    sh.ready.fetch_add(1);
                    return 1;
                }
            }
        }
    }
    Template reply[256];
    if (o.mode == Mode::NatOut) {
        for (unsigned r = 0; r < o.reals; ++r) {
            reply[r] = make_template(kMac1, real_mac(r), 0x10);
        }
    }

    Rng rng{0x9E3779B97F4A7C15ull ^ (uint64_t(cx.id + 1) << 32)};
    // New connections: tuples walk the owned addresses and their ports; the space (addresses
    // x 256 ports) is far larger than what the table holds, so every SYN is a new tuple.
    uint32_t new_addr = 0;
    uint16_t new_port = 0;
    const uint64_t drops0 = total_drops(w->counters);
    const uint64_t created0 = w->counters.conns_created.get();
    const uint64_t expired0 = w->counters.conns_expired.get();
    const uint64_t evicted0 = w->counters.conns_evicted.get();
    uint64_t check_left = o.check ? 1 << 16 : 0;

    auto gen_burst = [&](uint32_t* cl, uint16_t* cp) -> bool {
        if (rte_pktmbuf_alloc_bulk(sh.pool, burst, lb::dp::kBurst) != 0) {
            return false;
        }
        for (uint16_t k = 0; k < lb::dp::kBurst; ++k) {
            if (o.traffic == Traffic::New) {
                cl[k] = addrs[new_addr];
                cp[k] = uint16_t(1024 + new_port);
                if (++new_port == kPortsPerAddr) {
                    new_port = 0;
                    new_addr = new_addr + 1 == addrs.size() ? 0 : new_addr + 1;
                }
                fill(burst[k], syn, cl[k], kVip, cp[k], kVport, 0);
            } else {
                const uint32_t j = rng.below(uint32_t(flows));
                cl[k] = flow_client(j);
                cp[k] = flow_port(j);
                if (o.mode == Mode::NatOut) {
                    const unsigned r = real_of[j];
                    fill(burst[k], reply[r], kRealBase + r, cl[k], 8080, cp[k], 1);
                } else {
                    fill(burst[k], ack, cl[k], kVip, cp[k], kVport, 0);
                }
            }
        }
        return true;
    };

    // New connections: run for a second first, to reach the steady state.
    if (o.traffic == Traffic::New) {
        uint32_t cl[lb::dp::kBurst];
        uint16_t cp[lb::dp::kBurst];
        const uint64_t until = rte_rdtsc() + sh.tsc_hz * (o.packets ? 0 : 1);
        uint64_t fwd = 0;
        uint64_t warm = o.packets ? std::min<uint64_t>(o.conns * 2, 2'000'000) : UINT64_MAX;
        while (warm != 0 && (o.packets || rte_rdtsc() < until)) {
            if (!gen_burst(cl, cp)) {
                res.error = "mbuf pool empty";
                sh.ready.fetch_add(1);
                return 1;
            }
            const uint32_t now = now_ms();
            w->process_burst(snap, burst, lb::dp::kBurst, now);
            drain(fwd);
            w->housekeeping(now);
            warm = warm > lb::dp::kBurst ? warm - lb::dp::kBurst : 0;
        }
    }

    sh.ready.fetch_add(1);
    while (!sh.go.load(std::memory_order_acquire)) {
        rte_pause();
    }
    const uint64_t start = rte_rdtsc();
    const uint64_t end = start + uint64_t(o.seconds * double(sh.tsc_hz));
    const double cpu0 = thread_cpu_seconds();
    const uint64_t target = o.packets ? (o.packets + nw - 1) / nw : UINT64_MAX;
    uint64_t fwd = 0;
    uint32_t cl[lb::dp::kBurst];
    uint16_t cp[lb::dp::kBurst];
    for (uint64_t turn = 0; res.packets < target; ++turn) {
        if ((turn & 63) == 0) {
            const uint32_t sz = w->conns.size();
            res.table_min = std::min(res.table_min, sz);
            res.table_max = std::max(res.table_max, sz);
            if (!o.packets && rte_rdtsc() >= end) {
                break;
            }
        }
        if (!gen_burst(cl, cp)) {
            res.error = "mbuf pool empty";
            break;
        }
        const uint64_t t0 = rte_rdtsc();
        const uint32_t now = o.packets ? now_ms() : uint32_t(t0 / ms_div);
        w->process_burst(snap, burst, lb::dp::kBurst, now);
        if (check_left != 0) {
            // Outside the timed region would be fairer, but checking is for correctness runs.
            for (size_t p = 0; p < w->tx.size(); ++p) {
                const lb::dp::Staged& t = w->tx[p];
                for (uint16_t k = 0; k < t.n; ++k) {
                    std::string why;
                    if (!check_frame(o, t.pkts[k], uint16_t(p), cl[k], cp[k], why)) {
                        if (res.check_failures++ == 0) {
                            res.first_failure = why;
                        }
                    }
                }
                if (t.n != 0 && t.n != lb::dp::kBurst) {
                    if (res.check_failures++ == 0) {
                        res.first_failure = std::to_string(t.n) + " of 32 frames left";
                    }
                }
            }
            check_left = check_left > lb::dp::kBurst ? check_left - lb::dp::kBurst : 0;
        }
        drain(fwd);
        w->housekeeping(now);
        const uint64_t t1 = rte_rdtsc();
        res.lb_cycles += t1 - t0;
        res.packets += lb::dp::kBurst;
    }
    res.loop_cycles = rte_rdtsc() - start;
    if (res.loop_cycles != 0) {
        const double wall = double(res.loop_cycles) / double(sh.tsc_hz);
        res.cpu_share = std::min(1.0, (thread_cpu_seconds() - cpu0) / wall);
    }
    res.forwarded = fwd;
    res.dropped = total_drops(w->counters) - drops0;
    res.created = w->counters.conns_created.get() - created0;
    res.expired = w->counters.conns_expired.get() - expired0;
    res.evicted = w->counters.conns_evicted.get() - evicted0;
    res.memory = w->conns.memory_bytes();
    res.capacity = w->conns.capacity();
    res.moves = w->conns.moves();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse_args(argc, argv);
    std::vector<std::string> eal = {"lb-harness", "--no-huge", "-m", o.eal_mem, "--no-pci",
                                    "--no-shconf", "--no-telemetry", "--log-level", "*:error",
                                    "--lcores",
                                    o.workers == 2 ? "0@" + std::to_string(o.cpu) + ",1@" +
                                                         std::to_string(o.cpu + 1)
                                                   : "0@" + std::to_string(o.cpu)};
    std::vector<char*> eargv;
    for (auto& s : eal) {
        eargv.push_back(s.data());
    }
    if (rte_eal_init(int(eargv.size()), eargv.data()) < 0) {
        std::fprintf(stderr, "lb-harness: EAL init failed: %s\n", rte_strerror(rte_errno));
        return 1;
    }
    if (rte_lcore_count() < o.workers) {
        std::fprintf(stderr, "lb-harness: %u workers need %u lcores\n", o.workers, o.workers);
        return 1;
    }
    Shared sh;
    sh.opt = o;
    sh.tsc_hz = rte_get_tsc_hz();
    std::unique_ptr<lb::dp::Snapshot> snap;
    try {
        const lb::ctl::Config cfg = lb::ctl::parse_config(config_text(o), "harness.conf");
        std::array<rte_ether_addr, lb::dp::kMaxPorts> macs{};
        macs[0] = kMac0;
        macs[1] = kMac1;
        snap = lb::ctl::build_snapshot(cfg, macs, uint16_t(o.workers), 1);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lb-harness: %s\n", e.what());
        return 2;
    }
    if (o.traffic == Traffic::New) {
        snap->timeouts.tcp_syn_recv = o.syn_timeout_ms;
    }
    sh.snap = snap.get();
    auto neigh = std::make_unique<lb::dp::NeighbourTable>();
    neigh->set(htonl(kGateway), kGatewayMac, 0, lb::dp::NeighState::Static);
    for (unsigned r = 0; r < o.reals; ++r) {
        neigh->set(htonl(kRealBase + r), real_mac(r), 1, lb::dp::NeighState::Static);
    }
    sh.neigh = neigh.get();
    sh.pool = rte_pktmbuf_pool_create("harness", 8191 * o.workers, 256, 0,
                                      RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
    if (sh.pool == nullptr) {
        std::fprintf(stderr, "lb-harness: mbuf pool: %s\n", rte_strerror(rte_errno));
        return 1;
    }

    std::vector<Ctx> ctx(o.workers);
    for (unsigned i = 0; i < o.workers; ++i) {
        ctx[i].sh = &sh;
        ctx[i].id = i;
    }
    unsigned lcore = rte_get_next_lcore(-1, 1, 0);
    for (unsigned i = 1; i < o.workers; ++i) {
        rte_eal_remote_launch(worker_main, &ctx[i], lcore);
        lcore = rte_get_next_lcore(lcore, 1, 0);
    }
    // Worker 0 runs on this lcore; a helper thread releases everyone at once when all are warm.
    std::thread starter([&] {
        while (sh.ready.load() < int(o.workers)) {
            std::this_thread::yield();
        }
        sh.go.store(true, std::memory_order_release);
    });
    worker_main(&ctx[0]);
    starter.join();
    rte_eal_mp_wait_lcore();

    Result tot;
    double lb_mpps = 0, loop_mpps = 0, cpu_mpps = 0, share_sum = 0;
    int rc = 0;
    for (const Ctx& c : ctx) {
        const Result& r = c.res;
        if (!r.error.empty()) {
            std::fprintf(stderr, "lb-harness: worker %u: %s\n", c.id, r.error.c_str());
            rc = 1;
            continue;
        }
        tot.packets += r.packets;
        tot.forwarded += r.forwarded;
        tot.dropped += r.dropped;
        tot.lb_cycles += r.lb_cycles;
        tot.created += r.created;
        tot.expired += r.expired;
        tot.evicted += r.evicted;
        tot.memory += r.memory;
        tot.capacity += r.capacity;
        tot.moves += r.moves;
        tot.table_min = std::min(tot.table_min, r.table_min);
        tot.table_max = std::max(tot.table_max, r.table_max);
        tot.check_failures += r.check_failures;
        if (r.check_failures && tot.first_failure.empty()) {
            tot.first_failure = r.first_failure;
        }
        // Each worker runs on its own core: their rates add up.
        lb_mpps += r.lb_cycles ? double(r.packets) * double(sh.tsc_hz) / double(r.lb_cycles) / 1e6 : 0;
        loop_mpps += r.loop_cycles ? double(r.packets) * double(sh.tsc_hz) / double(r.loop_cycles) / 1e6
                                   : 0;
        const double share = std::max(r.cpu_share, 0.01);
        cpu_mpps += r.lb_cycles ? double(r.packets) * double(sh.tsc_hz) /
                                      (double(r.lb_cycles) * share) / 1e6
                                : 0;
        share_sum += r.cpu_share;
    }
    if (rc != 0) {
        return rc;
    }
    const double ns = tot.packets ? double(tot.lb_cycles) * 1e9 / double(sh.tsc_hz) / double(tot.packets)
                                  : 0;
    std::printf("mode=%s traffic=%s conns=%" PRIu64 " sched=%s workers=%u packets=%" PRIu64
                " forwarded=%" PRIu64 " dropped=%" PRIu64 " ns_per_pkt=%.2f lb_mpps=%.3f"
                " loop_mpps=%.3f created=%" PRIu64 " expired=%" PRIu64 " evicted=%" PRIu64
                " table_min=%u table_max=%u capacity=%u memory=%zu bytes_per_conn=%.1f"
                " moves=%" PRIu64 " check_failures=%" PRIu64
                " cpu_share=%.2f cpu_mpps=%.3f cpu_ns_per_pkt=%.2f\n",
                mode_name(o.mode), o.traffic == Traffic::New ? "new" : "est", o.conns,
                o.sched.c_str(), o.workers, tot.packets, tot.forwarded, tot.dropped,
                ns, lb_mpps, loop_mpps, tot.created, tot.expired, tot.evicted,
                tot.table_min, tot.table_max, tot.capacity, tot.memory,
                double(tot.memory) / double(std::max<uint32_t>(tot.capacity, 1)), tot.moves,
                tot.check_failures, share_sum / o.workers, cpu_mpps,
                cpu_mpps > 0 ? 1e3 * o.workers / cpu_mpps : 0.0);
    if (o.check) {
        if (tot.check_failures != 0) {
            std::fprintf(stderr, "lb-harness: check: %" PRIu64 " failures, first: %s\n",
                         tot.check_failures, tot.first_failure.c_str());
            return 1;
        }
        if (tot.dropped != 0 || tot.forwarded != tot.packets) {
            std::fprintf(stderr,
                         "lb-harness: check: %" PRIu64 " packets, %" PRIu64 " forwarded, %" PRIu64
                         " dropped\n",
                         tot.packets, tot.forwarded, tot.dropped);
            return 1;
        }
        std::fprintf(stderr, "lb-harness: check passed (%" PRIu64 " packets)\n", tot.packets);
    }
    rte_mempool_free(sh.pool);
    rte_eal_cleanup();
    return 0;
}
