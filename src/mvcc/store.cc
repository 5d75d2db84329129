#include "mvcc/store.h"

#include <fcntl.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <mutex>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "base/crc32c.h"
#include "mvcc/encoding.h"
#include "mvcc/key_index.h"
#include "mvcc/snapshot.h"
#include "mvcc/store_internal.h"

namespace ballot::mvcc {

using internal::EncodeUserKey;
using internal::KvKey;
using internal::ParseKvKey;
using internal::RecordKind;
using internal::Rev;

namespace {

constexpr std::string_view kCurrentDbFile = "CURRENT_DB";
constexpr int64_t kSubMax = std::numeric_limits<int64_t>::max();

std::string_view ToView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
rocksdb::Slice ToSlice(std::string_view s) { return {s.data(), s.size()}; }

Status Corrupt(std::string_view what) {
  return Status::DataLoss("mvcc store: malformed " + std::string(what));
}

// The keys a request names: one key, [begin, end), or every key >= begin.
struct KeyRange {
  std::string begin;
  std::string end;  // Exclusive; unused when `single` or `unbounded`.
  bool single = false;
  bool unbounded = false;

  static KeyRange Of(std::string_view key, std::string_view range_end) {
    KeyRange r;
    r.begin = std::string(key);
    if (range_end.empty()) {
      r.single = true;
    } else if (range_end == std::string_view("\0", 1)) {
      r.unbounded = true;
    } else {
      r.end = std::string(range_end);
    }
    return r;
  }
  // Whether `key` (>= begin) is still inside.
  bool Within(const std::string& key) const {
    if (single) return key == begin;
    if (unbounded) return true;
    return key < end;
  }
  bool Contains(const std::string& key) const { return key >= begin && Within(key); }
};

// Where reads come from: a committed snapshot (readers) or the open batch over the database
// (the writer, who must see the batch's own effects).
class View {
 public:
  virtual ~View() = default;
  virtual std::unique_ptr<rocksdb::Iterator> NewIterator(rocksdb::ColumnFamilyHandle* cf) = 0;
  virtual rocksdb::Status Get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                              std::string* value) = 0;
};

class SnapshotView : public View {
 public:
  explicit SnapshotView(rocksdb::DB* db) : db_(db), snapshot_(db->GetSnapshot()) {
    options_.snapshot = snapshot_;
  }
  ~SnapshotView() override { db_->ReleaseSnapshot(snapshot_); }
  std::unique_ptr<rocksdb::Iterator> NewIterator(rocksdb::ColumnFamilyHandle* cf) override {
    return std::unique_ptr<rocksdb::Iterator>(db_->NewIterator(options_, cf));
  }
  rocksdb::Status Get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                      std::string* value) override {
    return db_->Get(options_, cf, ToSlice(key), value);
  }
  const rocksdb::Snapshot* snapshot() const { return snapshot_; }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  rocksdb::ReadOptions options_;
};

class BatchView : public View {
 public:
  BatchView(rocksdb::DB* db, rocksdb::WriteBatchWithIndex* batch) : db_(db), batch_(batch) {}
  std::unique_ptr<rocksdb::Iterator> NewIterator(rocksdb::ColumnFamilyHandle* cf) override {
    return std::unique_ptr<rocksdb::Iterator>(
        batch_->NewIteratorWithBase(cf, db_->NewIterator(rocksdb::ReadOptions(), cf)));
  }
  rocksdb::Status Get(rocksdb::ColumnFamilyHandle* cf, std::string_view key,
                      std::string* value) override {
    return batch_->GetFromBatchAndDB(db_, rocksdb::ReadOptions(), cf, ToSlice(key), value);
  }

 private:
  rocksdb::DB* db_;
  rocksdb::WriteBatchWithIndex* batch_;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t count = 0;
};

// Moves `it` from a record of `key` to the first record of the next key: a few Next() calls
// (a key rarely has many versions), then a Seek past all of them.
void NextUserKey(rocksdb::Iterator* it, const std::string& key) {
  constexpr int kNextsMax = 4;
  const std::string prefix = EncodeUserKey(key);  // prefix-free: matches only `key`'s records
  for (int i = 0; i < kNextsMax; ++i) {
    it->Next();
    if (!it->Valid() || !it->key().starts_with(ToSlice(prefix))) return;
  }
  it->Seek(internal::UserKeyUpperBound(key));
}

// The keys of `range` live at `rev` (etcd's rangeKeys without the revision checks): up to `limit`
// of them (0: all) unless `count_only`, and how many there are in all.
Result<RangeResult> RangeKeys(View& view, rocksdb::ColumnFamilyHandle* kv_cf, const KeyRange& range,
                              Revision rev, int64_t limit, bool count_only) {
  RangeResult result;
  if (!range.single && !range.unbounded && range.end <= range.begin) return result;
  auto it = view.NewIterator(kv_cf);
  it->Seek(EncodeUserKey(range.begin));
  std::string key;
  Rev r;
  while (it->Valid()) {
    if (!ParseKvKey(ToView(it->key()), &key, &r)) return Corrupt("kv key");
    if (!range.Within(key)) break;
    if (r.main > rev) {
      it->Seek(KvKey(key, Rev{rev, kSubMax}));
      continue;
    }
    std::string_view record = ToView(it->value());
    switch (internal::PeekRecord(record)) {
      case RecordKind::kPut:
        ++result.count;
        if (!count_only && (limit <= 0 || static_cast<int64_t>(result.kvs.size()) < limit)) {
          KeyValue kv;
          internal::DecodePutRecord(record, &kv);
          kv.key = key;
          kv.mod_revision = r.main;
          result.kvs.push_back(std::move(kv));
        }
        break;
      case RecordKind::kTombstone:
        break;
      case RecordKind::kMalformed:
        return Corrupt("kv record of key '" + key + "'");
    }
    if (range.single) break;
    NextUserKey(it.get(), key);
  }
  if (!it->status().ok()) return internal::FromRocks(it->status(), "range");
  return result;
}

