#pragma once
// Config -> immutable data-plane snapshot.
#include <array>
#include <memory>

#include <rte_ether.h>

#include "control/config.hpp"
#include "dataplane/snapshot.hpp"

namespace lb::ctl {

// port_macs[p]: the MAC address port p uses. Throws ConfigError when the config exceeds the
// data plane's limits (services, reals).
std::unique_ptr<dp::Snapshot> build_snapshot(const Config& cfg,
                                             const std::array<rte_ether_addr, dp::kMaxPorts>& port_macs,
                                             uint16_t n_workers, uint64_t generation);

const char* sched_name(dp::SchedKind k);

}  // namespace lb::ctl
