#include "cluster.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace ballot::sim {

using consensus::ConfChangeType;
using consensus::EntryType;
using consensus::Ready;
using consensus::Role;

struct Cluster::Node {
  NodeId id = consensus::kNoNode;
  bool up = true;
  bool removed = false;
  std::unique_ptr<consensus::MemoryStorage> storage;  // What is durable.
  std::unique_ptr<consensus::Engine> engine;
  KvStore kv;  // Durable together with kv_applied (see kv.h).
  Index kv_applied = 0;

  std::optional<Ready> pending;  // Taken from the engine, not yet durable.
  // A hard state written without a sync (a new commit index only): durable with the next sync,
  // lost by a crash before it.
  std::optional<consensus::HardState> unsynced_hard_state;
  uint64_t ready_seq = 0;  // Readies taken so far.
  int64_t sync_done_ms = 0;

  double clock_rate = 1.0;
  double local_ms = 0;  // This member's own clock.
  double next_tick_local_ms = 0;
  int64_t paused_until_ms = 0;
  std::vector<Message> inbox;

  Role last_role = Role::kFollower;
  Term last_term = 0;
  Index last_commit = 0;

  std::map<uint64_t, int> waiting_writes;    // op id -> client
  std::map<std::string, int> waiting_reads;  // read context -> client
  struct ReadyRead {
    Index index;
    int client;
    uint64_t op_id;
  };
  std::vector<ReadyRead> reads_ready;
};

namespace {

uint64_t Fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::string ReadContext(uint64_t op_id) { return "r" + std::to_string(op_id); }

}  // namespace

uint64_t HashEntry(const Entry& e) {
  return Fnv1a(e.data, 0xcbf29ce484222325ull ^ static_cast<uint64_t>(e.type));
}

std::string DescribeEntry(const Entry& e) {
  return "(index " + std::to_string(e.index) + ", term " + std::to_string(e.term) + ", type " +
         std::to_string(static_cast<int>(e.type)) + ", " + std::to_string(e.data.size()) +
         " bytes)";
}

Cluster::Cluster(const ClusterOptions& options) : options_(options), rng_(options.seed) {
  network_ = std::make_unique<Network>(rng_.Fork(), options_.network);
  for (int i = 0; i < options_.members; ++i) initial_conf_.voters.insert(next_node_id_ + i);
  for (int i = 0; i < options_.members; ++i) {
    NodeId id = next_node_id_++;
    nodes_[id] = MakeNode(id);
  }
}

Cluster::~Cluster() = default;

std::unique_ptr<Cluster::Node> Cluster::MakeNode(NodeId id) {
  auto n = std::make_unique<Node>();
  n->id = id;
  n->storage = std::make_unique<consensus::MemoryStorage>();
  // Every member starts from the membership the cluster was created with, a joining one too (as an
  // etcd member joining with --initial-cluster-state existing is told the cluster): replaying the
  // log's changes on top of it gives the membership at any index.
  n->storage->SetInitialConfState(initial_conf_);
  const double d = options_.clock_drift;
  n->clock_rate = 1.0 + (d > 0 ? (static_cast<double>(rng_.Uniform(2001)) / 1000.0 - 1.0) * d : 0);
  n->local_ms = static_cast<double>(rng_.Uniform(static_cast<uint64_t>(options_.tick_ms)));
  n->next_tick_local_ms = static_cast<double>(options_.tick_ms);
  StartEngine(*n);
  return n;
}

void Cluster::StartEngine(Node& n) {
  consensus::Config config;
  config.id = n.id;
  config.election_ticks = options_.election_ticks;
  config.heartbeat_ticks = 1;
  config.pre_vote = options_.pre_vote;
  config.check_quorum = options_.check_quorum;
  config.read_mode = options_.read_mode;
  config.lease_drift_ticks = options_.lease_drift_ticks;
  config.max_message_bytes = options_.max_message_bytes;
  config.max_inflight_messages = options_.max_inflight_messages;
  config.snapshot_chunk_bytes = options_.snapshot_chunk_bytes;
  config.applied = n.kv_applied;
  config.seed = rng_.Fork();
  config.storage = n.storage.get();
  auto engine = consensus::NewEngine(options_.engine, config, options_.bug);
  BALLOT_ASSERT(engine.ok(), "cannot start engine: " + engine.status().ToString());
  n.engine = std::move(engine).value();
  n.last_role = Role::kFollower;
  n.last_term = n.engine->soft_state().term;
}

