// The poll loop of a worker lcore.
#include "dataplane/worker.hpp"

#include <algorithm>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_random.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

namespace lb::dp {

Worker::Worker(uint16_t id, uint16_t n_workers, uint32_t conn_capacity,
               const NeighbourTable& neigh)
    : svc_stats(new TrafficCounters[kMaxServices]),
      real_stats(new TrafficCounters[kMaxReals]),
      conns(conn_capacity),
      id_(id),
      n_workers_(n_workers),
      neigh_(neigh) {
    probe_secret_ = uint32_t(rte_rand());
}

void Worker::run(const WorkerIo& io) {
    rte_rcu_qsbr_thread_register(io.qsbr, id_);
    rte_rcu_qsbr_thread_online(io.qsbr, id_);
    const uint64_t tsc_per_ms = rte_get_tsc_hz() / 1000;
    rte_mbuf* burst[kBurst];
    sweep_last_ms_ = uint32_t(rte_rdtsc() / tsc_per_ms);
    // A list that fills in the middle of a burst goes to its port's TX queue at once.
    struct SinkCtx {
        uint16_t queue;
    } sink_ctx{id_};
    set_tx_sink({[](void* ctx, uint16_t port, rte_mbuf** pkts, uint16_t n) -> uint16_t {
                     return rte_eth_tx_burst(port, static_cast<SinkCtx*>(ctx)->queue, pkts, n);
                 },
                 &sink_ctx});

    while (!io.stop->load(std::memory_order_relaxed)) {
        const Snapshot& snap = *io.snapshot->load(std::memory_order_acquire);
        poll_turn(io, snap, uint32_t(rte_rdtsc() / tsc_per_ms), burst);
        rte_rcu_qsbr_quiescent(io.qsbr, id_);  // no snapshot reference survives this line
    }
    release_held(0, true);
    set_tx_sink({});
    rte_rcu_qsbr_thread_offline(io.qsbr, id_);
    rte_rcu_qsbr_thread_unregister(io.qsbr, id_);
}

void Worker::flush(const WorkerIo& io) noexcept {
    for (uint16_t i = 0; i < io.n_ports; ++i) {
        const uint16_t port = io.ports[i];
        Staged& t = tx[port];
        if (t.n == 0) {
            continue;
        }
        const uint16_t sent = rte_eth_tx_burst(port, id_, t.pkts.data(), t.n);
        counters.tx.add(sent);
        for (uint16_t k = sent; k < t.n; ++k) {
            drop(t.pkts[k], Drop::TxFull);
        }
        t.n = 0;
    }
    for (uint16_t w = 0; w < n_workers_; ++w) {
        Staged& r = redirect[w];
        if (r.n == 0) {
            continue;
        }
        const unsigned put = rte_ring_sp_enqueue_burst(
            io.redirect_out[w], reinterpret_cast<void* const*>(r.pkts.data()), r.n, nullptr);
        for (uint16_t k = uint16_t(put); k < r.n; ++k) {
            drop(r.pkts[k], Drop::RedirectFull);
        }
        r.n = 0;
    }
    if (n_slow != 0) {
        const unsigned put = rte_ring_sp_enqueue_burst_elem(io.slow, slow.data(),
                                                            sizeof(SlowMsg), n_slow, nullptr);
        if (put < n_slow) {
            counters.drops[size_t(Drop::SlowPathFull)].add(n_slow - put);
        }
        n_slow = 0;
    }
}

void Worker::poll_turn(const WorkerIo& io, const Snapshot& snap, uint32_t now,
                       rte_mbuf** burst) noexcept {
    for (uint16_t i = 0; i < io.n_ports; ++i) {
        const uint16_t n = rte_eth_rx_burst(io.ports[i], id_, burst, kBurst);
        if (n != 0) {
            counters.rx.add(n);
            process_burst(snap, burst, n, now);
            flush(io);
        }
    }
    for (uint16_t w = 0; w < n_workers_; ++w) {
        if (w == id_) {
            continue;
        }
        const unsigned n = rte_ring_sc_dequeue_burst(
            io.redirect_in[w], reinterpret_cast<void**>(burst), kBurst, nullptr);
        if (n != 0) {
            counters.redirected_in.add(n);
            process_burst(snap, burst, uint16_t(n), now);
            flush(io);
        }
    }
    // Frames the control thread built (ARP requests): sent from our TX queue.
    const unsigned n =
        rte_ring_sc_dequeue_burst(io.ctl_tx, reinterpret_cast<void**>(burst), kBurst, nullptr);
    for (unsigned k = 0; k < n; ++k) {
        if (burst[k]->port < kMaxPorts) {
            stage(burst[k]->port, burst[k]);
        } else {
            drop(burst[k], Drop::NoRoute);
        }
    }
    if (n != 0) {
        flush(io);
    }
    const bool had_held = n_held_ != 0;
    housekeeping(now);
    if (had_held) {
        flush(io);
    }
    counters.table_size.v.store(conns.size(), std::memory_order_relaxed);
    serve_dump(now);
}

void Worker::housekeeping(uint32_t now) noexcept {
    if (now != sweep_last_ms_) {
        // At most a whole table's worth pending (a clock jump must not make it sweep for ages).
        const uint64_t cap = conns.capacity(), size = conns.size();
        const uint64_t per_ms = cap * (size * 4 > cap * 3 ? 4 : size * 2 > cap ? 2 : 1);
        sweep_credit_ = std::min(sweep_credit_ + uint64_t(now - sweep_last_ms_) * per_ms,
                                 cap * 1000);
        sweep_last_ms_ = now;
    }
    if (sweep_credit_ >= 1000) {
        const auto budget = uint32_t(std::min<uint64_t>(sweep_credit_ / 1000, kSweepMaxPerTurn));
        sweep_credit_ -= uint64_t(budget) * 1000;
        expire(now, budget);
    }
    if (n_held_ != 0) {
        release_held(now);
    }
}

void Worker::serve_dump(uint32_t now_ms) noexcept {
    const uint32_t req = dump.req.load(std::memory_order_acquire);
    if (req == dump.done.load(std::memory_order_relaxed)) {
        return;
    }
    // Bounded work per loop turn: look at no more than 64K entries.
    const uint32_t cap = conns.capacity();
    uint32_t i = std::min(dump.start, cap);
    const uint32_t end = i + std::min<uint32_t>(cap - i, 65536);
    uint32_t n = 0;
    for (; i < end && n < dump.max; ++i) {
        const Conn& c = conns.at(i);
        if (c.in_use) {
            dump.out[n++] = c;
        }
    }
    dump.n = n;
    dump.next = i;
    dump.now = now_ms;
    dump.done.store(req, std::memory_order_release);
}

}  // namespace lb::dp
