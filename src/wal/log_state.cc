#include "wal/log_state.h"

#include <algorithm>
#include <string>

namespace ballot::wal {

using consensus::Entry;
using consensus::Index;
using consensus::SnapshotMeta;
using consensus::Term;

Status LogState::CheckAppend(Index index) const {
  // While no marker covers the start of the log (recovery of a first segment left by compaction),
  // an entry may overwrite from before that start: it was written before the snapshot that later
  // allowed the compaction, and that snapshot must still cover what precedes it (Complete()).
  const Index start =
      base_term_unknown() ? snapshot_.index : std::max(snapshot_.index, base_index_);
  if (index <= start) {
    return Status::FailedPrecondition("entry " + std::to_string(index) +
                                      " is at or before the start of the log " +
                                      std::to_string(start));
  }
  if (index > last_index() + 1) {
    return Status::FailedPrecondition("entry " + std::to_string(index) + " leaves a gap after " +
                                      std::to_string(last_index()));
  }
  return Status::Ok();
}

void LogState::Append(Entry entry) {
  BALLOT_ASSERT(CheckAppend(entry.index).ok());
  if (entry.index <= base_index_) {
    base_index_ = entry.index - 1;
    entries_.clear();
  }
  entries_.resize(entry.index - base_index_ - 1);
  entries_.push_back(std::move(entry));
}

Status LogState::CheckSnapshot(const SnapshotMeta& meta) const {
  if (meta.index < snapshot_.index) {
    return Status::FailedPrecondition("snapshot at " + std::to_string(meta.index) +
                                      " is older than " + std::to_string(snapshot_.index));
  }
  return Status::Ok();
}

void LogState::ApplySnapshot(const SnapshotMeta& meta) {
  BALLOT_ASSERT(CheckSnapshot(meta).ok());
  // Until a marker covers it, the term before the first entry is unknown (recovery that starts
  // at a segment after compacted ones); a marker at that index then matches by definition.
  const bool base_term_unknown = this->base_term_unknown();
  snapshot_ = meta;
  // A marker older than the start of the log (the first segment left after compaction begins
  // with the marker that was current when it was created) changes nothing held.
  if (meta.index < base_index_) return;
  bool matches = false;
  if (meta.index == base_index_) {
    matches = base_term_unknown || base_term_ == meta.term;
  } else if (meta.index <= last_index()) {
    matches = entries_[meta.index - base_index_ - 1].term == meta.term;
  }
  if (matches) {
    entries_.erase(entries_.begin(),
                   entries_.begin() + static_cast<std::ptrdiff_t>(meta.index - base_index_));
  } else {
    entries_.clear();  // The snapshot replaces a log that disagrees with it.
  }
  base_index_ = meta.index;
  base_term_ = meta.term;
}

Result<std::vector<Entry>> LogState::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  if (lo <= base_index_) return Status::OutOfRange("compacted");
  if (hi > last_index() + 1) return Status::OutOfRange("unavailable");
  BALLOT_ASSERT(lo <= hi);
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - base_index_ - 1];
    bytes += e.SizeBytes();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

Result<Term> LogState::TermAt(Index index) const {
  if (index < base_index_) return Status::OutOfRange("compacted");
  if (index > last_index()) return Status::OutOfRange("unavailable");
  if (index == base_index_) return base_term_;
  return entries_[index - base_index_ - 1].term;
}

}  // namespace ballot::wal
