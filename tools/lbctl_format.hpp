#pragma once
// The pure parts of lbctl, kept out of main() so that they can be unit tested: the ipvsadm command
// line (parser, the checks of ipvsadm's commands_v_options table, the operations each change
// command stands for, -R's rule lines) and the listings (ipvsadm -L in all its formats, -S,
// --timeout, -c, lbctl's --workers and the --json documents).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/protocol.hpp"

namespace lb::ctl {

// ipvsadm's commands, plus lbctl's own (--reload, --workers, --write-config).
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
    StartDaemon,    // --start-daemon state (not supported: lb has no sync daemon)
    StopDaemon,     // --stop-daemon state (idem)
    Reload,         // --reload (lbctl's): lb re-reads its config file
    Workers,        // --workers (lbctl's): per-worker counters and drop reasons
    WriteConfig,    // --write-config [FILE] (lbctl's): lb writes its running config
    Help,           // -h --help
    Version,        // -v --version
};

// ipvsadm 1.31's options, plus lbctl's --json and --socket.
enum class Opt : uint8_t {
    TcpService,      // -t --tcp-service ADDR[:PORT]
    UdpService,      // -u --udp-service ADDR[:PORT]
    SctpService,     // --sctp-service ADDR[:PORT] (not supported)
    FwmarkService,   // -f --fwmark-service MARK (not supported)
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
    Ops,             // -o --ops (not supported)
    Numeric,         // -n --numeric
    Ipv6,            // -6 --ipv6 (not supported)
    Pe,              // --pe ENGINE (not supported)
    SchedFlags,      // -b --sched-flags FLAGS
    McastGroup,      // --mcast-group ADDR
    McastPort,       // --mcast-port PORT
    McastTtl,        // --mcast-ttl TTL
    SyncMaxlen,      // --sync-maxlen LEN
    TunInfo,         // --tun-info
    TunType,         // --tun-type TYPE (ipip only)
    TunPort,         // --tun-port PORT
    TunNocsum,       // --tun-nocsum
    TunCsum,         // --tun-csum
    TunRemcsum,      // --tun-remcsum
    Json,            // --json (lbctl only)
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
    std::string command_arg;   // --start-daemon / --stop-daemon state, --write-config FILE
    std::array<std::optional<std::string>, size_t(Opt::Count)> opts;  // "" for flags
    std::array<std::string, size_t(Opt::Count)> opt_names;  // how each given option was spelled
    std::vector<std::string> operands;  // non-option words, e.g. the three values of --set

    bool has(Opt o) const { return opts[size_t(o)].has_value(); }
    const std::string& value(Opt o) const { return *opts[size_t(o)]; }  // requires has(o)
    const std::string& spelled(Opt o) const { return opt_names[size_t(o)]; }
};

// Parses the arguments after argv[0] with ipvsadm's option table: short options may be grouped
// ("-Ln"), a short option's value may be attached ("-t10.0.0.1:80") or be the next word, a long
// one's may be "--opt=value" or the next word, "-p" (and --write-config) take a value only if one
// follows that does not start with '-', and "--" ends the options. Options may come in any order.
// Throws UsageError on unknown options, missing values, more than one command and repeated
// options, where the options of one ipvsadm class count as one (-t/-u/-f/--sctp-service are the
// 'service-address', -g/-i/-m the 'forwarding-method').
Args parse_args(const std::vector<std::string>& args);

// Checks the options given against the command the way ipvsadm's commands_v_options table does
// ("Illegal 'weight' option with the 'delete-service' command", "You need to supply the
// 'real-server' option for the 'add-server' command", "The option 'timeout' conflicts with the
// 'connection' option in the 'list' command"), and refuses what lb does not support (fwmark and
// SCTP services, -6, --ops, --pe, the sync daemon, tunnel types other than ipip). lbctl's extras
// have their own rows: --socket goes with every command, --json with -L and --workers. -h and -v
// accept anything. Throws UsageError.
void check_command(const Args& a);

struct ServiceKey {
    uint8_t proto = 6;  // 6 tcp, 17 udp
    uint32_t vip = 0;   // host order
    uint16_t port = 0;
};

// Strict dotted quad "a.b.c.d" with an optional ":port"; the port is 0 when absent. Returns
// nullopt on anything else (names, IPv6, out-of-range values, stray characters).
std::optional<std::pair<uint32_t, uint16_t>> parse_addr_port(const std::string& s);

// A dotted-quad netmask with contiguous ones (at least one): host order, or nullopt.
std::optional<uint32_t> parse_netmask(const std::string& s);

// ipvsadm's defaults, applied where the user left an option out.
inline constexpr const char* kDefaultScheduler = "wlc";  // ipvsadm.c DEF_SCHED
inline constexpr uint32_t kDefaultPersistence = 360;     // libipvs.h IPVS_SVC_PERSISTENT_TIMEOUT
inline constexpr uint32_t kMaxTimeout = 86400 * 31;      // ipvsadm.c MAX_TIMEOUT
inline constexpr uint8_t kDefaultForward = 2;            // -g (dp::Forward::Route)

