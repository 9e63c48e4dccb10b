// The UNIX control socket's server: non-blocking, driven by poll() from the control thread.
// Standard library and POSIX only: lbctl's library links this file.
#include "control/control_server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "control/unix_socket.hpp"

namespace lb::ctl {

namespace {

using sock::Clock;

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
// A listing's lines are produced a batch at a time once the previous ones are sent, at most
// this many batches per client and poll() call (the control thread has other work).
constexpr int kBatchesPerPoll = 4;

// An Error line that always encodes: the message made UTF-8 and cut to kMaxString bytes
// (between two characters).
std::string error_line(const std::string& msg) {
    std::string text = json::valid_utf8(msg);
    if (text.size() > kMaxString) {
        size_t cut = kMaxString;
        while (cut > 0 && (uint8_t(text[cut]) & 0xC0) == 0x80) {
            --cut;
        }
        text.resize(cut);
    }
    return encode(Error{text});
}

bool blank(std::string_view line) {
    return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

struct ControlServer::Impl {
    struct Client {
        int fd = -1;
        std::string in;
        size_t scanned = 0;  // bytes of `in` known to hold no '\n'
        std::string out;     // the reply being sent: no new request is read meanwhile
        size_t out_off = 0;
        std::function<bool(std::string&)> more;  // the rest of a listing
        Clock::time_point deadline;  // closed when it passes without a request or write progress
        Clock::time_point since;     // when it last had a reply or was accepted (eviction order)
        bool eof = false;            // the peer shut down its sending side
        bool closing = false;        // close as soon as `out` is flushed

        bool out_pending() const { return out_off < out.size() || more != nullptr; }
        // What closing it would cost: 0 idle (between requests), 1 half a request, 2 a reply.
        int busy() const { return out_pending() ? 2 : in.empty() ? 0 : 1; }
    };

    int listen_fd = -1;
    dev_t dev = 0;
    ino_t ino = 0;
    std::vector<Client> clients;
    std::function<void(const std::string&)> log;

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
        c.more = nullptr;
    }

    static void queue(Client& c, Answer answer) {
        c.out = std::move(answer.text);
        c.out_off = 0;
        c.more = std::move(answer.more);
    }

    static void queue_error_and_close(Client& c, const std::string& msg) {
        queue(c, Answer{error_line(msg), nullptr});
        c.closing = true;
        c.in.clear();
    }

    // The next batch of a listing; an exception ends it with an error line.
    static void refill(Client& c) {
        try {
            if (!c.more(c.out)) {
                c.more = nullptr;
            }
        } catch (const std::exception& e) {
            c.more = nullptr;
            c.out += error_line(e.what());
            c.closing = true;
        }
    }

    // Writes what it can without blocking, producing a listing's next batches as the previous
    // ones go. Returns false if the connection is dead.
    static bool flush(Client& c) {
        for (int batches = 0;;) {
            while (c.out_off < c.out.size()) {
                const ssize_t n = ::send(c.fd, c.out.data() + c.out_off,
                                         c.out.size() - c.out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n > 0) {
                    c.out_off += static_cast<size_t>(n);
                    c.deadline = Clock::now() + kWriteTimeout;
                } else if (n < 0 && errno == EINTR) {
                    continue;
                } else {
                    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
                }
            }
            c.out.clear();
            c.out_off = 0;
            if (c.more == nullptr || batches++ == kBatchesPerPoll) {
                break;
            }
            refill(c);
        }
        if (c.more == nullptr) {
            c.out.shrink_to_fit();
        }
        return true;
    }

    // A request line: decoded and answered, or refused (and the connection closed).
    void answer(Client& c, std::string_view line, const Handler& handler) {
        Request req;
        try {
            req = decode_request(line);
        } catch (const VersionError& e) {
            const std::string msg = version_mismatch(kProtoVersion, e.version());
            if (log) {
                log("control socket: refused a request of protocol version " +
                    std::to_string(e.version()));
            }
            queue_error_and_close(c, msg);
            return;
        } catch (const ProtocolError& e) {
            queue_error_and_close(c, std::string("bad request: ") + e.what());
            return;
        }
        try {
            queue(c, handler(req));
        } catch (const std::exception& e) {
            queue(c, Answer{error_line(e.what()), nullptr});
        } catch (...) {
            queue(c, Answer{error_line("internal error while handling the request"), nullptr});
        }
    }

    // An lbctl of the binary protocol (1 to 3): told so in a frame it can read, then closed.
    // Its header's version (bytes 4 and 5) picks the frame's version.
    bool legacy(Client& c) {
        if (c.in.size() < kLegacyMagic.size() || c.in.compare(0, 4, kLegacyMagic) != 0) {
            return false;
        }
        if (c.in.size() >= 6 || c.eof) {
            if (log) {
                log("control socket: refused an lbctl of the binary protocol (version " +
                    std::to_string(legacy_version(c.in)) + ")");
            }
            queue(c, Answer{legacy_refusal(c.in), nullptr});
            c.closing = true;
            c.in.clear();
        }
        return true;
    }

    // Answers every whole request line in the input buffer, one at a time: the next one is
    // looked at only once the previous reply has been written.
    void process(Client& c, const Handler& handler) {
        while (c.fd >= 0 && !c.closing && !c.out_pending()) {
            if (legacy(c)) {
                break;
            }
            const size_t nl = c.in.find('\n', c.scanned);
            if (nl == std::string::npos || nl > kMaxRequestLine) {
                c.scanned = c.in.size();
                if (c.in.size() > kMaxRequestLine) {
                    queue_error_and_close(c, "bad request: a line longer than the limit of " +
                                                 std::to_string(kMaxRequestLine) + " bytes");
                } else if (c.eof && !blank(c.in)) {
                    queue_error_and_close(c, "truncated request: connection closed after " +
                                                 std::to_string(c.in.size()) +
                                                 " bytes without the end of the line");
                }
                break;
            }
            if (!blank(std::string_view(c.in).substr(0, nl))) {
                answer(c, std::string_view(c.in).substr(0, nl), handler);
                c.since = Clock::now();
                c.deadline = c.since + kRequestTimeout;
            }
            c.in.erase(0, nl + 1);
            c.scanned = 0;
            if (c.out_pending() && !flush(c)) {
                close_client(c);
                return;
            }
        }
        if (c.fd >= 0 && c.out_pending() && !flush(c)) {
            close_client(c);
            return;
        }
        if (c.fd >= 0 && !c.out_pending() && (c.closing || (c.eof && blank(c.in)))) {
            close_client(c);
        }
    }

    static bool wants_read(const Client& c) { return !c.closing && !c.eof && !c.out_pending(); }

    void on_readable(Client& c, const Handler& handler) {
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
    void accept_clients(const Handler& handler) {
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

    void serve_events(Client& c, short rev, const Handler& handler) {
        if ((rev & POLLNVAL) != 0) {
            close_client(c);
            return;
        }
        if (c.out_pending() && (rev & (POLLOUT | POLLERR | POLLHUP)) != 0) {
            if (!flush(c)) {
                close_client(c);
                return;
            }
            process(c, handler);  // closes after the last reply, or takes the next
        }
        if (c.fd >= 0 && (rev & (POLLIN | POLLERR | POLLHUP)) != 0) {
            on_readable(c, handler);
        }
    }

    void run(int timeout_ms, const Handler& handler) {
        Clock::time_point now = Clock::now();
        int wait = timeout_ms < 0 ? -1 : timeout_ms;
        std::vector<pollfd> pfds;
        pfds.reserve(clients.size() + 1);
        pfds.push_back({listen_fd, POLLIN, 0});
        for (const Client& c : clients) {
            const short events = short((wants_read(c) ? POLLIN : 0) |
                                       (c.out_pending() ? POLLOUT : 0));
            pfds.push_back({c.fd, events, 0});
            const int left = sock::ms_until(c.deadline, now);
            wait = wait < 0 ? left : std::min(wait, left);
        }
        const int n = ::poll(pfds.data(), pfds.size(), wait);
        if (n > 0) {
            // pfds[i + 1] belongs to clients[i]: new clients are appended after this loop.
            for (size_t i = 0; i + 1 < pfds.size(); ++i) {
                Client& c = clients[i];
                if (c.fd < 0 || pfds[i + 1].revents == 0) {
                    continue;
                }
                try {
                    serve_events(c, pfds[i + 1].revents, handler);
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
    void reap_hung_up(const Handler& handler) {
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

ControlServer::ControlServer(std::string path, std::function<void(const std::string&)> log)
    : path_(std::move(path)), impl_(std::make_unique<Impl>()) {
    impl_->log = std::move(log);
    const sockaddr_un addr = sock::make_addr(path_);
    sock::make_parent_dirs(path_);
    sock::remove_stale_socket(path_, addr);

    sock::FdGuard fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
        throw sock::sys_error("cannot create the control socket " + path_, errno);
    }
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        if (errno == EADDRINUSE) {
            throw std::runtime_error("another lb is already listening on " + path_);
        }
        throw sock::sys_error("cannot bind the control socket " + path_, errno);
    }
    // Nobody can connect before listen(): set the mode first so there is no window at umask's.
    struct stat st {};
    if (::chmod(path_.c_str(), 0600) != 0 || ::lstat(path_.c_str(), &st) != 0) {
        const int err = errno;
        ::unlink(path_.c_str());
        throw sock::sys_error("cannot set the mode of the control socket " + path_, err);
    }
    if (::listen(fd.get(), kBacklog) != 0) {
        const int err = errno;
        ::unlink(path_.c_str());
        throw sock::sys_error("cannot listen on the control socket " + path_, err);
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

void ControlServer::poll(int timeout_ms, const Handler& handler) {
    try {
        impl_->run(timeout_ms, handler);
    } catch (...) {
        // Only allocation failures get here; the clients that hit one were closed.
    }
}

}  // namespace lb::ctl
