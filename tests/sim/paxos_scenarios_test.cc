// Scripted simulator scenarios for Multi-Paxos: the analogues of the Raft scenarios
// (scenarios_test.cc) and the pitfalls of Paxos itself. Where a broken variant exists that a
// scenario would expose, the scenario runs against it too and must catch it, so that no scenario
// is a test that cannot fail.
#include <gtest/gtest.h>

#include <set>

#include "cluster.h"
#include "consensus/paxos/ballot.h"
#include "lincheck/checker.h"

namespace ballot::sim {
namespace {

using consensus::Bug;
using consensus::EngineKind;
using consensus::EntryType;
using consensus::MessageType;
using consensus::Role;

ClusterOptions Calm(int members, uint64_t seed = 7, Bug bug = Bug::kNone) {
  ClusterOptions o;
  o.engine = EngineKind::kMultiPaxos;
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

bool CarriesSlot(const consensus::Message& m, Index slot) {
  for (const auto& e : m.entries) {
    if (e.index == slot) return true;
  }
  return false;
}

std::string FirstViolation(const Cluster& c) {
  return c.violations().empty() ? "" : c.violations().front();
}

// ---- An acceptor crashes before its promise is durable ----

// Returns how many promises `acceptor` sent before the crash that lost them.
int PromiseThenCrash(Bug bug, bool* lost) {
  ClusterOptions o = Calm(3, 11, bug);
  o.disk_sync_ms_min = 30;  // Syncs are slow: the crash lands while the promise is not durable.
  o.disk_sync_ms_max = 30;
  Cluster c(o);
  const NodeId acceptor = 2;
  int promises_before_sync = 0;
  bool crashed = false;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.type == MessageType::kPromise && m.from == acceptor && !m.reject && !crashed) {
      ++promises_before_sync;
    }
    return false;
  });
  // Step until the acceptor is syncing a Ready that raises its promise; crash it then.
  c.RunUntil(
      [&] {
        const auto* rd = c.PendingReady(acceptor);
        return rd != nullptr && rd->hard_state && rd->hard_state->vote != acceptor &&
               rd->hard_state->term > c.storage(acceptor).InitialHardState().term;
      },
      5000);
  const auto* rd = c.PendingReady(acceptor);
  EXPECT_NE(rd, nullptr);
  if (rd == nullptr) return -1;
  crashed = true;
  const int sent = promises_before_sync;
  const consensus::Term promised = rd->hard_state->term;
  c.Crash(acceptor);
  *lost = c.storage(acceptor).InitialHardState().term < promised;
  c.Restart(acceptor);
  c.RunFor(3000);
  if (bug == Bug::kNone) {
    EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
  }
  return sent;
}

TEST(PaxosScenario, PromiseIsNotSentBeforeItIsDurable) {
  bool lost = false;
  EXPECT_EQ(PromiseThenCrash(Bug::kNone, &lost), 0);
  EXPECT_TRUE(lost) << "the crash did not lose the promise; the scenario tests nothing";
}

TEST(PaxosScenario, PromiseBeforePersistIsVisible) {
  bool lost = false;
  EXPECT_GT(PromiseThenCrash(Bug::kPaxosPromiseBeforePersist, &lost), 0);
}

// ---- Two proposers duel ----

TEST(PaxosScenario, DuellingProposersSettle) {
  ClusterOptions o = Calm(3, 13);
  o.pre_vote = false;  // Every campaign raises the ballot: the classic duel.
  o.check_quorum = false;
  Cluster c(o);
  // Member 3 never proposes, and no leader's accepts or heartbeats get through: each proposer's
  // phase 1 succeeds and is then preempted by the other's higher ballot, again and again.
  bool duel = true;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.from == 3 && (m.type == MessageType::kPrepare || m.type == MessageType::kPreVote)) {
      return true;
    }
    return duel && (m.type == MessageType::kAccept || m.type == MessageType::kHeartbeat);
  });
  std::set<consensus::Term> leading_ballots;
  for (int i = 0; i < 1500; ++i) {
    c.Step();
    const NodeId l = c.Leader();
    if (l != consensus::kNoNode) leading_ballots.insert(c.engine(l).soft_state().term);
  }
  EXPECT_GE(leading_ballots.size(), 3u) << "no duel took place";
  duel = false;
  const NodeId leader = WaitForLeader(c);
  ASSERT_NE(leader, consensus::kNoNode);
  const consensus::Term ballot = c.engine(leader).soft_state().term;
  for (uint64_t m = 1; m <= 10; ++m) {
    (void)c.ProposeMarker(c.Leader(), m);
    c.RunFor(100);
  }
  EXPECT_EQ(c.Leader(), leader) << "the proposers did not settle";
  EXPECT_EQ(c.engine(leader).soft_state().term, ballot);
  EXPECT_TRUE(c.MarkerIndex(10).has_value());
  c.CheckConvergence();
  EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
}

