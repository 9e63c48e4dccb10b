// lb-pcapgen's pieces: command line, packet order, frames and the pcap writer.
#include "tools/pcapgen.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace lb::gen {

const char* const kUsage =
    "usage: lb-pcapgen -o FILE [options]\n"
    "Writes a pcap of 64-byte (or larger) TCP or UDP frames for benchmarking lb: the traffic of\n"
    "FLOWS flows in PACKETS packets, each flow opened by a SYN before its other packets.\n"
    "  -o, --out FILE        output pcap (classic, microsecond timestamps); - for stdout\n"
    "  --mode MODE           client: client -> VIP:VPORT, what lb receives in every mode (nat,\n"
    "                        tun, dr); nat-return: real -> client, the replies of NAT reals\n"
    "                        (the first packet of a flow is a SYN-ACK)         [client]\n"
    "  --proto tcp|udp       transport                                         [tcp]\n"
    "  --packets N           packets in the file                               [256K]\n"
    "  --flows N             established flows the packets belong to           [1K]\n"
    "  --syn-share X|auto    share of packets (0..1) that are SYNs (UDP: first datagrams):\n"
    "                        the first FLOWS of them open the flows, any more are SYNs of new\n"
    "                        one-packet tuples; fewer than FLOWS leaves flows starting\n"
    "                        mid-flow (for connections.sloppy_tcp). auto: FLOWS/PACKETS  [auto]\n"
    "  --frame-size N        bytes on the wire with the FCS, 64..1518; the pcap holds N-4\n"
    "                        (SYNs carry no payload and are padded)            [64]\n"
    "  --clients CIDR|A-B    client addresses (a /N: its host addresses)      [198.18.0.0/15]\n"
    "  --sport-first N       clients' first source port; tuple k uses address k mod the\n"
    "                        number of clients and port N + k div it            [1024]\n"
    "  --vip ADDR            virtual IP                                        [198.51.100.10]\n"
    "  --vport N             virtual port                                      [80]\n"
    "  --reals A[,B...]      nat-return: the reals; flow k answers from the (k mod n)th\n"
    "  --real-port N         nat-return: the reals' port                       [VPORT]\n"
    "  --src-mac MAC         Ethernet source       [client 02:00:00:00:00:02,\n"
    "                                               nat-return 02:00:00:00:01:02]\n"
    "  --dst-mac MAC         Ethernet destination, lb's port\n"
    "                                              [client 02:00:00:00:00:01,\n"
    "                                               nat-return 02:00:00:00:01:01]\n"
    "  --seed N              seed of the packet order                          [1]\n"
    "  -q, --quiet           no summary on stderr\n"
    "  -h, --help            this text\n"
    "Numbers take a K (1024) or M (1048576) suffix: --flows 64K --packets 1M.\n";

namespace {

constexpr uint64_t kMaxPackets = 4'000'000'000ULL;
constexpr uint64_t kMaxFlows = 100'000'000ULL;

uint64_t parse_count(const std::string& opt, const std::string& v, uint64_t lo, uint64_t hi) {
    uint64_t mult = 1;
    std::string digits = v;
    if (!digits.empty() && (digits.back() == 'K' || digits.back() == 'k')) {
        mult = 1024;
        digits.pop_back();
    } else if (!digits.empty() && (digits.back() == 'M' || digits.back() == 'm')) {
        mult = 1024 * 1024;
        digits.pop_back();
    }
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
        digits.size() > 12) {
        throw UsageError(opt + ": \"" + v + "\" is not a number");
    }
    const uint64_t n = std::strtoull(digits.c_str(), nullptr, 10) * mult;
    if (n < lo || n > hi) {
        throw UsageError(opt + ": " + v + " is out of range " + std::to_string(lo) + ".." +
                         std::to_string(hi));
    }
    return n;
}

uint32_t parse_ip(const std::string& opt, const std::string& v) {
    in_addr a{};
    // glibc's inet_pton takes exactly four decimal parts and refuses leading zeros.
    if (inet_pton(AF_INET, v.c_str(), &a) != 1) {
        throw UsageError(opt + ": \"" + v + "\" is not an IPv4 address");
    }
    return ntohl(a.s_addr);
}

