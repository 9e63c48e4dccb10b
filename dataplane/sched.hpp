#pragma once
// Schedulers. Control precomputes each service's tables (build_sched); workers pick with one
// atomic increment of the service's shared cursor, so the sequence is IPVS's global one no
// matter which worker sees the new connection.
#include <cstdint>

#include "dataplane/snapshot.hpp"

namespace lb::dp {

inline constexpr int32_t kNoReal = -1;

// Fills rr_order, wrr_runs and wrr_period from the service's reals and weights.
void build_sched(Service& svc);

// The n-th pick of the service's scheduler (index into svc.reals), or kNoReal.
int32_t sched_nth(const Service& svc, uint64_t n) noexcept;

// Takes the next pick of the shared sequence.
inline int32_t sched_pick(const Service& svc) noexcept {
    const uint64_t n = svc.cursor.next.fetch_add(1, std::memory_order_relaxed);
    return sched_nth(svc, n);
}

}  // namespace lb::dp
