// Config file reader: a valid file into every field, one bad file per rule (each error must say
// FILE:LINE: KEY: ...), libconfig syntax errors, the shipped conf/ files and parse_ipv4.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "control/config.hpp"
#include "control/config_source.hpp"

using lb::ctl::Config;
using lb::ctl::ConfigError;
using lb::ctl::format_ipv4;
using lb::ctl::load_config;
using lb::ctl::parse_config;
using lb::ctl::parse_ipv4;

namespace {

// Line numbers matter: the bad cases below name them.
const std::string kBase = R"CFG(# base config for the tests
eal = ["-l", "0-2", "--no-pci", "--vdev=net_af_packet0,iface=lb-ext"];
workers = [1, 2];
mbufs = 8191;
interfaces = (
  { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:01:00"; mtu = 9000; },
  { port = 1; address = "10.10.0.1/24"; }
);
routes = ( { prefix = "203.0.113.0/24"; via = "10.10.0.254"; } );
neighbours = ( { address = "10.10.0.2"; mac = "02:00:00:00:00:02"; } );
connections = { capacity = 4096; tcp_timeout = 600; tcp_fin_timeout = 60; udp_timeout = 30; sloppy_tcp = true; };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "wrr"; persistence = 0;
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; weight = 3; },
              { address = "203.0.113.5"; weight = 0; } ); },
  { vip = "198.51.100.10"; port = 53; protocol = "udp";
    reals = ( { address = "10.10.0.3"; } ); }
);
control = { socket = "/tmp/lb-test.sock"; };
log = { level = "debug"; };
)CFG";

// `text` with `from` (which must occur exactly once) replaced by `to`.
std::string replace_once(std::string text, const std::string& from, const std::string& to) {
    const size_t pos = text.find(from);
    if (pos == std::string::npos || text.find(from, pos + 1) != std::string::npos) {
        throw std::logic_error("test bug: \"" + from + "\" does not occur exactly once");
    }
    text.replace(pos, from.size(), to);
    return text;
}

// n routes, 10.0.0.0/24 onwards, all via 10.10.0.254, as one line.
std::string many_routes(uint32_t n) {
    std::string out;
    for (uint32_t i = 0; i < n; ++i) {
        out += std::string(i ? ", " : "") + "{ prefix = \"10." + std::to_string(i >> 8) + "." +
               std::to_string(i & 255) + ".0/24\"; via = \"10.10.0.254\"; }";
    }
    return out;
}

std::string edit(const std::string& from, const std::string& to) {
    return replace_once(kBase, from, to);
}

const std::string kEalLine =
    R"(eal = ["-l", "0-2", "--no-pci", "--vdev=net_af_packet0,iface=lb-ext"];)";

// The ConfigError message, or a note saying what happened instead.
std::string error_of(const std::string& text) {
    try {
        parse_config(text, "test.conf");
    } catch (const ConfigError& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("unexpected exception: ") + e.what();
    }
    return "no error";
}

std::string source_root() {
    namespace fs = std::filesystem;
    // __FILE__ is ROOT/tests/unit/test_config.cpp relative to the build dir under meson, and the
    // binary is BUILD/tests/unit_tests: resolve against the build dir, whatever the cwd is.
    const fs::path root = fs::path(__FILE__).parent_path().parent_path().parent_path();
    std::vector<fs::path> candidates = {root};
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec && root.is_relative()) {
        candidates.push_back(exe.parent_path().parent_path() / root);
    }
    candidates.push_back(".");
    for (const fs::path& p : candidates) {
        if (fs::exists(p / "conf" / "nat.conf")) {
            return p.lexically_normal().string();
        }
    }
    return root.string();
}

}  // namespace

TEST_CASE("config: a valid file fills every field", "[config]") {
    const Config c = parse_config(kBase, "test.conf");
    CHECK(c.file == "test.conf");
    CHECK(c.eal ==
          std::vector<std::string>{"-l", "0-2", "--no-pci", "--vdev=net_af_packet0,iface=lb-ext"});
    CHECK(c.workers == std::vector<unsigned>{1, 2});
    CHECK(c.mbufs == 8191);

    REQUIRE(c.interfaces.size() == 2);
    CHECK(c.interfaces[0].port == 0);
    CHECK(c.interfaces[0].addr == 0xc6336401);  // 198.51.100.1
    CHECK(c.interfaces[0].prefix_len == 24);
    REQUIRE(c.interfaces[0].mac.has_value());
    CHECK(*c.interfaces[0].mac == lb::ctl::Mac{0x02, 0, 0, 0, 0x01, 0});
    CHECK(c.interfaces[0].mtu == 9000);
    CHECK(c.interfaces[0].line == 6);
    CHECK(c.interfaces[1].port == 1);
    CHECK(c.interfaces[1].addr == 0x0a0a0001);
    CHECK(c.interfaces[1].prefix_len == 24);
    CHECK_FALSE(c.interfaces[1].mac.has_value());
    CHECK(c.interfaces[1].mtu == 1500);
    CHECK(c.interfaces[1].line == 7);

    REQUIRE(c.routes.size() == 1);
    CHECK(c.routes[0].prefix == 0xcb007100);  // 203.0.113.0
    CHECK(c.routes[0].prefix_len == 24);
    CHECK(c.routes[0].via == 0x0a0a00fe);
    CHECK(c.routes[0].line == 9);

    REQUIRE(c.neighbours.size() == 1);
    CHECK(c.neighbours[0].addr == 0x0a0a0002);
    CHECK(c.neighbours[0].mac == lb::ctl::Mac{0x02, 0, 0, 0, 0, 0x02});
    CHECK(c.neighbours[0].line == 10);

    CHECK(c.connections.capacity == 4096);
    CHECK(c.connections.tcp_timeout == 600);
    CHECK(c.connections.tcp_fin_timeout == 60);
    CHECK(c.connections.udp_timeout == 30);
    CHECK(c.connections.sloppy_tcp);

    REQUIRE(c.services.size() == 2);
    const auto& web = c.services[0];
    CHECK(web.vip == 0xc633640a);  // 198.51.100.10
    CHECK(web.port == 80);
    CHECK(web.proto == 6);
    CHECK(web.scheduler == lb::dp::SchedKind::Wrr);
    CHECK(web.persistence == 0);
    CHECK(web.line == 13);
    REQUIRE(web.reals.size() == 2);
    CHECK(web.reals[0].addr == 0x0a0a0002);
    CHECK(web.reals[0].port == 8080);
    CHECK(web.reals[0].forward == lb::dp::Forward::Nat);
    CHECK(web.reals[0].weight == 3);
    CHECK(web.reals[0].line == 14);
    CHECK(web.reals[1].addr == 0xcb007105);  // 203.0.113.5, through the route
    CHECK(web.reals[1].port == 80);          // defaults to the service port
    CHECK(web.reals[1].forward == lb::dp::Forward::Nat);
    CHECK(web.reals[1].weight == 0);
    CHECK(web.reals[1].line == 15);

    const auto& dns = c.services[1];
    CHECK(dns.vip == 0xc633640a);
    CHECK(dns.port == 53);
    CHECK(dns.proto == 17);
    CHECK(dns.scheduler == lb::dp::SchedKind::Rr);  // default
    CHECK(dns.persistence == 0);                    // default
    CHECK(dns.line == 16);
    REQUIRE(dns.reals.size() == 1);
    CHECK(dns.reals[0].addr == 0x0a0a0003);
    CHECK(dns.reals[0].port == 53);
    CHECK(dns.reals[0].weight == 1);
    CHECK(dns.reals[0].line == 17);

    CHECK(c.control_socket == "/tmp/lb-test.sock");
    CHECK(c.log_level == "debug");
}

