// The simulated network: every message between members goes through here, with the faults of the
// current seed: loss, delay (hence reordering), duplication, partitions (symmetric, asymmetric,
// partial) and clogged links. Time is the simulator's clock in milliseconds.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <queue>
#include <set>
#include <utility>
#include <vector>

#include "base/random.h"
#include "consensus/types.h"

namespace ballot::sim {

using consensus::Message;
using consensus::NodeId;

struct NetworkOptions {
  double loss = 0.0;         // Probability that a message is lost.
  double duplicate = 0.0;    // Probability that a message is delivered twice.
  int64_t delay_min_ms = 1;  // Delay of an ordinary message, uniform in [min, max].
  int64_t delay_max_ms = 3;
  double spike = 0.0;          // Probability of a long delay (reorders past many later messages).
  int64_t spike_max_ms = 100;  // Upper bound of a long delay.
};

struct NetworkStats {
  uint64_t sent = 0;
  uint64_t bytes = 0;
  uint64_t delivered = 0;
  uint64_t dropped_loss = 0;
  uint64_t dropped_partition = 0;
  uint64_t duplicated = 0;
  uint64_t delayed = 0;
};

class Network {
 public:
  Network(uint64_t seed, NetworkOptions options) : rng_(seed), options_(options) {}

  void set_options(const NetworkOptions& options) { options_ = options; }
  const NetworkOptions& options() const { return options_; }

  void Send(Message message, int64_t now_ms);
  // Pops every message due at or before now whose link is still open.
  std::vector<Message> Due(int64_t now_ms);

  // Directed link control. A cut link drops messages, including those already in flight.
  void Cut(NodeId from, NodeId to) { cut_.insert({from, to}); }
  void Mend(NodeId from, NodeId to) { cut_.erase({from, to}); }
  bool IsCut(NodeId from, NodeId to) const { return cut_.count({from, to}) > 0; }
  // A clogged link delays every message by `extra_ms` more until `until_ms`.
  void Clog(NodeId from, NodeId to, int64_t extra_ms, int64_t until_ms) {
    clogs_[{from, to}] = {extra_ms, until_ms};
  }
  void HealAll() {
    cut_.clear();
    clogs_.clear();
  }
  // Scenario tests may hold back messages: while the filter returns true for a message, it is
  // dropped at send time.
  void set_drop_filter(std::function<bool(const Message&)> filter) {
    drop_filter_ = std::move(filter);
  }

  const NetworkStats& stats() const { return stats_; }
  size_t in_flight() const { return queue_.size(); }

 private:
  struct InFlight {
    int64_t due_ms;
    uint64_t seq;
    Message message;
    bool operator>(const InFlight& o) const {
      return due_ms != o.due_ms ? due_ms > o.due_ms : seq > o.seq;
    }
  };
  struct ClogState {
    int64_t extra_ms;
    int64_t until_ms;
  };

  int64_t DelayFor(NodeId from, NodeId to, int64_t now_ms);

  Random rng_;
  NetworkOptions options_;
  NetworkStats stats_;
  uint64_t next_seq_ = 0;
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> queue_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::map<std::pair<NodeId, NodeId>, ClogState> clogs_;
  std::function<bool(const Message&)> drop_filter_;
};

}  // namespace ballot::sim
