#include <catch2/catch.hpp>

#include <vector>

#include <arpa/inet.h>

#include "dataplane/conn_table.hpp"
#include "dataplane/neighbour.hpp"

using namespace lb::dp;

namespace {

Conn make_conn(uint32_t i, uint32_t expire) {
    Conn c{};
    c.client_ip = htonl(0xc6336400u + (i & 0xff) + ((i >> 8) << 16));  // 198.51.x.y
    c.client_port = htons(uint16_t(1024 + (i % 60000)));
    c.vip = htonl(0xc633640a);
    c.vport = htons(80);
    c.real_ip = htonl(0x0a0a0002 + (i & 1));
    c.real_port = htons(8080);
    c.proto = 6;
    c.expire = expire;
    return c;
}

}  // namespace

TEST_CASE("conn table: insert and look up both directions", "[conn]") {
    ConnTable t(1000);
    std::vector<uint32_t> idx;
    for (uint32_t i = 0; i < 1000; ++i) {
        const uint32_t k = t.insert(make_conn(i, 1000));
        REQUIRE(k != ConnTable::kNone);
        idx.push_back(k);
    }
    CHECK(t.size() == 1000);
    for (uint32_t i = 0; i < 1000; ++i) {
        const Conn c = make_conn(i, 1000);
        Dir d{};
        CHECK(t.lookup(in_key(c), ConnTable::hash(in_key(c)), d) == idx[i]);
        CHECK(d == Dir::In);
        CHECK(t.lookup(out_key(c), ConnTable::hash(out_key(c)), d) == idx[i]);
        CHECK(d == Dir::Out);
    }
    // A tuple that was never inserted, and one with another protocol.
    Conn other = make_conn(5000, 0);
    other.client_port = htons(9);
    Dir d{};
    CHECK(t.lookup(in_key(other), ConnTable::hash(in_key(other)), d) == ConnTable::kNone);
    Conn udp = make_conn(3, 0);
    udp.proto = 17;
    CHECK(t.lookup(in_key(udp), ConnTable::hash(in_key(udp)), d) == ConnTable::kNone);
}

TEST_CASE("conn table: full table refuses new entries, existing ones stay", "[conn]") {
    ConnTable t(64);
    for (uint32_t i = 0; i < 64; ++i) {
        REQUIRE(t.insert(make_conn(i, 1000)) != ConnTable::kNone);
    }
    CHECK(t.insert(make_conn(64, 1000)) == ConnTable::kNone);
    CHECK(t.size() == 64);
    for (uint32_t i = 0; i < 64; ++i) {
        const Conn c = make_conn(i, 1000);
        Dir d{};
        CHECK(t.lookup(in_key(c), ConnTable::hash(in_key(c)), d) != ConnTable::kNone);
    }
    // Removing one makes room for exactly one.
    const Conn c0 = make_conn(0, 1000);
    Dir d{};
    t.remove(t.lookup(in_key(c0), ConnTable::hash(in_key(c0)), d));
    CHECK(t.insert(make_conn(64, 1000)) != ConnTable::kNone);
    CHECK(t.insert(make_conn(65, 1000)) == ConnTable::kNone);
}

TEST_CASE("conn table: the sweep removes expired entries only, within its budget", "[conn]") {
    ConnTable t(100);
    for (uint32_t i = 0; i < 100; ++i) {
        REQUIRE(t.insert(make_conn(i, i < 50 ? 100 : 5000)) != ConnTable::kNone);
    }
    int seen = 0;
    // A budget of 10 entries examines 10 slots: at most 10 removals.
    CHECK(t.sweep(200, 10, [&](const Conn&) { ++seen; return true; }) <= 10);
    uint32_t total = uint32_t(seen);
    for (int turn = 0; turn < 20; ++turn) {
        total += t.sweep(200, 10, [&](const Conn&) { ++seen; return true; });
    }
    CHECK(total == 50);
    CHECK(t.size() == 50);
    for (uint32_t i = 0; i < 100; ++i) {
        const Conn c = make_conn(i, 0);
        Dir d{};
        const bool present = t.lookup(out_key(c), ConnTable::hash(out_key(c)), d) != ConnTable::kNone;
        CHECK(present == (i >= 50));
    }
    // Wrap-safe clock: an entry that expires after the 32-bit ms clock wraps.
    ConnTable w(4);
    REQUIRE(w.insert(make_conn(1, 0x00000010u)) != ConnTable::kNone);
    CHECK(w.sweep(0xfffffff0u, 4, [](const Conn&) { return true; }) == 0);
    CHECK(w.sweep(0x00000011u, 4, [](const Conn&) { return true; }) == 1);
}