TEST_CASE("config: optional keys take their defaults", "[config]") {
    const Config c = parse_config(R"(eal = ["--no-pci"];
workers = [3];
interfaces = ( { port = 2; address = "192.0.2.1/32"; } );
)",
                                  "min.conf");
    CHECK(c.eal == std::vector<std::string>{"--no-pci"});
    CHECK(c.workers == std::vector<unsigned>{3});  // no -l: not checked against EAL lcores
    CHECK(c.mbufs == 65535);
    REQUIRE(c.interfaces.size() == 1);
    CHECK(c.interfaces[0].prefix_len == 32);
    CHECK(c.interfaces[0].mtu == 1500);
    CHECK(c.routes.empty());
    CHECK(c.neighbours.empty());
    CHECK(c.connections.capacity == 1048576);
    CHECK(c.connections.tcp_timeout == 900);
    CHECK(c.connections.tcp_fin_timeout == 120);
    CHECK(c.connections.udp_timeout == 300);
    CHECK_FALSE(c.connections.sloppy_tcp);
    CHECK(c.services.empty());
    CHECK(c.control_socket == "/run/lb/lb.sock");
    CHECK(c.log_level == "info");
}

TEST_CASE("config: accepted variants", "[config]") {
    struct Good {
        const char* desc;
        std::string text;
    };
    const std::vector<Good> cases = {
        {"64-bit integer literal", edit("capacity = 4096;", "capacity = 4096L;")},
        {"hex integer", edit("mbufs = 8191;", "mbufs = 0x1fff;")},
        {"workers as a list", edit("workers = [1, 2];", "workers = (1, 2);")},
        {"-l joined to its list", edit(R"("-l", "0-2")", R"("-l0-2")")},
        {"-l with commas and ranges", replace_once(edit(R"("-l", "0-2")", R"("-l", "0,2,4-5")"),
                                                   "workers = [1, 2];", "workers = [2, 5];")},
        {"--lcores is left to DPDK",
         replace_once(edit(R"("-l", "0-2")", R"("--lcores", "(0-3)@0")"), "workers = [1, 2];",
                      "workers = [0, 7];")},
        {"--main-lcore moves the main lcore",
         replace_once(edit(R"("-l", "0-2")", R"("-l", "0-2", "--main-lcore", "2")"),
                      "workers = [1, 2];", "workers = [0, 1];")},
        {"empty routes as []",
         replace_once(edit(R"(routes = ( { prefix = "203.0.113.0/24"; via = "10.10.0.254"; } );)",
                           "routes = [];"),
                      R"("203.0.113.5")", R"("10.10.0.4")")},
        {"default route reaches any real",
         replace_once(edit(R"("203.0.113.0/24")", R"("0.0.0.0/0")"), R"("10.10.0.3")",
                      R"("192.0.2.77")")},
        {"/31 interface, real on its other address",
         R"(eal = ["-l", "0-1"]; workers = [1];
interfaces = ( { port = 0; address = "10.10.0.0/31"; } );
services = ( { vip = "198.51.100.10"; port = 80; protocol = "tcp";
               reals = ( { address = "10.10.0.1"; } ); } );)"},
        {"weight 65535", edit("weight = 3;", "weight = 65535;")},
        {"persistence one year, /24",
         edit("persistence = 0;", R"(persistence = 31536000; persistence_mask = "255.255.255.0";)")},
        {"every scheduler and its flags",
         edit(R"(scheduler = "wrr";)",
              R"(scheduler = "mh"; sched_flags = ["mh-port", "mh-fallback"]; mh_table_size = 251;)")},
        {"sh flags", edit(R"(scheduler = "wrr";)", R"(scheduler = "sh"; sched_flags = ("sh-port");)")},
        {"tun and dr reals in one service, port omitted or equal",
         replace_once(edit(R"({ address = "203.0.113.5"; weight = 0; })",
                           R"({ address = "203.0.113.5"; forward = "tun"; weight = 0; },
                              { address = "10.10.0.7"; port = 80; forward = "dr"; })"),
                      "persistence = 0;", R"(persistence = 0; tunnel_source = "10.10.0.1";)")},
        {"socket path of 107 bytes",
         edit(R"("/tmp/lb-test.sock")", "\"/" + std::string(106, 's') + "\"")},
        {"services may be empty", R"(eal = ["-l", "0-1"]; workers = [1];
interfaces = ( { port = 0; address = "10.0.0.1/8"; } ); services = ();)"},
    };
    for (const Good& g : cases) {
        INFO(g.desc);
        INFO(g.text);
        CHECK(error_of(g.text) == "no error");
    }
    CHECK(parse_config(edit("capacity = 4096;", "capacity = 4096L;"), "t").connections.capacity ==
          4096);
    CHECK(parse_config(edit("mbufs = 8191;", "mbufs = 0x1fff;"), "t").mbufs == 8191);
}

