// Raft engine: elections, replication, commit, persistence rule, restart, reads, transfer.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "raft_harness.h"

namespace ballot::consensus::raft::testing {
namespace {

Cluster::Tweak NoPreVoteNoCheckQuorum() {
  return [](Config& c) {
    c.pre_vote = false;
    c.check_quorum = false;
  };
}

TEST(RaftElection, SingleNodeElectsItselfAndCommits) {
  Cluster c(1);
  c.Elect(1);
  EXPECT_EQ(c.engine(1).soft_state().term, 1u);
  c.Propose(1, "a");
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>{"a"});
  // The no-op at 1, "a" at 2, both committed and applied.
  EXPECT_EQ(c.engine(1).committed_index(), 2u);
  EXPECT_EQ(c.engine(1).applied_index(), 2u);
  EXPECT_EQ(c.member(1).applied.front().type, EntryType::kNoop);
}

TEST(RaftElection, ThreeNodesElectReplicateAndCommit) {
  Cluster c(3);
  c.Elect(1);
  for (NodeId id : {2, 3}) {
    EXPECT_EQ(c.engine(id).soft_state().leader, 1u);
    EXPECT_EQ(c.engine(id).soft_state().role, Role::kFollower);
  }
  c.Propose(1, "x");
  c.Propose(1, "y");
  c.TickAll();  // A heartbeat carries the final commit index to followers.
  for (NodeId id : {1, 2, 3}) {
    EXPECT_EQ(c.AppliedData(id), (std::vector<std::string>{"x", "y"})) << "member " << id;
    EXPECT_EQ(c.engine(id).committed_index(), 3u);
    EXPECT_EQ(c.engine(id).TermAt(3), std::optional<Term>(1));
  }
}

TEST(RaftElection, ProposeOnFollowerIsUnavailable) {
  Cluster c(3);
  c.Elect(1);
  EXPECT_TRUE(c.engine(2).Propose("x").IsUnavailable());
}

TEST(RaftElection, PreVoteKeepsPartitionedNodeFromRaisingTerm) {
  Cluster c(3);
  c.Elect(1);
  const Term term = c.engine(1).soft_state().term;
  c.Isolate(3);
  c.Tick(3, 100);
  EXPECT_EQ(c.engine(3).soft_state().term, term);
  EXPECT_EQ(c.engine(3).soft_state().role, Role::kPreCandidate);
  c.Heal();
  c.TickAll(3);
  EXPECT_EQ(c.Leader(), 1u);
  EXPECT_EQ(c.engine(1).soft_state().term, term);
  EXPECT_EQ(c.engine(3).soft_state().leader, 1u);
}

TEST(RaftElection, WithoutPreVoteAPartitionedNodeRaisesItsTerm) {
  // The control for the test above: the same partition without pre-vote does raise the term.
  Cluster c(3, NoPreVoteNoCheckQuorum());
  c.Elect(1);
  c.Isolate(3);
  c.Tick(3, 100);
  EXPECT_GT(c.engine(3).soft_state().term, c.engine(1).soft_state().term);
}

TEST(RaftElection, CheckQuorumMakesIsolatedLeaderStepDown) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(1);
  // The followers answered during the first election timeout, so the first check passes; the
  // second, an election timeout later, finds nobody.
  c.Tick(1, 19);
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kLeader);
  c.Tick(1, 1);
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kFollower);
  EXPECT_EQ(c.engine(1).soft_state().leader, kNoNode);
}

TEST(RaftElection, WithoutCheckQuorumIsolatedLeaderStays) {
  Cluster c(3, NoPreVoteNoCheckQuorum());
  c.Elect(1);
  c.Isolate(1);
  c.Tick(1, 50);
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kLeader);
}

TEST(RaftElection, LeaderStickinessIgnoresHigherTermVotes) {
  // Node 3 cannot hear the leader but can reach node 2; without pre-vote it campaigns with a
  // higher term. Node 2 still hears the leader and ignores it, without adopting the term.
  Cluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  c.Elect(1);
  const Term term = c.engine(1).soft_state().term;
  c.Cut(1, 3);
  for (int i = 0; i < 30; ++i) {
    c.Tick(1);
    c.Tick(2);
    c.Tick(3);
  }
  EXPECT_GT(c.engine(3).soft_state().term, term);
  EXPECT_EQ(c.engine(2).soft_state().term, term);
  EXPECT_EQ(c.engine(2).soft_state().leader, 1u);
  EXPECT_EQ(c.engine(2).hard_state().vote, 1u);  // Its vote of the leader's term, unchanged.
  EXPECT_EQ(c.Leader(), 1u);
  for (const Message& m : c.SentOf(MessageType::kVoteResponse, 2, 3)) {
    EXPECT_TRUE(m.reject) << "node 2 granted a vote while following a live leader";
  }
}

