// The neighbour rules: what creates an entry, when a MAC is believed, reclaim, bounds; and the
// table's slot reuse after a grace period.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <cstring>
#include <vector>

#include <rte_rcu_qsbr.h>

#include "control/neighbours.hpp"
#include "worker_fixture.hpp"

using namespace lbtest;
using lb::ctl::Neighbours;

namespace {

rte_ether_addr mac_of(uint8_t a, uint8_t b) {
    return rte_ether_addr{{0x02, 0, 0, 0, a, b}};
}

struct Sent {
    uint16_t port;
    rte_be32_t target;
    bool unicast;
    rte_ether_addr to;
};

// The control side alone: a snapshot of the fixture's config, a table, the policy, and the probes
// it sends.
struct Ctl {
    std::unique_ptr<Snapshot> snap;
    NeighbourTable table;
    std::vector<Sent> sent;
    Neighbours n;
    uint64_t now = 1000;

    explicit Ctl(const char* config = kConfig)
        : n(table, [this](uint16_t port, rte_be32_t target, const rte_ether_addr* to) {
              sent.push_back({port, target, to != nullptr, to != nullptr ? *to : rte_ether_addr{}});
          }) {
        const lb::ctl::Config cfg = lb::ctl::parse_config(config, "unit.conf");
        std::array<rte_ether_addr, kMaxPorts> macs{};
        macs[0] = {{0x02, 0, 0, 0, 0, 0x01}};
        macs[1] = {{0x02, 0, 0, 0, 1, 0x01}};
        snap = lb::ctl::build_snapshot(cfg, macs, 1, 1);
    }
    bool resolved(const char* a, rte_ether_addr* mac = nullptr) {
        rte_ether_addr m;
        const bool ok = table.lookup(ip(a), m);
        if (ok && mac != nullptr) {
            *mac = m;
        }
        return ok;
    }
    uint8_t mac_last(const char* a) {
        rte_ether_addr m{};
        return resolved(a, &m) ? m.addr_bytes[5] : 0;
    }
    // Hosts that answer lb's probes (unicast ones only if addressed to their MAC).
    std::vector<std::pair<const char*, rte_ether_addr>> alive;
    // Advances time in 100 ms ticks.
    void run(uint64_t ms) {
        for (uint64_t t = 0; t < ms; t += 100) {
            now += 100;
            const size_t before = sent.size();
            n.tick(now);
            for (size_t i = before; i < sent.size(); ++i) {
                for (const auto& [a, mac] : alive) {
                    if (sent[i].target == ip(a) &&
                        (!sent[i].unicast || sent[i].to.addr_bytes[5] == mac.addr_bytes[5])) {
                        n.on_reply(*snap, sent[i].port, ip(a), mac, now);
                    }
                }
            }
        }
    }
    size_t probes_for(const char* a) {
        size_t k = 0;
        for (const Sent& s : sent) {
            k += s.target == ip(a);
        }
        return k;
    }
};

}  // namespace

TEST_CASE("neighbour: the worker passes replies to control and never learns its own addresses",
          "[neighbour]") {
    Fixture fx;
    fx.send({arp(2, kClientMac, ip("198.51.100.7"), ip("198.51.100.1"), kPortMac0),
             arp(1, kClientMac, ip("198.51.100.10"), ip("198.51.100.1")),
             arp(1, kClientMac, ip("198.51.100.1"), ip("198.51.100.10")),
             arp(2, kClientMac, ip("198.51.100.10"), ip("198.51.100.1"), kPortMac0)},
            0);
    fx.take(0);
    // The reply goes to control as a Reply (taken only if it answers a probe), never a Learn;
    // requests from our own addresses and VIPs are answered but not learned.
    REQUIRE(fx.w->n_slow == 1);
    CHECK(fx.w->slow[0].type == SlowMsg::Reply);
    CHECK(fx.w->slow[0].ip == ip("198.51.100.7"));
    CHECK(fx.drops(Drop::ArpIgnored) == 1);  // the reply from the VIP
    // A reply from off-link (an inside address claimed on the outside port) is ignored here and
    // reported to control, which counts it as a refused claim when it names a known neighbour.
    fx.w->n_slow = 0;
    fx.send({arp(2, kClientMac, ip("10.10.0.2"), ip("198.51.100.1"), kPortMac0)}, 0);
    REQUIRE(fx.w->n_slow == 1);
    CHECK(fx.w->slow[0].type == SlowMsg::Reply);
    CHECK(fx.drops(Drop::ArpIgnored) == 2);
}

