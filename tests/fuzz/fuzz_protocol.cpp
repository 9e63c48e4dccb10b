// libFuzzer target: the control protocol and the control socket server.
//   1. decode_header / decode_frame and decode_status / ops / connections / workers / string on
//      the input (less its first byte). They return or throw ProtocolError, nothing else. What
//      decodes re-encodes to the same bytes (operations: to bytes that decode and re-encode to
//      themselves; their reserved field is not kept), and decodes again.
//   2. A real ControlServer on a UNIX socket in a temporary directory gets the same bytes from a
//      client, sent in chunks of a size the first byte picks, with server polls in between;
//      then the client shuts down its sending side (or, with bit 5 of the first byte, stays
//      connected and idle). The server must have answered with whole, well-formed reply frames
//      and closed the connection within a deadline, and must answer a good request on a new
//      connection afterwards, even while the first client sits idle.
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
#include <string>
#include <vector>

#include "control/control_server.hpp"
#include "control/protocol.hpp"

using namespace lb::ctl;

namespace {

using Clock = std::chrono::steady_clock;
using Bytes = std::vector<uint8_t>;
constexpr auto kDeadline = std::chrono::seconds(3);

[[noreturn]] void fail(const std::string& what) {
    std::fprintf(stderr, "fuzz_protocol: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

// ---- 1. codecs -----------------------------------------------------------------------------

template <class Decode, class Encode>
void round_trip(const char* name, const Bytes& in, Decode dec, Encode enc, bool canonical) {
    decltype(dec(in)) x;
    try {
        x = dec(in);
    } catch (const ProtocolError&) {
        return;
    }
    const Bytes e1 = enc(x);  // what decodes must encode: no exception expected here
    if (canonical && e1 != in) {
        fail(std::string(name) + ": decoded input re-encodes to other bytes");
    }
    const auto y = dec(e1);
    if (enc(y) != e1) {
        fail(std::string(name) + ": encoding is not stable over a decode");
    }
}

void fuzz_codecs(const uint8_t* data, size_t size) {
    try {
        const auto [type, len] = decode_header(data, size);
        if (len > kMaxPayload) {
            fail("decode_header accepted an oversized payload length");
        }
        (void)type;
    } catch (const ProtocolError&) {
    }
    try {
        const Frame f = decode_frame(data, size);
        if (encode_frame(f.type, f.payload) != Bytes(data, data + size)) {
            fail("decode_frame: the frame re-encodes to other bytes");
        }
    } catch (const ProtocolError&) {
    }
    const Bytes payload(data, data + size);
    round_trip("status", payload, decode_status, encode_status, true);
    round_trip("ops", payload, decode_ops, encode_ops, false);
    round_trip("connections", payload, decode_connections, encode_connections, true);
    round_trip("workers", payload, decode_workers, encode_workers, true);
    round_trip("string", payload, decode_string, encode_string, true);
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

// Answers like lb's control thread, from fixed data; checks what requests carry.
Frame handle(const Frame& req) {
    switch (req.type) {
    case MsgType::GetStatus: return {MsgType::Status, encode_status(sample_status())};
    case MsgType::Reload: return {MsgType::Error, encode_string("reload: not here")};
    case MsgType::Apply: {
        const auto ops = decode_ops(req.payload);  // throws ProtocolError: an Error reply
        return {MsgType::Ok, encode_string(std::to_string(ops.size()) + " operations")};
    }
    case MsgType::GetConnections: {
        Connections c;
        c.total = 1;
        c.entries.push_back(ConnEntry{6, false, 1, 2, 3, 4, 5, 6, 0, "ESTABLISHED", 10});
        return {MsgType::Connections, encode_connections(c)};
    }
    case MsgType::GetWorkers: {
        Workers w;
        w.workers.push_back(WorkerStatus{1, 2, 3, 4, 5, 6, 7, 8, 9, {{"a", 1}}, {{"b", 2}}});
        return {MsgType::Workers, encode_workers(w)};
    }
    case MsgType::WriteConfig:
        return {MsgType::Ok, encode_string("wrote " + decode_string(req.payload))};
    default: return {MsgType::Error, encode_string("unknown request")};
    }
}

std::string g_dir;
std::unique_ptr<ControlServer> g_server;
const Frame kGood{MsgType::GetStatus, {}};

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
bool read_some(int fd, Bytes& got) {
    uint8_t buf[65536];
    for (;;) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
            got.insert(got.end(), buf, buf + n);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            return true;
        }
        return false;
    }
}

// The replies a client got: whole frames of reply types, nothing left over.
size_t check_replies(const Bytes& got, const char* who) {
    size_t off = 0, n = 0;
    while (off < got.size()) {
        if (got.size() - off < kFrameHeader) {
            fail(std::string(who) + ": the server sent a truncated frame header");
        }
        std::pair<MsgType, uint32_t> h;
        try {
            h = decode_header(got.data() + off, got.size() - off);
        } catch (const ProtocolError& e) {
            fail(std::string(who) + ": the server sent a bad frame: " + e.what());
        }
        if (got.size() - off - kFrameHeader < h.second) {
            fail(std::string(who) + ": the server sent a truncated frame");
        }
        const Bytes payload(got.begin() + long(off + kFrameHeader),
                            got.begin() + long(off + kFrameHeader + h.second));
        switch (h.first) {
        case MsgType::Status: decode_status(payload); break;
        case MsgType::Connections: decode_connections(payload); break;
        case MsgType::Workers: decode_workers(payload); break;
        case MsgType::Ok:
        case MsgType::Error: decode_string(payload); break;
        default: fail(std::string(who) + ": the server sent a request type");
        }
        off += kFrameHeader + h.second;
        ++n;
    }
    return n;
}

// Sends `in` in chunks, polling the server in between; then shuts the sending side down
// (unless `stay`) and waits for the server to close. Returns what the client received.
Bytes exchange(int fd, const Bytes& in, size_t chunk, bool stay, const char* who) {
    const auto deadline = Clock::now() + kDeadline;
    Bytes got;
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
    const Bytes got = exchange(fd, encode_frame(kGood.type, kGood.payload), 1 << 16, false, who);
    ::close(fd);
    const Bytes want = encode_frame(MsgType::Status, encode_status(sample_status()));
    if (got != want) {
        fail(std::string(who) + ": a good request did not get its answer (" +
             std::to_string(got.size()) + " bytes back)");
    }
}

void fuzz_server(uint8_t mode, const uint8_t* data, size_t size) {
    const size_t chunk = (mode & 15) == 0 ? size_t(1) << 20 : size_t(1) << ((mode & 15) - 1);
    const bool stay = (mode & 0x20) != 0;
    const int fd = connect_client();
    const Bytes got = exchange(fd, Bytes(data, data + size), chunk, stay, "fuzzed client");
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
    fuzz_codecs(data + 1, size - 1);
    fuzz_server(data[0], data + 1, size - 1);
    return 0;
}
