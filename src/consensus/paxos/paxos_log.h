// An acceptor's slots: the host's durable Storage plus an unstable suffix not yet persisted.
//
// Storage holds a contiguous log, but a Paxos acceptor accepts slots in any order and overwrites a
// slot when a higher ballot reaches it, without touching the slots after it. So a write here may
// land anywhere: slots skipped over are filled with holes (term 0, "nothing accepted"), and the
// unstable part always runs from the lowest slot changed since the last persist to the end of the
// log, so that the host's suffix-replacing append reproduces the log exactly.
//
// The Ready handshake: MarkHandedOut() when a Ready takes unstable_entries(); Stabilize() at
// Advance() drops from the unstable part what that Ready made durable, unless a write since then
// changed it again (dirty_from_).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/status.h"
#include "consensus/storage.h"
#include "consensus/types.h"

namespace ballot::consensus::paxos {

// A slot with nothing accepted: written only to keep the log contiguous.
inline bool IsHole(const Entry& e) { return e.term == 0; }

class PaxosLog {
 public:
  // `storage` is borrowed and must outlive the log.
  PaxosLog(const Storage* storage, Index committed, Index applied);
  PaxosLog(const PaxosLog&) = delete;
  PaxosLog& operator=(const PaxosLog&) = delete;

  Index FirstIndex() const;
  Index LastIndex() const;
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  // Term (accepted ballot) at `index`, for FirstIndex() - 1 .. LastIndex(); 0 for a hole.
  std::optional<Term> TermAt(Index index) const;
  std::optional<Entry> EntryAt(Index index) const;
  // Entries in [lo, hi), at most max_bytes (at least one). OutOfRange if lo is compacted.
  Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const;

  // Writes contiguous `entries` over their slots, keeping every slot after them; slots between the
  // last index and the first written become holes. Never touches committed slots.
  void Write(const std::vector<Entry>& entries);
  void CommitTo(Index index);
  // Installs a snapshot received from the leader; slots after it are kept (they are accepted
  // values, which an acceptor must not forget). Commit moves to the snapshot's index.
  void Restore(Snapshot snapshot);

  const std::optional<Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  const std::vector<Entry>& unstable_entries() const { return unstable_; }
  // The last index known durable (0 while a snapshot is unstable).
  Index StableLastIndex() const;
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries() const;

  void MarkHandedOut();
  void Stabilize();
  void StableSnapTo(Index index);
  void AppliedTo(Index index);

 private:
  // Moves offset_ down to `index`, copying stable slots into the unstable part.
  void Unstabilize(Index index);

  const Storage* storage_;
  std::optional<Snapshot> unstable_snapshot_;
  std::vector<Entry> unstable_;  // Slots offset_ .. LastIndex().
  Index offset_;
  Index committed_;
  Index applied_;
  Index handed_last_ = 0;  // Last slot handed out in the Ready being persisted.
  Index dirty_from_ = UINT64_MAX;
};

}  // namespace ballot::consensus::paxos
