// The watch hub: etcd's watch semantics over a recorded history (MemoryHistory).
#include "watch/watch_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "watch/memory_history.h"

// Requests are written with designated initializers, naming only the fields a test sets; GCC
// warns about the others even though they have default member initializers.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ballot::watch {
namespace {

using mvcc::EventType;

class WatchHubTest : public ::testing::Test {
 protected:
  void MakeHub(WatchOptions options = {}) { hub_ = std::make_unique<WatchHub>(&history_, options); }
  void SetUp() override { MakeHub(); }
  void TearDown() override {
    streams_.clear();
    hub_.reset();
  }

  WatchStream& Open() {
    streams_.push_back(hub_->OpenStream(nullptr));
    return *streams_.back();
  }
  void Commit(std::vector<Event> events) {
    ASSERT_FALSE(events.empty());
    hub_->Notify(events, events.front().kv.mod_revision);
  }
  void Put(const std::string& key, const std::string& value) { Commit(history_.Put(key, value)); }
  void Del(const std::string& key) { Commit(history_.Delete(key)); }

  static std::vector<WatchResponse> PollAll(WatchStream& stream) { return stream.Poll(1u << 30); }
  // The events each response of watcher `id` carried, concatenated.
  static std::vector<Event> EventsOf(const std::vector<WatchResponse>& responses, WatchId id) {
    std::vector<Event> out;
    for (const WatchResponse& r : responses) {
      if (r.watch_id != id) continue;
      out.insert(out.end(), r.events.begin(), r.events.end());
    }
    return out;
  }
  // The reference: every recorded event in [key, range_end) with revision >= from.
  std::vector<Event> Reference(const std::string& key, const std::string& range_end, Revision from,
                               bool prev_kv = true) {
    std::vector<Event> out;
    for (Event e : history_.AllEvents()) {
      if (e.kv.mod_revision < from || !RangeContains(key, range_end, e.kv.key)) continue;
      if (!prev_kv) e.prev_kv.reset();
      out.push_back(e);
    }
    return out;
  }

  MemoryHistory history_;
  std::unique_ptr<WatchHub> hub_;
  std::vector<std::unique_ptr<WatchStream>> streams_;
};

TEST_F(WatchHubTest, CreatedThenLiveEventsOfTheKeyOnly) {
  Put("x", "0");  // Revision 2.
  WatchStream& s = Open();
  auto id = s.Watch({.key = "a"});
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 0);  // Etcd allocates from 0.
  Put("a", "1");
  Put("b", "1");
  Put("a", "2");
  Del("a");
  auto responses = PollAll(s);
  ASSERT_EQ(responses.size(), 4u);
  EXPECT_TRUE(responses[0].created);
  EXPECT_EQ(responses[0].header_revision, 2);
  EXPECT_EQ(responses[1].header_revision, 3);
  EXPECT_EQ(responses[3].header_revision, 6);
  auto events = EventsOf(responses, 0);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kv.value, "1");
  EXPECT_EQ(events[1].kv.value, "2");
  EXPECT_EQ(events[1].kv.version, 2);
  EXPECT_EQ(events[2].type, EventType::kDelete);
  EXPECT_EQ(events, Reference("a", "", 3, /*prev_kv=*/false));
  EXPECT_FALSE(events[1].prev_kv.has_value());  // Not asked for.
}

TEST_F(WatchHubTest, PrefixRangeAndFromKey) {
  WatchStream& s = Open();
  const WatchId prefix = *s.Watch({.key = "app/", .range_end = "app0"});
  const WatchId range = *s.Watch({.key = "b", .range_end = "d"});
  const WatchId from_key = *s.Watch({.key = "c", .range_end = std::string("\0", 1)});
  for (const char* k : {"app/1", "apple", "app/", "a", "b", "bz", "c", "d", "zz", "app0"}) {
    Put(k, "v");
  }
  auto responses = PollAll(s);
  auto keys = [&](WatchId id) {
    std::vector<std::string> out;
    for (const Event& e : EventsOf(responses, id)) out.push_back(e.kv.key);
    return out;
  };
  EXPECT_EQ(keys(prefix), (std::vector<std::string>{"app/1", "app/"}));
  EXPECT_EQ(keys(range), (std::vector<std::string>{"b", "bz", "c"}));
  EXPECT_EQ(keys(from_key), (std::vector<std::string>{"c", "d", "zz"}));
}

