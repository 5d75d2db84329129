#include "consensus/paxos/paxos_log.h"

#include <algorithm>
#include <limits>
#include <string>

#include "base/assert.h"

namespace ballot::consensus::paxos {

PaxosLog::PaxosLog(const Storage* storage, Index committed, Index applied)
    : storage_(storage),
      offset_(storage->LastIndex() + 1),
      committed_(committed),
      applied_(applied) {
  BALLOT_ASSERT(applied <= committed, "applied past commit");
  BALLOT_ASSERT(committed <= LastIndex(), "commit past the last index");
}

Index PaxosLog::FirstIndex() const {
  if (unstable_snapshot_) return unstable_snapshot_->meta.index + 1;
  return storage_->FirstIndex();
}

Index PaxosLog::LastIndex() const {
  if (!unstable_.empty()) return offset_ + unstable_.size() - 1;
  if (unstable_snapshot_) return unstable_snapshot_->meta.index;
  return std::max(storage_->LastIndex(), offset_ - 1);
}

std::optional<Entry> PaxosLog::EntryAt(Index index) const {
  if (index < FirstIndex() || index > LastIndex()) return std::nullopt;
  if (index >= offset_) return unstable_[index - offset_];
  Result<std::vector<Entry>> e = storage_->Entries(index, index + 1, UINT64_MAX);
  if (!e.ok() || e->empty()) return std::nullopt;
  return e->front();
}

std::optional<Term> PaxosLog::TermAt(Index index) const {
  if (index + 1 < FirstIndex() || index > LastIndex()) return std::nullopt;
  if (index >= offset_) return unstable_[index - offset_].term;
  if (unstable_snapshot_) {
    if (unstable_snapshot_->meta.index == index) return unstable_snapshot_->meta.term;
    return std::nullopt;
  }
  Result<Term> term = storage_->TermAt(index);
  if (!term.ok()) return std::nullopt;
  return *term;
}

Result<std::vector<Entry>> PaxosLog::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  if (lo < FirstIndex()) return Status::OutOfRange("compacted");
  if (hi > LastIndex() + 1) return Status::OutOfRange("unavailable");
  std::vector<Entry> out;
  if (lo >= hi) return out;
  uint64_t bytes = 0;
  if (lo < offset_) {
    const Index stable_hi = std::min(hi, offset_);
    ASSIGN_OR_RETURN(out, storage_->Entries(lo, stable_hi, max_bytes));
    if (out.size() < stable_hi - lo) return out;
    for (const Entry& e : out) bytes += e.SizeBytes();
  }
  for (Index i = std::max(lo, offset_); i < hi; ++i) {
    const Entry& e = unstable_[i - offset_];
    bytes += e.SizeBytes();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

void PaxosLog::Unstabilize(Index index) {
  if (index >= offset_) return;
  BALLOT_ASSERT(!unstable_snapshot_, "rewriting slots under an unstable snapshot");
  Result<std::vector<Entry>> stable = storage_->Entries(index, offset_, UINT64_MAX);
  BALLOT_ASSERT(stable.ok() && stable->size() == offset_ - index, "stable slots unavailable");
  unstable_.insert(unstable_.begin(), stable->begin(), stable->end());
  offset_ = index;
}

void PaxosLog::Write(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  const Index first = entries.front().index;
  BALLOT_ASSERT(first > committed_, "write over committed slot " + std::to_string(first));
  BALLOT_ASSERT(first >= FirstIndex(), "write below the first slot");
  const Index last = LastIndex();
  // Holes keep the log contiguous up to the first slot written.
  for (Index s = last + 1; s < first; ++s) {
    if (unstable_.empty() && offset_ != s) offset_ = s;
    unstable_.push_back(Entry{0, s, EntryType::kNoop, {}});
  }
  if (first <= last) Unstabilize(first);
  if (unstable_.empty()) offset_ = std::max(offset_, first);
  for (const Entry& e : entries) {
    BALLOT_ASSERT(e.index >= offset_);
    const Index at = e.index - offset_;
    if (at < unstable_.size()) {
      unstable_[at] = e;
    } else {
      BALLOT_ASSERT(at == unstable_.size(), "entries not contiguous");
      unstable_.push_back(e);
    }
  }
  dirty_from_ = std::min(dirty_from_, std::min(first, last + 1));
}

void PaxosLog::CommitTo(Index index) {
  if (index <= committed_) return;
  BALLOT_ASSERT(index <= LastIndex(), "commit past the last index");
  committed_ = index;
}

void PaxosLog::Restore(Snapshot snapshot) {
  const Index index = snapshot.meta.index;
  BALLOT_ASSERT(index > committed_, "restoring a snapshot behind commit");
  std::vector<Entry> after;
  if (LastIndex() > index) {
    Result<std::vector<Entry>> kept = Entries(std::max(index + 1, FirstIndex()), LastIndex() + 1,
                                              std::numeric_limits<uint64_t>::max());
    if (kept.ok() && !kept->empty() && kept->front().index == index + 1) after = std::move(*kept);
  }
  committed_ = index;
  offset_ = index + 1;
  unstable_ = std::move(after);
  unstable_snapshot_ = std::move(snapshot);
  dirty_from_ = std::min(dirty_from_, index + 1);
}

Index PaxosLog::StableLastIndex() const {
  if (unstable_snapshot_) return 0;
  return offset_ - 1;
}

bool PaxosLog::HasNextCommittedEntries() const {
  return !unstable_snapshot_ && committed_ > applied_;
}

std::vector<Entry> PaxosLog::NextCommittedEntries() const {
  if (!HasNextCommittedEntries()) return {};
  Result<std::vector<Entry>> entries =
      Entries(applied_ + 1, committed_ + 1, std::numeric_limits<uint64_t>::max());
  BALLOT_ASSERT(entries.ok(), "committed entries unavailable: " + entries.status().ToString());
  return std::move(entries).value();
}

void PaxosLog::MarkHandedOut() {
  handed_last_ = unstable_.empty() ? 0 : LastIndex();
  dirty_from_ = UINT64_MAX;
}

void PaxosLog::Stabilize() {
  if (handed_last_ == 0) return;
  const Index through = std::min(handed_last_, dirty_from_ - 1);
  handed_last_ = 0;
  if (through < offset_ || unstable_snapshot_) return;
  const Index drop = std::min<Index>(through + 1 - offset_, unstable_.size());
  unstable_.erase(unstable_.begin(), unstable_.begin() + static_cast<std::ptrdiff_t>(drop));
  offset_ += drop;
}

void PaxosLog::StableSnapTo(Index index) {
  if (unstable_snapshot_ && unstable_snapshot_->meta.index == index) unstable_snapshot_.reset();
}

void PaxosLog::AppliedTo(Index index) {
  if (index <= applied_) return;
  BALLOT_ASSERT(index <= committed_, "applied past commit");
  applied_ = index;
}

}  // namespace ballot::consensus::paxos
