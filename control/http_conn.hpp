#pragma once
// One connection of the metrics server: requests read and answered in order (pipelined ones
// included), responses written as fast as the socket takes them, a deadline for each state,
// and a lingering close after the last response. Non-blocking; the server's poll() loop
// (metrics_server.cpp) asks it which event it waits for and calls on_ready() when it comes.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "control/http.hpp"

namespace lb::ctl {

struct HttpResponse {
    int status = 200;
    std::string_view type;                    // Content-Type; a string that outlives the server
    std::shared_ptr<const std::string> body;  // shared by the responses that send the same text
    bool close = false;                       // close after it, whatever the request asked
};

// The server's answer to a well-formed request (a HEAD is answered as a GET, without a body).
using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

class HttpConn {
public:
    using Clock = std::chrono::steady_clock;

    // Takes `fd` (non-blocking); `handler` must outlive the connection.
    HttpConn(int fd, const HttpHandler& handler, Clock::time_point now);

    int fd() const noexcept { return fd_.v; }  // -1 once closed
    void close() noexcept { fd_.reset(); }
    short events() const noexcept;  // POLLIN or POLLOUT
    // Reads, answers and writes what it can. False once the connection is done with.
    bool on_ready();

    // The connection is to be closed when this passes.
    Clock::time_point deadline() const noexcept { return deadline_; }
    // What closing it costs: -1 done (lingering), 0 idle, 1 a request half-received, 2 a
    // response in progress; connections of equal cost are closed oldest `since` first.
    int busy() const noexcept;
    Clock::time_point since() const noexcept { return since_; }

private:
    struct Fd {  // closed with the connection
        int v = -1;
        explicit Fd(int fd) noexcept : v(fd) {}
        Fd(Fd&& o) noexcept : v(std::exchange(o.v, -1)) {}
        Fd& operator=(Fd&& o) noexcept {
            std::swap(v, o.v);
            return *this;
        }
        ~Fd() { reset(); }
        void reset() noexcept;
    };

    bool sending() const noexcept { return !head_.empty(); }
    void respond(HttpResponse r, bool head_only, bool keep_alive);
    void error(int status);
    void process();
    bool read_requests();
    bool flush();
    bool linger(Clock::time_point now);
    bool drain();

    Fd fd_;
    const HttpHandler* handler_;
    std::string in_;    // received, not yet answered
    std::string head_;  // status line and headers of the response being sent
    std::shared_ptr<const std::string> body_;
    size_t sent_ = 0;  // of head_, then of body_
    bool close_after_ = false;
    bool lingering_ = false;  // its last response sent and shut down; reading till the peer's end
    size_t served_ = 0;
    size_t dropped_ = 0;              // bytes read while lingering
    Clock::time_point since_;         // accepted, or its last response sent
    Clock::time_point deadline_;      // closed when it passes
    Clock::time_point response_end_;  // the latest a response in progress may take
};

}  // namespace lb::ctl
