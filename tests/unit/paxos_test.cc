// Multi-Paxos engine: the acceptor's log, ballots, phase 1 and 2 through the engine contract.
#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "consensus/engine.h"
#include "consensus/memory_storage.h"
#include "consensus/paxos/ballot.h"
#include "consensus/paxos/paxos_engine.h"
#include "consensus/paxos/paxos_log.h"

namespace ballot::consensus::paxos {
namespace {

Entry E(Term term, Index index, std::string data = "") {
  return Entry{term, index, EntryType::kNormal, std::move(data)};
}

// Persists what the log hands out, as a host does, then stabilizes.
void Persist(PaxosLog& log, MemoryStorage& storage) {
  std::vector<Entry> entries = log.unstable_entries();
  log.MarkHandedOut();
  ASSERT_TRUE(storage.Append(entries).ok());
  log.Stabilize();
}

TEST(PaxosLog, WritePastTheEndLeavesHoles) {
  MemoryStorage storage;
  PaxosLog log(&storage, 0, 0);
  log.Write({E(5, 3, "c")});
  EXPECT_EQ(log.LastIndex(), 3u);
  EXPECT_EQ(log.TermAt(1), std::optional<Term>(0));
  EXPECT_EQ(log.TermAt(2), std::optional<Term>(0));
  EXPECT_TRUE(IsHole(*log.EntryAt(1)));
  EXPECT_EQ(log.EntryAt(3)->data, "c");
  Persist(log, storage);
  EXPECT_EQ(storage.LastIndex(), 3u);
  EXPECT_TRUE(log.unstable_entries().empty());
}

TEST(PaxosLog, RewritingASlotKeepsTheSlotsAfterIt) {
  MemoryStorage storage;
  PaxosLog log(&storage, 0, 0);
  log.Write({E(5, 1, "a"), E(5, 2, "b"), E(5, 3, "c")});
  Persist(log, storage);
  log.Write({E(7, 2, "B")});
  // The whole suffix from slot 2 goes out again, so that a suffix-replacing append keeps slot 3.
  ASSERT_EQ(log.unstable_entries().size(), 2u);
  Persist(log, storage);
  EXPECT_EQ(storage.LastIndex(), 3u);
  EXPECT_EQ(*storage.TermAt(2), 7u);
  EXPECT_EQ(*storage.TermAt(3), 5u);
  EXPECT_EQ(log.EntryAt(2)->data, "B");
}

TEST(PaxosLog, AWriteDuringPersistStaysUnstable) {
  MemoryStorage storage;
  PaxosLog log(&storage, 0, 0);
  log.Write({E(5, 1, "a"), E(0, 2), E(5, 3, "c")});
  std::vector<Entry> handed = log.unstable_entries();
  log.MarkHandedOut();
  log.Write({E(5, 2, "b")});  // The hole is filled while the host persists the Ready.
  ASSERT_TRUE(storage.Append(handed).ok());
  log.Stabilize();
  // Slot 1 is durable; slot 2 (and what follows it) must still be handed out.
  ASSERT_FALSE(log.unstable_entries().empty());
  EXPECT_EQ(log.unstable_entries().front().index, 2u);
  Persist(log, storage);
  EXPECT_EQ(*storage.TermAt(2), 5u);
}

TEST(PaxosLog, RestoreKeepsAcceptedSlotsAfterTheSnapshot) {
  MemoryStorage storage;
  PaxosLog log(&storage, 0, 0);
  log.Write({E(0, 1), E(5, 2, "b"), E(5, 3, "c")});
  Persist(log, storage);
  Snapshot snapshot;
  snapshot.meta.index = 2;
  snapshot.meta.term = 4;
  log.Restore(snapshot);
  EXPECT_EQ(log.committed(), 2u);
  EXPECT_EQ(log.LastIndex(), 3u);
  EXPECT_EQ(log.EntryAt(3)->data, "c");
}

TEST(PaxosBallot, PacksRoundAndOwnerInOrder) {
  EXPECT_EQ(BallotRound(MakeBallot(7, 3)), 7u);
  EXPECT_EQ(BallotOwner(MakeBallot(7, 3)), 3u);
  EXPECT_LT(MakeBallot(7, 9), MakeBallot(8, 1));
  EXPECT_LT(MakeBallot(7, 1), MakeBallot(7, 2));
}

// A minimal host for a few engines: persists each Ready, delivers messages in FIFO order.
class Host {
 public:
  explicit Host(int n) {
    ConfState conf;
    for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) conf.voters.insert(id);
    for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) {
      auto storage = std::make_unique<MemoryStorage>();
      storage->SetInitialConfState(conf);
      Config config;
      config.id = id;
      config.storage = storage.get();
      config.seed = id;
      auto engine = NewEngine(EngineKind::kMultiPaxos, config);
      EXPECT_TRUE(engine.ok()) << engine.status().ToString();
      storages_[id] = std::move(storage);
      engines_[id] = std::move(engine).value();
    }
  }
  Engine& engine(NodeId id) { return *engines_.at(id); }
  const MemoryStorage& storage(NodeId id) { return *storages_.at(id); }
  std::vector<Entry>& applied(NodeId id) { return applied_[id]; }
  std::vector<Message>& after_persist() { return after_persist_; }

