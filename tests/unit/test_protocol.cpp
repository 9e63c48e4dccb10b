// The control protocol codec and the control socket (server and client). lbctl's parser and
// listings are tested in test_lbctl.cpp.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "control/control_server.hpp"
#include "control/protocol.hpp"

using namespace lb::ctl;

namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

uint32_t ip(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
    return (a << 24) | (b << 16) | (c << 8) | d;
}

RealStatus real(uint32_t addr, uint16_t port, uint8_t fwd, uint32_t weight, uint64_t active,
                uint64_t inactive, std::array<uint64_t, 5> st) {
    RealStatus r;
    r.addr = addr;
    r.port = port;
    r.forward = fwd;
    r.weight = weight;
    r.active = active;
    r.inactive = inactive;
    r.conns = st[0];
    r.in_pkts = st[1];
    r.out_pkts = st[2];
    r.in_bytes = st[3];
    r.out_bytes = st[4];
    return r;
}

ServiceStatus service(uint8_t proto, uint32_t vip, uint16_t port, std::string sched,
                      uint32_t persistence, std::array<uint64_t, 5> st,
                      std::vector<RealStatus> reals) {
    ServiceStatus s;
    s.proto = proto;
    s.vip = vip;
    s.port = port;
    s.scheduler = std::move(sched);
    s.persistence = persistence;
    s.conns = st[0];
    s.in_pkts = st[1];
    s.out_pkts = st[2];
    s.in_bytes = st[3];
    s.out_bytes = st[4];
    s.reals = std::move(reals);
    return s;
}

// Services and reals deliberately out of ipvsadm's sort order.
Status sample_status() {
    Status s;
    s.conn_capacity = 1048576;
    s.services.push_back(service(17, ip(10, 0, 0, 2), 53, "rr", 0, {0, 0, 0, 0, 0},
                                 {real(ip(10, 1, 0, 1), 53, 1, 100, 0, 12345, {1, 1, 1, 1, 1})}));
    s.services.push_back(
        service(6, ip(10, 0, 0, 1), 443, "rr", 300, {5, 6, 7, 8, 9},
                {real(ip(172, 16, 0, 1), 443, 2, 65535, kU32Max, 1, {10, 20, 30, 40, 50})}));
    s.services.push_back(service(
        6, ip(10, 0, 0, 1), 80, "wrr", 0, {1000, 123456, 99999999, 100000000, 123456789012ULL},
        {real(ip(192, 168, 1, 10), 8081, 0, 0, 7, 0, {0, 0, 0, 0, 0}),
         real(ip(192, 168, 1, 10), 8080, 0, 1, 0, 0,
              {999, 1000000000ULL, 99999999999999ULL, 100000000000000ULL, kU64Max}),
         real(ip(192, 168, 1, 9), 8080, 0, 3, 12, 40, {1, 2, 3, 4, 5})}));
    return s;
}

Status extreme_status() {
    Status s;
    s.conn_capacity = kU32Max;
    s.services.push_back(service(6, kU32Max, 65535, std::string(kMaxString, 'x'), kU32Max,
                                 {kU64Max, kU64Max, kU64Max, kU64Max, kU64Max},
                                 {real(kU32Max, 65535, 2, kU32Max, kU64Max, kU64Max,
                                       {kU64Max, kU64Max, kU64Max, kU64Max, kU64Max}),
                                  real(0, 0, 0, 0, 0, 0, {0, 0, 0, 0, 0})}));
    s.services.push_back(service(17, 0, 0, "", 0, {0, 0, 0, 0, 0}, {}));  // no reals
    return s;
}

bool same_real(const RealStatus& a, const RealStatus& b) {
    return a.addr == b.addr && a.port == b.port && a.forward == b.forward &&
           a.weight == b.weight && a.active == b.active && a.inactive == b.inactive &&
           a.persist == b.persist &&
           a.conns == b.conns && a.in_pkts == b.in_pkts && a.out_pkts == b.out_pkts &&
           a.in_bytes == b.in_bytes && a.out_bytes == b.out_bytes;
}

