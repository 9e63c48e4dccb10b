// The worker's packet logic on real mbufs, against a snapshot built from a config text.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "control/config.hpp"
#include "control/snapshot_builder.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/worker.hpp"
#include "packet.hpp"
#include "worker_fixture.hpp"

using namespace lbtest;
using namespace lb::dp;

namespace {

Bytes to_real(Pkt p, const char* real, uint16_t rport) {
    p.dst = ip(real);
    p.dport = rport;
    p.ttl = uint8_t(p.ttl - 1);
    p.dst_mac = Mac{{0x02, 0, 0, 0, 1, uint8_t(std::string(real) == "10.10.0.2" ? 0x12 : 0x13)}};
    p.src_mac = kPortMac1;
    return p.build();
}

}  // namespace

TEST_CASE("process: NAT inbound alternates reals and rewrites with valid checksums", "[process]") {
    Fixture fx;
    Pkt a, b;
    b.sport = 40001;
    fx.send({a.build(), b.build()}, 0);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 2);
    CHECK(out[0] == to_real(a, "10.10.0.2", 8080));
    CHECK(out[1] == to_real(b, "10.10.0.3", 8080));
    CHECK(fx.take(0).empty());
    CHECK(fx.w->counters.conns_created.get() == 2);
    CHECK(fx.w->svc_stats[0].conns.get() == 2);
    CHECK(fx.w->real_stats[0].conns.get() == 1);
    CHECK(fx.w->real_stats[1].inactive.get() == 1);

    // Further packets of a connection stick to its real.
    Pkt a2 = a;
    a2.tcp_flags = 0x10;
    fx.send({a2.build()}, 0);
    const auto out2 = fx.take(1);
    REQUIRE(out2.size() == 1);
    CHECK(out2[0] == to_real(a2, "10.10.0.2", 8080));
    CHECK(fx.w->real_stats[0].active.get() == 1);  // ESTABLISHED after the client's ACK
}

TEST_CASE("process: NAT outbound rewrites the source back to the VIP", "[process]") {
    Fixture fx;
    Pkt syn;
    fx.send({syn.build()}, 0);
    REQUIRE(fx.take(1).size() == 1);
    Pkt reply;
    reply.src = ip("10.10.0.2");
    reply.sport = 8080;
    reply.dst = ip("198.51.100.2");
    reply.dport = 40000;
    reply.tcp_flags = 0x12;
    reply.src_mac = Mac{{0x02, 0, 0, 0, 1, 0x12}};
    reply.dst_mac = kPortMac1;
    reply.payload = Bytes(33, 0x5a);
    fx.send({reply.build()}, 1);
    const auto out = fx.take(0);
    REQUIRE(out.size() == 1);
    Pkt expect = reply;
    expect.src = ip("198.51.100.10");
    expect.sport = 80;
    expect.ttl = 63;
    expect.src_mac = kPortMac0;
    expect.dst_mac = kClientMac;
    CHECK(out[0] == expect.build());
    CHECK(fx.w->svc_stats[0].out_pkts.get() == 1);
    CHECK(fx.w->svc_stats[0].out_bytes.get() == 20 + 20 + 33);

    // Return traffic of an unknown connection is not routed.
    Pkt stray = reply;
    stray.dport = 999;
    fx.send({stray.build()}, 1);
    CHECK(fx.take(0).empty());
    CHECK(fx.drops(Drop::NoConnection) == 1);
}

TEST_CASE("process: UDP follows wrr 3:1 and keeps a zero checksum", "[process]") {
    Fixture fx;
    std::vector<Bytes> in;
    for (int i = 0; i < 8; ++i) {
        Pkt u;
        u.proto = 17;
        u.dport = 53;
        u.sport = uint16_t(5000 + i);
        u.udp_zero_csum = i == 0;
        u.payload = Bytes(10, uint8_t(i));
        in.push_back(u.build());
    }
    fx.send(in, 0);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 8);
    std::string reals;
    for (const Bytes& f : out) {
        reals += f[14 + 19] == 2 ? 'A' : 'B';
    }
    CHECK(reals == "AAABAAAB");
    CHECK(out[0][14 + 20 + 6] == 0);
    CHECK(out[0][14 + 20 + 7] == 0);
    Pkt u;
    u.proto = 17;
    u.dport = 53;
    u.sport = 5001;
    u.payload = Bytes(10, 1);
    CHECK(out[1] == to_real(u, "10.10.0.2", 5353));
}

TEST_CASE("process: drops are counted by reason", "[process]") {
    Fixture fx;
    Pkt other_mac;
    other_mac.dst_mac = Mac{{0x02, 9, 9, 9, 9, 9}};
    Pkt to_director;
    to_director.dst = ip("198.51.100.1");
    to_director.dport = 22;
    Pkt no_service;
    no_service.dport = 443;
    Pkt not_ours;
    not_ours.dst = ip("203.0.113.5");
    Pkt mid_flow;
    mid_flow.tcp_flags = 0x10;
    Pkt ttl1;
    ttl1.ttl = 1;
    Pkt quiescent;
    quiescent.dst = ip("198.51.100.11");
    Pkt v6;
    v6.ethertype = 0x86dd;
    fx.send({other_mac.build(), to_director.build(), no_service.build(), not_ours.build(),
             mid_flow.build(), ttl1.build(), quiescent.build(), v6.build()},
            0);
    // mid_flow (an ACK of no connection) is answered with a RST (connections.reset_unknown).
    const auto back = fx.take(0);
    REQUIRE(back.size() == 1);
    CHECK(back[0][14 + 20 + 13] == 0x04);
    CHECK(fx.w->counters.resets_sent.get() == 1);
    CHECK(fx.take(1).empty());
    CHECK(fx.drops(Drop::NotForUs) == 2);
    CHECK(fx.drops(Drop::NoService) == 1);
    CHECK(fx.drops(Drop::NoConnection) == 1);  // not_ours: a SYN of no connection, no RST
    CHECK(fx.drops(Drop::TtlExceeded) == 1);
    CHECK(fx.drops(Drop::NoReal) == 1);
    CHECK(fx.drops(Drop::Unsupported) == 1);
    CHECK(fx.w->conns.size() == 0);
}

TEST_CASE("process: a full table refuses new connections, existing ones keep flowing",
          "[process]") {
    Fixture fx(1, 0, 4);
    std::vector<Bytes> syns, acks;
    for (int i = 0; i < 6; ++i) {
        Pkt p;
        p.sport = uint16_t(1000 + i);
        syns.push_back(p.build());
        p.tcp_flags = 0x10;
        acks.push_back(p.build());
    }
    // Four established connections fill the table: nothing to evict for the other two.
    fx.send({syns[0], syns[1], syns[2], syns[3]}, 0);
    fx.send({acks[0], acks[1], acks[2], acks[3]}, 0);
    CHECK(fx.take(1).size() == 8);
    fx.send({syns[4], syns[5]}, 0);
    CHECK(fx.take(1).empty());
    CHECK(fx.drops(Drop::TableFull) == 2);
    CHECK(fx.w->counters.conns_evicted.get() == 0);
    fx.send({acks[0]}, 0);
    CHECK(fx.take(1).size() == 1);
    // Once the entries expire the sweep frees them and new connections fit again.
    fx.w->expire(1000 + 1000 * 1000, 64);
    CHECK(fx.w->conns.size() == 0);
    CHECK(fx.w->real_stats[0].active.get() == 0);
    CHECK(fx.w->real_stats[0].inactive.get() == 0);
    fx.send({syns[5]}, 0, 2'000'000);
    CHECK(fx.take(1).size() == 1);
}