TEST(RaftElection, NoStickinessWithoutCheckQuorum) {
  Cluster c(3, NoPreVoteNoCheckQuorum());
  c.Elect(1);
  const Term term = c.engine(1).soft_state().term;
  c.Cut(1, 3);
  for (int i = 0; i < 30; ++i) c.Tick(3);
  EXPECT_GT(c.engine(2).soft_state().term, term);  // Node 2 adopted the higher term.
}

TEST(RaftElection, StaleLeaderStepsDownOnHigherTerm) {
  Cluster c(3, NoPreVoteNoCheckQuorum());
  c.Elect(1);
  c.Isolate(1);
  c.Elect(2);
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kLeader);  // It has not heard yet.
  c.Heal();
  c.Tick(2);
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kFollower);
  EXPECT_EQ(c.engine(1).soft_state().leader, 2u);
  EXPECT_EQ(c.engine(1).soft_state().term, c.engine(2).soft_state().term);
}

TEST(RaftElection, PartitionedHighTermNodeDoesNotBlockClusterForever) {
  // Without pre-vote but with check quorum, a node that raised its term while cut off rejoins:
  // the cluster must elect a leader again (etcd's lower-term handling).
  Cluster c(3, [](Config& cfg) { cfg.pre_vote = false; });
  c.Elect(1);
  c.Isolate(3);
  c.Tick(3, 60);
  c.Heal();
  c.TickAll(60);
  const NodeId leader = c.Leader();
  ASSERT_NE(leader, kNoNode);
  EXPECT_GE(c.engine(leader).soft_state().term, c.engine(3).soft_state().term);
  c.Propose(leader, "after");
  c.TickAll();
  EXPECT_EQ(c.AppliedData(3).back(), "after");
}

TEST(RaftStep, RejectsMisroutedAndForeignMessages) {
  Cluster c(3);
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = 2;
  m.to = 3;
  m.term = 1;
  EXPECT_EQ(c.engine(1).Step(m).code(), StatusCode::kInvalidArgument);
  m.to = 1;
  m.from = 1;
  EXPECT_EQ(c.engine(1).Step(m).code(), StatusCode::kInvalidArgument);
  m.from = 2;
  m.type = MessageType::kPrepare;
  EXPECT_EQ(c.engine(1).Step(m).code(), StatusCode::kInvalidArgument);
  m.type = MessageType::kAppend;
  m.entries = {Entry{1, 5, EntryType::kNormal, "gap"}};  // Not contiguous with index 0.
  EXPECT_EQ(c.engine(1).Step(m).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.engine(1).last_index(), 0u);
}

// Paper figure 8: an entry of an older term replicated on a majority is not committed by
// counting, because a later leader may still overwrite it.
TEST(RaftCommit, OldTermEntryIsNotCommittedByCounting) {
  Cluster c(3, [](Config& cfg) {
    cfg.check_quorum = false;
    cfg.max_message_bytes = 1;  // One entry per append, so single entries can be dropped.
  });
  c.Elect(1);  // Term 1; the no-op at 1 is committed everywhere.
  ASSERT_EQ(c.engine(3).committed_index(), 1u);
  // Term 1: "old" at index 2 reaches only node 1.
  c.Isolate(1);
  ASSERT_TRUE(c.engine(1).Propose("old").ok());
  c.Stabilize();
  // Term 2: node 2 leads with nodes 2 and 3; its no-op at 2 stays on node 2.
  c.Heal();
  c.Isolate(1);
  c.SetDropRule([](const Message& m) { return m.type == MessageType::kAppend && m.from == 2; });
  c.Elect(2);
  ASSERT_EQ(c.engine(2).soft_state().term, 2u);
  ASSERT_EQ(c.engine(2).TermAt(2), std::optional<Term>(2));
  // Node 1 hears a heartbeat of term 2 and steps down (keeping "old").
  c.Heal();
  c.Cut(2, 3);
  c.Tick(2);
  ASSERT_EQ(c.engine(1).soft_state().role, Role::kFollower);
  ASSERT_EQ(c.engine(1).TermAt(2), std::optional<Term>(1));
  // Term 3: node 1 leads with node 3 and replicates "old" (term 1) at index 2 to it, but not its
  // own no-op at 3.
  c.Heal();
  c.Isolate(2);
  // The first append (which node 3 rejects: it lacks index 2) passes, later ones with term-3
  // entries are lost.
  int term3_appends = 0;
  c.SetDropRule([&term3_appends](const Message& m) {
    if (m.type != MessageType::kAppend || m.from != 1) return false;
    const bool term3 =
        std::any_of(m.entries.begin(), m.entries.end(), [](const Entry& e) { return e.term == 3; });
    return term3 && ++term3_appends > 1;
  });
  c.Elect(1);
  ASSERT_EQ(c.engine(1).soft_state().term, 3u);
  c.Tick(1, 3);
  ASSERT_EQ(c.engine(3).TermAt(2), std::optional<Term>(1));  // "old" is on a majority...
  EXPECT_EQ(c.engine(1).committed_index(), 1u);              // ...and still not committed.
  // Node 2 can still win (its last term, 2, beats node 3's, 1) and overwrite index 2. First it
  // learns term 3 from node 3's answer to its stale heartbeat.
  c.ClearDropRule();
  c.Heal();
  c.Isolate(1);
  c.Tick(2);
  ASSERT_EQ(c.engine(2).soft_state().role, Role::kFollower);
  c.Elect(2);
  c.Tick(2, 3);
  EXPECT_EQ(c.engine(3).TermAt(2), std::optional<Term>(2));
  for (NodeId id : {1, 2, 3}) {
    for (const Entry& e : c.member(id).applied) EXPECT_NE(e.data, "old") << "member " << id;
  }
  // Once an entry of its own term commits, earlier ones commit with it (node 1 catches up).
  c.Heal();
  c.Propose(2, "new");
  c.TickAll(2);
  EXPECT_EQ(c.AppliedData(1), std::vector<std::string>{"new"});
}