  void Stabilize() {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      for (auto& [id, e] : engines_) {
        if (!e->HasReady()) continue;
        moved = true;
        Ready rd = e->GetReady();
        for (const Message& m : rd.messages) queue_.push_back(m);
        EXPECT_TRUE(storages_[id]->Append(rd.entries).ok());
        if (rd.hard_state) storages_[id]->SetHardState(*rd.hard_state);
        for (const Message& m : rd.messages_after_persist) {
          queue_.push_back(m);
          after_persist_.push_back(m);
        }
        for (const Entry& c : rd.committed_entries) applied_[id].push_back(c);
        e->Advance();
      }
      while (!queue_.empty()) {
        Message m = queue_.front();
        queue_.pop_front();
        EXPECT_TRUE(engines_[m.to]->Step(m).ok()) << m.ToString();
        moved = true;
      }
      if (!moved) return;
    }
    ADD_FAILURE() << "did not stabilize";
  }
  void Elect(NodeId id) {
    for (int i = 0; i < 40 && engine(id).soft_state().role != Role::kLeader; ++i) {
      engine(id).Tick();
      Stabilize();
    }
    ASSERT_EQ(engine(id).soft_state().role, Role::kLeader);
  }

 private:
  std::map<NodeId, std::unique_ptr<MemoryStorage>> storages_;
  std::map<NodeId, std::unique_ptr<Engine>> engines_;
  std::map<NodeId, std::vector<Entry>> applied_;
  std::deque<Message> queue_;
  std::vector<Message> after_persist_;
};

TEST(PaxosEngine, TakesLargeIdsAndRefusesMembersSharingABallotTag) {
  // etcd-style 64-bit ids map to 20-bit tags; ids that fit are their own tags.
  EXPECT_EQ(BallotTag(7), 7u);
  const NodeId big = 0x8e9e05c52164694dull;
  EXPECT_EQ(BallotOwner(MakeBallot(3, big)), BallotTag(big));
  EXPECT_NE(BallotTag(big), 0u);
  {
    MemoryStorage storage;
    storage.SetInitialConfState(ConfState{{big, big + 1, big + 2}, {}});
    Config config;
    config.id = big;
    config.storage = &storage;
    EXPECT_TRUE(NewEngine(EngineKind::kMultiPaxos, config).ok());
  }
  // Two ids with one tag (found by the birthday bound) cannot be in one configuration.
  std::map<NodeId, NodeId> seen;
  NodeId a = 0, b = 0;
  for (NodeId id = NodeId{1} << 40; b == 0; ++id) {
    auto [it, inserted] = seen.emplace(BallotTag(id), id);
    if (!inserted) a = it->second, b = id;
  }
  MemoryStorage storage;
  storage.SetInitialConfState(ConfState{{a, b}, {}});
  Config config;
  config.id = a;
  config.storage = &storage;
  auto engine = NewEngine(EngineKind::kMultiPaxos, config);
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(CheckBallotTags(ConfState{{a}, {}}, b).ok());
  EXPECT_TRUE(CheckBallotTags(ConfState{{a}, {}}, big).ok());
}

