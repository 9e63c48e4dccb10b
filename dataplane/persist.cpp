// Persistence (ipvsadm -p): a template per client (and netmask) that sends the client's new
// connections to the real its first one went to.
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

uint32_t Worker::find_template(const FlowKey& k, uint64_t h, uint32_t now) noexcept {
    Dir d{};
    const uint32_t idx = conns.lookup(k, h, d);
    if (idx == ConnTable::kNone || d != Dir::In) {
        return ConnTable::kNone;
    }
    if (expired(conns.at(idx).expire, now) && conns.at(idx).tmpl == 0) {
        remove_conn(idx);
        counters.conns_expired.add(1);
        return ConnTable::kNone;
    }
    return idx;
}

Worker::Pick Worker::persist_pick(const Service& svc, const Parsed& p, uint32_t now) noexcept {
    const uint8_t tproto = uint8_t(p.proto | kTemplateProto);
    const FlowKey k{p.src & svc.persist_mask, p.dst, 0, p.dport, tproto};
    const uint64_t h = ConnTable::hash(k);
    uint32_t t = find_template(k, h, now);
    int32_t pick = kNoReal;
    if (t != ConnTable::kNone) {
        Conn& tc = conns.at(t);
        for (size_t i = 0; i < svc.reals.size(); ++i) {
            // A quiescent real (weight 0) keeps its persistent clients, as in IPVS.
            if (svc.reals[i].addr == tc.real_ip && svc.reals[i].port == tc.real_port) {
                pick = int32_t(i);
                break;
            }
        }
        if (pick == kNoReal) {
            // Its real is gone from the service: schedule afresh and point the template there.
            pick = sched_pick(svc, SchedCtx{p.src, p.sport, p.dst, real_stats.get(), overload});
            if (pick == kNoReal) {
                return {};
            }
            const Real& r = svc.reals[size_t(pick)];
            burst_inserts_ = kBurstKeysUnknown;
            if (!conns.set_real(t, r.addr, r.port)) {
                return {};
            }
            gauge(tc, false);
            tc.real_slot = r.stats_slot;
            tc.forward = uint8_t(r.forward);
            gauge(tc, true);
        }
    } else {
        pick = sched_pick(svc, SchedCtx{p.src, p.sport, p.dst, real_stats.get(), overload});
        if (pick == kNoReal) {
            return {};
        }
        const Real& r = svc.reals[size_t(pick)];
        Conn c{};
        c.client_ip = k.src;
        c.vip = k.dst;
        c.vport = k.dport;
        c.real_ip = r.addr;
        c.real_port = r.port;
        c.proto = tproto;
        c.forward = uint8_t(r.forward);
        c.svc_slot = svc.stats_slot;
        c.real_slot = r.stats_slot;
        c.tmpl = 0;
        t = conns.insert(c);
        if (t == ConnTable::kNone && conns.size() == conns.capacity() && make_room(now)) {
            t = conns.insert(c);
        }
        burst_inserts_ = kBurstKeysUnknown;
        if (t == ConnTable::kNone) {
            return {kNoReal, Drop::TableFull};  // no room for the template
        }
        gauge(conns.at(t), true);
    }
    conns.at(t).expire = now + svc.persistence * 1000;
    return {pick, Drop::NoReal, t};
}

}  // namespace lb::dp