// etcd's apply Range (server/etcdserver/apply.go) over rangeKeys at `current`.
Result<RangeResponse> ApplyRange(View& view, rocksdb::ColumnFamilyHandle* kv_cf,
                                 const RangeRequest& req, Revision current, Revision compact) {
  RETURN_IF_ERROR(CheckRangeRequest(req));
  Revision rev = req.revision <= 0 ? current : req.revision;
  if (req.revision > current) return ErrFutureRev();
  if (rev < compact) return ErrCompacted();

  using Order = RangeRequest::SortOrder;
  using Target = RangeRequest::SortTarget;
  int64_t limit = req.limit;
  if (req.sort_order != Order::kNone || req.min_mod_revision != 0 || req.max_mod_revision != 0 ||
      req.min_create_revision != 0 || req.max_create_revision != 0) {
    limit = 0;  // Fetch everything; filter, sort and truncate afterwards.
  }
  if (limit > 0) ++limit;  // One more, for `more`.
  ASSIGN_OR_RETURN(RangeResult rr, RangeKeys(view, kv_cf, KeyRange::Of(req.key, req.range_end), rev,
                                             limit, req.count_only));
  std::vector<KeyValue>& kvs = rr.kvs;
  auto prune = [&kvs](auto drop) { std::erase_if(kvs, drop); };
  if (req.max_mod_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.mod_revision > req.max_mod_revision; });
  }
  if (req.min_mod_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.mod_revision < req.min_mod_revision; });
  }
  if (req.max_create_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.create_revision > req.max_create_revision; });
  }
  if (req.min_create_revision != 0) {
    prune([&](const KeyValue& kv) { return kv.create_revision < req.min_create_revision; });
  }

  Order order = req.sort_order;
  if (req.sort_target != Target::kKey && order == Order::kNone) order = Order::kAscend;
  if (order != Order::kNone) {
    auto less = [&](const KeyValue& a, const KeyValue& b) {
      switch (req.sort_target) {
        case Target::kKey:
          return a.key < b.key;
        case Target::kVersion:
          return a.version < b.version;
        case Target::kCreate:
          return a.create_revision < b.create_revision;
        case Target::kMod:
          return a.mod_revision < b.mod_revision;
        case Target::kValue:
          return a.value < b.value;
      }
      return false;
    };
    // Stable, so that ties keep key order (etcd's sort.Sort leaves them unspecified).
    if (order == Order::kAscend) {
      std::stable_sort(kvs.begin(), kvs.end(), less);
    } else {
      std::stable_sort(kvs.begin(), kvs.end(),
                       [&](const KeyValue& a, const KeyValue& b) { return less(b, a); });
    }
  }

  RangeResponse resp;
  if (req.limit > 0 && static_cast<int64_t>(kvs.size()) > req.limit) {
    kvs.resize(req.limit);
    resp.more = true;
  }
  if (req.keys_only) {
    for (KeyValue& kv : kvs) kv.value.clear();
  }
  resp.header.revision = current;
  resp.count = rr.count;
  resp.kvs = std::move(kvs);
  return resp;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Internal helpers shared with snapshot.cc.

namespace internal {

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  std::string message = "mvcc store: " + std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::DataLoss(message);
  return Status::Internal(message);
}

Result<StoreState> ReadState(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf,
                             const rocksdb::Snapshot* snapshot) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  StoreState state;
  std::string value;
  rocksdb::Status s = db->Get(ro, cf, ToSlice(kStateKey), &value);
  if (s.IsNotFound()) return state;
  RETURN_IF_ERROR(FromRocks(s, "read state"));
  if (value.size() < kStateFixedBytes) return Corrupt("state record");
  const char* p = value.data();
  state.applied.index = GetFixed64LE(p);
  state.applied.term = GetFixed64LE(p + 8);
  state.current = static_cast<Revision>(GetFixed64LE(p + 16));
  state.compact = static_cast<Revision>(GetFixed64LE(p + 24));
  state.compact_pending = static_cast<Revision>(GetFixed64LE(p + 32));
  state.compact_cursor = value.substr(kStateFixedBytes);
  if (state.current < 1 || state.compact < 0 || state.compact > state.current ||
      state.compact_pending < 0 || state.compact_pending > state.compact) {
    return Corrupt("state record (revision " + std::to_string(state.current) + ", compact " +
                   std::to_string(state.compact) + ")");
  }
  return state;
}

void WriteState(rocksdb::WriteBatchBase* batch, rocksdb::ColumnFamilyHandle* cf,
                const StoreState& state) {
  std::string value;
  value.reserve(kStateFixedBytes + state.compact_cursor.size());
  PutFixed64LE(&value, state.applied.index);
  PutFixed64LE(&value, state.applied.term);
  PutFixed64LE(&value, static_cast<uint64_t>(state.current));
  PutFixed64LE(&value, static_cast<uint64_t>(state.compact));
  PutFixed64LE(&value, static_cast<uint64_t>(state.compact_pending));
  value.append(state.compact_cursor);
  batch->Put(cf, ToSlice(kStateKey), value);
}

constexpr size_t kBlockCacheBytes = 64u << 20;
constexpr uint64_t kWritebackBytes = 1u << 20;

rocksdb::Options DbOptions(const StoreOptions& options) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  // The column families are one state: a flush must never persist one without the others.
  o.atomic_flush = true;
  o.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  o.max_background_jobs = 2;
  // Start writing back the WAL and new SST files every MiB (sync_file_range, no wait): the WAL is
  // not synced per write, so without this a burst of writes leaves its whole size dirty in the
  // page cache, and the kernel's writeback 30 s later floods the disk while the member's own log
  // waits for fdatasync (watch events were late by 100-200 ms then; see docs/mvcc.md).
  o.wal_bytes_per_sync = kWritebackBytes;
  o.bytes_per_sync = kWritebackBytes;
  if (options.env != nullptr) o.env = options.env;
  if (options.write_buffer_bytes != 0) o.write_buffer_size = options.write_buffer_bytes;
  return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> FamilyDescriptors(const rocksdb::Options& options) {
  rocksdb::ColumnFamilyOptions cf(options);
  // One block cache for every family of this database (RocksDB's default is 8 MiB per family): a
  // read that misses it costs a pread and a snappy decompression.
  // Not shared between databases: RocksDB keeps per-cache statistics that point at the clock of
  // the database that created them, which a test Env may take with it when its database closes.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return {{rocksdb::kDefaultColumnFamilyName, cf}, {"kv", cf}, {"rev", cf}, {"meta", cf}};
}

Result<std::unique_ptr<Store::Db>> OpenDb(const StoreOptions& options, const std::string& path) {
  rocksdb::Options o = DbOptions(options);
  auto db = std::make_unique<Store::Db>();
  rocksdb::DB* raw = nullptr;
  RETURN_IF_ERROR(FromRocks(
      rocksdb::DB::Open(rocksdb::DBOptions(o), path, FamilyDescriptors(o), &db->handles, &raw),
      "open " + path));
  db->db.reset(raw);
  db->state = db->handles[0];
  db->kv = db->handles[1];
  db->rev = db->handles[2];
  db->meta = db->handles[3];
  return db;
}

rocksdb::Env* StoreEnv(const StoreOptions& options) {
  return options.env != nullptr ? options.env : rocksdb::Env::Default();
}

