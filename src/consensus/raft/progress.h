// What a Raft leader knows about one member's log, and how it paces replication to it.
//
// After etcd-io/raft's tracker package: a member is probed one message at a time until its match
// index is known, then appends are pipelined within a bounded window; a member behind the
// leader's compaction receives a snapshot, in chunks, one chunk in flight.
#pragma once

#include <cstdint>
#include <deque>

#include "consensus/types.h"

namespace ballot::consensus::raft {

// The last indexes of the appends sent to one member and not yet acknowledged, oldest first.
class Inflights {
 public:
  explicit Inflights(int capacity);

  // `last` is the last index carried by the append just sent. The window must not be full.
  void Add(Index last);
  // Forgets every append whose last index is <= `index` (acknowledged).
  void FreeLE(Index index);
  void FreeFirstOne();
  void Reset() { last_indexes_.clear(); }
  bool Full() const { return static_cast<int>(last_indexes_.size()) >= capacity_; }
  int Count() const { return static_cast<int>(last_indexes_.size()); }

 private:
  int capacity_;
  std::deque<Index> last_indexes_;
};

enum class ProgressState : uint8_t {
  kProbe = 0,      // Match unknown: one append at a time, backing off on rejection.
  kReplicate = 1,  // Match known: appends pipelined, at most Inflights' capacity unacknowledged.
  kSnapshot = 2,   // Behind compaction: a snapshot is being streamed; appends wait.
};

class Progress {
 public:
  Progress(Index next, int max_inflight, bool is_learner);

  Index match() const { return match_; }
  Index next() const { return next_; }
  ProgressState state() const { return state_; }
  bool is_learner() const { return is_learner_; }
  void set_learner(bool learner) { is_learner_ = learner; }
  const Inflights& inflights() const { return inflights_; }

  // Whether the leader heard from this member since the last check-quorum round.
  bool recent_active() const { return recent_active_; }
  void set_recent_active(bool active) { recent_active_ = active; }
  // Highest heartbeat round (read index / lease) this member acknowledged in this term.
  uint64_t acked_round() const { return acked_round_; }
  void AckRound(uint64_t round);

  void BecomeProbe();
  void BecomeReplicate();
  // Starts streaming the snapshot at (index, term) from byte 0; `now` is the leader's tick.
  void BecomeSnapshot(Index index, Term term, uint64_t now);

  // The member acknowledged its log up to `index`. Returns whether match grew.
  bool MaybeUpdate(Index index);
  // The member rejected an append after `rejected`; `match_hint` is the leader's guess of the
  // last index they share. Returns false when the rejection is stale.
  bool MaybeDecrTo(Index rejected, Index match_hint);
  // Records an append that carried entries up to `last` (or none, `last` == 0).
  void SentAppend(Index last);
  // Appends up to `index` were acknowledged: they leave the window.
  void FreeInflightsLE(Index index) { inflights_.FreeLE(index); }
  // Heartbeat response: the member is alive, a probe may go again, a window slot frees.
  void OnHeartbeatResponse();
  // True when no append may be sent now.
  bool IsPaused() const;

  // Snapshot transfer (state kSnapshot only).
  Index pending_snapshot() const { return pending_snapshot_; }
  Term pending_snapshot_term() const { return pending_snapshot_term_; }
  // Bytes the member acknowledged, and the end of the chunk in flight (== acked: none in flight).
  uint64_t snapshot_acked() const { return snapshot_acked_; }
  uint64_t snapshot_sent() const { return snapshot_sent_; }
  uint64_t snapshot_activity_tick() const { return snapshot_activity_tick_; }
  void SnapshotChunkSent(uint64_t end, uint64_t now);
  // The member holds `bytes` of the snapshot; resending starts there.
  void SnapshotAcked(uint64_t bytes, uint64_t now);

 private:
  void ResetState(ProgressState state);

  Index match_ = 0;
  Index next_ = 1;
  ProgressState state_ = ProgressState::kProbe;
  bool probe_sent_ = false;
  bool is_learner_ = false;
  bool recent_active_ = false;
  uint64_t acked_round_ = 0;
  Inflights inflights_;
  Index pending_snapshot_ = 0;
  Term pending_snapshot_term_ = 0;
  uint64_t snapshot_acked_ = 0;
  uint64_t snapshot_sent_ = 0;
  uint64_t snapshot_activity_tick_ = 0;
};

}  // namespace ballot::consensus::raft
