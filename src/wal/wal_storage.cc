#include "wal/wal_storage.h"

namespace ballot::wal {

using consensus::Entry;
using consensus::Index;
using consensus::Term;

WalStorage::WalStorage(std::unique_ptr<Wal> wal) : wal_(std::move(wal)) {
  BALLOT_ASSERT(wal_ != nullptr);
  snapshot_.meta = wal_->snapshot();
}

consensus::ConfState WalStorage::InitialConfState() const {
  return snapshot_.IsEmpty() ? initial_conf_ : snapshot_.meta.conf;
}

Result<std::vector<Entry>> WalStorage::Entries(Index lo, Index hi, uint64_t max_bytes) const {
  return wal_->Entries(lo, hi, max_bytes);
}

Result<Term> WalStorage::TermAt(Index index) const { return wal_->TermAt(index); }

const consensus::Snapshot& WalStorage::GetSnapshot() const {
  if (loader_) {
    SnapshotLoader load = std::move(loader_);
    loader_ = nullptr;
    Result<std::string> data = load(snapshot_.meta.index);
    if (data.ok()) snapshot_.data = std::move(data).value();
  }
  return snapshot_;
}

Status WalStorage::SaveSnapshot(consensus::Snapshot snapshot) {
  RETURN_IF_ERROR(wal_->SaveSnapshot(snapshot.meta));
  snapshot_ = std::move(snapshot);
  loader_ = nullptr;
  return Status::Ok();
}

}  // namespace ballot::wal
