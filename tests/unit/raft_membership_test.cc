// Raft engine: single-server membership changes (thesis 4.1), applied at Advance().
#include <gtest/gtest.h>

#include <string>

#include "raft_harness.h"

namespace ballot::consensus::raft::testing {
namespace {

ConfChange Change(ConfChangeType type, NodeId node) { return ConfChange{type, node, ""}; }

void ProposeChange(Cluster& c, NodeId leader, ConfChange cc) {
  const Status st = c.engine(leader).ProposeConfChange(cc);
  ASSERT_TRUE(st.ok()) << st.ToString();
  c.Stabilize();
  c.Tick(leader);  // The heartbeat carries the commit to everyone, who then apply.
}

TEST(RaftMembership, AddLearnerCatchUpThenPromote) {
  Cluster c(3);
  c.Elect(1);
  for (int i = 0; i < 3; ++i) c.Propose(1, "e" + std::to_string(i));
  c.AddMember(4, ConfState{});  // A new member knows nothing until the leader reaches it.
  ProposeChange(c, 1, Change(ConfChangeType::kAddLearner, 4));
  const ConfState with_learner{{1, 2, 3}, {4}};
  for (NodeId id : {1, 2, 3, 4}) EXPECT_EQ(c.engine(id).conf_state(), with_learner) << id;
  EXPECT_EQ(c.AppliedData(4), c.AppliedData(1));
  EXPECT_EQ(c.engine(4).committed_index(), c.engine(1).committed_index());
  ASSERT_NE(c.raft(1).progress(4), nullptr);
  EXPECT_TRUE(c.raft(1).progress(4)->is_learner());

  // A learner never campaigns, even when it stops hearing from the leader.
  c.Isolate(4);
  const Term term = c.engine(4).soft_state().term;
  c.Tick(4, 100);
  EXPECT_EQ(c.engine(4).soft_state().term, term);
  EXPECT_EQ(c.engine(4).soft_state().role, Role::kFollower);
  c.Heal();

  // A learner does not count for commit: with both other voters cut off nothing commits.
  c.Cut(1, 2);
  c.Cut(1, 3);
  ASSERT_TRUE(c.engine(1).Propose("needs-voters").ok());
  c.Tick(1, 2);
  EXPECT_EQ(c.engine(4).last_index(), c.engine(1).last_index());       // Node 4 has it...
  EXPECT_LT(c.engine(1).committed_index(), c.engine(1).last_index());  // ...and it is not enough.
  c.Heal();
  c.Tick(1, 2);
  EXPECT_EQ(c.engine(1).committed_index(), c.engine(1).last_index());

  ProposeChange(c, 1, Change(ConfChangeType::kAddVoter, 4));
  const ConfState four_voters{{1, 2, 3, 4}, {}};
  for (NodeId id : {1, 2, 3, 4}) EXPECT_EQ(c.engine(id).conf_state(), four_voters) << id;
  EXPECT_FALSE(c.raft(1).progress(4)->is_learner());
  // Quorum is now 3 of 4: the leader and one other voter are not enough.
  c.Cut(1, 3);
  c.Cut(1, 4);
  ASSERT_TRUE(c.engine(1).Propose("needs-three").ok());
  c.Tick(1, 2);
  EXPECT_LT(c.engine(1).committed_index(), c.engine(1).last_index());
  c.Heal();
  c.Tick(1, 2);
  EXPECT_EQ(c.engine(1).committed_index(), c.engine(1).last_index());
}

TEST(RaftMembership, PromotedNewMemberCanLead) {
  // A member added with an empty ConfState learns the bootstrap membership from the leader's
  // first append, so once promoted it counts the right quorum and may campaign.
  Cluster c(3);
  c.Elect(1);
  c.AddMember(4, ConfState{});
  ProposeChange(c, 1, Change(ConfChangeType::kAddLearner, 4));
  ProposeChange(c, 1, Change(ConfChangeType::kAddVoter, 4));
  ASSERT_EQ(c.engine(4).conf_state().voters, (std::set<NodeId>{1, 2, 3, 4}));
  ASSERT_TRUE(c.engine(1).TransferLeadership(4).ok());
  c.Stabilize();
  EXPECT_EQ(c.Leader(), 4u);
  c.Propose(4, "from-4");
  c.TickAll();
  EXPECT_EQ(c.AppliedData(2).back(), "from-4");
}

TEST(RaftMembership, OneChangeAtATime) {
  Cluster c(3);
  c.AddMember(4, ConfState{});
  c.AddMember(5, ConfState{});
  // A new leader may not change membership before its no-op is applied.
  c.SetDropRule([](const Message& m) { return m.type == MessageType::kAppendResponse; });
  c.Elect(1);
  EXPECT_EQ(c.engine(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 4)).code(),
            StatusCode::kFailedPrecondition);
  c.ClearDropRule();
  c.Tick(1, 2);
  ASSERT_TRUE(c.engine(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 4)).ok());
  EXPECT_EQ(c.engine(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 5)).code(),
            StatusCode::kFailedPrecondition);
  c.Stabilize();
  c.Tick(1);
  EXPECT_TRUE(c.engine(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 5)).ok());
  EXPECT_TRUE(
      c.engine(2).ProposeConfChange(Change(ConfChangeType::kAddLearner, 6)).IsUnavailable());
}

