// lbctl: ipvsadm's command line (parser, the commands_v_options checks, the operations of each
// verb with ipvsadm's defaults, -R's rule lines) and the listings. Expected listings are built
// with ipvsadm 1.31's own printf formats (cited at each use) through snprintf, so that the
// implementation's padding code is checked against printf, not against itself.
#include <algorithm>
#include <array>
#include <catch2/catch.hpp>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "control/protocol.hpp"
#include "tools/lbctl_format.hpp"

using namespace lb::ctl;

namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();
using V = std::vector<std::string>;

uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

[[gnu::format(printf, 1, 2)]] std::string pf(const char* fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    REQUIRE(n >= 0);
    REQUIRE(size_t(n) < sizeof buf);
    return buf;
}

RealStatus real(uint32_t addr, uint16_t port, uint8_t fwd, uint32_t weight, uint64_t active,
                uint64_t inactive, std::array<uint64_t, 5> st) {
    RealStatus r;
    r.addr = addr;
    r.port = port;
    r.forward = fwd;
    r.weight = weight;
    r.active = active;
    r.inactive = inactive;
    r.conns = st[0];
    r.in_pkts = st[1];
    r.out_pkts = st[2];
    r.in_bytes = st[3];
    r.out_bytes = st[4];
    return r;
}

ServiceStatus service(uint8_t proto, uint32_t vip, uint16_t port, std::string sched,
                      uint32_t persistence, std::array<uint64_t, 5> st,
                      std::vector<RealStatus> reals) {
    ServiceStatus s;
    s.proto = proto;
    s.vip = vip;
    s.port = port;
    s.scheduler = std::move(sched);
    s.persistence = persistence;
    s.conns = st[0];
    s.in_pkts = st[1];
    s.out_pkts = st[2];
    s.in_bytes = st[3];
    s.out_bytes = st[4];
    s.reals = std::move(reals);
    return s;
}

// Services and reals deliberately out of ipvsadm's sort order.
Status sample_status() {
    Status s;
    s.conn_capacity = 1048576;
    s.tcp_timeout = 900;
    s.tcpfin_timeout = 120;
    s.udp_timeout = 300;
    s.services.push_back(service(17, ip(10, 0, 0, 2), 53, "rr", 0, {0, 0, 0, 0, 0},
                                 {real(ip(10, 1, 0, 1), 53, 1, 100, 0, 12345, {1, 1, 1, 1, 1})}));
    s.services.push_back(
        service(6, ip(10, 0, 0, 1), 443, "rr", 300, {5, 6, 7, 8, 9},
                {real(ip(172, 16, 0, 1), 443, 2, 65535, kU32Max, 1, {10, 20, 30, 40, 50})}));
    s.services.push_back(service(
        6, ip(10, 0, 0, 1), 80, "wrr", 0, {1000, 123456, 99999999, 100000000, 123456789012ULL},
        {real(ip(192, 168, 1, 10), 8081, 0, 0, 7, 0, {0, 0, 0, 0, 0}),
         real(ip(192, 168, 1, 10), 8080, 0, 1, 0, 0,
              {999, 1000000000ULL, 99999999999999ULL, 100000000000000ULL, kU64Max}),
         real(ip(192, 168, 1, 9), 8080, 0, 3, 12, 40, {1, 2, 3, 4, 5})}));
    return s;
}

// sample_status() with rates, thresholds, persistence templates, flags and a mask.
Status rich_status() {
    Status s = sample_status();
    ServiceStatus& web = s.services[2];  // TCP 10.0.0.1:80
    web.rates = Rates{12, 345, 300, 123456789, 99999999};
    web.reals[2].rates = Rates{5, 100, 90, 1000000000, 5};    // 192.168.1.9:8080
    web.reals[1].rates = Rates{123456789, 0, 7, 0, kU64Max};  // 192.168.1.10:8080
    web.reals[2].u_threshold = 100;
    web.reals[2].l_threshold = 50;
    web.reals[1].u_threshold = 2147483647;
    ServiceStatus& tls = s.services[1];  // TCP 10.0.0.1:443
    tls.persist_mask = 0xFFFFFF00;
    tls.reals[0].persist = 42;
    s.services.push_back(service(17, ip(10, 0, 0, 3), 53, "sh", 0, {0, 0, 0, 0, 0},
                                 {real(ip(10, 1, 0, 2), 5353, 0, 2, 0, 0, {0, 0, 0, 0, 0})}));
    s.services.back().sched_flags = "sh-fallback,sh-port";
    return s;
}

ListOptions fmt(ListFormat f) {
    ListOptions o;
    o.format = f;
    return o;
}

std::string op_text(const Op& o) {
    return "kind " + std::to_string(int(o.kind)) + " svc " + std::to_string(o.has_service) + " " +
           std::to_string(o.proto) + " " + format_addr_port(o.vip, o.port) + " sched '" +
           o.scheduler + "' flags '" + o.sched_flags + "' p " + std::to_string(o.persistence) +
           " M " + format_addr(o.persist_mask) + " real " +
           format_addr_port(o.real_addr, o.real_port) + " fwd " + std::to_string(o.forward) +
           " w " + std::to_string(o.weight) + " x " + std::to_string(o.u_threshold) + " y " +
           std::to_string(o.l_threshold) + " set " + std::to_string(o.tcp) + "/" +
           std::to_string(o.tcpfin) + "/" + std::to_string(o.udp);
}

void check_ops(const std::vector<Op>& got, const std::vector<Op>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        CHECK(op_text(got[i]) == op_text(want[i]));
    }
}

Op op(OpKind kind) {
    Op o;
    o.kind = kind;
    return o;
}

Op svc_op(OpKind kind, uint8_t proto, uint32_t vip, uint16_t port) {
    Op o = op(kind);
    o.has_service = true;
    o.proto = proto;
    o.vip = vip;
    o.port = port;
    return o;
}

Op add_service(uint8_t proto, uint32_t vip, uint16_t port, std::string sched,
               std::string flags = "", uint32_t persistence = 0, uint32_t mask = kU32Max,
               OpKind kind = OpKind::AddService) {
    Op o = svc_op(kind, proto, vip, port);
    o.scheduler = std::move(sched);
    o.sched_flags = std::move(flags);
    o.persistence = persistence;
    o.persist_mask = mask;
    return o;
}

Op add_real(uint8_t proto, uint32_t vip, uint16_t port, uint32_t raddr, uint16_t rport, uint8_t fwd,
            uint32_t weight, uint32_t x = 0, uint32_t y = 0, OpKind kind = OpKind::AddReal) {
    Op o = svc_op(kind, proto, vip, port);
    o.real_addr = raddr;
    o.real_port = rport;
    o.forward = fwd;
    o.weight = weight;
    o.u_threshold = x;
    o.l_threshold = y;
    return o;
}

std::vector<Op> ops_of(const V& argv) { return command_ops(parse_args(argv)); }

// What lb would hold after applying ops to an empty table (config fields only).
Status apply_to_empty(const std::vector<Op>& ops) {
    Status s;
    for (const Op& o : ops) {
        if (o.kind == OpKind::AddService) {
            ServiceStatus svc;
            svc.proto = o.proto;
            svc.vip = o.vip;
            svc.port = o.port;
            svc.scheduler = o.scheduler;
            svc.sched_flags = o.sched_flags;
            svc.persistence = o.persistence;
            svc.persist_mask = o.persist_mask;
            s.services.push_back(svc);
        } else if (o.kind == OpKind::AddReal) {
            for (ServiceStatus& svc : s.services) {
                if (svc.proto == o.proto && svc.vip == o.vip && svc.port == o.port) {
                    RealStatus r;
                    r.addr = o.real_addr;
                    r.port = o.real_port;
                    r.forward = o.forward;
                    r.weight = o.weight;
                    r.u_threshold = o.u_threshold;
                    r.l_threshold = o.l_threshold;
                    svc.reals.push_back(r);
                }
            }
        } else {
            FAIL("unexpected operation " << op_text(o));
        }
    }
    return s;
}

