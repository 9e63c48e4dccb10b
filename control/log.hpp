#pragma once
// The control thread's logger and the text of an address in its messages.
#include <memory>
#include <string>

#include <rte_byteorder.h>
#include <spdlog/spdlog.h>

#include "control/config.hpp"

namespace lb::ctl {

// The "control" logger lb's main sets up, or spdlog's default (tests, tools).
inline std::shared_ptr<spdlog::logger> control_log() {
    auto l = spdlog::get("control");
    return l ? l : spdlog::default_logger();
}

// An address in network order as text.
inline std::string ip_text(rte_be32_t ip) { return format_ipv4(rte_be_to_cpu_32(ip)); }

}  // namespace lb::ctl
