// lb-ctl-bench: the control socket under a large connection listing. Fills the connection
// tables of W workers (lb's own tables and dump exchange, without EAL or ports) with N
// connections, serves them with lb's control thread (Control::run, on a socket in a temporary
// directory), and times an lbctl run end to end, `lbctl -L -n -c` unless other arguments follow
// `--`: its wall time, its exit status, the lines and bytes it printed (read from a pipe) and
// its peak memory (VmHWM, sampled while it runs). With --serve it only fills and serves until
// SIGINT or SIGTERM, for socat, an old lbctl or jq by hand.
//
// usage: lb-ctl-bench [--conns N] [--workers W] [--repeat R] [--lbctl PATH] [--serve]
//                     [-- LBCTL-ARGS...]
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <rte_byteorder.h>
#include <rte_rcu_qsbr.h>

#include "control/control.hpp"

namespace {

using Clock = std::chrono::steady_clock;
extern "C" char** environ;

struct Options {
    uint64_t conns = 1000000;
    unsigned workers = 2;
    unsigned repeat = 3;
    std::string lbctl;
    bool serve = false;
    std::vector<std::string> args = {"-L", "-n", "-c"};
};

[[noreturn]] void usage(const std::string& why) {
    std::fprintf(stderr,
                 "lb-ctl-bench: %s\nusage: lb-ctl-bench [--conns N] [--workers W] [--repeat R] "
                 "[--lbctl PATH] [--serve] [-- LBCTL-ARGS...]\n",
                 why.c_str());
    std::exit(2);
}

Options parse(int argc, char** argv) {
    Options o;
    o.lbctl = (std::filesystem::path(argv[0]).parent_path() / "lbctl").string();
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage(a + " needs a value");
            }
            return argv[++i];
        };
        if (a == "--conns") {
            o.conns = std::stoull(value());
        } else if (a == "--workers") {
            o.workers = unsigned(std::stoul(value()));
        } else if (a == "--repeat") {
            o.repeat = unsigned(std::stoul(value()));
        } else if (a == "--lbctl") {
            o.lbctl = value();
        } else if (a == "--serve") {
            o.serve = true;
        } else if (a == "--") {
            o.args.assign(argv + i + 1, argv + argc);
            break;
        } else {
            usage("unknown argument " + a);
        }
    }
    if (o.workers == 0 || o.workers > 64 || o.conns > 100'000'000 || o.repeat == 0) {
        usage("--workers 1..64, --conns at most 100000000, --repeat at least 1");
    }
    return o;
}

uint32_t now_ms() {
    using namespace std::chrono;
    return uint32_t(duration_cast<milliseconds>(Clock::now().time_since_epoch()).count());
}

std::string config_text(const std::string& sock, unsigned workers, uint64_t capacity) {
    std::string lcores;
    for (unsigned w = 1; w <= workers; ++w) {
        lcores += (w > 1 ? ", " : "") + std::to_string(w);
    }
    return "eal = [\"-l\", \"0-" + std::to_string(workers) + "\"];\nworkers = [" + lcores +
           "];\ninterfaces = ( { port = 0; address = \"198.51.100.1/24\"; },\n"
           "  { port = 1; address = \"10.10.0.1/24\"; } );\n"
           "connections = { capacity = " + std::to_string(capacity) + "; };\n"
           "services = ( { vip = \"198.51.100.10\"; port = 80; protocol = \"tcp\";\n"
           "  scheduler = \"rr\"; reals = ( { address = \"10.10.0.2\"; },\n"
           "  { address = \"10.10.0.3\"; } ); } );\n"
           "control = { socket = \"" + sock + "\"; };\nlog = { level = \"warn\"; };\n";
}

// Connection i: client 11.x.y.z:port (unique), VIP 198.51.100.10:80, one of 16 reals; every
// tenth a UDP one, every 64th a persistence template, the rest established TCP.
lb::dp::Conn make_conn(uint64_t i, uint32_t now) {
    lb::dp::Conn c{};
    c.client_ip = rte_cpu_to_be_32(uint32_t(0x0B000000 + i / 50000));
    c.client_port = rte_cpu_to_be_16(uint16_t(10000 + i % 50000));
    c.vip = rte_cpu_to_be_32(0xC633640A);
    c.vport = rte_cpu_to_be_16(80);
    c.real_ip = rte_cpu_to_be_32(uint32_t(0x0A0A0002 + i % 16));
    c.real_port = rte_cpu_to_be_16(80);
    c.proto = i % 10 == 0 ? 17 : 6;
    if (i % 64 == 1) {
        c.proto = 6 | lb::dp::kTemplateProto;
        c.client_ip = rte_cpu_to_be_32(uint32_t(0x0C000000 + i));
        c.client_port = 0;
        c.tmpl = 0;
    } else {
        c.tmpl = lb::dp::ConnTable::kNone;
    }
    c.state = uint8_t(lb::dp::TcpState::Established);
    c.expire = now + 900'000 - uint32_t(i % 600'000);
    return c;
}

struct Run {
    double seconds = 0;
    int status = 0;
    uint64_t lines = 0, bytes = 0;
    long max_rss_kb = 0;
};

// VmHWM of a live process, kB (0 once it has gone). Not wait4's ru_maxrss: posix_spawn's child
// starts in this process's memory, tables and all, and exec keeps that high-water mark.
long peak_rss_kb(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string key;
    long kb = 0;
    while (in >> key) {
        if (key == "VmHWM:") {
            in >> kb;
            return kb;
        }
        in.ignore(1 << 10, '\n');
    }
    return 0;
}