// The status with every counter zeroed: what a restored table lists.
Status config_only(Status s) {
    for (ServiceStatus& svc : s.services) {
        ServiceStatus clean;
        clean.proto = svc.proto;
        clean.vip = svc.vip;
        clean.port = svc.port;
        clean.scheduler = svc.scheduler;
        clean.sched_flags = svc.sched_flags;
        clean.persistence = svc.persistence;
        clean.persist_mask = svc.persist_mask;
        for (const RealStatus& r : svc.reals) {
            RealStatus c;
            c.addr = r.addr;
            c.port = r.port;
            c.forward = r.forward;
            c.weight = r.weight;
            c.u_threshold = r.u_threshold;
            c.l_threshold = r.l_threshold;
            clean.reals.push_back(c);
        }
        svc = clean;
    }
    s.conn_capacity = 0;
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Listings

TEST_CASE("ipvsadm number abbreviation", "[lbctl]") {
    struct Case {
        uint64_t v;
        const char* abbreviated;
        const char* exact;
    };
    const Case cases[] = {
        {0, "        0", "        0"},
        {1000, "     1000", "     1000"},
        {123456, "   123456", "   123456"},  // ipvsadm abbreviates only from 100 million on
        {99999999, " 99999999", " 99999999"},
        {100000000, "  100000K", " 100000000"},
        {123456789, "  123456K", " 123456789"},
        {999999999, "  999999K", " 999999999"},
        {1000000000, "    1000M", " 1000000000"},
        {99999999999ULL, "   99999M", " 99999999999"},
        {100000000000ULL, "     100G", " 100000000000"},
        {99999999999999ULL, "   99999G", " 99999999999999"},
        {100000000000000ULL, "     100T", " 100000000000000"},
        {kU64Max, "18446744T", " 18446744073709551615"},
    };
    for (const Case& c : cases) {
        INFO(c.v);
        CHECK(format_number(c.v, false) == c.abbreviated);
        CHECK(format_number(c.v, true) == c.exact);
    }
}

TEST_CASE("lbctl -L -n prints what ipvsadm -L -n prints", "[lbctl]") {
    // ipvsadm 1.31's print_title and print_service_entry: "%s %s" (svc_name, scheduler) and
    // "  -> %-28s %-7s %-6d %-10u %-10u\n".
    const std::string expect =
        "IP Virtual Server version 1.2.1 (size=1048576)\n"
        "Prot LocalAddress:Port Scheduler Flags\n"
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
        "TCP  10.0.0.1:80 wrr\n"
        "  -> 192.168.1.9:8080             Masq    3      12         40        \n"
        "  -> 192.168.1.10:8080            Masq    1      0          0         \n"
        "  -> 192.168.1.10:8081            Masq    0      7          0         \n"
        "TCP  10.0.0.1:443 rr persistent 300\n"
        "  -> 172.16.0.1:443               Route   65535  4294967295 1         \n"
        "UDP  10.0.0.2:53 rr\n"
        "  -> 10.1.0.1:53                  Tunnel  100    0          12345     \n";
    CHECK(format_list(sample_status(), ListOptions{}) == expect);

    // Scheduler flags and a persistence mask, as ipvsadm 1.28+ prints them.
    Status flagged;
    flagged.conn_capacity = 4096;
    flagged.services.push_back(service(6, ip(10, 0, 0, 1), 80, "sh", 300, {0, 0, 0, 0, 0}, {}));
    flagged.services[0].sched_flags = "sh-fallback,sh-port";
    flagged.services[0].persist_mask = 0xFFFFFF00;
    CHECK_THAT(format_list(flagged, ListOptions{}),
               Catch::EndsWith("TCP  10.0.0.1:80 sh (sh-fallback,sh-port) persistent 300 mask "
                               "255.255.255.0\n"));

    Status empty;
    empty.conn_capacity = 4096;
    CHECK(format_list(empty, ListOptions{}) ==
          "IP Virtual Server version 1.2.1 (size=4096)\n"
          "Prot LocalAddress:Port Scheduler Flags\n"
          "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
}

TEST_CASE("lbctl -L -n --stats [--exact] prints what ipvsadm prints", "[lbctl]") {
    const std::string head =
        "IP Virtual Server version 1.2.1 (size=1048576)\n"
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n"
        "  -> RemoteAddress:Port\n";
    const std::string rest =
        "  -> 192.168.1.10:8081                   0        0        0        0        0\n"
        "TCP  10.0.0.1:443                        5        6        7        8        9\n"
        "  -> 172.16.0.1:443                     10       20       30       40       50\n"
        "UDP  10.0.0.2:53                         0        0        0        0        0\n"
        "  -> 10.1.0.1:53                         1        1        1        1        1\n";
    ListOptions opts = fmt(ListFormat::Stats);
    CHECK(format_list(sample_status(), opts) ==
          head +
              "TCP  10.0.0.1:80                      1000   123456 99999999  100000K     123G\n"
              "  -> 192.168.1.9:8080                    1        2        3        4        5\n"
              "  -> 192.168.1.10:8080                 999    1000M   99999G     100T18446744T\n" +
              rest);
    opts.exact = true;
    CHECK(format_list(sample_status(), opts) ==
          head +
              "TCP  10.0.0.1:80                      1000   123456 99999999 100000000 "
              "123456789012\n"
              "  -> 192.168.1.9:8080                    1        2        3        4        5\n"
              "  -> 192.168.1.10:8080                 999 1000000000 99999999999999 "
              "100000000000000 18446744073709551615\n" +
              rest);
}

TEST_CASE("lbctl listing: --nosort and -t/-u", "[lbctl]") {
    ListOptions opts;
    opts.sort = false;
    const std::string unsorted = format_list(sample_status(), opts);
    CHECK(unsorted.find("UDP  10.0.0.2:53") < unsorted.find("TCP  10.0.0.1:443"));
    CHECK(unsorted.find("192.168.1.10:8081") < unsorted.find("192.168.1.9:8080"));

    opts = ListOptions{};
    opts.service = ServiceKey{6, ip(10, 0, 0, 1), 443};
    CHECK(format_list(sample_status(), opts) ==
          "Prot LocalAddress:Port Scheduler Flags\n"
          "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
          "TCP  10.0.0.1:443 rr persistent 300\n"
          "  -> 172.16.0.1:443               Route   65535  4294967295 1         \n");
    opts.service = ServiceKey{17, ip(10, 0, 0, 1), 443};
    CHECK_THROWS_WITH(format_list(sample_status(), opts), "No such service");
    opts.json = true;
    CHECK_THROWS_WITH(json_list(sample_status(), opts), "No such service");
}

TEST_CASE("lbctl -L --rate prints what ipvsadm prints", "[lbctl]") {
    const Status st = rich_status();
    // print_title (FMT_RATE): "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
    std::string expect = "IP Virtual Server version 1.2.1 (size=1048576)\n" +
                         pf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
                            "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS");
    // Service: "%-33s" then print_largenum ("%9llu", or "%8lluK" from 100 million) of the rates.
    expect += pf("%-33s%9d%9d%9d%8dK%9d\n", "TCP  10.0.0.1:80", 12, 345, 300, 123456, 99999999);
    // Real: "  -> %-28s %8llu %8llu %8llu" then print_largenum of inbps and outbps.
    expect += pf("  -> %-28s %8d %8d %8d%8dM%9d\n", "192.168.1.9:8080", 5, 100, 90, 1000, 5);
    expect += pf("  -> %-28s %8d %8d %8d%9d%8lluT\n", "192.168.1.10:8080", 123456789, 0, 7, 0,
                 18446744ULL);
    expect += pf("  -> %-28s %8d %8d %8d%9d%9d\n", "192.168.1.10:8081", 0, 0, 0, 0, 0);
    expect += pf("%-33s%9d%9d%9d%9d%9d\n", "TCP  10.0.0.1:443", 0, 0, 0, 0, 0);
    expect += pf("  -> %-28s %8d %8d %8d%9d%9d\n", "172.16.0.1:443", 0, 0, 0, 0, 0);
    expect += pf("%-33s%9d%9d%9d%9d%9d\n", "UDP  10.0.0.2:53", 0, 0, 0, 0, 0);
    expect += pf("  -> %-28s %8d %8d %8d%9d%9d\n", "10.1.0.1:53", 0, 0, 0, 0, 0);
    expect += pf("%-33s%9d%9d%9d%9d%9d\n", "UDP  10.0.0.3:53", 0, 0, 0, 0, 0);
    expect += pf("  -> %-28s %8d %8d %8d%9d%9d\n", "10.1.0.2:5353", 0, 0, 0, 0, 0);
    CHECK(format_list(st, fmt(ListFormat::Rate)) == expect);

    ListOptions exact = fmt(ListFormat::Rate);
    exact.exact = true;
    exact.service = ServiceKey{6, ip(10, 0, 0, 1), 80};
    // --exact: print_largenum prints "%*llu" with width len + 1 from 9 digits on.
    const std::string one = format_list(st, exact);
    CHECK_THAT(one, Catch::StartsWith("Prot LocalAddress:Port"));
    CHECK_THAT(one, Catch::Contains(pf("%-33s%9d%9d%9d%10d%9d\n", "TCP  10.0.0.1:80", 12, 345, 300,
                                       123456789, 99999999)));
    CHECK_THAT(one, Catch::Contains(pf("  -> %-28s %8d %8d %8d%9d%21llu\n", "192.168.1.10:8080",
                                       123456789, 0, 7, 0, (unsigned long long)kU64Max)));
}

TEST_CASE("lbctl -L --thresholds, --persistent-conn, --tun-info print what ipvsadm prints",
          "[lbctl]") {
    const Status st = rich_status();
    const std::string version = "IP Virtual Server version 1.2.1 (size=1048576)\n";
    // Service lines of these formats are the plain "%s %s" ones.
    const std::string web = "TCP  10.0.0.1:80 wrr\n";
    const std::string tls = "TCP  10.0.0.1:443 rr persistent 300 mask 255.255.255.0\n";
    const std::string dns = "UDP  10.0.0.2:53 rr\n";
    const std::string dns3 = "UDP  10.0.0.3:53 sh (sh-fallback,sh-port)\n";

    // FMT_THRESHOLDS: "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n" and
    // "  -> %-28s %-10u %-10u %-10u %-10u\n" (u_threshold, l_threshold, active, inactive).
    const char* th = "  -> %-28s %-10u %-10u %-10u %-10u\n";
    std::string expect =
        version +
        pf("%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port",
           "Uthreshold", "Lthreshold", "ActiveConn", "InActConn") +
        web + pf(th, "192.168.1.9:8080", 100u, 50u, 12u, 40u) +
        pf(th, "192.168.1.10:8080", 2147483647u, 0u, 0u, 0u) +
        pf(th, "192.168.1.10:8081", 0u, 0u, 7u, 0u) + tls +
        pf(th, "172.16.0.1:443", 0u, 0u, 4294967295u, 1u) + dns +
        pf(th, "10.1.0.1:53", 0u, 0u, 0u, 12345u) + dns3 + pf(th, "10.1.0.2:5353", 0u, 0u, 0u, 0u);
    CHECK(format_list(st, fmt(ListFormat::Thresholds)) == expect);

    // FMT_PERSISTENTCONN: "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n" and
    // "  -> %-28s %-9u %-11u %-10u %-10u\n" (weight, persistconns, active, inactive).
    const char* pc = "  -> %-28s %-9u %-11u %-10u %-10u\n";
    expect = version +
             pf("%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n", "Prot LocalAddress:Port",
                "Weight", "PersistConn", "ActiveConn", "InActConn") +
             web + pf(pc, "192.168.1.9:8080", 3u, 0u, 12u, 40u) +
             pf(pc, "192.168.1.10:8080", 1u, 0u, 0u, 0u) +
             pf(pc, "192.168.1.10:8081", 0u, 0u, 7u, 0u) + tls +
             pf(pc, "172.16.0.1:443", 65535u, 42u, 4294967295u, 1u) + dns +
             pf(pc, "10.1.0.1:53", 100u, 0u, 0u, 12345u) + dns3 +
             pf(pc, "10.1.0.2:5353", 2u, 0u, 0u, 0u);
    CHECK(format_list(st, fmt(ListFormat::PersistentConn)) == expect);

    // FMT_TUN_INFO: "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n", "ipip" for tunnels, "n/a" else.
    const char* ti = "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n";
    expect = version +
             "Prot LocalAddress:Port Scheduler Flags\n"
             "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn "
             "InActConn\n" +
             web + pf(ti, "192.168.1.9:8080", "Masq", "n/a", 3, 12u, 40u) +
             pf(ti, "192.168.1.10:8080", "Masq", "n/a", 1, 0u, 0u) +
             pf(ti, "192.168.1.10:8081", "Masq", "n/a", 0, 7u, 0u) + tls +
             pf(ti, "172.16.0.1:443", "Route", "n/a", 65535, 4294967295u, 1u) + dns +
             pf(ti, "10.1.0.1:53", "Tunnel", "ipip", 100, 0u, 12345u) + dns3 +
             pf(ti, "10.1.0.2:5353", "Masq", "n/a", 2, 0u, 0u);
    CHECK(format_list(st, fmt(ListFormat::TunInfo)) == expect);
}

TEST_CASE("lbctl -L -c and --timeout print what ipvsadm prints", "[lbctl]") {
    Connections c;
    c.total = 3;
    ConnEntry e;
    e.proto = 6;
    e.client = ip(198, 51, 100, 2);
    e.cport = 40000;
    e.vip = ip(198, 51, 100, 10);
    e.vport = 80;
    e.real = ip(10, 10, 0, 2);
    e.rport = 8080;
    e.state = "ESTABLISHED";
    e.expire_s = 899;
    c.entries.push_back(e);
    e.proto = 17;
    e.state = "UDP";
    e.expire_s = 5;
    e.cport = 53000;
    e.vport = 53;
    e.rport = 53;
    c.entries.push_back(e);
    e.proto = 6;
    e.is_template = true;
    e.state = "NONE";
    e.cport = 0;
    e.vport = 443;
    e.rport = 443;
    e.expire_s = 7205;  // more than 99 minutes: "%02d" just widens
    c.entries.push_back(e);

    // list_conn: "IPVS connection entries\n", "pro expire %-11s %-18s %-18s %s\n"; print_conn:
    // "%-3s %-6s %-11s %-18s %-18s %s\n" with the expiry as "%02d:%02d" (minutes, seconds).
    const char* row = "%-3s %-6s %-11s %-18s %-18s %s\n";
    const std::string rows =
        pf(row, "TCP", "14:59", "ESTABLISHED", "198.51.100.2:40000", "198.51.100.10:80",
           "10.10.0.2:8080") +
        pf(row, "UDP", "00:05", "UDP", "198.51.100.2:53000", "198.51.100.10:53", "10.10.0.2:53") +
        pf(row, "TCP", "120:05", "NONE", "198.51.100.2:0", "198.51.100.10:443", "10.10.0.2:443");
    ListOptions opts;
    opts.what = ListWhat::Connections;
    CHECK(format_connections(c, opts) ==
          "IPVS connection entries\n" +
              pf("pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination") +
              rows);
    // With --persistent-conn: "pro expire %-11s %-18s %-18s %-18s %-16s %s\n" and the pe
    // columns; entries without persistence-engine data keep the short format.
    opts.persistent_conn = true;
    CHECK(format_connections(c, opts) == "IPVS connection entries\n" +
                                             pf("pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
                                                "state", "source", "virtual", "destination",
                                                "pe name", "pe_data") +
                                             rows);
    CHECK(format_connections(Connections{}, ListOptions{}) ==
          "IPVS connection entries\n"
          "pro expire state       source             virtual            destination\n");

    // list_timeout: "Timeout (tcp tcpfin udp): %d %d %d\n"
    CHECK(format_timeout(sample_status()) ==
          pf("Timeout (tcp tcpfin udp): %d %d %d\n", 900, 120, 300));
}

TEST_CASE("lbctl --workers table", "[lbctl]") {
    Workers ws;
    ws.mbufs_total = 65535;
    ws.mbufs_in_use = 1024;
    WorkerStatus w;
    w.lcore = 1;
    w.rx = 1000;
    w.tx = 990;
    w.conns_created = 7;
    w.conns_in_table = 3;
    w.table_capacity = 524288;
    w.counters = {{"arp_replies", 2}};
    w.drops = {{"malformed", 1}, {"no_service", 9}};
    ws.workers.push_back(w);
    w.lcore = 2;
    w.rx = 12345678901ULL;
    w.counters = {{"icmp_errors", 4}, {"arp_replies", 1}};
    w.drops = {{"no_service", 1}};
    ws.workers.push_back(w);
    const std::string expect =
        "Workers: 2, mbufs in use 1024 of 65535\n"
        "counter              lcore 1     lcore 2       total\n"
        "  rx                    1000 12345678901 12345679901\n"
        "  tx                     990         990        1980\n"
        "  redirected_out           0           0           0\n"
        "  redirected_in            0           0           0\n"
        "  conns_created            7           7          14\n"
        "  conns_expired            0           0           0\n"
        "  conns_in_table           3           3           6\n"
        "  table_capacity      524288      524288     1048576\n"
        "  arp_replies              2           1           3\n"
        "  icmp_errors              0           4           4\n"
        "drop reason          lcore 1     lcore 2       total\n"
        "  malformed                1           0           1\n"
        "  no_service               9           1          10\n";
    CHECK(format_workers(ws) == expect);

    Workers one;
    one.workers.push_back(WorkerStatus{});
    one.workers[0].lcore = 3;
    CHECK_THAT(format_workers(one), Catch::Contains("counter              lcore 3\n"));
    CHECK_THAT(format_workers(one), Catch::EndsWith("drop reason          lcore 3\n"));

    const auto j = nlohmann::json::parse(json_workers(ws));
    CHECK(j["mbufs_in_use"] == 1024);
    REQUIRE(j["workers"].size() == 2);
    CHECK(j["workers"][1]["lcore"] == 2);
    CHECK(j["workers"][1]["rx"] == 12345678901ULL);
    CHECK(j["workers"][0]["drops"]["no_service"] == 9);
    CHECK(j["workers"][1]["counters"]["icmp_errors"] == 4);
}

TEST_CASE("lbctl --json documents are valid and complete", "[lbctl]") {
    const Status st = rich_status();
    ListOptions opts;
    opts.json = true;
    const std::string text = json_list(st, opts);
    CHECK_THAT(text, Catch::EndsWith("}\n"));
    const auto j = nlohmann::json::parse(text);
    CHECK(j["size"] == 1048576);
    REQUIRE(j["services"].size() == 4);
    const auto& web = j["services"][0];  // sorted like the table
    CHECK(web["protocol"] == "TCP");
    CHECK(web["address"] == "10.0.0.1");
    CHECK(web["port"] == 80);
    CHECK(web["scheduler"] == "wrr");
    CHECK(web["sched_flags"].empty());
    CHECK(web["stats"]["out_bytes"] == 123456789012ULL);
    CHECK(web["rates"]["in_bps"] == 123456789);
    REQUIRE(web["reals"].size() == 3);
    CHECK(web["reals"][0]["address"] == "192.168.1.9");
    CHECK(web["reals"][0]["forward"] == "Masq");
    CHECK(web["reals"][0]["u_threshold"] == 100);
    CHECK(web["reals"][0]["l_threshold"] == 50);
    CHECK(web["reals"][0]["active_conns"] == 12);
    CHECK(web["reals"][1]["stats"]["out_bytes"] == kU64Max);
    CHECK(web["reals"][1]["rates"]["out_bps"] == kU64Max);
    CHECK(j["services"][1]["persistent"] == 300);
    CHECK(j["services"][1]["netmask"] == "255.255.255.0");
    CHECK(j["services"][1]["reals"][0]["persistent_conns"] == 42);
    CHECK(j["services"][3]["sched_flags"] == nlohmann::json{"sh-fallback", "sh-port"});

    opts.service = ServiceKey{17, ip(10, 0, 0, 2), 53};
    const auto one = nlohmann::json::parse(json_list(st, opts));
    CHECK_FALSE(one.contains("size"));
    REQUIRE(one["services"].size() == 1);
    CHECK(one["services"][0]["reals"][0]["forward"] == "Tunnel");

    const auto t = nlohmann::json::parse(json_timeout(st));
    CHECK(t == nlohmann::json{{"tcp", 900}, {"tcpfin", 120}, {"udp", 300}});

    Connections c;
    c.total = 9;
    ConnEntry e;
    e.client = ip(1, 2, 3, 4);
    e.cport = 5;
    e.state = "SYN_RECV";
    e.expire_s = 59;
    e.forward = 1;
    c.entries = {e};
    const auto cj = nlohmann::json::parse(json_connections(c));
    CHECK(cj["total"] == 9);
    CHECK(cj["connections"][0]["source"] == "1.2.3.4");
    CHECK(cj["connections"][0]["source_port"] == 5);
    CHECK(cj["connections"][0]["state"] == "SYN_RECV");
    CHECK(cj["connections"][0]["expire"] == 59);
    CHECK(cj["connections"][0]["forward"] == "Tunnel");
    CHECK(cj["connections"][0]["template"] == false);

    // Written entry by entry (lbctl streams them), the document is the one nlohmann writes
    // whole.
    for (size_t n : {0, 1, 3}) {
        Connections many;
        many.total = 12345678901ULL;
        for (size_t i = 0; i < n; ++i) {
            e.state = i == 2 ? std::string("S\xff\"") : "SYN_RECV";
            e.is_template = i == 1;
            many.entries.push_back(e);
        }
        nlohmann::ordered_json whole = {{"total", many.total},
                                        {"connections", nlohmann::ordered_json::array()}};
        for (const ConnEntry& x : many.entries) {
            whole["connections"].push_back(nlohmann::ordered_json{
                {"protocol", "TCP"},
                {"expire", x.expire_s},
                {"state", x.state},
                {"template", x.is_template},
                {"source", format_addr(x.client)},
                {"source_port", x.cport},
                {"virtual", format_addr(x.vip)},
                {"virtual_port", x.vport},
                {"destination", format_addr(x.real)},
                {"destination_port", x.rport},
                {"forward", forward_name(x.forward)},
            });
        }
        CHECK(json_connections(many) ==
              whole.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
        CHECK(whole["connections"].size() == n);
    }

    // Names with bytes that are not UTF-8 still give valid JSON.
    Status odd;
    odd.services.push_back(service(6, 1, 1, std::string("r\xff\"r"), 0, {0, 0, 0, 0, 0}, {}));
    CHECK_NOTHROW(nlohmann::json::parse(json_list(odd, ListOptions{})));
}

// ---------------------------------------------------------------------------------------------
// Command line

TEST_CASE("lbctl parses ipvsadm's command line", "[lbctl]") {
    SECTION("grouped and separate list flags") {
        for (const V& argv : std::vector<V>{
                 {"-Ln"}, {"-L", "-n"}, {"-l", "--numeric"}, {"--list", "-n"}, {"-nL"}}) {
            const Args a = parse_args(argv);
            CHECK(a.command == Command::List);
            CHECK(a.has(Opt::Numeric));
            CHECK_FALSE(a.has(Opt::Stats));
        }
    }
    SECTION("values: attached, separate, --opt=value, optional") {
        Args a = parse_args({"--socket=/tmp/x.sock", "-L", "--stats", "--exact", "-t10.0.0.1:80"});
        CHECK(a.value(Opt::Socket) == "/tmp/x.sock");
        CHECK(a.value(Opt::TcpService) == "10.0.0.1:80");
        a = parse_args({"--socket", "/s", "-Lnt", "10.0.0.1:80", "-X"});
        CHECK(a.value(Opt::Socket) == "/s");
        CHECK(a.value(Opt::TcpService) == "10.0.0.1:80");
        CHECK(a.has(Opt::Exact));
        a = parse_args({"-A", "-t", "10.0.0.1:80", "-s", "wrr", "-p"});
        CHECK(a.command == Command::AddService);
        CHECK(a.command_name == "-A");
        CHECK(a.value(Opt::Scheduler) == "wrr");
        CHECK(a.value(Opt::Persistent).empty());
        a = parse_args({"-A", "-t", "10.0.0.1:80", "-p", "600", "-s", "rr", "-b", "flag-1"});
        CHECK(a.value(Opt::Persistent) == "600");
        CHECK(a.value(Opt::SchedFlags) == "flag-1");
        a = parse_args({"-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1", "-m", "-w", "3"});
        CHECK(a.command == Command::AddServer);
        CHECK(a.has(Opt::Masquerading));
        CHECK(a.value(Opt::Weight) == "3");
        a = parse_args({"--set", "900", "120", "300"});
        CHECK(a.command == Command::SetTimeout);
        CHECK(a.operands == V{"900", "120", "300"});
        a = parse_args({"--start-daemon", "master", "--syncid", "3"});
        CHECK(a.command == Command::StartDaemon);
        CHECK(a.command_arg == "master");
        a = parse_args({"--delete-service", "-u", "10.0.0.2:53"});
        CHECK(a.command_name == "--delete-service");
        a = parse_args({"--write-config"});
        CHECK(a.command == Command::WriteConfig);
        CHECK(a.command_arg.empty());
        a = parse_args({"--write-config", "/etc/lb.conf", "--socket", "/s"});
        CHECK(a.command_arg == "/etc/lb.conf");
        a = parse_args({"--write-config", "--socket", "/s"});
        CHECK(a.command_arg.empty());
        CHECK(parse_args({"--workers", "--json"}).command == Command::Workers);
        CHECK(parse_args({}).command == Command::None);
        CHECK(parse_args({"--sort", "-L", "--sort"}).has(Opt::Sort));  // ipvsadm: a no-op
    }
    SECTION("errors") {
        CHECK_THROWS_WITH(parse_args(V{"-L", "-q"}), "unknown option -q");
        CHECK_THROWS_WITH(parse_args(V{"--lits"}), "unknown option --lits");
        CHECK_THROWS_WITH(parse_args(V{"-L", "--socket"}), "option --socket requires a value");
        CHECK_THROWS_WITH(parse_args(V{"-L", "-t"}), "option -t requires a value");
        CHECK_THROWS_WITH(parse_args(V{"--stats=1"}), "option --stats takes no value");
        CHECK_THROWS_WITH(parse_args(V{"-L", "-C"}), "multiple commands specified (-L and -C)");
        CHECK_THROWS_WITH(parse_args(V{"-A", "-D"}), "multiple commands specified (-A and -D)");
        CHECK_THROWS_WITH(parse_args(V{"-Ln", "-n"}), "multiple 'numeric' options specified");
        CHECK_THROWS_WITH(parse_args(V{"-L", "-t", "1.1.1.1:1", "-u", "1.1.1.1:1"}),
                          "multiple 'service-address' options specified (-t and -u)");
        CHECK_THROWS_WITH(parse_args(V{"-a", "-m", "-g"}),
                          "multiple 'forwarding-method' options specified (-m and -g)");
        CHECK_THROWS_WITH(parse_args(V{"-A", "-t", "1.1.1.1:1", "-f", "1"}),
                          "multiple 'service-address' options specified (-t and -f)");
    }
}

TEST_CASE("lbctl: each verb's operations, with ipvsadm's defaults", "[lbctl]") {
    const uint32_t vip = ip(10, 0, 0, 1), vip2 = ip(10, 0, 0, 2), r1 = ip(10, 1, 0, 1);
    // -A without -s: wlc; no -p: not persistent; no -M: /32; no -b: no flags.
    check_ops(ops_of({"-A", "-t", "10.0.0.1:80"}), {add_service(6, vip, 80, "wlc")});
    check_ops(ops_of({"--add-service", "--udp-service=10.0.0.2:53", "--scheduler", "rr"}),
              {add_service(17, vip2, 53, "rr")});
    // -p alone: libipvs's IPVS_SVC_PERSISTENT_TIMEOUT, 360 s; -p N: N.
    check_ops(ops_of({"-A", "-t", "10.0.0.1:443", "-s", "rr", "-p"}),
              {add_service(6, vip, 443, "rr", "", 360)});
    check_ops(ops_of({"-A", "-t", "10.0.0.1:443", "-p", "600", "-M", "255.255.255.0"}),
              {add_service(6, vip, 443, "wlc", "", 600, 0xFFFFFF00)});
    check_ops(ops_of({"-A", "-t", "10.0.0.1:443", "-p", "2678400"}),  // MAX_TIMEOUT, 31 days
              {add_service(6, vip, 443, "wlc", "", 2678400)});
    // Port 0 is allowed for persistent services (lb decides whether it serves them).
    check_ops(ops_of({"-A", "-t", "10.0.0.1", "-p", "-s", "rr"}),
              {add_service(6, vip, 0, "rr", "", 360)});
    // -b: ipvsadm's names, flag-1/flag-2 as the scheduler's fallback/port, one canonical list.
    check_ops(ops_of({"-A", "-u", "10.0.0.2:53", "-s", "sh", "-b", "sh-port,sh-fallback"}),
              {add_service(17, vip2, 53, "sh", "sh-fallback,sh-port")});
    check_ops(ops_of({"-A", "-u", "10.0.0.2:53", "-s", "sh", "-b", "flag-2"}),
              {add_service(17, vip2, 53, "sh", "sh-port")});
    check_ops(ops_of({"-A", "-u", "10.0.0.2:53", "-s", "mh", "-b", "flag-1,flag-2,flag-1"}),
              {add_service(17, vip2, 53, "mh", "mh-fallback,mh-port")});
    check_ops(ops_of({"-A", "-u", "10.0.0.2:53", "-s", "mh", "-b", "mh-port"}),
              {add_service(17, vip2, 53, "mh", "mh-port")});
    check_ops(ops_of({"-A", "-u", "10.0.0.2:53", "-s", "mh", "-b", ""}),  // ipvsadm ignores ""
              {add_service(17, vip2, 53, "mh")});
    // -E sends the whole service: what is left out takes the default, like -A.
    check_ops(ops_of({"-E", "-t", "10.0.0.1:80"}),
              {add_service(6, vip, 80, "wlc", "", 0, kU32Max, OpKind::EditService)});
    check_ops(ops_of({"-E", "-t", "10.0.0.1:80", "-s", "sh", "-b", "sh-port", "-p", "30"}),
              {add_service(6, vip, 80, "sh", "sh-port", 30, kU32Max, OpKind::EditService)});
    check_ops(ops_of({"-D", "-t", "10.0.0.1:80"}), {svc_op(OpKind::DeleteService, 6, vip, 80)});
    check_ops(ops_of({"-C"}), {op(OpKind::Clear)});

    // -a: -g (Route) by default, weight 1, no thresholds, the service port.
    check_ops(ops_of({"-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1"}),
              {add_real(6, vip, 80, r1, 80, 2, 1)});
    check_ops(ops_of({"-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1:8080", "-m", "-w", "3", "-x",
                      "100", "-y", "50"}),
              {add_real(6, vip, 80, r1, 8080, 0, 3, 100, 50)});
    check_ops(ops_of({"-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1:0", "-m"}),
              {add_real(6, vip, 80, r1, 0, 0, 1)});  // an explicit port, even 0, is kept
    // -g and -i: ipvsadm silently uses the service port.
    check_ops(ops_of({"-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1:8080", "-g"}),
              {add_real(6, vip, 80, r1, 80, 2, 1)});
    check_ops(ops_of({"-a", "-u", "10.0.0.2:53", "-r", "10.1.0.1:5353", "-i", "-w", "0",
                      "--tun-type", "ipip"}),
              {add_real(17, vip2, 53, r1, 53, 1, 0)});
    check_ops(ops_of({"-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1", "-w", "65535", "-x",
                      "2147483647", "-y", "0"}),
              {add_real(6, vip, 80, r1, 80, 2, 65535, 2147483647)});
    // -e sends the whole real, defaults included.
    check_ops(ops_of({"-e", "-t", "10.0.0.1:80", "-r", "10.1.0.1:8080", "-m"}),
              {add_real(6, vip, 80, r1, 8080, 0, 1, 0, 0, OpKind::EditReal)});
    check_ops(ops_of({"--edit-server", "-t", "10.0.0.1:80", "-r", "10.1.0.1"}),
              {add_real(6, vip, 80, r1, 80, 2, 1, 0, 0, OpKind::EditReal)});
    // -d: address and port (the service's if none), nothing else.
    Op del = svc_op(OpKind::DeleteReal, 6, vip, 80);
    del.real_addr = r1;
    del.real_port = 8080;
    check_ops(ops_of({"-d", "-t", "10.0.0.1:80", "-r", "10.1.0.1:8080"}), {del});
    del.real_port = 80;
    check_ops(ops_of({"-d", "-t", "10.0.0.1:80", "-r", "10.1.0.1"}), {del});

    check_ops(ops_of({"-Z"}), {op(OpKind::Zero)});
    check_ops(ops_of({"-Z", "-u", "10.0.0.2:53"}), {svc_op(OpKind::Zero, 17, vip2, 53)});
    Op set = op(OpKind::SetTimeout);
    set.tcp = 900;
    set.tcpfin = 0;
    set.udp = 2678400;
    check_ops(ops_of({"--set", "900", "0", "2678400"}), {set});

    // --socket goes with every command and changes no operation.
    check_ops(ops_of({"-C", "--socket", "/x"}), {op(OpKind::Clear)});
    // Every operation encodes.
    std::string line = encode(Apply{ops_of({"-A", "-t", "10.0.0.1:80", "-p"})});
    line.pop_back();  // its '\n'
    CHECK_NOTHROW(decode_request(line));
}

TEST_CASE("lbctl refuses what ipvsadm refuses, with ipvsadm's messages", "[lbctl]") {
    struct Case {
        V argv;
        std::string message;
    };
    const std::string svc = "10.0.0.1:80";
    const Case cases[] = {
        // missing service / real, both -t and -u, conflicting commands
        {{"-A"}, "You need to supply the 'service-address' option for the 'add-service' command"},
        {{"-D", "-s", "rr"},  // the columns in ipvsadm's order: service-address comes first
         "You need to supply the 'service-address' option for the 'delete-service' command"},
        {{"-D", "-t", svc, "-s", "rr"},
         "Illegal 'scheduler' option with the 'delete-service' command"},
        {{"-a", "-t", svc},
         "You need to supply the 'real-server' option for the 'add-server' "
         "command"},
        {{"-d", "-t", svc},
         "You need to supply the 'real-server' option for the 'delete-server' "
         "command"},
        {{"-e", "-r", "10.1.0.1"},
         "You need to supply the 'service-address' option for the 'edit-server' command"},
        {{"-A", "-t", svc, "-u", svc}, "multiple 'service-address' options specified (-t and -u)"},
        {{"-A", "-t", svc, "-E"}, "multiple commands specified (-A and -E)"},
        {{"-A", "-t", svc, "-A"}, "multiple commands specified (-A and -A)"},
        // options a verb does not take (ipvsadm's commands_v_options)
        {{"-A", "-t", svc, "-r", "10.1.0.1"},
         "Illegal 'real-server' option with the 'add-service' command"},
        {{"-A", "-t", svc, "-m"},
         "Illegal 'forwarding-method' option with the 'add-service' "
         "command"},
        {{"-E", "-t", svc, "-w", "1"}, "Illegal 'weight' option with the 'edit-service' command"},
        {{"-D", "-t", svc, "-p"}, "Illegal 'persistent' option with the 'delete-service' command"},
        {{"-C", "-t", svc}, "Illegal 'service-address' option with the 'flush' command"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-s", "rr"},
         "Illegal 'scheduler' option with the 'add-server' command"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-p", "30"},
         "Illegal 'persistent' option with the 'add-server' command"},
        {{"-e", "-t", svc, "-r", "10.1.0.1", "-b", "sh-port"},
         "Illegal 'sched-flags' option with the 'edit-server' command"},
        {{"-d", "-t", svc, "-r", "10.1.0.1", "-w", "2"},
         "Illegal 'weight' option with the 'delete-server' command"},
        {{"-d", "-t", svc, "-r", "10.1.0.1", "-m"},
         "Illegal 'forwarding-method' option with the 'delete-server' command"},
        {{"-Z", "-r", "10.1.0.1"}, "Illegal 'real-server' option with the 'zero' command"},
        {{"--set", "1", "2", "3", "-t", svc},
         "Illegal 'service-address' option with the 'set' "
         "command"},
        {{"-S", "--stats"}, "Illegal 'stats' option with the 'save' command"},
        {{"-R", "-n"}, "Illegal 'numeric' option with the 'restore' command"},
        {{"-A", "-t", svc, "-n"}, "Illegal 'numeric' option with the 'add-service' command"},
        {{"-A", "-t", svc, "--json"}, "Illegal 'json' option with the 'add-service' command"},
        {{"--reload", "-n"}, "Illegal 'numeric' option with the 'reload' command"},
        {{"--write-config", "-t", svc},
         "Illegal 'service-address' option with the "
         "'write-config' command"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "--syncid", "1"},
         "Illegal 'syncid' option with the 'add-server' command"},
        // bad values
        {{"-A", "-t", "10.0.0:80"},
         "illegal virtual server address[:port] specified: 10.0.0:80 "
         "(lbctl takes a numeric IPv4 address[:port])"},
        {{"-A", "-t", "www.example.com:80"},
         "illegal virtual server address[:port] specified: "
         "www.example.com:80 (lbctl takes a numeric IPv4 "
         "address[:port])"},
        {{"-A", "-t", "10.0.0.1:65536"},
         "illegal virtual server address[:port] specified: "
         "10.0.0.1:65536 (lbctl takes a numeric IPv4 "
         "address[:port])"},
        {{"-A", "-t", "10.0.0.1:http"},
         "illegal virtual server address[:port] specified: "
         "10.0.0.1:http (lbctl takes a numeric IPv4 "
         "address[:port])"},
        {{"-a", "-t", svc, "-r", "10.1.0.256"},
         "illegal real server address[:port] specified: "
         "10.1.0.256 (lbctl takes a numeric IPv4 "
         "address[:port])"},
        {{"-a", "-t", svc, "-r", "10.1.0.1:"},
         "illegal real server address[:port] specified: "
         "10.1.0.1: (lbctl takes a numeric IPv4 "
         "address[:port])"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-w", "65536"}, "illegal weight specified: 65536"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-w", "-1"}, "illegal weight specified: -1"},
        {{"-e", "-t", svc, "-r", "10.1.0.1", "-w", "1x"}, "illegal weight specified: 1x"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-x", "2147483648"},
         "illegal u_threshold specified: 2147483648"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-y", "many"}, "illegal l_threshold specified: many"},
        {{"-A", "-t", svc, "-s", "fastest"},
         "unknown scheduler `fastest' (lb has rr, wrr, lc, wlc, sed, nq, sh, dh, mh, fo, ovf)"},
        {{"-A", "-t", svc, "-s", "lblc"},
         "scheduler `lblc' is not supported by lb (it has rr, "
         "wrr, lc, wlc, sed, nq, sh, dh, mh, fo, ovf)"},
        {{"-A", "-t", svc, "-s", "rr", "-b", "sh-port"}, "incompatible scheduler flag `sh-port'"},
        {{"-A", "-t", svc, "-b", "sh-port"}, "incompatible scheduler flag `sh-port'"},  // wlc
        {{"-A", "-t", svc, "-s", "sh", "-b", "mh-fallback"},
         "incompatible scheduler flag `mh-fallback'"},
        {{"-A", "-t", svc, "-s", "sh", "-b", "sh-port,bogus"}, "invalid scheduler flag `bogus'"},
        {{"-A", "-t", svc, "-s", "rr", "-b", "flag-1"},
         "incompatible scheduler flag `flag-1' (lb's rr has no flag-1; sh and mh have flag-1 = "
         "fallback, flag-2 = port)"},
        {{"-A", "-t", svc, "-s", "sh", "-b", "flag-3"},
         "incompatible scheduler flag `flag-3' (lb's sh has no flag-3; sh and mh have flag-1 = "
         "fallback, flag-2 = port)"},
        {{"-A", "-t", svc, "-p", "-M", "255.0.255.0"},
         "illegal virtual server persistent mask specified: 255.0.255.0 (a dotted-quad netmask, "
         "e.g. 255.255.255.0)"},
        {{"-A", "-t", svc, "-p", "-M", "255.255.255.256"},
         "illegal virtual server persistent mask specified: 255.255.255.256 (a dotted-quad "
         "netmask, e.g. 255.255.255.0)"},
        {{"-A", "-t", svc, "-p", "-M", "24"},
         "illegal virtual server persistent mask specified: "
         "24 (a dotted-quad netmask, e.g. 255.255.255.0)"},
        {{"-A", "-t", svc, "-p", "0"}, "invalid timeout value `0' specified"},
        {{"-A", "-t", svc, "-p", "2678401"}, "invalid timeout value `2678401' specified"},
        {{"-A", "-t", svc, "--persistent=soon"}, "invalid timeout value `soon' specified"},
        {{"-A", "-t", "10.0.0.1", "-s", "rr"}, "Zero port specified for non-persistent service"},
        {{"-E", "-t", "10.0.0.1:0"}, "Zero port specified for non-persistent service"},
        {{"--set", "1", "2"}, "--set option requires 3 timeout values"},
        {{"--set", "1", "2", "3", "4"}, "unexpected argument 4"},
        {{"--set", "1", "-2", "3"}, "unknown option -2"},
        {{"--set", "1", "2", "2678401"}, "invalid timeout value `2678401' specified"},
        {{"-D", "-t", svc, "extra"}, "unexpected argument extra"},
        // lb has no such thing
        {{"-A", "-f", "1"},
         "-f: fwmark services are not supported (lb has TCP and UDP services: "
         "-t, -u)"},
        {{"-L", "--fwmark-service", "1"},
         "--fwmark-service: fwmark services are not supported "
         "(lb has TCP and UDP services: -t, -u)"},
        {{"-A", "--sctp-service", svc},
         "--sctp-service: SCTP services are not supported (lb has "
         "TCP and UDP services: -t, -u)"},
        {{"-A", "-t", svc, "-6"}, "-6: IPv6 services are not supported"},
        {{"-A", "-u", svc, "-o"}, "-o: one-packet scheduling is not supported"},
        {{"-A", "-t", svc, "--pe", "sip"}, "--pe: persistence engines are not supported"},
        {{"--start-daemon", "master"},
         "--start-daemon is not supported: lb has no connection "
         "synchronisation daemon"},
        {{"--stop-daemon", "backup"},
         "--stop-daemon is not supported: lb has no connection "
         "synchronisation daemon"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-i", "--tun-type", "gue"},
         "--tun-type gue is not supported (lb tunnels are ipip)"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-i", "--tun-type", "vxlan"},
         "illegal tunnel type specified: vxlan"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-m", "--tun-type", "ipip"},
         "Tunnel options conflict with forward method"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "--tun-type", "ipip"},  // -g by default
         "Tunnel options conflict with forward method"},
        {{"-a", "-t", svc, "-r", "10.1.0.1", "-i", "--tun-port", "6080"},
         "Illegal 'tun-port' option with the 'ipip' tunnel type"},
        {{"-e", "-t", svc, "-r", "10.1.0.1", "-i", "--tun-csum"},
         "Illegal 'tun-csum' option with the 'ipip' tunnel type"},
        // not a change command
        {{"-L"}, "-L does not change the table"},
    };
    for (const Case& c : cases) {
        std::string line;
        for (const std::string& w : c.argv) {
            line += w + " ";
        }
        INFO(line);
        CHECK_THROWS_WITH(ops_of(c.argv), c.message);
        CHECK_THROWS_AS(ops_of(c.argv), UsageError);
    }
}

