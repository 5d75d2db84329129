// Store: etcd's revisioned key space (MVCC) on RocksDB, applied exactly once from the log.
//
// How the member uses the store
// -----------------------------
//   auto store = Store::Open({.dir = data_dir + "/kv", .lease_exists = [&](LeaseId id) {...}});
//   // Replay: the log from store->Applied().index + 1 on; the store has every entry up to it.
//   ApplyBatch batch = store->NewBatch();       // apply thread only, one batch at a time
//   for (entry : committed_entries) {
//     LogPosition at{entry.index, entry.term};
//     switch (request kind) {
//       put:   auto r = batch.Put(at, req);      // r->response for the client, r->events for
//       txn:   auto r = batch.Txn(at, req);      //   watches and the lessor's attachments
//       lease: batch.PutMeta(at, "lease/..", ..) // other modules' records, same atomic batch
//       else:  batch.Skip(at);                   // no key-space effect: still advances the index
//     }                                          // An error result is the client's answer; the
//   }                                            // entry still counts as applied.
//   RETURN_IF_ERROR(batch.Commit());             // one RocksDB write: effects + applied index
//   // Answer the clients only after Commit (readers see nothing before).
//   // Before compacting the log past index i: i <= store->MakeDurable() (see docs/mvcc.md).
//   // Snapshots (snapshot.h): store->NewSnapshotWriter(membership_blob) to send;
//   // store->NewSnapshotInstaller(), Append(chunk)..., Finish() to receive.
//
// Thread-safety: one writer (the apply thread: NewBatch, ApplyBatch, RunCompaction, MakeDurable,
// NewSnapshotInstaller) and any number of concurrent readers (Range, HashKV, ReadEvents, GetMeta,
// ScanMeta, NewSnapshotWriter, the revision getters). A read runs on a RocksDB snapshot and the
// revision recorded in it, so it sees whole committed batches only, at one revision. The only
// lock is a reader/writer lock that a snapshot install takes to swap the database underneath.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "mvcc/errors.h"
#include "mvcc/kv.h"
#include "mvcc/requests.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
class Env;
}  // namespace rocksdb

