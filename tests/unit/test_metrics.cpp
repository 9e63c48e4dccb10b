// The Prometheus exposition (render_metrics) and the metrics HTTP server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>
#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/metrics.hpp"

using namespace lb::ctl;
using Catch::Matchers::Contains;

namespace {

uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);) {
        out.push_back(l);
    }
    return out;
}

bool has_line(const std::string& text, const std::string& line) {
    const auto ls = lines_of(text);
    return std::count(ls.begin(), ls.end(), line) == 1;
}

// Name of a sample line: up to '{' or ' '.
std::string sample_name(const std::string& l) { return l.substr(0, l.find_first_of("{ ")); }

// The structure Prometheus' parser insists on: HELP then TYPE once per family, every sample
// of a family right after them, no sample line twice, counters named *_total.
void check_well_formed(const std::string& text) {
    REQUIRE(!text.empty());
    REQUIRE(text.back() == '\n');
    std::map<std::string, int> help, type;
    std::set<std::string> closed, samples;
    std::string current;
    for (const std::string& l : lines_of(text)) {
        INFO(l);
        if (l.rfind("# HELP ", 0) == 0) {
            const std::string name = l.substr(7, l.find(' ', 7) - 7);
            CHECK(++help[name] == 1);
            if (!current.empty()) {
                closed.insert(current);
            }
            current = name;
            CHECK(closed.count(name) == 0);
        } else if (l.rfind("# TYPE ", 0) == 0) {
            const std::string name = l.substr(7, l.find(' ', 7) - 7);
            const std::string t = l.substr(l.find(' ', 7) + 1);
            CHECK(name == current);
            CHECK(++type[name] == 1);
            CHECK((t == "counter" || t == "gauge"));
            if (t == "counter") {
                CHECK(name.size() > 6);
                CHECK(name.substr(name.size() - 6) == "_total");
            }
        } else {
            CHECK(sample_name(l) == current);
            CHECK(type.count(current) == 1);
            CHECK(samples.insert(l.substr(0, l.rfind(' '))).second);
            const std::string value = l.substr(l.rfind(' ') + 1);
            CHECK(!value.empty());
        }
    }
    CHECK(help.size() == type.size());
}

RealStatus real(uint32_t addr, uint16_t port, uint8_t fwd, uint32_t weight) {
    RealStatus r;
    r.addr = addr;
    r.port = port;
    r.forward = fwd;
    r.weight = weight;
    return r;
}

Status sample_status() {
    Status st;
    st.conn_capacity = 2048;
    st.tcp_timeout = 900;
    st.tcpfin_timeout = 120;
    st.udp_timeout = 300;

    ServiceStatus web;
    web.proto = 6;
    web.vip = ip(198, 51, 100, 10);
    web.port = 80;
    web.scheduler = "wlc";
    web.sched_flags = "";
    web.persistence = 300;
    web.conns = 12;
    web.in_pkts = 100;
    web.out_pkts = 90;
    web.in_bytes = 6400;
    web.out_bytes = 128000;
    web.rates = {3, 40, 35, 2560, 51200};
    RealStatus r1 = real(ip(10, 10, 0, 2), 8080, 0, 3);
    r1.active = 4;
    r1.inactive = 1;
    r1.persist = 2;
    r1.conns = 7;
    r1.in_pkts = 60;
    r1.out_pkts = 55;
    r1.in_bytes = 3840;
    r1.out_bytes = 70000;
    r1.rates = {2, 20, 18, 1280, 25600};
    r1.u_threshold = 50;
    RealStatus r2 = real(ip(10, 10, 0, 3), 80, 2, 0);
    r2.active = 1;
    r2.inactive = 3;
    r2.persist = 1;
    r2.conns = 5;
    r2.overloaded = true;
    web.reals = {r1, r2};

    ServiceStatus dns;
    dns.proto = 17;
    dns.vip = ip(198, 51, 100, 10);
    dns.port = 53;
    dns.scheduler = "sh";
    dns.sched_flags = "sh-fallback,sh-port";
    dns.reals = {real(ip(203, 0, 113, 7), 53, 1, 1)};
    st.services = {web, dns};
    return st;
}

