// Encoding and decoding of the control socket protocol (see protocol.hpp for the frame layout).
// Decoding is written for hostile input: every read is bounds-checked against what is left,
// every count is checked against the bytes that could possibly hold it, and nothing is
// allocated before the bytes that justify it have been seen.
#include "control/protocol.hpp"

#include <cstring>
#include <string>

namespace lb::ctl {

namespace {

// Smallest encodings, used to reject counts that cannot fit in the bytes that remain.
constexpr size_t kStringMin = 4;
constexpr size_t kRealSize = 4 + 2 + 1 + 4 + 4 + 4 + 1 + 5 * 8 + 8 * 8;
constexpr size_t kServiceMin = 1 + 4 + 2 + kStringMin + 4 + 4 + kStringMin + 5 * 8 + 5 * 8 + 4;

constexpr uint8_t kTcp = 6;
constexpr uint8_t kUdp = 17;
constexpr uint8_t kMaxForward = 2;  // dp::Forward::Route

class Writer {
public:
    void u8(uint8_t v) { buf_.push_back(v); }
    void u16(uint16_t v) { put_le(v, 2); }
    void u32(uint32_t v) { put_le(v, 4); }
    void u64(uint64_t v) { put_le(v, 8); }
    void str(const std::string& s, const char* what) {
        if (s.size() > kMaxString) {
            throw ProtocolError(std::string(what) + " too long to encode (" +
                                std::to_string(s.size()) + " bytes, limit " +
                                std::to_string(kMaxString) + ")");
        }
        u32(static_cast<uint32_t>(s.size()));
        buf_.insert(buf_.end(), s.begin(), s.end());
    }
    void count(size_t n, const char* what) {
        if (n > UINT32_MAX) {
            throw ProtocolError(std::string("too many ") + what + " to encode");
        }
        u32(static_cast<uint32_t>(n));
    }
    std::vector<uint8_t> take() { return std::move(buf_); }

private:
    void put_le(uint64_t v, int bytes) {
        for (int i = 0; i < bytes; ++i) {
            buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
        }
    }
    std::vector<uint8_t> buf_;
};

class Reader {
public:
    Reader(const uint8_t* data, size_t len, const char* what) : p_(data), len_(len), what_(what) {}

    uint8_t u8(const char* field) { return static_cast<uint8_t>(get_le(1, field)); }
    uint16_t u16(const char* field) { return static_cast<uint16_t>(get_le(2, field)); }
    uint32_t u32(const char* field) { return static_cast<uint32_t>(get_le(4, field)); }
    uint64_t u64(const char* field) { return get_le(8, field); }

    std::string str(const char* field) {
        const uint32_t n = u32(field);
        if (n > kMaxString) {
            fail(std::string(field) + " length " + std::to_string(n) + " exceeds the limit of " +
                 std::to_string(kMaxString));
        }
        need(n, field);
        if (n == 0) {
            return {};
        }
        std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
        pos_ += n;
        return s;
    }

    // A count of elements whose encodings take at least min_size bytes each.
    uint32_t count(size_t min_size, const char* field) {
        const uint32_t n = u32(field);
        if (n > remaining() / min_size) {
            fail(std::string(field) + " " + std::to_string(n) + " cannot fit in the " +
                 std::to_string(remaining()) + " bytes left");
        }
        return n;
    }

    void finish() const {
        if (pos_ != len_) {
            fail(std::to_string(len_ - pos_) + " trailing bytes");
        }
    }

    size_t remaining() const { return len_ - pos_; }

    [[noreturn]] void fail(const std::string& msg) const {
        throw ProtocolError(std::string("malformed ") + what_ + " at offset " +
                            std::to_string(pos_) + ": " + msg);
    }

private:
    void need(size_t n, const char* field) const {
        if (n > remaining()) {
            throw ProtocolError(std::string("truncated ") + what_ + ": " + field + " needs " +
                                std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                                ", " + std::to_string(remaining()) + " left");
        }
    }
    uint64_t get_le(size_t bytes, const char* field) {
        need(bytes, field);
        uint64_t v = 0;
        for (size_t i = 0; i < bytes; ++i) {
            v |= uint64_t{p_[pos_ + i]} << (8 * i);
        }
        pos_ += bytes;
        return v;
    }