TEST(RaftReplication, FastBacktrackingSkipsDivergentTerm) {
  Cluster c(3, NoPreVoteNoCheckQuorum());
  c.Elect(1);
  // Node 1 (term 1, cut off) appends 100 entries nobody else gets.
  c.Isolate(1);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(c.engine(1).Propose("stale" + std::to_string(i)).ok());
  c.Stabilize();
  ASSERT_EQ(c.engine(1).last_index(), 101u);
  // Nodes 2 and 3 go on in term 2 with 50 entries; node 3 then leads term 3.
  c.Elect(2);
  for (int i = 0; i < 50; ++i) c.Propose(2, "fresh" + std::to_string(i));
  c.Elect(3);
  c.Tick(3);
  ASSERT_GT(c.engine(3).last_index(), 50u);
  c.Heal();
  c.ClearSent();
  c.Tick(3, 3);
  // The probe at node 3's last index is rejected; the hint (node 1's term there, 1) lets node 3
  // skip all of its term-2 entries at once instead of one per round trip.
  const auto replies = c.SentOf(MessageType::kAppendResponse, 1, 3);
  const auto rejects =
      std::count_if(replies.begin(), replies.end(), [](const Message& m) { return m.reject; });
  EXPECT_GE(rejects, 1);
  EXPECT_LE(rejects, 2);
  EXPECT_EQ(c.engine(1).last_index(), c.engine(3).last_index());
  EXPECT_EQ(c.engine(1).TermAt(2), c.engine(3).TermAt(2));
  EXPECT_EQ(c.AppliedData(1), c.AppliedData(3));
}

TEST(RaftReplication, BatchesRespectMaxMessageBytes) {
  Cluster c(3, [](Config& cfg) { cfg.max_message_bytes = 200; });
  c.Elect(1);
  c.Isolate(3);
  const std::string data(50, 'd');  // 74 bytes an entry: two fit in 200, three do not.
  for (int i = 0; i < 10; ++i) c.Propose(1, data);
  ASSERT_TRUE(c.engine(1).Propose(std::string(500, 'b')).ok());  // Alone above the limit.
  c.Stabilize();
  c.Heal();
  c.ClearSent();
  c.Tick(1, 3);
  const auto appends = c.SentOf(MessageType::kAppend, 1, 3);
  size_t max_entries = 0;
  bool big_sent_alone = false;
  for (const Message& m : appends) {
    uint64_t bytes = 0;
    for (const Entry& e : m.entries) bytes += e.SizeBytes();
    if (m.entries.size() > 1) {
      EXPECT_LE(bytes, 200u);
    }
    max_entries = std::max(max_entries, m.entries.size());
    if (m.entries.size() == 1 && m.entries[0].data.size() == 500) big_sent_alone = true;
  }
  EXPECT_EQ(max_entries, 2u);
  EXPECT_TRUE(big_sent_alone);
  EXPECT_EQ(c.engine(3).last_index(), c.engine(1).last_index());
}

TEST(RaftReplication, InflightWindowIsBounded) {
  Cluster c(3, [](Config& cfg) { cfg.max_inflight_messages = 3; });
  c.Elect(1);
  c.Propose(1, "warm");  // Node 2 is in replicate state now.
  ASSERT_EQ(c.raft(1).progress(2)->state(), ProgressState::kReplicate);
  c.SetDropRule(
      [](const Message& m) { return m.type == MessageType::kAppendResponse && m.from == 2; });
  c.ClearSent();
  for (int i = 0; i < 10; ++i) c.Propose(1, "p" + std::to_string(i));
  auto with_entries = [&](NodeId to) {
    const auto appends = c.SentOf(MessageType::kAppend, 1, to);
    return std::count_if(appends.begin(), appends.end(),
                         [](const Message& m) { return !m.entries.empty(); });
  };
  EXPECT_EQ(with_entries(2), 3);
  EXPECT_EQ(with_entries(3), 10);
  EXPECT_EQ(c.engine(3).last_index(), c.engine(1).last_index());
  EXPECT_LT(c.engine(2).last_index(), c.engine(1).last_index());
  // Acknowledgements resume replication.
  c.ClearDropRule();
  c.TickAll(3);
  EXPECT_EQ(c.engine(2).last_index(), c.engine(1).last_index());
}