TEST_CASE("lbctl list options: what -L accepts", "[lbctl]") {
    ListOptions lo = list_options(parse_args(V{"-L", "-n", "--stats", "--exact"}));
    CHECK(lo.what == ListWhat::Services);
    CHECK(lo.format == ListFormat::Stats);
    CHECK(lo.exact);
    CHECK(lo.sort);
    CHECK_FALSE(lo.json);
    CHECK_FALSE(lo.service);
    lo = list_options(parse_args(V{"-L", "--nosort", "-u", "10.0.0.2:53", "--socket", "/x"}));
    CHECK_FALSE(lo.sort);
    REQUIRE(lo.service);
    CHECK(lo.service->proto == 17);
    CHECK(lo.service->vip == ip(10, 0, 0, 2));
    CHECK(lo.service->port == 53);
    CHECK(list_options(parse_args(V{"-L"})).format == ListFormat::Plain);
    // ipvsadm's precedence of the table formats.
    CHECK(list_options(parse_args(V{"-L", "--rate", "--stats"})).format == ListFormat::Stats);
    CHECK(list_options(parse_args(V{"-L", "--thresholds", "--rate"})).format == ListFormat::Rate);
    CHECK(list_options(parse_args(V{"-L", "--persistent-conn", "--thresholds"})).format ==
          ListFormat::Thresholds);
    CHECK(list_options(parse_args(V{"-L", "--tun-info", "--persistent-conn"})).format ==
          ListFormat::PersistentConn);
    CHECK(list_options(parse_args(V{"-L", "--tun-info"})).format == ListFormat::TunInfo);
    lo = list_options(parse_args(V{"-Lnc", "--persistent-conn", "--json"}));
    CHECK(lo.what == ListWhat::Connections);
    CHECK(lo.persistent_conn);
    CHECK(lo.json);
    CHECK(list_options(parse_args(V{"-L", "--timeout"})).what == ListWhat::Timeout);
    CHECK(list_options(parse_args(V{"-L", "--daemon"})).what == ListWhat::Daemon);
    CHECK(list_options(parse_args(V{"-L", "--syncid", "3"})).what == ListWhat::Services);

    struct Case {
        V argv;
        const char* message;
    };
    const Case cases[] = {
        {{"-L", "-s", "rr"}, "Illegal 'scheduler' option with the 'list' command"},
        {{"-L", "-w", "1"}, "Illegal 'weight' option with the 'list' command"},
        {{"-L", "-b", "sh-port"}, "Illegal 'sched-flags' option with the 'list' command"},
        {{"-L", "extra"}, "unexpected argument extra"},
        {{"-L", "-c", "-t", "10.0.0.1:80"},
         "The option 'service-address' conflicts with the 'connection' option in the 'list' "
         "command"},
        {{"-L", "--timeout", "-c"},
         "The option 'timeout' conflicts with the 'connection' option in the 'list' command"},
        {{"-L", "--daemon", "--timeout"},
         "The option 'daemon' conflicts with the 'timeout' option in the 'list' command"},
        {{"-L", "-c", "--stats"}, "options conflicts in the list command"},
        {{"-L", "--timeout", "--rate"}, "options conflicts in the list command"},
        {{"-L", "--daemon", "--thresholds"}, "options conflicts in the list command"},
        {{"-L", "--timeout", "--persistent-conn"}, "options conflicts in the list command"},
        {{"-L", "-t", "lb.example.com:80"},
         "illegal virtual server address[:port] specified: "
         "lb.example.com:80 (lbctl takes a numeric IPv4 "
         "address[:port])"},
        {{"-L", "--mcast-group", "224.0.0.81"},
         "Illegal 'mcast-group' option with the 'list' command"},
    };
    for (const Case& c : cases) {
        INFO(c.argv[1]);
        CHECK_THROWS_WITH(list_options(parse_args(c.argv)), c.message);
    }
    CHECK_THROWS_AS(list_options(parse_args(V{"-A"})), UsageError);
    // The other verbs: only -n with -S, nothing but --json and --socket with --workers.
    CHECK_NOTHROW(check_command(parse_args(V{"-S", "-n", "--socket", "/s"})));
    CHECK_NOTHROW(check_command(parse_args(V{"--workers", "--json"})));
    CHECK_NOTHROW(check_command(parse_args(V{"--write-config", "x.conf"})));
    CHECK_NOTHROW(check_command(parse_args(V{"--help", "-t", "whatever"})));
    CHECK_THROWS_WITH(check_command(parse_args(V{"--workers", "--stats"})),
                      "Illegal 'stats' option with the 'workers' command");
    CHECK_THROWS_WITH(check_command(parse_args(V{"-n"})), "no command specified");
}

