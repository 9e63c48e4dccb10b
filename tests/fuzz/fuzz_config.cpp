// libFuzzer target: the config parser on arbitrary text. parse_config() must return a Config or
// throw an exception whose message names the place, "fuzz.conf:LINE: ..."; nothing else (no
// crash, no other exception, no message without a line). A config that parses must survive
// format_config(): its text parses again, to a config that formats to the same text.
// Inputs holding "@include" are skipped: they would read files of the machine running the fuzzer.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "control/config.hpp"

namespace {

const std::string kName = "fuzz.conf";

[[noreturn]] void fail(const std::string& what, const std::string& text) {
    std::fprintf(stderr, "fuzz_config: %s\n--- text ---\n%s\n------------\n", what.c_str(),
                 text.c_str());
    std::abort();
}

// "fuzz.conf:LINE: what", LINE a positive decimal number.
bool names_place(const std::string& msg) {
    if (msg.compare(0, kName.size() + 1, kName + ":") != 0) {
        return false;
    }
    size_t i = kName.size() + 1;
    const size_t digits = i;
    while (i < msg.size() && std::isdigit(static_cast<unsigned char>(msg[i]))) {
        ++i;
    }
    return i > digits && msg[digits] != '0' && msg.compare(i, 2, ": ") == 0;
}

bool has_include(const std::string& text) {
    std::string low(text);
    std::transform(low.begin(), low.end(), low.begin(),
                   [](unsigned char c) { return char(std::tolower(c)); });
    return low.find("@include") != std::string::npos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    if (has_include(text)) {
        return 0;
    }
    lb::ctl::Config cfg;
    try {
        cfg = lb::ctl::parse_config(text, kName);
    } catch (const lb::ctl::ConfigError& e) {
        if (!names_place(e.what())) {
            fail(std::string("ConfigError without FILE:LINE: ") + e.what(), text);
        }
        return 0;
    } catch (const std::exception& e) {
        if (!names_place(e.what())) {
            fail(std::string("exception (not a ConfigError) without FILE:LINE: ") + e.what(), text);
        }
        return 0;
    }
    const std::string once = lb::ctl::format_config(cfg);
    lb::ctl::Config again;
    try {
        again = lb::ctl::parse_config(once, kName);
    } catch (const std::exception& e) {
        fail(std::string("format_config's text does not parse: ") + e.what() +
                 "\n--- written ---\n" + once,
             text);
    }
    const std::string twice = lb::ctl::format_config(again);
    if (twice != once) {
        fail("format_config of the re-parsed config differs:\n--- first ---\n" + once +
                 "\n--- second ---\n" + twice,
             text);
    }
    return 0;
}