TEST(RaftReplication, ProbeStateSendsOneAppendAtATime) {
  Cluster c(3);
  c.Isolate(2);
  c.Elect(1);
  for (int i = 0; i < 5; ++i) c.Propose(1, "p");
  // Node 2 never answered, so it is still probed: one append until a response arrives.
  EXPECT_EQ(c.raft(1).progress(2)->state(), ProgressState::kProbe);
  EXPECT_EQ(c.SentOf(MessageType::kAppend, 1, 2).size(), 1u);
  EXPECT_GE(c.SentOf(MessageType::kAppend, 1, 3).size(), 6u);  // Node 3 is pipelined.
}

TEST(RaftReplication, UncommittedBytesAreBounded) {
  Cluster c(3, [](Config& cfg) { cfg.max_uncommitted_bytes = 100; });
  c.Elect(1);
  c.Isolate(1);
  EXPECT_TRUE(c.engine(1).Propose(std::string(60, 'a')).ok());
  EXPECT_EQ(c.engine(1).Propose(std::string(60, 'b')).code(), StatusCode::kResourceExhausted);
  c.Heal();
  c.Tick(1, 2);  // "a" commits and is applied: room again.
  EXPECT_TRUE(c.engine(1).Propose(std::string(60, 'b')).ok());
}

TEST(RaftCommit, LeaderCountsItselfOnlyOnceDurable) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(1);
  ASSERT_TRUE(c.engine(1).Propose("x").ok());
  // Before the host persists the entry, the leader's own match has not moved.
  EXPECT_LT(c.raft(1).progress(1)->match(), c.engine(1).last_index());
  c.Stabilize();
  EXPECT_EQ(c.raft(1).progress(1)->match(), c.engine(1).last_index());
  // A follower's acknowledgement arriving before our own write is durable does not commit.
  Cluster d(3);
  d.Elect(1);
  ASSERT_TRUE(d.engine(1).Propose("y").ok());
  const Index index = d.engine(1).last_index();
  Message ack;
  ack.type = MessageType::kAppendResponse;
  ack.from = 2;
  ack.to = 1;
  ack.term = d.engine(1).soft_state().term;
  ack.index = index;
  ASSERT_TRUE(d.engine(1).Step(ack).ok());
  EXPECT_LT(d.engine(1).committed_index(), index);
  d.HandleReady(1);  // Persist: now leader + node 2 form a quorum.
  EXPECT_EQ(d.engine(1).committed_index(), index);
}

TEST(RaftPersistence, VotesAreDurableBeforeVoteResponsesLeave) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(1);
  c.Elect(2);
  int vote_responses = 0;
  for (const Sent& s : c.sent()) {
    const MessageType t = s.message.type;
    if (t == MessageType::kVote || t == MessageType::kPreVote ||
        t == MessageType::kAppendResponse || t == MessageType::kHeartbeatResponse) {
      EXPECT_TRUE(s.after_persist) << s.message.ToString();
    }
    if (t == MessageType::kAppend || t == MessageType::kHeartbeat) {
      EXPECT_FALSE(s.after_persist) << s.message.ToString();
    }
    if (t != MessageType::kVoteResponse && t != MessageType::kPreVoteResponse) continue;
    ++vote_responses;
    EXPECT_TRUE(s.after_persist) << s.message.ToString();
    if (t == MessageType::kVoteResponse && !s.message.reject) {
      ASSERT_TRUE(s.ready_hard_state.has_value());
      EXPECT_EQ(s.ready_hard_state->vote, s.message.to);
      EXPECT_EQ(s.ready_hard_state->term, s.message.term);
    }
  }
  EXPECT_GE(vote_responses, 4);
  // And the durable hard state of the voter names the vote.
  EXPECT_EQ(c.member(3).storage->InitialHardState().vote, 2u);
}

TEST(RaftPersistence, HardStateReportedWhenCommitChanges) {
  Cluster c(3);
  c.Elect(1);
  c.Propose(1, "x");
  c.TickAll();
  EXPECT_EQ(c.member(2).storage->InitialHardState().commit, c.engine(1).committed_index());
  EXPECT_EQ(c.member(2).storage->InitialHardState().term, c.engine(1).soft_state().term);
}

