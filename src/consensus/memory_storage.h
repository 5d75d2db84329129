// MemoryStorage: the Storage interface over memory, for unit tests and the simulator.
//
// Thread-safety: none (the simulator is single-threaded).
#pragma once

#include <vector>

#include "consensus/storage.h"

namespace ballot::consensus {

class MemoryStorage final : public Storage {
 public:
  MemoryStorage() = default;

  HardState InitialHardState() const override { return hard_state_; }
  ConfState InitialConfState() const override;
  Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const override;
  Result<Term> TermAt(Index index) const override;
  Index FirstIndex() const override { return entries_[0].index + 1; }
  Index LastIndex() const override { return entries_[0].index + entries_.size() - 1; }
  const Snapshot& GetSnapshot() const override { return snapshot_; }

  // Writers, called by the host.
  void SetHardState(const HardState& hs) { hard_state_ = hs; }
  // Sets the membership used when there is no snapshot (a bootstrapping cluster).
  void SetInitialConfState(const ConfState& conf) { initial_conf_ = conf; }
  // Appends, overwriting any suffix that starts at entries.front().index. The first entry must not
  // leave a gap, and must come after the snapshot.
  Status Append(const std::vector<Entry>& entries);
  // Replaces everything with `snapshot`. FailedPrecondition if it is older than the current one.
  Status ApplySnapshot(Snapshot snapshot);
  // Makes a snapshot at `index` (applied, <= LastIndex) with the given membership and data. Keeps
  // the log; Compact() drops what the snapshot covers.
  Status CreateSnapshot(Index index, const ConfState& conf, std::string data);
  // Drops entries up to and including `index`, which the snapshot must cover.
  Status Compact(Index index);

  // Entries held, from FirstIndex() on.
  std::vector<Entry> AllEntries() const { return {entries_.begin() + 1, entries_.end()}; }

 private:
  HardState hard_state_;
  ConfState initial_conf_;
  Snapshot snapshot_;
  // entries_[0] is a placeholder holding the index and term of the last compacted entry, so that
  // TermAt(FirstIndex() - 1) is answerable; real entries follow it, contiguous.
  std::vector<Entry> entries_{Entry{}};
};

}  // namespace ballot::consensus
