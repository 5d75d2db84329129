// The leader: proposals, replication, commit, heartbeats, snapshots, reads, transfer, membership.
#include <algorithm>
#include <string>
#include <utility>

#include "base/assert.h"
#include "consensus/raft/raft_engine.h"

namespace ballot::consensus::raft {

namespace {

// Bounds on state a peer or host could otherwise grow without limit.
constexpr size_t kPendingReadsMax = 1 << 16;
constexpr size_t kRoundsTrackedMax = 1024;

// The quorum-th largest of `values` (each voter's value): the largest v held by a majority.
template <typename T>
T QuorumValue(std::vector<T> values, int quorum) {
  BALLOT_ASSERT(quorum >= 1 && static_cast<size_t>(quorum) <= values.size());
  std::sort(values.begin(), values.end(), std::greater<T>());
  return values[quorum - 1];
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Requests from the host.

Status Raft::Propose(std::string data) {
  if (role_ != Role::kLeader) return Status::Unavailable("not the leader");
  if (lead_transferee_ != kNoNode) return Status::Unavailable("leadership transfer in progress");
  // One entry may always go when nothing is uncommitted, however large (as in etcd).
  if (uncommitted_bytes_ > 0 && uncommitted_bytes_ + data.size() > config_.max_uncommitted_bytes) {
    return Status::ResourceExhausted("too many uncommitted bytes: " +
                                     std::to_string(uncommitted_bytes_));
  }
  uncommitted_bytes_ += data.size();
  AppendAsLeader({Entry{0, 0, EntryType::kNormal, std::move(data)}});
  BroadcastAppend();
  return Status::Ok();
}

Status Raft::ProposeConfChange(const ConfChange& change) {
  if (role_ != Role::kLeader) return Status::Unavailable("not the leader");
  if (lead_transferee_ != kNoNode) return Status::Unavailable("leadership transfer in progress");
  if (log_.applied() < pending_conf_index_) {
    return Status::FailedPrecondition("a membership change (or the leader's first entry) at " +
                                      std::to_string(pending_conf_index_) + " is not applied yet");
  }
  if (change.node == kNoNode) return Status::InvalidArgument("conf change: node 0");
  const bool voter = conf_.voters.count(change.node) > 0;
  const bool learner = conf_.learners.count(change.node) > 0;
  switch (change.type) {
    case ConfChangeType::kAddVoter:
      if (voter) return Status::InvalidArgument("node is already a voter");
      break;
    case ConfChangeType::kAddLearner:
      if (voter) return Status::InvalidArgument("demoting a voter to learner is not supported");
      if (learner) return Status::InvalidArgument("node is already a learner");
      break;
    case ConfChangeType::kRemove:
      if (!voter && !learner) return Status::InvalidArgument("node is not a member");
      if (voter && conf_.voters.size() == 1) {
        return Status::InvalidArgument("cannot remove the last voter");
      }
      break;
  }
  AppendAsLeader({Entry{0, 0, EntryType::kConfChange, change.Encode()}});
  pending_conf_index_ = log_.LastIndex();
  BroadcastAppend();
  return Status::Ok();
}

Status Raft::ReadIndex(std::string context) {
  if (role_ == Role::kLeader) {
    if (reads_waiting_commit_.size() + reads_waiting_quorum_.size() >= kPendingReadsMax) {
      return Status::ResourceExhausted("too many pending read index requests");
    }
    HandleReadRequest(config_.id, std::move(context));
    return Status::Ok();
  }
  if (lead_ == kNoNode) return Status::Unavailable("no leader known");
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = lead_;
  m.context = std::move(context);
  Send(std::move(m));
  return Status::Ok();
}

Status Raft::TransferLeadership(NodeId to) {
  if (role_ != Role::kLeader) return Status::Unavailable("not the leader");
  if (conf_.voters.count(to) == 0) {
    return Status::InvalidArgument("transfer target " + std::to_string(to) + " is not a voter");
  }
  if (to == config_.id) return Status::Ok();  // Already there.
  // A repeated request for the transfer under way changes nothing; restarting its timer would let
  // a host that keeps asking postpone the check-quorum step-down forever.
  if (lead_transferee_ == to) return Status::Ok();
  lead_transferee_ = to;
  // The transfer gets one election timeout (thesis 3.10); and while the target may campaign,
  // followers' stickiness no longer protects a lease.
  election_elapsed_ = 0;
  lease_end_tick_ = 0;
  const Progress& pr = progress_.at(to);
  if (pr.match() == log_.LastIndex()) {
    SendTimeoutNow(to);
  } else {
    SendAppend(to, /*send_if_empty=*/true);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Replication (paper 5.3).

void Raft::AppendAsLeader(std::vector<Entry> entries) {
  Index index = log_.LastIndex();
  for (Entry& e : entries) {
    e.term = term_;
    e.index = ++index;
  }
  // Our own match does not move here: see AdvanceEntries().
  log_.Append(entries);
}

void Raft::BroadcastAppend() {
  for (auto& [id, pr] : progress_) {
    if (id != config_.id) SendAppend(id, /*send_if_empty=*/true);
  }
}

// Sends the entries `to` lacks from its next index on (a batch of at most max_message_bytes), or
// a snapshot if they were compacted. Returns whether a message went.
bool Raft::SendAppend(NodeId to, bool send_if_empty) {
  Progress& pr = progress_.at(to);
  if (pr.IsPaused()) return false;
  const Index prev = pr.next() - 1;
  const std::optional<Term> prev_term = log_.TermAt(prev);
  Result<std::vector<Entry>> entries =
      log_.Entries(pr.next(), log_.LastIndex() + 1, config_.max_message_bytes);
  if (!prev_term || !entries.ok()) {
    StartSnapshot(to, pr);
    return false;
  }
  if (entries->empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  m.entries = std::move(entries).value();
  if (prev == 0) m.snapshot_meta.conf = base_conf_;  // See base_conf_.
  pr.SentAppend(m.entries.empty() ? 0 : m.entries.back().index);
  Send(std::move(m));
  return true;
}

// Starts (or restarts, after a stall) a transfer of the latest snapshot, pinning a copy of it.
void Raft::StartSnapshot(NodeId to, Progress& pr) {
  const Snapshot& latest = storage_->GetSnapshot();
  if (latest.IsEmpty()) return;  // Nothing to send yet; the next heartbeat response retries.
  auto [it, inserted] = sending_snapshots_.try_emplace(latest.meta.index, latest);
  if (!inserted && it->second.meta.term != latest.meta.term) it->second = latest;
  pr.BecomeSnapshot(latest.meta.index, latest.meta.term, now_);
  ReleaseSentSnapshots();
  SendSnapshotChunk(to, pr);
}

// One chunk in flight at a time, from the bytes the follower acknowledged, of the snapshot the
// transfer started with, even if the host has taken a newer one since.
void Raft::SendSnapshotChunk(NodeId to, Progress& pr) {
  auto pinned = sending_snapshots_.find(pr.pending_snapshot());
  if (pinned == sending_snapshots_.end() ||
      pinned->second.meta.term != pr.pending_snapshot_term()) {
    StartSnapshot(to, pr);
    return;
  }
  const Snapshot& snapshot = pinned->second;
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  const uint64_t sent =
      FillSnapshotChunk(snapshot, pr.snapshot_acked(), config_.snapshot_chunk_bytes, &m);
  pr.SnapshotChunkSent(sent, now_);
  Send(std::move(m));
}

void Raft::BroadcastHeartbeat() {
  ++heartbeat_round_;
  round_sent_ticks_.emplace_back(heartbeat_round_, now_);
  while (round_sent_ticks_.size() > kRoundsTrackedMax) round_sent_ticks_.pop_front();
  const std::string round = std::to_string(heartbeat_round_);
  for (const auto& [id, pr] : progress_) {
    if (id == config_.id) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = id;
    // Never more than the follower's match: it may lack entries we committed (paper 5.3).
    m.commit = std::min(pr.match(), log_.committed());
    m.context = round;
    // The membership as of our applied index, for members that do not know it (see
    // LearnMembership).
    m.snapshot_meta.index = log_.applied();
    m.snapshot_meta.conf = conf_;
    Send(std::move(m));
  }
  UpdateQuorumRound();  // A single voter acknowledges its own rounds.
}

void Raft::StepLeader(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendResponse:
      HandleAppendResponse(m);
      break;
    case MessageType::kHeartbeatResponse:
      HandleHeartbeatResponse(m);
      break;
    case MessageType::kSnapshotResponse:
      HandleSnapshotResponse(m);
      break;
    case MessageType::kReadIndex:
      if (reads_waiting_commit_.size() + reads_waiting_quorum_.size() < kPendingReadsMax) {
        HandleReadRequest(m.from, m.context);
      }
      break;
    default:
      break;
  }
}

void Raft::HandleAppendResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.set_recent_active(true);
  if (!m.reject) {
    OnAppendAcked(m.from, pr, m.index);
    return;
  }
  // Fast backtracking: skip every entry of ours whose term is above the follower's term at its
  // conflict index (etcd's findConflictByTerm).
  Index next_probe = m.reject_hint;
  if (m.reject_term > 0) next_probe = log_.FindConflictByTerm(m.reject_hint, m.reject_term).first;
  if (pr.MaybeDecrTo(m.index, next_probe)) {
    if (pr.state() == ProgressState::kReplicate) pr.BecomeProbe();
    SendAppend(m.from, /*send_if_empty=*/true);
  }
}

void Raft::OnAppendAcked(NodeId from, Progress& pr, Index index) {
  const bool was_paused = pr.IsPaused();
  const bool updated = pr.MaybeUpdate(index);
  if (!updated && !(pr.match() == index && pr.state() == ProgressState::kProbe)) return;
  switch (pr.state()) {
    case ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
      // The follower installed the snapshot (or already had it): replicate from past it.
      if (pr.match() < pr.pending_snapshot() && pr.match() + 1 < log_.FirstIndex()) return;
      pr.BecomeProbe();
      pr.BecomeReplicate();
      ReleaseSentSnapshots();
      break;
    case ProgressState::kReplicate:
      break;
  }
  pr.FreeInflightsLE(index);
  if (MaybeCommit()) {
    BroadcastAppend();
  } else if (was_paused) {
    SendAppend(from, /*send_if_empty=*/true);
  }
  while (SendAppend(from, /*send_if_empty=*/false)) {
  }
  if (from == lead_transferee_ && pr.match() == log_.LastIndex()) SendTimeoutNow(from);
}

void Raft::HandleHeartbeatResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.OnHeartbeatResponse();
  if (pr.match() < log_.LastIndex() || pr.state() == ProgressState::kProbe) {
    SendAppend(m.from, /*send_if_empty=*/true);
  }
  uint64_t round = 0;
  for (char c : m.context) {
    if (c < '0' || c > '9' || round > (UINT64_MAX - 9) / 10) return;  // Not one of our rounds.
    round = round * 10 + static_cast<uint64_t>(c - '0');
  }
  if (round == 0 || round > heartbeat_round_ || pr.is_learner()) return;
  pr.AckRound(round);
  UpdateQuorumRound();
}

void Raft::HandleSnapshotResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.set_recent_active(true);
  if (pr.state() != ProgressState::kSnapshot || m.snapshot_meta.index != pr.pending_snapshot() ||
      m.snapshot_meta.term != pr.pending_snapshot_term()) {
    return;  // About a transfer that is over.
  }
  if (m.reject) {
    pr.SnapshotAcked(m.index, now_);  // Resume from what the follower holds (0: start over).
    SendSnapshotChunk(m.from, pr);
    return;
  }
  // The follower's count is authoritative (after a restarted transfer it may hold more than we
  // sent this time); an acknowledgement of nothing new is a duplicate.
  if (m.index <= pr.snapshot_acked()) return;
  pr.SnapshotAcked(m.index, now_);
  SendSnapshotChunk(m.from, pr);
}

// Drops the copies no transfer uses any more.
void Raft::ReleaseSentSnapshots() {
  for (auto it = sending_snapshots_.begin(); it != sending_snapshots_.end();) {
    const bool used = std::any_of(progress_.begin(), progress_.end(), [&](const auto& entry) {
      const Progress& pr = entry.second;
      return pr.state() == ProgressState::kSnapshot && pr.pending_snapshot() == it->first;
    });
    it = used ? std::next(it) : sending_snapshots_.erase(it);
  }
}

// A transfer with no progress for an election timeout (a lost chunk or reply) starts over.
void Raft::CheckSnapshotStalls() {
  for (auto& [id, pr] : progress_) {
    if (pr.state() != ProgressState::kSnapshot) continue;
    if (now_ - pr.snapshot_activity_tick() >= static_cast<uint64_t>(config_.election_ticks)) {
      StartSnapshot(id, pr);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Commit (paper 5.3, 5.4.2).

bool Raft::MaybeCommit() {
  if (conf_.voters.empty()) return false;
  std::vector<Index> matches;
  for (NodeId voter : conf_.voters) {
    auto it = progress_.find(voter);
    matches.push_back(it == progress_.end() ? 0 : it->second.match());
  }
  const Index index = QuorumValue(std::move(matches), Quorum());
  if (index <= log_.committed()) return false;
  // Paper 5.4.2: only an entry of the leader's own term is committed by counting replicas; the
  // entries before it are committed with it.
  if (!Buggy(Bug::kCommitOldTermByCount) && log_.TermAt(index) != term_) return false;
  log_.CommitTo(index);
  OnCommitAdvanced();
  return true;
}

bool Raft::CommittedInTerm() const { return log_.TermAt(log_.committed()) == term_; }

void Raft::OnCommitAdvanced() {
  if (!CommittedInTerm() || reads_waiting_commit_.empty()) return;
  std::deque<PendingRead> waiting = std::move(reads_waiting_commit_);
  reads_waiting_commit_.clear();
  for (PendingRead& read : waiting) ServeRead(read.from, std::move(read.context));
}

bool Raft::QuorumActive() const {
  int active = 0;
  for (NodeId voter : conf_.voters) {
    auto it = progress_.find(voter);
    if (voter == config_.id || (it != progress_.end() && it->second.recent_active())) ++active;
  }
  return active >= Quorum();
}

// Makes progress_ track exactly the members of conf_: new ones are probed from our last index.
void Raft::SyncProgress() {
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = conf_.Contains(it->first) ? std::next(it) : progress_.erase(it);
  }
  ReleaseSentSnapshots();
  auto track = [this](NodeId id, bool learner) {
    auto it = progress_.find(id);
    if (it == progress_.end()) {
      it = progress_
               .emplace(id, Progress(log_.LastIndex() + 1, config_.max_inflight_messages, learner))
               .first;
      // A new member is given the benefit of the doubt until the next check-quorum round.
      it->second.set_recent_active(true);
    }
    it->second.set_learner(learner);
  };
  for (NodeId id : conf_.voters) track(id, false);
  for (NodeId id : conf_.learners) track(id, true);
}

void Raft::SendTimeoutNow(NodeId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
  timeout_now_sent_ = true;
  lease_end_tick_ = 0;
  // A leader handing off after its own removal (HandOffAfterRemoval) has nothing left to do.
  if (conf_.voters.count(config_.id) == 0) BecomeFollower(term_, kNoNode);
}

// ---------------------------------------------------------------------------------------------
// Read index (thesis 6.4) and lease reads (thesis 6.4.1).

void Raft::HandleReadRequest(NodeId from, std::string context) {
  if (Buggy(Bug::kReadIndexWithoutQuorum)) {
    RespondRead(from, log_.committed(), std::move(context));
    return;
  }
  // Until an entry of this term commits, our commit index may be behind what earlier leaders
  // committed: answering with it could return stale data.
  if (!CommittedInTerm()) {
    reads_waiting_commit_.push_back(PendingRead{from, std::move(context), 0, 0});
    return;
  }
  ServeRead(from, std::move(context));
}

void Raft::ServeRead(NodeId from, std::string context) {
  const Index index = log_.committed();
  if (config_.read_mode == ReadMode::kLease && now_ < lease_end_tick_) {
    RespondRead(from, index, std::move(context));
    return;
  }
  // A fresh round: only acknowledgements of heartbeats sent after the request prove that we were
  // still the leader when it arrived.
  BroadcastHeartbeat();
  reads_waiting_quorum_.push_back(PendingRead{from, std::move(context), index, heartbeat_round_});
  UpdateQuorumRound();
}

void Raft::RespondRead(NodeId from, Index index, std::string context) {
  if (from == config_.id) {
    read_states_.push_back(ReadState{index, std::move(context)});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = from;
  m.index = index;
  m.context = std::move(context);
  Send(std::move(m));
}

// Finds the latest heartbeat round a quorum of voters acknowledged; releases the reads waiting
// for it and, in lease mode, extends the lease from the tick that round was sent.
void Raft::UpdateQuorumRound() {
  if (role_ != Role::kLeader || conf_.voters.count(config_.id) == 0) return;
  std::vector<uint64_t> acked;
  for (NodeId voter : conf_.voters) {
    auto it = progress_.find(voter);
    if (voter == config_.id) {
      acked.push_back(heartbeat_round_);
    } else {
      acked.push_back(it == progress_.end() ? 0 : it->second.acked_round());
    }
  }
  const uint64_t round = QuorumValue(std::move(acked), Quorum());
  if (round > quorum_round_) {
    quorum_round_ = round;
    ExtendLease(round);
  }
  while (!reads_waiting_quorum_.empty() && reads_waiting_quorum_.front().round <= quorum_round_) {
    PendingRead read = std::move(reads_waiting_quorum_.front());
    reads_waiting_quorum_.pop_front();
    RespondRead(read.from, read.index, std::move(read.context));
  }
}

// Thesis 6.4.1: no other leader can be elected before election_ticks after the followers heard
// `round`, and they heard it after we sent it; the drift bound covers clocks that run faster.
void Raft::ExtendLease(uint64_t round) {
  uint64_t sent_tick = 0;
  bool found = false;
  while (!round_sent_ticks_.empty() && round_sent_ticks_.front().first <= round) {
    sent_tick = round_sent_ticks_.front().second;
    found = true;
    round_sent_ticks_.pop_front();
  }
  // A transfer lets the target campaign past followers' stickiness: no lease meanwhile, nor once
  // a TimeoutNow has left (it may arrive after the transfer was abandoned).
  if (!found || lead_transferee_ != kNoNode || timeout_now_sent_) return;
  lease_end_tick_ = std::max<uint64_t>(
      lease_end_tick_, sent_tick + config_.election_ticks - config_.lease_drift_ticks);
}

void Raft::DropPendingReads() {
  reads_waiting_commit_.clear();
  reads_waiting_quorum_.clear();
}

}  // namespace ballot::consensus::raft