Cluster::Node& Cluster::node(NodeId id) {
  auto it = nodes_.find(id);
  BALLOT_ASSERT(it != nodes_.end(), "no member " + std::to_string(id));
  return *it->second;
}

const Cluster::Node& Cluster::node(NodeId id) const {
  auto it = nodes_.find(id);
  BALLOT_ASSERT(it != nodes_.end(), "no member " + std::to_string(id));
  return *it->second;
}

std::vector<NodeId> Cluster::node_ids() const {
  std::vector<NodeId> ids;
  for (const auto& [id, n] : nodes_) ids.push_back(id);
  return ids;
}

bool Cluster::IsUp(NodeId id) const { return node(id).up; }
bool Cluster::IsRemoved(NodeId id) const { return node(id).removed; }
consensus::Engine& Cluster::engine(NodeId id) { return *node(id).engine; }
const consensus::MemoryStorage& Cluster::storage(NodeId id) const { return *node(id).storage; }
const KvStore& Cluster::kv(NodeId id) const { return node(id).kv; }
Index Cluster::kv_applied(NodeId id) const { return node(id).kv_applied; }

NodeId Cluster::Leader() const {
  NodeId best = consensus::kNoNode;
  Term best_term = 0;
  for (const auto& [id, n] : nodes_) {
    if (!n->up || n->paused_until_ms > now_ms_) continue;
    auto ss = n->engine->soft_state();
    if (ss.role == Role::kLeader && (best == consensus::kNoNode || ss.term > best_term)) {
      best = id;
      best_term = ss.term;
    }
  }
  return best;
}

std::vector<NodeId> Cluster::SyncingMembers() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) {
    if (n->up && n->pending && MustSync(*n->pending)) out.push_back(id);
  }
  return out;
}

uint64_t Cluster::ReadySeq(NodeId id) const { return node(id).ready_seq; }

std::string Cluster::DescribeHost(NodeId id) const {
  const Node& n = node(id);
  std::string out = n.up ? "up" : "down";
  if (n.removed) out += " removed";
  if (n.paused_until_ms > now_ms_) out += " paused";
  if (n.pending) {
    out += " syncing until " + std::to_string(n.sync_done_ms) + "ms (" +
           std::to_string(n.pending->entries.size()) + " entries" +
           (n.pending->snapshot ? ", snapshot" : "") + ")";
  }
  return out;
}

std::vector<NodeId> Cluster::SelfBelievedLeaders() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) {
    if (n->up && n->engine->soft_state().role == Role::kLeader) out.push_back(id);
  }
  return out;
}

const consensus::Ready* Cluster::PendingReady(NodeId id) const {
  const Node& n = node(id);
  return n.pending ? &*n.pending : nullptr;
}

void Cluster::Violation(std::string what) {
  violations_.push_back("t=" + std::to_string(now_ms_) + "ms: " + std::move(what));
}

void Cluster::Trace(std::string line) {
  constexpr size_t kTraceMax = 4000;
  if (trace_.size() < kTraceMax) trace_.push_back("t=" + std::to_string(now_ms_) + " " + line);
}

// ---- Time ----

void Cluster::Step() {
  ++now_ms_;
  for (Message& m : network_->Due(now_ms_)) {
    if (options_.trace_member != consensus::kNoNode &&
        (m.to == options_.trace_member || m.from == options_.trace_member)) {
      std::fprintf(stderr, "t=%ld deliver %s\n", static_cast<long>(now_ms_), m.ToString().c_str());
    }
    auto it = nodes_.find(m.to);
    if (it == nodes_.end() || !it->second->up) continue;
    it->second->inbox.push_back(std::move(m));
  }
  for (auto& [id, n] : nodes_) StepNode(*n);
  ShutDownRemovedMembers();
  ExpireClientOps();
}

// The operator stops a removed member only once every voter of the new configuration has applied
// its removal: until then the remaining members may still need its vote or its acknowledgement to
// commit the removal itself (a two-voter cluster removing one of them, the leader removing itself).
void Cluster::ShutDownRemovedMembers() {
  if (!options_.stop_removed_members) return;
  const NodeId leader = Leader();
  if (leader == consensus::kNoNode) return;
  const Node& l = node(leader);
  const auto& conf = l.engine->conf_state();
  for (auto it = removals_.begin(); it != removals_.end();) {
    const auto [removed, index] = *it;
    bool done = leader != removed && !conf.Contains(removed) && l.kv_applied >= index;
    for (NodeId v : conf.voters) {
      if (!done) break;
      const Node& n = node(v);
      done = n.up && n.kv_applied >= index;
    }
    if (!done) {
      ++it;
      continue;
    }
    if (!node(removed).removed) Decommission(removed);
    it = removals_.erase(it);
  }
}

