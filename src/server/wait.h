// Wait: proposers waiting for the apply of their request id (etcd's pkg/wait).
//
// The apply thread triggers an id with the request's outcome; an id nobody waits for (a request
// proposed by another member, or one whose proposer gave up) is ignored.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <google/protobuf/message.h>

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>

#include "base/status.h"

namespace ballot::server {

struct ApplyResult {
  Status status;  // The request's own error (etcd's), or OK.
  std::shared_ptr<google::protobuf::Message> response;
  int64_t revision = 0;  // The store's revision after the request's entry.
};

class Wait {
 public:
  std::future<ApplyResult> Register(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    return waiting_[id].get_future();
  }
  void Trigger(uint64_t id, ApplyResult result) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return;
    it->second.set_value(std::move(result));
    waiting_.erase(it);
  }
  void Cancel(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.erase(id);
  }

 private:
  std::mutex mu_;
  std::map<uint64_t, std::promise<ApplyResult>> waiting_;  // Guarded by mu_.
};

}  // namespace ballot::server
