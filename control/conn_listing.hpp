#pragma once
// The connection tables as lbctl -L -n -c lists them, a batch at a time: each batch is one dump
// request to one worker (dp::Worker::Dump), so a listing of any size holds one batch in memory
// and the control thread goes on with its other work between batches.
#include <cstdint>
#include <string>
#include <vector>

#include "control/protocol.hpp"
#include "dataplane/worker.hpp"

namespace lb::ctl {

class ConnListing {
public:
    static constexpr uint32_t kBatch = 4096;      // entries per dump request
    static constexpr uint64_t kAnswerMs = 2000;   // how long a worker may take to answer one

    // buf: kBatch entries the workers copy into. It outlives the listing (it is the control
    // thread's), so that a worker that answers after kAnswerMs still writes into live memory.
    ConnListing(std::vector<dp::Worker*> workers, dp::Conn* buf);

    // Connections and templates in all tables when the listing began.
    uint64_t total() const { return total_; }

    // Appends the next batch as ConnEntry lines and returns true; once all are listed, appends
    // the ConnsEnd line and returns false. Throws std::runtime_error naming a worker that does
    // not answer within kAnswerMs.
    bool next_lines(std::string& out);
    // The same as structs: appends the next batch, false (nothing appended) at the end.
    bool next(std::vector<ConnEntry>& out);

private:
    bool next_batch();  // fills buf_[0, n_), false at the end
    void entry(const dp::Conn& c, ConnEntry& e) const;

    std::vector<dp::Worker*> workers_;
    size_t worker_ = 0;   // the worker being listed
    uint32_t start_ = 0;  // where its next dump request starts
    uint64_t total_ = 0, count_ = 0;
    dp::Conn* buf_;
    uint32_t n_ = 0, now_ = 0;  // entries in buf_, the worker's clock when it copied them
    ConnEntry scratch_;
};

}  // namespace lb::ctl
