// Config -> libconfig text that load_config() reads back to the same Config (lbctl
// --write-config, and the check of runtime changes).
#include <cstdio>
#include <sstream>

#include "control/config.hpp"

namespace lb::ctl {

namespace {

std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string mac_text(const Mac& m) { return format_mac(m.data()); }

std::string ip_q(uint32_t a) { return quoted(format_ipv4(a)); }

const char* forward_key(dp::Forward f) {
    switch (f) {
    case dp::Forward::Tunnel: return "tun";
    case dp::Forward::Route: return "dr";
    default: return "nat";
    }
}

}  // namespace

std::string format_config(const Config& c) {
    std::ostringstream o;
    o << "# Written by lb from its running config.\n";
    o << "eal = [";
    for (size_t i = 0; i < c.eal.size(); ++i) {
        o << (i ? ", " : "") << quoted(c.eal[i]);
    }
    o << "];\nworkers = [";
    for (size_t i = 0; i < c.workers.size(); ++i) {
        o << (i ? ", " : "") << c.workers[i];
    }
    o << "];\nmbufs = " << c.mbufs << ";\n";
    o << "interfaces = (";
    for (size_t i = 0; i < c.interfaces.size(); ++i) {
        const InterfaceConf& f = c.interfaces[i];
        o << (i ? ",\n" : "\n") << "  { port = " << f.port << "; address = "
          << quoted(format_ipv4(f.addr) + "/" + std::to_string(f.prefix_len)) << ";";
        if (f.mac) {
            o << " mac = " << quoted(mac_text(*f.mac)) << ";";
        }
        o << " mtu = " << f.mtu << ";";
        if (f.rp_filter != dp::RpFilter::Strict) {
            o << " rp_filter = " << quoted(std::string(dp::kRpFilterNames[size_t(f.rp_filter)]))
              << ";";
        }
        o << " }";
    }
    o << "\n);\nroutes = (";
    for (size_t i = 0; i < c.routes.size(); ++i) {
        const RouteConf& r = c.routes[i];
        o << (i ? ",\n" : "\n") << "  { prefix = "
          << quoted(format_ipv4(r.prefix) + "/" + std::to_string(r.prefix_len))
          << "; via = " << ip_q(r.via) << "; }";
    }
    o << "\n);\nneighbours = (";
    for (size_t i = 0; i < c.neighbours.size(); ++i) {
        const NeighbourConf& n = c.neighbours[i];
        o << (i ? ",\n" : "\n") << "  { address = " << ip_q(n.addr)
          << "; mac = " << quoted(mac_text(n.mac)) << "; }";
    }
    const ConnectionsConf& k = c.connections;
    o << "\n);\nconnections = { capacity = " << k.capacity << "; tcp_timeout = " << k.tcp_timeout
      << "; tcp_fin_timeout = " << k.tcp_fin_timeout << "; udp_timeout = " << k.udp_timeout
      << "; sloppy_tcp = " << (k.sloppy_tcp ? "true" : "false")
      << "; reset_unknown = " << (k.reset_unknown ? "true" : "false") << "; };\n";
    o << "services = (";
    for (size_t i = 0; i < c.services.size(); ++i) {
        const ServiceConf& s = c.services[i];
        const std::string sched(dp::kSchedNames[size_t(s.scheduler)]);
        o << (i ? ",\n" : "\n") << "  { vip = " << ip_q(s.vip) << "; port = " << s.port
          << "; protocol = " << (s.proto == 17 ? "\"udp\"" : "\"tcp\"")
          << "; scheduler = " << quoted(sched) << ";";
        if (s.sched_flags != 0) {
            o << " sched_flags = [";
            bool first = true;
            if ((s.sched_flags & dp::kSchedFallback) != 0) {
                o << quoted(sched + "-fallback");
                first = false;
            }
            if ((s.sched_flags & dp::kSchedPort) != 0) {
                o << (first ? "" : ", ") << quoted(sched + "-port");
            }
            o << "];";
        }
        if (s.scheduler == dp::SchedKind::Mh && s.mh_table_size != 65537) {
            o << " mh_table_size = " << s.mh_table_size << ";";
        }
        if (s.persistence != 0) {
            o << " persistence = " << s.persistence << ";";
            if (s.persistence_mask != 0xFFFFFFFF) {
                o << " persistence_mask = " << ip_q(s.persistence_mask) << ";";
            }
        }
        if (s.tunnel_source != 0) {
            o << " tunnel_source = " << ip_q(s.tunnel_source) << ";";
        }
        o << "\n    reals = (";
        for (size_t j = 0; j < s.reals.size(); ++j) {
            const RealConf& r = s.reals[j];
            o << (j ? ",\n              " : " ") << "{ address = " << ip_q(r.addr)
              << "; port = " << r.port << "; forward = \"" << forward_key(r.forward)
              << "\"; weight = " << r.weight << ";";
            if (r.u_threshold != 0) {
                o << " u_threshold = " << r.u_threshold << ";";
            }
            if (r.l_threshold != 0) {
                o << " l_threshold = " << r.l_threshold << ";";
            }
            o << " }";
        }
        o << " ); }";
    }
    o << "\n);\ncontrol = { socket = " << quoted(c.control_socket) << ";";
    if (!c.metrics.empty()) {
        o << " metrics = " << quoted(c.metrics) << ";";
    }
    o << " };\n";
    o << "log = { level = " << quoted(c.log_level) << "; };\n";
    return o.str();
}

}  // namespace lb::ctl