void Cluster::RunFor(int64_t ms) {
  for (int64_t i = 0; i < ms; ++i) Step();
}

bool Cluster::RunUntil(const std::function<bool()>& pred, int64_t max_ms) {
  for (int64_t i = 0; i < max_ms; ++i) {
    if (pred()) return true;
    Step();
  }
  return pred();
}

void Cluster::StepNode(Node& n) {
  if (!n.up) {
    n.inbox.clear();
    return;
  }
  n.local_ms += n.clock_rate;
  if (n.paused_until_ms > now_ms_) return;
  TickNode(n);
  for (const Message& m : n.inbox) {
    Status s = n.engine->Step(m);
    (void)s;  // Errors are for misrouted or malformed messages; the engine stays consistent.
  }
  n.inbox.clear();
  constexpr int kReadiesPerStepMax = 16;
  for (int i = 0; i < kReadiesPerStepMax && n.up; ++i) {
    if (n.pending) {
      if (n.sync_done_ms > now_ms_) break;
      FinishReady(n);
      continue;
    }
    if (!n.engine->HasReady()) break;
    HandleReady(n);
  }
  ServeReads(n);
  ObserveRole(n);
}

void Cluster::TickNode(Node& n) {
  if (n.id == options_.trace_member && n.local_ms >= n.next_tick_local_ms) {
    const auto ss = n.engine->soft_state();
    std::fprintf(stderr, "t=%ld member %lu tick: %s term %lu leader %lu\n",
                 static_cast<long>(now_ms_), static_cast<unsigned long>(n.id),
                 std::string(consensus::RoleName(ss.role)).c_str(),
                 static_cast<unsigned long>(ss.term), static_cast<unsigned long>(ss.leader));
  }
  // Ticks follow the member's own clock; after a pause it catches up on every tick it missed, as
  // the real member does (it ticks by elapsed monotonic time), so a pause never stretches a lease.
  while (n.local_ms >= n.next_tick_local_ms) {
    n.engine->Tick();
    n.next_tick_local_ms += static_cast<double>(options_.tick_ms);
  }
}

// ---- The Ready loop ----

void Cluster::HandleReady(Node& n) {
  Ready rd = n.engine->GetReady();
  ++n.ready_seq;
  for (const Message& m : rd.messages) {
    NotePromise(m);
    network_->Send(m, now_ms_);
  }
  const bool must_sync = MustSync(rd);
  n.pending = std::move(rd);
  n.sync_done_ms =
      now_ms_ + (must_sync ? rng_.Range(options_.disk_sync_ms_min, options_.disk_sync_ms_max) : 0);
  if (n.sync_done_ms <= now_ms_) FinishReady(n);
}

void Cluster::FinishReady(Node& n) {
  Ready rd = std::move(*n.pending);
  n.pending.reset();
  Persist(n, rd);
  for (const Message& m : rd.messages_after_persist) {
    NotePromise(m);
    network_->Send(m, now_ms_);
  }
  if (rd.snapshot) {
    const auto& snap = *rd.snapshot;
    if (snap.meta.index <= n.kv_applied) {
      Violation("member " + std::to_string(n.id) + " was handed a snapshot at " +
                std::to_string(snap.meta.index) + " but has applied " +
                std::to_string(n.kv_applied));
    } else if (!n.kv.Restore(snap.data)) {
      Violation("member " + std::to_string(n.id) + " got a malformed snapshot");
    } else {
      n.kv_applied = snap.meta.index;
    }
  }
  ApplyEntries(n, rd.committed_entries);
  for (const auto& rs : rd.read_states) {
    auto it = n.waiting_reads.find(rs.context);
    if (it == n.waiting_reads.end()) continue;
    uint64_t op_id = std::stoull(rs.context.substr(1));
    n.reads_ready.push_back({rs.index, it->second, op_id});
    n.waiting_reads.erase(it);
  }
  n.engine->Advance();
  MaybeSnapshot(n);
}

