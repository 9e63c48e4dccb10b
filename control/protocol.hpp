#pragma once
// The control socket protocol between lb and lbctl. Every message is one frame:
//   magic "LBC1" (4 bytes) | version u16 | type u16 | payload length u32 | payload
// integers little-endian, strings as u32 length + bytes. Decoders check every length and
// throw ProtocolError on anything malformed, truncated or oversized.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lb::ctl {

inline constexpr uint32_t kProtoMagic = 0x3143424c;  // "LBC1" read as little-endian u32
inline constexpr uint16_t kProtoVersion = 3;  // 3: Workers carries the ports' statistics
inline constexpr uint32_t kMaxPayload = 16u << 20;
inline constexpr size_t kFrameHeader = 12;
inline constexpr uint32_t kMaxString = 4096;  // longest string any message may carry

enum class MsgType : uint16_t {
    // requests
    GetStatus = 1,       // no payload -> Status
    Reload = 2,          // no payload: re-read the config file -> Status, or Error (why not)
    Apply = 3,           // Ops: ipvsadm-style changes, applied together as one snapshot -> Ok / Error
    GetConnections = 4,  // no payload -> Connections
    GetWorkers = 5,      // no payload -> Workers
    WriteConfig = 6,     // string: path ("" = the config file lb was started with) -> Ok / Error
    // replies
    Status = 101,
    Connections = 102,
    Workers = 103,
    Ok = 104,     // payload: string message (may be empty)
    Error = 199,  // payload: string message
};

// One ipvsadm-style change. The client fills every field the kind uses (with ipvsadm's
// defaults for what the user left out); lb validates everything.
enum class OpKind : uint8_t {
    AddService = 1,   // -A: service + settings
    EditService,      // -E: service + settings (replaces them)
    DeleteService,    // -D: service
    Clear,            // -C: nothing
    AddReal,          // -a: service + real
    EditReal,         // -e: service + real
    DeleteReal,       // -d: service + real address and port
    Zero,             // -Z: service, or all services when has_service is false
    SetTimeout,       // --set: tcp, tcpfin, udp seconds (0 = leave as is)
};
inline constexpr uint8_t kMaxOpKind = uint8_t(OpKind::SetTimeout);

struct Op {
    OpKind kind = OpKind::Clear;
    bool has_service = false;
    uint8_t proto = 6;   // 6 tcp, 17 udp
    uint32_t vip = 0;    // host order
    uint16_t port = 0;
    // service settings
    std::string scheduler;    // "rr", "wlc", ...
    std::string sched_flags;  // comma-separated ipvsadm names, "" for none
    uint32_t persistence = 0;            // seconds, 0 = not persistent
    uint32_t persist_mask = 0xFFFFFFFF;  // host order
    // real
    uint32_t real_addr = 0;  // host order
    uint16_t real_port = 0;
    uint8_t forward = 0;     // dp::Forward
    uint32_t weight = 1;
    uint32_t u_threshold = 0, l_threshold = 0;  // connections, 0 = none
    // timeouts
    uint32_t tcp = 0, tcpfin = 0, udp = 0;
};

// One connection of `lbctl -L -n -c` (IPVS's connection entries), addresses host order.
struct ConnEntry {
    uint8_t proto = 6;
    bool is_template = false;
    uint32_t client = 0, vip = 0, real = 0;
    uint16_t cport = 0, vport = 0, rport = 0;
    uint8_t forward = 0;
    std::string state;      // "ESTABLISHED", "UDP", "NONE" (templates)...
    uint32_t expire_s = 0;  // seconds left
};

struct Connections {
    uint64_t total = 0;  // connections and templates in all tables
    std::vector<ConnEntry> entries;  // at most kMaxConnEntries of them
};
inline constexpr uint32_t kMaxConnEntries = 100000;

struct WorkerStatus {
    uint32_t lcore = 0;
    uint64_t rx = 0, tx = 0, redirected_out = 0, redirected_in = 0;
    uint64_t conns_created = 0, conns_expired = 0, conns_in_table = 0, table_capacity = 0;
    std::vector<std::pair<std::string, uint64_t>> counters;  // every other counter, by name
    std::vector<std::pair<std::string, uint64_t>> drops;     // drop reason -> count
};

