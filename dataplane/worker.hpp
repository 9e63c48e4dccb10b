#pragma once
// A worker: the state one poll-mode lcore owns (connection table, counters, staging buffers)
// and the packet logic. process_burst() is I/O-agnostic: it takes frames and a snapshot and
// leaves every frame in exactly one place (a TX staging list, a redirect list, or freed with a
// counted reason). run() is the poll loop that connects it to ports and rings.
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include <rte_mbuf.h>

#include "dataplane/conn_table.hpp"
#include "dataplane/neighbour.hpp"
#include "dataplane/parse.hpp"
#include "dataplane/sched.hpp"
#include "dataplane/snapshot.hpp"
#include "dataplane/types.hpp"

struct rte_mempool;
struct rte_ring;
struct rte_rcu_qsbr;

namespace lb::dp {

// Worker -> control messages (16-byte ring elements). Learn: the on-link sender of an ARP
// request for one of our addresses or VIPs; Reply: the sender of an ARP reply to our interface
// address (control takes it only if it answers its own probe); Resolve: a next hop we need.
struct SlowMsg {
    enum Type : uint8_t { Learn = 1, Resolve = 2, Reply = 3 };
    uint8_t type = 0;
    uint8_t port = 0;
    uint8_t mac[6] = {};
    rte_be32_t ip = 0;
    uint32_t pad = 0;
};
static_assert(sizeof(SlowMsg) == 16);

// What connects a worker to the outside; filled by lb's main, absent in tests.
struct WorkerIo {
    uint16_t n_ports = 0;
    std::array<uint16_t, kMaxPorts> ports{};
    std::array<rte_ring*, kMaxWorkers> redirect_out{};  // [w]: this worker -> worker w
    std::array<rte_ring*, kMaxWorkers> redirect_in{};   // [w]: worker w -> this worker
    rte_ring* slow = nullptr;                           // SlowMsg, this worker -> control
    rte_ring* ctl_tx = nullptr;                         // mbufs control asks us to send
    rte_rcu_qsbr* qsbr = nullptr;
    const std::atomic<const Snapshot*>* snapshot = nullptr;
    const std::atomic<bool>* stop = nullptr;
};

inline constexpr uint16_t kStageCap = 2 * kBurst;

struct Staged {
    uint16_t n = 0;
    std::array<rte_mbuf*, kStageCap> pkts{};
};

// Where a full TX staging list goes in the middle of a burst (as l3fwd's send_packetsx4 sends at
// MAX_PKT_BURST): takes up to n frames of pkts for port and returns how many it took; the rest
// are dropped (tx_full). run() sends them to the port's TX queue; a test may collect them.
// Without a sink (the harness, most tests) a frame that finds its list full is dropped.
struct TxSink {
    uint16_t (*send)(void* ctx, uint16_t port, rte_mbuf** pkts, uint16_t n) = nullptr;
    void* ctx = nullptr;
};

class alignas(RTE_CACHE_LINE_SIZE) Worker {
public:
    Worker(uint16_t id, uint16_t n_workers, uint32_t conn_capacity, const NeighbourTable& neigh);
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    uint16_t id() const noexcept { return id_; }

    // The first way of the fragment-note set of (src, dst, id, proto) (public for tests).
    static uint32_t frag_set(rte_be32_t src, rte_be32_t dst, rte_be16_t id, uint8_t proto) noexcept;

    // RSTs for segments of no connection (connections.reset_unknown), per worker.
    static constexpr uint32_t kResetsPerSec = 1000, kResetBurst = 64;

    // Where full TX lists go during a burst (run() sets its own).
    void set_tx_sink(TxSink s) noexcept { sink_ = s; }

    // Frames arrived on their mbuf's `port`. n <= kBurst.
    void process_burst(const Snapshot& snap, rte_mbuf** pkts, uint16_t n, uint32_t now_ms) noexcept;

    // Removes up to `budget` examined entries' worth of expired connections.
    void expire(uint32_t now_ms, uint32_t budget) noexcept;

