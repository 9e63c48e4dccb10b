// Ingress source checks (Linux's rp_filter and martian sources): what may start a connection,
// be answered (echo) or be translated (ICMP errors), per interface mode.
#include <catch2/catch.hpp>

#include <string>

#include "worker_fixture.hpp"

using namespace lbtest;
using namespace lb::dp;

namespace {

// Port 0 outside (its rp_filter is the case's), port 1 inside; 203.0.113.0/24 is routed out,
// 192.0.2.0/24 in. Port 80: scheduled ahead of the handler; port 81 (persistent): by it.
std::string config(const char* mode) {
    return std::string(R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; )") +
           (mode[0] != 0 ? std::string("rp_filter = \"") + mode + "\"; " : "") + R"(},
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
routes = ( { prefix = "203.0.113.0/24"; via = "198.51.100.254"; },
           { prefix = "192.0.2.0/24"; via = "10.10.0.254"; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; } ); },
  { vip = "198.51.100.10"; port = 81; protocol = "tcp"; scheduler = "rr"; persistence = 60;
    reals = ( { address = "10.10.0.2"; port = 8081; forward = "nat"; } ); }
);
)";
}

struct Case {
    const char* desc;
    const char* src;
    bool strict, loose, off;  // forwarded under each mode
};

}  // namespace

TEST_CASE("rp_filter: which sources from outside may start a connection", "[process][rpf]") {
    const Case cases[] = {
        {"on the outside subnet", "198.51.100.2", true, true, true},
        {"routed out of the port it came in by", "203.0.113.9", true, true, true},
        {"on the inside subnet", "10.10.0.3", false, true, true},
        {"routed out of the inside port", "192.0.2.9", false, true, true},
        {"no route back", "100.64.0.1", false, false, true},
        {"the outside subnet's broadcast", "198.51.100.255", false, false, false},
        {"the outside subnet's network address", "198.51.100.0", false, false, false},
        {"the inside subnet's broadcast", "10.10.0.255", false, false, false},
        {"the director's inside address", "10.10.0.1", false, false, false},
    };
    for (const char* mode : {"", "strict", "loose", "off"}) {
        for (const Case& c : cases) {
            for (const uint16_t dport : {80, 81}) {
                const std::string cfg = config(mode);
                Fixture fx(1, 0, 64, cfg.c_str());
                Pkt syn;
                syn.src = ip(c.src);
                syn.dport = dport;
                fx.send({syn.build()}, 0);
                const std::string m = mode;
                const bool want = m == "off" ? c.off : m == "loose" ? c.loose : c.strict;
                INFO(c.desc << " (" << c.src << "), rp_filter " << (m.empty() ? "default" : m)
                            << ", port " << dport);
                CHECK(fx.take(1).size() == (want ? 1u : 0u));
                CHECK(fx.drops(Drop::Martian) == (want ? 0u : 1u));
                CHECK(fx.w->conns.size() == (want ? (dport == 81 ? 2u : 1u) : 0u));
            }
        }
    }
}

TEST_CASE("rp_filter: echo and ICMP errors from a source that cannot be there are dropped",
          "[process][rpf]") {
    const std::string cfg = config("strict");
    Fixture fx(1, 0, 64, cfg.c_str());
    Pkt echo;
    echo.proto = 1;
    echo.icmp_type = 8;
    echo.src = ip("10.10.0.3");  // the inside subnet, from outside: no reply to it
    fx.send({echo.build()}, 0);
    CHECK(fx.take(0).empty());
    CHECK(fx.drops(Drop::Martian) == 1);
    echo.src = ip("198.51.100.2");
    fx.send({echo.build()}, 0);
    CHECK(fx.take(0).size() == 1);
    // An ICMP error from outside about a connection, from an inside source: dropped.
    Pkt syn;
    fx.send({syn.build()}, 0);
    REQUIRE(fx.take(1).size() == 1);
    Pkt err;
    err.proto = 1;
    err.icmp_type = 3;
    err.icmp_code = 4;
    err.src = ip("10.10.0.9");
    Pkt quoted;  // our reply VIP:80 -> client:40000
    quoted.src = ip("198.51.100.10");
    quoted.dst = ip("198.51.100.2");
    quoted.sport = 80;
    quoted.dport = 40000;
    const Bytes q = quoted.build();
    err.payload.assign(q.begin() + 14, q.begin() + 14 + 28);
    fx.send({err.build()}, 0);
    CHECK(fx.take(1).empty());
    CHECK(fx.drops(Drop::Martian) == 2);
    err.src = ip("198.51.100.254");  // the router outside: translated to the real
    fx.send({err.build()}, 0);
    CHECK(fx.take(1).size() == 1);
    CHECK(fx.drops(Drop::Martian) == 2);
}

TEST_CASE("rp_filter: the config writer keeps the mode", "[config][rpf]") {
    for (const char* mode : {"strict", "loose", "off"}) {
        const lb::ctl::Config c = lb::ctl::parse_config(config(mode), "rpf.conf");
        REQUIRE(c.interfaces.size() == 2);
        CHECK(kRpFilterNames[size_t(c.interfaces[0].rp_filter)] == mode);
        CHECK(c.interfaces[1].rp_filter == RpFilter::Strict);  // the default
        const lb::ctl::Config back =
            lb::ctl::parse_config(lb::ctl::format_config(c), "rpf-again.conf");
        CHECK(back.interfaces[0].rp_filter == c.interfaces[0].rp_filter);
    }
}
