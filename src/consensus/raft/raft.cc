#include "consensus/raft/raft.h"

#include <algorithm>
#include <string>
#include <utility>

#include "base/assert.h"
#include "consensus/raft/raft_engine.h"

namespace ballot::consensus::raft {

namespace {

bool IsLeaderMessage(MessageType type) {
  return type == MessageType::kAppend || type == MessageType::kHeartbeat ||
         type == MessageType::kSnapshot;
}

Index InitialCommit(const Storage& storage) {
  // The commit index may only name entries this member holds; a host that persisted the hard
  // state but not yet the entries of the same Ready must not make us commit what we lack.
  const Index commit = std::min(storage.InitialHardState().commit, storage.LastIndex());
  return std::max(commit, storage.GetSnapshotMeta().index);
}

// The host applied entries up to config.applied: they are committed even if the durable hard
// state lags behind.
Index InitialCommit(const Config& config) {
  return std::max(InitialCommit(*config.storage), config.applied);
}

// Committed entries are handed out from config.applied + 1: nothing is applied twice.
Index InitialApplied(const Config& config, Bug bug) {
  const Index snapshot_index = config.storage->GetSnapshotMeta().index;
#ifdef BALLOT_BROKEN_VARIANTS
  if (bug == Bug::kReapplyAfterRestart) return snapshot_index;
#endif
  return std::max(config.applied, snapshot_index);
}

}  // namespace

Result<std::unique_ptr<Engine>> NewRaft(const Config& config, Bug bug) {
  RETURN_IF_ERROR(config.Validate());
#ifndef BALLOT_BROKEN_VARIANTS
  if (bug != Bug::kNone) {
    return Status::Unimplemented("broken engine variants exist only in test builds");
  }
#endif
  const Storage& storage = *config.storage;
  if (config.applied > storage.LastIndex()) {
    return Status::FailedPrecondition("config.applied " + std::to_string(config.applied) +
                                      " is past the storage's last index " +
                                      std::to_string(storage.LastIndex()));
  }
  return std::unique_ptr<Engine>(new Raft(config, bug));
}

Raft::Raft(const Config& config, Bug bug)
    : config_(config),
      bug_(bug),
      storage_(config.storage),
      random_(config.seed),
      log_(config.storage, InitialCommit(config), InitialApplied(config, bug)) {
  LoadFromStorage();
}

bool Raft::Buggy(Bug bug) const {
#ifdef BALLOT_BROKEN_VARIANTS
  return bug_ == bug;
#else
  (void)bug;
  return false;
#endif
}

void Raft::LoadFromStorage() {
  const HardState hs = storage_->InitialHardState();
  const SnapshotMeta& snapshot = storage_->GetSnapshotMeta();
  conf_ = storage_->InitialConfState();
  if (snapshot.index == 0) base_conf_ = conf_;
  // A snapshot taken while the membership was unknown holds an empty (unknown) one.
  membership_known_ = !conf_.voters.empty() || !conf_.learners.empty();
  // conf_state() is the membership as of the applied index: replay the changes the host already
  // applied after the snapshot.
  if (log_.applied() > snapshot.index) {
    Result<std::vector<Entry>> applied =
        storage_->Entries(snapshot.index + 1, log_.applied() + 1, UINT64_MAX);
    BALLOT_ASSERT(applied.ok(), "applied entries unavailable: " + applied.status().ToString());
    for (const Entry& e : *applied) ApplyConfEntry(e);
  }
  BecomeFollower(hs.term, kNoNode);
  vote_ = hs.vote;
  // With lease reads, a member that just (re)started may have acknowledged a lease round before it
  // went down: it counts as having just heard from a leader (see InLease()).
  leader_contact_elapsed_ = config_.read_mode == ReadMode::kLease ? 0 : config_.election_ticks;
  prev_hard_ = hs;
  prev_soft_ = soft_state();
}

// ---------------------------------------------------------------------------------------------
// Roles.

void Raft::Reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedTimeout();
  AbortTransfer();
  votes_.clear();
  progress_.clear();
  sending_snapshots_.clear();
  pending_conf_index_ = 0;
  uncommitted_bytes_ = 0;
  DropPendingReads();
  quorum_round_ = 0;
  round_sent_ticks_.clear();
  lease_end_tick_ = 0;
  timeout_now_sent_ = false;
}

