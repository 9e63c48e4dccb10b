// Config file reader: libconfig syntax into the plain structs of config.hpp, with every rule
// checked here so that the snapshot builder can trust what it gets. Every error names
// FILE:LINE and the key path ("services[0].reals[1].address") the way a compiler would.
#include "control/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <map>
#include <set>
#include <string_view>
#include <utility>

#include <libconfig.h++>

#include "control/config_source.hpp"

namespace lb::ctl {

namespace {

using libconfig::Setting;

constexpr int64_t kMaxSeconds = 31536000;  // one year
constexpr int64_t kMaxLcore = 1023;
constexpr int64_t kMinMbufs = 1023;
constexpr int64_t kMaxMbufs = 16 * 1024 * 1024;
constexpr int64_t kMaxCapacity = 100'000'000;
constexpr int64_t kMinMtu = 68;
constexpr int64_t kMaxMtu = 9216;
constexpr size_t kSunPathMax = 108;  // sizeof(sockaddr_un::sun_path), NUL included

constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};
// IPVS schedulers we know of but do not implement: "not supported" rather than "unknown".
constexpr std::array<std::string_view, 3> kIpvsSchedulers = {"lblc", "lblcr", "twos"};
constexpr uint32_t kMaxMhSize = 1u << 22;

bool is_prime(uint32_t n) {
    if (n < 2) {
        return false;
    }
    for (uint32_t d = 2; uint64_t(d) * d <= n; ++d) {
        if (n % d == 0) {
            return false;
        }
    }
    return true;
}

std::string sched_list() {
    std::string out;
    for (const std::string_view n : dp::kSchedNames) {
        out += (out.empty() ? "" : ", ") + std::string(n);
    }
    return out;
}

constexpr uint32_t mask_of(unsigned len) { return len == 0 ? 0 : ~uint32_t{0} << (32 - len); }

bool in_subnet(uint32_t addr, uint32_t net, unsigned len) {
    return ((addr ^ net) & mask_of(len)) == 0;
}

// Digits only, no sign, no leading zeros (so "010" is not silently octal or decimal).
bool parse_decimal(std::string_view s, uint64_t max, uint64_t& out) {
    if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) {
        return false;
    }
    uint64_t v = 0;
    for (const char c : s) {
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + uint64_t(c - '0');
    }
    if (v > max) {
        return false;
    }
    out = v;
    return true;
}

struct Prefix {
    uint32_t addr = 0;
    uint8_t len = 0;
};

// "A.B.C.D/LEN", LEN 0..32 (the caller narrows the range).
std::optional<Prefix> parse_prefix(std::string_view s) {
    const size_t slash = s.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    Prefix p;
    try {
        p.addr = parse_ipv4(std::string(s.substr(0, slash)));
    } catch (const std::invalid_argument&) {
        return std::nullopt;
    }
    uint64_t len = 0;
    if (!parse_decimal(s.substr(slash + 1), 99, len)) {
        return std::nullopt;
    }
    p.len = uint8_t(len);
    return p;
}

