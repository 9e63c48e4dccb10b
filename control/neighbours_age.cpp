// The neighbour policy's side that runs on the clock and on config changes: the wanted set
// (reals' next hops, gateways), static entries, ageing, verification, probes and reclaim.
#include <spdlog/spdlog.h>

#include "control/config.hpp"
#include "control/log.hpp"
#include "control/neighbours.hpp"

namespace lb::ctl {

void Neighbours::recount() {
    dynamic_ = 0;
    for (uint32_t s = 0; s < dp::NeighbourTable::kSlots; ++s) {
        if (info_[s].phase != Phase::Unused && dynamic(info_[s])) {
            ++dynamic_;
        }
    }
}

void Neighbours::want(const dp::Snapshot& snap, uint64_t now) {
    for (const uint32_t s : wanted_) {
        info_[s].wanted = false;  // dynamic again unless still wanted: reclaimed when unused
    }
    wanted_.clear();
    auto add = [&](rte_be32_t nh, uint16_t port) {
        if (!acceptable(snap, port, nh, false)) {
            return;
        }
        int32_t s = table_.find(nh);
        if (s < 0) {
            s = make(nh, false, now);
            if (s < 0) {
                control_log()->warn("neighbour table full: cannot resolve {}", ip_text(nh));
                return;
            }
            info_[s].port = port;
        }
        Info& n = info_[s];
        if (!n.wanted) {
            n.wanted = true;
            wanted_.push_back(uint32_t(s));
        }
        if (n.phase == Phase::Resolving) {
            n.port = port;
        }
    };
    for (const dp::Service& sv : snap.services) {
        for (const dp::Real& r : sv.reals) {
            if (const dp::Route* rt = snap.route(r.addr)) {
                add(rt->gateway != 0 ? rt->gateway : r.addr, rt->port);
            }
        }
    }
    for (const dp::Route& r : snap.routes) {
        if (r.gateway != 0) {
            add(r.gateway, r.port);
        }
    }
    recount();
}

void Neighbours::set_statics(const std::vector<Static>& list) {
    for (const uint32_t s : statics_) {
        info_[s].is_static = false;
    }
    std::vector<uint32_t> old;
    old.swap(statics_);
    for (const Static& st : list) {
        int32_t s = table_.find(st.ip);
        if (s < 0) {
            s = make(st.ip, false, 0);
            if (s < 0) {
                control_log()->warn("neighbour table full: cannot add static {}", ip_text(st.ip));
                continue;
            }
        }
        Info& n = info_[s];
        n.is_static = true;
        n.port = st.port;
        take(uint32_t(s), st.mac, 0);
        statics_.push_back(uint32_t(s));
    }
    for (const uint32_t s : old) {
        Info& n = info_[s];
        if (n.is_static || n.phase == Phase::Unused) {
            continue;
        }
        if (n.wanted) {
            n.phase = Phase::Resolving;  // resolve it by ARP from now on
            n.probes = 0;
            n.probed_ms = 0;
            table_.write(s, n.mac, n.port, dp::NeighState::Incomplete);
        } else {
            drop(s);
        }
    }
    recount();
}

void Neighbours::step(uint32_t s, uint64_t now) {
    Info& n = info_[s];
    if (n.is_static || n.phase == Phase::Unused) {
        return;
    }
    const bool due = n.probed_ms == 0 || now - n.probed_ms >= kProbeInterval;
    switch (n.phase) {
        case Phase::Resolving:
            if (!n.wanted && now - n.created_ms >= (kBcastProbes + 1) * kProbeInterval) {
                ++counts_.reclaimed;  // no answer (or no probe budget) in time
                drop(s);
            } else if (due && (n.wanted || n.probes < kBcastProbes)) {
                probe(s, false, now);
            }
            return;
        case Phase::Verifying:
            if (!due) {
                return;
            }
            if (n.probes >= kUcastProbes) {
                // The MAC lb has stopped answering: stop using it, ask by broadcast.
                if (n.wanted || log_ok(now)) {
                    control_log()->info("neighbour {} at {} stopped answering", ip_text(table_.key(s)),
                                mac_text(n.mac));
                }
                n.phase = Phase::Resolving;
                n.probes = 0;
                n.created_ms = now;
                table_.write(s, n.mac, n.port, dp::NeighState::Incomplete);
                probe(s, false, now);
                return;
            }
            probe(s, true, now);
            return;
        case Phase::Reachable: {
            const uint64_t age = now - n.confirmed_ms;
            if (age < kRefreshMs) {
                return;
            }
            if (n.wanted || in_use(s)) {
                n.phase = Phase::Verifying;
                n.probes = 0;
                n.probed_ms = 0;
                probe(s, true, now);
            } else if (age >= kStaleMs) {
                ++counts_.reclaimed;
                drop(s);
            }
            return;
        }
        case Phase::Unused: return;
    }
}

void Neighbours::tick(uint64_t now) {
    table_.reclaim();
    if (now - sweep_ms_ >= kSweepMs) {
        // Which dynamic entries the workers looked up since the last sweep; the generation bump
        // makes them look up (and mark) the ones they use again.
        sweep_ms_ = now;
        for (uint32_t s = 0; s < dp::NeighbourTable::kSlots; ++s) {
            if (info_[s].phase != Phase::Unused && dynamic(info_[s])) {
                info_[s].seen_use = table_.take_used(s);
            }
        }
        table_.touch();
    }
    for (const uint32_t s : wanted_) {
        step(s, now);  // reals and gateways first: they get the probe budget first
    }
    for (uint32_t s = 0; s < dp::NeighbourTable::kSlots; ++s) {
        if (!info_[s].wanted) {
            step(s, now);
        }
    }
}

}  // namespace lb::ctl