TEST_F(WatchHubTest, EmptyRangeIsRefusedWithACanceledCreatedResponse) {
  WatchStream& s = Open();
  auto id = s.Watch({.key = "b", .range_end = "a"});
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().message(), kEmptyRangeReason);
  auto responses = PollAll(s);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_TRUE(responses[0].created);
  EXPECT_TRUE(responses[0].canceled);
  EXPECT_EQ(responses[0].watch_id, kInvalidWatchId);
  EXPECT_EQ(responses[0].cancel_reason, kEmptyRangeReason);
  EXPECT_EQ(s.watcher_count(), 0u);
}

TEST_F(WatchHubTest, WatchIdsClientChosenAllocatedAndDuplicate) {
  WatchStream& s = Open();
  EXPECT_EQ(*s.Watch({.key = "a", .watch_id = 1}), 1);
  EXPECT_EQ(*s.Watch({.key = "a"}), 0);
  EXPECT_EQ(*s.Watch({.key = "a"}), 2);  // Skips the client's 1.
  auto dup = s.Watch({.key = "a", .watch_id = 2});
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.status().message(), kDuplicateIdReason);
  // Another stream has its own ids.
  WatchStream& other = Open();
  EXPECT_EQ(*other.Watch({.key = "a"}), 0);
  auto responses = PollAll(s);
  ASSERT_EQ(responses.size(), 4u);
  EXPECT_EQ(responses[3].watch_id, kInvalidWatchId);
  EXPECT_TRUE(responses[3].canceled);
  EXPECT_EQ(s.watcher_count(), 3u);
}

TEST_F(WatchHubTest, CancelDropsUndeliveredEventsAndQueuesCanceled) {
  WatchStream& s = Open();
  const WatchId a = *s.Watch({.key = "a"});
  const WatchId b = *s.Watch({.key = "b"});
  Put("a", "1");
  Put("b", "1");
  ASSERT_TRUE(s.Cancel(a).ok());
  EXPECT_TRUE(s.Cancel(a).IsNotFound());
  Put("a", "2");
  auto responses = PollAll(s);
  ASSERT_EQ(responses.size(), 4u);  // created a, created b, b's event, a canceled.
  EXPECT_EQ(EventsOf(responses, a).size(), 0u);
  EXPECT_EQ(EventsOf(responses, b).size(), 1u);
  EXPECT_EQ(responses[3].watch_id, a);
  EXPECT_TRUE(responses[3].canceled);
  EXPECT_TRUE(responses[3].cancel_reason.empty());
  EXPECT_EQ(hub_->watcher_count(), 1u);
}

TEST_F(WatchHubTest, StartInThePastCatchesUpThenGoesLiveWithoutGapOrDuplicate) {
  for (int i = 0; i < 20; ++i) Put("k" + std::to_string(i % 3), std::to_string(i));
  WatchStream& s = Open();
  const WatchId id = *s.Watch({.key = "k", .range_end = "l", .start_revision = 5, .prev_kv = true});
  EXPECT_EQ(hub_->unsynced_count(), 1u);
  Put("k1", "live-before-sync");  // Arrives while the watcher is still unsynced.
  EXPECT_EQ(hub_->SyncUnsynced(), 0u);
  Put("k2", "live-after-sync");
  auto events = EventsOf(PollAll(s), id);
  EXPECT_EQ(events, Reference("k", "l", 5));
  EXPECT_EQ(events.back().kv.value, "live-after-sync");
  ASSERT_TRUE(events[0].prev_kv.has_value());
}

