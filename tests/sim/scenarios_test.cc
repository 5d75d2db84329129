// Scripted simulator scenarios: one for each known pitfall of Raft. Each scenario runs against the
// correct engine (it must hold) and, where a broken variant exists that the pitfall would expose,
// against that variant too (the scenario must catch it), so that no scenario is a test that
// cannot fail.
#include <gtest/gtest.h>

#include <functional>
#include <set>

#include "cluster.h"
#include "lincheck/checker.h"

namespace ballot::sim {
namespace {

using consensus::Bug;
using consensus::MessageType;
using consensus::Role;

ClusterOptions Calm(int members, uint64_t seed = 7, Bug bug = Bug::kNone) {
  ClusterOptions o;
  o.seed = seed;
  o.members = members;
  o.bug = bug;
  o.network.loss = 0;
  o.network.duplicate = 0;
  o.network.delay_min_ms = 1;
  o.network.delay_max_ms = 2;
  o.disk_sync_ms_min = 0;
  o.disk_sync_ms_max = 1;
  return o;
}

NodeId WaitForLeader(Cluster& c, int64_t max_ms = 3000) {
  NodeId leader = consensus::kNoNode;
  c.RunUntil(
      [&] {
        leader = c.Leader();
        return leader != consensus::kNoNode &&
               c.engine(leader).applied_index() >= c.engine(leader).last_index();
      },
      max_ms);
  return leader;
}

// Runs one client operation to completion (or timeout) and returns what the history recorded.
lincheck::Operation RunOp(Cluster& c, int client, lincheck::OpKind kind, const std::string& key,
                          const std::string& value, NodeId node, int64_t timeout_ms = 500) {
  lincheck::Operation op;
  op.kind = kind;
  op.key = key;
  op.value = value;
  c.StartClientOp(client, op, node, timeout_ms);
  c.RunUntil([&] { return !c.ClientBusy(client); }, timeout_ms + 10);
  return c.history().back();
}

bool Linearizable(const Cluster& c) {
  return lincheck::Check(c.history()).verdict == lincheck::CheckResult::Verdict::kLinearizable;
}

std::vector<NodeId> Others(const Cluster& c, const std::set<NodeId>& not_these) {
  std::vector<NodeId> out;
  for (NodeId id : c.node_ids()) {
    if (!not_these.count(id)) out.push_back(id);
  }
  return out;
}

// ---- Raft Figure 8: an old-term entry replicated on a majority is not committed by counting ----

// Returns true if the run stayed safe.
bool RunFigure8(Bug bug) {
  ClusterOptions o = Calm(5, 8, bug);
  o.max_message_bytes = 1;  // One entry per append, so the script controls what travels.
  o.snapshot_every_entries = 1000;
  Cluster c(o);
  const NodeId s1 = WaitForLeader(c);
  EXPECT_NE(s1, consensus::kNoNode);
  if (s1 == consensus::kNoNode) return true;
  auto rest = Others(c, {s1});
  const NodeId s2 = rest[0], s3 = rest[1], s4 = rest[2], s5 = rest[3];

  // (a) s1 appends an entry of its term that reaches s2 only.
  c.Partition({{s1, s2}, {s3}, {s4}, {s5}});
  EXPECT_TRUE(c.ProposeMarker(s1, 100).ok());
  const Index e1 = c.engine(s1).last_index();
  const Term t1 = c.engine(s1).soft_state().term;
  c.RunUntil([&] { return c.engine(s2).TermAt(e1) == t1; }, 500);
  EXPECT_EQ(c.engine(s2).TermAt(e1), t1);

  // (b) s1 crashes; s5 is elected by s3, s4, s5 and appends an entry at e1 that reaches nobody.
  c.Crash(s1);
  c.HealNetwork();
  c.Partition({{s2}, {s3, s4, s5}});
  c.network().set_drop_filter([&](const consensus::Message& m) {
    // Only s5 may win; s5's appends never leave it.
    if ((m.type == MessageType::kVote || m.type == MessageType::kPreVote) && m.from != s5) {
      return true;
    }
    return m.from == s5 && m.type == MessageType::kAppend && !m.entries.empty();
  });
  c.RunUntil([&] { return c.Leader() == s5; }, 3000);
  EXPECT_EQ(c.Leader(), s5);
  c.RunFor(20);
  EXPECT_GE(c.engine(s5).last_index(), e1);

  // (c) s5 crashes; s1 restarts and is elected by s1, s2, s3, s4; it sends its old-term entry e1
  //     (but not its own no-op) to s3 and s4, and hears them acknowledge it: e1 is on a majority
  //     that the leader knows of (s1, s3, s4), yet must not commit, being of an older term.
  c.Crash(s5);
  c.Restart(s1);
  c.HealNetwork();
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if ((m.type == MessageType::kVote || m.type == MessageType::kPreVote) && m.from != s1) {
      return true;
    }
    if (m.to == s5) return true;
    if (m.from == s1 && m.type == MessageType::kAppend) {
      if (m.to == s2) return true;
      bool carries_new_term = false;
      for (const auto& e : m.entries) carries_new_term |= e.index > e1;
      // A follower that already holds e1 never receives the new term's entries.
      if (carries_new_term && c.IsUp(m.to) && c.engine(m.to).TermAt(e1) == t1) return true;
    }
    return false;
  });
  c.RunUntil([&] { return c.Leader() == s1; }, 3000);
  EXPECT_EQ(c.Leader(), s1);
  c.RunUntil([&] { return c.engine(s3).TermAt(e1) == t1 && c.engine(s4).TermAt(e1) == t1; }, 1000);
  EXPECT_EQ(c.engine(s3).TermAt(e1), t1);
  EXPECT_EQ(c.engine(s4).TermAt(e1), t1);
  c.RunFor(50);
  const bool committed_by_count = c.engine(s1).committed_index() >= e1;