// Writes in the member's order: snapshot, entries, then hard state. The commit index in the hard
// state must never be durable ahead of the entries it covers (a torn write could otherwise leave
// a commit index over entries that were about to be overwritten).
void Cluster::Persist(Node& n, const Ready& rd) {
  // The slots held before this write, for telling a new acceptance from one rewritten unchanged
  // (a snapshot install erases them before the slots after it are written back).
  std::map<Index, Term> held;
  if (options_.engine == consensus::EngineKind::kMultiPaxos) {
    for (const Entry& e : rd.entries) {
      auto term = n.storage->TermAt(e.index);
      if (term.ok()) held[e.index] = *term;
    }
  }
  if (rd.snapshot) {
    Status s = n.storage->ApplySnapshot(*rd.snapshot);
    if (!s.ok()) Violation("member " + std::to_string(n.id) + " snapshot: " + s.ToString());
  }
  PersistEntries(n, rd.entries, held);
  if (n.storage->LastIndex() < n.kv_applied) {
    Violation("member " + std::to_string(n.id) + " wrote a log ending at " +
              std::to_string(n.storage->LastIndex()) + ", below its applied index " +
              std::to_string(n.kv_applied) + " (a rewrite took back durable entries)");
  }
  if (rd.hard_state) {
    if (rd.hard_state->term < n.storage->InitialHardState().term) {
      Violation("member " + std::to_string(n.id) + " persisted a lower term " +
                std::to_string(rd.hard_state->term));
    }
    if (MustSync(rd)) {
      n.storage->SetHardState(*rd.hard_state);
      n.unsynced_hard_state.reset();
    } else {
      n.unsynced_hard_state = rd.hard_state;
    }
  } else if (MustSync(rd) && n.unsynced_hard_state) {
    // A sync makes every earlier write durable.
    n.storage->SetHardState(*n.unsynced_hard_state);
    n.unsynced_hard_state.reset();
  }
}

void Cluster::PersistEntries(Node& n, const std::vector<Entry>& entries,
                             const std::map<Index, Term>& held) {
  if (entries.empty()) return;
  const Index durable_commit = n.storage->InitialHardState().commit;
  for (const Entry& e : entries) {
    if (e.index > n.storage->LastIndex() || e.index > durable_commit) break;
    auto term = n.storage->TermAt(e.index);
    if (term.ok() && *term != e.term) {
      Violation("member " + std::to_string(n.id) + " overwrote committed index " +
                std::to_string(e.index) + " (commit " + std::to_string(durable_commit) + ")");
      break;
    }
  }
  if (options_.engine == consensus::EngineKind::kMultiPaxos) CheckPromisesKept(n, entries, held);
  Status s = n.storage->Append(entries);
  if (!s.ok()) {
    Violation("member " + std::to_string(n.id) + " append at " +
              std::to_string(entries.front().index) + ": " + s.ToString());
    return;
  }
  CheckLogMatching(n, entries);
}

void Cluster::ApplyEntries(Node& n, const std::vector<Entry>& entries) {
  for (const Entry& e : entries) ApplyOne(n, e);
}

void Cluster::ApplyOne(Node& n, const Entry& e) {
  if (e.index != n.kv_applied + 1) {
    Violation("exactly-once apply: member " + std::to_string(n.id) + " applied index " +
              std::to_string(e.index) + " after " + std::to_string(n.kv_applied));
    if (e.index <= n.kv_applied) return;  // Applying it again would corrupt the state further.
  }
  const CommittedEntry mine{e.term, e.type, HashEntry(e)};
  auto [it, inserted] = committed_.emplace(e.index, mine);
  // Raft applies an entry with the term it was created in; a Paxos member applies the chosen
  // value with the ballot in which it accepted (or learned) it, so only the value must agree.
  const bool raft = options_.engine == consensus::EngineKind::kRaft;
  if (!inserted && ((raft && it->second.term != mine.term) ||
                    it->second.data_hash != mine.data_hash || it->second.type != mine.type)) {
    Violation("state machine safety: member " + std::to_string(n.id) + " applied " +
              DescribeEntry(e) + " where another member applied term " +
              std::to_string(it->second.term));
  }
  n.kv_applied = e.index;
  if (e.type == EntryType::kConfChange) {
    ConfChange cc;
    if (!ConfChange::Decode(e.data, &cc)) {
      Violation("member " + std::to_string(n.id) + " applied a malformed conf change");
      return;
    }
    Trace("member " + std::to_string(n.id) + " applies conf change type " +
          std::to_string(static_cast<int>(cc.type)) + " node " + std::to_string(cc.node) + " at " +
          std::to_string(e.index));
    if (cc.type == ConfChangeType::kRemove) removals_.emplace(cc.node, e.index);
    return;
  }
  if (e.type != EntryType::kNormal) return;
  auto cmd = Command::Decode(e.data);
  if (!cmd) {
    Violation("member " + std::to_string(n.id) + " applied an undecodable entry " +
              DescribeEntry(e));
    return;
  }
  ApplyResult result = n.kv.Apply(*cmd);
  if (cmd->kind == CommandKind::kMarker) {
    marker_index_.emplace(std::stoull(cmd->value), e.index);
    return;
  }
  auto waiting = n.waiting_writes.find(cmd->op_id);
  if (waiting == n.waiting_writes.end()) return;
  int client = waiting->second;
  n.waiting_writes.erase(waiting);
  auto open = clients_.find(client);
  if (open == clients_.end() || open->second.op_id != cmd->op_id) return;
  FinishClientOp(client, true, std::nullopt, result.cas_succeeded);
}