// One DPDK port: rte_eth_stats_get's totals, plus what the kernel dropped in front of a
// net_af_packet port (its PMD reports no imissed).
struct PortStatus {
    uint16_t port = 0;
    std::string name;  // the ethdev name, "net_af_packet0"
    uint64_t ipackets = 0, opackets = 0, ibytes = 0, obytes = 0;
    uint64_t imissed = 0, ierrors = 0, rx_nombuf = 0, oerrors = 0;
    // net_af_packet: frames the kernel dropped because the port's receive ring was full
    // (PACKET_STATISTICS tp_drops of its sockets); 0 for other drivers.
    uint64_t rx_ring_drops = 0;

    // Frames the port received but the workers never got.
    uint64_t rx_lost() const { return imissed + ierrors + rx_nombuf + rx_ring_drops; }
};

struct Workers {
    uint64_t mbufs_total = 0, mbufs_in_use = 0;
    std::vector<WorkerStatus> workers;
    std::vector<PortStatus> ports;  // since protocol version 3
};
inline constexpr uint32_t kMaxPortEntries = 1024;  // most ports a Workers reply may carry

// Rates as IPVS estimates them: per second, an EWMA over 2-second samples.
struct Rates {
    uint64_t cps = 0, inpps = 0, outpps = 0, inbps = 0, outbps = 0;
};

struct RealStatus {
    uint32_t addr = 0;  // host order
    uint16_t port = 0;
    uint8_t forward = 0;  // dp::Forward
    uint32_t weight = 0;
    uint32_t u_threshold = 0, l_threshold = 0;
    bool overloaded = false;
    Rates rates;
    uint64_t active = 0, inactive = 0, persist = 0;  // persist: persistence templates
    uint64_t conns = 0, in_pkts = 0, out_pkts = 0, in_bytes = 0, out_bytes = 0;
};

struct ServiceStatus {
    uint8_t proto = 6;  // 6 tcp, 17 udp
    uint32_t vip = 0;   // host order
    uint16_t port = 0;
    std::string scheduler;  // "rr", "wrr", ...
    uint32_t persistence = 0;  // seconds, 0 = not persistent
    uint32_t persist_mask = 0xFFFFFFFF;  // host order
    std::string sched_flags;   // ipvsadm's names, comma-separated: "sh-fallback,sh-port"
    Rates rates;
    uint64_t conns = 0, in_pkts = 0, out_pkts = 0, in_bytes = 0, out_bytes = 0;
    std::vector<RealStatus> reals;
};

struct Status {
    uint32_t conn_capacity = 0;  // connection table size, shown as (size=N)
    uint32_t tcp_timeout = 0, tcpfin_timeout = 0, udp_timeout = 0;  // seconds (--timeout)
    std::vector<ServiceStatus> services;
};

class ProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct Frame {
    MsgType type{};
    std::vector<uint8_t> payload;
};

std::vector<uint8_t> encode_frame(MsgType type, const std::vector<uint8_t>& payload);
// Parses the 12-byte header; returns the type and payload length. Throws on bad magic/version/length.
// `len` is the number of bytes readable at hdr: at least kFrameHeader, only the first 12 are read.
// The type is not checked against MsgType's values: what to do with an unknown type is the
// receiver's decision.
std::pair<MsgType, uint32_t> decode_header(const uint8_t* hdr, size_t len);
// One whole frame, header and payload, nothing before or after it. Throws on anything else.
Frame decode_frame(const uint8_t* data, size_t len);

std::vector<uint8_t> encode_status(const Status& s);
Status decode_status(const std::vector<uint8_t>& payload);
std::vector<uint8_t> encode_ops(const std::vector<Op>& ops);
std::vector<Op> decode_ops(const std::vector<uint8_t>& payload);
std::vector<uint8_t> encode_connections(const Connections& c);
Connections decode_connections(const std::vector<uint8_t>& payload);
std::vector<uint8_t> encode_workers(const Workers& w);
Workers decode_workers(const std::vector<uint8_t>& payload);
// Throws ProtocolError if s is longer than kMaxString.
std::vector<uint8_t> encode_string(const std::string& s);
std::string decode_string(const std::vector<uint8_t>& payload);

}  // namespace lb::ctl