TEST_F(WatchHubTest, ResumesFromTheLastSeenRevisionPlusOne) {
  WatchStream& first = Open();
  const WatchId id = *first.Watch({.key = "a", .range_end = "b"});
  for (int i = 0; i < 5; ++i) Put("a" + std::to_string(i), "v");
  auto seen = EventsOf(PollAll(first), id);
  ASSERT_EQ(seen.size(), 5u);
  streams_.clear();  // The client disconnects...
  for (int i = 5; i < 9; ++i) Put("a" + std::to_string(i), "v");
  WatchStream& second = Open();  // ...and resumes.
  const WatchId id2 = *second.Watch(
      {.key = "a", .range_end = "b", .start_revision = seen.back().kv.mod_revision + 1});
  hub_->SyncUnsynced();
  Put("a9", "v");
  auto rest = EventsOf(PollAll(second), id2);
  seen.insert(seen.end(), rest.begin(), rest.end());
  EXPECT_EQ(seen, Reference("a", "b", 0, /*prev_kv=*/false));
}

TEST_F(WatchHubTest, SlowWatcherDoesNotBlockNotifyAndCatchesUp) {
  WatchOptions options;
  options.outbox_responses_max = 4;
  options.watcher_responses_max = 4;
  MakeHub(options);
  WatchStream& slow = Open();
  WatchStream& fast = Open();
  const WatchId slow_id = *slow.Watch({.key = "k", .range_end = "l"});
  const WatchId fast_id = *fast.Watch({.key = "k", .range_end = "l"});
  std::vector<WatchResponse> fast_got;
  for (int i = 0; i < 100; ++i) {
    Put("k" + std::to_string(i % 7), std::to_string(i));  // Never waits for `slow`.
    auto got = PollAll(fast);
    fast_got.insert(fast_got.end(), got.begin(), got.end());
  }
  EXPECT_EQ(hub_->unsynced_count(), 1u);                                  // `slow` fell behind...
  EXPECT_EQ(EventsOf(fast_got, fast_id), Reference("k", "l", 0, false));  // ...`fast` did not.
  // The slow consumer drains a little at a time; the hub feeds it from history.
  std::vector<WatchResponse> slow_got;
  for (int round = 0; round < 200 && (hub_->unsynced_count() > 0 || round < 2); ++round) {
    auto got = slow.Poll(2);
    slow_got.insert(slow_got.end(), got.begin(), got.end());
    hub_->SyncUnsynced();
  }
  EXPECT_EQ(hub_->unsynced_count(), 0u);
  Put("k1", "after");  // Back on the live stream.
  auto got = PollAll(slow);
  slow_got.insert(slow_got.end(), got.begin(), got.end());
  EXPECT_EQ(EventsOf(slow_got, slow_id), Reference("k", "l", 0, false));
  EXPECT_GT(history_.read_calls(), 0);
}

TEST_F(WatchHubTest, StartBelowCompactionIsCanceledWithTheCompactRevision) {
  for (int i = 0; i < 10; ++i) Put("a", std::to_string(i));
  history_.Compact(6);
  WatchStream& s = Open();
  const WatchId id = *s.Watch({.key = "a", .start_revision = 5});
  // The compacted revision itself is still readable (etcd's rule).
  const WatchId ok_id = *s.Watch({.key = "a", .start_revision = 6});
  hub_->SyncUnsynced();
  auto responses = PollAll(s);
  ASSERT_GE(responses.size(), 3u);
  EXPECT_TRUE(responses[0].created);
  EXPECT_EQ(responses[0].watch_id, id);
  EXPECT_EQ(responses[1].watch_id, id);
  EXPECT_TRUE(responses[1].canceled);
  EXPECT_EQ(responses[1].compact_revision, 6);
  EXPECT_EQ(responses[1].cancel_reason, kCompactedReason);
  EXPECT_EQ(EventsOf(responses, ok_id), Reference("a", "", 6, false));
  EXPECT_EQ(s.watcher_count(), 1u);
}