Status SyncDir(rocksdb::Env* env, const std::string& dir) {
  std::unique_ptr<rocksdb::Directory> d;
  RETURN_IF_ERROR(FromRocks(env->NewDirectory(dir, &d), "open directory " + dir));
  return FromRocks(d->Fsync(), "fsync " + dir);
}

Status WriteFileAtomically(rocksdb::Env* env, const std::string& dir, const std::string& name,
                           std::string_view content) {
  std::string tmp = dir + "/" + name + ".tmp";
  RETURN_IF_ERROR(
      FromRocks(rocksdb::WriteStringToFile(env, ToSlice(content), tmp, true), "write " + tmp));
  RETURN_IF_ERROR(FromRocks(env->RenameFile(tmp, dir + "/" + name), "rename " + tmp));
  return SyncDir(env, dir);
}

Result<std::vector<std::string>> ListDir(rocksdb::Env* env, const std::string& dir) {
  std::vector<std::string> names;
  RETURN_IF_ERROR(FromRocks(env->GetChildren(dir, &names), "list " + dir));
  std::erase_if(names, [](const std::string& n) { return n == "." || n == ".."; });
  return names;
}

Status RemoveTree(rocksdb::Env* env, const std::string& path) {
  if (env->FileExists(path).IsNotFound()) return Status::Ok();
  // Not every Env knows IsDirectory (RocksDB's in-memory one does not): a path with children is a
  // directory; a path that cannot be deleted as a file is one too.
  std::vector<std::string> names;
  if (env->GetChildren(path, &names).ok()) {
    for (const std::string& name : names) {
      if (name == "." || name == "..") continue;
      RETURN_IF_ERROR(RemoveTree(env, path + "/" + name));
    }
  }
  if (env->DeleteFile(path).ok()) return Status::Ok();
  rocksdb::Status s = env->DeleteDir(path);
  if (!s.ok() && !env->FileExists(path).IsNotFound()) return FromRocks(s, "remove " + path);
  return Status::Ok();
}

}  // namespace internal

Store::Db::~Db() {
  if (!db) return;
  for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  db->Close();
}

// ---------------------------------------------------------------------------------------------
// Store

Store::Store(StoreOptions options)
    : options_(std::move(options)),
      state_(std::make_unique<StoreState>()),
      index_(std::make_unique<KeyIndex>()) {}

Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::Open(StoreOptions options) {
  if (options.dir.empty()) return Status::InvalidArgument("mvcc store: no directory given");
  if (options.max_txn_ops == 0) return Status::InvalidArgument("mvcc store: max_txn_ops is 0");
  rocksdb::Env* env = internal::StoreEnv(options);
  // The directory and its missing parents.
  for (size_t slash = options.dir.find('/', 1);; slash = options.dir.find('/', slash + 1)) {
    std::string prefix = options.dir.substr(0, slash);
    RETURN_IF_ERROR(internal::FromRocks(env->CreateDirIfMissing(prefix), "create " + prefix));
    if (slash == std::string::npos) break;
  }
  std::unique_ptr<Store> store(new Store(std::move(options)));
  RETURN_IF_ERROR(store->OpenCurrent());
  return store;
}

// The directory holds CURRENT_DB naming the live database directory ("db-<n>"); a snapshot is
// installed by building "db-<n+1>" and replacing CURRENT_DB (write, fsync, rename, fsync dir).
// Whatever else is there is debris of an interrupted install and is removed.
Status Store::OpenCurrent() {
  const std::string& dir = options_.dir;
  rocksdb::Env* env = internal::StoreEnv(options_);
  const std::string pointer = dir + "/" + std::string(kCurrentDbFile);
  std::string current;
  if (env->FileExists(pointer).ok()) {
    RETURN_IF_ERROR(
        internal::FromRocks(rocksdb::ReadFileToString(env, pointer, &current), "read " + pointer));
    if (current.empty() || current.size() > 64 || current.rfind("db-", 0) != 0 ||
        current.find_first_not_of("0123456789", 3) != std::string::npos || current.size() == 3) {
      return Status::DataLoss("mvcc store: malformed " + pointer);
    }
  } else {
    current = "db-1";
    RETURN_IF_ERROR(internal::RemoveTree(env, dir + "/" + current));
    RETURN_IF_ERROR(internal::WriteFileAtomically(env, dir, std::string(kCurrentDbFile), current));
  }
  ASSIGN_OR_RETURN(std::vector<std::string> names, internal::ListDir(env, dir));
  for (const std::string& name : names) {
    if (name == current || name == kCurrentDbFile) continue;
    RETURN_IF_ERROR(internal::RemoveTree(env, dir + "/" + name));
  }
  ASSIGN_OR_RETURN(db_, internal::OpenDb(options_, dir + "/" + current));
  db_name_ = current;
  RETURN_IF_ERROR(LoadState());
  RETURN_IF_ERROR(LoadKeyIndex());
  // What the WAL recovered may sit only in the page cache (a clean restart does not sync it):
  // flush it so that DurableAppliedIndex() is true from the start.
  rocksdb::FlushOptions fo;
  RETURN_IF_ERROR(internal::FromRocks(db_->db->Flush(fo, db_->Families()), "flush at open"));
  durable_index_.store(state_->applied.index);
  return Status::Ok();
}

Status Store::LoadState() {
  ASSIGN_OR_RETURN(StoreState state, internal::ReadState(db_->db.get(), db_->state, nullptr));
  *state_ = std::move(state);
  return Status::Ok();
}

Status Store::LoadKeyIndex() {
  index_->Clear();
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;  // One pass over every key: the block cache would keep none of it.
  scan.readahead_size = 2 << 20;
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(scan, db_->kv));
  std::string key;
  Rev r;
  KeyValue kv;
  for (it->SeekToFirst(); it->Valid(); NextUserKey(it.get(), key)) {
    // A key's newest record comes first: it decides whether the key is live.
    if (!ParseKvKey(ToView(it->key()), &key, &r)) return Corrupt("kv key");
    std::string_view record = ToView(it->value());
    switch (internal::PeekRecord(record)) {
      case RecordKind::kPut:
        internal::DecodePutRecordMeta(record, &kv);
        index_->Set(key, KeyMeta{r.main, kv.create_revision, kv.version, kv.lease});
        break;
      case RecordKind::kTombstone:
        break;
      case RecordKind::kMalformed:
        return Corrupt("kv record of key '" + key + "'");
    }
  }
  return internal::FromRocks(it->status(), "load key index");
}

Result<RangeResponse> Store::Range(const RangeRequest& request) const {
  std::shared_lock lock(swap_mutex_);
  return RangeLocked(request);
}