Workers sample_workers() {
    Workers ws;
    ws.mbufs_total = 8191;
    ws.mbufs_in_use = 100;
    WorkerStatus a;
    a.lcore = 1;
    a.rx = 1000;
    a.tx = 990;
    a.redirected_out = 3;
    a.redirected_in = 4;
    a.conns_created = 20;
    a.conns_expired = 10;
    a.conns_in_table = 10;
    a.table_capacity = 1024;
    a.counters = {{"arp_replies", 4}, {"consumed", 6}};
    a.drops = {{"malformed", 0}, {"no_service", 5}};
    WorkerStatus b;
    b.lcore = 2;
    b.rx = 500;
    b.conns_in_table = 20;
    b.table_capacity = 1024;
    b.counters = {{"arp_replies", 1}, {"new_thing", 9}};
    b.drops = {{"malformed", 2}, {"no_service", 0}, {"we\"ird\\reason\nx", 1}};
    ws.workers = {a, b};
    return ws;
}

MetricsExtra sample_extra() {
    MetricsExtra x;
    x.version = "0.1.0";
    x.start_time_seconds = 1700000000;
    x.uptime_seconds = 12.5;
    x.snapshot_generation = 7;
    x.reloads_ok = 3;
    x.reloads_failed = 1;
    x.last_reload_ok = false;
    x.neighbour_entries = 5;
    return x;
}

}  // namespace

TEST_CASE("metrics: global, service and real lines", "[metrics]") {
    const std::string t = render_metrics(sample_status(), sample_workers(), sample_extra());
    check_well_formed(t);

    const std::string svc = R"({protocol="tcp",vip="198.51.100.10",port="80"})";
    const std::string r1 =
        R"({protocol="tcp",vip="198.51.100.10",port="80",real="10.10.0.2",real_port="8080",forward="masq"})";
    const std::string r2 =
        R"({protocol="tcp",vip="198.51.100.10",port="80",real="10.10.0.3",real_port="80",forward="route"})";
    const std::string r3 =
        R"({protocol="udp",vip="198.51.100.10",port="53",real="203.0.113.7",real_port="53",forward="tunnel"})";

    for (const char* l : {
             "lb_build_info{version=\"0.1.0\"} 1",
             "lb_start_time_seconds 1700000000",
             "lb_uptime_seconds 12.5",
             "lb_snapshot_generation 7",
             "lb_neighbour_entries 5",
             "lb_config_reloads_total{result=\"ok\"} 3",
             "lb_config_reloads_total{result=\"failed\"} 1",
             "lb_config_last_reload_successful 0",
             "lb_timeout_seconds{timeout=\"tcp\"} 900",
             "lb_timeout_seconds{timeout=\"tcpfin\"} 120",
             "lb_timeout_seconds{timeout=\"udp\"} 300",
             "lb_services 2",
             "lb_reals 3",
             "# TYPE lb_service_connections_total counter",
             "# TYPE lb_service_rate_connections_per_second gauge",
             "# TYPE lb_real_weight gauge",
             "# TYPE lb_worker_drops_total counter",
             "# HELP lb_worker_drops_total Packets the worker dropped, by reason.",
         }) {
        INFO(l);
        CHECK(has_line(t, l));
    }
    CHECK(has_line(
        t, "lb_service_info" + svc.substr(0, svc.size() - 1) + R"(,scheduler="wlc",flags=""} 1)"));
    CHECK(has_line(
        t,
        R"(lb_service_info{protocol="udp",vip="198.51.100.10",port="53",scheduler="sh",flags="sh-fallback,sh-port"} 1)"));
    CHECK(has_line(t, "lb_service_persistence_seconds" + svc + " 300"));
    CHECK(has_line(t, "lb_service_reals" + svc + " 2"));
    CHECK(has_line(t, "lb_service_connections_total" + svc + " 12"));
    CHECK(has_line(t, "lb_service_in_packets_total" + svc + " 100"));
    CHECK(has_line(t, "lb_service_out_packets_total" + svc + " 90"));
    CHECK(has_line(t, "lb_service_in_bytes_total" + svc + " 6400"));
    CHECK(has_line(t, "lb_service_out_bytes_total" + svc + " 128000"));
    CHECK(has_line(t, "lb_service_rate_connections_per_second" + svc + " 3"));
    CHECK(has_line(t, "lb_service_rate_in_packets_per_second" + svc + " 40"));
    CHECK(has_line(t, "lb_service_rate_out_packets_per_second" + svc + " 35"));
    CHECK(has_line(t, "lb_service_rate_in_bytes_per_second" + svc + " 2560"));
    CHECK(has_line(t, "lb_service_rate_out_bytes_per_second" + svc + " 51200"));
    // Service connection gauges: sums over its reals.
    CHECK(has_line(t, "lb_service_active_connections" + svc + " 5"));
    CHECK(has_line(t, "lb_service_inactive_connections" + svc + " 4"));
    CHECK(has_line(t, "lb_service_persistent_templates" + svc + " 3"));

    CHECK(has_line(t, "lb_real_connections_total" + r1 + " 7"));
    CHECK(has_line(t, "lb_real_in_packets_total" + r1 + " 60"));
    CHECK(has_line(t, "lb_real_out_packets_total" + r1 + " 55"));
    CHECK(has_line(t, "lb_real_in_bytes_total" + r1 + " 3840"));
    CHECK(has_line(t, "lb_real_out_bytes_total" + r1 + " 70000"));
    CHECK(has_line(t, "lb_real_active_connections" + r1 + " 4"));
    CHECK(has_line(t, "lb_real_inactive_connections" + r1 + " 1"));
    CHECK(has_line(t, "lb_real_persistent_templates" + r1 + " 2"));
    CHECK(has_line(t, "lb_real_weight" + r1 + " 3"));
    CHECK(has_line(t, "lb_real_upper_threshold" + r1 + " 50"));
    CHECK(has_line(t, "lb_real_overloaded" + r1 + " 0"));
    CHECK(has_line(t, "lb_real_rate_connections_per_second" + r1 + " 2"));
    CHECK(has_line(t, "lb_real_rate_out_bytes_per_second" + r1 + " 25600"));
    CHECK(has_line(t, "lb_real_weight" + r2 + " 0"));
    CHECK(has_line(t, "lb_real_overloaded" + r2 + " 1"));
    CHECK(has_line(t, "lb_real_connections_total" + r2 + " 5"));
    CHECK(has_line(t, "lb_real_weight" + r3 + " 1"));
}

