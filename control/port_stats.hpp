#pragma once
// The DPDK ports' statistics, read by the control thread for lbctl --workers and the metrics:
// rte_eth_stats_get's totals, and for net_af_packet ports the frames the kernel dropped in front
// of them. That PMD (DPDK 22.11) reports no imissed: when lb does not empty a port's receive
// ring fast enough (a burst, the mbuf pool exhausted), the kernel drops the frames and counts
// them only in the PACKET_STATISTICS of the port's sockets, which lb reads here.
#include <cstdint>
#include <string>
#include <vector>

#include "control/protocol.hpp"

namespace lb::ctl {

class PortStats {
public:
    // The ports must be started: their af_packet sockets are looked up here, once.
    explicit PortStats(const std::vector<uint16_t>& ports);

    // Totals since lb started. Control thread only: reading a socket's statistics resets them
    // in the kernel, so the drops are accumulated here.
    std::vector<PortStatus> read();

private:
    struct Port {
        uint16_t id = 0;
        std::string name;
        std::vector<int> sockets;  // the PMD's AF_PACKET sockets of this port (not ours to close)
        uint64_t ring_drops = 0;
    };
    std::vector<Port> ports_;
};

// This process's AF_PACKET sockets bound to interface `ifindex` (from /proc/self/fd).
std::vector<int> packet_sockets_of(int ifindex);
// Frames the kernel dropped at socket fd since the last call (PACKET_STATISTICS tp_drops;
// reading resets them); 0 if fd is not a packet socket.
uint64_t packet_socket_drops(int fd);

}  // namespace lb::ctl