    const uint8_t* p_;
    size_t len_;
    size_t pos_ = 0;
    const char* what_;
};

void check_proto(Reader& r, uint8_t proto) {
    if (proto != kTcp && proto != kUdp) {
        r.fail("unknown service protocol " + std::to_string(proto));
    }
}

}  // namespace

std::vector<uint8_t> encode_frame(MsgType type, const std::vector<uint8_t>& payload) {
    if (payload.size() > kMaxPayload) {
        throw ProtocolError("payload of " + std::to_string(payload.size()) +
                            " bytes exceeds the limit of " + std::to_string(kMaxPayload));
    }
    Writer w;
    w.u32(kProtoMagic);
    w.u16(kProtoVersion);
    w.u16(static_cast<uint16_t>(type));
    w.u32(static_cast<uint32_t>(payload.size()));
    std::vector<uint8_t> out = w.take();
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

std::pair<MsgType, uint32_t> decode_header(const uint8_t* hdr, size_t len) {
    if (hdr == nullptr || len < kFrameHeader) {
        throw ProtocolError("truncated frame header: " + std::to_string(hdr ? len : 0) + " of " +
                            std::to_string(kFrameHeader) + " bytes");
    }
    Reader r(hdr, kFrameHeader, "frame header");
    const uint32_t magic = r.u32("magic");
    if (magic != kProtoMagic) {
        throw ProtocolError("bad magic: not an lb control frame");
    }
    const uint16_t version = r.u16("version");
    if (version != kProtoVersion) {
        throw ProtocolError("unsupported protocol version " + std::to_string(version) +
                            " (this side speaks " + std::to_string(kProtoVersion) + ")");
    }
    const auto type = static_cast<MsgType>(r.u16("type"));
    const uint32_t length = r.u32("payload length");
    if (length > kMaxPayload) {
        throw ProtocolError("payload length " + std::to_string(length) +
                            " exceeds the limit of " + std::to_string(kMaxPayload));
    }
    return {type, length};
}

Frame decode_frame(const uint8_t* data, size_t len) {
    const auto [type, length] = decode_header(data, len);
    const size_t have = len - kFrameHeader;
    if (have < length) {
        throw ProtocolError("truncated frame: payload has " + std::to_string(have) + " of " +
                            std::to_string(length) + " bytes");
    }
    if (have > length) {
        throw ProtocolError("malformed frame: " + std::to_string(have - length) +
                            " trailing bytes after the payload");
    }
    Frame f;
    f.type = type;
    f.payload.assign(data + kFrameHeader, data + len);
    return f;
}

void put_rates(Writer& w, const Rates& r) {
    w.u64(r.cps);
    w.u64(r.inpps);
    w.u64(r.outpps);
    w.u64(r.inbps);
    w.u64(r.outbps);
}

Rates get_rates(Reader& r) {
    Rates x;
    x.cps = r.u64("cps");
    x.inpps = r.u64("inpps");
    x.outpps = r.u64("outpps");
    x.inbps = r.u64("inbps");
    x.outbps = r.u64("outbps");
    return x;
}

std::vector<uint8_t> encode_status(const Status& s) {
    Writer w;
    w.u32(s.conn_capacity);
    w.u32(s.tcp_timeout);
    w.u32(s.tcpfin_timeout);
    w.u32(s.udp_timeout);
    w.count(s.services.size(), "services");
    for (const ServiceStatus& svc : s.services) {
        w.u8(svc.proto);
        w.u32(svc.vip);
        w.u16(svc.port);
        w.str(svc.scheduler, "scheduler name");
        w.u32(svc.persistence);
        w.u32(svc.persist_mask);
        w.str(svc.sched_flags, "scheduler flags");
        put_rates(w, svc.rates);
        w.u64(svc.conns);
        w.u64(svc.in_pkts);
        w.u64(svc.out_pkts);
        w.u64(svc.in_bytes);
        w.u64(svc.out_bytes);
        w.count(svc.reals.size(), "reals");
        for (const RealStatus& rs : svc.reals) {
            w.u32(rs.addr);
            w.u16(rs.port);
            w.u8(rs.forward);
            w.u32(rs.weight);
            w.u32(rs.u_threshold);
            w.u32(rs.l_threshold);
            w.u8(rs.overloaded ? 1 : 0);
            put_rates(w, rs.rates);
            w.u64(rs.active);
            w.u64(rs.inactive);
            w.u64(rs.persist);
            w.u64(rs.conns);
            w.u64(rs.in_pkts);
            w.u64(rs.out_pkts);
            w.u64(rs.in_bytes);
            w.u64(rs.out_bytes);
        }
    }
    return w.take();
}

Status decode_status(const std::vector<uint8_t>& payload) {
    if (payload.size() > kMaxPayload) {
        throw ProtocolError("status payload of " + std::to_string(payload.size()) +
                            " bytes exceeds the limit of " + std::to_string(kMaxPayload));
    }
    Reader r(payload.data(), payload.size(), "status");
    Status s;
    s.conn_capacity = r.u32("connection capacity");
    s.tcp_timeout = r.u32("tcp timeout");
    s.tcpfin_timeout = r.u32("tcpfin timeout");
    s.udp_timeout = r.u32("udp timeout");
    const uint32_t nsvc = r.count(kServiceMin, "service count");
    s.services.reserve(nsvc);
    for (uint32_t i = 0; i < nsvc; ++i) {
        ServiceStatus svc;
        svc.proto = r.u8("service protocol");
        check_proto(r, svc.proto);
        svc.vip = r.u32("service address");
        svc.port = r.u16("service port");
        svc.scheduler = r.str("scheduler name");
        svc.persistence = r.u32("persistence");
        svc.persist_mask = r.u32("persistence mask");
        svc.sched_flags = r.str("scheduler flags");
        svc.rates = get_rates(r);
        svc.conns = r.u64("service conns");
        svc.in_pkts = r.u64("service in_pkts");
        svc.out_pkts = r.u64("service out_pkts");
        svc.in_bytes = r.u64("service in_bytes");
        svc.out_bytes = r.u64("service out_bytes");
        const uint32_t nreal = r.count(kRealSize, "real count");
        svc.reals.reserve(nreal);
        for (uint32_t j = 0; j < nreal; ++j) {
            RealStatus rs;
            rs.addr = r.u32("real address");
            rs.port = r.u16("real port");
            rs.forward = r.u8("forward method");
            if (rs.forward > kMaxForward) {
                r.fail("unknown forward method " + std::to_string(rs.forward));
            }
            rs.weight = r.u32("weight");
            rs.u_threshold = r.u32("upper threshold");
            rs.l_threshold = r.u32("lower threshold");
            const uint8_t ov = r.u8("overloaded");
            if (ov > 1) {
                r.fail("overloaded flag " + std::to_string(ov));
            }
            rs.overloaded = ov == 1;
            rs.rates = get_rates(r);
            rs.active = r.u64("active connections");
            rs.inactive = r.u64("inactive connections");
            rs.persist = r.u64("persistence templates");
            rs.conns = r.u64("real conns");
            rs.in_pkts = r.u64("real in_pkts");
            rs.out_pkts = r.u64("real out_pkts");
            rs.in_bytes = r.u64("real in_bytes");
            rs.out_bytes = r.u64("real out_bytes");
            svc.reals.push_back(rs);
        }
        s.services.push_back(std::move(svc));
    }
    r.finish();
    return s;
}

namespace {
constexpr size_t kOpMin = 1 + 1 + 1 + 4 + 2 + 2 * kStringMin + 4 + 4 + 4 + 2 + 1 + 4 * 4 + 3 * 4;
constexpr size_t kConnMin = 1 + 1 + 3 * 4 + 3 * 2 + 1 + kStringMin + 4;
constexpr size_t kPairMin = kStringMin + 8;
constexpr size_t kWorkerMin = 4 + 8 * 8 + 4 + 4;
constexpr size_t kPortMin = 2 + kStringMin + 9 * 8;

void check_payload(const std::vector<uint8_t>& payload, const char* what) {
    if (payload.size() > kMaxPayload) {
        throw ProtocolError(std::string(what) + " payload of " + std::to_string(payload.size()) +
                            " bytes exceeds the limit of " + std::to_string(kMaxPayload));
    }
}

void put_pairs(Writer& w, const std::vector<std::pair<std::string, uint64_t>>& v,
               const char* what) {
    w.count(v.size(), what);
    for (const auto& [name, value] : v) {
        w.str(name, what);
        w.u64(value);
    }
}

std::vector<std::pair<std::string, uint64_t>> get_pairs(Reader& r, const char* what) {
    std::vector<std::pair<std::string, uint64_t>> v;
    const uint32_t n = r.count(kPairMin, what);
    v.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
        std::string name = r.str(what);
        const uint64_t value = r.u64(what);
        v.emplace_back(std::move(name), value);
    }
    return v;
}
}  // namespace

std::vector<uint8_t> encode_ops(const std::vector<Op>& ops) {
    Writer w;
    w.count(ops.size(), "operations");
    for (const Op& o : ops) {
        w.u8(uint8_t(o.kind));
        w.u8(o.has_service ? 1 : 0);
        w.u8(o.proto);
        w.u32(o.vip);
        w.u16(o.port);
        w.str(o.scheduler, "scheduler name");
        w.str(o.sched_flags, "scheduler flags");
        w.u32(o.persistence);
        w.u32(o.persist_mask);
        w.u32(o.real_addr);
        w.u16(o.real_port);
        w.u8(o.forward);
        w.u32(o.weight);
        w.u32(o.u_threshold);
        w.u32(o.l_threshold);
        w.u32(0);  // reserved
        w.u32(o.tcp);
        w.u32(o.tcpfin);
        w.u32(o.udp);
    }
    return w.take();
}

std::vector<Op> decode_ops(const std::vector<uint8_t>& payload) {
    check_payload(payload, "operations");
    Reader r(payload.data(), payload.size(), "operations");
    std::vector<Op> ops;
    const uint32_t n = r.count(kOpMin, "operation count");
    ops.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
        Op o;
        const uint8_t kind = r.u8("operation");
        if (kind == 0 || kind > kMaxOpKind) {
            r.fail("unknown operation " + std::to_string(kind));
        }
        o.kind = OpKind(kind);
        const uint8_t has = r.u8("has service");
        if (has > 1) {
            r.fail("has-service flag " + std::to_string(has));
        }
        o.has_service = has == 1;
        o.proto = r.u8("service protocol");
        if (o.has_service) {
            check_proto(r, o.proto);
        }
        o.vip = r.u32("service address");
        o.port = r.u16("service port");
        o.scheduler = r.str("scheduler name");
        o.sched_flags = r.str("scheduler flags");
        o.persistence = r.u32("persistence");
        o.persist_mask = r.u32("persistence mask");
        o.real_addr = r.u32("real address");
        o.real_port = r.u16("real port");
        o.forward = r.u8("forward method");
        if (o.forward > kMaxForward) {
            r.fail("unknown forward method " + std::to_string(o.forward));
        }
        o.weight = r.u32("weight");
        o.u_threshold = r.u32("upper threshold");
        o.l_threshold = r.u32("lower threshold");
        r.u32("reserved");
        o.tcp = r.u32("tcp timeout");
        o.tcpfin = r.u32("tcpfin timeout");
        o.udp = r.u32("udp timeout");
        ops.push_back(std::move(o));
    }
    r.finish();
    return ops;
}

