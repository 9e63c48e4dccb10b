#pragma once
// Schedulers with IPVS's semantics. Control precomputes each service's tables (build_sched);
// a worker picks for a new connection with sched_pick.
//
// rr and wrr walk IPVS's sequence with atomic increments of the service's shared cursor (a worker
// takes all of a burst's turns with one), so the sequence is IPVS's global one whichever worker
// sees the new connection. lc, wlc, sed, nq
// and ovf compare the active/inactive connection counts of the picking worker's own table
// (one worker: exactly IPVS; several: each balances its share, see docs/architecture.md,
// "Schedulers"). sh, dh and mh are pure functions of the packet and the tables, identical on
// every worker and director.
#include <cstdint>

#include <rte_byteorder.h>

#include "dataplane/snapshot.hpp"
#include "dataplane/types.hpp"

namespace lb::dp {

inline constexpr int32_t kNoReal = -1;
inline constexpr uint16_t kNoSlot = 0xFFFF;
inline constexpr uint32_t kShBuckets = 256;  // IPVS's default table size for sh and dh

// What a scheduler may look at for one new connection.
struct SchedCtx {
    rte_be32_t src = 0;       // client address
    rte_be16_t sport = 0;     // client port
    rte_be32_t dst = 0;       // destination address (the VIP)
    const TrafficCounters* load = nullptr;  // this worker's per-real gauges, by stats_slot
    // Per real slot: 1 while the real is over its connection thresholds (control keeps it,
    // IPVS's IP_VS_DEST_F_OVERLOAD); nullptr: none is.
    const std::atomic<uint8_t>* overload = nullptr;
};

// Fills rr_order, wrr_runs, wrr_period and hash_table from the service's reals, weights and
// scheduler. mh: the Maglev table of the reals' addresses, ports and weights (see maglev.hpp),
// identical on every director with the same reals. Throws std::invalid_argument for an mh table
// size that is not a prime.
void build_sched(Service& svc);

// The n-th pick of rr/wrr's sequence (index into svc.reals), or kNoReal.
int32_t sched_nth(const Service& svc, uint64_t n) noexcept;

// The real for a new connection (index into svc.reals), or kNoReal.
int32_t sched_pick(const Service& svc, const SchedCtx& ctx) noexcept;

// rr and wrr with a turn already taken from the cursor (a worker takes a burst's turns with one
// increment): the n-th pick of the sequence, or further turns when that real is unavailable.
int32_t sched_pick_turn(const Service& svc, const SchedCtx& ctx, uint64_t n) noexcept;

inline bool sched_takes_turns(const Service& svc) noexcept {
    return svc.sched == SchedKind::Rr || svc.sched == SchedKind::Wrr;
}

// The hashes sh, dh and mh use (exposed for tests and tools).
uint32_t sh_bucket(rte_be32_t addr, rte_be16_t port, uint32_t offset) noexcept;
uint32_t dh_bucket(rte_be32_t addr) noexcept;
uint32_t mh_slot(rte_be32_t addr, rte_be16_t port, uint32_t attempt, uint32_t size) noexcept;

}  // namespace lb::dp