TEST_CASE("lbctl address and netmask parsing is strict", "[lbctl]") {
    CHECK(parse_addr_port("10.0.0.1:80") == std::make_pair(ip(10, 0, 0, 1), uint16_t(80)));
    CHECK(parse_addr_port("255.255.255.255:65535") == std::make_pair(kU32Max, uint16_t(65535)));
    CHECK(parse_addr_port("1.2.3.4") == std::make_pair(ip(1, 2, 3, 4), uint16_t(0)));
    for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4:", "1.2.3.4:65536",
                            "1.2.3.4:http", " 1.2.3.4", "1.2.3.4 ", "1..2.3", "a.b.c.d", "::1",
                            "[::1]:80", "1.2.3.4:80:1", "0001.2.3.4", "1.2.3.-4", "80"}) {
        INFO(bad);
        CHECK_FALSE(parse_addr_port(bad).has_value());
    }
    CHECK(parse_netmask("255.255.255.255") == kU32Max);
    CHECK(parse_netmask("255.255.255.0") == 0xFFFFFF00u);
    CHECK(parse_netmask("128.0.0.0") == 0x80000000u);
    for (const char* bad : {"0.0.0.0", "255.0.255.0", "0.255.255.255", "255.255.255.254x", "24",
                            "/24", "255.255.255"}) {
        INFO(bad);
        CHECK_FALSE(parse_netmask(bad).has_value());
    }
    CHECK(format_addr_port(ip(192, 168, 1, 10), 8080) == "192.168.1.10:8080");
    CHECK(forward_name(0) == "Masq");
    CHECK(forward_name(1) == "Tunnel");
    CHECK(forward_name(2) == "Route");
}

