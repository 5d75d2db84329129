// What a member does with its leader's messages: appends, heartbeats, snapshot chunks.
#include <algorithm>
#include <string>
#include <utility>

#include "base/assert.h"
#include "consensus/raft/raft_engine.h"

namespace ballot::consensus::raft {

// Paper 5.3: accept entries only after (index, log_term) matches our log (log matching).
void Raft::HandleAppend(const Message& m) {
  Message reply;
  reply.type = MessageType::kAppendResponse;
  reply.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to commit already matches the leader; say so instead of rejecting.
    reply.index = log_.committed();
    Send(std::move(reply));
    return;
  }
  const bool match = Buggy(Bug::kAppendWithoutLogMatching) ? m.index <= log_.LastIndex()
                                                           : log_.MatchTerm(m.index, m.log_term);
  if (match) {
    if (m.index == 0 && !membership_known_) LearnBaseConf(m.snapshot_meta.conf);
    const Index last_new = m.index + m.entries.size();
    AppendFromLeader(m.entries);
    log_.CommitTo(std::min(m.commit, last_new));
    reply.index = last_new;
    Send(std::move(reply));
    return;
  }
  // Fast backtracking: point the leader at the last index whose term is <= the one it probed
  // with, so that it skips a whole divergent term per round trip.
  const auto [hint_index, hint_term] =
      log_.FindConflictByTerm(std::min(m.index, log_.LastIndex()), m.log_term);
  reply.index = m.index;
  reply.reject = true;
  reply.reject_hint = hint_index;
  reply.reject_term = hint_term;
  Send(std::move(reply));
}

void Raft::AppendFromLeader(const std::vector<Entry>& entries) {
  const Index conflict = log_.FindConflict(entries);
  if (conflict == 0) return;  // Everything is already there (a duplicate or reordered append).
  Index from = conflict;
  if (conflict <= log_.committed()) {
    // With log matching checked this cannot happen: a leader holds every committed entry.
    BALLOT_ASSERT(Buggy(Bug::kAppendWithoutLogMatching),
                  "append conflicts with committed entry " + std::to_string(conflict));
    from = log_.committed() + 1;
  }
  const Index first = entries.front().index;
  if (from > entries.back().index) return;
  log_.Append(std::vector<Entry>(entries.begin() + static_cast<std::ptrdiff_t>(from - first),
                                 entries.end()));
}

// A member that started with no membership learns the bootstrap one from the leader's first
// append, then replays the changes it has applied since.
void Raft::LearnBaseConf(const ConfState& base) {
  if (base.voters.empty()) return;
  base_conf_ = base;
  conf_ = base;
  membership_known_ = true;
  if (log_.applied() == 0) return;
  Result<std::vector<Entry>> applied = log_.Entries(1, log_.applied() + 1, UINT64_MAX);
  if (!applied.ok()) return;
  for (const Entry& e : *applied) ApplyConfEntry(e);
}

// A member that does not know the membership (it joined with none and restarted before a
// snapshot recorded it) adopts the leader's, as of the leader's applied index `index`, once that
// entry is committed here (so both logs agree up to it). Changes we applied after `index` are
// replayed on top; changes in (our applied, index] are applied again as we apply them, and since
// each change sets one member's status, we end at the leader's membership.
void Raft::LearnMembership(Index index, const ConfState& conf) {
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

void Raft::HandleHeartbeat(const Message& m) {
  // The leader sends min(its commit, our match), so this never commits past what we share.
  log_.CommitTo(std::min(m.commit, log_.LastIndex()));
  if (!membership_known_) LearnMembership(m.snapshot_meta.index, m.snapshot_meta.conf);
  Message reply;
  reply.type = MessageType::kHeartbeatResponse;
  reply.to = m.from;
  reply.context = m.context;
  Send(std::move(reply));
}

void Raft::ReplySnapshotChunk(const Message& m, bool reject) {
  Message reply;
  reply.type = MessageType::kSnapshotResponse;
  reply.to = m.from;
  reply.reject = reject;
  reply.snapshot_meta = m.snapshot_meta;
  reply.index = incoming_snapshot_.received_bytes();
  Send(std::move(reply));
}

// Chunks are assembled in order (SnapshotAssembler): a refused chunk is answered with the count we
// hold, so the leader resumes from there (or from 0).
void Raft::HandleSnapshotChunk(const Message& m) {
  switch (incoming_snapshot_.Add(m)) {
    case SnapshotAssembler::Outcome::kRefused:
      ReplySnapshotChunk(m, /*reject=*/true);
      return;
    case SnapshotAssembler::Outcome::kInProgress:
      ReplySnapshotChunk(m, /*reject=*/false);
      return;
    case SnapshotAssembler::Outcome::kComplete:
      FinishSnapshot(m);
      return;
  }
}

// Paper 7 / thesis 5.3: a complete snapshot replaces the log, unless the log already holds it.
void Raft::FinishSnapshot(const Message& m) {
  Snapshot snapshot = incoming_snapshot_.Take();
  Message reply;
  reply.type = MessageType::kAppendResponse;
  reply.to = m.from;
  const SnapshotMeta& meta = snapshot.meta;
  if (meta.index <= log_.committed()) {
    reply.index = log_.committed();
  } else if (log_.MatchTerm(meta.index, meta.term)) {
    // Our log already has the snapshot's last entry, hence everything before it: only commit.
    log_.CommitTo(meta.index);
    reply.index = log_.committed();
  } else {
    log_.Restore(std::move(snapshot));
    reply.index = log_.LastIndex();
  }
  Send(std::move(reply));
}

}  // namespace ballot::consensus::raft
