// The metrics endpoint's HTTP/1.1 server: one thread, poll() over the listening socket and at
// most kMaxConns connections, for the two GET endpoints Prometheus and people use. What a
// crowd of idle or slow clients cannot do to it: hold every connection (at the cap, the one
// idle the longest is closed to admit a new one, then the slowest request), keep one open
// (deadlines per state, a request's head and body included, not reset by each byte), or make
// it buffer without bound (request heads of at most kMaxHead bytes, bodies of kMaxBody, and
// the exposition text shared by every connection that sends it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "control/config.hpp"
#include "control/log.hpp"
#include "control/metrics.hpp"

namespace lb::ctl {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxConns = 128;                        // connections held at once
constexpr auto kIdleTimeout = milliseconds(5'000);       // waiting for a (next) request
constexpr auto kRequestTimeout = milliseconds(2'000);    // first byte to the end of the request
constexpr auto kWriteTimeout = milliseconds(5'000);      // a response must make progress this often
constexpr auto kResponseTimeout = milliseconds(20'000);  // and be sent in all within this
constexpr auto kAcceptPause = milliseconds(100);         // after accept ran out of descriptors
constexpr size_t kMaxHead = 8192;                        // request line and headers
constexpr size_t kMaxBody = 4096;                        // a request body (read and ignored)
constexpr size_t kMaxRequests = 100;                     // per connection
constexpr int kBacklog = 1024;  // a burst of connections waits here, not in SYN retries
constexpr int kAcceptsPerRound = 64;

constexpr std::string_view kTextType = "text/plain; charset=utf-8";

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

std::shared_ptr<const std::string> text(std::string s) {
    return std::make_shared<const std::string>(std::move(s));
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
        s.remove_suffix(1);
    }
    return s;
}

// Whether the comma-separated header value holds `token` (case-insensitive).
bool has_token(std::string_view value, std::string_view token) {
    while (!value.empty()) {
        const size_t comma = value.find(',');
        if (iequals(trim(value.substr(0, comma)), token)) {
            return true;
        }
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
    }
    return false;
}

struct Conn {
    int fd = -1;
    std::string in;    // received, not yet answered
    std::string head;  // status line and headers of the response being sent
    std::shared_ptr<const std::string> body;
    size_t sent = 0;  // of head, then of body
    bool close_after = false;
    size_t served = 0;
    Clock::time_point since;         // accepted, or its last response sent: eviction order
    Clock::time_point deadline;      // closed when it passes
    Clock::time_point response_end;  // the latest a response in progress may take

    bool sending() const { return !head.empty(); }
    // What closing it costs: 0 idle, 1 a request half-received, 2 a response in progress.
    int busy() const { return sending() ? 2 : in.empty() ? 0 : 1; }
};

struct HttpRequest {
    bool complete = false;  // false: wait for more bytes
    size_t length = 0;      // head and body
    int status = 0;         // != 0: answer with this error and close
    std::string method, path;
    bool keep_alive = true;
};

// Parses the request at the front of `in`.
HttpRequest parse_request(const std::string& in) {
    HttpRequest r;
    size_t end = in.find("\r\n\r\n");
    size_t sep = 4;
    if (const size_t lf = in.find("\n\n"); lf != std::string::npos && lf < end) {
        end = lf;
        sep = 2;
    }
    if (end == std::string::npos) {
        if (in.size() > kMaxHead) {
            r.status = 431;
        }
        return r;
    }
    if (end > kMaxHead) {
        r.status = 431;
        return r;
    }
    const std::string_view head(in.data(), end);
    size_t eol = head.find('\n');
    const std::string_view line = trim(head.substr(0, eol));
    const size_t sp1 = line.find(' ');
    const size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        r.status = 400;
        return r;
    }
    r.method = std::string(line.substr(0, sp1));
    const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    const std::string_view version = line.substr(sp2 + 1);
    if (version != "HTTP/1.1" && version != "HTTP/1.0") {
        r.status = version.substr(0, 5) == "HTTP/" ? 505 : 400;
        return r;
    }
    r.path = std::string(target.substr(0, target.find('?')));
    r.keep_alive = version == "HTTP/1.1";
    size_t body = 0;
    while (eol != std::string_view::npos) {
        const size_t start = eol + 1;
        eol = head.find('\n', start);
        const std::string_view h =
            head.substr(start, eol == std::string_view::npos ? eol : eol - start);
        const size_t colon = h.find(':');
        if (trim(h).empty()) {
            continue;
        }
        if (colon == std::string_view::npos) {
            r.status = 400;
            return r;
        }
        const std::string_view name = h.substr(0, colon);
        const std::string_view value = trim(h.substr(colon + 1));
        if (iequals(name, "Content-Length")) {
            if (value.empty() || value.size() > 9 ||
                !std::all_of(value.begin(), value.end(),
                             [](char c) { return c >= '0' && c <= '9'; })) {
                r.status = 400;
                return r;
            }
            body = std::stoul(std::string(value));
        } else if (iequals(name, "Transfer-Encoding")) {
            r.status = 501;  // no chunked request bodies: nothing here takes a body
            return r;
        } else if (iequals(name, "Connection")) {
            if (has_token(value, "close")) {
                r.keep_alive = false;
            } else if (has_token(value, "keep-alive")) {
                r.keep_alive = true;
            }
        }
    }
    if (body > kMaxBody) {
        r.status = 413;
        return r;
    }
    r.length = end + sep + body;
    r.complete = in.size() >= r.length;
    return r;
}

const char* reason(int status) {
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

}  // namespace

struct MetricsServer::Impl {
    ListenSpec bound;
    Source source;
    int listen_fd = -1;
    int stop_fd = -1;
    std::thread thread;
    std::vector<Conn> conns;
    std::shared_ptr<const std::string> latest;  // the last exposition, shared by its responses
    Clock::time_point accept_after{};

    ~Impl() {
        for (Conn& c : conns) {
            close_conn(c);
        }
        if (listen_fd >= 0) {
            ::close(listen_fd);
        }
        if (stop_fd >= 0) {
            ::close(stop_fd);
        }
    }

    static void close_conn(Conn& c) {
        if (c.fd >= 0) {
            ::close(c.fd);
            c.fd = -1;
        }
    }

    void remove_closed() {
        conns.erase(
            std::remove_if(conns.begin(), conns.end(), [](const Conn& c) { return c.fd < 0; }),
            conns.end());
    }

    std::shared_ptr<const std::string> exposition() {
        std::string t = source();
        if (!latest || *latest != t) {
            latest = text(std::move(t));
        }
        return latest;
    }

    void respond(Conn& c, int status, std::string_view type,
                 std::shared_ptr<const std::string> body, bool head_only, bool keep_alive) {
        c.close_after = !keep_alive || ++c.served >= kMaxRequests;
        c.head = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
        if (status == 405) {
            c.head += "Allow: GET, HEAD\r\n";
        }
        c.head += "Content-Type: " + std::string(type) + "\r\n";
        c.head += "Content-Length: " + std::to_string(body->size()) + "\r\n";
        if (c.close_after) {
            c.head += "Connection: close\r\n";
        }
        c.head += "\r\n";
        c.body = head_only ? nullptr : std::move(body);
        c.sent = 0;
        const Clock::time_point now = Clock::now();
        c.deadline = now + kWriteTimeout;
        c.response_end = now + kResponseTimeout;
    }

    void error(Conn& c, int status) {
        respond(c, status, kTextType, text(std::to_string(status) + " " + reason(status) + "\n"),
                false, false);
        c.in.clear();
    }

    // Answers the request at the front of c.in if it is whole.
    void process(Conn& c) {
        if (c.sending() || c.in.empty()) {
            return;
        }
        const HttpRequest r = parse_request(c.in);
        if (r.status != 0) {
            error(c, r.status);
            return;
        }
        if (!r.complete) {
            return;
        }
        c.in.erase(0, r.length);
        const bool head_only = r.method == "HEAD";
        if (r.method != "GET" && !head_only) {
            respond(c, 405, kTextType, text("405 method not allowed: GET /metrics\n"), false,
                    r.keep_alive);
        } else if (r.path == "/metrics") {
            std::shared_ptr<const std::string> body;
            try {
                body = exposition();
            } catch (...) {
                respond(c, 500, kTextType, text("500 metrics unavailable\n"), head_only, false);
                return;
            }
            respond(c, 200, kMetricsContentType, std::move(body), head_only, r.keep_alive);
        } else if (r.path == "/") {
            respond(c, 200, kTextType, text("lb: Prometheus metrics at /metrics\n"), head_only,
                    r.keep_alive);
        } else {
            respond(c, 404, kTextType, text("404 not found: try /metrics\n"), head_only,
                    r.keep_alive);
        }
    }

    // Sends what it can. False if the connection is done with (closed or to close).
    bool flush(Conn& c) {
        while (c.sending()) {
            const std::string& part = c.sent < c.head.size() ? c.head : *c.body;
            const size_t off = c.sent < c.head.size() ? c.sent : c.sent - c.head.size();
            const ssize_t n =
                ::send(c.fd, part.data() + off, part.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return true;
            }
            if (n <= 0) {
                return false;
            }
            c.sent += size_t(n);
            const Clock::time_point now = Clock::now();
            c.deadline = std::min(now + kWriteTimeout, c.response_end);
            if (c.sent >= c.head.size() + (c.body ? c.body->size() : 0)) {
                c.head.clear();
                c.body.reset();
                c.sent = 0;
                if (c.close_after) {
                    ::shutdown(c.fd, SHUT_WR);
                    return false;
                }
                c.since = now;
                c.deadline = now + (c.in.empty() ? kIdleTimeout : kRequestTimeout);
                process(c);  // a pipelined request
            }
        }
        return true;
    }

    // False if the connection is done with.
    bool on_readable(Conn& c) {
        char buf[4096];
        for (;;) {
            if (c.in.size() > kMaxHead + kMaxBody + 4) {
                return true;  // enough for parse_request to decide; read no more meanwhile
            }
            const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_DONTWAIT);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return true;
            }
            if (n < 0) {
                return false;
            }
            if (n == 0) {
                // The client has sent all it will: finish the response in progress, if any.
                c.close_after = true;
                return c.sending();
            }
            if (c.in.empty() && !c.sending()) {
                c.deadline = Clock::now() + kRequestTimeout;  // for the whole request
            }
            c.in.append(buf, size_t(n));
            if (!c.sending()) {
                process(c);
                if (c.sending() && !flush(c)) {
                    return false;
                }
            }
        }
    }

    void evict_one() {
        const auto victim =
            std::min_element(conns.begin(), conns.end(), [](const Conn& a, const Conn& b) {
                return a.busy() != b.busy() ? a.busy() < b.busy() : a.since < b.since;
            });
        if (victim != conns.end()) {
            close_conn(*victim);
            remove_closed();
        }
    }

    void accept_conns() {
        for (int i = 0; i < kAcceptsPerRound; ++i) {
            const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
                    continue;
                }
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                    accept_after = Clock::now() + kAcceptPause;
                }
                return;
            }
            if (conns.size() >= kMaxConns) {
                evict_one();
            }
            const int yes = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
            Conn c;
            c.fd = fd;
            c.since = Clock::now();
            c.deadline = c.since + kIdleTimeout;
            conns.push_back(std::move(c));
        }
    }

    // One round: wait, serve what is ready, accept, close what ran out of time. False once
    // the server is stopping.
    bool round() {
        Clock::time_point now = Clock::now();
        std::vector<pollfd> pfds;
        pfds.reserve(conns.size() + 2);
        pfds.push_back({stop_fd, POLLIN, 0});
        const bool accepting = now >= accept_after;
        pfds.push_back({accepting ? listen_fd : -1, POLLIN, 0});
        Clock::time_point wake = accepting ? now + kIdleTimeout : accept_after;
        for (const Conn& c : conns) {
            pfds.push_back({c.fd, short(c.sending() ? POLLOUT : POLLIN), 0});
            wake = std::min(wake, c.deadline);
        }
        const auto wait = std::chrono::ceil<milliseconds>(wake - now).count();
        const int n = ::poll(pfds.data(), pfds.size(), int(std::clamp<int64_t>(wait, 0, 60'000)));
        if (n < 0 && errno != EINTR) {
            std::this_thread::sleep_for(milliseconds(10));  // out of memory: try again
            return true;
        }
        if (pfds[0].revents != 0) {
            return false;
        }
        for (size_t i = 0; n > 0 && i < conns.size(); ++i) {
            Conn& c = conns[i];
            const short rev = pfds[i + 2].revents;
            if (rev == 0) {
                continue;
            }
            try {
                const bool keep = c.sending() ? ((rev & POLLNVAL) == 0 && flush(c))
                                              : ((rev & POLLNVAL) == 0 && on_readable(c));
                if (!keep) {
                    close_conn(c);
                }
            } catch (...) {
                close_conn(c);  // out of memory: drop this one, keep serving the rest
            }
        }
        remove_closed();
        if (n > 0 && (pfds[1].revents & POLLIN) != 0) {
            accept_conns();
        }
        now = Clock::now();
        for (Conn& c : conns) {
            if (c.deadline <= now) {
                close_conn(c);
            }
        }
        remove_closed();
        return true;
    }

    void run() {
        pthread_setname_np(pthread_self(), "lb-metrics");
        for (;;) {
            try {
                if (!round()) {
                    return;
                }
            } catch (const std::exception& e) {
                control_log()->warn("metrics server: {}", e.what());
                std::this_thread::sleep_for(milliseconds(10));
            }
        }
    }
};

MetricsServer::MetricsServer(const std::string& listen, Source source)
    : impl_(std::make_unique<Impl>()) {
    const ListenSpec spec = parse_listen_spec(listen);
    if (!source) {
        throw std::runtime_error("metrics server: no source of metrics text");
    }
    Impl& im = *impl_;
    im.source = std::move(source);
    im.stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (im.stop_fd < 0) {
        throw std::runtime_error("metrics server: eventfd: " + errno_text(errno));
    }
    const std::string where = format_ipv4(spec.addr) + ":" + std::to_string(spec.port);
    im.listen_fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (im.listen_fd < 0) {
        throw std::runtime_error("metrics server: cannot listen on " + where + ": " +
                                 errno_text(errno));
    }
    // SO_REUSEADDR only: with SO_REUSEPORT a second listener on a busy port would share it
    // silently; here a port in use is an error.
    const int yes = 1;
    ::setsockopt(im.listen_fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(spec.port);
    sa.sin_addr.s_addr = htonl(spec.addr);
    socklen_t len = sizeof(sa);
    if (::bind(im.listen_fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa)) != 0 ||
        ::listen(im.listen_fd, kBacklog) != 0 ||
        ::getsockname(im.listen_fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
        throw std::runtime_error("metrics server: cannot listen on " + where + ": " +
                                 errno_text(errno));
    }
    im.bound = {spec.addr, ntohs(sa.sin_port)};
    im.thread = std::thread([&im] { im.run(); });
}

MetricsServer::~MetricsServer() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(impl_->stop_fd, &one, sizeof(one));
    impl_->thread.join();
}

uint32_t MetricsServer::addr() const noexcept { return impl_->bound.addr; }
uint16_t MetricsServer::port() const noexcept { return impl_->bound.port; }

}  // namespace lb::ctl
