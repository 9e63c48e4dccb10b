#pragma once
// The UNIX control socket of lb: JSON lines (protocol.hpp). Owned and polled by the control
// thread only.
#include <functional>
#include <memory>
#include <string>

#include "control/protocol.hpp"

namespace lb::ctl {

// What a request is answered with: its first lines and, for a listing, a source of the rest.
// `more` appends the next lines to its argument and returns false once it has appended the
// last; it is called only when what came before has been sent, so a reply of any length holds
// one batch of lines in memory.
struct Answer {
    std::string text;
    std::function<bool(std::string&)> more;
};
using Handler = std::function<Answer(const Request&)>;

class ControlServer {
public:
    // Creates the socket's directory if needed, removes a stale socket file (one that nobody
    // answers on), binds, sets mode 0600, listens. Throws std::runtime_error naming the path and
    // the errno text on failure (including "another lb is already listening on PATH").
    // `log`, if given, hears of the clients refused for their protocol version.
    explicit ControlServer(std::string path,
                           std::function<void(const std::string&)> log = nullptr);
    ~ControlServer();  // closes every connection, unlinks the socket
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Waits at most timeout_ms for activity; accepts clients, reads whole request lines and
    // answers each with handler(request). Never blocks beyond timeout_ms on a slow or hostile
    // client: a line that does not decode, one over kMaxRequestLine, one cut short by the
    // client's end, and a binary frame of protocol 1 to 3 each get an error reply and a closed
    // connection; a request must arrive whole within 2 s and a reply make progress every 5 s;
    // of at most 64 connections, the one idle the longest is closed to admit a new one. Blank
    // lines are skipped. Throws nothing.
    void poll(int timeout_ms, const Handler& handler);

    const std::string& path() const { return path_; }

private:
    struct Impl;
    std::string path_;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lb::ctl