std::vector<uint8_t> encode_connections(const Connections& c) {
    Writer w;
    w.u64(c.total);
    w.count(c.entries.size(), "connections");
    for (const ConnEntry& e : c.entries) {
        w.u8(e.proto);
        w.u8(e.is_template ? 1 : 0);
        w.u32(e.client);
        w.u32(e.vip);
        w.u32(e.real);
        w.u16(e.cport);
        w.u16(e.vport);
        w.u16(e.rport);
        w.u8(e.forward);
        w.str(e.state, "state");
        w.u32(e.expire_s);
    }
    return w.take();
}

Connections decode_connections(const std::vector<uint8_t>& payload) {
    check_payload(payload, "connections");
    Reader r(payload.data(), payload.size(), "connections");
    Connections c;
    c.total = r.u64("total");
    const uint32_t n = r.count(kConnMin, "connection count");
    if (n > kMaxConnEntries) {
        r.fail(std::to_string(n) + " connections, at most " + std::to_string(kMaxConnEntries));
    }
    c.entries.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
        ConnEntry e;
        e.proto = r.u8("protocol");
        check_proto(r, e.proto);
        const uint8_t t = r.u8("template flag");
        if (t > 1) {
            r.fail("template flag " + std::to_string(t));
        }
        e.is_template = t == 1;
        e.client = r.u32("client address");
        e.vip = r.u32("virtual address");
        e.real = r.u32("real address");
        e.cport = r.u16("client port");
        e.vport = r.u16("virtual port");
        e.rport = r.u16("real port");
        e.forward = r.u8("forward method");
        if (e.forward > kMaxForward) {
            r.fail("unknown forward method " + std::to_string(e.forward));
        }
        e.state = r.str("state");
        e.expire_s = r.u32("expire");
        c.entries.push_back(std::move(e));
    }
    r.finish();
    return c;
}

