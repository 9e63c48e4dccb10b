#include <catch2/catch.hpp>

#include <random>

#include "dataplane/checksum.hpp"
#include "packet.hpp"

using namespace lbtest;
using namespace lb::dp;

namespace {

uint16_t rd16(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}
uint32_t rd32(const uint8_t* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
}

// Rewrites the destination address and port the way NAT does, incrementally.
void nat_incremental(Bytes& f, uint8_t proto, uint32_t new_dst, uint16_t new_dport) {
    uint8_t* iph = &f[14];
    uint8_t* l4 = iph + (iph[0] & 0xf) * 4;
    const uint32_t old_dst = rd32(iph + 16);
    const uint16_t old_port = rd16(l4 + 2);
    std::memcpy(iph + 16, &new_dst, 4);
    uint16_t c = csum_replace4(rd16(iph + 10), old_dst, new_dst);
    std::memcpy(iph + 10, &c, 2);
    std::memcpy(l4 + 2, &new_dport, 2);
    const size_t off = proto == 6 ? 16 : 6;
    uint16_t lc = rd16(l4 + off);
    if (proto == 6) {
        lc = csum_replace2(csum_replace4(lc, old_dst, new_dst), old_port, new_dport);
    } else {
        lc = udp_csum_replace2(udp_csum_replace4(lc, old_dst, new_dst), old_port, new_dport);
    }
    std::memcpy(l4 + off, &lc, 2);
}

}  // namespace

TEST_CASE("checksum: incremental NAT updates equal a full recompute", "[checksum]") {
    std::mt19937 rng(7);
    for (int i = 0; i < 5000; ++i) {
        Pkt p;
        p.proto = (i & 1) ? 6 : 17;
        p.src = rng();
        p.dst = rng();
        p.sport = uint16_t(rng());
        p.dport = uint16_t(rng());
        p.ttl = uint8_t(rng() | 2);
        p.ip_id = uint16_t(rng());
        p.tcp_flags = uint8_t(rng());
        p.payload.resize(rng() % 64);
        for (auto& b : p.payload) {
            b = uint8_t(rng());
        }
        Bytes f = p.build();
        const uint32_t new_dst = rng();
        const uint16_t new_port = uint16_t(rng());
        nat_incremental(f, p.proto, new_dst, new_port);

        Pkt q = p;
        q.dst = new_dst;
        q.dport = ntohs(new_port);
        const Bytes expect = q.build();
        INFO("packet " << i);
        REQUIRE(f == expect);
    }
}

TEST_CASE("checksum: a zero UDP checksum stays zero, a computed zero becomes 0xffff",
          "[checksum]") {
    CHECK(udp_csum_replace4(0, 0x01020304, 0x05060708) == 0);
    CHECK(udp_csum_replace2(0, 1, 2) == 0);
    // Find an update whose result would be 0 and check it is sent as 0xffff.
    const uint16_t check = 0x1234;
    bool seen = false;
    for (uint32_t to = 0; to < 0x20000 && !seen; ++to) {
        if (csum_replace2(check, 0, uint16_t(to)) == 0) {
            CHECK(udp_csum_replace2(check, 0, uint16_t(to)) == 0xffff);
            seen = true;
        }
    }
    CHECK(seen);
}

TEST_CASE("checksum: full checksum of a header with its checksum folds to 0xffff", "[checksum]") {
    const Bytes f = Pkt{}.build();
    CHECK(csum_fold(csum_partial(&f[14], 20)) == 0xffff);
    CHECK(csum_full(&f[14], 20) == 0);
}
