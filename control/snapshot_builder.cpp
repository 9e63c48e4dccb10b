#include "control/snapshot_builder.hpp"

#include <rte_byteorder.h>

#include "dataplane/sched.hpp"

namespace lb::ctl {

namespace {
rte_be32_t be32(uint32_t host) { return rte_cpu_to_be_32(host); }
rte_be32_t mask_of(uint8_t len) { return be32(len == 0 ? 0 : ~uint32_t(0) << (32 - len)); }
}  // namespace

const char* sched_name(dp::SchedKind k) {
    const size_t i = size_t(k);
    return i < dp::kSchedNames.size() ? dp::kSchedNames[i].data() : "?";
}

std::unique_ptr<dp::Snapshot> build_snapshot(
    const Config& cfg, const std::array<rte_ether_addr, dp::kMaxPorts>& port_macs,
    uint16_t n_workers, uint64_t generation) {
    auto snap = std::make_unique<dp::Snapshot>();
    snap->generation = generation;
    snap->n_workers = n_workers;
    for (const InterfaceConf& ic : cfg.interfaces) {
        dp::Interface i;
        i.port = ic.port;
        i.mac = port_macs[ic.port];
        i.addr = be32(ic.addr);
        i.prefix_len = ic.prefix_len;
        i.mask = mask_of(ic.prefix_len);
        i.mtu = ic.mtu;
        snap->interfaces.push_back(i);
        // The connected subnet.
        snap->routes.push_back({i.addr & i.mask, i.mask, i.prefix_len, i.port, 0});
    }
    for (const RouteConf& rc : cfg.routes) {
        dp::Route r{be32(rc.prefix), mask_of(rc.prefix_len), rc.prefix_len, 0, be32(rc.via)};
        // The gateway sits on one of the connected subnets (validated): it decides the port.
        bool found = false;
        for (const dp::Interface& i : snap->interfaces) {
            if ((r.gateway & i.mask) == (i.addr & i.mask)) {
                r.port = i.port;
                found = true;
                break;
            }
        }
        if (!found) {
            throw ConfigError(cfg.file + ": route via " + format_ipv4(rc.via) +
                              ": no interface subnet holds the gateway");
        }
        snap->routes.push_back(r);
    }
    if (cfg.services.size() > dp::kMaxServices) {
        throw ConfigError(cfg.file + ": too many services (" + std::to_string(cfg.services.size()) +
                          ", at most " + std::to_string(dp::kMaxServices) + ")");
    }
    uint32_t real_slot = 0;
    snap->services.reserve(cfg.services.size());
    for (size_t si = 0; si < cfg.services.size(); ++si) {
        const ServiceConf& sc = cfg.services[si];
        dp::Service& s = snap->services.emplace_back();
        s.vip = be32(sc.vip);
        s.port = rte_cpu_to_be_16(sc.port);
        s.proto = sc.proto;
        s.sched = sc.scheduler;
        s.sched_flags = sc.sched_flags;
        s.mh_size = sc.mh_table_size;
        s.persistence = sc.persistence;
        s.persist_mask = be32(sc.persistence_mask);
        if (sc.persistence != 0) {
            snap->owner_mask &= s.persist_mask;
        }
        s.tunnel_src = be32(sc.tunnel_source);
        s.stats_slot = uint16_t(si);
        for (const RealConf& rc : sc.reals) {
            if (real_slot >= dp::kMaxReals) {
                throw ConfigError(cfg.file + ":" + std::to_string(rc.line) +
                                  ": too many real servers (at most " +
                                  std::to_string(dp::kMaxReals) + " in all services)");
            }
            dp::Real r;
            r.addr = be32(rc.addr);
            r.port = rte_cpu_to_be_16(rc.port);
            r.forward = rc.forward;
            r.weight = rc.weight;
            r.stats_slot = uint16_t(real_slot++);
            s.reals.push_back(r);
        }
        dp::build_sched(s);
    }
    const auto& c = cfg.connections;
    snap->timeouts.tcp_established = c.tcp_timeout * 1000;
    snap->timeouts.tcp_fin_wait = c.tcp_fin_timeout * 1000;
    snap->timeouts.udp = c.udp_timeout * 1000;
    snap->finalize();
    return snap;
}

}  // namespace lb::ctl