void check_same(const Status& a, const Status& b) {
    REQUIRE(a.conn_capacity == b.conn_capacity);
    REQUIRE(a.services.size() == b.services.size());
    for (size_t i = 0; i < a.services.size(); ++i) {
        const ServiceStatus& x = a.services[i];
        const ServiceStatus& y = b.services[i];
        CHECK(x.proto == y.proto);
        CHECK(x.vip == y.vip);
        CHECK(x.port == y.port);
        CHECK(x.scheduler == y.scheduler);
        CHECK(x.persistence == y.persistence);
        CHECK(x.persist_mask == y.persist_mask);
        CHECK(x.sched_flags == y.sched_flags);
        CHECK(x.conns == y.conns);
        CHECK(x.in_pkts == y.in_pkts);
        CHECK(x.out_pkts == y.out_pkts);
        CHECK(x.in_bytes == y.in_bytes);
        CHECK(x.out_bytes == y.out_bytes);
        REQUIRE(x.reals.size() == y.reals.size());
        for (size_t j = 0; j < x.reals.size(); ++j) {
            CHECK(same_real(x.reals[j], y.reals[j]));
        }
    }
}

std::vector<uint8_t> header(uint32_t magic, uint16_t version, uint16_t type, uint32_t len) {
    std::vector<uint8_t> h;
    for (int i = 0; i < 4; ++i) {
        h.push_back(uint8_t(magic >> (8 * i)));
    }
    h.push_back(uint8_t(version));
    h.push_back(uint8_t(version >> 8));
    h.push_back(uint8_t(type));
    h.push_back(uint8_t(type >> 8));
    for (int i = 0; i < 4; ++i) {
        h.push_back(uint8_t(len >> (8 * i)));
    }
    return h;
}

void put_u32(std::vector<uint8_t>& v, uint32_t x) {
    for (int i = 0; i < 4; ++i) {
        v.push_back(uint8_t(x >> (8 * i)));
    }
}

