// libFuzzer target: the control protocol and the control socket server.
//   1. decode_request and decode_reply on the input (less its first byte) as one line. They
//      return or throw ProtocolError, nothing else. What decodes encodes to one line of JSON
//      (nlohmann accepts it) that decodes again and encodes to the same bytes.
//   2. A real ControlServer on a UNIX socket in a temporary directory gets the same bytes from a
//      client, sent in chunks of a size the first byte picks, with server polls in between;
//      then the client shuts down its sending side (or, with bit 5 of the first byte, stays
//      connected and idle). The server must have answered with whole reply lines that decode
//      (and, to a request that began with "LBC1", one binary Error frame) and closed the
//      connection within a deadline, and must answer a good request on a new connection
//      afterwards, even while the first client sits idle.
// The harness aborts on any broken expectation; a hang shows as the deadline's abort.
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>

#include "control/control_server.hpp"
#include "control/protocol.hpp"

using namespace lb::ctl;

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(3);

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "fuzz_protocol: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

// ---- 1. the codec --------------------------------------------------------------------------

template <typename Variant>
void round_trip(const char* name, std::string_view line, Variant (*decode)(std::string_view)) {
    Variant x;
    try {
        x = decode(line);
    } catch (const ProtocolError&) {
        return;
    }
    auto enc = [](const Variant& v) { return std::visit([](const auto& m) { return encode(m); }, v); };
    const std::string e1 = enc(x);  // what decodes must encode: no exception expected here
    if (e1.empty() || e1.back() != '\n' || e1.find('\n') != e1.size() - 1) {
        fail(std::string(name) + ": an encoding that is not one line");
    }
    const std::string_view l1 = std::string_view(e1).substr(0, e1.size() - 1);
    if (!nlohmann::json::accept(l1)) {
        fail(std::string(name) + ": an encoding that is not JSON");
    }
    if (enc(decode(l1)) != e1) {
        fail(std::string(name) + ": encoding is not stable over a decode");
    }
}

void fuzz_codec(const uint8_t* data, size_t size) {
    const std::string_view line(reinterpret_cast<const char*>(data), size);
    round_trip("request", line, decode_request);
    round_trip("reply", line, decode_reply);
}

// ---- 2. the server -------------------------------------------------------------------------

Status sample_status() {
    Status s;
    s.conn_capacity = 1048576;
    s.tcp_timeout = 900;
    s.tcpfin_timeout = 120;
    s.udp_timeout = 300;
    ServiceStatus svc;
    svc.vip = 0xc6336400 + 10;
    svc.port = 80;
    svc.scheduler = "rr";
    RealStatus r;
    r.addr = 0x0a0a0002;
    r.port = 80;
    svc.reals.push_back(r);
    r.addr = 0x0a0a0003;
    svc.reals.push_back(r);
    s.services.push_back(svc);
    return s;
}

// Answers like lb's control thread, from fixed data; the listing comes in three batches.
Answer handle(const Request& req) {
    if (std::holds_alternative<GetStatus>(req)) {
        return {encode(sample_status()), nullptr};
    }
    if (const auto* apply = std::get_if<Apply>(&req)) {
        return {encode(Ok{std::to_string(apply->ops.size()) + " operations"}), nullptr};
    }
    if (std::holds_alternative<GetConnections>(req)) {
        auto left = std::make_shared<int>(3);
        return {encode(ConnsBegin{3}), [left](std::string& out) {
                    if (*left == 0) {
                        encode_to(out, ConnsEnd{3});
                        return false;
                    }
                    encode_to(out, ConnEntry{6, false, 1, 2, 3, 4, 5, 6, 0, "ESTABLISHED", 10});
                    --*left;
                    return true;
                }};
    }
    if (std::holds_alternative<GetWorkers>(req)) {
        Workers w;
        w.workers.push_back(WorkerStatus{1, 2, 3, 4, 5, 6, 7, 8, 9, {{"a", 1}}, {{"b", 2}}});
        return {encode(w), nullptr};
    }
    if (const auto* wc = std::get_if<WriteConfig>(&req)) {
        return {encode(Ok{"wrote " + wc->path.substr(0, 100)}), nullptr};
    }
    return {encode(Error{"reload: not here"}), nullptr};
}

std::string g_dir;
std::unique_ptr<ControlServer> g_server;

void cleanup() {
    g_server.reset();
    if (!g_dir.empty()) {
        ::rmdir(g_dir.c_str());
    }
}

void serve(int timeout_ms) { g_server->poll(timeout_ms, handle); }