TEST_CASE("metrics: worker lines, escaping, totals", "[metrics]") {
    const std::string t = render_metrics(sample_status(), sample_workers(), sample_extra());
    for (const char* l : {
             R"(lb_worker_rx_packets_total{worker="1"} 1000)",
             R"(lb_worker_rx_packets_total{worker="2"} 500)",
             R"(lb_worker_tx_packets_total{worker="1"} 990)",
             R"(lb_worker_redirected_packets_total{worker="1",direction="out"} 3)",
             R"(lb_worker_redirected_packets_total{worker="1",direction="in"} 4)",
             R"(lb_worker_connections_created_total{worker="1"} 20)",
             R"(lb_worker_connections_expired_total{worker="1"} 10)",
             R"(lb_worker_conn_table_entries{worker="2"} 20)",
             R"(lb_worker_conn_table_capacity{worker="2"} 1024)",
             R"(lb_worker_drops_total{worker="1",reason="no_service"} 5)",
             R"(lb_worker_drops_total{worker="1",reason="malformed"} 0)",
             R"(lb_worker_drops_total{worker="2",reason="malformed"} 2)",
             // label values escape backslash, double quote and line feed
             R"(lb_worker_drops_total{worker="2",reason="we\"ird\\reason\nx"} 1)",
             R"(lb_worker_arp_replies_total{worker="1"} 4)",
             R"(lb_worker_arp_replies_total{worker="2"} 1)",
             R"(lb_worker_consumed_total{worker="1"} 6)",
             R"(lb_worker_new_thing_total{worker="2"} 9)",
             "# TYPE lb_worker_arp_replies_total counter",
             "# HELP lb_worker_new_thing_total Worker counter new_thing.",
             "lb_conn_table_entries 30",
             "lb_conn_table_capacity 2048",
             "lb_mbuf_pool_capacity 8191",
             "lb_mbuf_pool_in_use 100",
         }) {
        INFO(l);
        CHECK(has_line(t, l));
    }
    // A worker without a counter has no sample for it.
    CHECK(t.find(R"(lb_worker_new_thing_total{worker="1"})") == std::string::npos);
}

