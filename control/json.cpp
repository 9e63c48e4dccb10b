// The control protocol's JSON writer and reader (see json.hpp). The reader is written for
// hostile input: every read is checked against the end of the line, strings are bounded while
// they are read, and nothing recurses (the codec's schemas bound the nesting).
#include "control/json.hpp"

#include <charconv>

namespace lb::ctl::json {

namespace {

constexpr const char* kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool cont(unsigned char c) { return (c & 0xC0) == 0x80; }

// The length of the valid UTF-8 sequence at s[i] (a byte >= 0x80), or 0.
size_t utf8_len(std::string_view s, size_t i) {
    const auto at = [&](size_t k) { return i + k < s.size() ? uint8_t(s[i + k]) : uint8_t(0); };
    const uint8_t c = at(0);
    if (c >= 0xC2 && c <= 0xDF) {
        return cont(at(1)) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        const uint8_t lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return at(1) >= lo && at(1) <= hi && cont(at(2)) ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        const uint8_t lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return at(1) >= lo && at(1) <= hi && cont(at(2)) && cont(at(3)) ? 4 : 0;
    }
    return 0;
}

void put_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
        out.push_back(char(cp));
    } else if (cp < 0x800) {
        out.push_back(char(0xC0 | (cp >> 6)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(char(0xE0 | (cp >> 12)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(char(0xF0 | (cp >> 18)));
        out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(char(0x80 | (cp & 0x3F)));
    }
}

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

}  // namespace

std::string valid_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const size_t n = uint8_t(s[i]) < 0x80 ? 1 : utf8_len(s, i);
        out.append(n != 0 ? s.substr(i, n) : std::string_view(kReplacement));
        i += n != 0 ? n : 1;
    }
    return out;
}

size_t valid_utf8_size(std::string_view s) {
    size_t size = 0;
    for (size_t i = 0; i < s.size();) {
        const size_t n = uint8_t(s[i]) < 0x80 ? 1 : utf8_len(s, i);
        size += n != 0 ? n : 3;
        i += n != 0 ? n : 1;
    }
    return size;
}

void Writer::key(std::string_view k) {
    out_.push_back('"');
    out_ += k;
    out_ += "\":";
}

void Writer::uint(uint64_t v) {
    char buf[20];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
}

void Writer::string(std::string_view s) {
    out_.push_back('"');
    size_t run = 0;  // start of the bytes not yet copied
    for (size_t i = 0; i < s.size();) {
        const auto c = uint8_t(s[i]);
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            ++i;
            continue;
        }
        out_.append(s.substr(run, i - run));
        if (c >= 0x80) {
            const size_t n = utf8_len(s, i);
            out_.append(n != 0 ? s.substr(i, n) : std::string_view(kReplacement));
            i += n != 0 ? n : 1;
        } else {
            static constexpr char kHex[] = "0123456789abcdef";
            const char* named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n"
                                : c == '\r' ? "\\r" : c == '\t' ? "\\t" : nullptr;
            if (named != nullptr) {
                out_ += named;
            } else {
                out_ += "\\u00";
                out_.push_back(kHex[c >> 4]);
                out_.push_back(kHex[c & 15]);
            }
            ++i;
        }
        run = i;
    }
    out_.append(s.substr(run));
    out_.push_back('"');
}

void Writer::ipv4(uint32_t a) {
    char buf[16];
    char* p = buf;
    for (int shift = 24; shift >= 0; shift -= 8) {
        p = std::to_chars(p, buf + sizeof buf, (a >> shift) & 0xFF).ptr;
        *p++ = shift != 0 ? '.' : '"';
    }
    out_.push_back('"');
    out_.append(buf, p);
}

void Path::set(size_t d, std::string_view name, size_t index) {
    if (d < kDepth) {
        items_[d] = {name, index};
    }
}

std::string Path::text() const {
    std::string out;
    for (size_t d = 0; d < depth_ && d < kDepth; ++d) {
        if (!out.empty()) {
            out.push_back('.');
        }
        out += items_[d].name;
        if (items_[d].index != kNoIndex) {
            out += "[" + std::to_string(items_[d].index) + "]";
        }
    }
    return out;
}

void Reader::fail(const std::string& msg) const {
    const std::string where = path_.text();
    throw ProtocolError(std::string("malformed ") + what_ + " at byte " + std::to_string(pos_) +
                        (where.empty() ? "" : ", field " + where) + ": " + msg);
}

void Reader::skip_ws() {
    while (pos_ < text_.size() && is_ws(text_[pos_])) {
        ++pos_;
    }
}

std::string_view Reader::value_text() {
    skip_ws();
    if (pos_ >= text_.size()) {
        return "the end of the line";
    }
    size_t end = pos_ + 1;
    while (end < text_.size() && end - pos_ < 24 && text_[end] != ',' && text_[end] != '}' &&
           text_[end] != ']' && !is_ws(text_[end])) {
        ++end;
    }
    return text_.substr(pos_, end - pos_);
}

char Reader::peek() {
    skip_ws();
    return pos_ < text_.size() ? text_[pos_] : '\0';
}

bool Reader::consume(char c) {
    if (peek() == c && pos_ < text_.size()) {
        ++pos_;
        return true;
    }
    return false;
}

void Reader::expect(char c) {
    if (!consume(c)) {
        fail(std::string("expected '") + c + "', got " + std::string(value_text()));
    }
}

void Reader::finish() {
    skip_ws();
    if (pos_ != text_.size()) {
        fail("trailing characters after the message: " + std::string(value_text()));
    }
}

