// The worker's connection state: gauges, expiry, eviction when the table is full, and the
// lookup of a live connection.
#include <algorithm>
#include <cstring>

#include <rte_ether.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_tcp.h>

#include "dataplane/checksum.hpp"
#include "dataplane/sched.hpp"
#include "dataplane/wire.hpp"
#include "dataplane/worker_inline.hpp"

namespace lb::dp {

void Worker::gauge(const Conn& c, bool add) noexcept {
    // The service's gauges too: control reuses a removed service's counter slot only when
    // they read zero.
    TrafficCounters* both[2] = {&real_stats[c.real_slot], &svc_stats[c.svc_slot]};
    for (TrafficCounters* t : both) {
        Counter& g = is_template(c) ? t->persist
                     : c.proto == IPPROTO_TCP && TcpState(c.state) == TcpState::Established
                         ? t->active
                         : t->inactive;
        if (add) {
            g.add(1);
        } else {
            g.sub(1);
        }
    }
}

void Worker::set_state(Conn& c, TcpState next) noexcept {
    // The gauges count ESTABLISHED (active) and the rest (inactive): only a move across that
    // line changes them.
    const bool was = TcpState(c.state) == TcpState::Established;
    if (was != (next == TcpState::Established) && !is_template(c)) {
        gauge(c, false);
        c.state = uint8_t(next);
        gauge(c, true);
        return;
    }
    c.state = uint8_t(next);
}

void Worker::remove_conn(uint32_t idx) noexcept {
    const Conn& c = conns.at(idx);
    if (!is_template(c) && c.tmpl != ConnTable::kNone) {
        --conns.at(c.tmpl).tmpl;  // a template outlives the connections it controls
    }
    gauge(c, false);
    conns.remove(idx);
}

void Worker::expire(uint32_t now_ms, uint32_t budget) noexcept {
    const uint32_t n = conns.sweep(now_ms, budget, [this, now_ms](Conn& c) {
        if (is_template(c)) {
            if (c.tmpl != 0) {
                // Still controls connections: it lives on (IPVS re-arms it the same way).
                c.expire = now_ms + 1000;
                return false;
            }
        } else if (c.tmpl != ConnTable::kNone) {
            --conns.at(c.tmpl).tmpl;
        }
        gauge(c, false);
        return true;
    });
    if (n != 0) {
        counters.conns_expired.add(n);
    }
}

bool Worker::make_room(uint32_t now) noexcept {
    const uint32_t cap = conns.capacity();
    for (uint32_t k = 0; k < kEvictScan && k < cap; ++k) {
        const uint32_t i = evict_cursor_;
        evict_cursor_ = evict_cursor_ + 1 == cap ? 0 : evict_cursor_ + 1;
        const Conn& c = conns.at(i);
        if (!c.in_use) {
            continue;
        }
        if (expired(c.expire, now) && (!is_template(c) || c.tmpl == 0)) {
            remove_conn(i);
            counters.conns_expired.add(1);
            return true;
        }
        const auto s = TcpState(c.state);
        if (!is_template(c) && c.proto == IPPROTO_TCP &&
            (s == TcpState::SynRecv || s == TcpState::None)) {
            remove_conn(i);
            counters.conns_evicted.add(1);
            return true;
        }
    }
    return false;
}

uint32_t Worker::find_live(const FlowKey& k, uint64_t h, Dir want, uint32_t now,
                           uint32_t cand) noexcept {
    Dir d{};
    uint32_t idx;
    if (cand < kNoCandidate && conns.verify(k, cand)) {
        idx = cand >> 1;  // the usual case: the candidate's entry is warm and is the one
        d = Dir(cand & 1);
    } else if (cand == ConnTable::kNone && !added_in_burst(h)) {
        idx = ConnTable::kNone;  // no slot had the signature, and no key with h was added since
    } else {
        idx = conns.lookup(k, h, d);
    }
    if (idx == ConnTable::kNone || d != want) {
        return ConnTable::kNone;
    }
    if (expired(conns.at(idx).expire, now)) {
        remove_conn(idx);
        counters.conns_expired.add(1);
        return ConnTable::kNone;
    }
    return idx;
}

}  // namespace lb::dp
