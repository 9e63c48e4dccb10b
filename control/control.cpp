#include "control/control.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <tuple>

#include <rte_byteorder.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <spdlog/spdlog.h>

#include "control/clock.hpp"
#include "control/config_source.hpp"
#include "control/control_server.hpp"
#include "control/log.hpp"
#include "control/snapshot_builder.hpp"

namespace lb::ctl {

Control::Control(Config cfg, Runtime rt)
    : cfg_(std::move(cfg)),
      rt_(std::move(rt)),
      svc_base_(dp::kMaxServices),
      real_base_(dp::kMaxReals),
      svc_est_(dp::kMaxServices),
      real_est_(dp::kMaxReals),
      overload_(new std::atomic<uint8_t>[dp::kMaxReals]),
      port_stats_(std::make_unique<PortStats>(rt_.ports)) {
    for (uint32_t i = 0; i < dp::kMaxReals; ++i) {
        overload_[i].store(0, std::memory_order_relaxed);
    }
    for (dp::Worker* w : rt_.workers) {
        w->overload = overload_.get();
    }
    rt_.neigh->set_qsbr(rt_.qsbr);
    neighbours_ = std::make_unique<Neighbours>(
        *rt_.neigh, [this](uint16_t port, rte_be32_t target, const rte_ether_addr* to) {
            send_arp_request(port, target, to);
        });
    set_static_neighbours();
}

void Control::set_static_neighbours() {
    std::vector<Neighbours::Static> list;
    for (const NeighbourConf& n : cfg_.neighbours) {
        Neighbours::Static st{};
        std::memcpy(st.mac.addr_bytes, n.mac.data(), 6);
        st.ip = rte_cpu_to_be_32(n.addr);
        for (const InterfaceConf& i : cfg_.interfaces) {
            const uint32_t m = i.prefix_len == 0 ? 0 : ~uint32_t(0) << (32 - i.prefix_len);
            if ((n.addr & m) == (i.addr & m)) {
                st.port = i.port;
            }
        }
        list.push_back(st);
    }
    neighbours_->set_statics(list);
}

Control::~Control() {
    const dp::Snapshot* old = rt_.snapshot->exchange(nullptr);
    delete old;
}

bool Control::slot_idle(bool real, uint16_t slot) const {
    uint64_t live = 0;
    for (const dp::Worker* w : rt_.workers) {
        const dp::TrafficCounters& c = real ? w->real_stats[slot] : w->svc_stats[slot];
        live += c.active.get() + c.inactive.get() + c.persist.get();
    }
    return live == 0;
}

bool Control::conns_gone(uint16_t svc_slot) const {
    uint64_t live = 0;
    for (const dp::Worker* w : rt_.workers) {
        const dp::TrafficCounters& c = w->svc_stats[svc_slot];
        live += c.active.get() + c.inactive.get();
    }
    return live == 0;
}

namespace {

// Why `a` (host order) cannot stay a retired VIP under `cfg`, or nullptr.
const char* retired_conflict(const Config& cfg, uint32_t a) {
    for (const InterfaceConf& i : cfg.interfaces) {
        if (i.addr == a) {
            return "it is an interface address now";
        }
    }
    for (const ServiceConf& s : cfg.services) {
        for (const RealConf& r : s.reals) {
            if (r.addr == a) {
                return "it is a real now";
            }
        }
    }
    for (const NeighbourConf& n : cfg.neighbours) {
        if (n.addr == a) {
            return "it is a static neighbour now";
        }
    }
    for (const RouteConf& r : cfg.routes) {
        if (r.via == a) {
            return "it is a gateway now";
        }
    }
    return nullptr;
}

}  // namespace

void Control::retire_vips(dp::Snapshot& snap, uint64_t now) {
    // The services of the running snapshot that `snap` no longer has: their slots are
    // remembered under their VIP for as long as their connections may live.
    const dp::Snapshot* cur = rt_.snapshot->load(std::memory_order_acquire);
    const uint64_t life =
        uint64_t(std::max({cfg_.connections.tcp_timeout, cfg_.connections.tcp_fin_timeout,
                           cfg_.connections.udp_timeout})) *
        1000;
    if (cur != nullptr) {
        for (const dp::Service& s : cur->services) {
            if (snap.find_service(s.vip, s.port, s.proto) == nullptr) {
                departed_[s.vip].push_back({s.stats_slot, now + life, true});
            }
        }
    }
    for (auto it = departed_.begin(); it != departed_.end();) {
        std::vector<Departed>& slots = it->second;
        std::erase_if(slots, [&](const Departed& d) {
            // A slot given to a new service was idle when it was taken. A slot that departs
            // now is judged at the next tick, once no worker uses the running snapshot.
            const bool reused = std::find(snap.fresh_svc_slots.begin(), snap.fresh_svc_slots.end(),
                                          d.slot) != snap.fresh_svc_slots.end();
            return reused || d.until <= now || (!d.fresh && conns_gone(d.slot));
        });
        for (Departed& d : slots) {
            d.fresh = false;
        }
        const bool retired = !snap.is_vip(it->first);
        const char* conflict =
            retired ? retired_conflict(cfg_, rte_be_to_cpu_32(it->first)) : nullptr;
        if (retired && (slots.empty() || conflict != nullptr)) {
            control_log()->info("retired VIP {} is no longer answered: {}", ip_text(it->first),
                        conflict != nullptr ? conflict
                                            : "its services' connections have ended or timed out");
        }
        if (slots.empty() || conflict != nullptr) {
            it = departed_.erase(it);
            continue;
        }
        if (retired) {
            snap.retired_vips.push_back(it->first);
        }
        ++it;
    }
    if (!snap.retired_vips.empty()) {
        snap.finalize();
    }
}

void Control::retired_tick(uint64_t now) {
    const dp::Snapshot* cur = rt_.snapshot->load(std::memory_order_acquire);
    if (cur == nullptr || departed_.empty()) {
        return;
    }
    bool due = false;
    for (auto& [vip, slots] : departed_) {
        std::erase_if(slots, [&](const Departed& d) {
            return !d.fresh && (d.until <= now || conns_gone(d.slot));
        });
        const bool retired = std::find(cur->retired_vips.begin(), cur->retired_vips.end(), vip) !=
                             cur->retired_vips.end();
        due = due || (retired && slots.empty());
    }
    if (!due) {
        return;
    }
    try {
        publish();
    } catch (const std::exception& e) {
        control_log()->error("re-publishing without a retired VIP: {}", e.what());
    }
}

void Control::publish() {
    auto snap = build_snapshot(cfg_, rt_.port_macs, uint16_t(rt_.workers.size()),
                               generation_ + 1, &slots_,
                               [this](bool real, uint16_t slot) { return slot_idle(real, slot); });
    ++generation_;
    retire_vips(*snap, now_ms());
    for (const uint16_t slot : snap->fresh_svc_slots) {
        zero(false, slot);
    }
    for (const uint16_t slot : snap->fresh_real_slots) {
        zero(true, slot);
        overload_[slot].store(0, std::memory_order_relaxed);
    }
    // Reals and gateways are resolved ahead of traffic.
    const uint64_t now = now_ms();
    neighbours_->want(*snap, now);
    const dp::Snapshot* old = rt_.snapshot->exchange(snap.release(), std::memory_order_release);
    if (old != nullptr) {
        // Every worker passes a quiescent state once per loop turn: after this no worker holds
        // a reference into `old`.
        rte_rcu_qsbr_synchronize(rt_.qsbr, RTE_QSBR_THRID_INVALID);
        delete old;
    }
    control_log()->info("published snapshot {}: {} services", generation_, cfg_.services.size());
    neighbour_tick(now);
}

void Control::send_arp_request(uint16_t port, rte_be32_t target, const rte_ether_addr* to) {
    const dp::Snapshot* snap = rt_.snapshot->load(std::memory_order_acquire);
    const dp::Interface* ifc = snap != nullptr ? snap->interface_of(port) : nullptr;
    if (ifc == nullptr || rt_.ctl_tx.empty()) {
        return;
    }
    rte_mbuf* m = rte_pktmbuf_alloc(rt_.pool);
    if (m == nullptr) {
        control_log()->warn("no mbuf for an ARP request to {}", ip_text(target));
        return;
    }
    constexpr uint16_t kLen = 60;
    auto* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, kLen));
    if (f == nullptr) {
        rte_pktmbuf_free(m);
        return;
    }
    std::memset(f, 0, kLen);
    if (to != nullptr) {
        std::memcpy(f, to->addr_bytes, 6);
    } else {
        std::memset(f, 0xff, 6);
    }
    std::memcpy(f + 6, ifc->mac.addr_bytes, 6);
    f[12] = 0x08;
    f[13] = 0x06;
    uint8_t* a = f + 14;
    a[1] = 1;     // htype ethernet
    a[2] = 0x08;  // ptype IPv4
    a[4] = 6;
    a[5] = 4;
    a[7] = 1;  // request
    std::memcpy(a + 8, ifc->mac.addr_bytes, 6);
    std::memcpy(a + 14, &ifc->addr, 4);
    if (to != nullptr) {
        std::memcpy(a + 18, to->addr_bytes, 6);
    }
    std::memcpy(a + 24, &target, 4);
    m->port = port;
    if (rte_ring_sp_enqueue(rt_.ctl_tx[0], m) != 0) {
        rte_pktmbuf_free(m);
    }
}

