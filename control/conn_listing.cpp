// The connection listing (see conn_listing.hpp).
#include "control/conn_listing.hpp"

#include <time.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <rte_byteorder.h>

#include "control/clock.hpp"

namespace lb::ctl {

ConnListing::ConnListing(std::vector<dp::Worker*> workers, dp::Conn* buf)
    : workers_(std::move(workers)), buf_(buf) {
    for (const dp::Worker* w : workers_) {
        total_ += w->counters.table_size.get();
    }
}

bool ConnListing::next_batch() {
    n_ = 0;
    while (n_ == 0 && worker_ < workers_.size()) {
        dp::Worker* w = workers_[worker_];
        if (start_ >= w->conns.capacity()) {
            ++worker_;
            start_ = 0;
            continue;
        }
        dp::Worker::Dump& d = w->dump;
        d.start = start_;
        d.max = kBatch;
        d.out = buf_;
        const uint32_t req = d.req.load(std::memory_order_relaxed) + 1;
        d.req.store(req, std::memory_order_release);
        const uint64_t deadline = now_ms() + kAnswerMs;
        while (d.done.load(std::memory_order_acquire) != req) {
            if (now_ms() > deadline) {
                throw std::runtime_error("worker " + std::to_string(w->id()) +
                                         " did not answer the connection listing");
            }
            struct timespec ts{0, 200'000};
            nanosleep(&ts, nullptr);
        }
        n_ = d.n;
        now_ = d.now;
        start_ = d.next;
    }
    return n_ != 0;
}

void ConnListing::entry(const dp::Conn& c, ConnEntry& e) const {
    e.is_template = dp::is_template(c);
    e.proto = uint8_t(c.proto & ~dp::kTemplateProto);
    e.client = rte_be_to_cpu_32(c.client_ip);
    e.vip = rte_be_to_cpu_32(c.vip);
    e.real = rte_be_to_cpu_32(c.real_ip);
    e.cport = rte_be_to_cpu_16(c.client_port);
    e.vport = rte_be_to_cpu_16(c.vport);
    e.rport = rte_be_to_cpu_16(c.real_port);
    e.forward = c.forward;
    e.state = e.is_template ? "NONE"
              : e.proto == 17 ? "UDP"
                              : dp::tcp_state_name(dp::TcpState(c.state));
    const int32_t left = int32_t(c.expire - now_);
    e.expire_s = left > 0 ? uint32_t(left + 999) / 1000 : 0;
}

bool ConnListing::next_lines(std::string& out) {
    if (!next_batch()) {
        encode_to(out, ConnsEnd{count_});
        return false;
    }
    for (uint32_t i = 0; i < n_; ++i) {
        entry(buf_[i], scratch_);
        encode_to(out, scratch_);
    }
    count_ += n_;
    return true;
}

bool ConnListing::next(std::vector<ConnEntry>& out) {
    if (!next_batch()) {
        return false;
    }
    for (uint32_t i = 0; i < n_; ++i) {
        entry(buf_[i], out.emplace_back());
    }
    count_ += n_;
    return true;
}

}  // namespace lb::ctl
