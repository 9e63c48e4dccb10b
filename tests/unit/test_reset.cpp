// connections.reset_unknown: a TCP segment of no connection gets a RST, rate-limited, so that
// the clients of a restarted director fail fast instead of waiting for their timeouts.
#include <catch2/catch.hpp>

#include <string>

#include "worker_fixture.hpp"

using namespace lbtest;
using namespace lb::dp;

namespace {

std::string config(const char* connections) {
    return std::string(R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
connections = { capacity = 256; )") +
           connections + R"( };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; },
              { address = "10.10.0.3"; port = 8080; forward = "nat"; } ); }
);
)";
}

// The TCP segment in frame f is a valid RST from src:sport to dst:dport; returns its flags.
uint8_t check_rst(const Bytes& f, const char* src, uint16_t sport, const char* dst,
                  uint16_t dport) {
    REQUIRE(f.size() == 60);
    CHECK(be16_at(f, 12) == 0x0800);
    CHECK(lb::dp::csum_full(f.data() + 14, 20) == 0);
    CHECK(be16_at(f, 16) == 40);
    uint32_t s, d;
    std::memcpy(&s, &f[26], 4);
    std::memcpy(&d, &f[30], 4);
    CHECK(s == ip(src));
    CHECK(d == ip(dst));
    CHECK(be16_at(f, 34) == sport);
    CHECK(be16_at(f, 36) == dport);
    // The TCP checksum over the pseudo-header and the 20-byte header.
    Bytes pseudo(f.begin() + 26, f.begin() + 34);
    pseudo.insert(pseudo.end(), {0, 6, 0, 20});
    pseudo.insert(pseudo.end(), f.begin() + 34, f.begin() + 54);
    CHECK(lb::dp::csum_full(pseudo.data(), pseudo.size()) == 0);
    CHECK((f[14 + 20 + 13] & 0x04) != 0);
    return f[14 + 20 + 13];
}

}  // namespace

TEST_CASE("reset_unknown: segments of no connection to a VIP get RFC 793's RST", "[process][rst]") {
    const std::string cfg = config("");
    Fixture fx(1, 0, 64, cfg.c_str());
    Pkt ack;  // an ACK with data, as after a restart
    ack.tcp_flags = 0x18;
    ack.seq = 7000;
    ack.ack = 123456;
    ack.payload = Bytes(100, 1);
    Pkt fin;  // a FIN without ACK: the RST acknowledges it
    fin.sport = 40001;
    fin.tcp_flags = 0x01;
    fin.seq = 9000;
    fin.payload = Bytes(10, 2);
    Pkt rst;  // a RST is never answered
    rst.sport = 40002;
    rst.tcp_flags = 0x04;
    fx.send({ack.build(), fin.build(), rst.build()}, 0);
    const auto out = fx.take(0);
    REQUIRE(out.size() == 2);
    CHECK(check_rst(out[0], "198.51.100.10", 80, "198.51.100.2", 40000) == 0x04);
    CHECK(be32_at(out[0], 38) == 123456);  // <SEQ=SEG.ACK>
    CHECK(check_rst(out[1], "198.51.100.10", 80, "198.51.100.2", 40001) == 0x14);
    CHECK(be32_at(out[1], 38) == 0);
    CHECK(be32_at(out[1], 42) == 9000 + 10 + 1);  // <ACK=SEG.SEQ+SEG.LEN>, the FIN counts
    // To the client's MAC, from the port's.
    CHECK(Bytes(out[0].begin(), out[0].begin() + 6) == Bytes{0x02, 0, 0, 0, 0, 0x02});
    CHECK(fx.w->counters.resets_sent.get() == 2);
    CHECK(fx.drops(Drop::NoConnection) == 1);  // the RST
    CHECK(fx.take(1).empty());
    CHECK(fx.w->conns.size() == 0);
}

