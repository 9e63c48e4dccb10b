// The mh scheduler's Maglev table: hash, determinism, order independence, weights, disruption.
#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/maglev.hpp"

using namespace lb::dp;

namespace {

MaglevBackend real(const char* addr, uint16_t port, uint32_t weight) {
    uint32_t a = 0;
    REQUIRE(inet_pton(AF_INET, addr, &a) == 1);
    return {a, htons(port), weight};
}

// Real i: 10.x.y.z with x.y.z = i, port 80.
MaglevBackend nth_real(uint32_t i, uint32_t weight = 1) {
    return {htonl(0x0A000000u | (i & 0xFFFFFFu)), htons(80), weight};
}

std::vector<MaglevBackend> reals(const std::vector<uint32_t>& weights) {
    std::vector<MaglevBackend> v;
    for (uint32_t i = 0; i < weights.size(); ++i) {
        v.push_back(nth_real(i + 1, weights[i]));
    }
    return v;
}

std::string letters(const std::vector<uint16_t>& t) {
    std::string s;
    for (uint16_t e : t) {
        s += e == kMaglevNone ? '-' : char('A' + e);
    }
    return s;
}

std::vector<uint32_t> counts(const std::vector<uint16_t>& t, size_t n) {
    std::vector<uint32_t> c(n, 0);
    size_t bad = 0;
    for (uint16_t e : t) {
        e < n ? ++c[e] : ++bad;
    }
    REQUIRE(bad == 0);  // every entry is a backend
    return c;
}

// The table as real addresses, comparable across different backend lists.
std::vector<uint32_t> owners(const std::vector<MaglevBackend>& b, const std::vector<uint16_t>& t) {
    std::vector<uint32_t> o(t.size(), 0);
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] < b.size()) {
            o[i] = b[t[i]].addr;
        }
    }
    return o;
}

uint64_t lcg(uint64_t& s) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return s >> 33;
}

// The balance contract (see maglev_entries): the table holds exactly maglev_entries; with no
// exact share below one entry every count is the floor or the ceiling of its exact share; the
// relative error is <= 1% wherever the exact share is >= 100 entries.
void check_balance(const std::vector<uint32_t>& weights, uint32_t size) {
    INFO("size " << size << ", " << weights.size() << " reals");
    const std::vector<MaglevBackend> b = reals(weights);
    const std::vector<uint16_t> t = build_maglev(b, size);
    const std::vector<uint32_t> c = counts(t, b.size());
    CHECK(c == maglev_entries(b, size));
    const double wsum = std::accumulate(weights.begin(), weights.end(), 0.0);
    for (size_t i = 0; i < b.size(); ++i) {
        const double exact = size * weights[i] / wsum;
        INFO("real " << i << " weight " << weights[i] << " exact " << exact << " got " << c[i]);
        if (exact >= 1) {
            CHECK(std::abs(c[i] - exact) < 1.0);
        }
        if (exact >= 100) {
            CHECK(std::abs(c[i] / double(size) - weights[i] / wsum) <= 0.01 * weights[i] / wsum);
        }
    }
}

struct Disruption {
    double changed;     // entries whose real changed / size
    double collateral;  // entries moved between reals present before and after / size
};

Disruption disruption(const std::vector<uint32_t>& before, const std::vector<uint32_t>& after,
                      uint32_t churned) {
    size_t changed = 0, collateral = 0;
    for (size_t i = 0; i < before.size(); ++i) {
        if (before[i] != after[i]) {
            ++changed;
            collateral += before[i] != churned && after[i] != churned;
        }
    }
    return {double(changed) / before.size(), double(collateral) / before.size()};
}

}  // namespace

TEST_CASE("is_prime", "[maglev]") {
    for (uint32_t p :
         {2u, 3u, 5u, 13u, 251u, 257u, 65521u, 65537u, 655373u, 2147483647u, 4294967291u}) {
        INFO(p);
        CHECK(is_prime(p));
    }
    for (uint32_t n : {0u, 1u, 4u, 9u, 25u, 49u, 91u, 255u, 65535u, 65536u, 65539u * 3u,
                       65521u * 65521u, 4294967295u}) {
        INFO(n);
        CHECK_FALSE(is_prime(n));
    }
}

TEST_CASE("siphash24 matches the reference test vectors", "[maglev]") {
    // Aumasson and Bernstein's vectors: key 00..0f, message 00..(n-1).
    std::array<uint8_t, 16> key{};
    std::array<uint8_t, 64> msg{};
    for (uint8_t i = 0; i < 64; ++i) {
        msg[i] = i;
        if (i < 16) {
            key[i] = i;
        }
    }
    CHECK(siphash24({msg.data(), 0}, key) == 0x726fdb47dd0e0e31ULL);
    CHECK(siphash24({msg.data(), 7}, key) == 0xab0200f58b01d137ULL);
    CHECK(siphash24({msg.data(), 8}, key) == 0x93f5f5799a932462ULL);
    CHECK(siphash24({msg.data(), 15}, key) == 0xa129ca6149be45e5ULL);
    CHECK(siphash24({msg.data(), 63}, key) == 0x958a324ceb064572ULL);
}