// The operations of a change command: -A -E -D -C -a -e -d -Z --set (one each), with every field
// the kind uses filled, ipvsadm's defaults for what was left out: scheduler wlc, no persistence
// (-p alone: 360 s), mask 255.255.255.255, no flags; forward -g, weight 1, no thresholds, real
// port = the service port (always, with -g and -i); --set's zeros leave a timeout as it is.
// -b takes ipvsadm's names, checked against the scheduler (wlc when -s is not given): sh-fallback
// and sh-port need sh, mh-fallback and mh-port need mh, flag-1 and flag-2 mean fallback and port
// for sh and mh and nothing for the others. Calls check_command first. Throws UsageError.
std::vector<Op> command_ops(const Args& a);

// -R: the rule lines of `text` (ipvsadm -S output, or any change command, one per line, with or
// without a leading "ipvsadm" or "lbctl"), in order, as one list of operations. Blank lines and
// comments (from a word starting with '#' to the end of the line) are skipped. Throws UsageError
// "line N: what is wrong" for the first bad line.
// `from`, if given, gets one entry per operation: the line it came from.
struct RestoreLine {
    size_t line = 0;
    std::string text;  // its words, without a comment or a leading "ipvsadm" / "lbctl"
};
std::vector<Op> restore_ops(std::string_view text, std::vector<RestoreLine>* from = nullptr);

// lb's message for a -R it refused names the operation ("operation N (-a TCP ...): why", or
// "-a TCP ...: why" for a single one); this names the input line instead: "line L: TEXT: why".
// A message that names no operation comes back as it is.
std::string restore_error(const std::string& msg, const std::vector<RestoreLine>& from);

// What a -L asks for, and how ipvsadm would print it.
enum class ListWhat : uint8_t { Services, Connections, Timeout, Daemon };
enum class ListFormat : uint8_t { Plain, Stats, Rate, Thresholds, PersistentConn, TunInfo };

struct ListOptions {
    ListWhat what = ListWhat::Services;
    // ipvsadm's precedence when several are given: --stats, --rate, --thresholds,
    // --persistent-conn, --tun-info.
    ListFormat format = ListFormat::Plain;
    bool persistent_conn = false;  // -c --persistent-conn: the pe name / pe_data title
    bool exact = false;            // --exact: no K/M/G/T abbreviation of the counters
    bool sort = true;              // ipvsadm sorts services and reals unless --nosort
    bool json = false;             // --json: one JSON document instead of the table
    // -t/-u: list only this service, without the version line (ipvsadm -L -t VIP:PORT).
    std::optional<ServiceKey> service;
};

// Checks that Args is a list command lbctl can run (check_command, ipvsadm's "options conflicts
// in the list command") and returns its options. Throws UsageError.
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

// The output of `ipvsadm -L -n` in the format opts asks for (plain, --stats, --rate,
// --thresholds, --persistent-conn, --tun-info; --exact; --nosort; -t/-u), every line ending in
// '\n'. Throws std::runtime_error("No such service") if opts.service matches none.
std::string format_list(const Status& status, const ListOptions& opts);

// `ipvsadm -S -n`: one -A line per service and one -a line per real, sorted, which -R reads back
// into the same table. ipvsadm's rule format, and -x/-y (which ipvsadm -S leaves out) after the
// weight when set, so that the thresholds survive the round trip.
std::string format_save(const Status& status);

// `ipvsadm -L -n -c [--persistent-conn]`: "IPVS connection entries", the title and one line per
// entry, expire as mm:ss. In pieces for a listing lb streams: conn_title, then
// append_conn_line for each entry.
std::string format_connections(const Connections& conns, const ListOptions& opts);
std::string conn_title(const ListOptions& opts);
void append_conn_line(std::string& out, const ConnEntry& e);

// `ipvsadm -L --timeout`: "Timeout (tcp tcpfin udp): 900 120 300".
std::string format_timeout(const Status& status);

// lbctl --workers: the mbuf pool, then one column per worker (and a total), one row per counter
// and then per drop reason.
std::string format_workers(const Workers& workers);
// The ports' table that ends format_workers ("" without ports): rte_eth_stats_get's counters,
// rx_ring_drops (net_af_packet: frames the kernel dropped, the ring full) and rx_lost, their sum
// with imissed, ierrors and rx_nombuf.
std::string format_ports(const std::vector<PortStatus>& ports);

// --json: one document (and '\n') per listing. Services: every field of the status whatever the
// table format, filtered by opts.service and sorted unless --nosort. Throws "No such service"
// like format_list.
std::string json_list(const Status& status, const ListOptions& opts);
std::string json_connections(const Connections& conns);
// json_connections in pieces: json_conns_head, append_json_conn for each entry (`first` for the
// first one), json_conns_tail (`empty` when there was none).
std::string json_conns_head(uint64_t total);
void append_json_conn(std::string& out, const ConnEntry& e, bool first);
std::string json_conns_tail(bool empty);
std::string json_timeout(const Status& status);
std::string json_workers(const Workers& workers);

std::string usage_text();    // lbctl -h
std::string version_text();  // lbctl --version

}  // namespace lb::ctl