    // Between bursts, every loop turn: the expiry sweep (the whole table about once a second of
    // `now`, twice when it is over half full, four times over three quarters: a loaded table
    // gives its dead entries back sooner; at most kSweepMaxPerTurn entries a turn) and held
    // frames whose neighbour resolved or whose time is up (staged for TX or dropped).
    void housekeeping(uint32_t now) noexcept;
    static constexpr uint32_t kSweepMaxPerTurn = 256;

    // The poll loop; returns when *io.stop becomes true.
    void run(const WorkerIo& io);
    // One turn of it: each port's RX burst, then the other workers' redirected frames and
    // control's, each processed and flushed; housekeeping, the table gauge, a pending dump.
    void poll_turn(const WorkerIo& io, const Snapshot& snap, uint32_t now,
                   rte_mbuf** burst) noexcept;
    // The TX lists to their ports (what a queue does not take: tx_full), the redirect lists to
    // their rings (redirect_full), the slow-path messages to control (slow_path_full).
    void flush(const WorkerIo& io) noexcept;

    // Worker that owns the connections of this client address (already under the snapshot's
    // owner_mask).
    static uint16_t owner_of(rte_be32_t client_ip, uint16_t n_workers) noexcept;

    // Staging, drained by run() (or inspected by tests) after each process_burst. Frames enter
    // a list only through stage() / stage_redirect(), which never overrun it.
    std::array<Staged, kMaxPorts> tx{};
    std::array<Staged, kMaxWorkers> redirect{};
    std::array<SlowMsg, kStageCap> slow{};
    uint16_t n_slow = 0;

    WorkerCounters counters;
    // Per real slot: 1 while control finds the real over its thresholds (nullptr: no control).
    const std::atomic<uint8_t>* overload = nullptr;

    // Connection listing (lbctl -c) without locks: control fills a request and bumps `req`;
    // the worker, between bursts, copies up to `max` live entries from index `start` on into
    // `out`, sets `n`, `next` (where to go on) and `now` (its clock), then sets done = req.
    struct Dump {
        std::atomic<uint32_t> req{0}, done{0};
        uint32_t start = 0, max = 0;
        Conn* out = nullptr;
        uint32_t n = 0, next = 0, now = 0;
    };
    Dump dump;
    // Serves a pending dump request, if any; run() calls it every loop turn.
    void serve_dump(uint32_t now_ms) noexcept;

    // Frames waiting for their next hop's MAC (ARP in flight), at most kHeldMax, for at most
    // kHoldMs. release_held() stages those whose neighbour is known now and drops (no_neighbour)
    // those past their time, or all of them with `all`.
    static constexpr uint16_t kHeldMax = 64;
    static constexpr uint32_t kHoldMs = 1000;
    uint16_t held() const noexcept { return n_held_; }
    void release_held(uint32_t now_ms, bool all = false) noexcept;
    std::unique_ptr<TrafficCounters[]> svc_stats;   // [kMaxServices]
    std::unique_ptr<TrafficCounters[]> real_stats;  // [kMaxReals]
    ConnTable conns;

private:
    enum class Kind : uint8_t {
        Done, Arp, Echo, Inbound, Outbound, IcmpToVip, IcmpFromInside, FragLater
    };
    // A new connection scheduled ahead of its handler (preschedule): Picked carries the entry to
    // insert, its reply tuple's hash (whose buckets were prefetched) and its service; the gauges
    // already count it. Martian: its source fails the ingress check (Snapshot::source_ok).
    enum class Pre : uint8_t { None, Picked, TtlExceeded, Martian };
    struct Item {
        Parsed p;
        Quoted q;
        FlowKey key;
        uint64_t hash;
        uint32_t cand;  // ConnTable::candidate() of hash, looked up before the handlers ran
        Kind kind;
        Pre pre;
        Conn fresh;
        uint64_t h_out;
        const Service* svc;
    };
    // The hashes of the keys added since this burst's candidates were looked up: a kNone
    // candidate proves a key absent unless its hash is among them. kBurstKeysUnknown: keys were
    // added that are not listed (persistence templates), so every miss looks up again.
    static constexpr uint32_t kBurstKeys = 2 * kBurst, kBurstKeysUnknown = UINT32_MAX;
    std::array<uint64_t, kBurstKeys> burst_keys_{};
    uint32_t burst_inserts_ = 0;
    // A 256-bit filter over the listed hashes (top byte): most misses need no scan.
    std::array<uint64_t, 4> burst_filter_{};
    void note_burst_key(uint64_t h) noexcept {
        burst_keys_[burst_inserts_++] = h;
        burst_filter_[h >> 62] |= uint64_t(1) << ((h >> 56) & 63);
    }
    bool added_in_burst(uint64_t h) const noexcept {
        if (burst_inserts_ == kBurstKeysUnknown) {
            return true;
        }
        if ((burst_filter_[h >> 62] & (uint64_t(1) << ((h >> 56) & 63))) == 0) {
            return false;
        }
        for (uint32_t i = 0; i < burst_inserts_; ++i) {
            if (burst_keys_[i] == h) {
                return true;
            }
        }
        return false;
    }
    // The burst being processed; a member so that no burst pays for constructing it.
    std::array<Item, kBurst> items_;

