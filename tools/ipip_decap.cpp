// lb-ipip-decap: the LVS-TUN real server's end of the tunnel, in user space, for kernels built
// without the ipip module.
//
// It reads IP-in-IP packets (IPv4 protocol 4) from a raw socket, checks the outer header (IPv4,
// addressed to --local, not a fragment: the kernel has already reassembled fragmented outer
// packets before a raw socket sees them) and the inner one (IPv4, sane header and lengths, header
// checksum), and writes the inner packet, untouched, to a TUN device (IFF_TUN | IFF_NO_PI). The
// kernel then receives it as if it had arrived on that device, which holds the VIP:
//
//   lb-ipip-decap --dev tunl-lb --local 198.51.100.11 &
//   ip addr add 198.51.100.10/32 dev tunl-lb; ip link set tunl-lb up mtu 1500
//   sysctl net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl-lb.rp_filter=0
//
// The device is created if it does not exist (and then goes away when the program exits), or
// attached to if it was made persistent beforehand (`ip tuntap add dev tunl-lb mode tun`).
// SIGTERM / SIGINT end it cleanly; SIGUSR1 prints the counters; the counters are printed on exit.
// It does no per-packet logging and never exits because of what the network sends.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace {

constexpr size_t kIpv4MinHeader = 20;
constexpr uint16_t kIpMoreFragments = 0x2000;
constexpr uint16_t kIpOffsetMask = 0x1fff;

enum class Verdict : uint8_t {
    Delivered,
    NotForUs,  // outer destination is not --local
    Fragment,  // outer MF set or non-zero offset
    BadOuter,  // outer header too short, wrong version / IHL / protocol / length
    BadInner,  // inner header too short, not IPv4, bad IHL, lengths, checksum
    Count,
};

constexpr std::array<const char*, size_t(Verdict::Count)> kVerdictNames{
    "delivered", "not_for_us", "fragment", "bad_outer", "bad_inner"};

struct Counters {
    uint64_t received = 0;
    uint64_t write_errors = 0;
    std::array<uint64_t, size_t(Verdict::Count)> verdicts{};
};

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_dump = 0;

void on_signal(int sig) {
    if (sig == SIGUSR1) {
        g_dump = 1;
    } else {
        g_stop = 1;
    }
}

uint16_t load_be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

// The ones' complement sum over an IPv4 header; 0 when its checksum is right.
uint16_t header_checksum(std::span<const uint8_t> hdr) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < hdr.size(); i += 2) {
        sum += load_be16(&hdr[i]);
    }
    while ((sum >> 16) != 0) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return static_cast<uint16_t>(~sum & 0xffff);
}

// The inner packet of one IP-in-IP packet as the raw socket delivered it (outer header included),
// or an empty span and the reason it is not forwarded.
struct Decap {
    Verdict verdict;
    std::span<const uint8_t> inner;
};

Decap decapsulate(std::span<const uint8_t> pkt, in_addr_t local) {
    if (pkt.size() < kIpv4MinHeader || (pkt[0] >> 4) != 4) {
        return {Verdict::BadOuter, {}};
    }
    const size_t outer_hl = size_t(pkt[0] & 0x0f) * 4;
    const size_t outer_len = load_be16(&pkt[2]);
    if (outer_hl < kIpv4MinHeader || outer_len < outer_hl || outer_len > pkt.size() ||
        pkt[9] != IPPROTO_IPIP) {
        return {Verdict::BadOuter, {}};
    }
    in_addr_t dst;
    std::memcpy(&dst, &pkt[16], sizeof dst);
    if (dst != local) {
        return {Verdict::NotForUs, {}};
    }
    if ((load_be16(&pkt[6]) & (kIpMoreFragments | kIpOffsetMask)) != 0) {
        return {Verdict::Fragment, {}};
    }
    const std::span<const uint8_t> in = pkt.subspan(outer_hl, outer_len - outer_hl);
    if (in.size() < kIpv4MinHeader || (in[0] >> 4) != 4) {
        return {Verdict::BadInner, {}};
    }
    const size_t inner_hl = size_t(in[0] & 0x0f) * 4;
    const size_t inner_len = load_be16(&in[2]);
    if (inner_hl < kIpv4MinHeader || inner_len < inner_hl || inner_len > in.size() ||
        header_checksum(in.first(inner_hl)) != 0) {
        return {Verdict::BadInner, {}};
    }
    return {Verdict::Delivered, in.first(inner_len)};
}

void print_counters(const Counters& c, const char* dev) {
    std::fprintf(stderr, "lb-ipip-decap %s: received=%llu", dev,
                 static_cast<unsigned long long>(c.received));
    for (size_t i = 0; i < c.verdicts.size(); ++i) {
        std::fprintf(stderr, " %s=%llu", kVerdictNames[i],
                     static_cast<unsigned long long>(c.verdicts[i]));
    }
    std::fprintf(stderr, " write_errors=%llu\n", static_cast<unsigned long long>(c.write_errors));
}

