// The leader: proposals, phase 2 (accepts), commit, heartbeats, snapshots, reads, transfer,
// membership.
#include <algorithm>
#include <string>
#include <utility>

#include "base/assert.h"
#include "consensus/paxos/paxos_engine.h"

namespace ballot::consensus::paxos {

namespace {

constexpr size_t kPendingReadsMax = 1 << 16;
constexpr size_t kRoundsTrackedMax = 1024;

template <typename T>
T QuorumValue(std::vector<T> values, int quorum) {
  BALLOT_ASSERT(quorum >= 1 && static_cast<size_t>(quorum) <= values.size());
  std::sort(values.begin(), values.end(), std::greater<T>());
  return values[quorum - 1];
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Requests from the host.

Status MultiPaxos::Propose(std::string data) {
  if (role_ != Role::kLeader) return Status::Unavailable("not the leader");
  if (lead_transferee_ != kNoNode) return Status::Unavailable("leadership transfer in progress");
  if (uncommitted_bytes_ > 0 && uncommitted_bytes_ + data.size() > config_.max_uncommitted_bytes) {
    return Status::ResourceExhausted("too many uncommitted bytes: " +
                                     std::to_string(uncommitted_bytes_));
  }
  uncommitted_bytes_ += data.size();
  AppendAsLeader({Entry{0, 0, EntryType::kNormal, std::move(data)}});
  BroadcastAccept();
  return Status::Ok();
}

Status MultiPaxos::ProposeConfChange(const ConfChange& change) {
  if (role_ != Role::kLeader) return Status::Unavailable("not the leader");
  if (lead_transferee_ != kNoNode) return Status::Unavailable("leadership transfer in progress");
  if (log_.applied() < pending_conf_index_) {
    return Status::FailedPrecondition("a membership change (or the leader's first slot) at " +
                                      std::to_string(pending_conf_index_) + " is not applied yet");
  }
  if (change.node == kNoNode) return Status::InvalidArgument("conf change: node 0");
  const bool voter = conf_.voters.count(change.node) > 0;
  const bool learner = conf_.learners.count(change.node) > 0;
  switch (change.type) {
    case ConfChangeType::kAddVoter:
      if (voter) return Status::InvalidArgument("node is already a voter");
      RETURN_IF_ERROR(CheckBallotTags(conf_, change.node));
      break;
    case ConfChangeType::kAddLearner:
      if (voter) return Status::InvalidArgument("demoting a voter to learner is not supported");
      if (learner) return Status::InvalidArgument("node is already a learner");
      RETURN_IF_ERROR(CheckBallotTags(conf_, change.node));
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
  BroadcastAccept();
  return Status::Ok();
}

Status MultiPaxos::ReadIndex(std::string context) {
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

Status MultiPaxos::TransferLeadership(NodeId to) {
  if (role_ != Role::kLeader) return Status::Unavailable("not the leader");
  if (conf_.voters.count(to) == 0) {
    return Status::InvalidArgument("transfer target " + std::to_string(to) + " is not a voter");
  }
  if (to == config_.id) return Status::Ok();
  if (lead_transferee_ == to) return Status::Ok();
  lead_transferee_ = to;
  election_elapsed_ = 0;
  lease_end_tick_ = 0;
  const Progress& pr = progress_.at(to);
  if (pr.match() == log_.LastIndex()) {
    SendTimeoutNow(to);
  } else {
    SendAccept(to, /*send_if_empty=*/true);
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Phase 2a: proposals are batched into consecutive slots and sent in accepts, pipelined within
// each member's window (Progress).

void MultiPaxos::AppendAsLeader(std::vector<Entry> entries) {
  Index index = log_.LastIndex();
  for (Entry& e : entries) {
    e.term = ballot_;
    e.index = ++index;
  }
  // Our own acceptance counts once durable: see Advance().
  log_.Write(entries);
}

void MultiPaxos::BroadcastAccept() {
  for (auto& [id, pr] : progress_) {
    if (id != config_.id) SendAccept(id, /*send_if_empty=*/true);
  }
}

// Sends the slots `to` lacks from its next one on (at most max_message_bytes), all in our ballot:
// slots chosen before our phase 1 go out re-proposed too, which is safe since their value is
// fixed, and lets the acceptor learn them as it learns the rest. A member that needs slots we
// compacted receives the snapshot.
bool MultiPaxos::SendAccept(NodeId to, bool send_if_empty) {
  Progress& pr = progress_.at(to);
  if (pr.IsPaused()) return false;
  if (pr.next() < log_.FirstIndex()) {
    StartSnapshot(to, pr);
    return false;
  }
  Result<std::vector<Entry>> entries =
      log_.Entries(pr.next(), log_.LastIndex() + 1, config_.max_message_bytes);
  if (!entries.ok()) {
    StartSnapshot(to, pr);
    return false;
  }
  if (entries->empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kAccept;
  m.to = to;
  m.index = pr.next() - 1;
  m.commit = log_.committed();
  m.entries = std::move(entries).value();
  for (Entry& e : m.entries) e.term = ballot_;
  pr.SentAppend(m.entries.empty() ? 0 : m.entries.back().index);
  Send(std::move(m));
  return true;
}

void MultiPaxos::StartSnapshot(NodeId to, Progress& pr) {
  const Snapshot& latest = storage_->GetSnapshot();
  if (latest.IsEmpty()) return;
  auto [it, inserted] = sending_snapshots_.try_emplace(latest.meta.index, latest);
  if (!inserted && it->second.meta.term != latest.meta.term) it->second = latest;
  pr.BecomeSnapshot(latest.meta.index, latest.meta.term, now_);
  ReleaseSentSnapshots();
  SendSnapshotChunk(to, pr);
}

void MultiPaxos::SendSnapshotChunk(NodeId to, Progress& pr) {
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

void MultiPaxos::ReleaseSentSnapshots() {
  for (auto it = sending_snapshots_.begin(); it != sending_snapshots_.end();) {
    const bool used = std::any_of(progress_.begin(), progress_.end(), [&](const auto& entry) {
      const Progress& pr = entry.second;
      return pr.state() == ProgressState::kSnapshot && pr.pending_snapshot() == it->first;
    });
    it = used ? std::next(it) : sending_snapshots_.erase(it);
  }
}

void MultiPaxos::CheckSnapshotStalls() {
  for (auto& [id, pr] : progress_) {
    if (pr.state() != ProgressState::kSnapshot) continue;
    if (now_ - pr.snapshot_activity_tick() >= static_cast<uint64_t>(config_.election_ticks)) {
      StartSnapshot(id, pr);
    }
  }
}

// Heartbeats carry the commit point (so members learn what is chosen while nothing new is
// proposed) and number the quorum rounds that confirm leadership for reads and leases.
void MultiPaxos::BroadcastHeartbeat() {
  ++heartbeat_round_;
  round_sent_ticks_.emplace_back(heartbeat_round_, now_);
  while (round_sent_ticks_.size() > kRoundsTrackedMax) round_sent_ticks_.pop_front();
  const std::string round = std::to_string(heartbeat_round_);
  for (const auto& [id, pr] : progress_) {
    if (id == config_.id) continue;
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = id;
    m.commit = std::min(pr.match(), log_.committed());
    m.context = round;
    m.snapshot_meta.index = log_.applied();
    m.snapshot_meta.conf = conf_;
    Send(std::move(m));
  }
  UpdateQuorumRound();
}

void MultiPaxos::StepLeader(const Message& m) {
  switch (m.type) {
    case MessageType::kAccepted:
      HandleAccepted(m);
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

void MultiPaxos::HandleAccepted(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.set_recent_active(true);
  if (!m.reject) {
    OnAcked(m.from, pr, std::min(m.index, log_.LastIndex()));
    return;
  }
  // Slots before the batch are missing there: send again from the first one.
  if (pr.MaybeDecrTo(m.index, m.reject_hint)) {
    if (pr.state() == ProgressState::kReplicate) pr.BecomeProbe();
    SendAccept(m.from, /*send_if_empty=*/true);
  }
}

void MultiPaxos::OnAcked(NodeId from, Progress& pr, Index index) {
  const bool was_paused = pr.IsPaused();
  const bool updated = pr.MaybeUpdate(index);
  if (!updated && !(pr.match() == index && pr.state() == ProgressState::kProbe)) return;
  switch (pr.state()) {
    case ProgressState::kProbe:
      pr.BecomeReplicate();
      break;
    case ProgressState::kSnapshot:
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
    BroadcastAccept();
  } else if (was_paused) {
    SendAccept(from, /*send_if_empty=*/true);
  }
  while (SendAccept(from, /*send_if_empty=*/false)) {
  }
  if (from == lead_transferee_ && pr.match() == log_.LastIndex()) SendTimeoutNow(from);
}

void MultiPaxos::HandleHeartbeatResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  if (m.reject) {
    // Our ballot is bound to another member with our tag at this acceptor (RefuseTakenBallot):
    // it will never accept in this ballot, so leave it and campaign in a higher round.
    BecomeFollower(ballot_, kNoNode);
    CampaignFailed();
    return;
  }
  Progress& pr = it->second;
  pr.OnHeartbeatResponse();
  if (pr.match() < log_.LastIndex() || pr.state() == ProgressState::kProbe) {
    SendAccept(m.from, /*send_if_empty=*/true);
  }
  uint64_t round = 0;
  for (char c : m.context) {
    if (c < '0' || c > '9' || round > (UINT64_MAX - 9) / 10) return;
    round = round * 10 + static_cast<uint64_t>(c - '0');
  }
  if (round == 0 || round > heartbeat_round_ || pr.is_learner()) return;
  pr.AckRound(round);
  UpdateQuorumRound();
}

void MultiPaxos::HandleSnapshotResponse(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.set_recent_active(true);
  if (pr.state() != ProgressState::kSnapshot || m.snapshot_meta.index != pr.pending_snapshot() ||
      m.snapshot_meta.term != pr.pending_snapshot_term()) {
    return;
  }
  if (m.reject) {
    pr.SnapshotAcked(m.index, now_);
    SendSnapshotChunk(m.from, pr);
    return;
  }
  if (m.index <= pr.snapshot_acked()) return;
  pr.SnapshotAcked(m.index, now_);
  SendSnapshotChunk(m.from, pr);
}

// ---------------------------------------------------------------------------------------------
// Learning what is chosen: a slot is chosen once a quorum of voters accepted it in our ballot
// (Paxos Made Simple 2.3). Every match is a prefix, so the quorum-th largest match is chosen with
// all slots before it.

bool MultiPaxos::MaybeCommit() {
  if (conf_.voters.empty()) return false;
  std::vector<Index> matches;
  for (NodeId voter : conf_.voters) {
    auto it = progress_.find(voter);
    matches.push_back(it == progress_.end() ? 0 : it->second.match());
  }
  int quorum = Quorum();
  if (Buggy(Bug::kPaxosChosenWithoutQuorum)) quorum = std::max(1, quorum - 1);
  const Index index = std::min(QuorumValue(std::move(matches), quorum), log_.LastIndex());
  if (index <= log_.committed()) return false;
  log_.CommitTo(index);
  OnCommitAdvanced();
  return true;
}

void MultiPaxos::OnCommitAdvanced() {
  if (!CommittedInBallot() || reads_waiting_commit_.empty()) return;
  std::deque<PendingRead> waiting = std::move(reads_waiting_commit_);
  reads_waiting_commit_.clear();
  for (PendingRead& read : waiting) ServeRead(read.from, std::move(read.context));
}

bool MultiPaxos::QuorumActive() const {
  int active = 0;
  for (NodeId voter : conf_.voters) {
    auto it = progress_.find(voter);
    if (voter == config_.id || (it != progress_.end() && it->second.recent_active())) ++active;
  }
  return active >= Quorum();
}

void MultiPaxos::SyncProgress(Index next) {
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = conf_.Contains(it->first) ? std::next(it) : progress_.erase(it);
  }
  ReleaseSentSnapshots();
  auto track = [this, next](NodeId id, bool learner) {
    auto it = progress_.find(id);
    if (it == progress_.end()) {
      it = progress_.emplace(id, Progress(next, config_.max_inflight_messages, learner)).first;
      it->second.set_recent_active(true);
    }
    it->second.set_learner(learner);
  };
  for (NodeId id : conf_.voters) track(id, false);
  for (NodeId id : conf_.learners) track(id, true);
}

void MultiPaxos::SendTimeoutNow(NodeId to) {
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  Send(std::move(m));
  timeout_now_sent_ = true;
  lease_end_tick_ = 0;
  if (conf_.voters.count(config_.id) == 0) BecomeFollower(ballot_, kNoNode);
}

// ---------------------------------------------------------------------------------------------
// Read index: a quorum round confirms that no higher ballot has been promised by a quorum, so the
// commit point taken before the round covers every write that completed before the request.

void MultiPaxos::HandleReadRequest(NodeId from, std::string context) {
  if (Buggy(Bug::kPaxosReadWithoutQuorum)) {
    RespondRead(from, log_.committed(), std::move(context));
    return;
  }
  // Until our opening no-op is chosen, a slot an earlier leader chose may lie past our commit.
  if (!CommittedInBallot()) {
    reads_waiting_commit_.push_back(PendingRead{from, std::move(context), 0, 0});
    return;
  }
  ServeRead(from, std::move(context));
}

void MultiPaxos::ServeRead(NodeId from, std::string context) {
  const Index index = log_.committed();
  if (config_.read_mode == ReadMode::kLease && now_ < lease_end_tick_) {
    RespondRead(from, index, std::move(context));
    return;
  }
  BroadcastHeartbeat();
  reads_waiting_quorum_.push_back(PendingRead{from, std::move(context), index, heartbeat_round_});
  UpdateQuorumRound();
}

void MultiPaxos::RespondRead(NodeId from, Index index, std::string context) {
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

void MultiPaxos::UpdateQuorumRound() {
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

// The lease (as Raft's, thesis 6.4.1): acceptors that answered a round promise no other proposer
// for an election timeout after hearing it (stickiness), less the clock-drift bound.
void MultiPaxos::ExtendLease(uint64_t round) {
  uint64_t sent_tick = 0;
  bool found = false;
  while (!round_sent_ticks_.empty() && round_sent_ticks_.front().first <= round) {
    sent_tick = round_sent_ticks_.front().second;
    found = true;
    round_sent_ticks_.pop_front();
  }
  if (!found || lead_transferee_ != kNoNode || timeout_now_sent_) return;
  lease_end_tick_ = std::max<uint64_t>(
      lease_end_tick_, sent_tick + config_.election_ticks - config_.lease_drift_ticks);
}

void MultiPaxos::DropPendingReads() {
  reads_waiting_commit_.clear();
  reads_waiting_quorum_.clear();
}

}  // namespace ballot::consensus::paxos