TEST(RaftPersistence, CommittedEntriesNeverBeyondDurableCommit) {
  Cluster c(3);
  c.Elect(1);
  for (int i = 0; i < 5; ++i) c.Propose(1, "e");
  c.TickAll();
  for (NodeId id : {1, 2, 3}) {
    // The commit index the host has made durable so far, Ready by Ready.
    Index commit = 0;
    Index handed_out = 0;
    for (const Ready& rd : c.member(id).readies) {
      if (rd.hard_state) commit = rd.hard_state->commit;
      for (const Entry& e : rd.committed_entries) {
        EXPECT_LE(e.index, commit) << "member " << id;
        handed_out = e.index;
      }
    }
    EXPECT_EQ(handed_out, 6u) << "member " << id;
  }
}

TEST(RaftRestart, ResumesFromStorageWithoutReapplying) {
  Cluster c(3);
  c.Elect(1);
  for (int i = 0; i < 5; ++i) c.Propose(1, "e" + std::to_string(i));
  c.TickAll();
  const Index applied = c.member(2).applied_index;
  ASSERT_EQ(applied, 6u);
  const size_t before = c.member(2).applied.size();
  c.Restart(2, applied);
  EXPECT_EQ(c.engine(2).applied_index(), applied);
  EXPECT_EQ(c.engine(2).committed_index(), applied);
  EXPECT_EQ(c.engine(2).hard_state(), c.member(2).storage->InitialHardState());
  c.TickAll(3);
  EXPECT_EQ(c.member(2).applied.size(), before);  // Nothing handed out twice.
  c.Propose(1, "after");
  c.TickAll();
  EXPECT_EQ(c.AppliedData(2).back(), "after");
  EXPECT_EQ(c.member(2).applied.size(), before + 1);
}

TEST(RaftRestart, HandsOutFromHostAppliedIndex) {
  Cluster c(3);
  c.Elect(1);
  for (int i = 0; i < 5; ++i) c.Propose(1, "e" + std::to_string(i));
  c.TickAll();
  // The host's state machine had applied only up to 3 when it crashed.
  c.Restart(2, 3);
  c.member(2).applied.clear();
  c.TickAll();
  ASSERT_FALSE(c.member(2).applied.empty());
  EXPECT_EQ(c.member(2).applied.front().index, 4u);
  EXPECT_EQ(c.member(2).applied.back().index, 6u);
}

TEST(RaftRestart, RestartedLeaderRecoversTermAndLog) {
  Cluster c(1);
  c.Elect(1);
  c.Propose(1, "a");
  const Term term = c.engine(1).soft_state().term;
  c.Restart(1, c.member(1).applied_index);
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kFollower);
  EXPECT_EQ(c.engine(1).hard_state().term, term);
  EXPECT_EQ(c.engine(1).hard_state().vote, 1u);
  EXPECT_EQ(c.engine(1).last_index(), 2u);
  c.Elect(1);
  c.Propose(1, "b");
  EXPECT_EQ(c.AppliedData(1), (std::vector<std::string>{"a", "b"}));
}

TEST(RaftReadIndex, WaitsForOwnTermCommitThenQuorum) {
  Cluster c(3);
  c.Elect(1);
  c.Propose(1, "x");
  // Node 2 leads term 2, but its no-op does not commit yet (acks are lost).
  c.Isolate(1);
  c.SetDropRule([](const Message& m) { return m.type == MessageType::kAppendResponse; });
  c.Elect(2);
  ASSERT_EQ(c.engine(2).soft_state().role, Role::kLeader);
  const Index old_commit = c.engine(2).committed_index();
  ASSERT_LT(old_commit, c.engine(2).last_index());
  ASSERT_TRUE(c.engine(2).ReadIndex("r1").ok());
  c.Tick(2, 3);
  EXPECT_TRUE(c.member(2).reads.empty()) << "answered before an entry of its term committed";
  c.ClearDropRule();
  c.Tick(2, 2);
  ASSERT_EQ(c.member(2).reads.size(), 1u);
  EXPECT_EQ(c.member(2).reads[0].context, "r1");
  EXPECT_EQ(c.member(2).reads[0].index, c.engine(2).last_index());  // Includes the no-op.
  EXPECT_GT(c.member(2).reads[0].index, old_commit);
}

TEST(RaftReadIndex, NeedsQuorumRound) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(1);
  ASSERT_TRUE(c.engine(1).ReadIndex("r").ok());
  c.Tick(1, 5);
  EXPECT_TRUE(c.member(1).reads.empty()) << "read answered without a quorum";
  c.Heal();
  c.Tick(1);
  ASSERT_EQ(c.member(1).reads.size(), 1u);
  EXPECT_EQ(c.member(1).reads[0].index, c.engine(1).committed_index());
}

TEST(RaftReadIndex, SingleVoterAnswersAtOnce) {
  Cluster c(1);
  c.Elect(1);
  ASSERT_TRUE(c.engine(1).ReadIndex("solo").ok());
  c.Stabilize();
  ASSERT_EQ(c.member(1).reads.size(), 1u);
  EXPECT_EQ(c.member(1).reads[0].index, 1u);
}