TEST_CASE("config: every rule gives FILE:LINE: KEY: message", "[config]") {
    struct Bad {
        const char* desc;
        std::string text;
        int line;
        std::string key;   // the message must start with "test.conf:LINE: KEY: "
        std::string what;  // and contain this
    };
    const std::string min_head = "eal = [\"-l\", \"0-1\"];\nworkers = [1];\n";
    const std::vector<Bad> cases = {
        // unknown keys, at every level
        {"unknown top-level key",
         edit(R"(log = { level = "debug"; };)", R"(log = { level = "debug"; }; bogus = 1;)"), 20,
         "bogus", "unknown key (allowed: eal, workers, mbufs, interfaces, routes"},
        {"unknown interface key", edit("mtu = 9000;", "mtu = 9000; speed = 10;"), 6,
         "interfaces[0].speed", "unknown key (allowed: port, address, mac, mtu, rp_filter)"},
        {"unknown rp_filter", edit("mtu = 9000;", "mtu = 9000; rp_filter = \"on\";"), 6,
         "interfaces[0].rp_filter", "unknown rp_filter \"on\" (strict, loose or off)"},
        {"unknown route key",
         edit(R"(via = "10.10.0.254";)", R"(via = "10.10.0.254"; metric = 1;)"), 9,
         "routes[0].metric", "unknown key (allowed: prefix, via)"},
        {"unknown neighbour key",
         edit(R"(mac = "02:00:00:00:00:02";)", R"(mac = "02:00:00:00:00:02"; port = 1;)"), 10,
         "neighbours[0].port", "unknown key (allowed: address, mac)"},
        {"unknown connections key",
         edit("udp_timeout = 30;", "udp_timeout = 30; icmp_timeout = 5;"), 11,
         "connections.icmp_timeout", "unknown key (allowed: capacity, tcp_timeout"},
        {"unknown service key", edit("persistence = 0;", "persistence = 0; netmask = 1;"), 13,
         "services[0].netmask", "unknown key (allowed: vip, port, protocol, scheduler"},
        {"unknown real key", edit("weight = 3;", "weight = 3; fwd = \"nat\";"), 14,
         "services[0].reals[0].fwd",
         "unknown key (allowed: address, port, forward, weight, u_threshold, l_threshold)"},
        {"unknown control key", edit(R"(socket = "/tmp/lb-test.sock";)", R"(sock = "/x";)"), 19,
         "control.sock", "unknown key (allowed: socket, metrics)"},
        {"metrics without a port",
         edit(R"(socket = "/tmp/lb-test.sock";)", R"(metrics = "127.0.0.1";)"), 19,
         "control.metrics", "\"127.0.0.1\" is not ADDR:PORT"},
        {"metrics port 0", edit(R"(socket = "/tmp/lb-test.sock";)", R"(metrics = "127.0.0.1:0";)"),
         19, "control.metrics", "is not ADDR:PORT"},
        {"metrics bad address",
         edit(R"(socket = "/tmp/lb-test.sock";)", R"(metrics = "localhost:9100";)"), 19,
         "control.metrics", "\"localhost\" is not an IPv4 address"},
        {"unknown log key", edit(R"(level = "debug";)", R"(level = "debug"; file = "x";)"), 20,
         "log.file", "unknown key (allowed: level)"},

        // types
        {"string for an integer", edit("mbufs = 8191;", "mbufs = \"8191\";"), 4, "mbufs",
         "expected an integer, got a string"},
        {"float for an integer", edit("tcp_timeout = 600;", "tcp_timeout = 600.0;"), 11,
         "connections.tcp_timeout", "expected an integer, got a float"},
        {"integer for a string", edit(R"(protocol = "udp";)", "protocol = 17;"), 16,
         "services[1].protocol", "expected a string, got an integer"},
        {"scalar for a group",
         edit(R"(control = { socket = "/tmp/lb-test.sock"; };)", R"(control = "/tmp/x.sock";)"), 19,
         "control", "expected a group"},
        {"scalar for a list",
         edit(R"(routes = ( { prefix = "203.0.113.0/24"; via = "10.10.0.254"; } );)",
              "routes = 5;"),
         9, "routes", "expected a list"},
        {"list element not a group", edit(R"({ port = 1; address = "10.10.0.1/24"; })", "5"), 7,
         "interfaces[1]", "expected a group"},
        {"integer literal truncated by libconfig",
         edit("capacity = 4096;", "capacity = 4294971392;"), 11, "connections.capacity",
         "4294971392 is out of range (1..100000000)"},
        {"truncated literal next to a key with the same truncated value (0)",
         edit("mtu = 9000;", "mtu = 0x100000000;"), 6, "interfaces[0].mtu",
         "0x100000000 is out of range (68..9216)"},
        {"integer literal truncated in an array",
         edit("workers = [1, 2];", "workers = [1, 4294967298];"), 3, "workers[1]",
         "4294967298 is out of range (0..1023)"},

        // missing required keys: the error points at the enclosing group
        {"missing eal", edit(kEalLine, "# none"), 1, "eal", "required key is missing"},
        {"missing workers", edit("workers = [1, 2];", ""), 1, "workers", "required key is missing"},
        {"missing interfaces", min_head, 1, "interfaces", "required key is missing"},
        {"missing interface address",
         edit(R"({ port = 1; address = "10.10.0.1/24"; })", "{ port = 1; }"), 7,
         "interfaces[1].address", "required key is missing"},
        {"missing interface port",
         edit(R"({ port = 1; address = "10.10.0.1/24"; })", R"({ address = "10.10.0.1/24"; })"), 7,
         "interfaces[1].port", "required key is missing"},
        {"missing route via", edit(R"(via = "10.10.0.254"; )", ""), 9, "routes[0].via",
         "required key is missing"},
        {"missing neighbour mac", edit(R"(mac = "02:00:00:00:00:02"; )", ""), 10,
         "neighbours[0].mac", "required key is missing"},
        {"missing service vip", edit(R"({ vip = "198.51.100.10"; port = 53;)", "{ port = 53;"), 16,
         "services[1].vip", "required key is missing"},
        {"missing service protocol", edit(R"(port = 53; protocol = "udp";)", "port = 53;"), 16,
         "services[1].protocol", "required key is missing"},
        {"missing real address", edit(R"({ address = "10.10.0.3"; })", "{ port = 53; }"), 17,
         "services[1].reals[0].address", "required key is missing"},

        // eal and workers
        {"empty eal", edit(kEalLine, "eal = [];"), 2, "eal", "at least one EAL argument"},
        {"non-string eal argument", edit(kEalLine, R"(eal = ("-l", 5);)"), 2, "eal[1]",
         "expected a string, got an integer"},
        {"bad -l list", edit(R"("-l", "0-2")", R"("-l", "0-x")"), 2, "eal[1]",
         "\"0-x\" is not a valid lcore list for -l"},
        {"-l without its list", edit(kEalLine, R"(eal = ["--no-pci", "-l"];)"), 2, "eal[1]",
         "-l needs a value"},
        {"empty workers", edit("workers = [1, 2];", "workers = [];"), 3, "workers",
         "at least one worker"},
        {"worker listed twice", edit("workers = [1, 2];", "workers = [1, 1];"), 3, "workers[1]",
         "lcore 1 is listed twice"},
        {"worker lcore out of range", edit("workers = [1, 2];", "workers = [1, 1024];"), 3,
         "workers[1]", "1024 is out of range (0..1023)"},
        {"worker on the main lcore", edit("workers = [1, 2];", "workers = [0, 1];"), 3,
         "workers[0]", "lcore 0 is the main lcore (the lowest lcore of -l 0-2)"},
        {"worker not in -l", edit("workers = [1, 2];", "workers = [1, 3];"), 3, "workers[1]",
         "lcore 3 is not in the EAL lcore list (-l 0-2)"},
        {"worker not in joined -l", edit(R"("-l", "0-2")", R"("-l0-1")"), 3, "workers[1]",
         "lcore 2 is not in the EAL lcore list (-l 0-1)"},
        {"worker on --main-lcore", edit(R"("-l", "0-2")", R"("-l", "0-2", "--main-lcore=2")"), 3,
         "workers[1]", "lcore 2 is the main lcore (--main-lcore 2)"},
        {"mbufs too small", edit("mbufs = 8191;", "mbufs = 100;"), 4, "mbufs",
         "100 is out of range (1023..16777216)"},
        {"mbufs too large", edit("mbufs = 8191;", "mbufs = 16777217;"), 4, "mbufs",
         "out of range (1023..16777216)"},

        // interfaces
        {"no interfaces",
         edit("interfaces = (\n  { port = 0; address = \"198.51.100.1/24\"; mac = "
              "\"02:00:00:00:01:00\"; mtu = 9000; },\n  { port = 1; address = \"10.10.0.1/24\"; "
              "}\n);",
              "interfaces = ();\n\n\n"),
         5, "interfaces", "at least one interface is required"},
        {"interface port out of range", edit("{ port = 1;", "{ port = 16;"), 7,
         "interfaces[1].port", "16 is out of range (0..15)"},
        {"interface port twice", edit("{ port = 1;", "{ port = 0;"), 7, "interfaces[1].port",
         "port 0 is already used by interfaces[0] (line 6)"},
        {"interface address without length", edit(R"("10.10.0.1/24")", R"("10.10.0.1")"), 7,
         "interfaces[1].address", "\"10.10.0.1\" is not an IPv4 address with prefix length"},
        {"interface prefix length 33", edit(R"("10.10.0.1/24")", R"("10.10.0.1/33")"), 7,
         "interfaces[1].address", "prefix length 33 is out of range (1..32)"},
        {"interface prefix length 0", edit(R"("10.10.0.1/24")", R"("10.10.0.1/0")"), 7,
         "interfaces[1].address", "prefix length 0 is out of range (1..32)"},
        {"interface on the network address", edit(R"("10.10.0.1/24")", R"("10.10.0.0/24")"), 7,
         "interfaces[1].address", "is the network address of its subnet"},
        {"interface on the broadcast address", edit(R"("10.10.0.1/24")", R"("10.10.0.255/24")"), 7,
         "interfaces[1].address", "is the broadcast address of its subnet"},
        {"interface on a multicast address", edit(R"("10.10.0.1/24")", R"("224.0.0.1/24")"), 7,
         "interfaces[1].address", "224.0.0.1 is a multicast address"},
        {"interface address twice", edit(R"("10.10.0.1/24")", R"("198.51.100.1/25")"), 7,
         "interfaces[1].address", "198.51.100.1 is already the address of interfaces[0] (line 6)"},
        {"interface multicast mac",
         edit(R"(mac = "02:00:00:00:01:00")", R"(mac = "03:00:00:00:01:00")"), 6,
         "interfaces[0].mac", "is a multicast MAC address"},
        {"interface malformed mac",
         edit(R"(mac = "02:00:00:00:01:00")", R"(mac = "02:00:00:00:01")"), 6, "interfaces[0].mac",
         "\"02:00:00:00:01\" is not a MAC address"},
        {"interface mtu too large", edit("mtu = 9000;", "mtu = 9217;"), 6, "interfaces[0].mtu",
         "9217 is out of range (68..9216)"},
        {"interface mtu too small", edit("mtu = 9000;", "mtu = 67;"), 6, "interfaces[0].mtu",
         "67 is out of range (68..9216)"},

        // routes
        {"route prefix with host bits", edit(R"("203.0.113.0/24")", R"("203.0.113.1/24")"), 9,
         "routes[0].prefix", "has host bits set (did you mean \"203.0.113.0/24\"?)"},
        {"route prefix length 33", edit(R"("203.0.113.0/24")", R"("203.0.113.0/33")"), 9,
         "routes[0].prefix", "prefix length 33 is out of range (0..32)"},
        {"route prefix not a prefix", edit(R"("203.0.113.0/24")", R"("203.0.113.0")"), 9,
         "routes[0].prefix", "is not an IPv4 prefix"},
        {"route via off-link", edit(R"(via = "10.10.0.254")", R"(via = "192.0.2.1")"), 9,
         "routes[0].via", "192.0.2.1 is not on the subnet of any interface"},
        {"route via our own address", edit(R"(via = "10.10.0.254")", R"(via = "10.10.0.1")"), 9,
         "routes[0].via", "10.10.0.1 is the director's own address"},
        {"route prefix twice",
         edit(
             R"(routes = ( { prefix = "203.0.113.0/24"; via = "10.10.0.254"; } );)",
             R"(routes = ( { prefix = "203.0.113.0/24"; via = "10.10.0.254"; }, { prefix = "203.0.113.0/24"; via = "10.10.0.253"; } );)"),
         9, "routes[1].prefix", "is already routed by routes[0] (line 9)"},

        // neighbours
        {"neighbour off-link",
         edit(R"(address = "10.10.0.2"; mac)", R"(address = "192.0.2.2"; mac)"), 10,
         "neighbours[0].address", "192.0.2.2 is not on the subnet of any interface"},
        {"neighbour broadcast mac", edit(R"("02:00:00:00:00:02")", R"("ff:ff:ff:ff:ff:ff")"), 10,
         "neighbours[0].mac", "is the broadcast MAC address"},
        {"neighbour zero mac", edit(R"("02:00:00:00:00:02")", R"("00:00:00:00:00:00")"), 10,
         "neighbours[0].mac", "is the all-zero MAC address"},
        {"neighbour twice",
         edit(
             R"(neighbours = ( { address = "10.10.0.2"; mac = "02:00:00:00:00:02"; } );)",
             R"(neighbours = ( { address = "10.10.0.2"; mac = "02:00:00:00:00:02"; }, { address = "10.10.0.2"; mac = "02:00:00:00:00:03"; } );)"),
         10, "neighbours[1].address", "10.10.0.2 is already listed at neighbours[0] (line 10)"},

        // connections
        {"capacity zero", edit("capacity = 4096;", "capacity = 0;"), 11, "connections.capacity",
         "0 is out of range (1..100000000)"},
        {"capacity too large", edit("capacity = 4096;", "capacity = 100000001;"), 11,
         "connections.capacity", "100000001 is out of range (1..100000000)"},
        {"timeout zero", edit("udp_timeout = 30;", "udp_timeout = 0;"), 11,
         "connections.udp_timeout", "0 is out of range (1..31536000)"},
        {"sloppy_tcp not a boolean", edit("sloppy_tcp = true;", "sloppy_tcp = 1;"), 11,
         "connections.sloppy_tcp", "expected true or false, got an integer"},
        {"timeout over a year", edit("tcp_fin_timeout = 60;", "tcp_fin_timeout = 31536001;"), 11,
         "connections.tcp_fin_timeout", "31536001 is out of range (1..31536000)"},

        // services
        {"vip not an address",
         edit(R"(vip = "198.51.100.10"; port = 80;)", R"(vip = "198.51.100.300"; port = 80;)"), 13,
         "services[0].vip", "\"198.51.100.300\" is not an IPv4 address"},
        {"vip 0.0.0.0",
         edit(R"(vip = "198.51.100.10"; port = 80;)", R"(vip = "0.0.0.0"; port = 80;)"), 13,
         "services[0].vip", "0.0.0.0 cannot be a VIP"},
        {"vip broadcast",
         edit(R"(vip = "198.51.100.10"; port = 80;)", R"(vip = "255.255.255.255"; port = 80;)"), 13,
         "services[0].vip", "255.255.255.255 is the broadcast address"},
        {"vip is an interface address",
         edit(R"(vip = "198.51.100.10"; port = 80;)", R"(vip = "198.51.100.1"; port = 80;)"), 13,
         "services[0].vip", "198.51.100.1 is the address of interfaces[0] (line 6)"},
        {"service port 0", edit("port = 80; protocol", "port = 0; protocol"), 13,
         "services[0].port", "port 0 (all ports) is not supported in this version (1..65535)"},
        {"service port too large", edit("port = 80; protocol", "port = 65536; protocol"), 13,
         "services[0].port", "65536 is out of range (1..65535)"},
        {"unknown protocol", edit(R"(protocol = "udp")", R"(protocol = "sctp")"), 16,
         "services[1].protocol", "protocol \"sctp\" is not supported (supported: tcp, udp)"},
        {"scheduler lblc", edit(R"(scheduler = "wrr")", R"(scheduler = "lblc")"), 13,
         "services[0].scheduler",
         "scheduler \"lblc\" is not supported (supported: rr, wrr, lc, wlc, sed, nq, sh, dh, mh, "
         "fo, ovf)"},
        {"unknown scheduler", edit(R"(scheduler = "wrr")", R"(scheduler = "fancy")"), 13,
         "services[0].scheduler", "unknown scheduler \"fancy\" (supported: rr, wrr, lc"},
        {"unknown sched flag", edit(R"(scheduler = "wrr";)", R"(scheduler = "sh"; sched_flags = ["sh-fast"];)"),
         13, "services[0].sched_flags[0]", "unknown scheduler flag \"sh-fast\""},
        {"sched flag of another scheduler",
         edit(R"(scheduler = "wrr";)", R"(scheduler = "sh"; sched_flags = ["mh-port"];)"), 13,
         "services[0].sched_flags[0]", "flag \"mh-port\" is for scheduler \"mh\", not \"sh\""},
        {"sched flags not an array", edit(R"(scheduler = "wrr";)", R"(scheduler = "sh"; sched_flags = 1;)"),
         13, "services[0].sched_flags", "expected an array"},
        {"mh table size not prime",
         edit(R"(scheduler = "wrr";)", R"(scheduler = "mh"; mh_table_size = 65536;)"), 13,
         "services[0].mh_table_size", "65536 is not a prime"},
        {"mh table size for another scheduler",
         edit(R"(scheduler = "wrr";)", R"(scheduler = "sh"; mh_table_size = 251;)"), 13,
         "services[0].mh_table_size", "mh_table_size is for scheduler \"mh\""},
        {"persistence over a year", edit("persistence = 0;", "persistence = 31536001;"), 13,
         "services[0].persistence", "31536001 is out of range (0..31536000)"},
        {"service twice", edit(R"(port = 53; protocol = "udp")", R"(port = 80; protocol = "tcp")"),
         16, "services[1]",
         "duplicate service tcp 198.51.100.10:80, already defined at services[0] (line 13)"},

        // reals
        {"real not an address",
         edit(R"({ address = "10.10.0.2"; port = 8080;)",
              R"({ address = "10.10.0.300"; port = 8080;)"),
         14, "services[0].reals[0].address", "\"10.10.0.300\" is not an IPv4 address"},
        {"real multicast", edit(R"({ address = "10.10.0.3"; })", R"({ address = "239.1.1.1"; })"),
         17, "services[1].reals[0].address", "239.1.1.1 is a multicast address"},
        {"real port 0", edit("port = 8080;", "port = 0;"), 14, "services[0].reals[0].port",
         "0 is out of range (1..65535)"},
        {"real port too large", edit("port = 8080;", "port = 65536;"), 14,
         "services[0].reals[0].port", "65536 is out of range (1..65535)"},
        {"tun real with another port", edit(R"(forward = "nat")", R"(forward = "tun")"), 14,
         "services[0].reals[0].port",
         "port 8080 differs from the service's 80, but only forward \"nat\" rewrites ports"},
        {"dr real with another port", edit(R"(forward = "nat")", R"(forward = "dr")"), 14,
         "services[0].reals[0].port",
         "port 8080 differs from the service's 80, but only forward \"nat\" rewrites ports"},
        {"dr real behind a route",
         edit(R"({ address = "203.0.113.5"; weight = 0; })",
              R"({ address = "203.0.113.5"; forward = "dr"; })"),
         15, "services[0].reals[1].address",
         "203.0.113.5 is not on a directly connected subnet, which forward \"dr\" needs"},
        {"persistence mask not a mask",
         edit("persistence = 0;", R"(persistence = 300; persistence_mask = "255.0.255.0";)"), 13,
         "services[0].persistence_mask", "255.0.255.0 is not a netmask"},
        {"persistence mask without persistence",
         edit("persistence = 0;", R"(persistence_mask = "255.255.255.0";)"), 13,
         "services[0].persistence_mask", "persistence_mask needs persistence (seconds) > 0"},
        {"tunnel_source not ours", edit("persistence = 0;", R"(tunnel_source = "10.10.0.9";)"),
         13, "services[0].tunnel_source",
         "10.10.0.9 is not an address of the director's interfaces"},
        {"tunnel_source not an address", edit("persistence = 0;", R"(tunnel_source = "x";)"),
         13, "services[0].tunnel_source", "\"x\" is not an IPv4 address"},
        {"unknown forward", edit(R"(forward = "nat")", R"(forward = "masq")"), 14,
         "services[0].reals[0].forward", "unknown forward method \"masq\""},
        {"weight too large", edit("weight = 3;", "weight = 65536;"), 14,
         "services[0].reals[0].weight", "65536 is out of range (0..65535)"},
        {"negative weight", edit("weight = 3;", "weight = -1;"), 14, "services[0].reals[0].weight",
         "-1 is out of range (0..65535)"},
        {"real twice",
         edit(R"({ address = "203.0.113.5"; weight = 0; })",
              R"({ address = "10.10.0.2"; port = 8080; })"),
         15, "services[0].reals[1]",
         "duplicate real 10.10.0.2:8080, already listed at services[0].reals[0] (line 14)"},
        {"real nothing reaches",
         edit(R"({ address = "10.10.0.3"; })", R"({ address = "10.9.9.9"; })"), 17,
         "services[1].reals[0].address", "no interface or route reaches 10.9.9.9"},
        {"real is the director",
         edit(R"({ address = "10.10.0.3"; })", R"({ address = "10.10.0.1"; })"), 17,
         "services[1].reals[0].address",
         "10.10.0.1 is the director's own address, on interfaces[1] (line 7)"},
        // A VIP is answered by the director: never a real's, a neighbour's, a gateway's or an
        // interface's address; and a real is never a VIP (any service, any forward method).
        {"VIP is a real of an earlier service",
         edit(R"(vip = "198.51.100.10"; port = 53;)", R"(vip = "203.0.113.5"; port = 53;)"), 16,
         "services[1].vip",
         "203.0.113.5 is a real of TCP 198.51.100.10:80; a VIP must not be a real's address"},
        {"VIP is an interface address",
         edit(R"(vip = "198.51.100.10"; port = 53;)", R"(vip = "10.10.0.1"; port = 53;)"), 16,
         "services[1].vip",
         "10.10.0.1 is the address of interfaces[1] (line 7); a VIP must be an address of its own"},
        {"VIP is a static neighbour",
         replace_once(edit(R"(address = "10.10.0.2"; mac)", R"(address = "10.10.0.7"; mac)"),
                      R"(vip = "198.51.100.10"; port = 53;)", R"(vip = "10.10.0.7"; port = 53;)"),
         16, "services[1].vip",
         "10.10.0.7 is the static neighbour neighbours[0] (line 10); a VIP must not be a "
         "neighbour's address"},
        {"VIP is a gateway",
         edit(R"(vip = "198.51.100.10"; port = 53;)", R"(vip = "10.10.0.254"; port = 53;)"), 16,
         "services[1].vip",
         "10.10.0.254 is the gateway of routes[0] (line 9); a VIP must not be a gateway's address"},
        {"real is its own service's VIP",
         edit(R"({ address = "203.0.113.5"; weight = 0; })", R"({ address = "198.51.100.10"; })"),
         15, "services[0].reals[1].address",
         "198.51.100.10 is the VIP of TCP 198.51.100.10:80; a real must not be a VIP"},
        {"real (dr) is an earlier service's VIP",
         replace_once(edit(R"({ address = "10.10.0.3"; })",
                           R"({ address = "198.51.100.10"; forward = "dr"; })"),
                      R"(vip = "198.51.100.10"; port = 53;)",
                      R"(vip = "198.51.100.11"; port = 53;)"),
         17, "services[1].reals[0].address",
         "198.51.100.10 is the VIP of TCP 198.51.100.10:80; a real must not be a VIP"},
        {"real (tun) is a VIP of its own service, on another port",
         edit(R"({ address = "10.10.0.3"; })",
              R"({ address = "198.51.100.10"; forward = "tun"; })"),
         17, "services[1].reals[0].address",
         "198.51.100.10 is the VIP of UDP 198.51.100.10:53; a real must not be a VIP"},
        {"real on the subnet broadcast",
         edit(R"({ address = "10.10.0.3"; })", R"({ address = "10.10.0.255"; })"), 17,
         "services[1].reals[0].address", "10.10.0.255 is the broadcast address of the subnet"},

        {"too many routes", edit(R"(routes = ( { prefix = "203.0.113.0/24"; via = "10.10.0.254"; } );)",
                                 "routes = (" + many_routes(lb::dp::kMaxRoutes + 1) + ");"),
         9, "routes", "4097 routes; at most 4096 are supported"},

        // control and log
        {"relative socket path", edit(R"("/tmp/lb-test.sock")", R"("lb.sock")"), 19,
         "control.socket", "\"lb.sock\" is not an absolute path"},
        {"socket path too long",
         edit(R"("/tmp/lb-test.sock")", "\"/" + std::string(107, 's') + "\""), 19, "control.socket",
         "path is 108 bytes long; a unix socket path must be shorter than 108"},
        {"unknown log level", edit(R"(level = "debug")", R"(level = "verbose")"), 20, "log.level",
         "unknown log level \"verbose\" (allowed: trace, debug, info, warn, error, critical, off)"},
    };
    CHECK(cases.size() >= 30);
    for (const Bad& c : cases) {
        INFO(c.desc);
        const std::string msg = error_of(c.text);
        const std::string prefix = "test.conf:" + std::to_string(c.line) + ": " + c.key + ": ";
        CHECK_THAT(msg, Catch::Matchers::StartsWith(prefix) && Catch::Matchers::Contains(c.what));
    }
}

