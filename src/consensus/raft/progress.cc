#include "consensus/raft/progress.h"

#include <algorithm>

#include "base/assert.h"

namespace ballot::consensus::raft {

Inflights::Inflights(int capacity) : capacity_(capacity) { BALLOT_ASSERT(capacity >= 1); }

void Inflights::Add(Index last) {
  BALLOT_ASSERT(!Full(), "inflight window overflow");
  BALLOT_ASSERT(last_indexes_.empty() || last_indexes_.back() < last, "inflights out of order");
  last_indexes_.push_back(last);
}

void Inflights::FreeLE(Index index) {
  while (!last_indexes_.empty() && last_indexes_.front() <= index) last_indexes_.pop_front();
}

void Inflights::FreeFirstOne() {
  if (!last_indexes_.empty()) last_indexes_.pop_front();
}

Progress::Progress(Index next, int max_inflight, bool is_learner)
    : next_(next), is_learner_(is_learner), inflights_(max_inflight) {
  BALLOT_ASSERT(next >= 1);
}

void Progress::AckRound(uint64_t round) { acked_round_ = std::max(acked_round_, round); }

void Progress::ResetState(ProgressState state) {
  state_ = state;
  probe_sent_ = false;
  pending_snapshot_ = 0;
  pending_snapshot_term_ = 0;
  snapshot_acked_ = 0;
  snapshot_sent_ = 0;
  inflights_.Reset();
}

void Progress::BecomeProbe() {
  // Leaving a snapshot transfer: the member may have installed it, so probe just after it.
  if (state_ == ProgressState::kSnapshot) {
    const Index pending = pending_snapshot_;
    ResetState(ProgressState::kProbe);
    next_ = std::max(match_ + 1, pending + 1);
    return;
  }
  ResetState(ProgressState::kProbe);
  next_ = match_ + 1;
}

void Progress::BecomeReplicate() {
  ResetState(ProgressState::kReplicate);
  next_ = match_ + 1;
}

void Progress::BecomeSnapshot(Index index, Term term, uint64_t now) {
  ResetState(ProgressState::kSnapshot);
  pending_snapshot_ = index;
  pending_snapshot_term_ = term;
  snapshot_activity_tick_ = now;
}

bool Progress::MaybeUpdate(Index index) {
  bool updated = false;
  if (match_ < index) {
    match_ = index;
    updated = true;
    probe_sent_ = false;
  }
  next_ = std::max(next_, index + 1);
  return updated;
}

bool Progress::MaybeDecrTo(Index rejected, Index match_hint) {
  if (state_ == ProgressState::kReplicate) {
    if (rejected <= match_) return false;  // A stale rejection of something since acknowledged.
    next_ = match_ + 1;
    return true;
  }
  // In probe state only the rejection of the probe in flight counts.
  if (next_ - 1 != rejected) return false;
  next_ = std::max(std::min(rejected, match_hint + 1), match_ + 1);
  probe_sent_ = false;
  return true;
}

void Progress::SentAppend(Index last) {
  switch (state_) {
    case ProgressState::kReplicate:
      if (last != 0) {
        BALLOT_ASSERT(last >= next_, "append sent behind next");
        next_ = last + 1;
        inflights_.Add(last);
      }
      break;
    case ProgressState::kProbe:
      probe_sent_ = true;
      break;
    case ProgressState::kSnapshot:
      BALLOT_UNREACHABLE("append sent during a snapshot transfer");
  }
}

void Progress::OnHeartbeatResponse() {
  recent_active_ = true;
  probe_sent_ = false;
  // A full window whose acknowledgements were lost would stall forever; a heartbeat response
  // proves the member is reachable, so let one more append through (as etcd does).
  if (state_ == ProgressState::kReplicate && inflights_.Full()) inflights_.FreeFirstOne();
}

bool Progress::IsPaused() const {
  switch (state_) {
    case ProgressState::kProbe:
      return probe_sent_;
    case ProgressState::kReplicate:
      return inflights_.Full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

void Progress::SnapshotChunkSent(uint64_t end, uint64_t now) {
  BALLOT_ASSERT(state_ == ProgressState::kSnapshot);
  BALLOT_ASSERT(end >= snapshot_acked_);
  snapshot_sent_ = end;
  snapshot_activity_tick_ = now;
}

void Progress::SnapshotAcked(uint64_t bytes, uint64_t now) {
  BALLOT_ASSERT(state_ == ProgressState::kSnapshot);
  snapshot_acked_ = bytes;
  snapshot_sent_ = bytes;
  snapshot_activity_tick_ = now;
}

}  // namespace ballot::consensus::raft
