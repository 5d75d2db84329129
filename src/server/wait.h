// Wait: proposers waiting for the apply of their request id (etcd's pkg/wait), by callback, so
// that a waiting request holds no thread. BasicWait<T> is the same for other answers (a member's
// calls to the leader wait for a ForwardResponse).
//
// Every registered callback runs exactly once: with the request's outcome when the apply thread
// triggers its id, with an error when it is taken back (Take) or its deadline passes (Expire). An
// id nobody waits for (a request proposed by another member, or one already answered) is ignored.
// Callbacks run on the thread that triggers, takes or expires them, outside the lock, and must
// not block.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <google/protobuf/message.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "base/status.h"

namespace ballot::server {

struct ApplyResult {
  Status status;  // The request's own error (etcd's), or OK.
  std::shared_ptr<google::protobuf::Message> response;
  int64_t revision = 0;  // The store's revision after the request's entry.
};

using ApplyCallback = std::function<void(Result<ApplyResult>)>;

template <typename T>
class BasicWait {
 public:
  using Clock = std::chrono::steady_clock;
  using Callback = std::function<void(Result<T>)>;

  void Register(uint64_t id, Clock::time_point deadline, Callback done) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_[id] = Waiter{deadline, std::move(done)};
  }
  void Trigger(uint64_t id, T result) {
    if (auto done = Take(id)) (*done)(std::move(result));
  }
  // Removes `id`'s callback and returns it (to be run by the caller); nullopt when it already ran.
  std::optional<Callback> Take(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return std::nullopt;
    Callback done = std::move(it->second.done);
    waiting_.erase(it);
    return done;
  }
  // Runs, with `timeout`, every callback whose deadline is at or before `now`.
  void Expire(Clock::time_point now, const Status& timeout) {
    std::vector<Callback> expired;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if (it->second.deadline > now) {
          ++it;
          continue;
        }
        expired.push_back(std::move(it->second.done));
        it = waiting_.erase(it);
      }
    }
    for (auto& done : expired) done(timeout);
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_.size();
  }

 private:
  struct Waiter {
    Clock::time_point deadline;
    Callback done;
  };
  mutable std::mutex mu_;
  std::map<uint64_t, Waiter> waiting_;  // Guarded by mu_.
};

// Proposers waiting for the apply of their request.
using Wait = BasicWait<ApplyResult>;

}  // namespace ballot::server
