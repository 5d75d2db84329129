#include "network.h"

namespace ballot::sim {

int64_t Network::DelayFor(NodeId from, NodeId to, int64_t now_ms) {
  int64_t delay = rng_.Range(options_.delay_min_ms, options_.delay_max_ms);
  if (options_.spike > 0 && rng_.Chance(options_.spike)) {
    delay += rng_.Range(0, options_.spike_max_ms);
    ++stats_.delayed;
  }
  auto clog = clogs_.find({from, to});
  if (clog != clogs_.end()) {
    if (clog->second.until_ms > now_ms) {
      delay += clog->second.extra_ms;
      ++stats_.delayed;
    } else {
      clogs_.erase(clog);
    }
  }
  return delay;
}

void Network::Send(Message message, int64_t now_ms) {
  ++stats_.sent;
  stats_.bytes += message.SizeBytes();
  if (drop_filter_ && drop_filter_(message)) {
    ++stats_.dropped_partition;
    return;
  }
  if (IsCut(message.from, message.to)) {
    ++stats_.dropped_partition;
    return;
  }
  if (options_.loss > 0 && rng_.Chance(options_.loss)) {
    ++stats_.dropped_loss;
    return;
  }
  if (options_.duplicate > 0 && rng_.Chance(options_.duplicate)) {
    ++stats_.duplicated;
    queue_.push({now_ms + DelayFor(message.from, message.to, now_ms), next_seq_++, message});
  }
  const int64_t due = now_ms + DelayFor(message.from, message.to, now_ms);
  queue_.push({due, next_seq_++, std::move(message)});
}

std::vector<Message> Network::Due(int64_t now_ms) {
  std::vector<Message> out;
  while (!queue_.empty() && queue_.top().due_ms <= now_ms) {
    InFlight item = queue_.top();
    queue_.pop();
    if (IsCut(item.message.from, item.message.to)) {
      ++stats_.dropped_partition;
      continue;
    }
    ++stats_.delivered;
    out.push_back(std::move(item.message));
  }
  return out;
}

}  // namespace ballot::sim