// ---- A gap is filled by a no-op after the leader dies ----

struct GapOutcome {
  Index gap = 0;
  bool filled_with_noop = false;
  bool later_value_kept = false;
  std::vector<std::string> violations;
};

GapOutcome GapAfterLeaderDies(Bug bug) {
  ClusterOptions o = Calm(3, 17, bug);
  o.max_message_bytes = 1;  // One slot per accept, so the script decides which slots travel.
  o.snapshot_every_entries = 1000;
  Cluster c(o);
  GapOutcome out;
  const NodeId leader = WaitForLeader(c);
  EXPECT_NE(leader, consensus::kNoNode);
  if (leader == consensus::kNoNode) return out;
  // The accepts of the middle slot never leave the leader.
  Index gap = 0;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    return gap != 0 && m.from == leader && m.type == MessageType::kAccept && CarriesSlot(m, gap);
  });
  EXPECT_TRUE(c.ProposeMarker(leader, 1).ok());
  const Index first = c.engine(leader).last_index();
  EXPECT_TRUE(c.ProposeMarker(leader, 2).ok());
  gap = c.engine(leader).last_index();
  EXPECT_TRUE(c.ProposeMarker(leader, 3).ok());
  const Index third = c.engine(leader).last_index();
  c.RunFor(300);
  for (NodeId f : Others(c, {leader})) {
    EXPECT_EQ(c.engine(f).TermAt(gap).value_or(99), 0u) << "slot " << gap << " is no hole";
    EXPECT_NE(c.engine(f).TermAt(third).value_or(0), 0u);
  }
  EXPECT_EQ(c.MarkerIndex(1), first);
  c.Crash(leader);
  c.RunUntil([&] { return c.Leader() != consensus::kNoNode && c.MarkerIndex(3).has_value(); },
             3000);
  c.RunFor(300);
  out.gap = gap;
  const NodeId next = c.Leader();
  if (next != consensus::kNoNode) {
    auto e = c.storage(next).Entries(gap, gap + 1, UINT64_MAX);
    out.filled_with_noop = e.ok() && (*e)[0].type == EntryType::kNoop && (*e)[0].term != 0 &&
                           c.kv_applied(next) >= gap;
  }
  out.later_value_kept = c.MarkerIndex(3) == third && !c.MarkerIndex(2).has_value();
  out.violations = c.violations();
  return out;
}

TEST(PaxosScenario, GapIsFilledWithNoopAfterLeaderDies) {
  GapOutcome out = GapAfterLeaderDies(Bug::kNone);
  EXPECT_TRUE(out.filled_with_noop) << "slot " << out.gap;
  EXPECT_TRUE(out.later_value_kept);
  EXPECT_TRUE(out.violations.empty()) << out.violations.front();
}

TEST(PaxosScenario, SkippedGapIsCaught) {
  GapOutcome out = GapAfterLeaderDies(Bug::kPaxosSkipGap);
  ASSERT_FALSE(out.violations.empty());
  EXPECT_NE(out.violations.front().find("state machine safety"), std::string::npos)
      << out.violations.front();
}

// ---- A value accepted by a minority survives a leader change ----

struct MinorityOutcome {
  Index slot = 0;
  std::optional<Index> applied_at;
  std::vector<std::string> violations;
};

MinorityOutcome MinorityValue(Bug bug) {
  ClusterOptions o = Calm(5, 19, bug);
  o.max_message_bytes = 1;
  o.snapshot_every_entries = 1000;
  Cluster c(o);
  MinorityOutcome out;
  const NodeId l1 = WaitForLeader(c);
  EXPECT_NE(l1, consensus::kNoNode);
  if (l1 == consensus::kNoNode) return out;
  const auto rest = Others(c, {l1});
  const NodeId keeper = rest[0];  // The one acceptor besides the leader that accepts the value.
  Index slot = 0;
  bool phase1 = false;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (!phase1) {
      return slot != 0 && m.from == l1 && m.to != keeper && m.type == MessageType::kAccept &&
             CarriesSlot(m, slot);
    }
    // The next leader is not the keeper, and its phase 1 quorum must include the keeper.
    if (m.from == keeper && (m.type == MessageType::kPrepare || m.type == MessageType::kPreVote)) {
      return true;
    }
    return m.type == MessageType::kPromise && (m.from == rest[1] || m.from == rest[2]);
  });
  EXPECT_TRUE(c.ProposeMarker(l1, 7).ok());
  slot = c.engine(l1).last_index();
  c.RunUntil([&] { return c.engine(keeper).TermAt(slot).value_or(0) != 0; }, 500);
  EXPECT_NE(c.engine(keeper).TermAt(slot).value_or(0), 0u);
  EXPECT_FALSE(c.MarkerIndex(7).has_value()) << "the value was chosen by the first leader";
  phase1 = true;
  c.Crash(l1);
  c.RunUntil([&] { return c.Leader() != consensus::kNoNode; }, 3000);
  EXPECT_NE(c.Leader(), keeper);
  c.network().set_drop_filter(nullptr);
  c.RunFor(1000);
  out.slot = slot;
  out.applied_at = c.MarkerIndex(7);
  out.violations = c.violations();
  return out;
}

