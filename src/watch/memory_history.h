// An in-memory key space that records every event: the EventSource of the watch tests, and of any
// test that needs a watch hub without the RocksDB key space.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "watch/event_source.h"

namespace ballot::watch {

// Thread-safe. Revisions start at 1 (an empty key space), as etcd's.
class MemoryHistory : public EventSource {
 public:
  struct Op {
    bool is_delete = false;
    std::string key;
    std::string value;
    mvcc::LeaseId lease = 0;
  };

  // Applies the ops as one revision (a transaction) and returns its events (each with prev_kv);
  // the revision does not advance if nothing changed (a delete of an absent key), as in etcd.
  std::vector<Event> Apply(const std::vector<Op>& ops);
  std::vector<Event> Put(const std::string& key, const std::string& value);
  std::vector<Event> Delete(const std::string& key);
  void Compact(Revision revision);

  // Makes every ReadEvents and ReadPrevValues fail with `error` (an OK status: succeed again).
  void SetReadError(Status error);
  // Whether Apply leaves the value of a put's prev_kv unread, as the mvcc store does (the events
  // kept for ReadEvents have it either way).
  void SetPrevValuesUnread(bool unread);

  // Every event so far, in order.
  std::vector<Event> AllEvents() const;
  int read_calls() const;

  Result<std::vector<Event>> ReadEvents(Revision from, Revision to, std::string_view key,
                                        std::string_view range_end, size_t limit_events) override;
  Status ReadPrevValues(std::vector<Event>* events) override;
  Revision CurrentRevision() override;
  Revision CompactRevision() override;

 private:
  mutable std::mutex mu_;
  std::map<std::string, mvcc::KeyValue> live_ ABSL_GUARDED_BY(mu_);
  std::vector<Event> events_ ABSL_GUARDED_BY(mu_);
  Revision current_ ABSL_GUARDED_BY(mu_) = 1;
  Revision compacted_ ABSL_GUARDED_BY(mu_) = 0;
  int read_calls_ ABSL_GUARDED_BY(mu_) = 0;
  Status read_error_ ABSL_GUARDED_BY(mu_);
  bool prev_values_unread_ ABSL_GUARDED_BY(mu_) = false;
  // Every put's value by (key, create revision, version), compaction notwithstanding:
  // ReadPrevValues, like the store, finds the version any event replaced (the store keeps those of
  // events at or above the compact revision, and the hub reads them right after the write). Not
  // by revision: unlike etcd's txns, Apply may change one key twice in a revision.
  std::map<std::tuple<std::string, Revision, int64_t>, std::string> values_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ballot::watch