TEST(RaftReadIndex, FollowerForwardsToLeader) {
  Cluster c(3);
  EXPECT_TRUE(c.engine(2).ReadIndex("none").IsUnavailable());
  c.Elect(1);
  c.Propose(1, "x");
  ASSERT_TRUE(c.engine(2).ReadIndex("f").ok());
  c.Stabilize();
  ASSERT_EQ(c.member(2).reads.size(), 1u);
  EXPECT_EQ(c.member(2).reads[0].context, "f");
  EXPECT_EQ(c.member(2).reads[0].index, c.engine(1).committed_index());
  EXPECT_TRUE(c.member(1).reads.empty());
  // The forwarded request waited for persistence; the leader's answer did not.
  for (const Sent& s : c.sent()) {
    if (s.message.type == MessageType::kReadIndex) {
      EXPECT_TRUE(s.after_persist);
    }
    if (s.message.type == MessageType::kReadIndexResponse) {
      EXPECT_FALSE(s.after_persist);
    }
  }
}

TEST(RaftReadIndex, LeaseAnswersWithoutRoundOnlyWhileLeaseHolds) {
  Cluster c(3, [](Config& cfg) {
    cfg.read_mode = ReadMode::kLease;
    cfg.lease_drift_ticks = 2;
  });
  c.TickAll(10);  // Past the start-up stickiness; someone may have been elected meanwhile.
  for (int i = 0; i < 50 && c.Leader() == kNoNode; ++i) c.TickAll();
  const NodeId leader = c.Leader();
  ASSERT_NE(leader, kNoNode);
  c.Tick(leader, 2);  // A heartbeat round acknowledged by a quorum starts the lease.
  c.Isolate(leader);
  ASSERT_TRUE(c.engine(leader).ReadIndex("lease").ok());
  c.Stabilize();
  ASSERT_EQ(c.member(leader).reads.size(), 1u) << "no lease read while the lease holds";
  // The lease lasts election_ticks - drift = 8 ticks from the round that started it.
  c.Tick(leader, 8);
  ASSERT_EQ(c.engine(leader).soft_state().role, Role::kLeader);
  ASSERT_TRUE(c.engine(leader).ReadIndex("expired").ok());
  c.Stabilize();
  EXPECT_EQ(c.member(leader).reads.size(), 1u) << "lease read after the lease expired";
}

Cluster::Tweak LeaseReads(bool pre_vote) {
  return [pre_vote](Config& cfg) {
    cfg.read_mode = ReadMode::kLease;
    cfg.lease_drift_ticks = 2;
    cfg.pre_vote = pre_vote;
  };
}

// Makes `id` the leader by a leadership transfer from whoever leads first: with lease reads,
// followers that just started stick to no one yet refuse votes, so waiting for a leader and then
// transferring works with and without pre-vote.
void LeadByTransfer(Cluster& c, NodeId id) {
  for (int i = 0; i < 60 && c.Leader() == kNoNode; ++i) c.TickAll();
  const NodeId leader = c.Leader();
  ASSERT_NE(leader, kNoNode);
  if (leader != id) {
    ASSERT_TRUE(c.engine(leader).TransferLeadership(id).ok());
    c.Stabilize();
  }
  ASSERT_TRUE(c.LeadsHighestTerm(id));
}

// A TimeoutNow outlives the transfer that sent it: delivered after the leader abandoned the
// transfer, it makes the target campaign past the followers' stickiness. The leader must not have
// renewed its lease in that term meanwhile, or it serves reads while another member leads.
TEST(RaftLease, NoLeaseAfterTimeoutNowWasSentInTheTerm) {
  Cluster c(3, LeaseReads(/*pre_vote=*/true));
  LeadByTransfer(c, 1);
  c.Propose(1, "x");
  std::vector<Message> held;
  c.SetDropRule([&held](const Message& m) {
    if (m.type != MessageType::kTimeoutNow) return false;
    held.push_back(m);  // Delayed in the network.
    return true;
  });
  ASSERT_TRUE(c.engine(1).TransferLeadership(2).ok());
  c.Stabilize();
  ASSERT_EQ(held.size(), 1u);
  c.TickAll(10);  // The transfer is abandoned after an election timeout.
  ASSERT_EQ(c.raft(1).lead_transferee(), kNoNode);
  ASSERT_EQ(c.engine(1).soft_state().role, Role::kLeader);
  c.TickAll(2);  // Quorum rounds that, before the fix, renewed the lease.
  const Term term = c.engine(1).soft_state().term;

  // Node 1 is cut off; the delayed TimeoutNow arrives and node 2 is elected with node 3's vote.
  c.ClearDropRule();
  c.Isolate(1);
  ASSERT_TRUE(c.engine(2).Step(held[0]).ok());
  c.Stabilize();
  ASSERT_EQ(c.engine(2).soft_state().role, Role::kLeader);
  ASSERT_GT(c.engine(2).soft_state().term, term);
  c.Propose(2, "y");
  ASSERT_EQ(c.AppliedData(3), (std::vector<std::string>{"x", "y"}));

  // Node 1 has not ticked: a lease would still hold. It must not answer from its stale state.
  ASSERT_EQ(c.engine(1).soft_state().role, Role::kLeader);
  ASSERT_TRUE(c.engine(1).ReadIndex("stale").ok());
  c.Stabilize();
  EXPECT_TRUE(c.member(1).reads.empty())
      << "lease read at " << c.member(1).reads.front().index << " while node 2 leads term "
      << c.engine(2).soft_state().term << " and committed up to " << c.engine(2).committed_index();
}