TEST(PaxosScenario, MinorityAcceptedValueSurvivesLeaderChange) {
  MinorityOutcome out = MinorityValue(Bug::kNone);
  EXPECT_EQ(out.applied_at, out.slot) << "the new leader did not re-propose the accepted value";
  EXPECT_TRUE(out.violations.empty()) << out.violations.front();
}

TEST(PaxosScenario, IgnoringPromisedValuesLosesIt) {
  MinorityOutcome out = MinorityValue(Bug::kPaxosIgnorePromisedValues);
  EXPECT_FALSE(out.applied_at.has_value()) << "the broken leader kept the value anyway";
}

// ---- A deposed leader is asked for a read ----

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
  EXPECT_EQ(c.engine(old_leader).soft_state().role, Role::kLeader)
      << "the old leader already stepped down; the scenario tests nothing";
  auto read = RunOp(c, 2, lincheck::OpKind::kGet, "k", "", old_leader, 200);
  const bool stale = read.status == lincheck::OpStatus::kOk && read.output == "v1";
  return !stale && Linearizable(c);
}

TEST(PaxosScenario, DeposedLeaderDoesNotServeStaleReadIndexReads) {
  EXPECT_TRUE(DeposedLeaderRead(Bug::kNone, consensus::ReadMode::kReadIndex));
}

TEST(PaxosScenario, DeposedLeaderDoesNotServeStaleLeaseReads) {
  EXPECT_TRUE(DeposedLeaderRead(Bug::kNone, consensus::ReadMode::kLease));
}

TEST(PaxosScenario, DeposedLeaderCatchesReadWithoutQuorum) {
  EXPECT_FALSE(DeposedLeaderRead(Bug::kPaxosReadWithoutQuorum, consensus::ReadMode::kReadIndex));
}

// ---- A read index requested before the new leader's opening no-op is chosen ----

TEST(PaxosScenario, ReadIndexWaitsForNewLeadersFirstSlot) {
  Cluster c(Calm(3, 31));
  const NodeId l1 = WaitForLeader(c);
  ASSERT_NE(l1, consensus::kNoNode);
  // Followers accept the put but never learn that it was chosen.
  bool put_sent = false;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.from != l1) return false;
    if (m.type == MessageType::kAccept && !m.entries.empty() && !put_sent) return false;
    return m.type == MessageType::kHeartbeat || m.type == MessageType::kAccept;
  });
  auto put = RunOp(c, 0, lincheck::OpKind::kPut, "k", "v1", l1);
  ASSERT_EQ(put.status, lincheck::OpStatus::kOk);
  put_sent = true;
  c.Crash(l1);
  // The new leader's accepts are held back, so its opening slot cannot be chosen yet.
  NodeId l2 = consensus::kNoNode;
  c.network().set_drop_filter(
      [&](const consensus::Message& m) { return m.from != l1 && m.type == MessageType::kAccept; });
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
  EXPECT_TRUE(c.ClientBusy(1)) << "a read was answered before the leader's first slot was chosen";
  c.network().set_drop_filter(nullptr);
  c.RunUntil([&] { return !c.ClientBusy(1); }, 2000);
  const auto& done = c.history().back();
  ASSERT_EQ(done.status, lincheck::OpStatus::kOk);
  EXPECT_EQ(done.output, "v1");
  EXPECT_TRUE(Linearizable(c));
  EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
}

// ---- Partial connectivity: the probe and stickiness keep one stable leader ----