void Control::drain_slow(uint64_t now) {
    const dp::Snapshot* snap = rt_.snapshot->load(std::memory_order_acquire);
    dp::SlowMsg msgs[64];
    for (rte_ring* r : rt_.slow_rings) {
        unsigned n;
        while ((n = rte_ring_sc_dequeue_burst_elem(r, msgs, sizeof(dp::SlowMsg), 64, nullptr)) !=
               0) {
            for (unsigned i = 0; i < n && snap != nullptr; ++i) {
                const dp::SlowMsg& m = msgs[i];
                rte_ether_addr mac;
                std::memcpy(mac.addr_bytes, m.mac, 6);
                if (m.type == dp::SlowMsg::Learn) {
                    neighbours_->on_request(*snap, m.port, m.ip, mac, now);
                } else if (m.type == dp::SlowMsg::Reply) {
                    neighbours_->on_reply(*snap, m.port, m.ip, mac, now);
                } else if (m.type == dp::SlowMsg::Resolve) {
                    neighbours_->on_resolve(*snap, m.port, m.ip, now);
                }
            }
        }
    }
}

void Control::neighbour_tick(uint64_t now) { neighbours_->tick(now); }

std::string Control::reload() {
    Config next;
    try {
        next = load_config(cfg_.file);
    } catch (const std::exception& e) {
        control_log()->error("reload refused, the running config stays: {}", e.what());
        count_reload(false);
        return e.what();
    }
    // What the ports, lcores and memory were set up with cannot change in a running lb.
    std::vector<std::string> fixed;
    if (next.eal != cfg_.eal) {
        fixed.push_back("eal");
    }
    if (next.workers != cfg_.workers) {
        fixed.push_back("workers");
    }
    if (next.mbufs != cfg_.mbufs) {
        fixed.push_back("mbufs");
    }
    if (next.connections.capacity != cfg_.connections.capacity) {
        fixed.push_back("connections.capacity");
    }
    if (next.control_socket != cfg_.control_socket) {
        fixed.push_back("control.socket");
    }
    if (next.metrics != cfg_.metrics) {
        fixed.push_back("control.metrics");
    }
    bool ports_same = next.interfaces.size() == cfg_.interfaces.size();
    for (size_t i = 0; ports_same && i < next.interfaces.size(); ++i) {
        ports_same = next.interfaces[i].port == cfg_.interfaces[i].port &&
                     next.interfaces[i].mac == cfg_.interfaces[i].mac;
    }
    if (!ports_same) {
        fixed.push_back("interfaces (ports, mac)");
    }
    uint32_t next_owner_mask = 0xFFFFFFFF;
    for (const ServiceConf& sc : next.services) {
        if (sc.persistence != 0) {
            next_owner_mask &= sc.persistence_mask;
        }
    }
    const dp::Snapshot* cur = rt_.snapshot->load(std::memory_order_acquire);
    if (rt_.workers.size() > 1 && cur != nullptr &&
        rte_be_to_cpu_32(cur->owner_mask) != next_owner_mask) {
        // Which worker owns a client follows the widest persistence mask; changing it would
        // strand the connections of clients that change owner.
        fixed.push_back("the widest persistence_mask");
    }
    if (!fixed.empty()) {
        std::string what;
        for (const std::string& f : fixed) {
            what += (what.empty() ? "" : ", ") + f;
        }
        const std::string msg = cfg_.file + ": reload refused, the running config stays: " +
                                what + " changed, which needs a restart";
        control_log()->error("{}", msg);
        count_reload(false);
        return msg;
    }
    const std::string err = adopt(std::move(next), "reload");
    if (err.empty()) {
        control_log()->info("reloaded {}: {} services", cfg_.file, cfg_.services.size());
    }
    count_reload(err.empty());
    return err;
}

