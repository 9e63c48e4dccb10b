// The control thread's changes (ipvsadm verbs, reload, write-config, listings) against real
// workers' tables, without ports: no EAL needed.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include <rte_rcu_qsbr.h>

#include "control/control.hpp"
#include "control/control_client.hpp"
#include "tools/lbctl_format.hpp"

using namespace lb::ctl;

namespace {

const char* kText = R"(
eal = ["-l", "0-1"];
workers = [1];
interfaces = ( { port = 0; address = "198.51.100.1/24"; },
               { port = 1; address = "10.10.0.1/24"; } );
connections = { capacity = 64; };
services = (
  { vip = "198.51.100.10"; port = 80; protocol = "tcp"; scheduler = "rr";
    reals = ( { address = "10.10.0.2"; }, { address = "10.10.0.3"; } ); }
);
control = { socket = "/tmp/lb-unit-control.sock"; };
log = { level = "off"; };
)";

struct Harness {
    std::string dir;
    std::string file;
    lb::dp::NeighbourTable neigh;
    std::unique_ptr<lb::dp::Worker> worker;
    std::atomic<const lb::dp::Snapshot*> snap{nullptr};
    rte_rcu_qsbr* qsbr = nullptr;
    std::unique_ptr<Control> ctl;

    // own_socket: the control socket in the harness's directory (for tests that run it).
    explicit Harness(uint32_t capacity = 64, bool own_socket = false) {
        char tmpl[] = "/tmp/lb-control-test-XXXXXX";
        dir = ::mkdtemp(tmpl);
        file = dir + "/lb.conf";
        std::string text = kText;
        if (own_socket) {
            const std::string sock = "/tmp/lb-unit-control.sock";
            text.replace(text.find(sock), sock.size(), dir + "/lb.sock");
        }
        std::ofstream(file) << text;
        worker = std::make_unique<lb::dp::Worker>(0, 1, capacity, neigh);
        const size_t sz = rte_rcu_qsbr_get_memsize(1);
        qsbr = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(64, (sz + 63) / 64 * 64));
        REQUIRE(rte_rcu_qsbr_init(qsbr, 1) == 0);
        Runtime rt;
        rt.workers = {worker.get()};
        rt.qsbr = qsbr;
        rt.neigh = &neigh;
        rt.snapshot = &snap;
        ctl = std::make_unique<Control>(load_config(file), rt);
        ctl->publish();
    }
    ~Harness() {
        ctl.reset();
        std::free(qsbr);
        std::filesystem::remove_all(dir);
    }
};

Op service_op(OpKind k, const char* vip, uint16_t port, const char* sched = "rr") {
    Op o;
    o.kind = k;
    o.has_service = true;
    o.vip = parse_ipv4(vip);
    o.port = port;
    o.scheduler = sched;
    return o;
}

Op real_op(OpKind k, const char* vip, uint16_t port, const char* real, uint16_t rport,
           uint32_t weight = 1) {
    Op o = service_op(k, vip, port);
    o.real_addr = parse_ipv4(real);
    o.real_port = rport;
    o.weight = weight;
    return o;
}

}  // namespace

