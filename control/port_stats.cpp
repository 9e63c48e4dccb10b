// The ports' statistics (see port_stats.hpp).
#include "control/port_stats.hpp"

#include <dirent.h>
#include <linux/if_packet.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>

#include <rte_ethdev.h>
#include <spdlog/spdlog.h>

#include "control/log.hpp"

namespace lb::ctl {

std::vector<int> packet_sockets_of(int ifindex) {
    std::vector<int> out;
    DIR* d = opendir("/proc/self/fd");
    if (d == nullptr) {
        return out;
    }
    const int own = dirfd(d);
    while (const dirent* e = readdir(d)) {
        char* end = nullptr;
        const long fd = std::strtol(e->d_name, &end, 10);
        if (end == e->d_name || *end != '\0' || fd < 0 || fd == own) {
            continue;
        }
        struct stat st{};
        if (fstat(int(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) {
            continue;
        }
        int domain = 0;
        socklen_t len = sizeof(domain);
        if (getsockopt(int(fd), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 || domain != AF_PACKET) {
            continue;
        }
        sockaddr_ll sll{};
        len = sizeof(sll);
        if (getsockname(int(fd), reinterpret_cast<sockaddr*>(&sll), &len) != 0 ||
            sll.sll_ifindex != ifindex) {
            continue;
        }
        out.push_back(int(fd));
    }
    closedir(d);
    return out;
}

uint64_t packet_socket_drops(int fd) {
    tpacket_stats st{};
    socklen_t len = sizeof(st);
    if (getsockopt(fd, SOL_PACKET, PACKET_STATISTICS, &st, &len) != 0) {
        return 0;
    }
    return st.tp_drops;
}

PortStats::PortStats(const std::vector<uint16_t>& ports) {
    for (const uint16_t id : ports) {
        Port p;
        p.id = id;
        char name[RTE_ETH_NAME_MAX_LEN] = {};
        if (rte_eth_dev_get_name_by_port(id, name) == 0) {
            p.name = name;
        }
        rte_eth_dev_info info{};
        if (rte_eth_dev_info_get(id, &info) == 0 && info.driver_name != nullptr &&
            std::strcmp(info.driver_name, "net_af_packet") == 0 && info.if_index != 0) {
            p.sockets = packet_sockets_of(int(info.if_index));
            if (p.sockets.empty()) {
                control_log()->warn(
                    "port {} ({}): no AF_PACKET socket found for interface index {}: the "
                    "kernel's drops in front of it will not be counted",
                    id, p.name, info.if_index);
            }
        }
        ports_.push_back(std::move(p));
    }
}

std::vector<PortStatus> PortStats::read() {
    std::vector<PortStatus> out;
    out.reserve(ports_.size());
    for (Port& p : ports_) {
        for (const int fd : p.sockets) {
            p.ring_drops += packet_socket_drops(fd);
        }
        PortStatus s;
        s.port = p.id;
        s.name = p.name;
        rte_eth_stats st{};
        if (rte_eth_stats_get(p.id, &st) == 0) {
            s.ipackets = st.ipackets;
            s.opackets = st.opackets;
            s.ibytes = st.ibytes;
            s.obytes = st.obytes;
            s.imissed = st.imissed;
            s.ierrors = st.ierrors;
            s.rx_nombuf = st.rx_nombuf;
            s.oerrors = st.oerrors;
        }
        s.rx_ring_drops = p.ring_drops;
        out.push_back(std::move(s));
    }
    return out;
}

}  // namespace lb::ctl
