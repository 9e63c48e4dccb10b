#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "dataplane/sched.hpp"

using namespace lb::dp;

namespace {

Service make(SchedKind k, std::vector<uint32_t> weights) {
    Service s;
    s.sched = k;
    for (uint32_t w : weights) {
        Real r;
        r.weight = w;
        s.reals.push_back(r);
    }
    build_sched(s);
    return s;
}

std::string seq(const Service& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
        const int32_t r = sched_pick(s);
        out += r == kNoReal ? '-' : char('A' + r);
    }
    return out;
}

// IPVS's wrr, written as the kernel's loop (ip_vs_wrr_schedule), for comparison.
std::string ipvs_wrr_reference(const std::vector<uint32_t>& w, int n) {
    uint32_t g = 0, mx = 0;
    for (uint32_t x : w) {
        if (x > 0) {
            g = g == 0 ? x : std::gcd(g, x);
            mx = std::max(mx, x);
        }
    }
    std::string out;
    if (mx == 0) {
        return std::string(size_t(n), '-');
    }
    const int64_t mw = int64_t(mx) - (g - 1);
    int64_t cw = mw;
    int cl = -1;  // list head
    for (int k = 0; k < n; ++k) {
        for (;;) {
            ++cl;
            if (cl == int(w.size())) {
                cl = -1;
                cw -= g;
                if (cw <= 0) {
                    cw = mw;
                }
                continue;
            }
            if (int64_t(w[size_t(cl)]) >= cw) {
                break;
            }
        }
        out += char('A' + cl);
    }
    return out;
}

}  // namespace

TEST_CASE("rr: alternates over reals with weight > 0, skipping quiescent ones", "[sched]") {
    CHECK(seq(make(SchedKind::Rr, {1, 1}), 6) == "ABABAB");
    CHECK(seq(make(SchedKind::Rr, {1, 1, 1}), 7) == "ABCABCA");
    CHECK(seq(make(SchedKind::Rr, {1, 0, 5}), 6) == "ACACAC");  // rr ignores weight values
    CHECK(seq(make(SchedKind::Rr, {0, 0}), 3) == "---");
    CHECK(seq(make(SchedKind::Rr, {}), 2) == "--");
}

TEST_CASE("wrr: IPVS's sequence", "[sched]") {
    // 3:1 -> AAAB repeating (ip_vs_wrr: cw walks 3, 2, 1).
    CHECK(seq(make(SchedKind::Wrr, {3, 1}), 12) == "AAABAAABAAAB");
    CHECK(seq(make(SchedKind::Wrr, {1, 3}), 8) == "BBABBBAB");
    CHECK(seq(make(SchedKind::Wrr, {4, 2}), 6) == "AABAAB");  // gcd 2
    CHECK(seq(make(SchedKind::Wrr, {1, 1}), 4) == "ABAB");
    CHECK(seq(make(SchedKind::Wrr, {3, 1, 0}), 8) == "AAABAAAB");
    CHECK(seq(make(SchedKind::Wrr, {0, 0}), 2) == "--");
    CHECK(seq(make(SchedKind::Wrr, {5, 3, 2}), 10) == "AAABABCABC");
}

TEST_CASE("wrr: matches the kernel loop on many weight sets", "[sched]") {
    uint64_t seed = 99;
    auto rnd = [&] {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(seed >> 33);
    };
    for (int t = 0; t < 300; ++t) {
        std::vector<uint32_t> w(1 + rnd() % 6);
        for (auto& x : w) {
            x = rnd() % 4 == 0 ? 0 : rnd() % (t % 3 == 0 ? 1000 : 12);
        }
        const Service s = make(SchedKind::Wrr, w);
        INFO("set " << t);
        CHECK(seq(s, 200) == ipvs_wrr_reference(w, 200));
    }
}

TEST_CASE("wrr: shares follow the weights over a period", "[sched]") {
    const Service s = make(SchedKind::Wrr, {30, 10, 0});
    std::map<int32_t, int> count;
    for (uint64_t n = 0; n < 40; ++n) {
        ++count[sched_nth(s, n)];
    }
    CHECK(count[0] == 30);
    CHECK(count[1] == 10);
    CHECK(count[2] == 0);
    CHECK(s.wrr_period == 4);  // gcd 10: 3 + 1 picks
}

TEST_CASE("wrr: large weights stay a handful of runs", "[sched]") {
    const Service s = make(SchedKind::Wrr, {65535, 1, 30000});
    CHECK(s.wrr_runs.size() == 3);
    CHECK(s.wrr_period == 65535 + 1 + 30000);
}