// Any outcome but a decoded value or a ProtocolError fails the test (and UB trips the sanitizers).
template <typename F>
void decodes_or_rejects(F&& f) {
    try {
        f();
    } catch (const ProtocolError&) {
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Codec

TEST_CASE("status round trip: several services, max values, empty lists", "[protocol]") {
    for (const Status& s : {sample_status(), extreme_status(), Status{}}) {
        const std::vector<uint8_t> payload = encode_status(s);
        check_same(decode_status(payload), s);
        const std::vector<uint8_t> frame = encode_frame(MsgType::Status, payload);
        const Frame f = decode_frame(frame.data(), frame.size());
        CHECK(f.type == MsgType::Status);
        CHECK(f.payload == payload);
    }
}

TEST_CASE("frame header layout is LBC1, version, type, length, little-endian", "[protocol]") {
    const std::vector<uint8_t> frame = encode_frame(MsgType::Status, {0xaa, 0xbb});
    const std::vector<uint8_t> expect = {'L', 'B', 'C', '1', 3, 0, 101, 0, 2, 0, 0, 0, 0xaa, 0xbb};
    CHECK(frame == expect);
    const auto [type, len] = decode_header(frame.data(), frame.size());
    CHECK(type == MsgType::Status);
    CHECK(len == 2);
    // An empty payload is a whole frame.
    const std::vector<uint8_t> empty = encode_frame(MsgType::GetStatus, {});
    CHECK(empty.size() == kFrameHeader);
    CHECK(decode_frame(empty.data(), empty.size()).payload.empty());
}

TEST_CASE("every truncation of a valid frame and payload is rejected", "[protocol]") {
    const std::vector<uint8_t> payload = encode_status(sample_status());
    const std::vector<uint8_t> frame = encode_frame(MsgType::Status, payload);
    for (size_t n = 0; n < frame.size(); ++n) {
        INFO("frame length " << n);
        CHECK_THROWS_AS(decode_frame(frame.data(), n), ProtocolError);
    }
    for (size_t n = 0; n < payload.size(); ++n) {
        INFO("payload length " << n);
        const std::vector<uint8_t> cut(payload.begin(), payload.begin() + long(n));
        CHECK_THROWS_AS(decode_status(cut), ProtocolError);
    }
    const std::vector<uint8_t> str = encode_string("hello");
    for (size_t n = 0; n < str.size(); ++n) {
        const std::vector<uint8_t> cut(str.begin(), str.begin() + long(n));
        CHECK_THROWS_AS(decode_string(cut), ProtocolError);
    }
    CHECK_THROWS_AS(decode_header(nullptr, 0), ProtocolError);
}

TEST_CASE("trailing bytes are rejected", "[protocol]") {
    std::vector<uint8_t> payload = encode_status(sample_status());
    payload.push_back(0);
    CHECK_THROWS_WITH(decode_status(payload), Catch::Contains("1 trailing bytes"));
    std::vector<uint8_t> frame = encode_frame(MsgType::Status, encode_status(sample_status()));
    frame.push_back(0);
    CHECK_THROWS_AS(decode_frame(frame.data(), frame.size()), ProtocolError);
    std::vector<uint8_t> str = encode_string("x");
    str.push_back('y');
    CHECK_THROWS_AS(decode_string(str), ProtocolError);
}

TEST_CASE("bad magic, unknown version and oversized payloads are rejected", "[protocol]") {
    const auto bad_magic = header(0x3243424c, kProtoVersion, 1, 0);  // "LBC2"
    CHECK_THROWS_WITH(decode_header(bad_magic.data(), bad_magic.size()),
                      Catch::Contains("bad magic"));
    const auto bad_version = header(kProtoMagic, 1, 1, 0);
    CHECK_THROWS_WITH(decode_header(bad_version.data(), bad_version.size()),
                      Catch::Contains("version 1"));
    const auto max = header(kProtoMagic, kProtoVersion, 1, kMaxPayload);
    CHECK(decode_header(max.data(), max.size()).second == kMaxPayload);
    const auto over = header(kProtoMagic, kProtoVersion, 1, kMaxPayload + 1);
    CHECK_THROWS_WITH(decode_header(over.data(), over.size()), Catch::Contains("exceeds"));
    const auto huge = header(kProtoMagic, kProtoVersion, 1, kU32Max);
    CHECK_THROWS_AS(decode_header(huge.data(), huge.size()), ProtocolError);
    CHECK_THROWS_AS(encode_frame(MsgType::Status, std::vector<uint8_t>(kMaxPayload + 1)),
                    ProtocolError);
    // Unknown types are the receiver's business, not the codec's.
    const auto unknown = header(kProtoMagic, kProtoVersion, 4242, 0);
    CHECK(uint16_t(decode_header(unknown.data(), unknown.size()).first) == 4242);
}

TEST_CASE("absurd counts, long strings and unknown enums are rejected", "[protocol]") {
    SECTION("service count larger than the payload could hold") {
        std::vector<uint8_t> p;
        for (int i = 0; i < 4; ++i) {
            put_u32(p, 100);  // capacity and the three timeouts
        }
        put_u32(p, kU32Max);
        CHECK_THROWS_WITH(decode_status(p), Catch::Contains("cannot fit"));
    }
    SECTION("real count larger than the payload could hold") {
        Status s;
        s.services.push_back(service(6, 1, 80, "rr", 0, {0, 0, 0, 0, 0}, {}));
        std::vector<uint8_t> p = encode_status(s);
        for (int i = 1; i <= 4; ++i) {
            p[p.size() - size_t(i)] = 0xff;  // the service's real count, the last field
        }
        CHECK_THROWS_WITH(decode_status(p), Catch::Contains("cannot fit"));
    }
    SECTION("strings longer than the limit") {
        std::vector<uint8_t> p;
        put_u32(p, kMaxString + 1);
        p.resize(p.size() + kMaxString + 1, 'a');
        CHECK_THROWS_WITH(decode_string(p), Catch::Contains("exceeds the limit"));
        CHECK_THROWS_AS(encode_string(std::string(kMaxString + 1, 'a')), ProtocolError);
        CHECK(decode_string(encode_string(std::string(kMaxString, 'a'))).size() == kMaxString);
        Status s;
        s.services.push_back(service(6, 1, 80, std::string(kMaxString + 1, 'r'), 0, {}, {}));
        CHECK_THROWS_AS(encode_status(s), ProtocolError);
    }
    SECTION("unknown protocol or forward method") {
        Status s;
        s.services.push_back(service(1, 1, 80, "rr", 0, {}, {}));
        CHECK_THROWS_WITH(decode_status(encode_status(s)), Catch::Contains("protocol 1"));
        s.services[0].proto = 17;
        s.services[0].reals.push_back(real(2, 80, 3, 1, 0, 0, {}));
        CHECK_THROWS_WITH(decode_status(encode_status(s)), Catch::Contains("forward method 3"));
    }
}

TEST_CASE("random and mutated bytes either decode or throw ProtocolError", "[protocol]") {
    std::mt19937_64 rng(20240611);
    const std::vector<uint8_t> valid = encode_status(sample_status());
    const std::vector<uint8_t> valid_frame = encode_frame(MsgType::Status, valid);
    size_t decoded = 0;
    for (int iter = 0; iter < 4000; ++iter) {
        std::vector<uint8_t> buf;
        switch (iter % 4) {
            case 0: {  // pure noise
                buf.resize(rng() % 600);
                for (uint8_t& b : buf) {
                    b = uint8_t(rng());
                }
                break;
            }
            case 1:  // a valid payload with a few bytes changed and a random cut
            case 2: {
                buf = iter % 4 == 1 ? valid : valid_frame;
                for (int k = int(rng() % 4) + 1; k > 0; --k) {
                    buf[rng() % buf.size()] = uint8_t(rng());
                }
                if (rng() % 2 == 0) {
                    buf.resize(rng() % (buf.size() + 1));
                }
                break;
            }
            default: {  // a plausible prefix: small counts, then noise
                put_u32(buf, uint32_t(rng()));
                put_u32(buf, uint32_t(rng() % 4));
                buf.push_back(rng() % 2 == 0 ? 6 : 17);
                const size_t tail = rng() % 400;
                for (size_t i = 0; i < tail; ++i) {
                    buf.push_back(uint8_t(rng() % 3 == 0 ? rng() : 0));
                }
                break;
            }
        }
        decodes_or_rejects([&] {
            decode_status(buf);
            ++decoded;
        });
        decodes_or_rejects([&] { decode_string(buf); });
        decodes_or_rejects([&] { decode_frame(buf.data(), buf.size()); });
        decodes_or_rejects([&] { decode_header(buf.data(), buf.size()); });
    }
    CHECK(decoded > 0);  // the mutations do reach the end of the decoder sometimes
}

// ---------------------------------------------------------------------------------------------
// Control socket

namespace {

struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/lb-ctl-test-XXXXXX";
        const char* p = ::mkdtemp(tmpl);
        REQUIRE(p != nullptr);
        path = p;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

Frame status_request() {
    Frame f;
    f.type = MsgType::GetStatus;
    return f;
}

Frame handle(const Frame& req) {
    if (req.type == MsgType::GetStatus) {
        return Frame{MsgType::Status, encode_status(sample_status())};
    }
    if (uint16_t(req.type) == 77) {
        throw std::runtime_error("boom");
    }
    return Frame{MsgType::Error, encode_string("unknown request")};
}

// Runs a ControlServer's poll loop in a thread for the lifetime of the object.
class ServerThread {
public:
    explicit ServerThread(const std::string& path) : server_(path) {
        thread_ = std::thread([this] {
            while (!stop_.load()) {
                server_.poll(20, handle);
            }
        });
    }
    ~ServerThread() {
        stop_ = true;
        thread_.join();
    }
    ServerThread(const ServerThread&) = delete;
    ServerThread& operator=(const ServerThread&) = delete;

private:
    ControlServer server_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

sockaddr_un unix_addr(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.data(), path.size());
    return a;
}

// A blocking raw client with a receive timeout, for speaking garbage to the server.
int connect_raw(const std::string& path, int rcv_timeout_s = 3) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    const sockaddr_un a = unix_addr(path);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0);
    timeval tv{rcv_timeout_s, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

void send_all(int fd, const std::vector<uint8_t>& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size()));
}

// Reads n bytes; false on EOF or reset (what a closed connection looks like).
bool recv_exact(int fd, uint8_t* buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        const ssize_t r = ::recv(fd, buf + got, n - got, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            REQUIRE((r == 0 || errno == ECONNRESET));  // not a timeout
            return false;
        }
        got += size_t(r);
    }
    return true;
}

