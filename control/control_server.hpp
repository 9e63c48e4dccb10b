#pragma once
// The UNIX control socket of lb. Owned and polled by the control thread only.
#include <functional>
#include <memory>
#include <string>

#include "control/protocol.hpp"

namespace lb::ctl {

class ControlServer {
public:
    // Creates the socket's directory if needed, removes a stale socket file (one that nobody
    // answers on), binds, sets mode 0600, listens. Throws std::runtime_error naming the path and
    // the errno text on failure (including "another lb is already listening on PATH").
    explicit ControlServer(std::string path);
    ~ControlServer();  // closes every connection, unlinks the socket
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    // Waits at most timeout_ms for activity; accepts clients, reads whole request frames and
    // answers each with handler(request). Never blocks beyond timeout_ms on a slow or hostile
    // client: malformed, oversized or truncated requests get an Error frame or a closed
    // connection; a request must arrive whole within 2 s; of at most 64 connections, the one
    // idle the longest is closed to admit a new one. Throws nothing.
    void poll(int timeout_ms, const std::function<Frame(const Frame&)>& handler);

    const std::string& path() const { return path_; }

private:
    struct Impl;
    std::string path_;
    std::unique_ptr<Impl> impl_;
};

// Client side, used by lbctl: connects to path, sends one request, waits up to timeout_ms for
// the reply frame. Throws std::runtime_error with a clear message on every failure.
Frame request(const std::string& path, const Frame& req, int timeout_ms = 5000);

}  // namespace lb::ctl
