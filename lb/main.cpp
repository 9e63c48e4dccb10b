// lb: the director daemon. Parses the command line and the config, brings up DPDK (EAL, mbuf
// pool, ports, rings, RCU), launches one worker per configured lcore and runs the control
// thread on the main lcore until SIGINT/SIGTERM.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "control/config.hpp"
#include "control/control.hpp"
#include "dataplane/worker.hpp"

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};
void on_hup(int) { g_reload.store(true); }

void on_signal(int) { g_stop.store(true); }

constexpr const char* kUsage =
    "usage: lb -c FILE [--check] [--idle-exit MS] [--stats-file FILE]\n"
    "  -c, --config FILE   the config file (libconfig syntax; see conf/README.md)\n"
    "      --check         validate the config and exit: 0 when valid, else FILE:LINE: error\n"
    "      --idle-exit MS  exit once no frame has arrived for MS milliseconds (tests)\n"
    "      --stats-file F  at exit, write the workers' counters to F, one `name value` a line\n"
    "  -h, --help          this text\n"
    "lb runs in the foreground until SIGINT or SIGTERM.\n";

struct Args {
    std::string config;
    bool check = false;
    uint32_t idle_exit_ms = 0;
    std::string stats_file;
};

bool parse_args(int argc, char** argv, Args& a) {
    for (int i = 1; i < argc; ++i) {
        const std::string s = argv[i];
        auto value = [&](const char* name) -> const char* {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "lb: %s needs a value\n%s", name, kUsage);
                return nullptr;
            }
            return argv[++i];
        };
        if (s == "-c" || s == "--config") {
            const char* v = value("-c");
            if (v == nullptr) {
                return false;
            }
            a.config = v;
        } else if (s == "--check") {
            a.check = true;
        } else if (s == "--idle-exit") {
            const char* v = value("--idle-exit");
            if (v == nullptr) {
                return false;
            }
            char* end = nullptr;
            const unsigned long ms = std::strtoul(v, &end, 10);
            if (*v == '\0' || *end != '\0' || ms == 0 || ms > 3'600'000) {
                std::fprintf(stderr, "lb: --idle-exit: \"%s\" is not a number of ms (1..3600000)\n", v);
                return false;
            }
            a.idle_exit_ms = uint32_t(ms);
        } else if (s == "--stats-file") {
            const char* v = value("--stats-file");
            if (v == nullptr) {
                return false;
            }
            a.stats_file = v;
        } else if (s == "-h" || s == "--help") {
            std::fputs(kUsage, stdout);
            std::exit(0);
        } else {
            std::fprintf(stderr, "lb: unknown argument \"%s\"\n%s", s.c_str(), kUsage);
            return false;
        }
    }
    if (a.config.empty()) {
        std::fprintf(stderr, "lb: -c FILE is required\n%s", kUsage);
        return false;
    }
    return true;
}

void setup_logging(const std::string& level) {
    auto sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    for (const char* name : {"control", "dataplane", "lb"}) {
        auto l = std::make_shared<spdlog::logger>(name, sink);
        l->set_level(spdlog::level::from_str(level));
        spdlog::register_logger(l);
    }
    spdlog::set_default_logger(spdlog::get("lb"));
}

// Everything the EAL hands out, released in reverse order on every exit path.
struct Dataplane {
    std::vector<uint16_t> ports;
    rte_mempool* pool = nullptr;
    rte_rcu_qsbr* qsbr = nullptr;
    std::vector<rte_ring*> rings;
    std::vector<rte_ring*> mbuf_rings;  // the subset of rings that carry mbufs
    std::vector<std::unique_ptr<lb::dp::Worker>> workers;
    std::vector<lb::dp::WorkerIo> io;
    lb::dp::NeighbourTable neigh;
    std::atomic<const lb::dp::Snapshot*> snapshot{nullptr};
    std::atomic<bool> stop_workers{false};

    ~Dataplane() {
        for (uint16_t p : ports) {
            rte_eth_dev_stop(p);
            rte_eth_dev_close(p);
        }
        for (rte_ring* r : mbuf_rings) {
            void* m;
            while (rte_ring_dequeue(r, &m) == 0) {
                rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
            }
        }
        for (rte_ring* r : rings) {
            rte_ring_free(r);
        }
        rte_free(qsbr);
        rte_mempool_free(pool);
    }
};

rte_ring* make_ring(Dataplane& dp, const std::string& name, unsigned size, unsigned elem,
                    unsigned flags) {
    rte_ring* r = elem == sizeof(void*)
                      ? rte_ring_create(name.c_str(), size, rte_socket_id(), flags)
                      : rte_ring_create_elem(name.c_str(), elem, size, rte_socket_id(), flags);
    if (r == nullptr) {
        throw std::runtime_error("cannot create ring " + name + ": " + rte_strerror(rte_errno));
    }
    dp.rings.push_back(r);
    if (elem == sizeof(void*)) {
        dp.mbuf_rings.push_back(r);
    }
    return r;
}