std::optional<Frame> read_frame(int fd) {
    uint8_t hdr[kFrameHeader];
    if (!recv_exact(fd, hdr, sizeof(hdr))) {
        return std::nullopt;
    }
    const auto [type, len] = decode_header(hdr, sizeof(hdr));
    Frame f;
    f.type = type;
    f.payload.resize(len);
    if (!recv_exact(fd, f.payload.data(), len)) {
        return std::nullopt;
    }
    return f;
}

bool closed_by_peer(int fd) {
    uint8_t b;
    return !recv_exact(fd, &b, 1);
}

void expect_status_reply(const std::string& path) {
    const Frame reply = request(path, status_request());
    REQUIRE(reply.type == MsgType::Status);
    check_same(decode_status(reply.payload), sample_status());
}

}  // namespace

TEST_CASE("control socket answers a request", "[protocol]") {
    TempDir dir;
    const std::string path = dir.path + "/lb.sock";
    ServerThread srv(path);
    expect_status_reply(path);
    expect_status_reply(path);

    SECTION("a handler exception becomes an Error frame") {
        Frame req;
        req.type = MsgType(77);
        const Frame reply = request(path, req);
        REQUIRE(reply.type == MsgType::Error);
        CHECK(decode_string(reply.payload) == "boom");
        expect_status_reply(path);
    }
    SECTION("pipelined requests and a half-closed client each get their reply") {
        const int fd = connect_raw(path);
        std::vector<uint8_t> two = encode_frame(MsgType::GetStatus, {});
        const std::vector<uint8_t> second = encode_frame(MsgType::GetStatus, {});
        two.insert(two.end(), second.begin(), second.end());
        send_all(fd, two);
        ::shutdown(fd, SHUT_WR);
        for (int i = 0; i < 2; ++i) {
            const auto f = read_frame(fd);
            REQUIRE(f.has_value());
            CHECK(f->type == MsgType::Status);
        }
        CHECK(closed_by_peer(fd));
        ::close(fd);
    }
}

