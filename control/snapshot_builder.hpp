#pragma once
// Config -> immutable data-plane snapshot.
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include <rte_ether.h>

#include "control/config.hpp"
#include "dataplane/snapshot.hpp"

namespace lb::ctl {

// The counter slots of services and reals (indexes into the workers' per-service and per-real
// counters; connections remember theirs). A service or real that stays from one config to the
// next keeps its slot, so reloads leave counters and connections attributed right. A new one
// gets a slot never used before or, once those run out, a freed slot that `idle` says no
// connection uses any more.
class SlotMap {
public:
    using IdleFn = std::function<bool(bool real, uint16_t slot)>;
    struct Assignment {
        std::vector<uint16_t> svc;                // per service, config order
        std::vector<std::vector<uint16_t>> real;  // per service, per real
        std::vector<uint16_t> fresh_svc, fresh_real;  // slots given to a new identity
    };
    // Assigns and records slots for cfg. Throws ConfigError when no slot is free.
    Assignment assign(const Config& cfg, const IdleFn& idle);

private:
    using SvcKey = std::tuple<uint8_t, uint32_t, uint16_t>;  // proto, vip, port
    using RealKey = std::tuple<uint8_t, uint32_t, uint16_t, uint32_t, uint16_t>;
    std::map<SvcKey, uint16_t> svc_;
    std::map<RealKey, uint16_t> real_;
    uint32_t next_svc_ = 0, next_real_ = 0;
    std::vector<uint16_t> freed_svc_, freed_real_;
};

// port_macs[p]: the MAC address port p uses. Throws ConfigError when the config exceeds the
// data plane's limits (services, reals). Without `slots`, slots are numbered in config order.
std::unique_ptr<dp::Snapshot> build_snapshot(const Config& cfg,
                                             const std::array<rte_ether_addr, dp::kMaxPorts>& port_macs,
                                             uint16_t n_workers, uint64_t generation,
                                             SlotMap* slots = nullptr,
                                             const SlotMap::IdleFn& idle = {});

const char* sched_name(dp::SchedKind k);

}  // namespace lb::ctl