TEST_CASE("config: libconfig syntax errors give FILE:LINE", "[config]") {
    CHECK(error_of("eal = [\"-l\"];\nworkers = [1];\nmbufs = ;\n") == "test.conf:3: syntax error");
    CHECK(error_of("eal = [\"-l\"];\neal = [\"-l\"];\n") == "test.conf:2: duplicate setting name");
    CHECK(error_of("eal = [\"-l\", 1];\n") == "test.conf:1: mismatched element type in array");
}

TEST_CASE("config: the shipped conf/ files load", "[config]") {
    const std::string root = source_root();
    const Config c = load_config(root + "/conf/nat.conf");
    CHECK(c.file == root + "/conf/nat.conf");
    CHECK(c.eal == std::vector<std::string>{"-l", "0-1", "--no-pci", "--no-huge", "-m", "512",
                                            "--no-shconf", "--vdev=net_af_packet0,iface=lb-ext",
                                            "--vdev=net_af_packet1,iface=lb-int"});
    CHECK(c.workers == std::vector<unsigned>{1});
    REQUIRE(c.interfaces.size() == 2);
    CHECK(c.interfaces[0].port == 0);
    CHECK(format_ipv4(c.interfaces[0].addr) == "198.51.100.1");
    CHECK(c.interfaces[0].prefix_len == 24);
    CHECK(c.interfaces[1].port == 1);
    CHECK(format_ipv4(c.interfaces[1].addr) == "10.10.0.1");
    CHECK(c.interfaces[1].prefix_len == 24);
    CHECK(c.routes.empty());
    CHECK(c.neighbours.empty());
    CHECK(c.connections.capacity == 1048576);
    REQUIRE(c.services.size() == 2);
    CHECK(format_ipv4(c.services[0].vip) == "198.51.100.10");
    CHECK(c.services[0].port == 80);
    CHECK(c.services[0].proto == 6);
    CHECK(c.services[0].scheduler == lb::dp::SchedKind::Rr);
    REQUIRE(c.services[0].reals.size() == 2);
    CHECK(format_ipv4(c.services[0].reals[0].addr) == "10.10.0.2");
    CHECK(format_ipv4(c.services[0].reals[1].addr) == "10.10.0.3");
    CHECK(c.services[0].reals[1].port == 80);
    CHECK(format_ipv4(c.services[1].vip) == "198.51.100.10");
    CHECK(c.services[1].port == 53);
    CHECK(c.services[1].proto == 17);
    REQUIRE(c.services[1].reals.size() == 2);
    CHECK(c.services[1].reals[0].port == 5353);
    CHECK(c.services[1].reals[1].port == 5353);
    CHECK(c.control_socket == "/run/lb/lb.sock");
    CHECK(c.log_level == "info");

    const Config c2 = load_config(root + "/conf/nat-2workers.conf");
    CHECK(c2.workers == std::vector<unsigned>{1, 2});
    CHECK(c2.eal[0] == "--lcores");
    CHECK(c2.eal[1] == "(0-2)@(0-1)");
    CHECK(c2.eal.back() == "--vdev=net_af_packet1,iface=lb-int,qpairs=2");
    CHECK(c2.services.size() == 2);
}

