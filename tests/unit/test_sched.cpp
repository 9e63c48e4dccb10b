#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <map>
#include <string>
#include <vector>

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
        const int32_t r = sched_pick(s, SchedCtx{});
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

namespace {

// Per-real gauges the way a worker keeps them, indexed by stats_slot (= list position here).
struct Load {
    std::vector<TrafficCounters> c;
    explicit Load(size_t n) : c(n) {}
    void set(size_t i, uint64_t active, uint64_t inactive) {
        c[i].active.v = active;
        c[i].inactive.v = inactive;
    }
    SchedCtx ctx(const char* src = "198.51.100.2", uint16_t sport = 40000,
                 const char* dst = "198.51.100.10") const {
        SchedCtx x;
        inet_pton(AF_INET, src, &x.src);
        x.sport = htons(sport);
        inet_pton(AF_INET, dst, &x.dst);
        x.load = c.data();
        return x;
    }
};

Service make_slots(SchedKind k, std::vector<uint32_t> weights, uint8_t flags = 0) {
    Service s;
    s.sched = k;
    s.sched_flags = flags;
    for (uint32_t i = 0; i < weights.size(); ++i) {
        Real r;
        r.weight = weights[i];
        r.stats_slot = uint16_t(i);
        r.addr = htonl(0x0a0a0002 + i);
        s.reals.push_back(r);
    }
    build_sched(s);
    return s;
}

// Opens `n` connections, each one counted as active (kept open) or inactive (closed at once).
std::string run(const Service& s, Load& load, int n, bool keep_open) {
    std::string out;
    for (int i = 0; i < n; ++i) {
        const int32_t r = sched_pick(s, load.ctx());
        out += r == kNoReal ? '-' : char('A' + r);
        if (r != kNoReal) {
            (keep_open ? load.c[size_t(r)].active : load.c[size_t(r)].inactive).add(1);
        }
    }
    return out;
}

}  // namespace

TEST_CASE("lc: least active*256 + inactive, first on ties, weight 0 skipped", "[sched]") {
    Load load(4);
    const Service s = make_slots(SchedKind::Lc, {1, 5, 1, 0});
    load.set(0, 1, 0);    // 256
    load.set(1, 0, 300);  // 300
    load.set(2, 0, 255);  // 255
    CHECK(sched_pick(s, load.ctx()) == 2);
    load.set(2, 0, 256);  // ties with A: the first wins
    CHECK(sched_pick(s, load.ctx()) == 0);
    load.set(0, 0, 0);
    load.set(1, 0, 0);
    load.set(2, 0, 0);
    CHECK(run(s, load, 6, true) == "ABCABC");  // lc ignores weights
    CHECK(sched_pick(make_slots(SchedKind::Lc, {0, 0}), load.ctx()) == kNoReal);
}

TEST_CASE("wlc: overhead / weight by cross-multiplication", "[sched]") {
    Load load(3);
    const Service s = make_slots(SchedKind::Wlc, {1, 3, 0});
    // Kept open: the active counts follow the weights, 1:3.
    const std::string seq4 = run(s, load, 400, true);
    CHECK(std::count(seq4.begin(), seq4.end(), 'A') == 100);
    CHECK(std::count(seq4.begin(), seq4.end(), 'B') == 300);
    CHECK(std::count(seq4.begin(), seq4.end(), 'C') == 0);
    // One active outweighs 255 inactive: B (weight 3, 1 active: 256/3) loses to A (weight 1,
    // 80 inactive: 80/1).
    Load l2(3);
    l2.set(0, 0, 80);
    l2.set(1, 1, 0);
    CHECK(sched_pick(s, l2.ctx()) == 0);
    l2.set(0, 0, 86);  // 86 * 3 > 256 * 1
    CHECK(sched_pick(s, l2.ctx()) == 1);
}

TEST_CASE("wlc: connections that close at once spread evenly", "[sched]") {
    Load load(3);
    const Service s = make_slots(SchedKind::Wlc, {1, 1, 1});
    const std::string seq = run(s, load, 300, false);
    CHECK(seq.substr(0, 6) == "ABCABC");
    for (const char r : {'A', 'B', 'C'}) {
        CHECK(std::count(seq.begin(), seq.end(), r) == 100);
    }
}

