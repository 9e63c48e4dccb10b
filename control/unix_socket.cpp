// The control socket's shared pieces (see unix_socket.hpp).
#include "control/unix_socket.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

namespace lb::ctl::sock {

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

FdGuard::~FdGuard() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

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

int ms_until(Clock::time_point deadline, Clock::time_point now) {
    if (deadline <= now) {
        return 0;
    }
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
    return ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms);
}

}  // namespace lb::ctl::sock
