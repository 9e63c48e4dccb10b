// A RST or a client's FIN is taken only once its receiver is seen to have taken it
// (dataplane/teardown.cpp): an off-path one with a wrong sequence number leaves the connection
// alive, and a SYN after it stays with its real.
#include <catch2/catch.hpp>

#include <string>

#include "worker_fixture.hpp"

using namespace lbtest;
using namespace lb::dp;

namespace {

std::string config(const char* forward, const char* connections = "") {
    return std::string(R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
connections = { capacity = 256; )") +
           connections + R"( };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 80; forward = ")" +
           forward + R"("; },
              { address = "10.10.0.3"; port = 80; forward = ")" +
           forward + R"("; } ); }
);
)";
}

constexpr uint8_t SYN = 0x02, ACK = 0x10, FIN = 0x01, RST = 0x04, PSH = 0x08;
constexpr uint32_t kNow = 1000;

struct Conv {
    Fixture& fx;
    bool nat;
    uint32_t cseq = 1000, rseq = 50000;  // the client's and the real's next sequence numbers

    Pkt client(uint8_t flags, size_t len = 0) const {
        Pkt p;
        p.tcp_flags = flags;
        p.seq = cseq;
        p.ack = rseq;
        p.payload = Bytes(len, 7);
        return p;
    }
    Pkt real(uint8_t flags, size_t len = 0) const {
        Pkt p;
        p.src = ip("10.10.0.2");
        p.sport = 80;
        p.dst = ip("198.51.100.2");
        p.dport = 40000;
        p.src_mac = Mac{{0x02, 0, 0, 0, 1, 0x12}};
        p.dst_mac = kPortMac1;
        p.tcp_flags = flags;
        p.seq = rseq;
        p.ack = cseq;
        p.payload = Bytes(len, 8);
        return p;
    }
    // A connection to 10.10.0.2, ESTABLISHED, with some data both ways.
    void open(uint32_t now = kNow) {
        Pkt syn = client(SYN);
        fx.send({syn.build()}, 0, now);
        REQUIRE(fx.take(1).size() == 1);
        ++cseq;
        if (nat) {
            fx.send({real(SYN | ACK).build()}, 1, now);
            REQUIRE(fx.take(0).size() == 1);
        }
        ++rseq;
        fx.send({client(ACK | PSH, 100).build()}, 0, now);
        REQUIRE(fx.take(1).size() == 1);
        cseq += 100;
        if (nat) {
            fx.send({real(ACK | PSH, 1000).build()}, 1, now);
            REQUIRE(fx.take(0).size() == 1);
        }
        rseq += 1000;
        REQUIRE(state() == TcpState::Established);
    }
    const Conn& conn() const {
        const FlowKey k{ip("198.51.100.2"), ip("198.51.100.10"), rte_cpu_to_be_16(40000),
                        rte_cpu_to_be_16(80), 6};
        Dir d{};
        const uint32_t idx = fx.w->conns.lookup(k, ConnTable::hash(k), d);
        REQUIRE(idx != ConnTable::kNone);
        return fx.w->conns.at(idx);
    }
    TcpState state() const { return TcpState(conn().state); }
};

// The probe in frame f: an ACK from the VIP to the client, its sequence number half the space
// away from `window`; returns its acknowledgment number (the token).
uint32_t check_probe(const Bytes& f, uint32_t window) {
    REQUIRE(f.size() == 60);
    CHECK(lb::dp::csum_full(f.data() + 14, 20) == 0);
    uint32_t s, d;
    std::memcpy(&s, &f[26], 4);
    std::memcpy(&d, &f[30], 4);
    CHECK(s == ip("198.51.100.10"));
    CHECK(d == ip("198.51.100.2"));
    CHECK(be16_at(f, 34) == 80);
    CHECK(be16_at(f, 36) == 40000);
    CHECK(f[14 + 20 + 13] == ACK);
    CHECK(be32_at(f, 38) == window + 0x80000000u);
    return be32_at(f, 42);
}

}  // namespace