TEST_CASE("config: @include is relative to the including file and errors name it", "[config]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("lb-config-test-" + std::to_string(getpid()));
    fs::create_directories(dir);
    auto write = [&](const char* name, const std::string& text) {
        std::FILE* f = std::fopen((dir / name).c_str(), "w");
        REQUIRE(f != nullptr);
        std::fputs(text.c_str(), f);
        std::fclose(f);
    };
    write("main.conf", R"(eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "10.0.0.1/8"; } );
@include "svc.conf"
)");
    write("svc.conf", R"(services = ( { vip = "198.51.100.10"; port = 80; protocol = "tcp";
  reals = ( { address = "10.0.0.2"; }, { address = "10.0.0.300"; } ); } );
)");
    const std::string main = (dir / "main.conf").string();
    try {
        load_config(main);
        FAIL("no error");
    } catch (const ConfigError& e) {
        CHECK(std::string(e.what()) == (dir / "svc.conf").string() +
                                           ":2: services[0].reals[1].address: \"10.0.0.300\" is "
                                           "not an IPv4 address");
    }
    write("svc.conf", R"(services = ( { vip = "198.51.100.10"; port = 80; protocol = "tcp";
  reals = ( { address = "10.0.0.2"; }, { address = "10.0.0.3"; } ); } );
)");
    const Config c = load_config(main);
    REQUIRE(c.services.size() == 1);
    CHECK(c.services[0].reals.size() == 2);
    fs::remove_all(dir);
}