TEST_CASE("neighbour: an unsolicited reply creates nothing; a request's sender is learned",
          "[neighbour]") {
    Ctl c;
    c.n.on_reply(*c.snap, 0, ip("198.51.100.7"), mac_of(0, 7), c.now);
    CHECK_FALSE(c.resolved("198.51.100.7"));
    CHECK(c.table.live() == 0);
    CHECK(c.n.counts().unsolicited == 1);
    c.n.on_request(*c.snap, 0, ip("198.51.100.7"), mac_of(0, 7), c.now);
    CHECK(c.mac_last("198.51.100.7") == 7);
    CHECK(c.n.counts().learned == 1);
    CHECK(c.sent.empty());
}

TEST_CASE("neighbour: own addresses, VIPs, broadcast, network and off-link senders are refused",
          "[neighbour]") {
    Ctl c;
    for (const char* a : {"198.51.100.1", "198.51.100.10", "198.51.100.11", "198.51.100.255",
                          "198.51.100.0", "10.10.0.9", "0.0.0.0", "224.0.0.1", "255.255.255.255"}) {
        c.n.on_request(*c.snap, 0, ip(a), mac_of(0, 9), c.now);
        c.n.on_reply(*c.snap, 0, ip(a), mac_of(0, 9), c.now);
        CHECK_FALSE(c.resolved(a));
    }
    CHECK(c.table.live() == 0);
    CHECK(c.n.counts().refused_senders == 18);
}

TEST_CASE("neighbour: a reply is taken while lb's own probe is outstanding", "[neighbour]") {
    Ctl c;
    c.n.on_resolve(*c.snap, 0, ip("198.51.100.20"), c.now);
    REQUIRE(c.sent.size() == 1);
    CHECK_FALSE(c.sent[0].unicast);
    CHECK_FALSE(c.resolved("198.51.100.20"));
    c.n.on_reply(*c.snap, 0, ip("198.51.100.20"), mac_of(0, 20), c.now + 5);
    CHECK(c.mac_last("198.51.100.20") == 20);
    // Too late: an answer long after the probe is unsolicited.
    c.n.on_resolve(*c.snap, 0, ip("198.51.100.21"), c.now);
    c.n.on_reply(*c.snap, 0, ip("198.51.100.21"), mac_of(0, 21), c.now + Neighbours::kAnswerMs + 1);
    CHECK_FALSE(c.resolved("198.51.100.21"));
}