TEST_CASE("conn table: churn keeps the index consistent", "[conn]") {
    ConnTable t(4096);
    std::vector<uint32_t> live;
    uint64_t seed = 1;
    auto rnd = [&] {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(seed >> 33);
    };
    std::vector<bool> present(200000, false);
    std::vector<uint32_t> slot(200000, 0);
    for (int step = 0; step < 100000; ++step) {
        const uint32_t i = rnd() % 200000;
        const Conn c = make_conn(i, 1000);
        Dir d{};
        const uint32_t found = t.lookup(in_key(c), ConnTable::hash(in_key(c)), d);
        REQUIRE((found != ConnTable::kNone) == present[i]);
        if (present[i]) {
            REQUIRE(found == slot[i]);
            t.remove(found);
            present[i] = false;
        } else if (t.size() < t.capacity()) {
            const uint32_t k = t.insert(c);
            REQUIRE(k != ConnTable::kNone);
            present[i] = true;
            slot[i] = k;
        }
        if (step % 5000 == 0) {
            REQUIRE(t.check_index());
        }
    }
    CHECK(t.check_index());
    // Every live key is found, with its candidate (first bucket, then the second only when
    // the first says some of its keys spilled), as the worker's burst stages do.
    for (uint32_t i = 0; i < present.size(); ++i) {
        const Conn c = make_conn(i, 1000);
        const uint64_t h = ConnTable::hash(in_key(c));
        uint32_t ref = t.candidate(h);
        if (ref == ConnTable::kUnknown) {
            ref = t.candidate_second(h);
        }
        if (present[i]) {
            REQUIRE(ref != ConnTable::kNone);
            if (ref >> 1 == slot[i]) {
                CHECK(t.verify(in_key(c), ref));
            }
        } else if (ref != ConnTable::kNone) {
            CHECK_FALSE(t.verify(in_key(c), ref));  // a signature shared with another key
        }
    }
}

TEST_CASE("tcp state: IPVS-like transitions", "[conn]") {
    using S = TcpState;
    constexpr uint8_t SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04;
    S s = S::None;
    s = tcp_next_state(s, Dir::In, SYN);
    CHECK(s == S::SynRecv);
    s = tcp_next_state(s, Dir::Out, SYN | ACK);
    CHECK(s == S::SynRecv);
    s = tcp_next_state(s, Dir::In, ACK);
    CHECK(s == S::Established);
    // Client closes first.
    S a = tcp_next_state(s, Dir::In, FIN | ACK);
    CHECK(a == S::CloseWait);
    a = tcp_next_state(a, Dir::Out, FIN | ACK);
    CHECK(a == S::LastAck);
    a = tcp_next_state(a, Dir::In, ACK);
    CHECK(a == S::Close);
    // Real closes first.
    S b = tcp_next_state(s, Dir::Out, FIN | ACK);
    CHECK(b == S::FinWait);
    b = tcp_next_state(b, Dir::In, FIN | ACK);
    CHECK(b == S::TimeWait);
    // Reset from either side.
    CHECK(tcp_next_state(s, Dir::In, RST) == S::Close);
    CHECK(tcp_next_state(s, Dir::Out, RST | ACK) == S::Close);
    // A SYN on a finished connection starts over.
    CHECK(tcp_next_state(S::TimeWait, Dir::In, SYN) == S::SynRecv);
    CHECK(std::string(tcp_state_name(S::CloseWait)) == "CLOSE_WAIT");
}