  // (d) s1 crashes; s5 restarts and, its last entry (e1, t2) being newer than anyone's (e1, t1),
  //     is elected and overwrites e1 everywhere. Had e1 been committed, it is now lost.
  c.Crash(s1);
  c.Restart(s5);
  c.network().set_drop_filter([&](const consensus::Message& m) {
    return (m.type == MessageType::kVote || m.type == MessageType::kPreVote) && m.from != s5;
  });
  c.RunUntil([&] { return c.Leader() == s5; }, 3000);
  c.network().set_drop_filter(nullptr);
  c.Restart(s1);
  c.RunFor(1500);
  if (bug == Bug::kNone) {
    EXPECT_FALSE(committed_by_count) << "an old-term entry was committed by counting replicas";
  }
  return !committed_by_count && c.violations().empty();
}

TEST(Scenario, Figure8OldTermEntryIsNotCommittedByCounting) { EXPECT_TRUE(RunFigure8(Bug::kNone)); }

TEST(Scenario, Figure8CatchesCommitByCount) {
  EXPECT_FALSE(RunFigure8(Bug::kCommitOldTermByCount));
}

// ---- A vote granted, then a crash before the vote was synced ----

// Returns the number of vote replies `voter` sent for term `term` before a crash that lost them.
int VoteThenCrash(Bug bug, bool* double_vote) {
  ClusterOptions o = Calm(3, 11, bug);
  o.disk_sync_ms_min = 30;  // Syncs are slow: the crash lands while the vote is not durable.
  o.disk_sync_ms_max = 30;
  Cluster c(o);
  // Let member 1 campaign first: cut 2 and 3 from each other and keep them quiet.
  int replies_before_sync = 0;
  NodeId voter = 2;
  bool crashed = false;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.type == MessageType::kVoteResponse && m.from == voter && !m.reject && !crashed) {
      ++replies_before_sync;
    }
    return false;
  });
  // Step until voter 2 has taken a Ready holding a vote and is syncing it; crash it then.
  c.RunUntil(
      [&] {
        const auto* rd = c.PendingReady(voter);
        return rd != nullptr && rd->hard_state && rd->hard_state->vote != consensus::kNoNode &&
               rd->hard_state->vote != voter;
      },
      5000);
  const auto* rd = c.PendingReady(voter);
  EXPECT_NE(rd, nullptr);
  if (rd == nullptr) return -1;
  crashed = true;
  const int sent = replies_before_sync;
  c.Crash(voter);
  const auto durable = c.storage(voter).InitialHardState();
  // The vote was lost with the crash; the member may vote again in that term after restarting.
  *double_vote = durable.vote == consensus::kNoNode || durable.term < rd->hard_state->term;
  c.Restart(voter);
  c.RunFor(3000);
  EXPECT_TRUE(c.violations().empty()) << c.violations().front();
  return sent;
}