TEST_CASE("process: under a SYN flood half-open entries make room, established ones stay",
          "[process]") {
    Fixture fx(1, 0, 8);
    // Two established connections, then a flood of SYNs that never complete.
    std::vector<Bytes> est;
    for (int i = 0; i < 2; ++i) {
        Pkt p;
        p.sport = uint16_t(2000 + i);
        est.push_back(p.build());
        p.tcp_flags = 0x10;
        est.push_back(p.build());
    }
    fx.send(est, 0);
    CHECK(fx.take(1).size() == 4);
    for (int round = 0; round < 4; ++round) {
        std::vector<Bytes> flood;
        for (int i = 0; i < 16; ++i) {
            Pkt p;
            p.src = ip("198.51.100.77");
            p.sport = uint16_t(10000 + round * 16 + i);
            flood.push_back(p.build());
        }
        fx.send(flood, 0);
        CHECK(fx.take(1).size() == 16);  // each one finds room: a half-open one goes
    }
    CHECK(fx.w->counters.conns_evicted.get() == 64 - 6);
    CHECK(fx.drops(Drop::TableFull) == 0);
    // The established connections are still there.
    Pkt data;
    data.sport = 2000;
    data.tcp_flags = 0x18;
    fx.send({data.build()}, 0);
    CHECK(fx.take(1).size() == 1);
    CHECK(fx.w->real_stats[0].active.get() + fx.w->real_stats[1].active.get() == 2);
}

TEST_CASE("process: ARP requests for our addresses and VIPs are answered", "[process]") {
    Fixture fx;
    fx.send({arp(1, kClientMac, ip("198.51.100.2"), ip("198.51.100.10")),
             arp(1, kClientMac, ip("198.51.100.2"), ip("198.51.100.1")),
             arp(1, kClientMac, ip("198.51.100.2"), ip("198.51.100.99"))},
            0);
    const auto out = fx.take(0);
    REQUIRE(out.size() == 2);
    Bytes expect = arp(2, kPortMac0, ip("198.51.100.10"), ip("198.51.100.2"), kClientMac);
    std::memcpy(&expect[32], kClientMac.b, 6);  // tha
    CHECK(out[0] == expect);
    CHECK(fx.drops(Drop::ArpIgnored) == 1);
    CHECK(fx.w->n_slow == 2);  // the requester is learned twice
    CHECK(fx.w->slow[0].type == SlowMsg::Learn);
    CHECK(fx.w->slow[0].ip == ip("198.51.100.2"));
}

TEST_CASE("process: ICMP echo to the VIP is answered", "[process]") {
    Fixture fx;
    Pkt ping;
    ping.proto = 1;
    ping.icmp_type = 8;
    ping.sport = 4242;
    ping.ttl = 17;
    ping.payload = Bytes(24, 0x61);
    fx.send({ping.build()}, 0);
    const auto out = fx.take(0);
    REQUIRE(out.size() == 1);
    Pkt pong = ping;
    pong.icmp_type = 0;
    pong.src = ping.dst;
    pong.dst = ping.src;
    pong.ttl = 64;
    pong.src_mac = kPortMac0;
    pong.dst_mac = kClientMac;
    CHECK(out[0] == pong.build());
}

TEST_CASE("process: an unresolved next hop is counted and resolution requested", "[process]") {
    Fixture fx;
    Pkt syn;
    syn.src = ip("203.0.113.7");  // behind the outside router
    fx.send({syn.build()}, 0);
    REQUIRE(fx.take(1).size() == 1);
    // A second worker over the same snapshot, with no neighbour known: the next pick of the
    // shared rr cursor (10.10.0.3) cannot be reached yet.
    NeighbourTable empty;
    Worker w2(0, 1, 16, empty);
    rte_mbuf* m = rte_pktmbuf_alloc(pool());
    const Bytes f = syn.build();
    std::memcpy(rte_pktmbuf_append(m, uint16_t(f.size())), f.data(), f.size());
    m->port = 0;
    w2.process_burst(*fx.snap, &m, 1, 1000);
    // Held while ARP resolves it.
    CHECK(w2.held() == 1);
    CHECK(w2.tx[1].n == 0);
    REQUIRE(w2.n_slow == 1);
    CHECK(w2.slow[0].type == SlowMsg::Resolve);
    CHECK(w2.slow[0].ip == ip("10.10.0.3"));
    CHECK(w2.slow[0].port == 1);
    w2.release_held(1500);
    CHECK(w2.held() == 1);  // still unknown, not yet past its time
    // The answer arrives: the frame leaves with the real's MAC.
    empty.set(ip("10.10.0.3"), rte_ether_addr{{0x02, 0, 0, 0, 1, 0x13}}, 1,
              NeighState::Static);
    w2.release_held(1600);
    CHECK(w2.held() == 0);
    REQUIRE(w2.tx[1].n == 1);
    CHECK(rte_pktmbuf_mtod(w2.tx[1].pkts[0], const uint8_t*)[5] == 0x13);
    rte_pktmbuf_free(w2.tx[1].pkts[0]);
    w2.tx[1].n = 0;

    // Never answered: dropped after kHoldMs, counted.
    NeighbourTable none;
    Worker w3(0, 1, 16, none);
    m = rte_pktmbuf_alloc(pool());
    std::memcpy(rte_pktmbuf_append(m, uint16_t(f.size())), f.data(), f.size());
    m->port = 0;
    w3.process_burst(*fx.snap, &m, 1, 1000);
    CHECK(w3.held() == 1);
    w3.release_held(1000 + Worker::kHoldMs);
    CHECK(w3.held() == 0);
    CHECK(w3.counters.drops[size_t(Drop::NoNeighbour)].get() == 1);
}