TEST(PaxosScenario, PartialConnectivityKeepsOneStableLeader) {
  Cluster c(Calm(3, 51));
  const NodeId leader = WaitForLeader(c);
  ASSERT_NE(leader, consensus::kNoNode);
  const consensus::Term ballot = c.engine(leader).soft_state().term;
  auto rest = Others(c, {leader});
  c.network().Cut(leader, rest[1]);
  c.network().Cut(rest[1], leader);
  for (uint64_t m = 1; m <= 20; ++m) {
    c.RunFor(150);
    (void)c.ProposeMarker(leader, m);
  }
  c.RunFor(200);
  EXPECT_EQ(c.Leader(), leader);
  EXPECT_EQ(c.engine(leader).soft_state().term, ballot) << "the ballot moved: leader disrupted";
  EXPECT_TRUE(c.MarkerIndex(20).has_value());
  EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
}

// ---- Membership: add a learner, promote it, remove the old leader ----

TEST(PaxosScenario, MembershipChangesThroughTheLog) {
  Cluster c(Calm(3, 43));
  const NodeId l1 = WaitForLeader(c);
  ASSERT_NE(l1, consensus::kNoNode);
  const NodeId joiner = c.CreateJoiningNode();
  using consensus::ConfChangeType;
  ASSERT_TRUE(c.engine(l1).ProposeConfChange({ConfChangeType::kAddLearner, joiner, ""}).ok());
  EXPECT_EQ(c.engine(l1).ProposeConfChange({ConfChangeType::kAddVoter, joiner, ""}).code(),
            StatusCode::kFailedPrecondition)
      << "a second change was accepted while one is in flight";
  c.RunUntil([&] { return c.engine(l1).conf_state().learners.count(joiner) > 0; }, 1000);
  ASSERT_TRUE(c.engine(l1).ProposeConfChange({ConfChangeType::kAddVoter, joiner, ""}).ok());
  c.RunUntil([&] { return c.engine(joiner).conf_state().voters.count(joiner) > 0; }, 2000);
  EXPECT_EQ(c.engine(l1).conf_state().voters.size(), 4u);
  ASSERT_TRUE(c.engine(l1).ProposeConfChange({ConfChangeType::kRemove, l1, ""}).ok());
  c.RunUntil(
      [&] {
        const NodeId l = c.Leader();
        return l != consensus::kNoNode && l != l1 && c.engine(l).conf_state().voters.size() == 3;
      },
      3000);
  const NodeId l2 = c.Leader();
  ASSERT_NE(l2, l1);
  ASSERT_TRUE(c.ProposeMarker(l2, 9).ok());
  c.RunUntil([&] { return c.MarkerIndex(9).has_value(); }, 2000);
  EXPECT_TRUE(c.MarkerIndex(9).has_value());
  EXPECT_EQ(c.engine(l2).conf_state().voters.count(l1), 0u);
  EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
}

// ---- Leadership transfer ----

TEST(PaxosScenario, LeadershipTransferHandsOverWithoutLosingWrites) {
  Cluster c(Calm(3, 47));
  const NodeId l1 = WaitForLeader(c);
  ASSERT_NE(l1, consensus::kNoNode);
  const NodeId target = Others(c, {l1})[1];
  ASSERT_TRUE(c.ProposeMarker(l1, 1).ok());
  ASSERT_TRUE(c.engine(l1).TransferLeadership(target).ok());
  EXPECT_EQ(c.engine(l1).Propose("x").code(), StatusCode::kUnavailable);
  c.RunUntil([&] { return c.Leader() == target; }, 1000);
  ASSERT_EQ(c.Leader(), target);
  EXPECT_GT(c.engine(target).soft_state().term, c.engine(l1).hard_state().term - 1);
  ASSERT_TRUE(c.ProposeMarker(target, 2).ok());
  c.RunUntil([&] { return c.MarkerIndex(2).has_value(); }, 1000);
  EXPECT_TRUE(c.MarkerIndex(1).has_value());
  EXPECT_LT(*c.MarkerIndex(1), *c.MarkerIndex(2));
  EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
}

// ---- Snapshots: a follower behind compaction catches up while slots keep being chosen ----

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
  uint64_t marker = 1;
  for (; marker <= 120; ++marker) {
    (void)c.ProposeMarker(leader, marker);
    c.RunFor(5);
  }
  c.RunFor(200);
  EXPECT_GT(c.storage(leader).FirstIndex(), c.engine(slow).committed_index() + 1)
      << "the follower is not behind compaction; the scenario tests nothing";
  c.HealNetwork();
  for (; marker <= 200; ++marker) {
    (void)c.ProposeMarker(c.Leader(), marker);
    c.RunFor(5);
  }
  c.RunFor(2000);
  counts.converged = c.kv_applied(slow) == c.kv_applied(c.Leader()) &&
                     c.kv(slow).Fingerprint() == c.kv(c.Leader()).Fingerprint();
  c.CheckConvergence();
  EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
  return counts;
}

