// The metrics server's HTTP/1.1 framing: request heads (parse_http_request), response heads
// (http_response_head), pipelined requests and the close after the last response, on the
// wire.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>
#include <utility>

#include "control/http.hpp"
#include "control/metrics.hpp"

using namespace lb::ctl;

TEST_CASE("http: a whole GET, its path, version and keep-alive", "[metrics][http]") {
    const std::string req = "GET /metrics?name[]=x HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
    HttpRequest r = parse_http_request(req);
    CHECK(r.status == 0);
    CHECK(r.complete);
    CHECK(r.length == req.size());
    CHECK(r.method == "GET");
    CHECK(r.path == "/metrics");
    CHECK(r.keep_alive);

    r = parse_http_request("HEAD / HTTP/1.0\r\n\r\n");
    CHECK(r.complete);
    CHECK(r.method == "HEAD");
    CHECK(r.path == "/");
    CHECK(!r.keep_alive);

    // Lines ending in LF alone (nc, hand-typed requests).
    r = parse_http_request("GET /metrics HTTP/1.1\nHost: a\n\nGET /");
    CHECK(r.status == 0);
    CHECK(r.complete);
    CHECK(r.length == std::string("GET /metrics HTTP/1.1\nHost: a\n\n").size());
}

TEST_CASE("http: Connection tokens", "[metrics][http]") {
    CHECK(!parse_http_request("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    CHECK(!parse_http_request("GET / HTTP/1.1\r\nconnection: TE, Close\r\n\r\n").keep_alive);
    CHECK(parse_http_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    CHECK(parse_http_request("GET / HTTP/1.1\r\nConnection: closed\r\n\r\n").keep_alive);
}

TEST_CASE("http: incomplete requests wait for more bytes", "[metrics][http]") {
    for (const char* part : {"", "G", "GET /metrics HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: a\r\n",
                             "GET / HTTP/1.1\r\nHost: a\r\n\r"}) {
        INFO(part);
        const HttpRequest r = parse_http_request(part);
        CHECK(r.status == 0);
        CHECK(!r.complete);
    }
    // A body is waited for, then skipped over.
    const std::string head = "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
    CHECK(!parse_http_request(head + "abcd").complete);
    const HttpRequest r = parse_http_request(head + "abcdeGET / HTTP/1.1\r\n\r\n");
    CHECK(r.complete);
    CHECK(r.length == head.size() + 5);
}

TEST_CASE("http: malformed requests are refused with their status", "[metrics][http]") {
    const std::pair<std::string, int> cases[] = {
        {"nonsense\r\n\r\n", 400},
        {"GET /metrics\r\n\r\n", 400},
        {"GET  /metrics HTTP/1.1\r\n\r\n", 400},
        {"GET /metrics HTTP/1.1 x\r\n\r\n", 400},
        {"GET /metrics FTP/1.1\r\n\r\n", 400},
        {"GET /metrics HTTP/2.0\r\n\r\n", 505},
        {"GET /metrics HTTP/0.9\r\n\r\n", 505},
        {"GET / HTTP/1.1\r\nno colon here\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 1234567890\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 4097\r\n\r\n", 413},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501},
    };
    for (const auto& [req, status] : cases) {
        INFO(req);
        CHECK(parse_http_request(req).status == status);
    }
    CHECK(parse_http_request("GET / HTTP/1.1\r\nContent-Length: 4096\r\n\r\n").status == 0);
}

TEST_CASE("http: a request head over 8 KiB is refused, whole or not", "[metrics][http]") {
    const std::string line = "GET /metrics HTTP/1.1\r\n";
    const std::string at_limit = line + "X:" + std::string(kHttpMaxHead - line.size() - 2, 'a');
    REQUIRE(at_limit.size() == kHttpMaxHead);
    CHECK(parse_http_request(at_limit + "\r\n\r\n").status == 0);
    CHECK(parse_http_request(at_limit + "a\r\n\r\n").status == 431);
    CHECK(parse_http_request(at_limit).status == 0);  // its end may still come
    CHECK(parse_http_request(at_limit + "a").status == 431);
}

TEST_CASE("http: response heads", "[metrics][http]") {
    CHECK(http_response_head(200, "text/plain", 4, false) ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\n");
    CHECK(http_response_head(405, "text/plain", 0, true) ==
          "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\nContent-Type: text/plain\r\n"
          "Content-Length: 0\r\nConnection: close\r\n\r\n");
    CHECK(std::string(http_reason(431)) == "Request Header Fields Too Large");
    CHECK(std::string(http_reason(418)) == "Error");
}

namespace {

int connect_to_server(uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
    return fd;
}

// Sends `req` on a new connection to the loopback `port`, then reads until the server closes
// the connection (or 5 s pass).
std::string exchange(uint16_t port, const std::string& req) {
    const int fd = connect_to_server(port);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size()));
    std::string out;
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
        out.append(buf, size_t(n));
    }
    ::close(fd);
    return out;
}

size_t count(const std::string& s, const std::string& what) {
    size_t n = 0;
    for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) {
        ++n;
    }
    return n;
}

}  // namespace

