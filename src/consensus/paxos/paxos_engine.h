// The Multi-Paxos engine's state machine (internal to paxos/; hosts use engine.h through
// NewMultiPaxos).
//
// After Lamport, "Paxos Made Simple" (2001), section 3, and van Renesse and Altinbuken, "Paxos
// Made Moderately Complex" (2015). docs/multipaxos.md gives the rules and their arguments.
//
// Roles map onto the contract's: a member running phase 1 is a candidate (a pre-candidate while
// it probes whether a quorum would promise at all); a member whose phase 1 succeeded is the leader
// of its ballot, which is the contract's term. The acceptor is every member, the leader included.
//
// Files: paxos.cc (lifecycle, Ready/Advance, stepping, phase 1), paxos_acceptor.cc (what every
// member does with a leader's messages), paxos_leader.cc (phase 2, commit, reads, transfer,
// membership).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/random.h"
#include "consensus/engine.h"
#include "consensus/paxos/paxos_log.h"
#include "consensus/raft/progress.h"
#include "consensus/snapshot_assembly.h"

namespace ballot::consensus::paxos {

// Replication pacing is the same problem in both engines: the leader's view of a member (match,
// next, bounded window of unacknowledged accepts, snapshot transfer) is Raft's Progress.
using raft::Progress;
using raft::ProgressState;

// Message.context of a phase 1 started by a leadership transfer: acceptors promise it even while
// they still follow a live leader.
inline constexpr std::string_view kTransferContext = "transfer";

// InvalidArgument when two of `members`, or `joining` (kNoNode: none) and a member, share a
// ballot tag (ballot.h): their ballots would not be unique.
Status CheckBallotTags(const ConfState& members, NodeId joining);

class MultiPaxos final : public Engine {
 public:
  MultiPaxos(const Config& config, Bug bug);

  void Tick() override;
  Status Step(const Message& message) override;
  Status Propose(std::string data) override;
  Status ProposeConfChange(const ConfChange& change) override;
  Status ReadIndex(std::string context) override;
  Status TransferLeadership(NodeId to) override;

  bool HasReady() const override;
  Ready GetReady() override;
  void Advance() override;

  NodeId id() const override { return config_.id; }
  SoftState soft_state() const override { return {role_, lead_, ballot_}; }
  HardState hard_state() const override { return {ballot_, promised_to_, log_.committed()}; }
  const ConfState& conf_state() const override { return membership_known_ ? conf_ : unknown_; }
  Index committed_index() const override { return log_.committed(); }
  Index applied_index() const override { return log_.applied(); }
  Index last_index() const override { return log_.LastIndex(); }
  std::optional<Term> TermAt(Index index) const override { return log_.TermAt(index); }

 private:
  // What one acceptor reported in phase 1, in promise parts of at most max_message_bytes each:
  // the report counts towards a quorum only once complete.
  struct PromiseReport {
    Index commit = 0;            // As of the first part.
    std::vector<Entry> entries;  // Its slots from the phase's first slot on (holes left out).
    Index covered = 0;           // The last slot of the parts taken so far.
    bool have_first = false;
    bool complete = false;  // Every slot the acceptor holds has been reported.
    // Parts that arrived before the ones preceding them: index -> (entries, last slot or 0).
    std::map<Index, std::pair<std::vector<Entry>, Index>> parts;
    uint64_t progress_tick = 0;  // When the report last moved (or was asked for again).
  };
  struct PendingRead {
    NodeId from = kNoNode;
    std::string context;
    Index index = 0;
    uint64_t round = 0;
  };
  struct InFlightReady {
    Index snapshot_index = 0;
    bool entries = false;
    std::vector<Entry> committed;
  };

  bool Buggy(Bug bug) const;
  int Quorum() const { return static_cast<int>(conf_.voters.size() / 2 + 1); }
  static int QuorumOf(const ConfState& conf) {
    return static_cast<int>(conf.voters.size() / 2 + 1);
  }

  // paxos.cc: lifecycle and roles.
  void LoadFromStorage();
  void Reset(Term ballot);
  void BecomeFollower(Term ballot, NodeId lead);
  void ResetRandomizedTimeout();
  void StopFollowing() { leader_contact_elapsed_ = config_.election_ticks; }
  void TickElection();
  void TickLeader();
  bool Promotable() const;
  bool HasUnappliedConfChange() const;
  bool InLease() const;
  Index AcceptedPrefix() const;

  // paxos.cc: phase 1 (Paxos Made Simple 2.2; PMMC's scout).
  Term NextBallot() const;
  void Campaign(bool transfer);
  void Prepare(bool transfer);
  void SendPrepares(const std::set<NodeId>& to);
  void HandlePreVote(const Message& m);
  void HandlePreVoteResponse(const Message& m);
  void HandlePrepare(const Message& m);
  void HandlePromise(const Message& m);
  void AskForMissingParts();
  void TryFinishPhase1();
  std::vector<Entry> MergePromises(Index* chosen_through) const;
  void BecomeLeader(std::vector<Entry> merged, Index chosen_through);
  void CampaignFailed();
  void SendCatchUp(NodeId to, uint64_t offset);
  void HandleCatchUp(const Message& m);
  void HandleCatchUpAck(const Message& m);

