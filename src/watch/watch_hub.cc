#include "watch/watch_hub.h"

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <utility>

#include "base/assert.h"

namespace ballot::watch {

namespace {
constexpr size_t kEventOverheadBytes = 48;
constexpr size_t kResponseOverheadBytes = 64;
}  // namespace

bool RangeContains(std::string_view key, std::string_view range_end, std::string_view k) {
  if (range_end.empty()) return k == key;
  if (range_end == std::string_view("\0", 1)) return k >= key;
  return k >= key && k < range_end;
}

size_t EventBytes(const Event& event) {
  size_t bytes = kEventOverheadBytes + event.kv.key.size() + event.kv.value.size();
  if (event.prev_kv) bytes += event.prev_kv->key.size() + event.prev_kv->value.size();
  return bytes;
}

namespace {
size_t ResponseBytes(const WatchResponse& response) {
  size_t bytes = kResponseOverheadBytes + response.cancel_reason.size();
  for (const Event& e : response.events) bytes += EventBytes(e);
  return bytes;
}
}  // namespace

struct WatchHub::Watcher {
  uint64_t uid = 0;
  WatchId id = 0;
  Stream* stream = nullptr;
  WatchRequest request;
  bool synced = false;
  // Unsynced: the next revision to read from the source. Synced: the lowest revision it may be
  // sent (its start); its position is then max(next_revision, current revision + 1), which is
  // not stored, so that Notify costs nothing for the synced watchers a revision does not touch.
  Revision next_revision = 0;
  size_t queued_responses = 0;  // Its responses in the outbox (created/canceled not counted).
  bool active = false;          // Sent something since the last progress tick.
  std::multimap<std::string, Watcher*, std::less<>>::iterator key_it;

