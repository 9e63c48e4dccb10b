// Fragment notes under a flood of first fragments: set-associative, the empty and expired ways
// first, then the oldest note no later fragment has followed, then the oldest.
#include <catch2/catch.hpp>

#include <vector>

#include "worker_fixture.hpp"

using namespace lbtest;
using namespace lb::dp;

namespace {

const char* kFragConfig = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
routes = ( { prefix = "198.18.0.0/15"; via = "198.51.100.254"; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 53; protocol = "udp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 5353; forward = "nat"; } ); }
);
)";

// The first fragment (MF, offset 0) of datagram `id` from src, or a later one (offset 100).
Bytes frag(const char* src, uint16_t id, bool first) {
    Pkt u;
    u.src = ip(src);
    u.proto = 17;
    u.dport = 53;
    u.sport = 5000;
    u.ip_id = id;
    u.frag = first ? 0x2000 : 100;
    u.payload = Bytes(40, uint8_t(id));
    return u.build();
}

// n ids from src whose notes share one set.
std::vector<uint16_t> same_set(const char* src, size_t n) {
    std::vector<uint16_t> ids;
    const uint32_t want = Worker::frag_set(ip(src), ip("198.51.100.10"), rte_cpu_to_be_16(1), 17);
    for (uint32_t id = 1; ids.size() < n && id < 65536; ++id) {
        if (Worker::frag_set(ip(src), ip("198.51.100.10"), rte_cpu_to_be_16(uint16_t(id)), 17) ==
            want) {
            ids.push_back(uint16_t(id));
        }
    }
    REQUIRE(ids.size() == n);
    return ids;
}

}  // namespace

TEST_CASE("fragment notes: the oldest unfollowed note goes first", "[process][frag]") {
    Fixture fx(1, 0, 64, kFragConfig);
    const char* c = "198.51.100.2";
    const auto id = same_set(c, 6);  // A..F
    uint32_t now = 1000;
    for (size_t k = 0; k < 4; ++k) {  // A, B, C, D fill the set's four ways
        fx.send({frag(c, id[k], true)}, 0, now++);
    }
    fx.send({frag(c, id[0], false)}, 0, now++);  // A followed
    CHECK(fx.take(1).size() == 5);
    CHECK(fx.w->counters.frag_notes_evicted.get() == 0);
    fx.send({frag(c, id[4], true)}, 0, now++);  // E takes B's way: the oldest unfollowed
    fx.send({frag(c, id[5], true)}, 0, now++);  // F takes C's
    CHECK(fx.w->counters.frag_notes_evicted.get() == 2);
    CHECK(fx.take(1).size() == 2);
    const uint64_t dropped = fx.drops(Drop::Fragment);
    fx.send({frag(c, id[1], false), frag(c, id[2], false)}, 0, now++);
    CHECK(fx.take(1).empty());
    CHECK(fx.drops(Drop::Fragment) == dropped + 2);
    fx.send({frag(c, id[0], false), frag(c, id[3], false), frag(c, id[4], false),
             frag(c, id[5], false)},
            0, now++);
    CHECK(fx.take(1).size() == 4);
    // All four followed now: the next new note takes the oldest (A).
    fx.send({frag(c, id[5], true)}, 0, now++);  // F again: its own way, still followed
    CHECK(fx.w->counters.frag_notes_evicted.get() == 2);
    const auto more = same_set(c, 7);
    fx.send({frag(c, more[6], true)}, 0, now++);
    CHECK(fx.w->counters.frag_notes_evicted.get() == 3);
    fx.send({frag(c, id[0], false), frag(c, id[3], false)}, 0, now++);
    CHECK(fx.take(1).size() == 2 + 1);  // F's first and G's first, then D's later; A's dropped
    // Expired notes are taken without counting an eviction.
    now += 2001;
    for (size_t k = 0; k < 4; ++k) {
        fx.send({frag(c, id[k], true)}, 0, now);
    }
    CHECK(fx.w->counters.frag_notes_evicted.get() == 3);
}

TEST_CASE("fragment notes: a flood of first fragments cannot sweep away a datagram in progress",
          "[process][frag]") {
    Fixture fx(1, 0, 64, kFragConfig);
    // The client's datagram: its first fragment and one later one have passed.
    fx.send({frag("198.51.100.2", 7, true), frag("198.51.100.2", 7, false)}, 0, 1000);
    CHECK(fx.take(1).size() == 2);
    // 10 000 first fragments with distinct ids from an attacker on the same segment (one
    // connection: each first fragment leaves a note).
    uint32_t n = 0;
    for (uint32_t b = 0; b < 10000 / 32 + 1; ++b) {
        std::vector<Bytes> burst;
        for (uint32_t k = 0; k < 32 && n < 10000; ++k, ++n) {
            burst.push_back(frag("198.51.100.66", uint16_t(100 + n), true));
        }
        fx.send(burst, 0, 1000 + b / 100);
        fx.take(1);
    }
    CHECK(fx.w->counters.frag_notes_evicted.get() > 5000);
    // Its last fragment still follows the note.
    const uint64_t dropped = fx.drops(Drop::Fragment);
    fx.send({frag("198.51.100.2", 7, false)}, 0, 1004);
    CHECK(fx.take(1).size() == 1);
    CHECK(fx.drops(Drop::Fragment) == dropped);
}
