#include "control/neighbours.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <spdlog/spdlog.h>

#include "control/config.hpp"
#include "control/log.hpp"

namespace lb::ctl {

namespace {

bool same_mac(const rte_ether_addr& a, const rte_ether_addr& b) {
    return std::memcmp(a.addr_bytes, b.addr_bytes, 6) == 0;
}

}  // namespace

std::string mac_text(const rte_ether_addr& m) { return format_mac(m.addr_bytes); }

Neighbours::Neighbours(dp::NeighbourTable& table, Send send)
    : table_(table), send_(std::move(send)), info_(new Info[dp::NeighbourTable::kSlots]) {}

// strict: also on the port's subnet (what ARP from a port says; wanted and asked-for next hops
// follow the configured routes, which may name on-link addresses outside it).
bool Neighbours::acceptable(const dp::Snapshot& snap, uint16_t port, rte_be32_t ip,
                            bool strict) const {
    const dp::Interface* ifc = snap.interface_of(port);
    if (ifc == nullptr) {
        return false;
    }
    const uint32_t h = rte_be_to_cpu_32(ip), m = rte_be_to_cpu_32(ifc->mask);
    const uint32_t a = rte_be_to_cpu_32(ifc->addr);
    if (h == 0 || h >> 28 >= 0xe || h >> 24 == 127) {
        return false;  // 0, multicast, class E and broadcast, loopback
    }
    const bool on_link = (h & m) == (a & m);
    if (strict && !on_link) {
        return false;
    }
    if (on_link && m < 0xfffffffeu && ((h & ~m) == 0 || (h & ~m) == ~m)) {
        return false;  // the subnet's network or broadcast address
    }
    return !snap.is_local(ip) && !snap.is_vip(ip);
}

bool Neighbours::log_ok(uint64_t now) {
    if (now - log_window_ms_ >= 10'000) {
        if (suppressed_ != 0) {
            control_log()->warn("{} more neighbour messages suppressed", suppressed_);
        }
        log_window_ms_ = now;
        logged_ = 0;
        suppressed_ = 0;
    }
    if (logged_ < 20) {
        ++logged_;
        return true;
    }
    ++suppressed_;
    return false;
}

bool Neighbours::in_use(uint32_t s) const {
    return info_[s].seen_use || table_.used_at(s);
}

int32_t Neighbours::make(rte_be32_t ip, bool dyn, uint64_t now) {
    if (dyn && dynamic_ >= kMaxDynamic) {
        // Evict the least useful of a few dynamic entries after the clock hand: unused before used,
        // then the longest unconfirmed.
        int32_t best = -1;
        uint32_t seen = 0;
        for (uint32_t i = 0; i < dp::NeighbourTable::kSlots && seen < 8; ++i) {
            const uint32_t s = hand_;
            hand_ = (hand_ + 1) & (dp::NeighbourTable::kSlots - 1);
            const Info& n = info_[s];
            if (n.phase == Phase::Unused || !dynamic(n)) {
                continue;
            }
            ++seen;
            const auto rank = [&](uint32_t x) {
                return std::make_pair(in_use(x),
                                      std::max(info_[x].confirmed_ms, info_[x].created_ms));
            };
            if (best < 0 || rank(s) < rank(uint32_t(best))) {
                best = int32_t(s);
            }
        }
        if (best < 0) {
            ++counts_.full;
            return -1;
        }
        drop(uint32_t(best));
        ++counts_.evicted;
    }
    const int32_t s = table_.claim(ip);
    if (s < 0) {
        ++counts_.full;
        return -1;
    }
    info_[s] = Info{};
    info_[s].created_ms = now;
    info_[s].phase = Phase::Resolving;
    if (dyn) {
        ++dynamic_;
    }
    return s;
}

void Neighbours::drop(uint32_t s) {
    if (dynamic(info_[s]) && dynamic_ > 0) {
        --dynamic_;
    }
    table_.release(s);
    info_[s] = Info{};
}

void Neighbours::take(uint32_t s, const rte_ether_addr& mac, uint64_t now) {
    Info& n = info_[s];
    n.mac = mac;
    n.known = true;
    n.phase = Phase::Reachable;
    n.confirmed_ms = now;
    n.probed_ms = 0;
    n.probes = 0;
    table_.write(s, mac, n.port, n.is_static ? dp::NeighState::Static : dp::NeighState::Reachable);
}

bool Neighbours::probe(uint32_t s, bool unicast, uint64_t now) {
    tokens_ = std::min<double>(kProbeRate, tokens_ + double(now - tokens_ms_) * kProbeRate / 1000);
    tokens_ms_ = now;
    if (tokens_ < 1) {
        ++counts_.probes_limited;
        return false;
    }
    tokens_ -= 1;
    Info& n = info_[s];
    send_(n.port, table_.key(s), unicast && n.known ? &n.mac : nullptr);
    n.probed_ms = now;
    ++n.probes;
    ++counts_.probes_sent;
    return true;
}

void Neighbours::refuse_claim(uint32_t s, const rte_ether_addr& mac, uint16_t port, const char* how,
                              uint64_t now) {
    Info& n = info_[s];
    ++counts_.claims_refused;
    if (log_ok(now)) {
        control_log()->warn("neighbour {}: refused {} claiming {} (port {}); keeping {} (port {}) until "
                    "lb's own probe says otherwise",
                    ip_text(table_.key(s)), how, mac_text(mac), port, mac_text(n.mac), n.port);
    }
    // A claim from another port cannot be the neighbour moving: refused, nothing to verify.
    if (n.phase == Phase::Reachable && !n.is_static && port == n.port) {
        n.phase = Phase::Verifying;
        n.probes = 0;
        n.probed_ms = 0;
        probe(s, true, now);
    }
}

void Neighbours::on_request(const dp::Snapshot& snap, uint16_t port, rte_be32_t ip,
                            const rte_ether_addr& mac, uint64_t now) {
    if (!acceptable(snap, port, ip, true)) {
        ++counts_.refused_senders;
        return;
    }
    int32_t s = table_.find(ip);
    if (s < 0) {
        s = make(ip, true, now);
        if (s >= 0) {
            info_[s].port = port;
            take(uint32_t(s), mac, now);
            ++counts_.learned;
        }
        return;
    }
    Info& n = info_[s];
    const bool same = n.known && same_mac(mac, n.mac) && port == n.port;
    if (n.phase == Phase::Reachable || n.phase == Phase::Verifying || n.is_static) {
        if (!same) {
            refuse_claim(uint32_t(s), mac, port, "ARP request", now);
        } else if (!n.is_static) {
            take(uint32_t(s), mac, now);  // the host we know asks for us: it is there
        }
        return;
    }
    // Resolving: a next hop lb asked for by broadcast. Reals and gateways wait for the answer to
    // lb's probe; an address learned before keeps its MAC until the probe says otherwise.
    if (!n.wanted && port == n.port && (!n.known || same)) {
        if (!n.known) {
            ++counts_.learned;
        }
        take(uint32_t(s), mac, now);
    } else if (n.known && !same) {
        ++counts_.claims_refused;
    }
}

void Neighbours::on_reply(const dp::Snapshot& snap, uint16_t port, rte_be32_t ip,
                          const rte_ether_addr& mac, uint64_t now) {
    const bool ok = acceptable(snap, port, ip, true);
    const int32_t s = table_.find(ip);
    if (s < 0) {
        ++(ok ? counts_.unsolicited : counts_.refused_senders);
        return;
    }
    Info& n = info_[s];
    const bool same = n.known && same_mac(mac, n.mac) && port == n.port;
    const bool asked = n.probed_ms != 0 && now - n.probed_ms <= kAnswerMs;
    if (!ok || n.is_static || !asked) {
        if (n.known && !same) {
            refuse_claim(uint32_t(s), mac, port, asked ? "ARP reply" : "unsolicited ARP reply",
                         now);
        } else {
            ++counts_.unsolicited;
        }
        return;
    }
    if (n.phase == Phase::Resolving) {
        if (port != n.port) {
            ++counts_.claims_refused;
            return;
        }
        if (n.known && !same_mac(mac, n.mac)) {
            ++counts_.mac_changes;
            control_log()->warn("neighbour {} changed MAC {} -> {} (port {}), confirmed by lb's probe",
                        ip_text(ip), mac_text(n.mac), mac_text(mac), port);
        } else if (!n.known) {
            ++counts_.learned;
            if (n.wanted || log_ok(now)) {
                control_log()->info("neighbour {} is at {} (port {})", ip_text(ip), mac_text(mac), port);
            }
        }
        take(uint32_t(s), mac, now);
        return;
    }
    if (!same) {
        refuse_claim(uint32_t(s), mac, port, "ARP reply", now);
        return;
    }
    if (n.phase == Phase::Verifying && n.probes != 0 && log_ok(now)) {
        control_log()->info("neighbour {} answered at {} (port {})", ip_text(ip), mac_text(mac), port);
    }
    take(uint32_t(s), mac, now);
}

void Neighbours::on_resolve(const dp::Snapshot& snap, uint16_t port, rte_be32_t ip, uint64_t now) {
    if (!acceptable(snap, port, ip, false)) {
        ++counts_.refused_senders;
        return;
    }
    int32_t s = table_.find(ip);
    if (s < 0) {
        s = make(ip, true, now);
        if (s < 0) {
            return;
        }
        info_[s].port = port;
    }
    Info& n = info_[s];
    if (n.phase == Phase::Resolving && (n.probed_ms == 0 || now - n.probed_ms >= kProbeInterval)) {
        probe(uint32_t(s), false, now);
    }
}

std::vector<std::pair<std::string, uint64_t>> Neighbours::count_pairs() const {
    const NeighbourCounts& c = counts_;
    return {{"neigh_learned", c.learned},
            {"neigh_mac_changes", c.mac_changes},
            {"neigh_claims_refused", c.claims_refused},
            {"neigh_unsolicited", c.unsolicited},
            {"neigh_refused_senders", c.refused_senders},
            {"neigh_reclaimed", c.reclaimed},
            {"neigh_evicted", c.evicted},
            {"neigh_full", c.full},
            {"neigh_probes_sent", c.probes_sent},
            {"neigh_probes_limited", c.probes_limited}};
}

}  // namespace lb::ctl