void Cluster::ServeReads(Node& n) {
  auto it = n.reads_ready.begin();
  while (it != n.reads_ready.end()) {
    if (n.kv_applied < it->index) {
      ++it;
      continue;
    }
    auto open = clients_.find(it->client);
    if (open != clients_.end() && open->second.op_id == it->op_id) {
      FinishClientOp(it->client, true, n.kv.Get(open->second.op.key), false);
    }
    it = n.reads_ready.erase(it);
  }
}

void Cluster::MaybeSnapshot(Node& n) {
  const Index snap_index = n.storage->GetSnapshot().meta.index;
  if (n.kv_applied < snap_index + options_.snapshot_every_entries) return;
  Status s = n.storage->CreateSnapshot(n.kv_applied, n.engine->conf_state(), n.kv.Serialize());
  if (!s.ok()) {
    Violation("member " + std::to_string(n.id) + " cannot snapshot: " + s.ToString());
    return;
  }
  if (n.kv_applied > options_.snapshot_keep_entries) {
    Status c = n.storage->Compact(n.kv_applied - options_.snapshot_keep_entries);
    if (!c.ok()) Violation("member " + std::to_string(n.id) + " cannot compact: " + c.ToString());
  }
}

// ---- Invariants ----

void Cluster::ObserveRole(Node& n) {
  const auto ss = n.engine->soft_state();
  if (ss.role == Role::kLeader) {
    auto [it, inserted] = leader_of_term_.emplace(ss.term, n.id);
    if (!inserted && it->second != n.id) {
      Violation("election safety: members " + std::to_string(it->second) + " and " +
                std::to_string(n.id) + " both lead term " + std::to_string(ss.term));
    }
    // The first leader seen to commit an index committed it in its term.
    const Index commit = n.engine->committed_index();
    for (Index c = commit; max_commit_seen_ < c;) commit_term_[++max_commit_seen_] = ss.term;
    // Raft's commit rule (paper 5.4.2): a leader moves its commit index only to an entry of its
    // own term, never by counting replicas of an older one (Figure 8).
    if (options_.engine == consensus::EngineKind::kRaft && n.last_role == Role::kLeader &&
        n.last_term == ss.term && commit > n.last_commit && n.engine->TermAt(commit) != ss.term) {
      Violation("commit rule: member " + std::to_string(n.id) + " leading term " +
                std::to_string(ss.term) + " committed index " + std::to_string(commit) +
                " of term " + std::to_string(n.engine->TermAt(commit).value_or(0)));
    }
    if (n.last_role != Role::kLeader || n.last_term != ss.term) {
      Trace("member " + std::to_string(n.id) + " leads term " + std::to_string(ss.term));
      // Multi-Paxos has no log-based election: its counterpart, that a new leader proposes the
      // chosen value in every chosen slot, is checked as its proposals reach a disk
      // (CheckChosenNeverChanges).
      if (options_.engine == consensus::EngineKind::kRaft) CheckLeaderCompleteness(n);
    }
  }
  n.last_role = ss.role;
  n.last_term = ss.term;
  n.last_commit = n.engine->committed_index();
}