TEST_CASE("maglev: the hash is pinned", "[maglev]") {
    // A change of hash, key or byte order changes every director's table: make it loud.
    // (Checked against an independent SipHash-2-4 implementation.)
    const MaglevBackend r = real("10.10.0.2", 80, 1);
    const MaglevPermutation p = maglev_permutation(r.addr, r.port, kMaglevDefaultSize);
    CHECK(p.offset == 37241);
    CHECK(p.skip == 30352);
    const MaglevPermutation q = maglev_permutation(r.addr, r.port, 13);
    CHECK(q.offset == 10);
    CHECK(q.skip == 12);
}

TEST_CASE("maglev: a known small table", "[maglev]") {
    // size 13, equal weights: entries 5/4/4 (the extra one to the first by (addr, port)); turns
    // A B C A B C A B C A B C A. Permutations (offset, skip): A (10, 12), B (1, 8), C (6, 6):
    //   A: 10 9 8 7 6 5 4 3 2 1 0 12 11    B: 1 9 4 12 7 2 10 5 0 8 3 11 6
    //   C: 6 12 5 11 4 10 3 9 2 8 1 7 0
    // A 10, B 1, C 6, A 9, B 4, C 12, A 8, B 7, C 5, A 3, B 2, C 11, A 0.
    const std::vector<MaglevBackend> b = {real("10.10.0.2", 80, 1), real("10.10.0.3", 80, 1),
                                          real("10.10.0.4", 80, 1)};
    CHECK(letters(build_maglev(b, 13)) == "ABBABCCBAAACC");
    // Weights 1:2:0: entries 4/9/0.
    const std::vector<MaglevBackend> w = {real("10.10.0.2", 80, 1), real("10.10.0.3", 80, 2),
                                          real("10.10.0.4", 80, 0)};
    CHECK(letters(build_maglev(w, 13)) == "BBBABBABABABB");
    CHECK(letters(build_maglev(b, 31)) == "CBCBACBACCBABCBCAAABCCBBAACAAAB");
}