TEST_CASE("metrics server: a pipelining flood gets 100 answers, then the close",
          "[metrics][http]") {
    MetricsServer srv("127.0.0.1:0", [] { return std::string("x 1\n"); });
    std::string flood;
    for (int i = 0; i < 150; ++i) {
        flood += "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
    }
    const std::string out = exchange(srv.port(), flood);
    CHECK(count(out, "HTTP/1.1 200 OK\r\n") == 100);
    CHECK(count(out, "Connection: close\r\n") == 1);
    CHECK(out.size() >= 4);
    CHECK(out.substr(out.size() - 4) == "x 1\n");
}

TEST_CASE("metrics server: an error answer closes the connection", "[metrics][http]") {
    MetricsServer srv("127.0.0.1:0", [] { return std::string("x 1\n"); });
    const std::string out =
        exchange(srv.port(), "GET / HTTP/1.1\r\nbad\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    CHECK(count(out, "HTTP/1.1 ") == 1);
    CHECK(out.find("HTTP/1.1 400 Bad Request\r\n") == 0);
    CHECK(count(out, "Connection: close\r\n") == 1);
}

namespace {

// Whether writing to `fd` fails within `secs` (the server closed its end: a RST answers).
bool send_fails_within(int fd, double secs) {
    const auto t0 = std::chrono::steady_clock::now();
    const std::string junk(1024, 'x');
    while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < secs) {
        if (::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0 &&
            errno != EAGAIN && errno != EWOULDBLOCK) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

// A GET /metrics of HTTP/1.0 on a new connection, read to the server's end of stream (within
// 5 s); the connection stays open on this side.
int last_response(uint16_t port, std::string& out) {
    const int fd = connect_to_server(port);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    const std::string req = "GET /metrics HTTP/1.0\r\n\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == ssize_t(req.size()));
    char buf[4096];
    ssize_t n = 0;
    while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) {
        out.append(buf, size_t(n));
    }
    CHECK(n == 0);
    return fd;
}

}  // namespace

TEST_CASE("metrics server: after its last response, what the client sends is read and dropped "
          "for 2 s at most",
          "[metrics][http][slow]") {
    MetricsServer srv("127.0.0.1:0", [] { return std::string("x 1\n"); });
    std::string out;
    const int fd = last_response(srv.port(), out);
    CHECK(out.substr(out.size() - 4) == "x 1\n");
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(!send_fails_within(fd, 1.0));  // read and dropped
    CHECK(send_fails_within(fd, 3.0));   // closed after kLingerTimeout
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(secs > 1.5);
    CHECK(secs < 3.0);
    ::close(fd);
}

TEST_CASE("metrics server: more than 256 KiB after the last response closes it at once",
          "[metrics][http]") {
    MetricsServer srv("127.0.0.1:0", [] { return std::string("x 1\n"); });
    std::string out;
    const int fd = last_response(srv.port(), out);
    const std::string junk(300 * 1024, 'x');
    ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    CHECK(send_fails_within(fd, 1.0));
    ::close(fd);
}
