// A small in-process cluster of Raft engines for unit tests: each member has a MemoryStorage; the
// harness plays the host (persist a Ready, send its messages, apply, Advance) and the network (a
// FIFO queue with per-pair and per-message drop rules). Deterministic: no threads, no clocks.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "consensus/engine.h"
#include "consensus/memory_storage.h"
#include "consensus/raft/raft.h"
#include "consensus/raft/raft_engine.h"

namespace ballot::consensus::raft::testing {

// A message as the harness saw it leave a member.
struct Sent {
  Message message;
  bool after_persist = false;
  // The hard state of the Ready the message left in (if that Ready had one).
  std::optional<HardState> ready_hard_state;
};

struct Member {
  NodeId id = kNoNode;
  Config config;
  std::unique_ptr<MemoryStorage> storage = std::make_unique<MemoryStorage>();
  std::unique_ptr<Engine> engine;
  std::vector<Entry> applied;  // Every committed entry handed out, in order, across restarts.
  Index applied_index = 0;
  std::vector<Snapshot> installed_snapshots;
  std::vector<ReadState> reads;
  std::vector<Ready> readies;  // Every Ready taken, for inspection.
  bool down = false;

  raft::Raft& raft() { return *static_cast<raft::Raft*>(engine.get()); }
};

class Cluster {
 public:
  using Tweak = std::function<void(Config&)>;

  // Members 1..n, all voters, bootstrapped with the same ConfState.
  // `bug` needs a test build of the engine (BALLOT_BROKEN_VARIANTS); kNone otherwise.
  explicit Cluster(int n, const Tweak& tweak = nullptr, Bug bug = Bug::kNone)
      : tweak_(tweak), bug_(bug) {
    ConfState conf;
    for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) conf.voters.insert(id);
    for (NodeId id = 1; id <= static_cast<NodeId>(n); ++id) AddMember(id, conf);
  }

  // A member that starts with `conf` (empty for one that waits to hear from the leader).
  void AddMember(NodeId id, const ConfState& conf) {
    Member& m = members_[id];
    m.id = id;
    m.storage->SetInitialConfState(conf);
    m.config.id = id;
    m.config.election_ticks = 10;
    m.config.heartbeat_ticks = 1;
    m.config.seed = 1000 + id;
    if (tweak_) tweak_(m.config);
    m.config.storage = m.storage.get();
    Start(m, 0);
  }

  // Drops the engine (and anything not persisted: the harness persists every Ready before the
  // next) and starts a new one from storage, with the host's applied index `applied`.
  void Restart(NodeId id, Index applied) { Start(members_.at(id), applied); }
  // Stops a member for good (a host shuts down a member that was removed).
  void Stop(NodeId id) { members_.at(id).down = true; }

  Member& member(NodeId id) { return members_.at(id); }
  Engine& engine(NodeId id) { return *members_.at(id).engine; }
  raft::Raft& raft(NodeId id) { return members_.at(id).raft(); }
  std::vector<NodeId> ids() const {
    std::vector<NodeId> out;
    for (const auto& [id, m] : members_) out.push_back(id);
    return out;
  }