void check_unicast(const std::string& opt, const std::string& v, uint32_t a) {
    const uint32_t top = a >> 24;
    if (top == 0 || top == 127 || top >= 224) {
        throw UsageError(opt + ": " + v + " is not a unicast host address");
    }
}

Mac parse_mac(const std::string& opt, const std::string& v) {
    Mac m{};
    unsigned b[6];
    char tail = 0;
    if (v.size() != 17 ||
        std::sscanf(v.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4],
                    &b[5], &tail) != 6) {
        throw UsageError(opt + ": \"" + v + "\" is not a MAC address (xx:xx:xx:xx:xx:xx)");
    }
    for (int i = 0; i < 6; ++i) {
        if (!std::isxdigit(static_cast<unsigned char>(v[size_t(i) * 3])) ||
            !std::isxdigit(static_cast<unsigned char>(v[size_t(i) * 3 + 1]))) {
            throw UsageError(opt + ": \"" + v + "\" is not a MAC address (xx:xx:xx:xx:xx:xx)");
        }
        m[size_t(i)] = uint8_t(b[i]);
    }
    if ((m[0] & 1) != 0 || m == Mac{}) {
        throw UsageError(opt + ": " + v + " is not a unicast MAC address");
    }
    return m;
}

void parse_clients(const std::string& opt, const std::string& v, Spec& s) {
    const size_t slash = v.find('/');
    const size_t dash = v.find('-');
    if (slash != std::string::npos) {
        const uint32_t base = parse_ip(opt, v.substr(0, slash));
        const uint64_t len = parse_count(opt + " prefix length", v.substr(slash + 1), 1, 32);
        const uint32_t mask = len == 32 ? ~0u : ~((1u << (32 - len)) - 1);
        if ((base & ~mask) != 0) {
            throw UsageError(opt + ": " + v + " has host bits set");
        }
        s.client_first = base;
        s.client_last = base | ~mask;
        if (len <= 30) {  // not the network and broadcast addresses
            ++s.client_first;
            --s.client_last;
        }
    } else if (dash != std::string::npos) {
        s.client_first = parse_ip(opt, v.substr(0, dash));
        s.client_last = parse_ip(opt, v.substr(dash + 1));
        if (s.client_last < s.client_first) {
            throw UsageError(opt + ": " + v + " is an empty range");
        }
    } else {
        s.client_first = s.client_last = parse_ip(opt, v);
    }
    check_unicast(opt, v, s.client_first);
    check_unicast(opt, v, s.client_last);
    if ((s.client_first >> 24) < 127 && (s.client_last >> 24) > 127) {
        throw UsageError(opt + ": " + v + " spans 127.0.0.0/8");
    }
}

// splitmix64: the seeded generator and the per-tuple hash.
uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void put16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v >> 8);
    p[1] = uint8_t(v);
}
void put32(uint8_t* p, uint32_t v) {
    p[0] = uint8_t(v >> 24);
    p[1] = uint8_t(v >> 16);
    p[2] = uint8_t(v >> 8);
    p[3] = uint8_t(v);
}

constexpr uint8_t kSyn = 0x02, kPsh = 0x08, kAck = 0x10;
constexpr size_t kEth = 14, kIp = 20;

}  // namespace

uint32_t sum16(const uint8_t* p, size_t len, uint32_t sum) {
    while (len >= 2) {
        sum += uint32_t(p[0]) << 8 | p[1];
        p += 2;
        len -= 2;
    }
    if (len != 0) {
        sum += uint32_t(p[0]) << 8;
    }
    return sum;
}

uint16_t fold(uint32_t sum) {
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return uint16_t(sum);
}

uint64_t Spec::syn_count() const {
    if (syn_share < 0) {
        return flows;
    }
    return uint64_t(std::llround(syn_share * double(packets)));
}
uint64_t Spec::opened_flows() const { return std::min(flows, syn_count()); }
uint64_t Spec::extra_syns() const { return syn_count() > flows ? syn_count() - flows : 0; }