TEST_CASE("conn table: fills to capacity, moving index slots to make room", "[conn]") {
    // Random tuples up to the last entry: the cuckoo moves must find room for every one, and
    // every connection stays findable in both directions afterwards.
    for (const uint32_t cap : {1u, 7u, 1000u, 1u << 16, 100000u}) {
        ConnTable t(cap);
        uint64_t seed = cap;
        auto rnd = [&] {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            return uint32_t(seed >> 32);
        };
        std::vector<Conn> in;
        for (uint32_t i = 0; i < cap; ++i) {
            Conn c{};
            c.client_ip = rnd();
            c.client_port = uint16_t(rnd());
            c.vip = htonl(0xc0000201);
            c.vport = htons(80);
            c.real_ip = htonl(0x0a000000u + (rnd() & 0xff));
            c.real_port = htons(80);
            c.proto = 6;
            const uint32_t k = t.insert(c);
            REQUIRE(k == i);  // free entries are handed out in order
            in.push_back(c);
        }
        CHECK(t.size() == cap);
        CHECK(t.check_index());
        Conn extra = in[0];
        extra.client_port = uint16_t(extra.client_port + 1);
        CHECK(t.insert(extra) == ConnTable::kNone);
        for (uint32_t i = 0; i < cap; ++i) {
            Dir d{};
            REQUIRE(t.lookup(in_key(in[i]), ConnTable::hash(in_key(in[i])), d) == i);
            CHECK(d == Dir::In);
            REQUIRE(t.lookup(out_key(in[i]), ConnTable::hash(out_key(in[i])), d) == i);
            CHECK(d == Dir::Out);
        }
        if (cap >= 1000) {
            // The index is sized for 90 % at most, and buckets are powers of two: between 14.2
            // and 28.5 bytes of index per connection, plus the 32-byte entry.
            CHECK(double(t.memory_bytes()) / cap <= 64.0);
            CHECK(t.moves() > 0);  // a full index does need moves: the test exercised them
        }
        // Emptied in a scrambled order: the spilled counts go back to zero with the keys.
        for (uint32_t k = 0; k < cap; ++k) {
            t.remove(uint32_t((uint64_t(k) * 2654435761u) % cap));
        }
        CHECK(t.size() == 0);
        CHECK(t.check_index());
    }
}

TEST_CASE("conn table: entries are 32 bytes, and removal frees them for reuse", "[conn]") {
    STATIC_REQUIRE(sizeof(Conn) == 32);
    ConnTable t(4);
    const uint32_t a = t.insert(make_conn(1, 1000));
    const uint32_t b = t.insert(make_conn(2, 1000));
    REQUIRE(a == 0);
    REQUIRE(b == 1);
    t.remove(a);
    t.remove(a);  // twice: no effect
    CHECK(t.size() == 1);
    CHECK(t.insert(make_conn(3, 1000)) == a);  // the freed entry first
    Dir d{};
    const Conn c1 = make_conn(1, 1000);
    CHECK(t.lookup(in_key(c1), ConnTable::hash(in_key(c1)), d) == ConnTable::kNone);
    const Conn c3 = make_conn(3, 1000);
    CHECK(t.lookup(out_key(c3), ConnTable::hash(out_key(c3)), d) == a);
    // set_real moves the outbound key.
    REQUIRE(t.set_real(a, htonl(0x0a0a0009), htons(9090)));
    CHECK(t.lookup(out_key(c3), ConnTable::hash(out_key(c3)), d) == ConnTable::kNone);
    CHECK(t.lookup(out_key(t.at(a)), ConnTable::hash(out_key(t.at(a))), d) == a);
    CHECK(d == Dir::Out);
}

TEST_CASE("neighbour table: the generation moves on changes only", "[neigh]") {
    NeighbourTable t;
    const rte_ether_addr a{{0x02, 0, 0, 0, 0, 0x0a}}, b{{0x02, 0, 0, 0, 0, 0x0b}};
    const uint32_t g0 = t.generation();
    REQUIRE(t.set(htonl(0x0a000001), a, 1, NeighState::Reachable));
    const uint32_t g1 = t.generation();
    CHECK(g1 != g0);
    REQUIRE(t.set(htonl(0x0a000001), a, 1, NeighState::Reachable));  // the same again
    CHECK(t.generation() == g1);
    REQUIRE(t.set(htonl(0x0a000001), b, 1, NeighState::Reachable));  // a new MAC
    const uint32_t g2 = t.generation();
    CHECK(g2 != g1);
    t.set_state(htonl(0x0a000001), NeighState::Reachable);  // unchanged
    CHECK(t.generation() == g2);
    t.set_state(htonl(0x0a000001), NeighState::Incomplete);
    CHECK(t.generation() != g2);
    rte_ether_addr got{};
    CHECK_FALSE(t.lookup(htonl(0x0a000001), got));
}