TEST_CASE("control: ipvsadm verbs change the running config, all or nothing", "[control]") {
    Harness h;
    Op add = service_op(OpKind::AddService, "198.51.100.11", 443, "wlc");
    add.persistence = 300;
    add.persist_mask = 0xFFFFFF00;
    CHECK(h.ctl->apply({add, real_op(OpKind::AddReal, "198.51.100.11", 443, "10.10.0.4", 443, 3)})
              .empty());
    Status st = h.ctl->status();
    REQUIRE(st.services.size() == 2);
    CHECK(st.services[1].scheduler == "wlc");
    CHECK(st.services[1].persistence == 300);
    CHECK(st.services[1].persist_mask == 0xFFFFFF00);
    REQUIRE(st.services[1].reals.size() == 1);
    CHECK(st.services[1].reals[0].weight == 3);

    CHECK(h.ctl->apply({add}) == "-A TCP 198.51.100.11:443: service already exists");
    CHECK(h.ctl->apply({real_op(OpKind::EditReal, "198.51.100.11", 443, "10.10.0.9", 443)}) ==
          "-e TCP 198.51.100.11:443 -r 10.10.0.9:443: no such destination");
    CHECK(h.ctl->apply({service_op(OpKind::DeleteService, "198.51.100.12", 80)}) ==
          "-D TCP 198.51.100.12:80: no such service");
    // Unreachable real: the config's own validation speaks.
    const std::string err =
        h.ctl->apply({real_op(OpKind::AddReal, "198.51.100.10", 80, "192.0.2.7", 80)});
    CHECK_THAT(err, Catch::StartsWith("-a TCP 198.51.100.10:80 -r 192.0.2.7:80: "));
    CHECK_THAT(err, Catch::Contains("no interface or route reaches 192.0.2.7"));
    // A batch with one bad operation changes nothing.
    const std::string batch = h.ctl->apply(
        {real_op(OpKind::EditReal, "198.51.100.10", 80, "10.10.0.2", 80, 7),
         service_op(OpKind::AddService, "198.51.100.12", 80, "fancy")});
    CHECK(batch == "operation 2 (-A TCP 198.51.100.12:80): unknown scheduler \"fancy\"");
    st = h.ctl->status();
    CHECK(st.services.size() == 2);
    CHECK(st.services[0].reals[0].weight == 1);

    // Edit, thresholds, timeouts, delete, clear.
    Op edit = real_op(OpKind::EditReal, "198.51.100.10", 80, "10.10.0.2", 80, 0);
    edit.u_threshold = 100;
    edit.l_threshold = 50;
    edit.forward = 2;
    Op tmo;
    tmo.kind = OpKind::SetTimeout;
    tmo.tcp = 600;
    tmo.udp = 30;
    CHECK(h.ctl->apply({edit, tmo}).empty());
    st = h.ctl->status();
    CHECK(st.services[0].reals[0].weight == 0);
    CHECK(st.services[0].reals[0].forward == 2);
    CHECK(st.services[0].reals[0].u_threshold == 100);
    CHECK(st.tcp_timeout == 600);
    CHECK(st.tcpfin_timeout == 120);  // 0 leaves it alone
    CHECK(st.udp_timeout == 30);
    Op sh = service_op(OpKind::EditService, "198.51.100.10", 80, "sh");
    sh.sched_flags = "sh-port,sh-fallback";
    CHECK(h.ctl->apply({sh}).empty());
    CHECK(h.ctl->status().services[0].sched_flags == "sh-fallback,sh-port");
    sh.sched_flags = "mh-port";
    CHECK(h.ctl->apply({sh}) ==
          "-E TCP 198.51.100.10:80: scheduler flag \"mh-port\" does not apply to sh");
    CHECK(h.ctl->apply({real_op(OpKind::DeleteReal, "198.51.100.10", 80, "10.10.0.3", 80)})
              .empty());
    CHECK(h.ctl->status().services[0].reals.size() == 1);
    Op clear;
    clear.kind = OpKind::Clear;
    CHECK(h.ctl->apply({clear}).empty());
    CHECK(h.ctl->status().services.empty());
}

TEST_CASE("control: write-config, reload, and a refused reload", "[control]") {
    Harness h;
    CHECK(h.ctl->apply({real_op(OpKind::AddReal, "198.51.100.10", 80, "10.10.0.4", 80, 5)})
              .empty());
    const std::string out = h.dir + "/written.conf";
    CHECK(h.ctl->write_config(out).empty());
    const Config back = load_config(out);
    REQUIRE(back.services.size() == 1);
    CHECK(back.services[0].reals.size() == 3);
    CHECK(back.services[0].reals[2].weight == 5);

    // Reload returns to the file lb was started with (runtime changes not written are gone).
    CHECK(h.ctl->reload().empty());
    CHECK(h.ctl->status().services[0].reals.size() == 2);
    // A broken file is refused with FILE:LINE and the running config stays.
    std::ofstream(h.file) << "workers = [1];\nbogus = 1;\n";
    CHECK_THAT(h.ctl->reload(), Catch::StartsWith(h.file + ":2: bogus: unknown key"));
    CHECK(h.ctl->status().services.size() == 1);
    // What needs a restart is refused too.
    std::string text = kText;
    text.replace(text.find("capacity = 64"), 13, "capacity = 65");
    std::ofstream(h.file) << text;
    CHECK_THAT(h.ctl->reload(), Catch::Contains("connections.capacity changed, which needs a restart"));
    // write-config to the started-with file.
    CHECK(h.ctl->write_config("").empty());
    CHECK(load_config(h.file).connections.capacity == 64);
}

