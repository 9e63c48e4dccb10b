#pragma once
// The control socket protocol between lb and lbctl (version 4): JSON lines. A client sends one
// request per line, {"cmd":"status","version":4}; lb answers each with one line,
// {"type":"status","version":4,...}, or, for the connection listing, a stream of lines. The
// first field of a line names its message ("cmd" in requests, "type" in replies); "version" is
// written in every line and may be left out of a request typed by hand. Every message is a
// struct below with one Schema (schema.hpp) that both encoding and decoding follow; decoding
// refuses unknown, repeated and missing fields, values out of range, strings over kMaxString,
// lists over their bound, and names the field that was wrong.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "control/json.hpp"
#include "control/schema.hpp"

namespace lb::ctl {

inline constexpr uint32_t kProtoVersion = 4;  // 4: JSON lines (1 to 3: binary frames, "LBC1")
inline constexpr uint32_t kMaxString = 4096;  // longest string any message may carry
// Longest request line lb reads: an Apply of the largest table (1024 services, 16384 reals,
// as -R gives it) is about 5 MB.
inline constexpr size_t kMaxRequestLine = 8u << 20;
inline constexpr size_t kMaxReplyLine = 32u << 20;  // longest reply line lbctl reads
inline constexpr uint32_t kMaxOps = 32768;          // operations in one Apply
inline constexpr uint32_t kMaxList = 65536;         // services, reals, workers in a reply
inline constexpr uint32_t kMaxPortEntries = 1024;   // ports in a Workers reply
inline constexpr uint32_t kMaxCounters = 4096;      // names in one worker's counters or drops

inline constexpr Name kProtoNameList[] = {{6, "tcp"}, {17, "udp"}};
inline constexpr Names kProto{kProtoNameList};
inline constexpr Name kForwardNameList[] = {{0, "nat"}, {1, "tun"}, {2, "dr"}};  // dp::Forward
inline constexpr Names kForward{kForwardNameList};

// One ipvsadm-style change. The client fills every field the kind uses (with ipvsadm's
// defaults for what the user left out); lb validates everything.
enum class OpKind : uint8_t {
    AddService = 1,   // -A: service + settings
    EditService,      // -E: service + settings (replaces them)
    DeleteService,    // -D: service
    Clear,            // -C: nothing
    AddReal,          // -a: service + real
    EditReal,         // -e: service + real
    DeleteReal,       // -d: service + real address and port
    Zero,             // -Z: service, or all services when has_service is false
    SetTimeout,       // --set: tcp, tcpfin, udp seconds (0 = leave as is)
};
inline constexpr Name kOpKindNameList[] = {
    {1, "add-service"}, {2, "edit-service"}, {3, "delete-service"},
    {4, "clear"},       {5, "add-real"},     {6, "edit-real"},
    {7, "delete-real"}, {8, "zero"},         {9, "set-timeout"}};
inline constexpr Names kOpKind{kOpKindNameList};

struct Op {
    OpKind kind = OpKind::Clear;
    bool has_service = false;
    uint8_t proto = 6;   // 6 tcp, 17 udp
    uint32_t vip = 0;    // host order
    uint16_t port = 0;
    // service settings
    std::string scheduler;    // "rr", "wlc", ...
    std::string sched_flags;  // comma-separated ipvsadm names, "" for none
    uint32_t persistence = 0;            // seconds, 0 = not persistent
    uint32_t persist_mask = 0xFFFFFFFF;  // host order
    // real
    uint32_t real_addr = 0;  // host order
    uint16_t real_port = 0;
    uint8_t forward = 0;     // dp::Forward
    uint32_t weight = 1;
    uint32_t u_threshold = 0, l_threshold = 0;  // connections, 0 = none
    // timeouts
    uint32_t tcp = 0, tcpfin = 0, udp = 0;
};
template <>
struct Schema<Op> {
    static constexpr auto kFields = std::tuple{
        field("kind", &Op::kind, kOpKind),
        field("has_service", &Op::has_service),
        field("proto", &Op::proto, kProto),
        field("vip", &Op::vip, Ipv4{}),
        field("port", &Op::port),
        field("scheduler", &Op::scheduler),
        field("sched_flags", &Op::sched_flags),
        field("persistence", &Op::persistence),
        field("persist_mask", &Op::persist_mask, Ipv4{}),
        field("real", &Op::real_addr, Ipv4{}),
        field("real_port", &Op::real_port),
        field("forward", &Op::forward, kForward),
        field("weight", &Op::weight),
        field("u_threshold", &Op::u_threshold),
        field("l_threshold", &Op::l_threshold),
        field("tcp", &Op::tcp),
        field("tcpfin", &Op::tcpfin),
        field("udp", &Op::udp),
    };
};

// One connection of `lbctl -L -n -c` (IPVS's connection entries), addresses host order.
struct ConnEntry {
    uint8_t proto = 6;
    bool is_template = false;
    uint32_t client = 0, vip = 0, real = 0;
    uint16_t cport = 0, vport = 0, rport = 0;
    uint8_t forward = 0;
    std::string state;      // "ESTABLISHED", "UDP", "NONE" (templates)...
    uint32_t expire_s = 0;  // seconds left
};
template <>
struct Schema<ConnEntry> {
    static constexpr std::string_view kTag = "conn";
    static constexpr auto kFields = std::tuple{
        field("proto", &ConnEntry::proto, kProto),
        field("template", &ConnEntry::is_template),
        field("client", &ConnEntry::client, Ipv4{}),
        field("cport", &ConnEntry::cport),
        field("vip", &ConnEntry::vip, Ipv4{}),
        field("vport", &ConnEntry::vport),
        field("real", &ConnEntry::real, Ipv4{}),
        field("rport", &ConnEntry::rport),
        field("forward", &ConnEntry::forward, kForward),
        field("state", &ConnEntry::state),
        field("expire", &ConnEntry::expire_s),
    };
};

// The connection listing is a stream: ConnsBegin, one ConnEntry line per connection, ConnsEnd
// (or an Error line if a worker stops answering on the way).
struct ConnsBegin {
    uint64_t total = 0;  // connections and templates in all tables when the listing began
};
template <>
struct Schema<ConnsBegin> {
    static constexpr std::string_view kTag = "connections";
    static constexpr auto kFields = std::tuple{field("total", &ConnsBegin::total)};
};
struct ConnsEnd {
    uint64_t count = 0;  // entries sent
};
template <>
struct Schema<ConnsEnd> {
    static constexpr std::string_view kTag = "end";
    static constexpr auto kFields = std::tuple{field("count", &ConnsEnd::count)};
};

// A whole listing, as lbctl's formatters and the tests take it.
struct Connections {
    uint64_t total = 0;  // connections and templates in all tables
    std::vector<ConnEntry> entries;
};

struct WorkerStatus {
    uint32_t lcore = 0;
    uint64_t rx = 0, tx = 0, redirected_out = 0, redirected_in = 0;
    uint64_t conns_created = 0, conns_expired = 0, conns_in_table = 0, table_capacity = 0;
    std::vector<std::pair<std::string, uint64_t>> counters;  // every other counter, by name
    std::vector<std::pair<std::string, uint64_t>> drops;     // drop reason -> count
};
template <>
struct Schema<WorkerStatus> {
    using W = WorkerStatus;
    static constexpr auto kFields = std::tuple{
        field("lcore", &W::lcore),
        field("rx", &W::rx),
        field("tx", &W::tx),
        field("redirected_out", &W::redirected_out),
        field("redirected_in", &W::redirected_in),
        field("conns_created", &W::conns_created),
        field("conns_expired", &W::conns_expired),
        field("conns_in_table", &W::conns_in_table),
        field("table_capacity", &W::table_capacity),
        field("counters", &W::counters, Counters{kMaxCounters}),
        field("drops", &W::drops, Counters{kMaxCounters}),
    };
};

// One DPDK port: rte_eth_stats_get's totals, plus what the kernel dropped in front of a
// net_af_packet port (its PMD reports no imissed).
struct PortStatus {
    uint16_t port = 0;
    std::string name;  // the ethdev name, "net_af_packet0"
    uint64_t ipackets = 0, opackets = 0, ibytes = 0, obytes = 0;
    uint64_t imissed = 0, ierrors = 0, rx_nombuf = 0, oerrors = 0;
    // net_af_packet: frames the kernel dropped because the port's receive ring was full
    // (PACKET_STATISTICS tp_drops of its sockets); 0 for other drivers.
    uint64_t rx_ring_drops = 0;