TEST_CASE("process: a new NAT connection takes over the reply tuple of an old one",
          "[process]") {
    // Two services on one real port; the client reuses its source port for the second.
    const char* cfg = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 93; protocol = "tcp"; reals = ( { address = "10.10.0.3"; port = 80; } ); },
  { vip = "198.51.100.10"; port = 94; protocol = "tcp"; reals = ( { address = "10.10.0.3"; port = 80; } ); }
);
)";
    Fixture fx(1, 0, 64, cfg);
    Pkt a, b;
    a.dport = 93;
    a.sport = 20302;
    b.dport = 94;
    b.sport = 20302;
    fx.send({a.build()}, 0);
    a.tcp_flags = 0x11;  // FIN: the first connection is closing
    fx.send({a.build()}, 0);
    fx.send({b.build()}, 0);
    CHECK(fx.take(1).size() == 3);
    Pkt reply;
    reply.src = ip("10.10.0.3");
    reply.sport = 80;
    reply.dst = ip("198.51.100.2");
    reply.dport = 20302;
    reply.tcp_flags = 0x12;
    reply.dst_mac = kPortMac1;
    fx.send({reply.build()}, 1);
    const auto out = fx.take(0);
    REQUIRE(out.size() == 1);
    CHECK((out[0][34] << 8 | out[0][35]) == 94);  // from VIP:94, the new connection
    CHECK(fx.w->conns.size() == 1);
}

TEST_CASE("process: with two workers both directions hash to the same owner", "[process]") {
    Pkt syn;
    const uint16_t owner = Worker::owner_of(syn.src, 2);
    Fixture mine(2, owner);
    Fixture other(2, uint16_t(1 - owner));
    other.send({syn.build()}, 0);
    CHECK(other.take(1).empty());
    CHECK(other.w->redirect[owner].n == 1);
    mine.send({syn.build()}, 0);
    REQUIRE(mine.take(1).size() == 1);
    Pkt reply;
    reply.src = ip("10.10.0.2");
    reply.sport = 8080;
    reply.dst = syn.src;
    reply.dport = syn.sport;
    reply.tcp_flags = 0x12;
    reply.dst_mac = kPortMac1;
    other.send({reply.build()}, 1);
    CHECK(other.w->redirect[owner].n == 2);  // the reply goes to the owner too
    mine.send({reply.build()}, 1);
    CHECK(mine.take(0).size() == 1);
}

namespace {

// One service mixing the three methods; the inside port has a 1400-byte MTU.
const char* kMixedConfig = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; mtu = 1400; } );
routes = ( { prefix = "203.0.113.0/24"; via = "198.51.100.254"; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.12"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; forward = "tun"; },
              { address = "10.10.0.3"; forward = "dr"; },
              { address = "10.10.0.2"; port = 8080; forward = "nat"; } ); },
  { vip = "198.51.100.12"; port = 53; protocol = "udp"; tunnel_source = "198.51.100.1";
    reals = ( { address = "203.0.113.9"; forward = "tun"; } ); }
);
)";


// The IP packet inside a frame, without Ethernet padding.
Bytes ip_packet(const Bytes& frame) {
    const size_t len = be16_at(frame, 14 + 2);
    return Bytes(frame.begin() + 14, frame.begin() + 14 + long(len));
}

Pkt to_vip12() {
    Pkt p;
    p.dst = ip("198.51.100.12");
    p.frag = 0x4000;  // DF, as a TCP stack sends
    return p;
}

}  // namespace

TEST_CASE("process: tun, dr and nat reals in one service, each with its method", "[process][tun]") {
    Fixture fx(1, 0, 64, kMixedConfig);
    Pkt a = to_vip12(), b = to_vip12(), c = to_vip12();
    b.sport = 40001;
    c.sport = 40002;
    a.payload = Bytes(10, 0xab);  // a SYN with data: the inner packet must be carried whole
    fx.send({a.build(), b.build(), c.build()}, 0);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 3);

    // tun: outer header + the packet as received, TTL untouched.
    const Bytes inner = ip_packet(a.build());
    const Bytes& t = out[0];
    REQUIRE(t.size() == 14 + 20 + inner.size());
    CHECK(Bytes(t.begin(), t.begin() + 6) == Bytes{0x02, 0, 0, 0, 1, 0x12});
    CHECK(Bytes(t.begin() + 6, t.begin() + 12) == Bytes{0x02, 0, 0, 0, 1, 0x01});
    CHECK(be16_at(t, 12) == 0x0800);
    CHECK(t[14] == 0x45);
    CHECK(t[15] == inner[1]);                        // TOS
    CHECK(be16_at(t, 16) == 20 + inner.size());      // total length
    CHECK(be16_at(t, 18) == be16_at(inner, 4));      // ID of the inner packet
    CHECK(be16_at(t, 20) == 0x4000);                 // DF copied
    CHECK(t[22] == 64);
    CHECK(t[23] == 4);                               // IP-in-IP
    CHECK(lb::dp::csum_full(t.data() + 14, 20) == 0);
    uint32_t src, dst;
    std::memcpy(&src, &t[26], 4);
    std::memcpy(&dst, &t[30], 4);
    CHECK(src == ip("10.10.0.1"));
    CHECK(dst == ip("10.10.0.2"));
    CHECK(Bytes(t.begin() + 34, t.end()) == inner);
    CHECK(fx.w->counters.tunnel_encapsulated.get() == 1);

    // dr: only the MACs change.
    Bytes d = b.build();
    const Bytes real3{0x02, 0, 0, 0, 1, 0x13}, port1{0x02, 0, 0, 0, 1, 0x01};
    std::copy(real3.begin(), real3.end(), d.begin());
    std::copy(port1.begin(), port1.end(), d.begin() + 6);
    CHECK(out[1] == d);

    // nat: the third real.
    CHECK(out[2] == to_real(c, "10.10.0.2", 8080));
    CHECK(fx.w->svc_stats[0].conns.get() == 3);
    CHECK(fx.w->svc_stats[0].in_pkts.get() == 3);
    CHECK(fx.w->svc_stats[0].in_bytes.get() == inner.size() + 2 * 40);
}

TEST_CASE("process: tun and dr connections track TCP from the client's packets alone",
          "[process][tun]") {
    Fixture fx(1, 0, 64, kMixedConfig);
    Pkt p = to_vip12();
    fx.send({p.build()}, 0);  // SYN -> tun real
    REQUIRE(fx.take(1).size() == 1);
    CHECK(fx.w->real_stats[0].inactive.get() == 1);
    p.tcp_flags = 0x10;
    fx.send({p.build()}, 0);  // the client's ACK of the SYN-ACK it got from the real directly
    REQUIRE(fx.take(1).size() == 1);
    CHECK(fx.w->real_stats[0].active.get() == 1);
    CHECK(fx.w->real_stats[0].inactive.get() == 0);
    p.tcp_flags = 0x11;
    fx.send({p.build()}, 0);  // FIN
    REQUIRE(fx.take(1).size() == 1);
    CHECK(fx.w->real_stats[0].active.get() == 0);
    CHECK(fx.w->real_stats[0].inactive.get() == 1);

    // The real answering through the director with its own address is not translated.
    Pkt reply;
    reply.src = ip("10.10.0.2");
    reply.sport = 80;
    reply.dst = p.src;
    reply.dport = p.sport;
    reply.tcp_flags = 0x10;
    reply.dst_mac = kPortMac1;
    fx.send({reply.build()}, 1);
    CHECK(fx.take(0).empty());
    CHECK(fx.drops(Drop::NoConnection) == 1);
    CHECK(fx.w->svc_stats[0].out_pkts.get() == 0);
}