TEST_F(WatchHubTest, UnsyncedWatcherOvertakenByCompactionIsCanceledAfterWhatItGot) {
  WatchOptions options;
  options.outbox_responses_max = 2;
  MakeHub(options);
  WatchStream& s = Open();
  const WatchId id = *s.Watch({.key = "a"});
  for (int i = 0; i < 10; ++i) Put("a", std::to_string(i));  // Revisions 2..11.
  ASSERT_EQ(hub_->unsynced_count(), 1u);
  const auto reference = Reference("a", "", 0, false);
  history_.Compact(8);
  hub_->SyncUnsynced();
  auto responses = PollAll(s);
  auto events = EventsOf(responses, id);
  ASSERT_FALSE(events.empty());
  // What it got is a prefix of the history, and the next revision it needed was compacted.
  ASSERT_LE(events.size(), reference.size());
  EXPECT_TRUE(std::equal(events.begin(), events.end(), reference.begin()));
  EXPECT_LT(events.back().kv.mod_revision + 1, 8);
  EXPECT_TRUE(responses.back().canceled);
  EXPECT_EQ(responses.back().compact_revision, 8);
  EXPECT_EQ(hub_->watcher_count(), 0u);
}

TEST_F(WatchHubTest, AFailedHistoryReadCancelsWithTheReason) {
  for (int i = 0; i < 3; ++i) Put("a", std::to_string(i));
  WatchStream& s = Open();
  const WatchId id = *s.Watch({.key = "a", .start_revision = 2});
  const WatchId live = *s.Watch({.key = "a"});
  history_.SetReadError(Status::Unavailable("disk on fire"));
  EXPECT_EQ(hub_->SyncUnsynced(), 0u);
  history_.SetReadError(Status::Ok());
  Put("a", "after");
  auto responses = PollAll(s);
  ASSERT_EQ(responses.size(), 4u);  // created, created, canceled, live event.
  EXPECT_EQ(responses[2].watch_id, id);
  EXPECT_TRUE(responses[2].canceled);
  EXPECT_EQ(responses[2].compact_revision, 0);
  EXPECT_NE(responses[2].cancel_reason.find("disk on fire"), std::string::npos);
  EXPECT_EQ(responses[3].watch_id, live);
  EXPECT_EQ(hub_->watcher_count(), 1u);
}

TEST_F(WatchHubTest, FiltersDropPutsOrDeletes) {
  WatchStream& s = Open();
  const WatchId noput = *s.Watch({.key = "a", .filter_noput = true});
  const WatchId nodel = *s.Watch({.key = "a", .filter_nodelete = true});
  Put("a", "1");
  Del("a");
  Put("a", "2");
  auto responses = PollAll(s);
  auto dels = EventsOf(responses, noput);
  auto puts = EventsOf(responses, nodel);
  ASSERT_EQ(dels.size(), 1u);
  EXPECT_EQ(dels[0].type, EventType::kDelete);
  ASSERT_EQ(puts.size(), 2u);
  EXPECT_EQ(puts[1].kv.value, "2");
  // A revision filtered away entirely produces no response at all.
  EXPECT_EQ(responses.size(), 2u + 1u + 2u);
}

TEST_F(WatchHubTest, PrevKvOnlyWhenAskedFor) {
  Put("a", "old");
  WatchStream& s = Open();
  const WatchId with = *s.Watch({.key = "a", .prev_kv = true});
  const WatchId without = *s.Watch({.key = "a"});
  Put("a", "new");
  Del("a");
  auto responses = PollAll(s);
  auto w = EventsOf(responses, with);
  auto wo = EventsOf(responses, without);
  ASSERT_EQ(w.size(), 2u);
  ASSERT_TRUE(w[0].prev_kv.has_value());
  EXPECT_EQ(w[0].prev_kv->value, "old");
  ASSERT_TRUE(w[1].prev_kv.has_value());
  EXPECT_EQ(w[1].prev_kv->value, "new");
  ASSERT_EQ(wo.size(), 2u);
  EXPECT_FALSE(wo[0].prev_kv.has_value());
  EXPECT_FALSE(wo[1].prev_kv.has_value());
}

