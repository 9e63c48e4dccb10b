#include "dataplane/maglev.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace lb::dp {

namespace {

// Products of two values below 2^33 (pass comparisons for tables up to 2^32 entries).
__extension__ typedef unsigned __int128 Wide;

using Key = std::array<uint8_t, 6>;

constexpr std::array<uint8_t, 16> ascii_key(const char (&s)[17]) {
    std::array<uint8_t, 16> k{};
    for (size_t i = 0; i < 16; ++i) {
        k[i] = uint8_t(s[i]);
    }
    return k;
}

constexpr std::array<uint8_t, 16> kOffsetKey = ascii_key("lb-maglev-offset");
constexpr std::array<uint8_t, 16> kSkipKey = ascii_key("lb-maglev-skip..");

// The backend's addr then port bytes as they lie in memory: network order, as on the wire.
Key key_of(uint32_t addr, uint16_t port) noexcept {
    Key k{};
    std::memcpy(k.data(), &addr, 4);
    std::memcpy(k.data() + 4, &port, 2);
    return k;
}

void validate(size_t n_backends, uint32_t size) {
    if (size < 2) {
        throw std::invalid_argument("maglev table size " + std::to_string(size) + " is below 2");
    }
    if (!is_prime(size)) {
        throw std::invalid_argument("maglev table size " + std::to_string(size) + " is not prime");
    }
    if (n_backends > kMaglevMaxBackends) {
        throw std::invalid_argument("maglev: " + std::to_string(n_backends) +
                                    " backends, at most " + std::to_string(kMaglevMaxBackends));
    }
}

// Indices of `backends` ordered by (addr, port) bytes, then weight, then index: the order every
// tie in the build is broken by, so the table does not depend on the caller's list order.
std::vector<uint32_t> canonical_order(const std::vector<MaglevBackend>& backends) {
    std::vector<Key> keys(backends.size());
    std::vector<uint32_t> order(backends.size());
    for (uint32_t i = 0; i < backends.size(); ++i) {
        keys[i] = key_of(backends[i].addr, backends[i].port);
        order[i] = i;
    }
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
        if (keys[a] != keys[b]) {
            return keys[a] < keys[b];
        }
        if (backends[a].weight != backends[b].weight) {
            return backends[a].weight < backends[b].weight;
        }
        return a < b;
    });
    return order;
}

std::vector<uint32_t> entries_in_order(const std::vector<MaglevBackend>& backends,
                                       const std::vector<uint32_t>& order, uint32_t size) {
    std::vector<uint32_t> entries(backends.size(), 0);
    std::vector<uint32_t> positive;  // canonical order
    for (uint32_t i : order) {
        if (backends[i].weight > 0) {
            positive.push_back(i);
        }
    }
    if (positive.empty()) {
        return entries;
    }
    uint64_t wsum = 0;
    for (uint32_t i : positive) {
        wsum += backends[i].weight;
    }
    uint64_t seats = size;

    // Floor of one entry: a backend whose exact share seats * w / wsum of what is left is below
    // one gets exactly one, and the rest is shared among the others. Giving one to the lightest
    // only raises the others' threshold wsum / seats, so the backends that get the floor are a
    // prefix of the weight-ascending order. With P <= size the heaviest never does.
    std::vector<bool> floored(backends.size(), false);
    if (positive.size() <= size) {
        std::vector<uint32_t> by_weight = positive;
        std::stable_sort(by_weight.begin(), by_weight.end(), [&](uint32_t a, uint32_t b) {
            return backends[a].weight < backends[b].weight;
        });
        for (uint32_t i : by_weight) {
            const uint64_t w = backends[i].weight;
            if (seats * w >= wsum) {
                break;
            }
            floored[i] = true;
            entries[i] = 1;
            --seats;
            wsum -= w;
        }
    }

    // Largest remainder over the others: floor of the exact share, then one more for the largest
    // remainders, ties to the canonical order.
    struct Rest {
        uint32_t index;
        uint64_t remainder;
    };
    std::vector<Rest> rest;
    uint64_t given = 0;
    for (uint32_t i : positive) {
        if (floored[i]) {
            continue;
        }
        const uint64_t exact = seats * backends[i].weight;  // < 2^48
        entries[i] = uint32_t(exact / wsum);
        given += entries[i];
        rest.push_back({i, exact % wsum});
    }
    std::stable_sort(rest.begin(), rest.end(),
                     [](const Rest& a, const Rest& b) { return a.remainder > b.remainder; });
    for (uint64_t k = 0; k < seats - given; ++k) {
        ++entries[rest[k].index];
    }
    return entries;
}

inline uint64_t rotl(uint64_t x, int b) noexcept { return (x << b) | (x >> (64 - b)); }

inline void sip_round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) noexcept {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
}

inline uint64_t load_le64(const uint8_t* p, size_t n) noexcept {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
        v |= uint64_t(p[i]) << (8 * i);
    }
    return v;
}

}  // namespace