TEST_CASE("maglev: deterministic", "[maglev]") {
    const std::vector<MaglevBackend> b = reals({1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
    const std::vector<uint16_t> t1 = build_maglev(b, kMaglevDefaultSize);
    const std::vector<uint16_t> t2 = build_maglev(b, kMaglevDefaultSize);
    CHECK(t1.size() == kMaglevDefaultSize);
    CHECK(t1 == t2);
    CHECK(std::count(t1.begin(), t1.end(), kMaglevNone) == 0);
}

TEST_CASE("maglev: independent of the order the reals are listed in", "[maglev]") {
    std::vector<MaglevBackend> b = reals({3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9});
    b.push_back(real("10.0.0.3", 8080, 2));  // same address as another real, another port
    const std::vector<uint32_t> ref = owners(b, build_maglev(b, kMaglevDefaultSize));
    uint64_t seed = 7;
    for (int trial = 0; trial < 5; ++trial) {
        std::vector<MaglevBackend> p = b;
        for (size_t i = p.size() - 1; i > 0; --i) {
            std::swap(p[i], p[lcg(seed) % (i + 1)]);
        }
        INFO("trial " << trial);
        CHECK(owners(p, build_maglev(p, kMaglevDefaultSize)) == ref);
    }
    std::vector<MaglevBackend> r(b.rbegin(), b.rend());
    CHECK(owners(r, build_maglev(r, kMaglevDefaultSize)) == ref);
}

TEST_CASE("maglev: rejects bad sizes and too many backends", "[maglev]") {
    const std::vector<MaglevBackend> b = reals({1, 1});
    CHECK_THROWS_WITH(build_maglev(b, 0), Catch::Contains("below 2"));
    CHECK_THROWS_WITH(build_maglev(b, 1), Catch::Contains("below 2"));
    CHECK_THROWS_WITH(build_maglev(b, 65536), Catch::Contains("not prime"));
    CHECK_THROWS_WITH(build_maglev(b, 255), Catch::Contains("not prime"));
    CHECK_THROWS_AS(maglev_entries(b, 4), std::invalid_argument);
    CHECK_NOTHROW(build_maglev(b, 2));
    CHECK(letters(build_maglev(b, 2)).size() == 2);

    std::vector<MaglevBackend> many;
    for (uint32_t i = 0; i < kMaglevMaxBackends + 1; ++i) {
        many.push_back(nth_real(i));
    }
    CHECK_THROWS_WITH(build_maglev(many, kMaglevDefaultSize), Catch::Contains("at most 65534"));
    many.pop_back();
    const std::vector<uint16_t> t = build_maglev(many, kMaglevDefaultSize);
    const std::vector<uint32_t> c = counts(t, many.size());
    // 65537 entries over 65534 reals: each gets 1, three get 2.
    CHECK(*std::min_element(c.begin(), c.end()) == 1);
    CHECK(std::count(c.begin(), c.end(), 2u) == 3);
}

TEST_CASE("maglev: balance within one entry of the exact share", "[maglev]") {
    for (uint32_t n : {1u, 2u, 3u, 5u, 10u, 100u, 655u}) {
        check_balance(std::vector<uint32_t>(n, 1), kMaglevDefaultSize);
    }
    check_balance({1, 2, 3}, kMaglevDefaultSize);
    check_balance({1, 100}, kMaglevDefaultSize);
    check_balance({7, 7, 7, 7, 7}, kMaglevDefaultSize);  // gcd 7
    check_balance({65535, 1}, kMaglevDefaultSize);
    check_balance({1, 1}, 251);
    check_balance({1, 2, 3}, 251);
    check_balance({1, 100}, 251);  // 2.49 / 248.5 entries: 2 / 249 or 3 / 248
    std::vector<uint32_t> ramp(100);
    std::iota(ramp.begin(), ramp.end(), 1u);
    check_balance(ramp, kMaglevDefaultSize);

    // Stated precisely for equal weights at size > 100 * N: within 1% of the share.
    const std::vector<uint16_t> t = build_maglev(reals({1, 1}), 251);
    const std::vector<uint32_t> c = counts(t, 2);
    CHECK(c[0] + c[1] == 251);
    CHECK(std::max(c[0], c[1]) - std::min(c[0], c[1]) == 1);
}

TEST_CASE("maglev: random weight sets keep the entries contract", "[maglev]") {
    uint64_t seed = 42;
    const uint32_t sizes[] = {2, 3, 13, 101, 251, 1009, 65537};
    for (int trial = 0; trial < 200; ++trial) {
        const uint32_t size = sizes[trial % 7];
        std::vector<uint32_t> w(1 + lcg(seed) % 40);
        for (uint32_t& x : w) {
            const uint64_t r = lcg(seed);
            x = r % 5 == 0 ? 0 : r % 3 == 0 ? uint32_t(lcg(seed) % 65536) : uint32_t(r % 10);
        }
        const std::vector<MaglevBackend> b = reals(w);
        INFO("trial " << trial << " size " << size);
        const std::vector<uint32_t> e = maglev_entries(b, size);
        const std::vector<uint16_t> t = build_maglev(b, size);
        const size_t positive =
            size_t(std::count_if(w.begin(), w.end(), [](uint32_t x) { return x > 0; }));
        if (positive == 0) {
            CHECK(std::all_of(t.begin(), t.end(), [](uint16_t x) { return x == kMaglevNone; }));
            continue;
        }
        CHECK(counts(t, b.size()) == e);
        CHECK(std::accumulate(e.begin(), e.end(), 0u) == size);
        const double wsum = std::accumulate(w.begin(), w.end(), 0.0);
        bool any_below_one = false;
        for (size_t i = 0; i < w.size(); ++i) {
            if (w[i] == 0) {
                CHECK(e[i] == 0);
            } else {
                any_below_one |= size * w[i] / wsum < 1;
                if (positive <= size) {
                    CHECK(e[i] >= 1);
                }
            }
        }
        for (size_t i = 0; i < w.size() && !any_below_one; ++i) {
            CHECK(std::abs(e[i] - size * w[i] / wsum) < 1.0);
        }
    }
}

TEST_CASE("maglev: weight 0 gets nothing; no weight gives an empty table", "[maglev]") {
    const std::vector<uint16_t> t = build_maglev(reals({0, 1, 0, 2}), kMaglevDefaultSize);
    const std::vector<uint32_t> c = counts(t, 4);
    CHECK(c[0] == 0);
    CHECK(c[2] == 0);
    CHECK(c[1] + c[3] == kMaglevDefaultSize);

    const std::vector<uint16_t> zero = build_maglev(reals({0, 0, 0}), 251);
    CHECK(zero.size() == 251);
    CHECK(std::all_of(zero.begin(), zero.end(), [](uint16_t x) { return x == kMaglevNone; }));
    const std::vector<uint16_t> none = build_maglev({}, 13);
    CHECK(letters(none) == std::string(13, '-'));
    CHECK(maglev_entries({}, 13).empty());
}

TEST_CASE("maglev: skewed weights 65535:1 and more reals than entries", "[maglev]") {
    // A positive weight means "in service": every such real gets at least one entry (as in IPVS's
    // mh, where it gets at least one turn), even when its exact share is below one entry.
    CHECK(maglev_entries(reals({65535, 1}), kMaglevDefaultSize) ==
          std::vector<uint32_t>{65536, 1});  // exact: 65536.00002 and 1.00002
    CHECK(maglev_entries(reals({65535, 1}), 251) == std::vector<uint32_t>{250, 1});  // 0.004
    CHECK(maglev_entries(reals({65535, 65535, 1}), kMaglevDefaultSize) ==
          std::vector<uint32_t>{32768, 32768, 1});  // 0.5: raised to 1
    CHECK(maglev_entries(reals({1, 65535}), 2) == std::vector<uint32_t>{1, 1});
    const std::vector<uint16_t> t = build_maglev(reals({65535, 1}), kMaglevDefaultSize);
    CHECK(std::count(t.begin(), t.end(), uint16_t(1)) == 1);

    // More positive reals than entries: no floor, the largest exact shares win (ties by address).
    CHECK(maglev_entries(reals({1, 1, 1, 1, 1}), 3) == std::vector<uint32_t>{1, 1, 1, 0, 0});
    // Exact 0.23 x 4 and 2.08: floors 0 and 2, the spare entry to the largest remainder.
    CHECK(maglev_entries(reals({1, 1, 1, 1, 9}), 3) == std::vector<uint32_t>{1, 0, 0, 0, 2});
    CHECK(letters(build_maglev(reals({1, 1, 1, 1, 1}), 3)).find('-') == std::string::npos);
}

TEST_CASE("maglev: removing one of N equal reals moves about 1/N of the entries", "[maglev]") {
    for (uint32_t n : {2u, 3u, 5u, 10u, 50u, 100u}) {
        const std::vector<MaglevBackend> b = reals(std::vector<uint32_t>(n, 1));
        const std::vector<uint32_t> before = owners(b, build_maglev(b, kMaglevDefaultSize));
        for (uint32_t victim : {0u, n / 2, n - 1}) {
            std::vector<MaglevBackend> less = b;
            less.erase(less.begin() + victim);
            const Disruption d = disruption(
                before, owners(less, build_maglev(less, kMaglevDefaultSize)), b[victim].addr);
            INFO("N " << n << " removed " << victim << ": changed " << d.changed << ", collateral "
                      << d.collateral);
            CHECK(d.changed >= 1.0 / n - 1e-4);  // at least the removed real's entries
            CHECK(d.changed <= 1.5 / n + 0.002);
            // Entries of the remaining reals overwhelmingly stay (measured: <= 0.6% of the table).
            CHECK(d.collateral <= 0.01);
            if (n == 2) {
                CHECK(d.collateral == 0);
            }
        }
    }
}

TEST_CASE("maglev: adding a real to N moves about 1/(N+1) of the entries", "[maglev]") {
    for (uint32_t n : {2u, 3u, 5u, 10u, 50u, 100u}) {
        const std::vector<MaglevBackend> b = reals(std::vector<uint32_t>(n, 1));
        const std::vector<uint32_t> before = owners(b, build_maglev(b, kMaglevDefaultSize));
        std::vector<MaglevBackend> more = b;
        more.push_back(real("192.0.2.7", 80, 1));
        const Disruption d = disruption(
            before, owners(more, build_maglev(more, kMaglevDefaultSize)), more.back().addr);
        INFO("N " << n << ": changed " << d.changed << ", collateral " << d.collateral);
        CHECK(d.changed >= 1.0 / (n + 1) - 1e-4);
        CHECK(d.changed <= 1.5 / (n + 1) + 0.002);
        CHECK(d.collateral <= 0.01);
    }
}

TEST_CASE("maglev: changing one weight moves entries mostly to or from that real", "[maglev]") {
    const std::vector<MaglevBackend> b = reals(std::vector<uint32_t>(10, 1));
    std::vector<MaglevBackend> heavier = b;
    heavier[4].weight = 2;  // share 1/10 -> 2/11
    const Disruption d =
        disruption(owners(b, build_maglev(b, kMaglevDefaultSize)),
                   owners(heavier, build_maglev(heavier, kMaglevDefaultSize)), b[4].addr);
    INFO("changed " << d.changed << ", collateral " << d.collateral);
    CHECK(d.changed >= 2.0 / 11 - 1.0 / 10 - 1e-4);
    CHECK(d.collateral <= 0.01);
}