  // Network faults.
  void Cut(NodeId a, NodeId b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void CutOneWay(NodeId from, NodeId to) { cut_.insert({from, to}); }
  void Isolate(NodeId id) {
    for (NodeId other : ids()) {
      if (other != id) Cut(id, other);
    }
  }
  void Heal() { cut_.clear(); }
  // Messages for which `drop` returns true are lost (on top of cuts).
  void SetDropRule(std::function<bool(const Message&)> drop) { drop_ = std::move(drop); }
  void ClearDropRule() { drop_ = nullptr; }

  void Tick(NodeId id, int times = 1) {
    if (members_.at(id).down) return;
    for (int i = 0; i < times; ++i) {
      engine(id).Tick();
      Stabilize();
    }
  }
  void TickAll(int times = 1) {
    for (int i = 0; i < times; ++i) {
      for (NodeId id : ids()) {
        if (!members_.at(id).down) engine(id).Tick();
      }
      Stabilize();
    }
  }

  // Makes `id` the leader: ticks only it (others stay quiet, so its timeout fires first); if
  // followers still stick to a leader they heard recently, a TimeoutNow (as in a leadership
  // transfer) makes it campaign past their stickiness.
  void Elect(NodeId id) {
    const int ticks = 2 * member(id).config.election_ticks + 1;
    for (int i = 0; i < ticks && !LeadsHighestTerm(id); ++i) Tick(id);
    if (!LeadsHighestTerm(id)) {
      ASSERT_NE(engine(id).soft_state().role, Role::kLeader) << "stale leader " << id;
      Message m;
      m.type = MessageType::kTimeoutNow;
      m.from = id == 1 ? 2 : 1;
      m.to = id;
      m.term = engine(id).soft_state().term;
      ASSERT_TRUE(engine(id).Step(m).ok());
      Stabilize();
    }
    ASSERT_TRUE(LeadsHighestTerm(id)) << "member " << id << " not elected";
  }

  bool LeadsHighestTerm(NodeId id) {
    for (NodeId other : ids()) {
      if (engine(other).soft_state().term > engine(id).soft_state().term) return false;
    }
    return engine(id).soft_state().role == Role::kLeader;
  }

  NodeId Leader() {
    NodeId leader = kNoNode;
    Term term = 0;
    for (NodeId id : ids()) {
      const SoftState ss = engine(id).soft_state();
      if (members_.at(id).down) continue;
      if (ss.role == Role::kLeader && ss.term >= term) {
        leader = id;
        term = ss.term;
      }
    }
    return leader;
  }

  // Handles Readies and delivers messages until nothing moves.
  void Stabilize() {
    for (int round = 0; round < 10000; ++round) {
      bool moved = false;
      for (NodeId id : ids()) moved |= HandleReady(id);
      while (!network_.empty()) {
        Message msg = std::move(network_.front());
        network_.pop_front();
        Deliver(msg);
        moved = true;
      }
      if (!moved) return;
    }
    ADD_FAILURE() << "cluster did not stabilize";
  }

  // Takes and handles one Ready of `id` as a host would; returns whether there was one.
  bool HandleReady(NodeId id) {
    Member& m = members_.at(id);
    if (m.down || !m.engine->HasReady()) return false;
    Ready rd = m.engine->GetReady();
    for (const Message& msg : rd.messages) Send(msg, false, rd.hard_state);
    if (rd.snapshot) {
      EXPECT_TRUE(m.storage->ApplySnapshot(*rd.snapshot).ok());
    }
    // The contract's order: snapshot, entries, then hard state.
    EXPECT_TRUE(m.storage->Append(rd.entries).ok());
    if (rd.hard_state) m.storage->SetHardState(*rd.hard_state);
    for (const Message& msg : rd.messages_after_persist) Send(msg, true, rd.hard_state);
    if (rd.snapshot) {
      m.installed_snapshots.push_back(*rd.snapshot);
      m.applied_index = rd.snapshot->meta.index;
    }
    for (const Entry& e : rd.committed_entries) {
      if (e.index != m.applied_index + 1) ++out_of_order_applies_;
      if (check_apply_order_) {
        EXPECT_EQ(e.index, m.applied_index + 1) << "member " << id << " applied out of order";
      }
      EXPECT_LE(e.index, m.engine->committed_index());
      m.applied_index = e.index;
      m.applied.push_back(e);
    }
    for (const ReadState& rs : rd.read_states) m.reads.push_back(rs);
    m.readies.push_back(std::move(rd));
    m.engine->Advance();
    return true;
  }

  // For tests of broken variants: count out-of-order applies instead of failing on them.
  void set_check_apply_order(bool check) { check_apply_order_ = check; }
  int out_of_order_applies() const { return out_of_order_applies_; }

  // Every message any member sent, in order.
  const std::vector<Sent>& sent() const { return sent_; }
  void ClearSent() { sent_.clear(); }
  std::vector<Message> SentOf(MessageType type, NodeId from = kNoNode, NodeId to = kNoNode) const {
    std::vector<Message> out;
    for (const Sent& s : sent_) {
      if (s.message.type != type) continue;
      if (from != kNoNode && s.message.from != from) continue;
      if (to != kNoNode && s.message.to != to) continue;
      out.push_back(s.message);
    }
    return out;
  }

  // Data of the normal entries `id` applied, in order.
  std::vector<std::string> AppliedData(NodeId id) const {
    std::vector<std::string> out;
    for (const Entry& e : members_.at(id).applied) {
      if (e.type == EntryType::kNormal) out.push_back(e.data);
    }
    return out;
  }

  // Proposes on `id` and stabilizes.
  void Propose(NodeId id, const std::string& data) {
    ASSERT_TRUE(engine(id).Propose(data).ok());
    Stabilize();
  }

 private:
  void Start(Member& m, Index applied) {
    m.config.applied = applied;
    auto engine = NewEngine(EngineKind::kRaft, m.config, bug_);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    m.engine = std::move(engine).value();
    m.applied_index = applied;
    if (applied == 0) m.applied_index = m.storage->GetSnapshot().meta.index;
  }

  void Send(const Message& msg, bool after_persist, const std::optional<HardState>& hs) {
    sent_.push_back(Sent{msg, after_persist, hs});
    if (cut_.count({msg.from, msg.to}) > 0) return;
    if (drop_ && drop_(msg)) return;
    network_.push_back(msg);
  }

  void Deliver(const Message& msg) {
    auto it = members_.find(msg.to);
    if (it == members_.end() || it->second.down) return;
    const Status st = it->second.engine->Step(msg);
    EXPECT_TRUE(st.ok()) << st.ToString() << " for " << msg.ToString();
  }

  Tweak tweak_;
  Bug bug_ = Bug::kNone;
  std::map<NodeId, Member> members_;
  std::deque<Message> network_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::function<bool(const Message&)> drop_;
  std::vector<Sent> sent_;
  bool check_apply_order_ = true;
  int out_of_order_applies_ = 0;
};

}  // namespace ballot::consensus::raft::testing