// ---------------------------------------------------------------------------------------------
// -S and -R

TEST_CASE("lbctl -S prints ipvsadm -S -n rules", "[lbctl]") {
    // ipvsadm 1.31, FMT_RULE: "-A %s -s %s" [" -p %u" [" -M %s"]] [" -b " flags] and
    // "-a %s -r %s %s -w %d" [" --tun-type ipip" for tunnels]; lbctl adds " -x %u" / " -y %u"
    // for thresholds, which ipvsadm -S leaves out.
    CHECK(format_save(rich_status()) ==
          "-A -t 10.0.0.1:80 -s wrr\n"
          "-a -t 10.0.0.1:80 -r 192.168.1.9:8080 -m -w 3 -x 100 -y 50\n"
          "-a -t 10.0.0.1:80 -r 192.168.1.10:8080 -m -w 1 -x 2147483647\n"
          "-a -t 10.0.0.1:80 -r 192.168.1.10:8081 -m -w 0\n"
          "-A -t 10.0.0.1:443 -s rr -p 300 -M 255.255.255.0\n"
          "-a -t 10.0.0.1:443 -r 172.16.0.1:443 -g -w 65535\n"
          "-A -u 10.0.0.2:53 -s rr\n"
          "-a -u 10.0.0.2:53 -r 10.1.0.1:53 -i -w 100 --tun-type ipip\n"
          "-A -u 10.0.0.3:53 -s sh -b sh-fallback,sh-port\n"
          "-a -u 10.0.0.3:53 -r 10.1.0.2:5353 -m -w 2\n");
    CHECK(format_save(Status{}).empty());
}