std::string Control::adopt(Config next, const char* what) {
    Config old = std::move(cfg_);
    cfg_ = std::move(next);
    try {
        publish();
    } catch (const std::exception& e) {
        cfg_ = std::move(old);
        control_log()->error("{} refused, the running config stays: {}", what, e.what());
        return e.what();
    }
    set_static_neighbours();
    spdlog::set_level(spdlog::level::from_str(cfg_.log_level));
    return "";
}

void Control::refresh_metrics(uint64_t now) {
    last_metrics_ms_ = now;
    MetricsExtra x;
    x.version = "0.1.0";
    x.start_time_seconds = started_unix_;
    x.uptime_seconds = double(now - started_ms_) / 1000.0;
    x.snapshot_generation = generation_;
    x.reloads_ok = reloads_ok_;
    x.reloads_failed = reloads_failed_;
    x.last_reload_ok = last_reload_ok_;
    x.neighbour_entries = neighbours_->entries();
    std::string text = render_metrics(status(), workers_status(), x);
    std::lock_guard<std::mutex> g(metrics_mu_);
    metrics_text_.swap(text);
}

std::array<uint64_t, 5> Control::totals(bool real, uint16_t slot) const {
    std::array<uint64_t, 5> t{};
    for (const dp::Worker* w : rt_.workers) {
        const dp::TrafficCounters& c = real ? w->real_stats[slot] : w->svc_stats[slot];
        t[0] += c.conns.get();
        t[1] += c.in_pkts.get();
        t[2] += c.out_pkts.get();
        t[3] += c.in_bytes.get();
        t[4] += c.out_bytes.get();
    }
    return t;
}