// The mvcc store leaves a put's prev_kv value unread: the hub reads it for a watcher that asked
// for prev_kv, and sends no prev_kv rather than an empty value when the read fails.
TEST_F(WatchHubTest, UnreadPrevValuesAreReadForWatchersThatAskForThem) {
  history_.SetPrevValuesUnread(true);
  Put("a", "old");
  WatchStream& s = Open();
  const WatchId with = *s.Watch({.key = "a", .prev_kv = true});
  const WatchId ranged = *s.Watch({.key = "a", .range_end = "z", .prev_kv = true});
  const WatchId without = *s.Watch({.key = "a"});
  Put("a", "new");
  auto responses = PollAll(s);
  for (WatchId id : {with, ranged}) {
    auto events = EventsOf(responses, id);
    ASSERT_EQ(events.size(), 1u);
    ASSERT_TRUE(events[0].prev_kv.has_value());
    EXPECT_EQ(*events[0].prev_kv, (mvcc::KeyValue{"a", "old", 2, 2, 1, 0}));
    EXPECT_FALSE(events[0].prev_value_unread);
  }
  auto wo = EventsOf(responses, without);
  ASSERT_EQ(wo.size(), 1u);
  EXPECT_FALSE(wo[0].prev_kv.has_value());
  EXPECT_FALSE(wo[0].prev_value_unread);

  history_.SetReadError(Status::Unavailable("disk gone"));
  Put("a", "newer");
  auto failed = EventsOf(PollAll(s), with);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].kv.value, "newer");
  EXPECT_FALSE(failed[0].prev_kv.has_value());
  EXPECT_FALSE(failed[0].prev_value_unread);
}

TEST_F(WatchHubTest, FragmentsSplitABigResponseOnlyWhenAsked) {
  WatchOptions options;
  options.fragment_bytes_max = 300;
  MakeHub(options);
  WatchStream& s = Open();
  const WatchId frag = *s.Watch({.key = "k", .range_end = "l", .fragment = true});
  const WatchId whole = *s.Watch({.key = "k", .range_end = "l"});
  std::vector<MemoryHistory::Op> ops;
  for (int i = 0; i < 10; ++i)
    ops.push_back({false, "k" + std::to_string(i), std::string(100, 'v')});
  Commit(history_.Apply(ops));  // One revision, ten events of ~150 bytes each.
  auto responses = PollAll(s);
  std::vector<WatchResponse> pieces;
  for (const auto& r : responses) {
    if (r.watch_id == frag && !r.created) pieces.push_back(r);
  }
  ASSERT_EQ(pieces.size(), 5u);  // Two events per piece.
  for (size_t i = 0; i < pieces.size(); ++i) {
    EXPECT_EQ(pieces[i].fragment, i + 1 < pieces.size());
    size_t bytes = 0;
    for (const Event& e : pieces[i].events) bytes += EventBytes(e);
    EXPECT_LE(bytes, options.fragment_bytes_max);
  }
  EXPECT_EQ(EventsOf(responses, frag), Reference("k", "l", 0, false));
  int whole_responses = 0;
  for (const auto& r : responses) whole_responses += (r.watch_id == whole && !r.created);
  EXPECT_EQ(whole_responses, 1);
  // One event bigger than the limit still goes out, alone.
  Put("k0", std::string(1000, 'x'));
  auto big = PollAll(s);
  ASSERT_EQ(big.size(), 2u);
  EXPECT_FALSE(big[0].fragment);
  EXPECT_EQ(big[0].events.size(), 1u);
}