TEST_CASE("lbctl -S then -R gives back the same table", "[lbctl]") {
    Status original = rich_status();
    original.services.push_back(service(6, ip(198, 51, 100, 10), 8443, "mh", 86400, {0, 0, 0, 0, 0},
                                        {real(ip(10, 10, 0, 3), 8443, 1, 7, 0, 0, {})}));
    original.services.back().sched_flags = "mh-port";
    original.services.back().persist_mask = 0xFFFF0000;
    const std::string saved = format_save(original);
    const std::vector<Op> ops = restore_ops(saved);

    // The operations: one -A per service and one -a per real, in -S's (sorted) order.
    std::vector<Op> want;
    for (const ServiceStatus& s : config_only(original).services) {
        want.push_back(add_service(s.proto, s.vip, s.port, s.scheduler, s.sched_flags,
                                   s.persistence, s.persist_mask));
        for (const RealStatus& r : s.reals) {
            want.push_back(add_real(s.proto, s.vip, s.port, r.addr, r.port, r.forward, r.weight,
                                    r.u_threshold, r.l_threshold));
        }
    }
    auto key = [](const Op& o) {
        return std::make_tuple(o.proto, o.vip, o.port, o.kind != OpKind::AddService, o.real_addr,
                               o.real_port);
    };
    std::stable_sort(want.begin(), want.end(),
                     [&](const Op& a, const Op& b) { return key(a) < key(b); });
    check_ops(ops, want);

    // lbctl -L -n of the restored table equals the original's, in every format that shows
    // configuration, and -S again gives the same rules.
    const Status restored = apply_to_empty(ops);
    for (ListFormat f : {ListFormat::Plain, ListFormat::Thresholds, ListFormat::TunInfo}) {
        CHECK(format_list(restored, fmt(f)) == format_list(config_only(original), fmt(f)));
    }
    CHECK(format_save(restored) == saved);
}

