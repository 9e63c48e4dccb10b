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
inline constexpr uint16_t kProtoVersion = 1;
inline constexpr uint32_t kMaxPayload = 16u << 20;
inline constexpr size_t kFrameHeader = 12;
inline constexpr uint32_t kMaxString = 4096;  // longest string any message may carry

enum class MsgType : uint16_t {
    // requests
    GetStatus = 1,  // no payload -> Status
    Reload = 2,     // no payload: re-read the config file -> Status, or Error (why not)
    // replies
    Status = 101,
    Error = 199,  // payload: string message
};

struct RealStatus {
    uint32_t addr = 0;  // host order
    uint16_t port = 0;
    uint8_t forward = 0;  // dp::Forward
    uint32_t weight = 0;
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
    uint64_t conns = 0, in_pkts = 0, out_pkts = 0, in_bytes = 0, out_bytes = 0;
    std::vector<RealStatus> reals;
};

struct Status {
    uint32_t conn_capacity = 0;  // connection table size, shown as (size=N)
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
// Throws ProtocolError if s is longer than kMaxString.
std::vector<uint8_t> encode_string(const std::string& s);
std::string decode_string(const std::vector<uint8_t>& payload);

}  // namespace lb::ctl