TEST(PaxosScenario, SnapshotArrivesWhileSlotsAreChosen) {
  auto counts = CatchUpBySnapshot(/*clog_instead_of_cut=*/false);
  EXPECT_GE(counts.chunks, 2) << "the snapshot was not sent in chunks";
  EXPECT_TRUE(counts.converged);
}

TEST(PaxosScenario, SlowFollowerBehindCompactionCatchesUp) {
  auto counts = CatchUpBySnapshot(/*clog_instead_of_cut=*/true);
  EXPECT_GE(counts.chunks, 1);
  EXPECT_TRUE(counts.converged);
}

// ---- A deposed leader's accepts reach acceptors that promised its successor ----

std::vector<std::string> StaleLeaderAccepts(Bug bug) {
  Cluster c(Calm(3, 71, bug));
  const NodeId l1 = WaitForLeader(c);
  EXPECT_NE(l1, consensus::kNoNode);
  // l1 is cut off but keeps leading (no check-quorum step-down yet); the others elect l2 and
  // then hear l1's accepts again.
  c.Isolate(l1);
  c.RunUntil([&] { return c.Leader() != consensus::kNoNode && c.Leader() != l1; }, 3000);
  c.HealNetwork();
  (void)c.ProposeMarker(l1, 1);
  c.RunFor(300);
  (void)c.ProposeMarker(c.Leader(), 2);
  c.RunFor(300);
  if (bug == Bug::kNone) c.CheckConvergence();
  return c.violations();
}

TEST(PaxosScenario, StaleLeaderAcceptsAreRefused) {
  auto violations = StaleLeaderAccepts(Bug::kNone);
  EXPECT_TRUE(violations.empty()) << violations.front();
}

TEST(PaxosScenario, AcceptingALowerBallotIsCaught) {
  EXPECT_FALSE(StaleLeaderAccepts(Bug::kPaxosAcceptLowerBallot).empty());
}

// ---- A long unchosen tail is reported in bounded promises ----

struct TailOutcome {
  int promise_parts = 0;  // Non-empty promises from the keeper.
  size_t most_slots_in_a_promise = 0;
  int markers_applied = 0;
  std::vector<std::string> violations;
};

constexpr int kTailMarkers = 6;

// The first leader gets kTailMarkers values accepted by one other acceptor only, then dies; the
// next leader's quorum is itself and that acceptor, whose promise may carry one slot at a time.
TailOutcome LongTailInBoundedPromises() {
  ClusterOptions o = Calm(3, 23);
  o.max_message_bytes = 1;  // One slot per accept and per promise.
  o.snapshot_every_entries = 1000;
  Cluster c(o);
  TailOutcome out;
  const NodeId l1 = WaitForLeader(c);
  EXPECT_NE(l1, consensus::kNoNode);
  if (l1 == consensus::kNoNode) return out;
  const auto rest = Others(c, {l1});
  const NodeId keeper = rest[0];
  bool phase1 = false;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.type == MessageType::kPromise && m.from == keeper && !m.reject && !m.entries.empty()) {
      ++out.promise_parts;
      out.most_slots_in_a_promise = std::max(out.most_slots_in_a_promise, m.entries.size());
    }
    if (!phase1) {
      // Only the keeper hears the first leader's accepts and commit point.
      return m.from == l1 && m.to != keeper &&
             (m.type == MessageType::kAccept || m.type == MessageType::kHeartbeat);
    }
    return m.from == keeper && (m.type == MessageType::kPrepare || m.type == MessageType::kPreVote);
  });
  for (uint64_t marker = 1; marker <= kTailMarkers; ++marker) {
    EXPECT_TRUE(c.ProposeMarker(l1, marker).ok());
  }
  const Index last = c.engine(l1).last_index();
  c.RunUntil([&] { return c.engine(keeper).TermAt(last).value_or(0) != 0; }, 1000);
  EXPECT_NE(c.engine(keeper).TermAt(last).value_or(0), 0u) << "the keeper lacks the tail";
  phase1 = true;
  c.Crash(l1);
  c.RunUntil([&] { return c.Leader() != consensus::kNoNode; }, 3000);
  EXPECT_EQ(c.Leader(), rest[1]);
  c.RunFor(1000);
  for (uint64_t marker = 1; marker <= kTailMarkers; ++marker) {
    out.markers_applied += c.MarkerIndex(marker).has_value() ? 1 : 0;
  }
  out.violations = c.violations();
  return out;
}

