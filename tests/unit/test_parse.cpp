#include <catch2/catch.hpp>

#include "dataplane/parse.hpp"
#include "packet.hpp"

using namespace lbtest;
using lb::dp::Drop;
using lb::dp::Parsed;
using lb::dp::ParseResult;

namespace {
ParseResult run(const Bytes& f, Parsed& p, Drop& why) {
    return lb::dp::parse_frame(f.data(), uint32_t(f.size()), p, why);
}
}  // namespace

TEST_CASE("parse: valid TCP, UDP, ICMP and ARP frames", "[parse]") {
    Parsed p;
    Drop why{};
    Pkt tcp;
    tcp.tcp_flags = 0x12;
    REQUIRE(run(tcp.build(), p, why) == ParseResult::Ok);
    CHECK(p.l3 == lb::dp::L3::Ipv4);
    CHECK(p.proto == 6);
    CHECK(p.src == ip("198.51.100.2"));
    CHECK(p.dst == ip("198.51.100.10"));
    CHECK(p.sport == htons(40000));
    CHECK(p.dport == htons(80));
    CHECK(p.tcp_flags == 0x12);
    CHECK(p.l4_off == 34);
    CHECK(p.ip_len == 40);

    Pkt udp;
    udp.proto = 17;
    udp.dport = 53;
    udp.payload = Bytes(100, 0xab);
    REQUIRE(run(udp.build(), p, why) == ParseResult::Ok);
    CHECK(p.proto == 17);
    CHECK(p.l4_len == 108);

    Pkt icmp;
    icmp.proto = 1;
    icmp.sport = 77;
    REQUIRE(run(icmp.build(), p, why) == ParseResult::Ok);
    CHECK(p.icmp_type == 8);
    CHECK(p.sport == htons(77));

    Pkt opts;
    opts.ip_options = Bytes{1, 1, 1, 0};  // NOP NOP NOP EOL: IHL 6
    REQUIRE(run(opts.build(), p, why) == ParseResult::Ok);
    CHECK(p.l4_off == 38);
    CHECK(p.dport == htons(80));

    const Bytes a = arp(1, kClientMac, ip("198.51.100.2"), ip("198.51.100.10"));
    REQUIRE(run(a, p, why) == ParseResult::Ok);
    CHECK(p.l3 == lb::dp::L3::Arp);
    CHECK(p.dst_mac_broadcast);
    CHECK(p.src == ip("198.51.100.2"));
    CHECK(p.dst == ip("198.51.100.10"));
    CHECK(ntohs(p.sport) == 1);
}

TEST_CASE("parse: malformed frames are dropped with the right reason", "[parse]") {
    struct Case {
        const char* what;
        Bytes frame;
        Drop expected;
    };
    std::vector<Case> cases;
    const Bytes good = Pkt{}.build();
    cases.push_back({"empty", {}, Drop::Malformed});
    cases.push_back({"13 bytes", Bytes(good.begin(), good.begin() + 13), Drop::Malformed});
    cases.push_back({"ethernet only", Bytes(good.begin(), good.begin() + 14), Drop::Malformed});
    cases.push_back({"half an IP header", Bytes(good.begin(), good.begin() + 24), Drop::Malformed});
    {
        Bytes f = good;
        f[14] = 0x44;  // IHL 4
        cases.push_back({"IHL below 5", f, Drop::Malformed});
    }
    {
        Bytes f = good;
        f[14] = 0x65;  // version 6 in an IPv4 ethertype
        cases.push_back({"version 6", f, Drop::Malformed});
    }
    {
        Bytes f = good;
        f[16] = 0x05;  // total length 1280 > frame
        cases.push_back({"total length beyond frame", f, Drop::Malformed});
    }
    {
        Bytes f = good;
        f[16] = 0;
        f[17] = 10;  // total length < IHL
        cases.push_back({"total length below header", f, Drop::Malformed});
    }
    {
        Bytes f = good;
        f[24] ^= 0x11;  // break the header checksum
        cases.push_back({"bad header checksum", f, Drop::Malformed});
    }
    {
        Pkt p;
        p.proto = 1;
        p.frag = 0x2000;  // MF
        cases.push_back({"first ICMP fragment", p.build(), Drop::Fragment});
        p.frag = 0x0010;
        cases.push_back({"later ICMP fragment", p.build(), Drop::Fragment});
    }
    {
        Pkt p;
        p.payload = Bytes(4, 0);
        Bytes f = p.build();
        f[14 + 20 + 12] = 0xf0;  // data offset 60 > segment
        cases.push_back({"TCP data offset beyond segment", f, Drop::Malformed});
        f[14 + 20 + 12] = 0x40;  // data offset 16 < 20
        cases.push_back({"TCP data offset below 20", f, Drop::Malformed});
    }
    {
        Pkt p;
        p.proto = 17;
        Bytes f = p.build();
        f[14 + 20 + 4] = 0;
        f[14 + 20 + 5] = 4;  // UDP length 4
        cases.push_back({"UDP length below 8", f, Drop::Malformed});
        f[14 + 20 + 5] = 200;
        cases.push_back({"UDP length beyond packet", f, Drop::Malformed});
    }
    {
        Pkt p;
        p.ethertype = 0x86dd;
        cases.push_back({"IPv6", p.build(), Drop::Unsupported});
        p.ethertype = 0x8100;
        cases.push_back({"VLAN tag", p.build(), Drop::Unsupported});
    }
    {
        Bytes a = arp(1, kClientMac, ip("198.51.100.2"), ip("198.51.100.10"));
        a[14 + 5] = 16;  // plen 16
        cases.push_back({"ARP with IPv6 protocol length", a, Drop::Malformed});
        a.resize(30);
        cases.push_back({"truncated ARP", a, Drop::Malformed});
    }
    {
        // A TCP header cut in the middle (IP total length says so too).
        Pkt p;
        Bytes f = p.build();
        f.resize(14 + 20 + 10);
        f[16] = 0;
        f[17] = 30;
        f[24] = f[25] = 0;
        const uint16_t c = lb::dp::csum_full(&f[14], 20);
        std::memcpy(&f[24], &c, 2);
        cases.push_back({"truncated TCP header", f, Drop::Malformed});
    }
    for (const Case& c : cases) {
        INFO(c.what);
        Parsed p;
        Drop why = Drop::Count;
        CHECK(run(c.frame, p, why) == ParseResult::Drop);
        CHECK(why == c.expected);
    }
}