void Control::zero(bool real, uint16_t slot) {
    (real ? real_base_ : svc_base_)[slot] = totals(real, slot);
    (real ? real_est_ : svc_est_)[slot] = Estimator{};
}

// IPVS's overload hysteresis: over when active + inactive reaches u_threshold; back when it
// falls below l_threshold, or below 3/4 of u_threshold when there is no lower one.
void Control::overload_tick() {
    const dp::Snapshot* snap = rt_.snapshot->load(std::memory_order_acquire);
    if (snap == nullptr) {
        return;
    }
    for (const dp::Service& s : snap->services) {
        for (const dp::Real& r : s.reals) {
            std::atomic<uint8_t>& flag = overload_[r.stats_slot];
            if (r.u_threshold == 0 && r.l_threshold == 0) {
                flag.store(0, std::memory_order_relaxed);
                continue;
            }
            uint64_t conns = 0;
            for (const dp::Worker* w : rt_.workers) {
                conns += w->real_stats[r.stats_slot].active.get() +
                         w->real_stats[r.stats_slot].inactive.get();
            }
            const bool over = flag.load(std::memory_order_relaxed) != 0;
            if (!over && r.u_threshold != 0 && conns >= r.u_threshold) {
                flag.store(1, std::memory_order_relaxed);
            } else if (over) {
                const bool back = r.l_threshold != 0   ? conns < r.l_threshold
                                  : r.u_threshold != 0 ? conns * 4 < uint64_t(r.u_threshold) * 3
                                                       : true;
                if (back) {
                    flag.store(0, std::memory_order_relaxed);
                }
            }
        }
    }
}

void Control::rate_tick(uint64_t now) {
    if (last_rate_ms_ != 0 && now - last_rate_ms_ < 2000) {
        return;
    }
    const double secs = last_rate_ms_ == 0 ? 2.0 : double(now - last_rate_ms_) / 1000.0;
    last_rate_ms_ = now;
    const dp::Snapshot* snap = rt_.snapshot->load(std::memory_order_acquire);
    if (snap == nullptr) {
        return;
    }
    auto sample = [&](bool real, uint16_t slot) {
        Estimator& e = (real ? real_est_ : svc_est_)[slot];
        const std::array<uint64_t, 5> t = totals(real, slot);
        if (e.primed) {
            for (size_t i = 0; i < 5; ++i) {
                const double rate = double(t[i] - e.last[i]) / secs;
                e.avg[i] += (rate - e.avg[i]) / 4.0;
            }
        }
        e.last = t;
        e.primed = true;
    };
    for (const dp::Service& s : snap->services) {
        sample(false, s.stats_slot);
        for (const dp::Real& r : s.reals) {
            sample(true, r.stats_slot);
        }
    }
}