TEST_CASE("sed and nq: (active + 1) / weight; nq takes an idle real first", "[sched]") {
    const Service sed = make_slots(SchedKind::Sed, {1, 3});
    const Service nq = make_slots(SchedKind::Nq, {1, 3});
    Load a(2), b(2);
    // sed: B's (0+1)/3 and (1+1)/3 beat A's 1/1; (2+1)/3 ties with it and the first (A)
    // wins; then A's (1+1)/1 loses to B's 3/3 and 4/3.
    CHECK(run(sed, a, 5, true) == "BBABB");
    // nq: A is idle at first, so it is taken at once, then the same rule as sed.
    CHECK(run(nq, b, 5, true) == "ABBBB");
    // Inactive connections do not count for either.
    Load c(2);
    c.set(1, 0, 1000);
    CHECK(sched_pick(sed, c.ctx()) == 1);
}

TEST_CASE("fo: the available real with the highest weight, the first on ties", "[sched]") {
    Load load(4);
    CHECK(sched_pick(make_slots(SchedKind::Fo, {2, 5, 5, 1}), load.ctx()) == 1);
    CHECK(sched_pick(make_slots(SchedKind::Fo, {0, 0}), load.ctx()) == kNoReal);
    load.set(1, 1000, 1000);  // load does not matter
    CHECK(sched_pick(make_slots(SchedKind::Fo, {2, 5, 5, 1}), load.ctx()) == 1);
}

TEST_CASE("ovf: the highest weight until its active connections exceed the weight", "[sched]") {
    Load load(3);
    const Service s = make_slots(SchedKind::Ovf, {3, 2, 0});
    // A takes connections while active <= 3 (4 of them), then B while active <= 2, then none.
    CHECK(run(s, load, 9, true) == "AAAABBB--");
}

TEST_CASE("sh: the kernel's bucket hash and table; one client, one real", "[sched]") {
    // hash_32(port + addr, 8) = ((port + addr) * 0x61C88647 mod 2^32) >> 24.
    const uint32_t a = 0xC6336402;  // 198.51.100.2
    CHECK(sh_bucket(htonl(a), 0, 0) == uint32_t((a * 0x61C88647u) >> 24));
    CHECK(sh_bucket(htonl(a), htons(1234), 0) == uint32_t(((a + 1234) * 0x61C88647u) >> 24));
    CHECK(sh_bucket(htonl(a), 0, 10) == (((a * 0x61C88647u) >> 24) + 10) % 256);

    const Service s = make_slots(SchedKind::Sh, {1, 3, 0});
    // The table: A, B, B, B, C (weight 0 still takes one bucket), A, B, B, B, C, ...
    REQUIRE(s.hash_table.size() == 256);
    CHECK(s.hash_table[0] == 0);
    CHECK(s.hash_table[1] == 1);
    CHECK(s.hash_table[3] == 1);
    CHECK(s.hash_table[4] == 2);
    CHECK(s.hash_table[5] == 0);
    Load load(3);
    std::map<int32_t, int> per_real;
    for (uint32_t c = 0; c < 2560; ++c) {
        char src[32];
        std::snprintf(src, sizeof src, "10.%u.%u.%u", c >> 16 & 255, c >> 8 & 255, c & 255);
        const int32_t first = sched_pick(s, load.ctx(src, 1000));
        CHECK(sched_pick(s, load.ctx(src, 2000)) == first);  // the port does not matter
        ++per_real[first];
    }
    // Clients on C's buckets get no real (weight 0, no fallback): 1/5 of the buckets.
    CHECK(per_real[kNoReal] > 400);
    CHECK(per_real[1] > 2 * per_real[0]);
}

