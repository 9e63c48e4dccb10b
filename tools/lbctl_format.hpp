#pragma once
// The pure parts of lbctl, kept out of main() so that they can be unit tested: the ipvsadm-style
// command line parser and the ipvsadm -L listings.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/protocol.hpp"

namespace lb::ctl {

// ipvsadm's commands, all of which parse_args recognises. lbctl runs List, Help and Version;
// the others are for a later change to implement.
enum class Command : uint8_t {
    None,
    AddService,     // -A --add-service
    EditService,    // -E --edit-service
    DeleteService,  // -D --delete-service
    Clear,          // -C --clear
    Restore,        // -R --restore
    Save,           // -S --save
    AddServer,      // -a --add-server
    EditServer,     // -e --edit-server
    DeleteServer,   // -d --delete-server
    List,           // -L -l --list
    Zero,           // -Z --zero
    SetTimeout,     // --set tcp tcpfin udp
    StartDaemon,    // --start-daemon state
    StopDaemon,     // --stop-daemon state
    Reload,         // --reload (lbctl's): lb re-reads its config file
    Help,           // -h --help
    Version,        // -v --version
};

// ipvsadm's options, plus lbctl's --socket.
enum class Opt : uint8_t {
    TcpService,      // -t --tcp-service ADDR[:PORT]
    UdpService,      // -u --udp-service ADDR[:PORT]
    FwmarkService,   // -f --fwmark-service MARK
    Scheduler,       // -s --scheduler NAME
    Persistent,      // -p --persistent [TIMEOUT]
    Netmask,         // -M --netmask MASK
    RealServer,      // -r --real-server ADDR[:PORT]
    Gatewaying,      // -g --gatewaying
    Ipip,            // -i --ipip
    Masquerading,    // -m --masquerading
    Weight,          // -w --weight N
    UThreshold,      // -x --u-threshold N
    LThreshold,      // -y --l-threshold N
    McastInterface,  // --mcast-interface IF
    SyncId,          // --syncid N
    Connection,      // -c --connection
    Timeout,         // --timeout
    Daemon,          // --daemon
    Stats,           // --stats
    Rate,            // --rate
    Exact,           // -X --exact
    Thresholds,      // --thresholds
    PersistentConn,  // --persistent-conn
    NoSort,          // --nosort
    Sort,            // --sort
    Ops,             // -o --ops
    Numeric,         // -n --numeric
    Ipv6,            // -6 --ipv6
    Pe,              // --pe ENGINE
    Socket,          // --socket PATH (lbctl only)
    Count
};

class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The command line, parsed but not interpreted.
struct Args {
    Command command = Command::None;
    std::string command_name;  // as spelled on the command line: "-A", "--add-service", "-L"
    std::string command_arg;   // the state of --start-daemon / --stop-daemon
    std::array<std::optional<std::string>, size_t(Opt::Count)> opts;  // "" for flags
    std::array<std::string, size_t(Opt::Count)> opt_names;  // how each given option was spelled
    std::vector<std::string> operands;  // non-option words, e.g. the three values of --set

    bool has(Opt o) const { return opts[size_t(o)].has_value(); }
    const std::string& value(Opt o) const { return *opts[size_t(o)]; }  // requires has(o)
    const std::string& spelled(Opt o) const { return opt_names[size_t(o)]; }
};

// Parses the arguments after argv[0] with ipvsadm's option table: short options may be grouped
// ("-Ln"), a short option's value may be attached ("-t10.0.0.1:80") or be the next word, a long
// one's may be "--opt=value" or the next word, "-p" takes a value only if one follows that does
// not start with '-', and "--" ends the options. Options may come in any order. Throws
// UsageError on unknown options, missing values, repeated options and more than one command.
Args parse_args(const std::vector<std::string>& args);

struct ServiceKey {
    uint8_t proto = 6;  // 6 tcp, 17 udp
    uint32_t vip = 0;   // host order
    uint16_t port = 0;
};

// Strict dotted quad "a.b.c.d" with an optional ":port"; the port is 0 when absent. Returns
// nullopt on anything else (names, IPv6, out-of-range values, stray characters).
std::optional<std::pair<uint32_t, uint16_t>> parse_addr_port(const std::string& s);

struct ListOptions {
    bool stats = false;  // --stats: the counters instead of weights and connections
    bool exact = false;  // --exact: no K/M/G/T abbreviation of the counters
    bool sort = true;    // ipvsadm sorts services and reals unless --nosort
    // -t/-u: list only this service, without the version line (ipvsadm -L -t VIP:PORT).
    std::optional<ServiceKey> service;
};

// Checks that Args is a list command lbctl can run and returns its options. Throws UsageError
// for options that ipvsadm refuses with -L and for the ones it accepts that lbctl does not
// implement yet ("--rate is not supported yet").
ListOptions list_options(const Args& args);

// ipvsadm's number column (print_largenum): 9 characters wide, and without `exact` numbers of
// 100 million and more shown in thousands (K), millions (M), billions (G) or trillions (T), e.g.
// 99999999 -> " 99999999", 123456789 -> "  123456K". With `exact` the full number, right-aligned in
// 9 characters, or preceded by one space if longer than 8 digits.
std::string format_number(uint64_t value, bool exact);

// "10.0.0.1:80" from host-order address and port.
std::string format_addr(uint32_t addr);  // host order, dotted quad
std::string format_addr_port(uint32_t addr, uint16_t port);

// ipvsadm's forward names for dp::Forward: "Masq", "Tunnel", "Route".
std::string forward_name(uint8_t forward);

// The output of `ipvsadm -L -n` (or with --stats / --exact / -t) for this status, every line
// ending in '\n'. Throws std::runtime_error("No such service") if opts.service matches none.
std::string format_list(const Status& status, const ListOptions& opts);

std::string usage_text();    // lbctl -h
std::string version_text();  // lbctl --version

}  // namespace lb::ctl