void Reader::utf8(std::string_view s, size_t start) {
    for (size_t i = 0; i < s.size();) {
        if (uint8_t(s[i]) < 0x80) {
            ++i;
            continue;
        }
        const size_t n = utf8_len(s, i);
        if (n == 0) {
            pos_ = start + i;
            fail("a string that is not valid UTF-8");
        }
        i += n;
    }
}

void Reader::escape(std::string& out) {
    auto hex4 = [this]() {
        uint32_t v = 0;
        for (int k = 0; k < 4; ++k, ++pos_) {
            const char c = pos_ < text_.size() ? text_[pos_] : '\0';
            const int d = c >= '0' && c <= '9'   ? c - '0'
                          : c >= 'a' && c <= 'f' ? c - 'a' + 10
                          : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                 : -1;
            if (d < 0) {
                fail("a \\u escape without four hex digits");
            }
            v = v * 16 + uint32_t(d);
        }
        return v;
    };
    const char c = ++pos_ < text_.size() ? text_[pos_++] : '\0';
    switch (c) {
        case '"': out.push_back('"'); return;
        case '\\': out.push_back('\\'); return;
        case '/': out.push_back('/'); return;
        case 'b': out.push_back('\b'); return;
        case 'f': out.push_back('\f'); return;
        case 'n': out.push_back('\n'); return;
        case 'r': out.push_back('\r'); return;
        case 't': out.push_back('\t'); return;
        case 'u': break;
        default: --pos_; fail("an unknown escape in a string");
    }
    uint32_t cp = hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        fail("a \\u escape of a lone low surrogate");
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (text_.substr(pos_, 2) != "\\u") {
            fail("a \\u escape of a high surrogate without its low one");
        }
        pos_ += 2;
        const uint32_t lo = hex4();
        if (lo < 0xDC00 || lo > 0xDFFF) {
            fail("a \\u escape of a high surrogate without its low one");
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    put_utf8(out, cp);
}

std::string_view Reader::string(std::string& scratch, size_t max) {
    if (peek() != '"') {
        fail("expected a string, got " + std::string(value_text()));
    }
    const size_t start = ++pos_;
    bool high = false;
    auto too_long = [&]() {
        fail("a string longer than the limit of " + std::to_string(max) + " bytes");
    };
    while (pos_ < text_.size()) {
        const auto c = uint8_t(text_[pos_]);
        if (c == '"' || c == '\\' || c < 0x20) {
            break;
        }
        high |= c >= 0x80;
        if (++pos_ - start > max) {
            too_long();
        }
    }
    if (pos_ < text_.size() && text_[pos_] == '"') {  // no escapes: a view of the line
        const std::string_view s = text_.substr(start, pos_ - start);
        if (high) {
            utf8(s, start);
        }
        ++pos_;
        return s;
    }
    scratch.assign(text_.substr(start, pos_ - start));
    while (pos_ < text_.size() && text_[pos_] != '"') {
        const auto c = uint8_t(text_[pos_]);
        if (c < 0x20) {
            fail("a control character in a string");
        }
        if (c == '\\') {
            escape(scratch);
        } else {
            scratch.push_back(char(c));
            ++pos_;
        }
        if (scratch.size() > max) {
            too_long();
        }
    }
    if (pos_ >= text_.size()) {
        fail("a string without its closing quote");
    }
    utf8(scratch, start);
    ++pos_;
    return scratch;
}

uint64_t Reader::uint(uint64_t max) {
    skip_ws();
    const size_t start = pos_;
    auto refuse = [&](const char* why, bool token_first = false) {
        pos_ = start;
        const std::string token(value_text());
        fail(token_first ? token + why : why + token);
    };
    uint64_t v = 0;
    bool over = false;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        const auto d = uint64_t(text_[pos_] - '0');
        over |= v > (UINT64_MAX - d) / 10;
        v = v * 10 + d;
        ++pos_;
    }
    if (pos_ == start) {
        refuse(start < text_.size() && text_[start] == '-' ? "a negative number, "
                                                           : "expected a number, got ");
    }
    if (text_[start] == '0' && pos_ - start > 1) {
        refuse("a number with a leading zero, ");
    }
    if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E')) {
        refuse("not a whole number, ");
    }
    if (over || v > max) {
        refuse((" is out of range (at most " + std::to_string(max) + ")").c_str(), true);
    }
    return v;
}

bool Reader::boolean() {
    skip_ws();
    for (const bool b : {true, false}) {
        const std::string_view word = b ? "true" : "false";
        if (text_.substr(pos_, word.size()) == word) {
            pos_ += word.size();
            return b;
        }
    }
    fail("expected true or false, got " + std::string(value_text()));
}

uint32_t Reader::ipv4() {
    std::string scratch;
    skip_ws();
    const size_t start = pos_;
    const std::string_view s = string(scratch, 15);
    uint32_t addr = 0;
    size_t i = 0;
    for (int part = 0; part < 4; ++part) {
        const size_t from = i;
        uint32_t v = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9' && i - from < 3) {
            v = v * 10 + uint32_t(s[i++] - '0');
        }
        const bool sep_ok = part == 3 ? i == s.size() : i < s.size() && s[i] == '.';
        if (i == from || v > 255 || (s[from] == '0' && i - from > 1) || !sep_ok) {
            pos_ = start;
            fail("\"" + std::string(s) + "\" is not an IPv4 address (a.b.c.d)");
        }
        addr = addr << 8 | v;
        i += part == 3 ? 0 : 1;
    }
    return addr;
}

}  // namespace lb::ctl::json
