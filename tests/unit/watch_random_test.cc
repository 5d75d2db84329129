// Randomized: random writes (some the hub only learns about later), random watchers created at
// random revisions, slow consumers, compactions, cancels, progress requests, tiny bounds. Every
// watcher's stream must equal the reference history restricted to its range and options (or a
// prefix of it, for a watcher cancelled by its client or by compaction), and every progress
// notification must come after every event it vouches for.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/random.h"
#include "watch/memory_history.h"
#include "watch/watch_hub.h"

namespace ballot::watch {
namespace {

struct StreamState {
  std::unique_ptr<WatchStream> stream;
  std::vector<WatchResponse> got;
  bool slow = false;
  bool closed = false;
};

struct Tracked {
  size_t stream = 0;
  WatchId id = 0;
  WatchRequest request;
  bool client_canceled = false;
};

const char* const kKeys[] = {"a", "ab", "abc", "b", "ba", "c", "d", "e"};

std::string RandomKey(Random& rng) { return kKeys[rng.Uniform(std::size(kKeys))]; }

WatchRequest RandomRequest(Random& rng, Revision compacted, Revision current) {
  WatchRequest r;
  r.key = RandomKey(rng);
  switch (rng.Uniform(4)) {
    case 0:
      break;  // One key.
    case 1:
      r.range_end = r.key;  // Prefix.
      r.range_end.back()++;
      break;
    case 2: {
      std::string other = RandomKey(rng);
      if (other <= r.key) other = r.key + "z";
      r.range_end = other;
      break;
    }
    default:
      r.range_end = std::string("\0", 1);
  }
  if (rng.Chance(0.4)) {
    r.start_revision = 0;
  } else {
    r.start_revision = rng.Range(std::max<Revision>(1, compacted - 2), current + 2);
  }
  r.prev_kv = rng.Chance(0.5);
  r.filter_noput = rng.Chance(0.1);
  r.filter_nodelete = !r.filter_noput && rng.Chance(0.1);
  r.fragment = rng.Chance(0.3);
  r.progress_notify = rng.Chance(0.3);
  return r;
}

// What the seeds exercised, summed: the test fails if a path stops being exercised.
struct Coverage {
  size_t events_checked = 0;
  size_t fell_behind = 0;  // Notify calls after which some watcher was unsynced.
  size_t compaction_cancels = 0;
  size_t fragments = 0;
  size_t progress = 0;
  size_t complete_watchers = 0;
  size_t unread_batches = 0;  // Writes whose put events left prev_kv values unread.
};

std::vector<Event> Expected(const std::vector<Event>& all, const WatchRequest& r, Revision from) {
  std::vector<Event> out;
  for (Event e : all) {
    if (e.kv.mod_revision < from || !RangeContains(r.key, r.range_end, e.kv.key)) continue;
    if (r.filter_noput && e.type == mvcc::EventType::kPut) continue;
    if (r.filter_nodelete && e.type == mvcc::EventType::kDelete) continue;
    if (!r.prev_kv) e.prev_kv.reset();
    out.push_back(std::move(e));
  }
  return out;
}

void RunSeed(uint64_t seed, Coverage& coverage) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  Random rng(seed);
  MemoryHistory history;
  // Odd seeds: puts leave prev_kv values unread, as the mvcc store does; the hub reads them.
  const bool unread = seed % 2 == 1;
  history.SetPrevValuesUnread(unread);
  WatchOptions options;
  options.outbox_responses_max = 1 + rng.Uniform(8);
  options.outbox_bytes_max = 200 + rng.Uniform(4000);
  options.watcher_responses_max = 1 + rng.Uniform(4);
  options.catchup_revisions_max = 1 + static_cast<int64_t>(rng.Uniform(6));
  options.catchup_events_max = 1 + rng.Uniform(6);
  options.sync_watchers_max = 1 + rng.Uniform(4);
  options.fragment_bytes_max = 60 + rng.Uniform(300);
  options.progress_interval_ms = 100;
  auto hub = std::make_unique<WatchHub>(&history, options);
  std::vector<Event> all;  // The whole history, compaction notwithstanding.
  std::vector<StreamState> streams;
  std::vector<Tracked> watchers;
  bool hub_behind = false;  // Some writes were not notified.
  int64_t now_ms = 0;