namespace {

std::string service_text(const Op& o) {
    return std::string(o.proto == 17 ? "UDP " : "TCP ") + format_ipv4(o.vip) + ":" +
           std::to_string(o.port);
}

std::string real_text(const Op& o) {
    return format_ipv4(o.real_addr) + ":" + std::to_string(o.real_port);
}

ServiceConf* find_service(Config& c, const Op& o) {
    for (ServiceConf& s : c.services) {
        if (s.proto == o.proto && s.vip == o.vip && s.port == o.port) {
            return &s;
        }
    }
    return nullptr;
}

// Scheduler, flags and persistence from an operation; throws std::runtime_error.
void service_settings(ServiceConf& s, const Op& o) {
    const auto it = std::find(dp::kSchedNames.begin(), dp::kSchedNames.end(), o.scheduler);
    if (it == dp::kSchedNames.end()) {
        throw std::runtime_error("unknown scheduler \"" + o.scheduler + "\"");
    }
    s.scheduler = dp::SchedKind(it - dp::kSchedNames.begin());
    s.sched_flags = 0;
    std::string flags = o.sched_flags;
    while (!flags.empty()) {
        const size_t comma = flags.find(',');
        const std::string f = flags.substr(0, comma);
        flags = comma == std::string::npos ? "" : flags.substr(comma + 1);
        const std::string sched(*it);
        if (f == sched + "-fallback" && (sched == "sh" || sched == "mh")) {
            s.sched_flags |= dp::kSchedFallback;
        } else if (f == sched + "-port" && (sched == "sh" || sched == "mh")) {
            s.sched_flags |= dp::kSchedPort;
        } else {
            throw std::runtime_error("scheduler flag \"" + f + "\" does not apply to " + sched);
        }
    }
    s.persistence = o.persistence;
    s.persistence_mask = o.persistence != 0 ? o.persist_mask : 0xFFFFFFFF;
}

// A new VIP that is a real's address, or a new real that is a VIP: said here, from the side of
// the operation (the config's own check would name whichever comes later in the file).
void check_roles(const Config& c, const Op& o) {
    auto text = [](const ServiceConf& s) {
        return std::string(s.proto == 17 ? "UDP " : "TCP ") + format_ipv4(s.vip) + ":" +
               std::to_string(s.port);
    };
    for (const ServiceConf& s : c.services) {
        if (o.kind == OpKind::AddService) {
            for (const RealConf& r : s.reals) {
                if (r.addr == o.vip) {
                    throw std::runtime_error(format_ipv4(o.vip) + " is a real of " + text(s) +
                                             "; a VIP must not be a real's address");
                }
            }
        }
        if (o.kind == OpKind::AddReal && s.vip == o.real_addr) {
            throw std::runtime_error(format_ipv4(o.real_addr) + " is the VIP of " + text(s) +
                                     "; a real must not be a VIP");
        }
    }
}

void real_settings(RealConf& r, const Op& o) {
    r.forward = dp::Forward(o.forward);
    r.weight = o.weight;
    r.u_threshold = o.u_threshold;
    r.l_threshold = o.l_threshold;
}

}  // namespace

std::string Control::apply(const std::vector<Op>& ops) {
    Config next = cfg_;
    std::vector<std::pair<bool, std::tuple<uint8_t, uint32_t, uint16_t>>> zeros;  // all?, service
    // Small batches are checked after every operation so that an error names its operation;
    // a big restore is checked once at the end.
    const bool each = ops.size() <= 64;
    auto check = [&](const std::string& where) {
        try {
            next = parse_config(format_config(next), cfg_.file);
        } catch (const ConfigError& e) {
            // "FILE:LINE: key: what" -> "key: what": the file is ours, not the user's.
            std::string msg = e.what();
            const size_t p = msg.find(": ");
            msg = p == std::string::npos ? msg : msg.substr(p + 2);
            throw std::runtime_error(where + msg);
        }
    };
    try {
        for (size_t i = 0; i < ops.size(); ++i) {
            const Op& o = ops[i];
            std::string where;
            switch (o.kind) {
            case OpKind::AddService: where = "-A " + service_text(o); break;
            case OpKind::EditService: where = "-E " + service_text(o); break;
            case OpKind::DeleteService: where = "-D " + service_text(o); break;
            case OpKind::Clear: where = "-C"; break;
            case OpKind::AddReal: where = "-a " + service_text(o) + " -r " + real_text(o); break;
            case OpKind::EditReal: where = "-e " + service_text(o) + " -r " + real_text(o); break;
            case OpKind::DeleteReal: where = "-d " + service_text(o) + " -r " + real_text(o); break;
            case OpKind::Zero: where = o.has_service ? "-Z " + service_text(o) : "-Z"; break;
            case OpKind::SetTimeout: where = "--set"; break;
            }
            if (ops.size() > 1) {
                where = "operation " + std::to_string(i + 1) + " (" + where + ")";
            }
            where += ": ";
            const bool needs_service = o.kind != OpKind::Clear && o.kind != OpKind::SetTimeout &&
                                       !(o.kind == OpKind::Zero && !o.has_service);
            if (needs_service && !o.has_service) {
                throw std::runtime_error(where + "no service given");
            }
            ServiceConf* svc = needs_service ? find_service(next, o) : nullptr;
            if (needs_service && o.kind != OpKind::AddService && svc == nullptr) {
                throw std::runtime_error(where + "no such service");
            }
            auto find_real = [&]() -> std::vector<RealConf>::iterator {
                return std::find_if(svc->reals.begin(), svc->reals.end(), [&](const RealConf& r) {
                    return r.addr == o.real_addr && r.port == o.real_port;
                });
            };
            try {
                check_roles(next, o);
                switch (o.kind) {
                case OpKind::AddService: {
                    if (svc != nullptr) {
                        throw std::runtime_error("service already exists");
                    }
                    ServiceConf s;
                    s.proto = o.proto;
                    s.vip = o.vip;
                    s.port = o.port;
                    service_settings(s, o);
                    next.services.push_back(std::move(s));
                    break;
                }
                case OpKind::EditService: service_settings(*svc, o); break;
                case OpKind::DeleteService:
                    next.services.erase(next.services.begin() + (svc - next.services.data()));
                    break;
                case OpKind::Clear: next.services.clear(); break;
                case OpKind::AddReal: {
                    if (find_real() != svc->reals.end()) {
                        throw std::runtime_error("destination already exists");
                    }
                    RealConf r;
                    r.addr = o.real_addr;
                    r.port = o.real_port;
                    real_settings(r, o);
                    svc->reals.push_back(r);
                    break;
                }
                case OpKind::EditReal: {
                    const auto it = find_real();
                    if (it == svc->reals.end()) {
                        throw std::runtime_error("no such destination");
                    }
                    real_settings(*it, o);
                    break;
                }
                case OpKind::DeleteReal: {
                    const auto it = find_real();
                    if (it == svc->reals.end()) {
                        throw std::runtime_error("no such destination");
                    }
                    svc->reals.erase(it);
                    break;
                }
                case OpKind::Zero:
                    zeros.push_back({!o.has_service, {o.proto, o.vip, o.port}});
                    break;
                case OpKind::SetTimeout:
                    if (o.tcp != 0) {
                        next.connections.tcp_timeout = o.tcp;
                    }
                    if (o.tcpfin != 0) {
                        next.connections.tcp_fin_timeout = o.tcpfin;
                    }
                    if (o.udp != 0) {
                        next.connections.udp_timeout = o.udp;
                    }
                    break;
                }
            } catch (const std::runtime_error& e) {
                throw std::runtime_error(where + e.what());
            }
            if (each) {
                check(where);
            }
        }
        if (!each) {
            check("");
        }
    } catch (const std::runtime_error& e) {
        control_log()->warn("change refused: {}", e.what());
        return e.what();
    }
    const std::string err = adopt(std::move(next), "change");
    if (!err.empty()) {
        return err;
    }
    // Zeroing needs the slots of the new snapshot.
    const dp::Snapshot* snap = rt_.snapshot->load(std::memory_order_acquire);
    for (const auto& [all, key] : zeros) {
        for (const dp::Service& s : snap->services) {
            if (all || (s.proto == std::get<0>(key) && rte_be_to_cpu_32(s.vip) == std::get<1>(key) &&
                        rte_be_to_cpu_16(s.port) == std::get<2>(key))) {
                zero(false, s.stats_slot);
                for (const dp::Real& r : s.reals) {
                    zero(true, r.stats_slot);
                }
            }
        }
    }
    control_log()->info("applied {} change(s): {} services", ops.size(), cfg_.services.size());
    return "";
}