void Raft::ResetRandomizedTimeout() {
  randomized_election_ticks_ =
      config_.election_ticks + static_cast<int>(random_.Uniform(config_.election_ticks));
}

void Raft::BecomeFollower(Term term, NodeId lead) {
  Reset(term);
  role_ = Role::kFollower;
  lead_ = lead;
}

void Raft::BecomePreCandidate() {
  BALLOT_ASSERT(role_ != Role::kLeader, "leader cannot become pre-candidate");
  // Pre-vote changes neither term nor vote (thesis 9.6); only the role and the votes counted.
  votes_.clear();
  role_ = Role::kPreCandidate;
  lead_ = kNoNode;
  StopFollowing();
}

void Raft::BecomeCandidate() {
  BALLOT_ASSERT(role_ != Role::kLeader, "leader cannot become candidate");
  Reset(term_ + 1);
  vote_ = config_.id;
  role_ = Role::kCandidate;
  StopFollowing();
}

// A member campaigns only after an election timeout without a leader, or when its leader asked
// it to (TimeoutNow, after which that leader holds no lease in its term): from here on it is no
// longer bound by stickiness to any leader.
void Raft::StopFollowing() { leader_contact_elapsed_ = config_.election_ticks; }

void Raft::BecomeLeader() {
  BALLOT_ASSERT(role_ == Role::kCandidate, "only a candidate becomes leader");
  Reset(term_);
  role_ = Role::kLeader;
  lead_ = config_.id;
  SyncProgress();
  // Check quorum counts only members heard from during this leadership.
  for (auto& [id, pr] : progress_) pr.set_recent_active(id == config_.id);
  // Only what is durable counts for our own match (the contract in DESIGN.md): entries still in
  // the unstable log are counted at Advance(), once the host has persisted them.
  auto self = progress_.find(config_.id);
  BALLOT_ASSERT(self != progress_.end(), "a leader is a voter");
  self->second.MaybeUpdate(log_.StableLastIndex());
  self->second.BecomeReplicate();
  // A no-op of the new term lets the leader commit (paper 5.4.2) and serve reads (thesis 6.4).
  AppendAsLeader({Entry{0, 0, EntryType::kNoop, {}}});
  // No membership change until the no-op is applied: by then every earlier change is applied too,
  // so at most one change is ever uncommitted (thesis 4.1).
  pending_conf_index_ = log_.LastIndex();
}

bool Raft::Promotable() const {
  return membership_known_ && conf_.voters.count(config_.id) > 0 && !log_.unstable_snapshot() &&
         !HasUnappliedConfChange();
}

// A committed but unapplied change may alter who votes; campaigning before it is applied could
// count the wrong quorum (etcd does the same).
bool Raft::HasUnappliedConfChange() const {
  if (log_.committed() <= log_.applied()) return false;
  Result<std::vector<Entry>> entries =
      log_.Entries(log_.applied() + 1, log_.committed() + 1, UINT64_MAX);
  if (!entries.ok()) return true;
  return std::any_of(entries->begin(), entries->end(),
                     [](const Entry& e) { return e.type == EntryType::kConfChange; });
}

// Leader stickiness (thesis 4.2.3, 9.6): a member that heard from a leader within the minimum
// election timeout ignores requests to elect another. The time is counted from the leader's last
// message whatever happened to our term since (a higher term learned from a response clears
// lead_, but not the promise a lease relies on). With lease reads, a member that just (re)started
// counts as having heard from one: it may have acknowledged a lease round before it crashed, and
// voting at once could elect a leader while the old one still serves reads.
bool Raft::InLease() const {
  if (!config_.check_quorum) return false;
  if (role_ == Role::kLeader) return true;
  return role_ == Role::kFollower && leader_contact_elapsed_ < config_.election_ticks;
}

// ---------------------------------------------------------------------------------------------
// Time.

void Raft::Tick() {
  ++now_;
  leader_contact_elapsed_ = std::min(leader_contact_elapsed_ + 1, config_.election_ticks);
  if (role_ == Role::kLeader) {
    TickLeader();
  } else {
    TickElection();
  }
}