TEST_CASE("control socket: hostile clients get an error and are closed", "[protocol]") {
    TempDir dir;
    const std::string path = dir.path + "/lb.sock";
    ServerThread srv(path);

    struct Case {
        const char* name;
        std::vector<uint8_t> bytes;
        const char* error;
    };
    const std::string text = "GET / HTTP/1.0\r\n\r\n";
    const std::vector<Case> cases = {
        {"garbage", std::vector<uint8_t>(text.begin(), text.end()), "bad magic"},
        {"unknown version", header(kProtoMagic, 9, 1, 0), "version 9"},
        {"oversized payload", header(kProtoMagic, kProtoVersion, 1, kMaxPayload + 1), "exceeds"},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const int fd = connect_raw(path);
        send_all(fd, c.bytes);
        const auto f = read_frame(fd);
        REQUIRE(f.has_value());
        CHECK(f->type == MsgType::Error);
        CHECK_THAT(decode_string(f->payload), Catch::Contains(c.error));
        CHECK(closed_by_peer(fd));
        ::close(fd);
        expect_status_reply(path);  // and the server keeps answering good clients
    }

    SECTION("a client that closes mid-frame is dropped") {
        const int fd = connect_raw(path);
        const std::vector<uint8_t> hdr = header(kProtoMagic, kProtoVersion, 1, 100);
        send_all(fd, hdr);
        ::shutdown(fd, SHUT_WR);
        const auto f = read_frame(fd);
        REQUIRE(f.has_value());
        CHECK_THAT(decode_string(f->payload), Catch::Contains("truncated"));
        ::close(fd);
        expect_status_reply(path);
    }
    SECTION("at most 64 clients: the 65th closes the one idle the longest") {
        std::vector<int> idle;
        for (int i = 0; i < 64; ++i) {
            idle.push_back(connect_raw(path));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));  // all 64 accepted
        const int extra = connect_raw(path);
        CHECK(closed_by_peer(idle.front()));
        send_all(extra, encode_frame(MsgType::GetStatus, {}));
        const auto f = read_frame(extra);
        REQUIRE(f.has_value());
        CHECK(f->type == MsgType::Status);
        ::close(extra);
        for (const int fd : idle) {
            ::close(fd);
        }
        expect_status_reply(path);
    }
}

