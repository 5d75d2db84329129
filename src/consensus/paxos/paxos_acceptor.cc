// What every member does with its leader's messages: phase 2b, learning what is chosen, snapshots.
#include <algorithm>
#include <string>
#include <utility>

#include "base/assert.h"
#include "consensus/paxos/paxos_engine.h"

namespace ballot::consensus::paxos {

// Phase 2b (Paxos Made Simple 2.2): accept every slot of an accept whose ballot is the one we
// promised, whatever we held there before and whether or not earlier slots arrived (a slot
// skipped becomes a hole). Chosen slots are left as they are: their value cannot change.
void MultiPaxos::HandleAccept(const Message& m) {
  std::vector<Entry> write;
  for (const Entry& e : m.entries) {
    if (e.index <= log_.committed() || e.index < log_.FirstIndex()) continue;
    if (write.empty() && log_.TermAt(e.index) == e.term) continue;  // Already accepted.
    write.push_back(e);
  }
  while (!write.empty() && log_.TermAt(write.back().index) == write.back().term) write.pop_back();
  log_.Write(write);
  LearnCommit(m.commit);
  ReplyAccepted(m.from, m.index, m.index + m.entries.size());
}

// The leader's commit point covers chosen slots; we hold the chosen value of a slot if we accepted
// it in the leader's ballot (the leader proposes one value per slot), so we learn up to there.
void MultiPaxos::LearnCommit(Index leader_commit) {
  log_.CommitTo(std::min(leader_commit, AcceptedPrefix()));
}

// Tells the leader how far our log holds its values. When slots before the batch are missing
// (lost or reordered accepts), the reply is a rejection of the batch's position with that hint,
// so the leader sends from there again.
void MultiPaxos::ReplyAccepted(NodeId to, Index sent_after, Index sent_last) {
  const Index prefix = AcceptedPrefix();
  Message reply;
  reply.type = MessageType::kAccepted;
  reply.to = to;
  reply.commit = log_.committed();
  if (prefix < sent_after) {
    reply.reject = true;
    reply.index = sent_after;
    reply.reject_hint = prefix;
  } else {
    reply.index = std::max(prefix, sent_last);
    BALLOT_ASSERT(prefix >= sent_last, "an accepted batch is not in the prefix");
  }
  Send(std::move(reply));
}

void MultiPaxos::HandleHeartbeat(const Message& m) {
  LearnCommit(std::min(m.commit, log_.LastIndex()));
  if (!membership_known_) LearnMembership(m.snapshot_meta.index, m.snapshot_meta.conf);
  Message reply;
  reply.type = MessageType::kHeartbeatResponse;
  reply.to = m.from;
  reply.context = m.context;
  reply.index = AcceptedPrefix();
  Send(std::move(reply));
}

void MultiPaxos::ReplySnapshotChunk(const Message& m, bool reject) {
  Message reply;
  reply.type = MessageType::kSnapshotResponse;
  reply.to = m.from;
  reply.reject = reject;
  reply.snapshot_meta = m.snapshot_meta;
  reply.index = incoming_snapshot_.received_bytes();
  Send(std::move(reply));
}

// Chunks are assembled in order, as in Raft (SnapshotAssembler).
void MultiPaxos::HandleSnapshotChunk(const Message& m) {
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

// A snapshot covers chosen slots only, so installing it is learning them. The slots after it
// stay: they are accepted values, and an acceptor must not forget what it accepted.
void MultiPaxos::FinishSnapshot(const Message& m) {
  Snapshot snapshot = incoming_snapshot_.Take();
  if (snapshot.meta.index > log_.committed()) log_.Restore(std::move(snapshot));
  Message reply;
  reply.type = MessageType::kAccepted;
  reply.to = m.from;
  reply.commit = log_.committed();
  reply.index = AcceptedPrefix();
  Send(std::move(reply));
}

}  // namespace ballot::consensus::paxos