std::optional<Result<RangeResponse>> Store::TryRange(const RangeRequest& request) const {
  std::shared_lock lock(swap_mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return std::nullopt;
  return RangeLocked(request);
}

Result<RangeResponse> Store::RangeLocked(const RangeRequest& request) const {
  SnapshotView view(db_->db.get());
  ASSIGN_OR_RETURN(StoreState state,
                   internal::ReadState(db_->db.get(), db_->state, view.snapshot()));
  return ApplyRange(view, db_->kv, request, state.current, state.compact);
}

namespace {
// The committed state records, read at one snapshot.
StoreState CommittedState(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
  SnapshotView view(db);
  auto state = internal::ReadState(db, cf, view.snapshot());
  BALLOT_ASSERT(state.ok(), "mvcc state unreadable: " + state.status().ToString());
  return std::move(state).value();
}
}  // namespace

Revision Store::CurrentRevision() const {
  std::shared_lock lock(swap_mutex_);
  return CommittedState(db_->db.get(), db_->state).current;
}

Revision Store::CompactRevision() const {
  std::shared_lock lock(swap_mutex_);
  return CommittedState(db_->db.get(), db_->state).compact;
}

LogPosition Store::Applied() const {
  std::shared_lock lock(swap_mutex_);
  return CommittedState(db_->db.get(), db_->state).applied;
}

namespace {

// The crc32c of every revision record up to `rev` that compaction keeps (see HashKV), extending
// `crc`: for each key, every version at or above the compact revision, and the newest one below
// it unless that is a deletion. Independent of physical compaction.
Result<uint32_t> HashKeptRecords(SnapshotView& view, rocksdb::ColumnFamilyHandle* kv,
                                 const StoreState& state, Revision rev, uint32_t crc) {
  std::string compact;
  internal::PutFixed64LE(&compact, static_cast<uint64_t>(state.compact));
  crc = crc32c::Extend(crc, compact.data(), compact.size());
  auto it = view.NewIterator(kv);
  std::string key, previous_key;
  bool below_seen = false;
  Rev r;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!ParseKvKey(ToView(it->key()), &key, &r)) return Corrupt("kv key");
    if (key != previous_key) {
      previous_key = key;
      below_seen = false;
    }
    if (r.main > rev) continue;
    if (r.main < state.compact) {
      if (below_seen) continue;
      below_seen = true;
      if (internal::PeekRecord(ToView(it->value())) == RecordKind::kTombstone) continue;
    }
    crc = crc32c::Extend(crc, it->key().data(), it->key().size());
    crc = crc32c::Extend(crc, it->value().data(), it->value().size());
  }
  if (!it->status().ok()) return internal::FromRocks(it->status(), "hash");
  return crc;
}

}  // namespace

Result<HashKVResponse> Store::HashKV(const HashKVRequest& request) const {
  std::shared_lock lock(swap_mutex_);
  SnapshotView view(db_->db.get());
  ASSIGN_OR_RETURN(StoreState state,
                   internal::ReadState(db_->db.get(), db_->state, view.snapshot()));
  Revision rev = request.revision <= 0 ? state.current : request.revision;
  if (rev > state.current) return ErrFutureRev();
  if (rev < state.compact) return ErrCompacted();
  ASSIGN_OR_RETURN(uint32_t crc,
                   HashKeptRecords(view, db_->kv, state, rev, crc32c::Value("ballot.mvcc.hashkv")));
  HashKVResponse resp;
  resp.header.revision = state.current;
  resp.hash = crc;
  resp.compact_revision = state.compact;
  resp.hash_revision = rev;
  return resp;
}

Result<HashResponse> Store::Hash() const {
  std::shared_lock lock(swap_mutex_);
  SnapshotView view(db_->db.get());
  ASSIGN_OR_RETURN(StoreState state,
                   internal::ReadState(db_->db.get(), db_->state, view.snapshot()));
  uint32_t crc = crc32c::Value("ballot.mvcc.hash");
  std::string revisions;
  internal::PutFixed64LE(&revisions, static_cast<uint64_t>(state.current));
  crc = crc32c::Extend(crc, revisions.data(), revisions.size());
  ASSIGN_OR_RETURN(crc, HashKeptRecords(view, db_->kv, state, state.current, crc));
  auto it = view.NewIterator(db_->meta);
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string lengths;
    internal::PutFixed64LE(&lengths, it->key().size());
    internal::PutFixed64LE(&lengths, it->value().size());
    crc = crc32c::Extend(crc, lengths.data(), lengths.size());
    crc = crc32c::Extend(crc, it->key().data(), it->key().size());
    crc = crc32c::Extend(crc, it->value().data(), it->value().size());
  }
  if (!it->status().ok()) return internal::FromRocks(it->status(), "hash");
  HashResponse resp;
  resp.revision = state.current;
  resp.hash = crc;
  return resp;
}

Status Store::Defragment() {
  std::shared_lock lock(swap_mutex_);
  rocksdb::CompactRangeOptions options;
  // Rewrite the bottommost level too: that is where deleted and compacted-away records sit.
  options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* family : db_->Families()) {
    rocksdb::Status s = db_->db->CompactRange(options, family, nullptr, nullptr);
    if (!s.ok()) return internal::FromRocks(s, "defragment");
  }
  return Status::Ok();
}

Result<EventsResponse> Store::ReadEvents(const EventsRequest& request) const {
  std::shared_lock lock(swap_mutex_);
  SnapshotView view(db_->db.get());
  ASSIGN_OR_RETURN(StoreState state,
                   internal::ReadState(db_->db.get(), db_->state, view.snapshot()));
  Revision from = std::max<Revision>(request.from_revision, 1);
  if (from < state.compact) return ErrCompacted();
  Revision to = request.to_revision <= 0 || request.to_revision > state.current
                    ? state.current
                    : request.to_revision;
  EventsResponse resp;
  resp.current_revision = state.current;
  resp.next_revision = to + 1;
  if (request.key.empty()) return ErrEmptyKey();
  KeyRange range = KeyRange::Of(request.key, request.range_end);

  auto revs = view.NewIterator(db_->rev);
  auto kvs = view.NewIterator(db_->kv);
  Revision last_main = 0;
  Rev r;
  for (revs->Seek(internal::RevKey(Rev{from, 0})); revs->Valid(); revs->Next()) {
    if (!internal::ParseRevKey(ToView(revs->key()), &r)) return Corrupt("rev key");
    if (r.main > to) break;
    std::string key(ToView(revs->value()));
    if (!range.Contains(key)) continue;
    if (r.main != last_main && request.limit > 0 && resp.events.size() >= request.limit) {
      resp.next_revision = r.main;
      break;
    }
    last_main = r.main;
    kvs->Seek(KvKey(key, r));
    std::string found_key;
    Rev found;
    if (!kvs->Valid() || !ParseKvKey(ToView(kvs->key()), &found_key, &found) || found_key != key ||
        found != r) {
      return Corrupt("rev index: no kv record for key '" + key + "' at revision " +
                     std::to_string(r.main));
    }
    Event event;
    std::string_view record = ToView(kvs->value());
    event.kv.key = key;
    event.kv.mod_revision = r.main;
    switch (internal::PeekRecord(record)) {
      case RecordKind::kPut:
        event.type = EventType::kPut;
        internal::DecodePutRecord(record, &event.kv);
        break;
      case RecordKind::kTombstone:
        event.type = EventType::kDelete;
        break;
      case RecordKind::kMalformed:
        return Corrupt("kv record of key '" + key + "'");
    }
    kvs->Next();
    if (kvs->Valid()) {
      if (!ParseKvKey(ToView(kvs->key()), &found_key, &found)) return Corrupt("kv key");
      if (found_key == key && internal::PeekRecord(ToView(kvs->value())) == RecordKind::kPut) {
        KeyValue prev;
        internal::DecodePutRecord(ToView(kvs->value()), &prev);
        prev.key = key;
        prev.mod_revision = found.main;
        event.prev_kv = std::move(prev);
      }
    }
    resp.events.push_back(std::move(event));
  }
  if (!revs->status().ok()) return internal::FromRocks(revs->status(), "read events");
  if (!kvs->status().ok()) return internal::FromRocks(kvs->status(), "read events");
  return resp;
}