// Spawns lbctl with stdout on a pipe, counts what it prints, waits for it.
Run run_lbctl(const Options& o, const std::string& sock) {
    std::vector<std::string> words = {o.lbctl, "--socket", sock};
    words.insert(words.end(), o.args.begin(), o.args.end());
    std::vector<char*> argv;
    for (std::string& w : words) {
        argv.push_back(w.data());
    }
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe(fds) != 0) {
        usage("pipe failed");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    Run r;
    const auto t0 = Clock::now();
    pid_t pid = 0;
    if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) {
        usage("cannot run " + o.lbctl);
    }
    posix_spawn_file_actions_destroy(&fa);
    ::close(fds[1]);
    std::vector<char> buf(1 << 16);
    auto sampled = Clock::now();
    for (ssize_t n; (n = ::read(fds[0], buf.data(), buf.size())) != 0;) {
        if (n < 0) {
            continue;  // EINTR
        }
        if (Clock::now() - sampled > std::chrono::milliseconds(20)) {
            r.max_rss_kb = std::max(r.max_rss_kb, peak_rss_kb(pid));
            sampled = Clock::now();
        }
        r.bytes += uint64_t(n);
        for (ssize_t k = 0; k < n; ++k) {
            r.lines += buf[size_t(k)] == '\n';
        }
    }
    ::close(fds[0]);
    r.max_rss_kb = std::max(r.max_rss_kb, peak_rss_kb(pid));
    ::waitpid(pid, &r.status, 0);
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return r;
}

std::atomic<bool> g_stop{false};

void on_signal(int) { g_stop = true; }

}  // namespace

int main(int argc, char** argv) {
    const Options o = parse(argc, argv);
    char tmpl[] = "/tmp/lb-ctl-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        usage("mkdtemp failed");
    }
    const std::string dir = tmpl, sock = dir + "/lb.sock", file = dir + "/lb.conf";
    const uint64_t per_worker = (o.conns + o.workers - 1) / o.workers;
    const uint64_t capacity = std::max<uint64_t>(64, per_worker * 2);  // half full
    std::ofstream(file) << config_text(sock, o.workers, capacity);

    const auto t0 = Clock::now();
    lb::dp::NeighbourTable neigh;
    std::vector<std::unique_ptr<lb::dp::Worker>> workers;
    lb::ctl::Runtime rt;
    const uint32_t now = now_ms();
    for (unsigned w = 0; w < o.workers; ++w) {
        workers.push_back(std::make_unique<lb::dp::Worker>(uint16_t(w), uint16_t(o.workers),
                                                           uint32_t(capacity), neigh));
        rt.workers.push_back(workers.back().get());
    }
    for (uint64_t i = 0; i < o.conns; ++i) {
        lb::dp::Worker& w = *workers[i % o.workers];
        if (w.conns.insert(make_conn(i, now)) == lb::dp::ConnTable::kNone) {
            usage("the table refused connection " + std::to_string(i));
        }
    }
    for (auto& w : workers) {
        w->counters.table_size.v = w->conns.size();
    }
    const double fill_s = std::chrono::duration<double>(Clock::now() - t0).count();

    const size_t sz = rte_rcu_qsbr_get_memsize(o.workers);
    auto* qsbr = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(64, (sz + 63) / 64 * 64));
    rte_rcu_qsbr_init(qsbr, o.workers);
    std::atomic<const lb::dp::Snapshot*> snap{nullptr};
    rt.qsbr = qsbr;
    rt.neigh = &neigh;
    rt.snapshot = &snap;
    auto ctl = std::make_unique<lb::ctl::Control>(lb::ctl::load_config(file), rt);
    ctl->publish();

    // The workers' side of the dump exchange: a loop turn every 20 us, as an idle worker's.
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (auto& w : workers) {
        threads.emplace_back([&stop, w = w.get()] {
            while (!stop.load(std::memory_order_relaxed)) {
                w->serve_dump(now_ms());
                struct timespec ts{0, 20'000};
                nanosleep(&ts, nullptr);
            }
        });
    }
    threads.emplace_back([&] { ctl->run(stop, 0); });
    while (!std::filesystem::exists(sock)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::printf("lb-ctl-bench: %llu connections in %u workers' tables (capacity %llu each), "
                "filled in %.2f s\n",
                (unsigned long long)o.conns, o.workers, (unsigned long long)capacity, fill_s);
    std::string cmd = "lbctl --socket " + sock;
    for (const std::string& a : o.args) {
        cmd += " " + a;
    }
    int rc = 0;
    if (o.serve) {
        std::printf("serving on %s until SIGINT or SIGTERM\n", sock.c_str());
        std::fflush(stdout);
        ::signal(SIGINT, on_signal);
        ::signal(SIGTERM, on_signal);
        while (!g_stop) {
            ::pause();
        }
    } else {
        double best = 0;
        for (unsigned k = 0; k < o.repeat; ++k) {
            const Run r = run_lbctl(o, sock);
            std::printf("%s: %.2f s, exit %d, %llu lines (%.1f MB), lbctl peak RSS %.1f MB\n",
                        cmd.c_str(), r.seconds, WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1,
                        (unsigned long long)r.lines, double(r.bytes) / 1e6,
                        double(r.max_rss_kb) / 1024);
            best = k == 0 ? r.seconds : std::min(best, r.seconds);
            rc |= !WIFEXITED(r.status) || WEXITSTATUS(r.status) != 0;
        }
        std::printf("best of %u: %.2f s\n", o.repeat, best);
    }
    stop = true;
    for (std::thread& t : threads) {
        t.join();
    }
    ctl.reset();
    std::free(qsbr);
    std::filesystem::remove_all(dir);
    return rc;
}