Workers Control::workers_status() const {
    Workers ws;
    if (rt_.pool != nullptr) {
        ws.mbufs_total = rt_.pool->size;
        ws.mbufs_in_use = rte_mempool_in_use_count(rt_.pool);
    }
    for (size_t i = 0; i < rt_.workers.size(); ++i) {
        const dp::Worker* w = rt_.workers[i];
        const dp::WorkerCounters& c = w->counters;
        WorkerStatus s;
        s.lcore = i < cfg_.workers.size() ? cfg_.workers[i] : uint32_t(i);
        s.rx = c.rx.get();
        s.tx = c.tx.get();
        s.redirected_out = c.redirected_out.get();
        s.redirected_in = c.redirected_in.get();
        s.conns_created = c.conns_created.get();
        s.conns_expired = c.conns_expired.get();
        s.conns_in_table = c.table_size.get();
        s.table_capacity = w->conns.capacity();
        s.counters = {{"arp_replies", c.arp_replies.get()},
                      {"icmp_echo_replies", c.icmp_echo_replies.get()},
                      {"icmp_errors_translated", c.icmp_errors_translated.get()},
                      {"tunnel_encapsulated", c.tunnel_encapsulated.get()},
                      {"tunnel_fragments", c.tunnel_fragments.get()},
                      {"frag_needed_sent", c.frag_needed_sent.get()},
                      {"nat_fragments", c.nat_fragments.get()},
                      {"fragments_forwarded", c.fragments_forwarded.get()},
                      {"conns_evicted", c.conns_evicted.get()},
                      {"consumed", c.consumed.get()},
                      {"frag_notes_evicted", c.frag_notes_evicted.get()},
                      {"resets_sent", c.resets_sent.get()},
                      {"resets_limited", c.resets_limited.get()},
                      {"tcp_probes", c.tcp_probes.get()},
                      {"tcp_refuted", c.tcp_refuted.get()}};
        if (i == 0) {
            for (auto& p : neighbours_->count_pairs()) {
                s.counters.push_back(std::move(p));
            }
        }
        for (size_t d = 0; d < size_t(dp::Drop::Count); ++d) {
            s.drops.emplace_back(std::string(dp::kDropNames[d]), c.drops[d].get());
        }
        ws.workers.push_back(std::move(s));
    }
    ws.ports = port_stats_->read();
    return ws;
}

