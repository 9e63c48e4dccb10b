#pragma once
// One definition per message: each struct of the control protocol has one Schema, a list of its
// fields (JSON name, member, how it is written), and the codec (codec.hpp) writes and reads
// every message from that list alone. Adding a field to a message is one line in its Schema.
#include <cstdint>
#include <span>
#include <string_view>
#include <tuple>

namespace lb::ctl {

// How a member is written. Plain: by its C++ type: bool as true/false, unsigned integers as
// numbers within their type's range, std::string as a string of at most kMaxString bytes, a
// struct with a Schema as an object.
struct Plain {};
// A uint32_t address, host order, as "a.b.c.d".
struct Ipv4 {};
// An enum (or a uint8_t that stands for one) by name; any other value is refused both ways.
struct Name {
    uint8_t value;
    std::string_view text;
};
struct Names {
    std::span<const Name> names;
};
// A std::vector<T> as an array of at most `max` elements, each written as T is.
struct List {
    uint32_t max;
};
// A std::vector<std::pair<std::string, uint64_t>> as an object of at most `max` names.
struct Counters {
    uint32_t max;
};

template <typename C, typename M, typename F>
struct Field {
    std::string_view name;
    M C::*member;
    F format;
    bool optional;  // may be left out when read (the member keeps its default)
};

template <typename C, typename M, typename F = Plain>
constexpr Field<C, M, F> field(std::string_view name, M C::*member, F format = {}) {
    return {name, member, format, false};
}

template <typename C, typename M, typename F = Plain>
constexpr Field<C, M, F> optional_field(std::string_view name, M C::*member, F format = {}) {
    return {name, member, format, true};
}

// Specialised for every struct of the protocol: `static constexpr auto kFields = std::tuple{
// field(...), ...}`, and for the messages (a request or a reply line) `kTag`, the name in the
// line's "cmd" or "type".
template <typename T>
struct Schema;

}  // namespace lb::ctl
