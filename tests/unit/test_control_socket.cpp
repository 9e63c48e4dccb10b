// The control socket: ControlServer (lb's side) and Connection / request() (lbctl's), over a
// real UNIX socket, with good, hostile, old and slow clients and servers.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "control/control_client.hpp"
#include "control/control_server.hpp"
#include "protocol_samples.hpp"

using namespace lb::ctl;
using namespace proto_samples;

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

constexpr uint64_t kListed = 10000;  // entries of the test server's connection listing
std::atomic<int> g_batches{0};       // listing batches produced

// Answers like lb's control thread, from fixed data. Reload throws; the listing comes in
// batches of 1000.
Answer handle(const Request& req) {
    if (std::holds_alternative<GetStatus>(req)) {
        return Answer{encode(sample_status()), nullptr};
    }
    if (std::holds_alternative<Reload>(req)) {
        throw std::runtime_error("boom");
    }
    if (std::holds_alternative<GetConnections>(req)) {
        auto next = std::make_shared<uint64_t>(0);
        Answer a{encode(ConnsBegin{kListed}), nullptr};
        a.more = [next](std::string& out) {
            ++g_batches;
            for (int i = 0; i < 1000; ++i) {
                ConnEntry e;
                e.cport = uint16_t(*next);
                e.state = "ESTABLISHED";
                encode_to(out, e);
                ++*next;
            }
            if (*next < kListed) {
                return true;
            }
            encode_to(out, ConnsEnd{*next});
            return false;
        };
        return a;
    }
    return Answer{encode(Error{"unknown request"}), nullptr};
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

void send_all(int fd, const std::string& bytes) {
    REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == ssize_t(bytes.size()));
}

// Reads n bytes; false on EOF or reset (what a closed connection looks like).
bool recv_exact(int fd, char* buf, size_t n) {
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

// One reply line, without its '\n'; nullopt if the connection closed first.
std::optional<std::string> read_line(int fd) {
    std::string line;
    char c = 0;
    while (recv_exact(fd, &c, 1)) {
        if (c == '\n') {
            return line;
        }
        line.push_back(c);
    }
    return std::nullopt;
}

std::string error_of(const std::optional<std::string>& line) {
    REQUIRE(line.has_value());
    return reply_as<Error>(*line).message;
}

bool closed_by_peer(int fd) {
    char b;
    return !recv_exact(fd, &b, 1);
}

void expect_status_reply(const std::string& path) {
    const Reply reply = request(path, GetStatus{});
    REQUIRE(std::holds_alternative<Status>(reply));
    check_same(std::get<Status>(reply), sample_status());
}

std::string legacy_frame(uint16_t version, uint16_t type, uint32_t len) {
    std::string h = "LBC1";
    for (const auto& [v, bytes] : {std::pair<uint32_t, int>{version, 2}, {type, 2}, {len, 4}}) {
        for (int i = 0; i < bytes; ++i) {
            h.push_back(char(uint8_t(v >> (8 * i))));
        }
    }
    return h;
}

}  // namespace

