// lb-pcapgen: the frames parse with lb's own parser, every checksum verifies (with the data
// plane's checksum code, not the generator's), the packet order keeps each flow's SYN first,
// the counts match the spec, and bad command lines are refused with a message naming the option.
#include <arpa/inet.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "dataplane/checksum.hpp"
#include "dataplane/parse.hpp"
#include "tools/pcapgen.hpp"

using lb::gen::Generator;
using lb::gen::PacketInfo;
using lb::gen::Spec;
using lb::gen::UsageError;

namespace {

Spec spec_of(std::vector<std::string> args) {
    bool help = false;
    args.insert(args.begin(), {"-o", "/dev/null"});
    return lb::gen::parse_args(args, help);
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
uint16_t be16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

// The L4 checksum over the pseudo header and the segment folds to all ones when right.
bool l4_csum_ok(const uint8_t* ip, uint32_t ip_len, uint8_t proto) {
    const uint16_t l4_len = uint16_t(ip_len - 20);
    uint32_t sum = lb::dp::csum_partial(ip + 12, 8);
    sum += htons(proto);
    sum += htons(l4_len);
    sum = lb::dp::csum_partial(ip + 20, l4_len, sum);
    return lb::dp::csum_fold(sum) == 0xffff;
}

struct Seen {
    uint64_t packets = 0, syns = 0;
    std::set<std::pair<uint32_t, uint16_t>> tuples;  // (client, client port)
};

// Generates every packet of `s`, checking each one; returns what it saw.
Seen check_all(const Spec& s) {
    Seen seen;
    Generator g(s);
    std::vector<uint8_t> f(s.frame_size + 16, 0xee);
    PacketInfo pi;
    std::map<uint64_t, uint64_t> count_of;  // tuple -> packets so far
    const bool ret = s.mode == lb::gen::Mode::NatReturn;
    while (g.next(f.data(), &pi)) {
        ++seen.packets;
        INFO("packet " << seen.packets - 1 << " tuple " << pi.tuple);
        const uint32_t len = s.frame_size - 4;
        REQUIRE(f[len] == 0xee);  // nothing written past the frame
        lb::dp::Parsed p;
        lb::dp::Drop why{};
        REQUIRE(lb::dp::parse_frame(f.data(), len, p, why) == lb::dp::ParseResult::Ok);
        REQUIRE(p.proto == s.proto);
        REQUIRE(std::equal(s.dst_mac.begin(), s.dst_mac.end(), f.begin()));
        REQUIRE(std::equal(s.src_mac.begin(), s.src_mac.end(), f.begin() + 6));
        const uint8_t* ip = f.data() + 14;
        REQUIRE(lb::dp::csum_fold(lb::dp::csum_partial(ip, 20)) == 0xffff);
        REQUIRE(l4_csum_ok(ip, p.ip_len, s.proto));
        REQUIRE((be16(ip + 6) & 0x4000) != 0);  // DF
        const uint32_t src = be32(ip + 12), dst = be32(ip + 16);
        const uint32_t client = ret ? dst : src;
        const uint16_t cport = ntohs(ret ? p.dport : p.sport);
        REQUIRE(client >= s.client_first);
        REQUIRE(client <= s.client_last);
        REQUIRE(cport >= s.sport_first);
        if (ret) {
            REQUIRE(ntohs(p.sport) == s.real_port);
            REQUIRE(src == s.reals[pi.tuple % s.reals.size()]);
        } else {
            REQUIRE(dst == s.vip);
            REQUIRE(ntohs(p.dport) == s.vport);
        }
        // One tuple index, one (client, port); never two indices on one tuple.
        const auto key = std::make_pair(client, cport);
        if (count_of[pi.tuple]++ == 0) {
            REQUIRE(seen.tuples.insert(key).second);
        } else {
            REQUIRE(seen.tuples.count(key) == 1);
        }
        const bool first = count_of[pi.tuple] == 1;
        if (pi.syn) {
            ++seen.syns;
            REQUIRE(first);  // a SYN is always the first packet of its tuple
        }
        if (s.proto == 6) {
            const uint8_t flags = p.tcp_flags;
            if (pi.syn) {
                REQUIRE(flags == (ret ? 0x12 : 0x02));
                REQUIRE(p.ip_len == 40);  // no payload, padded to the frame
                for (uint32_t i = 14 + 40; i < len; ++i) {
                    REQUIRE(f[i] == 0);
                }
            } else {
                REQUIRE((flags & 0x07) == 0);  // no SYN, FIN or RST
                REQUIRE((flags & 0x10) != 0);  // ACK
                REQUIRE(p.ip_len == len - 14);
            }
            if (first && pi.tuple < s.opened_flows()) {
                REQUIRE(pi.syn);  // an opened flow starts with its SYN
            }
        } else {
            REQUIRE(p.ip_len == len - 14);
            REQUIRE(be16(ip + 24) == len - 14 - 20);
            REQUIRE(be16(ip + 26) != 0);  // a computed zero is sent as 0xffff
        }
    }
    REQUIRE(g.written() == s.packets);
    // Every flow appears; the extras each once.
    for (uint64_t t = 0; t < s.flows; ++t) {
        REQUIRE(count_of.count(t) == 1);
    }
    for (const auto& [t, n] : count_of) {
        if (t >= s.flows) {
            REQUIRE(n == 1);
        }
    }
    REQUIRE(count_of.size() == s.flows + s.extra_syns());
    return seen;
}

std::vector<uint8_t> all_bytes(const Spec& s) {
    Generator g(s);
    std::vector<uint8_t> out, f(s.frame_size);
    while (g.next(f.data())) {
        out.insert(out.end(), f.begin(), f.end() - 4);
    }
    return out;
}

}  // namespace

TEST_CASE("pcapgen: every frame parses and its checksums verify", "[pcapgen]") {
    struct Case {
        const char* what;
        std::vector<std::string> args;
        uint64_t syns;
    };
    const std::vector<Case> cases = {
        {"tcp 64 B, one SYN per flow", {"--packets", "4096", "--flows", "100"}, 100},
        {"tcp 64 B, every flow once", {"--packets", "300", "--flows", "300"}, 300},
        {"udp 64 B", {"--proto", "udp", "--packets", "1000", "--flows", "64"}, 64},
        {"tcp 1518 B", {"--frame-size", "1518", "--packets", "500", "--flows", "7"}, 7},
        {"tcp 65 B (odd payload)", {"--frame-size", "65", "--packets", "200", "--flows", "3"}, 3},
        {"udp 1001 B (odd)",
         {"--proto", "udp", "--frame-size", "1001", "--packets", "80", "--flows", "50"},
         50},
        {"SYN share above flows: new tuples",
         {"--packets", "2000", "--flows", "10", "--syn-share", "0.5"},
         1000},
        {"SYN share below flows: mid-flow starts",
         {"--packets", "2000", "--flows", "100", "--syn-share", "0.01"},
         20},
        {"no SYN at all", {"--packets", "500", "--flows", "100", "--syn-share", "0"}, 0},
        {"every packet a new tuple", {"--packets", "500", "--flows", "1", "--syn-share", "1"}, 500},
        {"small client range wraps to more ports",
         {"--clients", "192.0.2.1-192.0.2.3", "--packets", "100", "--flows", "40"},
         40},
        {"nat-return",
         {"--mode", "nat-return", "--reals", "10.10.0.2,10.10.0.3", "--real-port", "8080",
          "--packets", "1000", "--flows", "50"},
         50},
    };
    for (const Case& c : cases) {
        SECTION(c.what) {
            const Spec s = spec_of(c.args);
            REQUIRE(s.syn_count() == c.syns);
            const Seen seen = check_all(s);
            CHECK(seen.packets == s.packets);
            CHECK(seen.syns == c.syns);
        }
    }
}

TEST_CASE("pcapgen: defaults are the bench's traffic", "[pcapgen]") {
    const Spec s = spec_of({});
    CHECK(s.frame_size == 64);
    CHECK(s.proto == 6);
    CHECK(s.packets == 262144);
    CHECK(s.flows == 1024);
    CHECK(s.client_first == 0xc6120001);  // 198.18.0.1: the host addresses of 198.18.0.0/15
    CHECK(s.client_last == 0xc613fffe);
    CHECK(s.vip == 0xc633640a);  // 198.51.100.10
    CHECK(s.vport == 80);
    CHECK(s.syn_count() == 1024);
    CHECK(s.extra_syns() == 0);
    // 64-byte frames: 60 in the pcap; a SYN is 54 bytes of headers and 6 of padding.
    Generator g(s);
    std::vector<uint8_t> f(60);
    PacketInfo pi;
    REQUIRE(g.next(f.data(), &pi));
    CHECK(pi.syn);
    CHECK(be16(f.data() + 16) == 40);
}

TEST_CASE("pcapgen: the seed decides the order, and only the order", "[pcapgen]") {
    const Spec a = spec_of({"--packets", "3000", "--flows", "300", "--seed", "7"});
    const Spec b = spec_of({"--packets", "3000", "--flows", "300", "--seed", "7"});
    const Spec c = spec_of({"--packets", "3000", "--flows", "300", "--seed", "8"});
    CHECK(all_bytes(a) == all_bytes(b));
    CHECK(all_bytes(a) != all_bytes(c));
    // Same tuples whatever the seed.
    CHECK(check_all(a).tuples == check_all(c).tuples);
}

TEST_CASE("pcapgen: the passes spread each flow's packets", "[pcapgen]") {
    // 4 flows, 12 packets: three passes, each a permutation of the four flows.
    const Spec s = spec_of({"--packets", "12", "--flows", "4"});
    Generator g(s);
    std::vector<uint8_t> f(60);
    PacketInfo pi;
    for (uint64_t pass = 0; pass < 3; ++pass) {
        std::set<uint64_t> flows;
        for (int i = 0; i < 4; ++i) {
            REQUIRE(g.next(f.data(), &pi));
            CHECK(pi.pass == pass);
            CHECK(pi.syn == (pass == 0));
            flows.insert(pi.tuple);
        }
        CHECK(flows.size() == 4);
    }
    CHECK_FALSE(g.next(f.data(), &pi));
}

TEST_CASE("pcapgen: the pcap writer's records read back", "[pcapgen]") {
    std::FILE* f = std::tmpfile();
    REQUIRE(f != nullptr);
    const Spec s = spec_of({"--packets", "3", "--flows", "3"});
    std::vector<std::vector<uint8_t>> frames;
    {
        lb::gen::PcapWriter w(f);
        Generator g(s);
        std::vector<uint8_t> fr(60);
        while (g.next(fr.data())) {
            w.frame(fr.data(), 60, g.written());
            frames.push_back(fr);
        }
        w.flush();
    }
    std::rewind(f);
    std::vector<uint8_t> data(24 + 3 * 76 + 1);
    REQUIRE(std::fread(data.data(), 1, data.size(), f) == 24 + 3 * 76);
    std::fclose(f);
    uint32_t magic, snaplen, link;
    std::memcpy(&magic, data.data(), 4);
    std::memcpy(&snaplen, data.data() + 16, 4);
    std::memcpy(&link, data.data() + 20, 4);
    CHECK(magic == 0xa1b2c3d4);
    CHECK(snaplen == 65535);
    CHECK(link == 1);
    for (size_t i = 0; i < 3; ++i) {
        uint32_t rec[4];
        std::memcpy(rec, data.data() + 24 + i * 76, 16);
        CHECK(rec[0] == 0);
        CHECK(rec[1] == i + 1);
        CHECK(rec[2] == 60);
        CHECK(rec[3] == 60);
        CHECK(std::equal(frames[i].begin(), frames[i].end(), data.begin() + 24 + i * 76 + 16));
    }
}

TEST_CASE("pcapgen: bad command lines name the option", "[pcapgen]") {
    struct Case {
        std::vector<std::string> args;
        const char* message;
    };
    const std::vector<Case> cases = {
        {{"--packets"}, "--packets needs a value"},
        {{"--packets", "ten"}, "--packets: \"ten\" is not a number"},
        {{"--packets", "0"}, "--packets: 0 is out of range"},
        {{"--packets", "-5"}, "is not a number"},
        {{"--flows", "1Q"}, "--flows: \"1Q\" is not a number"},
        {{"--frame-size", "63"}, "--frame-size: 63 is out of range 64..1518"},
        {{"--frame-size", "1519"}, "out of range"},
        {{"--proto", "sctp"}, "--proto: \"sctp\" is not tcp or udp"},
        {{"--mode", "dr"}, "--mode: \"dr\" is not client or nat-return"},
        {{"--syn-share", "1.5"}, "--syn-share: \"1.5\" is not a share"},
        {{"--syn-share", "nan"}, "is not a share"},
        {{"--syn-share", "0.5x"}, "is not a share"},
        {{"--vip", "198.51.100"}, "--vip: \"198.51.100\" is not an IPv4 address"},
        {{"--vip", "198.51.100.010"}, "is not an IPv4 address"},
        {{"--vip", "224.0.0.1"}, "not a unicast host address"},
        {{"--vip", "198.18.0.5"}, "the VIP is inside the client range"},
        {{"--clients", "198.18.0.1/15"}, "has host bits set"},
        {{"--clients", "198.18.0.0/33"}, "out of range 1..32"},
        {{"--clients", "10.0.0.9-10.0.0.1"}, "is an empty range"},
        {{"--clients", "126.0.0.1-128.0.0.1"}, "spans 127.0.0.0/8"},
        {{"--src-mac", "01:00:5e:00:00:01"}, "not a unicast MAC"},
        {{"--dst-mac", "02:00:00:00:00"}, "is not a MAC address"},
        {{"--dst-mac", "02:00:00:00:00:zz"}, "is not a MAC address"},
        {{"--mode", "nat-return"}, "--mode nat-return needs --reals"},
        {{"--reals", "10.10.0.2"}, "for --mode nat-return only"},
        {{"--packets", "10", "--flows", "11"}, "--packets (10) is below --flows (11)"},
        {{"--clients", "192.0.2.1", "--sport-first", "65535", "--flows", "2"},
         "2 tuples do not fit in 1 client addresses"},
        {{"--bogus"}, "unknown argument \"--bogus\""},
    };
    for (const Case& c : cases) {
        INFO(c.message);
        CHECK_THROWS_WITH(spec_of(c.args), Catch::Contains(c.message));
    }
    bool help = false;
    CHECK_THROWS_WITH(lb::gen::parse_args({"--flows", "4"}, help),
                      Catch::Contains("-o FILE is required"));
    lb::gen::parse_args({"--help"}, help);
    CHECK(help);
}