TEST(RaftMembership, InvalidChangesAreRefused) {
  Cluster c(3);
  c.Elect(1);
  EXPECT_EQ(c.engine(1).ProposeConfChange(Change(ConfChangeType::kAddVoter, 2)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c.engine(1).ProposeConfChange(Change(ConfChangeType::kRemove, 7)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c.engine(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 0)).code(),
            StatusCode::kInvalidArgument);
  Cluster solo(1);
  solo.Elect(1);
  EXPECT_EQ(solo.engine(1).ProposeConfChange(Change(ConfChangeType::kRemove, 1)).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(c.engine(1).last_index(), 1u);  // Nothing was appended.
}

TEST(RaftMembership, RemoveVoter) {
  Cluster c(3);
  c.Elect(1);
  ProposeChange(c, 1, Change(ConfChangeType::kRemove, 3));
  const ConfState two{{1, 2}, {}};
  EXPECT_EQ(c.engine(1).conf_state(), two);
  EXPECT_EQ(c.engine(2).conf_state(), two);
  EXPECT_EQ(c.raft(1).progress(3), nullptr);
  // With node 3 gone, 1 and 2 are the quorum; node 3 no longer hears anything.
  c.ClearSent();
  c.Propose(1, "two");
  c.Tick(1);
  EXPECT_EQ(c.AppliedData(2).back(), "two");
  EXPECT_TRUE(c.SentOf(MessageType::kAppend, 1, 3).empty());
  EXPECT_TRUE(c.SentOf(MessageType::kHeartbeat, 1, 3).empty());
  // Now 2 of 2 are needed.
  c.Cut(1, 2);
  ASSERT_TRUE(c.engine(1).Propose("alone").ok());
  c.Tick(1, 2);
  EXPECT_LT(c.engine(1).committed_index(), c.engine(1).last_index());
}

TEST(RaftMembership, RemovedLeaderStepsDownAndNeverCampaigns) {
  Cluster c(3);
  c.Elect(1);
  ASSERT_TRUE(c.engine(1).ProposeConfChange(Change(ConfChangeType::kRemove, 1)).ok());
  c.Stabilize();
  // It handed leadership to a voter of the new configuration, then followed it.
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kFollower);
  EXPECT_EQ(c.engine(1).conf_state().voters, (std::set<NodeId>{2, 3}));
  EXPECT_FALSE(c.SentOf(MessageType::kTimeoutNow, 1).empty());
  c.ClearSent();
  c.TickAll(40);
  const NodeId leader = c.Leader();
  ASSERT_TRUE(leader == 2 || leader == 3);
  EXPECT_EQ(c.engine(leader).conf_state().voters, (std::set<NodeId>{2, 3}));
  EXPECT_TRUE(c.SentOf(MessageType::kPreVote, 1).empty());
  EXPECT_TRUE(c.SentOf(MessageType::kVote, 1).empty());
  c.Propose(leader, "after");
  c.TickAll();
  const NodeId other = leader == 2 ? 3 : 2;
  EXPECT_EQ(c.AppliedData(other).back(), "after");
}

// Two voters; the leader removes itself, applies the removal, appends more, and goes away before
// the other learns that the removal committed. The remaining voter still counts the old member in
// its quorum, and that member's longer log denies it a vote: only learning the commit index from
// the rejection lets it apply the removal and elect itself.
TEST(RaftMembership, RemainingVoterLearnsRemovalFromRejectedVote) {
  Cluster c(2);
  c.Elect(1);
  const Index removal = c.engine(1).last_index() + 1;
  // 2 receives the removal but nothing after it: not the entry 1 appends next, not the commit
  // index, not the TimeoutNow of the hand-off. Votes still flow.
  c.SetDropRule([&](const Message& m) {
    if (m.from != 1 || m.to != 2) return false;
    for (const auto& e : m.entries) {
      if (e.index > removal) return true;
    }
    return c.engine(2).last_index() >= removal && m.type != MessageType::kVoteResponse &&
           m.type != MessageType::kPreVoteResponse;
  });
  ASSERT_TRUE(c.engine(1).ProposeConfChange(Change(ConfChangeType::kRemove, 1)).ok());
  ASSERT_TRUE(c.engine(1).Propose("after the removal").ok());
  c.Stabilize();
  ASSERT_EQ(c.engine(1).applied_index(), removal);
  ASSERT_EQ(c.engine(1).conf_state().voters, (std::set<NodeId>{2}));
  ASSERT_GT(c.engine(1).last_index(), c.engine(2).last_index()) << "1 must deny 2 its vote";
  ASSERT_LT(c.engine(2).committed_index(), removal);
  c.TickAll(60);
  EXPECT_EQ(c.engine(2).conf_state().voters, (std::set<NodeId>{2}));
  EXPECT_EQ(c.Leader(), 2u);
}

TEST(RaftMembership, ConfStateFollowsAppliedIndex) {
  Cluster c(3);
  c.Elect(1);
  c.AddMember(4, ConfState{});
  // Committed but not yet applied: the conf state is unchanged until Advance().
  ASSERT_TRUE(c.engine(1).ProposeConfChange(Change(ConfChangeType::kAddLearner, 4)).ok());
  c.HandleReady(1);  // Leader persists; the change is not committed yet.
  EXPECT_EQ(c.engine(1).conf_state().learners.size(), 0u);
  c.Stabilize();
  EXPECT_EQ(c.engine(1).conf_state().learners, (std::set<NodeId>{4}));
}

TEST(RaftMembership, RestartReplaysAppliedChanges) {
  Cluster c(3);
  c.Elect(1);
  c.AddMember(4, ConfState{});
  ProposeChange(c, 1, Change(ConfChangeType::kAddLearner, 4));
  c.Restart(2, c.member(2).applied_index);
  EXPECT_EQ(c.engine(2).conf_state(), (ConfState{{1, 2, 3}, {4}}));
}

}  // namespace
}  // namespace ballot::consensus::raft::testing
