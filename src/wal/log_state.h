// LogState: the log a sequence of WAL records describes, built the same way on recovery and while
// writing, so that what a restart reads back is exactly what the live WAL held.
//
// Rules (docs/wal-format.md, "Recovery"): an entry at index i truncates the log from i on; a
// snapshot marker drops the entries it covers (all of them if its term does not match the entry at
// its index); the last hard state wins.
//
// Thread-safety: none; Wal guards its copy with its mutex.
#pragma once

#include <vector>

#include "base/status.h"
#include "consensus/types.h"

namespace ballot::wal {

class LogState {
 public:
  // `base_index`: the index before the first entry that may follow (the first segment's first
  // index - 1); it must end up covered by a snapshot marker (see Complete()).
  explicit LogState(consensus::Index base_index = 0) : base_index_(base_index) {}

  // FailedPrecondition if `index` cannot be appended: a gap after the last index, or an index the
  // snapshot or the start of the log already covers.
  Status CheckAppend(consensus::Index index) const;
  // Requires CheckAppend(entry.index).ok().
  void Append(consensus::Entry entry);
  // FailedPrecondition if `meta` is older than the current snapshot.
  Status CheckSnapshot(const consensus::SnapshotMeta& meta) const;
  void ApplySnapshot(const consensus::SnapshotMeta& meta);
  void SetHardState(const consensus::HardState& hs) { hard_state_ = hs; }

  // True once the snapshot covers everything before the first entry held.
  bool Complete() const { return base_index_ == snapshot_.index; }

  const consensus::HardState& hard_state() const { return hard_state_; }
  const consensus::SnapshotMeta& snapshot() const { return snapshot_; }
  consensus::Index first_index() const { return base_index_ + 1; }
  consensus::Index last_index() const { return base_index_ + entries_.size(); }
  const std::vector<consensus::Entry>& entries() const { return entries_; }

  // As consensus::Storage: OutOfRange("compacted") / OutOfRange("unavailable").
  Result<std::vector<consensus::Entry>> Entries(consensus::Index lo, consensus::Index hi,
                                                uint64_t max_bytes) const;
  Result<consensus::Term> TermAt(consensus::Index index) const;

 private:
  // The term at base_index_ is known once a snapshot marker covers it.
  bool base_term_unknown() const { return snapshot_.index < base_index_; }

  consensus::HardState hard_state_;
  consensus::SnapshotMeta snapshot_;
  consensus::Index base_index_ = 0;
  consensus::Term base_term_ = 0;
  std::vector<consensus::Entry> entries_;  // Indexes base_index_ + 1 .. last_index(), contiguous.
};

}  // namespace ballot::wal
