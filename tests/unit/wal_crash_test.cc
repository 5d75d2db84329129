// Crash tests: the WAL over FaultInjectionEnv, crashing at every step.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "wal/fault_injection_env.h"
#include "wal/wal.h"

namespace ballot::wal {
namespace {

using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;
using consensus::Index;
using consensus::Term;
using CrashMode = FaultInjectionEnv::CrashMode;

const Identity kIdentity{5, 2, "raft", kFormatVersion};
const std::string kDir = "/wal";

std::vector<Entry> Make(Index from, Index to, Term term) {
  std::vector<Entry> out;
  for (Index i = from; i <= to; ++i) {
    out.push_back(Entry{term, i, EntryType::kNormal, "entry-" + std::to_string(i)});
  }
  return out;
}

std::unique_ptr<Wal> MustOpen(FaultInjectionEnv* env, uint64_t segment_bytes = 4096) {
  auto wal = Wal::Open(env, kDir, WalOptions{segment_bytes}, kIdentity);
  EXPECT_TRUE(wal.ok()) << wal.status().ToString();
  return wal.ok() ? std::move(wal).value() : nullptr;
}

std::vector<Entry> All(const Wal& wal) {
  return *wal.Entries(wal.first_index(), wal.last_index() + 1, UINT64_MAX);
}

TEST(WalCrash, UnsyncedAppendIsGoneAfterACrash) {
  FaultInjectionEnv env;
  auto wal = MustOpen(&env);
  ASSERT_TRUE(wal->Save(nullptr, Make(1, 3, 1), true).ok());
  const HardState hs{1, 1, 3};
  ASSERT_TRUE(wal->Save(&hs, Make(4, 6, 1), false).ok());
  wal.reset();
  env.Crash(CrashMode::kDropUnsynced);
  wal = MustOpen(&env);
  EXPECT_EQ(All(*wal), Make(1, 3, 1));
  EXPECT_TRUE(wal->hard_state().IsEmpty());
}

TEST(WalCrash, SyncedAppendSurvivesACrash) {
  FaultInjectionEnv env;
  auto wal = MustOpen(&env);
  const HardState hs{1, 1, 3};
  ASSERT_TRUE(wal->Save(&hs, Make(1, 3, 1), true).ok());
  env.Crash(CrashMode::kDropUnsynced);
  wal = MustOpen(&env);
  EXPECT_EQ(All(*wal), Make(1, 3, 1));
  EXPECT_EQ(wal->hard_state(), hs);
}

TEST(WalCrash, CrashAtEveryStepOfAWorkloadKeepsAPrefixOfIt) {
  // Step k of the workload saves entry k (term 1, or 2 once overwritten) and hard state commit k-1.
  // Crash after each step, synced or not, torn or not: what survives is every synced step and a
  // prefix of the unsynced ones, and the hard state never covers a missing entry.
  for (int steps = 1; steps <= 40; ++steps) {
    for (CrashMode mode : {CrashMode::kDropUnsynced, CrashMode::kTearLastWrite}) {
      FaultInjectionEnv env(static_cast<uint64_t>(steps) * 2 + (mode == CrashMode::kTearLastWrite));
      Index synced = 0;
      {
        auto wal = MustOpen(&env, 1024);
        for (int k = 1; k <= steps; ++k) {
          const HardState hs{1, 1, static_cast<Index>(k - 1)};
          const bool sync = k % 3 == 0;
          ASSERT_TRUE(wal->Save(&hs, Make(k, k, 1), sync).ok());
          if (sync) synced = static_cast<Index>(k);
        }
      }
      env.Crash(mode);
      auto wal = MustOpen(&env, 1024);
      ASSERT_NE(wal, nullptr) << "steps " << steps;
      EXPECT_GE(wal->last_index(), synced) << "steps " << steps;
      EXPECT_EQ(All(*wal), Make(1, wal->last_index(), 1));
      EXPECT_LE(wal->hard_state().commit, wal->last_index());
      // And the recovered log takes new writes.
      ASSERT_TRUE(
          wal->Save(nullptr, Make(wal->last_index() + 1, wal->last_index() + 1, 2), true).ok());
    }
  }
}

TEST(WalCrash, FailedSyncStopsTheWal) {
  FaultInjectionEnv env;
  auto wal = MustOpen(&env);
  ASSERT_TRUE(wal->Save(nullptr, Make(1, 2, 1), true).ok());
  env.SetSyncError(true);
  Status failed = wal->Save(nullptr, Make(3, 3, 1), true);
  ASSERT_FALSE(failed.ok());
  EXPECT_NE(failed.message().find("Input/output error"), std::string::npos) << failed.ToString();
  env.SetSyncError(false);
  // Even with the disk healthy again, nothing more is accepted: the pages may be lost.
  EXPECT_FALSE(wal->Save(nullptr, Make(4, 4, 1), false).ok());
  EXPECT_FALSE(wal->Sync().ok());
  EXPECT_FALSE(wal->SaveSnapshot({1, 1, {}}).ok());
  EXPECT_EQ(wal->Sync().code(), failed.code());
  wal.reset();
  env.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ(All(*MustOpen(&env)), Make(1, 2, 1));
}

TEST(WalCrash, GroupCommitSharesFdatasyncAndLosesNothingAcknowledged) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50;
  FaultInjectionEnv env;
  auto wal = MustOpen(&env, 64 << 10);
  env.SetSyncDelay(200);
  // Entries must be contiguous, so threads take turns appending under a lock and sync apart;
  // each records the highest index whose Sync returned OK.
  std::mutex append_mu;
  Index next = 1;
  std::atomic<Index> acknowledged{0};
  std::atomic<uint64_t> sync_calls{0};
  const uint64_t syncs_before = env.sync_count();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        Index mine;
        {
          std::lock_guard lock(append_mu);
          mine = next++;
          ASSERT_TRUE(wal->Save(nullptr, Make(mine, mine, 1), false).ok());
        }
        ASSERT_TRUE(wal->Sync().ok());
        sync_calls.fetch_add(1);
        Index seen = acknowledged.load();
        while (seen < mine && !acknowledged.compare_exchange_weak(seen, mine)) {
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const uint64_t fdatasyncs = env.sync_count() - syncs_before;
  EXPECT_EQ(sync_calls.load(), static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LT(fdatasyncs, sync_calls.load()) << "group commit shares fdatasync";
  // Appends not yet synced by anyone may be lost; every acknowledged one must not be.
  ASSERT_TRUE(wal->Save(nullptr, Make(next, next + 4, 1), false).ok());
  wal.reset();
  env.Crash(CrashMode::kDropUnsynced);
  wal = MustOpen(&env, 64 << 10);
  EXPECT_GE(wal->last_index(), acknowledged.load());
  EXPECT_EQ(All(*wal), Make(1, wal->last_index(), 1));
}

TEST(WalCrash, RollOverUnderConcurrentSyncsKeepsEverything) {
  FaultInjectionEnv env;
  auto wal = MustOpen(&env, 1024);
  std::atomic<bool> stop{false};
  std::thread syncer([&] {
    while (!stop.load()) ASSERT_TRUE(wal->Sync().ok());
  });
  for (Index i = 1; i <= 300; ++i) ASSERT_TRUE(wal->Save(nullptr, Make(i, i, 1), i % 7 == 0).ok());
  stop.store(true);
  syncer.join();
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_GT(wal->SegmentNames().size(), 3u);
  wal.reset();
  env.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ(All(*MustOpen(&env, 1024)), Make(1, 300, 1));
}

TEST(WalCrash, AnOverwriteSurvivesWholeOrNotAtAll) {
  // A Paxos acceptor rewrites accepted slots 3..6 under a new ballot. Whatever the crash tears,
  // recovery must give the old slots 3..6 or the new ones, never the new 3 with 4..6 cut off.
  for (uint64_t seed = 1; seed <= 60; ++seed) {
    FaultInjectionEnv env(seed);
    {
      auto wal = MustOpen(&env);
      ASSERT_TRUE(wal->Save(nullptr, Make(1, 6, 1), true).ok());
      ASSERT_TRUE(wal->Save(nullptr, Make(3, 6, 2), false).ok());
    }
    env.Crash(CrashMode::kTearLastWrite);
    auto wal = MustOpen(&env);
    std::vector<Entry> old_log = Make(1, 6, 1);
    std::vector<Entry> new_log = Make(1, 2, 1);
    for (const Entry& e : Make(3, 6, 2)) new_log.push_back(e);
    const std::vector<Entry> got = All(*wal);
    EXPECT_TRUE(got == old_log || got == new_log) << "seed " << seed << ": " << got.size();
  }
}

TEST(WalCrash, EntryBatchDecodingRejectsDamage) {
  std::string good = EncodeEntryBatch(Make(3, 5, 2));
  ASSERT_TRUE(DecodeEntryBatch(good).ok());
  EXPECT_EQ(*DecodeEntryBatch(good), Make(3, 5, 2));
  EXPECT_FALSE(DecodeEntryBatch(good.substr(0, good.size() - 1)).ok());
  EXPECT_FALSE(DecodeEntryBatch(good + "x").ok());
  EXPECT_FALSE(DecodeEntryBatch(std::string(4, '\0')).ok());  // Zero entries.
  std::string gap =
      EncodeEntryBatch(Make(3, 3, 2)).substr(4) + EncodeEntryBatch(Make(5, 5, 2)).substr(4);
  gap = std::string("\x02\0\0\0", 4) + gap;
  EXPECT_FALSE(DecodeEntryBatch(gap).ok());        // Not contiguous.
  for (uint64_t seed = 1; seed <= 2000; ++seed) {  // Random damage never crashes.
    std::string bad = good;
    bad[seed % bad.size()] = static_cast<char>(seed * 7919);
    (void)DecodeEntryBatch(bad.substr(0, bad.size() - seed % 5));
  }
}

}  // namespace
}  // namespace ballot::wal