TEST_CASE("reset_unknown: a real still talking to a forgotten client: both ends get a RST "
          "that fits their window",
          "[process][rst]") {
    const std::string cfg = config("");
    Fixture fx(1, 0, 64, cfg.c_str());
    Pkt data;  // 10.10.0.2:8080 -> client:40000, data of a connection lb does not know
    data.src = ip("10.10.0.2");
    data.sport = 8080;
    data.dst = ip("198.51.100.2");
    data.dport = 40000;
    data.tcp_flags = 0x18;
    data.seq = 555555;
    data.ack = 1;
    data.src_mac = Mac{{0x02, 0, 0, 0, 1, 0x12}};
    data.dst_mac = kPortMac1;
    data.payload = Bytes(200, 3);
    data.ack = 777;
    fx.send({data.build()}, 1);
    // To the real, from the client's address: RFC 793's answer, <SEQ=SEG.ACK>.
    auto out = fx.take(1);
    REQUIRE(out.size() == 1);
    CHECK(check_rst(out[0], "198.51.100.2", 40000, "10.10.0.2", 8080) == 0x04);
    CHECK(be32_at(out[0], 38) == 777);
    // To the client, from the VIP: an ACK it cannot accept (the real's sequence number may be
    // behind the client's window when the real retransmits), which it answers.
    out = fx.take(0);
    REQUIRE(out.size() == 1);
    CHECK(out[0][14 + 20 + 13] == 0x10);
    CHECK(be32_at(out[0], 38) == 555555 + 0x80000000u);
    CHECK(fx.w->counters.tcp_probes.get() == 1);
    // Its answer, a segment of no connection, gets the RST that fits its window exactly.
    Pkt answer;
    answer.tcp_flags = 0x10;
    answer.seq = 778;
    answer.ack = 555000;  // what the client has received
    fx.send({answer.build()}, 0);
    out = fx.take(0);
    REQUIRE(out.size() == 1);
    CHECK(check_rst(out[0], "198.51.100.10", 80, "198.51.100.2", 40000) == 0x04);
    CHECK(be32_at(out[0], 38) == 555000);
    // While the client's tuple is a live connection (to .3 now), a stray segment from .2 is
    // dropped: that connection is not the director's to end.
    Pkt syn;
    fx.send({syn.build()}, 0);
    REQUIRE(fx.take(1).size() == 1);  // to .2 (rr's first)
    Pkt syn2;
    syn2.sport = 40001;
    fx.send({syn2.build()}, 0);
    REQUIRE(fx.take(1).size() == 1);  // to .3
    data.src = ip("10.10.0.3");
    data.src_mac = Mac{{0x02, 0, 0, 0, 1, 0x13}};  // .3 about client:40000, which is .2's
    fx.send({data.build()}, 1);
    CHECK(fx.take(0).empty());
    CHECK(fx.take(1).empty());
    CHECK(fx.drops(Drop::NoConnection) == 1);
    CHECK(fx.w->counters.resets_sent.get() == 2);
}

TEST_CASE("reset_unknown: rate-limited, off by config and with sloppy_tcp", "[process][rst]") {
    SECTION("at most a burst of 64, then 1000 a second") {
        const std::string cfg = config("");
        Fixture fx(1, 0, 256, cfg.c_str());
        uint64_t sent = 0;
        for (uint16_t b = 0; b < 4; ++b) {
            std::vector<Bytes> burst;
            for (uint16_t k = 0; k < 32; ++k) {
                Pkt a;
                a.tcp_flags = 0x10;
                a.sport = uint16_t(1000 + b * 32 + k);
                burst.push_back(a.build());
            }
            fx.send(burst, 0, 5000);  // one millisecond
            sent += fx.take(0).size();
        }
        CHECK(sent == Worker::kResetBurst);
        CHECK(fx.w->counters.resets_limited.get() == 128 - Worker::kResetBurst);
        CHECK(fx.drops(Drop::NoConnection) == 128 - Worker::kResetBurst);
        // 10 ms later: 10 more.
        std::vector<Bytes> burst;
        for (uint16_t k = 0; k < 32; ++k) {
            Pkt a;
            a.tcp_flags = 0x10;
            a.sport = uint16_t(3000 + k);
            burst.push_back(a.build());
        }
        fx.send(burst, 0, 5010);
        CHECK(fx.take(0).size() == 10);
    }
    for (const char* c : {"reset_unknown = false;", "sloppy_tcp = true;"}) {
        const std::string cfg = config(c);
        Fixture fx(1, 0, 64, cfg.c_str());
        CHECK_FALSE(fx.snap->reset_unknown);
        Pkt rst;
        rst.tcp_flags = 0x04;  // with sloppy_tcp only a RST stays without a connection
        fx.send({rst.build()}, 0);
        CHECK(fx.take(0).empty());
        CHECK(fx.w->counters.resets_sent.get() == 0);
    }
}

TEST_CASE("reset_unknown: no RST to a source that cannot be there", "[process][rst][rpf]") {
    const std::string cfg = config("");
    Fixture fx(1, 0, 64, cfg.c_str());
    Pkt a;
    a.tcp_flags = 0x10;
    a.src = ip("10.10.0.7");  // the inside subnet, from outside
    fx.send({a.build()}, 0);
    CHECK(fx.take(0).empty());
    CHECK(fx.take(1).empty());
    CHECK(fx.drops(Drop::Martian) == 1);
    CHECK(fx.w->counters.resets_sent.get() == 0);
}