TEST_F(WatchHubTest, ProgressNotifyGoesToIdleSyncedWatchersOnly) {
  WatchOptions options;
  options.progress_interval_ms = 1000;
  MakeHub(options);
  WatchStream& s = Open();
  const WatchId idle = *s.Watch({.key = "idle", .progress_notify = true});
  const WatchId busy = *s.Watch({.key = "busy", .progress_notify = true});
  const WatchId quiet = *s.Watch({.key = "idle"});  // Did not ask.
  PollAll(s);
  hub_->Tick(0);
  Put("busy", "1");
  hub_->Tick(500);  // Not a whole interval yet.
  auto responses = PollAll(s);
  ASSERT_EQ(responses.size(), 1u);
  hub_->Tick(1000);
  responses = PollAll(s);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].watch_id, idle);
  EXPECT_TRUE(responses[0].events.empty());
  EXPECT_EQ(responses[0].header_revision, hub_->current_revision());
  // Next interval: `busy` was idle too this time.
  hub_->Tick(2000);
  responses = PollAll(s);
  ASSERT_EQ(responses.size(), 2u);
  EXPECT_NE(responses[0].watch_id, quiet);
  EXPECT_NE(responses[1].watch_id, quiet);
  (void)busy;
}

TEST_F(WatchHubTest, ProgressNotifySkipsAnUnsyncedWatcher) {
  WatchOptions options;
  options.progress_interval_ms = 1000;
  MakeHub(options);
  for (int i = 0; i < 3; ++i) Put("a", "v");
  WatchStream& s = Open();
  (void)*s.Watch({.key = "zzz", .start_revision = 2, .progress_notify = true});
  PollAll(s);
  hub_->Tick(0);
  hub_->Tick(1000);
  EXPECT_TRUE(PollAll(s).empty());
  EXPECT_FALSE(s.RequestProgress());
  hub_->SyncUnsynced();
  EXPECT_TRUE(s.RequestProgress());
  auto responses = PollAll(s);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].watch_id, kInvalidWatchId);
  EXPECT_EQ(responses[0].header_revision, 4);
}

TEST_F(WatchHubTest, FutureStartRevisionWaits) {
  WatchStream& s = Open();
  const WatchId id = *s.Watch({.key = "a", .start_revision = 4});
  for (int i = 0; i < 5; ++i) Put("a", std::to_string(i));  // Revisions 2..6.
  auto events = EventsOf(PollAll(s), id);
  EXPECT_EQ(events, Reference("a", "", 4, false));
  ASSERT_EQ(events.size(), 3u);
}

TEST_F(WatchHubTest, ManyWatchersOnOverlappingRanges) {
  WatchStream& s = Open();
  struct W {
    std::string key, end;
    WatchId id;
  };
  std::vector<W> ws = {{"a", "", 0},  {"a", "c", 0}, {"b", "", 0}, {"", std::string("\0", 1), 0},
                       {"a", "b", 0}, {"b", "z", 0}, {"a", "", 0}};
  for (auto& w : ws) w.id = *s.Watch({.key = w.key, .range_end = w.end});
  for (const char* k : {"a", "b", "ab", "c", "a", "y", "z"}) Put(k, "v");
  Del("a");
  auto responses = PollAll(s);
  for (const auto& w : ws) {
    EXPECT_EQ(EventsOf(responses, w.id), Reference(w.key, w.end, 0, false))
        << w.key << ".." << w.end;
  }
}

TEST_F(WatchHubTest, CatchupNeverCutsARevision) {
  WatchOptions options;
  options.catchup_events_max = 2;
  MakeHub(options);
  std::vector<MemoryHistory::Op> ops;
  for (int i = 0; i < 5; ++i) ops.push_back({false, "k" + std::to_string(i), "v"});
  Commit(history_.Apply(ops));
  Commit(history_.Apply(ops));
  WatchStream& s = Open();
  const WatchId id = *s.Watch({.key = "k", .range_end = "l", .start_revision = 1});
  hub_->SyncUnsynced();  // Reads revision 2 whole (5 events > 2), stops there.
  EXPECT_EQ(hub_->unsynced_count(), 1u);
  hub_->SyncUnsynced();
  EXPECT_EQ(hub_->unsynced_count(), 0u);
  auto responses = PollAll(s);
  EXPECT_EQ(EventsOf(responses, id), Reference("k", "l", 0, false));
  ASSERT_EQ(responses.size(), 3u);
  EXPECT_EQ(responses[1].events.size(), 5u);
}

