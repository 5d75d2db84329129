// Node: the host of one consensus engine inside a member (docs/engine-contract.md, docs/server.md).
//
// It owns the engine, the write-ahead log and the snapshot files of one member, and runs two
// threads:
//   - the engine thread: ticks the engine by elapsed monotonic time, steps inbound peer messages,
//     takes proposals, conf changes and read requests, and runs the Ready loop in the contract's
//     order (send `messages`; make snapshot, entries and hard state durable; send
//     `messages_after_persist`; hand committed entries to the apply thread; Advance);
//   - the apply thread: applies committed entries to the StateMachine in order, exactly once (it
//     starts after the state machine's own applied index), and every `snapshot_count` entries asks
//     it for a snapshot, which the engine thread saves and compacts the log behind.
//
// The node does not know what the entries mean: the member above encodes requests, and learns
// their outcome from its StateMachine (see member.h).
//
// Thread-safety: every public method may be called from any thread once Open returned.
// Errors: a failed WAL or snapshot write, or a failed apply, is fatal: the node stops both threads,
// logs the cause, and calls NodeOptions::on_fatal (the serve command exits the process).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "consensus/engine.h"
#include "server/bounded_queue.h"
#include "server/server_metrics.h"
#include "server/snapshot_file.h"
#include "wal/wal_storage.h"

namespace ballot::server {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;

// Where the engine's outbound messages go (the peer transport, or an in-process one in tests).
// Send must not block for long: it is called on the engine thread.
class PeerSender {
 public:
  virtual ~PeerSender() = default;
  virtual void Send(std::vector<consensus::Message> messages) = 0;
  // A message of the member layer (proto/internal.proto's PeerMessage, serialized) for member
  // `to`; the node never sends one. Like Send it may drop the message, and must not block.
  virtual void SendMember(consensus::NodeId to, std::string payload) = 0;
};

// What committed entries are applied to. Called only from the node's apply thread (and from Open,
// before the threads start).
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // The index of the last entry whose effects are stored; stored atomically with those effects,
  // so that after a crash the node replays exactly the entries after it.
  virtual consensus::Index applied_index() const = 0;
  // Applies entries in order (normal, no-op and conf change entries; indexes contiguous, starting
  // at applied_index() + 1), recording the last index with their effects. An error is fatal.
  virtual Status Apply(const std::vector<consensus::Entry>& entries) = 0;
  // A consistent image of everything as of applied_index().
  virtual Result<std::string> Snapshot() = 0;
  // The same in two steps, so that a large image is built off the apply thread: this call fixes a
  // consistent view as of applied_index(); the source it returns hands out the image from that
  // view in pieces, once, on another thread, while entries go on being applied (the node streams
  // them into the snapshot file). Restore may wait for it. The default builds the image at once.
  virtual Result<SnapshotSource> SnapshotLater();
  // Replaces everything with `data` (made by Snapshot() on some member at `index`).
  virtual Status Restore(const std::string& data, consensus::Index index) = 0;
};

struct NodeOptions {
  consensus::NodeId id = consensus::kNoNode;
  uint64_t cluster_id = 0;
  std::string name;  // For logs.
  consensus::EngineKind engine = consensus::EngineKind::kRaft;
  std::string wal_dir;
  std::string snap_dir;
  // The file system of the WAL and the snapshot files (borrowed; must outlive the node). Null:
  // the real one (wal::Env::Default()). Crash tests pass a wal::FaultInjectionEnv.
  wal::Env* env = nullptr;
  // The voters of a new cluster (ignored when the WAL holds a snapshot: membership then comes
  // from it and the log). Empty for a member joining an existing cluster.
  std::set<consensus::NodeId> initial_voters;
  int tick_ms = 100;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  consensus::ReadMode read_mode = consensus::ReadMode::kReadIndex;
  int lease_drift_ticks = 2;
  uint64_t max_message_bytes = 1 << 20;
  uint64_t max_uncommitted_bytes = 64 << 20;
  uint64_t snapshot_count = 100000;  // Applied entries between snapshots.
  uint64_t wal_segment_bytes = 64ull << 20;
  size_t inbound_queue_max = 4096;  // Peer messages waiting for the engine; more are dropped.
  size_t request_queue_max = 4096;  // Proposals and reads waiting; more fail ResourceExhausted.
  size_t apply_queue_max = 256;     // Ready batches waiting to be applied; the engine waits.
  uint64_t seed = 1;
  // Called from the engine thread when the role, leader or term changes. Must be quick.
  std::function<void(const consensus::SoftState&)> on_soft_state;
  // Called once, from a node thread, when the node stops on an error. Must not call Stop().
  std::function<void(const Status&)> on_fatal;
  // WAL fsync and apply durations, leader changes (the member's own counters are here too).
  ServerMetrics metrics;
};

struct NodeStatus {
  consensus::SoftState soft;
  consensus::Index committed = 0;
  consensus::Index applied = 0;  // By the state machine.
  consensus::ConfState conf;     // As of the engine's applied index.
  Status fatal;                  // Not OK once the node stopped on an error.
};

class Node {
 public:
  // Opens (or creates) the WAL and snapshot files, restores the state machine from the latest
  // snapshot if it is behind it, makes the engine and starts the threads. `sm` and `peers` are
  // borrowed and must outlive the node.
  static Result<std::unique_ptr<Node>> Open(NodeOptions options, StateMachine* sm,
                                            PeerSender* peers);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Stops both threads (the apply thread finishes the batch it is applying). Idempotent.
  void Stop();

