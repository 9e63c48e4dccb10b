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
constexpr size_t kRealSize = 4 + 2 + 1 + 4 + 8 * 8;
constexpr size_t kServiceMin = 1 + 4 + 2 + kStringMin + 4 + 4 + kStringMin + 5 * 8 + 4;

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

std::vector<uint8_t> encode_status(const Status& s) {
    Writer w;
    w.u32(s.conn_capacity);
    w.count(s.services.size(), "services");
    for (const ServiceStatus& svc : s.services) {
        w.u8(svc.proto);
        w.u32(svc.vip);
        w.u16(svc.port);
        w.str(svc.scheduler, "scheduler name");
        w.u32(svc.persistence);
        w.u32(svc.persist_mask);
        w.str(svc.sched_flags, "scheduler flags");
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
