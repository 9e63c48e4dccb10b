#pragma once
// Messages for the control protocol's tests (test_protocol.cpp, test_control_socket.cpp).
#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "control/protocol.hpp"

namespace proto_samples {

using namespace lb::ctl;

inline constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
inline constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

inline uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

inline RealStatus real(uint32_t addr, uint16_t port, uint8_t fwd, uint32_t weight,
                       uint64_t active, uint64_t inactive, std::array<uint64_t, 5> st) {
    RealStatus r;
    r.addr = addr;
    r.port = port;
    r.forward = fwd;
    r.weight = weight;
    r.active = active;
    r.inactive = inactive;
    r.conns = st[0];
    r.in_pkts = st[1];
    r.out_pkts = st[2];
    r.in_bytes = st[3];
    r.out_bytes = st[4];
    return r;
}

inline ServiceStatus service(uint8_t proto, uint32_t vip, uint16_t port, std::string sched,
                             uint32_t persistence, std::array<uint64_t, 5> st,
                             std::vector<RealStatus> reals) {
    ServiceStatus s;
    s.proto = proto;
    s.vip = vip;
    s.port = port;
    s.scheduler = std::move(sched);
    s.persistence = persistence;
    s.conns = st[0];
    s.in_pkts = st[1];
    s.out_pkts = st[2];
    s.in_bytes = st[3];
    s.out_bytes = st[4];
    s.reals = std::move(reals);
    return s;
}

// Services and reals deliberately out of ipvsadm's sort order.
inline Status sample_status() {
    Status s;
    s.conn_capacity = 1048576;
    s.services.push_back(service(17, ip(10, 0, 0, 2), 53, "rr", 0, {0, 0, 0, 0, 0},
                                 {real(ip(10, 1, 0, 1), 53, 1, 100, 0, 12345, {1, 1, 1, 1, 1})}));
    s.services.push_back(
        service(6, ip(10, 0, 0, 1), 443, "rr", 300, {5, 6, 7, 8, 9},
                {real(ip(172, 16, 0, 1), 443, 2, 65535, kU32Max, 1, {10, 20, 30, 40, 50})}));
    s.services.push_back(service(
        6, ip(10, 0, 0, 1), 80, "wrr", 0, {1000, 123456, 99999999, 100000000, 123456789012ULL},
        {real(ip(192, 168, 1, 10), 8081, 0, 0, 7, 0, {0, 0, 0, 0, 0}),
         real(ip(192, 168, 1, 10), 8080, 0, 1, 0, 0,
              {999, 1000000000ULL, 99999999999999ULL, 100000000000000ULL, kU64Max}),
         real(ip(192, 168, 1, 9), 8080, 0, 3, 12, 40, {1, 2, 3, 4, 5})}));
    s.services[1].sched_flags = "sh-fallback,sh-port";
    s.services[1].persist_mask = ip(255, 255, 255, 0);
    s.services[1].rates = Rates{1, 2, 3, 4, 5};
    s.services[1].reals[0].overloaded = true;
    s.services[1].reals[0].u_threshold = 100;
    s.services[1].reals[0].l_threshold = 50;
    s.services[1].reals[0].persist = 9;
    return s;
}

inline Status extreme_status() {
    Status s;
    s.conn_capacity = kU32Max;
    s.tcp_timeout = s.tcpfin_timeout = s.udp_timeout = kU32Max;
    s.services.push_back(service(6, kU32Max, 65535, std::string(kMaxString, 'x'), kU32Max,
                                 {kU64Max, kU64Max, kU64Max, kU64Max, kU64Max},
                                 {real(kU32Max, 65535, 2, kU32Max, kU64Max, kU64Max,
                                       {kU64Max, kU64Max, kU64Max, kU64Max, kU64Max}),
                                  real(0, 0, 0, 0, 0, 0, {0, 0, 0, 0, 0})}));
    s.services[0].rates = Rates{kU64Max, kU64Max, kU64Max, kU64Max, kU64Max};
    s.services.push_back(service(17, 0, 0, "", 0, {0, 0, 0, 0, 0}, {}));  // no reals
    return s;
}

inline bool same_rates(const Rates& a, const Rates& b) {
    return a.cps == b.cps && a.inpps == b.inpps && a.outpps == b.outpps && a.inbps == b.inbps &&
           a.outbps == b.outbps;
}

inline bool same_real(const RealStatus& a, const RealStatus& b) {
    return a.addr == b.addr && a.port == b.port && a.forward == b.forward &&
           a.weight == b.weight && a.u_threshold == b.u_threshold &&
           a.l_threshold == b.l_threshold && a.overloaded == b.overloaded &&
           same_rates(a.rates, b.rates) && a.active == b.active && a.inactive == b.inactive &&
           a.persist == b.persist && a.conns == b.conns && a.in_pkts == b.in_pkts &&
           a.out_pkts == b.out_pkts && a.in_bytes == b.in_bytes && a.out_bytes == b.out_bytes;
}

inline void check_same(const Status& a, const Status& b) {
    REQUIRE(a.conn_capacity == b.conn_capacity);
    CHECK(a.tcp_timeout == b.tcp_timeout);
    CHECK(a.tcpfin_timeout == b.tcpfin_timeout);
    CHECK(a.udp_timeout == b.udp_timeout);
    REQUIRE(a.services.size() == b.services.size());
    for (size_t i = 0; i < a.services.size(); ++i) {
        const ServiceStatus& x = a.services[i];
        const ServiceStatus& y = b.services[i];
        CHECK(x.proto == y.proto);
        CHECK(x.vip == y.vip);
        CHECK(x.port == y.port);
        CHECK(x.scheduler == y.scheduler);
        CHECK(x.persistence == y.persistence);
        CHECK(x.persist_mask == y.persist_mask);
        CHECK(x.sched_flags == y.sched_flags);
        CHECK(same_rates(x.rates, y.rates));
        CHECK(x.conns == y.conns);
        CHECK(x.in_pkts == y.in_pkts);
        CHECK(x.out_pkts == y.out_pkts);
        CHECK(x.in_bytes == y.in_bytes);
        CHECK(x.out_bytes == y.out_bytes);
        REQUIRE(x.reals.size() == y.reals.size());
        for (size_t j = 0; j < x.reals.size(); ++j) {
            CHECK(same_real(x.reals[j], y.reals[j]));
        }
    }
}

// A line without its '\n'.
inline std::string line_of(std::string encoded) {
    REQUIRE(!encoded.empty());
    REQUIRE(encoded.back() == '\n');
    encoded.pop_back();
    REQUIRE(encoded.find('\n') == std::string::npos);
    return encoded;
}

template <typename M>
M reply_as(std::string_view line) {
    Reply r = decode_reply(line);
    REQUIRE(std::holds_alternative<M>(r));
    return std::get<M>(std::move(r));
}

template <typename M>
M request_as(std::string_view line) {
    Request r = decode_request(line);
    REQUIRE(std::holds_alternative<M>(r));
    return std::get<M>(std::move(r));
}

}  // namespace proto_samples