TEST_CASE("process: tun over the MTU with DF answers fragmentation-needed", "[process][tun]") {
    Fixture fx(1, 0, 64, kMixedConfig);
    Pkt syn = to_vip12();
    fx.send({syn.build()}, 0);
    REQUIRE(fx.take(1).size() == 1);
    Pkt big = to_vip12();
    big.tcp_flags = 0x10;
    big.payload = Bytes(1400 - 40, 0x33);  // 1400-byte packet: 1420 with the tunnel header
    const Bytes in = big.build();
    fx.send({in}, 0);
    CHECK(fx.take(1).empty());
    const auto out = fx.take(0);
    REQUIRE(out.size() == 1);
    const Bytes& e = out[0];
    REQUIRE(e.size() == 14 + 576);
    CHECK(Bytes(e.begin(), e.begin() + 6) == Bytes{0x02, 0, 0, 0, 0, 0x02});  // the client
    CHECK(e[14] == 0x45);
    CHECK(e[15] == 0xc0);
    CHECK(be16_at(e, 16) == 576);
    CHECK(be16_at(e, 20) == 0);  // no DF
    CHECK(e[22] == 64);
    CHECK(e[23] == 1);
    CHECK(lb::dp::csum_full(e.data() + 14, 20) == 0);
    uint32_t src, dst;
    std::memcpy(&src, &e[26], 4);
    std::memcpy(&dst, &e[30], 4);
    CHECK(src == ip("198.51.100.12"));
    CHECK(dst == ip("198.51.100.2"));
    CHECK(e[34] == 3);
    CHECK(e[35] == 4);
    CHECK(be16_at(e, 40) == 1380);  // the inside MTU minus the tunnel header
    CHECK(lb::dp::csum_full(e.data() + 34, 576 - 20) == 0);
    CHECK(Bytes(e.begin() + 42, e.end()) == Bytes(in.begin() + 14, in.begin() + 14 + 548));
    CHECK(fx.w->counters.frag_needed_sent.get() == 1);
    CHECK(fx.w->counters.tunnel_encapsulated.get() == 1);  // the SYN only
}

TEST_CASE("process: tun over the MTU without DF sends outer fragments", "[process][tun]") {
    Fixture fx(1, 0, 64, kMixedConfig);
    fx.set_neigh("198.51.100.254", 0xfe, 0);
    Pkt u;
    u.proto = 17;
    u.dst = ip("198.51.100.12");
    u.dport = 53;
    u.ip_id = 0x1234;
    u.payload = Bytes(1472, 0);  // a 1500-byte datagram, no DF
    for (size_t i = 0; i < u.payload.size(); ++i) {
        u.payload[i] = uint8_t(i * 7);
    }
    const Bytes in = u.build();
    fx.send({in}, 0);
    // The real 203.0.113.9 is behind 198.51.100.254 on port 0 (MTU 1500), source forced to
    // 198.51.100.1: 1520 bytes -> 1480 + 20 in two fragments.
    const auto out = fx.take(0);
    REQUIRE(out.size() == 2);
    Bytes payload;
    for (size_t k = 0; k < 2; ++k) {
        const Bytes& f = out[k];
        CHECK(Bytes(f.begin(), f.begin() + 6) == Bytes{0x02, 0, 0, 0, 0, 0xfe});
        CHECK(lb::dp::csum_full(f.data() + 14, 20) == 0);
        CHECK(f[23] == 4);
        CHECK(be16_at(f, 18) == 0x1234);
        const uint16_t frag = be16_at(f, 20);
        CHECK(frag == (k == 0 ? 0x2000 : 1480 / 8));
        CHECK(be16_at(f, 16) == f.size() - 14);
        uint32_t src;
        std::memcpy(&src, &f[26], 4);
        CHECK(src == ip("198.51.100.1"));
        payload.insert(payload.end(), f.begin() + 34, f.end());
    }
    CHECK(out[0].size() == 14 + 1500);
    CHECK(payload == Bytes(in.begin() + 14, in.end()));
    CHECK(fx.w->counters.tunnel_fragments.get() == 2);
    CHECK(fx.w->counters.tunnel_encapsulated.get() == 1);
}

namespace {

const char* kPersistConfig = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
routes = ( { prefix = "192.0.2.0/24"; via = "198.51.100.254"; } );  // clients from afar
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr"; persistence = 10;
    persistence_mask = "255.255.255.0";
    reals = ( { address = "10.10.0.2"; }, { address = "10.10.0.3"; } ); },
  { vip = "198.51.100.10"; port = 53; protocol = "udp"; scheduler = "rr"; persistence = 10;
    reals = ( { address = "10.10.0.2"; }, { address = "10.10.0.3"; } ); }
);
)";

// Which real (last byte of the destination MAC: 0x12 or 0x13) a frame went to.
int real_of(const Bytes& f) { return f[5]; }

Pkt syn_from(const char* client, uint16_t sport) {
    Pkt p;
    p.src = ip(client);
    p.sport = sport;
    return p;
}

}  // namespace

TEST_CASE("process: persistence keeps a client (and its /24) on one real", "[process][persist]") {
    Fixture fx(1, 0, 64, kPersistConfig);
    fx.set_neigh("198.51.100.3", 0x03, 0);
    std::vector<Bytes> in;
    for (uint16_t port = 1000; port < 1006; ++port) {
        in.push_back(syn_from("198.51.100.2", port).build());
    }
    in.push_back(syn_from("198.51.100.3", 2000).build());  // same /24: same template
    fx.send(in, 0);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 7);
    for (const Bytes& f : out) {
        CHECK(real_of(f) == 0x12);
    }
    CHECK(fx.w->real_stats[0].persist.get() == 1);  // one template
    CHECK(fx.w->real_stats[0].inactive.get() == 7);
    CHECK(fx.w->conns.size() == 8);  // templates count toward the table

    // UDP, mask /32: two clients alternate, each then sticks.
    std::vector<Bytes> u;
    for (int i = 0; i < 4; ++i) {
        Pkt d = syn_from(i % 2 == 0 ? "198.51.100.2" : "198.51.100.3", uint16_t(3000 + i));
        d.proto = 17;
        d.dport = 53;
        u.push_back(d.build());
    }
    fx.send(u, 0);
    const auto uo = fx.take(1);
    REQUIRE(uo.size() == 4);
    CHECK(real_of(uo[0]) == 0x12);
    CHECK(real_of(uo[1]) == 0x13);
    CHECK(real_of(uo[2]) == 0x12);
    CHECK(real_of(uo[3]) == 0x13);
}

