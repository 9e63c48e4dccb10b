#pragma once
// The client side of the control socket, used by lbctl: one connection, request lines out,
// reply lines in. Standard library and POSIX only.
#include <chrono>
#include <string>
#include <string_view>

#include "control/protocol.hpp"

namespace lb::ctl {

class Connection {
public:
    // Connects to path. timeout_ms (< 0: none) bounds the connect, the sending of a request and
    // the wait for each reply line. Throws std::runtime_error with a clear message.
    Connection(std::string path, int timeout_ms);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    void send(const Request& req);
    // The next reply line, without its '\n', valid until the next call. Throws
    // std::runtime_error when lb closes the connection, the line is longer than kMaxReplyLine,
    // the timeout passes, or lb speaks the binary protocol of versions 1 to 3.
    std::string_view read_line();
    // The next line, decoded. A line of another protocol version throws version_mismatch()'s
    // message; one that does not decode, "bad reply from PATH: why".
    Reply read_reply();

    const std::string& path() const { return path_; }

private:
    void wait(short events, const char* doing);
    bool receive();  // false at the end of the stream
    [[noreturn]] void legacy_lb();

    std::string path_;
    int timeout_ms_;
    int fd_ = -1;
    std::string buf_;
    size_t start_ = 0;    // where the next line begins in buf_
    size_t scanned_ = 0;  // bytes from start_ on known to hold no '\n'
    size_t received_ = 0;
    std::chrono::steady_clock::time_point deadline_;
};

// One request and its first reply line, decoded (an Error reply is returned, not thrown).
Reply request(const std::string& path, const Request& req, int timeout_ms = 5000);

}  // namespace lb::ctl