    // Frames the port received but the workers never got.
    uint64_t rx_lost() const { return imissed + ierrors + rx_nombuf + rx_ring_drops; }
};
template <>
struct Schema<PortStatus> {
    using P = PortStatus;
    static constexpr auto kFields = std::tuple{
        field("port", &P::port),           field("name", &P::name),
        field("ipackets", &P::ipackets),   field("opackets", &P::opackets),
        field("ibytes", &P::ibytes),       field("obytes", &P::obytes),
        field("imissed", &P::imissed),     field("ierrors", &P::ierrors),
        field("rx_nombuf", &P::rx_nombuf), field("oerrors", &P::oerrors),
        field("rx_ring_drops", &P::rx_ring_drops),
    };
};

struct Workers {
    uint64_t mbufs_total = 0, mbufs_in_use = 0;
    std::vector<WorkerStatus> workers;
    std::vector<PortStatus> ports;
};
template <>
struct Schema<Workers> {
    static constexpr std::string_view kTag = "workers";
    static constexpr auto kFields = std::tuple{
        field("mbufs_total", &Workers::mbufs_total),
        field("mbufs_in_use", &Workers::mbufs_in_use),
        field("workers", &Workers::workers, List{kMaxList}),
        field("ports", &Workers::ports, List{kMaxPortEntries}),
    };
};

// Rates as IPVS estimates them: per second, an EWMA over 2-second samples.
struct Rates {
    uint64_t cps = 0, inpps = 0, outpps = 0, inbps = 0, outbps = 0;
};
template <>
struct Schema<Rates> {
    static constexpr auto kFields = std::tuple{
        field("cps", &Rates::cps),     field("inpps", &Rates::inpps),
        field("outpps", &Rates::outpps), field("inbps", &Rates::inbps),
        field("outbps", &Rates::outbps),
    };
};

struct RealStatus {
    uint32_t addr = 0;  // host order
    uint16_t port = 0;
    uint8_t forward = 0;  // dp::Forward
    uint32_t weight = 0;
    uint32_t u_threshold = 0, l_threshold = 0;
    bool overloaded = false;
    Rates rates;
    uint64_t active = 0, inactive = 0, persist = 0;  // persist: persistence templates
    uint64_t conns = 0, in_pkts = 0, out_pkts = 0, in_bytes = 0, out_bytes = 0;
};
template <>
struct Schema<RealStatus> {
    using R = RealStatus;
    static constexpr auto kFields = std::tuple{
        field("addr", &R::addr, Ipv4{}),
        field("port", &R::port),
        field("forward", &R::forward, kForward),
        field("weight", &R::weight),
        field("u_threshold", &R::u_threshold),
        field("l_threshold", &R::l_threshold),
        field("overloaded", &R::overloaded),
        field("rates", &R::rates),
        field("active", &R::active),
        field("inactive", &R::inactive),
        field("persist", &R::persist),
        field("conns", &R::conns),
        field("in_pkts", &R::in_pkts),
        field("out_pkts", &R::out_pkts),
        field("in_bytes", &R::in_bytes),
        field("out_bytes", &R::out_bytes),
    };
};

struct ServiceStatus {
    uint8_t proto = 6;  // 6 tcp, 17 udp
    uint32_t vip = 0;   // host order
    uint16_t port = 0;
    std::string scheduler;  // "rr", "wrr", ...
    uint32_t persistence = 0;  // seconds, 0 = not persistent
    uint32_t persist_mask = 0xFFFFFFFF;  // host order
    std::string sched_flags;   // ipvsadm's names, comma-separated: "sh-fallback,sh-port"
    Rates rates;
    uint64_t conns = 0, in_pkts = 0, out_pkts = 0, in_bytes = 0, out_bytes = 0;
    std::vector<RealStatus> reals;
};
template <>
struct Schema<ServiceStatus> {
    using S = ServiceStatus;
    static constexpr auto kFields = std::tuple{
        field("proto", &S::proto, kProto),
        field("vip", &S::vip, Ipv4{}),
        field("port", &S::port),
        field("scheduler", &S::scheduler),
        field("persistence", &S::persistence),
        field("persist_mask", &S::persist_mask, Ipv4{}),
        field("sched_flags", &S::sched_flags),
        field("rates", &S::rates),
        field("conns", &S::conns),
        field("in_pkts", &S::in_pkts),
        field("out_pkts", &S::out_pkts),
        field("in_bytes", &S::in_bytes),
        field("out_bytes", &S::out_bytes),
        field("reals", &S::reals, List{kMaxList}),
    };
};

struct Status {
    uint32_t conn_capacity = 0;  // connection table size, shown as (size=N)
    uint32_t tcp_timeout = 0, tcpfin_timeout = 0, udp_timeout = 0;  // seconds (--timeout)
    std::vector<ServiceStatus> services;
};
template <>
struct Schema<Status> {
    static constexpr std::string_view kTag = "status";
    static constexpr auto kFields = std::tuple{
        field("conn_capacity", &Status::conn_capacity),
        field("tcp_timeout", &Status::tcp_timeout),
        field("tcpfin_timeout", &Status::tcpfin_timeout),
        field("udp_timeout", &Status::udp_timeout),
        field("services", &Status::services, List{kMaxList}),
    };
};

struct Ok {
    std::string message;  // may be empty
};
template <>
struct Schema<Ok> {
    static constexpr std::string_view kTag = "ok";
    static constexpr auto kFields = std::tuple{field("message", &Ok::message)};
};
struct Error {
    std::string message;
};
template <>
struct Schema<Error> {
    static constexpr std::string_view kTag = "error";
    static constexpr auto kFields = std::tuple{field("message", &Error::message)};
};

// ---- requests ----------------------------------------------------------------------------------

struct GetStatus {};  // -> Status
template <>
struct Schema<GetStatus> {
    static constexpr std::string_view kTag = "status";
    static constexpr auto kFields = std::tuple{};
};
struct Reload {};  // re-read the config file -> Status, or Error (why not)
template <>
struct Schema<Reload> {
    static constexpr std::string_view kTag = "reload";
    static constexpr auto kFields = std::tuple{};
};
struct Apply {  // ipvsadm-style changes, applied together as one snapshot -> Ok / Error
    std::vector<Op> ops;
};
template <>
struct Schema<Apply> {
    static constexpr std::string_view kTag = "apply";
    static constexpr auto kFields = std::tuple{field("ops", &Apply::ops, List{kMaxOps})};
};
struct GetConnections {};  // -> ConnsBegin, ConnEntry..., ConnsEnd
template <>
struct Schema<GetConnections> {
    static constexpr std::string_view kTag = "connections";
    static constexpr auto kFields = std::tuple{};
};
struct GetWorkers {};  // -> Workers
template <>
struct Schema<GetWorkers> {
    static constexpr std::string_view kTag = "workers";
    static constexpr auto kFields = std::tuple{};
};
struct WriteConfig {  // -> Ok / Error
    std::string path;  // "" (or left out) = the config file lb was started with
};
template <>
struct Schema<WriteConfig> {
    static constexpr std::string_view kTag = "write-config";
    static constexpr auto kFields = std::tuple{optional_field("path", &WriteConfig::path)};
};

using Request = std::variant<GetStatus, Reload, Apply, GetConnections, GetWorkers, WriteConfig>;
using Reply = std::variant<Status, Workers, Ok, Error, ConnsBegin, ConnEntry, ConnsEnd>;

// The name a message goes by in its line ("status", "conn"...).
template <typename V>
std::string_view name_of(const V& msg) {
    return std::visit([](const auto& m) { return Schema<std::decay_t<decltype(m)>>::kTag; }, msg);
}

// ---- encoding and decoding ---------------------------------------------------------------------

// One message as one line, '\n' included; appended to out. Throws ProtocolError for what
// cannot be sent: a string over kMaxString, a list over its bound, a value without a name.
template <typename M>
void encode_to(std::string& out, const M& msg);
template <typename M>
std::string encode(const M& msg) {
    std::string out;
    encode_to(out, msg);
    return out;
}

// One line, without its '\n'. Throw ProtocolError (VersionError for another version).
Request decode_request(std::string_view line);
Reply decode_reply(std::string_view line);

class VersionError : public ProtocolError {
public:
    explicit VersionError(uint32_t version);
    uint32_t version() const { return version_; }

private:
    uint32_t version_;
};

// "lb speaks control protocol 4; this lbctl speaks protocol 3 and is too old: ...".
std::string version_mismatch(uint32_t lb_version, uint32_t lbctl_version);

// ---- the binary protocol of versions 1 to 3 ----------------------------------------------------
// Frames "LBC1" | version u16 | type u16 | length u32 | payload, little-endian. lb does not
// speak it any more but tells an old lbctl why, in a frame it can read: an Error of its version.
inline constexpr std::string_view kLegacyMagic = "LBC1";
// The version of a binary frame whose first 6 bytes (at least) are given; 3 with fewer.
uint16_t legacy_version(std::string_view bytes);
// The Error frame for an lbctl that sent the binary frame starting with `request`.
std::string legacy_refusal(std::string_view request);

}  // namespace lb::ctl
