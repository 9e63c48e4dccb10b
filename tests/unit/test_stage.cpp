// The one bounded way into a TX list: a burst that makes more frames than a list holds (NAT
// fragments at a small MTU) never overruns it; with a sink the full list leaves at once.
#include <catch2/catch.hpp>

#include <vector>

#include "worker_fixture.hpp"

using namespace lbtest;
using namespace lb::dp;

namespace {

// Three ports; the reals sit behind an inside MTU of 576, the smallest a host must take.
const char* kThreePorts = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; mtu = 576; },
               { port = 2; address = "203.0.113.1/24"; mac = "02:00:00:00:02:01"; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 53; protocol = "udp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 5353; forward = "nat"; } ); }
);
)";

// 16 datagrams of 2000 bytes without DF (4 fragments each at MTU 576) and 16 small ones: 80
// frames for port 1 from one burst of 32.
std::vector<Bytes> overflow_burst() {
    std::vector<Bytes> frames;
    for (uint16_t i = 0; i < 32; ++i) {
        Pkt u;
        u.proto = 17;
        u.dport = 53;
        u.sport = 33333;
        u.ip_id = uint16_t(100 + i);
        u.payload = Bytes(i % 2 == 0 ? 2000 - 28 : 100, uint8_t(i));
        frames.push_back(u.build());
    }
    return frames;
}

struct Collect {
    std::vector<std::pair<uint16_t, Bytes>> frames;
    static uint16_t send(void* ctx, uint16_t port, rte_mbuf** pkts, uint16_t n) {
        auto* c = static_cast<Collect*>(ctx);
        for (uint16_t i = 0; i < n; ++i) {
            const auto* d = rte_pktmbuf_mtod(pkts[i], const uint8_t*);
            c->frames.emplace_back(port, Bytes(d, d + rte_pktmbuf_data_len(pkts[i])));
            rte_pktmbuf_free(pkts[i]);
        }
        return n;
    }
};

}  // namespace

TEST_CASE("stage: a burst of 80 frames for one port never overruns its list", "[process][stage]") {
    SECTION("without a sink the frames past the list's end are dropped, counted") {
        Fixture fx(1, 0, 64, kThreePorts);
        fx.send(overflow_burst(), 0);
        CHECK(fx.w->tx[1].n == kStageCap);
        CHECK(fx.w->tx[0].n == 0);
        CHECK(fx.w->tx[2].n == 0);  // the next port's list is untouched
        CHECK(fx.drops(Drop::TxFull) == 80 - kStageCap);
        CHECK(fx.w->counters.nat_fragments.get() == 16 * 4);
    }
    SECTION("with a sink the full list leaves mid-burst and every frame goes out in order") {
        Fixture fx(1, 0, 64, kThreePorts);
        Collect sink;
        fx.w->set_tx_sink({&Collect::send, &sink});
        fx.send(overflow_burst(), 0);
        CHECK(fx.w->tx[2].n == 0);
        const auto rest = fx.take(1);
        CHECK(sink.frames.size() == kStageCap);
        CHECK(sink.frames.size() + rest.size() == 80);
        CHECK(fx.drops(Drop::TxFull) == 0);
        CHECK(fx.w->counters.tx.get() == kStageCap);
        // In order: the IP ids go 100, 100, 100, 100, 101, 102, 102, ...
        std::vector<uint16_t> ids;
        for (const auto& [port, f] : sink.frames) {
            CHECK(port == 1);
            ids.push_back(be16_at(f, 18));
        }
        for (const Bytes& f : rest) {
            ids.push_back(be16_at(f, 18));
        }
        std::vector<uint16_t> want;
        for (uint16_t i = 0; i < 32; ++i) {
            want.insert(want.end(), i % 2 == 0 ? 4 : 1, uint16_t(100 + i));
        }
        CHECK(ids == want);
        fx.w->set_tx_sink({});
    }
}

TEST_CASE("stage: a datagram that needs more fragments than one may make is dropped",
          "[process][stage]") {
    // 68 (the least the config takes): 48 bytes a fragment, 2000 bytes need 42; a jumbo MTU
    // on the outside does not matter, the mbuf holds 2000 bytes at most here, so 42 <= 64
    // passes and the cap is checked with a smaller chunk below.
    const char* tiny = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; mtu = 68; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 53; protocol = "udp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 5353; forward = "nat"; } ); }
);
)";
    Fixture fx(1, 0, 64, tiny);
    Collect sink;
    fx.w->set_tx_sink({&Collect::send, &sink});
    Pkt u;
    u.proto = 17;
    u.dport = 53;
    u.payload = Bytes(2000 - 28, 7);  // 1980 bytes after the header: 42 fragments of 48
    // With 40-byte options the chunk is 24 bytes: 83 fragments, over the cap.
    Pkt o = u;
    o.sport = 40001;
    o.ip_options = Bytes(40, 1);
    o.payload.resize(2000 - 68);
    fx.send({u.build(), o.build()}, 0);
    const auto rest = fx.take(1);
    CHECK(sink.frames.size() + rest.size() == 42);
    CHECK(fx.drops(Drop::TooBig) == 1);
    fx.w->set_tx_sink({});
}
