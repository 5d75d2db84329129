#include "watch/memory_history.h"

#include <algorithm>

namespace ballot::watch {

std::vector<Event> MemoryHistory::Apply(const std::vector<Op>& ops) {
  std::lock_guard lock(mu_);
  const Revision revision = current_ + 1;
  std::vector<Event> out;
  for (const Op& op : ops) {
    auto it = live_.find(op.key);
    Event e;
    if (it != live_.end()) e.prev_kv = it->second;
    if (op.is_delete) {
      if (it == live_.end()) continue;
      e.type = mvcc::EventType::kDelete;
      e.kv.key = op.key;
      e.kv.mod_revision = revision;
      live_.erase(it);
    } else {
      e.type = mvcc::EventType::kPut;
      e.kv.key = op.key;
      e.kv.value = op.value;
      e.kv.lease = op.lease;
      e.kv.mod_revision = revision;
      e.kv.create_revision = e.prev_kv ? e.prev_kv->create_revision : revision;
      e.kv.version = e.prev_kv ? e.prev_kv->version + 1 : 1;
      live_[op.key] = e.kv;
      values_[{op.key, e.kv.create_revision, e.kv.version}] = op.value;
    }
    out.push_back(std::move(e));
  }
  if (!out.empty()) {
    current_ = revision;
    events_.insert(events_.end(), out.begin(), out.end());
  }
  if (prev_values_unread_) {
    for (Event& e : out) {
      if (e.type != mvcc::EventType::kPut || !e.prev_kv) continue;
      e.prev_kv->value.clear();
      e.prev_value_unread = true;
    }
  }
  return out;
}

std::vector<Event> MemoryHistory::Put(const std::string& key, const std::string& value) {
  return Apply({Op{false, key, value, 0}});
}

std::vector<Event> MemoryHistory::Delete(const std::string& key) {
  return Apply({Op{true, key, "", 0}});
}

void MemoryHistory::Compact(Revision revision) {
  std::lock_guard lock(mu_);
  compacted_ = std::max(compacted_, std::min(revision, current_));
  // Etcd keeps the compacted revision itself readable; everything older goes.
  std::erase_if(events_, [&](const Event& e) { return e.kv.mod_revision < compacted_; });
}

void MemoryHistory::SetReadError(Status error) {
  std::lock_guard lock(mu_);
  read_error_ = std::move(error);
}

void MemoryHistory::SetPrevValuesUnread(bool unread) {
  std::lock_guard lock(mu_);
  prev_values_unread_ = unread;
}

Status MemoryHistory::ReadPrevValues(std::vector<Event>* events) {
  std::lock_guard lock(mu_);
  if (!read_error_.ok()) return read_error_;
  for (Event& e : *events) {
    if (!e.prev_value_unread) continue;
    e.prev_value_unread = false;
    mvcc::KeyValue& prev = *e.prev_kv;
    auto value = values_.find({prev.key, prev.create_revision, prev.version});
    if (value == values_.end()) {
      e.prev_kv.reset();
    } else {
      prev.value = value->second;
    }
  }
  return Status::Ok();
}

std::vector<Event> MemoryHistory::AllEvents() const {
  std::lock_guard lock(mu_);
  return events_;
}

int MemoryHistory::read_calls() const {
  std::lock_guard lock(mu_);
  return read_calls_;
}

Result<std::vector<Event>> MemoryHistory::ReadEvents(Revision from, Revision to,
                                                     std::string_view key,
                                                     std::string_view range_end,
                                                     size_t limit_events) {
  std::lock_guard lock(mu_);
  ++read_calls_;
  if (!read_error_.ok()) return read_error_;
  if (from < compacted_) return Status::OutOfRange("mvcc: required revision has been compacted");
  std::vector<Event> out;
  auto it = std::lower_bound(events_.begin(), events_.end(), from,
                             [](const Event& e, Revision r) { return e.kv.mod_revision < r; });
  for (; it != events_.end() && it->kv.mod_revision <= to; ++it) {
    if (out.size() >= limit_events && it->kv.mod_revision != out.back().kv.mod_revision) break;
    if (RangeContains(key, range_end, it->kv.key)) out.push_back(*it);
  }
  return out;
}

Revision MemoryHistory::CurrentRevision() {
  std::lock_guard lock(mu_);
  return current_;
}

Revision MemoryHistory::CompactRevision() {
  std::lock_guard lock(mu_);
  return compacted_;
}

}  // namespace ballot::watch
