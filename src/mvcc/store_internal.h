// The store's internals shared by store.cc and snapshot.cc. Not part of the mvcc API.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mvcc/encoding.h"
#include "mvcc/store.h"

namespace ballot::mvcc {

// The open RocksDB and its column families (names in docs/mvcc.md).
struct Store::Db {
  std::unique_ptr<rocksdb::DB> db;
  rocksdb::ColumnFamilyHandle* state = nullptr;  // "default": the store's own records.
  rocksdb::ColumnFamilyHandle* kv = nullptr;     // "kv": every version of every key.
  rocksdb::ColumnFamilyHandle* rev = nullptr;    // "rev": revision -> key, for events.
  rocksdb::ColumnFamilyHandle* meta = nullptr;   // "meta": other modules' records.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

  ~Db();
  // Column families in snapshot order; their ids in the snapshot format are the positions.
  std::vector<rocksdb::ColumnFamilyHandle*> Families() const { return {state, kv, rev, meta}; }
};

// The store's own records (state column family) in memory.
struct StoreState {
  LogPosition applied;
  Revision current = 1;  // An empty store is at revision 1, like etcd.
  Revision compact = 0;  // 0: never compacted.
  // Physical compaction not yet finished: its revision (0: none) and the encoded user key where
  // it resumes.
  Revision compact_pending = 0;
  std::string compact_cursor;
};

namespace internal {

inline constexpr std::string_view kStateApplied = "applied";
inline constexpr std::string_view kStateRevision = "revision";
inline constexpr std::string_view kStateCompact = "compact";
inline constexpr std::string_view kStateCompactPending = "compact_pending";

Status FromRocks(const rocksdb::Status& s, std::string_view what);

// Reads the state records (at `snapshot` when given).
Result<StoreState> ReadState(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                             const rocksdb::Snapshot* snapshot);
// Adds the state records to a batch.
void WriteState(rocksdb::WriteBatchBase* batch, rocksdb::ColumnFamilyHandle* cf,
                const StoreState& state);

// The options every database of the store is opened or built with.
rocksdb::Options DbOptions(const StoreOptions& options);
std::vector<rocksdb::ColumnFamilyDescriptor> FamilyDescriptors(const rocksdb::Options& options);
// Opens (creating if needed) the database in `path` with the store's column families.
Result<std::unique_ptr<Store::Db>> OpenDb(const StoreOptions& options, const std::string& path);

// Durable small-file helpers for the store directory.
Status WriteFileAtomically(const std::string& dir, const std::string& name,
                           std::string_view content);
Status SyncDir(const std::string& dir);

}  // namespace internal
}  // namespace ballot::mvcc
