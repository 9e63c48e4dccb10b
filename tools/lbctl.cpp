// lbctl: ipvsadm for lb. Asks a running lb for its table over the control socket and prints it
// the way `ipvsadm -L -n` does. See lbctl -h.
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "control/control_server.hpp"
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

Status fetch_status(const std::string& path, MsgType type = MsgType::GetStatus) {
    Frame req;
    req.type = type;
    const Frame reply = request(path, req, kTimeoutMs);
    try {
        switch (reply.type) {
            case MsgType::Status:
                return decode_status(reply.payload);
            case MsgType::Error:
                throw std::runtime_error("lb: " + decode_string(reply.payload));
            default:
                throw std::runtime_error("unexpected reply type " +
                                         std::to_string(static_cast<unsigned>(reply.type)));
        }
    } catch (const ProtocolError& e) {
        throw std::runtime_error("bad reply from " + path + ": " + e.what());
    }
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
    switch (args.command) {
        case Command::Help:
            std::cout << usage_text();
            return 0;
        case Command::Version:
            std::cout << version_text();
            return 0;
        case Command::List:
            break;
        case Command::Reload:
            try {
                fetch_status(socket_path(args), MsgType::Reload);
            } catch (const std::exception& e) {
                std::cerr << "lbctl: " << e.what() << "\n";
                return kExitFailure;
            }
            return 0;
        default:
            return usage_error(args.command_name + " is not supported yet");
    }

    ListOptions opts;
    try {
        opts = list_options(args);
    } catch (const UsageError& e) {
        return usage_error(e.what());
    }
    const std::string path = socket_path(args);
    std::string out;
    try {
        out = format_list(fetch_status(path), opts);
    } catch (const std::exception& e) {
        std::cerr << "lbctl: " << e.what() << "\n";
        return kExitFailure;
    }
    std::cout << out << std::flush;
    return std::cout ? 0 : kExitFailure;
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
