// The metrics endpoint's HTTP/1.1 server: one thread, poll() over the listening socket and at
// most kMaxConns connections, for the two GET endpoints Prometheus and people use. What a
// crowd of idle or slow clients cannot do to it: hold every connection (at the cap, one done
// with or the one idle the longest is closed to admit a new one, then the slowest request),
// keep one open (deadlines per state, a request's head and body included, not reset by each
// byte: http_conn.cpp), or make it buffer without bound (request heads of at most
// kHttpMaxHead bytes, bodies of kHttpMaxBody, and the exposition text shared by every
// connection that sends it).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

#include "control/config.hpp"
#include "control/http.hpp"
#include "control/http_conn.hpp"
#include "control/log.hpp"
#include "control/metrics.hpp"

namespace lb::ctl {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kMaxConns = 128;                 // connections held at once
constexpr auto kAcceptPause = milliseconds(100);  // after accept ran out of descriptors
constexpr auto kMaxWait = milliseconds(5'000);    // poll()'s longest sleep
constexpr int kBacklog = 1024;  // a burst of connections waits here, not in SYN retries
constexpr int kAcceptsPerRound = 64;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

std::shared_ptr<const std::string> text(std::string s) {
    return std::make_shared<const std::string>(std::move(s));
}

}  // namespace

struct MetricsServer::Impl {
    ListenSpec bound;
    Source source;
    HttpHandler handler;  // route(), for the connections
    int listen_fd = -1;
    int stop_fd = -1;
    std::thread thread;
    std::vector<HttpConn> conns;
    std::shared_ptr<const std::string> latest;  // the last exposition, shared by its responses
    Clock::time_point accept_after{};

    ~Impl() {
        conns.clear();
        if (listen_fd >= 0) {
            ::close(listen_fd);
        }
        if (stop_fd >= 0) {
            ::close(stop_fd);
        }
    }

    void remove_closed() {
        conns.erase(std::remove_if(conns.begin(), conns.end(),
                                   [](const HttpConn& c) { return c.fd() < 0; }),
                    conns.end());
    }

    std::shared_ptr<const std::string> exposition() {
        std::string t = source();
        if (!latest || *latest != t) {
            latest = text(std::move(t));
        }
        return latest;
    }

    HttpResponse route(const HttpRequest& r) {
        if (r.method != "GET" && r.method != "HEAD") {
            return {405, kHttpTextType, text("405 method not allowed: GET /metrics\n")};
        }
        if (r.path == "/metrics") {
            try {
                return {200, kMetricsContentType, exposition()};
            } catch (...) {
                return {500, kHttpTextType, text("500 metrics unavailable\n"), true};
            }
        }
        if (r.path == "/") {
            return {200, kHttpTextType, text("lb: Prometheus metrics at /metrics\n")};
        }
        return {404, kHttpTextType, text("404 not found: try /metrics\n")};
    }

    void evict_one() {
        const auto victim = std::min_element(
            conns.begin(), conns.end(), [](const HttpConn& a, const HttpConn& b) {
                return a.busy() != b.busy() ? a.busy() < b.busy() : a.since() < b.since();
            });
        if (victim != conns.end()) {
            victim->close();
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
            conns.emplace_back(fd, handler, Clock::now());
        }
    }

    // Serves the connections poll() found ready.
    void serve(const std::vector<pollfd>& pfds) {
        for (size_t i = 0; i < conns.size(); ++i) {
            HttpConn& c = conns[i];
            const short rev = pfds[i + 2].revents;
            if (rev == 0) {
                continue;
            }
            try {
                if ((rev & POLLNVAL) != 0 || !c.on_ready()) {
                    c.close();
                }
            } catch (...) {
                c.close();  // out of memory: drop this one, keep serving the rest
            }
        }
        remove_closed();
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
        Clock::time_point wake = accepting ? now + kMaxWait : accept_after;
        for (const HttpConn& c : conns) {
            pfds.push_back({c.fd(), c.events(), 0});
            wake = std::min(wake, c.deadline());
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
        if (n > 0) {
            serve(pfds);
        }
        if (n > 0 && (pfds[1].revents & POLLIN) != 0) {
            accept_conns();
        }
        now = Clock::now();
        for (HttpConn& c : conns) {
            if (c.deadline() <= now) {
                c.close();
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
    im.handler = [&im](const HttpRequest& r) { return im.route(r); };
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
