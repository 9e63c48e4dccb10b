#pragma once
// The control thread's clock: milliseconds of the steady clock (deadlines, ticks, uptime).
#include <chrono>
#include <cstdint>

namespace lb::ctl {

inline uint64_t now_ms() {
    using namespace std::chrono;
    return uint64_t(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

}  // namespace lb::ctl
