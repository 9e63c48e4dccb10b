// The UNIX control socket: a small non-blocking server driven by poll() from the control thread,
// and the one-shot client used by lbctl. Standard library and POSIX only: lbctl links this file.
#include "control/control_server.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace lb::ctl {

namespace {

using Clock = std::chrono::steady_clock;

// Connections held at once. When a new one finds them all taken, the one idle the longest is
// closed to make room (then the slowest half-sent request, then the slowest reader): a crowd
// of idle or slow clients delays lbctl by at most one poll round, never turns it away.
constexpr size_t kMaxClients = 64;
// A whole request must arrive within this of the connection (or of the previous reply), and a
// reply must make progress this often.
constexpr auto kRequestTimeout = std::chrono::seconds(2);
constexpr auto kWriteTimeout = std::chrono::seconds(5);
constexpr size_t kReadChunk = 64 * 1024;
constexpr int kReadsPerPoll = 16;    // chunks read from one client per poll() call
constexpr int kAcceptsPerPoll = 128;  // connections accepted per poll() call
constexpr int kBacklog = 256;

std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

std::runtime_error sys_error(const std::string& what, int err) {
    return std::runtime_error(what + ": " + errno_text(err));
}

sockaddr_un make_addr(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.empty()) {
        throw std::runtime_error("control socket path is empty");
    }
    if (path.find('\0') != std::string::npos) {
        throw std::runtime_error("control socket path contains a NUL byte");
    }
    if (path.size() >= sizeof(addr.sun_path)) {
        throw std::runtime_error("control socket path " + path + " is too long (" +
                                 std::to_string(path.size()) + " bytes, the limit is " +
                                 std::to_string(sizeof(addr.sun_path) - 1) + ")");
    }
    std::memcpy(addr.sun_path, path.data(), path.size());
    return addr;
}

int connect_unix(int fd, const sockaddr_un& addr) {
    return ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
}

class FdGuard {
public:
    explicit FdGuard(int fd) : fd_(fd) {}
    ~FdGuard() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

// mkdir -p of the directory holding path; directories it creates get mode 0755 whatever the umask.
void make_parent_dirs(const std::string& path) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) {
        return;
    }
    const std::string dir = path.substr(0, slash);
    size_t pos = 0;
    while (pos != std::string::npos) {
        pos = dir.find('/', pos + 1);
        const std::string prefix = dir.substr(0, pos);
        if (prefix.empty() || prefix.back() == '/') {
            continue;
        }
        if (::mkdir(prefix.c_str(), 0755) == 0) {
            if (::chmod(prefix.c_str(), 0755) != 0) {
                throw sys_error("cannot set the mode of " + prefix, errno);
            }
            continue;
        }
        const int err = errno;
        struct stat st {};
        if (err == EEXIST && ::stat(prefix.c_str(), &st) == 0) {
            if (!S_ISDIR(st.st_mode)) {
                throw std::runtime_error("cannot create the control socket " + path + ": " +
                                         prefix + " exists and is not a directory");
            }
            continue;
        }
        throw sys_error("cannot create directory " + prefix + " for the control socket", err);
    }
}

// Removes a socket file that nobody listens on; throws if someone does.
void remove_stale_socket(const std::string& path, const sockaddr_un& addr) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) {
            return;
        }
        throw sys_error("cannot stat " + path, errno);
    }
    if (!S_ISSOCK(st.st_mode)) {
        throw std::runtime_error(path + " exists and is not a socket; refusing to replace it");
    }
    FdGuard probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (probe.get() < 0) {
        throw sys_error("cannot create a socket to probe " + path, errno);
    }
    int rc = 0;
    do {
        rc = connect_unix(probe.get(), addr);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0 || errno == EAGAIN || errno == EINPROGRESS) {
        throw std::runtime_error("another lb is already listening on " + path);
    }
    if (errno == ENOENT) {
        return;  // removed under our feet
    }
    if (errno != ECONNREFUSED) {
        throw sys_error("cannot probe the existing socket " + path, errno);
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
        throw sys_error("cannot remove the stale socket " + path, errno);
    }
}

