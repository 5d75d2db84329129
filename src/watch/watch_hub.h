// The watch hub: etcd v3 watches over the key space's stream of applied revisions.
//
// The member's apply thread tells the hub about every applied revision (Notify). gRPC threads open
// a WatchStream per Watch RPC, create and cancel watchers on it, and drain its bounded outbox of
// WatchResponses (mirroring etcd's WatchResponse field by field, so the rpc layer converts 1:1).
// A watcher that starts in the past, or whose stream could not take a revision's events, is
// "unsynced": SyncUnsynced reads its missing revisions from an EventSource, and the watcher rejoins
// the live stream once it has caught up. Every watcher sees each revision of its range exactly
// once, in order, with no gap, until it is cancelled. See docs/watch-and-lease.md.
//
// Thread-safety: every public method of WatchHub and WatchStream may be called from any thread;
// one mutex inside the hub guards all state. Notify never waits for a consumer and never reads the
// EventSource. SyncUnsynced reads the EventSource without holding the hub's lock (concurrent calls
// to SyncUnsynced are serialised by a second mutex).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/status.h"
#include "mvcc/kv.h"
#include "watch/event_source.h"
#include "watch/interval_index.h"

namespace ballot::watch {

using WatchId = int64_t;
inline constexpr WatchId kInvalidWatchId = -1;  // etcd's clientv3.InvalidWatchID.

// Etcd's cancel reasons (mvcc/watcher.go and mvcc/kvstore.go), for clients that match on them.
inline constexpr char kCompactedReason[] = "mvcc: required revision has been compacted";
inline constexpr char kDuplicateIdReason[] = "mvcc: duplicate watch ID provided on the WatchStream";
inline constexpr char kEmptyRangeReason[] = "mvcc: watcher range is empty";

// Etcd's WatchCreateRequest.
struct WatchRequest {
  std::string key;
  std::string range_end;        // "" = key only; "\0" = key and above; else [key, range_end).
  Revision start_revision = 0;  // 0 = from the next revision; else any uncompacted revision.
  bool progress_notify = false;
  bool filter_noput = false;     // etcd's WatchCreateRequest.FilterType NOPUT.
  bool filter_nodelete = false;  // NODELETE.
  bool prev_kv = false;
  WatchId watch_id = 0;  // 0 = let the stream allocate one (etcd's AutoWatchID).
  bool fragment = false;
};

// Etcd's WatchResponse (with the header reduced to its revision; the rpc layer fills the rest).
struct WatchResponse {
  Revision header_revision = 0;
  WatchId watch_id = 0;
  bool created = false;
  bool canceled = false;
  Revision compact_revision = 0;
  std::string cancel_reason;
  bool fragment = false;  // More fragments of the same response follow.
  std::vector<Event> events;

  bool operator==(const WatchResponse&) const = default;
};

struct WatchOptions {
  // A stream's outbox admits a delivery while it holds fewer than these; one delivery (a
  // revision's events for one watcher, or one catch-up batch) may overshoot by its own size.
  // Created and canceled responses are always admitted (at most two per watcher).
  size_t outbox_responses_max = 1024;
  size_t outbox_bytes_max = 16u << 20;
  // A watcher may have at most this many responses in its stream's outbox (etcd's chanBufLen),
  // so that one busy watcher cannot take a shared stream's whole outbox.
  size_t watcher_responses_max = 128;
  size_t watchers_per_stream_max = 10000;
  // Catch-up: revisions per EventSource read (etcd's watchBatchMaxRevs), the event count after
  // which the source may stop at a revision boundary, and watchers served per SyncUnsynced call.
  int64_t catchup_revisions_max = 1000;
  size_t catchup_events_max = 10000;
  size_t sync_watchers_max = 512;
  // A fragmenting watcher's response is split into pieces of at most this many bytes (each piece
  // holds at least one event). Etcd splits at its max request size, 1.5 MiB by default.
  size_t fragment_bytes_max = 1536u * 1024;
  // An idle synced watcher that asked for progress_notify gets an empty response with the current
  // revision once per interval (etcd's progressReportInterval, 10 minutes).
  int64_t progress_interval_ms = 10 * 60 * 1000;
};

// The size a response's events count for (key, value, prev_kv, a fixed overhead per event).
size_t EventBytes(const Event& event);

class WatchHub;

// One etcd Watch RPC: a set of watchers with one outbox. Owned by the rpc layer; it must be
// destroyed before the hub. Destroying it cancels its watchers silently.
class WatchStream {
 public:
  ~WatchStream();
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;

  // Creates a watcher and queues its `created` response (etcd sends it even on failure, with
  // watch_id -1, canceled and a reason). Returns the watcher's id, or the reason it was refused
  // (InvalidArgument empty range, AlreadyExists duplicate id, ResourceExhausted too many watchers).
  Result<WatchId> Watch(const WatchRequest& request);