// Leader stickiness must survive a term change learned from a message that is not a vote: a
// follower that just acknowledged the leader's lease round keeps refusing votes for an election
// timeout, whatever term it is in (thesis 4.2.3, "within the minimum election timeout of hearing
// from a current leader"). Here a member isolated without pre-vote raised its term, answers a
// stale heartbeat of an old leader, and so moves that old leader, now a follower, to its term;
// its vote request of that term must then be refused.
TEST(RaftLease, StickinessSurvivesTermLearnedFromAResponse) {
  Cluster c(3, LeaseReads(/*pre_vote=*/false));
  LeadByTransfer(c, 2);
  c.Propose(2, "w");
  // A heartbeat of node 2's term to node 3, delayed in the network.
  std::vector<Message> stale_heartbeat;
  c.SetDropRule([&stale_heartbeat](const Message& m) {
    if (m.type != MessageType::kHeartbeat || m.to != 3) return false;
    stale_heartbeat.push_back(m);
    return true;
  });
  c.Tick(2);
  ASSERT_FALSE(stale_heartbeat.empty());
  c.ClearDropRule();
  LeadByTransfer(c, 1);
  c.Propose(1, "x");
  const Term lease_term = c.engine(1).soft_state().term;

  // Node 3 is cut off and campaigns alone; its vote request to node 2 is delayed.
  std::vector<Message> held_votes;
  c.SetDropRule([&held_votes](const Message& m) {
    if (m.from != 3 && m.to != 3) return false;
    if (m.type == MessageType::kVote && m.to == 2) held_votes.push_back(m);
    return true;
  });
  for (int i = 0; i < 40 && held_votes.empty(); ++i) c.TickAll();
  ASSERT_FALSE(held_votes.empty());
  const Message vote = held_votes.back();
  ASSERT_GT(vote.term, lease_term);
  c.TickAll(1);  // Node 1's lease is renewed by node 2's acknowledgement.
  ASSERT_EQ(c.engine(1).soft_state().role, Role::kLeader);

  // No tick passes from here on: node 1's lease holds throughout. Node 3 answers the stale
  // heartbeat with its term, which node 2 adopts; then node 3's vote request reaches node 2.
  c.SetDropRule([](const Message& m) { return m.from == 1 || m.to == 1; });
  c.ClearSent();
  ASSERT_TRUE(c.engine(3).Step(stale_heartbeat.front()).ok());
  c.Stabilize();
  ASSERT_EQ(c.engine(2).soft_state().term, c.engine(3).soft_state().term);
  if (c.engine(3).soft_state().term == vote.term) {
    ASSERT_TRUE(c.engine(2).Step(vote).ok());
    c.Stabilize();
  }
  EXPECT_NE(c.engine(3).soft_state().role, Role::kLeader)
      << "node 3 elected while node 1 holds a lease";
  for (const Sent& s : c.sent()) {
    if (s.message.type == MessageType::kVoteResponse && s.message.from == 2) {
      EXPECT_TRUE(s.message.reject) << "node 2 voted within an election timeout of its leader";
    }
  }
  ASSERT_TRUE(c.engine(1).ReadIndex("lease").ok());
  c.Stabilize();
  EXPECT_EQ(c.member(1).reads.size(), 1u);
}

TEST(RaftReadIndex, ReadsDroppedWhenLeadershipLost) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(1);
  ASSERT_TRUE(c.engine(1).ReadIndex("lost").ok());
  c.Tick(1, 20);  // Check quorum: steps down.
  ASSERT_EQ(c.engine(1).soft_state().role, Role::kFollower);
  c.Heal();
  c.TickAll(30);
  EXPECT_TRUE(c.member(1).reads.empty());
}

