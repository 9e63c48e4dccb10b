// ARP: answers for the director's addresses and VIPs, and what the workers tell control about
// the senders (learned neighbours, replies to its probes).
#include <algorithm>
#include <cstring>

#include <rte_arp.h>
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
    auto* eth = header_at<rte_ether_hdr>(f);
    auto* a = header_at<rte_arp_hdr>(f + kEth);
    rte_arp_ipv4& d = a->arp_data;
    const Interface& ifc = *snap.interface_of(m->port);
    const uint16_t op = rte_be_to_cpu_16(it.p.sport);
    const rte_be32_t sender = it.p.src, target = it.p.dst;
    const bool sender_on_link = sender != 0 && (sender & ifc.mask) == (ifc.addr & ifc.mask);
    const bool for_us = snap.is_local(target) || snap.is_vip(target);
    // Never an entry for one of our own addresses or VIPs, whoever claims it.
    const bool sender_ours = snap.is_local(sender) || snap.is_vip(sender);
    if (op == RTE_ARP_OP_REQUEST && for_us) {
        if (sender_on_link && !sender_ours) {
            slow_msg(SlowMsg::Learn, m->port, sender, d.arp_sha.addr_bytes);
        }
        // Turn the request into the reply, in place.
        eth->dst_addr = d.arp_sha;  // to the requester
        eth->src_addr = ifc.mac;
        a->arp_opcode = RTE_BE16(RTE_ARP_OP_REPLY);
        d.arp_tha = d.arp_sha;
        d.arp_tip = d.arp_sip;
        d.arp_sha = ifc.mac;
        d.arp_sip = target;  // the address asked for
        counters.arp_replies.add(1);
        stage(m->port, m);
        return;
    }
    if (op == RTE_ARP_OP_REPLY && target == ifc.addr && sender != 0 && !sender_ours) {
        // Control decides: an answer to its own probe, or a claim it refuses (and reports). One
        // from off-link can only be a claim (a known neighbour's address seen on the wrong
        // port): reported, and ignored here.
        slow_msg(SlowMsg::Reply, m->port, sender, d.arp_sha.addr_bytes);
        if (sender_on_link) {
            counters.consumed.add(1);
            rte_pktmbuf_free(m);
            return;
        }
    }
    drop(m, Drop::ArpIgnored);
}

}  // namespace lb::dp
