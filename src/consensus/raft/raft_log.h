// A Raft member's log: the host's durable Storage plus the unstable suffix not yet persisted.
//
// After etcd-io/raft's raftLog/unstable. The unstable part holds, in order, an optional snapshot
// received from the leader and entries after it (or after the stable log). Both go out in a Ready;
// once the host has persisted them, StableSnapTo/StableTo drop them from here, and Storage answers
// for them. Entries at or past `offset_` are read from the unstable part, earlier ones from
// Storage.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "base/status.h"
#include "consensus/storage.h"
#include "consensus/types.h"

namespace ballot::consensus::raft {

class RaftLog {
 public:
  // `storage` is borrowed and must outlive the log. Starts with everything in storage stable,
  // commit and applied as given (applied <= committed <= last index).
  RaftLog(const Storage* storage, Index committed, Index applied);

  RaftLog(const RaftLog&) = delete;
  RaftLog& operator=(const RaftLog&) = delete;

  // The first index still held (snapshot index + 1).
  Index FirstIndex() const;
  Index LastIndex() const;
  Term LastTerm() const;
  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  // Term at `index` for FirstIndex() - 1 (the snapshot) .. LastIndex(); nullopt otherwise.
  std::optional<Term> TermAt(Index index) const;
  bool MatchTerm(Index index, Term term) const;
  // Whether a log ending at (last_index, last_term) is at least as up to date as this one (§5.4.1).
  bool IsUpToDate(Index last_index, Term last_term) const;
  // Entries in [lo, hi), at most max_bytes (but at least one). OutOfRange if lo is compacted.
  Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const;
  // The first entry of `entries` whose term differs from ours (or that we lack); 0 if none.
  Index FindConflict(const std::vector<Entry>& entries) const;
  // The largest index <= `index` whose term is <= `term`, and that term (0 if unknown). Lets a
  // rejection skip a whole term at once (fast backtracking).
  std::pair<Index, Term> FindConflictByTerm(Index index, Term term) const;

  // Appends, replacing any suffix from entries.front().index on. Must not touch committed entries.
  void Append(const std::vector<Entry>& entries);
  // Raises the commit index; never lowers it. `index` must be in the log.
  void CommitTo(Index index);
  // Replaces the log with a snapshot received from the leader; commit moves to its index.
  void Restore(Snapshot snapshot);

  // Ready support.
  const std::optional<Snapshot>& unstable_snapshot() const { return unstable_snapshot_; }
  const std::vector<Entry>& unstable_entries() const { return unstable_entries_; }
  // The last index known durable in storage (0 while a snapshot is still unstable).
  Index StableLastIndex() const;
  // Committed entries not yet handed out; none while a snapshot awaits installation.
  bool HasNextCommittedEntries() const;
  std::vector<Entry> NextCommittedEntries() const;
  // The host persisted the entries from `first` on whose terms are `terms`: drop from the unstable
  // part the longest prefix of them still unchanged. A conflicting append that arrived while the
  // write was in flight replaced a suffix (Log Matching: the last entry whose term still agrees
  // ends the unchanged prefix); only that suffix is written again, so a torn rewrite can never
  // take back entries that were already durable, and perhaps acknowledged or applied.
  void StableTo(Index first, const std::vector<Term>& terms);
  void StableSnapTo(Index index);
  void AppliedTo(Index index);

 private:
  std::optional<Term> UnstableTerm(Index index) const;
  Index UnstableLastIndex() const { return offset_ + unstable_entries_.size() - 1; }

  const Storage* storage_;
  std::optional<Snapshot> unstable_snapshot_;
  std::vector<Entry> unstable_entries_;
  Index offset_;  // Index of unstable_entries_[0] (or where it would be).
  Index committed_;
  Index applied_;
};

}  // namespace ballot::consensus::raft
