// Ready::MustSync: a hard state whose only change is the commit index needs no sync (etcd's
// MustSync); a new term or vote, entries or a snapshot do. Both engines.
#include <gtest/gtest.h>

#include "consensus/engine.h"
#include "consensus/memory_storage.h"

namespace ballot::consensus {
namespace {

class MustSyncTest : public ::testing::TestWithParam<EngineKind> {};

TEST_P(MustSyncTest, OnlyTermVoteEntriesOrSnapshotNeedASync) {
  MemoryStorage storage;
  ConfState conf;
  conf.voters = {1};
  storage.SetInitialConfState(conf);
  Config config;
  config.id = 1;
  config.storage = &storage;
  auto engine = NewEngine(GetParam(), config);
  ASSERT_TRUE(engine.ok()) << engine.status().ToString();
  Engine& e = **engine;

  HardState durable = storage.InitialHardState();
  int commit_only = 0;
  int term_or_vote = 0;
  bool proposed = false;
  for (int round = 0; round < 200 && !(proposed && commit_only > 0); ++round) {
    e.Tick();
    if (!proposed && e.soft_state().role == Role::kLeader) {
      ASSERT_TRUE(e.Propose("x").ok());
      proposed = true;
    }
    while (e.HasReady()) {
      Ready rd = e.GetReady();
      if (rd.hard_state) {
        const bool changed =
            rd.hard_state->term != durable.term || rd.hard_state->vote != durable.vote;
        EXPECT_EQ(rd.hard_state_must_sync, changed);
        if (changed) ++term_or_vote;
        if (!changed && rd.entries.empty() && !rd.snapshot) {
          ++commit_only;
          EXPECT_FALSE(rd.MustSync());
        }
        durable = *rd.hard_state;
        storage.SetHardState(*rd.hard_state);
      }
      if (!rd.entries.empty()) {
        EXPECT_TRUE(rd.MustSync());
        ASSERT_TRUE(storage.Append(rd.entries).ok());
      }
      e.Advance();
    }
  }
  EXPECT_TRUE(proposed);
  EXPECT_GT(term_or_vote, 0);  // The election.
  EXPECT_GT(commit_only, 0);   // The commit of the proposal, after its entry was durable.
}

INSTANTIATE_TEST_SUITE_P(Engines, MustSyncTest,
                         ::testing::Values(EngineKind::kRaft, EngineKind::kMultiPaxos),
                         [](const auto& info) { return std::string(EngineKindName(info.param)); });

}  // namespace
}  // namespace ballot::consensus