TEST_CASE("control socket answers a request", "[protocol]") {
    TempDir dir;
    const std::string path = dir.path + "/lb.sock";
    ServerThread srv(path);
    expect_status_reply(path);
    expect_status_reply(path);

    SECTION("a handler exception becomes an Error reply, and the connection goes on") {
        Connection c(path, 5000);
        c.send(Reload{});
        const Reply reply = c.read_reply();
        REQUIRE(std::holds_alternative<Error>(reply));
        CHECK(std::get<Error>(reply).message == "boom");
        c.send(GetStatus{});
        CHECK(std::holds_alternative<Status>(c.read_reply()));
    }
    SECTION("pipelined requests, blank lines and a half-closed client each get their reply") {
        const int fd = connect_raw(path);
        send_all(fd, encode(GetStatus{}) + "\n  \r\n" + encode(GetStatus{}) +
                         "{\"cmd\":\"status\"}\n");
        ::shutdown(fd, SHUT_WR);
        for (int i = 0; i < 3; ++i) {
            const auto line = read_line(fd);
            REQUIRE(line.has_value());
            check_same(reply_as<Status>(*line), sample_status());
        }
        CHECK(closed_by_peer(fd));
        ::close(fd);
    }
    SECTION("a listing streams in batches, made only as fast as the client reads") {
        g_batches = 0;
        Connection c(path, 5000);
        c.send(GetConnections{});
        CHECK(reply_as<ConnsBegin>(c.read_line()).total == kListed);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        CHECK(g_batches.load() <= 5);  // what fits the socket's buffers, not the whole listing
        uint64_t n = 0;
        for (;;) {
            const Reply r = c.read_reply();
            if (const auto* e = std::get_if<ConnEntry>(&r)) {
                CHECK(e->cport == uint16_t(n));
                ++n;
                continue;
            }
            REQUIRE(std::holds_alternative<ConnsEnd>(r));
            CHECK(std::get<ConnsEnd>(r).count == kListed);
            break;
        }
        CHECK(n == kListed);
        CHECK(g_batches.load() == 10);
        c.send(GetStatus{});  // the connection takes the next request
        CHECK(std::holds_alternative<Status>(c.read_reply()));
    }
}

TEST_CASE("control socket: hostile clients get an error and are closed", "[protocol]") {
    TempDir dir;
    const std::string path = dir.path + "/lb.sock";
    ServerThread srv(path);

    struct Case {
        const char* name;
        std::string bytes;
        const char* error;
    };
    const std::vector<Case> cases = {
        {"garbage", "GET / HTTP/1.0\r\n\r\n", "bad request: malformed request at byte 0"},
        {"not a message", "{\"cmd\":\"status\",\"x\":1}\n", "unknown field \"x\""},
        {"unknown version", "{\"cmd\":\"status\",\"version\":9}\n",
         "lb speaks control protocol 4; this lbctl speaks protocol 9 and is too new"},
        {"oversized line", std::string(kMaxRequestLine + 1, ' '), "longer than the limit"},
        {"oversized line that ends", std::string(kMaxRequestLine + 1, ' ') + "\n",
         "longer than the limit"},
    };
    for (const Case& c : cases) {
        INFO(c.name);
        const int fd = connect_raw(path);
        std::thread writer([&] {  // the server may close before all of it is sent
            (void)!::send(fd, c.bytes.data(), c.bytes.size(), MSG_NOSIGNAL);
        });
        CHECK_THAT(error_of(read_line(fd)), Catch::Contains(c.error));
        CHECK(closed_by_peer(fd));
        writer.join();
        ::close(fd);
        expect_status_reply(path);  // and the server keeps answering good clients
    }

    SECTION("a client that closes mid-line is dropped") {
        const int fd = connect_raw(path);
        send_all(fd, "{\"cmd\":\"sta");
        ::shutdown(fd, SHUT_WR);
        CHECK_THAT(error_of(read_line(fd)), Catch::Contains("truncated request") &&
                                                Catch::Contains("after 11 bytes"));
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
        send_all(extra, encode(GetStatus{}));
        const auto line = read_line(extra);
        REQUIRE(line.has_value());
        CHECK(std::holds_alternative<Status>(decode_reply(*line)));
        ::close(extra);
        for (const int fd : idle) {
            ::close(fd);
        }
        expect_status_reply(path);
    }
}

