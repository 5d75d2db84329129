// The Raft engine's state machine (internal to raft/; hosts use engine.h through NewRaft).
//
// Sections cited are from Ongaro's thesis ("Consensus: Bridging Theory and Practice", 2014) unless
// marked "paper" (Ongaro and Ousterhout, 2014). docs/raft.md gives the rules and their arguments.
//
// The implementation is split by role: raft.cc (lifecycle, Ready/Advance, Step dispatch,
// elections), raft_follower.cc (what any member does with a leader's messages),
// raft_leader.cc (replication, commit, reads, transfer, membership).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/random.h"
#include "consensus/engine.h"
#include "consensus/raft/progress.h"
#include "consensus/raft/raft_log.h"
#include "consensus/snapshot_assembly.h"

namespace ballot::consensus::raft {

// Message.context of a campaign started by a leadership transfer (thesis 3.10): voters grant it
// even while they still follow a live leader.
inline constexpr std::string_view kTransferContext = "transfer";

class Raft final : public Engine {
 public:
  Raft(const Config& config, Bug bug);

  void Tick() override;
  Status Step(const Message& message) override;
  Status Propose(std::string data) override;
  Status ProposeConfChange(const ConfChange& change) override;
  Status ReadIndex(std::string context) override;
  Status TransferLeadership(NodeId to) override;

  // False between GetReady() and Advance(): one Ready is handled at a time.
  bool HasReady() const override;
  Ready GetReady() override;
  void Advance() override;

  NodeId id() const override { return config_.id; }
  SoftState soft_state() const override { return {role_, lead_, term_}; }
  HardState hard_state() const override { return {term_, vote_, log_.committed()}; }
  // Empty while the membership is unknown (see membership_known_): the changes this member has
  // applied alone do not say who the voters are, and a host must not persist a guess.
  const ConfState& conf_state() const override { return membership_known_ ? conf_ : unknown_conf_; }
  Index committed_index() const override { return log_.committed(); }
  Index applied_index() const override { return log_.applied(); }
  Index last_index() const override { return log_.LastIndex(); }
  std::optional<Term> TermAt(Index index) const override { return log_.TermAt(index); }

  // For tests: the leader's view of a member (nullptr if not leader or unknown member).
  const Progress* progress(NodeId id) const;
  NodeId lead_transferee() const { return lead_transferee_; }

 private:
  // A read index request waiting for its quorum round (or for an entry of the term to commit).
  struct PendingRead {
    NodeId from = kNoNode;  // Who asked: this member, or a follower that forwarded it.
    std::string context;
    Index index = 0;     // The commit index recorded when the request could be served.
    uint64_t round = 0;  // The heartbeat round whose quorum acknowledgement releases it.
  };
  // What the outstanding Ready handed out, for Advance().
  struct InFlightReady {
    Index snapshot_index = 0;
    Index first_entry_index = 0;
    std::vector<Term> entry_terms;  // Of the entries handed out, from first_entry_index on.
    std::vector<Entry> committed;
  };

  // raft.cc: lifecycle and roles.
  void LoadFromStorage();
  void Reset(Term term);
  void BecomeFollower(Term term, NodeId lead);
  void BecomePreCandidate();
  void BecomeCandidate();
  void BecomeLeader();
  void StopFollowing();
  void ResetRandomizedTimeout();
  void TickElection();
  void TickLeader();
  bool Promotable() const;
  bool HasUnappliedConfChange() const;
  bool InLease() const;
  int Quorum() const { return static_cast<int>(conf_.voters.size() / 2 + 1); }
  bool Buggy(Bug bug) const;

  // raft.cc: elections (thesis 3.4, 9.6).
  void Campaign(bool transfer);
  void Elect(bool transfer);
  void RequestVotes(MessageType type, Term term, bool transfer);
  void HandleVoteRequest(const Message& m);
  void HandleVoteResponse(const Message& m);
  void LearnCommitFromVoter(Index index, Term term);
  void OnElectionWon();

  // raft.cc: stepping.
  Status CheckMessage(const Message& m) const;
  bool StepHigherTerm(const Message& m);
  void StepLowerTerm(const Message& m);
  void StepLeader(const Message& m);
  void StepCandidate(const Message& m);
  void StepFollower(const Message& m);
  void HeardFromLeader(NodeId from);
  void Send(Message m);