TEST_CASE("neighbour: a real's MAC changes only after lb's probe confirms it", "[neighbour]") {
    Ctl c;
    c.n.want(*c.snap, c.now);
    c.n.tick(c.now);
    REQUIRE(c.probes_for("10.10.0.2") == 1);
    c.n.on_reply(*c.snap, 1, ip("10.10.0.2"), mac_of(1, 0x12), c.now);
    REQUIRE(c.mac_last("10.10.0.2") == 0x12);

    // The hijack: an unsolicited reply (and a request) naming another MAC are refused, and lb asks
    // the MAC it has, by unicast.
    c.sent.clear();
    c.n.on_reply(*c.snap, 1, ip("10.10.0.2"), mac_of(1, 0x66), c.now);
    c.n.on_request(*c.snap, 1, ip("10.10.0.2"), mac_of(1, 0x66), c.now);
    CHECK(c.mac_last("10.10.0.2") == 0x12);
    CHECK(c.n.counts().claims_refused == 2);
    REQUIRE(c.sent.size() == 1);
    CHECK(c.sent[0].unicast);
    CHECK(c.sent[0].to.addr_bytes[5] == 0x12);
    // The attacker answers lb's probe too: still refused; the real answers: it stays.
    c.n.on_reply(*c.snap, 1, ip("10.10.0.2"), mac_of(1, 0x66), c.now + 1);
    c.n.on_reply(*c.snap, 1, ip("10.10.0.2"), mac_of(1, 0x12), c.now + 2);
    CHECK(c.mac_last("10.10.0.2") == 0x12);
    CHECK(c.n.counts().claims_refused == 3);
    CHECK(c.n.counts().mac_changes == 0);
    // Claimed from the other port (off-link there): refused too, no probe for it.
    c.n.on_reply(*c.snap, 0, ip("10.10.0.2"), mac_of(0, 0x66), c.now + 3);
    CHECK(c.n.counts().claims_refused == 4);
    CHECK(c.mac_last("10.10.0.2") == 0x12);
    c.run(2000);
    CHECK(c.probes_for("10.10.0.2") == 1);  // confirmed: no more probes

    // The real really moved: another claim, the old MAC stays silent through the unicast probes,
    // the entry stops being used, and the MAC that answers lb's broadcast is taken.
    c.sent.clear();
    c.n.on_reply(*c.snap, 1, ip("10.10.0.2"), mac_of(1, 0x77), c.now);
    CHECK(c.mac_last("10.10.0.2") == 0x12);
    c.run(Neighbours::kUcastProbes * Neighbours::kProbeInterval);
    CHECK_FALSE(c.resolved("10.10.0.2"));
    REQUIRE(c.probes_for("10.10.0.2") == Neighbours::kUcastProbes + 1);
    for (auto it = c.sent.rbegin(); it != c.sent.rend(); ++it) {
        if (it->target == ip("10.10.0.2")) {
            CHECK_FALSE(it->unicast);
            break;
        }
    }
    c.n.on_reply(*c.snap, 1, ip("10.10.0.2"), mac_of(1, 0x77), c.now);
    CHECK(c.mac_last("10.10.0.2") == 0x77);
    CHECK(c.n.counts().mac_changes == 1);
}

