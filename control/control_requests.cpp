// The control socket's requests, answered by the control thread (Control::handle), and the
// connection listing they stream.
#include <memory>
#include <type_traits>
#include <variant>

#include "control/conn_listing.hpp"
#include "control/control.hpp"

namespace lb::ctl {

namespace {

Answer reply(const auto& msg) { return Answer{encode(msg), nullptr}; }

}  // namespace

// One buffer for every listing: their batches are taken one at a time on this thread.
dp::Conn* Control::dump_buffer() {
    dump_buf_.resize(ConnListing::kBatch);
    return dump_buf_.data();
}

Connections Control::connections() {
    ConnListing listing(rt_.workers, dump_buffer());
    Connections out;
    out.total = listing.total();
    while (listing.next(out.entries)) {
    }
    return out;
}

// ConnsBegin, then the entries a batch at a time as the client takes them, then ConnsEnd. The
// first batch is fetched before anything is sent, so that a worker that does not answer at all
// is a plain Error reply.
Answer Control::answer_connections() {
    auto listing = std::make_shared<ConnListing>(rt_.workers, dump_buffer());
    std::string first;
    const bool more = listing->next_lines(first);
    Answer a{encode(ConnsBegin{listing->total()}) + first, nullptr};
    if (more) {
        a.more = [listing](std::string& out) { return listing->next_lines(out); };
    }
    return a;
}

Answer Control::handle(const Request& req) {
    return std::visit(
        [this](const auto& m) -> Answer {
            using M = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<M, GetStatus>) {
                return reply(status());
            } else if constexpr (std::is_same_v<M, Reload>) {
                const std::string err = reload();
                return err.empty() ? reply(status()) : reply(Error{err});
            } else if constexpr (std::is_same_v<M, Apply>) {
                const std::string err = apply(m.ops);
                return err.empty() ? reply(Ok{}) : reply(Error{err});
            } else if constexpr (std::is_same_v<M, GetConnections>) {
                return answer_connections();
            } else if constexpr (std::is_same_v<M, GetWorkers>) {
                return reply(workers_status());
            } else {
                static_assert(std::is_same_v<M, WriteConfig>);
                const std::string err = write_config(m.path);
                return err.empty() ? reply(Ok{"wrote " + (m.path.empty() ? cfg_.file : m.path)})
                                   : reply(Error{err});
            }
        },
        req);
}

}  // namespace lb::ctl