Spec parse_args(const std::vector<std::string>& args, bool& help) {
    Spec s;
    help = false;
    bool have_src = false, have_dst = false, have_clients = false, have_vip = false;
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        auto value = [&]() -> const std::string& {
            if (i + 1 >= args.size()) {
                throw UsageError(a + " needs a value");
            }
            return args[++i];
        };
        if (a == "-h" || a == "--help") {
            help = true;
            return s;
        } else if (a == "-o" || a == "--out") {
            s.out = value();
            if (s.out.empty()) {
                throw UsageError(a + ": empty file name");
            }
        } else if (a == "--mode") {
            const std::string& v = value();
            if (v == "client") {
                s.mode = Mode::Client;
            } else if (v == "nat-return") {
                s.mode = Mode::NatReturn;
            } else {
                throw UsageError("--mode: \"" + v + "\" is not client or nat-return");
            }
        } else if (a == "--proto") {
            const std::string& v = value();
            if (v == "tcp") {
                s.proto = 6;
            } else if (v == "udp") {
                s.proto = 17;
            } else {
                throw UsageError("--proto: \"" + v + "\" is not tcp or udp");
            }
        } else if (a == "--packets") {
            s.packets = parse_count(a, value(), 1, kMaxPackets);
        } else if (a == "--flows") {
            s.flows = parse_count(a, value(), 1, kMaxFlows);
        } else if (a == "--syn-share") {
            const std::string& v = value();
            if (v == "auto") {
                s.syn_share = -1;
            } else {
                char* end = nullptr;
                errno = 0;
                const double x = std::strtod(v.c_str(), &end);
                if (v.empty() || *end != '\0' || errno != 0 || !(x >= 0.0 && x <= 1.0)) {
                    throw UsageError("--syn-share: \"" + v + "\" is not a share 0..1 or auto");
                }
                s.syn_share = x;
            }
        } else if (a == "--frame-size") {
            s.frame_size = uint32_t(parse_count(a, value(), 64, 1518));
        } else if (a == "--clients") {
            parse_clients(a, value(), s);
            have_clients = true;
        } else if (a == "--sport-first") {
            s.sport_first = uint16_t(parse_count(a, value(), 1, 65535));
        } else if (a == "--vip") {
            const std::string& v = value();
            s.vip = parse_ip(a, v);
            check_unicast(a, v, s.vip);
            have_vip = true;
        } else if (a == "--vport") {
            s.vport = uint16_t(parse_count(a, value(), 1, 65535));
        } else if (a == "--reals") {
            const std::string& v = value();
            s.reals.clear();
            size_t start = 0;
            while (true) {
                const size_t comma = std::min(v.find(',', start), v.size());
                const std::string one = v.substr(start, comma - start);
                const uint32_t r = parse_ip(a, one);
                check_unicast(a, one, r);
                s.reals.push_back(r);
                if (comma == v.size()) {
                    break;
                }
                start = comma + 1;
            }
        } else if (a == "--real-port") {
            s.real_port = uint16_t(parse_count(a, value(), 1, 65535));
        } else if (a == "--src-mac") {
            s.src_mac = parse_mac(a, value());
            have_src = true;
        } else if (a == "--dst-mac") {
            s.dst_mac = parse_mac(a, value());
            have_dst = true;
        } else if (a == "--seed") {
            s.seed = parse_count(a, value(), 0, 999'999'999'999ULL);
        } else if (a == "-q" || a == "--quiet") {
            s.quiet = true;
        } else {
            throw UsageError("unknown argument \"" + a + "\"");
        }
    }
    if (s.out.empty()) {
        throw UsageError("-o FILE is required");
    }
    if (!have_clients) {
        parse_clients("--clients", "198.18.0.0/15", s);
    }
    if (!have_vip) {
        s.vip = parse_ip("--vip", "198.51.100.10");
    }
    const bool ret = s.mode == Mode::NatReturn;
    if (!have_src) {
        s.src_mac = parse_mac("--src-mac", ret ? "02:00:00:00:01:02" : "02:00:00:00:00:02");
    }
    if (!have_dst) {
        s.dst_mac = parse_mac("--dst-mac", ret ? "02:00:00:00:01:01" : "02:00:00:00:00:01");
    }
    if (ret && s.reals.empty()) {
        throw UsageError("--mode nat-return needs --reals");
    }
    if (!ret && (!s.reals.empty() || s.real_port != 0)) {
        throw UsageError("--reals and --real-port are for --mode nat-return only");
    }
    if (s.real_port == 0) {
        s.real_port = s.vport;
    }
    if (s.vip >= s.client_first && s.vip <= s.client_last) {
        throw UsageError("--vip: the VIP is inside the client range");
    }
    if (s.packets < s.flows) {
        throw UsageError("--packets (" + std::to_string(s.packets) + ") is below --flows (" +
                         std::to_string(s.flows) + "): every flow needs a packet");
    }
    const uint64_t n_clients = uint64_t(s.client_last) - s.client_first + 1;
    const uint64_t tuples = s.flows + s.extra_syns();
    if (tuples > n_clients * (65536 - uint64_t(s.sport_first))) {
        throw UsageError(std::to_string(tuples) + " tuples do not fit in " +
                         std::to_string(n_clients) + " client addresses with source ports " +
                         std::to_string(s.sport_first) + "..65535");
    }
    return s;
}