TEST_CASE("control: write-config says why it cannot, reload never waits on the file",
          "[control]") {
    Harness h;
    // A missing directory.
    CHECK(h.ctl->write_config(h.dir + "/no/x.conf") ==
          "cannot write " + h.dir + "/no/x.conf.tmp: No such file or directory");
    // A full disk (/dev/full: every write fails with ENOSPC): a symlink standing for the
    // temporary file is refused, not followed, and a FIFO is not waited on.
    std::filesystem::create_symlink("/dev/full", h.dir + "/full.conf.tmp");
    CHECK(h.ctl->write_config(h.dir + "/full.conf") ==
          "cannot write " + h.dir +
              "/full.conf.tmp: it exists and is a symbolic link, not a regular file");
    REQUIRE(::mkfifo((h.dir + "/fifo.conf.tmp").c_str(), 0600) == 0);
    CHECK(h.ctl->write_config(h.dir + "/fifo.conf") ==
          "cannot write " + h.dir + "/fifo.conf.tmp: it exists and is a FIFO, not a regular file");
    CHECK(h.ctl->write_config(h.dir + "/ok.conf").empty());

    // The config file swapped for a FIFO with no writer: reload answers at once, the running
    // config stays.
    std::filesystem::remove(h.file);
    REQUIRE(::mkfifo(h.file.c_str(), 0600) == 0);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(h.ctl->reload() ==
          h.file + ": cannot read: not a regular file (a FIFO); a config file must be one");
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(500));
    CHECK(h.ctl->status().services.size() == 1);
}

TEST_CASE("control: lbctl -R names the input line of what lb refused", "[control][lbctl]") {
    Harness h;
    const std::string rules =
        "# restore\n"
        "-A -t 198.51.100.11:80 -s rr\n"
        "\n"
        "ipvsadm -a -t 198.51.100.11:80 -r 10.10.0.2 -m -w 2   # first\n"
        "-a -t 198.51.100.12:80 -r 10.10.0.3 -m\n";
    std::vector<RestoreLine> from;
    const std::vector<Op> ops = restore_ops(rules, &from);
    REQUIRE(from.size() == 3);
    CHECK(from[1].line == 4);
    CHECK(from[1].text == "-a -t 198.51.100.11:80 -r 10.10.0.2 -m -w 2");
    const std::string err = h.ctl->apply(ops);
    CHECK(err == "operation 3 (-a TCP 198.51.100.12:80 -r 10.10.0.3:80): no such service");
    CHECK(restore_error(err, from) ==
          "line 5: -a -t 198.51.100.12:80 -r 10.10.0.3 -m: no such service");
    // The config's own validation, for a single line.
    std::vector<RestoreLine> one;
    const std::string err1 = h.ctl->apply(
        restore_ops("\n\n-a -t 198.51.100.10:80 -r 192.0.2.7 -m\n", &one));
    CHECK_THAT(restore_error(err1, one),
               Catch::StartsWith("line 3: -a -t 198.51.100.10:80 -r 192.0.2.7 -m: ") &&
                   Catch::Contains("no interface or route reaches 192.0.2.7"));
    // Messages that name no operation stay as they are.
    CHECK(restore_error("cannot connect to /x: No such file or directory", from) ==
          "cannot connect to /x: No such file or directory");
    CHECK(restore_error("operation 9 (-C): x", from) == "operation 9 (-C): x");
    CHECK(h.ctl->status().services.size() == 1);
}