TEST(Scenario, VoteIsNotSentBeforeItIsDurable) {
  bool lost = false;
  EXPECT_EQ(VoteThenCrash(Bug::kNone, &lost), 0);
  EXPECT_TRUE(lost);
}

TEST(Scenario, VoteBeforePersistIsVisible) {
  bool lost = false;
  EXPECT_GT(VoteThenCrash(Bug::kVoteBeforePersist, &lost), 0);
}

// ---- A deposed leader is asked to serve a read ----

bool DeposedLeaderRead(Bug bug, consensus::ReadMode mode) {
  ClusterOptions o = Calm(5, 21, bug);
  o.read_mode = mode;
  Cluster c(o);
  const NodeId old_leader = WaitForLeader(c);
  EXPECT_NE(old_leader, consensus::kNoNode);
  EXPECT_EQ(RunOp(c, 0, lincheck::OpKind::kPut, "k", "v1", old_leader).status,
            lincheck::OpStatus::kOk);
  c.Isolate(old_leader);
  NodeId new_leader = consensus::kNoNode;
  c.RunUntil(
      [&] {
        for (NodeId id : Others(c, {old_leader})) {
          if (c.engine(id).soft_state().role == Role::kLeader) new_leader = id;
        }
        return new_leader != consensus::kNoNode;
      },
      3000);
  EXPECT_NE(new_leader, consensus::kNoNode);
  EXPECT_EQ(RunOp(c, 1, lincheck::OpKind::kPut, "k", "v2", new_leader).status,
            lincheck::OpStatus::kOk);
  // The old leader may still believe it leads (no check-quorum step-down yet): ask it to read.
  auto read = RunOp(c, 2, lincheck::OpKind::kGet, "k", "", old_leader, 200);
  const bool stale = read.status == lincheck::OpStatus::kOk && read.output == "v1";
  return !stale && Linearizable(c);
}

TEST(Scenario, DeposedLeaderDoesNotServeStaleReadIndexReads) {
  EXPECT_TRUE(DeposedLeaderRead(Bug::kNone, consensus::ReadMode::kReadIndex));
}

TEST(Scenario, DeposedLeaderDoesNotServeStaleLeaseReads) {
  EXPECT_TRUE(DeposedLeaderRead(Bug::kNone, consensus::ReadMode::kLease));
}

TEST(Scenario, DeposedLeaderCatchesReadWithoutQuorum) {
  EXPECT_FALSE(DeposedLeaderRead(Bug::kReadIndexWithoutQuorum, consensus::ReadMode::kReadIndex));
}

// ---- A read index requested before the new leader has committed an entry of its term ----