TEST(PaxosScenario, LongUnchosenTailIsReportedInBoundedPromises) {
  TailOutcome out = LongTailInBoundedPromises();
  EXPECT_EQ(out.most_slots_in_a_promise, 1u) << "a promise carried more than max_message_bytes";
  EXPECT_GE(out.promise_parts, kTailMarkers) << "the tail was not reported in parts";
  // Had phase 1 finished on the first part, the rest of the tail would be filled with no-ops.
  EXPECT_EQ(out.markers_applied, kTailMarkers) << "values past the first promise were lost";
  EXPECT_TRUE(out.violations.empty()) << out.violations.front();
}

// ---- A torn append leaves an acceptor's log ending in a hole; it then leads ----

// Soak seeds 707274 and 720438 (3 members, before the crash model of 18b3ec4): an acceptor's
// append of [hole g, slot g+1] (slot g's accept lost) tore after the hole, so its log ended in a
// hole. It then won phase 1 with a quorum that held nothing from g on. The merge stopped at the
// last slot anyone reported, the hole stayed below the new leader's opening no-op, went out as a
// no-op of its ballot and was chosen, while the leader's own log said nothing was accepted there:
// its next promise left slot g out under a commit point past g, and the next proposer's merge
// found a chosen slot nobody reported.
TEST(PaxosScenario, LogEndingInAHoleIsFilledByItsNewLeader) {
  ClusterOptions o = Calm(3, 29);
  o.max_message_bytes = 1;  // One slot per accept, so the script decides which slots travel.
  o.snapshot_every_entries = 1000;
  o.disk_sync_ms_min = 5;  // Slow enough for the crash to land while the append is unsynced.
  o.disk_sync_ms_max = 5;
  Cluster c(o);
  const NodeId l1 = WaitForLeader(c);
  ASSERT_NE(l1, consensus::kNoNode);
  const auto rest = Others(c, {l1});
  const NodeId torn = rest[0];
  const NodeId other = rest[1];
  ASSERT_TRUE(c.ProposeMarker(l1, 1).ok());
  c.RunFor(200);
  const Index gap = c.engine(l1).last_index() + 1;
  ASSERT_EQ(c.engine(torn).last_index(), gap - 1);
  // `torn` hears slot gap + 1 but not gap; `other` hears neither.
  bool drop_accepts = true;
  std::set<NodeId> no_campaign;
  bool starve_l1 = false;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (starve_l1 && m.to == l1 &&
        (m.type == MessageType::kAccept || m.type == MessageType::kHeartbeat ||
         m.type == MessageType::kSnapshot)) {
      return true;
    }
    if (no_campaign.count(m.from) &&
        (m.type == MessageType::kPrepare || m.type == MessageType::kPreVote)) {
      return true;
    }
    if (!drop_accepts || m.from != l1 || m.type != MessageType::kAccept) return false;
    return m.to == other ? !m.entries.empty() && m.entries.back().index >= gap
                         : CarriesSlot(m, gap);
  });
  ASSERT_TRUE(c.ProposeMarker(l1, 2).ok());
  ASSERT_TRUE(c.ProposeMarker(l1, 3).ok());
  ASSERT_EQ(c.engine(l1).last_index(), gap + 1);
  c.RunUntil(
      [&] {
        const consensus::Ready* rd = c.PendingReady(torn);
        return rd != nullptr && !rd->entries.empty() && rd->entries.front().index == gap &&
               rd->entries.front().term == 0;
      },
      500);
  const consensus::Ready* rd = c.PendingReady(torn);
  ASSERT_TRUE(rd != nullptr && !rd->entries.empty() && rd->entries.front().index == gap)
      << "the acceptor never wrote the hole";
  ASSERT_FALSE(rd->snapshot.has_value());
  c.CrashTearing(torn, 1);  // The hole reached the disk, slot gap + 1 did not.
  ASSERT_EQ(c.storage(torn).LastIndex(), gap);
  ASSERT_EQ(*c.storage(torn).TermAt(gap), 0u) << "the durable log does not end in a hole";

  // The torn acceptor leads, with a quorum (itself and `other`) that holds nothing from gap on.
  c.Crash(l1);
  drop_accepts = false;
  no_campaign = {other};
  c.Restart(torn);
  c.RunUntil([&] { return c.Leader() == torn; }, 3000);
  ASSERT_EQ(c.Leader(), torn);
  ASSERT_NE(c.engine(torn).TermAt(gap).value_or(0), 0u)
      << "the new leader kept the hole at " << gap << " in its log";
  c.RunUntil([&] { return c.engine(torn).committed_index() > gap; }, 1000);
  ASSERT_GT(c.engine(torn).committed_index(), gap);

  // The old leader, which accepted markers 2 and 3 alone and learns nothing from `torn`'s
  // ballot, leads next with `torn`'s promise (`torn` lost its quorum and stepped down): the slot at
  // gap must be reported (a chosen no-op) under that promise's commit point.
  c.Isolate(other);
  starve_l1 = true;
  no_campaign = {torn, other};
  c.Restart(l1);
  c.RunUntil([&] { return c.Leader() == l1; }, 5000);
  EXPECT_EQ(c.Leader(), l1);
  starve_l1 = false;
  c.HealNetwork();
  no_campaign.clear();
  c.RunFor(1000);
  EXPECT_FALSE(c.MarkerIndex(2).has_value()) << "a value replaced the chosen no-op at " << gap;
  EXPECT_FALSE(c.MarkerIndex(3).has_value()) << "a value replaced the chosen no-op at " << gap + 1;
  c.CheckConvergence();
  EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
}