  bool single_key() const { return request.range_end.empty(); }
};

struct WatchHub::Stream {
  struct Queued {
    WatchResponse response;
    uint64_t watcher_uid = 0;  // 0: a control response, not counted against a watcher.
    size_t bytes = 0;
  };
  uint64_t id = 0;
  std::function<void()> wake;
  std::deque<Queued> outbox;
  size_t outbox_bytes = 0;
  std::map<WatchId, std::unique_ptr<Watcher>> watchers;
  WatchId next_auto_id = 0;  // Etcd allocates ids from 0 upwards, per stream.
};

struct WatchHub::CatchupJob {
  uint64_t uid = 0;
  Revision from = 0;
  Revision to = 0;
  std::string key;
  std::string range_end;
  Result<std::vector<Event>> result = Status::Internal("not read");
};

// ---- WatchStream -------------------------------------------------------------------------------

WatchStream::~WatchStream() { hub_->CloseStream(id_); }
Result<WatchId> WatchStream::Watch(const WatchRequest& request) {
  return hub_->Watch(id_, request);
}
Status WatchStream::Cancel(WatchId id) { return hub_->Cancel(id_, id); }
bool WatchStream::RequestProgress() { return hub_->RequestProgress(id_); }
std::vector<WatchResponse> WatchStream::Poll(size_t max) { return hub_->Poll(id_, max); }
size_t WatchStream::watcher_count() const { return hub_->StreamWatcherCount(id_); }

// ---- WatchHub: streams and watchers ------------------------------------------------------------

WatchHub::WatchHub(EventSource* source, WatchOptions options) : source_(source), options_(options) {
  BALLOT_ASSERT(source_ != nullptr);
  BALLOT_ASSERT(options_.catchup_revisions_max > 0 && options_.catchup_events_max > 0);
  BALLOT_ASSERT(options_.sync_watchers_max > 0 && options_.fragment_bytes_max > 0);
  current_revision_ = source_->CurrentRevision();
}

WatchHub::~WatchHub() {
  std::lock_guard lock(mu_);
  BALLOT_ASSERT(streams_.empty(), "every WatchStream must be destroyed before its WatchHub");
}

std::unique_ptr<WatchStream> WatchHub::OpenStream(std::function<void()> wake) {
  std::lock_guard lock(mu_);
  auto stream = std::make_unique<Stream>();
  stream->id = next_stream_id_++;
  stream->wake = std::move(wake);
  const uint64_t id = stream->id;
  streams_.emplace(id, std::move(stream));
  return std::unique_ptr<WatchStream>(new WatchStream(this, id));
}

void WatchHub::CloseStream(uint64_t stream_id) {
  std::lock_guard lock(mu_);
  auto it = streams_.find(stream_id);
  BALLOT_ASSERT(it != streams_.end());
  for (auto& [id, watcher] : it->second->watchers) {
    Unindex(*watcher);
    watchers_.erase(watcher->uid);
  }
  streams_.erase(it);
}

size_t WatchHub::StreamWatcherCount(uint64_t stream_id) const {
  std::lock_guard lock(mu_);
  return streams_.at(stream_id)->watchers.size();
}

Result<WatchId> WatchHub::Watch(uint64_t stream_id, const WatchRequest& request) {
  // Read before taking mu_: the source may take the key space's lock, which the apply thread
  // holds while it calls Notify.
  const Revision compact_revision = source_->CompactRevision();
  std::lock_guard lock(mu_);
  Stream& stream = *streams_.at(stream_id);

  auto refuse = [&](Status status) -> Result<WatchId> {
    WatchResponse response;
    response.header_revision = current_revision_;
    response.watch_id = kInvalidWatchId;
    response.created = true;
    response.canceled = true;
    response.cancel_reason = status.message();
    Enqueue(stream, std::move(response), nullptr);
    return status;
  };
  if (!request.range_end.empty() && request.range_end != std::string_view("\0", 1) &&
      request.key >= request.range_end) {
    return refuse(Status::InvalidArgument(kEmptyRangeReason));
  }
  if (request.start_revision < 0) {
    return refuse(Status::InvalidArgument("watch: negative start revision"));
  }
  if (stream.watchers.size() >= options_.watchers_per_stream_max) {
    return refuse(Status::ResourceExhausted("watch: too many watchers on one stream"));
  }
  WatchId id = request.watch_id;
  if (id != 0) {
    if (stream.watchers.contains(id)) return refuse(Status::AlreadyExists(kDuplicateIdReason));
  } else {
    while (stream.watchers.contains(stream.next_auto_id)) ++stream.next_auto_id;
    id = stream.next_auto_id++;
  }

  auto owned = std::make_unique<Watcher>();
  Watcher& watcher = *owned;
  watcher.uid = next_watcher_uid_++;
  watcher.id = id;
  watcher.stream = &stream;
  watcher.request = request;
  watcher.request.watch_id = id;
  stream.watchers.emplace(id, std::move(owned));
  watchers_.emplace(watcher.uid, &watcher);

  WatchResponse created;
  created.header_revision = current_revision_;
  created.watch_id = id;
  created.created = true;
  Enqueue(stream, std::move(created), nullptr);

  const Revision start = request.start_revision;
  if (start == 0 || start > current_revision_) {
    watcher.next_revision = start == 0 ? current_revision_ + 1 : start;
    MakeSynced(watcher);
  } else if (start < compact_revision) {
    CancelCompacted(watcher, compact_revision);
  } else {
    MakeUnsynced(watcher, start);
  }
  return id;
}

Status WatchHub::Cancel(uint64_t stream_id, WatchId id) {
  std::lock_guard lock(mu_);
  Stream& stream = *streams_.at(stream_id);
  auto it = stream.watchers.find(id);
  if (it == stream.watchers.end()) return Status::NotFound("watch: no watcher with this id");
  Watcher& watcher = *it->second;
  const uint64_t uid = watcher.uid;
  std::erase_if(stream.outbox, [&](const Stream::Queued& q) {
    if (q.watcher_uid != uid) return false;
    stream.outbox_bytes -= q.bytes;
    return true;
  });
  WatchResponse canceled;
  canceled.header_revision = current_revision_;
  canceled.watch_id = id;
  canceled.canceled = true;
  RemoveWatcher(watcher);
  Enqueue(stream, std::move(canceled), nullptr);
  return Status::Ok();
}

bool WatchHub::RequestProgress(uint64_t stream_id) {
  std::lock_guard lock(mu_);
  Stream& stream = *streams_.at(stream_id);
  for (const auto& [id, watcher] : stream.watchers) {
    if (!watcher->synced) return false;
  }
  WatchResponse progress;
  progress.header_revision = current_revision_;
  progress.watch_id = kInvalidWatchId;
  Enqueue(stream, std::move(progress), nullptr);
  return true;
}

std::vector<WatchResponse> WatchHub::Poll(uint64_t stream_id, size_t max) {
  std::lock_guard lock(mu_);
  Stream& stream = *streams_.at(stream_id);
  std::vector<WatchResponse> out;
  while (out.size() < max && !stream.outbox.empty()) {
    Stream::Queued& q = stream.outbox.front();
    if (q.watcher_uid != 0) {
      auto it = watchers_.find(q.watcher_uid);
      if (it != watchers_.end()) {
        BALLOT_ASSERT(it->second->queued_responses > 0);
        --it->second->queued_responses;
      }
    }
    stream.outbox_bytes -= q.bytes;
    out.push_back(std::move(q.response));
    stream.outbox.pop_front();
  }
  return out;
}

// ---- Delivery ----------------------------------------------------------------------------------

void WatchHub::Enqueue(Stream& stream, WatchResponse response, Watcher* watcher) {
  const bool was_empty = stream.outbox.empty();
  Stream::Queued q;
  q.bytes = ResponseBytes(response);
  q.response = std::move(response);
  if (watcher != nullptr) {
    q.watcher_uid = watcher->uid;
    ++watcher->queued_responses;
  }
  stream.outbox_bytes += q.bytes;
  stream.outbox.push_back(std::move(q));
  if (was_empty && stream.wake) stream.wake();
}

bool WatchHub::HasRoom(const Watcher& watcher) const {
  const Stream& stream = *watcher.stream;
  return stream.outbox.size() < options_.outbox_responses_max &&
         stream.outbox_bytes < options_.outbox_bytes_max &&
         watcher.queued_responses < options_.watcher_responses_max;
}

namespace {
// Applies the watcher's filters and prev_kv choice.
std::vector<Event> Filter(const WatchRequest& request, std::vector<Event> events) {
  std::vector<Event> out;
  out.reserve(events.size());
  for (Event& e : events) {
    if (request.filter_noput && e.type == mvcc::EventType::kPut) continue;
    if (request.filter_nodelete && e.type == mvcc::EventType::kDelete) continue;
    // An unread value here means reading it failed: no prev_kv rather than a wrong one.
    if (!request.prev_kv || e.prev_value_unread) e.prev_kv.reset();
    e.prev_value_unread = false;
    out.push_back(std::move(e));
  }
  return out;
}
}  // namespace

void WatchHub::Deliver(Watcher& watcher, std::vector<Event> events, Revision header_revision) {
  BALLOT_ASSERT(!events.empty());
  watcher.active = true;
  size_t total_bytes = 0;
  for (const Event& e : events) total_bytes += EventBytes(e);
  if (!watcher.request.fragment || total_bytes <= options_.fragment_bytes_max) {
    WatchResponse response;
    response.header_revision = header_revision;
    response.watch_id = watcher.id;
    response.events = std::move(events);
    Enqueue(*watcher.stream, std::move(response), &watcher);
    return;
  }
  // Etcd's sendFragments: pieces of at most fragment_bytes_max (at least one event each); every
  // piece but the last carries fragment=true, so the client knows to wait for the rest.
  std::vector<std::vector<Event>> pieces(1);
  size_t piece_bytes = 0;
  for (Event& e : events) {
    const size_t bytes = EventBytes(e);
    if (!pieces.back().empty() && piece_bytes + bytes > options_.fragment_bytes_max) {
      pieces.emplace_back();
      piece_bytes = 0;
    }
    piece_bytes += bytes;
    pieces.back().push_back(std::move(e));
  }
  for (size_t i = 0; i < pieces.size(); ++i) {
    WatchResponse response;
    response.header_revision = header_revision;
    response.watch_id = watcher.id;
    response.fragment = i + 1 < pieces.size();
    response.events = std::move(pieces[i]);
    Enqueue(*watcher.stream, std::move(response), &watcher);
  }
}

void WatchHub::Unindex(Watcher& watcher) {
  if (watcher.synced) {
    if (watcher.single_key()) {
      synced_keys_.erase(watcher.key_it);
    } else {
      const bool erased = synced_ranges_.Erase(watcher.request.key, watcher.uid);
      BALLOT_ASSERT(erased);
    }
  } else {
    unsynced_.erase(watcher.uid);
  }
}

void WatchHub::MakeUnsynced(Watcher& watcher, Revision next_revision) {
  if (watcher.synced) {
    Unindex(watcher);
    watcher.synced = false;
  }
  watcher.next_revision = next_revision;
  unsynced_.insert(watcher.uid);
}

void WatchHub::MakeSynced(Watcher& watcher) {
  BALLOT_ASSERT(watcher.next_revision > current_revision_);
  if (!watcher.synced) unsynced_.erase(watcher.uid);
  watcher.synced = true;
  if (watcher.single_key()) {
    watcher.key_it = synced_keys_.emplace(watcher.request.key, &watcher);
  } else {
    const bool unbounded = watcher.request.range_end == std::string_view("\0", 1);
    synced_ranges_.Insert(watcher.request.key,
                          unbounded ? std::string() : watcher.request.range_end, unbounded,
                          watcher.uid, &watcher);
  }
}

void WatchHub::RemoveWatcher(Watcher& watcher) {
  Unindex(watcher);
  watchers_.erase(watcher.uid);
  Stream& stream = *watcher.stream;
  stream.watchers.erase(watcher.id);  // Destroys the watcher.
}

void WatchHub::CancelWithReason(Watcher& watcher, std::string reason) {
  WatchResponse response;
  response.header_revision = current_revision_;
  response.watch_id = watcher.id;
  response.canceled = true;
  response.cancel_reason = std::move(reason);
  Stream& stream = *watcher.stream;
  RemoveWatcher(watcher);
  Enqueue(stream, std::move(response), nullptr);
}

void WatchHub::CancelCompacted(Watcher& watcher, Revision compact_revision) {
  WatchResponse response;
  response.header_revision = current_revision_;
  response.watch_id = watcher.id;
  response.canceled = true;
  response.compact_revision = compact_revision;
  response.cancel_reason = kCompactedReason;
  Stream& stream = *watcher.stream;
  RemoveWatcher(watcher);
  Enqueue(stream, std::move(response), nullptr);
}

// ---- The live stream ---------------------------------------------------------------------------

void WatchHub::Notify(std::span<const Event> events, Revision revision) {
  std::lock_guard lock(mu_);
  BALLOT_ASSERT(revision > current_revision_, "WatchHub::Notify: revisions must increase");
  if (revision > current_revision_ + 1) {
    // A revision was skipped: the synced watchers read everything after it from the source.
    for (Watcher* w : SyncedWatchers()) {
      MakeUnsynced(*w, std::max(w->next_revision, current_revision_ + 1));
    }
    current_revision_ = revision;
    return;
  }
  current_revision_ = revision;

  // Each synced watcher's share of the events (their positions), in applied order.
  std::vector<std::pair<Watcher*, std::vector<size_t>>> shares;
  std::unordered_map<Watcher*, size_t> share_index;
  auto add = [&](Watcher* w, size_t i) {
    if (revision < w->next_revision) return;  // Starts in the future.
    auto [it, inserted] = share_index.emplace(w, shares.size());
    if (inserted) shares.emplace_back(w, std::vector<size_t>());
    shares[it->second].second.push_back(i);
  };
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    BALLOT_ASSERT(e.kv.mod_revision == revision, "an event's mod_revision must be its revision");
    auto [first, last] = synced_keys_.equal_range(e.kv.key);
    for (auto it = first; it != last; ++it) add(it->second, i);
    synced_ranges_.Stab(e.kv.key, [&](void* w) { add(static_cast<Watcher*>(w), i); });
  }
  const std::vector<Event> loaded = WithPrevValues(events, shares);
  for (auto& [w, positions] : shares) {
    std::vector<Event> share;
    share.reserve(positions.size());
    for (size_t i : positions) share.push_back(loaded.empty() ? events[i] : loaded[i]);
    std::vector<Event> filtered = Filter(w->request, std::move(share));
    if (filtered.empty()) continue;
    if (HasRoom(*w)) {
      Deliver(*w, std::move(filtered), revision);
    } else {
      // The consumer is slow: never wait for it; it reads this revision from the source later.
      MakeUnsynced(*w, revision);
    }
  }
}