TEST(RaftTransfer, HandsLeadershipToCaughtUpTarget) {
  Cluster c(3);
  c.Elect(1);
  c.Propose(1, "x");
  const Term term = c.engine(1).soft_state().term;
  EXPECT_TRUE(c.engine(2).TransferLeadership(3).IsUnavailable());
  EXPECT_EQ(c.engine(1).TransferLeadership(9).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(c.engine(1).TransferLeadership(2).ok());
  EXPECT_TRUE(c.engine(1).Propose("refused").IsUnavailable());
  c.Stabilize();
  EXPECT_EQ(c.Leader(), 2u);
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kFollower);
  EXPECT_GT(c.engine(2).soft_state().term, term);
  // The campaign skipped pre-vote and was marked, so sticky followers voted.
  const auto votes = c.SentOf(MessageType::kVote, 2);
  ASSERT_FALSE(votes.empty());
  EXPECT_EQ(votes[0].context, "transfer");
  EXPECT_TRUE(c.SentOf(MessageType::kPreVote, 2).empty());
}

TEST(RaftTransfer, CatchesUpLaggingTargetFirst) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) c.Propose(1, "x");
  c.Heal();
  ASSERT_LT(c.engine(3).last_index(), c.engine(1).last_index());
  ASSERT_TRUE(c.engine(1).TransferLeadership(3).ok());
  c.Stabilize();
  c.Tick(1, 2);
  EXPECT_EQ(c.Leader(), 3u);
  // TimeoutNow left only once node 3 had the whole log.
  const auto timeouts = c.SentOf(MessageType::kTimeoutNow, 1, 3);
  ASSERT_EQ(timeouts.size(), 1u);
  EXPECT_EQ(c.AppliedData(3).size(), 5u);
}

TEST(RaftTransfer, AbortedAfterElectionTimeout) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(3);
  c.Propose(1, "x");
  ASSERT_TRUE(c.engine(1).TransferLeadership(3).ok());
  EXPECT_TRUE(c.engine(1).Propose("no").IsUnavailable());
  c.Tick(1, 10);
  EXPECT_EQ(c.engine(1).soft_state().role, Role::kLeader);
  EXPECT_EQ(c.raft(1).lead_transferee(), kNoNode);
  EXPECT_TRUE(c.engine(1).Propose("yes").ok());
}

TEST(RaftBugs, BrokenVariantsAreNotReachableInProductionBuilds) {
  MemoryStorage storage;
  ConfState conf;
  conf.voters = {1};
  storage.SetInitialConfState(conf);
  Config config;
  config.id = 1;
  config.storage = &storage;
  for (Bug bug :
       {Bug::kCommitOldTermByCount, Bug::kVoteBeforePersist, Bug::kReadIndexWithoutQuorum,
        Bug::kAppendWithoutLogMatching, Bug::kIgnoreHigherTerm, Bug::kReapplyAfterRestart}) {
    auto engine = NewEngine(EngineKind::kRaft, config, bug);
    EXPECT_FALSE(engine.ok()) << static_cast<int>(bug);
    EXPECT_FALSE(NewRaft(config, bug).ok()) << static_cast<int>(bug);
  }
  EXPECT_TRUE(NewEngine(EngineKind::kRaft, config, Bug::kNone).ok());
}

}  // namespace
}  // namespace ballot::consensus::raft::testing

namespace ballot::consensus::raft::testing {
namespace {

// An isolated leader that a host keeps asking to transfer leadership still steps down by
// check-quorum: a repeated request must not restart the transfer's (and the quorum check's) timer.
TEST(RaftTransfer, RepeatedRequestsDoNotPostponeCheckQuorum) {
  Cluster c(3);
  c.Elect(1);
  c.Isolate(1);
  for (int tick = 0; tick < 40 && c.engine(1).soft_state().role == Role::kLeader; ++tick) {
    (void)c.engine(1).TransferLeadership(2);
    c.Tick(1);
  }
  EXPECT_NE(c.engine(1).soft_state().role, Role::kLeader);
}

// A candidate whose term trails a voter's learns the voter's term from the rejection, instead of
// campaigning below it forever.
TEST(RaftElection, StaleVoteRequestIsRejectedWithTheCurrentTerm) {
  Cluster c(3, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  c.Isolate(1);
  c.Tick(1, 60);  // Member 1 campaigns alone, raising its term several times.
  const Term high = c.engine(1).soft_state().term;
  ASSERT_GE(high, 3u);
  c.Heal();
  c.Cut(2, 3);  // Member 2 hears only from 1.
  c.ClearSent();
  c.Tick(2, 25);  // Member 2 campaigns with a lower term; 1 must answer with its own.
  c.Stabilize();
  bool rejected_with_term = false;
  for (const auto& sent : c.sent()) {
    const Message& m = sent.message;
    if (m.from == 1 && m.to == 2 && m.type == MessageType::kVoteResponse && m.reject &&
        m.term >= high) {
      rejected_with_term = true;
    }
  }
  EXPECT_TRUE(rejected_with_term);
  EXPECT_GE(c.engine(2).soft_state().term, high);
}

}  // namespace
}  // namespace ballot::consensus::raft::testing