TEST_CASE("process: a template outlives its connections, then expires", "[process][persist]") {
    Fixture fx(1, 0, 64, kPersistConfig);
    fx.send({syn_from("198.51.100.2", 1000).build()}, 0, 1000);
    REQUIRE(real_of(fx.take(1).at(0)) == 0x12);
    // Another client takes the next real; the first keeps its own 5 s later.
    fx.send({syn_from("192.0.2.7", 1000).build()}, 0, 1500);
    CHECK(real_of(fx.take(1).at(0)) == 0x13);
    fx.send({syn_from("198.51.100.2", 1001).build()}, 0, 6000);
    CHECK(real_of(fx.take(1).at(0)) == 0x12);
    // 30 s later the connections (SYN_RECV, 60 s) still hold the template although its own
    // 10 s are over.
    fx.w->expire(36000, 64);
    fx.send({syn_from("198.51.100.2", 1002).build()}, 0, 36000);
    CHECK(real_of(fx.take(1).at(0)) == 0x12);
    // When all are gone, so is the template: the next connection is scheduled afresh.
    fx.w->expire(200000, 64);  // the connections go; a template visited before them lives on
    fx.w->expire(202000, 64);  // for a moment, and goes on the next pass
    CHECK(fx.w->conns.size() == 0);
    CHECK(fx.w->real_stats[0].persist.get() == 0);
    fx.send({syn_from("192.0.2.8", 1003).build(), syn_from("198.51.100.2", 1003).build()}, 0,
            202000);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 2);
    CHECK(real_of(out[0]) == 0x12);  // rr's next pick
    CHECK(real_of(out[1]) == 0x13);  // and the one after: no template held the client

}

TEST_CASE("process: a template whose real left the service is re-pointed", "[process][persist]") {
    Fixture fx(1, 0, 64, kPersistConfig);
    fx.send({syn_from("198.51.100.2", 1000).build()}, 0);
    REQUIRE(real_of(fx.take(1).at(0)) == 0x12);
    // The new config drops 10.10.0.2 (the snapshot swaps, the table stays).
    std::string cfg = kPersistConfig;
    const std::string gone = R"({ address = "10.10.0.2"; }, )";
    cfg.erase(cfg.find(gone), gone.size());
    std::array<rte_ether_addr, kMaxPorts> macs{};
    macs[0] = {{0x02, 0, 0, 0, 0, 0x01}};
    macs[1] = {{0x02, 0, 0, 0, 1, 0x01}};
    fx.snap = lb::ctl::build_snapshot(lb::ctl::parse_config(cfg, "unit.conf"), macs, 1, 2);
    // The old connection still goes to its real; a new one goes to the remaining real and
    // the template follows.
    Pkt ack = syn_from("198.51.100.2", 1000);
    ack.tcp_flags = 0x10;
    fx.send({ack.build(), syn_from("198.51.100.2", 1001).build(),
             syn_from("198.51.100.2", 1002).build()}, 0);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 3);
    CHECK(real_of(out[0]) == 0x12);
    CHECK(real_of(out[1]) == 0x13);
    CHECK(real_of(out[2]) == 0x13);
}

TEST_CASE("process: with persistence, workers own clients by their masked address",
          "[process][persist]") {
    const uint16_t owner = Worker::owner_of(ip("198.51.100.0"), 2);
    Fixture other(2, uint16_t(1 - owner), 64, kPersistConfig);
    CHECK(other.snap->owner_mask == ip("255.255.255.0"));
    other.send({syn_from("198.51.100.2", 1000).build(), syn_from("198.51.100.3", 1001).build()},
               0);
    CHECK(other.w->redirect[owner].n == 2);  // the whole /24 goes to one worker
}

TEST_CASE("process: a tun/dr client reusing its port after FIN: a new connection, on the same "
          "real right after the FIN",
          "[process][tun]") {
    // The FIN may be forged (teardown.cpp): a SYN right behind it must not move a live
    // connection to another real. A second later, or with sloppy_tcp, IPVS's conn_reuse_mode:
    // scheduled afresh, the next real.
    const bool sloppy = GENERATE(false, true);
    const uint32_t later = GENERATE(0u, 2000u);
    std::string cfg = kMixedConfig;
    if (sloppy) {
        cfg.replace(cfg.find("capacity = 64;"), 14, "capacity = 64; sloppy_tcp = true;");
    }
    Fixture fx(1, 0, 64, cfg.c_str());
    Pkt p = to_vip12();
    fx.send({p.build()}, 0);  // SYN -> tun real 10.10.0.2
    p.tcp_flags = 0x10;
    p.seq += 1;
    fx.send({p.build()}, 0);
    p.tcp_flags = 0x11;
    fx.send({p.build()}, 0);  // the client's FIN: FIN_WAIT
    fx.take(1);
    p.tcp_flags = 0x02;
    p.seq += 100000;
    fx.send({p.build()}, 0, 1000 + later);  // the same tuple again
    const auto out = fx.take(1);
    REQUIRE(out.size() == 1);
    CHECK(out[0][5] == (sloppy || later != 0 ? 0x13 : 0x12));
    CHECK(fx.w->svc_stats[0].conns.get() == 2);
}

TEST_CASE("process: fragments follow their first fragment", "[process][frag]") {
    Fixture fx;
    Pkt first;
    first.proto = 17;
    first.dport = 53;
    first.ip_id = 0x4242;
    first.frag = 0x2000;  // MF, offset 0
    first.payload = Bytes(1472, 0x11);
    Bytes f1 = first.build();
    f1[14 + 20 + 4] = 0x0b;  // UDP length 2960: the whole datagram's
    f1[14 + 20 + 5] = 0x90;
    Pkt later = first;
    later.frag = 185;  // offset 1480, last
    later.payload = Bytes(1480 - 8, 0x22);  // (the builder writes a UDP header in it too)
    Pkt stray = later;
    stray.ip_id = 0x4343;  // its first never came
    fx.send({f1, later.build(), stray.build()}, 0);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 2);
    // Both to the same real (wrr's first pick), the later one with only its address and TTL
    // changed, its header checksum still right.
    CHECK(out[0][5] == out[1][5]);
    uint32_t dst0, dst1;
    std::memcpy(&dst0, &out[0][30], 4);
    std::memcpy(&dst1, &out[1][30], 4);
    CHECK(dst0 == dst1);
    CHECK(out[1][22] == 63);
    CHECK(lb::dp::csum_full(out[1].data() + 14, 20) == 0);
    const Bytes sent = later.build();
    CHECK(Bytes(out[1].begin() + 34, out[1].end()) == Bytes(sent.begin() + 34, sent.end()));
    CHECK(fx.drops(Drop::Fragment) == 1);
    CHECK(fx.w->counters.fragments_forwarded.get() == 1);
    CHECK(fx.w->svc_stats[1].in_pkts.get() == 2);
}