std::vector<Event> WatchHub::WithPrevValues(
    std::span<const Event> events,
    const std::vector<std::pair<Watcher*, std::vector<size_t>>>& shares) {
  // The events whose unread prev_kv value some watcher asked for.
  std::vector<bool> wanted(events.size());
  bool any = false;
  for (const auto& [w, positions] : shares) {
    if (!w->request.prev_kv) continue;
    for (size_t i : positions) {
      wanted[i] = events[i].prev_value_unread;
      any = any || wanted[i];
    }
  }
  if (!any) return {};
  std::vector<Event> loaded(events.begin(), events.end());
  // The others go only to watchers without prev_kv, whose Filter drops it: nothing to read.
  for (size_t i = 0; i < loaded.size(); ++i) {
    if (!wanted[i]) loaded[i].prev_value_unread = false;
  }
  // On failure the values stay unread, and Filter sends those events without prev_kv.
  if (!source_->ReadPrevValues(&loaded).ok()) return {};
  return loaded;
}

std::vector<WatchHub::Watcher*> WatchHub::SyncedWatchers() const {
  std::vector<Watcher*> out;
  out.reserve(synced_keys_.size() + synced_ranges_.size());
  for (const auto& [key, w] : synced_keys_) out.push_back(w);
  synced_ranges_.ForEach([&](void* w) { out.push_back(static_cast<Watcher*>(w)); });
  return out;
}