std::string Control::write_config(const std::string& path) const {
    const std::string target = path.empty() ? cfg_.file : path;
    const std::string tmp = target + ".tmp";
    if (const std::string err = write_config_file(tmp, format_config(cfg_)); !err.empty()) {
        return "cannot write " + tmp + ": " + err;
    }
    if (std::rename(tmp.c_str(), target.c_str()) != 0) {
        const std::string err = std::strerror(errno);
        std::remove(tmp.c_str());
        return "cannot replace " + target + ": " + err;
    }
    control_log()->info("wrote the running config to {}", target);
    return "";
}

void Control::run(const std::atomic<bool>& stop, uint32_t idle_exit_ms) {
    std::unique_ptr<ControlServer> server;
    try {
        server = std::make_unique<ControlServer>(
            cfg_.control_socket, [](const std::string& msg) { control_log()->warn("{}", msg); });
        control_log()->info("control socket {}", cfg_.control_socket);
    } catch (const std::exception& e) {
        control_log()->error("control socket: {}", e.what());
    }
    started_ms_ = now_ms();
    started_unix_ = double(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count()) /
                    1000.0;
    if (!cfg_.metrics.empty()) {
        refresh_metrics(started_ms_);
        try {
            metrics_ = std::make_unique<MetricsServer>(cfg_.metrics, [this] {
                std::lock_guard<std::mutex> g(metrics_mu_);
                return metrics_text_;
            });
            control_log()->info("metrics on http://{}/metrics", cfg_.metrics);
        } catch (const std::exception& e) {
            control_log()->error("{}", e.what());
        }
    }
    uint64_t last_rx = 0, last_rx_change = now_ms(), last_tick = 0;
    while (!stop.load(std::memory_order_relaxed)) {
        if (server) {
            server->poll(5, [this](const Request& r) { return handle(r); });
        } else {
            struct timespec ts{0, 5'000'000};
            nanosleep(&ts, nullptr);
        }
        if (rt_.reload != nullptr && rt_.reload->exchange(false)) {
            control_log()->info("SIGHUP: reloading {}", cfg_.file);
            reload();
        }
        const uint64_t now = now_ms();
        drain_slow(now);
        overload_tick();
        rate_tick(now);
        if (metrics_ && now - last_metrics_ms_ >= 1000) {
            refresh_metrics(now);
        }
        if (now - last_tick >= 100) {
            last_tick = now;
            neighbour_tick(now);
            retired_tick(now);
        }
        if (idle_exit_ms != 0) {
            uint64_t rx = 0;
            for (const dp::Worker* w : rt_.workers) {
                rx += w->counters.rx.get();
            }
            if (rx != last_rx) {
                last_rx = rx;
                last_rx_change = now;
            } else if (now - last_rx_change >= idle_exit_ms) {
                control_log()->info("no frame for {} ms: exiting (--idle-exit)", idle_exit_ms);
                break;
            }
        }
    }
}

namespace {
Rates rates_of(const auto& e) {
    auto r = [&](size_t i) { return uint64_t(e.avg[i] < 0 ? 0 : e.avg[i] + 0.5); };
    return Rates{r(0), r(1), r(2), r(3), r(4)};
}
}  // namespace