TEST_CASE("lbctl -R reads rule lines: comments, blank lines, any change verb, line numbers",
          "[lbctl]") {
    const std::string text =
        "# saved by lbctl -S\n"
        "\n"
        "   \t\r\n"
        "-A -t 10.0.0.1:80 -s rr   # web\n"
        "ipvsadm -a -t 10.0.0.1:80 -r 10.1.0.1:8080 -m\r\n"
        "lbctl -e -t 10.0.0.1:80 -r 10.1.0.1:8080 -m -w 5\n"
        "  -a\t-t 10.0.0.1:80   -r 10.1.0.2 -g\n"
        "--set 900 120 300\n"
        "-d -t 10.0.0.1:80 -r 10.1.0.2\n"
        "-D -t 10.0.0.1:80\n"
        "-C\n"
        "-Z\n"
        "-E -u 10.0.0.2:53 -s mh -b flag-2";  // no final newline
    const uint32_t vip = ip(10, 0, 0, 1);
    Op set = op(OpKind::SetTimeout);
    set.tcp = 900;
    set.tcpfin = 120;
    set.udp = 300;
    Op del = svc_op(OpKind::DeleteReal, 6, vip, 80);
    del.real_addr = ip(10, 1, 0, 2);
    del.real_port = 80;
    check_ops(
        restore_ops(text),
        {add_service(6, vip, 80, "rr"), add_real(6, vip, 80, ip(10, 1, 0, 1), 8080, 0, 1),
         add_real(6, vip, 80, ip(10, 1, 0, 1), 8080, 0, 5, 0, 0, OpKind::EditReal),
         add_real(6, vip, 80, ip(10, 1, 0, 2), 80, 2, 1), set, del,
         svc_op(OpKind::DeleteService, 6, vip, 80), op(OpKind::Clear), op(OpKind::Zero),
         add_service(17, ip(10, 0, 0, 2), 53, "mh", "mh-port", 0, kU32Max, OpKind::EditService)});
    CHECK(restore_ops("").empty());
    CHECK(restore_ops("# nothing\n\n").empty());

    // ipvsadm 1.31's own -S output reads back (its -a lines of tunnels carry --tun-type ipip).
    check_ops(restore_ops("-A -u 10.0.0.2:53 -s rr\n"
                          "-a -u 10.0.0.2:53 -r 10.1.0.1:53 -i -w 100 --tun-type ipip\n"),
              {add_service(17, ip(10, 0, 0, 2), 53, "rr"),
               add_real(17, ip(10, 0, 0, 2), 53, ip(10, 1, 0, 1), 53, 1, 100)});

    struct Case {
        std::string text;
        std::string message;
    };
    const Case cases[] = {
        {"-A -t 10.0.0.1:80\n\n# c\n-a -t 10.0.0.1:80 -r 10.1.0.1 -w 70000\n",
         "line 4: illegal weight specified: 70000"},
        {"-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80\n",
         "line 2: You need to supply the 'real-server' option for the 'add-server' command"},
        {"-L -n\n", "line 1: -L cannot be restored (only -A -E -D -C -a -e -d -Z --set)"},
        {"-S\n", "line 1: -S cannot be restored (only -A -E -D -C -a -e -d -Z --set)"},
        {"-R\n", "line 1: -R cannot be restored (only -A -E -D -C -a -e -d -Z --set)"},
        {"-t 10.0.0.1:80\n",
         "line 1: no command cannot be restored (only -A -E -D -C -a -e -d "
         "-Z --set)"},
        {"-C --socket /x\n", "line 1: --socket is for the command line, not for restore input"},
        {"-A -t 10.0.0.1:80 -q\n", "line 1: unknown option -q"},
        {"-A -f 3 -s rr\n",
         "line 1: -f: fwmark services are not supported (lb has TCP and UDP "
         "services: -t, -u)"},
        {"-A -t 10.0.0.1:80 -s rr extra\n", "line 1: unexpected argument extra"},
    };
    for (const Case& c : cases) {
        INFO(c.text);
        CHECK_THROWS_WITH(restore_ops(c.text), c.message);
        CHECK_THROWS_AS(restore_ops(c.text), UsageError);
    }
}