// Leader completeness (paper 5.4): an entry committed in some term is in the log of every leader
// of a later term. A leader of an earlier term may still be elected late (its votes were granted
// before the later term began, and delivered slowly); it owes nothing to later commits.
void Cluster::CheckLeaderCompleteness(Node& n) {
  const Index snapshot_index = n.storage->GetSnapshot().meta.index;
  const Term leader_term = n.engine->soft_state().term;
  for (const auto& [index, entry] : committed_) {
    if (index <= snapshot_index) continue;
    auto committed_in = commit_term_.find(index);
    if (committed_in == commit_term_.end() || committed_in->second >= leader_term) continue;
    auto term = n.engine->TermAt(index);
    if (!term || *term != entry.term) {
      Violation("leader completeness: member " + std::to_string(n.id) + " leads term " +
                std::to_string(n.engine->soft_state().term) + " without committed index " +
                std::to_string(index) + " of term " + std::to_string(entry.term));
      return;
    }
  }
}

// Paxos's safety property, P2c (Paxos Made Simple 2.2): once a value is chosen in a slot, every
// proposal of a higher ballot in that slot carries that value. Every entry a member persists with
// ballot b was proposed in ballot b; if the slot was already seen chosen by a leader of a lower
// ballot, its value must be the chosen one.
void Cluster::CheckChosenNeverChanges(Node& n, const std::vector<Entry>& appended) {
  for (const Entry& e : appended) {
    if (e.term == 0) continue;  // A hole: nothing accepted.
    auto chosen = committed_.find(e.index);
    auto in = commit_term_.find(e.index);
    if (chosen == committed_.end() || in == commit_term_.end() || in->second >= e.term) continue;
    if (chosen->second.data_hash != HashEntry(e) || chosen->second.type != e.type) {
      Violation("chosen value changed: member " + std::to_string(n.id) + " accepted " +
                DescribeEntry(e) + " in a slot chosen under ballot " + std::to_string(in->second) +
                " with another value");
    }
  }
}

void Cluster::NotePromise(const Message& m) {
  if (m.type != consensus::MessageType::kPromise || m.reject) return;
  Term& promised = promised_[m.from];
  promised = std::max(promised, m.term);
}

// Paxos Made Simple 2.2, phase 2b: an acceptor never accepts a ballot below one it promised. The
// promise is judged by what left the member, so a promise sent before it was durable, and lost
// in a crash, shows up as an acceptance of a lower ballot after the restart.
void Cluster::CheckPromisesKept(Node& n, const std::vector<Entry>& appended,
                                const std::map<Index, Term>& held) {
  auto promised = promised_.find(n.id);
  if (promised == promised_.end()) return;
  for (const Entry& e : appended) {
    if (e.term == 0 || e.term >= promised->second) continue;
    auto before = held.find(e.index);
    if (before != held.end() && before->second == e.term) continue;  // Rewritten unchanged.
    Violation("promise broken: member " + std::to_string(n.id) + " accepted " + DescribeEntry(e) +
              " after promising ballot " + std::to_string(promised->second));
    return;
  }
}

void Cluster::CheckLogMatching(Node& n, const std::vector<Entry>& appended) {
  const bool raft = options_.engine == consensus::EngineKind::kRaft;
  if (!raft) CheckChosenNeverChanges(n, appended);
  for (const Entry& e : appended) {
    auto prev = n.storage->TermAt(e.index - 1);
    const Term prev_term = prev.ok() ? *prev : 0;
    auto [it, inserted] = log_entries_.emplace(std::make_pair(e.index, e.term),
                                               std::make_pair(HashEntry(e), prev_term));
    if (inserted) continue;
    if (it->second.first != HashEntry(e)) {
      Violation("log matching: member " + std::to_string(n.id) + " holds " + DescribeEntry(e) +
                " with other contents than another member at the same index and term");
    } else if (raft && prev.ok() && it->second.second != 0 && it->second.second != prev_term) {
      // Raft's log matching covers the whole prefix; Paxos slots are independent of each other.
      Violation("log matching: member " + std::to_string(n.id) + " holds " + DescribeEntry(e) +
                " after an entry of term " + std::to_string(prev_term) +
                ", another member after term " + std::to_string(it->second.second));
    }
  }
}