Generator::Generator(const Spec& s) : s_(s), rng_(mix(s.seed ^ 0x6c622d70636170ULL)) {
    extra_left_ = s_.extra_syns();
    flow_left_ = s_.packets - extra_left_;
    n_clients_ = s_.client_last - s_.client_first + 1;
    perm_.resize(s_.flows);
    for (uint32_t i = 0; i < perm_.size(); ++i) {
        perm_[i] = i;
    }
    perm_pos_ = perm_.size();  // the first next() starts pass 0
    pass_ = ~0ULL;

    uint8_t* t = tmpl_.data();
    std::memcpy(t, s_.dst_mac.data(), 6);
    std::memcpy(t + 6, s_.src_mac.data(), 6);
    put16(t + 12, 0x0800);
    uint8_t* ip = t + kEth;
    ip[0] = 0x45;
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = s_.proto;
    l4_hdr_ = s_.proto == 6 ? 20 : 8;
    uint8_t* l4 = ip + kIp;
    if (s_.proto == 6) {
        l4[12] = 5 << 4;
        put16(l4 + 14, 65535);
    }
    // A constant payload, so its sum is computed once; it starts at an even offset of the
    // segment, so the segment's sum is the header's plus this.
    payload_.resize(s_.ip_len() - kIp - l4_hdr_);
    for (size_t i = 0; i < payload_.size(); ++i) {
        payload_[i] = uint8_t('a' + i % 26);
    }
    payload_sum_ = sum16(payload_.data(), payload_.size());
}

