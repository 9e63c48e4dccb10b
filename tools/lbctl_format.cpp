// lbctl's command line parser and ipvsadm-compatible listings. The formats reproduce ipvsadm
// 1.26's `ipvsadm -L -n [--stats] [--exact]` byte for byte, trailing blanks included, so that
// scripts written against ipvsadm's output keep working.
#include "tools/lbctl_format.hpp"

#include <algorithm>
#include <string_view>
#include <tuple>

namespace lb::ctl {

namespace {

enum class ArgKind : uint8_t { None, Required, Optional };

struct OptionSpec {
    const char* long_name;
    char short_name;  // 0: long only
    ArgKind arg;
    bool is_command;
    Command command;  // when is_command
    Opt opt;          // otherwise
};

constexpr OptionSpec cmd(const char* l, char s, Command c, ArgKind a = ArgKind::None) {
    return {l, s, a, true, c, Opt::Count};
}
constexpr OptionSpec opt(const char* l, char s, Opt o, ArgKind a = ArgKind::None) {
    return {l, s, a, false, Command::None, o};
}

// ipvsadm's popt table (ipvsadm.c, parse_options), plus --socket.
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
    cmd("reload", 0, Command::Reload),
    cmd("help", 'h', Command::Help),
    cmd("version", 'v', Command::Version),
    cmd("restore", 'R', Command::Restore),
    cmd("save", 'S', Command::Save),
    cmd("start-daemon", 0, Command::StartDaemon, ArgKind::Required),
    cmd("stop-daemon", 0, Command::StopDaemon, ArgKind::Required),
    opt("tcp-service", 't', Opt::TcpService, ArgKind::Required),
    opt("udp-service", 'u', Opt::UdpService, ArgKind::Required),
    opt("fwmark-service", 'f', Opt::FwmarkService, ArgKind::Required),
    opt("scheduler", 's', Opt::Scheduler, ArgKind::Required),
    opt("persistent", 'p', Opt::Persistent, ArgKind::Optional),
    opt("netmask", 'M', Opt::Netmask, ArgKind::Required),
    opt("real-server", 'r', Opt::RealServer, ArgKind::Required),
    opt("masquerading", 'm', Opt::Masquerading),
    opt("ipip", 'i', Opt::Ipip),
    opt("gatewaying", 'g', Opt::Gatewaying),
    opt("weight", 'w', Opt::Weight, ArgKind::Required),
    opt("u-threshold", 'x', Opt::UThreshold, ArgKind::Required),
    opt("l-threshold", 'y', Opt::LThreshold, ArgKind::Required),
    opt("numeric", 'n', Opt::Numeric),
    opt("connection", 'c', Opt::Connection),
    opt("mcast-interface", 0, Opt::McastInterface, ArgKind::Required),
    opt("syncid", 0, Opt::SyncId, ArgKind::Required),
    opt("timeout", 0, Opt::Timeout),
    opt("daemon", 0, Opt::Daemon),
    opt("stats", 0, Opt::Stats),
    opt("rate", 0, Opt::Rate),
    opt("thresholds", 0, Opt::Thresholds),
    opt("persistent-conn", 0, Opt::PersistentConn),
    opt("nosort", 0, Opt::NoSort),
    opt("sort", 0, Opt::Sort),
    opt("exact", 'X', Opt::Exact),
    opt("ipv6", '6', Opt::Ipv6),
    opt("ops", 'o', Opt::Ops),
    opt("pe", 0, Opt::Pe, ArgKind::Required),
    opt("socket", 0, Opt::Socket, ArgKind::Required),
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

// The three service options count as one, as in ipvsadm.
bool is_service_opt(Opt o) {
    return o == Opt::TcpService || o == Opt::UdpService || o == Opt::FwmarkService;
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
    if (is_service_opt(spec.opt)) {
        for (Opt o : {Opt::TcpService, Opt::UdpService, Opt::FwmarkService}) {
            if (a.has(o)) {
                throw UsageError("multiple service-address options specified (" + a.spelled(o) +
                                 " and " + spelled + ")");
            }
        }
    }
    if (a.has(spec.opt)) {
        throw UsageError("multiple " + spelled + " options specified");
    }
    a.opts[size_t(spec.opt)] = std::move(value);
    a.opt_names[size_t(spec.opt)] = spelled;
}

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

std::string pad_right(std::string s, size_t width) {
    if (s.size() < width) {
        s.append(width - s.size(), ' ');
    }
    return s;
}

std::string pad_left(const std::string& s, size_t width) {
    return s.size() < width ? std::string(width - s.size(), ' ') + s : s;
}

std::string service_name(const ServiceStatus& svc) {
    // ipvsadm: "%s  %s" of the protocol and address, cut at 33 characters for IPv4.
    std::string name = std::string(svc.proto == 6 ? "TCP" : "UDP") + "  " +
                       format_addr_port(svc.vip, svc.port);
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

void append_service(std::string& out, const ServiceStatus& svc, const ListOptions& opts) {
    std::vector<const RealStatus*> reals;
    reals.reserve(svc.reals.size());
    for (const RealStatus& rs : svc.reals) {
        reals.push_back(&rs);
    }
    if (opts.sort) {
        std::stable_sort(reals.begin(), reals.end(), [](const RealStatus* a, const RealStatus* b) {
            return std::tie(a->addr, a->port) < std::tie(b->addr, b->port);
        });
    }
    if (opts.stats) {
        out += pad_right(service_name(svc), 33);
        for (uint64_t v : {svc.conns, svc.in_pkts, svc.out_pkts, svc.in_bytes, svc.out_bytes}) {
            out += format_number(v, opts.exact);
        }
        out += '\n';
        for (const RealStatus* rs : reals) {
            out += "  -> " + pad_right(real_name(*rs), 28);
            for (uint64_t v : {rs->conns, rs->in_pkts, rs->out_pkts, rs->in_bytes, rs->out_bytes}) {
                out += format_number(v, opts.exact);
            }
            out += '\n';
        }
        return;
    }
    out += service_name(svc) + " " + svc.scheduler;
    if (!svc.sched_flags.empty()) {
        out += " (" + svc.sched_flags + ")";
    }
    if (svc.persistence != 0) {
        out += " persistent " + std::to_string(svc.persistence);
        if (svc.persist_mask != 0xFFFFFFFF) {
            out += " mask " + format_addr(svc.persist_mask);
        }
    }
    out += '\n';
    for (const RealStatus* rs : reals) {
        // ipvsadm: "  -> %-28s %-7s %-6d %-10u %-10u\n"
        out += "  -> " + pad_right(real_name(*rs), 28) + " " +
               pad_right(forward_name(rs->forward), 7) + " " +
               pad_right(std::to_string(rs->weight), 6) + " " +
               pad_right(std::to_string(rs->active), 10) + " " +
               pad_right(std::to_string(rs->inactive), 10) + "\n";
    }
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

std::optional<std::pair<uint32_t, uint16_t>> parse_addr_port(const std::string& s) {
    const size_t colon = s.find(':');
    const std::string_view host = std::string_view(s).substr(0, colon);
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
    uint32_t port = 0;
    if (colon != std::string::npos && !parse_u32(std::string_view(s).substr(colon + 1), 65535, port)) {
        return std::nullopt;
    }
    return std::make_pair(addr, static_cast<uint16_t>(port));
}

ListOptions list_options(const Args& a) {
    if (a.command != Command::List) {
        throw UsageError("no list command given");
    }
    ListOptions lo;
    for (size_t i = 0; i < size_t(Opt::Count); ++i) {
        if (!a.opts[i]) {
            continue;
        }
        const auto o = static_cast<Opt>(i);
        const std::string& name = a.opt_names[i];
        switch (o) {
            case Opt::Numeric:  // lbctl never resolves names: -L is always -L -n
            case Opt::Sort:
            case Opt::Socket:
                break;
            case Opt::Stats:
                lo.stats = true;
                break;
            case Opt::Exact:
                lo.exact = true;
                break;
            case Opt::NoSort:
                lo.sort = false;
                break;
            case Opt::TcpService:
            case Opt::UdpService: {
                const auto ap = parse_addr_port(*a.opts[i]);
                if (!ap) {
                    throw UsageError("illegal virtual server address[:port] specified: " +
                                     *a.opts[i] + " (lbctl takes a numeric IPv4 address)");
                }
                lo.service = ServiceKey{uint8_t(o == Opt::TcpService ? 6 : 17), ap->first,
                                        ap->second};
                break;
            }
            // ipvsadm accepts these with -L; lbctl does not implement them yet.
            case Opt::FwmarkService:
            case Opt::Connection:
            case Opt::Timeout:
            case Opt::Daemon:
            case Opt::Rate:
            case Opt::Thresholds:
            case Opt::PersistentConn:
                throw UsageError(name + " is not supported yet");
            default:
                throw UsageError("illegal option " + name + " with the list command (" +
                                 a.command_name + ")");
        }
    }
    if (!a.operands.empty()) {
        throw UsageError("unexpected argument " + a.operands.front());
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
    if (opts.sort) {
        std::stable_sort(services.begin(), services.end(),
                         [](const ServiceStatus* a, const ServiceStatus* b) {
                             return std::tie(a->proto, a->vip, a->port) <
                                    std::tie(b->proto, b->vip, b->port);
                         });
    }
    std::string out;
    if (!opts.service) {
        out += "IP Virtual Server version 1.2.1 (size=" + std::to_string(status.conn_capacity) +
               ")\n";
    }
    if (opts.stats) {
        out += pad_right("Prot LocalAddress:Port", 33);
        for (const char* h : {"Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"}) {
            out += " " + pad_left(h, 8);
        }
        out += "\n  -> RemoteAddress:Port\n";
    } else {
        out +=
            "Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
    }
    for (const ServiceStatus* svc : services) {
        append_service(out, *svc, opts);
    }
    return out;
}

std::string usage_text() {
    return version_text() +
           "Usage:\n"
           "  lbctl [--socket PATH] [-L|-l] [-n] [--stats] [--exact] [--nosort]\n"
           "        [-t|u service-address]\n"
           "  lbctl [--socket PATH] --reload\n"
           "  lbctl -h|--help\n"
           "  lbctl -v|--version\n"
           "\n"
           "lbctl talks to a running lb over its control socket and prints what ipvsadm would\n"
           "print for the same table. Without a command it lists the table, like ipvsadm.\n"
           "\n"
           "Commands:\n"
           "  --list            -L|-l     list the table (addresses and ports are always\n"
           "                              numeric: -L is -L -n)\n"
           "  --reload                    lb re-reads its config file and applies what changed\n"
           "                              (like SIGHUP); a bad file is refused with the\n"
           "                              reason, and the running config stays\n"
           "  --help            -h        display this help message\n"
           "  --version         -v        display the version\n"
           "\n"
           "Options:\n"
           "  --socket PATH               lb's control socket (default: $LB_SOCKET if set,\n"
           "                              else /run/lb/lb.sock)\n"
           "  --numeric         -n        numeric output of addresses and ports (always on)\n"
           "  --stats                     output of statistics information\n"
           "  --exact           -X        expand numbers (display exact values)\n"
           "  --nosort                    disable sorting output of service/server entries\n"
           "  --sort                      does nothing, for backwards compatibility\n"
           "  --tcp-service  -t service-address   list only this service; service-address is\n"
           "  --udp-service  -u service-address   a numeric IPv4 address[:port]\n"
           "\n"
           "Not supported yet: the other ipvsadm commands (-A -E -D -C -R -S -a -e -d -Z --set\n"
           "--start-daemon --stop-daemon) and the list options -f -c --timeout --daemon --rate\n"
           "--thresholds --persistent-conn.\n"
           "\n"
           "Exit status: 0 on success, 1 if lb cannot be reached or reports an error,\n"
           "2 on a usage error.\n";
}

std::string version_text() {
    return "lbctl v0.1.0 (lb control protocol v" + std::to_string(kProtoVersion) +
           ", ipvsadm v1.26 compatible listings, IPVS v1.2.1)\n";
}

}  // namespace lb::ctl
