#pragma once
// A worker on real mbufs against a snapshot built from a config text: what the packet tests
// share (the EAL, a pool, the fixture that sends a burst and takes what left on a port).
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <vector>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "control/config.hpp"
#include "control/snapshot_builder.hpp"
#include "dataplane/worker.hpp"
#include "packet.hpp"

namespace lbtest {

using namespace lb::dp;

inline rte_mempool* pool() {
    static rte_mempool* p = [] {
        const char* argv[] = {"unit_tests", "--no-huge", "-m", "128", "--no-pci", "--no-shconf",
                              "--no-telemetry", "-l", "0", "--log-level", "*:error"};
        if (rte_eal_init(int(std::size(argv)), const_cast<char**>(argv)) < 0) {
            return static_cast<rte_mempool*>(nullptr);
        }
        return rte_pktmbuf_pool_create("unit", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
    }();
    return p;
}

inline const char* kConfig = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
routes = ( { prefix = "203.0.113.0/24"; via = "198.51.100.254"; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; },
              { address = "10.10.0.3"; port = 8080; forward = "nat"; } ); },
  { vip = "198.51.100.10"; port = 53; protocol = "udp"; scheduler = "wrr";
    reals = ( { address = "10.10.0.2"; port = 5353; weight = 3; forward = "nat"; },
              { address = "10.10.0.3"; port = 5353; weight = 1; forward = "nat"; } ); },
  { vip = "198.51.100.11"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.4"; port = 80; weight = 0; forward = "nat"; } ); }
);
)";

struct Fixture {
    std::unique_ptr<Snapshot> snap;
    NeighbourTable neigh;
    std::unique_ptr<Worker> w;
    unsigned baseline = 0;

    explicit Fixture(uint16_t n_workers = 1, uint16_t id = 0, uint32_t capacity = 64,
                     const char* config = kConfig) {
        REQUIRE(pool() != nullptr);
        baseline = rte_mempool_in_use_count(pool());
        const lb::ctl::Config cfg = lb::ctl::parse_config(config, "unit.conf");
        std::array<rte_ether_addr, kMaxPorts> macs{};
        macs[0] = {{0x02, 0, 0, 0, 0, 0x01}};
        macs[1] = {{0x02, 0, 0, 0, 1, 0x01}};
        macs[2] = {{0x02, 0, 0, 0, 2, 0x01}};
        snap = lb::ctl::build_snapshot(cfg, macs, n_workers, 1);
        w = std::make_unique<Worker>(id, n_workers, capacity, neigh);
        set_neigh("198.51.100.2", 0x02, 0);
        set_neigh("198.51.100.254", 0xfe, 0);
        set_neigh("10.10.0.2", 0x12, 1);
        set_neigh("10.10.0.3", 0x13, 1);
    }
    ~Fixture() {
        release();
        CHECK(rte_mempool_in_use_count(pool()) == baseline);  // no mbuf leaked
    }
    void set_neigh(const char* a, uint8_t last, uint16_t port) {
        neigh.set(ip(a), rte_ether_addr{{0x02, 0, 0, 0, uint8_t(port), last}}, port,
                  NeighState::Static);
    }
    // Sends frames arriving on `port`; returns what left on each port.
    void send(const std::vector<Bytes>& frames, uint16_t port, uint32_t now = 1000) {
        rte_mbuf* m[kBurst];
        REQUIRE(frames.size() <= kBurst);
        for (size_t i = 0; i < frames.size(); ++i) {
            m[i] = rte_pktmbuf_alloc(pool());
            REQUIRE(m[i] != nullptr);
            std::memcpy(rte_pktmbuf_append(m[i], uint16_t(frames[i].size())), frames[i].data(),
                        frames[i].size());
            m[i]->port = port;
        }
        w->process_burst(*snap, m, uint16_t(frames.size()), now);
    }
    std::vector<Bytes> take(uint16_t port) {
        std::vector<Bytes> out;
        Staged& t = w->tx[port];
        for (uint16_t i = 0; i < t.n; ++i) {
            const auto* d = rte_pktmbuf_mtod(t.pkts[i], const uint8_t*);
            out.emplace_back(d, d + rte_pktmbuf_data_len(t.pkts[i]));
            rte_pktmbuf_free(t.pkts[i]);
        }
        t.n = 0;
        return out;
    }
    void release() {
        w->release_held(0, true);
        for (auto& t : w->tx) {
            for (uint16_t i = 0; i < t.n; ++i) {
                rte_pktmbuf_free(t.pkts[i]);
            }
            t.n = 0;
        }
        for (auto& r : w->redirect) {
            for (uint16_t i = 0; i < r.n; ++i) {
                rte_pktmbuf_free(r.pkts[i]);
            }
            r.n = 0;
        }
    }
    uint64_t drops(Drop d) const { return w->counters.drops[size_t(d)].get(); }
};

}  // namespace lbtest
