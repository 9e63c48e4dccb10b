// Prometheus text exposition of the status and the workers' counters, and the metrics listen
// spec. The HTTP server that serves it is in metrics_server.cpp.
#include "control/metrics.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>
#include <vector>

#include "control/config.hpp"

namespace lb::ctl {

// ---------------------------------------------------------------------------------------------
// Text exposition
// ---------------------------------------------------------------------------------------------

namespace {

// Appends `v` as a Prometheus label value: backslash, double quote and line feed escaped.
void append_escaped(std::string& out, std::string_view v, bool quote) {
    for (const char c : v) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '"' && quote) {
            out += "\\\"";
        } else {
            out += c;
        }
    }
}

// Labels as the text between the braces, built one pair at a time.
class Labels {
public:
    Labels() = default;
    Labels& add(std::string_view name, std::string_view value) {
        if (!text_.empty()) {
            text_ += ',';
        }
        text_ += name;
        text_ += "=\"";
        append_escaped(text_, value, true);
        text_ += '"';
        return *this;
    }
    Labels with(std::string_view name, std::string_view value) const {
        Labels l = *this;
        l.add(name, value);
        return l;
    }
    const std::string& text() const noexcept { return text_; }

private:
    std::string text_;
};

class Exposition {
public:
    explicit Exposition(size_t reserve) { out_.reserve(reserve); }

    // HELP and TYPE of a family; its samples must follow before the next family starts.
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        append_escaped(out_, help, false);
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    void sample(std::string_view name, const Labels& labels, uint64_t v) {
        head(name, labels);
        std::array<char, 24> buf;
        const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
        out_.append(buf.data(), r.ptr);
        out_ += '\n';
    }

    void sample(std::string_view name, const Labels& labels, double v) {
        head(name, labels);
        if (std::isnan(v)) {
            out_ += "NaN";
        } else if (std::isinf(v)) {
            out_ += v > 0 ? "+Inf" : "-Inf";
        } else if (v == std::trunc(v) && std::fabs(v) < 0x1p53) {
            // whole numbers as integers: 1700000000 rather than to_chars' 1.7e+09
            std::array<char, 24> buf;
            const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), int64_t(v));
            out_.append(buf.data(), r.ptr);
        } else {
            std::array<char, 32> buf;
            const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
            out_.append(buf.data(), r.ptr);
        }
        out_ += '\n';
    }

    // A family with one sample.
    template <typename T>
    void single(std::string_view name, std::string_view type, std::string_view help, T v) {
        family(name, type, help);
        sample(name, Labels{}, v);
    }

    std::string take() { return std::move(out_); }

private:
    void head(std::string_view name, const Labels& labels) {
        out_ += name;
        if (!labels.text().empty()) {
            out_ += '{';
            out_ += labels.text();
            out_ += '}';
        }
        out_ += ' ';
    }

    std::string out_;
};

constexpr std::string_view kCounter = "counter";
constexpr std::string_view kGauge = "gauge";

std::string proto_name(uint8_t proto) {
    switch (proto) {
    case 6:
        return "tcp";
    case 17:
        return "udp";
    default:
        return std::to_string(proto);
    }
}

// dp::Forward, named the way ipvsadm shows it (Masq / Tunnel / Route), in lower case.
std::string forward_label(uint8_t forward) {
    switch (forward) {
    case 0:
        return "masq";
    case 1:
        return "tunnel";
    case 2:
        return "route";
    default:
        return std::to_string(forward);
    }
}

Labels service_labels(const ServiceStatus& s) {
    Labels l;
    l.add("protocol", proto_name(s.proto))
        .add("vip", format_ipv4(s.vip))
        .add("port", std::to_string(s.port));
    return l;
}

Labels real_labels(const Labels& svc, const RealStatus& r) {
    Labels l = svc;
    l.add("real", format_ipv4(r.addr))
        .add("real_port", std::to_string(r.port))
        .add("forward", forward_label(r.forward));
    return l;
}

