#pragma once
// The control thread: publishes snapshots (RCU), keeps the neighbour table (ARP resolution,
// ageing), serves the control socket and sums the workers' counters. A VIP whose services are
// removed stays answered only while their connections live, bounded (see departed_).
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <rte_ether.h>

#include "control/config.hpp"
#include "control/control_server.hpp"
#include "control/metrics.hpp"
#include "control/neighbours.hpp"
#include "control/port_stats.hpp"
#include "control/protocol.hpp"
#include "control/snapshot_builder.hpp"
#include "dataplane/neighbour.hpp"
#include "dataplane/snapshot.hpp"
#include "dataplane/worker.hpp"

struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;

namespace lb::ctl {

struct Runtime {
    std::vector<dp::Worker*> workers;
    std::vector<rte_ring*> slow_rings;  // [w]: worker w -> control
    std::vector<rte_ring*> ctl_tx;      // [w]: control -> worker w
    std::vector<uint16_t> ports;        // the started DPDK ports (their statistics)
    rte_mempool* pool = nullptr;
    rte_rcu_qsbr* qsbr = nullptr;
    dp::NeighbourTable* neigh = nullptr;
    std::atomic<const dp::Snapshot*>* snapshot = nullptr;
    std::array<rte_ether_addr, dp::kMaxPorts> port_macs{};
    std::atomic<bool>* reload = nullptr;  // set (by SIGHUP) to ask for a config reload
};

class Control {
public:
    Control(Config cfg, Runtime rt);
    ~Control();

    // Builds the snapshot of the current config (with the retired VIPs still to be answered)
    // and publishes it; frees the previous one after an RCU grace period.
    void publish();

    // Re-publishes when a retired VIP (see departed_) is no longer to be answered: its last
    // connection has ended or its time is up. run() calls it every 100 ms.
    void retired_tick(uint64_t now);

    // Runs until `stop` becomes true (or, with idle_exit_ms > 0, until no frame has arrived
    // for that long).
    void run(const std::atomic<bool>& stop, uint32_t idle_exit_ms);

    // Re-reads the config file and applies what changed as one new snapshot. Returns "" on
    // success, else why not (FILE:LINE: ... for a bad file); the running config stays then.
    std::string reload();

    // Applies ipvsadm-style changes to the running config, all or none, as one new snapshot.
    // Returns "" on success, else why not (the running config stays).
    std::string apply(const std::vector<Op>& ops);

    // The connection tables (lbctl -c), all of them at once (the control socket streams them).
    Connections connections();
    // The workers' counters; worker 0's also carry the control thread's neighbour counts
    // (neigh_*), so that totals and the metrics count them once.
    Workers workers_status() const;
    const Neighbours& neighbours() const { return *neighbours_; }
    // Writes the running config to path ("" = the file lb was started with).
    std::string write_config(const std::string& path) const;

    Status status() const;
    // Totals of the workers' counters and the neighbour counts, `name value` per line.
    std::string counters_text() const;

private:
    void drain_slow(uint64_t now);
    void neighbour_tick(uint64_t now);
    // Broadcast, or unicast to `to` (a verification probe).
    void send_arp_request(uint16_t port, rte_be32_t target, const rte_ether_addr* to);
    Answer handle(const Request& req);
    Answer answer_connections();
    dp::Conn* dump_buffer();

    void set_static_neighbours();
    bool slot_idle(bool real, uint16_t slot) const;
    // Publishes `next` as the running config; on failure restores the old one. "" or why not.
    std::string adopt(Config next, const char* what);
    std::array<uint64_t, 5> totals(bool real, uint16_t slot) const;
    void zero(bool real, uint16_t slot);
    void overload_tick();
    void rate_tick(uint64_t now);

    // IPVS's rate estimator per slot: an EWMA (weight 1/4) of 2-second samples.
    struct Estimator {
        std::array<uint64_t, 5> last{};
        std::array<double, 5> avg{};
        bool primed = false;
    };

    Config cfg_;
    Runtime rt_;
    SlotMap slots_;
    // Counter values when a slot was given to its current service / real: status shows the
    // difference, so a reused slot starts from zero.
    std::vector<std::array<uint64_t, 5>> svc_base_, real_base_;
    std::vector<Estimator> svc_est_, real_est_;
    uint64_t last_rate_ms_ = 0;
    // Retired VIPs. A service that a change removes leaves its counter slot here, under its
    // VIP, until its connections are gone (its slot's active and inactive gauges are zero) or,
    // at the latest, until the longest connection timeout (when it left) has passed. A VIP that
    // no service has any more stays ours (ARP, ICMP, its connections' packets, no new
    // connections) while it holds a slot here, and not when the config makes it an interface
    // address, a real, a static neighbour or a gateway. retired_tick() re-publishes without it
    // as soon as that ends; a reload or a change never brings one back or extends its time.
    struct Departed {
        uint16_t slot = 0;
        uint64_t until = 0;  // ms
        bool fresh = true;   // departs in the snapshot being built: judged from the next tick
    };
    std::map<rte_be32_t, std::vector<Departed>> departed_;
    void retire_vips(dp::Snapshot& snap, uint64_t now);
    bool conns_gone(uint16_t svc_slot) const;
    std::unique_ptr<std::atomic<uint8_t>[]> overload_;  // per real slot, read by the workers
    // Prometheus endpoint: the control thread renders the text once a second; the server's
    // threads only copy it.
    void refresh_metrics(uint64_t now);
    void count_reload(bool ok) {
        (ok ? reloads_ok_ : reloads_failed_) += 1;
        last_reload_ok_ = ok;
    }
    std::unique_ptr<MetricsServer> metrics_;
    std::unique_ptr<PortStats> port_stats_;  // read by the control thread only
    std::mutex metrics_mu_;
    std::string metrics_text_;
    uint64_t last_metrics_ms_ = 0;
    uint64_t started_ms_ = 0;
    double started_unix_ = 0;
    uint64_t reloads_ok_ = 0, reloads_failed_ = 0;
    bool last_reload_ok_ = true;
    uint64_t generation_ = 0;
    std::unique_ptr<Neighbours> neighbours_;
    std::vector<dp::Conn> dump_buf_;  // what the workers copy a listing's batches into
};

}  // namespace lb::ctl