// ---- A proposer behind an acceptor's compaction point gets its snapshot in chunks ----

TEST(PaxosScenario, ProposerBehindCompactionGetsTheSnapshotInChunks) {
  ClusterOptions o = Calm(3, 29);
  o.snapshot_every_entries = 20;
  o.snapshot_keep_entries = 0;
  o.snapshot_chunk_bytes = 64;
  Cluster c(o);
  const NodeId leader = WaitForLeader(c);
  ASSERT_NE(leader, consensus::kNoNode);
  const NodeId behind = Others(c, {leader})[0];
  int chunks = 0;
  uint64_t largest_chunk = 0;
  bool shut_out = true;  // The leader's own messages never reach `behind`.
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.type == MessageType::kCatchUpResponse && m.to == behind) {
      ++chunks;
      largest_chunk = std::max<uint64_t>(largest_chunk, m.snapshot_chunk.size());
    }
    return shut_out && m.from == leader && m.to == behind &&
           (m.type == MessageType::kAccept || m.type == MessageType::kHeartbeat ||
            m.type == MessageType::kSnapshot);
  });
  c.Isolate(behind);
  for (uint64_t marker = 1; marker <= 120; ++marker) {
    (void)c.ProposeMarker(leader, marker);
    c.RunFor(5);
  }
  c.RunFor(200);
  const Index compacted = c.storage(leader).FirstIndex() - 1;
  ASSERT_GT(compacted, c.engine(behind).committed_index() + 1)
      << "the member is not behind compaction; the scenario tests nothing";
  // `behind` hears the others again, but not the leader's accepts: it campaigns, and the
  // acceptors, unable to report the slots it lacks, send it their snapshots instead.
  c.HealNetwork();
  c.RunUntil([&] { return c.engine(behind).committed_index() >= compacted; }, 3000);
  EXPECT_GE(c.engine(behind).committed_index(), compacted);
  EXPECT_GE(chunks, 2) << "the catch-up snapshot was not chunked";
  EXPECT_LE(largest_chunk, o.snapshot_chunk_bytes);
  shut_out = false;
  (void)c.ProposeMarker(c.Leader(), 999);
  c.RunUntil([&] { return c.MarkerIndex(999).has_value(); }, 2000);
  c.RunFor(500);
  c.CheckConvergence();
  EXPECT_TRUE(c.violations().empty()) << FirstViolation(c);
}

// ---- A removed member that shares its ballot tag with a new member keeps campaigning ----

// A member id above the tag range whose ballot tag is `tag` (the server's ids are such hashes).
NodeId IdWithTag(NodeId tag) {
  for (NodeId id = consensus::paxos::kBallotIdMax + 1;; ++id) {
    if (consensus::paxos::BallotTag(id) == tag) return id;
  }
}

struct TagOutcome {
  bool collided = false;   // Both members ran phase 1 in the same ballot.
  int taken_refusals = 0;  // Promises refused because the ballot was the other member's.
  bool both_led = false;   // Both members led the same ballot.
  bool converged = false;
  std::vector<std::string> violations;
};