Status Store::ReadPrevValues(std::vector<Event>* events) const {
  auto unread = [](const Event& e) { return e.prev_value_unread; };
  if (std::none_of(events->begin(), events->end(), unread)) return Status::Ok();
  std::shared_lock lock(swap_mutex_);
  SnapshotView view(db_->db.get());
  ASSIGN_OR_RETURN(StoreState state,
                   internal::ReadState(db_->db.get(), db_->state, view.snapshot()));
  for (Event& e : *events) {
    if (!e.prev_value_unread) continue;
    BALLOT_ASSERT(e.prev_kv.has_value(), "an unread prev_kv that is absent");
    e.prev_value_unread = false;
    KeyValue& prev = *e.prev_kv;
    ASSIGN_OR_RETURN(RangeResult r, RangeKeys(view, db_->kv, KeyRange::Of(prev.key, ""),
                                              prev.mod_revision, 0, /*count_only=*/false));
    // One revision changes a key at most once (etcd's txn refuses duplicate keys), so the
    // version live at prev's revision is prev.
    if (!r.kvs.empty() && r.kvs[0].mod_revision == prev.mod_revision) {
      BALLOT_ASSERT(r.kvs[0].version == prev.version && r.kvs[0].lease == prev.lease,
                    "prev_kv of key '" + prev.key + "' differs from its version in the store");
      prev.value = std::move(r.kvs[0].value);
      continue;
    }
    // Compaction keeps the version an event at or above the compact revision replaced (see
    // docs/mvcc.md, "Compaction"); below it, the version may be gone.
    if (e.kv.mod_revision >= state.compact) {
      return Corrupt("version " + std::to_string(prev.mod_revision) + " of key '" + prev.key +
                     "' is missing");
    }
    e.prev_kv.reset();
  }
  return Status::Ok();
}

Result<std::optional<std::string>> Store::GetMeta(std::string_view key) const {
  std::shared_lock lock(swap_mutex_);
  std::string value;
  rocksdb::Status s = db_->db->Get(rocksdb::ReadOptions(), db_->meta, ToSlice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(internal::FromRocks(s, "get meta"));
  return std::optional<std::string>(std::move(value));
}

Result<std::vector<std::pair<std::string, std::string>>> Store::ScanMeta(
    std::string_view prefix) const {
  std::shared_lock lock(swap_mutex_);
  std::vector<std::pair<std::string, std::string>> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), db_->meta));
  for (it->Seek(ToSlice(prefix)); it->Valid() && it->key().starts_with(ToSlice(prefix));
       it->Next()) {
    out.emplace_back(it->key().ToString(), it->value().ToString());
  }
  RETURN_IF_ERROR(internal::FromRocks(it->status(), "scan meta"));
  return out;
}

Result<bool> Store::RunCompaction(size_t max_keys) {
  BALLOT_ASSERT(!batch_open_, "RunCompaction while a batch is open");
  StoreState& state = *state_;
  if (state.compact_pending == 0) return true;
  const Revision compact = state.compact_pending;
  rocksdb::WriteBatch wb;
  std::unique_ptr<rocksdb::Iterator> it(db_->db->NewIterator(rocksdb::ReadOptions(), db_->kv));
  it->Seek(ToSlice(state.compact_cursor));
  std::string key, current_key;
  bool below_seen = false;
  size_t keys = 0;
  Rev r;
  bool done = true;
  for (; it->Valid(); it->Next()) {
    if (!ParseKvKey(ToView(it->key()), &key, &r)) return Corrupt("kv key");
    if (key != current_key || keys == 0) {
      if (keys == max_keys) {
        done = false;
        break;
      }
      current_key = key;
      below_seen = false;
      ++keys;
    }
    if (r.main >= compact) continue;
    bool drop = below_seen || internal::PeekRecord(ToView(it->value())) == RecordKind::kTombstone;
    below_seen = true;
    if (drop) {
      wb.Delete(db_->kv, it->key());
      wb.Delete(db_->rev, internal::RevKey(r));
    }
  }
  RETURN_IF_ERROR(internal::FromRocks(it->status(), "compaction scan"));
  StoreState next = state;
  if (done) {
    next.compact_pending = 0;
    next.compact_cursor.clear();
  } else {
    next.compact_cursor = EncodeUserKey(key);
  }
  internal::WriteState(&wb, db_->state, next);
  RETURN_IF_ERROR(
      internal::FromRocks(db_->db->Write(rocksdb::WriteOptions(), &wb), "compaction write"));
  state = std::move(next);
  return done;
}

Result<uint64_t> Store::MakeDurable() {
  uint64_t applied = state_->applied.index;
  rocksdb::Status s = db_->db->FlushWAL(/*sync=*/true);
  if (s.IsNotSupported()) {
    // An Env whose WAL cannot sync (RocksDB's in-memory one): flushing the memtables is durable.
    s = db_->db->Flush(rocksdb::FlushOptions(), db_->Families());
  }
  RETURN_IF_ERROR(internal::FromRocks(s, "sync WAL"));
  durable_index_.store(applied);
  return applied;
}

// ---------------------------------------------------------------------------------------------
// ApplyBatch

