// The ports' statistics: finding a port's AF_PACKET sockets and reading their drops.
#include <catch2/catch.hpp>

#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "control/port_stats.hpp"

using namespace lb::ctl;

TEST_CASE("port stats: a port's AF_PACKET sockets are found by interface index", "[port_stats]") {
    const int lo = int(if_nametoindex("lo"));
    REQUIRE(lo > 0);
    const int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL));
    if (fd < 0 && (errno == EPERM || errno == EACCES)) {
        WARN("no CAP_NET_RAW: AF_PACKET sockets cannot be opened here");
        CHECK(packet_sockets_of(lo).empty());
        return;
    }
    REQUIRE(fd >= 0);
    auto has = [](const std::vector<int>& v, int x) {
        return std::find(v.begin(), v.end(), x) != v.end();
    };
    // Unbound, it belongs to no interface.
    CHECK_FALSE(has(packet_sockets_of(lo), fd));
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ALL);
    sll.sll_ifindex = lo;
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) == 0);
    CHECK(has(packet_sockets_of(lo), fd));
    // Another interface index and an ordinary socket are not taken.
    CHECK_FALSE(has(packet_sockets_of(lo + 1000), fd));
    const int udp = socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(udp >= 0);
    CHECK_FALSE(has(packet_sockets_of(lo), udp));

    // The kernel's drops: the packet socket's receive buffer at its minimum, never read, while
    // 200 datagrams of 1000 bytes cross lo.
    (void)packet_socket_drops(fd);  // reading resets them
    const int small = 0;
    REQUIRE(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const std::vector<char> payload(1000, 'x');
    for (int i = 0; i < 200; ++i) {
        (void)sendto(udp, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to),
                     sizeof(to));
    }
    const uint64_t drops = packet_socket_drops(fd);
    CHECK(drops >= 100);
    CHECK(packet_socket_drops(udp) == 0);
    CHECK(packet_socket_drops(-1) == 0);
    close(udp);
    close(fd);
    CHECK_FALSE(has(packet_sockets_of(lo), fd));
}

TEST_CASE("port stats: no ports, no statistics", "[port_stats]") {
    PortStats none({});
    CHECK(none.read().empty());
}