  // paxos.cc: stepping and output.
  Status CheckMessage(const Message& m) const;
  void StepLowerBallot(const Message& m);
  bool ClaimBallot(NodeId from);
  void RefuseTakenBallot(const Message& m);
  void HeardFromLeader(NodeId from);
  void Send(Message m);

  // paxos.cc: Advance.
  void AdvanceCommitted(const std::vector<Entry>& committed);
  void ApplyConfEntry(const Entry& entry);
  void HandOffAfterRemoval();
  void LearnMembership(Index index, const ConfState& conf);

  // paxos_acceptor.cc: phase 2 at the acceptor, commit learning, snapshots.
  void HandleAccept(const Message& m);
  void LearnCommit(Index leader_commit);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshotChunk(const Message& m);
  void FinishSnapshot(const Message& m);
  void ReplySnapshotChunk(const Message& m, bool reject);
  void ReplyAccepted(NodeId to, Index sent_after, Index sent_last);

  // paxos_leader.cc: phase 2 at the leader.
  void StepLeader(const Message& m);
  void AppendAsLeader(std::vector<Entry> entries);
  void BroadcastAccept();
  bool SendAccept(NodeId to, bool send_if_empty);
  void StartSnapshot(NodeId to, Progress& pr);
  void SendSnapshotChunk(NodeId to, Progress& pr);
  void ReleaseSentSnapshots();
  void CheckSnapshotStalls();
  void BroadcastHeartbeat();
  void HandleAccepted(const Message& m);
  void OnAcked(NodeId from, Progress& pr, Index index);
  void HandleHeartbeatResponse(const Message& m);
  void HandleSnapshotResponse(const Message& m);
  bool MaybeCommit();
  void OnCommitAdvanced();
  bool CommittedInBallot() const { return log_.committed() >= ballot_first_slot_; }
  bool QuorumActive() const;
  void SyncProgress(Index next);
  void SendTimeoutNow(NodeId to);
  void AbortTransfer() { lead_transferee_ = kNoNode; }

  // paxos_leader.cc: read index and lease.
  void HandleReadRequest(NodeId from, std::string context);
  void ServeRead(NodeId from, std::string context);
  void RespondRead(NodeId from, Index index, std::string context);
  void UpdateQuorumRound();
  void ExtendLease(uint64_t round);
  void DropPendingReads();

  const Config config_;
  const Bug bug_;
  const Storage* const storage_;
  Random random_;
  PaxosLog log_;

  Term ballot_ = 0;  // The highest ballot promised (and, leading, our own).
  // The member ballot_ is bound to: the only one whose prepares, accepts and heartbeats of that
  // ballot we answer (two members may share a ballot tag; see docs/multipaxos.md, "Member ids and
  // ballots"). kNoNode: not bound yet; the first member to use the ballot binds it.
  NodeId promised_to_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;
  ConfState conf_;  // As of the applied index.
  bool membership_known_ = false;
  const ConfState unknown_;

  uint64_t now_ = 0;
  int election_elapsed_ = 0;
  int leader_contact_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_ticks_ = 0;
  int failed_campaigns_ = 0;  // In a row: widens the randomized timeout (duelling proposers).

  // Pre-candidate: answers to the probe. Candidate: promises of phase 1.
  std::map<NodeId, bool> prevotes_;
  std::map<NodeId, PromiseReport> promises_;
  std::set<NodeId> rejected_by_;
  std::set<NodeId> prepared_;  // Members asked to promise in this phase 1.
  Index phase1_start_ = 0;     // First slot phase 1 covers: our first unchosen slot.
  bool phase1_transfer_ = false;

  // Leader.
  std::map<NodeId, Progress> progress_;
  std::map<Index, Snapshot> sending_snapshots_;
  Index ballot_first_slot_ = 0;  // The no-op that opens our ballot: reads wait for it.
  Index pending_conf_index_ = 0;
  uint64_t uncommitted_bytes_ = 0;
  NodeId lead_transferee_ = kNoNode;
  uint64_t heartbeat_round_ = 0;
  uint64_t quorum_round_ = 0;
  std::deque<std::pair<uint64_t, uint64_t>> round_sent_ticks_;
  std::deque<PendingRead> reads_waiting_commit_;
  std::deque<PendingRead> reads_waiting_quorum_;
  uint64_t lease_end_tick_ = 0;
  bool timeout_now_sent_ = false;

  SnapshotAssembler incoming_snapshot_;  // From the leader (kSnapshot).
  SnapshotAssembler incoming_catch_up_;  // From an acceptor ahead of us (kCatchUpResponse).
  uint64_t catch_up_progress_tick_ = 0;  // When incoming_catch_up_ last took a chunk.

  std::vector<Message> messages_;
  std::vector<Message> messages_after_persist_;
  std::vector<ReadState> read_states_;
  SoftState prev_soft_;
  HardState prev_hard_;
  std::optional<InFlightReady> in_flight_ready_;
};

}  // namespace ballot::consensus::paxos