struct ApplyBatch::Impl {
  Store* store = nullptr;
  Store::Db* db = nullptr;
  rocksdb::WriteBatchWithIndex batch{rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true};
  StoreState state;
  LogPosition last;
  bool touched = false;  // Anything to commit.
  bool spent = false;

  BatchView View() { return BatchView(db->db.get(), &batch); }

  // The key index's changes by this batch (nullopt: deleted), applied to it at Commit, and what
  // the running operation replaced in `staged` (a failed operation puts it back).
  absl::flat_hash_map<std::string, std::optional<KeyMeta>> staged;
  std::vector<std::pair<std::string, std::optional<std::optional<KeyMeta>>>> undo;

  // `key`'s newest version as of this batch's writes so far.
  std::optional<KeyMeta> Newest(const std::string& key) const {
    auto it = staged.find(key);
    if (it != staged.end()) return it->second;
    return store->index_->Find(key);
  }
  void Stage(const std::string& key, std::optional<KeyMeta> meta) {
    auto [it, inserted] = staged.try_emplace(key, meta);
    if (inserted) {
      undo.emplace_back(key, std::nullopt);
    } else {
      undo.emplace_back(key, it->second);
      it->second = meta;
    }
  }

  void Note(LogPosition at) {
    BALLOT_ASSERT(!spent, "operation on a committed batch");
    BALLOT_ASSERT(at.index > store->state_->applied.index,
                  "log entry " + std::to_string(at.index) + " is already applied (applied index " +
                      std::to_string(store->state_->applied.index) + ")");
    BALLOT_ASSERT(at.index >= last.index, "log entries out of order: " + std::to_string(at.index) +
                                              " after " + std::to_string(last.index));
    last = at;
    state.applied = at;
    touched = true;
  }

  // Runs one operation; if it fails, its writes are rolled back (its entry stays applied).
  template <typename F>
  auto Guarded(F&& op) -> decltype(op()) {
    batch.SetSavePoint();
    StoreState saved = state;
    undo.clear();
    auto result = op();
    if (result.ok()) {
      BALLOT_ASSERT(batch.PopSavePoint().ok(), "save point vanished");
    } else {
      BALLOT_ASSERT(batch.RollbackToSavePoint().ok(), "save point vanished");
      state = saved;
      for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
        if (it->second) {
          staged[it->first] = *it->second;
        } else {
          staged.erase(it->first);
        }
      }
    }
    undo.clear();
    return result;
  }

  bool LeaseExists(LeaseId lease) const {
    return !store->options_.lease_exists || store->options_.lease_exists(lease);
  }
};

namespace {

// The changes of one mutating request: etcd's storeTxnWrite. They all get revision begin + 1;
// reads inside it see its own changes.
class WriteTxn {
 public:
  explicit WriteTxn(ApplyBatch::Impl* b) : b_(b), view_(b->View()), begin_(b->state.current) {}

  Revision begin() const { return begin_; }
  // The revision a read inside the txn sees (and reports).
  Revision ReadRev() const { return changes_ > 0 ? begin_ + 1 : begin_; }
  bool changed() const { return changes_ > 0; }
  View& view() { return view_; }

  Result<RangeResult> Keys(const KeyRange& range) {
    return RangeKeys(view_, b_->db->kv, range, ReadRev(), 0, false);
  }

  // The replaced version comes from the key index; its value is not read (Event).
  Status Put(const std::string& key, const std::string& value, LeaseId lease) {
    const std::optional<KeyMeta> prev = b_->Newest(key);
    Rev rev{begin_ + 1, changes_};
    Event event{EventType::kPut, KeyValue{}, std::nullopt};
    KeyValue& kv = event.kv;
    kv.key = key;
    kv.value = value;
    kv.lease = lease;
    kv.mod_revision = rev.main;
    kv.create_revision = prev ? prev->create_revision : rev.main;
    kv.version = prev ? prev->version + 1 : 1;
    Write(rev, key, internal::EncodePutRecord(kv));
    b_->Stage(key, KeyMeta{kv.mod_revision, kv.create_revision, kv.version, kv.lease});
    if (prev) {
      event.prev_kv =
          KeyValue{key, "", prev->create_revision, prev->mod_revision, prev->version, prev->lease};
      event.prev_value_unread = true;
    }
    events_.push_back(std::move(event));
    return Status::Ok();
  }

  // Deletes every live key of `range`; returns how many.
  Result<int64_t> Delete(const KeyRange& range) {
    ASSIGN_OR_RETURN(RangeResult live, Keys(range));
    for (KeyValue& prev : live.kvs) {
      Rev rev{begin_ + 1, changes_};
      Write(rev, prev.key, internal::EncodeTombstoneRecord());
      b_->Stage(prev.key, std::nullopt);
      Event event{EventType::kDelete, KeyValue{}, std::nullopt};
      event.kv.key = prev.key;
      event.kv.mod_revision = rev.main;
      event.prev_kv = std::move(prev);
      events_.push_back(std::move(event));
    }
    return static_cast<int64_t>(live.kvs.size());
  }

  // Ends the txn: the store's revision moves on if anything changed.
  std::vector<Event> End() {
    if (changes_ > 0) b_->state.current = begin_ + 1;
    return std::move(events_);
  }

 private:
  void Write(Rev rev, const std::string& key, const std::string& record) {
    b_->batch.Put(b_->db->kv, KvKey(key, rev), record);
    b_->batch.Put(b_->db->rev, internal::RevKey(rev), key);
    ++changes_;
  }

  ApplyBatch::Impl* b_;
  BatchView view_;
  Revision begin_;
  int64_t changes_ = 0;
  std::vector<Event> events_;
};

Status CheckRevisionInTxn(const RangeRequest& r, Revision current, Revision compact) {
  // etcd's checkRequestRange: against the revision before the txn, and the first revision
  // (etcd's compactMainRev, -1 when never compacted).
  Revision first = compact > 0 ? compact : -1;
  if (r.revision == 0) return Status::Ok();
  if (r.revision > current) return ErrFutureRev();
  if (r.revision < first) return ErrCompacted();
  return Status::Ok();
}

bool CompareKv(const Compare& c, const KeyValue& kv) {
  using Target = Compare::CompareTarget;
  int result = 0;
  auto cmp = [](auto a, auto b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target) {
    case Target::kValue:
      result = kv.value.compare(c.value) < 0 ? -1 : (kv.value == c.value ? 0 : 1);
      break;
    case Target::kCreate:
      result = cmp(kv.create_revision, c.create_revision);
      break;
    case Target::kMod:
      result = cmp(kv.mod_revision, c.mod_revision);
      break;
    case Target::kVersion:
      result = cmp(kv.version, c.version);
      break;
    case Target::kLease:
      result = cmp(kv.lease, c.lease);
      break;
  }
  switch (c.result) {
    case Compare::CompareResult::kEqual:
      return result == 0;
    case Compare::CompareResult::kNotEqual:
      return result != 0;
    case Compare::CompareResult::kGreater:
      return result > 0;
    case Compare::CompareResult::kLess:
      return result < 0;
  }
  return true;
}

}  // namespace