void Raft::TickElection() {
  ++election_elapsed_;
  if (election_elapsed_ >= randomized_election_ticks_ && Promotable()) {
    election_elapsed_ = 0;
    Campaign(/*transfer=*/false);
  }
}

void Raft::TickLeader() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    // Check quorum (thesis 6.2): a leader cut off from a majority steps down.
    if (config_.check_quorum) {
      if (!QuorumActive()) {
        BecomeFollower(term_, kNoNode);
        return;
      }
      for (auto& [id, pr] : progress_) pr.set_recent_active(id == config_.id);
    }
    // A transfer that did not finish within an election timeout is abandoned (thesis 3.10); a
    // leader that is no longer a voter was handing off (HandOffAfterRemoval) and now steps down.
    if (conf_.voters.count(config_.id) == 0) {
      BecomeFollower(term_, kNoNode);
      return;
    }
    AbortTransfer();
  }
  CheckSnapshotStalls();
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    BroadcastHeartbeat();
  }
}

// ---------------------------------------------------------------------------------------------
// Elections.

void Raft::Campaign(bool transfer) {
  if (!Promotable()) return;
  if (config_.pre_vote && !transfer) {
    BecomePreCandidate();
    RequestVotes(MessageType::kPreVote, term_ + 1, false);
  } else {
    Elect(transfer);
  }
}

void Raft::Elect(bool transfer) {
  BecomeCandidate();
  RequestVotes(MessageType::kVote, term_, transfer);
}

void Raft::RequestVotes(MessageType type, Term term, bool transfer) {
  votes_[config_.id] = true;
  if (static_cast<int>(votes_.size()) >= Quorum()) {  // A single voter elects itself.
    OnElectionWon();
    return;
  }
  for (NodeId voter : conf_.voters) {
    if (voter == config_.id) continue;
    Message m;
    m.type = type;
    m.to = voter;
    m.term = term;
    m.index = log_.LastIndex();
    m.log_term = log_.LastTerm();
    if (transfer) m.context = std::string(kTransferContext);
    Send(std::move(m));
  }
}

void Raft::OnElectionWon() {
  BALLOT_ASSERT(conf_.voters.count(config_.id) > 0, "only a voter wins an election");
  if (role_ == Role::kPreCandidate) {
    Elect(/*transfer=*/false);  // Pre-vote won: now the real election.
    return;
  }
  BecomeLeader();
  BroadcastAppend();
}

void Raft::HandleVoteRequest(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  // Stickiness for a request of our own term (StepHigherTerm covers higher ones): we may have
  // moved to this term on a response, within an election timeout of hearing from a leader.
  const bool sticky = m.context != kTransferContext && vote_ != m.from && InLease();
  // We may vote for the one we already voted for (a retransmission), or for anyone if we have not
  // voted and follow no leader in this term; a pre-vote for a later term changes nothing here.
  const bool can_vote =
      vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) || (pre && m.term > term_);
  Message reply;
  reply.type = pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  reply.to = m.from;
  if (can_vote && !sticky && log_.IsUpToDate(m.index, m.log_term)) {
    reply.term = m.term;  // A granted pre-vote echoes the term the candidate would use.
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    reply.term = term_;
    reply.reject = true;
    // Tell the candidate how far we know the log to be committed, with the term there so that it
    // can check it holds the same entry. A voter can otherwise be stranded without a leader to
    // learn commits from: after a leader that removed itself went away, the remaining voter may
    // not know the removal committed and still needs the old voter's vote, which this log check
    // denies it (see LearnCommitFromVoter).
    reply.commit = log_.committed();
    reply.log_term = log_.TermAt(reply.commit).value_or(0);
  }
  Send(std::move(reply));
}

// Log matching (paper 5.3): if our entry at `index` has the term the voter has there, our logs
// agree up to it, so what the voter knows committed is committed in our log too.
void Raft::LearnCommitFromVoter(Index index, Term term) {
  if (index <= log_.committed() || index > log_.LastIndex() || term == 0) return;
  if (log_.TermAt(index) != term) return;
  log_.CommitTo(index);
}