Frame error_frame(const std::string& msg) {
    Frame f;
    f.type = MsgType::Error;
    f.payload = encode_string(msg.size() > kMaxString ? msg.substr(0, kMaxString) : msg);
    return f;
}

int ms_until(Clock::time_point deadline, Clock::time_point now) {
    if (deadline <= now) {
        return 0;
    }
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

}  // namespace

struct ControlServer::Impl {
    struct Client {
        int fd = -1;
        std::vector<uint8_t> in;
        std::vector<uint8_t> out;  // at most one encoded reply: no new request is read meanwhile
        size_t out_off = 0;
        Clock::time_point deadline;  // closed when it passes without a request or write progress
        Clock::time_point since;     // when it last had a reply or was accepted (eviction order)
        bool eof = false;            // the peer shut down its sending side
        bool closing = false;        // close as soon as `out` is flushed

        bool out_pending() const { return out_off < out.size(); }
        // What closing it would cost: 0 idle (between requests), 1 half a request, 2 a reply.
        int busy() const { return out_pending() ? 2 : in.empty() ? 0 : 1; }
    };

    int listen_fd = -1;
    dev_t dev = 0;
    ino_t ino = 0;
    std::vector<Client> clients;

    ~Impl() {
        for (Client& c : clients) {
            close_client(c);
        }
        if (listen_fd >= 0) {
            ::close(listen_fd);
        }
    }

    static void close_client(Client& c) {
        if (c.fd >= 0) {
            ::close(c.fd);
            c.fd = -1;
        }
        c.in.clear();
        c.out.clear();
        c.out_off = 0;
    }

    static void queue(Client& c, const Frame& reply) {
        try {
            c.out = encode_frame(reply.type, reply.payload);
        } catch (const std::exception& e) {
            c.out = encode_frame(MsgType::Error,
                                 error_frame(std::string("cannot encode the reply: ") + e.what())
                                     .payload);
        }
        c.out_off = 0;
    }

    static void queue_error_and_close(Client& c, const std::string& msg) {
        queue(c, error_frame(msg));
        c.closing = true;
        c.in.clear();
    }