template <typename T>
struct Field {
    std::string_view name;
    std::string_view type;
    std::string_view help;
    uint64_t (*get)(const T&);
};

// Traffic counters and rates shared by services and reals: `what` is "service" or "real".
template <typename T>
constexpr std::array<Field<T>, 10> traffic_fields() {
    return {{
        {"connections_total", kCounter, "Connections scheduled since it was added or zeroed.",
         [](const T& v) { return v.conns; }},
        {"in_packets_total", kCounter, "Packets from clients (inbound).",
         [](const T& v) { return v.in_pkts; }},
        {"out_packets_total", kCounter,
         "Packets from real servers to clients (outbound; 0 with tunnel and route, whose "
         "replies bypass lb).",
         [](const T& v) { return v.out_pkts; }},
        {"in_bytes_total", kCounter, "Bytes from clients (inbound).",
         [](const T& v) { return v.in_bytes; }},
        {"out_bytes_total", kCounter, "Bytes from real servers to clients (outbound).",
         [](const T& v) { return v.out_bytes; }},
        {"rate_connections_per_second", kGauge,
         "Connection rate, per second (IPVS estimator: EWMA over 2-second samples).",
         [](const T& v) { return v.rates.cps; }},
        {"rate_in_packets_per_second", kGauge, "Inbound packet rate, per second (EWMA).",
         [](const T& v) { return v.rates.inpps; }},
        {"rate_out_packets_per_second", kGauge, "Outbound packet rate, per second (EWMA).",
         [](const T& v) { return v.rates.outpps; }},
        {"rate_in_bytes_per_second", kGauge, "Inbound byte rate, per second (EWMA).",
         [](const T& v) { return v.rates.inbps; }},
        {"rate_out_bytes_per_second", kGauge, "Outbound byte rate, per second (EWMA).",
         [](const T& v) { return v.rates.outbps; }},
    }};
}

uint64_t sum_reals(const ServiceStatus& s, uint64_t RealStatus::*m) {
    uint64_t t = 0;
    for (const RealStatus& r : s.reals) {
        t += r.*m;
    }
    return t;
}

