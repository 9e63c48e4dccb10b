// lbctl's command line and ipvsadm-compatible listings. The command line follows ipvsadm 1.31
// (ipvsadm.c: parse_options, process_options, the commands_v_options table, parse_sched_flags)
// and the listings reproduce its print_title / print_service_entry / print_conn / list_timeout
// formats byte for byte, trailing blanks included, so that scripts written against ipvsadm's
// output keep working. Addresses and ports are always numeric (-n).
#include "tools/lbctl_format.hpp"

#include <algorithm>
#include <climits>
#include <iterator>
#include <nlohmann/json.hpp>
#include <tuple>

namespace lb::ctl {

namespace {

using Json = nlohmann::ordered_json;

enum class ArgKind : uint8_t { None, Required, Optional };

// ipvsadm's option classes: the columns of its commands_v_options table, in its order, and
// lbctl's json and socket. Options of one class exclude each other ("multiple ... specified").
enum class Col : uint8_t {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    McastIf,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNocsum,
    TunCsum,
    TunRemcsum,
    Json,
    Socket,
    None,  // --sort and -6: ipvsadm does not record them
};
constexpr int kCols = int(Col::None);
// ipvsadm's optnames[], and lbctl's.
constexpr const char* kColNames[kCols] = {"numeric",
                                          "connection",
                                          "service-address",
                                          "scheduler",
                                          "persistent",
                                          "netmask",
                                          "real-server",
                                          "forwarding-method",
                                          "weight",
                                          "u-threshold",
                                          "l-threshold",
                                          "mcast-interface",
                                          "timeout",
                                          "daemon",
                                          "stats",
                                          "rate",
                                          "thresholds",
                                          "persistent-conn",
                                          "nosort",
                                          "syncid",
                                          "exact",
                                          "ops",
                                          "pe",
                                          "sched-flags",
                                          "mcast-group",
                                          "mcast-port",
                                          "mcast-ttl",
                                          "sync-maxlen",
                                          "tun-info",
                                          "tun-type",
                                          "tun-port",
                                          "tun-nocsum",
                                          "tun-csum",
                                          "tun-remcsum",
                                          "json",
                                          "socket"};

struct OptionSpec {
    const char* long_name;
    char short_name;  // 0: long only
    ArgKind arg;
    bool is_command;
    Command command;  // when is_command
    Opt opt;          // otherwise
    Col col;
};

constexpr OptionSpec cmd(const char* l, char s, Command c, ArgKind a = ArgKind::None) {
    return {l, s, a, true, c, Opt::Count, Col::None};
}
constexpr OptionSpec opt(const char* l, char s, Opt o, Col col, ArgKind a = ArgKind::None) {
    return {l, s, a, false, Command::None, o, col};
}

constexpr ArgKind kArg = ArgKind::Required;

// ipvsadm 1.31's popt table, plus lbctl's --reload, --workers, --write-config, --json, --socket.
constexpr OptionSpec kOptions[] = {
    cmd("add-service", 'A', Command::AddService),
    cmd("edit-service", 'E', Command::EditService),
    cmd("delete-service", 'D', Command::DeleteService),
    cmd("clear", 'C', Command::Clear),
    cmd("list", 'L', Command::List),
    cmd("list", 'l', Command::List),
    cmd("zero", 'Z', Command::Zero),
    cmd("add-server", 'a', Command::AddServer),
    cmd("edit-server", 'e', Command::EditServer),
    cmd("delete-server", 'd', Command::DeleteServer),
    cmd("set", 0, Command::SetTimeout),
    cmd("help", 'h', Command::Help),
    cmd("version", 'v', Command::Version),
    cmd("restore", 'R', Command::Restore),
    cmd("save", 'S', Command::Save),
    cmd("start-daemon", 0, Command::StartDaemon, kArg),
    cmd("stop-daemon", 0, Command::StopDaemon, kArg),
    cmd("reload", 0, Command::Reload),
    cmd("workers", 0, Command::Workers),
    cmd("write-config", 0, Command::WriteConfig, ArgKind::Optional),
    opt("tcp-service", 't', Opt::TcpService, Col::Service, kArg),
    opt("udp-service", 'u', Opt::UdpService, Col::Service, kArg),
    opt("sctp-service", 0, Opt::SctpService, Col::Service, kArg),
    opt("fwmark-service", 'f', Opt::FwmarkService, Col::Service, kArg),
    opt("scheduler", 's', Opt::Scheduler, Col::Scheduler, kArg),
    opt("persistent", 'p', Opt::Persistent, Col::Persistent, ArgKind::Optional),
    opt("netmask", 'M', Opt::Netmask, Col::Netmask, kArg),
    opt("real-server", 'r', Opt::RealServer, Col::Server, kArg),
    opt("masquerading", 'm', Opt::Masquerading, Col::Forward),
    opt("ipip", 'i', Opt::Ipip, Col::Forward),
    opt("gatewaying", 'g', Opt::Gatewaying, Col::Forward),
    opt("weight", 'w', Opt::Weight, Col::Weight, kArg),
    opt("u-threshold", 'x', Opt::UThreshold, Col::UThreshold, kArg),
    opt("l-threshold", 'y', Opt::LThreshold, Col::LThreshold, kArg),
    opt("numeric", 'n', Opt::Numeric, Col::Numeric),
    opt("connection", 'c', Opt::Connection, Col::Connection),
    opt("mcast-interface", 0, Opt::McastInterface, Col::McastIf, kArg),
    opt("syncid", 0, Opt::SyncId, Col::SyncId, kArg),
    opt("timeout", 0, Opt::Timeout, Col::Timeout),
    opt("daemon", 0, Opt::Daemon, Col::Daemon),
    opt("stats", 0, Opt::Stats, Col::Stats),
    opt("rate", 0, Opt::Rate, Col::Rate),
    opt("thresholds", 0, Opt::Thresholds, Col::Thresholds),
    opt("persistent-conn", 0, Opt::PersistentConn, Col::PersistentConn),
    opt("nosort", 0, Opt::NoSort, Col::NoSort),
    opt("sort", 0, Opt::Sort, Col::None),
    opt("exact", 'X', Opt::Exact, Col::Exact),
    opt("ipv6", '6', Opt::Ipv6, Col::None),
    opt("ops", 'o', Opt::Ops, Col::Ops),
    opt("pe", 0, Opt::Pe, Col::Pe, kArg),
    opt("sched-flags", 'b', Opt::SchedFlags, Col::SchedFlags, kArg),
    opt("mcast-group", 0, Opt::McastGroup, Col::McastGroup, kArg),
    opt("mcast-port", 0, Opt::McastPort, Col::McastPort, kArg),
    opt("mcast-ttl", 0, Opt::McastTtl, Col::McastTtl, kArg),
    opt("sync-maxlen", 0, Opt::SyncMaxlen, Col::SyncMaxlen, kArg),
    opt("tun-info", 0, Opt::TunInfo, Col::TunInfo),
    opt("tun-type", 0, Opt::TunType, Col::TunType, kArg),
    opt("tun-port", 0, Opt::TunPort, Col::TunPort, kArg),
    opt("tun-nocsum", 0, Opt::TunNocsum, Col::TunNocsum),
    opt("tun-csum", 0, Opt::TunCsum, Col::TunCsum),
    opt("tun-remcsum", 0, Opt::TunRemcsum, Col::TunRemcsum),
    opt("json", 0, Opt::Json, Col::Json),
    opt("socket", 0, Opt::Socket, Col::Socket, kArg),
};

const OptionSpec* find_long(std::string_view name) {
    for (const OptionSpec& s : kOptions) {
        if (name == s.long_name) {
            return &s;
        }
    }
    return nullptr;
}

const OptionSpec* find_short(char c) {
    for (const OptionSpec& s : kOptions) {
        if (s.short_name != 0 && s.short_name == c) {
            return &s;
        }
    }
    return nullptr;
}

Col opt_col(Opt o) {
    for (const OptionSpec& s : kOptions) {
        if (!s.is_command && s.opt == o) {
            return s.col;
        }
    }
    return Col::None;
}

struct CommandRule {
    Command command;
    const char* name;  // ipvsadm's cmdnames[]
    // One character per class, in groups of six (blanks are skipped): '+' compulsory, 'x'
    // illegal, '1' exclusive (at most one of the '1's), '.' optional. Columns:
    //  n c svc s p M | r fwd w x y mc | tot dmn st rt thr pc | srt sid ex ops pe b |
    //  grp mport ttl size tinf type | tprt nocs csum remc json sock
    const char* rules;
};

// ipvsadm 1.31's commands_v_options, and rows for lbctl's commands.
constexpr CommandRule kCommandRules[] = {
    {Command::AddService, "add-service", "xx+... xxxxxx xxxxxx xxx... xxxxxx xxxxx."},
    {Command::EditService, "edit-service", "xx+... xxxxxx xxxxxx xxx... xxxxxx xxxxx."},
    {Command::DeleteService, "delete-service", "xx+xxx xxxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
    {Command::Clear, "flush", "xxxxxx xxxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
    {Command::List, "list", ".11xxx xxxxxx 11.... ...xxx xxxx.x xxxx.."},
    {Command::AddServer, "add-server", "xx+xxx +....x xxxxxx xxxxxx xxxxx. ....x."},
    {Command::DeleteServer, "delete-server", "xx+xxx +xxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
    {Command::EditServer, "edit-server", "xx+xxx +....x xxxxxx xxxxxx xxxxx. ....x."},
    {Command::SetTimeout, "set", "xxxxxx xxxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
    {Command::StartDaemon, "start-daemon", "xxxxxx xxxxx. xxxxxx x.xxxx ....xx xxxxx."},
    {Command::StopDaemon, "stop-daemon", "xxxxxx xxxxxx xxxxxx x.xxxx xxxxxx xxxxx."},
    {Command::Restore, "restore", "xxxxxx xxxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
    {Command::Save, "save", ".xxxxx xxxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
    {Command::Zero, "zero", "xx.xxx xxxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
    {Command::Reload, "reload", "xxxxxx xxxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
    {Command::Workers, "workers", "xxxxxx xxxxxx xxxxxx xxxxxx xxxxxx xxxx.."},
    {Command::WriteConfig, "write-config", "xxxxxx xxxxxx xxxxxx xxxxxx xxxxxx xxxxx."},
};

char rule_at(const char* rules, int col) {
    for (int i = 0; *rules != '\0'; ++rules) {
        if (*rules == ' ') {
            continue;
        }
        if (i++ == col) {
            return *rules;
        }
    }
    return 'x';
}

const CommandRule* find_rule(Command c) {
    for (const CommandRule& r : kCommandRules) {
        if (r.command == c) {
            return &r;
        }
    }
    return nullptr;
}

void record(Args& a, const OptionSpec& spec, const std::string& spelled, std::string value) {
    if (spec.is_command) {
        if (a.command != Command::None) {
            throw UsageError("multiple commands specified (" + a.command_name + " and " + spelled +
                             ")");
        }
        a.command = spec.command;
        a.command_name = spelled;
        a.command_arg = std::move(value);
        return;
    }
    const Col col = spec.col;
    if (col != Col::None) {
        for (size_t i = 0; i < size_t(Opt::Count); ++i) {
            if (a.opts[i] && opt_col(Opt(i)) == col) {
                std::string msg =
                    std::string("multiple '") + kColNames[size_t(col)] + "' options specified";
                if (a.opt_names[i] != spelled) {
                    msg += " (" + a.opt_names[i] + " and " + spelled + ")";
                }
                throw UsageError(msg);
            }
        }
    }
    a.opts[size_t(spec.opt)] = std::move(value);
    a.opt_names[size_t(spec.opt)] = spelled;
}

// Decimal digits only, at most `max`.
bool parse_u32(std::string_view s, uint32_t max, uint32_t& out) {
    if (s.empty() || s.size() > 10) {
        return false;
    }
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + uint64_t(c - '0');
    }
    if (v > max) {
        return false;
    }
    out = static_cast<uint32_t>(v);
    return true;
}

std::optional<uint32_t> parse_ipv4(std::string_view host) {
    uint32_t addr = 0;
    size_t start = 0;
    for (int octet = 0; octet < 4; ++octet) {
        const size_t dot = octet < 3 ? host.find('.', start) : host.size();
        if (dot == std::string_view::npos || dot - start > 3) {
            return std::nullopt;
        }
        uint32_t v = 0;
        if (!parse_u32(host.substr(start, dot - start), 255, v)) {
            return std::nullopt;
        }
        addr = (addr << 8) | v;
        start = dot + 1;
    }
    return addr;
}

struct Endpoint {
    uint32_t addr = 0;
    uint16_t port = 0;
    bool has_port = false;
};

std::optional<Endpoint> parse_endpoint(const std::string& s) {
    const size_t colon = s.find(':');
    const auto addr = parse_ipv4(std::string_view(s).substr(0, colon));
    if (!addr) {
        return std::nullopt;
    }
    Endpoint e;
    e.addr = *addr;
    if (colon != std::string::npos) {
        uint32_t port = 0;
        if (!parse_u32(std::string_view(s).substr(colon + 1), 65535, port)) {
            return std::nullopt;
        }
        e.port = uint16_t(port);
        e.has_port = true;
    }
    return e;
}

// ipvsadm's parse_timeout: an integer in [min, max], or "invalid timeout value".
uint32_t parse_timeout(const std::string& s, uint32_t min, uint32_t max) {
    uint32_t v = 0;
    if (!parse_u32(s, max, v) || v < min) {
        throw UsageError("invalid timeout value `" + s + "' specified");
    }
    return v;
}

uint32_t parse_number(const std::string& s, uint32_t max, const char* what) {
    uint32_t v = 0;
    if (!parse_u32(s, max, v)) {
        throw UsageError(std::string("illegal ") + what + " specified: " + s);
    }
    return v;
}

// lb's schedulers (dp::kSchedNames, which lbctl cannot include: it pulls in DPDK), and the IPVS
// ones lb does not implement.
constexpr const char* kSchedulers[] = {"rr", "wrr", "lc", "wlc", "sed", "nq",
                                       "sh", "dh",  "mh", "fo",  "ovf"};
constexpr const char* kIpvsOnlySchedulers[] = {"lblc", "lblcr", "twos"};

std::string scheduler_list() {
    std::string s;
    for (const char* n : kSchedulers) {
        s += (s.empty() ? "" : ", ") + std::string(n);
    }
    return s;
}

void check_scheduler(const std::string& name) {
    for (const char* n : kSchedulers) {
        if (name == n) {
            return;
        }
    }
    for (const char* n : kIpvsOnlySchedulers) {
        if (name == n) {
            throw UsageError("scheduler `" + name + "' is not supported by lb (it has " +
                             scheduler_list() + ")");
        }
    }
    throw UsageError("unknown scheduler `" + name + "' (lb has " + scheduler_list() + ")");
}

// ipvsadm's parse_sched_flags, checked against the scheduler, as lb's canonical list: the
// fallback flag before the port flag, "sh-fallback,sh-port".
std::string parse_sched_flags(const std::string& sched, const std::string& list) {
    bool fallback = false, port = false;
    size_t start = 0;
    while (start <= list.size()) {
        size_t comma = list.find(',', start);
        if (comma == std::string::npos) {
            comma = list.size();
        }
        const std::string flag = list.substr(start, comma - start);
        start = comma + 1;
        if (flag.empty()) {
            continue;  // strtok skips empty fields
        }
        if (flag == "sh-fallback" || flag == "sh-port" || flag == "mh-fallback" ||
            flag == "mh-port") {
            if (flag.compare(0, 2, sched) != 0 || sched.size() != 2) {
                throw UsageError("incompatible scheduler flag `" + flag + "'");
            }
            (flag.compare(3, std::string::npos, "port") == 0 ? port : fallback) = true;
        } else if (flag == "flag-1" || flag == "flag-2" || flag == "flag-3") {
            if ((sched != "sh" && sched != "mh") || flag == "flag-3") {
                throw UsageError("incompatible scheduler flag `" + flag + "' (lb's " + sched +
                                 " has no " + flag +
                                 "; sh and mh have flag-1 = fallback, flag-2 = port)");
            }
            (flag == "flag-2" ? port : fallback) = true;
        } else {
            throw UsageError("invalid scheduler flag `" + flag + "'");
        }
    }
    std::string out;
    if (fallback) {
        out = sched + "-fallback";
    }
    if (port) {
        out += (out.empty() ? "" : ",") + sched + "-port";
    }
    return out;
}

// The operation of each change command.
constexpr std::pair<Command, OpKind> kChangeKinds[] = {
    {Command::AddService, OpKind::AddService},       {Command::EditService, OpKind::EditService},
    {Command::DeleteService, OpKind::DeleteService}, {Command::Clear, OpKind::Clear},
    {Command::AddServer, OpKind::AddReal},           {Command::EditServer, OpKind::EditReal},
    {Command::DeleteServer, OpKind::DeleteReal},     {Command::Zero, OpKind::Zero},
    {Command::SetTimeout, OpKind::SetTimeout},
};

bool is_change_command(Command c) {
    return std::any_of(std::begin(kChangeKinds), std::end(kChangeKinds),
                       [c](const auto& k) { return k.first == c; });
}

OpKind change_kind(Command c) {
    for (const auto& [command, kind] : kChangeKinds) {
        if (command == c) {
            return kind;
        }
    }
    return OpKind::Clear;  // not reached: callers check is_change_command
}

void check_operands(const Args& a, size_t allowed) {
    if (a.operands.size() > allowed) {
        throw UsageError("unexpected argument " + a.operands[allowed]);
    }
}

std::string pad_right(std::string s, size_t width) {
    if (s.size() < width) {
        s.append(width - s.size(), ' ');
    }
    return s;
}

std::string pad_left(const std::string& s, size_t width) {
    return s.size() < width ? std::string(width - s.size(), ' ') + s : s;
}

std::string proto_name(uint8_t proto) { return proto == 6 ? "TCP" : proto == 17 ? "UDP" : "IP"; }

std::string service_name(const ServiceStatus& svc) {
    // ipvsadm: "%-4s %s" of the protocol and address, cut at 33 characters for IPv4.
    std::string name =
        pad_right(proto_name(svc.proto), 4) + " " + format_addr_port(svc.vip, svc.port);
    if (name.size() > 33) {
        name.resize(33);
    }
    return name;
}

std::string real_name(const RealStatus& rs) {
    std::string name = format_addr_port(rs.addr, rs.port);
    if (name.size() > 28) {
        name.resize(28);
    }
    return name;
}

std::vector<const ServiceStatus*> select_services(const Status& status, const ListOptions& opts) {
    std::vector<const ServiceStatus*> services;
    services.reserve(status.services.size());
    for (const ServiceStatus& svc : status.services) {
        if (!opts.service || (svc.proto == opts.service->proto && svc.vip == opts.service->vip &&
                              svc.port == opts.service->port)) {
            services.push_back(&svc);
        }
    }
    if (opts.service && services.empty()) {
        throw std::runtime_error("No such service");
    }
    // ipvsadm's ipvs_cmp_services: protocol, address, port (lbctl compares the addresses as
    // unsigned numbers, where ipvsadm's int subtraction misorders addresses 2^31 apart).
    if (opts.sort) {
        std::stable_sort(
            services.begin(), services.end(), [](const ServiceStatus* a, const ServiceStatus* b) {
                return std::tie(a->proto, a->vip, a->port) < std::tie(b->proto, b->vip, b->port);
            });
    }
    return services;
}

std::vector<const RealStatus*> select_reals(const ServiceStatus& svc, bool sort) {
    std::vector<const RealStatus*> reals;
    reals.reserve(svc.reals.size());
    for (const RealStatus& rs : svc.reals) {
        reals.push_back(&rs);
    }
    if (sort) {
        std::stable_sort(reals.begin(), reals.end(), [](const RealStatus* a, const RealStatus* b) {
            return std::tie(a->addr, a->port) < std::tie(b->addr, b->port);
        });
    }
    return reals;
}

// The service line of the plain, --thresholds, --persistent-conn and --tun-info listings.
std::string service_line(const ServiceStatus& svc) {
    std::string out = service_name(svc) + " " + svc.scheduler;
    if (!svc.sched_flags.empty()) {
        out += " (" + svc.sched_flags + ")";
    }
    if (svc.persistence != 0) {
        out += " persistent " + std::to_string(svc.persistence);
        if (svc.persist_mask != 0xFFFFFFFF) {
            out += " mask " + format_addr(svc.persist_mask);
        }
    }
    return out + "\n";
}

std::string numbers(std::initializer_list<uint64_t> values, bool exact) {
    std::string out;
    for (uint64_t v : values) {
        out += format_number(v, exact);
    }
    return out;
}

// ipvsadm's print_title.
std::string title(ListFormat f) {
    const std::string prot = pad_right("Prot LocalAddress:Port", 33);
    switch (f) {
        case ListFormat::Stats:
        case ListFormat::Rate: {
            // "%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
            static constexpr const char* kStats[] = {"Conns", "InPkts", "OutPkts", "InBytes",
                                                     "OutBytes"};
            static constexpr const char* kRates[] = {"CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"};
            std::string out = prot;
            for (const char* h : f == ListFormat::Stats ? kStats : kRates) {
                out += " " + pad_left(h, 8);
            }
            return out + "\n  -> RemoteAddress:Port\n";
        }
        case ListFormat::Thresholds:
            // "%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n"
            return prot + " " + pad_right("Uthreshold", 10) + " " + pad_right("Lthreshold", 10) +
                   " " + pad_right("ActiveConn", 10) + " " + pad_right("InActConn", 10) +
                   "\n  -> RemoteAddress:Port\n";
        case ListFormat::PersistentConn:
            // "%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n"
            return prot + " " + pad_right("Weight", 9) + " " + pad_right("PersistConn", 11) + " " +
                   pad_right("ActiveConn", 10) + " " + pad_right("InActConn", 10) +
                   "\n  -> RemoteAddress:Port\n";
        case ListFormat::TunInfo:
            return "Prot LocalAddress:Port Scheduler Flags\n"
                   "  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn "
                   "InActConn\n";
        case ListFormat::Plain:
            break;
    }
    return "Prot LocalAddress:Port Scheduler Flags\n"
           "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
}

// ipvsadm's print_service_entry, for every listing format.
void append_service(std::string& out, const ServiceStatus& svc, const ListOptions& opts) {
    const bool exact = opts.exact;
    switch (opts.format) {
        case ListFormat::Stats:
            out += pad_right(service_name(svc), 33) +
                   numbers({svc.conns, svc.in_pkts, svc.out_pkts, svc.in_bytes, svc.out_bytes},
                           exact) +
                   "\n";
            break;
        case ListFormat::Rate:
            out += pad_right(service_name(svc), 33) +
                   numbers({svc.rates.cps, svc.rates.inpps, svc.rates.outpps, svc.rates.inbps,
                            svc.rates.outbps},
                           exact) +
                   "\n";
            break;
        default:
            out += service_line(svc);
            break;
    }
    for (const RealStatus* rs : select_reals(svc, opts.sort)) {
        const std::string name = "  -> " + pad_right(real_name(*rs), 28);
        switch (opts.format) {
            case ListFormat::Stats:
                // "  -> %-28s" then print_largenum of the five counters
                out += name +
                       numbers({rs->conns, rs->in_pkts, rs->out_pkts, rs->in_bytes, rs->out_bytes},
                               exact) +
                       "\n";
                break;
            case ListFormat::Rate:
                // "  -> %-28s %8llu %8llu %8llu" then print_largenum of inbps and outbps
                out += name + " " + pad_left(std::to_string(rs->rates.cps), 8) + " " +
                       pad_left(std::to_string(rs->rates.inpps), 8) + " " +
                       pad_left(std::to_string(rs->rates.outpps), 8) +
                       numbers({rs->rates.inbps, rs->rates.outbps}, exact) + "\n";
                break;
            case ListFormat::Thresholds:
                // "  -> %-28s %-10u %-10u %-10u %-10u\n"
                out += name + " " + pad_right(std::to_string(rs->u_threshold), 10) + " " +
                       pad_right(std::to_string(rs->l_threshold), 10) + " " +
                       pad_right(std::to_string(rs->active), 10) + " " +
                       pad_right(std::to_string(rs->inactive), 10) + "\n";
                break;
            case ListFormat::PersistentConn:
                // "  -> %-28s %-9u %-11u %-10u %-10u\n"
                out += name + " " + pad_right(std::to_string(rs->weight), 9) + " " +
                       pad_right(std::to_string(rs->persist), 11) + " " +
                       pad_right(std::to_string(rs->active), 10) + " " +
                       pad_right(std::to_string(rs->inactive), 10) + "\n";
                break;
            case ListFormat::TunInfo:
                // "  -> %-28s %-7s %-13s %-6d %-10u %-10u\n", tunnel info "ipip" or "n/a"
                out += name + " " + pad_right(forward_name(rs->forward), 7) + " " +
                       pad_right(rs->forward == 1 ? "ipip" : "n/a", 13) + " " +
                       pad_right(std::to_string(rs->weight), 6) + " " +
                       pad_right(std::to_string(rs->active), 10) + " " +
                       pad_right(std::to_string(rs->inactive), 10) + "\n";
                break;
            case ListFormat::Plain:
                // "  -> %-28s %-7s %-6d %-10u %-10u\n"
                out += name + " " + pad_right(forward_name(rs->forward), 7) + " " +
                       pad_right(std::to_string(rs->weight), 6) + " " +
                       pad_right(std::to_string(rs->active), 10) + " " +
                       pad_right(std::to_string(rs->inactive), 10) + "\n";
                break;
        }
    }
}

// ipvsadm's fwd_switch: the -S option of a forward method.
const char* forward_switch(uint8_t forward) {
    return forward == 0 ? "-m" : forward == 1 ? "-i" : "-g";
}

Json rates_json(const Rates& r) {
    return Json{{"cps", r.cps},
                {"in_pps", r.inpps},
                {"out_pps", r.outpps},
                {"in_bps", r.inbps},
                {"out_bps", r.outbps}};
}

Json flags_json(const std::string& flags) {
    Json a = Json::array();
    size_t start = 0;
    while (start < flags.size()) {
        size_t comma = flags.find(',', start);
        if (comma == std::string::npos) {
            comma = flags.size();
        }
        if (comma > start) {
            a.push_back(flags.substr(start, comma - start));
        }
        start = comma + 1;
    }
    return a;
}

std::string dump(const Json& j) {
    return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

// Ordered union of the names of a per-worker list of (name, value) pairs.
std::vector<std::string> names_of(
    const Workers& w, const std::vector<std::pair<std::string, uint64_t>> WorkerStatus::*list) {
    std::vector<std::string> names;
    for (const WorkerStatus& ws : w.workers) {
        for (const auto& [name, value] : ws.*list) {
            if (std::find(names.begin(), names.end(), name) == names.end()) {
                names.push_back(name);
            }
        }
    }
    return names;
}

uint64_t value_of(const std::vector<std::pair<std::string, uint64_t>>& list,
                  const std::string& name) {
    for (const auto& [n, v] : list) {
        if (n == name) {
            return v;
        }
    }
    return 0;
}

}  // namespace

Args parse_args(const std::vector<std::string>& args) {
    Args a;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& word = args[i];
        if (word == "--") {
            a.operands.insert(a.operands.end(), args.begin() + long(i) + 1, args.end());
            break;
        }
        if (word.size() > 2 && word.compare(0, 2, "--") == 0) {
            const size_t eq = word.find('=');
            const std::string name = word.substr(2, eq == std::string::npos ? eq : eq - 2);
            const OptionSpec* spec = find_long(name);
            const std::string spelled = "--" + name;
            if (spec == nullptr) {
                throw UsageError("unknown option " + spelled);
            }
            std::string value;
            if (eq != std::string::npos) {
                if (spec->arg == ArgKind::None) {
                    throw UsageError("option " + spelled + " takes no value");
                }
                value = word.substr(eq + 1);
            } else if (spec->arg == ArgKind::Required) {
                if (i + 1 >= args.size()) {
                    throw UsageError("option " + spelled + " requires a value");
                }
                value = args[++i];
            } else if (spec->arg == ArgKind::Optional && i + 1 < args.size() &&
                       !args[i + 1].empty() && args[i + 1][0] != '-') {
                value = args[++i];
            }
            record(a, *spec, spelled, std::move(value));
            continue;
        }
        if (word.size() > 1 && word[0] == '-') {
            for (size_t j = 1; j < word.size(); ++j) {
                const OptionSpec* spec = find_short(word[j]);
                const std::string spelled = std::string("-") + word[j];
                if (spec == nullptr) {
                    throw UsageError("unknown option " + spelled);
                }
                std::string value;
                if (spec->arg != ArgKind::None) {
                    if (j + 1 < word.size()) {
                        value = word.substr(j + 1);
                    } else if (spec->arg == ArgKind::Required) {
                        if (i + 1 >= args.size()) {
                            throw UsageError("option " + spelled + " requires a value");
                        }
                        value = args[++i];
                    } else if (i + 1 < args.size() && !args[i + 1].empty() &&
                               args[i + 1][0] != '-') {
                        value = args[++i];
                    }
                    record(a, *spec, spelled, std::move(value));
                    break;  // the rest of the word was the value
                }
                record(a, *spec, spelled, std::move(value));
            }
            continue;
        }
        a.operands.push_back(word);
    }
    return a;
}

void check_command(const Args& a) {
    if (a.command == Command::Help || a.command == Command::Version) {
        return;
    }
    if (a.command == Command::StartDaemon || a.command == Command::StopDaemon) {
        throw UsageError(a.command_name +
                         " is not supported: lb has no connection synchronisation daemon");
    }
    if (a.has(Opt::FwmarkService)) {
        throw UsageError(a.spelled(Opt::FwmarkService) +
                         ": fwmark services are not supported (lb has TCP and UDP services: -t, "
                         "-u)");
    }
    if (a.has(Opt::SctpService)) {
        throw UsageError(a.spelled(Opt::SctpService) +
                         ": SCTP services are not supported (lb has TCP and UDP services: -t, -u)");
    }
    if (a.has(Opt::Ipv6)) {
        throw UsageError(a.spelled(Opt::Ipv6) + ": IPv6 services are not supported");
    }
    if (a.has(Opt::Ops)) {
        throw UsageError(a.spelled(Opt::Ops) + ": one-packet scheduling is not supported");
    }
    if (a.has(Opt::Pe)) {
        throw UsageError(a.spelled(Opt::Pe) + ": persistence engines are not supported");
    }
    const CommandRule* rule = find_rule(a.command);
    if (rule == nullptr) {
        throw UsageError("no command specified");
    }
    bool given[kCols] = {};
    for (size_t i = 0; i < size_t(Opt::Count); ++i) {
        const Col col = opt_col(Opt(i));
        if (a.opts[i] && col != Col::None) {
            given[size_t(col)] = true;
        }
    }
    int exclusive = -1;
    for (int c = 0; c < kCols; ++c) {
        const char r = rule_at(rule->rules, c);
        if (!given[c]) {
            if (r == '+') {
                throw UsageError(std::string("You need to supply the '") + kColNames[c] +
                                 "' option for the '" + rule->name + "' command");
            }
            continue;
        }
        if (r == 'x') {
            throw UsageError(std::string("Illegal '") + kColNames[c] + "' option with the '" +
                             rule->name + "' command");
        }
        if (r == '1') {
            if (exclusive >= 0) {
                throw UsageError(std::string("The option '") + kColNames[c] +
                                 "' conflicts with the '" + kColNames[exclusive] +
                                 "' option in the '" + rule->name + "' command");
            }
            exclusive = c;
        }
    }
}

std::optional<std::pair<uint32_t, uint16_t>> parse_addr_port(const std::string& s) {
    const auto e = parse_endpoint(s);
    if (!e) {
        return std::nullopt;
    }
    return std::make_pair(e->addr, e->port);
}

std::optional<uint32_t> parse_netmask(const std::string& s) {
    const auto m = parse_ipv4(s);
    if (!m || *m == 0) {
        return std::nullopt;
    }
    const uint32_t inv = ~*m;
    if ((inv & (inv + 1)) != 0) {
        return std::nullopt;
    }
    return m;
}

std::vector<Op> command_ops(const Args& a) {
    check_command(a);
    if (!is_change_command(a.command)) {
        throw UsageError(a.command_name + " does not change the table");
    }
    check_operands(a, a.command == Command::SetTimeout ? 3 : 0);
    Op op;
    op.kind = change_kind(a.command);
    if (a.command == Command::SetTimeout) {
        if (a.operands.size() < 3) {
            throw UsageError("--set option requires 3 timeout values");
        }
        op.tcp = parse_timeout(a.operands[0], 0, kMaxTimeout);
        op.tcpfin = parse_timeout(a.operands[1], 0, kMaxTimeout);
        op.udp = parse_timeout(a.operands[2], 0, kMaxTimeout);
        return {op};
    }
    for (Opt o : {Opt::TcpService, Opt::UdpService}) {
        if (!a.has(o)) {
            continue;
        }
        const auto e = parse_endpoint(a.value(o));
        if (!e) {
            throw UsageError("illegal virtual server address[:port] specified: " + a.value(o) +
                             " (lbctl takes a numeric IPv4 address[:port])");
        }
        op.has_service = true;
        op.proto = o == Opt::TcpService ? 6 : 17;
        op.vip = e->addr;
        op.port = e->port;
    }
    if (a.command == Command::AddService || a.command == Command::EditService) {
        op.scheduler = a.has(Opt::Scheduler) ? a.value(Opt::Scheduler) : kDefaultScheduler;
        check_scheduler(op.scheduler);
        if (a.has(Opt::Persistent)) {
            op.persistence = a.value(Opt::Persistent).empty()
                                 ? kDefaultPersistence
                                 : parse_timeout(a.value(Opt::Persistent), 1, kMaxTimeout);
        }
        if (a.has(Opt::Netmask)) {
            const auto m = parse_netmask(a.value(Opt::Netmask));
            if (!m) {
                throw UsageError(
                    "illegal virtual server persistent mask specified: " + a.value(Opt::Netmask) +
                    " (a dotted-quad netmask, e.g. 255.255.255.0)");
            }
            op.persist_mask = *m;
        }
        if (a.has(Opt::SchedFlags) && !a.value(Opt::SchedFlags).empty()) {
            op.sched_flags = parse_sched_flags(op.scheduler, a.value(Opt::SchedFlags));
        }
        if (op.port == 0 && op.persistence == 0) {
            throw UsageError("Zero port specified for non-persistent service");
        }
        return {op};
    }
    if (a.command == Command::AddServer || a.command == Command::EditServer ||
        a.command == Command::DeleteServer) {
        const auto r = parse_endpoint(a.value(Opt::RealServer));
        if (!r) {
            throw UsageError(
                "illegal real server address[:port] specified: " + a.value(Opt::RealServer) +
                " (lbctl takes a numeric IPv4 address[:port])");
        }
        op.real_addr = r->addr;
        op.real_port = r->has_port ? r->port : op.port;  // ipvsadm: vport if none given
    }
    if (a.command == Command::AddServer || a.command == Command::EditServer) {
        op.forward = a.has(Opt::Masquerading) ? 0 : a.has(Opt::Ipip) ? 1 : kDefaultForward;
        if (a.has(Opt::Weight)) {
            op.weight = parse_number(a.value(Opt::Weight), 65535, "weight");
        }
        if (a.has(Opt::UThreshold)) {
            op.u_threshold = parse_number(a.value(Opt::UThreshold), INT_MAX, "u_threshold");
        }
        if (a.has(Opt::LThreshold)) {
            op.l_threshold = parse_number(a.value(Opt::LThreshold), INT_MAX, "l_threshold");
        }
        // ipvsadm: tunnelled and directly routed reals keep the service port.
        if (op.forward != 0) {
            op.real_port = op.port;
        }
        const bool tun_opts = a.has(Opt::TunType) || a.has(Opt::TunPort) || a.has(Opt::TunNocsum) ||
                              a.has(Opt::TunCsum) || a.has(Opt::TunRemcsum);
        if (tun_opts && op.forward != 1) {
            throw UsageError("Tunnel options conflict with forward method");
        }
        if (a.has(Opt::TunType)) {
            const std::string& t = a.value(Opt::TunType);
            if (t == "gue" || t == "gre") {
                throw UsageError("--tun-type " + t + " is not supported (lb tunnels are ipip)");
            }
            if (t != "ipip") {
                throw UsageError("illegal tunnel type specified: " + t);
            }
        }
        for (Opt o : {Opt::TunPort, Opt::TunNocsum, Opt::TunCsum, Opt::TunRemcsum}) {
            if (a.has(o)) {
                throw UsageError("Illegal '" + a.spelled(o).substr(2) +
                                 "' option with the 'ipip' tunnel type");
            }
        }
    }
    return {op};
}

std::vector<Op> restore_ops(std::string_view text, std::vector<RestoreLine>* from) {
    std::vector<Op> ops;
    size_t line_no = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) {
            end = text.size();
        }
        const std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        std::vector<std::string> words;
        size_t i = 0;
        while (i < line.size()) {
            while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) {
                ++i;
            }
            const size_t start = i;
            while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') {
                ++i;
            }
            if (i > start) {
                words.emplace_back(line.substr(start, i - start));
            }
        }
        const auto comment = std::find_if(words.begin(), words.end(),
                                          [](const std::string& w) { return w[0] == '#'; });
        words.erase(comment, words.end());
        if (!words.empty() && (words.front() == "ipvsadm" || words.front() == "lbctl")) {
            words.erase(words.begin());
        }
        if (words.empty()) {
            continue;
        }
        try {
            const Args a = parse_args(words);
            if (!is_change_command(a.command)) {
                throw UsageError(
                    (a.command == Command::None ? std::string("no command") : a.command_name) +
                    " cannot be restored (only -A -E -D -C -a -e -d -Z --set)");
            }
            if (a.has(Opt::Socket)) {
                throw UsageError("--socket is for the command line, not for restore input");
            }
            for (Op& op : command_ops(a)) {
                ops.push_back(std::move(op));
                if (from != nullptr) {
                    std::string written;
                    for (const std::string& w : words) {
                        written += (written.empty() ? "" : " ") + w;
                    }
                    from->push_back({line_no, std::move(written)});
                }
            }
        } catch (const UsageError& e) {
            throw UsageError("line " + std::to_string(line_no) + ": " + e.what());
        }
    }
    return ops;
}

std::string restore_error(const std::string& msg, const std::vector<RestoreLine>& from) {
    size_t index = 0;
    size_t rest = std::string::npos;
    constexpr std::string_view kOperation = "operation ";
    if (from.size() > 1 && msg.rfind(kOperation, 0) == 0) {
        size_t i = kOperation.size();
        size_t n = 0;
        while (i < msg.size() && msg[i] >= '0' && msg[i] <= '9' && n <= from.size()) {
            n = n * 10 + size_t(msg[i] - '0');
            ++i;
        }
        const size_t end = msg.find("): ", i);
        if (n >= 1 && n <= from.size() && msg.compare(i, 2, " (") == 0 &&
            end != std::string::npos) {
            index = n - 1;
            rest = end + 3;
        }
    } else if (from.size() == 1 && msg.size() > 1 && msg[0] == '-') {
        const size_t end = msg.find(": ");  // after lb's name of the operation, "-a TCP ..."
        rest = end == std::string::npos ? end : end + 2;
    }
    if (rest == std::string::npos) {
        return msg;
    }
    return "line " + std::to_string(from[index].line) + ": " + from[index].text + ": " +
           msg.substr(rest);
}

ListOptions list_options(const Args& a) {
    if (a.command != Command::List) {
        throw UsageError("no list command given");
    }
    check_command(a);
    check_operands(a, 0);
    const bool table_fmt = a.has(Opt::Stats) || a.has(Opt::Rate) || a.has(Opt::Thresholds);
    if (((a.has(Opt::Connection) || a.has(Opt::Timeout) || a.has(Opt::Daemon)) && table_fmt) ||
        ((a.has(Opt::Timeout) || a.has(Opt::Daemon)) && a.has(Opt::PersistentConn))) {
        throw UsageError("options conflicts in the list command");
    }
    ListOptions lo;
    lo.what = a.has(Opt::Connection) ? ListWhat::Connections
              : a.has(Opt::Timeout)  ? ListWhat::Timeout
              : a.has(Opt::Daemon)   ? ListWhat::Daemon
                                     : ListWhat::Services;
    lo.format = a.has(Opt::Stats)            ? ListFormat::Stats
                : a.has(Opt::Rate)           ? ListFormat::Rate
                : a.has(Opt::Thresholds)     ? ListFormat::Thresholds
                : a.has(Opt::PersistentConn) ? ListFormat::PersistentConn
                : a.has(Opt::TunInfo)        ? ListFormat::TunInfo
                                             : ListFormat::Plain;
    lo.persistent_conn = a.has(Opt::PersistentConn);
    lo.exact = a.has(Opt::Exact);
    lo.sort = !a.has(Opt::NoSort);
    lo.json = a.has(Opt::Json);
    for (Opt o : {Opt::TcpService, Opt::UdpService}) {
        if (!a.has(o)) {
            continue;
        }
        const auto ap = parse_addr_port(a.value(o));
        if (!ap) {
            throw UsageError("illegal virtual server address[:port] specified: " + a.value(o) +
                             " (lbctl takes a numeric IPv4 address[:port])");
        }
        lo.service = ServiceKey{uint8_t(o == Opt::TcpService ? 6 : 17), ap->first, ap->second};
    }
    return lo;
}

std::string format_number(uint64_t v, bool exact) {
    const std::string digits = std::to_string(v);
    if (exact) {
        return pad_left(digits, digits.size() <= 8 ? 9 : digits.size() + 1);
    }
    if (v < 100'000'000ULL) {
        return pad_left(digits, 9);
    }
    if (v < 1'000'000'000ULL) {
        return pad_left(std::to_string(v / 1'000ULL), 8) + "K";
    }
    if (v < 100'000'000'000ULL) {
        return pad_left(std::to_string(v / 1'000'000ULL), 8) + "M";
    }
    if (v < 100'000'000'000'000ULL) {
        return pad_left(std::to_string(v / 1'000'000'000ULL), 8) + "G";
    }
    return pad_left(std::to_string(v / 1'000'000'000'000ULL), 8) + "T";
}

std::string format_addr(uint32_t addr) {
    return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 0xff) + "." +
           std::to_string((addr >> 8) & 0xff) + "." + std::to_string(addr & 0xff);
}

std::string format_addr_port(uint32_t addr, uint16_t port) {
    return format_addr(addr) + ":" + std::to_string(port);
}

std::string forward_name(uint8_t forward) {
    switch (forward) {
        case 0:
            return "Masq";
        case 1:
            return "Tunnel";
        case 2:
            return "Route";
        default:
            return "Unknown";
    }
}

std::string format_list(const Status& status, const ListOptions& opts) {
    const std::vector<const ServiceStatus*> services = select_services(status, opts);
    std::string out;
    if (!opts.service) {
        out +=
            "IP Virtual Server version 1.2.1 (size=" + std::to_string(status.conn_capacity) + ")\n";
    }
    out += title(opts.format);
    for (const ServiceStatus* svc : services) {
        append_service(out, *svc, opts);
    }
    return out;
}

std::string format_save(const Status& status) {
    std::string out;
    for (const ServiceStatus* svc : select_services(status, ListOptions{})) {
        // ipvsadm's FMT_RULE: "-A %s -s %s" [" -p %u" [" -M %s"]] [" -b FLAGS"]
        const std::string name =
            std::string(svc->proto == 6 ? "-t " : "-u ") + format_addr_port(svc->vip, svc->port);
        out += "-A " + name + " -s " + svc->scheduler;
        if (svc->persistence != 0) {
            out += " -p " + std::to_string(svc->persistence);
            if (svc->persist_mask != 0xFFFFFFFF) {
                out += " -M " + format_addr(svc->persist_mask);
            }
        }
        if (!svc->sched_flags.empty()) {
            out += " -b " + svc->sched_flags;
        }
        out += "\n";
        for (const RealStatus* rs : select_reals(*svc, true)) {
            // "-a %s -r %s %s -w %d", tunnels " --tun-type ipip" (ipvsadm 1.31), then lbctl's
            // thresholds
            out += "-a " + name + " -r " + format_addr_port(rs->addr, rs->port) + " " +
                   forward_switch(rs->forward) + " -w " + std::to_string(rs->weight);
            if (rs->forward == 1) {
                out += " --tun-type ipip";
            }
            if (rs->u_threshold != 0) {
                out += " -x " + std::to_string(rs->u_threshold);
            }
            if (rs->l_threshold != 0) {
                out += " -y " + std::to_string(rs->l_threshold);
            }
            out += "\n";
        }
    }
    return out;
}

std::string conn_title(const ListOptions& opts) {
    std::string out = "IPVS connection entries\n";
    // "pro expire %-11s %-18s %-18s %s\n", with --persistent-conn
    // "pro expire %-11s %-18s %-18s %-18s %-16s %s\n" and the pe columns
    out += "pro expire " + pad_right("state", 11) + " " + pad_right("source", 18) + " " +
           pad_right("virtual", 18) + " ";
    if (opts.persistent_conn) {
        out += pad_right("destination", 18) + " " + pad_right("pe name", 16) + " pe_data\n";
    } else {
        out += "destination\n";
    }
    return out;
}

void append_conn_line(std::string& out, const ConnEntry& e) {
    // "%-3s %-6s %-11s %-18s %-18s %s\n", expire "%02d:%02d" (minutes, seconds)
    auto pad = [&out](size_t from, size_t width) {
        if (out.size() - from < width) {
            out.append(width - (out.size() - from), ' ');
        }
    };
    auto two = [&out](uint32_t v) {
        if (v < 10) {
            out.push_back('0');
        }
        out += std::to_string(v);
    };
    size_t from = out.size();
    out += proto_name(e.proto);
    pad(from, 3);
    out.push_back(' ');
    from = out.size();
    two(e.expire_s / 60);
    out.push_back(':');
    two(e.expire_s % 60);
    pad(from, 6);
    out.push_back(' ');
    from = out.size();
    out += e.state;
    pad(from, 11);
    out.push_back(' ');
    from = out.size();
    out += format_addr_port(e.client, e.cport);
    pad(from, 18);
    out.push_back(' ');
    from = out.size();
    out += format_addr_port(e.vip, e.vport);
    pad(from, 18);
    out.push_back(' ');
    out += format_addr_port(e.real, e.rport);
    out.push_back('\n');
}

std::string format_connections(const Connections& conns, const ListOptions& opts) {
    std::string out = conn_title(opts);
    for (const ConnEntry& e : conns.entries) {
        append_conn_line(out, e);
    }
    return out;
}

std::string format_timeout(const Status& status) {
    // "Timeout (tcp tcpfin udp): %d %d %d\n"
    return "Timeout (tcp tcpfin udp): " + std::to_string(status.tcp_timeout) + " " +
           std::to_string(status.tcpfin_timeout) + " " + std::to_string(status.udp_timeout) + "\n";
}

std::string format_ports(const std::vector<PortStatus>& ports) {
    if (ports.empty()) {
        return "";
    }
    using Get = uint64_t (*)(const PortStatus&);
    static constexpr std::pair<const char*, Get> kRows[] = {
        {"ipackets", [](const PortStatus& p) { return p.ipackets; }},
        {"opackets", [](const PortStatus& p) { return p.opackets; }},
        {"ibytes", [](const PortStatus& p) { return p.ibytes; }},
        {"obytes", [](const PortStatus& p) { return p.obytes; }},
        {"imissed", [](const PortStatus& p) { return p.imissed; }},
        {"ierrors", [](const PortStatus& p) { return p.ierrors; }},
        {"rx_nombuf", [](const PortStatus& p) { return p.rx_nombuf; }},
        {"rx_ring_drops", [](const PortStatus& p) { return p.rx_ring_drops; }},
        {"rx_lost", [](const PortStatus& p) { return p.rx_lost(); }},
        {"oerrors", [](const PortStatus& p) { return p.oerrors; }},
    };
    const bool total = ports.size() > 1;
    std::vector<std::string> heads;
    std::vector<std::string> names;
    for (const PortStatus& p : ports) {
        heads.push_back("port " + std::to_string(p.port));
        names.push_back(p.name.empty() ? "-" : p.name);
    }
    if (total) {
        heads.emplace_back("total");
        names.emplace_back("");
    }
    std::vector<std::vector<std::string>> values;
    size_t name_w = std::string("port counter").size() + 1;
    size_t num_w = 12;
    for (const auto& [name, get] : kRows) {
        name_w = std::max(name_w, std::string(name).size() + 3);
        std::vector<std::string> row;
        uint64_t sum = 0;
        for (const PortStatus& p : ports) {
            sum += get(p);
            row.push_back(std::to_string(get(p)));
        }
        if (total) {
            row.push_back(std::to_string(sum));
        }
        values.push_back(std::move(row));
    }
    for (size_t i = 0; i < heads.size(); ++i) {
        num_w = std::max({num_w, heads[i].size() + 1, names[i].size() + 1});
        for (const auto& row : values) {
            num_w = std::max(num_w, row[i].size() + 1);
        }
    }
    std::string out = pad_right("port counter", name_w);
    for (const std::string& h : heads) {
        out += pad_left(h, num_w);
    }
    out += "\n" + pad_right("  device", name_w);
    for (const std::string& n : names) {
        out += pad_left(n, num_w);
    }
    out += "\n";
    for (size_t r = 0; r < values.size(); ++r) {
        out += pad_right(std::string("  ") + kRows[r].first, name_w);
        for (const std::string& v : values[r]) {
            out += pad_left(v, num_w);
        }
        out += "\n";
    }
    return out;
}

std::string format_workers(const Workers& w) {
    struct Row {
        std::string name;
        std::vector<uint64_t> values;
    };
    std::vector<Row> rows;
    auto add = [&](std::string name, auto&& get) {
        Row r{std::move(name), {}};
        for (const WorkerStatus& ws : w.workers) {
            r.values.push_back(get(ws));
        }
        rows.push_back(std::move(r));
    };
    add("rx", [](const WorkerStatus& s) { return s.rx; });
    add("tx", [](const WorkerStatus& s) { return s.tx; });
    add("redirected_out", [](const WorkerStatus& s) { return s.redirected_out; });
    add("redirected_in", [](const WorkerStatus& s) { return s.redirected_in; });
    add("conns_created", [](const WorkerStatus& s) { return s.conns_created; });
    add("conns_expired", [](const WorkerStatus& s) { return s.conns_expired; });
    add("conns_in_table", [](const WorkerStatus& s) { return s.conns_in_table; });
    add("table_capacity", [](const WorkerStatus& s) { return s.table_capacity; });
    for (const std::string& n : names_of(w, &WorkerStatus::counters)) {
        add(n, [&n](const WorkerStatus& s) { return value_of(s.counters, n); });
    }
    const size_t first_drop = rows.size();
    for (const std::string& n : names_of(w, &WorkerStatus::drops)) {
        add(n, [&n](const WorkerStatus& s) { return value_of(s.drops, n); });
    }
    const bool total = w.workers.size() > 1;
    std::vector<std::string> heads;
    for (const WorkerStatus& ws : w.workers) {
        heads.push_back("lcore " + std::to_string(ws.lcore));
    }
    if (total) {
        heads.emplace_back("total");
    }
    size_t name_w = std::string("drop reason").size();
    size_t num_w = 12;
    for (Row& r : rows) {
        name_w = std::max(name_w, r.name.size() + 2);
        if (total) {
            uint64_t t = 0;
            for (uint64_t v : r.values) {
                t += v;
            }
            r.values.push_back(t);
        }
        for (uint64_t v : r.values) {
            num_w = std::max(num_w, std::to_string(v).size() + 1);
        }
    }
    for (const std::string& h : heads) {
        num_w = std::max(num_w, h.size() + 1);
    }
    std::string out = "Workers: " + std::to_string(w.workers.size()) + ", mbufs in use " +
                      std::to_string(w.mbufs_in_use) + " of " + std::to_string(w.mbufs_total) +
                      "\n";
    auto head = [&](const std::string& first) {
        out += pad_right(first, name_w);
        for (const std::string& h : heads) {
            out += pad_left(h, num_w);
        }
        out += "\n";
    };
    head("counter");
    for (size_t i = 0; i < rows.size(); ++i) {
        if (i == first_drop) {
            head("drop reason");
        }
        out += pad_right("  " + rows[i].name, name_w);
        for (uint64_t v : rows[i].values) {
            out += pad_left(std::to_string(v), num_w);
        }
        out += "\n";
    }
    if (first_drop == rows.size()) {
        head("drop reason");
    }
    out += format_ports(w.ports);
    return out;
}

std::string json_list(const Status& status, const ListOptions& opts) {
    Json services = Json::array();
    for (const ServiceStatus* s : select_services(status, opts)) {
        Json reals = Json::array();
        for (const RealStatus* r : select_reals(*s, opts.sort)) {
            reals.push_back(Json{
                {"address", format_addr(r->addr)},
                {"port", r->port},
                {"forward", forward_name(r->forward)},
                {"weight", r->weight},
                {"u_threshold", r->u_threshold},
                {"l_threshold", r->l_threshold},
                {"overloaded", r->overloaded},
                {"active_conns", r->active},
                {"inactive_conns", r->inactive},
                {"persistent_conns", r->persist},
                {"stats", Json{{"conns", r->conns},
                               {"in_pkts", r->in_pkts},
                               {"out_pkts", r->out_pkts},
                               {"in_bytes", r->in_bytes},
                               {"out_bytes", r->out_bytes}}},
                {"rates", rates_json(r->rates)},
            });
        }
        services.push_back(Json{
            {"protocol", proto_name(s->proto)},
            {"address", format_addr(s->vip)},
            {"port", s->port},
            {"scheduler", s->scheduler},
            {"sched_flags", flags_json(s->sched_flags)},
            {"persistent", s->persistence},
            {"netmask", format_addr(s->persist_mask)},
            {"stats", Json{{"conns", s->conns},
                           {"in_pkts", s->in_pkts},
                           {"out_pkts", s->out_pkts},
                           {"in_bytes", s->in_bytes},
                           {"out_bytes", s->out_bytes}}},
            {"rates", rates_json(s->rates)},
            {"reals", std::move(reals)},
        });
    }
    Json doc;
    if (!opts.service) {
        doc["version"] = "1.2.1";
        doc["size"] = status.conn_capacity;
    }
    doc["services"] = std::move(services);
    return dump(doc);
}

// The document of json_connections, {"total": N, "connections": [...]}, written as dump() would
// write it whole (2-space indentation, the entries at the second level), an entry at a time.
std::string json_conns_head(uint64_t total) {
    return "{\n  \"total\": " + std::to_string(total) + ",\n  \"connections\": [";
}

// A string as dump() writes it: plain ASCII as it is, anything else through nlohmann.
void append_json_string(std::string& out, const std::string& s) {
    const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
        return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
    });
    if (plain) {
        out.push_back('"');
        out += s;
        out.push_back('"');
    } else {
        out += Json(s).dump(-1, ' ', false, Json::error_handler_t::replace);
    }
}

void append_json_conn(std::string& out, const ConnEntry& e, bool first) {
    out += first ? "\n    {" : ",\n    {";
    auto key = [&out](const char* k) {
        out += out.back() == '{' ? "\n      \"" : ",\n      \"";
        out += k;
        out += "\": ";
    };
    key("protocol");
    append_json_string(out, proto_name(e.proto));
    key("expire");
    out += std::to_string(e.expire_s);
    key("state");
    append_json_string(out, e.state);
    key("template");
    out += e.is_template ? "true" : "false";
    key("source");
    append_json_string(out, format_addr(e.client));
    key("source_port");
    out += std::to_string(e.cport);
    key("virtual");
    append_json_string(out, format_addr(e.vip));
    key("virtual_port");
    out += std::to_string(e.vport);
    key("destination");
    append_json_string(out, format_addr(e.real));
    key("destination_port");
    out += std::to_string(e.rport);
    key("forward");
    append_json_string(out, forward_name(e.forward));
    out += "\n    }";
}

std::string json_conns_tail(bool empty) { return empty ? "]\n}\n" : "\n  ]\n}\n"; }

std::string json_connections(const Connections& conns) {
    std::string out = json_conns_head(conns.total);
    for (size_t i = 0; i < conns.entries.size(); ++i) {
        append_json_conn(out, conns.entries[i], i == 0);
    }
    return out + json_conns_tail(conns.entries.empty());
}

std::string json_timeout(const Status& status) {
    return dump(Json{{"tcp", status.tcp_timeout},
                     {"tcpfin", status.tcpfin_timeout},
                     {"udp", status.udp_timeout}});
}

std::string json_workers(const Workers& w) {
    Json workers = Json::array();
    for (const WorkerStatus& ws : w.workers) {
        Json counters = Json::object();
        for (const auto& [name, value] : ws.counters) {
            counters[name] = value;
        }
        Json drops = Json::object();
        for (const auto& [name, value] : ws.drops) {
            drops[name] = value;
        }
        workers.push_back(Json{
            {"lcore", ws.lcore},
            {"rx", ws.rx},
            {"tx", ws.tx},
            {"redirected_out", ws.redirected_out},
            {"redirected_in", ws.redirected_in},
            {"conns_created", ws.conns_created},
            {"conns_expired", ws.conns_expired},
            {"conns_in_table", ws.conns_in_table},
            {"table_capacity", ws.table_capacity},
            {"counters", std::move(counters)},
            {"drops", std::move(drops)},
        });
    }
    Json ports = Json::array();
    for (const PortStatus& p : w.ports) {
        ports.push_back(Json{
            {"port", p.port},
            {"name", p.name},
            {"ipackets", p.ipackets},
            {"opackets", p.opackets},
            {"ibytes", p.ibytes},
            {"obytes", p.obytes},
            {"imissed", p.imissed},
            {"ierrors", p.ierrors},
            {"rx_nombuf", p.rx_nombuf},
            {"rx_ring_drops", p.rx_ring_drops},
            {"rx_lost", p.rx_lost()},
            {"oerrors", p.oerrors},
        });
    }
    return dump(Json{{"mbufs_total", w.mbufs_total},
                     {"mbufs_in_use", w.mbufs_in_use},
                     {"workers", std::move(workers)},
                     {"ports", std::move(ports)}});
}

std::string usage_text() {
    return version_text() +
           "Usage:\n"
           "  lbctl -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [-b "
           "sched-flags]\n"
           "  lbctl -D virtual-service\n"
           "  lbctl -C\n"
           "  lbctl -R\n"
           "  lbctl -S [-n]\n"
           "  lbctl -a|e virtual-service -r server-address [options]\n"
           "  lbctl -d virtual-service -r server-address\n"
           "  lbctl -L|l [virtual-service] [options]\n"
           "  lbctl -Z [virtual-service]\n"
           "  lbctl --set tcp tcpfin udp\n"
           "  lbctl --reload\n"
           "  lbctl --workers [--json]\n"
           "  lbctl --write-config [file]\n"
           "  lbctl -h|--help\n"
           "  lbctl -v|--version\n"
           "Every form takes --socket PATH.\n"
           "\n"
           "lbctl is ipvsadm for lb: it takes ipvsadm's command line, sends each change to a\n"
           "running lb over its control socket (all of it at once: lb applies it whole or not\n"
           "at all) and prints what ipvsadm would print for lb's table. Without a command it\n"
           "lists the table, like ipvsadm.\n"
           "\n"
           "Commands:\n"
           "Either long or short options are allowed.\n"
           "  --add-service     -A        add virtual service with options\n"
           "  --edit-service    -E        edit virtual service with options (the whole\n"
           "                              service: what is not given takes the default)\n"
           "  --delete-service  -D        delete virtual service\n"
           "  --clear           -C        clear the whole table\n"
           "  --restore         -R        restore rules from stdin: lines of -S output or of\n"
           "                              any of -A -E -D -C -a -e -d -Z --set, `#' comments\n"
           "                              and blank lines skipped; one change, all or nothing\n"
           "  --save            -S        save rules to stdout (-A and -a lines that -R reads)\n"
           "  --add-server      -a        add real server with options\n"
           "  --edit-server     -e        edit real server with options (the whole real)\n"
           "  --delete-server   -d        delete real server\n"
           "  --list            -L|-l     list the table\n"
           "  --zero            -Z        zero counters in a service or all services\n"
           "  --set tcp tcpfin udp        set connection timeout values (seconds, 0 = keep)\n"
           "  --help            -h        display this help message\n"
           "  --version         -v        display the version\n"
           "\n"
           "lbctl's own commands:\n"
           "  --reload                    lb re-reads its config file and applies what changed\n"
           "                              (like SIGHUP); a bad file is refused with the\n"
           "                              reason, and the running config stays\n"
           "  --workers                   per-worker counters (packets, redirections,\n"
           "                              connections, table use) and drop reasons, and the\n"
           "                              mbuf pool\n"
           "  --write-config [file]       lb writes its running config, with the changes made\n"
           "                              since it started, as a config file: to file (made\n"
           "                              absolute here), or over the file it was started with\n"
           "\n"
           "virtual-service:\n"
           "  --tcp-service|-t  service-address   service-address is ip[:port], numeric IPv4\n"
           "  --udp-service|-u  service-address   service-address is ip[:port], numeric IPv4\n"
           "\n"
           "Options:\n"
           "  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|sed|nq|sh|dh|mh|fo|ovf,\n"
           "                                      the default scheduler is wlc.\n"
           "  --persistent   -p [timeout]         persistent service (default timeout 360 s)\n"
           "  --netmask      -M netmask           persistent granularity mask\n"
           "  --sched-flags  -b flags             scheduler flags (comma-separated):\n"
           "                                      sh-fallback, sh-port (sh), mh-fallback,\n"
           "                                      mh-port (mh); flag-1 = fallback, flag-2 = port\n"
           "  --real-server  -r server-address    server-address is ip[:port] (default port: the\n"
           "                                      service's; -g and -i always use it)\n"
           "  --gatewaying   -g                   gatewaying (direct routing) (default)\n"
           "  --ipip         -i                   ipip encapsulation (tunneling)\n"
           "  --masquerading -m                   masquerading (NAT)\n"
           "  --tun-type      type                ipip (the only tunnel type of lb)\n"
           "  --weight       -w weight            capacity of real server (0..65535, default 1)\n"
           "  --u-threshold  -x uthreshold        upper threshold of connections\n"
           "  --l-threshold  -y lthreshold        lower threshold of connections\n"
           "  --connection   -c                   output of current IPVS connections\n"
           "  --timeout                           output of timeout (tcp tcpfin udp)\n"
           "  --daemon                            output of daemon information (lb has none)\n"
           "  --stats                             output of statistics information\n"
           "  --rate                              output of rate information\n"
           "  --exact        -X                   expand numbers (display exact values)\n"
           "  --thresholds                        output of thresholds information\n"
           "  --persistent-conn                   output of persistent connection info\n"
           "  --tun-info                          output of tunnel information\n"
           "  --nosort                            disable sorting output of service/server "
           "entries\n"
           "  --sort                              does nothing, for backwards compatibility\n"
           "  --numeric      -n                   numeric output of addresses and ports (always\n"
           "                                      on: lbctl never resolves names)\n"
           "\n"
           "lbctl's own options:\n"
           "  --json                              with -L (any listing: the table, --stats,\n"
           "                                      --rate, -c, --timeout...) and --workers: one\n"
           "                                      JSON document with every field instead\n"
           "  --socket PATH                       lb's control socket (default: $LB_SOCKET if\n"
           "                                      set, else /run/lb/lb.sock)\n"
           "\n"
           "Not supported (lb has no such thing): -f fwmark and --sctp-service services, -6,\n"
           "--ops, --pe, tunnel types other than ipip, --start-daemon and --stop-daemon.\n"
           "\n"
           "Exit status: 0 on success, 1 if lb cannot be reached or refuses the request,\n"
           "2 on a usage error.\n";
}

std::string version_text() {
    return "lbctl v0.1.0 (lb control protocol v" + std::to_string(kProtoVersion) +
           ", ipvsadm v1.31 command line and listings, IPVS v1.2.1)\n";
}

}  // namespace lb::ctl