void Raft::HandleVoteResponse(const Message& m) {
  if (m.reject) LearnCommitFromVoter(m.commit, m.log_term);
  const bool pre = m.type == MessageType::kPreVoteResponse;
  if (pre != (role_ == Role::kPreCandidate)) return;  // A response to an earlier phase.
  if (pre && !m.reject && m.term != term_ + 1) return;
  if (conf_.voters.count(m.from) == 0) return;
  votes_.emplace(m.from, !m.reject);  // The first answer of each voter counts.
  int granted = 0;
  int rejected = 0;
  for (const auto& [id, granted_vote] : votes_) {
    if (conf_.voters.count(id) == 0) continue;
    (granted_vote ? granted : rejected) += 1;
  }
  if (granted >= Quorum()) {
    OnElectionWon();
  } else if (rejected > static_cast<int>(conf_.voters.size()) - Quorum()) {
    BecomeFollower(term_, kNoNode);
  }
}

// ---------------------------------------------------------------------------------------------
// Stepping.

Status Raft::CheckMessage(const Message& m) const {
  if (m.to != config_.id) {
    return Status::InvalidArgument("message for " + std::to_string(m.to) + " delivered to " +
                                   std::to_string(config_.id));
  }
  if (m.from == kNoNode || m.from == config_.id) {
    return Status::InvalidArgument("message from invalid sender " + std::to_string(m.from));
  }
  if (static_cast<uint8_t>(m.type) > static_cast<uint8_t>(MessageType::kTimeoutNow)) {
    return Status::InvalidArgument("not a raft message: " + std::string(MessageTypeName(m.type)));
  }
  if (m.type == MessageType::kAppend) {
    Term prev_term = m.log_term;
    for (size_t i = 0; i < m.entries.size(); ++i) {
      const Entry& e = m.entries[i];
      if (e.index != m.index + 1 + i || e.term < prev_term || e.term > m.term) {
        return Status::InvalidArgument("malformed append: " + m.ToString());
      }
      prev_term = e.term;
    }
  }
  if (m.type == MessageType::kSnapshot &&
      (m.snapshot_meta.index == 0 || m.snapshot_offset > m.snapshot_size ||
       m.snapshot_chunk.size() > m.snapshot_size - m.snapshot_offset)) {
    return Status::InvalidArgument("malformed snapshot chunk: " + m.ToString());
  }
  return Status::Ok();
}

Status Raft::Step(const Message& m) {
  RETURN_IF_ERROR(CheckMessage(m));
  if (m.term > term_) {
    if (!StepHigherTerm(m)) return Status::Ok();
  } else if (m.term < term_) {
    StepLowerTerm(m);
    return Status::Ok();
  }
  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    HandleVoteRequest(m);
    return Status::Ok();
  }
  switch (role_) {
    case Role::kLeader:
      StepLeader(m);
      break;
    case Role::kPreCandidate:
    case Role::kCandidate:
      StepCandidate(m);
      break;
    case Role::kFollower:
      StepFollower(m);
      break;
  }
  return Status::Ok();
}

// Returns whether to go on processing `m` (paper 5.1: a higher term makes us a follower).
bool Raft::StepHigherTerm(const Message& m) {
  if ((m.type == MessageType::kVote || m.type == MessageType::kPreVote) &&
      m.context != kTransferContext && InLease()) {
    return false;  // Leader stickiness: do not even adopt the term.
  }
  if (Buggy(Bug::kIgnoreHigherTerm) && role_ == Role::kLeader) return true;
  // Pre-votes change nothing (thesis 9.6); a granted pre-vote echoes the future term.
  if (m.type == MessageType::kPreVote) return true;
  if (m.type == MessageType::kPreVoteResponse && !m.reject) return true;
  BecomeFollower(m.term, IsLeaderMessage(m.type) ? m.from : kNoNode);
  return true;
}