ApplyBatch Store::NewBatch() {
  BALLOT_ASSERT(!batch_open_, "a batch is already open");
  batch_open_ = true;
  auto impl = std::make_unique<ApplyBatch::Impl>();
  impl->store = this;
  impl->db = db_.get();
  impl->state = *state_;
  impl->last = state_->applied;
  return ApplyBatch(std::move(impl));
}

ApplyBatch::ApplyBatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ApplyBatch::ApplyBatch(ApplyBatch&&) noexcept = default;
ApplyBatch::~ApplyBatch() {
  // A spent batch no longer refers to its store (which may be gone).
  if (impl_ && !impl_->spent) {
    impl_->store->batch_open_ = false;
  }
}

Revision ApplyBatch::CurrentRevision() const { return impl_->state.current; }
LogPosition ApplyBatch::LastPosition() const { return impl_->last; }

void ApplyBatch::Skip(LogPosition at) { impl_->Note(at); }

void ApplyBatch::PutMeta(LogPosition at, std::string_view key, std::string_view value) {
  impl_->Note(at);
  impl_->batch.Put(impl_->db->meta, ToSlice(key), ToSlice(value));
}

void ApplyBatch::DeleteMeta(LogPosition at, std::string_view key) {
  impl_->Note(at);
  impl_->batch.Delete(impl_->db->meta, ToSlice(key));
}

