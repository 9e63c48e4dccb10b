// ARP: answers for the director's addresses and VIPs, and what the workers tell control about
// the senders (learned neighbours, replies to its probes).
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

void Worker::handle_arp(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept {
    uint8_t* f = frame_of(m);
    uint8_t* a = f + kEth;
    const Interface& ifc = *snap.interface_of(m->port);
    const uint16_t op = rte_be_to_cpu_16(it.p.sport);
    const rte_be32_t sender = it.p.src, target = it.p.dst;
    const bool sender_on_link = sender != 0 && (sender & ifc.mask) == (ifc.addr & ifc.mask);
    const bool for_us = snap.is_local(target) || snap.is_vip(target);
    // Never an entry for one of our own addresses or VIPs, whoever claims it.
    const bool sender_ours = snap.is_local(sender) || snap.is_vip(sender);
    if (op == 1 && for_us) {
        if (sender_on_link && !sender_ours) {
            slow_msg(SlowMsg::Learn, m->port, sender, a + 8);
        }
        // Turn the request into the reply, in place.
        std::memcpy(f, a + 8, 6);                    // eth dst = requester
        std::memcpy(f + 6, ifc.mac.addr_bytes, 6);   // eth src = us
        wr16(a + 6, rte_cpu_to_be_16(2));
        std::memcpy(a + 18, a + 8, 10);              // tha, tpa = requester's sha, spa
        std::memcpy(a + 8, ifc.mac.addr_bytes, 6);   // sha = us
        wr32(a + 14, target);                        // spa = the address asked for
        counters.arp_replies.add(1);
        stage(m->port, m);
        return;
    }
    if (op == 2 && target == ifc.addr && sender != 0 && !sender_ours) {
        // Control decides: an answer to its own probe, or a claim it refuses (and reports). One
        // from off-link can only be a claim (a known neighbour's address seen on the wrong
        // port): reported, and ignored here.
        slow_msg(SlowMsg::Reply, m->port, sender, a + 8);
        if (sender_on_link) {
            counters.consumed.add(1);
            rte_pktmbuf_free(m);
            return;
        }
    }
    drop(m, Drop::ArpIgnored);
}

}  // namespace lb::dp