void Cluster::CheckConvergence() {
  NodeId leader = Leader();
  if (leader == consensus::kNoNode) {
    Violation("convergence: no leader");
    return;
  }
  const auto& conf = node(leader).engine->conf_state();
  const Node& l = node(leader);
  for (NodeId id : node_ids()) {
    if (!conf.Contains(id)) continue;
    const Node& n = node(id);
    if (n.kv_applied != l.kv_applied) {
      Violation("convergence: member " + std::to_string(id) + " applied " +
                std::to_string(n.kv_applied) + ", leader " + std::to_string(l.kv_applied));
    } else if (n.kv.Fingerprint() != l.kv.Fingerprint()) {
      Violation("convergence: member " + std::to_string(id) + " state differs from the leader's " +
                "at applied index " + std::to_string(n.kv_applied));
    }
  }
}

// ---- Faults ----

void Cluster::Crash(NodeId id, bool tear) { CrashKeeping(id, tear, std::nullopt); }

void Cluster::CrashTearing(NodeId id, size_t keep_records) {
  CrashKeeping(id, /*tear=*/true, keep_records);
}

void Cluster::CrashKeeping(NodeId id, bool tear, std::optional<size_t> keep_records) {
  Node& n = node(id);
  if (!n.up) return;
  Trace("crash member " + std::to_string(id) + (tear ? " (torn write)" : ""));
  if (tear && n.pending && MustSync(*n.pending)) {
    // A prefix of the unsynced write reached the disk: snapshot, entries, then hard state, the
    // order in which the member writes them.
    const Ready& rd = *n.pending;
    size_t records = (rd.snapshot ? 1 : 0) + rd.entries.size() + (rd.hard_state ? 1 : 0);
    size_t keep = keep_records ? std::min(*keep_records, records) : rng_.Uniform(records + 1);
    // Multi-Paxos overwrites accepted slots that later slots depend on; its storage requirement
    // (docs/engine-contract.md) is that a write replacing durable slots, or installing a snapshot,
    // is all or nothing. Appends past the durable end may still tear anywhere.
    const bool overwrites =
        rd.snapshot || (!rd.entries.empty() && rd.entries.front().index <= n.storage->LastIndex());
    if (options_.engine == consensus::EngineKind::kMultiPaxos && overwrites && keep > 0 &&
        keep < records) {
      keep = (rd.snapshot ? 1 : 0) + rd.entries.size();
    }
    if (keep > 0) {
      ++torn_writes_;
      Ready partial;
      if (rd.snapshot) {
        partial.snapshot = rd.snapshot;
        --keep;
      }
      const size_t entries = std::min(keep, rd.entries.size());
      partial.entries.assign(rd.entries.begin(),
                             rd.entries.begin() + static_cast<std::ptrdiff_t>(entries));
      keep -= entries;
      if (rd.hard_state && keep > 0) {
        partial.hard_state = rd.hard_state;
        partial.hard_state_must_sync = true;  // It reached the disk.
      }
      Persist(n, partial);
    }
  }
  n.up = false;
  n.pending.reset();
  n.unsynced_hard_state.reset();  // Written without a sync: lost.
  n.engine.reset();
  n.inbox.clear();
  n.waiting_writes.clear();
  n.waiting_reads.clear();
  n.reads_ready.clear();
}

void Cluster::Restart(NodeId id) {
  Node& n = node(id);
  if (n.up || n.removed) return;
  Trace("restart member " + std::to_string(id));
  // A durable snapshot newer than the state machine (a crash right after installing it) is
  // restored first, as the real member does.
  const auto& snap = n.storage->GetSnapshot();
  if (snap.meta.index > n.kv_applied) {
    if (!n.kv.Restore(snap.data)) Violation("member " + std::to_string(id) + " snapshot corrupt");
    n.kv_applied = snap.meta.index;
  }
  n.up = true;
  n.paused_until_ms = 0;
  StartEngine(n);
}

void Cluster::Pause(NodeId id, int64_t until_ms) {
  Trace("pause member " + std::to_string(id) + " until " + std::to_string(until_ms));
  node(id).paused_until_ms = until_ms;
}

void Cluster::Isolate(NodeId id) {
  for (NodeId other : node_ids()) {
    if (other == id) continue;
    network_->Cut(id, other);
    network_->Cut(other, id);
  }
}

void Cluster::Partition(const std::vector<std::set<NodeId>>& groups) {
  for (size_t i = 0; i < groups.size(); ++i) {
    for (size_t j = 0; j < groups.size(); ++j) {
      if (i == j) continue;
      for (NodeId a : groups[i]) {
        for (NodeId b : groups[j]) network_->Cut(a, b);
      }
    }
  }
}