TEST_CASE("metrics: the control thread's neighbour counts have their own HELP", "[metrics]") {
    Workers ws = sample_workers();
    ws.workers[0].counters.push_back({"neigh_claims_refused", 2});
    ws.workers[0].counters.push_back({"neigh_mac_changes", 1});
    const std::string t = render_metrics(sample_status(), ws, sample_extra());
    check_well_formed(t);
    for (const char* l : {
             R"(lb_worker_neigh_claims_refused_total{worker="1"} 2)",
             R"(lb_worker_neigh_mac_changes_total{worker="1"} 1)",
             "# HELP lb_worker_neigh_mac_changes_total Neighbour MAC changes, each confirmed by "
             "lb's own ARP probe.",
             "# TYPE lb_neighbour_entries gauge",
         }) {
        INFO(l);
        CHECK(has_line(t, l));
    }
}

TEST_CASE("metrics: odd counter names and empty input", "[metrics]") {
    Workers ws;
    WorkerStatus w;
    w.lcore = 3;
    w.counters = {{"drops", 1}, {"x_total", 2}, {"a\\b.c\nd", 3}};
    ws.workers = {w};
    const std::string t = render_metrics(Status{}, ws, MetricsExtra{});
    check_well_formed(t);
    // "drops" would collide with lb_worker_drops_total
    CHECK(has_line(t, R"(lb_worker_counter_drops_total{worker="3"} 1)"));
    CHECK(has_line(t, R"(lb_worker_x_total{worker="3"} 2)"));
    CHECK(has_line(t, R"(lb_worker_a_b_c_d_total{worker="3"} 3)"));
    // HELP escapes backslash and line feed
    CHECK(has_line(t, R"(# HELP lb_worker_a_b_c_d_total Worker counter a\\b.c\nd.)"));

    const std::string empty = render_metrics(Status{}, Workers{}, MetricsExtra{});
    check_well_formed(empty);
    CHECK(empty.find("lb_build_info") == std::string::npos);
    CHECK(empty.find("lb_start_time_seconds") == std::string::npos);
    CHECK(has_line(empty, "lb_uptime_seconds 0"));
    CHECK(has_line(empty, "lb_services 0"));
    CHECK(has_line(empty, "lb_config_last_reload_successful 1"));
    CHECK(has_line(empty, "# TYPE lb_real_connections_total counter"));
    CHECK(has_line(empty, "lb_conn_table_capacity 0"));

    Status st;
    st.conn_capacity = 4096;  // no worker status: the capacity comes from Status
    CHECK(has_line(render_metrics(st, Workers{}, MetricsExtra{}), "lb_conn_table_capacity 4096"));
}

TEST_CASE("metrics: listen spec", "[metrics]") {
    const ListenSpec s = parse_listen_spec("127.0.0.1:9100");
    CHECK(s.addr == ip(127, 0, 0, 1));
    CHECK(s.port == 9100);
    CHECK(parse_listen_spec("0.0.0.0:0").port == 0);
    CHECK(parse_listen_spec("10.1.2.3:65535").port == 65535);

    CHECK_THROWS_WITH(parse_listen_spec("9100"), Contains("expected ADDR:PORT"));
    CHECK_THROWS_WITH(parse_listen_spec("localhost:9100"),
                      Contains("'localhost' is not a numeric IPv4 address"));
    CHECK_THROWS_WITH(parse_listen_spec("1.2.3:80"), Contains("not a numeric IPv4 address"));
    CHECK_THROWS_WITH(parse_listen_spec("256.0.0.1:80"), Contains("not a numeric IPv4 address"));
    CHECK_THROWS_WITH(parse_listen_spec(":80"), Contains("not a numeric IPv4 address"));
    CHECK_THROWS_WITH(parse_listen_spec("[::1]:80"), Contains("not a numeric IPv4 address"));
    CHECK_THROWS_WITH(parse_listen_spec("127.0.0.1:65536"),
                      Contains("port '65536' is not a number from 0 to 65535"));
    CHECK_THROWS_WITH(parse_listen_spec("127.0.0.1:"), Contains("port ''"));
    CHECK_THROWS_WITH(parse_listen_spec("127.0.0.1:-1"), Contains("port '-1'"));
    CHECK_THROWS_WITH(parse_listen_spec("127.0.0.1:80x"), Contains("port '80x'"));
    CHECK_THROWS_AS(parse_listen_spec("x"), std::runtime_error);
}