    void drop(rte_mbuf* m, Drop why) noexcept;
    // The one way into a TX list: a full list goes to the sink first (or m is dropped, tx_full).
    void stage(uint16_t port, rte_mbuf* m) noexcept {
        Staged& t = tx[port];
        if (t.n == t.pkts.size()) [[unlikely]] {
            stage_full(port, m);
            return;
        }
        t.pkts[t.n++] = m;
    }
    // The one way into a redirect list (bounded: a full list drops m, redirect_full).
    void stage_redirect(uint16_t worker, rte_mbuf* m) noexcept;
    // port's list is full: hands it to the sink and stages m, or drops m (tx_full).
    [[gnu::cold, gnu::noinline]] void stage_full(uint16_t port, rte_mbuf* m) noexcept;
    TxSink sink_;
    // process_burst's stages (pipeline.cpp).
    void stage_classify(const Snapshot& snap, rte_mbuf** pkts, uint16_t n) noexcept;
    void stage_candidates(uint16_t n) noexcept;
    void stage_schedule(const Snapshot& snap, rte_mbuf** pkts, uint16_t n, uint32_t now) noexcept;
    void stage_handle(const Snapshot& snap, rte_mbuf** pkts, uint16_t n, uint32_t now) noexcept;
    void classify(const Snapshot& snap, rte_mbuf* m, Item& it) noexcept;
    bool admit(const Snapshot& snap, rte_mbuf* m, Item& it) noexcept;
    bool kind_by_destination(rte_mbuf* m, Item& it, uint8_t dst_class) noexcept;
    // With several workers (callers check n_workers_ > 1 first, off the one-worker path):
    // stages m for the worker that owns `client`'s connections and returns true, unless that
    // is this one.
    bool redirect_to_owner(const Snapshot& snap, rte_mbuf* m, rte_be32_t client) noexcept;
    void handle_arp(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept;
    void handle_echo(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept;
    // The entry of a new connection from client packet p to `real` of `svc`.
    static Conn new_conn(const Parsed& p, const Service& svc, const Real& real, uint32_t tmpl,
                         uint32_t now, const Timeouts& t) noexcept;
    // The service a packet's new connection may be scheduled for ahead of its handler, or
    // nullptr (the handler schedules it).
    static const Service* schedulable(const Snapshot& snap, const Item& it) noexcept;
    // With the scheduler's pick (< 0: none, left to the handler).
    void preschedule(const Snapshot& snap, const rte_mbuf* m, Item& it, uint32_t now,
                     int32_t pick) noexcept;
    void handle_inbound(const Snapshot& snap, rte_mbuf* m, const Item& it, uint32_t now) noexcept;
    // A new connection's entry before it is inserted: its reply tuple's hash, its persistence
    // template (kNone: none) and its service.
    struct NewConn {
        Conn c;
        uint64_t h_out;
        uint32_t tmpl;
        const Service* svc;
    };
    // handle_inbound's stages (forward.hpp).
    uint32_t live_inbound(const Snapshot& snap, const Item& it, uint32_t now) noexcept;
    bool schedule_inbound(const Snapshot& snap, rte_mbuf* m, const Item& it, uint32_t now,
                          NewConn& out) noexcept;
    uint32_t insert_inbound(rte_mbuf* m, const Item& it, const NewConn& n, uint32_t now) noexcept;
    void forward_inbound(const Snapshot& snap, rte_mbuf* m, const Parsed& p, const Conn& c,
                         const Service* svc) noexcept;
    void handle_outbound(const Snapshot& snap, rte_mbuf* m, const Item& it, uint32_t now) noexcept;
    // A real's segment that no connection knows: a RST to its client (reset_unknown) or dropped.
    [[gnu::cold, gnu::noinline]] void outbound_unknown(const Snapshot& snap, rte_mbuf* m,
                                                       const Parsed& p, uint32_t now) noexcept;
    void handle_icmp_error(const Snapshot& snap, rte_mbuf* m, const Item& it, uint32_t now) noexcept;
    // Route lookup, neighbour, Ethernet rewrite, staging for TX. Consumes m.
    void send_ipv4(const Snapshot& snap, rte_mbuf* m, rte_be32_t dst) noexcept;
    // Neighbour lookup of next_hop on port, Ethernet rewrite, staging for TX. Consumes m.
    void send_on(const Snapshot& snap, rte_mbuf* m, uint16_t port, rte_be32_t next_hop) noexcept;
    // Direct routing: the frame goes to the real's own MAC, the IP packet untouched.
    void xmit_dr(const Snapshot& snap, rte_mbuf* m, rte_be32_t real) noexcept;
    // IP-in-IP to the real. `tunnel_src` 0: the egress interface's address. `answer_too_big`:
    // a DF packet over the egress MTU gets ICMP fragmentation-needed (false for ICMP errors).
    void xmit_tunnel(const Snapshot& snap, rte_mbuf* m, rte_be32_t real, rte_be32_t tunnel_src,
                     bool answer_too_big) noexcept;
    // Turns m, TCP segment p of no connection, into RFC 793's answer to it (a RST whose seq is
    // the segment's ACK, or a RST that acknowledges it) from src:sport to dst:dport and sends
    // it, at most kResetsPerSec a second (a burst of kResetBurst), else drops m (no_connection)
    // and returns false.
    [[gnu::cold, gnu::noinline]] bool send_reset(const Snapshot& snap, rte_mbuf* m,
                                                 const Parsed& p, rte_be32_t src,
                                                 rte_be16_t sport, rte_be32_t dst,
                                                 rte_be16_t dport) noexcept;
    // A new 60-byte TCP segment with the given fields, from pool, routed to dst (no mbuf:
    // counted no_mbuf).
    void send_segment(const Snapshot& snap, rte_mempool* pool, rte_be32_t src, rte_be16_t sport,
                      rte_be32_t dst, rte_be16_t dport, uint32_t seq, uint32_t ack,
                      uint8_t flags) noexcept;
    // Half the sequence space: a probe's sequence number this far from a window is outside it.
    static constexpr uint32_t kProbeFar = 0x80000000u;
    uint32_t reset_tokens_ = kResetBurst;
    uint32_t reset_refill_ms_ = 0;
    // Prepends the outer IPv4 header (src -> real, IP-in-IP; TOS, ID and DF from the packet,
    // which starts after the Ethernet header with its padding trimmed). false: dropped (no
    // headroom).
    bool encapsulate(rte_mbuf* m, rte_be32_t real, rte_be32_t src) noexcept;
    // Turns m, the packet as received (inner_len bytes after the Ethernet header), into ICMP
    // fragmentation-needed (next-hop MTU mtu) to its source, from `from` (0: the address the
    // packet was sent to).
    void send_frag_needed(const Snapshot& snap, rte_mbuf* m, uint16_t inner_len, uint16_t mtu,
                          rte_be32_t from = 0) noexcept;
    // Sends m's IP packet as fragments of at most mtu bytes (a fragment keeps its offset and
    // MF; options without the copied flag only in the first); `sent` counts them. A datagram
    // that would need more than kMaxFragments is dropped (too_big).
    static constexpr uint32_t kMaxFragments = 64;
    void send_fragments(rte_mbuf* m, uint16_t port, const rte_ether_addr& dst_mac,
                        const rte_ether_addr& src_mac, uint16_t mtu, Counter& sent) noexcept;
    // NAT, before the rewrite: the route to dst, or nullptr when m was consumed: no route, or
    // over the egress MTU with DF set, answered with fragmentation-needed from icmp_from (0: the
    // address m was sent to) or, if !may_answer (an ICMP error), dropped as too_big.
    const Route* nat_route(const Snapshot& snap, rte_mbuf* m, rte_be32_t dst,
                           rte_be32_t icmp_from, bool may_answer) noexcept;
    // NAT, after the rewrite: sends m toward dst by r, as fragments if it exceeds the MTU.
    // cache: what egress_ learns from it (kEgressRouted: dst is a real; kEgressNextHop: the
    // route's next hop; anything else: nothing).
    void xmit_nat(const Snapshot& snap, rte_mbuf* m, const Route& r, rte_be32_t dst,
                  uint8_t cache = UINT8_MAX) noexcept;
    // The live connection of k (hash h) in direction `want`; `cand` is the burst's candidate
    // for h (kNoCandidate: none looked up).
    static constexpr uint32_t kNoCandidate = ConnTable::kUnknown;
    uint32_t find_live(const FlowKey& k, uint64_t h, Dir want, uint32_t now,
                       uint32_t cand = kNoCandidate) noexcept;
    // The live persistence template for this client of svc, or kNone.
    uint32_t find_template(const FlowKey& k, uint64_t h, uint32_t now) noexcept;
    // A new connection's real, or why there is none.
    struct Pick {
        int32_t real = kNoReal;            // index into the service's reals; < 0: none
        Drop why = Drop::NoReal;           // when none: NoReal, or TableFull (no template)
        uint32_t tmpl = ConnTable::kNone;  // persistence: the client's template
    };
    // Schedules a new connection of a persistent service through its template (made if
    // needed).
    Pick persist_pick(const Service& svc, const Parsed& p, uint32_t now) noexcept;
    void remove_conn(uint32_t idx) noexcept;
    // The table is full: frees one entry for a new connection, preferring what a SYN flood
    // leaves (TCP connections not yet established, and anything expired), looking at no more
    // than kEvictScan entries from where the last look stopped. False if none was found.
    bool make_room(uint32_t now) noexcept;
    static constexpr uint32_t kEvictScan = 64;
    uint32_t evict_cursor_ = 0;
    void gauge(const Conn& c, bool add) noexcept;
    // A TCP connection's new state, with the active/inactive gauges moved if need be.
    void set_state(Conn& c, TcpState next) noexcept;
    // A packet of connection c in direction dir (frame m): its TCP state and its expiry.
    void track(const Snapshot& snap, Conn& c, const Parsed& p, Dir dir, uint32_t now,
               const rte_mbuf* m) noexcept;
    // teardown.cpp: the TCP state of every segment but an ESTABLISHED connection's plain data
    // and ACKs; a RST or a client's FIN is taken only once the other side's traffic, or the
    // answer to a probe, shows that its receiver took it.
    void track_tcp(const Snapshot& snap, Conn& c, const Parsed& p, Dir dir, uint32_t now,
                   const rte_mbuf* m) noexcept;
    // A RST, or a NAT client's FIN, on a live connection: the pending state it leads to, with
    // its probe queued or its FIN noted (the state unchanged when no probe can be sent).
    TcpState teardown_claim(Conn& c, TcpState s, Dir dir, uint8_t flags, uint32_t seq,
                            uint32_t ack, uint32_t len, uint32_t now, rte_mempool* pool) noexcept;
    // The next state of a connection in RstClient, RstReal or FinClient (not a probe's answer).
    TcpState teardown_answer(Conn& c, TcpState s, Dir dir, uint8_t flags, uint32_t ack,
                             uint32_t len, uint32_t now) noexcept;
    // A SYN on a tun/dr connection in FIN_WAIT (the client's FIN seen): true when it may be
    // scheduled afresh, as IPVS does (sloppy_tcp, the FIN a second old or its note gone). A SYN
    // right behind the FIN (a forged FIN and SYN would move a live download to another real)
    // is counted as a new connection but stays with the connection's real.
    [[gnu::cold, gnu::noinline]] bool reuse_after_fin(const Snapshot& snap, const Conn& c,
                                                      uint32_t now) noexcept;
    // tun/dr: true when segment (seq, len) from the client shows that it did not send the FIN
    // that moved c to FIN_WAIT.
    bool fin_refuted(const Conn& c, uint32_t seq, uint32_t len) const noexcept;
    uint32_t idx_of(const Conn& c) const noexcept;
    // Notes a client's FIN of c (seq, len) in fin_notes_.
    void note_fin(const Conn& c, uint32_t seq, uint32_t len, uint32_t now) noexcept;
    // The probe's acknowledgment number for c: a keyed hash of its client tuple, so that the
    // client's RST in answer (<SEQ=SEG.ACK>, RFC 793) proves that it came from the client.
    uint32_t probe_token(const Conn& c) const noexcept;
    // The probes queued by this burst: an ACK from the VIP to the client, its sequence number
    // half the sequence space from the client's window. A client that still has the
    // connection answers with an ACK (RFC 793's answer to an unacceptable segment), one that
    // does not with a RST that carries probe_token. Counted (tcp_probes).
    [[gnu::cold, gnu::noinline]] void send_probes(const Snapshot& snap) noexcept;
    struct Probe {
        uint32_t idx;  // the connection
        uint32_t seq;  // where the client's window is thought to be
        rte_mempool* pool;
    };
    std::array<Probe, kBurst> probes_{};
    uint16_t n_probes_ = 0;
    // A client's FIN waiting to be seen taken: the sequence number right after it, by the
    // connection's index, direct-mapped (a note lost to a newer one: the FIN is taken as if
    // confirmed, as before this check).
    struct FinNote {
        uint32_t idx = UINT32_MAX;
        uint32_t end = 0;  // the FIN's sequence number + its length + 1
        uint32_t at = 0;   // ms clock: when it passed
    };
    static constexpr uint32_t kFinNotes = 1024;
    std::array<FinNote, kFinNotes> fin_notes_{};
    uint32_t probe_secret_ = 0;
    // Takes one RST token (false: over the rate, counted as resets_limited).
    bool take_reset_token() noexcept;
    // Writes a 60-byte Ethernet frame (addresses left to the sender) holding a 20-byte IPv4
    // header and a 20-byte TCP header with the given fields, checksums included.
    static void write_tcp_segment(uint8_t* f, rte_be32_t src, rte_be16_t sport, rte_be32_t dst,
                                  rte_be16_t dport, uint32_t seq, uint32_t ack,
                                  uint8_t flags) noexcept;
    void slow_msg(SlowMsg::Type t, uint16_t port, rte_be32_t ip, const uint8_t* mac) noexcept;
    static uint32_t timeout_of(const Timeouts& t, const Conn& c) noexcept;

    // Fragments are forwarded without reassembly, as the real's kernel reassembles them: the
    // first one (it has the ports) is scheduled like any packet and leaves a note, keyed by
    // source, destination, IP id and protocol, of where the datagram goes; the later ones
    // follow the note (the ports and the transport checksum are in the first one only).
    enum class FragAction : uint8_t { NatIn, NatOut, Tunnel, Route };
    struct FragNote {
        rte_be32_t src, dst;
        rte_be16_t id;
        uint8_t proto;
        FragAction action;
        rte_be32_t addr;        // NatIn: the real; NatOut: the VIP; Tunnel, Route: the real
        rte_be32_t tunnel_src;  // Tunnel
        uint16_t svc_slot, real_slot;
        uint32_t expire;  // 0 with src 0: empty
        bool used;        // a later fragment has followed it
    };
    // Set-associative, so that a flood of first fragments cannot sweep away the note of a
    // datagram in progress: a new note takes its set's way with the same key, else an empty or
    // expired one, else the oldest that no later fragment has followed yet, else the oldest
    // (frag_notes_evicted counts the last two).
    static constexpr uint32_t kFragWays = 4, kFragSets = 256;
    static constexpr uint32_t kFragNoteMs = 2000;
    std::array<FragNote, kFragWays * kFragSets> frag_notes_{};
    // The live note of p's datagram, or nullptr.
    FragNote* find_note(const Parsed& p) noexcept;
    void note_fragment(const Parsed& p, FragAction a, rte_be32_t addr, rte_be32_t tunnel_src,
                       const Conn& c) noexcept;
    void handle_frag_later(const Snapshot& snap, rte_mbuf* m, const Item& it) noexcept;

    // Stages m for port with next_hop's MAC, or holds it until ARP resolves it.
    // cache_dst != 0: once resolved, remember how cache_dst (a real) is reached (egress_).
    void stage_l2(rte_mbuf* m, uint16_t port, const Interface& ifc, rte_be32_t next_hop,
                  rte_be32_t cache_dst = 0, uint8_t cache_kind = 0) noexcept;

    struct Held {
        rte_mbuf* m;
        rte_be32_t next_hop;
        uint16_t port;
        uint32_t deadline;
    };
    std::array<Held, kHeldMax> held_{};
    uint16_t n_held_ = 0;
    uint32_t now_ = 0;  // the clock of the burst being processed
    uint32_t sweep_last_ms_ = 0;
    uint64_t sweep_credit_ = 0;  // entries * 1000 the sweep may still visit

    uint16_t id_;
    uint16_t n_workers_;
    const NeighbourTable& neigh_;

    // The neighbour table's answers, direct-mapped by next hop, dropped whole whenever the
    // table's generation moves (control changed an entry): one probe instead of a hashed,
    // atomic lookup per packet.
    static constexpr unsigned kNeighCacheBits = 6;
    struct NeighCache {
        rte_be32_t ip = 0;
        rte_ether_addr mac{};
    };
    std::array<NeighCache, 1u << kNeighCacheBits> ncache_{};
    uint32_t ncache_gen_ = UINT32_MAX;
    bool neigh_lookup(rte_be32_t ip, rte_ether_addr& mac) noexcept;

    // How a real is reached, as the routing (or on-link) and neighbour lookups last found it:
    // port, MTU, both MACs and the interface's address. Direct-mapped by the real's address and
    // dropped whole at the start of a burst when the snapshot or the neighbour table's
    // generation has changed; filled by the slow path (stage_l2) once the MAC is known. NAT,
    // tun and dr to a real then cost one probe instead of a route scan, an interface lookup, an
    // MTU check and a neighbour lookup.
    // Routed: by the real's address, from the routing table. OnLink: by the real's address,
    // on-link (dr). NextHop: by the next hop of a route (replies to clients: the gateway),
    // checked against the route's port.
    enum EgressKind : uint8_t { kEgressRouted = 0, kEgressOnLink = 1, kEgressNextHop = 2 };
    struct Egress {
        rte_be32_t dst = 0;  // 0: empty
        uint16_t port = 0;
        uint16_t mtu = 0;
        rte_ether_addr dst_mac{}, src_mac{};
        rte_be32_t src_addr = 0;  // the interface's address
        uint8_t kind = 0;
    };
    static constexpr unsigned kEgressBits = 8;
    std::array<Egress, 1u << kEgressBits> egress_{};
    uint64_t egress_snap_ = 0;
    uint32_t egress_gen_ = UINT32_MAX;
    static uint32_t egress_slot(rte_be32_t dst) noexcept {
        return (uint32_t(dst) * 0x9E3779B1u) >> (32 - kEgressBits);
    }
    const Egress* egress_hit(rte_be32_t dst, uint8_t kind) const noexcept {
        const Egress& e = egress_[egress_slot(dst)];
        return e.dst == dst && e.kind == kind ? &e : nullptr;
    }
    // Ethernet addresses from e, and onto e's port.
    void put_l2(rte_mbuf* m, const Egress& e) noexcept;
};

}  // namespace lb::dp