uint64_t Generator::rand() {
    rng_ += 0x9e3779b97f4a7c15ULL;
    uint64_t x = rng_;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t Generator::below(uint64_t n) {
    // Lemire's multiply-shift; the bias (n / 2^64) is far below anything measured here.
    __extension__ using U128 = unsigned __int128;
    return uint64_t(U128(rand()) * n >> 64);
}

void Generator::new_pass() {
    for (size_t i = perm_.size(); i > 1; --i) {
        const size_t j = size_t(below(i));
        std::swap(perm_[i - 1], perm_[j]);
    }
    perm_pos_ = 0;
    ++pass_;
}

bool Generator::next(uint8_t* out, PacketInfo* info) {
    const uint64_t remaining = extra_left_ + flow_left_;
    if (remaining == 0) {
        return false;
    }
    PacketInfo pi;
    if (extra_left_ != 0 && below(remaining) < extra_left_) {
        --extra_left_;
        pi.tuple = s_.flows + extra_next_++;
        pi.syn = true;
        pi.extra = true;
    } else {
        --flow_left_;
        if (perm_pos_ == perm_.size()) {
            new_pass();
        }
        pi.tuple = perm_[perm_pos_++];
        pi.pass = pass_;
        pi.syn = pass_ == 0 && pi.tuple < s_.opened_flows();
    }
    build(out, pi);
    ++index_;
    if (info != nullptr) {
        *info = pi;
    }
    return true;
}

void Generator::build(uint8_t* out, const PacketInfo& pi) const {
    const uint32_t frame_len = s_.frame_size - 4;
    const uint64_t h = mix(pi.tuple ^ (s_.seed << 40));
    const uint32_t client = s_.client_first + uint32_t(pi.tuple % n_clients_);
    const uint16_t cport = uint16_t(s_.sport_first + pi.tuple / n_clients_);
    const bool ret = s_.mode == Mode::NatReturn;
    const uint32_t src = ret ? s_.reals[pi.tuple % s_.reals.size()] : client;
    const uint32_t dst = ret ? client : s_.vip;
    const uint16_t sport = ret ? s_.real_port : cport;
    const uint16_t dport = ret ? cport : s_.vport;
    const bool tcp = s_.proto == 6;
    // SYNs carry nothing; every other packet fills the frame.
    const uint32_t ip_len = tcp && pi.syn ? kIp + l4_hdr_ : s_.ip_len();
    const uint32_t payload = ip_len - kIp - l4_hdr_;

    std::memcpy(out, tmpl_.data(), kEth + kIp + l4_hdr_);
    uint8_t* ip = out + kEth;
    put16(ip + 2, uint16_t(ip_len));
    put16(ip + 4, uint16_t((h >> 32) + pi.pass));
    put32(ip + 12, src);
    put32(ip + 16, dst);
    put16(ip + 10, uint16_t(~fold(sum16(ip, kIp))));

    uint8_t* l4 = ip + kIp;
    put16(l4, sport);
    put16(l4 + 2, dport);
    if (tcp) {
        const uint32_t isn = uint32_t(h);           // this side's initial sequence number
        const uint32_t peer_isn = uint32_t(h >> 24);  // the other side's
        if (pi.syn) {
            put32(l4 + 4, isn);
            put32(l4 + 8, ret ? peer_isn + 1 : 0);
            l4[13] = ret ? kSyn | kAck : kSyn;
        } else {
            put32(l4 + 4, isn + 1 + uint32_t(pi.pass * payload));
            put32(l4 + 8, peer_isn + 1);
            l4[13] = payload != 0 ? kPsh | kAck : kAck;
        }
    } else {
        put16(l4 + 4, uint16_t(ip_len - kIp));
    }
    uint8_t* pl = l4 + l4_hdr_;
    std::memcpy(pl, payload_.data(), payload);
    const uint32_t l4_len = ip_len - kIp;
    uint32_t sum = sum16(ip + 12, 8);  // pseudo header: addresses, protocol, length
    sum += s_.proto + l4_len;
    sum = sum16(l4, l4_hdr_, sum);
    sum += payload == payload_.size() ? payload_sum_ : sum16(pl, payload);
    uint16_t c = uint16_t(~fold(sum));
    if (!tcp && c == 0) {
        c = 0xffff;  // UDP: a computed zero is sent as all ones
    }
    put16(l4 + (tcp ? 16 : 6), c);
    if (kEth + ip_len < frame_len) {  // Ethernet padding
        std::memset(out + kEth + ip_len, 0, frame_len - kEth - ip_len);
    }
}

PcapWriter::PcapWriter(std::FILE* f) : f_(f), buf_(1 << 20) {
    uint8_t h[24] = {};
    const uint32_t magic = 0xa1b2c3d4, snaplen = 65535, link = 1;
    const uint16_t major = 2, minor = 4;
    std::memcpy(h, &magic, 4);  // written in this machine's byte order, as the magic says
    std::memcpy(h + 4, &major, 2);
    std::memcpy(h + 6, &minor, 2);
    std::memcpy(h + 16, &snaplen, 4);
    std::memcpy(h + 20, &link, 4);
    std::memcpy(buf_.data(), h, 24);
    n_ = 24;
}

PcapWriter::~PcapWriter() {
    try {
        flush();
    } catch (const std::exception&) {  // the caller flushes explicitly to see errors
    }
}

void PcapWriter::frame(const uint8_t* data, uint32_t len, uint64_t ts_us) {
    if (n_ + 16 + len > buf_.size()) {
        flush();
        if (16 + len > buf_.size()) {
            buf_.resize(16 + len);
        }
    }
    const uint32_t rec[4] = {uint32_t(ts_us / 1'000'000), uint32_t(ts_us % 1'000'000), len, len};
    std::memcpy(buf_.data() + n_, rec, 16);
    std::memcpy(buf_.data() + n_ + 16, data, len);
    n_ += 16 + len;
}

void PcapWriter::flush() {
    if (n_ == 0) {
        return;
    }
    const size_t n = n_;
    n_ = 0;
    if (std::fwrite(buf_.data(), 1, n, f_) != n || std::fflush(f_) != 0) {
        throw std::runtime_error(std::strerror(errno));
    }
}

}  // namespace lb::gen