TEST_CASE("control socket: 300 idle clients do not keep lbctl out", "[protocol]") {
    TempDir dir;
    const std::string path = dir.path + "/lb.sock";
    ServerThread srv(path);
    std::vector<int> idle;
    for (int i = 0; i < 300; ++i) {
        idle.push_back(connect_raw(path));
    }
    // Half-sent requests count as busier than idle ones, but they do not hold their slots
    // either when everything else is taken.
    for (int i = 0; i < 100; ++i) {
        idle.push_back(connect_raw(path));
        send_all(idle.back(), {'L', 'B'});
    }
    for (int round = 0; round < 5; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        const Frame reply = request(path, status_request(), 1000);
        CHECK(reply.type == MsgType::Status);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
        idle.push_back(connect_raw(path));  // and more keep coming
    }
    for (const int fd : idle) {
        ::close(fd);
    }
}

TEST_CASE("control socket: idle and slow clients are closed after 2 s", "[protocol][slow]") {
    TempDir dir;
    const std::string path = dir.path + "/lb.sock";
    ServerThread srv(path);
    const auto start = std::chrono::steady_clock::now();
    const int idle = connect_raw(path, 10);
    const int partial = connect_raw(path, 10);
    send_all(partial, {'L', 'B', 'C'});
    expect_status_reply(path);  // neither blocks the server
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    send_all(partial, {'1'});  // a byte now and then does not extend the deadline
    CHECK(closed_by_peer(partial));
    const auto waited = std::chrono::steady_clock::now() - start;
    CHECK(waited >= std::chrono::milliseconds(1800));
    CHECK(waited < std::chrono::milliseconds(3500));
    CHECK(closed_by_peer(idle));
    ::close(idle);
    ::close(partial);
}

TEST_CASE("control socket file: directory, mode, stale file, second instance", "[protocol]") {
    TempDir dir;
    const std::string path = dir.path + "/run/lb/lb.sock";

    SECTION("missing directories are created 0755, the socket is 0600 and removed at exit") {
        const mode_t old = ::umask(077);
        std::optional<ControlServer> srv;
        srv.emplace(path);
        ::umask(old);
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK(S_ISSOCK(st.st_mode));
        CHECK((st.st_mode & 07777) == 0600);
        REQUIRE(::stat((dir.path + "/run/lb").c_str(), &st) == 0);
        CHECK((st.st_mode & 07777) == 0755);
        CHECK(srv->path() == path);
        srv.reset();
        CHECK_FALSE(std::filesystem::exists(path));
    }
    SECTION("a stale socket file is replaced") {
        std::filesystem::create_directories(dir.path + "/run/lb");
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        const sockaddr_un a = unix_addr(path);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0);
        ::close(fd);  // the file stays, nobody listens: a crashed lb's leftover
        REQUIRE(std::filesystem::is_socket(path));
        ServerThread srv(path);
        expect_status_reply(path);
    }
    SECTION("a live socket is not stolen") {
        ServerThread first(path);
        CHECK_THROWS_WITH(ControlServer(path),
                          Catch::Equals("another lb is already listening on " + path));
        expect_status_reply(path);  // the first one's socket is still there
    }
    SECTION("a file that is not a socket is left alone") {
        std::filesystem::create_directories(dir.path + "/run/lb");
        std::ofstream(path) << "precious";
        CHECK_THROWS_WITH(ControlServer(path), Catch::Contains("not a socket"));
        std::ifstream in(path);
        std::string content;
        in >> content;
        CHECK(content == "precious");
    }
    SECTION("a path too long for sun_path is refused with its name") {
        const std::string longpath = dir.path + "/" + std::string(120, 'x');
        CHECK_THROWS_WITH(ControlServer(longpath), Catch::Contains("too long"));
    }
}