TEST_CASE("process: connections of a deleted service go on; new ones are refused",
          "[process]") {
    Fixture fx;
    Pkt syn;
    fx.send({syn.build()}, 0);
    REQUIRE(fx.take(1).size() == 1);
    // The new config has no TCP service on the VIP any more.
    std::string cfg = kConfig;
    const size_t a = cfg.find("  { vip = \"198.51.100.10\"; port = 80;");
    const size_t b = cfg.find("  { vip = \"198.51.100.10\"; port = 53;");
    cfg.erase(a, b - a);
    std::array<rte_ether_addr, kMaxPorts> macs{};
    macs[0] = {{0x02, 0, 0, 0, 0, 0x01}};
    macs[1] = {{0x02, 0, 0, 0, 1, 0x01}};
    fx.snap = lb::ctl::build_snapshot(lb::ctl::parse_config(cfg, "unit.conf"), macs, 1, 2);
    Pkt ack = syn;
    ack.tcp_flags = 0x10;
    Pkt other = syn;
    other.sport = 40009;
    fx.send({ack.build(), other.build()}, 0);
    CHECK(fx.take(1).size() == 1);
    CHECK(fx.drops(Drop::NoService) == 1);
}

TEST_CASE("process: sloppy_tcp makes connections from mid-flow packets, not from RSTs",
          "[process]") {
    std::string cfg = kConfig;
    const std::string from = "connections = { capacity = 64; };";
    cfg.replace(cfg.find(from), from.size(), "connections = { capacity = 64; sloppy_tcp = true; };");
    Fixture fx(1, 0, 64, cfg.c_str());
    REQUIRE(fx.snap->sloppy_tcp);
    Pkt ack;
    ack.tcp_flags = 0x10;
    Pkt rst = ack;
    rst.sport = 40007;
    rst.tcp_flags = 0x04;
    Pkt fin = ack;
    fin.sport = 40008;
    fin.tcp_flags = 0x11;
    fx.send({ack.build(), rst.build(), fin.build()}, 0);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 2);
    CHECK(out[0] == to_real(ack, "10.10.0.2", 8080));
    CHECK(out[1] == to_real(fin, "10.10.0.3", 8080));
    CHECK(fx.drops(Drop::NoConnection) == 1);  // the RST
    CHECK(fx.w->counters.conns_created.get() == 2);
    CHECK(fx.w->real_stats[0].active.get() == 1);    // an ACK: ESTABLISHED at once
    CHECK(fx.w->real_stats[1].inactive.get() == 1);  // a FIN: closing
    // The reply direction of the mid-flow connection is translated back.
    Pkt back;
    back.src = ip("10.10.0.2");
    back.sport = 8080;
    back.dst = ack.src;
    back.dport = ack.sport;
    back.tcp_flags = 0x10;
    back.src_mac = Mac{{0x02, 0, 0, 0, 1, 0x12}};
    back.dst_mac = kPortMac1;
    fx.send({back.build()}, 1);
    CHECK(fx.take(0).size() == 1);

    CHECK(fx.w->counters.resets_sent.get() == 0);  // sloppy_tcp: never a RST for the unknown
    // Without sloppy_tcp the same ACK is refused, with a RST.
    Fixture strict;
    REQUIRE_FALSE(strict.snap->sloppy_tcp);
    strict.send({ack.build()}, 0);
    CHECK(strict.take(1).empty());
    CHECK(strict.take(0).size() == 1);
    CHECK(strict.w->counters.resets_sent.get() == 1);
}

TEST_CASE("process: a neighbour's new MAC is used at once (the worker's cache follows)",
          "[process]") {
    Fixture fx;
    Pkt a;
    fx.send({a.build()}, 0);
    auto out = fx.take(1);
    REQUIRE(out.size() == 1);
    CHECK(out[0][5] == 0x12);  // 10.10.0.2's MAC ends in 0x12
    fx.set_neigh("10.10.0.2", 0x99, 1);
    Pkt a2 = a;
    a2.tcp_flags = 0x10;
    fx.send({a2.build()}, 0);
    out = fx.take(1);
    REQUIRE(out.size() == 1);
    CHECK(out[0][5] == 0x99);
    // Unresolved now: the frame waits for ARP instead of going to the old MAC.
    fx.neigh.set_state(ip("10.10.0.2"), NeighState::Incomplete);
    fx.send({a2.build()}, 0);
    CHECK(fx.take(1).empty());
    CHECK(fx.w->held() == 1);
}

namespace {

// NAT with a smaller inside MTU (1400) and a route beyond the inside router.
const char* kNatMtuConfig = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; mtu = 1400; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; } ); },
  { vip = "198.51.100.10"; port = 53; protocol = "udp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 5353; forward = "nat"; } ); },
  { vip = "198.51.100.10"; port = 54; protocol = "udp"; scheduler = "rr";
    reals = ( { address = "10.10.0.9"; port = 5353; forward = "nat"; } ); }
);
)";

Pkt nat_udp(size_t ip_len, uint16_t frag, uint16_t id) {
    Pkt u;
    u.proto = 17;
    u.dport = 53;
    u.sport = 33333;
    u.ip_id = id;
    u.frag = frag;
    u.payload = Bytes(ip_len - 28, 0);
    for (size_t i = 0; i < u.payload.size(); ++i) {
        u.payload[i] = uint8_t(i * 13 + id);
    }
    return u;
}

}  // namespace

TEST_CASE("process: NAT over the egress MTU with DF answers fragmentation-needed",
          "[process][nat][mtu]") {
    Fixture fx(1, 0, 64, kNatMtuConfig);
    // 1400 bytes fit exactly; 1401 with DF do not: ICMP 3/4 from the VIP with MTU 1400, the
    // packet quoted as it arrived (548 bytes of it), nothing to the real.
    const Bytes fits = nat_udp(1400, 0x4000, 1).build();
    const Bytes big = nat_udp(1401, 0x4000, 2).build();
    fx.send({fits, big}, 0);
    const auto in = fx.take(1);
    REQUIRE(in.size() == 1);
    CHECK(in[0].size() == 14 + 1400);
    const auto back = fx.take(0);
    REQUIRE(back.size() == 1);
    const Bytes& e = back[0];
    REQUIRE(e.size() == 14 + 576);
    CHECK(Bytes(e.begin(), e.begin() + 6) == Bytes{0x02, 0, 0, 0, 0, 0x02});  // the client
    CHECK(e[23] == 1);
    CHECK(lb::dp::csum_full(e.data() + 14, 20) == 0);
    uint32_t src, dst;
    std::memcpy(&src, &e[26], 4);
    std::memcpy(&dst, &e[30], 4);
    CHECK(src == ip("198.51.100.10"));
    CHECK(dst == ip("198.51.100.2"));
    CHECK(e[34] == 3);
    CHECK(e[35] == 4);
    CHECK(be16_at(e, 40) == 1400);
    CHECK(lb::dp::csum_full(e.data() + 34, 576 - 20) == 0);
    CHECK(Bytes(e.begin() + 42, e.end()) == Bytes(big.begin() + 14, big.begin() + 14 + 548));
    CHECK(fx.w->counters.frag_needed_sent.get() == 1);
    CHECK(fx.w->counters.nat_fragments.get() == 0);
    CHECK(fx.w->counters.tx.get() == 0);  // counted when the staged frames are taken

    // A reply from the real over the outside MTU (1500) with DF: fragmentation-needed to the
    // real, from the director's inside address, quoting the reply as the real sent it.
    Pkt r = nat_udp(1501, 0x4000, 3);
    r.src = ip("10.10.0.2");
    r.sport = 5353;
    r.dst = ip("198.51.100.2");
    r.dport = 33333;
    r.src_mac = {{0x02, 0, 0, 0, 1, 0x12}};
    r.dst_mac = kPortMac1;
    const Bytes reply = r.build();
    fx.send({reply}, 1);
    CHECK(fx.take(0).empty());
    const auto to_real = fx.take(1);
    REQUIRE(to_real.size() == 1);
    const Bytes& q = to_real[0];
    CHECK(Bytes(q.begin(), q.begin() + 6) == Bytes{0x02, 0, 0, 0, 1, 0x12});
    std::memcpy(&src, &q[26], 4);
    std::memcpy(&dst, &q[30], 4);
    CHECK(src == ip("10.10.0.1"));
    CHECK(dst == ip("10.10.0.2"));
    CHECK(be16_at(q, 40) == 1500);
    CHECK(Bytes(q.begin() + 42, q.end()) == Bytes(reply.begin() + 14, reply.begin() + 14 + 548));
    CHECK(fx.w->counters.frag_needed_sent.get() == 2);
}