TEST(Scenario, ReadIndexWaitsForNewLeadersFirstCommit) {
  Cluster c(Calm(3, 31));
  const NodeId l1 = WaitForLeader(c);
  ASSERT_NE(l1, consensus::kNoNode);
  // Followers receive the put but never learn that it committed (l1 sends them nothing else).
  bool put_sent = false;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.from != l1) return false;
    if (m.type == MessageType::kAppend && !m.entries.empty() && !put_sent) {
      return false;
    }
    return m.type == MessageType::kHeartbeat || m.type == MessageType::kAppend;
  });
  auto put = RunOp(c, 0, lincheck::OpKind::kPut, "k", "v1", l1);
  ASSERT_EQ(put.status, lincheck::OpStatus::kOk);
  put_sent = true;
  c.Crash(l1);
  // The new leader's appends are held back, so it cannot commit its no-op yet.
  NodeId l2 = consensus::kNoNode;
  c.network().set_drop_filter(
      [&](const consensus::Message& m) { return m.from != l1 && m.type == MessageType::kAppend; });
  c.RunUntil(
      [&] {
        l2 = c.Leader();
        return l2 != consensus::kNoNode;
      },
      3000);
  ASSERT_NE(l2, consensus::kNoNode);
  EXPECT_LT(c.engine(l2).committed_index(), c.engine(l2).last_index());
  lincheck::Operation get;
  get.kind = lincheck::OpKind::kGet;
  get.key = "k";
  c.StartClientOp(1, get, l2, 2000);
  c.RunFor(100);
  EXPECT_TRUE(c.ClientBusy(1)) << "a read was answered before the leader committed in its term";
  c.network().set_drop_filter(nullptr);
  c.RunUntil([&] { return !c.ClientBusy(1); }, 2000);
  const auto& done = c.history().back();
  ASSERT_EQ(done.status, lincheck::OpStatus::kOk);
  EXPECT_EQ(done.output, "v1");
  EXPECT_TRUE(Linearizable(c));
  EXPECT_TRUE(c.violations().empty());
}

// ---- A membership change over divergent logs ----

TEST(Scenario, UncommittedConfChangeOnDivergentLogIsDiscarded) {
  ClusterOptions o = Calm(5, 41);
  Cluster c(o);
  const NodeId l1 = WaitForLeader(c);
  ASSERT_NE(l1, consensus::kNoNode);
  auto rest = Others(c, {l1});
  const NodeId victim = rest[3];
  // l1 proposes removing `victim`, but the entry reaches only rest[0].
  c.Partition({{l1, rest[0]}, {rest[1], rest[2], rest[3]}});
  consensus::ConfChange cc{consensus::ConfChangeType::kRemove, victim, ""};
  ASSERT_TRUE(c.engine(l1).ProposeConfChange(cc).ok());
  const Index cc_index = c.engine(l1).last_index();
  c.RunFor(200);
  EXPECT_LT(c.engine(l1).committed_index(), cc_index);
  // The majority side elects a leader and commits entries over that index.
  NodeId l2 = consensus::kNoNode;
  c.RunUntil(
      [&] {
        for (NodeId id : {rest[1], rest[2], rest[3]}) {
          if (c.engine(id).soft_state().role == Role::kLeader) l2 = id;
        }
        return l2 != consensus::kNoNode;
      },
      3000);
  ASSERT_NE(l2, consensus::kNoNode);
  for (uint64_t m = 1; m <= 5; ++m) ASSERT_TRUE(c.ProposeMarker(l2, m).ok());
  c.RunUntil([&] { return c.MarkerIndex(5).has_value(); }, 2000);
  ASSERT_TRUE(c.MarkerIndex(5).has_value());
  EXPECT_GE(*c.MarkerIndex(5), cc_index);
  c.HealNetwork();
  c.RunFor(1500);
  for (NodeId id : c.node_ids()) {
    EXPECT_TRUE(c.engine(id).conf_state().voters.count(victim))
        << "member " << id << " applied a conf change that was never committed";
    EXPECT_FALSE(c.IsRemoved(id));
  }
  c.CheckConvergence();
  EXPECT_TRUE(c.violations().empty()) << c.violations().front();
}

// ---- Partial connectivity: pre-vote and check-quorum keep one stable leader ----