int hex_digit(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// "xx:xx:xx:xx:xx:xx", exactly two hex digits per octet.
std::optional<Mac> parse_mac(std::string_view s) {
    if (s.size() != 17) {
        return std::nullopt;
    }
    Mac mac{};
    for (size_t i = 0; i < 6; ++i) {
        const int hi = hex_digit(s[i * 3]);
        const int lo = hex_digit(s[i * 3 + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && s[i * 3 + 2] != ':')) {
            return std::nullopt;
        }
        mac[i] = uint8_t(hi * 16 + lo);
    }
    return mac;
}

// Why an address cannot be a host address (interface, VIP, real, next hop), or nullptr.
const char* not_unicast_reason(uint32_t a) {
    if (a == 0) {
        return "is the unspecified address";
    }
    if (a == 0xffffffff) {
        return "is the broadcast address";
    }
    if ((a >> 24) == 0) {
        return "is in 0.0.0.0/8 (this network)";
    }
    if ((a >> 24) == 127) {
        return "is a loopback address";
    }
    if ((a >> 28) == 0xe) {
        return "is a multicast address";
    }
    if ((a >> 28) == 0xf) {
        return "is in the reserved range 240.0.0.0/4";
    }
    return nullptr;
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    for (const char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
            out += buf;
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

std::string join(std::initializer_list<const char*> names) {
    std::string out;
    for (const char* n : names) {
        if (!out.empty()) {
            out += ", ";
        }
        out += n;
    }
    return out;
}

const char* type_name(const Setting& s) {
    switch (s.getType()) {
        case Setting::TypeInt:
        case Setting::TypeInt64:
            return "an integer";
        case Setting::TypeFloat:
            return "a float";
        case Setting::TypeString:
            return "a string";
        case Setting::TypeBoolean:
            return "a boolean";
        case Setting::TypeGroup:
            return "a group { ... }";
        case Setting::TypeArray:
            return "an array [ ... ]";
        case Setting::TypeList:
            return "a list ( ... )";
        case Setting::TypeNone:
            break;
    }
    return "nothing";
}

// "services[0].reals[1].address"
std::string path_of(const Setting& s) {
    if (s.isRoot()) {
        return {};
    }
    std::string parent = path_of(s.getParent());
    if (s.getName() != nullptr) {
        return parent.empty() ? std::string(s.getName()) : parent + "." + s.getName();
    }
    return parent + "[" + std::to_string(s.getIndex()) + "]";
}

std::string range(int64_t lo, int64_t hi) {
    return "(" + std::to_string(lo) + ".." + std::to_string(hi) + ")";
}

// libconfig 1.5 parses an integer literal without the L suffix into 32 bits and silently
// truncates it (5000000000 reads as 705032704). To refuse such values instead of using the
// truncated number, the text is scanned for integer literals that do not fit, remembering each
// one's line, the name it is assigned to (for an array element, the array's) and the value
// libconfig makes of it; reading an integer setting checks against that list.
struct Overflow {
    std::string key;
    int32_t truncated;
    std::string literal;
};

std::map<int, std::vector<Overflow>> find_overflows(std::string_view text) {
    std::map<int, std::vector<Overflow>> out;
    int line = 1;
    size_t i = 0;
    const size_t n = text.size();
    std::string_view last_name;
    auto is_name = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-' || c == '*';
    };
    auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
    while (i < n) {
        const char c = text[i];
        if (c == '\n') {
            ++line;
            ++i;
        } else if (c == '#' || (c == '/' && i + 1 < n && text[i + 1] == '/')) {
            while (i < n && text[i] != '\n') {
                ++i;
            }
        } else if (c == '/' && i + 1 < n && text[i + 1] == '*') {
            i += 2;
            while (i < n && !(text[i] == '*' && i + 1 < n && text[i + 1] == '/')) {
                line += text[i] == '\n' ? 1 : 0;
                ++i;
            }
            i += 2;
        } else if (c == '"') {
            ++i;
            while (i < n && text[i] != '"') {
                if (text[i] == '\\' && i + 1 < n) {
                    ++i;
                }
                line += text[i] == '\n' ? 1 : 0;
                ++i;
            }
            ++i;
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '*') {
            const size_t start = i;
            while (i < n && is_name(text[i])) {
                ++i;
            }
            last_name = text.substr(start, i - start);
        } else if (is_digit(c) || ((c == '-' || c == '+' || c == '.') && i + 1 < n &&
                                   (is_digit(text[i + 1]) || text[i + 1] == '.'))) {
            const size_t start = i;
            ++i;
            while (i < n && (is_name(text[i]) || text[i] == '.' || text[i] == '+')) {
                // '-' and '+' only belong to a number right after an exponent marker.
                if ((text[i] == '-' || text[i] == '+') && text[i - 1] != 'e' &&
                    text[i - 1] != 'E') {
                    break;
                }
                ++i;
            }
            const std::string lit(text.substr(start, i - start));
            const size_t body = (lit[0] == '-' || lit[0] == '+') ? 1 : 0;
            const bool hex = lit.size() > body + 1 && lit[body] == '0' &&
                             (lit[body + 1] == 'x' || lit[body + 1] == 'X');
            if (lit.back() == 'L' || lit.find('.') != std::string::npos ||
                (!hex && lit.find_first_of("eE") != std::string::npos)) {
                continue;  // 64-bit literal or float
            }
            if (hex) {
                const unsigned long long v = std::strtoull(lit.c_str(), nullptr, 16);
                if (v > 0xffffffffULL) {
                    out[line].push_back({std::string(last_name), int32_t(uint32_t(v)), lit});
                }
            } else {
                const long long v = std::strtoll(lit.c_str(), nullptr, 10);
                if (v > INT32_MAX || v < INT32_MIN) {
                    out[line].push_back(
                        {std::string(last_name), int32_t(uint32_t(uint64_t(v))), lit});
                }
            }
        } else {
            ++i;
        }
    }
    return out;
}

struct LcoreList {
    std::set<unsigned> lcores;
    unsigned main = 0;
    std::string text;       // as written after -l
    std::string main_from;  // why `main` is the main lcore, for messages
};

class Reader {
public:
    Reader(std::string file, const ExpandedConfig& src)
        : file_(std::move(file)), src_(src), overflows_(find_overflows(src.text)) {
        cfg_.file = file_;
    }

    Config read(const Setting& root) {
        check_keys(root, {"eal", "workers", "mbufs", "interfaces", "routes", "neighbours",
                          "connections", "services", "control", "log"});
        read_eal(need(root, "eal"));
        read_workers(need(root, "workers"));
        if (const Setting* s = find(root, "mbufs")) {
            cfg_.mbufs = uint32_t(as_int(*s, kMinMbufs, kMaxMbufs));
        }
        read_interfaces(need(root, "interfaces"));
        if (const Setting* s = find(root, "routes")) {
            read_routes(*s);
        }
        if (const Setting* s = find(root, "neighbours")) {
            read_neighbours(*s);
        }
        if (const Setting* s = find(root, "connections")) {
            read_connections(*s);
        }
        if (const Setting* s = find(root, "services")) {
            read_services(*s);
        }
        if (const Setting* s = find(root, "control")) {
            read_control(*s);
        }
        if (const Setting* s = find(root, "log")) {
            read_log(*s);
        }
        return std::move(cfg_);
    }

private:
    // ---- errors ----------------------------------------------------------------------------

    // The line in the expanded text (the @include files in place), as libconfig counts it.
    static int raw_line(const Setting& s) {
        const int line = int(s.getSourceLine());
        return line > 0 ? line : 1;  // the root group has no line of its own
    }

    // The line in the file it was written in.
    int line_of(const Setting& s) const { return src_.origin(raw_line(s)).second; }

    std::string file_of(const Setting& s) const { return src_.origin(raw_line(s)).first; }

    [[noreturn]] void fail_at(const Setting& s, const std::string& key,
                              const std::string& what) const {
        throw ConfigError(file_of(s) + ":" + std::to_string(line_of(s)) + ": " +
                          (key.empty() ? what : key + ": " + what));
    }

    [[noreturn]] void fail(const Setting& s, const std::string& what) const {
        fail_at(s, path_of(s), what);
    }

    // A required key is missing: the error points at the group that should hold it.
    [[noreturn]] void fail_missing(const Setting& group, const char* key) const {
        const std::string path = path_of(group);
        fail_at(group, path.empty() ? key : path + "." + key, "required key is missing");
    }

    // "services[0] (line 13)"
    std::string ref(const std::string& path, int line) const {
        return path + " (line " + std::to_string(line) + ")";
    }

    // ---- typed access ----------------------------------------------------------------------

    void check_keys(const Setting& group, std::initializer_list<const char*> allowed) const {
        for (int i = 0; i < group.getLength(); ++i) {
            const Setting& s = group[i];
            const bool known = std::any_of(allowed.begin(), allowed.end(), [&](const char* k) {
                return std::strcmp(k, s.getName()) == 0;
            });
            if (!known) {
                fail(s, "unknown key (allowed: " + join(allowed) + ")");
            }
        }
    }

    const Setting* find(const Setting& group, const char* key) const {
        return group.exists(key) ? &group[key] : nullptr;
    }

    const Setting& need(const Setting& group, const char* key) const {
        if (!group.exists(key)) {
            fail_missing(group, key);
        }
        return group[key];
    }

    const Setting& as_group(const Setting& s) const {
        if (!s.isGroup()) {
            fail(s, std::string("expected a group { ... }, got ") + type_name(s));
        }
        return s;
    }

    // A list of groups: ( { ... }, { ... } ). An empty [] is accepted as an empty list.
    const Setting& as_list(const Setting& s) const {
        if (!s.isList() && !(s.isArray() && s.getLength() == 0)) {
            fail(s, std::string("expected a list ( { ... }, ... ), got ") + type_name(s));
        }
        for (int i = 0; i < s.getLength(); ++i) {
            as_group(s[i]);
        }
        return s;
    }

    // A sequence of scalars: [ ... ] or ( ... ).
    const Setting& as_values(const Setting& s) const {
        if (!s.isArray() && !s.isList()) {
            fail(s, std::string("expected an array [ ... ], got ") + type_name(s));
        }
        return s;
    }

    int64_t as_int(const Setting& s, int64_t lo, int64_t hi) const {
        int64_t v = 0;
        if (s.getType() == Setting::TypeInt) {
            v = int(s);
            if (const auto it = overflows_.find(raw_line(s)); it != overflows_.end()) {
                const Setting* named = &s;
                while (named->getName() == nullptr && !named->isRoot()) {
                    named = &named->getParent();
                }
                const std::string key = named->getName() != nullptr ? named->getName() : "";
                for (const Overflow& o : it->second) {
                    if (o.key == key && o.truncated == v) {
                        fail(s, o.literal + " is out of range " + range(lo, hi));
                    }
                }
            }
        } else if (s.getType() == Setting::TypeInt64) {
            v = static_cast<long long>(s);
        } else {
            fail(s, std::string("expected an integer, got ") + type_name(s));
        }
        if (v < lo || v > hi) {
            fail(s, std::to_string(v) + " is out of range " + range(lo, hi));
        }
        return v;
    }

    bool as_bool(const Setting& s) const {
        if (s.getType() != Setting::TypeBoolean) {
            fail(s, std::string("expected true or false, got ") + type_name(s));
        }
        return bool(s);
    }

    std::string as_string(const Setting& s) const {
        if (s.getType() != Setting::TypeString) {
            fail(s, std::string("expected a string, got ") + type_name(s));
        }
        return std::string(s.c_str());
    }

    uint32_t as_ipv4(const Setting& s) const {
        const std::string text = as_string(s);
        try {
            return parse_ipv4(text);
        } catch (const std::invalid_argument&) {
            fail(s, quote(text) + " is not an IPv4 address");
        }
    }

    // An address a host can have: not 0.0.0.0, broadcast, loopback, multicast or reserved.
    uint32_t as_host(const Setting& s) const {
        const uint32_t a = as_ipv4(s);
        if (const char* why = not_unicast_reason(a)) {
            fail(s, format_ipv4(a) + " " + why);
        }
        return a;
    }

    Mac as_unicast_mac(const Setting& s) const {
        const std::string text = as_string(s);
        const std::optional<Mac> mac = parse_mac(text);
        if (!mac) {
            fail(s, quote(text) + " is not a MAC address (expected xx:xx:xx:xx:xx:xx)");
        }
        const Mac& m = *mac;
        if (std::all_of(m.begin(), m.end(), [](uint8_t b) { return b == 0xff; })) {
            fail(s, quote(text) + " is the broadcast MAC address");
        }
        if ((m[0] & 1) != 0) {
            fail(s, quote(text) + " is a multicast MAC address (low bit of the first octet set)");
        }
        if (std::all_of(m.begin(), m.end(), [](uint8_t b) { return b == 0; })) {
            fail(s, quote(text) + " is the all-zero MAC address");
        }
        return m;
    }

    // ---- sections --------------------------------------------------------------------------

    void read_eal(const Setting& eal) {
        as_values(eal);
        if (eal.getLength() == 0) {
            fail(eal, "must hold at least one EAL argument (e.g. [\"-l\", \"0-1\"])");
        }
        for (int i = 0; i < eal.getLength(); ++i) {
            std::string arg = as_string(eal[i]);
            if (arg.empty()) {
                fail(eal[i], "empty EAL argument");
            }
            cfg_.eal.push_back(std::move(arg));
        }

        // Find the lcore list so the workers can be checked against it. --lcores (with its
        // groups and @cpu mappings) and -c COREMASK are left to DPDK.
        bool complex = false;
        std::optional<std::pair<int, std::string>> list;  // (index of the value, value)
        std::optional<std::pair<int, std::string>> main;
        const auto& args = cfg_.eal;
        for (size_t i = 0; i < args.size(); ++i) {
            const std::string& a = args[i];
            auto value_of =
                [&](std::string_view opt) -> std::optional<std::pair<int, std::string>> {
                if (a == opt) {
                    if (i + 1 >= args.size()) {
                        fail(eal[int(i)], std::string(opt) + " needs a value");
                    }
                    ++i;
                    return std::pair{int(i), args[i]};
                }
                return std::nullopt;
            };
            if (a == "--lcores" || a.rfind("--lcores=", 0) == 0 || a == "-c" ||
                (a.rfind("-c", 0) == 0 && a.size() > 2 && a[2] != '-')) {
                complex = true;
            } else if (auto v = value_of("-l")) {
                list = v;
            } else if (a.rfind("-l", 0) == 0 && a.size() > 2) {
                list = std::pair{int(i), a.substr(2)};
            } else if (auto m = value_of("--main-lcore")) {
                main = m;
            } else if (a.rfind("--main-lcore=", 0) == 0) {
                main = std::pair{int(i), a.substr(std::strlen("--main-lcore="))};
            }
        }
        if (complex || !list) {
            return;
        }
        LcoreList lc;
        lc.text = list->second;
        if (!parse_lcore_list(lc.text, lc.lcores)) {
            fail(eal[list->first], quote(lc.text) +
                                       " is not a valid lcore list for -l (expected e.g. \"0-1\" "
                                       "or \"0,2,4-5\", lcores 0.." +
                                       std::to_string(kMaxLcore) + ")");
        }
        lc.main = *lc.lcores.begin();  // DPDK's default: the lowest lcore of the list
        lc.main_from = "the lowest lcore of -l " + lc.text;
        if (main) {
            uint64_t m = 0;
            if (!parse_decimal(main->second, kMaxLcore, m)) {
                fail(eal[main->first],
                     quote(main->second) + " is not a valid lcore id for --main-lcore");
            }
            if (lc.lcores.count(unsigned(m)) == 0) {
                fail(eal[main->first], "main lcore " + std::to_string(m) +
                                           " is not in the -l list " + quote(lc.text));
            }
            lc.main = unsigned(m);
            lc.main_from = "--main-lcore " + std::to_string(m);
        }
        lcores_ = std::move(lc);
    }

    static bool parse_lcore_list(std::string_view s, std::set<unsigned>& out) {
        if (s.empty()) {
            return false;
        }
        size_t pos = 0;
        while (pos <= s.size()) {
            size_t comma = s.find(',', pos);
            if (comma == std::string_view::npos) {
                comma = s.size();
            }
            const std::string_view item = s.substr(pos, comma - pos);
            const size_t dash = item.find('-');
            uint64_t lo = 0;
            uint64_t hi = 0;
            if (dash == std::string_view::npos) {
                if (!parse_decimal(item, kMaxLcore, lo)) {
                    return false;
                }
                hi = lo;
            } else if (!parse_decimal(item.substr(0, dash), kMaxLcore, lo) ||
                       !parse_decimal(item.substr(dash + 1), kMaxLcore, hi)) {
                return false;
            }
            if (lo > hi) {
                std::swap(lo, hi);  // DPDK accepts "3-1" as well
            }
            for (uint64_t c = lo; c <= hi; ++c) {
                out.insert(unsigned(c));
            }
            pos = comma + 1;
        }
        return true;
    }

    void read_workers(const Setting& workers) {
        as_values(workers);
        if (workers.getLength() == 0) {
            fail(workers, "must list at least one worker lcore (e.g. [1])");
        }
        if (workers.getLength() > int(dp::kMaxWorkers)) {
            fail(workers, std::to_string(workers.getLength()) + " workers; at most " +
                              std::to_string(dp::kMaxWorkers) + " are supported");
        }
        for (int i = 0; i < workers.getLength(); ++i) {
            const Setting& w = workers[i];
            const auto lcore = unsigned(as_int(w, 0, kMaxLcore));
            if (std::find(cfg_.workers.begin(), cfg_.workers.end(), lcore) != cfg_.workers.end()) {
                fail(w, "lcore " + std::to_string(lcore) + " is listed twice");
            }
            if (lcores_) {
                if (lcores_->lcores.count(lcore) == 0) {
                    fail(w, "lcore " + std::to_string(lcore) +
                                " is not in the EAL lcore list (-l " + lcores_->text + ")");
                }
                if (lcore == lcores_->main) {
                    fail(w, "lcore " + std::to_string(lcore) + " is the main lcore (" +
                                lcores_->main_from +
                                "), which runs the control thread; workers need other lcores");
                }
            }
            cfg_.workers.push_back(lcore);
        }
    }

    void read_interfaces(const Setting& list) {
        as_list(list);
        if (list.getLength() == 0) {
            fail(list, "at least one interface is required");
        }
        for (int i = 0; i < list.getLength(); ++i) {
            const Setting& g = list[i];
            check_keys(g, {"port", "address", "mac", "mtu", "rp_filter"});
            InterfaceConf ifc;
            ifc.line = line_of(g);
            const Setting& port = need(g, "port");
            ifc.port = uint16_t(as_int(port, 0, dp::kMaxPorts - 1));
            for (size_t j = 0; j < cfg_.interfaces.size(); ++j) {
                if (cfg_.interfaces[j].port == ifc.port) {
                    fail(port,
                         "port " + std::to_string(ifc.port) + " is already used by " +
                             ref("interfaces[" + std::to_string(j) + "]", cfg_.interfaces[j].line));
                }
            }

            const Setting& addr = need(g, "address");
            const std::string text = as_string(addr);
            const std::optional<Prefix> p = parse_prefix(text);
            if (!p) {
                fail(addr, quote(text) +
                               " is not an IPv4 address with prefix length "
                               "(expected A.B.C.D/LEN, e.g. \"10.10.0.1/24\")");
            }
            if (p->len < 1 || p->len > 32) {
                fail(addr, quote(text) + ": prefix length " + std::to_string(p->len) +
                               " is out of range (1..32)");
            }
            if (const char* why = not_unicast_reason(p->addr)) {
                fail(addr, format_ipv4(p->addr) + " " + why);
            }
            const uint32_t host = p->addr & ~mask_of(p->len);
            if (p->len < 31 && host == 0) {
                fail(addr, quote(text) +
                               " is the network address of its subnet; give the "
                               "interface a host address (e.g. \"" +
                               format_ipv4(p->addr + 1) + "/" + std::to_string(p->len) + "\")");
            }
            if (p->len < 31 && host == ~mask_of(p->len)) {
                fail(addr, quote(text) + " is the broadcast address of its subnet");
            }
            for (size_t j = 0; j < cfg_.interfaces.size(); ++j) {
                if (cfg_.interfaces[j].addr == p->addr) {
                    fail(addr,
                         format_ipv4(p->addr) + " is already the address of " +
                             ref("interfaces[" + std::to_string(j) + "]", cfg_.interfaces[j].line));
                }
            }
            ifc.addr = p->addr;
            ifc.prefix_len = p->len;

            if (const Setting* mac = find(g, "mac")) {
                ifc.mac = as_unicast_mac(*mac);
            }
            if (const Setting* mtu = find(g, "mtu")) {
                ifc.mtu = uint16_t(as_int(*mtu, kMinMtu, kMaxMtu));
            }
            if (const Setting* rp = find(g, "rp_filter")) {
                const std::string v = as_string(*rp);
                const auto it = std::find(dp::kRpFilterNames.begin(), dp::kRpFilterNames.end(), v);
                if (it == dp::kRpFilterNames.end()) {
                    fail(*rp, "unknown rp_filter " + quote(v) + " (strict, loose or off)");
                }
                ifc.rp_filter = dp::RpFilter(it - dp::kRpFilterNames.begin());
            }
            cfg_.interfaces.push_back(ifc);
        }
    }

    // The interface whose subnet holds `a`, if any.
    const InterfaceConf* on_link(uint32_t a) const {
        for (const InterfaceConf& ifc : cfg_.interfaces) {
            if (in_subnet(a, ifc.addr, ifc.prefix_len)) {
                return &ifc;
            }
        }
        return nullptr;
    }

    std::string interface_ref(const InterfaceConf& ifc) const {
        const size_t j = size_t(&ifc - cfg_.interfaces.data());
        return ref("interfaces[" + std::to_string(j) + "]", ifc.line);
    }

    // A host address on one of our subnets must not be ours, nor the subnet's network or
    // broadcast address. `ifc` is the interface whose subnet holds it.
    void check_neighbour_address(const Setting& s, uint32_t a, const InterfaceConf& ifc) const {
        if (a == ifc.addr) {
            fail(s, format_ipv4(a) + " is the director's own address, on " + interface_ref(ifc));
        }
        if (ifc.prefix_len < 31) {
            const uint32_t host = a & ~mask_of(ifc.prefix_len);
            if (host == 0) {
                fail(s, format_ipv4(a) + " is the network address of the subnet of " +
                            interface_ref(ifc));
            }
            if (host == ~mask_of(ifc.prefix_len)) {
                fail(s, format_ipv4(a) + " is the broadcast address of the subnet of " +
                            interface_ref(ifc));
            }
        }
    }

    // Own addresses on any interface (a /32 interface holds no other host).
    void check_not_own(const Setting& s, uint32_t a) const {
        for (const InterfaceConf& ifc : cfg_.interfaces) {
            if (ifc.addr == a) {
                fail(s,
                     format_ipv4(a) + " is the director's own address, on " + interface_ref(ifc));
            }
        }
    }

    // "TCP 198.51.100.10:80"
    static std::string service_text(const ServiceConf& svc) {
        return std::string(svc.proto == 17 ? "UDP " : "TCP ") + format_ipv4(svc.vip) + ":" +
               std::to_string(svc.port);
    }

    // A VIP is answered (ARP, ICMP) by the director: it must not be the address of a host the
    // director talks to, or those hosts' packets would be taken for ours. The reals of the
    // services read so far (those read later check themselves against this VIP), the static
    // neighbours and the gateways.
    void check_vip_not_taken(const Setting& s, uint32_t vip) const {
        for (const ServiceConf& o : cfg_.services) {
            for (const RealConf& r : o.reals) {
                if (r.addr == vip) {
                    fail(s, format_ipv4(vip) + " is a real of " + service_text(o) +
                                "; a VIP must not be a real's address");
                }
            }
        }
        for (size_t j = 0; j < cfg_.neighbours.size(); ++j) {
            if (cfg_.neighbours[j].addr == vip) {
                fail(s, format_ipv4(vip) + " is the static neighbour " +
                            ref("neighbours[" + std::to_string(j) + "]", cfg_.neighbours[j].line) +
                            "; a VIP must not be a neighbour's address");
            }
        }
        for (size_t j = 0; j < cfg_.routes.size(); ++j) {
            if (cfg_.routes[j].via == vip) {
                fail(s, format_ipv4(vip) + " is the gateway of " +
                            ref("routes[" + std::to_string(j) + "]", cfg_.routes[j].line) +
                            "; a VIP must not be a gateway's address");
            }
        }
    }

    // A real must not be a VIP: of its own service, or of any service read so far (later ones
    // check their VIP against this real).
    void check_real_not_vip(const Setting& s, uint32_t a, const ServiceConf& svc) const {
        const ServiceConf* hit = svc.vip == a ? &svc : nullptr;
        for (size_t j = 0; hit == nullptr && j < cfg_.services.size(); ++j) {
            hit = cfg_.services[j].vip == a ? &cfg_.services[j] : nullptr;
        }
        if (hit != nullptr) {
            fail(s, format_ipv4(a) + " is the VIP of " + service_text(*hit) +
                        "; a real must not be a VIP");
        }
    }

    void read_routes(const Setting& list) {
        as_list(list);
        if (list.getLength() > int(dp::kMaxRoutes)) {
            fail(list, std::to_string(list.getLength()) + " routes; at most " +
                           std::to_string(dp::kMaxRoutes) + " are supported");
        }
        for (int i = 0; i < list.getLength(); ++i) {
            const Setting& g = list[i];
            check_keys(g, {"prefix", "via"});
            RouteConf r;
            r.line = line_of(g);
            const Setting& prefix = need(g, "prefix");
            const std::string text = as_string(prefix);
            const std::optional<Prefix> p = parse_prefix(text);
            if (!p) {
                fail(prefix, quote(text) +
                                 " is not an IPv4 prefix (expected A.B.C.D/LEN, e.g. "
                                 "\"0.0.0.0/0\")");
            }
            if (p->len > 32) {
                fail(prefix, quote(text) + ": prefix length " + std::to_string(p->len) +
                                 " is out of range (0..32)");
            }
            if ((p->addr & ~mask_of(p->len)) != 0) {
                fail(prefix, quote(text) + " has host bits set (did you mean \"" +
                                 format_ipv4(p->addr & mask_of(p->len)) + "/" +
                                 std::to_string(p->len) + "\"?)");
            }
            r.prefix = p->addr;
            r.prefix_len = p->len;
            for (size_t j = 0; j < cfg_.routes.size(); ++j) {
                if (cfg_.routes[j].prefix == r.prefix &&
                    cfg_.routes[j].prefix_len == r.prefix_len) {
                    fail(prefix, quote(text) + " is already routed by " +
                                     ref("routes[" + std::to_string(j) + "]", cfg_.routes[j].line));
                }
            }

            const Setting& via = need(g, "via");
            r.via = as_host(via);
            const InterfaceConf* ifc = on_link(r.via);
            if (ifc == nullptr) {
                fail(via, format_ipv4(r.via) +
                              " is not on the subnet of any interface (the next hop must be "
                              "directly reachable)");
            }
            check_neighbour_address(via, r.via, *ifc);
            cfg_.routes.push_back(r);
        }
    }

    void read_neighbours(const Setting& list) {
        as_list(list);
        for (int i = 0; i < list.getLength(); ++i) {
            const Setting& g = list[i];
            check_keys(g, {"address", "mac"});
            NeighbourConf nb;
            nb.line = line_of(g);
            const Setting& addr = need(g, "address");
            nb.addr = as_host(addr);
            const InterfaceConf* ifc = on_link(nb.addr);
            if (ifc == nullptr) {
                fail(addr, format_ipv4(nb.addr) + " is not on the subnet of any interface");
            }
            check_neighbour_address(addr, nb.addr, *ifc);
            for (size_t j = 0; j < cfg_.neighbours.size(); ++j) {
                if (cfg_.neighbours[j].addr == nb.addr) {
                    fail(addr,
                         format_ipv4(nb.addr) + " is already listed at " +
                             ref("neighbours[" + std::to_string(j) + "]", cfg_.neighbours[j].line));
                }
            }
            nb.mac = as_unicast_mac(need(g, "mac"));
            cfg_.neighbours.push_back(nb);
        }
    }

    void read_connections(const Setting& g) {
        as_group(g);
        check_keys(g, {"capacity", "tcp_timeout", "tcp_fin_timeout", "udp_timeout", "sloppy_tcp",
                       "reset_unknown"});
        ConnectionsConf& c = cfg_.connections;
        if (const Setting* s = find(g, "capacity")) {
            c.capacity = uint32_t(as_int(*s, 1, kMaxCapacity));
        }
        if (const Setting* s = find(g, "tcp_timeout")) {
            c.tcp_timeout = uint32_t(as_int(*s, 1, kMaxSeconds));
        }
        if (const Setting* s = find(g, "tcp_fin_timeout")) {
            c.tcp_fin_timeout = uint32_t(as_int(*s, 1, kMaxSeconds));
        }
        if (const Setting* s = find(g, "udp_timeout")) {
            c.udp_timeout = uint32_t(as_int(*s, 1, kMaxSeconds));
        }
        if (const Setting* s = find(g, "sloppy_tcp")) {
            c.sloppy_tcp = as_bool(*s);
        }
        if (const Setting* s = find(g, "reset_unknown")) {
            c.reset_unknown = as_bool(*s);
        }
    }

    void read_services(const Setting& list) {
        as_list(list);
        if (list.getLength() > int(dp::kMaxServices)) {
            fail(list, std::to_string(list.getLength()) + " services; at most " +
                           std::to_string(dp::kMaxServices) + " are supported");
        }
        size_t total_reals = 0;
        for (int i = 0; i < list.getLength(); ++i) {
            const Setting& g = list[i];
            check_keys(g, {"vip", "port", "protocol", "scheduler", "sched_flags", "mh_table_size",
                           "persistence", "persistence_mask", "tunnel_source", "reals"});
            ServiceConf svc;
            svc.line = line_of(g);

            const Setting& vip = need(g, "vip");
            svc.vip = as_ipv4(vip);
            if (svc.vip == 0) {
                fail(vip, "0.0.0.0 cannot be a VIP");
            }
            if (const char* why = not_unicast_reason(svc.vip)) {
                fail(vip, format_ipv4(svc.vip) + " " + why);
            }
            for (const InterfaceConf& ifc : cfg_.interfaces) {
                if (ifc.addr == svc.vip) {
                    fail(vip, format_ipv4(svc.vip) + " is the address of " + interface_ref(ifc) +
                                  "; a VIP must be an address of its own");
                }
            }
            check_vip_not_taken(vip, svc.vip);

            const Setting& port = need(g, "port");
            if (port.getType() == Setting::TypeInt && int(port) == 0) {
                fail(port, "port 0 (all ports) is not supported in this version (1..65535)");
            }
            svc.port = uint16_t(as_int(port, 1, 65535));

            const Setting& proto = need(g, "protocol");
            const std::string p = as_string(proto);
            if (p == "tcp") {
                svc.proto = 6;
            } else if (p == "udp") {
                svc.proto = 17;
            } else {
                fail(proto, "protocol " + quote(p) + " is not supported (supported: tcp, udp)");
            }

            if (const Setting* s = find(g, "scheduler")) {
                const std::string name = as_string(*s);
                const auto it = std::find(dp::kSchedNames.begin(), dp::kSchedNames.end(), name);
                if (it != dp::kSchedNames.end()) {
                    svc.scheduler = dp::SchedKind(it - dp::kSchedNames.begin());
                } else if (std::find(kIpvsSchedulers.begin(), kIpvsSchedulers.end(), name) !=
                           kIpvsSchedulers.end()) {
                    fail(*s, "scheduler " + quote(name) + " is not supported (supported: " +
                                 sched_list() + ")");
                } else {
                    fail(*s, "unknown scheduler " + quote(name) + " (supported: " +
                                 sched_list() + ")");
                }
            }
            if (const Setting* s = find(g, "sched_flags")) {
                as_values(*s);
                const std::string sched(dp::kSchedNames[size_t(svc.scheduler)]);
                for (int k = 0; k < s->getLength(); ++k) {
                    const std::string flag = as_string((*s)[k]);
                    const auto dash = flag.find('-');
                    const std::string owner = flag.substr(0, dash);
                    const std::string what = dash == std::string::npos ? "" : flag.substr(dash + 1);
                    if ((owner != "sh" && owner != "mh") || (what != "fallback" && what != "port")) {
                        fail((*s)[k], "unknown scheduler flag " + quote(flag) +
                                          " (sh-fallback, sh-port, mh-fallback, mh-port)");
                    }
                    if (owner != sched) {
                        fail((*s)[k], "flag " + quote(flag) + " is for scheduler \"" + owner +
                                          "\", not \"" + sched + "\"");
                    }
                    svc.sched_flags |= what == "port" ? dp::kSchedPort : dp::kSchedFallback;
                }
            }
            if (const Setting* s = find(g, "mh_table_size")) {
                const int64_t m = as_int(*s, 2, kMaxMhSize);
                if (!is_prime(uint32_t(m))) {
                    fail(*s, std::to_string(m) + " is not a prime (the Maglev table needs one, "
                                                 "e.g. 251, 4093, 65537, 1048573)");
                }
                if (svc.scheduler != dp::SchedKind::Mh) {
                    fail(*s, "mh_table_size is for scheduler \"mh\"");
                }
                svc.mh_table_size = uint32_t(m);
            }
            if (const Setting* s = find(g, "persistence")) {
                svc.persistence = uint32_t(as_int(*s, 0, kMaxSeconds));
            }
            if (const Setting* s = find(g, "persistence_mask")) {
                svc.persistence_mask = as_ipv4(*s);
                const uint32_t inv = ~svc.persistence_mask;
                if ((inv & (inv + 1)) != 0 || svc.persistence_mask == 0) {
                    fail(*s, format_ipv4(svc.persistence_mask) +
                                 " is not a netmask (contiguous ones, at least one, e.g. "
                                 "255.255.255.0)");
                }
                if (svc.persistence == 0) {
                    fail(*s, "persistence_mask needs persistence (seconds) > 0");
                }
            }
            if (const Setting* s = find(g, "tunnel_source")) {
                svc.tunnel_source = as_ipv4(*s);
                const bool own = std::any_of(
                    cfg_.interfaces.begin(), cfg_.interfaces.end(),
                    [&](const InterfaceConf& ifc) { return ifc.addr == svc.tunnel_source; });
                if (!own) {
                    fail(*s, format_ipv4(svc.tunnel_source) +
                                 " is not an address of the director's interfaces");
                }
            }

            for (size_t j = 0; j < cfg_.services.size(); ++j) {
                const ServiceConf& o = cfg_.services[j];
                if (o.vip == svc.vip && o.port == svc.port && o.proto == svc.proto) {
                    fail(g, "duplicate service " + p + " " + format_ipv4(svc.vip) + ":" +
                                std::to_string(svc.port) + ", already defined at " +
                                ref("services[" + std::to_string(j) + "]", o.line));
                }
            }

            if (const Setting* reals = find(g, "reals")) {
                read_reals(*reals, svc);
            }
            total_reals += svc.reals.size();
            if (total_reals > dp::kMaxReals) {
                fail(g, "more than " + std::to_string(dp::kMaxReals) +
                            " reals in all services; that is the most supported");
            }
            cfg_.services.push_back(std::move(svc));
        }
    }

    void read_reals(const Setting& list, ServiceConf& svc) {
        as_list(list);
        for (int i = 0; i < list.getLength(); ++i) {
            const Setting& g = list[i];
            check_keys(g, {"address", "port", "forward", "weight", "u_threshold", "l_threshold"});
            RealConf real;
            real.line = line_of(g);

            const Setting& addr = need(g, "address");
            real.addr = as_host(addr);
            check_not_own(addr, real.addr);
            check_real_not_vip(addr, real.addr, svc);
            if (const InterfaceConf* ifc = on_link(real.addr)) {
                check_neighbour_address(addr, real.addr, *ifc);
            } else {
                const bool routed =
                    std::any_of(cfg_.routes.begin(), cfg_.routes.end(), [&](const RouteConf& r) {
                        return in_subnet(real.addr, r.prefix, r.prefix_len);
                    });
                if (!routed) {
                    fail(addr, "no interface or route reaches " + format_ipv4(real.addr));
                }
            }

            if (const Setting* s = find(g, "forward")) {
                const std::string f = as_string(*s);
                if (f == "nat") {
                    real.forward = dp::Forward::Nat;
                } else if (f == "tun") {
                    real.forward = dp::Forward::Tunnel;
                } else if (f == "dr") {
                    real.forward = dp::Forward::Route;
                } else {
                    fail(*s, "unknown forward method " + quote(f) + " (nat, tun or dr)");
                }
            }
            real.port = svc.port;
            if (const Setting* s = find(g, "port")) {
                real.port = uint16_t(as_int(*s, 1, 65535));
                if (real.forward != dp::Forward::Nat && real.port != svc.port) {
                    fail(*s, "port " + std::to_string(real.port) + " differs from the service's " +
                                 std::to_string(svc.port) + ", but only forward \"nat\" rewrites "
                                 "ports (tun and dr deliver the packet as the client sent it)");
                }
            }
            if (real.forward == dp::Forward::Route && on_link(real.addr) == nullptr) {
                fail(addr, format_ipv4(real.addr) +
                               " is not on a directly connected subnet, which forward \"dr\" "
                               "needs (the frame goes to the real's own MAC address)");
            }
            if (const Setting* s = find(g, "weight")) {
                real.weight = uint32_t(as_int(*s, 0, 65535));
            }
            if (const Setting* s = find(g, "u_threshold")) {
                real.u_threshold = uint32_t(as_int(*s, 0, 2147483647));
            }
            if (const Setting* s = find(g, "l_threshold")) {
                real.l_threshold = uint32_t(as_int(*s, 0, 2147483647));
                if (real.u_threshold != 0 && real.l_threshold > real.u_threshold) {
                    fail(*s, "l_threshold " + std::to_string(real.l_threshold) +
                                 " is above u_threshold " + std::to_string(real.u_threshold));
                }
            }
            for (size_t j = 0; j < svc.reals.size(); ++j) {
                const RealConf& o = svc.reals[j];
                if (o.addr == real.addr && o.port == real.port) {
                    fail(g, "duplicate real " + format_ipv4(real.addr) + ":" +
                                std::to_string(real.port) + ", already listed at " +
                                ref(path_of(list) + "[" + std::to_string(j) + "]", o.line));
                }
            }
            svc.reals.push_back(real);
        }
    }

    void read_control(const Setting& g) {
        as_group(g);
        check_keys(g, {"socket", "metrics"});
        if (const Setting* s = find(g, "metrics")) {
            const std::string spec = as_string(*s);
            const size_t colon = spec.rfind(':');
            uint64_t port = 0;
            if (colon == std::string::npos ||
                !parse_decimal(std::string_view(spec).substr(colon + 1), 65535, port) ||
                port == 0) {
                fail(*s, quote(spec) + " is not ADDR:PORT (e.g. \"127.0.0.1:9100\")");
            }
            try {
                parse_ipv4(spec.substr(0, colon));
            } catch (const std::invalid_argument&) {
                fail(*s, quote(spec.substr(0, colon)) + " is not an IPv4 address");
            }
            cfg_.metrics = spec;
        }
        if (const Setting* s = find(g, "socket")) {
            std::string path = as_string(*s);
            if (path.empty() || path[0] != '/') {
                fail(*s, quote(path) + " is not an absolute path");
            }
            if (path.size() >= kSunPathMax) {
                fail(*s, "path is " + std::to_string(path.size()) +
                             " bytes long; a unix socket path must be shorter than " +
                             std::to_string(kSunPathMax));
            }
            cfg_.control_socket = std::move(path);
        }
    }

    void read_log(const Setting& g) {
        as_group(g);
        check_keys(g, {"level"});
        if (const Setting* s = find(g, "level")) {
            std::string level = as_string(*s);
            if (std::find(kLogLevels.begin(), kLogLevels.end(), level) == kLogLevels.end()) {
                fail(*s, "unknown log level " + quote(level) +
                             " (allowed: trace, debug, info, warn, error, critical, off)");
            }
            cfg_.log_level = std::move(level);
        }
    }

    std::string file_;
    const ExpandedConfig& src_;
    std::map<int, std::vector<Overflow>> overflows_;
    std::optional<LcoreList> lcores_;
    Config cfg_;
};

Config parse_text(const std::string& text, const std::string& name,
                  const std::string& include_dir) {
    // The @include files are read here, not by libconfig (see config_source.hpp); an include
    // directory that cannot hold files makes sure libconfig never opens one itself.
    const ExpandedConfig src = expand_includes(text, name, include_dir);
    libconfig::Config lc;
    lc.setIncludeDir("/dev/null");
    try {
        lc.readString(src.text);
    } catch (const libconfig::ParseException& e) {
        const auto [file, line] = src.origin(e.getLine());
        throw ConfigError(file + ":" + std::to_string(line) + ": " + e.getError());
    }
    try {
        return Reader(name, src).read(lc.getRoot());
    } catch (const libconfig::ConfigException& e) {
        // Every access is type-checked first; this is a bug, but say where we were.
        throw ConfigError(name + ": " + e.what());
    }
}

}  // namespace

uint32_t parse_ipv4(const std::string& s) {
    uint32_t addr = 0;
    size_t pos = 0;
    for (int part = 0; part < 4; ++part) {
        size_t end = s.find('.', pos);
        if (part == 3) {
            if (end != std::string::npos) {
                throw std::invalid_argument("not an IPv4 address: " + quote(s));
            }
            end = s.size();
        } else if (end == std::string::npos) {
            throw std::invalid_argument("not an IPv4 address: " + quote(s));
        }
        uint64_t v = 0;
        if (end - pos > 3 || !parse_decimal(std::string_view(s).substr(pos, end - pos), 255, v)) {
            throw std::invalid_argument("not an IPv4 address: " + quote(s));
        }
        addr = addr << 8 | uint32_t(v);
        pos = end + 1;
    }
    return addr;
}

std::string format_ipv4(uint32_t addr) {
    return std::to_string(addr >> 24) + "." + std::to_string((addr >> 16) & 0xff) + "." +
           std::to_string((addr >> 8) & 0xff) + "." + std::to_string(addr & 0xff);
}

std::string format_mac(const uint8_t* m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    return buf;
}

Config parse_config(const std::string& text, const std::string& name) {
    return parse_text(text, name, {});
}

Config load_config(const std::string& path) {
    const std::string text = read_config_file(path);
    // @include paths are taken relative to the directory of the file.
    const size_t slash = path.rfind('/');
    return parse_text(text, path, slash == std::string::npos ? "" : path.substr(0, slash + 1));
}

}  // namespace lb::ctl
