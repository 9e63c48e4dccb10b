// libFuzzer target: the frame parser (parse_frame) and the ICMP error quote parser
// (parse_icmp_quote) on arbitrary bytes. The input is the frame; libFuzzer hands it over in a
// heap buffer of exactly its size, so ASan sees any read past its end. Besides no crash and no
// out-of-bounds read, what the parser reports must lie inside the frame; the harness aborts
// when it does not.
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <netinet/in.h>

#include "dataplane/parse.hpp"

using namespace lb::dp;

namespace {

[[noreturn]] void fail(const char* what, long a, long b) {
    std::fprintf(stderr, "fuzz_parse: invariant violated: %s (%ld, %ld)\n", what, a, b);
    std::abort();
}

#define CHECK(cond, a, b)                  \
    do {                                   \
        if (!(cond)) {                     \
            fail(#cond, long(a), long(b)); \
        }                                  \
    } while (0)

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 65535) {
        return 0;  // an mbuf's data never holds more
    }
    const auto len = uint32_t(size);
    Parsed p;
    Drop why = Drop::Count;
    if (parse_frame(data, len, p, why) != ParseResult::Ok) {
        CHECK(why == Drop::Malformed || why == Drop::Unsupported || why == Drop::Fragment, int(why),
              len);
        return 0;
    }
    CHECK(p.l3_off == 14 && len >= 14, p.l3_off, len);
    if (p.l3 == L3::Arp) {
        CHECK(len >= 14 + 28, len, 0);
        return 0;
    }
    CHECK(p.ip_len >= 20 && p.l3_off + uint32_t(p.ip_len) <= len, p.ip_len, len);
    CHECK(p.l4_len <= p.ip_len - 20, p.l4_len, p.ip_len);
    if (p.l4_off != 0) {
        // The transport header starts right after the IPv4 header and ends with the packet.
        CHECK(p.l4_off >= p.l3_off + 20 && uint32_t(p.l4_off) + p.l4_len == p.l3_off + p.ip_len,
              p.l4_off, p.l4_len);
        if (p.proto == IPPROTO_TCP) {
            CHECK(p.l4_len >= 20, p.l4_len, 0);
        } else if (p.proto == IPPROTO_UDP || p.proto == IPPROTO_ICMP) {
            CHECK(p.l4_len >= 8, p.l4_len, p.proto);
        }
    }
    if (p.proto == IPPROTO_ICMP && p.l4_off != 0 && is_icmp_error(p.icmp_type)) {
        Quoted q;
        if (parse_icmp_quote(data, len, p, q)) {
            CHECK(q.ihl >= 20 && q.ip_off == p.l4_off + 8, q.ihl, q.ip_off);
            CHECK(q.l4_avail >= 8, q.l4_avail, 0);
            CHECK(uint32_t(q.ip_off) + q.ihl + q.l4_avail <= uint32_t(p.l3_off) + p.ip_len,
                  q.ip_off + q.ihl + q.l4_avail, p.ip_len);
        }
    }
    return 0;
}
