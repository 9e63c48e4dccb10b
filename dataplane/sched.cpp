#include "dataplane/sched.hpp"

#include <algorithm>
#include <stdexcept>
#include <numeric>

#include "dataplane/maglev.hpp"

namespace lb::dp {

namespace {

// The kernel's hash_32(): multiply by the 32-bit golden ratio, keep the top bits.
inline uint32_t hash_32(uint32_t v, unsigned bits) noexcept {
    return (v * 0x61C88647u) >> (32 - bits);
}

// A 64-bit finaliser (MurmurHash3's fmix64): fixed, so mh is the same on every director.
inline uint64_t mix64(uint64_t k) noexcept {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

// A real takes new connections when its weight is positive and it is not overloaded.
inline bool available(const Real& r, const SchedCtx& ctx) noexcept {
    return r.weight > 0 && (ctx.overload == nullptr ||
                            ctx.overload[r.stats_slot].load(std::memory_order_relaxed) == 0);
}

inline uint64_t active_of(const SchedCtx& ctx, const Real& r) noexcept {
    return ctx.load[r.stats_slot].active.get();
}
inline uint64_t inactive_of(const SchedCtx& ctx, const Real& r) noexcept {
    return ctx.load[r.stats_slot].inactive.get();
}

// lc and wlc's overhead: an active connection weighs 256 inactive ones.
inline uint64_t conn_overhead(const SchedCtx& ctx, const Real& r) noexcept {
    return (active_of(ctx, r) << 8) + inactive_of(ctx, r);
}

int32_t pick_lc(const Service& svc, const SchedCtx& ctx) noexcept {
    int32_t best = kNoReal;
    uint64_t loh = 0;
    for (size_t i = 0; i < svc.reals.size(); ++i) {
        const Real& r = svc.reals[i];
        if (!available(r, ctx)) {
            continue;
        }
        const uint64_t doh = conn_overhead(ctx, r);
        if (best == kNoReal || doh < loh) {
            best = int32_t(i);
            loh = doh;
        }
    }
    return best;
}

// wlc, sed and nq: the least overhead / weight, compared by cross-multiplication; the first
// real wins a tie. nq first takes any real with no active connection.
template <class Overhead>
int32_t pick_weighted_least(const Service& svc, const SchedCtx& ctx, bool idle_first,
                            Overhead overhead) noexcept {
    int32_t best = kNoReal;
    uint64_t loh = 0;
    for (size_t i = 0; i < svc.reals.size(); ++i) {
        const Real& r = svc.reals[i];
        if (!available(r, ctx)) {
            continue;
        }
        if (idle_first && active_of(ctx, r) == 0) {
            return int32_t(i);
        }
        const uint64_t doh = overhead(r);
        // overhead < 2^41 and weights < 2^16: the products fit in 64 bits.
        if (best == kNoReal || loh * r.weight > doh * svc.reals[size_t(best)].weight) {
            best = int32_t(i);
            loh = doh;
        }
    }
    return best;
}

int32_t pick_fo(const Service& svc, const SchedCtx& ctx) noexcept {
    int32_t best = kNoReal;
    uint32_t hw = 0;
    for (size_t i = 0; i < svc.reals.size(); ++i) {
        const Real& r = svc.reals[i];
        if (available(r, ctx) && r.weight > hw) {
            best = int32_t(i);
            hw = r.weight;
        }
    }
    return best;
}

int32_t pick_ovf(const Service& svc, const SchedCtx& ctx) noexcept {
    int32_t best = kNoReal;
    uint32_t hw = 0;
    for (size_t i = 0; i < svc.reals.size(); ++i) {
        const Real& r = svc.reals[i];
        if (!available(r, ctx) || active_of(ctx, r) > r.weight) {
            continue;
        }
        if (best == kNoReal || r.weight > hw) {
            best = int32_t(i);
            hw = r.weight;
        }
    }
    return best;
}

int32_t pick_sh(const Service& svc, const SchedCtx& ctx) noexcept {
    if (svc.hash_table.size() != kShBuckets) {
        return kNoReal;
    }
    const rte_be16_t port = (svc.sched_flags & kSchedPort) != 0 ? ctx.sport : 0;
    const uint32_t ihash = sh_bucket(ctx.src, port, 0);
    uint16_t slot = svc.hash_table[ihash];
    if (slot == kNoSlot) {
        return kNoReal;
    }
    if (available(svc.reals[slot], ctx)) {
        return slot;
    }
    if ((svc.sched_flags & kSchedFallback) == 0) {
        return kNoReal;
    }
    // IPVS's fallback: walk the whole table from a point derived from the same hash.
    for (uint32_t offset = 0; offset < kShBuckets; ++offset) {
        slot = svc.hash_table[sh_bucket(ctx.src, port, (offset + ihash) % kShBuckets)];
        if (slot == kNoSlot) {
            break;
        }
        if (available(svc.reals[slot], ctx)) {
            return slot;
        }
    }
    return kNoReal;
}

int32_t pick_dh(const Service& svc, const SchedCtx& ctx) noexcept {
    if (svc.hash_table.size() != kShBuckets) {
        return kNoReal;
    }
    const uint16_t slot = svc.hash_table[dh_bucket(ctx.dst)];
    return slot != kNoSlot && available(svc.reals[slot], ctx) ? int32_t(slot) : kNoReal;
}

int32_t pick_mh(const Service& svc, const SchedCtx& ctx) noexcept {
    const uint32_t size = uint32_t(svc.hash_table.size());
    if (size == 0) {
        return kNoReal;
    }
    const rte_be16_t port = (svc.sched_flags & kSchedPort) != 0 ? ctx.sport : 0;
    // Weight-0 reals have no entries, so the first probe is available unless a real becomes
    // unavailable some other way (thresholds); mh-fallback then tries further probes.
    const uint32_t tries = (svc.sched_flags & kSchedFallback) != 0 ? 64 : 1;
    for (uint32_t k = 0; k < tries; ++k) {
        const uint16_t slot = svc.hash_table[mh_slot(ctx.src, port, k, size)];
        if (slot == kNoSlot) {
            return kNoReal;
        }
        if (available(svc.reals[slot], ctx)) {
            return slot;
        }
    }
    return kNoReal;
}

// IPVS's sh table: the reals in list order, each repeated `weight` times (at least once),
// round and round until 256 buckets are filled.
void build_sh_table(Service& svc) {
    svc.hash_table.assign(kShBuckets, kNoSlot);
    if (svc.reals.empty()) {
        return;
    }
    size_t p = 0;
    uint32_t count = 0;
    for (uint32_t i = 0; i < kShBuckets; ++i) {
        svc.hash_table[i] = uint16_t(p);
        if (++count >= svc.reals[p].weight) {
            p = (p + 1) % svc.reals.size();
            count = 0;
        }
    }
}

// IPVS's dh table: the reals in list order, one bucket each, round and round.
void build_dh_table(Service& svc) {
    svc.hash_table.assign(kShBuckets, kNoSlot);
    for (uint32_t i = 0; !svc.reals.empty() && i < kShBuckets; ++i) {
        svc.hash_table[i] = uint16_t(i % svc.reals.size());
    }
}

void build_wrr(Service& svc) {
    uint32_t g = 0, max_w = 0;
    std::vector<uint32_t> desc;
    for (uint32_t i = 0; i < svc.reals.size(); ++i) {
        const uint32_t w = svc.reals[i].weight;
        if (w > 0) {
            svc.rr_order.push_back(i);
            g = g == 0 ? w : std::gcd(g, w);
            max_w = std::max(max_w, w);
            desc.push_back(w);
        }
    }
    if (max_w == 0) {
        return;
    }
    std::sort(desc.begin(), desc.end(), std::greater<>());
    const int64_t mw = int64_t(max_w) - (g - 1);
    size_t eligible = 0;
    uint64_t pos = 0;
    for (int64_t cw = mw; cw > 0; cw -= g) {
        while (eligible < desc.size() && int64_t(desc[eligible]) >= cw) {
            ++eligible;
        }
        if (svc.wrr_runs.empty() || svc.wrr_runs.back().eligible != eligible) {
            svc.wrr_runs.push_back({pos, uint32_t(cw), uint32_t(eligible)});
        }
        pos += eligible;
    }
    svc.wrr_period = pos;
}

}  // namespace

uint32_t sh_bucket(rte_be32_t addr, rte_be16_t port, uint32_t offset) noexcept {
    return (offset + hash_32(rte_be_to_cpu_16(port) + rte_be_to_cpu_32(addr), 8)) %
           kShBuckets;
}

uint32_t dh_bucket(rte_be32_t addr) noexcept {
    return uint32_t((uint64_t(rte_be_to_cpu_32(addr)) * 2654435761ULL) % kShBuckets);
}

uint32_t mh_slot(rte_be32_t addr, rte_be16_t port, uint32_t attempt, uint32_t size) noexcept {
    const uint64_t key = uint64_t(rte_be_to_cpu_32(addr)) << 16 | rte_be_to_cpu_16(port);
    const uint64_t h = mix64(key ^ (uint64_t(attempt) * 0x9E3779B97F4A7C15ULL));
    return uint32_t(((h >> 32) * size) >> 32);  // multiply-shift: no division
}

// wrr follows IPVS: with g the gcd of the positive weights and mw = max - (g - 1), the current
// weight cw starts at mw and walks down by g to 1 (then wraps); at each level every real with
// weight >= cw is picked once, in list order. Consecutive levels that admit the same reals form
// a run, so a period is a handful of runs whatever the weights are.
void build_sched(Service& svc) {
    svc.rr_order.clear();
    svc.wrr_runs.clear();
    svc.wrr_period = 0;
    svc.hash_table.clear();
    build_wrr(svc);
    switch (svc.sched) {
    case SchedKind::Sh: build_sh_table(svc); break;
    case SchedKind::Dh: build_dh_table(svc); break;
    case SchedKind::Mh: {
        std::vector<MaglevBackend> backends;
        backends.reserve(svc.reals.size());
        for (const Real& r : svc.reals) {
            backends.push_back({r.addr, r.port, r.weight});
        }
        svc.hash_table = build_maglev(backends, svc.mh_size);
        if (std::all_of(svc.hash_table.begin(), svc.hash_table.end(),
                        [](uint16_t e) { return e == kMaglevNone; })) {
            svc.hash_table.clear();  // no real with weight > 0
        }
        break;
    }
    default: break;
    }
}

int32_t sched_nth(const Service& svc, uint64_t n) noexcept {
    if (svc.sched == SchedKind::Rr) {
        const size_t k = svc.rr_order.size();
        return k == 0 ? kNoReal : int32_t(svc.rr_order[n % k]);
    }
    if (svc.wrr_period == 0) {
        return kNoReal;
    }
    const uint64_t pos = n % svc.wrr_period;
    // Last run that starts at or before pos.
    auto it = std::upper_bound(svc.wrr_runs.begin(), svc.wrr_runs.end(), pos,
                               [](uint64_t p, const WrrRun& r) { return p < r.start; });
    const WrrRun& run = *(it - 1);
    uint32_t k = uint32_t((pos - run.start) % run.eligible);
    for (uint32_t i = 0; i < svc.reals.size(); ++i) {
        if (svc.reals[i].weight >= run.threshold && k-- == 0) {
            return int32_t(i);
        }
    }
    return kNoReal;
}

int32_t sched_pick_turn(const Service& svc, const SchedCtx& ctx, uint64_t n) noexcept {
    int32_t r = sched_nth(svc, n);
    // IPVS's rr and wrr step over overloaded reals: take further turns, at most a period.
    const uint64_t period = svc.sched == SchedKind::Rr ? svc.rr_order.size() : svc.wrr_period;
    for (uint64_t k = 1; r != kNoReal && !available(svc.reals[size_t(r)], ctx); ++k) {
        if (k >= period) {
            return kNoReal;
        }
        r = sched_nth(svc, svc.cursor.next.fetch_add(1, std::memory_order_relaxed));
    }
    return r;
}

int32_t sched_pick(const Service& svc, const SchedCtx& ctx) noexcept {
    switch (svc.sched) {
    case SchedKind::Rr:
    case SchedKind::Wrr:
        return sched_pick_turn(svc, ctx, svc.cursor.next.fetch_add(1, std::memory_order_relaxed));
    case SchedKind::Lc: return pick_lc(svc, ctx);
    case SchedKind::Wlc:
        return pick_weighted_least(svc, ctx, false,
                                   [&](const Real& r) { return conn_overhead(ctx, r); });
    case SchedKind::Sed:
        return pick_weighted_least(svc, ctx, false,
                                   [&](const Real& r) { return active_of(ctx, r) + 1; });
    case SchedKind::Nq:
        return pick_weighted_least(svc, ctx, true,
                                   [&](const Real& r) { return active_of(ctx, r) + 1; });
    case SchedKind::Sh: return pick_sh(svc, ctx);
    case SchedKind::Dh: return pick_dh(svc, ctx);
    case SchedKind::Mh: return pick_mh(svc, ctx);
    case SchedKind::Fo: return pick_fo(svc, ctx);
    case SchedKind::Ovf: return pick_ovf(svc, ctx);
    }
    return kNoReal;
}

}  // namespace lb::dp