bool is_prime(uint32_t n) noexcept {
    if (n < 2) {
        return false;
    }
    if (n % 2 == 0) {
        return n == 2;
    }
    for (uint64_t d = 3; d * d <= n; d += 2) {
        if (n % d == 0) {
            return false;
        }
    }
    return true;
}

uint64_t siphash24(std::span<const uint8_t> msg, const std::array<uint8_t, 16>& key) noexcept {
    const uint64_t k0 = load_le64(key.data(), 8);
    const uint64_t k1 = load_le64(key.data() + 8, 8);
    uint64_t v0 = k0 ^ 0x736f6d6570736575ULL;
    uint64_t v1 = k1 ^ 0x646f72616e646f6dULL;
    uint64_t v2 = k0 ^ 0x6c7967656e657261ULL;
    uint64_t v3 = k1 ^ 0x7465646279746573ULL;
    const size_t n = msg.size();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const uint64_t m = load_le64(msg.data() + i, 8);
        v3 ^= m;
        sip_round(v0, v1, v2, v3);
        sip_round(v0, v1, v2, v3);
        v0 ^= m;
    }
    const uint64_t last = (uint64_t(n & 0xff) << 56) | load_le64(msg.data() + i, n - i);
    v3 ^= last;
    sip_round(v0, v1, v2, v3);
    sip_round(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    for (int r = 0; r < 4; ++r) {
        sip_round(v0, v1, v2, v3);
    }
    return v0 ^ v1 ^ v2 ^ v3;
}

MaglevPermutation maglev_permutation(uint32_t addr, uint16_t port, uint32_t size) noexcept {
    const Key k = key_of(addr, port);
    const uint32_t offset = uint32_t(siphash24(k, kOffsetKey) % size);
    const uint32_t skip = uint32_t(siphash24(k, kSkipKey) % (size - 1) + 1);
    return {offset, skip};
}

std::vector<uint32_t> maglev_entries(const std::vector<MaglevBackend>& backends, uint32_t size) {
    validate(backends.size(), size);
    return entries_in_order(backends, canonical_order(backends), size);
}

// The fill: each backend with entries claims, in turn, the next slot of its permutation that is
// still free, until it holds its entries. The turns interleave by "pass": backend b's k-th claim
// (k = 0, 1, ...) comes at (2k + 1) / (2 * entries_b), so every backend spreads its claims evenly
// over the whole fill and finishes at its end (equal weights: plain round robin, as in the
// paper). Ties go to the canonical order. Exactly `size` claims fill the table, so no backend
// ever walks a permutation with no free slot left, and none is visited after it is done.
std::vector<uint16_t> build_maglev(const std::vector<MaglevBackend>& backends, uint32_t size) {
    validate(backends.size(), size);
    const std::vector<uint32_t> order = canonical_order(backends);
    const std::vector<uint32_t> entries = entries_in_order(backends, order, size);
    std::vector<uint16_t> table(size, kMaglevNone);

    struct Walker {
        uint32_t slot;  // current position in the permutation
        uint32_t skip;
        uint32_t entries;  // to claim
        uint32_t taken;    // claimed so far
        uint16_t index;    // into `backends`
    };
    std::vector<Walker> walkers;  // canonical order: a walker's position is its tie rank
    for (uint32_t i : order) {
        if (entries[i] > 0) {
            const MaglevPermutation p =
                maglev_permutation(backends[i].addr, backends[i].port, size);
            walkers.push_back({p.offset, p.skip, entries[i], 0, uint16_t(i)});
        }
    }
    if (walkers.empty()) {
        return table;
    }
    // Min-heap on the pass of each walker's next claim, by cross-multiplication.
    auto later = [&walkers](uint32_t a, uint32_t b) {
        const Walker& x = walkers[a];
        const Walker& y = walkers[b];
        const Wide px = Wide(2 * uint64_t(x.taken) + 1) * y.entries;
        const Wide py = Wide(2 * uint64_t(y.taken) + 1) * x.entries;
        return px != py ? px > py : a > b;
    };
    std::vector<uint32_t> heap(walkers.size());
    for (uint32_t i = 0; i < heap.size(); ++i) {
        heap[i] = i;
    }
    std::make_heap(heap.begin(), heap.end(), later);
    for (uint32_t filled = 0; filled < size; ++filled) {
        std::pop_heap(heap.begin(), heap.end(), later);
        Walker& w = walkers[heap.back()];
        while (table[w.slot] != kMaglevNone) {
            const uint64_t next = uint64_t(w.slot) + w.skip;
            w.slot = uint32_t(next >= size ? next - size : next);
        }
        table[w.slot] = w.index;
        if (++w.taken < w.entries) {
            std::push_heap(heap.begin(), heap.end(), later);
        } else {
            heap.pop_back();
        }
    }
    return table;
}

}  // namespace lb::dp
