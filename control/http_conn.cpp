// One metrics-server connection (http_conn.hpp): a request must arrive whole within
// kRequestTimeout of its first byte and is read no further than the limits of http.hpp; a
// response must make progress every kWriteTimeout and end within kResponseTimeout; an idle
// connection closes after kIdleTimeout, and after kMaxRequests answers.
#include "control/http_conn.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace lb::ctl {

namespace {

using std::chrono::milliseconds;

constexpr auto kIdleTimeout = milliseconds(5'000);       // waiting for a (next) request
constexpr auto kRequestTimeout = milliseconds(2'000);    // first byte to the end of the request
constexpr auto kWriteTimeout = milliseconds(5'000);      // a response must make progress this often
constexpr auto kResponseTimeout = milliseconds(20'000);  // and be sent in all within this
constexpr auto kLingerTimeout = milliseconds(2'000);     // reading what follows a last response
constexpr size_t kMaxLinger = 256 * 1024;                // bytes read and dropped meanwhile
constexpr size_t kMaxRequests = 100;                     // per connection
constexpr size_t kMaxBuffered = kHttpMaxHead + kHttpMaxBody + 4;  // enough to judge a request

// Outcome of one non-blocking recv or send.
enum class Io { Done, Again, End };

Io io_result(ssize_t n) {
    if (n > 0) {
        return Io::Done;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        return Io::Again;
    }
    return Io::End;  // the peer's end of stream, or an error
}

ssize_t recv_some(int fd, char* buf, size_t len) {
    ssize_t n = 0;
    do {
        n = ::recv(fd, buf, len, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n;
}

}  // namespace

void HttpConn::Fd::reset() noexcept {
    if (v >= 0) {
        ::close(v);
        v = -1;
    }
}

HttpConn::HttpConn(int fd, const HttpHandler& handler, Clock::time_point now)
    : fd_(fd), handler_(&handler), since_(now), deadline_(now + kIdleTimeout) {}

short HttpConn::events() const noexcept { return sending() ? POLLOUT : POLLIN; }

int HttpConn::busy() const noexcept {
    return lingering_ ? -1 : sending() ? 2 : in_.empty() ? 0 : 1;
}

bool HttpConn::on_ready() {
    if (lingering_) {
        return drain();
    }
    return sending() ? flush() : read_requests();
}

void HttpConn::respond(HttpResponse r, bool head_only, bool keep_alive) {
    close_after_ = !keep_alive || r.close || ++served_ >= kMaxRequests;
    head_ = http_response_head(r.status, r.type, r.body->size(), close_after_);
    body_ = head_only ? nullptr : std::move(r.body);
    sent_ = 0;
    const Clock::time_point now = Clock::now();
    deadline_ = now + kWriteTimeout;
    response_end_ = now + kResponseTimeout;
}

void HttpConn::error(int status) {
    auto body = std::make_shared<const std::string>(std::to_string(status) + " " +
                                                    http_reason(status) + "\n");
    respond({status, kHttpTextType, std::move(body), true}, false, false);
    in_.clear();
}

// Answers the request at the front of in_ if it is whole.
void HttpConn::process() {
    if (sending() || in_.empty()) {
        return;
    }
    const HttpRequest r = parse_http_request(in_);
    if (r.status != 0) {
        error(r.status);
        return;
    }
    if (!r.complete) {
        return;
    }
    in_.erase(0, r.length);
    respond((*handler_)(r), r.method == "HEAD", r.keep_alive);
}

// Reads what has come and answers it. False if the connection is done with.
bool HttpConn::read_requests() {
    char buf[4096];
    while (in_.size() <= kMaxBuffered) {  // beyond, process() has answered: read no more
        const ssize_t n = recv_some(fd_.v, buf, sizeof buf);
        if (n == 0) {
            // The client has sent all it will: finish the response in progress, if any.
            close_after_ = true;
            return sending();
        }
        if (const Io io = io_result(n); io != Io::Done) {
            return io == Io::Again;
        }
        if (in_.empty() && !sending()) {
            deadline_ = Clock::now() + kRequestTimeout;  // for the whole request
        }
        in_.append(buf, size_t(n));
        if (!sending()) {
            process();
            if (sending() && !flush()) {
                return false;
            }
            if (lingering_) {
                return true;  // answered for the last time: drain() reads the rest
            }
        }
    }
    return true;
}

// Sends what it can, then answers the next pipelined request. False if the connection is done
// with.
bool HttpConn::flush() {
    while (sending()) {
        const bool in_head = sent_ < head_.size();
        const std::string& part = in_head ? head_ : *body_;
        const size_t off = in_head ? sent_ : sent_ - head_.size();
        ssize_t n = 0;
        do {
            n = ::send(fd_.v, part.data() + off, part.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (const Io io = io_result(n); io != Io::Done) {
            return io == Io::Again;
        }
        sent_ += size_t(n);
        const Clock::time_point now = Clock::now();
        deadline_ = std::min(now + kWriteTimeout, response_end_);
        if (sent_ >= head_.size() + (body_ ? body_->size() : 0)) {
            head_.clear();
            body_.reset();
            sent_ = 0;
            if (close_after_) {
                return linger(now);
            }
            since_ = now;
            deadline_ = now + (in_.empty() ? kIdleTimeout : kRequestTimeout);
            process();  // a pipelined request
        }
    }
    return true;
}

// After the last response: the sending side is shut down, and what the client still sends
// (pipelined requests past the last one answered, the rest of a refused request) is read and
// dropped until it closes its side, for kLingerTimeout at most. Closing at once with unread
// bytes would send a RST, and a RST makes the client's kernel drop the responses it has not
// read yet. False if the connection is done with.
bool HttpConn::linger(Clock::time_point now) {
    ::shutdown(fd_.v, SHUT_WR);
    lingering_ = true;
    in_.clear();
    in_.shrink_to_fit();
    since_ = now;
    deadline_ = now + kLingerTimeout;
    return drain();
}

// Reads and drops what a lingering connection's client sends. False once it is done with (the
// client's end, an error, or more than kMaxLinger bytes).
bool HttpConn::drain() {
    char buf[4096];
    for (;;) {
        const ssize_t n = recv_some(fd_.v, buf, sizeof buf);
        if (const Io io = io_result(n); io != Io::Done) {
            return io == Io::Again;
        }
        dropped_ += size_t(n);
        if (dropped_ > kMaxLinger) {
            return false;
        }
    }
}

}  // namespace lb::ctl
