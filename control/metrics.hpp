#pragma once
// Prometheus metrics: the text exposition (format 0.0.4) of the status lbctl shows, and a small
// HTTP server that serves it. The server never touches the data plane: it hands out whatever
// text its callback returns (the control thread renders it once a second).
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "control/protocol.hpp"

namespace lb::ctl {

// What Status and Workers do not carry. Gauges with a value of 0 where noted are left out.
struct MetricsExtra {
    std::string version;               // lb_build_info{version=...}; "" = no lb_build_info
    double start_time_seconds = 0;     // unix time lb started; 0 = no lb_start_time_seconds
    double uptime_seconds = 0;         // seconds since lb started
    uint64_t snapshot_generation = 0;  // generation of the snapshot the workers run
    uint64_t reloads_ok = 0;           // config reloads (SIGHUP, lbctl) that took effect
    uint64_t reloads_failed = 0;       // config reloads refused (the running config stayed)
    bool last_reload_ok = true;        // false while the latest reload attempt failed
    uint64_t neighbour_entries = 0;    // live neighbour table entries
};

// The whole exposition: HELP and TYPE once per metric family, then its samples. Families of
// fixed names are always present (possibly with no samples); each "other" worker counter of
// WorkerStatus::counters becomes its own family lb_worker_<name>_total.
std::string render_metrics(const Status& st, const Workers& ws, const MetricsExtra& x);

// "ADDR:PORT": ADDR a numeric IPv4 address, PORT 0..65535 (0: any free port). Throws
// std::runtime_error naming what is wrong.
struct ListenSpec {
    uint32_t addr = 0;  // host order
    uint16_t port = 0;
};
ListenSpec parse_listen_spec(const std::string& spec);

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Serves GET (and HEAD) /metrics (the text `source` returns), / (a pointer to /metrics), 404 for
// other paths and 405 for other methods, over HTTP/1.1 with keep-alive, from one thread of its
// own (metrics_server.cpp): poll() over at most 128 connections; when all are taken, a new
// one closes a lingering one (below), else the one idle the longest, else the oldest
// unfinished request. A request
// must arrive whole within 2 s of its first byte (head at most 8 KiB, body 4 KiB), an idle
// connection is closed after 5 s, a response must progress every 5 s and end within 20 s.
// After a connection's last response (Connection: close, an error, the 100th request) what the
// client still sends is read and dropped for 2 s at most (256 KiB), so that the close is no
// RST that would cut the responses short.
// `source` runs on that thread: it must be thread-safe and cheap (return a copy of a string
// kept under a mutex). The constructor has bound the port when it returns and throws
// std::runtime_error on a bad spec or a port it cannot bind. The destructor stops listening,
// closes open connections (idle keep-alive ones included) and joins the thread.
class MetricsServer {
public:
    using Source = std::function<std::string()>;

    MetricsServer(const std::string& listen, Source source);
    ~MetricsServer();
    MetricsServer(const MetricsServer&) = delete;
    MetricsServer& operator=(const MetricsServer&) = delete;

    // The bound address and port (the real port when the spec asked for port 0).
    uint32_t addr() const noexcept;
    uint16_t port() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace lb::ctl