TEST_CASE("process: NAT over the egress MTU without DF is fragmented", "[process][nat][mtu]") {
    Fixture fx(1, 0, 64, kNatMtuConfig);
    // 2000 bytes (an mbuf holds no more), no DF, to the real behind MTU 1400: 1376 + 604
    // bytes of payload.
    const Bytes in = nat_udp(2000, 0, 0x77).build();
    // A first fragment (MF) of a bigger datagram: the last piece keeps MF.
    const Bytes first = nat_udp(1500, 0x2000, 0x78).build();
    // Its later fragment (offset 1480, the last), also over the MTU: the offsets continue.
    const Bytes later = nat_udp(1500, 185, 0x78).build();
    // Options: record route (not copied) and a copied one (type 0x94, router alert): the
    // later pieces carry NOPs where record route was.
    Pkt opt = nat_udp(1500, 0x2000, 0x79);
    opt.ip_options = {7, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0, 0};
    opt.payload.resize(1500 - 32 - 8);
    fx.send({in, first, later, opt.build()}, 0);
    const auto out = fx.take(1);
    REQUIRE(out.size() == 4 * 2);
    Bytes whole;
    for (size_t k = 0; k < 2; ++k) {
        const Bytes& f = out[k];
        CHECK(Bytes(f.begin(), f.begin() + 6) == Bytes{0x02, 0, 0, 0, 1, 0x12});
        CHECK(Bytes(f.begin() + 6, f.begin() + 12) == Bytes{0x02, 0, 0, 0, 1, 0x01});
        CHECK(lb::dp::csum_full(f.data() + 14, 20) == 0);
        CHECK(be16_at(f, 16) == f.size() - 14);
        CHECK(be16_at(f, 18) == 0x77);
        CHECK(be16_at(f, 20) == (k == 0 ? 0x2000 : 1376 / 8));
        CHECK(f[22] == 63);
        uint32_t dst;
        std::memcpy(&dst, &f[30], 4);
        CHECK(dst == ip("10.10.0.2"));
        whole.insert(whole.end(), f.begin() + 34, f.end());
    }
    CHECK(out[0].size() == 14 + 20 + 1376);  // a multiple of 8 bytes of payload
    CHECK(out[1].size() == 14 + 20 + 604);
    // The transport header was rewritten before the split: port 5353 and a checksum that
    // is right for the whole datagram as the real sees it.
    REQUIRE(whole.size() == 1980);
    CHECK(Bytes(whole.begin() + 8, whole.end()) == Bytes(in.begin() + 42, in.end()));
    {
        Pkt expect = nat_udp(2000, 0, 0x77);
        expect.dst = ip("10.10.0.2");
        expect.dport = 5353;
        expect.ttl = 63;
        const Bytes eb = expect.build();
        CHECK(Bytes(whole.begin(), whole.begin() + 8) == Bytes(eb.begin() + 34, eb.begin() + 42));
    }
    CHECK(be16_at(out[2], 20) == 0x2000);
    CHECK(be16_at(out[3], 20) == (0x2000 | 1376 / 8));  // MF kept on the last piece
    CHECK(be16_at(out[3], 16) == 20 + 1480 - 1376);
    CHECK(be16_at(out[4], 20) == (0x2000 | 185));
    CHECK(be16_at(out[5], 20) == 185 + 1376 / 8);  // the datagram's end: no MF
    CHECK(be16_at(out[5], 16) == 20 + 1480 - 1376);
    for (size_t k = 2; k < 6; ++k) {
        CHECK(lb::dp::csum_full(out[k].data() + 14, 20) == 0);
    }
    // The first fragment with options: 32-byte headers, 1368 bytes a piece.
    const Bytes& a = out[6];
    const Bytes& b = out[7];
    CHECK((a[14] & 0x0f) == 8);
    CHECK((b[14] & 0x0f) == 8);
    CHECK(be16_at(a, 20) == 0x2000);
    CHECK(be16_at(b, 20) == (0x2000 | 1368 / 8));
    CHECK(Bytes(a.begin() + 34, a.begin() + 46) == opt.ip_options);
    CHECK(Bytes(b.begin() + 34, b.begin() + 46) ==
          (Bytes{1, 1, 1, 1, 1, 1, 1, 0x94, 4, 0, 0, 0}));
    CHECK(lb::dp::csum_full(a.data() + 14, 32) == 0);
    CHECK(lb::dp::csum_full(b.data() + 14, 32) == 0);
    CHECK(be16_at(a, 16) == 1400);
    CHECK(be16_at(b, 16) == 32 + (1500 - 32 - 1368));
    CHECK(fx.drops(Drop::Fragment) == 0);
    CHECK(fx.w->counters.fragments_forwarded.get() == 1);
    CHECK(fx.w->counters.nat_fragments.get() == 8);
    CHECK(fx.w->counters.frag_needed_sent.get() == 0);
    CHECK(fx.w->counters.consumed.get() == 4);
}

TEST_CASE("process: NAT fragments are not held for ARP; a fragment too far is malformed",
          "[process][nat][mtu]") {
    Fixture fx(1, 0, 64, kNatMtuConfig);
    Pkt unresolved = nat_udp(2000, 0, 5);  // to 10.10.0.9, whose MAC nobody knows yet
    unresolved.dport = 54;
    fx.send({unresolved.build()}, 0);
    CHECK(fx.take(1).empty());
    CHECK(fx.drops(Drop::NoNeighbour) == 1);
    CHECK(fx.w->held() == 0);
    // A first fragment is fine; offset 8184 * 8 + 1472 bytes ends past 65535.
    Pkt far = nat_udp(1500, 0x1ff8, 6);
    fx.send({nat_udp(1500, 0x2000, 6).build(), far.build()}, 0);
    CHECK(fx.take(1).size() == 2);  // the first fragment, in two pieces
    CHECK(fx.drops(Drop::Malformed) + fx.drops(Drop::Fragment) == 1);
}

