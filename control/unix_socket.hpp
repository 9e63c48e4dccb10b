#pragma once
// What the control socket's server and client share: UNIX addresses, descriptors, errno text,
// deadlines. Standard library and POSIX only (lbctl links it).
#include <sys/un.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>

namespace lb::ctl::sock {

using Clock = std::chrono::steady_clock;

std::string errno_text(int err);
std::runtime_error sys_error(const std::string& what, int err);

// Throws std::runtime_error for an empty path, one with a NUL byte, or one too long for sun_path.
sockaddr_un make_addr(const std::string& path);
int connect_unix(int fd, const sockaddr_un& addr);

// Milliseconds from now to the deadline, 0 if it has passed, at most INT32_MAX.
int ms_until(Clock::time_point deadline, Clock::time_point now);

class FdGuard {
public:
    explicit FdGuard(int fd) : fd_(fd) {}
    ~FdGuard();
    FdGuard(const FdGuard&) = delete;
    FdGuard& operator=(const FdGuard&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};

// mkdir -p of the directory holding path; directories it creates get mode 0755 whatever the
// umask. Throws std::runtime_error.
void make_parent_dirs(const std::string& path);

// Removes a socket file that nobody listens on; throws if someone does, or if path is not a
// socket.
void remove_stale_socket(const std::string& path, const sockaddr_un& addr);

}  // namespace lb::ctl::sock
