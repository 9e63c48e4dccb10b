// maglev-report: measures the mh scheduler's Maglev table (dataplane/maglev.hpp): disruption when
// a real is removed or added, balance against the weights, and build time. No arguments; prints
// a plain-text report. The figures are deterministic except the timings.
#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "dataplane/maglev.hpp"

using lb::dp::MaglevBackend;

namespace {

// Real i: 10.x.y.z with x.y.z = i (i < 2^24), port 80.
MaglevBackend real(uint32_t i, uint32_t weight = 1) {
    return {htonl(0x0A000000u | (i & 0xFFFFFFu)), htons(80), weight};
}

std::vector<MaglevBackend> equal_reals(uint32_t n) {
    std::vector<MaglevBackend> v;
    for (uint32_t i = 0; i < n; ++i) {
        v.push_back(real(i + 1));
    }
    return v;
}

// Map table entries to a real's identity (its addr), so tables over different lists compare.
std::vector<uint32_t> owners(const std::vector<MaglevBackend>& b, const std::vector<uint16_t>& t) {
    std::vector<uint32_t> o(t.size());
    for (size_t i = 0; i < t.size(); ++i) {
        o[i] = t[i] == lb::dp::kMaglevNone ? 0 : b[t[i]].addr;
    }
    return o;
}

struct Moved {
    double changed;     // entries whose real changed / size
    double collateral;  // entries that moved between reals present in both tables / size
};

Moved compare(const std::vector<uint32_t>& before, const std::vector<uint32_t>& after,
              uint32_t removed_or_added) {
    size_t changed = 0, collateral = 0;
    for (size_t i = 0; i < before.size(); ++i) {
        if (before[i] != after[i]) {
            ++changed;
            if (before[i] != removed_or_added && after[i] != removed_or_added) {
                ++collateral;
            }
        }
    }
    const double m = double(before.size());
    return {double(changed) / m, double(collateral) / m};
}

void disruption(uint32_t size) {
    std::printf(
        "Disruption, equal weights, table size %u (changed: entries whose real changed;\n"
        "collateral: entries moved between reals that are in both tables; the minimum\n"
        "is 1/N on removal, 1/(N+1) on adding, and 0 collateral). Removal: mean and max\n"
        "over removing each of up to 10 reals spread over the list; adding: mean and max\n"
        "over 10 different new reals.\n",
        size);
    std::printf("%5s | %8s %14s %14s | %8s %14s %14s\n", "N", "1/N", "remove mean", "remove max",
                "1/(N+1)", "add mean", "add max");
    std::printf("%5s | %8s %14s %14s | %8s %14s %14s\n", "", "", "chg / coll", "chg / coll", "",
                "chg / coll", "chg / coll");
    for (uint32_t n : {2u, 3u, 5u, 10u, 50u, 100u, 1000u}) {
        const std::vector<MaglevBackend> base = equal_reals(n);
        const std::vector<uint32_t> t0 = owners(base, lb::dp::build_maglev(base, size));
        Moved rm_sum{0, 0}, rm_max{0, 0}, add_sum{0, 0}, add_max{0, 0};
        const uint32_t trials = std::min(n, 10u);
        for (uint32_t k = 0; k < trials; ++k) {
            std::vector<MaglevBackend> less = base;
            const uint32_t victim = k * n / trials;
            const uint32_t gone = less[victim].addr;
            less.erase(less.begin() + victim);
            const Moved r = compare(t0, owners(less, lb::dp::build_maglev(less, size)), gone);
            rm_sum.changed += r.changed;
            rm_sum.collateral += r.collateral;
            rm_max.changed = std::max(rm_max.changed, r.changed);
            rm_max.collateral = std::max(rm_max.collateral, r.collateral);
        }
        for (uint32_t k = 0; k < 10; ++k) {
            std::vector<MaglevBackend> more = base;
            more.push_back(real(100000 + k));
            const Moved a =
                compare(t0, owners(more, lb::dp::build_maglev(more, size)), more.back().addr);
            add_sum.changed += a.changed;
            add_sum.collateral += a.collateral;
            add_max.changed = std::max(add_max.changed, a.changed);
            add_max.collateral = std::max(add_max.collateral, a.collateral);
        }
        std::printf("%5u | %8.4f %6.4f/%6.4f %6.4f/%6.4f | %8.4f %6.4f/%6.4f %6.4f/%6.4f\n", n,
                    1.0 / n, rm_sum.changed / trials, rm_sum.collateral / trials, rm_max.changed,
                    rm_max.collateral, 1.0 / (n + 1), add_sum.changed / 10, add_sum.collateral / 10,
                    add_max.changed, add_max.collateral);
    }
}

void balance_case(const char* name, const std::vector<uint32_t>& weights, uint32_t size) {
    std::vector<MaglevBackend> b;
    uint64_t wsum = 0;
    for (uint32_t i = 0; i < weights.size(); ++i) {
        b.push_back(real(i + 1, weights[i]));
        wsum += weights[i];
    }
    const std::vector<uint16_t> t = lb::dp::build_maglev(b, size);
    std::vector<uint32_t> count(b.size(), 0);
    for (uint16_t e : t) {
        ++count[e];
    }
    double max_rel = 0, max_abs = 0;
    uint32_t min_count = UINT32_MAX;
    for (size_t i = 0; i < b.size(); ++i) {
        const double exact = double(size) * weights[i] / double(wsum);
        max_abs = std::max(max_abs, std::abs(count[i] - exact));
        max_rel = std::max(max_rel, std::abs(count[i] - exact) / exact);
        min_count = std::min(min_count, count[i]);
    }
    std::printf("%-26s %7u %14.5f %12.3f%% %10u\n", name, size, max_abs, 100 * max_rel, min_count);
}

void balance() {
    std::printf(
        "\nBalance: per real, |entries - size * w / sum(w)| (max abs, in entries) and\n"
        "that over the exact share (max rel); min entries of any real.\n");
    std::printf("%-26s %7s %14s %13s %10s\n", "weights", "size", "max abs", "max rel", "min");
    const uint32_t m = lb::dp::kMaglevDefaultSize;
    balance_case("2 x 1", {1, 1}, m);
    balance_case("3 x 1", {1, 1, 1}, m);
    balance_case("10 x 1", std::vector<uint32_t>(10, 1), m);
    balance_case("100 x 1", std::vector<uint32_t>(100, 1), m);
    balance_case("655 x 1", std::vector<uint32_t>(655, 1), m);
    balance_case("1000 x 1", std::vector<uint32_t>(1000, 1), m);
    balance_case("1:2:3", {1, 2, 3}, m);
    balance_case("1:100", {1, 100}, m);
    balance_case("65535:1", {65535, 1}, m);
    balance_case("65535:65535:1", {65535, 65535, 1}, m);
    balance_case(
        "1..100",
        [] {
            std::vector<uint32_t> w;
            for (uint32_t i = 1; i <= 100; ++i) {
                w.push_back(i);
            }
            return w;
        }(),
        m);
    balance_case("2 x 1", {1, 1}, 251);
    balance_case("1:2:3", {1, 2, 3}, 251);
    balance_case("1:100", {1, 100}, 251);
    balance_case("65535:1", {65535, 1}, 251);
}

void timing() {
    std::printf("\nBuild time (best / mean of 20 builds, this host):\n");
    auto time_case = [](const char* name, const std::vector<MaglevBackend>& b, uint32_t size) {
        double best = 1e9, sum = 0;
        for (int r = 0; r < 20; ++r) {
            const auto t0 = std::chrono::steady_clock::now();
            const std::vector<uint16_t> t = lb::dp::build_maglev(b, size);
            const auto t1 = std::chrono::steady_clock::now();
            const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
            best = std::min(best, ms);
            sum += ms;
            if (t.empty()) {
                std::printf("empty table\n");
            }
        }
        std::printf("  %-40s %8.2f ms / %8.2f ms\n", name, best, sum / 20);
    };
    const uint32_t m = lb::dp::kMaglevDefaultSize;
    time_case("2 reals, 65537", equal_reals(2), m);
    time_case("100 reals, 65537", equal_reals(100), m);
    time_case("1000 reals, 65537", equal_reals(1000), m);
    std::vector<MaglevBackend> skew = equal_reals(1000);
    for (size_t i = 0; i < skew.size(); ++i) {
        skew[i].weight = i % 2 == 0 ? 65535 : 1;
    }
    time_case("1000 reals, 65535/1 alternating, 65537", skew, m);
    time_case("65535:1, 65537", {real(1, 65535), real(2, 1)}, m);
    time_case("10000 reals, 65537", equal_reals(10000), m);
    time_case("65534 reals, 65537", equal_reals(65534), m);
    time_case("1000 reals, 655373", equal_reals(1000), 655373);
}

}  // namespace

int main() {
    disruption(lb::dp::kMaglevDefaultSize);
    balance();
    timing();
    return 0;
}
