// The history a watcher that fell behind (or started in the past) catches up from. The integrator
// implements it over the key space; the tests implement it over an in-memory list of events.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "mvcc/kv.h"

namespace ballot::watch {

using mvcc::Event;
using mvcc::Revision;

// Whether `k` lies in the watched range (etcd's convention): range_end empty = the single key
// `key`; range_end "\0" = every key >= key; otherwise [key, range_end).
bool RangeContains(std::string_view key, std::string_view range_end, std::string_view k);

// Thread-safety: the hub calls ReadEvents and the revision getters from the thread that runs
// WatchHub::SyncUnsynced and CompactRevision also from the threads that create watchers, without
// the hub's lock held for ReadEvents, concurrently with writes to the key space. An implementation
// must therefore be safe to call concurrently with the apply thread.
class EventSource {
 public:
  virtual ~EventSource() = default;

  // The events of revisions [from, to] whose key is in the range (see RangeContains), ordered by
  // revision and, within a revision, in the order they were applied; each carries prev_kv when the
  // key existed before the change (the hub strips it for watchers that did not ask for it).
  //
  // To bound the work of one call, the source may stop early, but only at a revision boundary and
  // only once it has returned at least `limit_events` events: a revision is never cut in half. The
  // hub takes a result with fewer than `limit_events` events as covering all of [from, to].
  //
  // The hub calls it only with CompactRevision() <= from <= to <= the last revision it was
  // notified of. Etcd's rule, which the source must honour: the events of the compacted revision
  // itself remain readable. If the history was compacted past `from` in the meantime, return
  // OutOfRange: the hub then cancels the watcher as compacted. Any other error cancels the
  // watcher with the error in its cancel_reason (the hub does not retry a failed read).
  virtual Result<std::vector<Event>> ReadEvents(Revision from, Revision to, std::string_view key,
                                                std::string_view range_end,
                                                size_t limit_events) = 0;

  // Reads the value of each prev_kv left unread (mvcc::Event::prev_value_unread) and clears the
  // flag; a version that compaction may have removed loses its prev_kv instead (etcd's
  // behaviour). The hub calls it from Notify, with its lock held, only for events that go to a
  // watcher that asked for prev_kv.
  virtual Status ReadPrevValues(std::vector<Event>* events) = 0;

  // The key space's current revision (the hub reads it once, at construction and on Restored()).
  virtual Revision CurrentRevision() = 0;

  // The revision of the last compaction (0 if none). A watcher that needs a revision below it is
  // cancelled with compact_revision set to it.
  virtual Revision CompactRevision() = 0;
};

}  // namespace ballot::watch