  // A message from a peer. Dropped when the inbound queue is full (the engine tolerates loss).
  void Step(consensus::Message message);
  // Appends `data` as a normal entry. OK once the engine accepted it (the outcome is known only by
  // applying it); Unavailable ("no leader" / "not leader") otherwise.
  Status Propose(std::string data, Deadline deadline);
  // Propose without waiting: `accepted` runs once, on the engine thread (or at once on this one
  // when the request queue is full or the node stopped), with what Propose would return. It must
  // not block.
  void ProposeAsync(std::string data, Deadline deadline, std::function<void(Status)> accepted);
  Status ProposeConfChange(const consensus::ConfChange& change, Deadline deadline);
  Status TransferLeadership(consensus::NodeId to, Deadline deadline);
  // A linearizable read index (ReadIndex, or the leader lease in lease mode). Concurrent callers
  // share one engine request.
  Result<consensus::Index> ReadIndex(Deadline deadline);
  // ReadIndex without waiting: `done` runs once, on the engine thread (or at once on this one), and
  // must not block. An expired read gets DeadlineExceeded.
  void ReadIndexAsync(Deadline deadline, std::function<void(Result<consensus::Index>)> done);
  // Waits until the state machine has applied `index`.
  Status WaitApplied(consensus::Index index, Deadline deadline);
  // `done` runs once: when the state machine has applied `index` (OK; at once when it has), with
  // DeadlineExceeded when `deadline` passes first (checked every tick), or with Unavailable when
  // the node stops or fails. It runs on the apply, engine or calling thread and must not block.
  void WhenApplied(consensus::Index index, Deadline deadline, std::function<void(Status)> done);

  NodeStatus status() const;
  consensus::NodeId id() const { return options_.id; }
  const NodeOptions& options() const { return options_; }

 private:
  enum class RequestKind { kPropose, kConfChange, kRead, kTransfer };
  struct Request {
    RequestKind kind = RequestKind::kPropose;
    std::string data;
    consensus::ConfChange change;
    consensus::NodeId to = consensus::kNoNode;
    Deadline deadline;
    std::function<void(Result<consensus::Index>)> done;  // Runs once, on the engine thread.
  };
  struct ApplyTask {
    std::optional<consensus::Snapshot> snapshot;
    std::vector<consensus::Entry> entries;
  };
  struct MadeSnapshot {  // Its file is written: the engine thread records and compacts.
    consensus::Index index = 0;
    consensus::ConfState conf;
  };
  struct PendingRead {
    Deadline deadline;
    std::vector<std::function<void(Result<consensus::Index>)>> waiters;
  };

  Node(NodeOptions options, StateMachine* sm, PeerSender* peers);
  Status Init();
  Result<consensus::Index> Submit(Request request);
  // Queues `request` for the engine thread; runs its `done` at once when it cannot.
  void SubmitAsync(Request request);
  // Runs the WhenApplied callbacks that `applied` (or a stop, when `stopped`) releases.
  void ReleaseApplied(consensus::Index applied, bool stopped);
  void ExpireAppliedWaiters(Clock::time_point now);

  void EngineLoop();
  void HandleRequests(std::vector<Request> requests);
  Status HandleReady();
  // From now on the snapshot's data is read from its file when the engine needs it.
  void LoadSnapshotLazily();
  Status SaveLocalSnapshot(MadeSnapshot made);
  void ExpireReads(Clock::time_point now);
  void PublishStatus();
  void LogSoftState(const consensus::SoftState& old_soft, const consensus::SoftState& soft);

  void ApplyLoop();
  Status ApplyTaskNow(ApplyTask task);
  // On the snapshot thread: builds the image, writes its file, hands it to the engine thread.
  void BuildSnapshot(consensus::Index index, consensus::ConfState conf, SnapshotSource source);

  void Fail(const Status& s);

  const NodeOptions options_;
  StateMachine* const sm_;
  PeerSender* const peers_;

  wal::Env* const env_;  // options_.env, or the real file system.
  // Owned by the engine thread after Init.
  std::unique_ptr<wal::WalStorage> storage_;
  std::unique_ptr<consensus::Engine> engine_;
  uint64_t next_read_context_ = 1;
  std::map<std::string, PendingRead> pending_reads_;
  Clock::time_point next_applied_expiry_{};

  // The engine thread's inbox: peer messages, requests and snapshots made by the apply thread.
  mutable std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::vector<consensus::Message> inbound_;    // Guarded by inbox_mu_.
  std::vector<Request> requests_;              // Guarded by inbox_mu_.
  std::optional<MadeSnapshot> made_snapshot_;  // Guarded by inbox_mu_.
  bool stopping_ = false;                      // Guarded by inbox_mu_.

  BoundedQueue<ApplyTask> apply_queue_;
  // Owned by the apply thread after Init.
  consensus::ConfState applied_conf_;
  consensus::Index last_snapshot_index_ = 0;
  // At most one snapshot is built at a time, off the apply thread (joined by Stop).
  std::thread snapshot_thread_;
  std::atomic<bool> snapshot_building_{false};
  // Snapshot files are written by the snapshot thread and, for a snapshot received from the
  // leader, by the engine thread, which also removes old ones.
  std::mutex snap_files_mu_;

  mutable std::mutex status_mu_;
  std::condition_variable applied_cv_;
  NodeStatus status_;  // Guarded by status_mu_.
  // WhenApplied callbacks by index. Guarded by status_mu_; run outside it.
  struct AppliedWaiter {
    Deadline deadline;
    std::function<void(Status)> done;
  };
  std::multimap<consensus::Index, AppliedWaiter> applied_waiters_;
  bool applied_waiters_closed_ = false;  // Guarded by status_mu_: the node stopped or failed.

  std::atomic<bool> failed_{false};
  std::atomic<bool> stop_requested_{false};
  std::thread engine_thread_;
  std::thread apply_thread_;
};

}  // namespace ballot::server
