#include "consensus/memory_storage.h"

#include <string>

namespace ballot::consensus {

ConfState MemoryStorage::InitialConfState() const {
  return snapshot_.IsEmpty() ? initial_conf_ : snapshot_.meta.conf;
}

Result<std::vector<Entry>> MemoryStorage::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  const Index offset = entries_[0].index;
  if (lo <= offset) return Status::OutOfRange("compacted");
  if (hi > LastIndex() + 1) return Status::OutOfRange("unavailable");
  BALLOT_ASSERT(lo <= hi);
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = entries_[i - offset];
    bytes += e.SizeBytes();
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

Result<Term> MemoryStorage::TermAt(Index index) const {
  const Index offset = entries_[0].index;
  if (index < offset) return Status::OutOfRange("compacted");
  if (index > LastIndex()) return Status::OutOfRange("unavailable");
  return entries_[index - offset].term;
}

Status MemoryStorage::Append(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::Ok();
  const Index offset = entries_[0].index;
  const Index first = entries.front().index;
  if (first <= offset) {
    return Status::FailedPrecondition("append at " + std::to_string(first) +
                                      " overwrites compacted index " + std::to_string(offset));
  }
  if (first > LastIndex() + 1) {
    return Status::FailedPrecondition("append at " + std::to_string(first) +
                                      " leaves a gap after " + std::to_string(LastIndex()));
  }
  for (size_t i = 1; i < entries.size(); ++i) {
    BALLOT_ASSERT(entries[i].index == entries[i - 1].index + 1, "appended entries not contiguous");
  }
  entries_.resize(first - offset);
  entries_.insert(entries_.end(), entries.begin(), entries.end());
  return Status::Ok();
}

Status MemoryStorage::ApplySnapshot(Snapshot snapshot) {
  if (snapshot.meta.index < snapshot_.meta.index) {
    return Status::FailedPrecondition("snapshot at " + std::to_string(snapshot.meta.index) +
                                      " is older than " + std::to_string(snapshot_.meta.index));
  }
  entries_.assign(1, Entry{snapshot.meta.term, snapshot.meta.index, EntryType::kNoop, {}});
  snapshot_ = std::move(snapshot);
  return Status::Ok();
}

Status MemoryStorage::CreateSnapshot(Index index, const ConfState& conf, std::string data) {
  if (index <= snapshot_.meta.index) {
    return Status::FailedPrecondition("snapshot at " + std::to_string(index) +
                                      " is not newer than " + std::to_string(snapshot_.meta.index));
  }
  if (index > LastIndex()) {
    return Status::FailedPrecondition("snapshot at " + std::to_string(index) +
                                      " is past the last index " + std::to_string(LastIndex()));
  }
  ASSIGN_OR_RETURN(Term term, TermAt(index));
  snapshot_.meta = SnapshotMeta{index, term, conf};
  snapshot_.data = std::move(data);
  return Status::Ok();
}

Status MemoryStorage::Compact(Index index) {
  const Index offset = entries_[0].index;
  if (index <= offset) return Status::Ok();
  if (index > snapshot_.meta.index) {
    return Status::FailedPrecondition("compaction to " + std::to_string(index) +
                                      " passes the snapshot at " +
                                      std::to_string(snapshot_.meta.index));
  }
  const Entry& last = entries_[index - offset];
  Entry placeholder{last.term, last.index, EntryType::kNoop, {}};
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(index - offset));
  entries_[0] = placeholder;
  return Status::Ok();
}

}  // namespace ballot::consensus