TEST_CASE("neighbour: unused learned entries are reclaimed, used ones refreshed", "[neighbour]") {
    Ctl c;
    c.n.on_request(*c.snap, 0, ip("198.51.100.30"), mac_of(0, 30), c.now);
    c.n.on_request(*c.snap, 0, ip("198.51.100.31"), mac_of(0, 31), c.now);
    REQUIRE(c.table.live() == 2);
    c.alive.push_back({"198.51.100.31", mac_of(0, 31)});
    // A worker uses .31 now and then (each sweep bumps the generation: workers look up again).
    for (int i = 0; i < 8; ++i) {
        CHECK(c.resolved("198.51.100.31"));
        c.run(5000);
    }
    CHECK_FALSE(c.resolved("198.51.100.30"));
    CHECK(c.n.counts().reclaimed == 1);
    // .31 was re-confirmed by unicast probes (it answers each one); .30 was never probed.
    CHECK(c.probes_for("198.51.100.31") >= 1);
    CHECK(c.probes_for("198.51.100.30") == 0);
    CHECK(c.mac_last("198.51.100.31") == 31);
    for (const Sent& s : c.sent) {
        CHECK(s.unicast);
    }
    // An asked-for next hop that never answers is given up after a few probes.
    c.n.on_resolve(*c.snap, 0, ip("198.51.100.40"), c.now);
    c.run(10'000);
    CHECK(c.probes_for("198.51.100.40") == Neighbours::kBcastProbes);
    CHECK(c.table.find(ip("198.51.100.40")) < 0);
}

TEST_CASE("neighbour: 10 000 distinct senders stay bounded; new clients and reals still resolve",
          "[neighbour]") {
    Ctl c(R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "100.64.0.1/15"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
services = (
  { vip = "100.64.0.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; } ); }
);
)");
    c.n.want(*c.snap, c.now);
    for (uint32_t i = 0; i < 10'000; ++i) {
        const rte_be32_t a = rte_cpu_to_be_32(0x64400000u + 0x100 + i);  // 100.64.1.0 + i
        c.n.on_reply(*c.snap, 0, a, mac_of(0, uint8_t(i)), c.now);
        c.n.on_request(*c.snap, 0, a, mac_of(0, uint8_t(i)), c.now);
        c.n.on_resolve(*c.snap, 0, a, c.now);
        if (i % 100 == 0) {
            c.run(100);
        }
    }
    CHECK(c.table.live() <= Neighbours::kMaxDynamic + 1);
    CHECK(c.n.counts().evicted > 0);
    CHECK(c.n.counts().unsolicited == 10'000);
    // Probes are rate limited: 10 s of flood sends at most ~kProbeRate a second.
    CHECK(c.sent.size() <= Neighbours::kProbeRate * 12);
    // The real resolves; a new client is learned; a real added now resolves.
    c.run(1000);
    c.n.on_reply(*c.snap, 1, ip("10.10.0.2"), mac_of(1, 2), c.now);
    CHECK(c.mac_last("10.10.0.2") == 2);
    c.n.on_request(*c.snap, 0, ip("100.65.0.9"), mac_of(0, 9), c.now);
    CHECK(c.mac_last("100.65.0.9") == 9);
    Ctl d(R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "100.64.0.1/15"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
services = (
  { vip = "100.64.0.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; },
              { address = "10.10.0.3"; port = 8080; forward = "nat"; } ); }
);
)");
    c.n.want(*d.snap, c.now);
    c.sent.clear();
    c.run(200);
    REQUIRE(c.probes_for("10.10.0.3") == 1);
    c.n.on_reply(*c.snap, 1, ip("10.10.0.3"), mac_of(1, 3), c.now);
    CHECK(c.mac_last("10.10.0.3") == 3);
    // Unused junk ages out entirely.
    c.run(Neighbours::kStaleMs + Neighbours::kSweepMs * 2);
    CHECK(c.table.live() <= 4);
}

TEST_CASE("neighbour table: a removed slot is reused only after a grace period", "[neighbour]") {
    NeighbourTable t;
    const size_t sz = rte_rcu_qsbr_get_memsize(1);
    auto* q = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(64, (sz + 63) / 64 * 64));
    REQUIRE(rte_rcu_qsbr_init(q, 1) == 0);
    REQUIRE(rte_rcu_qsbr_thread_register(q, 0) == 0);
    rte_rcu_qsbr_thread_online(q, 0);
    t.set_qsbr(q);
    const rte_ether_addr m = mac_of(0, 1);
    REQUIRE(t.set(ip("10.0.0.1"), m, 0, NeighState::Reachable));
    const uint32_t gen = t.generation();
    t.remove(ip("10.0.0.1"));
    CHECK(t.generation() != gen);
    CHECK(t.state(ip("10.0.0.1")) == NeighState::Empty);
    CHECK(t.retiring() == 1);
    t.reclaim();
    CHECK(t.retiring() == 1);  // the reader has not passed a quiescent state
    rte_rcu_qsbr_quiescent(q, 0);
    t.reclaim();
    CHECK(t.retiring() == 0);
    rte_rcu_qsbr_thread_offline(q, 0);
    t.set_qsbr(nullptr);
    std::free(q);

    // Without a qsbr: reuse at once; churn never makes a miss read more than the window.
    for (uint32_t round = 0; round < 20; ++round) {
        for (uint32_t i = 0; i < 8000; ++i) {
            REQUIRE(t.set(rte_cpu_to_be_32(0x0a000000u + round * 8000 + i), m, 0,
                          NeighState::Reachable));
        }
        for (uint32_t i = 0; i < 8000; ++i) {
            t.remove(rte_cpu_to_be_32(0x0a000000u + round * 8000 + i));
        }
    }
    CHECK(t.live() == 0);
    rte_ether_addr out;
    CHECK_FALSE(t.lookup(ip("192.0.2.1"), out));
}