TEST_CASE("config: load_config on a file it cannot read", "[config]") {
    try {
        load_config("/nonexistent/lb.conf");
        FAIL("no error");
    } catch (const ConfigError& e) {
        CHECK(std::string(e.what()) ==
              "/nonexistent/lb.conf: cannot read: No such file or directory");
    }
    const std::string dir = source_root() + "/conf";
    try {
        load_config(dir);
        FAIL("no error");
    } catch (const ConfigError& e) {
        CHECK(std::string(e.what()) == dir + ": cannot read: Is a directory");
    }
}

namespace {

// A scratch directory, removed with what it holds.
struct ScratchDir {
    std::filesystem::path dir;
    ScratchDir() {
        dir = std::filesystem::temp_directory_path() /
              ("lb-config-files-" + std::to_string(getpid()));
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
    }
    ~ScratchDir() { std::filesystem::remove_all(dir); }
    std::string write(const std::string& name, const std::string& text) const {
        const std::string path = (dir / name).string();
        std::FILE* f = std::fopen(path.c_str(), "w");
        REQUIRE(f != nullptr);
        std::fputs(text.c_str(), f);
        std::fclose(f);
        return path;
    }
    std::string path(const std::string& name) const { return (dir / name).string(); }
};

constexpr const char* kHead = R"(eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "10.0.0.1/8"; } );
)";