  auto poll = [&](StreamState& s, size_t max) {
    auto got = s.stream->Poll(max);
    s.got.insert(s.got.end(), got.begin(), got.end());
  };

  for (int step = 0; step < 400; ++step) {
    const uint64_t op = rng.Uniform(100);
    if (op < 40) {
      std::vector<MemoryHistory::Op> ops;
      const int n = 1 + static_cast<int>(rng.Uniform(3));
      for (int i = 0; i < n; ++i) {
        ops.push_back({rng.Chance(0.25), RandomKey(rng), std::string(rng.Uniform(60), 'v')});
      }
      auto events = history.Apply(ops);
      if (events.empty()) continue;
      std::vector<Event> whole = events;
      if (unread) {
        ++coverage.unread_batches;
        ASSERT_TRUE(history.ReadPrevValues(&whole).ok());
      }
      all.insert(all.end(), whole.begin(), whole.end());
      if (rng.Chance(0.03)) {
        hub_behind = true;  // The hub hears of it later (a skipped revision).
      } else {
        hub->Notify(events, events.front().kv.mod_revision);
        hub_behind = false;
        if (hub->unsynced_count() > 0) ++coverage.fell_behind;
      }
    } else if (op < 50) {
      if (streams.empty() || rng.Chance(0.2)) {
        streams.push_back({hub->OpenStream(nullptr), {}, rng.Chance(0.5), false});
      }
      const size_t si = rng.Uniform(streams.size());
      if (streams[si].closed) continue;
      WatchRequest request =
          RandomRequest(rng, history.CompactRevision(), history.CurrentRevision());
      auto id = streams[si].stream->Watch(request);
      ASSERT_TRUE(id.ok()) << id.status().ToString();
      watchers.push_back({si, *id, request, false});
    } else if (op < 53) {
      if (watchers.empty()) continue;
      Tracked& w = watchers[rng.Uniform(watchers.size())];
      if (streams[w.stream].closed || w.client_canceled) continue;
      if (streams[w.stream].stream->Cancel(w.id).ok()) w.client_canceled = true;
    } else if (op < 73) {
      if (streams.empty()) continue;
      StreamState& s = streams[rng.Uniform(streams.size())];
      if (s.closed || (s.slow && !rng.Chance(0.2))) continue;
      poll(s, 1 + rng.Uniform(5));
    } else if (op < 88) {
      hub->SyncUnsynced();
    } else if (op < 91) {
      // Rarely, and mostly not all the way up, so that most watchers live to the end.
      if (rng.Chance(0.7)) continue;
      const Revision target = history.CurrentRevision() - static_cast<Revision>(rng.Uniform(40));
      history.Compact(std::max(history.CompactRevision(), target));
    } else if (op < 96) {
      now_ms += static_cast<int64_t>(rng.Uniform(150));
      hub->Tick(now_ms);
    } else if (op < 99) {
      if (!streams.empty()) {
        StreamState& s = streams[rng.Uniform(streams.size())];
        if (!s.closed) (void)s.stream->RequestProgress();
      }
    } else if (!streams.empty()) {
      StreamState& s = streams[rng.Uniform(streams.size())];
      if (!s.closed) {
        poll(s, 1u << 30);
        s.stream.reset();
        s.closed = true;
      }
    }
  }
  // Quiesce: the hub catches up with the writes it missed, every consumer drains.
  if (hub_behind) hub->Restored();
  for (int round = 0; round < 100000; ++round) {
    bool empty = true;
    for (StreamState& s : streams) {
      if (s.closed) continue;
      poll(s, 1u << 30);
    }
    const size_t unsynced = hub->SyncUnsynced();
    for (StreamState& s : streams) {
      if (s.closed) continue;
      const size_t before = s.got.size();
      poll(s, 1u << 30);
      empty = empty && s.got.size() == before;
    }
    if (unsynced == 0 && empty) break;
    ASSERT_LT(round, 99999) << "the hub never caught up";
  }
  ASSERT_EQ(hub->unsynced_count(), 0u);