void render_services(Exposition& e, const Status& st) {
    std::vector<Labels> svc;
    svc.reserve(st.services.size());
    for (const ServiceStatus& s : st.services) {
        svc.push_back(service_labels(s));
    }

    e.family("lb_service_info", kGauge,
             "Virtual service, always 1: scheduler and flags (ipvsadm's names) as labels.");
    for (size_t i = 0; i < st.services.size(); ++i) {
        const ServiceStatus& s = st.services[i];
        e.sample("lb_service_info",
                 svc[i].with("scheduler", s.scheduler).with("flags", s.sched_flags), uint64_t(1));
    }
    e.family("lb_service_persistence_seconds", kGauge,
             "Persistence timeout of the service in seconds, 0 when not persistent.");
    for (size_t i = 0; i < st.services.size(); ++i) {
        e.sample("lb_service_persistence_seconds", svc[i], uint64_t(st.services[i].persistence));
    }
    e.family("lb_service_reals", kGauge, "Real servers of the service.");
    for (size_t i = 0; i < st.services.size(); ++i) {
        e.sample("lb_service_reals", svc[i], uint64_t(st.services[i].reals.size()));
    }

    std::string name;
    for (const Field<ServiceStatus>& f : traffic_fields<ServiceStatus>()) {
        name = "lb_service_";
        name += f.name;
        e.family(name, f.type, std::string("Service: ") + std::string(f.help));
        for (size_t i = 0; i < st.services.size(); ++i) {
            e.sample(name, svc[i], f.get(st.services[i]));
        }
    }

    struct Sum {
        std::string_view name, help;
        uint64_t RealStatus::*member;
    };
    static constexpr std::array<Sum, 3> kSums = {{
        {"lb_service_active_connections",
         "Active connections (TCP ESTABLISHED) over the service's real servers.",
         &RealStatus::active},
        {"lb_service_inactive_connections",
         "Inactive connections (other TCP states, UDP) over the service's real servers.",
         &RealStatus::inactive},
        {"lb_service_persistent_templates",
         "Persistence templates (client -> real affinities) over the service's real servers.",
         &RealStatus::persist},
    }};
    for (const Sum& f : kSums) {
        e.family(f.name, kGauge, f.help);
        for (size_t i = 0; i < st.services.size(); ++i) {
            e.sample(f.name, svc[i], sum_reals(st.services[i], f.member));
        }
    }

    // Reals, labelled with their service.
    std::vector<std::pair<const RealStatus*, Labels>> reals;
    for (size_t i = 0; i < st.services.size(); ++i) {
        for (const RealStatus& r : st.services[i].reals) {
            reals.emplace_back(&r, real_labels(svc[i], r));
        }
    }
    for (const Field<RealStatus>& f : traffic_fields<RealStatus>()) {
        name = "lb_real_";
        name += f.name;
        e.family(name, f.type, std::string("Real server: ") + std::string(f.help));
        for (const auto& [r, l] : reals) {
            e.sample(name, l, f.get(*r));
        }
    }
    static constexpr std::array<Field<RealStatus>, 6> kRealGauges = {{
        {"lb_real_active_connections", kGauge, "Active connections (TCP ESTABLISHED).",
         [](const RealStatus& r) { return r.active; }},
        {"lb_real_inactive_connections", kGauge, "Inactive connections (other TCP states, UDP).",
         [](const RealStatus& r) { return r.inactive; }},
        {"lb_real_persistent_templates", kGauge,
         "Persistence templates (client -> real affinities) pointing at the real server.",
         [](const RealStatus& r) { return r.persist; }},
        {"lb_real_weight", kGauge, "Scheduling weight (0: quiesced, takes no new connections).",
         [](const RealStatus& r) { return uint64_t(r.weight); }},
        {"lb_real_upper_threshold", kGauge,
         "Connection upper threshold (ipvsadm -x), 0 when there is none.",
         [](const RealStatus& r) { return uint64_t(r.u_threshold); }},
        {"lb_real_overloaded", kGauge,
         "1 while the real server is over its upper threshold and takes no new connections.",
         [](const RealStatus& r) { return uint64_t(r.overloaded ? 1 : 0); }},
    }};
    for (const Field<RealStatus>& f : kRealGauges) {
        e.family(f.name, f.type, f.help);
        for (const auto& [r, l] : reals) {
            e.sample(f.name, l, f.get(*r));
        }
    }
}

// Known "other" worker counters; any other name gets a generic HELP.
// The neigh_* counts are the control thread's (reported with worker 0).
constexpr std::array<std::pair<std::string_view, std::string_view>, 23> kCounterHelp = {{
    {"arp_replies", "ARP replies sent for the director's addresses and VIPs."},
    {"icmp_echo_replies", "ICMP echo replies sent (ping of the director's addresses and VIPs)."},
    {"icmp_errors_translated", "ICMP errors about tracked connections forwarded, translated."},
    {"tunnel_encapsulated", "Packets sent to tunnel real servers inside IP-in-IP."},
    {"tunnel_fragments", "Outer IP-in-IP fragments sent (packets too big for the tunnel MTU)."},
    {"frag_needed_sent",
     "ICMP fragmentation-needed errors sent (DF packets over a tunnel's or NAT's egress MTU)."},
    {"nat_fragments", "IP fragments sent for NAT packets without DF over the egress MTU."},
    {"consumed", "Packets the director answered or handled itself rather than forwarding."},
    {"frag_notes_evicted", "Fragment notes of live datagrams replaced by newer ones (a flood)."},
    {"resets_sent", "RSTs sent for TCP segments of no connection (connections.reset_unknown)."},
    {"resets_limited", "TCP segments of no connection dropped over the RST rate limit."},
    {"tcp_probes", "Probes sent to see whether a RST or a client's FIN was taken."},
    {"tcp_refuted", "RSTs and FINs not taken by their receiver: the connection was kept."},
    {"neigh_learned", "Neighbour entries created from ARP requests or answers to lb's probes."},
    {"neigh_mac_changes", "Neighbour MAC changes, each confirmed by lb's own ARP probe."},
    {"neigh_claims_refused",
     "ARP replies or requests naming another MAC for a known neighbour, refused (verified)."},
    {"neigh_unsolicited", "ARP replies lb did not ask for, ignored."},
    {"neigh_refused_senders",
     "ARP from lb's own addresses, VIPs, broadcast, network or off-link senders, ignored."},
    {"neigh_reclaimed", "Neighbour entries removed: unused, or no answer to lb's probes."},
    {"neigh_evicted", "Unused neighbour entries removed to make room for new ones."},
    {"neigh_full", "Neighbour entries that could not be created (table full)."},
    {"neigh_probes_sent", "ARP requests lb sent to resolve or verify neighbours."},
    {"neigh_probes_limited", "ARP probes postponed by the probe rate limit (100 a second)."},
}};