void usage(FILE* out) {
    std::fputs(
        "usage: lb-ipip-decap --dev NAME --local A.B.C.D [--quiet]\n"
        "\n"
        "The LVS-TUN real server's tunnel end in user space, for kernels without the ipip\n"
        "module. Reads IP-in-IP packets (protocol 4) addressed to --local from a raw socket and\n"
        "writes their inner IPv4 packets to the TUN device NAME (created if missing), where the\n"
        "kernel receives them. Give NAME the VIP, bring it up and turn rp_filter off:\n"
        "\n"
        "  lb-ipip-decap --dev tunl-lb --local 198.51.100.11 &\n"
        "  ip addr add 198.51.100.10/32 dev tunl-lb\n"
        "  ip link set tunl-lb up mtu 1500\n"
        "  sysctl -w net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl-lb.rp_filter=0\n"
        "  sysctl -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2\n"
        "\n"
        "  --dev NAME        the TUN device (at most 15 characters)\n"
        "  --local A.B.C.D   this real server's address, the tunnel's outer destination\n"
        "  --quiet           print nothing but errors and the counters at exit\n"
        "  -h, --help        this text\n"
        "\n"
        "Packets that are not for --local, outer fragments, and malformed outer or inner headers\n"
        "are dropped and counted. SIGUSR1 prints the counters; SIGTERM / SIGINT exit with 0\n"
        "after printing them.\n",
        out);
}

}  // namespace

int main(int argc, char** argv) {
    std::string dev;
    std::string local_text;
    bool quiet = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        }
        if (arg == "--quiet") {
            quiet = true;
        } else if ((arg == "--dev" || arg == "--local") && i + 1 < argc) {
            (arg == "--dev" ? dev : local_text) = argv[++i];
        } else {
            std::fprintf(stderr, "lb-ipip-decap: unknown or incomplete argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    in_addr local{};
    if (dev.empty() || local_text.empty()) {
        std::fputs("lb-ipip-decap: --dev and --local are required\n", stderr);
        usage(stderr);
        return 2;
    }
    if (dev.size() >= IFNAMSIZ) {
        std::fprintf(stderr, "lb-ipip-decap: device name '%s' is longer than %d characters\n",
                     dev.c_str(), IFNAMSIZ - 1);
        return 2;
    }
    if (inet_pton(AF_INET, local_text.c_str(), &local) != 1) {
        std::fprintf(stderr, "lb-ipip-decap: '%s' is not an IPv4 address\n", local_text.c_str());
        return 2;
    }

    const int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tun < 0) {
        std::fprintf(stderr, "lb-ipip-decap: open /dev/net/tun: %s\n", std::strerror(errno));
        return 1;
    }
    ifreq ifr{};
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::memcpy(ifr.ifr_name, dev.data(), dev.size());
    if (ioctl(tun, TUNSETIFF, &ifr) < 0) {
        std::fprintf(stderr, "lb-ipip-decap: TUNSETIFF %s: %s\n", dev.c_str(),
                     std::strerror(errno));
        return 1;
    }
    const int raw = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_IPIP);
    if (raw < 0) {
        std::fprintf(stderr, "lb-ipip-decap: raw socket (IPPROTO_IPIP): %s\n",
                     std::strerror(errno));
        return 1;
    }
    const int rcvbuf = 4 << 20;
    (void)setsockopt(raw, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // best effort

    // Signals are blocked except inside ppoll, so a SIGTERM can never slip in between the check
    // of g_stop and the wait.
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (const int sig : {SIGTERM, SIGINT, SIGUSR1}) {
        sigaction(sig, &sa, nullptr);
    }
    sigset_t blocked;
    sigset_t wait_mask;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGUSR1);
    sigprocmask(SIG_BLOCK, &blocked, &wait_mask);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGUSR1);

    if (!quiet) {
        std::fprintf(stderr, "lb-ipip-decap: %s ready: IP-in-IP to %s -> inner packets on %s\n",
                     dev.c_str(), local_text.c_str(), ifr.ifr_name);
    }

    Counters c;
    std::array<uint8_t, 65536> buf{};
    int rc = 0;
    while (g_stop == 0) {
        if (g_dump != 0) {
            g_dump = 0;
            print_counters(c, dev.c_str());
        }
        pollfd pfd{raw, POLLIN, 0};
        const int n = ppoll(&pfd, 1, nullptr, &wait_mask);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            std::fprintf(stderr, "lb-ipip-decap: poll: %s\n", std::strerror(errno));
            rc = 1;
            break;
        }
        // Drain what is queued without blocking, then wait again.
        for (;;) {
            const ssize_t len = recv(raw, buf.data(), buf.size(), MSG_DONTWAIT);
            if (len < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    std::fprintf(stderr, "lb-ipip-decap: recv: %s\n", std::strerror(errno));
                    rc = 1;
                    g_stop = 1;
                }
                break;
            }
            ++c.received;
            const Decap d = decapsulate({buf.data(), size_t(len)}, local.s_addr);
            ++c.verdicts[size_t(d.verdict)];
            if (d.verdict != Verdict::Delivered) {
                continue;
            }
            const ssize_t w = write(tun, d.inner.data(), d.inner.size());
            if (w != ssize_t(d.inner.size())) {
                ++c.write_errors;  // e.g. EIO while the device is down: counted, never fatal
                --c.verdicts[size_t(Verdict::Delivered)];
            }
        }
    }
    print_counters(c, dev.c_str());
    close(raw);
    close(tun);
    return rc;
}