TEST_CASE("request() reports failures clearly", "[protocol]") {
    TempDir dir;
    const std::string path = dir.path + "/lb.sock";

    SECTION("nobody there") {
        CHECK_THROWS_WITH(request(path, status_request()),
                          Catch::Equals("cannot connect to " + path +
                                        ": No such file or directory (is lb running?)"));
    }
    SECTION("a server that never answers") {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        const sockaddr_un a = unix_addr(path);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0);
        REQUIRE(::listen(fd, 4) == 0);
        CHECK_THROWS_WITH(request(path, status_request(), 200),
                          Catch::Contains("timed out after 200 ms"));
        ::close(fd);
    }
    SECTION("a server that hangs up or answers garbage") {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        const sockaddr_un a = unix_addr(path);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0);
        REQUIRE(::listen(fd, 4) == 0);
        std::thread peer([fd] {
            // Each time: take the request, then misbehave.
            auto next = [fd] {
                const int c = ::accept(fd, nullptr, nullptr);
                uint8_t req[kFrameHeader];
                (void)!::recv(c, req, sizeof(req), MSG_WAITALL);
                return c;
            };
            int c = next();
            ::close(c);  // hang up
            c = next();
            const char junk[] = "HTTP/1.0 200 OK\r\n\r\n";
            (void)!::send(c, junk, sizeof(junk), MSG_NOSIGNAL);
            ::close(c);
            c = next();
            const std::vector<uint8_t> h = header(kProtoMagic, kProtoVersion, 101, 10);
            (void)!::send(c, h.data(), h.size(), MSG_NOSIGNAL);
            (void)!::send(c, "abc", 3, MSG_NOSIGNAL);
            ::close(c);
        });
        CHECK_THROWS_WITH(request(path, status_request()), Catch::Contains("closed the connection"));
        CHECK_THROWS_WITH(request(path, status_request()),
                          Catch::StartsWith("bad reply from " + path) &&
                              Catch::Contains("bad magic"));
        CHECK_THROWS_WITH(request(path, status_request()),
                          Catch::Contains("truncated reply") && Catch::Contains("got 15 of 22"));
        peer.join();
        ::close(fd);
    }
}

TEST_CASE("protocol v2: operations, connections and workers round-trip", "[protocol]") {
    std::vector<Op> ops(3);
    ops[0].kind = OpKind::AddService;
    ops[0].has_service = true;
    ops[0].proto = 17;
    ops[0].vip = 0xC633640A;
    ops[0].port = 53;
    ops[0].scheduler = "sh";
    ops[0].sched_flags = "sh-port";
    ops[0].persistence = 300;
    ops[0].persist_mask = 0xFFFFFF00;
    ops[1].kind = OpKind::AddReal;
    ops[1].has_service = true;
    ops[1].vip = 1;
    ops[1].port = 80;
    ops[1].real_addr = 0x0A0A0002;
    ops[1].real_port = 8080;
    ops[1].forward = 1;
    ops[1].weight = 65535;
    ops[1].u_threshold = 100;
    ops[1].l_threshold = 50;
    ops[2].kind = OpKind::SetTimeout;
    ops[2].tcp = 900;
    ops[2].tcpfin = 120;
    ops[2].udp = 300;
    const std::vector<Op> back = decode_ops(encode_ops(ops));
    REQUIRE(back.size() == 3);
    CHECK(back[0].kind == OpKind::AddService);
    CHECK(back[0].proto == 17);
    CHECK(back[0].sched_flags == "sh-port");
    CHECK(back[0].persist_mask == 0xFFFFFF00);
    CHECK(back[1].real_port == 8080);
    CHECK(back[1].forward == 1);
    CHECK(back[1].u_threshold == 100);
    CHECK(back[1].l_threshold == 50);
    CHECK(back[2].udp == 300);

    Connections c;
    c.total = 7;
    ConnEntry e;
    e.proto = 6;
    e.client = 1;
    e.vip = 2;
    e.real = 3;
    e.cport = 4;
    e.vport = 5;
    e.rport = 6;
    e.state = "ESTABLISHED";
    e.expire_s = 899;
    c.entries = {e, e};
    c.entries[1].is_template = true;
    const Connections cb = decode_connections(encode_connections(c));
    CHECK(cb.total == 7);
    REQUIRE(cb.entries.size() == 2);
    CHECK(cb.entries[0].state == "ESTABLISHED");
    CHECK(cb.entries[1].is_template);
    CHECK(cb.entries[0].rport == 6);

    Workers ws;
    ws.mbufs_total = 65535;
    ws.mbufs_in_use = 1024;
    WorkerStatus w;
    w.lcore = 1;
    w.rx = 10;
    w.drops = {{"no_service", 3}, {"malformed", 0}};
    w.counters = {{"arp_replies", 2}};
    ws.workers = {w};
    const Workers wb = decode_workers(encode_workers(ws));
    REQUIRE(wb.workers.size() == 1);
    CHECK(wb.mbufs_in_use == 1024);
    CHECK(wb.workers[0].drops == w.drops);
    CHECK(wb.workers[0].counters == w.counters);
}