void Cluster::HealNetwork() { network_->HealAll(); }

NodeId Cluster::CreateJoiningNode(NodeId id) {
  if (id == consensus::kNoNode) id = next_node_id_++;
  BALLOT_ASSERT(nodes_.count(id) == 0, "member " + std::to_string(id) + " exists");
  nodes_[id] = MakeNode(id);
  Trace("create joining member " + std::to_string(id));
  return id;
}

void Cluster::Decommission(NodeId id) {
  Node& n = node(id);
  Trace("decommission member " + std::to_string(id));
  if (n.up) Crash(id);
  n.removed = true;
}

// ---- Clients ----

Status Cluster::ProposeMarker(NodeId id, uint64_t marker) {
  Node& n = node(id);
  if (!n.up || n.paused_until_ms > now_ms_) return Status::Unavailable("member down");
  Command cmd;
  cmd.kind = CommandKind::kMarker;
  cmd.value = std::to_string(marker);
  return n.engine->Propose(cmd.Encode());
}

std::optional<Index> Cluster::MarkerIndex(uint64_t marker) const {
  auto it = marker_index_.find(marker);
  if (it == marker_index_.end()) return std::nullopt;
  return it->second;
}

void Cluster::StartClientOp(int client, lincheck::Operation op, NodeId node_id,
                            int64_t timeout_ms) {
  BALLOT_ASSERT(!ClientBusy(client));
  op.client = static_cast<uint64_t>(client);
  op.call = now_ms_;
  ClientOp& c = clients_[client];
  c.op = std::move(op);
  c.node = node_id;
  c.op_id = next_op_id_++;
  c.deadline_ms = now_ms_ + timeout_ms;
  Node& n = node(node_id);
  if (!n.up || n.paused_until_ms > now_ms_) {
    FinishClientOp(client, false, std::nullopt, false);
    return;
  }
  Status s;
  if (c.op.kind == lincheck::OpKind::kGet) {
    s = n.engine->ReadIndex(ReadContext(c.op_id));
    if (s.ok()) n.waiting_reads[ReadContext(c.op_id)] = client;
  } else {
    Command cmd;
    cmd.op_id = c.op_id;
    cmd.key = c.op.key;
    cmd.value = c.op.value;
    cmd.expected = c.op.expected;
    cmd.kind = c.op.kind == lincheck::OpKind::kPut   ? CommandKind::kPut
               : c.op.kind == lincheck::OpKind::kCas ? CommandKind::kCas
                                                     : CommandKind::kDelete;
    s = n.engine->Propose(cmd.Encode());
    if (s.ok()) n.waiting_writes[c.op_id] = client;
  }
  if (!s.ok()) FinishClientOp(client, false, std::nullopt, false);
}

void Cluster::FinishClientOp(int client, bool ok, std::optional<std::string> output, bool cas_ok) {
  auto it = clients_.find(client);
  BALLOT_ASSERT(it != clients_.end());
  lincheck::Operation op = std::move(it->second.op);
  clients_.erase(it);
  op.ret = now_ms_;
  op.status = ok ? lincheck::OpStatus::kOk : lincheck::OpStatus::kFail;
  if (ok && op.kind == lincheck::OpKind::kGet) op.output = std::move(output);
  if (ok && op.kind == lincheck::OpKind::kCas) op.cas_succeeded = cas_ok;
  history_.push_back(std::move(op));
}

void Cluster::ExpireClientOps() {
  std::vector<int> expired;
  for (const auto& [client, c] : clients_) {
    if (c.deadline_ms <= now_ms_) expired.push_back(client);
  }
  for (int client : expired) {
    ClientOp c = std::move(clients_[client]);
    clients_.erase(client);
    auto n = nodes_.find(c.node);
    if (n != nodes_.end()) {
      n->second->waiting_writes.erase(c.op_id);
      n->second->waiting_reads.erase(ReadContext(c.op_id));
    }
    c.op.status = lincheck::OpStatus::kUnknown;
    c.op.ret = 0;
    history_.push_back(std::move(c.op));
  }
}

void Cluster::AbandonClientOps() {
  for (auto& [client, c] : clients_) c.deadline_ms = now_ms_;
  ExpireClientOps();
}

}  // namespace ballot::sim