namespace ballot::mvcc {

class ApplyBatch;
class KeyIndex;
class SnapshotWriter;
class SnapshotInstaller;
struct StoreState;

// The log entry an operation belongs to.
struct LogPosition {
  uint64_t index = 0;
  uint64_t term = 0;
  bool operator==(const LogPosition&) const = default;
};

// A write's answer for the client and the events it produced (prev_kv always filled when the key
// existed), in (revision, sub revision) order.
template <typename Response>
struct WriteResult {
  Response response;
  std::vector<Event> events;
};

struct StoreOptions {
  std::string dir;  // Created if missing. The store owns everything beneath it.
  // etcd's --max-txn-ops: the most operations in one txn (compare, success or failure list).
  size_t max_txn_ops = 128;
  // Whether a lease exists (the lessor's answer). Null: every lease exists.
  std::function<bool(LeaseId)> lease_exists;
  // Keys examined by one step of physical compaction (ApplyBatch::Commit runs one step).
  size_t compaction_keys_per_step = 1000;
  // RocksDB's memtable size per column family; 0: RocksDB's default (64 MiB).
  size_t write_buffer_bytes = 0;
  // For tests: RocksDB's Env (e.g. one that drops unsynced writes). Null: the default.
  rocksdb::Env* env = nullptr;
};

// The events of one range of revisions, for a watch catching up.
struct EventsRequest {
  Revision from_revision = 0;  // Inclusive; must not be below the compact revision.
  Revision to_revision = 0;    // Inclusive; 0 or above the current revision: the current one.
  std::string key;             // With range_end: as RangeRequest's key/range_end.
  std::string range_end;
  // Stop after the revision at which this many events have been collected (a revision is never
  // split, so the answer may hold more). 0: no limit.
  size_t limit = 0;
  bool operator==(const EventsRequest&) const = default;
};

struct EventsResponse {
  std::vector<Event> events;
  // The first revision not covered: continue from here. > to_revision when everything was read.
  Revision next_revision = 0;
  Revision current_revision = 0;  // The store's revision when read.
  bool operator==(const EventsResponse&) const = default;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(StoreOptions options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // --- Reads: any thread. ---
  // Errors: ErrEmptyKey, ErrInvalidSortOption, ErrFutureRev, ErrCompacted.
  Result<RangeResponse> Range(const RangeRequest& request) const;
  // Range, unless a snapshot install holds the store (swapping the database can take a while,
  // and waits for live snapshot writers): then nullopt at once. For threads that must not wait.
  std::optional<Result<RangeResponse>> TryRange(const RangeRequest& request) const;
  // Hash of every revision record up to `revision` that compaction keeps, and the compact
  // revision; equal on members that applied the same log, whatever their physical compaction
  // progress. Errors: ErrFutureRev, ErrCompacted (revision below the compact revision).
  Result<HashKVResponse> HashKV(const HashKVRequest& request) const;
  // Maintenance.Hash: a crc32c of the whole store as of now: the current and compact revisions,
  // every revision record HashKV covers at the current revision (the history compaction keeps),
  // and every meta record (key and value). Equal on members that applied the same log; says
  // nothing comparable with etcd's bbolt hash.
  Result<HashResponse> Hash() const;
  // Errors: ErrCompacted when from_revision is below the compact revision.
  Result<EventsResponse> ReadEvents(const EventsRequest& request) const;
  // Reads the value of every prev_kv that a put left unread (Event::prev_value_unread). For an
  // event below the compact revision the version may be gone: the event then loses prev_kv, as
  // etcd's does.
  Status ReadPrevValues(std::vector<Event>* events) const;

  Revision CurrentRevision() const;
  Revision CompactRevision() const;
  LogPosition Applied() const;

  // The `meta` namespace (records of other modules: leases, membership).
  Result<std::optional<std::string>> GetMeta(std::string_view key) const;
  // Every record whose key starts with `prefix`, in key order.
  Result<std::vector<std::pair<std::string, std::string>>> ScanMeta(std::string_view prefix) const;

  // --- Writes: the apply thread only. ---
  // One batch at a time; it must be committed or destroyed before the next one.
  ApplyBatch NewBatch();

  // Physical compaction: removes up to `max_keys` keys' superseded revisions. Returns true when
  // nothing is left to remove. Not needed for correctness (reads never see removed records).
  Result<bool> RunCompaction(size_t max_keys);

  // Maintenance.Defragment: RocksDB's CompactRange over every column family (bottommost level
  // too), which drops deleted and overwritten records from the files and so reclaims space. Any
  // thread; concurrent reads and writes go on meanwhile.
  Status Defragment();

  // Makes everything committed so far survive a machine crash (syncs RocksDB's WAL) and returns
  // the applied index that is now durable. The log must not be compacted past it.
  Result<uint64_t> MakeDurable();
  // The applied index known durable (the last MakeDurable, or what was found at Open).
  uint64_t DurableAppliedIndex() const { return durable_index_.load(); }

  // --- Snapshots (format in docs/mvcc.md). ---
  // A consistent image of the whole store (key space, meta, applied index/term) plus `metadata`
  // (the member's membership blob), as a stream of chunks. Any thread.
  Result<std::unique_ptr<SnapshotWriter>> NewSnapshotWriter(std::string metadata) const;
  // Receives a snapshot into a side directory; Finish() replaces this store's content by it
  // atomically (a crash leaves the old or the new store). Apply thread; no batch open.
  Result<std::unique_ptr<SnapshotInstaller>> NewSnapshotInstaller();

  const StoreOptions& options() const { return options_; }

  struct Db;  // Internal (store_internal.h).

 private:
  friend class ApplyBatch;
  friend class SnapshotWriter;
  friend class SnapshotInstaller;

  explicit Store(StoreOptions options);
  Status OpenCurrent();
  Status LoadState();
  // Rebuilds index_ from the database (at Open and after a snapshot install); the writer only.
  Status LoadKeyIndex();
  // Swaps in the database built in `db_dir_name` (a sibling directory), then reopens.
  Status SwapTo(const std::string& db_dir_name);
  // Range under swap_mutex_, held shared by the caller.
  Result<RangeResponse> RangeLocked(const RangeRequest& request) const;

  StoreOptions options_;
  mutable std::shared_mutex swap_mutex_;  // Shared by readers; exclusive while swapping the DB.
  std::unique_ptr<Db> db_;
  std::string db_name_;  // The live database's directory name ("db-<n>").
  // Live SnapshotWriters: each pins db_ until destroyed (SwapTo waits for none).
  mutable std::mutex pin_mutex_;
  mutable std::condition_variable pin_cv_;
  mutable int pins_ = 0;
  // Writer-owned copy of the persisted state (readers use their snapshot's record instead).
  std::unique_ptr<StoreState> state_;
  // Writer-owned: every live key's newest version, as committed (key_index.h).
  std::unique_ptr<KeyIndex> index_;
  std::atomic<uint64_t> durable_index_{0};
  bool batch_open_ = false;
};

// The effects of consecutive log entries, written to RocksDB in one atomic batch together with
// the applied index. Reads inside the batch (txn compares, prev_kv, versions) see the batch's own
// earlier effects. Dropping a batch without Commit discards it. An uncommitted batch must not
// outlive its store.
class ApplyBatch {
 public:
  ApplyBatch(ApplyBatch&&) noexcept;
  ApplyBatch& operator=(ApplyBatch&&) = delete;
  ~ApplyBatch();

