#pragma once
// The config file (libconfig syntax) as plain structs. load_config() parses and validates;
// every error is a ConfigError whose message reads "FILE:LINE: what is wrong".
#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/types.hpp"

namespace lb::ctl {

// All addresses in this file are IPv4 in host byte order.
using Mac = std::array<uint8_t, 6>;

struct InterfaceConf {
    uint16_t port = 0;
    uint32_t addr = 0;
    uint8_t prefix_len = 0;
    std::optional<Mac> mac;  // optional `mac`: set the port's MAC address
    uint16_t mtu = 1500;     // optional `mtu`
    dp::RpFilter rp_filter = dp::RpFilter::Strict;  // optional `rp_filter`
    int line = 0;
};

struct RouteConf {
    uint32_t prefix = 0;  // masked
    uint8_t prefix_len = 0;
    uint32_t via = 0;
    int line = 0;
};

struct NeighbourConf {
    uint32_t addr = 0;
    Mac mac{};
    int line = 0;
};

struct RealConf {
    uint32_t addr = 0;
    uint16_t port = 0;
    dp::Forward forward = dp::Forward::Nat;
    uint32_t weight = 1;
    uint32_t u_threshold = 0;  // optional `u_threshold`: connections; 0 = none (ipvsadm -x)
    uint32_t l_threshold = 0;  // optional `l_threshold` (ipvsadm -y)
    int line = 0;
};

struct ServiceConf {
    uint32_t vip = 0;
    uint16_t port = 0;
    uint8_t proto = 6;  // 6 tcp, 17 udp
    dp::SchedKind scheduler = dp::SchedKind::Rr;
    uint8_t sched_flags = 0;           // optional `sched_flags`: dp::kSchedFallback | kSchedPort
    uint32_t mh_table_size = 65537;    // optional `mh_table_size` (prime), for scheduler "mh"
    uint32_t persistence = 0;                 // seconds; 0: off
    uint32_t persistence_mask = 0xFFFFFFFF;   // optional `persistence_mask` (ipvsadm -M)
    uint32_t tunnel_source = 0;  // optional `tunnel_source`; 0: the egress interface's address
    std::vector<RealConf> reals;
    int line = 0;
};

struct ConnectionsConf {
    uint32_t capacity = 1u << 20;
    uint32_t tcp_timeout = 900;      // seconds, ESTABLISHED
    uint32_t tcp_fin_timeout = 120;  // seconds, FIN_WAIT
    uint32_t udp_timeout = 300;      // seconds
    bool sloppy_tcp = false;         // IPVS's sloppy_tcp: any TCP packet but a RST may start one
    // A TCP segment (not a SYN, not a RST) of no connection gets a RST (not with sloppy_tcp).
    bool reset_unknown = true;
};

struct Config {
    std::string file;
    std::vector<std::string> eal;
    std::vector<unsigned> workers;  // worker lcore ids
    uint32_t mbufs = 65535;
    std::vector<InterfaceConf> interfaces;
    std::vector<RouteConf> routes;
    std::vector<NeighbourConf> neighbours;
    ConnectionsConf connections;
    std::vector<ServiceConf> services;
    std::string control_socket = "/run/lb/lb.sock";
    std::string metrics;  // optional `control.metrics`: "ADDR:PORT" of the Prometheus endpoint
    std::string log_level = "info";
};

class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Reads and validates FILE and the files it @includes (regular files only, 64 MiB at most, read
// without ever blocking: config_source.hpp). Throws ConfigError("FILE:LINE: ...", or
// "FILE: cannot read: why").
Config load_config(const std::string& path);
// Same, from text; `name` stands in for the file name in messages, and @include paths are
// relative to the current directory.
Config parse_config(const std::string& text, const std::string& name);

// The config as libconfig text that parse_config() reads back to an equal Config (comments
// and @include are not kept).
std::string format_config(const Config& cfg);

// Helpers shared with lbctl and tests. Both throw std::invalid_argument on bad input.
uint32_t parse_ipv4(const std::string& s);
std::string format_ipv4(uint32_t addr);
// Six bytes as "02:00:5e:10:00:01".
std::string format_mac(const uint8_t* mac);

}  // namespace lb::ctl