void setup_port(uint16_t port, uint16_t n_queues, rte_mempool* pool,
                const std::optional<lb::ctl::Mac>& mac) {
    rte_eth_dev_info info{};
    if (int rc = rte_eth_dev_info_get(port, &info); rc != 0) {
        throw std::runtime_error("port " + std::to_string(port) + ": no device info: " +
                                 rte_strerror(-rc));
    }
    if (info.max_rx_queues < n_queues || info.max_tx_queues < n_queues) {
        throw std::runtime_error(
            "port " + std::to_string(port) + " (" + info.driver_name + ") has " +
            std::to_string(std::min(info.max_rx_queues, info.max_tx_queues)) + " queue pairs; " +
            std::to_string(n_queues) +
            " workers need one each (for net_af_packet add qpairs=N to its --vdev)");
    }
    rte_eth_conf conf{};
    if (n_queues > 1 && info.flow_type_rss_offloads != 0) {
        conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
        conf.rx_adv_conf.rss_conf.rss_hf =
            (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    }
    if (int rc = rte_eth_dev_configure(port, n_queues, n_queues, &conf); rc != 0) {
        throw std::runtime_error("port " + std::to_string(port) + ": configure failed: " +
                                 rte_strerror(-rc));
    }
    uint16_t nb_rx = 1024, nb_tx = 1024;
    rte_eth_dev_adjust_nb_rx_tx_desc(port, &nb_rx, &nb_tx);
    const int socket = rte_eth_dev_socket_id(port);
    for (uint16_t q = 0; q < n_queues; ++q) {
        if (int rc = rte_eth_rx_queue_setup(port, q, nb_rx, unsigned(socket), nullptr, pool);
            rc != 0) {
            throw std::runtime_error("port " + std::to_string(port) + ": rx queue " +
                                     std::to_string(q) + ": " + rte_strerror(-rc));
        }
        if (int rc = rte_eth_tx_queue_setup(port, q, nb_tx, unsigned(socket), nullptr); rc != 0) {
            throw std::runtime_error("port " + std::to_string(port) + ": tx queue " +
                                     std::to_string(q) + ": " + rte_strerror(-rc));
        }
    }
    if (mac) {
        rte_ether_addr a;
        std::memcpy(a.addr_bytes, mac->data(), 6);
        if (rte_eth_dev_default_mac_addr_set(port, &a) != 0) {
            spdlog::get("lb")->debug("port {}: the driver keeps its MAC; lb uses the configured "
                                     "one in the frames it sends",
                                     port);
        }
    }
    if (int rc = rte_eth_dev_start(port); rc != 0) {
        throw std::runtime_error("port " + std::to_string(port) + ": start failed: " +
                                 rte_strerror(-rc));
    }
    rte_eth_promiscuous_enable(port);  // not every virtual port has a MAC filter to open
}

int worker_main(void* arg) {
    auto* pair = static_cast<std::pair<lb::dp::Worker*, lb::dp::WorkerIo*>*>(arg);
    pair->first->run(*pair->second);
    return 0;
}

int run(const Args& args, lb::ctl::Config cfg) {
    auto log = spdlog::get("lb");
    std::vector<std::string> eal_args{"lb"};
    eal_args.insert(eal_args.end(), cfg.eal.begin(), cfg.eal.end());
    std::vector<char*> eal_argv;
    for (std::string& s : eal_args) {
        eal_argv.push_back(s.data());
    }
    if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
        log->error("{}: EAL initialisation failed: {}", cfg.file, rte_strerror(rte_errno));
        return 1;
    }
    int rc = 0;
    {
        Dataplane dp;
        try {
            const uint16_t n_workers = uint16_t(cfg.workers.size());
            if (n_workers > lb::dp::kMaxWorkers) {
                throw std::runtime_error("too many workers");
            }
            for (unsigned lc : cfg.workers) {
                if (lc == rte_get_main_lcore() || !rte_lcore_is_enabled(lc)) {
                    throw std::runtime_error(
                        "worker lcore " + std::to_string(lc) +
                        " is not an enabled non-main lcore of the EAL's -l list");
                }
            }
            const uint16_t n_avail = rte_eth_dev_count_avail();
            for (const auto& ic : cfg.interfaces) {
                if (ic.port >= n_avail || ic.port >= lb::dp::kMaxPorts) {
                    throw std::runtime_error(cfg.file + ":" + std::to_string(ic.line) +
                                             ": interface port " + std::to_string(ic.port) +
                                             " does not exist (the EAL found " +
                                             std::to_string(n_avail) + " ports)");
                }
                dp.ports.push_back(ic.port);
            }
            dp.pool = rte_pktmbuf_pool_create("lb_mbufs", cfg.mbufs, 256, 0,
                                              RTE_MBUF_DEFAULT_BUF_SIZE, int(rte_socket_id()));
            if (dp.pool == nullptr) {
                throw std::runtime_error("cannot create the pool of " + std::to_string(cfg.mbufs) +
                                         " mbufs: " + rte_strerror(rte_errno) +
                                         " (more memory: -m or hugepages)");
            }
            lb::ctl::Runtime rt;
            for (const auto& ic : cfg.interfaces) {
                setup_port(ic.port, n_workers, dp.pool, ic.mac);
                rte_ether_addr mac;
                rte_eth_macaddr_get(ic.port, &mac);
                if (ic.mac) {
                    std::memcpy(mac.addr_bytes, ic.mac->data(), 6);
                }
                rt.port_macs[ic.port] = mac;
            }
            const size_t qsz = rte_rcu_qsbr_get_memsize(n_workers);
            dp.qsbr = static_cast<rte_rcu_qsbr*>(rte_zmalloc("lb_qsbr", qsz, RTE_CACHE_LINE_SIZE));
            if (dp.qsbr == nullptr || rte_rcu_qsbr_init(dp.qsbr, n_workers) != 0) {
                throw std::runtime_error("cannot set up RCU");
            }
            const uint32_t per_worker = std::max<uint32_t>(1, cfg.connections.capacity / n_workers);
            dp.io.resize(n_workers);
            for (uint16_t w = 0; w < n_workers; ++w) {
                dp.workers.push_back(
                    std::make_unique<lb::dp::Worker>(w, n_workers, per_worker, dp.neigh));
            }
            for (uint16_t w = 0; w < n_workers; ++w) {
                lb::dp::WorkerIo& io = dp.io[w];
                io.n_ports = uint16_t(dp.ports.size());
                std::copy(dp.ports.begin(), dp.ports.end(), io.ports.begin());
                io.slow = make_ring(dp, "lb_slow" + std::to_string(w), 4096,
                                    sizeof(lb::dp::SlowMsg), RING_F_SP_ENQ | RING_F_SC_DEQ);
                io.ctl_tx = make_ring(dp, "lb_ctx" + std::to_string(w), 1024, sizeof(void*),
                                      RING_F_SP_ENQ | RING_F_SC_DEQ);
                io.qsbr = dp.qsbr;
                io.snapshot = &dp.snapshot;
                io.stop = &dp.stop_workers;
                rt.slow_rings.push_back(io.slow);
                rt.ctl_tx.push_back(io.ctl_tx);
                rt.workers.push_back(dp.workers[w].get());
            }
            for (uint16_t from = 0; from < n_workers; ++from) {
                for (uint16_t to = 0; to < n_workers; ++to) {
                    if (from != to) {
                        rte_ring* r = make_ring(
                            dp, "lb_rd" + std::to_string(from) + "_" + std::to_string(to), 4096,
                            sizeof(void*), RING_F_SP_ENQ | RING_F_SC_DEQ);
                        dp.io[from].redirect_out[to] = r;
                        dp.io[to].redirect_in[from] = r;
                    }
                }
            }
            rt.pool = dp.pool;
            rt.ports = dp.ports;
            rt.qsbr = dp.qsbr;
            rt.neigh = &dp.neigh;
            rt.snapshot = &dp.snapshot;
            rt.reload = &g_reload;
            lb::ctl::Control control(cfg, rt);
            control.publish();

            std::vector<std::pair<lb::dp::Worker*, lb::dp::WorkerIo*>> launch;
            launch.reserve(n_workers);
            for (uint16_t w = 0; w < n_workers; ++w) {
                launch.emplace_back(dp.workers[w].get(), &dp.io[w]);
                if (rte_eal_remote_launch(worker_main, &launch.back(), cfg.workers[w]) != 0) {
                    dp.stop_workers.store(true);
                    rte_eal_mp_wait_lcore();
                    throw std::runtime_error("cannot launch worker on lcore " +
                                             std::to_string(cfg.workers[w]));
                }
            }
            log->info("lb running: {} worker(s), {} port(s), {} service(s), connection table {}",
                      n_workers, dp.ports.size(), cfg.services.size(),
                      per_worker * uint64_t(n_workers));
            control.run(g_stop, args.idle_exit_ms);
            log->info("stopping");
            dp.stop_workers.store(true);
            rte_eal_mp_wait_lcore();
            const std::string counters = control.counters_text();
            log->info("counters at exit:\n{}", counters);
            if (!args.stats_file.empty()) {
                std::ofstream out(args.stats_file);
                out << counters;
                if (!out) {
                    log->error("cannot write {}", args.stats_file);
                    rc = 1;
                }
            }
        } catch (const std::exception& e) {
            log->error("{}", e.what());
            dp.stop_workers.store(true);
            rte_eal_mp_wait_lcore();
            rc = 1;
        }
    }
    rte_eal_cleanup();
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    Args args;
    if (!parse_args(argc, argv, args)) {
        return 2;
    }
    lb::ctl::Config cfg;
    try {
        cfg = lb::ctl::load_config(args.config);
    } catch (const lb::ctl::ConfigError& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
    if (args.check) {
        std::printf("%s: ok\n", args.config.c_str());
        return 0;
    }
    setup_logging(cfg.log_level);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    std::signal(SIGHUP, on_hup);
    std::signal(SIGPIPE, SIG_IGN);
    return run(args, std::move(cfg));
}
