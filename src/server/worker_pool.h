// WorkerPool: a fixed set of threads running queued tasks; the queue is bounded.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/thread_name.h"
#include "server/bounded_queue.h"

namespace ballot::server {

class WorkerPool {
 public:
  // Threads are named `name` and their number (ballot-rpc3).
  WorkerPool(std::string_view name, int threads, size_t queue_max) : queue_(queue_max) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, thread_name = std::string(name) + std::to_string(i)] {
        SetThreadName(thread_name);
        while (auto task = queue_.Pop()) (*task)();
      });
    }
  }
  ~WorkerPool() { Stop(); }

  // False when the queue is full or the pool stopped: the caller fails the call.
  bool Submit(std::function<void()> task) { return queue_.TryPush(std::move(task)); }

  // Runs what is queued, then joins.
  void Stop() {
    queue_.Close();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
    threads_.clear();
  }

 private:
  BoundedQueue<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
};

}  // namespace ballot::server
