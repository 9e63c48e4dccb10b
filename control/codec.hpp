#pragma once
// The codec behind protocol.hpp: writes and reads any struct with a Schema, field by field, on
// json::Writer and json::Reader. Only protocol.cpp includes it.
#include <concepts>
#include <limits>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "control/json.hpp"
#include "control/protocol.hpp"

namespace lb::ctl::codec {

template <typename T>
concept Described = requires { Schema<T>::kFields; };

using CounterList = std::vector<std::pair<std::string, uint64_t>>;

[[noreturn]] inline void cannot_encode(std::string_view name, const std::string& why) {
    throw ProtocolError("cannot encode field " + std::string(name) + ": " + why);
}

// ---- writing ------------------------------------------------------------------------------

template <Described T>
void put_fields(json::Writer& w, const T& v, bool first);

inline void put(json::Writer& w, bool v, Plain, std::string_view) { w.boolean(v); }

template <std::unsigned_integral T>
void put(json::Writer& w, T v, Plain, std::string_view) {
    w.uint(v);
}

// The limit is on what the reader gets: bytes that are not UTF-8 are written as U+FFFD.
inline void put(json::Writer& w, const std::string& v, Plain, std::string_view name) {
    const size_t n = v.size() > kMaxString ? v.size() : json::valid_utf8_size(v);
    if (n > kMaxString) {
        cannot_encode(name, std::to_string(n) + " bytes, more than the limit of " +
                                std::to_string(kMaxString));
    }
    w.string(v);
}

inline void put(json::Writer& w, uint32_t v, Ipv4, std::string_view) { w.ipv4(v); }

template <typename E>
void put(json::Writer& w, E v, Names n, std::string_view name) {
    for (const Name& x : n.names) {
        if (x.value == uint8_t(v)) {
            w.string(x.text);
            return;
        }
    }
    cannot_encode(name, "no name for the value " + std::to_string(unsigned(v)));
}

template <Described T>
void put(json::Writer& w, const T& v, Plain, std::string_view) {
    w.put('{');
    put_fields(w, v, true);
    w.put('}');
}

template <typename T>
void put(json::Writer& w, const std::vector<T>& v, List l, std::string_view name) {
    if (v.size() > l.max) {
        cannot_encode(name, std::to_string(v.size()) + " elements, more than the limit of " +
                                std::to_string(l.max));
    }
    w.put('[');
    for (size_t i = 0; i < v.size(); ++i) {
        if (i != 0) {
            w.put(',');
        }
        put(w, v[i], Plain{}, name);
    }
    w.put(']');
}

inline void put(json::Writer& w, const CounterList& v, Counters c, std::string_view name) {
    if (v.size() > c.max) {
        cannot_encode(name, std::to_string(v.size()) + " names, more than the limit of " +
                                std::to_string(c.max));
    }
    w.put('{');
    for (size_t i = 0; i < v.size(); ++i) {
        put(w, v[i].first, Plain{}, name);  // checks the length
        w.put(':');
        w.uint(v[i].second);
        if (i + 1 != v.size()) {
            w.put(',');
        }
    }
    w.put('}');
}

template <Described T>
void put_fields(json::Writer& w, const T& v, bool first) {
    std::apply(
        [&](const auto&... f) {
            (((first ? void() : w.put(',')), first = false, w.key(f.name),
              put(w, v.*(f.member), f.format, f.name)),
             ...);
        },
        Schema<T>::kFields);
}

// ---- reading ------------------------------------------------------------------------------

template <Described T>
void get_object(json::Reader& r, T& v);

inline void get(json::Reader& r, bool& v, Plain) { v = r.boolean(); }

template <std::unsigned_integral T>
void get(json::Reader& r, T& v, Plain) {
    v = T(r.uint(std::numeric_limits<T>::max()));
}

inline void get(json::Reader& r, std::string& v, Plain) {
    std::string scratch;
    v.assign(r.string(scratch, kMaxString));
}

inline void get(json::Reader& r, uint32_t& v, Ipv4) { v = r.ipv4(); }

template <typename E>
void get(json::Reader& r, E& v, Names n) {
    std::string scratch;
    const std::string_view s = r.string(scratch, 64);
    std::string known;
    for (const Name& x : n.names) {
        if (x.text == s) {
            v = E(x.value);
            return;
        }
        known += (known.empty() ? "" : ", ") + std::string(x.text);
    }
    r.fail("unknown value \"" + std::string(s) + "\" (one of: " + known + ")");
}

template <Described T>
void get(json::Reader& r, T& v, Plain) {
    get_object(r, v);
}

template <typename T>
void get(json::Reader& r, std::vector<T>& v, List l) {
    v.clear();
    r.expect('[');
    if (r.consume(']')) {
        return;
    }
    do {
        r.path().index(v.size());
        if (v.size() == l.max) {
            r.fail("more than " + std::to_string(l.max) + " elements");
        }
        get(r, v.emplace_back(), Plain{});
    } while (r.consume(','));
    r.expect(']');
}

inline void get(json::Reader& r, CounterList& v, Counters c) {
    v.clear();
    r.expect('{');
    if (r.consume('}')) {
        return;
    }
    std::string scratch;
    do {
        if (v.size() == c.max) {
            r.fail("more than " + std::to_string(c.max) + " names");
        }
        std::string name(r.string(scratch, kMaxString));
        r.expect(':');
        v.emplace_back(std::move(name), r.uint(UINT64_MAX));
    } while (r.consume(','));
    r.expect('}');
}

// A key of an object: at most 64 bytes (longer ones are no field of any message).
inline std::string_view get_key(json::Reader& r, std::string& scratch) {
    const std::string_view k = r.string(scratch, 64);
    r.expect(':');
    return k;
}

template <Described T, size_t I>
bool get_field_at(json::Reader& r, T& v, std::string_view key, uint64_t& seen) {
    const auto& f = std::get<I>(Schema<T>::kFields);
    if (f.name != key) {
        return false;
    }
    if ((seen & (uint64_t{1} << I)) != 0) {
        r.fail("field \"" + std::string(key) + "\" given twice");
    }
    seen |= uint64_t{1} << I;
    r.path().push(f.name);
    get(r, v.*(f.member), f.format);
    r.path().pop();
    return true;
}

// Reads the value of `key` into its member; false if T has no such field.
template <Described T>
bool get_field(json::Reader& r, T& v, std::string_view key, uint64_t& seen) {
    constexpr size_t n = std::tuple_size_v<decltype(Schema<T>::kFields)>;
    static_assert(n <= 64, "a field mask has 64 bits");
    return [&]<size_t... I>(std::index_sequence<I...>) {
        return (get_field_at<T, I>(r, v, key, seen) || ...);
    }(std::make_index_sequence<n>{});
}

// After the object: every field that is not optional was there.
template <Described T>
void check_missing(json::Reader& r, uint64_t seen) {
    std::apply(
        [&](const auto&... f) {
            size_t i = 0;
            ((f.optional || (seen & (uint64_t{1} << i)) != 0
                  ? void(++i)
                  : r.fail("missing field \"" + std::string(f.name) + "\"")),
             ...);
        },
        Schema<T>::kFields);
}

[[noreturn]] inline void unknown_field(json::Reader& r, std::string_view key) {
    r.fail("unknown field \"" + std::string(key) + "\"");
}

template <Described T>
void get_object(json::Reader& r, T& v) {
    r.expect('{');
    uint64_t seen = 0;
    if (!r.consume('}')) {
        std::string scratch;
        do {
            const std::string_view key = get_key(r, scratch);
            if (!get_field(r, v, key, seen)) {
                unknown_field(r, key);
            }
        } while (r.consume(','));
        r.expect('}');
    }
    check_missing<T>(r, seen);
}

}  // namespace lb::ctl::codec
