// The stable log as an engine sees it: read-only, indexed from the last snapshot.
//
// The host writes the storage (appending what a Ready asked it to make durable); the engine only
// reads it, to restart and to find entries and snapshots to send. Implementations: MemoryStorage
// (tests, the simulator); the write-ahead log (wal/) later.
#pragma once

#include <cstdint>
#include <vector>

#include "base/status.h"
#include "consensus/types.h"

namespace ballot::consensus {

class Storage {
 public:
  virtual ~Storage() = default;

  // The durable hard state and membership a restarting engine starts from.
  virtual HardState InitialHardState() const = 0;
  virtual ConfState InitialConfState() const = 0;

  // Entries in [lo, hi), at least one if any exists, at most max_bytes in total otherwise.
  // OutOfRange("compacted") if lo <= the snapshot index; OutOfRange("unavailable") if hi - 1 is
  // past the last index.
  virtual Result<std::vector<Entry>> Entries(Index lo, Index hi, uint64_t max_bytes) const = 0;
  // The term at `index`, for snapshot index .. last index. OutOfRange otherwise.
  virtual Result<Term> TermAt(Index index) const = 0;
  // The index of the first entry still held (snapshot index + 1). May be last_index + 1.
  virtual Index FirstIndex() const = 0;
  virtual Index LastIndex() const = 0;
  // The latest snapshot (empty meta when none).
  virtual const Snapshot& GetSnapshot() const = 0;
  // Its metadata alone. Engines use this wherever they do not send the data: a storage may read
  // the data only when asked for it (WalStorage keeps it in a file).
  virtual const SnapshotMeta& GetSnapshotMeta() const { return GetSnapshot().meta; }
};

}  // namespace ballot::consensus