    // Writes what it can without blocking. Returns false if the connection is dead.
    static bool flush(Client& c) {
        while (c.out_pending()) {
            const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                                     MSG_NOSIGNAL | MSG_DONTWAIT);
            if (n > 0) {
                c.out_off += static_cast<size_t>(n);
                c.deadline = Clock::now() + kWriteTimeout;
                continue;
            }
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return true;
            }
            return false;
        }
        c.out.clear();
        c.out.shrink_to_fit();
        c.out_off = 0;
        return true;
    }

    // Answers every whole request in the input buffer, one at a time: the next one is looked at
    // only once the previous reply has been written.
    static void process(Client& c, const std::function<Frame(const Frame&)>& handler) {
        while (c.fd >= 0 && !c.closing && !c.out_pending()) {
            if (c.in.size() < kFrameHeader) {
                if (c.eof && !c.in.empty()) {
                    queue_error_and_close(c, "truncated request: connection closed after " +
                                                 std::to_string(c.in.size()) + " bytes");
                }
                break;
            }
            std::pair<MsgType, uint32_t> hdr;
            try {
                hdr = decode_header(c.in.data(), c.in.size());
            } catch (const ProtocolError& e) {
                queue_error_and_close(c, std::string("bad request: ") + e.what());
                break;
            }
            const size_t total = kFrameHeader + hdr.second;
            if (c.in.size() < total) {
                if (c.eof) {
                    queue_error_and_close(c, "truncated request: connection closed after " +
                                                 std::to_string(c.in.size()) + " of " +
                                                 std::to_string(total) + " bytes");
                }
                break;
            }
            Frame req;
            req.type = hdr.first;
            req.payload.assign(c.in.begin() + kFrameHeader, c.in.begin() + total);
            c.in.erase(c.in.begin(), c.in.begin() + total);
            Frame reply;
            try {
                reply = handler(req);
            } catch (const std::exception& e) {
                reply = error_frame(e.what());
            } catch (...) {
                reply = error_frame("internal error while handling the request");
            }
            queue(c, reply);
            c.since = Clock::now();
            c.deadline = c.since + kRequestTimeout;
            if (!flush(c)) {
                close_client(c);
                return;
            }
        }
        if (c.fd >= 0 && c.out_pending() && !flush(c)) {
            close_client(c);
            return;
        }
        if (c.fd >= 0 && !c.out_pending() && (c.closing || (c.eof && c.in.empty()))) {
            close_client(c);
        }
    }

    static bool wants_read(const Client& c) { return !c.closing && !c.eof && !c.out_pending(); }

    static void on_readable(Client& c, const std::function<Frame(const Frame&)>& handler) {
        for (int i = 0; i < kReadsPerPoll && c.fd >= 0 && wants_read(c); ++i) {
            const size_t old = c.in.size();
            c.in.resize(old + kReadChunk);
            const ssize_t n = ::recv(c.fd, c.in.data() + old, kReadChunk, MSG_DONTWAIT);
            c.in.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
            if (n == 0) {
                c.eof = true;
            } else if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                if (errno != EAGAIN && errno != EWOULDBLOCK) {
                    close_client(c);
                }
                break;
            }
            process(c, handler);
        }
        if (c.fd >= 0) {
            process(c, handler);
        }
    }

    // Called after this round's client events. A connection that finds the table full is turned
    // away at once, but only after a last look for clients that hung up since the poll (their
    // slots are free even though this round has not seen it yet).
    void accept_clients(const std::function<Frame(const Frame&)>& handler) {
        for (int i = 0; i < kAcceptsPerPoll; ++i) {
            const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) {
                if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) {
                    continue;
                }
                return;  // EAGAIN, or out of descriptors/memory: try again on the next call
            }
            if (clients.size() >= kMaxClients) {
                reap_hung_up(handler);
            }
            if (clients.size() >= kMaxClients) {
                evict_one();
            }
            Client c;
            c.fd = fd;
            c.since = Clock::now();
            c.deadline = c.since + kRequestTimeout;
            clients.push_back(std::move(c));
            // The request usually arrives with the connection: answer it without another round.
            on_readable(clients.back(), handler);
        }
    }

    void run(int timeout_ms, const std::function<Frame(const Frame&)>& handler) {
        Clock::time_point now = Clock::now();
        int wait = timeout_ms < 0 ? -1 : timeout_ms;
        std::vector<pollfd> pfds;
        pfds.reserve(clients.size() + 1);
        pfds.push_back({listen_fd, POLLIN, 0});
        for (const Client& c : clients) {
            short events = 0;
            if (wants_read(c)) {
                events |= POLLIN;
            }
            if (c.out_pending()) {
                events |= POLLOUT;
            }
            pfds.push_back({c.fd, events, 0});
            const int left = ms_until(c.deadline, now);
            wait = wait < 0 ? left : std::min(wait, left);
        }
        const int n = ::poll(pfds.data(), pfds.size(), wait);
        if (n > 0) {
            // pfds[i + 1] belongs to clients[i]: new clients are appended after this loop.
            for (size_t i = 0; i + 1 < pfds.size(); ++i) {
                Client& c = clients[i];
                const short rev = pfds[i + 1].revents;
                if (c.fd < 0 || rev == 0) {
                    continue;
                }
                try {
                    if ((rev & POLLNVAL) != 0) {
                        close_client(c);
                        continue;
                    }
                    if (c.out_pending() && (rev & (POLLOUT | POLLERR | POLLHUP)) != 0) {
                        if (!flush(c)) {
                            close_client(c);
                            continue;
                        }
                        process(c, handler);  // closes after the last reply, or takes the next
                    }
                    if (c.fd >= 0 && (rev & (POLLIN | POLLERR | POLLHUP)) != 0) {
                        on_readable(c, handler);
                    }
                } catch (...) {
                    close_client(c);  // out of memory: drop this client, keep serving the rest
                }
            }
            remove_closed();  // before accepting: closed clients must not count to the limit
            if ((pfds[0].revents & POLLIN) != 0) {
                accept_clients(handler);
            }
        }
        now = Clock::now();
        for (Client& c : clients) {
            if (c.fd >= 0 && c.deadline <= now) {
                close_client(c);
            }
        }
        remove_closed();
    }

    // A client may have hung up after this round's poll but before the connection now waiting
    // was made: look once more, without waiting, so that a slot it freed is seen.
    void reap_hung_up(const std::function<Frame(const Frame&)>& handler) {
        std::vector<pollfd> pfds;
        pfds.reserve(clients.size());
        for (const Client& c : clients) {
            pfds.push_back({c.fd, static_cast<short>(wants_read(c) ? POLLIN : 0), 0});
        }
        if (::poll(pfds.data(), pfds.size(), 0) <= 0) {
            return;
        }
        for (size_t i = 0; i < pfds.size(); ++i) {
            Client& c = clients[i];
            if (c.fd < 0 || (pfds[i].revents & (POLLIN | POLLERR | POLLHUP | POLLNVAL)) == 0) {
                continue;
            }
            try {
                if ((pfds[i].revents & POLLNVAL) != 0) {
                    close_client(c);
                } else {
                    on_readable(c, handler);
                }
            } catch (...) {
                close_client(c);
            }
        }
        remove_closed();
    }

    // Closes the client idle the longest; if none is idle, the oldest half-sent request; else
    // the oldest reply in progress.
    void evict_one() {
        auto victim = std::min_element(clients.begin(), clients.end(),
                                       [](const Client& a, const Client& b) {
                                           return a.busy() != b.busy() ? a.busy() < b.busy()
                                                                       : a.since < b.since;
                                       });
        if (victim != clients.end()) {
            close_client(*victim);
            remove_closed();
        }
    }

    void remove_closed() {
        clients.erase(std::remove_if(clients.begin(), clients.end(),
                                     [](const Client& c) { return c.fd < 0; }),
                      clients.end());
    }
};