TEST(PaxosEngine, ThreeMembersChooseAndLearn) {
  Host h(3);
  h.Elect(1);
  const Term ballot = h.engine(1).soft_state().term;
  EXPECT_EQ(BallotOwner(ballot), 1u);
  ASSERT_TRUE(h.engine(1).Propose("x").ok());
  h.Stabilize();
  h.engine(1).Tick();  // A heartbeat carries the commit point to the acceptors.
  h.Stabilize();
  for (NodeId id : {1, 2, 3}) {
    std::vector<std::string> data;
    for (const Entry& e : h.applied(id)) {
      if (e.type == EntryType::kNormal) data.push_back(e.data);
    }
    EXPECT_EQ(data, std::vector<std::string>{"x"}) << "member " << id;
    EXPECT_EQ(h.engine(id).TermAt(h.engine(1).last_index()), ballot);
  }
  // Promises and acceptances promise durability: they left after the Ready was persisted.
  bool promised = false;
  for (const Message& m : h.after_persist()) promised |= m.type == MessageType::kPromise;
  EXPECT_TRUE(promised);
}

TEST(PaxosEngine, RequestsToAFollowerAreRefusedLikeRafts) {
  Host h(3);
  h.Elect(1);
  EXPECT_EQ(h.engine(2).Propose("x").code(), StatusCode::kUnavailable);
  EXPECT_EQ(h.engine(2).ProposeConfChange({ConfChangeType::kAddLearner, 9, ""}).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(h.engine(2).TransferLeadership(3).code(), StatusCode::kUnavailable);
  EXPECT_EQ(h.engine(1).TransferLeadership(9).code(), StatusCode::kInvalidArgument);
  Host lonely(3);
  EXPECT_EQ(lonely.engine(2).ReadIndex("r").code(), StatusCode::kUnavailable);
}

TEST(PaxosEngine, AnAcceptFromAnotherMembersBallotIsRejected) {
  Host h(3);
  Message m;
  m.type = MessageType::kAccept;
  m.from = 2;
  m.to = 1;
  m.term = MakeBallot(5, 3);  // Member 3's ballot, sent by member 2.
  EXPECT_EQ(h.engine(1).Step(m).code(), StatusCode::kInvalidArgument);
}

TEST(PaxosEngine, AHigherBallotDeposesTheLeaderAndKeepsChosenValues) {
  Host h(3);
  h.Elect(1);
  ASSERT_TRUE(h.engine(1).Propose("x").ok());
  h.Stabilize();
  // Member 2 is asked to take over (as in a leadership transfer) and runs phase 1.
  ASSERT_TRUE(h.engine(1).TransferLeadership(2).ok());
  h.Stabilize();
  EXPECT_EQ(h.engine(2).soft_state().role, Role::kLeader);
  EXPECT_EQ(h.engine(1).soft_state().role, Role::kFollower);
  EXPECT_GT(h.engine(2).soft_state().term, MakeBallot(1, 1));
  ASSERT_TRUE(h.engine(2).Propose("y").ok());
  h.Stabilize();
  h.engine(2).Tick();
  h.Stabilize();
  std::vector<std::string> data;
  for (const Entry& e : h.applied(3)) {
    if (e.type == EntryType::kNormal) data.push_back(e.data);
  }
  EXPECT_EQ(data, (std::vector<std::string>{"x", "y"}));
}

// A member id above the tag range whose ballot tag is `tag`.
NodeId TwinOf(NodeId tag) {
  for (NodeId id = kBallotIdMax + 1;; ++id) {
    if (BallotTag(id) == tag) return id;
  }
}

// The replies member `to` sends once its Ready is persisted, after stepping `m`.
std::vector<Message> StepAndReply(Engine& engine, MemoryStorage& storage, const Message& m) {
  EXPECT_TRUE(engine.Step(m).ok()) << m.ToString();
  std::vector<Message> out;
  while (engine.HasReady()) {
    Ready rd = engine.GetReady();
    EXPECT_TRUE(storage.Append(rd.entries).ok());
    if (rd.hard_state) storage.SetHardState(*rd.hard_state);
    out.insert(out.end(), rd.messages.begin(), rd.messages.end());
    out.insert(out.end(), rd.messages_after_persist.begin(), rd.messages_after_persist.end());
    engine.Advance();
  }
  return out;
}

Message Prepare(NodeId from, Term ballot) {
  Message m;
  m.type = MessageType::kPrepare;
  m.from = from;
  m.to = 2;
  m.term = ballot;
  return m;
}

TEST(PaxosEngine, ABallotIsBoundToTheFirstMemberThatUsesIt) {
  const NodeId twin = TwinOf(1);  // Shares member 1's tag, hence its ballots.
  const Term ballot = MakeBallot(4, 1);
  auto start = [](MemoryStorage& storage) {
    storage.SetInitialConfState(ConfState{{1, 2, 3}, {}});
    Config config;
    config.id = 2;
    config.storage = &storage;
    auto engine = NewEngine(EngineKind::kMultiPaxos, config);
    EXPECT_TRUE(engine.ok());
    return std::move(engine).value();
  };
  auto promised = [](const std::vector<Message>& replies, NodeId to) {
    for (const Message& m : replies) {
      if (m.type == MessageType::kPromise && m.to == to) return !m.reject;
    }
    ADD_FAILURE() << "no promise sent to " << to;
    return false;
  };
  {
    MemoryStorage storage;
    auto engine = start(storage);
    EXPECT_TRUE(promised(StepAndReply(*engine, storage, Prepare(1, ballot)), 1));
    EXPECT_EQ(engine->hard_state().vote, 1u) << "the binding is not in the hard state";
    // The twin's prepare of the same ballot is refused in that ballot; member 1's retransmission
    // is still answered.
    auto refused = StepAndReply(*engine, storage, Prepare(twin, ballot));
    EXPECT_FALSE(promised(refused, twin));
    EXPECT_EQ(refused.front().term, ballot);
    EXPECT_TRUE(promised(StepAndReply(*engine, storage, Prepare(1, ballot)), 1));
    // So is a heartbeat of the twin: with a rejection no acceptor sends the owner.
    Message hb;
    hb.type = MessageType::kHeartbeat;
    hb.from = twin;
    hb.to = 2;
    hb.term = ballot;
    auto replies = StepAndReply(*engine, storage, hb);
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_EQ(replies[0].type, MessageType::kHeartbeatResponse);
    EXPECT_TRUE(replies[0].reject);
    // The binding survives a restart.
    auto restarted = start(storage);
    EXPECT_FALSE(promised(StepAndReply(*restarted, storage, Prepare(twin, ballot)), twin));
    EXPECT_TRUE(promised(StepAndReply(*restarted, storage, Prepare(1, ballot)), 1));
  }
  {
    // A ballot found only in an accepted slot (the hard state torn off) is bound by its first
    // user, whichever of the two that is.
    MemoryStorage storage;
    ASSERT_TRUE(storage.Append({E(ballot, 1, "v")}).ok());
    auto engine = start(storage);
    EXPECT_EQ(engine->hard_state().term, ballot);
    EXPECT_EQ(engine->hard_state().vote, kNoNode);
    EXPECT_TRUE(promised(StepAndReply(*engine, storage, Prepare(twin, ballot)), twin));
    EXPECT_FALSE(promised(StepAndReply(*engine, storage, Prepare(1, ballot)), 1));
  }
}

// A long tail of accepted slots is reported in promise parts of at most max_message_bytes, each
// naming the slot before its first and, but for the last, its own last slot; a prepare from a
// later slot (the proposer asking again) gets the parts from there.
TEST(PaxosEngine, PromisesAreBoundedParts) {
  MemoryStorage storage;
  storage.SetInitialConfState(ConfState{{1, 2, 3}, {}});
  std::vector<Entry> tail;
  for (Index i = 1; i <= 10; ++i) tail.push_back(E(MakeBallot(1, 1), i, std::string(100, 'x')));
  ASSERT_TRUE(storage.Append(tail).ok());
  Config config;
  config.id = 2;
  config.storage = &storage;
  config.max_message_bytes = 300;  // Two slots of 124 accounted bytes, not three.
  auto engine = NewEngine(EngineKind::kMultiPaxos, config);
  ASSERT_TRUE(engine.ok());
  const Term ballot = MakeBallot(2, 3);
  for (Index asked_from : {Index{0}, Index{6}}) {
    Message prepare = Prepare(3, ballot);
    prepare.index = asked_from;
    auto parts = StepAndReply(**engine, storage, prepare);
    ASSERT_EQ(parts.size(), (10 - asked_from) / 2);
    Index covered = asked_from;
    for (size_t i = 0; i < parts.size(); ++i) {
      const Message& p = parts[i];
      ASSERT_EQ(p.type, MessageType::kPromise);
      ASSERT_FALSE(p.reject);
      EXPECT_EQ(p.index, covered);
      ASSERT_EQ(p.entries.size(), 2u);
      EXPECT_EQ(p.entries.front().index, covered + 1);
      const bool last = i + 1 == parts.size();
      EXPECT_EQ(p.reject_hint, last ? 0 : p.entries.back().index);
      covered = p.entries.back().index;
    }
    EXPECT_EQ(covered, 10u);
  }
}

}  // namespace
}  // namespace ballot::consensus::paxos
