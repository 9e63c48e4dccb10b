// The control socket's client (see control_client.hpp).
#include "control/control_client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>
#include <variant>

#include "control/unix_socket.hpp"

namespace lb::ctl {

namespace {

using sock::Clock;

constexpr size_t kReadChunk = 256 * 1024;

std::string connect_error(const std::string& path, int err) {
    std::string msg = "cannot connect to " + path + ": " + sock::errno_text(err);
    if (err == ENOENT || err == ECONNREFUSED) {
        msg += " (is lb running?)";
    } else if (err == EACCES || err == EPERM) {
        msg += " (are you root?)";
    }
    return msg;
}

}  // namespace

Connection::Connection(std::string path, int timeout_ms)
    : path_(std::move(path)), timeout_ms_(timeout_ms) {
    deadline_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
    const sockaddr_un addr = sock::make_addr(path_);
    sock::FdGuard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
        throw sock::sys_error("cannot create a socket", errno);
    }
    fd_ = fd.get();
    for (;;) {
        if (sock::connect_unix(fd_, addr) == 0) {
            break;
        }
        const int err = errno;
        if (err == EINTR) {
            continue;
        }
        if (err == EAGAIN) {
            // The listen backlog is full: lb is alive but behind. Retry until the deadline.
            if (timeout_ms_ >= 0 && sock::ms_until(deadline_, Clock::now()) == 0) {
                wait(0, "connecting to");  // throws the timeout
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        if (err == EINPROGRESS) {
            wait(POLLOUT, "connecting to");
            int so_error = 0;
            socklen_t len = sizeof(so_error);
            if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
                throw sock::sys_error("cannot connect to " + path_, errno);
            }
            if (so_error != 0) {
                throw std::runtime_error(connect_error(path_, so_error));
            }
            break;
        }
        throw std::runtime_error(connect_error(path_, err));
    }
    fd.release();
}

Connection::~Connection() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

// Waits for events on the socket until the deadline; throws on timeout.
void Connection::wait(short events, const char* doing) {
    for (;;) {
        const int left = timeout_ms_ < 0 ? -1 : sock::ms_until(deadline_, Clock::now());
        if (left == 0) {
            throw std::runtime_error("timed out after " + std::to_string(timeout_ms_) + " ms " +
                                     doing + " " + path_ + " (is lb stuck?)");
        }
        pollfd p{fd_, events, 0};
        const int n = ::poll(&p, 1, left);
        if (n > 0) {
            return;
        }
        if (n < 0 && errno != EINTR) {
            throw sock::sys_error("poll on " + path_ + " failed", errno);
        }
    }
}

void Connection::send(const Request& req) {
    const std::string out = std::visit([](const auto& m) { return encode(m); }, req);
    deadline_ = Clock::now() + std::chrono::milliseconds(timeout_ms_);
    size_t sent = 0;
    while (sent < out.size()) {
        const ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait(POLLOUT, "sending the request to");
        } else {
            throw sock::sys_error("cannot send the request to " + path_, n < 0 ? errno : EPIPE);
        }
    }
}

bool Connection::receive() {
    if (start_ != 0 && start_ >= buf_.size() / 2) {
        buf_.erase(0, start_);
        start_ = 0;
    }
    const size_t old = buf_.size();
    buf_.resize(old + kReadChunk);
    for (;;) {
        const ssize_t r = ::recv(fd_, buf_.data() + old, kReadChunk, 0);
        if (r >= 0) {
            buf_.resize(old + size_t(r));
            received_ += size_t(r);
            return r > 0;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            wait(POLLIN, "waiting for the reply from");
        } else if (errno != EINTR) {
            const int err = errno;
            buf_.resize(old);
            throw sock::sys_error("cannot read the reply from " + path_, err);
        }
    }
}

// lb answered in the binary protocol of versions 1 to 3 (its Error frame to a JSON line).
void Connection::legacy_lb() {
    while (buf_.size() < 6 && receive()) {
    }
    throw std::runtime_error(version_mismatch(legacy_version(buf_), kProtoVersion));
}

std::string_view Connection::read_line() {
    deadline_ = Clock::now() + std::chrono::milliseconds(timeout_ms_);
    for (;;) {
        if (received_ == buf_.size() && start_ == 0 && buf_.size() >= kLegacyMagic.size() &&
            buf_.compare(0, kLegacyMagic.size(), kLegacyMagic) == 0) {
            legacy_lb();
        }
        const size_t nl = buf_.find('\n', start_ + scanned_);
        if (nl != std::string::npos) {
            const std::string_view line = std::string_view(buf_).substr(start_, nl - start_);
            start_ = nl + 1;
            scanned_ = 0;
            return line;
        }
        scanned_ = buf_.size() - start_;
        if (scanned_ > kMaxReplyLine) {
            throw std::runtime_error("a reply line from " + path_ + " longer than the limit of " +
                                     std::to_string(kMaxReplyLine) + " bytes");
        }
        if (!receive()) {
            if (received_ == 0) {
                throw std::runtime_error("lb closed the connection on " + path_ +
                                         " without replying");
            }
            throw std::runtime_error("truncated reply from " + path_ +
                                     ": the connection closed after " + std::to_string(scanned_) +
                                     " bytes of a line");
        }
    }
}

Reply Connection::read_reply() {
    const std::string_view line = read_line();
    try {
        return decode_reply(line);
    } catch (const VersionError& e) {
        throw std::runtime_error(version_mismatch(e.version(), kProtoVersion));
    } catch (const ProtocolError& e) {
        throw std::runtime_error("bad reply from " + path_ + ": " + e.what());
    }
}

Reply request(const std::string& path, const Request& req, int timeout_ms) {
    Connection c(path, timeout_ms);
    c.send(req);
    return c.read_reply();
}

}  // namespace lb::ctl