  // Every operation takes the log entry it belongs to: `at.index` must exceed the store's applied
  // index and be >= the previous operation's (several operations may share one entry). An
  // operation that fails has no effect on the key space but its entry still counts as applied.
  //
  // Errors (etcd's): ErrEmptyKey, ErrValueProvided, ErrLeaseProvided, ErrKeyNotFound
  // (ignore_value/ignore_lease on an absent key), ErrLeaseNotFound.
  Result<WriteResult<PutResponse>> Put(LogPosition at, const PutRequest& request);
  Result<WriteResult<DeleteRangeResponse>> DeleteRange(LogPosition at,
                                                       const DeleteRangeRequest& request);
  // All puts and deletes share one revision (sub revisions increase); a txn that changes nothing
  // keeps the revision. Errors: ErrTooManyOps, ErrDuplicateKey, ErrEmptyKey, the Put errors and
  // a Range's ErrFutureRev / ErrCompacted (checked on the chosen branches before any effect).
  Result<WriteResult<TxnResponse>> Txn(LogPosition at, const TxnRequest& request);
  // Errors: ErrCompacted (revision <= the compact revision), ErrFutureRev.
  Result<CompactionResponse> Compact(LogPosition at, const CompactionRequest& request);
  // Deletes the given keys (that exist) at one revision: a lease's revocation. No txn op limit.
  Result<WriteResult<DeleteRangeResponse>> DeleteKeys(LogPosition at,
                                                      const std::vector<std::string>& keys);
  // A read inside the batch (sees its effects): for the lessor and tests.
  Result<RangeResponse> Range(const RangeRequest& request);

  void PutMeta(LogPosition at, std::string_view key, std::string_view value);
  void DeleteMeta(LogPosition at, std::string_view key);
  Result<std::optional<std::string>> GetMeta(std::string_view key);
  // An entry with no key-space effect.
  void Skip(LogPosition at);

  // The revision the batch has reached (the store's, plus its own writes).
  Revision CurrentRevision() const;
  // The last log entry given to the batch (the store's applied one if none).
  LogPosition LastPosition() const;

  // Writes everything (and the applied index) in one RocksDB write; the batch is spent after.
  Status Commit();

  struct Impl;  // Internal (store.cc).

 private:
  friend class Store;
  explicit ApplyBatch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Checks etcd makes before proposing (api/v3rpc/key.go), exposed so that rpc/ can reject a request
// without going through the log. The store checks again when applying.
Status CheckRangeRequest(const RangeRequest& request);
Status CheckPutRequest(const PutRequest& request);
Status CheckDeleteRangeRequest(const DeleteRangeRequest& request);
Status CheckTxnRequest(const TxnRequest& request, size_t max_txn_ops);

}  // namespace ballot::mvcc
