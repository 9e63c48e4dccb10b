#pragma once
// lb-pcapgen's pieces: the command line, the order of the packets (which flow, SYN or not) and
// the frames themselves (Ethernet / IPv4 / TCP or UDP with correct checksums), and a classic
// pcap writer. No DPDK: the generator runs anywhere and the unit tests drive it on buffers.
#include <array>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace lb::gen {

// A bad command line: the message names the option and what is wrong with its value.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

using Mac = std::array<uint8_t, 6>;

// What the traffic looks like.
//   Client:    client -> VIP:port, the traffic a director receives in every mode (nat, tun and
//              dr see the same packets from the clients).
//   NatReturn: real -> client, the replies a NAT director receives from its reals (the first
//              packet of a flow is a SYN-ACK instead of a SYN).
enum class Mode : uint8_t { Client, NatReturn };

struct Spec {
    std::string out;                    // output file, "-" for stdout
    Mode mode = Mode::Client;
    uint8_t proto = 6;                  // 6 TCP, 17 UDP
    uint64_t packets = 262144;
    uint64_t flows = 1024;
    double syn_share = -1;              // < 0: one SYN per flow (flows / packets)
    uint32_t frame_size = 64;           // on the wire, FCS included; the pcap holds size - 4
    uint32_t client_first = 0;          // host order, first and last client address
    uint32_t client_last = 0;
    uint32_t vip = 0;                   // host order
    uint16_t vport = 80;
    std::vector<uint32_t> reals;        // host order; NatReturn: flow k answers from reals[k % n]
    uint16_t real_port = 0;             // NatReturn: the reals' port (0: vport)
    uint16_t sport_first = 1024;        // clients' source ports start here
    Mac src_mac{};
    Mac dst_mac{};
    uint64_t seed = 1;
    bool quiet = false;

    uint64_t syn_count() const;         // SYN (or first-datagram) packets in the file
    uint64_t opened_flows() const;      // flows that start with a SYN: min(flows, syn_count)
    uint64_t extra_syns() const;        // SYNs of one-packet new tuples beyond the flows
    uint32_t ip_len() const { return frame_size - 4 - 14; }
};

extern const char* const kUsage;

// Parses argv[1..] (without the program name). Throws UsageError; `help` is set for -h/--help.
Spec parse_args(const std::vector<std::string>& args, bool& help);

// What the generator decided for one packet.
struct PacketInfo {
    uint64_t tuple = 0;   // tuple index: flows 0..flows-1, then the extra new tuples
    bool syn = false;     // the first packet of its tuple in the file (SYN / SYN-ACK / first UDP)
    bool extra = false;   // a one-packet new tuple beyond the flows
    uint64_t pass = 0;    // how many times this flow was seen before (0 for its first packet)
};

// The packets in order. The established flows are sent in passes, each pass a fresh seeded
// permutation of all flows, so every flow's first packet (its SYN) comes before its others;
// the extra SYNs of new tuples are spread over the file at seeded random positions.
class Generator {
public:
    explicit Generator(const Spec& s);

    // Writes the next frame (frame_size - 4 bytes) into `out`; false when all are written.
    bool next(uint8_t* out, PacketInfo* info = nullptr);
    uint64_t written() const { return index_; }

private:
    void build(uint8_t* out, const PacketInfo& pi) const;
    void new_pass();
    uint64_t rand();
    uint64_t below(uint64_t n);  // uniform in [0, n)

    Spec s_;
    uint64_t rng_;
    uint64_t index_ = 0;
    uint64_t extra_left_ = 0;
    uint64_t extra_next_ = 0;  // tuple index of the next extra SYN
    uint64_t flow_left_ = 0;   // established-flow packets still to write
    std::vector<uint32_t> perm_;
    uint64_t perm_pos_ = 0;
    uint64_t pass_ = 0;
    uint32_t n_clients_ = 0;
    std::array<uint8_t, 64> tmpl_{};  // Ethernet + IPv4 + L4 header template
    std::vector<uint8_t> payload_;    // the constant payload of a full frame
    uint32_t payload_sum_ = 0;        // its one's-complement sum
    uint32_t l4_hdr_ = 0;
};

// Classic pcap (microsecond timestamps, link type Ethernet), buffered.
class PcapWriter {
public:
    explicit PcapWriter(std::FILE* f);
    ~PcapWriter();
    PcapWriter(const PcapWriter&) = delete;
    PcapWriter& operator=(const PcapWriter&) = delete;
    void frame(const uint8_t* data, uint32_t len, uint64_t ts_us);
    void flush();  // throws std::runtime_error on a write error

private:
    std::FILE* f_;
    std::vector<uint8_t> buf_;
    size_t n_ = 0;
};

// RFC 1071 sum of 16-bit big-endian words (returned unfolded).
uint32_t sum16(const uint8_t* p, size_t len, uint32_t sum = 0);
uint16_t fold(uint32_t sum);

}  // namespace lb::gen