TEST_F(WatchHubTest, SkippedRevisionOrRestoreIsReadFromTheSource) {
  WatchStream& s = Open();
  const WatchId id = *s.Watch({.key = "a"});
  Put("a", "1");
  history_.Put("a", "2");  // Applied, but the hub is not told (say, a snapshot was installed).
  history_.Put("a", "3");
  hub_->Restored();
  EXPECT_EQ(hub_->current_revision(), 4);
  hub_->SyncUnsynced();
  history_.Put("a", "4");
  Commit(history_.Put("a", "5"));  // Revision 6 after a skipped 5.
  hub_->SyncUnsynced();
  Put("a", "6");
  EXPECT_EQ(EventsOf(PollAll(s), id), Reference("a", "", 0, false));
}

TEST_F(WatchHubTest, WakeIsCalledWhenTheOutboxBecomesNonEmpty) {
  int wakes = 0;
  auto s = hub_->OpenStream([&] { ++wakes; });
  (void)*s->Watch({.key = "a"});
  EXPECT_EQ(wakes, 1);
  Put("a", "1");
  EXPECT_EQ(wakes, 1);  // Already non-empty.
  s->Poll(10);
  Put("a", "2");
  EXPECT_EQ(wakes, 2);
  Put("b", "2");
  EXPECT_EQ(wakes, 2);
}

TEST_F(WatchHubTest, TooManyWatchersOnOneStreamIsRefused) {
  WatchOptions options;
  options.watchers_per_stream_max = 2;
  MakeHub(options);
  WatchStream& s = Open();
  ASSERT_TRUE(s.Watch({.key = "a"}).ok());
  ASSERT_TRUE(s.Watch({.key = "b"}).ok());
  auto third = s.Watch({.key = "c"});
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.status().code(), StatusCode::kResourceExhausted);
}

// Writers, a syncer and consumers on their own threads; every watcher still sees the exact
// history of its range.
TEST_F(WatchHubTest, ConcurrentWritersSyncerAndConsumers) {
  WatchOptions options;
  options.outbox_responses_max = 8;
  options.watcher_responses_max = 4;
  MakeHub(options);
  constexpr int kWrites = 2000;
  constexpr int kStreams = 4;
  std::vector<WatchStream*> streams;
  std::vector<WatchId> ids;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(&Open());
    ids.push_back(*streams.back()->Watch({.key = "k", .range_end = "l", .start_revision = 1}));
  }
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) Put("k" + std::to_string(i % 13), std::to_string(i));
    done = true;
  });
  std::thread syncer([&] {
    while (!done) hub_->SyncUnsynced();
  });
  std::vector<std::vector<WatchResponse>> got(kStreams);
  std::vector<std::thread> consumers;
  for (int i = 0; i < kStreams; ++i) {
    consumers.emplace_back([&, i] {
      while (!done) {
        auto r = streams[i]->Poll(1 + i);
        got[i].insert(got[i].end(), r.begin(), r.end());
        if (i == 0) std::this_thread::yield();
      }
    });
  }
  writer.join();
  syncer.join();
  for (auto& c : consumers) c.join();
  for (int round = 0; round < 10000; ++round) {
    for (int i = 0; i < kStreams; ++i) {
      auto r = PollAll(*streams[i]);
      got[i].insert(got[i].end(), r.begin(), r.end());
    }
    if (hub_->SyncUnsynced() == 0) break;
  }
  for (int i = 0; i < kStreams; ++i) {
    auto r = PollAll(*streams[i]);
    got[i].insert(got[i].end(), r.begin(), r.end());
    EXPECT_EQ(EventsOf(got[i], ids[i]), Reference("k", "l", 0, false)) << "stream " << i;
  }
}

}  // namespace
}  // namespace ballot::watch