TEST_CASE("control socket: an lbctl of the binary protocol is told why, in its own frame",
          "[protocol]") {
    TempDir dir;
    const std::string path = dir.path + "/lb.sock";
    ServerThread srv(path);
    // Versions 1 to 3 all began with this header; the reply carries the client's version.
    for (const uint16_t version : {3, 2}) {
        const int fd = connect_raw(path);
        send_all(fd, legacy_frame(version, 1, 0));  // GetStatus
        const std::string want = legacy_refusal(legacy_frame(version, 1, 0));
        std::string got(want.size(), '\0');
        REQUIRE(recv_exact(fd, got.data(), got.size()));
        CHECK(got == want);
        CHECK_THAT(got, Catch::EndsWith("lb speaks control protocol 4; this lbctl speaks "
                                        "protocol " + std::to_string(version) +
                                        " and is too old: use the lbctl that comes with this lb"));
        CHECK(closed_by_peer(fd));
        ::close(fd);
    }
    // A frame whose header holds a '\n' (a 10-byte payload) is still a frame, not a line.
    const int fd = connect_raw(path);
    send_all(fd, legacy_frame(3, 3, 10) + std::string(10, 'x'));
    std::string got(4, '\0');
    REQUIRE(recv_exact(fd, got.data(), 4));
    CHECK(got == "LBC1");
    ::close(fd);
    expect_status_reply(path);
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
        send_all(idle.back(), "{\"cm");
    }
    for (int round = 0; round < 5; ++round) {
        const auto t0 = std::chrono::steady_clock::now();
        const Reply reply = request(path, GetStatus{}, 1000);
        CHECK(std::holds_alternative<Status>(reply));
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
    send_all(partial, "{\"cmd\"");
    expect_status_reply(path);  // neither blocks the server
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    send_all(partial, ":");  // a byte now and then does not extend the deadline
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
        CHECK_THROWS_WITH(request(path, GetStatus{}),
                          Catch::Equals("cannot connect to " + path +
                                        ": No such file or directory (is lb running?)"));
    }
    SECTION("a server that never answers") {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        const sockaddr_un a = unix_addr(path);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0);
        REQUIRE(::listen(fd, 4) == 0);
        CHECK_THROWS_WITH(request(path, GetStatus{}, 200),
                          Catch::Contains("timed out after 200 ms"));
        ::close(fd);
    }
    SECTION("a server that hangs up, answers garbage, another version or the binary protocol") {
        const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        const sockaddr_un a = unix_addr(path);
        REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) == 0);
        REQUIRE(::listen(fd, 4) == 0);
        const std::string old_lb = legacy_frame(3, 199, 4 + 14) +
                                   std::string("\x0e\x00\x00\x00", 4) + "bad magic: ...";
        const std::vector<std::string> answers = {
            "",
            "HTTP/1.0 200 OK\r\n\r\n",
            "{\"type\":\"ok\"",
            "{\"type\":\"status\",\"version\":5,\"whatever\":[]}\n",
            old_lb,
        };
        std::thread peer([&] {
            // Each time: take the request line, then misbehave.
            for (const std::string& answer : answers) {
                const int c = ::accept(fd, nullptr, nullptr);
                char ch = 0;
                while (::recv(c, &ch, 1, 0) == 1 && ch != '\n') {
                }
                (void)!::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
                ::close(c);
            }
        });
        CHECK_THROWS_WITH(request(path, GetStatus{}),
                          Catch::Equals("lb closed the connection on " + path +
                                        " without replying"));
        CHECK_THROWS_WITH(request(path, GetStatus{}),
                          Catch::StartsWith("bad reply from " + path) &&
                              Catch::Contains("expected '{', got HTTP/1.0"));
        CHECK_THROWS_WITH(request(path, GetStatus{}),
                          Catch::Contains("truncated reply") &&
                              Catch::Contains("after 12 bytes of a line"));
        CHECK_THROWS_WITH(request(path, GetStatus{}),
                          Catch::Equals("lb speaks control protocol 5; this lbctl speaks "
                                        "protocol 4 and is too old: use the lbctl that comes "
                                        "with this lb"));
        CHECK_THROWS_WITH(request(path, GetStatus{}),
                          Catch::Equals("lb speaks control protocol 3; this lbctl speaks "
                                        "protocol 4 and is too new: use the lbctl that comes "
                                        "with this lb"));
        peer.join();
        ::close(fd);
    }
}