TEST_CASE("control: connection listing and worker counters", "[control]") {
    Harness h;
    // Put two connections in the worker's table directly.
    lb::dp::Conn c{};
    c.client_ip = rte_cpu_to_be_32(parse_ipv4("198.51.100.2"));
    c.vip = rte_cpu_to_be_32(parse_ipv4("198.51.100.10"));
    c.real_ip = rte_cpu_to_be_32(parse_ipv4("10.10.0.2"));
    c.client_port = rte_cpu_to_be_16(40000);
    c.vport = c.real_port = rte_cpu_to_be_16(80);
    c.proto = 6;
    c.state = uint8_t(lb::dp::TcpState::Established);
    c.expire = 100'000;
    c.tmpl = lb::dp::ConnTable::kNone;
    REQUIRE(h.worker->conns.insert(c) != lb::dp::ConnTable::kNone);
    c.client_port = rte_cpu_to_be_16(40001);
    c.proto = 17;
    REQUIRE(h.worker->conns.insert(c) != lb::dp::ConnTable::kNone);
    h.worker->counters.table_size.v = 2;

    std::atomic<bool> stop{false};
    std::thread worker_loop([&] {
        while (!stop.load()) {
            h.worker->serve_dump(10'000);
        }
    });
    const Connections conns = h.ctl->connections();
    stop = true;
    worker_loop.join();
    CHECK(conns.total == 2);
    REQUIRE(conns.entries.size() == 2);
    CHECK(conns.entries[0].state == "ESTABLISHED");
    CHECK(conns.entries[0].cport == 40000);
    CHECK(conns.entries[0].expire_s == 90);
    CHECK(conns.entries[1].state == "UDP");
    CHECK(conns.entries[1].proto == 17);

    // A worker that never answers makes an error, not a hang.
    CHECK_THROWS_WITH(h.ctl->connections(), Catch::Contains("did not answer"));

    const Workers ws = h.ctl->workers_status();
    REQUIRE(ws.workers.size() == 1);
    CHECK(ws.workers[0].lcore == 1);
    CHECK(ws.workers[0].conns_in_table == 2);
    CHECK(ws.workers[0].drops.size() == size_t(lb::dp::Drop::Count));
    // The control thread's neighbour counts ride with worker 0 (lbctl --workers, metrics).
    size_t neigh = 0;
    for (const auto& [name, value] : ws.workers[0].counters) {
        neigh += name.rfind("neigh_", 0) == 0;
    }
    CHECK(neigh == 10);
    CHECK(h.ctl->counters_text().find("neigh_claims_refused 0\n") != std::string::npos);
    CHECK(h.ctl->counters_text().find("neigh_entries ") != std::string::npos);
}

TEST_CASE("control: the socket streams the connection listing, batch by batch", "[control]") {
    Harness h(16384, true);
    constexpr uint16_t kConns = 9000;  // three dump batches
    lb::dp::Conn c{};
    c.client_ip = rte_cpu_to_be_32(parse_ipv4("198.51.100.2"));
    c.vip = rte_cpu_to_be_32(parse_ipv4("198.51.100.10"));
    c.real_ip = rte_cpu_to_be_32(parse_ipv4("10.10.0.2"));
    c.vport = c.real_port = rte_cpu_to_be_16(80);
    c.proto = 6;
    c.state = uint8_t(lb::dp::TcpState::Established);
    c.expire = 100'000;
    c.tmpl = lb::dp::ConnTable::kNone;
    for (uint16_t i = 0; i < kConns; ++i) {
        c.client_port = rte_cpu_to_be_16(uint16_t(20000 + i));
        REQUIRE(h.worker->conns.insert(c) != lb::dp::ConnTable::kNone);
    }
    h.worker->counters.table_size.v = kConns;
    std::atomic<bool> stop{false}, stop_worker{false};
    std::thread worker_loop([&] {
        while (!stop_worker.load()) {
            h.worker->serve_dump(10'000);
        }
    });
    std::thread control_loop([&] { h.ctl->run(stop, 0); });
    const std::string sock = h.dir + "/lb.sock";
    for (int i = 0; i < 200 && !std::filesystem::exists(sock); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    {
        Connection conn(sock, 5000);
        conn.send(GetConnections{});
        Reply r = conn.read_reply();
        REQUIRE(std::holds_alternative<ConnsBegin>(r));
        CHECK(std::get<ConnsBegin>(r).total == kConns);
        std::vector<bool> seen(kConns);
        uint64_t n = 0;
        while (std::holds_alternative<ConnEntry>(r = conn.read_reply())) {
            const ConnEntry& e = std::get<ConnEntry>(r);
            REQUIRE(e.cport >= 20000);
            REQUIRE(e.cport < 20000 + kConns);
            CHECK_FALSE(seen[e.cport - 20000]);
            seen[e.cport - 20000] = true;
            CHECK(e.state == "ESTABLISHED");
            CHECK(e.expire_s == 90);
            ++n;
        }
        REQUIRE(std::holds_alternative<ConnsEnd>(r));
        CHECK(std::get<ConnsEnd>(r).count == kConns);
        CHECK(n == kConns);
    }
    // A worker that does not answer: an Error reply, not the start of a listing.
    stop_worker = true;
    worker_loop.join();
    const Reply r = request(sock, GetConnections{});
    stop = true;
    control_loop.join();
    REQUIRE(std::holds_alternative<Error>(r));
    CHECK_THAT(std::get<Error>(r).message, Catch::Contains("did not answer"));
}

TEST_CASE("control: a VIP is never a real's address, by any path", "[control]") {
    Harness h;
    // -A of a real's address: refused, naming the address and both roles.
    CHECK(h.ctl->apply({service_op(OpKind::AddService, "10.10.0.2", 81)}) ==
          "-A TCP 10.10.0.2:81: 10.10.0.2 is a real of TCP 198.51.100.10:80; a VIP must not be a "
          "real's address");
    // -a of a VIP's address as a real, of this service or another one.
    CHECK(h.ctl->apply({service_op(OpKind::AddService, "198.51.100.11", 80)}).empty());
    CHECK(h.ctl->apply({real_op(OpKind::AddReal, "198.51.100.10", 80, "198.51.100.11", 80)}) ==
          "-a TCP 198.51.100.10:80 -r 198.51.100.11:80: 198.51.100.11 is the VIP of TCP "
          "198.51.100.11:80; a real must not be a VIP");
    Op dr = real_op(OpKind::AddReal, "198.51.100.11", 80, "198.51.100.10", 80);
    dr.forward = 2;
    CHECK_THAT(h.ctl->apply({dr}),
               Catch::Contains("198.51.100.10 is the VIP of TCP 198.51.100.10:80; a real must "
                               "not be a VIP"));
    // -R (a restore), one line.
    std::vector<RestoreLine> from;
    const std::string err = h.ctl->apply(restore_ops("-A -t 10.10.0.3:443 -s rr\n", &from));
    CHECK(restore_error(err, from) ==
          "line 1: -A -t 10.10.0.3:443 -s rr: 10.10.0.3 is a real of TCP 198.51.100.10:80; a VIP "
          "must not be a real's address");
    // -R, a conflict within the restore: named at the line that makes it.
    from.clear();
    const std::string err2 = h.ctl->apply(restore_ops("-A -t 198.51.100.12:80 -s rr\n"
                                                      "-a -t 198.51.100.12:80 -r 10.10.0.5 -m\n"
                                                      "-A -t 10.10.0.5:80 -s wlc\n",
                                                      &from));
    CHECK(restore_error(err2, from) ==
          "line 3: -A -t 10.10.0.5:80 -s wlc: 10.10.0.5 is a real of TCP 198.51.100.12:80; a VIP "
          "must not be a real's address");
    // The running config is unchanged.
    Status st = h.ctl->status();
    REQUIRE(st.services.size() == 2);
    CHECK(st.services[0].reals.size() == 2);
    CHECK(st.services[1].reals.empty());
    // Reload of a file with a real's address as a VIP: refused, the running config stays.
    std::string text = kText;
    text.replace(text.find("vip = \"198.51.100.10\""), 21, "vip = \"10.10.0.3\"");
    std::ofstream(h.file) << text;
    CHECK_THAT(h.ctl->reload(),
               Catch::StartsWith(h.file + ":") &&
                   Catch::Contains("services[0].reals[1].address: 10.10.0.3 is the VIP of TCP "
                                   "10.10.0.3:80; a real must not be a VIP"));
    CHECK(h.ctl->status().services.size() == 2);
}

namespace {

bool answered(Harness& h, const char* vip) {
    return h.snap.load()->is_vip(rte_cpu_to_be_32(parse_ipv4(vip)));
}

uint16_t svc_slot(Harness& h, const char* vip, uint16_t port) {
    const lb::dp::Service* s =
        h.snap.load()->find_service(rte_cpu_to_be_32(parse_ipv4(vip)), rte_cpu_to_be_16(port), 6);
    REQUIRE(s != nullptr);
    return s->stats_slot;
}

uint64_t now_ms() {
    using namespace std::chrono;
    return uint64_t(duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

}  // namespace

TEST_CASE("control: a retired VIP is answered while its connections live, bounded",
          "[control]") {
    Harness h;
    const Op add = service_op(OpKind::AddService, "198.51.100.11", 80);
    const Op del = service_op(OpKind::DeleteService, "198.51.100.11", 80);
    CHECK(h.ctl->apply({add}).empty());
    lb::dp::Counter& active = h.worker->svc_stats[svc_slot(h, "198.51.100.11", 80)].active;

    SECTION("without connections it goes at the next tick") {
        CHECK(h.ctl->apply({del}).empty());
        CHECK(answered(h, "198.51.100.11"));  // the workers may still be on the old snapshot
        h.ctl->retired_tick(now_ms());
        CHECK_FALSE(answered(h, "198.51.100.11"));
    }
    SECTION("it goes when its last connection ends") {
        active.v = 1;
        CHECK(h.ctl->apply({del}).empty());
        h.ctl->retired_tick(now_ms());
        CHECK(answered(h, "198.51.100.11"));
        // A reload (the file never had it) keeps it no longer than its connections.
        CHECK(h.ctl->reload().empty());
        CHECK(answered(h, "198.51.100.11"));
        active.v = 0;
        h.ctl->retired_tick(now_ms());
        CHECK_FALSE(answered(h, "198.51.100.11"));
        CHECK(h.ctl->reload().empty());
        CHECK_FALSE(answered(h, "198.51.100.11"));
    }
    SECTION("it goes after the longest timeout, connections or not; a reload does not revive") {
        active.v = 1;
        CHECK(h.ctl->apply({del}).empty());
        CHECK(h.ctl->reload().empty());
        h.ctl->retired_tick(now_ms());
        CHECK(answered(h, "198.51.100.11"));
        h.ctl->retired_tick(now_ms() + 901'000);  // tcp_timeout 900 s
        CHECK_FALSE(answered(h, "198.51.100.11"));
        CHECK(h.ctl->reload().empty());
        CHECK_FALSE(answered(h, "198.51.100.11"));
        active.v = 0;
    }
    SECTION("a VIP that the change makes a real is not kept") {
        active.v = 1;
        CHECK(h.ctl->apply({del, real_op(OpKind::AddReal, "198.51.100.10", 80, "198.51.100.11",
                                         80)})
                  .empty());
        CHECK_FALSE(answered(h, "198.51.100.11"));
        active.v = 0;
    }
    SECTION("another service on the VIP keeps it; its connections keep it after the last") {
        CHECK(h.ctl->apply({service_op(OpKind::AddService, "198.51.100.11", 443)}).empty());
        active.v = 1;
        CHECK(h.ctl->apply({del}).empty());
        h.ctl->retired_tick(now_ms());
        CHECK(answered(h, "198.51.100.11"));
        CHECK(h.ctl->apply({service_op(OpKind::DeleteService, "198.51.100.11", 443)}).empty());
        h.ctl->retired_tick(now_ms());
        CHECK(answered(h, "198.51.100.11"));  // the port-80 service's connection
        active.v = 0;
        h.ctl->retired_tick(now_ms());
        CHECK_FALSE(answered(h, "198.51.100.11"));
    }
}