Status Control::status() const {
    Status st;
    const dp::Snapshot* snap = rt_.snapshot->load(std::memory_order_acquire);
    uint64_t cap = 0;
    for (const dp::Worker* w : rt_.workers) {
        cap += w->conns.capacity();
    }
    st.conn_capacity = uint32_t(std::min<uint64_t>(cap, UINT32_MAX));
    st.tcp_timeout = cfg_.connections.tcp_timeout;
    st.tcpfin_timeout = cfg_.connections.tcp_fin_timeout;
    st.udp_timeout = cfg_.connections.udp_timeout;
    if (snap == nullptr) {
        return st;
    }
    auto sum = [this](auto member, bool real, uint16_t slot) {
        uint64_t t = 0;
        for (const dp::Worker* w : rt_.workers) {
            const dp::TrafficCounters& c = real ? w->real_stats[slot] : w->svc_stats[slot];
            t += (c.*member).get();
        }
        return t;
    };
    using TC = dp::TrafficCounters;
    for (const dp::Service& s : snap->services) {
        ServiceStatus ss;
        ss.proto = s.proto;
        ss.vip = rte_be_to_cpu_32(s.vip);
        ss.port = rte_be_to_cpu_16(s.port);
        ss.scheduler = sched_name(s.sched);
        ss.persistence = s.persistence;
        ss.persist_mask = rte_be_to_cpu_32(s.persist_mask);
        for (const char* f : {"fallback", "port"}) {
            const uint8_t bit = f[0] == 'f' ? dp::kSchedFallback : dp::kSchedPort;
            if ((s.sched_flags & bit) != 0) {
                ss.sched_flags += (ss.sched_flags.empty() ? "" : ",") + ss.scheduler + "-" + f;
            }
        }
        const auto& sb = svc_base_[s.stats_slot];
        ss.conns = sum(&TC::conns, false, s.stats_slot) - sb[0];
        ss.in_pkts = sum(&TC::in_pkts, false, s.stats_slot) - sb[1];
        ss.out_pkts = sum(&TC::out_pkts, false, s.stats_slot) - sb[2];
        ss.in_bytes = sum(&TC::in_bytes, false, s.stats_slot) - sb[3];
        ss.out_bytes = sum(&TC::out_bytes, false, s.stats_slot) - sb[4];
        ss.rates = rates_of(svc_est_[s.stats_slot]);
        for (const dp::Real& r : s.reals) {
            RealStatus rs;
            rs.addr = rte_be_to_cpu_32(r.addr);
            rs.port = rte_be_to_cpu_16(r.port);
            rs.forward = uint8_t(r.forward);
            rs.weight = r.weight;
            rs.u_threshold = r.u_threshold;
            rs.l_threshold = r.l_threshold;
            rs.overloaded = overload_[r.stats_slot].load(std::memory_order_relaxed) != 0;
            rs.rates = rates_of(real_est_[r.stats_slot]);
            rs.active = sum(&TC::active, true, r.stats_slot);
            rs.inactive = sum(&TC::inactive, true, r.stats_slot);
            rs.persist = sum(&TC::persist, true, r.stats_slot);
            const auto& rb = real_base_[r.stats_slot];
            rs.conns = sum(&TC::conns, true, r.stats_slot) - rb[0];
            rs.in_pkts = sum(&TC::in_pkts, true, r.stats_slot) - rb[1];
            rs.out_pkts = sum(&TC::out_pkts, true, r.stats_slot) - rb[2];
            rs.in_bytes = sum(&TC::in_bytes, true, r.stats_slot) - rb[3];
            rs.out_bytes = sum(&TC::out_bytes, true, r.stats_slot) - rb[4];
            ss.reals.push_back(rs);
        }
        st.services.push_back(std::move(ss));
    }
    return st;
}

std::string Control::counters_text() const {
    using WC = dp::WorkerCounters;
    std::ostringstream out;
    auto total = [this](const dp::Counter WC::*member) {
        uint64_t t = 0;
        for (const dp::Worker* w : rt_.workers) {
            t += (w->counters.*member).get();
        }
        return t;
    };
    out << "rx " << total(&WC::rx) << "\n";
    out << "tx " << total(&WC::tx) << "\n";
    for (size_t d = 0; d < size_t(dp::Drop::Count); ++d) {
        uint64_t t = 0;
        for (const dp::Worker* w : rt_.workers) {
            t += w->counters.drops[d].get();
        }
        out << "drop." << dp::kDropNames[d] << " " << t << "\n";
    }
    out << "conns_created " << total(&WC::conns_created) << "\n";
    out << "conns_expired " << total(&WC::conns_expired) << "\n";
    out << "arp_replies " << total(&WC::arp_replies) << "\n";
    out << "icmp_echo_replies " << total(&WC::icmp_echo_replies) << "\n";
    out << "icmp_errors_translated " << total(&WC::icmp_errors_translated) << "\n";
    out << "tunnel_encapsulated " << total(&WC::tunnel_encapsulated) << "\n";
    out << "tunnel_fragments " << total(&WC::tunnel_fragments) << "\n";
    out << "frag_needed_sent " << total(&WC::frag_needed_sent) << "\n";
    out << "nat_fragments " << total(&WC::nat_fragments) << "\n";
    out << "fragments_forwarded " << total(&WC::fragments_forwarded) << "\n";
    out << "conns_evicted " << total(&WC::conns_evicted) << "\n";
    out << "frag_notes_evicted " << total(&WC::frag_notes_evicted) << "\n";
    out << "resets_sent " << total(&WC::resets_sent) << "\n";
    out << "resets_limited " << total(&WC::resets_limited) << "\n";
    out << "tcp_probes " << total(&WC::tcp_probes) << "\n";
    out << "tcp_refuted " << total(&WC::tcp_refuted) << "\n";
    out << "redirected_out " << total(&WC::redirected_out) << "\n";
    out << "redirected_in " << total(&WC::redirected_in) << "\n";
    out << "consumed " << total(&WC::consumed) << "\n";
    out << "neigh_entries " << neighbours_->entries() << "\n";
    for (const auto& [name, value] : neighbours_->count_pairs()) {
        out << name << " " << value << "\n";
    }
    return out.str();
}

}  // namespace lb::ctl
