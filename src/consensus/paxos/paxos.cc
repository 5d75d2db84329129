#include "consensus/paxos/paxos.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "base/assert.h"
#include "consensus/paxos/ballot.h"
#include "consensus/paxos/paxos_engine.h"

namespace ballot::consensus::paxos {

namespace {

bool IsLeaderMessage(MessageType type) {
  return type == MessageType::kAccept || type == MessageType::kHeartbeat ||
         type == MessageType::kSnapshot;
}

// Messages whose ballot is the sender's own (so it must carry the sender's id).
bool CarriesOwnBallot(MessageType type) {
  return IsLeaderMessage(type) || type == MessageType::kPrepare || type == MessageType::kPreVote ||
         type == MessageType::kTimeoutNow;
}

bool IsPaxosMessage(MessageType type) {
  switch (type) {
    case MessageType::kPreVote:
    case MessageType::kPreVoteResponse:
    case MessageType::kHeartbeat:
    case MessageType::kHeartbeatResponse:
    case MessageType::kSnapshot:
    case MessageType::kSnapshotResponse:
    case MessageType::kReadIndex:
    case MessageType::kReadIndexResponse:
    case MessageType::kTimeoutNow:
    case MessageType::kPrepare:
    case MessageType::kPromise:
    case MessageType::kAccept:
    case MessageType::kAccepted:
    case MessageType::kCatchUp:
    case MessageType::kCatchUpResponse:
      return true;
    default:
      return false;
  }
}

Index InitialCommit(const Config& config) {
  const Storage& storage = *config.storage;
  const Index commit = std::min(storage.InitialHardState().commit, storage.LastIndex());
  return std::max({commit, storage.GetSnapshotMeta().index, config.applied});
}

Index InitialApplied(const Config& config) {
  return std::max(config.applied, config.storage->GetSnapshotMeta().index);
}

}  // namespace

Result<std::unique_ptr<Engine>> NewMultiPaxos(const Config& config, Bug bug) {
  RETURN_IF_ERROR(config.Validate());
#ifndef BALLOT_BROKEN_VARIANTS
  if (bug != Bug::kNone) {
    return Status::Unimplemented("broken engine variants exist only in test builds");
  }
#endif
  ConfState members = config.storage->InitialConfState();
  members.voters.insert(config.id);
  RETURN_IF_ERROR(CheckBallotTags(members, kNoNode));
  if (config.applied > config.storage->LastIndex()) {
    return Status::FailedPrecondition("config.applied " + std::to_string(config.applied) +
                                      " is past the storage's last index " +
                                      std::to_string(config.storage->LastIndex()));
  }
  return std::unique_ptr<Engine>(new MultiPaxos(config, bug));
}

MultiPaxos::MultiPaxos(const Config& config, Bug bug)
    : config_(config),
      bug_(bug),
      storage_(config.storage),
      random_(config.seed),
      log_(config.storage, InitialCommit(config), InitialApplied(config)) {
  LoadFromStorage();
}

Status CheckBallotTags(const ConfState& members, NodeId joining) {
  std::map<NodeId, NodeId> by_tag;
  for (const auto* ids : {&members.voters, &members.learners}) {
    for (NodeId id : *ids) by_tag.emplace(BallotTag(id), id);
  }
  for (const auto* ids : {&members.voters, &members.learners}) {
    for (NodeId id : *ids) {
      if (by_tag.at(BallotTag(id)) != id) {
        return Status::InvalidArgument("multipaxos: members " + std::to_string(id) + " and " +
                                       std::to_string(by_tag.at(BallotTag(id))) +
                                       " share a ballot tag; give one another id");
      }
    }
  }
  if (joining != kNoNode) {
    auto it = by_tag.find(BallotTag(joining));
    if (it != by_tag.end() && it->second != joining) {
      return Status::InvalidArgument("multipaxos: member " + std::to_string(joining) +
                                     " would share a ballot tag with member " +
                                     std::to_string(it->second) + "; give it another id");
    }
  }
  return Status::Ok();
}

bool MultiPaxos::Buggy(Bug bug) const {
#ifdef BALLOT_BROKEN_VARIANTS
  return bug_ == bug;
#else
  (void)bug;
  return false;
#endif
}

void MultiPaxos::LoadFromStorage() {
  const HardState hs = storage_->InitialHardState();
  const SnapshotMeta& snapshot = storage_->GetSnapshotMeta();
  conf_ = storage_->InitialConfState();
  membership_known_ = !conf_.voters.empty() || !conf_.learners.empty();
  if (log_.applied() > snapshot.index) {
    Result<std::vector<Entry>> applied =
        storage_->Entries(snapshot.index + 1, log_.applied() + 1, UINT64_MAX);
    BALLOT_ASSERT(applied.ok(), "applied entries unavailable: " + applied.status().ToString());
    for (const Entry& e : *applied) ApplyConfEntry(e);
  }
  // Accepting a slot in a ballot promises that ballot, but a torn write may keep the slot and lose
  // the hard state written after it: the promise is the highest ballot found on disk.
  Term promised = hs.term;
  if (storage_->LastIndex() >= storage_->FirstIndex()) {
    Result<std::vector<Entry>> held =
        storage_->Entries(storage_->FirstIndex(), storage_->LastIndex() + 1, UINT64_MAX);
    BALLOT_ASSERT(held.ok(), "stored slots unavailable: " + held.status().ToString());
    for (const Entry& e : *held) promised = std::max(promised, e.term);
  }
  BecomeFollower(promised, kNoNode);
  // The ballot's owner is known when the hard state recorded it; a ballot found only in a slot
  // (the hard state torn off) is bound again by the first member that uses it, which is safe:
  // see docs/multipaxos.md, "Member ids and ballots".
  promised_to_ = promised == hs.term ? hs.vote : kNoNode;
  // With lease reads, a member that just restarted may have acknowledged a lease round before it
  // went down: it counts as having just heard from a leader (see InLease()).
  leader_contact_elapsed_ = config_.read_mode == ReadMode::kLease ? 0 : config_.election_ticks;
  prev_hard_ = hs;
  prev_soft_ = soft_state();
}

// ---------------------------------------------------------------------------------------------
// Roles.

void MultiPaxos::Reset(Term ballot) {
  BALLOT_ASSERT(ballot >= ballot_, "a promise never goes back");
  if (ballot != ballot_) promised_to_ = kNoNode;
  ballot_ = ballot;
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  ResetRandomizedTimeout();
  AbortTransfer();
  prevotes_.clear();
  promises_.clear();
  rejected_by_.clear();
  prepared_.clear();
  progress_.clear();
  sending_snapshots_.clear();
  ballot_first_slot_ = UINT64_MAX;
  pending_conf_index_ = 0;
  uncommitted_bytes_ = 0;
  DropPendingReads();
  quorum_round_ = 0;
  round_sent_ticks_.clear();
  lease_end_tick_ = 0;
  timeout_now_sent_ = false;
}

// Randomized timeouts separate proposers; each campaign in a row that fails widens the range, so
// that duelling proposers, which preempt each other's phase 1 with ever higher ballots, settle.
void MultiPaxos::ResetRandomizedTimeout() {
  const int widen = 1 + std::min(failed_campaigns_, 3);
  randomized_election_ticks_ =
      config_.election_ticks +
      static_cast<int>(random_.Uniform(static_cast<uint64_t>(config_.election_ticks * widen)));
}

void MultiPaxos::BecomeFollower(Term ballot, NodeId lead) {
  Reset(ballot);
  role_ = Role::kFollower;
  lead_ = lead;
}

bool MultiPaxos::Promotable() const {
  return membership_known_ && conf_.voters.count(config_.id) > 0 && !log_.unstable_snapshot() &&
         !HasUnappliedConfChange();
}

bool MultiPaxos::HasUnappliedConfChange() const {
  if (log_.committed() <= log_.applied()) return false;
  Result<std::vector<Entry>> entries =
      log_.Entries(log_.applied() + 1, log_.committed() + 1, UINT64_MAX);
  if (!entries.ok()) return true;
  return std::any_of(entries->begin(), entries->end(),
                     [](const Entry& e) { return e.type == EntryType::kConfChange; });
}

// Leader stickiness, as in Raft (thesis 4.2.3): a member that heard from a leader within the
// minimum election timeout promises no other proposer. Lease reads rely on it.
bool MultiPaxos::InLease() const {
  if (!config_.check_quorum) return false;
  if (role_ == Role::kLeader) return true;
  return role_ == Role::kFollower && leader_contact_elapsed_ < config_.election_ticks;
}

// The slots up to which this acceptor's log holds the leader's values: chosen slots (up to
// commit), then every slot accepted in the ballot we promised, which is the leader's.
Index MultiPaxos::AcceptedPrefix() const {
  Index p = log_.committed();
  const Index last = log_.LastIndex();
  while (p < last) {
    const std::optional<Term> term = log_.TermAt(p + 1);
    // Broken: a hole is taken for the leader's value, so the gap is skipped, not filled.
    if (term != ballot_ && !(term == 0 && Buggy(Bug::kPaxosSkipGap))) break;
    ++p;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Time.

void MultiPaxos::Tick() {
  ++now_;
  leader_contact_elapsed_ = std::min(leader_contact_elapsed_ + 1, config_.election_ticks);
  if (role_ == Role::kLeader) {
    TickLeader();
  } else {
    TickElection();
  }
}

void MultiPaxos::TickElection() {
  if (role_ == Role::kCandidate) AskForMissingParts();
  ++election_elapsed_;
  if (election_elapsed_ >= randomized_election_ticks_ && Promotable()) {
    election_elapsed_ = 0;
    Campaign(/*transfer=*/false);
  }
}

void MultiPaxos::TickLeader() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      if (!QuorumActive()) {
        BecomeFollower(ballot_, kNoNode);
        return;
      }
      for (auto& [id, pr] : progress_) pr.set_recent_active(id == config_.id);
    }
    if (conf_.voters.count(config_.id) == 0) {
      BecomeFollower(ballot_, kNoNode);
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
// Phase 1.

Term MultiPaxos::NextBallot() const { return MakeBallot(BallotRound(ballot_) + 1, config_.id); }

void MultiPaxos::Campaign(bool transfer) {
  if (!Promotable()) return;
  if (role_ == Role::kCandidate || role_ == Role::kPreCandidate) CampaignFailed();
  if (config_.pre_vote && !transfer) {
    // Probe first (Raft's pre-vote, thesis 9.6): a member cut off from a quorum does not raise its
    // ballot, so it cannot depose a working leader when it returns.
    const Index commit = log_.committed();
    prevotes_.clear();
    promises_.clear();
    role_ = Role::kPreCandidate;
    lead_ = kNoNode;
    StopFollowing();
    prevotes_[config_.id] = true;
    if (static_cast<int>(prevotes_.size()) >= Quorum()) {
      Prepare(false);
      return;
    }
    for (NodeId voter : conf_.voters) {
      if (voter == config_.id) continue;
      Message m;
      m.type = MessageType::kPreVote;
      m.to = voter;
      m.term = NextBallot();
      m.index = commit;
      Send(std::move(m));
    }
    return;
  }
  Prepare(transfer);
}

void MultiPaxos::CampaignFailed() {
  ++failed_campaigns_;
  ResetRandomizedTimeout();
}

// Paxos Made Simple 2.2, phase 1a: one prepare covers every slot from our first unchosen one on
// (section 3: "a single message for infinitely many instances"). Our own promise counts once it
// is durable: the prepares leave after the Ready that records our ballot.
void MultiPaxos::Prepare(bool transfer) {
  const int failures = failed_campaigns_;
  Reset(NextBallot());
  promised_to_ = config_.id;
  failed_campaigns_ = failures;
  ResetRandomizedTimeout();
  role_ = Role::kCandidate;
  StopFollowing();
  phase1_start_ = log_.committed() + 1;
  phase1_transfer_ = transfer;
  PromiseReport own;  // Our own slots are read from our log when merging.
  own.have_first = true;
  own.complete = true;
  promises_[config_.id] = std::move(own);
  SendPrepares(conf_.voters);
  TryFinishPhase1();
}

void MultiPaxos::SendPrepares(const std::set<NodeId>& to) {
  for (NodeId voter : to) {
    if (voter == config_.id || !prepared_.insert(voter).second) continue;
    Message m;
    m.type = MessageType::kPrepare;
    m.to = voter;
    m.index = phase1_start_ - 1;
    if (phase1_transfer_) m.context = std::string(kTransferContext);
    Send(std::move(m));
  }
}

void MultiPaxos::HandlePreVote(const Message& m) {
  const bool sticky = m.context != kTransferContext && InLease();
  // A candidate behind our compaction point could not learn the chosen slots it lacks from us.
  const bool can_report = m.index + 1 >= log_.FirstIndex();
  const bool grant = m.term > ballot_ && !sticky && can_report;
  if (!can_report) SendCatchUp(m.from, 0);
  Message reply;
  reply.type = MessageType::kPreVoteResponse;
  reply.to = m.from;
  reply.term = grant ? m.term : ballot_;
  reply.reject = !grant;
  Send(std::move(reply));
}

void MultiPaxos::HandlePreVoteResponse(const Message& m) {
  if (role_ != Role::kPreCandidate || m.term != NextBallot()) return;
  if (conf_.voters.count(m.from) == 0) return;
  prevotes_.emplace(m.from, !m.reject);
  int granted = 0;
  int rejected = 0;
  for (const auto& [id, yes] : prevotes_) (yes ? granted : rejected) += 1;
  if (granted >= Quorum()) {
    Prepare(false);
  } else if (rejected > static_cast<int>(conf_.voters.size()) - Quorum()) {
    BecomeFollower(ballot_, kNoNode);
    CampaignFailed();
  }
}

// Phase 1b: promise never to accept a lower ballot, and report what we accepted in the slots the
// prepare covers. The reply promises durability, so it leaves after the Ready.
void MultiPaxos::HandlePrepare(const Message& m) {
  Message reply;
  reply.type = MessageType::kPromise;
  reply.to = m.from;
  reply.index = m.index;
  const Index start = m.index + 1;
  if (start < log_.FirstIndex()) {
    // The proposer lacks chosen slots we compacted: we cannot report them, so no promise.
    reply.term = m.term;
    reply.reject = true;
    reply.reject_hint = log_.FirstIndex() - 1;
    reply.commit = log_.committed();
    Send(std::move(reply));
    SendCatchUp(m.from, 0);
    return;
  }
  if (m.term > ballot_) {
    BecomeFollower(m.term, kNoNode);
    promised_to_ = m.from;
  }
  election_elapsed_ = 0;
  reply.term = m.term;
  reply.commit = log_.committed();
  // The report goes in parts of at most max_message_bytes of slots, all at once: each part names
  // the slot before its first (index) and, unless it is the last, its own last slot (reject_hint).
  const Index last = log_.LastIndex();
  for (Index from = start; from <= last;) {
    Result<std::vector<Entry>> entries = log_.Entries(from, last + 1, config_.max_message_bytes);
    BALLOT_ASSERT(entries.ok() && !entries->empty(),
                  "accepted slots unavailable: " + entries.status().ToString());
    Message part = reply;
    part.index = from - 1;
    from = entries->back().index + 1;
    if (from <= last) part.reject_hint = from - 1;
    for (Entry& e : *entries) {
      if (!IsHole(e)) part.entries.push_back(std::move(e));
    }
    Send(std::move(part));
    if (from > last) return;
  }
  Send(std::move(reply));
}

// A proposer behind our compaction point can never finish phase 1 with us in its quorum, and may
// need us (the member that removed itself, say, whose successor cannot know the removal was
// chosen): we send it our snapshot, which holds chosen slots only, in chunks of at most
// snapshot_chunk_bytes. The proposer acknowledges each chunk (kCatchUp) and we send the next one
// from our snapshot as it is then; we keep no state per proposer.
void MultiPaxos::SendCatchUp(NodeId to, uint64_t offset) {
  const Snapshot& snapshot = storage_->GetSnapshot();
  if (snapshot.IsEmpty()) return;
  Message m;
  m.type = MessageType::kCatchUpResponse;
  m.to = to;
  FillSnapshotChunk(snapshot, offset, config_.snapshot_chunk_bytes, &m);
  Send(std::move(m));
}

// A chunk acknowledged: the proposer holds m.index bytes of m.snapshot_meta's snapshot. A snapshot
// taken since then is sent from its start.
void MultiPaxos::HandleCatchUpAck(const Message& m) {
  const Snapshot& snapshot = storage_->GetSnapshot();
  if (snapshot.IsEmpty()) return;
  SendCatchUp(m.from, snapshot.meta == m.snapshot_meta ? m.index : 0);
}

void MultiPaxos::HandleCatchUp(const Message& m) {
  if (m.snapshot_meta.index <= log_.committed() || role_ == Role::kLeader ||
      log_.unstable_snapshot()) {
    if (incoming_catch_up_.from() == m.from) incoming_catch_up_.Reset();
    return;
  }
  // Every acceptor that refuses us sends its snapshot: we take one sender's at a time (chunks of
  // two would restart each other's), and another's only once that one stalled.
  const bool stalled =
      now_ - catch_up_progress_tick_ >= static_cast<uint64_t>(config_.election_ticks);
  if (incoming_catch_up_.assembling() && incoming_catch_up_.from() != m.from && !stalled) return;
  catch_up_progress_tick_ = now_;
  if (incoming_catch_up_.Add(m) != SnapshotAssembler::Outcome::kComplete) {
    Message ack;
    ack.type = MessageType::kCatchUp;
    ack.to = m.from;
    ack.snapshot_meta = m.snapshot_meta;
    ack.index = incoming_catch_up_.received_bytes();
    Send(std::move(ack));
    return;
  }
  // A campaign counted under the old membership is abandoned; the next one starts past the
  // snapshot.
  if (role_ != Role::kFollower) BecomeFollower(ballot_, kNoNode);
  incoming_snapshot_.Reset();
  log_.Restore(incoming_catch_up_.Take());
}

// A promise part reports the acceptor's slots from m.index + 1 on, through m.reject_hint when
// that is not 0 (more parts follow, see HandlePrepare). Parts are taken in order (early ones wait);
// only a complete report counts: phase 1 may not finish before it has heard, from a quorum, every
// slot those acceptors accepted.
void MultiPaxos::HandlePromise(const Message& m) {
  if (role_ != Role::kCandidate || m.index + 1 < phase1_start_) return;
  if (m.reject) {
    rejected_by_.insert(m.from);
    int rejected = 0;
    for (NodeId v : conf_.voters) rejected += rejected_by_.count(v) > 0 ? 1 : 0;
    if (rejected > static_cast<int>(conf_.voters.size()) - Quorum()) {
      BecomeFollower(ballot_, kNoNode);
      CampaignFailed();
    }
    return;
  }
  auto [it, fresh] = promises_.try_emplace(m.from);
  PromiseReport& report = it->second;
  if (fresh) {
    report.covered = phase1_start_ - 1;
    report.progress_tick = now_;
  }
  if (report.complete || m.index < report.covered) return;  // Old news.
  if (m.index == phase1_start_ - 1) {
    // The commit point is the first part's: the slots up to it stay chosen and in the log while
    // the rest arrives, whereas a commit point that a snapshot installed between the parts raised
    // would claim slots reported before it (or reported as holes) as chosen.
    if (report.have_first) return;
    report.have_first = true;
    report.commit = m.commit;
  }
  report.parts.try_emplace(m.index, m.entries, m.reject_hint);
  bool progress = false;
  for (auto part = report.parts.begin();
       part != report.parts.end() && part->first == report.covered && !report.complete;
       part = report.parts.erase(part)) {
    const auto& [entries, through] = part->second;
    report.entries.insert(report.entries.end(), entries.begin(), entries.end());
    report.complete = through == 0;
    if (!report.complete) report.covered = through;
    progress = true;
  }
  if (!progress) return;
  report.progress_tick = now_;
  election_elapsed_ = 0;  // A phase 1 that is still hearing its report is not abandoned.
  if (report.complete) {
    report.parts.clear();
    TryFinishPhase1();
  }
}

// A report that stopped arriving (a part lost) is asked for again from the last slot it covers.
void MultiPaxos::AskForMissingParts() {
  for (auto& [id, report] : promises_) {
    if (id == config_.id || report.complete ||
        now_ - report.progress_tick < 2 * static_cast<uint64_t>(config_.heartbeat_ticks)) {
      continue;
    }
    report.progress_tick = now_;
    Message more;
    more.type = MessageType::kPrepare;
    more.to = id;
    more.index = report.covered;
    if (phase1_transfer_) more.context = std::string(kTransferContext);
    Send(std::move(more));
  }
}

void MultiPaxos::TryFinishPhase1() {
  if (role_ != Role::kCandidate) return;
  auto has_quorum = [this](const ConfState& conf) {
    int n = 0;
    for (NodeId v : conf.voters) {
      auto it = promises_.find(v);
      n += it != promises_.end() && it->second.complete ? 1 : 0;
    }
    return n >= QuorumOf(conf);
  };
  if (!has_quorum(conf_)) return;
  Index chosen_through = 0;
  std::vector<Entry> merged = MergePromises(&chosen_through);
  // The slots we are about to take over may change the membership. A value in them may have been
  // chosen by a quorum of any configuration along that chain, so phase 1 needs a quorum of each.
  ConfState conf = conf_;
  for (const Entry& e : merged) {
    ConfChange cc;
    if (e.type != EntryType::kConfChange || !ConfChange::Decode(e.data, &cc)) continue;
    conf = ApplyConfChange(conf, cc);
    if (!has_quorum(conf)) {
      SendPrepares(conf.voters);
      return;
    }
  }
  BecomeLeader(std::move(merged), chosen_through);
}

// Phase 2a's value rule (Paxos Made Simple 2.2): in each slot, a value some acceptor knows chosen;
// else the value of the highest ballot any acceptor reported; else a no-op fills the gap.
std::vector<Entry> MultiPaxos::MergePromises(Index* chosen_through) const {
  const Index start = phase1_start_;
  struct Report {
    Index commit;
    std::map<Index, const Entry*> slots;
  };
  std::vector<Report> reports;
  std::vector<Entry> own;
  if (start <= log_.LastIndex()) {
    Result<std::vector<Entry>> entries = log_.Entries(start, log_.LastIndex() + 1, UINT64_MAX);
    BALLOT_ASSERT(entries.ok(), "own slots unavailable");
    own = std::move(entries).value();
  }
  Report self{log_.committed(), {}};
  for (const Entry& e : own) {
    if (!IsHole(e)) self.slots[e.index] = &e;
  }
  reports.push_back(std::move(self));
  if (!Buggy(Bug::kPaxosIgnorePromisedValues)) {
    for (const auto& [id, report] : promises_) {
      if (id == config_.id || !report.complete) continue;  // Only whole reports count.
      Report r{report.commit, {}};
      for (const Entry& e : report.entries) {
        if (e.index >= start && !IsHole(e)) r.slots[e.index] = &e;
      }
      reports.push_back(std::move(r));
    }
  }
  // The merge covers our own log to its end, trailing holes included (as no-ops). Write() keeps
  // the slots after the ones it writes, and a torn append can leave our log ending in holes (the
  // gap before a slot whose write was lost): a hole left there would stay in the leader's log
  // under its opening no-op, go out to the acceptors as a no-op of our ballot and count as
  // accepted by us, so it could be chosen while our own log says nothing was accepted there, and
  // a later promise of ours would leave out a slot its commit point covers.
  Index last = std::max(start - 1, log_.LastIndex());
  *chosen_through = log_.committed();
  for (const Report& r : reports) {
    if (!r.slots.empty()) last = std::max(last, r.slots.rbegin()->first);
    *chosen_through = std::max(*chosen_through, r.commit);
  }
  std::vector<Entry> merged;
  for (Index s = start; s <= last; ++s) {
    const Entry* pick = nullptr;
    bool chosen = false;
    for (const Report& r : reports) {
      auto it = r.slots.find(s);
      if (it == r.slots.end()) continue;
      if (r.commit >= s) {
        pick = it->second;
        chosen = true;
        break;
      }
      if (pick == nullptr || it->second->term > pick->term) pick = it->second;
    }
    BALLOT_ASSERT(chosen || s > *chosen_through, "a chosen slot nobody reported");
    Entry e = pick != nullptr ? *pick : Entry{0, s, EntryType::kNoop, {}};
    e.index = s;
    e.term = ballot_;
    merged.push_back(std::move(e));
  }
  *chosen_through = std::min(*chosen_through, start - 1 + merged.size());
  return merged;
}

void MultiPaxos::BecomeLeader(std::vector<Entry> merged, Index chosen_through) {
  const Index start = phase1_start_;
  Reset(ballot_);
  role_ = Role::kLeader;
  lead_ = config_.id;
  failed_campaigns_ = 0;
  // PMMC's commander for every open slot at once: the merged values, re-proposed in our ballot.
  log_.Write(merged);
  BALLOT_ASSERT(log_.LastIndex() == start - 1 + merged.size(),
                "a new leader's log holds a slot it does not propose");
  log_.CommitTo(chosen_through);
  // A no-op opens the ballot: once it is chosen every earlier slot is too, so reads and membership
  // changes wait for it (as Raft waits for its first entry of the term).
  AppendAsLeader({Entry{0, 0, EntryType::kNoop, {}}});
  ballot_first_slot_ = log_.LastIndex();
  pending_conf_index_ = ballot_first_slot_;
  SyncProgress(start);
  for (auto& [id, pr] : progress_) pr.set_recent_active(id == config_.id);
  auto self = progress_.find(config_.id);
  BALLOT_ASSERT(self != progress_.end(), "a leader is a voter");
  self->second.MaybeUpdate(log_.StableLastIndex());
  self->second.BecomeReplicate();
  if (MaybeCommit()) OnCommitAdvanced();
  BroadcastAccept();
}

// ---------------------------------------------------------------------------------------------
// Stepping.

Status MultiPaxos::CheckMessage(const Message& m) const {
  if (m.to != config_.id) {
    return Status::InvalidArgument("message for " + std::to_string(m.to) + " delivered to " +
                                   std::to_string(config_.id));
  }
  if (m.from == kNoNode || m.from == config_.id) {
    return Status::InvalidArgument("message from invalid sender " + std::to_string(m.from));
  }
  if (!IsPaxosMessage(m.type)) {
    return Status::InvalidArgument("not a multipaxos message: " +
                                   std::string(MessageTypeName(m.type)));
  }
  if (CarriesOwnBallot(m.type) && BallotOwner(m.term) != BallotTag(m.from)) {
    return Status::InvalidArgument("ballot " + std::to_string(m.term) + " is not " +
                                   std::to_string(m.from) + "'s: " + m.ToString());
  }
  if (m.type == MessageType::kAccept) {
    for (size_t i = 0; i < m.entries.size(); ++i) {
      const Entry& e = m.entries[i];
      if (e.index != m.index + 1 + i || e.term != m.term) {
        return Status::InvalidArgument("malformed accept: " + m.ToString());
      }
    }
  }
  if (m.type == MessageType::kPromise) {
    for (size_t i = 0; i < m.entries.size(); ++i) {
      const Entry& e = m.entries[i];
      if (e.index <= m.index || e.term == 0 || e.term > m.term ||
          (m.reject_hint != 0 && e.index > m.reject_hint) ||
          (i > 0 && e.index <= m.entries[i - 1].index)) {
        return Status::InvalidArgument("malformed promise: " + m.ToString());
      }
    }
  }
  if (m.type == MessageType::kPromise && !m.reject && m.reject_hint != 0 &&
      m.reject_hint <= m.index) {
    return Status::InvalidArgument("malformed promise: " + m.ToString());
  }
  if (m.type == MessageType::kCatchUp && m.snapshot_meta.index == 0) {
    return Status::InvalidArgument("malformed catch-up acknowledgement: " + m.ToString());
  }
  if ((m.type == MessageType::kSnapshot || m.type == MessageType::kCatchUpResponse) &&
      (m.snapshot_meta.index == 0 || m.snapshot_offset > m.snapshot_size ||
       m.snapshot_chunk.size() > m.snapshot_size - m.snapshot_offset)) {
    return Status::InvalidArgument("malformed snapshot chunk: " + m.ToString());
  }
  return Status::Ok();
}

Status MultiPaxos::Step(const Message& m) {
  RETURN_IF_ERROR(CheckMessage(m));
  if (m.type == MessageType::kCatchUpResponse) {
    HandleCatchUp(m);  // Chosen slots, whoever sends them and in whatever ballot.
    return Status::Ok();
  }
  if (m.type == MessageType::kCatchUp) {
    HandleCatchUpAck(m);
    return Status::Ok();
  }
  if (m.term > ballot_) {
    switch (m.type) {
      case MessageType::kPreVote:
        HandlePreVote(m);  // Changes nothing.
        return Status::Ok();
      case MessageType::kPreVoteResponse:
        if (!m.reject) {
          HandlePreVoteResponse(m);
          return Status::Ok();
        }
        break;
      case MessageType::kPrepare:
        if (m.context != kTransferContext && InLease()) return Status::Ok();  // Stickiness.
        HandlePrepare(m);
        return Status::Ok();
      case MessageType::kPromise:
        if (!m.reject) return Status::Ok();  // Not an answer to any prepare of ours.
        break;
      default:
        break;
    }
    // Any other message of a higher ballot: promise it (an accept implies the promise, PMMC).
    BecomeFollower(m.term, IsLeaderMessage(m.type) ? m.from : kNoNode);
    if (CarriesOwnBallot(m.type)) promised_to_ = m.from;
  } else if (m.term < ballot_) {
    StepLowerBallot(m);
    return Status::Ok();
  } else if (CarriesOwnBallot(m.type) && m.type != MessageType::kPreVote && !ClaimBallot(m.from)) {
    RefuseTakenBallot(m);  // Our ballot, but another member's: as good as a lower one.
    return Status::Ok();
  }
  switch (m.type) {
    case MessageType::kPrepare:
      HandlePrepare(m);  // A retransmission of the prepare we promised.
      return Status::Ok();
    case MessageType::kPreVote:
      HandlePreVote(m);
      return Status::Ok();
    case MessageType::kPromise:
      HandlePromise(m);
      return Status::Ok();
    case MessageType::kPreVoteResponse:
      HandlePreVoteResponse(m);
      return Status::Ok();
    default:
      break;
  }
  if (role_ == Role::kLeader) {
    StepLeader(m);
    return Status::Ok();
  }
  switch (m.type) {
    case MessageType::kAccept:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      if (role_ != Role::kFollower) BecomeFollower(ballot_, m.from);
      HeardFromLeader(m.from);
      if (m.type == MessageType::kAccept) HandleAccept(m);
      if (m.type == MessageType::kHeartbeat) HandleHeartbeat(m);
      if (m.type == MessageType::kSnapshot) HandleSnapshotChunk(m);
      break;
    case MessageType::kTimeoutNow:
      Campaign(/*transfer=*/true);
      break;
    case MessageType::kReadIndexResponse:
      read_states_.push_back(ReadState{m.index, m.context});
      break;
    default:
      break;
  }
  return Status::Ok();
}

// A message of a lower ballot is refused, with our ballot, so that a deposed leader or a beaten
// proposer learns it and steps down.
void MultiPaxos::StepLowerBallot(const Message& m) {
  Message reply;
  reply.to = m.from;
  reply.reject = true;
  switch (m.type) {
    case MessageType::kAccept:
      if (Buggy(Bug::kPaxosAcceptLowerBallot)) {
        // Broken: accept a ballot below our promise, and say so.
        std::vector<Entry> write;
        for (const Entry& e : m.entries) {
          if (e.index > log_.committed() && e.index >= log_.FirstIndex()) write.push_back(e);
        }
        if (!write.empty() && write.front().index <= log_.LastIndex() + 1) log_.Write(write);
        reply.type = MessageType::kAccepted;
        reply.term = m.term;
        reply.reject = false;
        reply.index = m.index + m.entries.size();
        Send(std::move(reply));
        return;
      }
      reply.type = MessageType::kAccepted;
      reply.index = m.index;
      break;
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      reply.type = MessageType::kHeartbeatResponse;
      break;
    case MessageType::kPrepare:
      reply.type = MessageType::kPromise;
      reply.index = m.index;
      break;
    case MessageType::kPreVote:
      reply.type = MessageType::kPreVoteResponse;
      break;
    default:
      return;
  }
  Send(std::move(reply));
}

// A ballot is bound to the first member that uses it (see promised_to_). Returns whether `from`
// owns our ballot.
bool MultiPaxos::ClaimBallot(NodeId from) {
  if (Buggy(Bug::kPaxosSharedBallotTag)) return true;  // Broken: any member with the tag owns it.
  if (promised_to_ == kNoNode) promised_to_ = from;
  return promised_to_ == from;
}

// A member with the tag of our ballot's owner used that ballot: we refuse it in the ballot itself,
// with a reply that cannot be mistaken for an answer to the owner (a rejected promise; a rejected
// heartbeat response, which no acceptor sends in the leader's own ballot otherwise). The refused
// member abandons the ballot and campaigns in a higher round.
void MultiPaxos::RefuseTakenBallot(const Message& m) {
  Message reply;
  reply.to = m.from;
  reply.term = ballot_;
  reply.reject = true;
  switch (m.type) {
    case MessageType::kPrepare:
      reply.type = MessageType::kPromise;
      reply.index = m.index;
      break;
    case MessageType::kAccept:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      reply.type = MessageType::kHeartbeatResponse;
      break;
    default:
      return;
  }
  Send(std::move(reply));
}

void MultiPaxos::HeardFromLeader(NodeId from) {
  election_elapsed_ = 0;
  leader_contact_elapsed_ = 0;
  failed_campaigns_ = 0;
  lead_ = from;
}

// The persistence rule: a leader's accepts, heartbeats, snapshot chunks, TimeoutNow and read
// responses promise nothing about our disk and leave at once; promises, acceptances and every
// other reply leave after the Ready is durable.
void MultiPaxos::Send(Message m) {
  m.from = config_.id;
  if (m.term == 0) m.term = ballot_;
  bool before_persist = false;
  switch (m.type) {
    case MessageType::kAccept:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
    case MessageType::kTimeoutNow:
    case MessageType::kReadIndexResponse:
      before_persist = role_ == Role::kLeader;
      break;
    case MessageType::kPromise:
      before_persist = Buggy(Bug::kPaxosPromiseBeforePersist);
      break;
    default:
      break;
  }
  (before_persist ? messages_ : messages_after_persist_).push_back(std::move(m));
}

// ---------------------------------------------------------------------------------------------
// Ready / Advance.

bool MultiPaxos::HasReady() const {
  if (in_flight_ready_) return false;
  return soft_state() != prev_soft_ || hard_state() != prev_hard_ || log_.unstable_snapshot() ||
         !log_.unstable_entries().empty() || !messages_.empty() ||
         !messages_after_persist_.empty() || !read_states_.empty() ||
         log_.HasNextCommittedEntries();
}

Ready MultiPaxos::GetReady() {
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
  in_flight.entries = !rd.entries.empty();
  log_.MarkHandedOut();
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

void MultiPaxos::Advance() {
  BALLOT_ASSERT(in_flight_ready_.has_value(), "Advance() without GetReady()");
  InFlightReady done = std::move(*in_flight_ready_);
  in_flight_ready_.reset();
  if (done.snapshot_index != 0) {
    const std::optional<Snapshot>& snapshot = log_.unstable_snapshot();
    if (snapshot && snapshot->meta.index == done.snapshot_index) {
      conf_ = snapshot->meta.conf;
      membership_known_ = !conf_.voters.empty();
      log_.StableSnapTo(done.snapshot_index);
      log_.AppliedTo(done.snapshot_index);
    }
  }
  log_.Stabilize();
  if (role_ == Role::kLeader) {
    // Our own acceptance counts only once it is durable (the contract's persistence rule).
    auto self = progress_.find(config_.id);
    if (self != progress_.end() && self->second.MaybeUpdate(log_.StableLastIndex()) &&
        MaybeCommit()) {
      BroadcastAccept();
    }
  }
  if (!done.committed.empty()) AdvanceCommitted(done.committed);
}

void MultiPaxos::AdvanceCommitted(const std::vector<Entry>& committed) {
  for (const Entry& e : committed) {
    if (e.index <= log_.applied()) continue;
    ApplyConfEntry(e);
    log_.AppliedTo(e.index);
    if (role_ == Role::kLeader && e.term == ballot_) {
      uncommitted_bytes_ -= std::min<uint64_t>(uncommitted_bytes_, e.data.size());
    }
  }
}

void MultiPaxos::ApplyConfEntry(const Entry& entry) {
  if (entry.type != EntryType::kConfChange) return;
  ConfChange cc;
  if (!ConfChange::Decode(entry.data, &cc)) return;
  conf_ = ApplyConfChange(conf_, cc);
  if (role_ == Role::kPreCandidate || role_ == Role::kCandidate) {
    // The promises counted were asked under the old configuration.
    BecomeFollower(ballot_, kNoNode);
    return;
  }
  if (role_ != Role::kLeader) return;
  if (conf_.voters.count(config_.id) == 0) {
    HandOffAfterRemoval();
    return;
  }
  SyncProgress(log_.LastIndex() + 1);
  if (lead_transferee_ != kNoNode && conf_.voters.count(lead_transferee_) == 0) AbortTransfer();
  if (MaybeCommit()) {
    BroadcastAccept();
  } else {
    for (const auto& [id, pr] : progress_) {
      if (id != config_.id) SendAccept(id, /*send_if_empty=*/false);
    }
  }
  UpdateQuorumRound();
}

// A leader that applied its own removal hands leadership to the most caught-up voter left, and
// steps down when that one's phase 1 deposes it or after an election timeout.
void MultiPaxos::HandOffAfterRemoval() {
  SyncProgress(log_.LastIndex() + 1);
  NodeId best = kNoNode;
  Index best_match = 0;
  for (NodeId voter : conf_.voters) {
    const Index match = progress_.at(voter).match();
    if (best == kNoNode || match > best_match) {
      best = voter;
      best_match = match;
    }
  }
  if (best == kNoNode || !TransferLeadership(best).ok()) BecomeFollower(ballot_, kNoNode);
}

// A member that does not know the membership adopts the leader's, as of the leader's applied
// index, once that slot is chosen here too (see docs/raft.md, LearnMembership).
void MultiPaxos::LearnMembership(Index index, const ConfState& conf) {
  if (conf.voters.empty() || index == 0 || index > log_.committed()) return;
  std::vector<Entry> replay;
  if (index < log_.applied()) {
    Result<std::vector<Entry>> entries = log_.Entries(index + 1, log_.applied() + 1, UINT64_MAX);
    if (!entries.ok()) return;
    replay = std::move(entries).value();
  }
  conf_ = conf;
  membership_known_ = true;
  for (const Entry& e : replay) ApplyConfEntry(e);
}

}  // namespace ballot::consensus::paxos