// Member 4 joins and is removed while it is down; then member `twin`, whose tag is 4, joins. When
// 4 comes back it has not learned of its removal and campaigns in the very ballot `twin` uses.
TagOutcome RemovedMemberSharesTag(Bug bug) {
  ClusterOptions o = Calm(3, 37, bug);
  o.pre_vote = false;      // Campaigns go straight to phase 1.
  o.check_quorum = false;  // No stickiness: acceptors promise any higher ballot.
  o.stop_removed_members = false;
  Cluster c(o);
  TagOutcome out;
  using consensus::ConfChangeType;
  const NodeId l1 = WaitForLeader(c);
  EXPECT_NE(l1, consensus::kNoNode);
  if (l1 == consensus::kNoNode) return out;
  auto change = [&](ConfChangeType type, NodeId node, NodeId watcher) {
    EXPECT_TRUE(c.engine(l1).ProposeConfChange({type, node, ""}).ok());
    c.RunUntil(
        [&] {
          const auto& conf = c.engine(watcher).conf_state();
          return type == ConfChangeType::kRemove     ? !conf.Contains(node)
                 : type == ConfChangeType::kAddVoter ? conf.voters.count(node) > 0
                                                     : conf.learners.count(node) > 0;
        },
        2000);
  };
  const NodeId removed = c.CreateJoiningNode();
  EXPECT_EQ(removed, 4u);
  change(ConfChangeType::kAddLearner, removed, removed);
  change(ConfChangeType::kAddVoter, removed, removed);
  c.RunFor(200);
  c.Crash(removed);
  change(ConfChangeType::kRemove, removed, l1);
  const NodeId twin = c.CreateJoiningNode(IdWithTag(consensus::paxos::BallotTag(removed)));
  change(ConfChangeType::kAddLearner, twin, twin);
  change(ConfChangeType::kAddVoter, twin, twin);
  c.RunFor(200);
  EXPECT_EQ(c.Leader(), l1);
  const consensus::Term b0 = c.engine(l1).soft_state().term;
  EXPECT_EQ(c.engine(twin).hard_state().term, b0);
  EXPECT_EQ(c.storage(removed).InitialHardState().term, b0);
  const consensus::Term shared =
      consensus::paxos::MakeBallot(consensus::paxos::BallotRound(b0) + 1, removed);

  // `twin` takes the next ballot by a transfer; `removed`, back up, campaigns in the same one.
  // Their prepares overlap at one acceptor (olds[0]); `removed` also asks `twin` itself.
  const auto olds = Others(c, {l1, removed, twin});  // The two initial members besides l1.
  const NodeId far = olds[1];                        // olds[0] hears both prepares.
  std::set<NodeId> phase1_of_shared;
  c.network().set_drop_filter([&](const consensus::Message& m) {
    if (m.type == MessageType::kPrepare && m.term == shared) phase1_of_shared.insert(m.from);
    if (m.type == MessageType::kPromise && m.reject && m.term == shared && m.to == removed) {
      ++out.taken_refusals;
    }
    if (m.type != MessageType::kPrepare) return false;
    if (m.from == twin) return m.to == far;
    if (m.from == removed) return m.to == l1;
    return false;
  });
  EXPECT_TRUE(c.engine(l1).TransferLeadership(twin).ok());
  c.Restart(removed);
  std::set<NodeId> leaders_of_shared;
  for (int i = 0; i < 2000; ++i) {
    c.Step();
    for (NodeId id : c.SelfBelievedLeaders()) {
      if (c.engine(id).soft_state().term == shared) leaders_of_shared.insert(id);
    }
  }
  out.collided = phase1_of_shared.count(twin) > 0 && phase1_of_shared.count(removed) > 0;
  out.both_led = leaders_of_shared.size() > 1;
  c.network().set_drop_filter(nullptr);
  c.RunFor(2000);
  const NodeId leader = c.Leader();
  if (leader != consensus::kNoNode && c.ProposeMarker(leader, 77).ok()) {
    c.RunUntil([&] { return c.MarkerIndex(77).has_value(); }, 2000);
    c.RunFor(300);
    out.converged = c.MarkerIndex(77).has_value();
    c.CheckConvergence();
  }
  out.violations = c.violations();
  return out;
}

TEST(PaxosScenario, RemovedMemberWithTheSameTagCannotShareABallot) {
  TagOutcome out = RemovedMemberSharesTag(Bug::kNone);
  EXPECT_TRUE(out.collided) << "the two members never campaigned in one ballot; nothing tested";
  EXPECT_GE(out.taken_refusals, 1);
  EXPECT_FALSE(out.both_led);
  EXPECT_TRUE(out.converged);
  EXPECT_TRUE(out.violations.empty()) << out.violations.front();
}

TEST(PaxosScenario, SharedBallotTagIsCaught) {
  TagOutcome out = RemovedMemberSharesTag(Bug::kPaxosSharedBallotTag);
  EXPECT_TRUE(out.collided);
  EXPECT_TRUE(out.both_led) << "the removed member never led the twin's ballot";
  ASSERT_FALSE(out.violations.empty()) << "two members led one ballot and nothing noticed";
  EXPECT_NE(out.violations.front().find("election safety"), std::string::npos)
      << out.violations.front();
}

}  // namespace
}  // namespace ballot::sim
