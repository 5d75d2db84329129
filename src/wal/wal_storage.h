// WalStorage: consensus::Storage over a Wal, so that an engine restarts from disk.
//
// It answers from the Wal's in-memory copy of the log after the latest snapshot marker. The
// snapshot data is not in the WAL: the host stores it and hands it back after a restart
// (SetSnapshotData), so that GetSnapshot() can serve it to a member behind compaction.
//
// Thread-safety: the Storage methods and the writers must be called from one thread (the host's
// loop), like MemoryStorage; the Wal underneath may also be synced from other threads.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "consensus/storage.h"
#include "wal/wal.h"

namespace ballot::wal {

class WalStorage final : public consensus::Storage {
 public:
  explicit WalStorage(std::unique_ptr<Wal> wal);

  consensus::HardState InitialHardState() const override { return wal_->hard_state(); }
  consensus::ConfState InitialConfState() const override;
  Result<std::vector<consensus::Entry>> Entries(consensus::Index lo, consensus::Index hi,
                                                uint64_t max_bytes) const override;
  Result<consensus::Term> TermAt(consensus::Index index) const override;
  consensus::Index FirstIndex() const override { return wal_->first_index(); }
  consensus::Index LastIndex() const override { return wal_->last_index(); }
  // Reads the data through the loader first if it is not in memory (see SetSnapshotLoader).
  const consensus::Snapshot& GetSnapshot() const override;
  const consensus::SnapshotMeta& GetSnapshotMeta() const override { return snapshot_.meta; }

  // Writers, called by the host in the order of docs/engine-contract.md: snapshot, entries and
  // hard state, then Sync (or sync = true) before acknowledging.
  Status SaveSnapshot(consensus::Snapshot snapshot);
  Status Save(const consensus::HardState* hs, const std::vector<consensus::Entry>& entries,
              bool sync) {
    return wal_->Save(hs, entries, sync);
  }
  // The data of the snapshot the WAL's marker names, loaded by the host after a restart.
  void SetSnapshotData(std::string data) {
    snapshot_.data = std::move(data);
    loader_ = nullptr;
  }
  // Instead: how to read that data (from the host's snapshot file) when GetSnapshot() first needs
  // it, i.e. when a member behind compaction must be sent it. Until then it takes no memory: at
  // 1,000,000 keys a snapshot is ~265 MB, read in ~3 s. A loader that fails leaves the data empty;
  // the host must treat that as fatal (the loader is the place to say so). The loader is called
  // from whichever thread calls GetSnapshot() (the engine's).
  using SnapshotLoader = std::function<Result<std::string>(consensus::Index)>;
  void SetSnapshotLoader(SnapshotLoader load) {
    snapshot_.data.clear();
    snapshot_.data.shrink_to_fit();
    loader_ = std::move(load);
  }
  // The membership used when there is no snapshot (a bootstrapping cluster).
  void SetInitialConfState(const consensus::ConfState& conf) { initial_conf_ = conf; }

  Wal* wal() { return wal_.get(); }

 private:
  std::unique_ptr<Wal> wal_;
  mutable consensus::Snapshot snapshot_;  // data filled lazily by loader_ (GetSnapshot is const).
  mutable SnapshotLoader loader_;
  consensus::ConfState initial_conf_;
};

}  // namespace ballot::wal