TEST_CASE("parse: random bytes never read out of bounds", "[parse]") {
    uint64_t seed = 12345;
    auto rnd = [&] {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(seed >> 33);
    };
    const Bytes base = Pkt{}.build();
    for (int i = 0; i < 20000; ++i) {
        Bytes f = base;
        f.resize(rnd() % 80);
        for (int k = 0; k < 4; ++k) {
            if (!f.empty()) {
                f[rnd() % f.size()] = uint8_t(rnd());
            }
        }
        // Exactly-sized heap copy so that sanitizers catch any overread.
        std::unique_ptr<uint8_t[]> buf(new uint8_t[f.size() + 1]);
        std::copy(f.begin(), f.end(), buf.get());
        Parsed p;
        Drop why{};
        if (lb::dp::parse_frame(buf.get(), uint32_t(f.size()), p, why) == ParseResult::Ok &&
            p.l3 == lb::dp::L3::Ipv4) {
            CHECK(uint32_t(p.l3_off) + p.ip_len <= f.size());
        }
    }
}

TEST_CASE("parse: ICMP error quotes", "[parse]") {
    Pkt inner;
    inner.src = ip("198.51.100.10");
    inner.dst = ip("198.51.100.2");
    inner.sport = 80;
    inner.dport = 40000;
    const Bytes in = inner.build();
    Pkt outer;
    outer.proto = 1;
    outer.icmp_type = 3;
    outer.icmp_code = 4;
    outer.src = ip("198.51.100.254");
    outer.payload = Bytes(in.begin() + 14, in.begin() + 14 + 40);
    const Bytes f = outer.build();
    Parsed p;
    Drop why{};
    REQUIRE(run(f, p, why) == ParseResult::Ok);
    lb::dp::Quoted q;
    REQUIRE(lb::dp::parse_icmp_quote(f.data(), uint32_t(f.size()), p, q));
    CHECK(q.proto == 6);
    CHECK(q.src == ip("198.51.100.10"));
    CHECK(q.dst == ip("198.51.100.2"));
    CHECK(q.sport == htons(80));
    CHECK(q.dport == htons(40000));
    CHECK(q.l4_avail == 20);

    // A quote shorter than IP header + 8 bytes is refused.
    outer.payload.resize(24);
    const Bytes s = outer.build();
    REQUIRE(run(s, p, why) == ParseResult::Ok);
    CHECK_FALSE(lb::dp::parse_icmp_quote(s.data(), uint32_t(s.size()), p, q));
}

TEST_CASE("parse: TCP and UDP fragments parse, ports only in the first", "[parse]") {
    Pkt p;
    p.proto = 17;
    p.dport = 53;
    p.payload = Bytes(100, 7);
    p.frag = 0x2000;  // MF, offset 0
    Bytes f = p.build();
    f[14 + 20 + 4] = 0x0b;  // UDP length 3000: more than this fragment holds
    f[14 + 20 + 5] = 0xb8;
    Parsed out;
    Drop why{};
    REQUIRE(parse_frame(f.data(), uint32_t(f.size()), out, why) == ParseResult::Ok);
    CHECK(out.frag_first);
    CHECK_FALSE(out.frag_later);
    CHECK(out.dport == htons(53));
    CHECK(out.ip_id == htons(p.ip_id));
    p.frag = 0x2000 | 100;  // offset 800, more to come
    p.proto = 6;
    const Bytes later = p.build();
    REQUIRE(parse_frame(later.data(), uint32_t(later.size()), out, why) == ParseResult::Ok);
    CHECK(out.frag_later);
    CHECK(out.l4_off == 0);
    CHECK(out.sport == 0);
}