TEST_CASE("process: new connections scheduled ahead of the handlers keep one-by-one semantics",
          "[process][sched]") {
    const char* config = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; mac = "02:00:00:00:00:01"; },
               { port = 1; address = "10.10.0.1/24"; mac = "02:00:00:00:01:01"; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8080; forward = "nat"; },
              { address = "10.10.0.3"; port = 8080; forward = "nat"; } ); },
  { vip = "198.51.100.10"; port = 81; protocol = "tcp"; scheduler = "wlc";
    reals = ( { address = "10.10.0.2"; port = 8081; forward = "nat"; },
              { address = "10.10.0.3"; port = 8081; forward = "nat"; } ); },
  { vip = "198.51.100.10"; port = 82; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; port = 8082; forward = "nat"; },
              { address = "10.10.0.3"; port = 8082; forward = "nat"; },
              { address = "10.10.0.4"; port = 8082; forward = "nat"; } ); }
);
)";
    Fixture fx(1, 0, 64, config);
    auto real_of = [](const Bytes& f) { return f[14 + 19] == 2 ? 'A' : 'B'; };

    SECTION("a tuple repeated in the burst takes one turn of rr, and one gauge") {
        Pkt a, b, c;
        b.sport = 40001;
        c.sport = 40002;
        fx.send({a.build(), a.build(), b.build(), a.build(), c.build()}, 0);
        const auto out = fx.take(1);
        REQUIRE(out.size() == 5);
        std::string reals;
        for (const Bytes& f : out) {
            reals += real_of(f);
        }
        CHECK(reals == "AABAA");
        CHECK(fx.w->counters.conns_created.get() == 3);
        CHECK(fx.w->real_stats[0].inactive.get() == 2);
        CHECK(fx.w->real_stats[1].inactive.get() == 1);
        CHECK(fx.w->svc_stats[0].inactive.get() == 3);
    }
    SECTION("two rr services in one burst each keep their own sequence, across bursts") {
        fx.set_neigh("10.10.0.4", 0x14, 1);
        auto syn = [](uint16_t dport, uint16_t sport) {
            Pkt s;
            s.dport = dport;
            s.sport = sport;
            return s.build();
        };
        fx.send({syn(80, 1), syn(82, 2), syn(80, 3), syn(82, 4), syn(82, 5), syn(80, 6)}, 0);
        auto out = fx.take(1);
        REQUIRE(out.size() == 6);
        std::string seq;
        for (const Bytes& f : out) {
            seq += char('0' + f[14 + 19] - 1);  // 10.10.0.2 -> '1', .3 -> '2', .4 -> '3'
        }
        CHECK(seq == "112231");  // 80: .2 .3 .2; 82: .2 .3 .4
        fx.send({syn(82, 7), syn(80, 8)}, 0);
        out = fx.take(1);
        REQUIRE(out.size() == 2);
        CHECK(out[0][14 + 19] == 2);  // port 82's fourth turn: 10.10.0.2 again
        CHECK(out[1][14 + 19] == 3);  // port 80's fourth turn: 10.10.0.3
    }
    SECTION("wlc sees the picks made earlier in the same burst") {
        std::vector<Bytes> in;
        for (int i = 0; i < 6; ++i) {
            Pkt s;
            s.dport = 81;
            s.sport = uint16_t(41000 + i);
            in.push_back(s.build());
        }
        fx.send(in, 0);
        const auto out = fx.take(1);
        REQUIRE(out.size() == 6);
        std::string reals;
        for (const Bytes& f : out) {
            reals += real_of(f);
        }
        CHECK(reals == "ABABAB");
        CHECK(fx.w->svc_stats[1].inactive.get() == 6);
    }
    SECTION("a SYN and its ACK in one burst: one connection, ESTABLISHED, counted once") {
        Pkt syn, ack;
        ack.tcp_flags = 0x10;
        fx.send({syn.build(), ack.build()}, 0);
        CHECK(fx.take(1).size() == 2);
        CHECK(fx.w->counters.conns_created.get() == 1);
        CHECK(fx.w->real_stats[0].active.get() == 1);
        CHECK(fx.w->real_stats[0].inactive.get() == 0);
        CHECK(fx.w->svc_stats[0].active.get() == 1);
    }
    SECTION("a SYN dropped for its TTL leaves no gauge behind") {
        Pkt s, t;
        s.ttl = 1;
        t.sport = 40001;
        fx.send({s.build(), t.build()}, 0);
        const auto out = fx.take(1);
        REQUIRE(out.size() == 1);
        CHECK(real_of(out[0]) == 'B');  // the dropped SYN took its turn, as one by one
        CHECK(fx.drops(Drop::TtlExceeded) == 1);
        CHECK(fx.w->counters.conns_created.get() == 1);
        CHECK(fx.w->real_stats[0].inactive.get() == 0);
        CHECK(fx.w->real_stats[1].inactive.get() == 1);
        CHECK(fx.w->svc_stats[0].inactive.get() == 1);
    }
}

TEST_CASE("process: a new snapshot's route and MTU apply at once to existing connections",
          "[process][nat][mtu]") {
    // The worker remembers how each real is reached (port, MTU, MACs); a new snapshot, even
    // with the same generation number, must not be served from that memory.
    std::string wide = kNatMtuConfig;
    wide.replace(wide.find("mtu = 1400"), 10, "mtu = 1500");
    Fixture fx(1, 0, 64, wide.c_str());
    fx.send({nat_udp(1450, 0x4000, 1).build()}, 0);
    const auto first = fx.take(1);
    REQUIRE(first.size() == 1);
    CHECK(first[0].size() == 14 + 1450);
    fx.send({nat_udp(1450, 0x4000, 2).build()}, 0);  // served from the worker's memory
    CHECK(fx.take(1).size() == 1);

    const lb::ctl::Config narrow = lb::ctl::parse_config(kNatMtuConfig, "unit.conf");
    std::array<rte_ether_addr, kMaxPorts> macs{};
    macs[0] = {{0x02, 0, 0, 0, 0, 0x01}};
    macs[1] = {{0x02, 0, 0, 0, 1, 0x01}};
    fx.snap = lb::ctl::build_snapshot(narrow, macs, 1, 1);
    fx.send({nat_udp(1450, 0x4000, 3).build()}, 0);
    CHECK(fx.take(1).empty());
    const auto back = fx.take(0);
    REQUIRE(back.size() == 1);
    CHECK(back[0][34] == 3);  // fragmentation needed, MTU 1400
    CHECK(back[0][35] == 4);
    CHECK(be16_at(back[0], 40) == 1400);
    CHECK(fx.w->counters.conns_created.get() == 1);
}
