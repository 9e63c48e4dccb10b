#pragma once
// The JSON text of the control protocol, without a document tree: a writer that appends to a
// string and a strict reader of one line, both driven field by field by the codec (codec.hpp).
// The reader takes RFC 8259 JSON with two limits of the protocol's own: numbers are whole and
// not negative (every number in a message is a count, an id or a size), and strings are valid
// UTF-8 of a bounded length. Every error names the byte offset and the field being read.
#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace lb::ctl {

class ProtocolError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace json {

// s with every byte that is not part of valid UTF-8 replaced by U+FFFD, as Writer::string
// writes it; and the length of that, without making it.
std::string valid_utf8(std::string_view s);
size_t valid_utf8_size(std::string_view s);

class Writer {
public:
    explicit Writer(std::string& out) : out_(out) {}
    void put(char c) { out_.push_back(c); }
    void key(std::string_view k);  // "k": (schema names: no escaping needed)
    void uint(uint64_t v);
    void boolean(bool v) { out_ += v ? "true" : "false"; }
    // Escapes '"', '\\' and control characters; bytes that are not UTF-8 become U+FFFD.
    void string(std::string_view s);
    void ipv4(uint32_t host_order);  // "a.b.c.d"

private:
    std::string& out_;
};

// Where in the message a value sits, for error messages: "ops[2].port".
class Path {
public:
    static constexpr size_t kDepth = 8;
    void push(std::string_view name) { set(depth_++, name, kNoIndex); }
    void pop() { --depth_; }
    void index(size_t i) { items_[depth_ - 1].index = i; }
    std::string text() const;

private:
    static constexpr size_t kNoIndex = SIZE_MAX;
    struct Item {
        std::string_view name;
        size_t index;
    };
    void set(size_t d, std::string_view name, size_t index);
    std::array<Item, kDepth> items_{};
    size_t depth_ = 0;
};

class Reader {
public:
    // `what` names the text in errors: "request", "reply".
    Reader(std::string_view text, const char* what) : text_(text), what_(what) {}

    void expect(char c);      // after whitespace
    bool consume(char c);     // after whitespace: true and past it if the next byte is c
    char peek();              // the next byte after whitespace ('\0' at the end)
    // A string of at most max bytes: a view of the text, or of scratch when it had escapes.
    std::string_view string(std::string& scratch, size_t max);
    uint64_t uint(uint64_t max);
    bool boolean();
    uint32_t ipv4();  // "a.b.c.d", host order
    void finish();    // nothing but whitespace left

    Path& path() { return path_; }
    size_t offset() const { return pos_; }
    [[noreturn]] void fail(const std::string& msg) const;

private:
    void skip_ws();
    std::string_view value_text();  // the token at pos_, for messages
    void escape(std::string& out);
    void utf8(std::string_view s, size_t start);

    std::string_view text_;
    size_t pos_ = 0;
    const char* what_;
    Path path_;
};

}  // namespace json
}  // namespace lb::ctl
