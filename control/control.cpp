#include "control/control.hpp"

#include <chrono>
#include <cstring>
#include <sstream>

#include <rte_byteorder.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <spdlog/spdlog.h>

#include "control/control_server.hpp"
#include "control/snapshot_builder.hpp"

namespace lb::ctl {

namespace {

constexpr uint64_t kProbeInterval = 1000;   // ms between ARP requests for one address
constexpr uint64_t kRefreshAfter = 20'000;  // ms: start re-confirming a learned neighbour
constexpr uint64_t kStaleAfter = 30'000;    // ms: unconfirmed neighbour is no longer used

uint64_t now_ms() {
    using namespace std::chrono;
    return uint64_t(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

std::shared_ptr<spdlog::logger> log() {
    auto l = spdlog::get("control");
    return l ? l : spdlog::default_logger();
}

std::string ip_text(rte_be32_t ip) { return format_ipv4(rte_be_to_cpu_32(ip)); }

}  // namespace

Control::Control(Config cfg, Runtime rt)
    : cfg_(std::move(cfg)),
      rt_(std::move(rt)),
      svc_base_(dp::kMaxServices),
      real_base_(dp::kMaxReals) {
    set_static_neighbours();
}

void Control::set_static_neighbours() {
    for (const NeighbourConf& n : cfg_.neighbours) {
        rte_ether_addr mac;
        std::memcpy(mac.addr_bytes, n.mac.data(), 6);
        const rte_be32_t ip = rte_cpu_to_be_32(n.addr);
        uint16_t port = 0;
        for (const InterfaceConf& i : cfg_.interfaces) {
            const uint32_t m = i.prefix_len == 0 ? 0 : ~uint32_t(0) << (32 - i.prefix_len);
            if ((n.addr & m) == (i.addr & m)) {
                port = i.port;
            }
        }
        rt_.neigh->set(ip, mac, port, dp::NeighState::Static);
        NeighInfo& ni = neigh_info_[ip];
        ni.port = port;
        ni.is_static = true;
        ni.resolved = true;
    }
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

void Control::publish() {
    auto snap = build_snapshot(cfg_, rt_.port_macs, uint16_t(rt_.workers.size()),
                               generation_ + 1, &slots_,
                               [this](bool real, uint16_t slot) { return slot_idle(real, slot); });
    ++generation_;
    using TC = dp::TrafficCounters;
    auto totals = [this](bool real, uint16_t slot) {
        std::array<uint64_t, 5> t{};
        for (const dp::Worker* w : rt_.workers) {
            const TC& c = real ? w->real_stats[slot] : w->svc_stats[slot];
            t[0] += c.conns.get();
            t[1] += c.in_pkts.get();
            t[2] += c.out_pkts.get();
            t[3] += c.in_bytes.get();
            t[4] += c.out_bytes.get();
        }
        return t;
    };
    for (const uint16_t slot : snap->fresh_svc_slots) {
        svc_base_[slot] = totals(false, slot);
    }
    for (const uint16_t slot : snap->fresh_real_slots) {
        real_base_[slot] = totals(true, slot);
    }
    // Reals and gateways are resolved ahead of traffic.
    const uint64_t now = now_ms();
    for (const dp::Service& s : snap->services) {
        for (const dp::Real& r : s.reals) {
            if (const dp::Route* rt = snap->route(r.addr)) {
                const rte_be32_t nh = rt->gateway != 0 ? rt->gateway : r.addr;
                NeighInfo& n = neigh_info_[nh];
                n.port = rt->port;
                n.wanted = true;
            }
        }
    }
    for (const dp::Route& r : snap->routes) {
        if (r.gateway != 0) {
            NeighInfo& n = neigh_info_[r.gateway];
            n.port = r.port;
            n.wanted = true;
        }
    }
    const dp::Snapshot* old = rt_.snapshot->exchange(snap.release(), std::memory_order_release);
    if (old != nullptr) {
        // Every worker passes a quiescent state once per loop turn: after this no worker holds
        // a reference into `old`.
        rte_rcu_qsbr_synchronize(rt_.qsbr, RTE_QSBR_THRID_INVALID);
        delete old;
    }
    log()->info("published snapshot {}: {} services", generation_, cfg_.services.size());
    neighbour_tick(now);
}

void Control::send_arp_request(uint16_t port, rte_be32_t target) {
    const dp::Snapshot* snap = rt_.snapshot->load(std::memory_order_acquire);
    const dp::Interface* ifc = snap != nullptr ? snap->interface_of(port) : nullptr;
    if (ifc == nullptr || rt_.ctl_tx.empty()) {
        return;
    }
    rte_mbuf* m = rte_pktmbuf_alloc(rt_.pool);
    if (m == nullptr) {
        log()->warn("no mbuf for an ARP request to {}", ip_text(target));
        return;
    }
    constexpr uint16_t kLen = 60;
    auto* f = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, kLen));
    if (f == nullptr) {
        rte_pktmbuf_free(m);
        return;
    }
    std::memset(f, 0, kLen);
    std::memset(f, 0xff, 6);
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
    std::memcpy(a + 24, &target, 4);
    m->port = port;
    if (rte_ring_sp_enqueue(rt_.ctl_tx[0], m) != 0) {
        rte_pktmbuf_free(m);
    }
}

void Control::probe(rte_be32_t ip, NeighInfo& n, uint64_t now) {
    if (n.probed_ms != 0 && now - n.probed_ms < kProbeInterval) {
        return;
    }
    n.probed_ms = now;
    send_arp_request(n.port, ip);
}

void Control::drain_slow(uint64_t now) {
    dp::SlowMsg msgs[64];
    for (rte_ring* r : rt_.slow_rings) {
        unsigned n;
        while ((n = rte_ring_sc_dequeue_burst_elem(r, msgs, sizeof(dp::SlowMsg), 64, nullptr)) !=
               0) {
            for (unsigned i = 0; i < n; ++i) {
                const dp::SlowMsg& m = msgs[i];
                NeighInfo& ni = neigh_info_[m.ip];
                if (ni.is_static) {
                    continue;
                }
                if (m.type == dp::SlowMsg::Learn) {
                    rte_ether_addr mac;
                    std::memcpy(mac.addr_bytes, m.mac, 6);
                    if (!ni.resolved) {
                        log()->info("neighbour {} is at {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} "
                                    "(port {})",
                                    ip_text(m.ip), m.mac[0], m.mac[1], m.mac[2], m.mac[3],
                                    m.mac[4], m.mac[5], m.port);
                    }
                    ni.port = m.port;
                    ni.confirmed_ms = now;
                    ni.resolved = true;
                    if (!rt_.neigh->set(m.ip, mac, m.port, dp::NeighState::Reachable)) {
                        log()->warn("neighbour table full: cannot add {}", ip_text(m.ip));
                    }
                } else if (m.type == dp::SlowMsg::Resolve) {
                    ni.port = m.port;
                    probe(m.ip, ni, now);
                }
            }
        }
    }
}

void Control::neighbour_tick(uint64_t now) {
    for (auto& [ip, n] : neigh_info_) {
        if (n.is_static) {
            continue;
        }
        if (n.resolved) {
            const uint64_t age = now - n.confirmed_ms;
            if (age >= kStaleAfter) {
                n.resolved = false;
                rt_.neigh->set_state(ip, dp::NeighState::Incomplete);
                log()->info("neighbour {} stopped answering", ip_text(ip));
            } else if (age >= kRefreshAfter) {
                probe(ip, n, now);
            }
        } else if (n.wanted) {
            probe(ip, n, now);
        }
    }
}

std::string Control::reload() {
    Config next;
    try {
        next = load_config(cfg_.file);
    } catch (const std::exception& e) {
        log()->error("reload refused, the running config stays: {}", e.what());
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
        log()->error("{}", msg);
        return msg;
    }
    Config old = std::move(cfg_);
    cfg_ = std::move(next);
    try {
        publish();
    } catch (const std::exception& e) {
        cfg_ = std::move(old);
        log()->error("reload refused, the running config stays: {}", e.what());
        return e.what();
    }
    set_static_neighbours();
    spdlog::set_level(spdlog::level::from_str(cfg_.log_level));
    log()->info("reloaded {}: {} services", cfg_.file, cfg_.services.size());
    return "";
}

Frame Control::handle(const Frame& req) {
    switch (req.type) {
    case MsgType::GetStatus: return {MsgType::Status, encode_status(status())};
    case MsgType::Reload: {
        const std::string err = reload();
        if (!err.empty()) {
            return {MsgType::Error, encode_string(err)};
        }
        return {MsgType::Status, encode_status(status())};
    }
    default:
        return {MsgType::Error,
                encode_string("unknown request type " + std::to_string(unsigned(req.type)))};
    }
}

void Control::run(const std::atomic<bool>& stop, uint32_t idle_exit_ms) {
    std::unique_ptr<ControlServer> server;
    try {
        server = std::make_unique<ControlServer>(cfg_.control_socket);
        log()->info("control socket {}", cfg_.control_socket);
    } catch (const std::exception& e) {
        log()->error("control socket: {}", e.what());
    }
    uint64_t last_rx = 0, last_rx_change = now_ms(), last_tick = 0;
    while (!stop.load(std::memory_order_relaxed)) {
        if (server) {
            server->poll(5, [this](const Frame& f) { return handle(f); });
        } else {
            struct timespec ts{0, 5'000'000};
            nanosleep(&ts, nullptr);
        }
        if (rt_.reload != nullptr && rt_.reload->exchange(false)) {
            log()->info("SIGHUP: reloading {}", cfg_.file);
            reload();
        }
        const uint64_t now = now_ms();
        drain_slow(now);
        if (now - last_tick >= 100) {
            last_tick = now;
            neighbour_tick(now);
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
                log()->info("no frame for {} ms: exiting (--idle-exit)", idle_exit_ms);
                break;
            }
        }
    }
}

Status Control::status() const {
    Status st;
    const dp::Snapshot* snap = rt_.snapshot->load(std::memory_order_acquire);
    uint64_t cap = 0;
    for (const dp::Worker* w : rt_.workers) {
        cap += w->conns.capacity();
    }
    st.conn_capacity = uint32_t(std::min<uint64_t>(cap, UINT32_MAX));
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
        for (const dp::Real& r : s.reals) {
            RealStatus rs;
            rs.addr = rte_be_to_cpu_32(r.addr);
            rs.port = rte_be_to_cpu_16(r.port);
            rs.forward = uint8_t(r.forward);
            rs.weight = r.weight;
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
    out << "redirected_out " << total(&WC::redirected_out) << "\n";
    out << "redirected_in " << total(&WC::redirected_in) << "\n";
    out << "consumed " << total(&WC::consumed) << "\n";
    return out.str();
}

}  // namespace lb::ctl