TEST(Scenario, PartialConnectivityKeepsOneStableLeader) {
  Cluster c(Calm(3, 51));
  const NodeId leader = WaitForLeader(c);
  ASSERT_NE(leader, consensus::kNoNode);
  const Term term = c.engine(leader).soft_state().term;
  auto rest = Others(c, {leader});
  // The leader and rest[1] cannot talk; both still reach rest[0].
  c.network().Cut(leader, rest[1]);
  c.network().Cut(rest[1], leader);
  for (uint64_t m = 1; m <= 20; ++m) {
    c.RunFor(150);
    (void)c.ProposeMarker(leader, m);
  }
  c.RunFor(200);
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_EQ(c.engine(leader).soft_state().term, term) << "the term moved: elections disrupted";
  EXPECT_EQ(c.engine(rest[1]).soft_state().term, term) << "the cut member raised its term";
  EXPECT_TRUE(c.MarkerIndex(20).has_value());
  EXPECT_TRUE(c.violations().empty());
}

// ---- Snapshots: a follower behind compaction; a snapshot arriving while entries are appended ----

struct SnapshotCounts {
  int chunks = 0;
  bool converged = false;
};

SnapshotCounts CatchUpBySnapshot(bool clog_instead_of_cut) {
  ClusterOptions o = Calm(3, 61);
  o.snapshot_every_entries = 20;
  o.snapshot_keep_entries = 0;
  o.snapshot_chunk_bytes = 64;
  Cluster c(o);
  const NodeId leader = WaitForLeader(c);
  EXPECT_NE(leader, consensus::kNoNode);
  const NodeId slow = Others(c, {leader})[0];
  SnapshotCounts counts;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.type == MessageType::kSnapshot && m.to == slow) ++counts.chunks;
    return false;
  });
  if (clog_instead_of_cut) {
    c.network().Clog(leader, slow, 400, c.now_ms() + 1500);
  } else {
    c.Isolate(slow);
  }
  // Write well past the compaction point while the follower cannot keep up.
  uint64_t marker = 1;
  for (; marker <= 120; ++marker) {
    (void)c.ProposeMarker(leader, marker);
    c.RunFor(5);
  }
  c.RunFor(200);
  EXPECT_GT(c.storage(leader).FirstIndex(), c.engine(slow).last_index() + 1)
      << "the follower is not behind compaction; the scenario tests nothing";
  c.HealNetwork();
  // Entries keep arriving while the snapshot streams in.
  for (; marker <= 200; ++marker) {
    (void)c.ProposeMarker(c.Leader(), marker);
    c.RunFor(5);
  }
  c.RunFor(2000);
  counts.converged = c.kv_applied(slow) == c.kv_applied(c.Leader()) &&
                     c.kv(slow).Fingerprint() == c.kv(c.Leader()).Fingerprint();
  c.CheckConvergence();
  EXPECT_TRUE(c.violations().empty()) << c.violations().front();
  return counts;
}

TEST(Scenario, SnapshotArrivesWhileEntriesAreAppended) {
  auto counts = CatchUpBySnapshot(/*clog_instead_of_cut=*/false);
  EXPECT_GE(counts.chunks, 2) << "the snapshot was not sent in chunks";
  EXPECT_TRUE(counts.converged);
}

TEST(Scenario, SlowFollowerBehindCompactionCatchesUp) {
  auto counts = CatchUpBySnapshot(/*clog_instead_of_cut=*/true);
  EXPECT_GE(counts.chunks, 1);
  EXPECT_TRUE(counts.converged);
}

// ---- The simulator's checkers themselves can fail ----

TEST(Scenario, ReapplyAfterRestartIsCaught) {
  ClusterOptions o = Calm(3, 71, Bug::kReapplyAfterRestart);
  o.snapshot_every_entries = 1000;
  Cluster c(o);
  const NodeId leader = WaitForLeader(c);
  ASSERT_NE(leader, consensus::kNoNode);
  for (uint64_t m = 1; m <= 5; ++m) ASSERT_TRUE(c.ProposeMarker(leader, m).ok());
  c.RunFor(300);
  const NodeId follower = Others(c, {leader})[0];
  c.Crash(follower);
  c.Restart(follower);
  c.RunFor(300);
  ASSERT_FALSE(c.violations().empty());
  EXPECT_NE(c.violations().front().find("exactly-once"), std::string::npos);
}

}  // namespace
}  // namespace ballot::sim
