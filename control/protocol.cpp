// The control protocol's lines (see protocol.hpp): the envelope of every message (its name and
// the version) around the fields its Schema lists, and the refusal an lbctl of the binary
// protocol gets.
#include "control/protocol.hpp"

#include <concepts>

#include "control/codec.hpp"

namespace lb::ctl {

namespace {

template <typename M, typename V>
struct IsAlternative;
template <typename M, typename... A>
struct IsAlternative<M, std::variant<A...>> : std::bool_constant<(std::same_as<M, A> || ...)> {};

// Requests name their message in "cmd", replies in "type".
template <typename M>
constexpr std::string_view tag_key() {
    return IsAlternative<M, Request>::value ? "cmd" : "type";
}

void check_version(json::Reader& r) {
    const uint64_t v = r.uint(UINT32_MAX);
    if (v != kProtoVersion) {
        throw VersionError(uint32_t(v));
    }
}

// The fields after the message's name: "version" and the message's own.
template <typename M>
void get_rest(json::Reader& r, M& msg) {
    uint64_t seen = 0;
    bool version = false;
    std::string scratch;
    while (r.consume(',')) {
        const std::string_view key = codec::get_key(r, scratch);
        if (key != "version") {
            if (!codec::get_field(r, msg, key, seen)) {
                codec::unknown_field(r, key);
            }
        } else if (std::exchange(version, true)) {
            r.fail("field \"version\" given twice");
        } else {
            check_version(r);
        }
    }
    r.expect('}');
    codec::check_missing<M>(r, seen);
    r.finish();
}

// A message this side does not know: when the line is of another version, that is the error.
[[noreturn]] void unknown_name(json::Reader& r, std::string_view key, const std::string& name) {
    std::string scratch;
    if (r.consume(',') && codec::get_key(r, scratch) == "version") {
        check_version(r);
    }
    r.fail("unknown " + std::string(key) + " \"" + name + "\"");
}

// The name of the message, the first field (after "version", if that comes first).
std::string_view get_name(json::Reader& r, std::string_view key, std::string& scratch) {
    r.expect('{');
    std::string_view first = codec::get_key(r, scratch);
    if (first == "version") {
        check_version(r);
        r.expect(',');
        first = codec::get_key(r, scratch);
    }
    if (first != key) {
        r.fail("the message's first field must be \"" + std::string(key) + "\", not \"" +
               std::string(first) + "\"");
    }
    return r.string(scratch, 64);
}

template <typename Variant>
Variant decode_line(std::string_view line, std::string_view key, const char* what) {
    json::Reader r(line, what);
    std::string scratch;
    const std::string_view name = get_name(r, key, scratch);
    Variant out;
    const bool found = [&]<size_t... I>(std::index_sequence<I...>) {
        return ((Schema<std::variant_alternative_t<I, Variant>>::kTag == name &&
                 (get_rest(r, out.template emplace<I>()), true)) ||
                ...);
    }(std::make_index_sequence<std::variant_size_v<Variant>>{});
    if (!found) {
        unknown_name(r, key, std::string(name));
    }
    return out;
}

void put_le(std::string& out, uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        out.push_back(char(uint8_t(v >> (8 * i))));
    }
}

}  // namespace

template <typename M>
void encode_to(std::string& out, const M& msg) {
    const size_t start = out.size();
    try {
        json::Writer w(out);
        w.put('{');
        w.key(tag_key<M>());
        w.string(Schema<M>::kTag);
        w.put(',');
        w.key("version");
        w.uint(kProtoVersion);
        codec::put_fields(w, msg, false);
        w.put('}');
        w.put('\n');
    } catch (...) {
        out.resize(start);
        throw;
    }
}

template void encode_to(std::string&, const GetStatus&);
template void encode_to(std::string&, const Reload&);
template void encode_to(std::string&, const Apply&);
template void encode_to(std::string&, const GetConnections&);
template void encode_to(std::string&, const GetWorkers&);
template void encode_to(std::string&, const WriteConfig&);
template void encode_to(std::string&, const Status&);
template void encode_to(std::string&, const Workers&);
template void encode_to(std::string&, const Ok&);
template void encode_to(std::string&, const Error&);
template void encode_to(std::string&, const ConnsBegin&);
template void encode_to(std::string&, const ConnEntry&);
template void encode_to(std::string&, const ConnsEnd&);

Request decode_request(std::string_view line) {
    return decode_line<Request>(line, "cmd", "request");
}

Reply decode_reply(std::string_view line) { return decode_line<Reply>(line, "type", "reply"); }

VersionError::VersionError(uint32_t version)
    : ProtocolError("control protocol version " + std::to_string(version) +
                    ", this side speaks " + std::to_string(kProtoVersion)),
      version_(version) {}

std::string version_mismatch(uint32_t lb_version, uint32_t lbctl_version) {
    return "lb speaks control protocol " + std::to_string(lb_version) +
           "; this lbctl speaks protocol " + std::to_string(lbctl_version) + " and is too " +
           (lbctl_version < lb_version ? "old" : "new") + ": use the lbctl that comes with this lb";
}

uint16_t legacy_version(std::string_view bytes) {
    if (bytes.size() < 6) {
        return 3;
    }
    return uint16_t(uint8_t(bytes[4]) | uint8_t(bytes[5]) << 8);
}

std::string legacy_refusal(std::string_view request) {
    constexpr uint16_t kLegacyError = 199;
    const uint16_t version = legacy_version(request);
    const std::string msg = version_mismatch(kProtoVersion, version);
    std::string out(kLegacyMagic);
    put_le(out, version, 2);  // its own version, or it would not read the frame
    put_le(out, kLegacyError, 2);
    put_le(out, uint32_t(4 + msg.size()), 4);
    put_le(out, uint32_t(msg.size()), 4);
    return out + msg;
}

}  // namespace lb::ctl