void WatchHub::Restored() {
  const Revision revision = source_->CurrentRevision();
  std::lock_guard lock(mu_);
  for (Watcher* w : SyncedWatchers())
    MakeUnsynced(*w, std::max(w->next_revision, current_revision_ + 1));
  current_revision_ = revision;
}

// ---- Catching up -------------------------------------------------------------------------------

size_t WatchHub::SyncUnsynced() {
  std::lock_guard sync_lock(sync_mu_);
  const Revision compact_before = source_->CompactRevision();
  std::vector<CatchupJob> jobs;
  {
    std::lock_guard lock(mu_);
    // Round-robin from the cursor, so that a crowd of watchers is served fairly.
    std::vector<uint64_t> order;
    for (auto it = unsynced_.upper_bound(sync_cursor_); it != unsynced_.end(); ++it) {
      order.push_back(*it);
    }
    for (auto it = unsynced_.begin(); it != unsynced_.end() && *it <= sync_cursor_; ++it) {
      order.push_back(*it);
    }
    for (uint64_t uid : order) {
      if (jobs.size() >= options_.sync_watchers_max) break;
      sync_cursor_ = uid;
      Watcher& w = *watchers_.at(uid);
      if (w.next_revision < compact_before) {
        CancelCompacted(w, compact_before);
      } else if (w.next_revision > current_revision_) {
        MakeSynced(w);
      } else if (HasRoom(w)) {
        CatchupJob job;
        job.uid = uid;
        job.from = w.next_revision;
        job.to = std::min(current_revision_, w.next_revision + options_.catchup_revisions_max - 1);
        job.key = w.request.key;
        job.range_end = w.request.range_end;
        jobs.push_back(std::move(job));
      }
    }
  }
  for (CatchupJob& job : jobs) {
    job.result =
        source_->ReadEvents(job.from, job.to, job.key, job.range_end, options_.catchup_events_max);
  }
  const Revision compact_after = jobs.empty() ? compact_before : source_->CompactRevision();
  std::lock_guard lock(mu_);
  for (CatchupJob& job : jobs) FinishCatchup(job, std::move(job.result), compact_after);
  return unsynced_.size();
}