std::vector<uint8_t> encode_workers(const Workers& ws) {
    Writer w;
    w.u64(ws.mbufs_total);
    w.u64(ws.mbufs_in_use);
    w.count(ws.workers.size(), "workers");
    for (const WorkerStatus& x : ws.workers) {
        w.u32(x.lcore);
        w.u64(x.rx);
        w.u64(x.tx);
        w.u64(x.redirected_out);
        w.u64(x.redirected_in);
        w.u64(x.conns_created);
        w.u64(x.conns_expired);
        w.u64(x.conns_in_table);
        w.u64(x.table_capacity);
        put_pairs(w, x.counters, "counter");
        put_pairs(w, x.drops, "drop reason");
    }
    w.count(ws.ports.size(), "ports");
    for (const PortStatus& p : ws.ports) {
        w.u16(p.port);
        w.str(p.name, "port name");
        w.u64(p.ipackets);
        w.u64(p.opackets);
        w.u64(p.ibytes);
        w.u64(p.obytes);
        w.u64(p.imissed);
        w.u64(p.ierrors);
        w.u64(p.rx_nombuf);
        w.u64(p.oerrors);
        w.u64(p.rx_ring_drops);
    }
    return w.take();
}

Workers decode_workers(const std::vector<uint8_t>& payload) {
    check_payload(payload, "workers");
    Reader r(payload.data(), payload.size(), "workers");
    Workers ws;
    ws.mbufs_total = r.u64("mbufs total");
    ws.mbufs_in_use = r.u64("mbufs in use");
    const uint32_t n = r.count(kWorkerMin, "worker count");
    ws.workers.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
        WorkerStatus x;
        x.lcore = r.u32("lcore");
        x.rx = r.u64("rx");
        x.tx = r.u64("tx");
        x.redirected_out = r.u64("redirected_out");
        x.redirected_in = r.u64("redirected_in");
        x.conns_created = r.u64("conns_created");
        x.conns_expired = r.u64("conns_expired");
        x.conns_in_table = r.u64("conns_in_table");
        x.table_capacity = r.u64("table_capacity");
        x.counters = get_pairs(r, "counter");
        x.drops = get_pairs(r, "drop reason");
        ws.workers.push_back(std::move(x));
    }
    const uint32_t np = r.count(kPortMin, "port count");
    if (np > kMaxPortEntries) {
        r.fail(std::to_string(np) + " ports, at most " + std::to_string(kMaxPortEntries));
    }
    ws.ports.reserve(np);
    for (uint32_t i = 0; i < np; ++i) {
        PortStatus p;
        p.port = r.u16("port id");
        p.name = r.str("port name");
        p.ipackets = r.u64("ipackets");
        p.opackets = r.u64("opackets");
        p.ibytes = r.u64("ibytes");
        p.obytes = r.u64("obytes");
        p.imissed = r.u64("imissed");
        p.ierrors = r.u64("ierrors");
        p.rx_nombuf = r.u64("rx_nombuf");
        p.oerrors = r.u64("oerrors");
        p.rx_ring_drops = r.u64("rx_ring_drops");
        ws.ports.push_back(std::move(p));
    }
    r.finish();
    return ws;
}

std::vector<uint8_t> encode_string(const std::string& s) {
    Writer w;
    w.str(s, "string");
    return w.take();
}

std::string decode_string(const std::vector<uint8_t>& payload) {
    Reader r(payload.data(), payload.size(), "string");
    std::string s = r.str("string");
    r.finish();
    return s;
}

}  // namespace lb::ctl