TEST_CASE("lbctl --help documents every verb and option", "[lbctl]") {
    const std::string help = usage_text();
    for (const char* word : {"--add-service",
                             "--edit-service",
                             "--delete-service",
                             "--clear",
                             "--restore",
                             "--save",
                             "--add-server",
                             "--edit-server",
                             "--delete-server",
                             "--list",
                             "--zero",
                             "--set",
                             "--tcp-service",
                             "--udp-service",
                             "--scheduler",
                             "--persistent",
                             "--netmask",
                             "--sched-flags",
                             "--real-server",
                             "--gatewaying",
                             "--ipip",
                             "--masquerading",
                             "--weight",
                             "--u-threshold",
                             "--l-threshold",
                             "--connection",
                             "--timeout",
                             "--stats",
                             "--rate",
                             "--exact",
                             "--thresholds",
                             "--persistent-conn",
                             "--nosort",
                             "--numeric",
                             "--json",
                             "--socket",
                             "--reload",
                             "--workers",
                             "--write-config",
                             "--tun-info",
                             "--tun-type",
                             "sh-fallback",
                             "mh-port",
                             "flag-1",
                             "wlc",
                             "360"}) {
        INFO(word);
        CHECK_THAT(help, Catch::Contains(word));
    }
    for (const std::string& line : [&] {
             std::vector<std::string> lines;
             size_t s = 0;
             for (size_t e = help.find('\n'); e != std::string::npos; e = help.find('\n', s)) {
                 lines.push_back(help.substr(s, e - s));
                 s = e + 1;
             }
             return lines;
         }()) {
        INFO(line);
        CHECK(line.size() <= 100);
    }
}

TEST_CASE("lbctl --workers: the ports' table and JSON", "[lbctl]") {
    Workers ws;
    ws.mbufs_total = 1023;
    ws.mbufs_in_use = 300;
    ws.workers.push_back(WorkerStatus{});
    ws.workers[0].lcore = 1;
    PortStatus p;
    p.port = 0;
    p.name = "net_af_packet0";
    p.ipackets = 120000;
    p.opackets = 119000;
    p.ibytes = 168000000;
    p.obytes = 166600000;
    p.rx_nombuf = 2;
    p.rx_ring_drops = 40123;
    p.oerrors = 1;
    ws.ports.push_back(p);
    p = PortStatus{};
    p.port = 1;
    p.name = "net_af_packet1";
    p.ipackets = 5;
    p.imissed = 7;
    p.ierrors = 1;
    ws.ports.push_back(p);
    const std::string expect =
        "port counter             port 0         port 1          total\n"
        "  device         net_af_packet0 net_af_packet1               \n"
        "  ipackets               120000              5         120005\n"
        "  opackets               119000              0         119000\n"
        "  ibytes              168000000              0      168000000\n"
        "  obytes              166600000              0      166600000\n"
        "  imissed                     0              7              7\n"
        "  ierrors                     0              1              1\n"
        "  rx_nombuf                   2              0              2\n"
        "  rx_ring_drops           40123              0          40123\n"
        "  rx_lost                 40125              8          40133\n"
        "  oerrors                     1              0              1\n";
    CHECK(format_ports(ws.ports) == expect);
    CHECK_THAT(format_workers(ws), Catch::EndsWith(expect));
    CHECK_THAT(format_workers(ws), Catch::StartsWith("Workers: 1, mbufs in use 300 of 1023\n"));
    CHECK(format_ports({}).empty());

    const auto j = nlohmann::json::parse(json_workers(ws));
    REQUIRE(j["ports"].size() == 2);
    CHECK(j["ports"][0]["port"] == 0);
    CHECK(j["ports"][0]["name"] == "net_af_packet0");
    CHECK(j["ports"][0]["rx_ring_drops"] == 40123);
    CHECK(j["ports"][0]["rx_lost"] == 40125);
    CHECK(j["ports"][0]["obytes"] == 166600000);
    CHECK(j["ports"][1]["imissed"] == 7);
    CHECK(j["ports"][1]["rx_lost"] == 8);
    CHECK(nlohmann::json::parse(json_workers(Workers{}))["ports"].empty());
}