namespace {

int connect_to(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    return fd;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("metrics server: serves /metrics, / and 404", "[metrics]") {
    std::atomic<int> calls{0};
    const std::string text = render_metrics(sample_status(), sample_workers(), sample_extra());
    MetricsServer srv("127.0.0.1:0", [&] {
        ++calls;
        return text;
    });
    REQUIRE(srv.port() != 0);
    CHECK(srv.addr() == ip(127, 0, 0, 1));

    httplib::Client cli("127.0.0.1", srv.port());
    auto res = cli.Get("/metrics");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body == text);
    CHECK(res->get_header_value("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
    CHECK(calls == 1);

    // Keep-alive: a second request on the same connection.
    res = cli.Get("/metrics");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(calls == 2);

    res = cli.Get("/");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK_THAT(res->body, Contains("/metrics"));

    for (const char* path : {"/nope", "/metrics/x", "/metricsx"}) {
        res = cli.Get(path);
        REQUIRE(res);
        CHECK(res->status == 404);
    }
    res = cli.Post("/metrics", "x", "text/plain");
    REQUIRE(res);
    CHECK(res->status >= 400);
    CHECK(calls == 2);
}

TEST_CASE("metrics server: a large exposition arrives whole", "[metrics]") {
    std::string big;
    for (int i = 0; big.size() < (8u << 20); ++i) {
        big += "lb_x{i=\"" + std::to_string(i) + "\"} " + std::to_string(i * 7) + "\n";
    }
    MetricsServer srv("127.0.0.1:0", [&] { return big; });
    httplib::Client cli("127.0.0.1", srv.port());
    for (int round = 0; round < 2; ++round) {
        auto res = cli.Get("/metrics");
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body.size() == big.size());
        CHECK(res->body == big);
    }
}

TEST_CASE("metrics server: a source that throws gives 500", "[metrics]") {
    MetricsServer srv("127.0.0.1:0", []() -> std::string { throw std::runtime_error("boom"); });
    httplib::Client cli("127.0.0.1", srv.port());
    auto res = cli.Get("/metrics");
    REQUIRE(res);
    CHECK(res->status == 500);
    CHECK(!res->has_header("EXCEPTION_WHAT"));
}

TEST_CASE("metrics server: bad specs and ports in use throw", "[metrics]") {
    auto src = [] { return std::string("x 1\n"); };
    CHECK_THROWS_WITH(MetricsServer("nonsense", src), Contains("expected ADDR:PORT"));
    CHECK_THROWS_WITH(MetricsServer("127.0.0.1:99999", src), Contains("port '99999'"));
    CHECK_THROWS_WITH(MetricsServer("127.0.0.1:0", MetricsServer::Source{}), Contains("source"));
    // An address this host does not have.
    CHECK_THROWS_WITH(
        MetricsServer("192.0.2.77:0", src),
        Contains("cannot listen on 192.0.2.77:0") && Contains("Cannot assign requested address"));

    MetricsServer a("127.0.0.1:0", src);
    const std::string busy = "127.0.0.1:" + std::to_string(a.port());
    CHECK_THROWS_WITH(MetricsServer(busy, src),
                      Contains("cannot listen on " + busy) && Contains("Address already in use"));

    // A listener with SO_REUSEPORT (httplib's default socket option) does not share its port
    // with the metrics server either.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    const int yes = 1;
    REQUIRE(::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof(yes)) == 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    socklen_t len = sizeof(sa);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0);
    const std::string taken = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
    CHECK_THROWS_WITH(MetricsServer(taken, src), Contains("Address already in use"));
    ::close(fd);

    // The port is free again once a server is gone.
    const uint16_t port = a.port();
    {
        MetricsServer b("127.0.0.1:0", src);
        CHECK(b.port() != port);
    }
}

TEST_CASE("metrics server: destructor is prompt with open connections", "[metrics]") {
    auto src = [] { return std::string("x 1\n"); };
    SECTION("destroyed right after construction") {
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < 20; ++i) {
            MetricsServer srv("127.0.0.1:0", src);
        }
        CHECK(seconds_since(t0) < 2.0);
    }
    SECTION("idle, half-sent and keep-alive connections") {
        auto srv = std::make_unique<MetricsServer>("127.0.0.1:0", src);
        const uint16_t port = srv->port();
        const int idle = connect_to(port);     // sends nothing
        const int partial = connect_to(port);  // a request cut short
        const std::string half = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
        REQUIRE(::send(partial, half.data(), half.size(), 0) == ssize_t(half.size()));
        httplib::Client cli("127.0.0.1", port);  // keep-alive, idle after one answer
        cli.set_keep_alive(true);
        auto res = cli.Get("/metrics");
        REQUIRE(res);
        CHECK(res->status == 200);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // all accepted, waiting

        const auto t0 = std::chrono::steady_clock::now();
        srv.reset();
        CHECK(seconds_since(t0) < 0.5);

        // The server closed them: reads see end of stream.
        char c = 0;
        CHECK(::recv(idle, &c, 1, 0) == 0);
        CHECK(::recv(partial, &c, 1, 0) == 0);
        ::close(idle);
        ::close(partial);
        // and nothing listens on the port any more
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0);
        ::close(fd);
    }
    SECTION("more idle connections than connection threads") {
        auto srv = std::make_unique<MetricsServer>("127.0.0.1:0", src);
        std::vector<int> fds;
        for (int i = 0; i < 10; ++i) {
            fds.push_back(connect_to(srv->port()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        const auto t0 = std::chrono::steady_clock::now();
        srv.reset();
        CHECK(seconds_since(t0) < 0.5);
        for (const int fd : fds) {
            ::close(fd);
        }
    }
}

namespace {

// Sends `req` on a new connection and reads until the server closes it (or 2 s pass).
std::string raw_exchange(uint16_t port, const std::string& req) {
    const int fd = connect_to(port);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size()));
    std::string out;
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
        out.append(buf, size_t(n));
    }
    ::close(fd);
    return out;
}

}  // namespace

