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

SlotMap::Assignment SlotMap::assign(const Config& cfg, const IdleFn& idle) {
    Assignment a;
    std::map<SvcKey, uint16_t> svc;
    std::map<RealKey, uint16_t> real;
    // Slots of identities that go away are free for the new ones (once idle).
    std::vector<uint16_t> freed_svc = freed_svc_, freed_real = freed_real_;
    std::map<SvcKey, bool> keep_svc;
    std::map<RealKey, bool> keep_real;
    for (const ServiceConf& sc : cfg.services) {
        keep_svc[{sc.proto, sc.vip, sc.port}] = true;
        for (const RealConf& rc : sc.reals) {
            keep_real[{sc.proto, sc.vip, sc.port, rc.addr, rc.port}] = true;
        }
    }
    for (const auto& [k, slot] : svc_) {
        if (!keep_svc.count(k)) {
            freed_svc.push_back(slot);
        }
    }
    for (const auto& [k, slot] : real_) {
        if (!keep_real.count(k)) {
            freed_real.push_back(slot);
        }
    }
    uint32_t next_svc = next_svc_, next_real = next_real_;
    auto take = [&](bool is_real, uint32_t& next, uint32_t limit, std::vector<uint16_t>& freed,
                    int line) -> uint16_t {
        if (next < limit) {
            return uint16_t(next++);
        }
        for (size_t i = 0; i < freed.size(); ++i) {
            if (!idle || idle(is_real, freed[i])) {
                const uint16_t slot = freed[i];
                freed.erase(freed.begin() + long(i));
                return slot;
            }
        }
        throw ConfigError(cfg.file + ":" + std::to_string(line) + ": no free counter slot for " +
                          (is_real ? "a real" : "a service") + " (at most " +
                          std::to_string(limit) +
                          " at once, and removed ones' connections are still alive)");
    };
    for (const ServiceConf& sc : cfg.services) {
        const SvcKey sk{sc.proto, sc.vip, sc.port};
        uint16_t ss;
        if (auto it = svc_.find(sk); it != svc_.end()) {
            ss = it->second;
        } else {
            ss = take(false, next_svc, dp::kMaxServices, freed_svc, sc.line);
            a.fresh_svc.push_back(ss);
        }
        svc[sk] = ss;
        a.svc.push_back(ss);
        auto& reals = a.real.emplace_back();
        for (const RealConf& rc : sc.reals) {
            const RealKey rk{sc.proto, sc.vip, sc.port, rc.addr, rc.port};
            uint16_t rs;
            if (auto it = real_.find(rk); it != real_.end()) {
                rs = it->second;
            } else {
                rs = take(true, next_real, dp::kMaxReals, freed_real, rc.line);
                a.fresh_real.push_back(rs);
            }
            real[rk] = rs;
            reals.push_back(rs);
        }
    }
    svc_ = std::move(svc);
    real_ = std::move(real);
    next_svc_ = next_svc;
    next_real_ = next_real;
    freed_svc_ = std::move(freed_svc);
    freed_real_ = std::move(freed_real);
    return a;
}

std::unique_ptr<dp::Snapshot> build_snapshot(
    const Config& cfg, const std::array<rte_ether_addr, dp::kMaxPorts>& port_macs,
    uint16_t n_workers, uint64_t generation, SlotMap* slots, const SlotMap::IdleFn& idle) {
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
        i.rp_filter = ic.rp_filter;
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
    size_t n_reals = 0;
    for (const ServiceConf& sc : cfg.services) {
        n_reals += sc.reals.size();
        if (n_reals > dp::kMaxReals) {
            throw ConfigError(cfg.file + ":" + std::to_string(sc.line) +
                              ": too many real servers (at most " +
                              std::to_string(dp::kMaxReals) + " in all services)");
        }
    }
    SlotMap local;
    SlotMap::Assignment assigned = (slots != nullptr ? *slots : local).assign(cfg, idle);
    snap->fresh_svc_slots = std::move(assigned.fresh_svc);
    snap->fresh_real_slots = std::move(assigned.fresh_real);
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
        s.stats_slot = assigned.svc[si];
        for (size_t ri = 0; ri < sc.reals.size(); ++ri) {
            const RealConf& rc = sc.reals[ri];
            dp::Real r;
            r.addr = be32(rc.addr);
            r.port = rte_cpu_to_be_16(rc.port);
            r.forward = rc.forward;
            r.weight = rc.weight;
            r.u_threshold = rc.u_threshold;
            r.l_threshold = rc.l_threshold;
            r.stats_slot = assigned.real[si][ri];
            s.reals.push_back(r);
        }
        dp::build_sched(s);
    }
    const auto& c = cfg.connections;
    snap->timeouts.tcp_established = c.tcp_timeout * 1000;
    snap->timeouts.tcp_fin_wait = c.tcp_fin_timeout * 1000;
    snap->timeouts.udp = c.udp_timeout * 1000;
    snap->sloppy_tcp = c.sloppy_tcp;
    snap->reset_unknown = c.reset_unknown && !c.sloppy_tcp;
    snap->finalize();
    return snap;
}

}  // namespace lb::ctl