std::string metric_name_part(std::string_view s) {
    std::string out;
    for (const char c : s) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        out += ok ? c : '_';
    }
    return out;
}

// The DPDK ports: rte_eth_stats_get's counters and the kernel's drops in front of af_packet.
void render_ports(Exposition& e, const std::vector<PortStatus>& ports) {
    if (ports.empty()) {
        return;
    }
    static constexpr std::array<Field<PortStatus>, 9> kPort = {{
        {"lb_port_rx_packets_total", kCounter, "Frames the port delivered to the workers.",
         [](const PortStatus& p) { return p.ipackets; }},
        {"lb_port_tx_packets_total", kCounter, "Frames the port sent.",
         [](const PortStatus& p) { return p.opackets; }},
        {"lb_port_rx_bytes_total", kCounter, "Bytes the port delivered to the workers.",
         [](const PortStatus& p) { return p.ibytes; }},
        {"lb_port_tx_bytes_total", kCounter, "Bytes the port sent.",
         [](const PortStatus& p) { return p.obytes; }},
        {"lb_port_rx_missed_total", kCounter,
         "Frames the port dropped because its receive queue was full (imissed).",
         [](const PortStatus& p) { return p.imissed; }},
        {"lb_port_rx_errors_total", kCounter, "Erroneous frames the port received (ierrors).",
         [](const PortStatus& p) { return p.ierrors; }},
        {"lb_port_rx_nombuf_total", kCounter,
         "Receive mbuf allocation failures of the port (rx_nombuf).",
         [](const PortStatus& p) { return p.rx_nombuf; }},
        {"lb_port_rx_ring_drops_total", kCounter,
         "net_af_packet: frames the kernel dropped because the port's receive ring was full.",
         [](const PortStatus& p) { return p.rx_ring_drops; }},
        {"lb_port_tx_errors_total", kCounter, "Frames the port failed to send (oerrors).",
         [](const PortStatus& p) { return p.oerrors; }},
    }};
    std::vector<Labels> pl;
    pl.reserve(ports.size());
    for (const PortStatus& p : ports) {
        pl.push_back(Labels{}.with("port", std::to_string(p.port)).with("device", p.name));
    }
    for (const Field<PortStatus>& f : kPort) {
        e.family(f.name, f.type, f.help);
        for (size_t i = 0; i < ports.size(); ++i) {
            e.sample(f.name, pl[i], f.get(ports[i]));
        }
    }
}