TEST_CASE("metrics server: the bytes of its responses", "[metrics]") {
    MetricsServer srv("127.0.0.1:0", [] { return std::string("x 1\n"); });
    CHECK(raw_exchange(srv.port(), "GET /metrics HTTP/1.0\r\n\r\n") ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
          "Content-Length: 4\r\nConnection: close\r\n\r\nx 1\n");
    CHECK(raw_exchange(srv.port(), "HEAD /metrics?x=1 HTTP/1.1\r\nConnection: close\r\n\r\n") ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
          "Content-Length: 4\r\nConnection: close\r\n\r\n");
    CHECK_THAT(raw_exchange(srv.port(), "GET /x HTTP/1.0\r\n\r\n"),
               Contains("HTTP/1.1 404 Not Found\r\n") && Contains("404 not found: try /metrics\n"));
    CHECK_THAT(raw_exchange(srv.port(), "DELETE /metrics HTTP/1.0\r\n\r\n"),
               Contains("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"));
    CHECK_THAT(raw_exchange(srv.port(), "nonsense\r\n\r\n"), Contains("HTTP/1.1 400 "));
    CHECK_THAT(raw_exchange(srv.port(), "GET / HTTP/2.0\r\n\r\n"), Contains("HTTP/1.1 505 "));
    CHECK_THAT(raw_exchange(srv.port(), "POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n"),
               Contains("HTTP/1.1 413 "));
    // A request head of more than 8 KiB is refused, not buffered.
    const std::string big = "GET /metrics HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
    CHECK_THAT(raw_exchange(srv.port(), big), Contains("HTTP/1.1 431 "));
    // Two pipelined requests, each answered in order.
    const std::string two = raw_exchange(
        srv.port(), "GET / HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK(two.find("Prometheus metrics at /metrics") < two.find("x 1\n"));
}

TEST_CASE("metrics server: 1000 idle and slow connections do not stop a scrape", "[metrics]") {
    const std::string text = "lb_up 1\n";
    MetricsServer srv("127.0.0.1:0", [&] { return text; });
    std::vector<int> fds;
    const std::string half = "GET /metrics HTTP/1.1\r\nHost: x\r\n";
    for (int i = 0; i < 1000; ++i) {
        fds.push_back(connect_to(srv.port()));
        if (i % 4 == 0) {  // every fourth one a request cut short (slowloris)
            ::send(fds.back(), half.data(), half.size(), MSG_NOSIGNAL);
        }
    }
    for (int round = 0; round < 5; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        httplib::Client cli("127.0.0.1", srv.port());
        cli.set_connection_timeout(1);
        cli.set_read_timeout(1);
        auto res = cli.Get("/metrics");
        REQUIRE(res);
        CHECK(res->status == 200);
        CHECK(res->body == text);
        CHECK(seconds_since(t0) < 0.5);
        fds.push_back(connect_to(srv.port()));
    }
    for (const int fd : fds) {
        ::close(fd);
    }
}

TEST_CASE("metrics server: a request cut short is closed after 2 s", "[metrics][slow]") {
    MetricsServer srv("127.0.0.1:0", [] { return std::string("x 1\n"); });
    const int fd = connect_to(srv.port());
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const auto t0 = std::chrono::steady_clock::now();
    for (const char c : std::string("GET ")) {  // a byte every 300 ms
        ::send(fd, &c, 1, MSG_NOSIGNAL);
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    char b = 0;
    CHECK(::recv(fd, &b, 1, 0) <= 0);
    CHECK(seconds_since(t0) > 1.8);
    CHECK(seconds_since(t0) < 3.5);
    ::close(fd);
}

TEST_CASE("metrics: the ports' statistics", "[metrics]") {
    Workers ws = sample_workers();
    PortStatus p0;
    p0.port = 0;
    p0.name = "net_af_packet0";
    p0.ipackets = 1000;
    p0.opackets = 900;
    p0.ibytes = 64000;
    p0.obytes = 57600;
    p0.imissed = 1;
    p0.ierrors = 2;
    p0.rx_nombuf = 3;
    p0.oerrors = 4;
    p0.rx_ring_drops = 5;
    PortStatus p1;
    p1.port = 1;
    p1.name = "net_pcap\"1";
    p1.ipackets = 7;
    ws.ports = {p0, p1};
    const std::string t = render_metrics(sample_status(), ws, sample_extra());
    check_well_formed(t);
    const std::string l0 = R"({port="0",device="net_af_packet0"})";
    for (const std::string& l : std::vector<std::string>{
             "# TYPE lb_port_rx_packets_total counter",
             "lb_port_rx_packets_total" + l0 + " 1000",
             "lb_port_tx_packets_total" + l0 + " 900",
             "lb_port_rx_bytes_total" + l0 + " 64000",
             "lb_port_tx_bytes_total" + l0 + " 57600",
             "lb_port_rx_missed_total" + l0 + " 1",
             "lb_port_rx_errors_total" + l0 + " 2",
             "lb_port_rx_nombuf_total" + l0 + " 3",
             "lb_port_tx_errors_total" + l0 + " 4",
             "lb_port_rx_ring_drops_total" + l0 + " 5",
             R"(lb_port_rx_packets_total{port="1",device="net_pcap\"1"} 7)",
             R"(lb_port_rx_ring_drops_total{port="1",device="net_pcap\"1"} 0)",
             "lb_mbuf_pool_in_use 100",
         }) {
        INFO(l);
        CHECK(has_line(t, l));
    }
    // Without ports (a build without DPDK ports, lbctl's tests): no port family at all.
    CHECK(render_metrics(sample_status(), sample_workers(), sample_extra()).find("lb_port_") ==
          std::string::npos);
}
