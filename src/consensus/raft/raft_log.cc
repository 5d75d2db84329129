#include "consensus/raft/raft_log.h"

#include <algorithm>
#include <limits>
#include <string>

#include "base/assert.h"

namespace ballot::consensus::raft {

RaftLog::RaftLog(const Storage* storage, Index committed, Index applied)
    : storage_(storage),
      offset_(storage->LastIndex() + 1),
      committed_(committed),
      applied_(applied) {
  BALLOT_ASSERT(applied <= committed, "applied past commit");
  BALLOT_ASSERT(committed <= LastIndex(), "commit past the last index");
  BALLOT_ASSERT(applied + 1 >= FirstIndex(), "applied index behind the snapshot");
}

Index RaftLog::FirstIndex() const {
  if (unstable_snapshot_) return unstable_snapshot_->meta.index + 1;
  return storage_->FirstIndex();
}

Index RaftLog::LastIndex() const {
  if (!unstable_entries_.empty()) return UnstableLastIndex();
  if (unstable_snapshot_) return unstable_snapshot_->meta.index;
  return storage_->LastIndex();
}

Term RaftLog::LastTerm() const {
  const std::optional<Term> term = TermAt(LastIndex());
  BALLOT_ASSERT(term.has_value(), "the last entry has no term");
  return *term;
}

std::optional<Term> RaftLog::UnstableTerm(Index index) const {
  if (index < offset_) {
    if (unstable_snapshot_ && unstable_snapshot_->meta.index == index) {
      return unstable_snapshot_->meta.term;
    }
    return std::nullopt;
  }
  if (unstable_entries_.empty() || index > UnstableLastIndex()) return std::nullopt;
  return unstable_entries_[index - offset_].term;
}

std::optional<Term> RaftLog::TermAt(Index index) const {
  if (index + 1 < FirstIndex() || index > LastIndex()) return std::nullopt;
  if (std::optional<Term> term = UnstableTerm(index)) return term;
  Result<Term> term = storage_->TermAt(index);
  if (!term.ok()) return std::nullopt;
  return *term;
}

bool RaftLog::MatchTerm(Index index, Term term) const {
  const std::optional<Term> have = TermAt(index);
  return have.has_value() && *have == term;
}

bool RaftLog::IsUpToDate(Index last_index, Term last_term) const {
  const Term our_term = LastTerm();
  return last_term > our_term || (last_term == our_term && last_index >= LastIndex());
}

Result<std::vector<Entry>> RaftLog::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  if (lo < FirstIndex()) return Status::OutOfRange("compacted");
  if (hi > LastIndex() + 1) return Status::OutOfRange("unavailable");
  std::vector<Entry> out;
  if (lo >= hi) return out;
  uint64_t bytes = 0;
  if (lo < offset_) {
    const Index stable_hi = std::min(hi, offset_);
    ASSIGN_OR_RETURN(out, storage_->Entries(lo, stable_hi, max_bytes));
    if (out.size() < stable_hi - lo) return out;  // The byte limit cut the batch short.
    for (const Entry& e : out) bytes += e.SizeBytes();
  }
  for (Index i = std::max(lo, offset_); i < hi; ++i) {
    const Entry& e = unstable_entries_[i - offset_];
    bytes += e.SizeBytes();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

Index RaftLog::FindConflict(const std::vector<Entry>& entries) const {
  for (const Entry& e : entries) {
    if (!MatchTerm(e.index, e.term)) return e.index;
  }
  return 0;
}

std::pair<Index, Term> RaftLog::FindConflictByTerm(Index index, Term term) const {
  if (index > LastIndex()) return {index, 0};
  for (; index > 0; --index) {
    const std::optional<Term> have = TermAt(index);
    if (!have) return {index, 0};  // Compacted: the snapshot below is committed, so it matches.
    if (*have <= term) return {index, *have};
  }
  return {0, 0};
}

void RaftLog::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const Index after = entries.front().index;
  BALLOT_ASSERT(after > committed_, "append overwrites committed entry " + std::to_string(after));
  BALLOT_ASSERT(after <= LastIndex() + 1, "append leaves a gap");
  if (after == offset_ + unstable_entries_.size()) {
    unstable_entries_.insert(unstable_entries_.end(), entries.begin(), entries.end());
  } else if (after <= offset_) {
    // Replaces part of the stable log: the host overwrites that suffix when it persists these.
    offset_ = after;
    unstable_entries_ = entries;
  } else {
    unstable_entries_.resize(after - offset_);
    unstable_entries_.insert(unstable_entries_.end(), entries.begin(), entries.end());
  }
}

void RaftLog::CommitTo(Index index) {
  if (index <= committed_) return;
  BALLOT_ASSERT(index <= LastIndex(), "commit past the last index");
  committed_ = index;
}

void RaftLog::Restore(Snapshot snapshot) {
  BALLOT_ASSERT(snapshot.meta.index > committed_, "restoring a snapshot behind commit");
  committed_ = snapshot.meta.index;
  offset_ = snapshot.meta.index + 1;
  unstable_entries_.clear();
  unstable_snapshot_ = std::move(snapshot);
}

Index RaftLog::StableLastIndex() const {
  if (unstable_snapshot_) return 0;
  return offset_ - 1;
}

bool RaftLog::HasNextCommittedEntries() const {
  return !unstable_snapshot_ && committed_ > applied_;
}

std::vector<Entry> RaftLog::NextCommittedEntries() const {
  if (!HasNextCommittedEntries()) return {};
  Result<std::vector<Entry>> entries =
      Entries(applied_ + 1, committed_ + 1, std::numeric_limits<uint64_t>::max());
  BALLOT_ASSERT(entries.ok(), "committed entries unavailable: " + entries.status().ToString());
  return std::move(entries).value();
}

void RaftLog::StableTo(Index first, const std::vector<Term>& terms) {
  Index index = first + terms.size();
  while (index-- > first) {
    const std::optional<Term> have = UnstableTerm(index);
    if (have && *have == terms[index - first]) break;
  }
  if (index < first || index < offset_) return;
  unstable_entries_.erase(
      unstable_entries_.begin(),
      unstable_entries_.begin() + static_cast<std::ptrdiff_t>(index + 1 - offset_));
  offset_ = index + 1;
}

void RaftLog::StableSnapTo(Index index) {
  if (unstable_snapshot_ && unstable_snapshot_->meta.index == index) unstable_snapshot_.reset();
}

void RaftLog::AppliedTo(Index index) {
  if (index <= applied_) return;
  BALLOT_ASSERT(index <= committed_, "applied past commit");
  applied_ = index;
}

}  // namespace ballot::consensus::raft