int connect_client() {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fail(std::string("socket: ") + std::strerror(errno));
    }
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", g_server->path().c_str());
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        fail(std::string("connect: ") + std::strerror(errno));
    }
    return fd;
}

// Reads what is there without waiting; true once the server has closed the connection.
bool read_some(int fd, std::string& got) {
    char buf[65536];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            got.append(buf, size_t(n));
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            return true;
        }
        return false;
    }
}

// The binary Error frame an lbctl of protocol 1 to 3 gets, and nothing after it.
void check_legacy_reply(const std::string& got, const char* who) {
    if (got.size() < 16 || got.compare(0, 4, kLegacyMagic) != 0 ||
        uint8_t(got[6]) != 199 || got[7] != 0) {
        fail(std::string(who) + ": a client of the binary protocol got no Error frame");
    }
    const uint32_t len = uint32_t(uint8_t(got[8])) | uint32_t(uint8_t(got[9])) << 8 |
                         uint32_t(uint8_t(got[10])) << 16 | uint32_t(uint8_t(got[11])) << 24;
    if (got.size() != 12 + size_t(len)) {
        fail(std::string(who) + ": the Error frame's length is not what was sent");
    }
}

// The replies a client got: whole lines that decode as replies, nothing left over but the
// Error frame of a request that began with "LBC1".
void check_replies(const std::string& got, const char* who) {
    size_t off = 0;
    while (off < got.size()) {
        if (got.compare(off, kLegacyMagic.size(), kLegacyMagic) == 0) {
            check_legacy_reply(got.substr(off), who);
            return;
        }
        const size_t nl = got.find('\n', off);
        if (nl == std::string::npos) {
            fail(std::string(who) + ": the server sent a line without its end");
        }
        try {
            decode_reply(std::string_view(got).substr(off, nl - off));
        } catch (const ProtocolError& e) {
            fail(std::string(who) + ": the server sent a bad line: " + e.what());
        }
        off = nl + 1;
    }
}

// Sends `in` in chunks, polling the server in between; then shuts the sending side down
// (unless `stay`) and waits for the server to close. Returns what the client received.
std::string exchange(int fd, const std::string& in, size_t chunk, bool stay, const char* who) {
    const auto deadline = Clock::now() + kDeadline;
    std::string got;
    size_t sent = 0;
    bool shut = false;
    for (;;) {
        if (Clock::now() > deadline) {
            fail(std::string(who) + ": the server did not finish with the client in time");
        }
        if (sent < in.size()) {
            const ssize_t n = ::send(fd, in.data() + sent, std::min(chunk, in.size() - sent),
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                sent += size_t(n);
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                sent = in.size();  // the server closed the connection (after a bad request)
            }
        } else if (stay) {
            serve(0);
            read_some(fd, got);
            return got;
        } else if (!shut) {
            ::shutdown(fd, SHUT_WR);
            shut = true;
        }
        serve(sent < in.size() ? 0 : 1);
        if (read_some(fd, got)) {
            return got;
        }
    }
}

void good_request(const char* who) {
    const int fd = connect_client();
    const std::string got = exchange(fd, encode(GetStatus{}), 1 << 16, false, who);
    ::close(fd);
    if (got != encode(sample_status())) {
        fail(std::string(who) + ": a good request did not get its answer (" +
             std::to_string(got.size()) + " bytes back)");
    }
}

void fuzz_server(uint8_t mode, const uint8_t* data, size_t size) {
    const size_t chunk = (mode & 15) == 0 ? size_t(1) << 20 : size_t(1) << ((mode & 15) - 1);
    const bool stay = (mode & 0x20) != 0;
    const std::string in(reinterpret_cast<const char*>(data), size);
    const int fd = connect_client();
    const std::string got = exchange(fd, in, chunk, stay, "fuzzed client");
    if (stay) {
        good_request("good client beside an idle one");
        ::close(fd);
        serve(0);
        serve(0);
        return;
    }
    ::close(fd);
    check_replies(got, "fuzzed client");
    good_request("good client after a fuzzed one");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
    char tmpl[] = "/tmp/lb-fuzz-protocol.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        fail(std::string("mkdtemp: ") + std::strerror(errno));
    }
    g_dir = tmpl;
    g_server = std::make_unique<ControlServer>(g_dir + "/ctl.sock");
    std::atexit(cleanup);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) {
        return 0;
    }
    fuzz_codec(data + 1, size - 1);
    fuzz_server(data[0], data + 1, size - 1);
    return 0;
}
