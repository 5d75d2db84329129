// Raft engine: seeded random runs (lost messages, partitions, restarts, compaction) checking
// election safety and state machine safety, then liveness after healing. A small in-process cousin
// of the simulator (tests/sim), to catch broken invariants in the engine itself.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "base/random.h"
#include "raft_harness.h"

namespace ballot::consensus::raft::testing {
namespace {

class RandomRun {
 public:
  RandomRun(uint64_t seed, bool pre_vote, bool check_quorum)
      : random_(seed), cluster_(5, [&](Config& cfg) {
          cfg.pre_vote = pre_vote;
          cfg.check_quorum = check_quorum;
          if (check_quorum && seed % 5 == 0) cfg.read_mode = ReadMode::kLease;
          cfg.max_message_bytes = 256;
          cfg.max_inflight_messages = 4;
          cfg.snapshot_chunk_bytes = 7;
          cfg.seed = seed * 31 + cfg.id;
        }) {}

  void Run(int steps) {
    cluster_.SetDropRule([this](const Message&) { return random_.Chance(drop_rate_); });
    for (int step = 0; step < steps; ++step) {
      Act();
      Check();
    }
    cluster_.Heal();
    cluster_.ClearDropRule();
    StopRemovedMembers();
    for (int i = 0; i < 300; ++i) {
      cluster_.TickAll();
      Check();
    }
    CheckConverged();
  }

 private:
  void Act() {
    const NodeId id = 1 + random_.Uniform(5);
    const uint64_t action = random_.Uniform(100);
    if (action < 60) {
      cluster_.Tick(id);
    } else if (action < 80) {
      if (cluster_.engine(id).soft_state().role == Role::kLeader) {
        (void)cluster_.engine(id).Propose("v" + std::to_string(next_value_++));
        cluster_.Stabilize();
      }
    } else if (action < 88) {
      cluster_.Heal();
      if (random_.Chance(0.5)) cluster_.Isolate(id);
      drop_rate_ = random_.Chance(0.5) ? 0.0 : 0.2;
    } else if (action < 90) {
      ChangeMembership(id);
    } else if (action < 93) {
      cluster_.Restart(id, cluster_.member(id).applied_index);
      cluster_.Stabilize();
    } else {
      Compact(id);
    }
  }

  // Removes a voter while more than three remain; brings removed members back as learners, and
  // promotes learners.
  void ChangeMembership(NodeId id) {
    const NodeId leader = cluster_.Leader();
    if (leader == kNoNode) return;
    const ConfState& conf = cluster_.engine(leader).conf_state();
    ConfChange cc{ConfChangeType::kRemove, id, ""};
    if (conf.learners.count(id) > 0) {
      cc.type = ConfChangeType::kAddVoter;
    } else if (!conf.Contains(id)) {
      cc.type = ConfChangeType::kAddLearner;
    } else if (conf.voters.size() <= 3 || id == leader) {
      return;
    }
    (void)cluster_.engine(leader).ProposeConfChange(cc);
    cluster_.Stabilize();
  }

  void Compact(NodeId id) {
    Member& m = cluster_.member(id);
    const Index applied = m.engine->applied_index();
    if (applied <= m.storage->GetSnapshot().meta.index) return;
    ASSERT_TRUE(m.storage
                    ->CreateSnapshot(applied, m.engine->conf_state(),
                                     "snapshot-at-" + std::to_string(applied))
                    .ok());
    ASSERT_TRUE(m.storage->Compact(applied).ok());
  }

  // A removed member may never learn of its removal and, thinking itself a voter, disrupt
  // elections (thesis 4.2.3; pre-vote and check quorum are the remedy). Hosts shut removed members
  // down; so does this run, going by the most advanced member's membership.
  void StopRemovedMembers() {
    NodeId most_advanced = 1;
    for (NodeId id : cluster_.ids()) {
      if (cluster_.engine(id).applied_index() > cluster_.engine(most_advanced).applied_index()) {
        most_advanced = id;
      }
    }
    const ConfState conf = cluster_.engine(most_advanced).conf_state();
    for (NodeId id : cluster_.ids()) {
      if (!conf.Contains(id)) cluster_.Stop(id);
    }
  }

  void Check() {
    for (NodeId id : cluster_.ids()) {
      const SoftState ss = cluster_.engine(id).soft_state();
      if (ss.role != Role::kLeader) continue;
      auto [it, inserted] = leaders_.emplace(ss.term, id);
      ASSERT_EQ(it->second, id) << "two leaders in term " << ss.term;
    }
    // State machine safety: no two members apply different entries at one index.
    for (NodeId id : cluster_.ids()) {
      for (const Entry& e : cluster_.member(id).applied) {
        auto [it, inserted] = applied_.emplace(e.index, e);
        ASSERT_EQ(it->second, e) << "member " << id << " applied a different entry at " << e.index;
      }
    }
  }

  void CheckConverged() {
    const NodeId leader = cluster_.Leader();
    ASSERT_NE(leader, kNoNode) << "no leader after healing";
    cluster_.Propose(leader, "final");
    cluster_.TickAll(3);
    const Index commit = cluster_.engine(leader).committed_index();
    const ConfState& conf = cluster_.engine(leader).conf_state();
    for (NodeId id : cluster_.ids()) {
      // A removed member hears nothing more; a stopped one was removed when we looked.
      if (!conf.Contains(id) || cluster_.member(id).down) continue;
      EXPECT_EQ(cluster_.engine(id).committed_index(), commit) << "member " << id;
      EXPECT_EQ(cluster_.member(id).applied_index, commit) << "member " << id;
    }
    EXPECT_GT(next_value_, 0);
  }

  Random random_;
  Cluster cluster_;
  double drop_rate_ = 0.0;
  int next_value_ = 0;
  std::map<Term, NodeId> leaders_;
  std::map<Index, Entry> applied_;
};

#ifndef RAFT_RANDOM_SEEDS
#define RAFT_RANDOM_SEEDS 24
#endif
#ifndef RAFT_FIRST
#define RAFT_FIRST 1
#endif
constexpr uint64_t kSeeds = RAFT_RANDOM_SEEDS;
constexpr int kSteps = 2000;

TEST(RaftRandom, SafetyAndLivenessUnderFaults) {
  for (uint64_t seed = RAFT_FIRST; seed <= kSeeds; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomRun run(seed, /*pre_vote=*/seed % 2 == 0, /*check_quorum=*/seed % 3 != 0);
    run.Run(kSteps);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace ballot::consensus::raft::testing