// A message from an older term is dropped, but answered where that unblocks the sender (etcd):
// a stale leader learns our term and steps down; a node that raised its term while partitioned
// (without pre-vote) learns, through the leader's step-down, a term the cluster can continue in.
void Raft::StepLowerTerm(const Message& m) {
  Message reply;
  reply.to = m.from;
  if ((config_.check_quorum || config_.pre_vote) &&
      (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
    reply.type = MessageType::kAppendResponse;
  } else if (m.type == MessageType::kPreVote || m.type == MessageType::kVote) {
    // Paper 5.1: a stale request is rejected with our term, so the candidate catches up. Without
    // it, a candidate whose term trails could campaign forever below the term of the one voter
    // it needs, when that voter never sends it anything else (it counts the candidate as a
    // learner, say, because it has not yet applied the candidate's promotion).
    reply.type =
        m.type == MessageType::kVote ? MessageType::kVoteResponse : MessageType::kPreVoteResponse;
    reply.reject = true;
    reply.commit = log_.committed();
    reply.log_term = log_.TermAt(reply.commit).value_or(0);
  } else {
    return;
  }
  Send(std::move(reply));
}

void Raft::StepCandidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      // A leader exists in this term (or, pre-candidate, in our current term): follow it.
      BecomeFollower(term_, m.from);
      StepFollower(m);
      break;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      HandleVoteResponse(m);
      break;
    case MessageType::kTimeoutNow:
      // The leader of our term picked us while we were testing the waters: campaign for real.
      if (role_ == Role::kPreCandidate) Campaign(/*transfer=*/true);
      break;
    default:
      break;  // Read requests cannot be served without a leader; the host times them out.
  }
}

void Raft::StepFollower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      HeardFromLeader(m.from);
      HandleAppend(m);
      break;
    case MessageType::kHeartbeat:
      HeardFromLeader(m.from);
      HandleHeartbeat(m);
      break;
    case MessageType::kSnapshot:
      HeardFromLeader(m.from);
      HandleSnapshotChunk(m);
      break;
    case MessageType::kTimeoutNow:
      Campaign(/*transfer=*/true);  // Thesis 3.10: skip pre-vote and the election timeout.
      break;
    case MessageType::kReadIndexResponse:
      read_states_.push_back(ReadState{m.index, m.context});
      break;
    default:
      break;
  }
}

void Raft::HeardFromLeader(NodeId from) {
  election_elapsed_ = 0;
  leader_contact_elapsed_ = 0;
  lead_ = from;
}

// Routes a message by the persistence rule: a leader's appends, heartbeats, snapshot chunks,
// TimeoutNow and read responses promise nothing about our disk and may leave at once; everything
// else (votes, acknowledgements, forwarded requests) leaves after the Ready is durable.
void Raft::Send(Message m) {
  m.from = config_.id;
  if (m.term == 0) m.term = term_;
  bool before_persist = false;
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
    case MessageType::kTimeoutNow:
    case MessageType::kReadIndexResponse:
      before_persist = role_ == Role::kLeader;
      break;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      before_persist = Buggy(Bug::kVoteBeforePersist);
      break;
    default:
      break;
  }
  (before_persist ? messages_ : messages_after_persist_).push_back(std::move(m));
}

// ---------------------------------------------------------------------------------------------
// Ready / Advance.

bool Raft::HasReady() const {
  if (in_flight_ready_) return false;
  return soft_state() != prev_soft_ || hard_state() != prev_hard_ || log_.unstable_snapshot() ||
         !log_.unstable_entries().empty() || !messages_.empty() ||
         !messages_after_persist_.empty() || !read_states_.empty() ||
         log_.HasNextCommittedEntries();
}

Ready Raft::GetReady() {
  BALLOT_ASSERT(!in_flight_ready_, "GetReady() called again before Advance()");
  Ready rd;
  if (soft_state() != prev_soft_) rd.soft_state = prev_soft_ = soft_state();
  if (hard_state() != prev_hard_) {
    const HardState hs = hard_state();
    // A new commit index alone needs no sync: a lost one is learned again (engine-contract.md).
    rd.hard_state_must_sync = hs.term != prev_hard_.term || hs.vote != prev_hard_.vote;
    rd.hard_state = prev_hard_ = hs;
  }
  InFlightReady in_flight;
  if (log_.unstable_snapshot()) {
    rd.snapshot = *log_.unstable_snapshot();
    in_flight.snapshot_index = rd.snapshot->meta.index;
  }
  rd.entries = log_.unstable_entries();
  if (!rd.entries.empty()) {
    in_flight.first_entry_index = rd.entries.front().index;
    in_flight.entry_terms.reserve(rd.entries.size());
    for (const Entry& e : rd.entries) in_flight.entry_terms.push_back(e.term);
  }
  rd.messages = std::move(messages_);
  rd.messages_after_persist = std::move(messages_after_persist_);
  rd.read_states = std::move(read_states_);
  messages_.clear();
  messages_after_persist_.clear();
  read_states_.clear();
  rd.committed_entries = log_.NextCommittedEntries();
  in_flight.committed = rd.committed_entries;
  in_flight_ready_ = std::move(in_flight);
  return rd;
}