ControlServer::ControlServer(std::string path)
    : path_(std::move(path)), impl_(std::make_unique<Impl>()) {
    const sockaddr_un addr = make_addr(path_);
    make_parent_dirs(path_);
    remove_stale_socket(path_, addr);

    FdGuard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
        throw sys_error("cannot create the control socket " + path_, errno);
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        if (errno == EADDRINUSE) {
            throw std::runtime_error("another lb is already listening on " + path_);
        }
        throw sys_error("cannot bind the control socket " + path_, errno);
    }
    // Nobody can connect before listen(): set the mode first so there is no window at umask's.
    struct stat st {};
    if (::chmod(path_.c_str(), 0600) != 0 || ::lstat(path_.c_str(), &st) != 0) {
        const int err = errno;
        ::unlink(path_.c_str());
        throw sys_error("cannot set the mode of the control socket " + path_, err);
    }
    if (::listen(fd.get(), kBacklog) != 0) {
        const int err = errno;
        ::unlink(path_.c_str());
        throw sys_error("cannot listen on the control socket " + path_, err);
    }
    impl_->dev = st.st_dev;
    impl_->ino = st.st_ino;
    impl_->listen_fd = fd.release();
}

ControlServer::~ControlServer() {
    // Unlink only our own socket: never one a later lb bound at the same path.
    struct stat st {};
    if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == impl_->dev &&
        st.st_ino == impl_->ino) {
        ::unlink(path_.c_str());
    }
}

void ControlServer::poll(int timeout_ms, const std::function<Frame(const Frame&)>& handler) {
    try {
        impl_->run(timeout_ms, handler);
    } catch (...) {
        // Only allocation failures get here; the clients that hit one were closed.
    }
}