std::string load_error(const std::string& path) {
    try {
        load_config(path);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("config: only regular files are read, without blocking, up to 64 MiB", "[config]") {
    ScratchDir d;
    const auto t0 = std::chrono::steady_clock::now();

    // A FIFO nobody writes to: an fopen would wait for a writer for ever.
    const std::string fifo = d.path("fifo.conf");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK(load_error(fifo) ==
          fifo + ": cannot read: not a regular file (a FIFO); a config file must be one");

    // A symlink to /dev/zero: read to the end, it never ends.
    const std::string zero = d.path("zero.conf");
    std::filesystem::create_symlink("/dev/zero", zero);
    CHECK(load_error(zero) ==
          zero + ": cannot read: not a regular file (a character device); a config file must be "
                 "one");
    CHECK(load_error("/dev/null") == "/dev/null: cannot read: not a regular file (a character "
                                     "device); a config file must be one");
    CHECK(load_error(d.dir.string()) == d.dir.string() + ": cannot read: Is a directory");

    // 64 MiB + 1 byte (sparse: nothing is written).
    const std::string big = d.write("big.conf", "");
    std::filesystem::resize_file(big, (64u << 20) + 1);
    CHECK(load_error(big) ==
          big + ": cannot read: 67108865 bytes, more than the 67108864 a config may have");
    CHECK(seconds_since(t0) < 0.5);

    // A symlink to a regular file is fine.
    const std::string real = d.write("real.conf", kHead);
    std::filesystem::create_symlink(real, d.path("link.conf"));
    CHECK(load_config(d.path("link.conf")).interfaces.size() == 1);
}

TEST_CASE("config: @include files are checked the same way and named", "[config]") {
    ScratchDir d;
    const auto t0 = std::chrono::steady_clock::now();
    const std::string dir = d.dir.string();
    REQUIRE(::mkfifo(d.path("fifo.conf").c_str(), 0600) == 0);
    std::filesystem::create_symlink("/dev/zero", d.path("zero.conf"));

    const std::string main = d.write("main.conf", std::string(kHead) + "@include \"svc.conf\"\n");
    CHECK(load_error(main) == main + ":4: @include \"svc.conf\": " + dir +
                                  "/svc.conf: cannot read: No such file or directory");

    d.write("main.conf", std::string(kHead) + "  @include \"fifo.conf\"\n");
    CHECK(load_error(main) == main + ":4: @include \"fifo.conf\": " + dir +
                                  "/fifo.conf: cannot read: not a regular file (a FIFO); a config "
                                  "file must be one");
    // Nested: the directive in the included file is the one named.
    d.write("main.conf", std::string(kHead) + "@include \"mid.conf\"\n");
    const std::string mid = d.write("mid.conf", "# nothing\n@include \"zero.conf\"\n");
    CHECK(load_error(main) == mid + ":2: @include \"zero.conf\": " + dir +
                                  "/zero.conf: cannot read: not a regular file (a character "
                                  "device); a config file must be one");
    // A file that includes itself.
    d.write("main.conf", std::string(kHead) + "@include \"main.conf\"\n");
    CHECK_THAT(load_error(main), Catch::Contains(main + ":4: @include \"main.conf\": nested more "
                                                        "than 10 deep"));
    CHECK(seconds_since(t0) < 0.5);

    // Directives inside comments and strings are not directives (as for libconfig); lines after
    // an @include are counted in their own file.
    d.write("main.conf", std::string(kHead) + R"(/*
@include "fifo.conf"
*/
log = { level = "debug
@include \"fifo.conf\""; };
@include "mid.conf"
services = ( { vip = "300.0.0.1"; } );
)");
    d.write("mid.conf", "control = { socket = \"/run/lb/x.sock\"; };\n");
    CHECK(load_error(main) ==
          main + ":10: services[0].vip: \"300.0.0.1\" is not an IPv4 address");
    d.write("mid.conf", "control = { socket = ; };\n");
    CHECK_THAT(load_error(main), Catch::StartsWith(d.path("mid.conf") + ":1: "));
}

TEST_CASE("config: @include expansion leaves other text alone and never lets libconfig open",
          "[config]") {
    // No directive: the text comes back as it is, every line its own.
    const std::string plain =
        "a = \"@include \\\"x\\\"\";  # @include \"y\"\n"
        "/* @include \"z\"\n@include \"z\" */ b = 1; // @include \"w\"\n"
        " x @include \"v\"\n";
    const lb::ctl::ExpandedConfig e = lb::ctl::expand_includes(plain, "p.conf", "/nonexistent/");
    CHECK(e.text == plain);
    CHECK(e.origin(3).first == "p.conf");
    CHECK(e.origin(3).second == 3);

    // A second directive after the first on the same line: libconfig would see it once the
    // first file is in place, but its include directory is /dev/null, so it fails at once.
    ScratchDir d;
    d.write("a.conf", "log = { level = \"info\"; };\n");
    const std::string main =
        d.write("main.conf", std::string(kHead) + "@include \"a.conf\" @include \"fifo.conf\"\n");
    REQUIRE(::mkfifo(d.path("fifo.conf").c_str(), 0600) == 0);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THAT(load_error(main), Catch::StartsWith(main + ":4: "));
    CHECK(seconds_since(t0) < 0.5);
}

TEST_CASE("config: parse_ipv4 and format_ipv4", "[config]") {
    CHECK(parse_ipv4("0.0.0.0") == 0);
    CHECK(parse_ipv4("255.255.255.255") == 0xffffffff);
    CHECK(parse_ipv4("10.10.0.2") == 0x0a0a0002);
    CHECK(parse_ipv4("198.51.100.10") == 0xc633640a);
    CHECK(parse_ipv4("1.0.0.0") == 0x01000000);

    for (const char* bad :
         {"",           "1.2.3",    "1.2.3.4.5", "256.1.1.1",  "1.2.3.256", "1.2.3.-4",
          "+1.2.3.4",   "-1.2.3.4", "1..2.3",    "1.2.3.",     ".1.2.3",    "01.2.3.4",
          "1.2.3.4 ",   " 1.2.3.4", "a.b.c.d",   "1.2.3.4/24", "0x1.2.3.4", "1.2.3.1000",
          "1.2.3.0255", "1,2,3,4",  "4294967295"}) {
        INFO(bad);
        CHECK_THROWS_AS(parse_ipv4(bad), std::invalid_argument);
    }

    CHECK(format_ipv4(0) == "0.0.0.0");
    CHECK(format_ipv4(0xffffffff) == "255.255.255.255");
    CHECK(format_ipv4(0xc633640a) == "198.51.100.10");
    for (const char* s : {"10.10.0.2", "203.0.113.255", "192.0.2.1"}) {
        CHECK(format_ipv4(parse_ipv4(s)) == s);
    }
}

TEST_CASE("config: format_config writes what parse_config reads back", "[config]") {
    const std::string root = source_root();
    std::vector<Config> cases = {parse_config(kBase, "base.conf")};
    for (const char* f : {"/conf/nat.conf", "/conf/nat-2workers.conf", "/conf/tun.conf",
                          "/conf/dr.conf"}) {
        cases.push_back(load_config(root + f));
    }
    Config odd = parse_config(kBase, "odd.conf");
    odd.eal.push_back("--vdev=net_pcap0,rx_pcap=\"a b\\c\"");
    odd.services[0].scheduler = lb::dp::SchedKind::Mh;
    odd.services[0].sched_flags = lb::dp::kSchedPort | lb::dp::kSchedFallback;
    odd.services[0].mh_table_size = 251;
    odd.services[0].persistence = 60;
    odd.services[0].persistence_mask = 0xFFFF0000;
    odd.services[0].tunnel_source = 0x0a0a0001;
    cases.push_back(odd);
    for (const Config& c : cases) {
        const std::string text = format_config(c);
        INFO(text);
        const Config back = parse_config(text, "written.conf");
        CHECK(format_config(back) == text);
        CHECK(back.eal == c.eal);
        CHECK(back.workers == c.workers);
        CHECK(back.connections.sloppy_tcp == c.connections.sloppy_tcp);
        REQUIRE(back.services.size() == c.services.size());
        for (size_t i = 0; i < c.services.size(); ++i) {
            CHECK(back.services[i].scheduler == c.services[i].scheduler);
            CHECK(back.services[i].sched_flags == c.services[i].sched_flags);
            CHECK(back.services[i].persistence_mask == c.services[i].persistence_mask);
            CHECK(back.services[i].tunnel_source == c.services[i].tunnel_source);
            REQUIRE(back.services[i].reals.size() == c.services[i].reals.size());
            for (size_t j = 0; j < c.services[i].reals.size(); ++j) {
                CHECK(back.services[i].reals[j].addr == c.services[i].reals[j].addr);
                CHECK(back.services[i].reals[j].weight == c.services[i].reals[j].weight);
                CHECK(back.services[i].reals[j].forward == c.services[i].reals[j].forward);
            }
        }
    }
}