Result<std::optional<std::string>> ApplyBatch::GetMeta(std::string_view key) {
  std::string value;
  BatchView view = impl_->View();
  rocksdb::Status s = view.Get(impl_->db->meta, key, &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(internal::FromRocks(s, "get meta"));
  return std::optional<std::string>(std::move(value));
}

Result<RangeResponse> ApplyBatch::Range(const RangeRequest& request) {
  BatchView view = impl_->View();
  return ApplyRange(view, impl_->db->kv, request, impl_->state.current, impl_->state.compact);
}

namespace {

// etcd's applierV3backend.Put inside a write txn (the checks are the caller's).
Result<PutResponse> PutInTxn(WriteTxn& txn, const PutRequest& p) {
  PutResponse resp;
  std::string value = p.value;
  LeaseId lease = p.lease;
  if (p.ignore_value || p.ignore_lease || p.prev_kv) {
    ASSIGN_OR_RETURN(RangeResult rr, txn.Keys(KeyRange::Of(p.key, "")));
    if ((p.ignore_value || p.ignore_lease) && rr.kvs.empty()) return ErrKeyNotFound();
    if (!rr.kvs.empty()) {
      if (p.ignore_value) value = rr.kvs[0].value;
      if (p.ignore_lease) lease = rr.kvs[0].lease;
      if (p.prev_kv) resp.prev_kv = rr.kvs[0];
    }
  }
  RETURN_IF_ERROR(txn.Put(p.key, value, lease));
  resp.header.revision = txn.begin() + 1;
  return resp;
}

Result<DeleteRangeResponse> DeleteInTxn(WriteTxn& txn, const DeleteRangeRequest& d) {
  DeleteRangeResponse resp;
  KeyRange range = KeyRange::Of(d.key, d.range_end);
  if (d.prev_kv) {
    ASSIGN_OR_RETURN(RangeResult rr, txn.Keys(range));
    resp.prev_kvs = std::move(rr.kvs);
  }
  ASSIGN_OR_RETURN(resp.deleted, txn.Delete(range));
  resp.header.revision = txn.changed() ? txn.begin() + 1 : txn.begin();
  return resp;
}

}  // namespace

namespace {

Result<WriteResult<PutResponse>> PutOp(ApplyBatch::Impl* impl_, const PutRequest& request) {
  RETURN_IF_ERROR(CheckPutRequest(request));
  if (request.lease != 0 && !impl_->LeaseExists(request.lease)) return ErrLeaseNotFound();
  WriteTxn txn(impl_);
  if (request.ignore_value || request.ignore_lease) {
    ASSIGN_OR_RETURN(RangeResult rr, txn.Keys(KeyRange::Of(request.key, "")));
    if (rr.kvs.empty()) return ErrKeyNotFound();
  }
  ASSIGN_OR_RETURN(PutResponse resp, PutInTxn(txn, request));
  return WriteResult<PutResponse>{std::move(resp), txn.End()};
}

Result<WriteResult<DeleteRangeResponse>> DeleteRangeOp(ApplyBatch::Impl* impl_,
                                                       const DeleteRangeRequest& request) {
  RETURN_IF_ERROR(CheckDeleteRangeRequest(request));
  WriteTxn txn(impl_);
  ASSIGN_OR_RETURN(DeleteRangeResponse resp, DeleteInTxn(txn, request));
  return WriteResult<DeleteRangeResponse>{std::move(resp), txn.End()};
}

Result<WriteResult<DeleteRangeResponse>> DeleteKeysOp(ApplyBatch::Impl* impl_,
                                                      const std::vector<std::string>& keys) {
  WriteTxn txn(impl_);
  DeleteRangeResponse resp;
  for (const std::string& key : keys) {
    if (key.empty()) continue;
    ASSIGN_OR_RETURN(int64_t n, txn.Delete(KeyRange::Of(key, "")));
    resp.deleted += n;
  }
  resp.header.revision = txn.changed() ? txn.begin() + 1 : txn.begin();
  return WriteResult<DeleteRangeResponse>{std::move(resp), txn.End()};
}

// etcd's Txn (apply.go): choose every branch on the state before the txn (compareToPath), check
// the chosen ops on that state (checkRequests), then run them in one write txn (applyTxn).
class TxnRunner {
 public:
  TxnRunner(ApplyBatch::Impl* b, View& before) : b_(b), before_(before) {}

  Result<bool> Compares(const std::vector<Compare>& compares) {
    for (const Compare& c : compares) {
      ASSIGN_OR_RETURN(RangeResult rr,
                       RangeKeys(before_, b_->db->kv, KeyRange::Of(c.key, c.range_end),
                                 b_->state.current, 0, false));
      if (rr.kvs.empty()) {
        // A value compare on absent keys always fails (etcd: no way to represent "missing").
        if (c.target == Compare::CompareTarget::kValue) return false;
        if (!CompareKv(c, KeyValue{})) return false;
        continue;
      }
      for (const KeyValue& kv : rr.kvs) {
        if (!CompareKv(c, kv)) return false;
      }
    }
    return true;
  }

  // Appends the branch taken by `txn` and every nested txn on it, depth first.
  Status Path(const TxnRequest& txn, std::vector<bool>* path) {
    ASSIGN_OR_RETURN(bool ok, Compares(txn.compare));
    path->push_back(ok);
    for (const RequestOp& op : ok ? txn.success : txn.failure) {
      if (auto* nested = std::get_if<Box<TxnRequest>>(&op.request)) {
        RETURN_IF_ERROR(Path(**nested, path));
      }
    }
    return Status::Ok();
  }

  Status Check(const TxnRequest& txn, const std::vector<bool>& path, size_t* pos) {
    bool ok = path[(*pos)++];
    for (const RequestOp& op : ok ? txn.success : txn.failure) {
      if (auto* nested = std::get_if<Box<TxnRequest>>(&op.request)) {
        RETURN_IF_ERROR(Check(**nested, path, pos));
      } else if (auto* put = std::get_if<PutRequest>(&op.request)) {
        if (put->ignore_value || put->ignore_lease) {
          ASSIGN_OR_RETURN(RangeResult rr,
                           RangeKeys(before_, b_->db->kv, KeyRange::Of(put->key, ""),
                                     b_->state.current, 0, false));
          if (rr.kvs.empty()) return ErrKeyNotFound();
        }
        if (put->lease != 0 && !b_->LeaseExists(put->lease)) return ErrLeaseNotFound();
      } else if (auto* range = std::get_if<RangeRequest>(&op.request)) {
        RETURN_IF_ERROR(CheckRevisionInTxn(*range, b_->state.current, b_->state.compact));
      }
    }
    return Status::Ok();
  }

  Result<TxnResponse> Apply(WriteTxn& w, const TxnRequest& txn, const std::vector<bool>& path,
                            size_t* pos) {
    TxnResponse resp;
    resp.succeeded = path[(*pos)++];
    for (const RequestOp& op : resp.succeeded ? txn.success : txn.failure) {
      ResponseOp out;
      if (auto* range = std::get_if<RangeRequest>(&op.request)) {
        ASSIGN_OR_RETURN(RangeResponse r,
                         ApplyRange(w.view(), b_->db->kv, *range, w.ReadRev(), b_->state.compact));
        out.response = std::move(r);
      } else if (auto* put = std::get_if<PutRequest>(&op.request)) {
        ASSIGN_OR_RETURN(PutResponse r, PutInTxn(w, *put));
        out.response = std::move(r);
      } else if (auto* del = std::get_if<DeleteRangeRequest>(&op.request)) {
        ASSIGN_OR_RETURN(DeleteRangeResponse r, DeleteInTxn(w, *del));
        out.response = std::move(r);
      } else if (auto* nested = std::get_if<Box<TxnRequest>>(&op.request)) {
        // A nested txn's header stays empty, as in etcd.
        ASSIGN_OR_RETURN(TxnResponse r, Apply(w, **nested, path, pos));
        out.response = Box<TxnResponse>(std::move(r));
      }
      resp.responses.push_back(std::move(out));
    }
    return resp;
  }

 private:
  ApplyBatch::Impl* b_;
  View& before_;
};

Result<WriteResult<TxnResponse>> TxnOp(ApplyBatch::Impl* impl_, const TxnRequest& request) {
  RETURN_IF_ERROR(CheckTxnRequest(request, impl_->store->options().max_txn_ops));
  BatchView before = impl_->View();
  TxnRunner runner(impl_, before);
  std::vector<bool> path;
  RETURN_IF_ERROR(runner.Path(request, &path));
  size_t pos = 0;
  RETURN_IF_ERROR(runner.Check(request, path, &pos));
  WriteTxn txn(impl_);
  pos = 0;
  // Every check ran before the first write: an error here is the store's own (I/O, corruption),
  // and the caller's save point undoes the partial writes.
  ASSIGN_OR_RETURN(TxnResponse resp, runner.Apply(txn, request, path, &pos));
  resp.header.revision = txn.ReadRev();
  return WriteResult<TxnResponse>{std::move(resp), txn.End()};
}

}  // namespace

Result<WriteResult<PutResponse>> ApplyBatch::Put(LogPosition at, const PutRequest& request) {
  impl_->Note(at);
  return impl_->Guarded([&] { return PutOp(impl_.get(), request); });
}

Result<WriteResult<DeleteRangeResponse>> ApplyBatch::DeleteRange(
    LogPosition at, const DeleteRangeRequest& request) {
  impl_->Note(at);
  return impl_->Guarded([&] { return DeleteRangeOp(impl_.get(), request); });
}

Result<WriteResult<DeleteRangeResponse>> ApplyBatch::DeleteKeys(
    LogPosition at, const std::vector<std::string>& keys) {
  impl_->Note(at);
  return impl_->Guarded([&] { return DeleteKeysOp(impl_.get(), keys); });
}

Result<WriteResult<TxnResponse>> ApplyBatch::Txn(LogPosition at, const TxnRequest& request) {
  impl_->Note(at);
  return impl_->Guarded([&] { return TxnOp(impl_.get(), request); });
}

Result<CompactionResponse> ApplyBatch::Compact(LogPosition at, const CompactionRequest& request) {
  impl_->Note(at);
  StoreState& state = impl_->state;
  if (request.revision <= state.compact) return ErrCompacted();
  if (request.revision > state.current) return ErrFutureRev();
  state.compact = request.revision;
  state.compact_pending = request.revision;
  state.compact_cursor.clear();
  CompactionResponse resp;
  resp.header.revision = state.current;
  return resp;
}

Status ApplyBatch::Commit() {
  Impl& b = *impl_;
  BALLOT_ASSERT(!b.spent, "batch committed twice");
  b.spent = true;
  b.store->batch_open_ = false;
  if (!b.touched) return Status::Ok();
  internal::WriteState(&b.batch, b.db->state, b.state);
  rocksdb::WriteOptions wo;
  wo.sync = false;  // The log is durable; see docs/mvcc.md, "Durability".
  RETURN_IF_ERROR(
      internal::FromRocks(b.db->db->Write(wo, b.batch.GetWriteBatch()), "commit apply batch"));
  *b.store->state_ = b.state;
  KeyIndex& index = *b.store->index_;
  for (const auto& [key, meta] : b.staged) {
    if (meta) {
      index.Set(key, *meta);
    } else {
      index.Erase(key);
    }
  }
  if (b.state.compact_pending != 0) {
    ASSIGN_OR_RETURN(bool done, b.store->RunCompaction(b.store->options_.compaction_keys_per_step));
    (void)done;
  }
  return Status::Ok();
}

}  // namespace ballot::mvcc
