#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include "dataplane/conn_table.hpp"

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
