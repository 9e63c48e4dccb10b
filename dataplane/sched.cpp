#include "dataplane/sched.hpp"

#include <algorithm>
#include <numeric>

namespace lb::dp {

// wrr follows IPVS: with g the gcd of the positive weights and mw = max - (g - 1), the current
// weight cw starts at mw and walks down by g to 1 (then wraps); at each level every real with
// weight >= cw is picked once, in list order. Consecutive levels that admit the same reals form
// a run, so a period is a handful of runs whatever the weights are.
void build_sched(Service& svc) {
    svc.rr_order.clear();
    svc.wrr_runs.clear();
    svc.wrr_period = 0;
    uint32_t g = 0, max_w = 0;
    for (uint32_t i = 0; i < svc.reals.size(); ++i) {
        const uint32_t w = svc.reals[i].weight;
        if (w > 0) {
            svc.rr_order.push_back(i);
            g = g == 0 ? w : std::gcd(g, w);
            max_w = std::max(max_w, w);
        }
    }
    if (max_w == 0) {
        return;
    }
    std::vector<uint32_t> desc;
    for (const Real& r : svc.reals) {
        if (r.weight > 0) {
            desc.push_back(r.weight);
        }
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

int32_t sched_nth(const Service& svc, uint64_t n) noexcept {
    switch (svc.sched) {
    case SchedKind::Rr: {
        const size_t k = svc.rr_order.size();
        return k == 0 ? kNoReal : int32_t(svc.rr_order[n % k]);
    }
    case SchedKind::Wrr: {
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
    }
    return kNoReal;
}

}  // namespace lb::dp