  // Cancels a watcher: drops its undelivered responses and queues {watch_id, canceled}.
  // NotFound (and nothing queued) if the stream has no such watcher.
  Status Cancel(WatchId id);

  // Etcd's WatchProgressRequest: queues {watch_id -1, header revision = current} if every watcher
  // of the stream is synced (etcd 3.4's RequestProgressAll); otherwise does nothing and returns
  // false.
  bool RequestProgress();

  // Takes up to `max` responses from the outbox, oldest first.
  std::vector<WatchResponse> Poll(size_t max);

  size_t watcher_count() const;

 private:
  friend class WatchHub;
  WatchStream(WatchHub* hub, uint64_t id) : hub_(hub), id_(id) {}
  WatchHub* const hub_;
  const uint64_t id_;
};

class WatchHub {
 public:
  // `source` is borrowed and must outlive the hub. The hub starts at source->CurrentRevision().
  WatchHub(EventSource* source, WatchOptions options);
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Opens a stream. `wake` is called when the stream's outbox goes from empty to non-empty; it is
  // called with the hub's lock held, so it must be quick and must not call into the hub (signal a
  // condition variable or a gRPC alarm).
  std::unique_ptr<WatchStream> OpenStream(std::function<void()> wake);

  // Apply thread: the events of `revision`, in applied order (empty is allowed). Revisions must
  // increase; if one is skipped (say, after a snapshot was installed without Restored()), synced
  // watchers are moved to the catch-up path, so nothing is lost.
  void Notify(std::span<const Event> events, Revision revision);

  // The key space was replaced (a snapshot was installed): every watcher catches up from the
  // source, whose CurrentRevision() becomes the hub's revision.
  void Restored();

  // Serves up to sync_watchers_max unsynced watchers that have room in their outbox: cancels the
  // ones that need compacted history, feeds the others from the source, and moves the ones that
  // caught up back to the live stream. Call it after Notify and every ~100 ms (etcd's
  // syncWatchersLoop), from one thread or several. Returns the number of watchers still unsynced.
  size_t SyncUnsynced();

  // Progress notifications, driven by the member's steady clock.
  void Tick(int64_t now_ms);

  Revision current_revision() const;
  size_t unsynced_count() const;
  size_t watcher_count() const;

 private:
  friend class WatchStream;
  struct Watcher;
  struct Stream;
  struct CatchupJob;

  Result<WatchId> Watch(uint64_t stream_id, const WatchRequest& request);
  Status Cancel(uint64_t stream_id, WatchId id);
  bool RequestProgress(uint64_t stream_id);
  std::vector<WatchResponse> Poll(uint64_t stream_id, size_t max);
  void CloseStream(uint64_t stream_id);
  size_t StreamWatcherCount(uint64_t stream_id) const;

  void Enqueue(Stream& stream, WatchResponse response, Watcher* watcher)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasRoom(const Watcher& watcher) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Filters and strips `events` for `watcher` and queues them (fragmented if asked).
  void Deliver(Watcher& watcher, std::vector<Event> events, Revision header_revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeUnsynced(Watcher& watcher, Revision next_revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MakeSynced(Watcher& watcher) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelCompacted(Watcher& watcher, Revision compact_revision)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CancelWithReason(Watcher& watcher, std::string reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveWatcher(Watcher& watcher) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unindex(Watcher& watcher) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::vector<Watcher*> SyncedWatchers() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `events` with the prev_kv values that the watchers of `shares` who asked for prev_kv need read
  // from the source; empty when there were none to read (or the read failed).
  std::vector<Event> WithPrevValues(
      std::span<const Event> events,
      const std::vector<std::pair<Watcher*, std::vector<size_t>>>& shares)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishCatchup(const CatchupJob& job, Result<std::vector<Event>> events,
                     Revision compact_revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  EventSource* const source_;
  const WatchOptions options_;

  std::mutex sync_mu_;  // Serialises SyncUnsynced; taken before mu_.
  mutable std::mutex mu_;
  Revision current_revision_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_stream_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_watcher_uid_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, std::unique_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  // Every live watcher by its hub-wide uid (a catch-up read finds its watcher again by uid).
  std::map<uint64_t, Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
  // Synced watchers: single-key watchers by key, range watchers in one set.
  std::multimap<std::string, Watcher*, std::less<>> synced_keys_ ABSL_GUARDED_BY(mu_);
  IntervalIndex synced_ranges_ ABSL_GUARDED_BY(mu_);
  // Unsynced watchers by uid, so that SyncUnsynced serves them round-robin from a cursor.
  std::set<uint64_t> unsynced_ ABSL_GUARDED_BY(mu_);
  uint64_t sync_cursor_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t last_progress_ms_ ABSL_GUARDED_BY(mu_) = -1;
};

}  // namespace ballot::watch