namespace {

[[noreturn]] void throw_timeout(const std::string& path, int timeout_ms, const char* doing) {
    throw std::runtime_error("timed out after " + std::to_string(timeout_ms) + " ms " + doing +
                             " " + path + " (is lb stuck?)");
}

// Waits for events on fd until the deadline; throws on timeout.
void wait_fd(int fd, short events, Clock::time_point deadline, bool forever,
             const std::string& path, int timeout_ms, const char* doing) {
    for (;;) {
        const int left = forever ? -1 : ms_until(deadline, Clock::now());
        if (left == 0) {
            throw_timeout(path, timeout_ms, doing);
        }
        pollfd p{fd, events, 0};
        const int n = ::poll(&p, 1, left);
        if (n > 0) {
            return;
        }
        if (n < 0 && errno != EINTR) {
            throw sys_error("poll on " + path + " failed", errno);
        }
    }
}

std::string connect_error(const std::string& path, int err) {
    std::string msg = "cannot connect to " + path + ": " + errno_text(err);
    if (err == ENOENT || err == ECONNREFUSED) {
        msg += " (is lb running?)";
    } else if (err == EACCES || err == EPERM) {
        msg += " (are you root?)";
    }
    return msg;
}

}  // namespace

Frame request(const std::string& path, const Frame& req, int timeout_ms) {
    const bool forever = timeout_ms < 0;
    const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    const sockaddr_un addr = make_addr(path);
    const std::vector<uint8_t> out = encode_frame(req.type, req.payload);

    FdGuard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
        throw sys_error("cannot create a socket", errno);
    }
    for (;;) {
        if (connect_unix(fd.get(), addr) == 0) {
            break;
        }
        const int err = errno;
        if (err == EINTR) {
            continue;
        }
        if (err == EAGAIN) {
            // The listen backlog is full: lb is alive but behind. Retry until the deadline.
            if (!forever && ms_until(deadline, Clock::now()) == 0) {
                throw_timeout(path, timeout_ms, "connecting to");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        if (err == EINPROGRESS) {
            wait_fd(fd.get(), POLLOUT, deadline, forever, path, timeout_ms, "connecting to");
            int so_error = 0;
            socklen_t len = sizeof(so_error);
            if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len) != 0) {
                throw sys_error("cannot connect to " + path, errno);
            }
            if (so_error != 0) {
                throw std::runtime_error(connect_error(path, so_error));
            }
            break;
        }
        throw std::runtime_error(connect_error(path, err));
    }

    size_t sent = 0;
    while (sent < out.size()) {
        const ssize_t n = ::send(fd.get(), out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_fd(fd.get(), POLLOUT, deadline, forever, path, timeout_ms, "sending the request to");
        } else {
            const int err = n < 0 ? errno : EPIPE;
            throw sys_error("cannot send the request to " + path, err);
        }
    }

    // Reads exactly n bytes into buf; what names the part being read, for messages.
    auto read_exact = [&](uint8_t* buf, size_t n, size_t already, size_t total) {
        size_t got = 0;
        while (got < n) {
            const ssize_t r = ::recv(fd.get(), buf + got, n - got, 0);
            if (r > 0) {
                got += static_cast<size_t>(r);
            } else if (r == 0) {
                if (already + got == 0) {
                    throw std::runtime_error("lb closed the connection on " + path +
                                             " without replying");
                }
                throw std::runtime_error("truncated reply from " + path + ": got " +
                                         std::to_string(already + got) + " of " +
                                         std::to_string(total) + " bytes");
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                wait_fd(fd.get(), POLLIN, deadline, forever, path, timeout_ms,
                        "waiting for the reply from");
            } else {
                throw sys_error("cannot read the reply from " + path, errno);
            }
        }
    };

    uint8_t hdr[kFrameHeader];
    read_exact(hdr, kFrameHeader, 0, kFrameHeader);
    std::pair<MsgType, uint32_t> h;
    try {
        h = decode_header(hdr, sizeof(hdr));
    } catch (const ProtocolError& e) {
        throw std::runtime_error("bad reply from " + path + ": " + e.what());
    }
    Frame reply;
    reply.type = h.first;
    reply.payload.resize(h.second);
    read_exact(reply.payload.data(), h.second, kFrameHeader, kFrameHeader + h.second);
    return reply;
}

}  // namespace lb::ctl
