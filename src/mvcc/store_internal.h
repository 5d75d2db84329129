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
  rocksdb::ColumnFamilyHandle* state = nullptr;  // "default": the store's state record.
  rocksdb::ColumnFamilyHandle* kv = nullptr;     // "kv": every version of every key.
  rocksdb::ColumnFamilyHandle* rev = nullptr;    // "rev": revision -> key, for events.
  rocksdb::ColumnFamilyHandle* meta = nullptr;   // "meta": other modules' records.
  std::vector<rocksdb::ColumnFamilyHandle*> handles;

  ~Db();
  // Column families in snapshot order; their ids in the snapshot format are the positions.
  std::vector<rocksdb::ColumnFamilyHandle*> Families() const { return {state, kv, rev, meta}; }
};

// The store's state record in memory.
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

// The one record of the state family (one Get per read): LE64 applied index, LE64 applied term,
// LE64 current revision, LE64 compact revision, LE64 pending compaction revision, then the
// pending compaction's cursor. Absent in a store that never committed.
inline constexpr std::string_view kStateKey = "state";
inline constexpr size_t kStateFixedBytes = 40;

Status FromRocks(const rocksdb::Status& s, std::string_view what);

// Reads the state record (at `snapshot` when given); defaults when absent.
Result<StoreState> ReadState(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                             const rocksdb::Snapshot* snapshot);
// Adds the state record to a batch.
void WriteState(rocksdb::WriteBatchBase* batch, rocksdb::ColumnFamilyHandle* cf,
                const StoreState& state);

// The options every database of the store is opened or built with.
rocksdb::Options DbOptions(const StoreOptions& options);
std::vector<rocksdb::ColumnFamilyDescriptor> FamilyDescriptors(const rocksdb::Options& options);
// Opens (creating if needed) the database in `path` with the store's column families.
Result<std::unique_ptr<Store::Db>> OpenDb(const StoreOptions& options, const std::string& path);

// The store directory's own files, through the store's Env (so that tests can run it in memory or
// on a file system that drops unsynced writes).
rocksdb::Env* StoreEnv(const StoreOptions& options);
// Writes `content` to dir/name through a temporary file: write, fsync, rename, fsync dir.
Status WriteFileAtomically(rocksdb::Env* env, const std::string& dir, const std::string& name,
                           std::string_view content);
Status SyncDir(rocksdb::Env* env, const std::string& dir);
// The names in `dir`, without "." and "..".
Result<std::vector<std::string>> ListDir(rocksdb::Env* env, const std::string& dir);
// Removes a file or a directory tree; a missing path is fine.
Status RemoveTree(rocksdb::Env* env, const std::string& path);

}  // namespace internal
}  // namespace ballot::mvcc
