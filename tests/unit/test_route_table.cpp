// The snapshot's longest-prefix match (RouteTable under Snapshot::route and source_ok) against
// the plain scan it replaced: random route sets of every prefix length, ties included, and the
// addresses at and around each prefix's edges.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include <rte_byteorder.h>

#include "dataplane/snapshot.hpp"

using namespace lb::dp;

namespace {

rte_be32_t be(uint32_t host) { return rte_cpu_to_be_32(host); }

uint32_t mask_of(unsigned len) { return len == 0 ? 0 : ~uint32_t(0) << (32 - len); }

// What route() answered before: the first route, longest prefix first, that covers dst.
const Route* scan(const std::vector<Route>& routes, rte_be32_t dst) {
    for (const Route& r : routes) {
        if ((dst & r.mask) == r.prefix) {
            return &r;
        }
    }
    return nullptr;
}

Route route(uint32_t prefix, unsigned len, uint16_t port) {
    return {be(prefix & mask_of(len)), be(mask_of(len)), uint8_t(len), port, 0};
}

}  // namespace

TEST_CASE("route table: the longest prefix wins, as a scan would pick", "[route]") {
    std::mt19937 rng(7);
    for (int round = 0; round < 40; ++round) {
        Snapshot snap;
        const int n = int(rng() % 60);
        std::vector<uint32_t> probes = {0, 0xFFFFFFFFu};
        for (int i = 0; i < n; ++i) {
            // Cluster the prefixes so that they nest: a few /8s, their /16s, /24s and /32s.
            const uint32_t base = (rng() % 4) << 24 | (rng() % 3) << 16 | (rng() % 3) << 8;
            const unsigned len = unsigned(rng() % 33);
            const uint32_t addr = base | (rng() % 4);
            snap.routes.push_back(route(addr, len, uint16_t(i % 16)));
            const uint32_t first = addr & mask_of(len), last = first | ~mask_of(len);
            for (const uint32_t a : {first, last, first - 1, last + 1, addr}) {
                probes.push_back(a);
            }
        }
        if (round % 5 == 0) {
            snap.routes.push_back(route(0, 0, 3));  // a default route
        }
        snap.finalize();  // sorts longest first (stable: ties keep their order), builds the table
        for (int k = 0; k < 2000; ++k) {
            probes.push_back(uint32_t(rng()) & 0x0303FF07u);
        }
        for (const uint32_t a : probes) {
            INFO("round " << round << " address " << std::hex << a);
            CHECK(snap.route(be(a)) == scan(snap.routes, be(a)));
        }
    }
}

TEST_CASE("route table: ties keep the order finalize sorted them in", "[route]") {
    Snapshot snap;
    snap.routes.push_back(route(0xC0000200u, 24, 1));  // 192.0.2.0/24 by port 1
    snap.routes.push_back(route(0xC0000200u, 24, 2));  // the same prefix again: loses
    snap.routes.push_back(route(0xC0000280u, 25, 3));  // 192.0.2.128/25
    snap.finalize();
    REQUIRE(snap.route(be(0xC0000201u)) != nullptr);
    CHECK(snap.route(be(0xC0000201u))->port == 1);
    CHECK(snap.route(be(0xC00002FFu))->port == 3);
    CHECK(snap.route(be(0xC0000300u)) == nullptr);
}

TEST_CASE("route table: martian sources are flagged, whatever rp_filter says", "[route]") {
    Snapshot snap;
    Interface out;
    out.port = 0;
    out.addr = be(0xC6336401u);  // 198.51.100.1/24
    out.prefix_len = 24;
    out.mask = be(mask_of(24));
    out.rp_filter = RpFilter::Off;
    Interface p2p = out;
    p2p.port = 1;
    p2p.addr = be(0x0A000001u);  // 10.0.0.1/31: no network or broadcast address
    p2p.prefix_len = 31;
    p2p.mask = be(mask_of(31));
    snap.interfaces = {out, p2p};
    snap.routes.push_back(route(0xC6336400u, 24, 0));
    snap.routes.push_back(route(0x0A000000u, 31, 1));
    snap.routes.push_back(route(0xC6336480u, 25, 1));  // a longer route inside the subnet
    snap.finalize();
    CHECK_FALSE(snap.source_ok(be(0xC6336400u), out));  // network
    CHECK_FALSE(snap.source_ok(be(0xC63364FFu), out));  // broadcast (under the /25)
    CHECK(snap.source_ok(be(0xC6336402u), out));
    CHECK(snap.source_ok(be(0x0A000000u), out));  // a /31's both ends are hosts
    CHECK(snap.source_ok(be(0x0A000001u), out));
    // The flag does not change where a packet to that address is routed.
    REQUIRE(snap.route(be(0xC63364FFu)) != nullptr);
    CHECK(snap.route(be(0xC63364FFu))->port == 1);
    // Strict: the route back decides.
    out.rp_filter = RpFilter::Strict;
    CHECK(snap.source_ok(be(0xC6336402u), out));
    CHECK_FALSE(snap.source_ok(be(0xC6336481u), out));  // back by port 1
    CHECK_FALSE(snap.source_ok(be(0x08080808u), out));  // no route back
    out.rp_filter = RpFilter::Loose;
    CHECK(snap.source_ok(be(0xC6336481u), out));
    CHECK_FALSE(snap.source_ok(be(0x08080808u), out));
}

TEST_CASE("route table: the most routes a config may hold fit", "[route]") {
    Snapshot snap;
    for (uint32_t i = 0; i < kMaxRoutes; ++i) {
        // /32s in distinct /16s: each opens two groups, the worst case.
        snap.routes.push_back(route(i << 20 | 5, 32, 1));
    }
    for (uint16_t p = 0; p < kMaxPorts; ++p) {
        snap.routes.push_back(route(0xC0000000u | uint32_t(p) << 8, 25, p));
    }
    REQUIRE_NOTHROW(snap.finalize());
    CHECK(snap.route(be(17u << 20 | 5))->prefix_len == 32);
    CHECK(snap.route(be(17u << 20 | 6)) == nullptr);
}