void Raft::Advance() {
  BALLOT_ASSERT(in_flight_ready_.has_value(), "Advance() without GetReady()");
  InFlightReady done = std::move(*in_flight_ready_);
  in_flight_ready_.reset();
  if (done.snapshot_index != 0) AdvanceSnapshot(done.snapshot_index);
  if (!done.entry_terms.empty()) AdvanceEntries(done.first_entry_index, done.entry_terms);
  if (!done.committed.empty()) AdvanceCommitted(done.committed);
}

void Raft::AdvanceSnapshot(Index index) {
  const std::optional<Snapshot>& snapshot = log_.unstable_snapshot();
  if (!snapshot || snapshot->meta.index != index) return;  // Replaced by a newer one meanwhile.
  conf_ = snapshot->meta.conf;
  membership_known_ = !conf_.voters.empty();
  log_.StableSnapTo(index);
  log_.AppliedTo(index);
}

void Raft::AdvanceEntries(Index first, const std::vector<Term>& terms) {
  log_.StableTo(first, terms);
  if (role_ != Role::kLeader) return;
  // The leader's own write is durable now: only from here on does it count towards a quorum.
  auto self = progress_.find(config_.id);
  if (self == progress_.end()) return;
  if (self->second.MaybeUpdate(log_.StableLastIndex()) && MaybeCommit()) BroadcastAppend();
}

void Raft::AdvanceCommitted(const std::vector<Entry>& committed) {
  for (const Entry& e : committed) {
    if (e.index <= log_.applied()) continue;  // Covered by a snapshot installed meanwhile.
    ApplyConfEntry(e);
    log_.AppliedTo(e.index);
    if (role_ == Role::kLeader && e.term == term_) {
      uncommitted_bytes_ -= std::min<uint64_t>(uncommitted_bytes_, e.data.size());
    }
  }
}

void Raft::ApplyConfEntry(const Entry& entry) {
  if (entry.type != EntryType::kConfChange) return;
  ConfChange cc;
  if (!ConfChange::Decode(entry.data, &cc)) return;  // Not ours to judge: nothing to apply.
  conf_ = ApplyConfChange(conf_, cc);
  if (role_ == Role::kPreCandidate || role_ == Role::kCandidate) {
    // The votes being counted were asked under the old configuration: a campaign that outlives a
    // change of the voters is abandoned (and one of a member no longer voting must not win).
    BecomeFollower(term_, kNoNode);
    return;
  }
  if (role_ != Role::kLeader) return;
  if (conf_.voters.count(config_.id) == 0) {
    HandOffAfterRemoval();
    return;
  }
  SyncProgress();
  if (lead_transferee_ != kNoNode && conf_.voters.count(lead_transferee_) == 0) AbortTransfer();
  // The quorum changed: entries or reads may now have one.
  if (MaybeCommit()) {
    BroadcastAppend();
  } else {
    for (const auto& [id, pr] : progress_) {
      if (id != config_.id) SendAppend(id, /*send_if_empty=*/false);
    }
  }
  UpdateQuorumRound();
}

// A leader that applied its own removal hands leadership to the most caught-up voter of the new
// configuration, and steps down when that voter's election deposes it or after an election timeout
// (thesis 4.2.2). Stepping down at once could strand the others: they may not yet know that the
// removal committed, so they still need this member's vote, which it would deny them if its log is
// longer than theirs.
void Raft::HandOffAfterRemoval() {
  SyncProgress();
  NodeId best = kNoNode;
  Index best_match = 0;
  for (NodeId voter : conf_.voters) {
    const Index match = progress_.at(voter).match();
    if (best == kNoNode || match > best_match) {
      best = voter;
      best_match = match;
    }
  }
  if (best == kNoNode || !TransferLeadership(best).ok()) BecomeFollower(term_, kNoNode);
}

const Progress* Raft::progress(NodeId id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

}  // namespace ballot::consensus::raft
