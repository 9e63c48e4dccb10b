// lbctl: ipvsadm for lb. Takes ipvsadm's command line, sends the changes to a running lb over the
// control socket as one Apply request, and prints lb's table, connections and timeouts the way
// ipvsadm does. See lbctl -h.
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "control/control_client.hpp"
#include "control/protocol.hpp"
#include "tools/lbctl_format.hpp"

namespace {

using namespace lb::ctl;

constexpr const char* kDefaultSocket = "/run/lb/lb.sock";
constexpr int kTimeoutMs = 5000;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int usage_error(const std::string& msg) {
    std::cerr << "lbctl: " << msg << "\n"
              << "Try `lbctl -h' or 'lbctl --help' for more information.\n";
    return kExitUsage;
}

std::string socket_path(const Args& args) {
    if (args.has(Opt::Socket)) {
        return args.value(Opt::Socket);
    }
    const char* env = std::getenv("LB_SOCKET");
    return env != nullptr && env[0] != '\0' ? env : kDefaultSocket;
}

// A reply that must be a `Want`: an Error reply throws its message, any other a "bad reply".
template <typename Want>
Want expect(const std::string& path, Reply reply, const Request& req) {
    if (auto* err = std::get_if<Error>(&reply)) {
        throw std::runtime_error(err->message);
    }
    if (auto* want = std::get_if<Want>(&reply)) {
        return std::move(*want);
    }
    throw std::runtime_error("bad reply from " + path + ": a \"" + std::string(name_of(reply)) +
                             "\" line in answer to a \"" + std::string(name_of(req)) +
                             "\" request");
}

// Sends one request and returns its reply, which must be a `Want`.
template <typename Want>
Want call(const std::string& path, const Request& req) {
    return expect<Want>(path, request(path, req, kTimeoutMs), req);
}

Status fetch_status(const std::string& path, const Request& req = GetStatus{}) {
    return call<Status>(path, req);
}

// A request answered with Ok: prints lb's message, if any.
void expect_ok(const std::string& path, const Request& req) {
    const Ok ok = call<Ok>(path, req);
    if (!ok.message.empty()) {
        std::cout << ok.message << "\n";
    }
}

// Writes out to stdout once it holds enough; false if stdout failed.
bool write_out(std::string& out, bool last) {
    if (out.size() < (1u << 16) && !last) {
        return true;
    }
    std::cout.write(out.data(), std::streamsize(out.size()));
    out.clear();
    if (last) {
        std::cout.flush();
    }
    return bool(std::cout);
}

// lbctl -L -c: lb streams the entries (ConnsBegin, ConnEntry..., ConnsEnd), and they are
// printed as they come. An error on the way (a worker that stopped answering) comes after what
// was printed.
int list_connections(const std::string& path, const ListOptions& opts) {
    const Request req = GetConnections{};
    Connection conn(path, kTimeoutMs);
    conn.send(req);
    const auto begin = expect<ConnsBegin>(path, conn.read_reply(), req);
    std::string out = opts.json ? json_conns_head(begin.total) : conn_title(opts);
    uint64_t n = 0;
    Reply r;
    while (!std::holds_alternative<ConnsEnd>(r = conn.read_reply())) {
        const auto* e = std::get_if<ConnEntry>(&r);
        if (e == nullptr) {
            write_out(out, true);
            expect<ConnEntry>(path, std::move(r), req);  // throws: r is no ConnEntry
        }
        if (opts.json) {
            append_json_conn(out, *e, n == 0);
        } else {
            append_conn_line(out, *e);
        }
        ++n;
        if (!write_out(out, false)) {
            return kExitFailure;
        }
    }
    if (std::get<ConnsEnd>(r).count != n) {
        throw std::runtime_error("bad reply from " + path + ": " + std::to_string(n) +
                                 " connection entries, lb counted " +
                                 std::to_string(std::get<ConnsEnd>(r).count));
    }
    if (opts.json) {
        out += json_conns_tail(n == 0);
    }
    return write_out(out, true) ? 0 : kExitFailure;
}

int print(const std::string& out) {
    std::cout << out << std::flush;
    return std::cout ? 0 : kExitFailure;
}

int list(const Args& args, const ListOptions& opts) {
    const std::string path = socket_path(args);
    switch (opts.what) {
        case ListWhat::Daemon:  // lb has no sync daemon: ipvsadm prints nothing when none runs
            return print(opts.json ? "[]\n" : "");
        case ListWhat::Timeout: {
            const Status st = fetch_status(path);
            return print(opts.json ? json_timeout(st) : format_timeout(st));
        }
        case ListWhat::Connections:
            return list_connections(path, opts);
        case ListWhat::Services:
            break;
    }
    const Status st = fetch_status(path);
    return print(opts.json ? json_list(st, opts) : format_list(st, opts));
}

// -R's input, stdin, up to what one request can carry.
std::string read_input() {
    std::string text;
    char buf[65536];
    while (std::cin.read(buf, sizeof buf) || std::cin.gcount() > 0) {
        text.append(buf, size_t(std::cin.gcount()));
        if (text.size() > kMaxRequestLine) {
            throw UsageError("the rules on stdin are more than " +
                             std::to_string(kMaxRequestLine) +
                             " bytes, more than one request to lb may carry");
        }
    }
    if (std::cin.bad()) {
        throw UsageError("cannot read the rules from stdin");
    }
    return text;
}

int run(const std::vector<std::string>& words) {
    Args args;
    try {
        args = parse_args(words);
    } catch (const UsageError& e) {
        return usage_error(e.what());
    }
    // Like ipvsadm, no command at all means list (lbctl also allows --socket there).
    if (args.command == Command::None) {
        bool only_socket = args.operands.empty();
        for (size_t i = 0; i < size_t(Opt::Count); ++i) {
            only_socket = only_socket && (!args.opts[i] || Opt(i) == Opt::Socket);
        }
        if (!only_socket) {
            return usage_error("no command specified");
        }
        args.command = Command::List;
        args.command_name = "-L";
    }
    if (args.command == Command::Help) {
        std::cout << usage_text();
        return 0;
    }
    if (args.command == Command::Version) {
        std::cout << version_text();
        return 0;
    }

    // Everything that can be refused without lb is refused before lb is asked anything.
    ListOptions list_opts;
    std::vector<Op> ops;
    std::vector<RestoreLine> restore_from;  // -R: the input line of each operation
    try {
        check_command(args);
        if (args.command == Command::List) {
            list_opts = list_options(args);
        } else if (args.command == Command::Restore) {
            if (!args.operands.empty()) {
                throw UsageError("unexpected argument " + args.operands.front());
            }
            ops = restore_ops(read_input(), &restore_from);
        } else if (args.command != Command::Save && args.command != Command::Reload &&
                   args.command != Command::Workers && args.command != Command::WriteConfig) {
            ops = command_ops(args);
        } else if (!args.operands.empty()) {
            throw UsageError("unexpected argument " + args.operands.front());
        }
    } catch (const UsageError& e) {
        return usage_error(e.what());
    }

    const std::string path = socket_path(args);
    try {
        switch (args.command) {
            case Command::List:
                return list(args, list_opts);
            case Command::Save:
                return print(format_save(fetch_status(path)));
            case Command::Reload:
                fetch_status(path, Reload{});
                return 0;
            case Command::Workers: {
                const Workers w = call<Workers>(path, GetWorkers{});
                return print(args.has(Opt::Json) ? json_workers(w) : format_workers(w));
            }
            case Command::WriteConfig: {
                // lb runs elsewhere: a relative path means one relative to here.
                const std::string file = args.command_arg.empty()
                                             ? std::string()
                                             : std::filesystem::absolute(args.command_arg).string();
                expect_ok(path, WriteConfig{file});
                return 0;
            }
            default:
                if (!ops.empty()) {  // -R of nothing but comments changes nothing
                    try {
                        expect_ok(path, Apply{std::move(ops)});
                    } catch (const std::runtime_error& e) {
                        if (args.command != Command::Restore) {
                            throw;
                        }
                        throw std::runtime_error(restore_error(e.what(), restore_from));
                    }
                }
                return 0;
        }
    } catch (const std::exception& e) {
        std::cerr << "lbctl: " << e.what() << "\n";
        return kExitFailure;
    }
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc > 1 ? std::vector<std::string>(argv + 1, argv + argc)
                            : std::vector<std::string>{});
    } catch (const std::exception& e) {
        std::cerr << "lbctl: " << e.what() << "\n";
        return kExitFailure;
    }
}