TEST_CASE("sh: sh-port and sh-fallback", "[sched]") {
    Load load(3);
    const Service port = make_slots(SchedKind::Sh, {1, 1, 1}, kSchedPort);
    std::map<int32_t, int> seen;
    for (uint16_t p = 1000; p < 1100; ++p) {
        ++seen[sched_pick(port, load.ctx("198.51.100.2", p))];
    }
    CHECK(seen.size() == 3);  // one client spreads by source port

    const Service plain = make_slots(SchedKind::Sh, {1, 0});
    const Service fallback = make_slots(SchedKind::Sh, {1, 0}, kSchedFallback);
    int none = 0;
    for (uint32_t c = 0; c < 256; ++c) {
        char src[32];
        std::snprintf(src, sizeof src, "10.0.0.%u", c);
        none += sched_pick(plain, load.ctx(src)) == kNoReal;
        CHECK(sched_pick(fallback, load.ctx(src)) == 0);
    }
    CHECK(none > 50);
}

TEST_CASE("dh: hashes the destination address", "[sched]") {
    Load load(2);
    const Service s = make_slots(SchedKind::Dh, {1, 1});
    const uint32_t d = 0xC633640A;  // 198.51.100.10
    CHECK(dh_bucket(htonl(d)) == uint32_t((uint64_t(d) * 2654435761ULL) % 256));
    const int32_t r = sched_pick(s, load.ctx("198.51.100.2", 1, "198.51.100.10"));
    CHECK(r == int32_t(dh_bucket(htonl(d)) % 2));
    for (int i = 0; i < 20; ++i) {  // every client to the same destination: the same real
        char src[32];
        std::snprintf(src, sizeof src, "10.0.0.%d", i);
        CHECK(sched_pick(s, load.ctx(src, uint16_t(i), "198.51.100.10")) == r);
    }
}

TEST_CASE("mh: one client one real; removal moves only that real's clients", "[sched][mh]") {
    Load load(4);
    Service s = make_slots(SchedKind::Mh, {1, 1, 1, 1});
    REQUIRE(s.hash_table.size() == 65537);
    std::vector<int32_t> before;
    for (uint32_t c = 0; c < 4000; ++c) {
        char src[32];
        std::snprintf(src, sizeof src, "10.%u.%u.%u", c >> 16 & 255, c >> 8 & 255, c & 255);
        const int32_t r = sched_pick(s, load.ctx(src, 1000));
        CHECK(sched_pick(s, load.ctx(src, 2000)) == r);  // no mh-port: the port does not matter
        before.push_back(r);
    }
    for (int32_t r = 0; r < 4; ++r) {
        const auto n = std::count(before.begin(), before.end(), r);
        CHECK(n > 850);
        CHECK(n < 1150);
    }
    // Take the third real out (weight 0): only its clients move.
    s.reals[2].weight = 0;
    build_sched(s);
    int moved = 0;
    for (uint32_t c = 0; c < 4000; ++c) {
        char src[32];
        std::snprintf(src, sizeof src, "10.%u.%u.%u", c >> 16 & 255, c >> 8 & 255, c & 255);
        const int32_t r = sched_pick(s, load.ctx(src, 1000));
        CHECK(r != 2);
        if (before[c] != 2) {
            moved += r != before[c];
        }
    }
    CHECK(moved < 4000 / 100);  // Maglev's small collateral movement
}

TEST_CASE("mh: mh-port spreads one client; no real with weight gives none", "[sched][mh]") {
    Load load(3);
    const Service s = make_slots(SchedKind::Mh, {1, 1, 1}, kSchedPort);
    std::map<int32_t, int> seen;
    for (uint16_t p = 1000; p < 1100; ++p) {
        ++seen[sched_pick(s, load.ctx("198.51.100.2", p))];
    }
    CHECK(seen.size() == 3);
    CHECK(sched_pick(make_slots(SchedKind::Mh, {0, 0}), load.ctx()) == kNoReal);
    // The same reals give the same table whatever their order in the config.
    Service a = make_slots(SchedKind::Mh, {1, 2, 3});
    Service b = a;
    std::reverse(b.reals.begin(), b.reals.end());
    build_sched(b);
    for (size_t i = 0; i < a.hash_table.size(); i += 97) {
        CHECK(a.reals[a.hash_table[i]].addr == b.reals[b.hash_table[i]].addr);
    }
}