TEST_CASE("teardown: a client's RST is taken once the client's answer to the probe confirms it",
          "[process][teardown]") {
    const char* fwd = GENERATE("nat", "dr", "tun");
    const bool nat = std::string(fwd) == "nat";
    const std::string cfg = config(fwd);
    Fixture fx(1, 0, 64, cfg.c_str());
    Conv cv{fx, nat};
    cv.open();
    fx.send({cv.client(RST | ACK).build()}, 0, kNow + 10);
    REQUIRE(fx.take(1).size() == 1);  // the RST goes to the real: its receiver decides
    CHECK(cv.state() == TcpState::RstClient);
    auto out = fx.take(0);
    REQUIRE(out.size() == 1);
    const uint32_t token = check_probe(out[0], cv.rseq);
    CHECK(fx.w->counters.tcp_probes.get() == 1);

    SECTION("the client answers with an ACK: it has the connection, the RST was forged") {
        fx.send({cv.client(ACK).build()}, 0, kNow + 20);
        CHECK(cv.state() == TcpState::Established);
        CHECK(fx.w->counters.tcp_refuted.get() == 1);
        CHECK(cv.conn().expire == kNow + 20 + 900'000);  // ESTABLISHED's idle limit again
    }
    SECTION("the client answers with a RST carrying the token: closed") {
        Pkt ans = cv.client(RST);
        ans.seq = token;
        fx.send({ans.build()}, 0, kNow + 20);
        CHECK(cv.state() == TcpState::Close);
        fx.take(1);
        // The tuple is free for a new connection, scheduled afresh (rr: the other real).
        cv.cseq = 7000;
        fx.send({cv.client(SYN).build()}, 0, kNow + 30);
        out = fx.take(1);
        REQUIRE(out.size() == 1);
        CHECK(out[0][5] == 0x13);
    }
    SECTION("another RST without the token proves nothing") {
        fx.send({cv.client(RST).build()}, 0, kNow + 20);
        CHECK(cv.state() == TcpState::RstClient);
    }
    SECTION("a SYN after the RST stays with the connection's real") {
        cv.cseq = 7000;
        fx.send({cv.client(SYN).build()}, 0, kNow + 20);
        out = fx.take(1);
        REQUIRE(out.size() == 1);
        CHECK(out[0][5] == 0x12);
        CHECK(cv.state() == TcpState::RstClient);
        CHECK(fx.w->svc_stats[0].conns.get() == 1);
    }
    SECTION("unanswered, it ends as CLOSE would") {
        CHECK(cv.conn().expire == kNow + 10 + 10'000);
    }
}

TEST_CASE("teardown: NAT, the real's traffic after a client's RST shows it did not take it",
          "[process][teardown]") {
    const std::string cfg = config("nat");
    Fixture fx(1, 0, 64, cfg.c_str());
    Conv cv{fx, true};
    cv.open();
    fx.send({cv.client(RST | ACK).build()}, 0, kNow + 10);
    fx.take(0);
    fx.take(1);
    fx.send({cv.real(ACK | PSH, 500).build()}, 1, kNow + 20);
    CHECK(cv.state() == TcpState::Established);
    CHECK(fx.w->counters.tcp_refuted.get() == 1);
}

TEST_CASE("teardown: NAT, a real's RST is confirmed by the client's answer", "[process][teardown]") {
    const std::string cfg = config("nat");
    Fixture fx(1, 0, 64, cfg.c_str());
    Conv cv{fx, true};
    cv.open();
    fx.send({cv.real(RST | ACK).build()}, 1, kNow + 10);
    auto out = fx.take(0);
    REQUIRE(out.size() == 2);  // the RST, then the probe
    CHECK((out[0][14 + 20 + 13] & RST) != 0);
    const uint32_t token = check_probe(out[1], cv.rseq);
    CHECK(cv.state() == TcpState::RstReal);
    Pkt ans = cv.client(RST);
    ans.seq = token;
    fx.send({ans.build()}, 0, kNow + 20);
    CHECK(cv.state() == TcpState::Close);
}

TEST_CASE("teardown: NAT, a client's FIN is taken when the real acknowledges it",
          "[process][teardown]") {
    const std::string cfg = config("nat");
    Fixture fx(1, 0, 64, cfg.c_str());
    Conv cv{fx, true};
    cv.open();
    fx.send({cv.client(FIN | ACK).build()}, 0, kNow + 10);
    REQUIRE(fx.take(1).size() == 1);
    CHECK(cv.state() == TcpState::FinClient);
    CHECK(cv.conn().expire == kNow + 10 + 900'000);  // not the shorter limits of a close
    CHECK(fx.take(0).empty());                        // no probe: the real's ACK will tell

    SECTION("the real acknowledges the FIN and sends its own: LAST_ACK, then CLOSE") {
        Pkt a = cv.real(FIN | ACK);
        a.ack = cv.cseq + 1;
        fx.send({a.build()}, 1, kNow + 20);
        CHECK(cv.state() == TcpState::LastAck);
        ++cv.cseq;
        ++cv.rseq;
        fx.send({cv.client(ACK).build()}, 0, kNow + 30);
        CHECK(cv.state() == TcpState::Close);
    }
    SECTION("the real acknowledges the FIN only: CLOSE_WAIT") {
        Pkt a = cv.real(ACK);
        a.ack = cv.cseq + 1;
        fx.send({a.build()}, 1, kNow + 20);
        CHECK(cv.state() == TcpState::CloseWait);
    }
    SECTION("forged: the real's duplicate ACK, then no acknowledgment within a second") {
        fx.send({cv.real(ACK).build()}, 1, kNow + 20);  // ack = cseq: not the FIN's
        CHECK(cv.state() == TcpState::FinClient);
        fx.send({cv.real(ACK | PSH, 100).build()}, 1, kNow + 1500);
        CHECK(cv.state() == TcpState::Established);
        CHECK(fx.w->counters.tcp_refuted.get() == 1);
    }
    SECTION("forged: the client sends data after it") {
        fx.send({cv.client(ACK | PSH, 10).build()}, 0, kNow + 20);
        CHECK(cv.state() == TcpState::Established);
        CHECK(fx.w->counters.tcp_refuted.get() == 1);
    }
}

TEST_CASE("teardown: tun and dr, what the client sends after its FIN tells whether it sent it",
          "[process][teardown]") {
    const char* fwd = GENERATE("dr", "tun");
    const std::string cfg = config(fwd);
    Fixture fx(1, 0, 64, cfg.c_str());
    Conv cv{fx, false};
    cv.open();
    fx.send({cv.client(FIN | ACK).build()}, 0, kNow + 10);
    CHECK(cv.state() == TcpState::FinWait);
    SECTION("its ACK right after the FIN: the FIN was its") {
        ++cv.cseq;
        fx.send({cv.client(ACK).build()}, 0, kNow + 20);
        CHECK(cv.state() == TcpState::FinWait);
        CHECK(fx.w->counters.tcp_refuted.get() == 0);
    }
    SECTION("data") {
        fx.send({cv.client(ACK | PSH, 10).build()}, 0, kNow + 20);
        CHECK(cv.state() == TcpState::Established);
        CHECK(fx.w->counters.tcp_refuted.get() == 1);
    }
    SECTION("an ACK from before the FIN's sequence number (a download's ACKs go on)") {
        fx.send({cv.client(ACK).build()}, 0, kNow + 20);
        CHECK(cv.state() == TcpState::Established);
        CHECK(fx.w->counters.tcp_refuted.get() == 1);
    }
}

TEST_CASE("teardown: without a probe token a RST changes nothing; sloppy_tcp takes it at once",
          "[process][teardown]") {
    SECTION("the RST tokens spent on segments of no connection") {
        const std::string cfg = config("nat");
        Fixture fx(1, 0, 64, cfg.c_str());
        Conv cv{fx, true};
        cv.open();
        for (int b = 0; b < 2; ++b) {  // 64 unknown ACKs: the bucket's burst
            std::vector<Bytes> v;
            for (uint16_t i = 0; i < 32; ++i) {
                Pkt a;
                a.sport = uint16_t(41000 + b * 32 + i);
                a.tcp_flags = ACK;
                v.push_back(a.build());
            }
            fx.send(v, 0, kNow);
            fx.take(0);
        }
        fx.send({cv.client(RST | ACK).build()}, 0, kNow);
        fx.take(1);
        CHECK(fx.take(0).empty());
        CHECK(cv.state() == TcpState::Established);
    }
    SECTION("sloppy_tcp") {
        const std::string cfg = config("nat", "sloppy_tcp = true;");
        Fixture fx(1, 0, 64, cfg.c_str());
        Conv cv{fx, true};
        cv.open();
        fx.send({cv.client(RST | ACK).build()}, 0, kNow + 10);
        fx.take(1);
        CHECK(fx.take(0).empty());
        CHECK(cv.state() == TcpState::Close);
    }
}