  for (size_t wi = 0; wi < watchers.size(); ++wi) {
    const Tracked& w = watchers[wi];
    SCOPED_TRACE("watcher " + std::to_string(wi) + " id " + std::to_string(w.id));
    const StreamState& s = streams[w.stream];
    std::vector<Event> got;
    Revision from = -1;
    Revision compacted_at = 0;
    bool pending_fragment = false;
    for (const WatchResponse& r : s.got) {
      if (r.watch_id == kInvalidWatchId && !r.created) {
        // A stream-wide progress response: everything up to its revision has arrived.
        if (from < 0) continue;
        const auto expected = Expected(all, w.request, from);
        size_t due = 0;
        while (due < expected.size() && expected[due].kv.mod_revision <= r.header_revision) ++due;
        if (!w.client_canceled && compacted_at == 0) {
          EXPECT_GE(got.size(), due) << "stream progress at " << r.header_revision;
        }
        continue;
      }
      if (r.watch_id != w.id) continue;
      if (r.created) {
        ASSERT_EQ(from, -1) << "created twice";
        from = w.request.start_revision == 0 ? r.header_revision + 1 : w.request.start_revision;
        continue;
      }
      ASSERT_GE(from, 0) << "a response before created";
      ASSERT_EQ(compacted_at, 0) << "a response after the compaction cancel";
      if (r.canceled) {
        if (r.compact_revision > 0) {
          compacted_at = r.compact_revision;
          ++coverage.compaction_cancels;
        }
        continue;
      }
      if (r.events.empty()) {
        ASSERT_FALSE(pending_fragment);
        // Progress: every event at or below its revision has arrived.
        const auto expected = Expected(all, w.request, from);
        size_t due = 0;
        while (due < expected.size() && expected[due].kv.mod_revision <= r.header_revision) ++due;
        EXPECT_EQ(got.size(), due) << "progress at " << r.header_revision;
        ++coverage.progress;
        continue;
      }
      for (const Event& e : r.events) EXPECT_LE(e.kv.mod_revision, r.header_revision);
      if (!w.request.fragment) {
        EXPECT_FALSE(r.fragment);
      }
      pending_fragment = r.fragment;
      coverage.fragments += r.fragment;
      got.insert(got.end(), r.events.begin(), r.events.end());
    }
    ASSERT_GE(from, 0) << "no created response";
    const std::vector<Event> expected = Expected(all, w.request, from);
    coverage.events_checked += got.size();
    if (w.client_canceled || s.closed || compacted_at > 0) {
      ASSERT_LE(got.size(), expected.size());
      EXPECT_TRUE(std::equal(got.begin(), got.end(), expected.begin()))
          << "not a prefix of the history";
      if (compacted_at > 0) {
        const Revision last = got.empty() ? from - 1 : got.back().kv.mod_revision;
        EXPECT_LT(last + 1, compacted_at) << "cancelled although its next revision was kept";
      }
    } else {
      EXPECT_FALSE(pending_fragment);
      EXPECT_EQ(got.size(), expected.size());
      EXPECT_TRUE(got == expected) << "stream differs from the history";
      ++coverage.complete_watchers;
    }
  }
  streams.clear();
  hub.reset();
}

TEST(WatchRandomTest, EveryStreamEqualsTheHistoryOfItsRange) {
  Coverage coverage;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    RunSeed(seed, coverage);
    if (::testing::Test::HasFailure()) break;
  }
  std::printf(
      "300 seeds: %zu events checked, %zu watchers complete, %zu notifies left a watcher "
      "behind, %zu compaction cancels, %zu fragments, %zu progress responses\n",
      coverage.events_checked, coverage.complete_watchers, coverage.fell_behind,
      coverage.compaction_cancels, coverage.fragments, coverage.progress);
  EXPECT_GT(coverage.events_checked, 10000u);
  EXPECT_GT(coverage.complete_watchers, 2000u);
  EXPECT_GT(coverage.fell_behind, 100u);
  EXPECT_GT(coverage.compaction_cancels, 50u);
  EXPECT_GT(coverage.fragments, 50u);
  EXPECT_GT(coverage.progress, 50u);
  EXPECT_GT(coverage.unread_batches, 5000u);
}

}  // namespace
}  // namespace ballot::watch
