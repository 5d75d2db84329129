// A whole Ballot cluster in one process, driven by one seed: members (engine + durable storage +
// state machine), the simulated network, clients with a recorded history, a fault injector, and
// the invariant checkers. Both the random runs of ballot-sim and the scripted scenario tests use
// it.
//
// Time advances in steps of one millisecond. Each member ticks its engine every tick_ms of its own
// clock, which may run fast or slow (drift). Everything random draws from generators forked from
// the run's seed, so a seed replays exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/random.h"
#include "consensus/engine.h"
#include "consensus/memory_storage.h"
#include "kv.h"
#include "lincheck/history.h"
#include "network.h"

namespace ballot::sim {

using consensus::ConfChange;
using consensus::Entry;
using consensus::Index;
using consensus::Term;

struct ClusterOptions {
  consensus::EngineKind engine = consensus::EngineKind::kRaft;
  uint64_t seed = 1;
  int members = 3;
  consensus::Bug bug = consensus::Bug::kNone;
  int64_t tick_ms = 10;
  int election_ticks = 10;
  bool pre_vote = true;
  bool check_quorum = true;
  consensus::ReadMode read_mode = consensus::ReadMode::kReadIndex;
  int lease_drift_ticks = 2;
  uint64_t max_message_bytes = 1 << 16;
  int max_inflight_messages = 16;
  uint64_t snapshot_chunk_bytes = 1024;
  uint64_t snapshot_every_entries = 100;  // The host snapshots after this many applied entries.
  uint64_t snapshot_keep_entries = 10;    // Entries kept behind a snapshot for slow followers.
  double clock_drift = 0.0;               // Each member's clock rate is in [1-d, 1+d].
  int64_t disk_sync_ms_min = 0;           // A sync takes [min, max] ms.
  int64_t disk_sync_ms_max = 2;
  NetworkOptions network;
  // The operator stops a removed member once the new configuration applied its removal. Off: it
  // keeps running (and campaigning, if it never learns of its removal), as a forgotten process.
  bool stop_removed_members = true;
  NodeId trace_member = consensus::kNoNode;  // Print every message to or from it (debugging).
  // The crash model before 18b3ec4: every hard state is synced, even one that changes only the
  // commit index. Replays soak seeds found under that model (soak_regressions_test.cc).
  bool sync_every_hard_state = false;
};

// A client operation in flight, from the client's side.
struct ClientOp {
  lincheck::Operation op;
  NodeId node = consensus::kNoNode;
  uint64_t op_id = 0;
  int64_t deadline_ms = 0;
};

class Cluster {
 public:
  explicit Cluster(const ClusterOptions& options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Time.
  int64_t now_ms() const { return now_ms_; }
  void Step();
  void RunFor(int64_t ms);
  // Steps until pred() holds or max_ms passed; returns whether it held.
  bool RunUntil(const std::function<bool()>& pred, int64_t max_ms);

  // Members.
  std::vector<NodeId> node_ids() const;  // Every member ever created, in id order.
  bool IsUp(NodeId id) const;
  bool IsRemoved(NodeId id) const;
  consensus::Engine& engine(NodeId id);
  const consensus::MemoryStorage& storage(NodeId id) const;
  const KvStore& kv(NodeId id) const;
  Index kv_applied(NodeId id) const;
  // The live member that believes it leads in the highest term; kNoNode if none.
  NodeId Leader() const;
  // Members in the middle of a write that must be synced (the most telling moment to crash).
  std::vector<NodeId> SyncingMembers() const;
  // Counts the Readies a member has taken; tells one pending write from the next.
  uint64_t ReadySeq(NodeId id) const;
  // Every live member that believes it leads (a stale leader included), in id order.
  std::vector<NodeId> SelfBelievedLeaders() const;
  // The Ready a member took and is making durable (nullptr if none).
  const consensus::Ready* PendingReady(NodeId id) const;

  // Faults and operations a scenario or the injector applies.
  // Crash loses what is not yet synced; with tear, a prefix of the unsynced write survives.
  void Crash(NodeId id, bool tear = false);
  // Crash with a torn write that kept exactly the first `keep_records` records of the unsynced
  // write (snapshot, entries, hard state; the storage rules of Crash still apply), for scripts.
  void CrashTearing(NodeId id, size_t keep_records);
  void Restart(NodeId id);
  // A paused member does nothing; when it resumes it first catches up on the ticks it missed.
  void Pause(NodeId id, int64_t until_ms);
  void Isolate(NodeId id);
  void Partition(const std::vector<std::set<NodeId>>& groups);
  void HealNetwork();
  Network& network() { return *network_; }
  // Creates a fresh member with empty storage (it joins when the leader adds it), with the next
  // free id or with `id`.
  NodeId CreateJoiningNode(NodeId id = consensus::kNoNode);
  // Stops a member for good (it was removed from the cluster).
  void Decommission(NodeId id);

  // Writes through the log, from the harness (not a recorded client). Returns the proposal status.
  Status ProposeMarker(NodeId id, uint64_t marker);
  // The index at which marker m was applied, by any member; nullopt if not yet.
  std::optional<Index> MarkerIndex(uint64_t marker) const;

  // Clients: starts an operation; it completes (or times out) as time passes.
  void StartClientOp(int client, lincheck::Operation op, NodeId node, int64_t timeout_ms);
  bool ClientBusy(int client) const { return clients_.count(client) > 0; }
  // Closes every client operation still open as unknown.
  void AbandonClientOps();
  const std::vector<lincheck::Operation>& history() const { return history_; }

  // Invariants: every violation seen so far, each a sentence naming the invariant.
  const std::vector<std::string>& violations() const { return violations_; }
  void Violation(std::string what);
  // Checks that the members in the leader's configuration agree (same applied prefix, same state).
  void CheckConvergence();
  uint64_t committed_entries() const { return committed_.size(); }
  const ClusterOptions& options() const { return options_; }
  uint64_t torn_writes() const { return torn_writes_; }

  // The host's view of a member, for failure reports.
  std::string DescribeHost(NodeId id) const;

  // Trace of notable events (role changes, crashes) for a failing seed's report.
  const std::vector<std::string>& trace() const { return trace_; }

 private:
  struct Node;
  struct CommittedEntry {
    Term term;
    consensus::EntryType type;
    uint64_t data_hash;
  };

  Node& node(NodeId id);
  const Node& node(NodeId id) const;
  std::unique_ptr<Node> MakeNode(NodeId id);
  void StartEngine(Node& n);
  void StepNode(Node& n);
  void TickNode(Node& n);
  void HandleReady(Node& n);
  void FinishReady(Node& n);
  void Persist(Node& n, const consensus::Ready& rd);
  void PersistEntries(Node& n, const std::vector<Entry>& entries,
                      const std::map<Index, Term>& held);
  void ApplyEntries(Node& n, const std::vector<Entry>& entries);
  void ApplyOne(Node& n, const Entry& e);
  void ServeReads(Node& n);
  void MaybeSnapshot(Node& n);
  void ObserveRole(Node& n);
  void CheckLeaderCompleteness(Node& n);
  void CheckLogMatching(Node& n, const std::vector<Entry>& appended);
  void CheckChosenNeverChanges(Node& n, const std::vector<Entry>& appended);
  void NotePromise(const Message& m);
  void CheckPromisesKept(Node& n, const std::vector<Entry>& appended,
                         const std::map<Index, Term>& held);
  void ExpireClientOps();
  void ShutDownRemovedMembers();
  void FinishClientOp(int client, bool ok, std::optional<std::string> output, bool cas_ok);
  void Trace(std::string line);
  void CrashKeeping(NodeId id, bool tear, std::optional<size_t> keep_records);
  // Whether `rd` must be durable before its replies (Ready::MustSync, or the older model).
  bool MustSync(const consensus::Ready& rd) const {
    return rd.MustSync() || (options_.sync_every_hard_state && rd.hard_state.has_value());
  }

  ClusterOptions options_;
  Random rng_;
  int64_t now_ms_ = 0;
  std::unique_ptr<Network> network_;
  std::map<NodeId, std::unique_ptr<Node>> nodes_;
  NodeId next_node_id_ = 1;
  consensus::ConfState initial_conf_;

  std::map<int, ClientOp> clients_;
  std::vector<lincheck::Operation> history_;
  uint64_t next_op_id_ = 1;

  std::map<Term, NodeId> leader_of_term_;
  std::map<Index, CommittedEntry> committed_;
  std::map<Index, Term> commit_term_;  // The term of the leader first seen to commit each index.
  Index max_commit_seen_ = 0;
  std::map<std::pair<Index, Term>, std::pair<uint64_t, Term>> log_entries_;  // -> (hash, prev term)
  std::map<uint64_t, Index> marker_index_;
  std::map<NodeId, Index> removals_;  // Removed member -> index of its removal.
  std::map<NodeId, Term> promised_;   // Multi-Paxos: highest ballot each member promised.
  std::vector<std::string> violations_;
  std::vector<std::string> trace_;
  uint64_t torn_writes_ = 0;
};

std::string DescribeEntry(const Entry& e);
uint64_t HashEntry(const Entry& e);

}  // namespace ballot::sim