void render_workers(Exposition& e, const Workers& ws, uint32_t status_capacity) {
    std::vector<Labels> wl;
    wl.reserve(ws.workers.size());
    for (const WorkerStatus& w : ws.workers) {
        wl.push_back(Labels{}.with("worker", std::to_string(w.lcore)));
    }
    static constexpr std::array<Field<WorkerStatus>, 6> kFixed = {{
        {"lb_worker_rx_packets_total", kCounter, "Packets the worker received from the ports.",
         [](const WorkerStatus& w) { return w.rx; }},
        {"lb_worker_tx_packets_total", kCounter, "Packets the worker sent on the ports.",
         [](const WorkerStatus& w) { return w.tx; }},
        {"lb_worker_connections_created_total", kCounter,
         "Connection entries (and persistence templates) the worker created.",
         [](const WorkerStatus& w) { return w.conns_created; }},
        {"lb_worker_connections_expired_total", kCounter,
         "Connection entries (and persistence templates) that timed out in the worker's table.",
         [](const WorkerStatus& w) { return w.conns_expired; }},
        {"lb_worker_conn_table_entries", kGauge,
         "Entries (connections and templates) in the worker's connection table.",
         [](const WorkerStatus& w) { return w.conns_in_table; }},
        {"lb_worker_conn_table_capacity", kGauge, "Size of the worker's connection table.",
         [](const WorkerStatus& w) { return w.table_capacity; }},
    }};
    std::set<std::string, std::less<>> used = {"lb_worker_redirected_packets_total",
                                               "lb_worker_drops_total"};
    for (const Field<WorkerStatus>& f : kFixed) {
        used.emplace(f.name);
        e.family(f.name, f.type, f.help);
        for (size_t i = 0; i < ws.workers.size(); ++i) {
            e.sample(f.name, wl[i], f.get(ws.workers[i]));
        }
    }

    e.family("lb_worker_redirected_packets_total", kCounter,
             "Packets handed to (direction=out) or taken from (direction=in) another worker "
             "that owns their connection.");
    for (size_t i = 0; i < ws.workers.size(); ++i) {
        e.sample("lb_worker_redirected_packets_total", wl[i].with("direction", "out"),
                 ws.workers[i].redirected_out);
        e.sample("lb_worker_redirected_packets_total", wl[i].with("direction", "in"),
                 ws.workers[i].redirected_in);
    }

    e.family("lb_worker_drops_total", kCounter, "Packets the worker dropped, by reason.");
    for (size_t i = 0; i < ws.workers.size(); ++i) {
        for (const auto& [reason, n] : ws.workers[i].drops) {
            e.sample("lb_worker_drops_total", wl[i].with("reason", reason), n);
        }
    }

    // The other counters, one family per name, in the order they first appear.
    std::vector<std::string> names;
    for (const WorkerStatus& w : ws.workers) {
        for (const auto& c : w.counters) {
            if (std::find(names.begin(), names.end(), c.first) == names.end()) {
                names.push_back(c.first);
            }
        }
    }
    for (const std::string& counter : names) {
        std::string part = metric_name_part(counter);
        if (part.size() >= 6 && part.compare(part.size() - 6, 6, "_total") == 0) {
            part.resize(part.size() - 6);
        }
        std::string name = "lb_worker_" + part + "_total";
        if (used.count(name) != 0) {
            name = "lb_worker_counter_" + part + "_total";
        }
        if (!used.insert(name).second) {
            continue;  // two names that differ only in characters a metric name cannot hold
        }
        std::string help = "Worker counter " + counter + ".";
        for (const auto& [known, text] : kCounterHelp) {
            if (known == counter) {
                help = text;
            }
        }
        e.family(name, kCounter, help);
        for (size_t i = 0; i < ws.workers.size(); ++i) {
            for (const auto& [n, v] : ws.workers[i].counters) {
                if (n == counter) {
                    e.sample(name, wl[i], v);
                    break;
                }
            }
        }
    }

    uint64_t entries = 0, capacity = 0;
    for (const WorkerStatus& w : ws.workers) {
        entries += w.conns_in_table;
        capacity += w.table_capacity;
    }
    if (ws.workers.empty()) {
        capacity = status_capacity;
    }
    e.single("lb_conn_table_entries", kGauge,
             "Entries (connections and templates) in all workers' connection tables.", entries);
    e.single("lb_conn_table_capacity", kGauge, "Size of all workers' connection tables together.",
             capacity);
    e.single("lb_mbuf_pool_capacity", kGauge, "Packet buffers (mbufs) in the pool.",
             ws.mbufs_total);
    e.single("lb_mbuf_pool_in_use", kGauge,
             "Packet buffers (mbufs) taken from the pool (in rings, queues, caches, in flight).",
             ws.mbufs_in_use);
    render_ports(e, ws.ports);
}

}  // namespace