TEST_CASE("protocol v2: malformed operations are refused", "[protocol]") {
    std::vector<Op> ops(1);
    ops[0].kind = OpKind::AddReal;
    ops[0].has_service = true;
    std::vector<uint8_t> good = encode_ops(ops);
    for (size_t cut = 0; cut < good.size(); ++cut) {
        CHECK_THROWS_AS(decode_ops(std::vector<uint8_t>(good.begin(), good.begin() + long(cut))),
                        ProtocolError);
    }
    auto bad = good;
    bad[4] = 99;  // unknown operation kind
    CHECK_THROWS_WITH(decode_ops(bad), Catch::Contains("unknown operation 99"));
    bad = good;
    bad[6] = 1;  // protocol 1 with a service
    CHECK_THROWS_WITH(decode_ops(bad), Catch::Contains("protocol"));
    bad = good;
    bad.push_back(0);
    CHECK_THROWS_WITH(decode_ops(bad), Catch::Contains("trailing"));
    std::vector<uint8_t> huge = {0xff, 0xff, 0xff, 0x7f};
    CHECK_THROWS_WITH(decode_ops(huge), Catch::Contains("cannot fit"));
}

TEST_CASE("protocol v3: the Workers reply carries the ports' statistics", "[protocol]") {
    Workers ws;
    ws.mbufs_total = 8191;
    ws.mbufs_in_use = 77;
    WorkerStatus w;
    w.lcore = 1;
    w.drops = {{"no_mbuf", 4}};
    ws.workers = {w};
    PortStatus p;
    p.port = 1;
    p.name = "net_af_packet1";
    p.ipackets = 1;
    p.opackets = 2;
    p.ibytes = 3;
    p.obytes = 4;
    p.imissed = 5;
    p.ierrors = 6;
    p.rx_nombuf = 7;
    p.oerrors = 8;
    p.rx_ring_drops = 9;
    ws.ports = {p, PortStatus{}};
    ws.ports[1].rx_ring_drops = UINT64_MAX;
    const std::vector<uint8_t> good = encode_workers(ws);
    const Workers back = decode_workers(good);
    REQUIRE(back.ports.size() == 2);
    const PortStatus& b = back.ports[0];
    CHECK(b.port == 1);
    CHECK(b.name == "net_af_packet1");
    CHECK((std::vector<uint64_t>{b.ipackets, b.opackets, b.ibytes, b.obytes, b.imissed, b.ierrors,
                                 b.rx_nombuf, b.oerrors, b.rx_ring_drops}) ==
          std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9});
    CHECK(b.rx_lost() == 5 + 6 + 7 + 9);
    CHECK(back.ports[1].rx_ring_drops == UINT64_MAX);
    CHECK(back.ports[1].name.empty());
    CHECK(encode_workers(back) == good);

    // Every truncation is refused, and so is a byte too many.
    for (size_t cut = 0; cut < good.size(); ++cut) {
        CHECK_THROWS_AS(
            decode_workers(std::vector<uint8_t>(good.begin(), good.begin() + long(cut))),
            ProtocolError);
    }
    auto extra = good;
    extra.push_back(0);
    CHECK_THROWS_WITH(decode_workers(extra), Catch::Contains("trailing"));

    // The port count sits after the workers: a count the bytes cannot hold, and one over the
    // limit of kMaxPortEntries, are refused before anything is allocated.
    Workers none;
    std::vector<uint8_t> bare = encode_workers(none);  // 8 + 8 + 4 (workers) + 4 (ports)
    REQUIRE(bare.size() == 24);
    bare[20] = 0xff;
    bare[21] = 0xff;
    bare[22] = 0xff;
    bare[23] = 0x7f;
    CHECK_THROWS_WITH(decode_workers(bare), Catch::Contains("cannot fit"));
    Workers many;
    many.ports.resize(kMaxPortEntries + 1);
    CHECK_THROWS_WITH(decode_workers(encode_workers(many)), Catch::Contains("at most 1024"));
    many.ports.resize(kMaxPortEntries);
    CHECK(decode_workers(encode_workers(many)).ports.size() == kMaxPortEntries);

    // A version-2 peer is told which version this side speaks.
    const auto v2 = header(kProtoMagic, 2, uint16_t(MsgType::Workers), 0);
    CHECK_THROWS_WITH(decode_header(v2.data(), v2.size()),
                      Catch::Contains("unsupported protocol version 2 (this side speaks 3)"));
}
