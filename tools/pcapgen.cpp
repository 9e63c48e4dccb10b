// lb-pcapgen: writes benchmark traffic for lb (and dpdk-testpmd, TRex, pktgen) as a pcap.
// See `lb-pcapgen --help` and tools/pcapgen.hpp.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "tools/pcapgen.hpp"

int main(int argc, char** argv) {
    using lb::gen::UsageError;
    lb::gen::Spec spec;
    try {
        bool help = false;
        spec = lb::gen::parse_args(std::vector<std::string>(argv + 1, argv + argc), help);
        if (help) {
            std::fputs(lb::gen::kUsage, stdout);
            return 0;
        }
    } catch (const UsageError& e) {
        std::fprintf(stderr, "lb-pcapgen: %s\n(lb-pcapgen --help lists the options)\n", e.what());
        return 2;
    }
    const bool to_stdout = spec.out == "-";
    if (to_stdout && isatty(STDOUT_FILENO) != 0) {
        std::fprintf(stderr, "lb-pcapgen: not writing a pcap to a terminal\n");
        return 2;
    }
    std::FILE* f = to_stdout ? stdout : std::fopen(spec.out.c_str(), "wb");
    if (f == nullptr) {
        std::fprintf(stderr, "lb-pcapgen: cannot create %s: %s\n", spec.out.c_str(),
                     std::strerror(errno));
        return 1;
    }
    // A half-written file is removed on error, but only a regular file: never a device or a
    // pipe given as the output (-o /dev/null, a FIFO).
    struct stat st {};
    const bool regular = !to_stdout && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    auto discard = [&]() {
        if (regular) {
            std::remove(spec.out.c_str());
        }
    };
    const auto t0 = std::chrono::steady_clock::now();
    uint64_t syns = 0, bytes = 24;
    try {
        lb::gen::PcapWriter w(f);
        lb::gen::Generator g(spec);
        std::vector<uint8_t> frame(spec.frame_size);
        lb::gen::PacketInfo pi;
        const uint32_t len = spec.frame_size - 4;
        while (g.next(frame.data(), &pi)) {
            w.frame(frame.data(), len, g.written());
            syns += pi.syn ? 1 : 0;
            bytes += 16 + len;
        }
        w.flush();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "lb-pcapgen: writing %s: %s\n", spec.out.c_str(), e.what());
        if (!to_stdout) {
            std::fclose(f);
        }
        discard();
        return 1;
    }
    if (!to_stdout && std::fclose(f) != 0) {
        std::fprintf(stderr, "lb-pcapgen: closing %s: %s\n", spec.out.c_str(),
                     std::strerror(errno));
        discard();
        return 1;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!spec.quiet) {
        std::fprintf(stderr,
                     "lb-pcapgen: %s: %llu packets of %u bytes (+FCS), %llu flows, %llu %s "
                     "(%llu opening flows, %llu new one-packet tuples), %llu bytes in %.3f s "
                     "(%.1f Mpps)\n",
                     spec.out.c_str(), (unsigned long long)spec.packets, spec.frame_size - 4,
                     (unsigned long long)spec.flows, (unsigned long long)syns,
                     spec.proto == 6 ? (spec.mode == lb::gen::Mode::NatReturn ? "SYN-ACKs" : "SYNs")
                                     : "first datagrams",
                     (unsigned long long)spec.opened_flows(), (unsigned long long)spec.extra_syns(),
                     (unsigned long long)bytes, secs, double(spec.packets) / secs / 1e6);
    }
    return 0;
}
