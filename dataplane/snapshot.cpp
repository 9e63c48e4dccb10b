#include "dataplane/snapshot.hpp"

#include <algorithm>
#include <tuple>

#include <rte_hash_crc.h>

namespace lb::dp {

namespace {
std::atomic<uint64_t> g_snapshot_uid{0};
}

Snapshot::Snapshot() : uid(g_snapshot_uid.fetch_add(1, std::memory_order_relaxed) + 1) {
    iface_of_port.fill(-1);
}

namespace {
uint32_t svc_hash(rte_be32_t vip, rte_be16_t port, uint8_t proto) noexcept {
    return rte_hash_crc_4byte(uint32_t(port) << 8 | proto, rte_hash_crc_4byte(vip, 0x1234567u));
}
}  // namespace

void Snapshot::finalize() {
    size_t n = 16;
    while (n < services.size() * 4) {
        n <<= 1;
    }
    svc_index_.assign(n, 0);
    svc_of_slot_.clear();
    svc_mask_ = uint32_t(n - 1);
    std::vector<std::pair<rte_be32_t, uint8_t>> addrs;
    for (uint32_t i = 0; i < services.size(); ++i) {
        const Service& s = services[i];
        uint32_t slot = svc_hash(s.vip, s.port, s.proto) & svc_mask_;
        while (svc_index_[slot] != 0) {
            slot = (slot + 1) & svc_mask_;
        }
        svc_index_[slot] = i + 1;
        addrs.emplace_back(s.vip, kAddrVip);
        if (s.stats_slot >= svc_of_slot_.size()) {
            svc_of_slot_.resize(size_t(s.stats_slot) + 1, -1);
        }
        svc_of_slot_[s.stats_slot] = int32_t(i);
    }
    for (const rte_be32_t v : retired_vips) {
        addrs.emplace_back(v, kAddrVip);
    }
    iface_of_port.fill(-1);
    for (size_t i = 0; i < interfaces.size(); ++i) {
        addrs.emplace_back(interfaces[i].addr, kAddrLocal);
        if (interfaces[i].port < kMaxPorts) {
            iface_of_port[interfaces[i].port] = int16_t(i);
        }
    }
    size_t n_addr = 16;
    while (n_addr < addrs.size() * 4) {
        n_addr <<= 1;
    }
    addr_keys_.assign(n_addr, 0);
    addr_kinds_.assign(n_addr, 0);
    addr_mask_ = uint32_t(n_addr - 1);
    for (const auto& [a, kind] : addrs) {
        if (a == 0) {
            continue;
        }
        uint32_t slot = addr_slot(a);
        while (addr_keys_[slot] != 0 && addr_keys_[slot] != a) {
            slot = (slot + 1) & addr_mask_;
        }
        addr_keys_[slot] = a;
        addr_kinds_[slot] |= kind;
    }
    nat_reals_.clear();
    for (uint32_t i = 0; i < services.size(); ++i) {
        for (const Real& r : services[i].reals) {
            if (r.forward == Forward::Nat) {
                nat_reals_.push_back({r.addr, r.port, services[i].proto, int32_t(i)});
            }
        }
    }
    const auto key = [](const RealKey& k) { return std::tuple(k.addr, k.port, k.proto); };
    std::sort(nat_reals_.begin(), nat_reals_.end(),
              [&](const RealKey& a, const RealKey& b) { return key(a) < key(b); });
    for (size_t i = 0, j; i < nat_reals_.size(); i = j) {
        bool shared = false;  // a run of one key: several services?
        for (j = i + 1; j < nat_reals_.size() && key(nat_reals_[j]) == key(nat_reals_[i]); ++j) {
            shared |= nat_reals_[j].svc != nat_reals_[i].svc;
        }
        for (size_t k = i; shared && k < j; ++k) {
            nat_reals_[k].svc = -1;
        }
    }
    index_routes();
}

void Snapshot::index_routes() {
    std::stable_sort(routes.begin(), routes.end(),
                     [](const Route& a, const Route& b) { return a.prefix_len > b.prefix_len; });
    // A connected subnet's network and broadcast addresses (not on /31 and /32 links).
    std::vector<rte_be32_t> martians;
    for (const Interface& i : interfaces) {
        if (i.prefix_len < 31) {
            martians.push_back(i.addr & i.mask);
            martians.push_back(i.addr | ~i.mask);
        }
    }
    route_table_.build(routes, martians);
}

const Service* Snapshot::find_service(rte_be32_t vip, rte_be16_t port,
                                      uint8_t proto) const noexcept {
    if (svc_index_.empty()) {
        return nullptr;
    }
    uint32_t slot = svc_hash(vip, port, proto) & svc_mask_;
    while (svc_index_[slot] != 0) {
        const Service& s = services[svc_index_[slot] - 1];
        if (s.vip == vip && s.port == port && s.proto == proto) {
            return &s;
        }
        slot = (slot + 1) & svc_mask_;
    }
    return nullptr;
}

const Service* Snapshot::nat_service_of_real(rte_be32_t addr, rte_be16_t port,
                                             uint8_t proto) const noexcept {
    const auto want = std::tuple(addr, port, proto);
    const auto it = std::lower_bound(nat_reals_.begin(), nat_reals_.end(), want,
                                     [](const RealKey& k, const auto& w) {
                                         return std::tuple(k.addr, k.port, k.proto) < w;
                                     });
    if (it == nat_reals_.end() || std::tuple(it->addr, it->port, it->proto) != want ||
        it->svc < 0) {
        return nullptr;
    }
    return &services[size_t(it->svc)];
}

}  // namespace lb::dp