void WatchHub::FinishCatchup(const CatchupJob& job, Result<std::vector<Event>> result,
                             Revision compact_revision) {
  auto it = watchers_.find(job.uid);
  if (it == watchers_.end()) return;  // Cancelled meanwhile.
  Watcher& w = *it->second;
  // Restored() or a second path moved it meanwhile: the read no longer fits; the next round
  // starts again from the watcher's position.
  if (w.synced || w.next_revision != job.from) return;
  if (!result.ok()) {
    if (result.status().IsOutOfRange()) {
      CancelCompacted(w, std::max(compact_revision, job.from));
    } else {
      // The history cannot be read: cancel with the reason rather than retry forever; the client
      // sees why and may watch again from its last revision + 1.
      CancelWithReason(w, "watch: reading history failed: " + result.status().ToString());
    }
    return;
  }
  std::vector<Event> events = std::move(result).value();
  Revision covered = job.to;
  if (events.size() >= options_.catchup_events_max) covered = events.back().kv.mod_revision;
  Revision previous = job.from;
  for (const Event& e : events) {
    BALLOT_ASSERT(e.kv.mod_revision >= previous && e.kv.mod_revision <= covered,
                  "EventSource::ReadEvents returned an event out of order or out of bounds");
    BALLOT_ASSERT(RangeContains(job.key, job.range_end, e.kv.key),
                  "EventSource::ReadEvents returned an event outside the range");
    previous = e.kv.mod_revision;
  }
  std::vector<Event> filtered = Filter(w.request, std::move(events));
  if (!filtered.empty()) Deliver(w, std::move(filtered), current_revision_);
  w.next_revision = covered + 1;
  if (w.next_revision > current_revision_) MakeSynced(w);
}

// ---- Progress ----------------------------------------------------------------------------------

void WatchHub::Tick(int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (last_progress_ms_ < 0) {
    last_progress_ms_ = now_ms;
    return;
  }
  if (now_ms - last_progress_ms_ < options_.progress_interval_ms) return;
  last_progress_ms_ = now_ms;
  // Etcd's sendLoop: a watcher that received nothing during a whole interval, and is synced (its
  // revision is the current one), gets an empty response carrying the current revision.
  for (auto& [uid, w] : watchers_) {
    if (w->request.progress_notify && !w->active && w->synced && HasRoom(*w)) {
      WatchResponse progress;
      progress.header_revision = current_revision_;
      progress.watch_id = w->id;
      Enqueue(*w->stream, std::move(progress), w);
    }
    w->active = false;
  }
}

Revision WatchHub::current_revision() const {
  std::lock_guard lock(mu_);
  return current_revision_;
}
size_t WatchHub::unsynced_count() const {
  std::lock_guard lock(mu_);
  return unsynced_.size();
}
size_t WatchHub::watcher_count() const {
  std::lock_guard lock(mu_);
  return watchers_.size();
}

}  // namespace ballot::watch