std::string render_metrics(const Status& st, const Workers& ws, const MetricsExtra& x) {
    uint64_t n_reals = 0;
    for (const ServiceStatus& s : st.services) {
        n_reals += s.reals.size();
    }
    // Roughly the final size (a sample line of a real is about 150 bytes): growing a string of
    // tens of megabytes step by step costs more than the rendering.
    Exposition e(size_t(n_reals * 20 + st.services.size() * 22) * 150 +
                 ws.workers.size() * 40 * 64 + 16384);
    if (!x.version.empty()) {
        e.family("lb_build_info", kGauge, "Always 1; the lb version as a label.");
        e.sample("lb_build_info", Labels{}.with("version", x.version), uint64_t(1));
    }
    if (x.start_time_seconds != 0) {
        e.single("lb_start_time_seconds", kGauge, "Unix time lb started, in seconds.",
                 x.start_time_seconds);
    }
    e.single("lb_uptime_seconds", kGauge, "Seconds since lb started.", x.uptime_seconds);
    e.single("lb_snapshot_generation", kGauge,
             "Generation of the config snapshot the workers run (grows with every publish).",
             x.snapshot_generation);
    e.family("lb_config_reloads_total", kCounter,
             "Config reloads (SIGHUP, lbctl), by result: ok (applied) or failed (refused, the "
             "running config stayed).");
    e.sample("lb_config_reloads_total", Labels{}.with("result", "ok"), x.reloads_ok);
    e.sample("lb_config_reloads_total", Labels{}.with("result", "failed"), x.reloads_failed);
    e.single("lb_config_last_reload_successful", kGauge,
             "0 while the latest config reload failed, else 1.",
             uint64_t(x.last_reload_ok ? 1 : 0));
    e.single("lb_neighbour_entries", kGauge,
             "Neighbour (ARP) table entries: reals' next hops, gateways, statics and on-link "
             "hosts lb resolved or was asked by.",
             x.neighbour_entries);

    e.family("lb_timeout_seconds", kGauge,
             "Connection idle timeouts in seconds (ipvsadm --set): tcp, tcpfin, udp.");
    e.sample("lb_timeout_seconds", Labels{}.with("timeout", "tcp"), uint64_t(st.tcp_timeout));
    e.sample("lb_timeout_seconds", Labels{}.with("timeout", "tcpfin"), uint64_t(st.tcpfin_timeout));
    e.sample("lb_timeout_seconds", Labels{}.with("timeout", "udp"), uint64_t(st.udp_timeout));

    e.single("lb_services", kGauge, "Virtual services configured.", uint64_t(st.services.size()));
    e.single("lb_reals", kGauge, "Real servers configured, over all services.", n_reals);

    render_services(e, st);
    render_workers(e, ws, st.conn_capacity);
    return e.take();
}

// ---------------------------------------------------------------------------------------------
// Listen spec
// ---------------------------------------------------------------------------------------------

ListenSpec parse_listen_spec(const std::string& spec) {
    const std::string what = "metrics listen address '" + spec + "': ";
    const size_t colon = spec.rfind(':');
    if (colon == std::string::npos) {
        throw std::runtime_error(what + "expected ADDR:PORT (numeric IPv4 address and port)");
    }
    const std::string addr = spec.substr(0, colon);
    const std::string port = spec.substr(colon + 1);
    ListenSpec out;
    try {
        out.addr = parse_ipv4(addr);
    } catch (const std::exception&) {
        throw std::runtime_error(what + "'" + addr + "' is not a numeric IPv4 address");
    }
    uint32_t p = 0;
    const auto r = std::from_chars(port.data(), port.data() + port.size(), p);
    if (port.empty() || r.ec != std::errc() || r.ptr != port.data() + port.size() || p > 65535) {
        throw std::runtime_error(what + "port '" + port + "' is not a number from 0 to 65535");
    }
    out.port = uint16_t(p);
    return out;
}

}  // namespace lb::ctl