  // raft.cc: Advance.
  void AdvanceSnapshot(Index index);
  void AdvanceEntries(Index first, const std::vector<Term>& terms);
  void AdvanceCommitted(const std::vector<Entry>& committed);
  void ApplyConfEntry(const Entry& entry);
  void HandOffAfterRemoval();

  // raft_follower.cc.
  void HandleAppend(const Message& m);
  void AppendFromLeader(const std::vector<Entry>& entries);
  void LearnBaseConf(const ConfState& base);
  void LearnMembership(Index index, const ConfState& conf);
  void HandleHeartbeat(const Message& m);
  void HandleSnapshotChunk(const Message& m);
  void FinishSnapshot(const Message& m);
  void ReplySnapshotChunk(const Message& m, bool reject);

  // raft_leader.cc: replication and commit (paper 5.3, 5.4.2).
  void AppendAsLeader(std::vector<Entry> entries);
  void BroadcastAppend();
  bool SendAppend(NodeId to, bool send_if_empty);
  void StartSnapshot(NodeId to, Progress& pr);
  void SendSnapshotChunk(NodeId to, Progress& pr);
  void ReleaseSentSnapshots();
  void BroadcastHeartbeat();
  void HandleAppendResponse(const Message& m);
  void OnAppendAcked(NodeId from, Progress& pr, Index index);
  void HandleHeartbeatResponse(const Message& m);
  void HandleSnapshotResponse(const Message& m);
  void CheckSnapshotStalls();
  bool MaybeCommit();
  void OnCommitAdvanced();
  bool QuorumActive() const;
  void SyncProgress();
  void SendTimeoutNow(NodeId to);
  void AbortTransfer() { lead_transferee_ = kNoNode; }
  bool CommittedInTerm() const;

  // raft_leader.cc: read index and lease (thesis 6.4).
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
  RaftLog log_;

  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;
  ConfState conf_;  // As of the applied index.
  // False for a member that started with no membership and has not installed a snapshot: it
  // cannot know the voters, so it never campaigns (see docs/raft.md).
  bool membership_known_ = false;
  // The membership before the first log entry (the bootstrap ConfState), when no snapshot covers
  // index 0. Appends from index 0 carry it in snapshot_meta.conf, so that a member added with an
  // empty ConfState learns the voters that the log's changes start from.
  ConfState base_conf_;
  const ConfState unknown_conf_;

  uint64_t now_ = 0;  // Ticks since start: the engine's clock.
  int election_elapsed_ = 0;
  // Ticks since this member, as a follower, last heard from a leader (capped at election_ticks).
  // Unlike election_elapsed_ it survives term changes: leader stickiness, and with it every
  // lease the member acknowledged, must not end because a response taught it a higher term.
  int leader_contact_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_ticks_ = 0;

  std::map<NodeId, bool> votes_;         // Candidate / pre-candidate: responses this round.
  std::map<NodeId, Progress> progress_;  // Leader: every member of conf_, itself included.
  // Leader: copies of the snapshots being streamed, by index. Storage holds only the latest, and
  // restarting every transfer whenever the host takes a newer one would starve a follower for as
  // long as the host snapshots faster than a transfer completes. At most one per member.
  std::map<Index, Snapshot> sending_snapshots_;
  Index pending_conf_index_ = 0;
  uint64_t uncommitted_bytes_ = 0;
  NodeId lead_transferee_ = kNoNode;

  // Read index and lease state (leader). Heartbeat rounds are numbered across terms so that a
  // response is never mistaken for one to a later round.
  uint64_t heartbeat_round_ = 0;
  uint64_t quorum_round_ = 0;  // Highest round a quorum of voters acknowledged, this term.
  std::deque<std::pair<uint64_t, uint64_t>> round_sent_ticks_;  // (round, tick sent).
  std::deque<PendingRead> reads_waiting_commit_;
  std::deque<PendingRead> reads_waiting_quorum_;
  uint64_t lease_end_tick_ = 0;
  // A TimeoutNow left in this term: it may still be in the network after the transfer was
  // abandoned and let its target campaign past stickiness, so no lease for the rest of the term.
  bool timeout_now_sent_ = false;

  // Follower: the snapshot being assembled from chunks.
  SnapshotAssembler incoming_snapshot_;

  // Output, collected until GetReady().
  std::vector<Message> messages_;
  std::vector<Message> messages_after_persist_;
  std::vector<ReadState> read_states_;
  SoftState prev_soft_;
  HardState prev_hard_;
  std::optional<InFlightReady> in_flight_ready_;
};

}  // namespace ballot::consensus::raft
