#include "mvcc/snapshot.h"

#include <rocksdb/db.h>

#include <mutex>

#include "base/crc32c.h"
#include "mvcc/encoding.h"
#include "mvcc/store_internal.h"

namespace ballot::mvcc {

using internal::GetFixed64LE;
using internal::PutFixed64LE;

namespace {

constexpr std::string_view kMagic = "ballot-mvcc-snapshot";
constexpr uint32_t kFormatVersion = 1;
constexpr uint8_t kTypeHeader = 1;
constexpr uint8_t kTypeEntry = 2;
constexpr uint8_t kTypeTrailer = 3;
constexpr size_t kRecordHeaderBytes = 9;  // masked crc32c, length, type.
constexpr uint8_t kFamilies = 4;
// Entries written to the side database per RocksDB write while installing.
constexpr size_t kInstallBatchBytesMax = 4 << 20;

void PutFixed32LE(std::string* out, uint32_t v) {
  char buf[4];
  for (int i = 0; i < 4; ++i) buf[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out->append(buf, 4);
}

uint32_t GetFixed32LE(const char* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

}  // namespace

void internal::AppendSnapshotRecord(std::string* out, uint8_t type, std::string_view payload) {
  uint32_t crc = crc32c::Extend(0, &type, 1);
  crc = crc32c::Extend(crc, payload.data(), payload.size());
  PutFixed32LE(out, crc32c::Mask(crc));
  PutFixed32LE(out, static_cast<uint32_t>(payload.size()));
  out->push_back(static_cast<char>(type));
  out->append(payload);
}

namespace {
void AppendRecord(std::string* out, uint8_t type, std::string_view payload) {
  internal::AppendSnapshotRecord(out, type, payload);
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Writer

struct SnapshotWriter::Cursor {
  std::vector<rocksdb::ColumnFamilyHandle*> families;
  size_t family = 0;
  std::unique_ptr<rocksdb::Iterator> it;
  uint64_t entries = 0;
  uint32_t entries_crc = 0;
};

Result<std::unique_ptr<SnapshotWriter>> Store::NewSnapshotWriter(std::string metadata) const {
  std::shared_lock lock(swap_mutex_);
  std::unique_ptr<SnapshotWriter> writer(new SnapshotWriter(this, std::move(metadata)));
  {
    std::lock_guard pin(pin_mutex_);
    ++pins_;
  }
  rocksdb::DB* db = db_->db.get();
  writer->snapshot_ = db->GetSnapshot();
  ASSIGN_OR_RETURN(StoreState state, internal::ReadState(db, db_->state, writer->snapshot_));
  writer->info_.applied = state.applied;
  writer->cursor_ = std::make_unique<SnapshotWriter::Cursor>();
  writer->cursor_->families = db_->Families();

  std::string header(kMagic);
  PutFixed32LE(&header, kFormatVersion);
  PutFixed64LE(&header, state.applied.index);
  PutFixed64LE(&header, state.applied.term);
  header.append(writer->info_.metadata);
  AppendRecord(&writer->pending_, kTypeHeader, header);
  return writer;
}

SnapshotWriter::SnapshotWriter(const Store* store, std::string metadata) : store_(store) {
  info_.metadata = std::move(metadata);
}

SnapshotWriter::~SnapshotWriter() {
  cursor_.reset();  // Iterators before the snapshot they read.
  if (snapshot_ != nullptr) store_->db_->db->ReleaseSnapshot(snapshot_);
  std::lock_guard pin(store_->pin_mutex_);
  --store_->pins_;
  store_->pin_cv_.notify_all();
}

Status SnapshotWriter::Fill(size_t bytes) {
  Cursor& c = *cursor_;
  while (pending_.size() < bytes && !trailer_written_) {
    if (c.family == c.families.size()) {
      std::string trailer;
      PutFixed64LE(&trailer, c.entries);
      PutFixed32LE(&trailer, c.entries_crc);
      AppendRecord(&pending_, kTypeTrailer, trailer);
      trailer_written_ = true;
      break;
    }
    if (!c.it) {
      rocksdb::ReadOptions ro;
      ro.snapshot = snapshot_;
      c.it.reset(store_->db_->db->NewIterator(ro, c.families[c.family]));
      c.it->SeekToFirst();
    }
    if (!c.it->Valid()) {
      RETURN_IF_ERROR(internal::FromRocks(c.it->status(), "snapshot scan"));
      c.it.reset();
      ++c.family;
      continue;
    }
    std::string entry;
    entry.push_back(static_cast<char>(c.family));
    PutFixed32LE(&entry, static_cast<uint32_t>(c.it->key().size()));
    entry.append(c.it->key().data(), c.it->key().size());
    entry.append(c.it->value().data(), c.it->value().size());
    BALLOT_ASSERT(entry.size() <= kSnapshotRecordBytesMax, "snapshot record over the bound");
    c.entries_crc = crc32c::Extend(c.entries_crc, entry.data(), entry.size());
    ++c.entries;
    AppendRecord(&pending_, kTypeEntry, entry);
    c.it->Next();
  }
  return Status::Ok();
}

Result<bool> SnapshotWriter::Next(std::string* chunk, size_t chunk_bytes_max) {
  BALLOT_ASSERT(chunk_bytes_max > 0, "chunk_bytes_max is 0");
  chunk->clear();
  RETURN_IF_ERROR(Fill(chunk_bytes_max));
  size_t n = std::min(chunk_bytes_max, pending_.size());
  chunk->assign(pending_, 0, n);
  // What stays is less than one record, so the buffer never holds more than a piece and a record.
  // (Until this, the buffer was cleared only when a piece ended exactly on a record's end, which
  // records of uneven sizes almost never do: a member's own snapshot grew whole in memory.)
  pending_.erase(0, n);
  return n > 0;
}

Result<std::string> SnapshotWriter::ReadAll() {
  std::string all, chunk;
  while (true) {
    ASSIGN_OR_RETURN(bool more, Next(&chunk));
    if (!more) return all;
    all.append(chunk);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoder

SnapshotDecoder::SnapshotDecoder(HeaderFn on_header, EntryFn on_entry)
    : on_header_(std::move(on_header)), on_entry_(std::move(on_entry)) {}

Status SnapshotDecoder::Record(uint8_t type, std::string_view payload) {
  auto bad = [&](const std::string& what) {
    return Status::DataLoss("snapshot: " + what + " (record at byte " + std::to_string(offset_) +
                            ")");
  };
  if (trailer_seen_) return bad("data after the trailer");
  switch (type) {
    case kTypeHeader: {
      if (header_seen_) return bad("second header");
      if (payload.size() < kMagic.size() + 20 || payload.substr(0, kMagic.size()) != kMagic) {
        return bad("not a ballot mvcc snapshot");
      }
      const char* p = payload.data() + kMagic.size();
      uint32_t version = GetFixed32LE(p);
      if (version != kFormatVersion) {
        return bad("unknown format version " + std::to_string(version));
      }
      SnapshotInfo info;
      info.applied.index = GetFixed64LE(p + 4);
      info.applied.term = GetFixed64LE(p + 12);
      info.metadata = std::string(payload.substr(kMagic.size() + 20));
      header_seen_ = true;
      return on_header_ ? on_header_(info) : Status::Ok();
    }
    case kTypeEntry: {
      if (!header_seen_) return bad("entry before the header");
      if (payload.size() < 5) return bad("short entry");
      uint8_t family = static_cast<uint8_t>(payload[0]);
      if (family >= kFamilies) return bad("unknown column family " + std::to_string(family));
      uint32_t key_size = GetFixed32LE(payload.data() + 1);
      if (key_size > payload.size() - 5) return bad("entry key longer than its record");
      entries_crc_ = crc32c::Extend(entries_crc_, payload.data(), payload.size());
      ++entries_;
      return on_entry_
                 ? on_entry_(family, payload.substr(5, key_size), payload.substr(5 + key_size))
                 : Status::Ok();
    }
    case kTypeTrailer: {
      if (!header_seen_) return bad("trailer before the header");
      if (payload.size() != 12) return bad("malformed trailer");
      uint64_t entries = GetFixed64LE(payload.data());
      uint32_t crc = GetFixed32LE(payload.data() + 8);
      if (entries != entries_ || crc != entries_crc_) {
        return bad("trailer does not match the entries (" + std::to_string(entries) +
                   " announced, " + std::to_string(entries_) + " read)");
      }
      trailer_seen_ = true;
      return Status::Ok();
    }
    default:
      return bad("unknown record type " + std::to_string(type));
  }
}

Status SnapshotDecoder::Append(std::string_view chunk) {
  if (!failed_.ok()) return failed_;
  buffer_.append(chunk);
  size_t pos = 0;
  Status status;
  while (status.ok() && buffer_.size() - pos >= kRecordHeaderBytes) {
    const char* p = buffer_.data() + pos;
    uint32_t length = GetFixed32LE(p + 4);
    if (length > kSnapshotRecordBytesMax) {
      status = Status::DataLoss("snapshot: record length " + std::to_string(length) +
                                " over the bound (record at byte " + std::to_string(offset_) + ")");
      break;
    }
    if (buffer_.size() - pos - kRecordHeaderBytes < length) break;
    uint8_t type = static_cast<uint8_t>(p[8]);
    std::string_view payload(p + kRecordHeaderBytes, length);
    uint32_t crc = crc32c::Extend(0, &type, 1);
    crc = crc32c::Extend(crc, payload.data(), payload.size());
    if (crc32c::Unmask(GetFixed32LE(p)) != crc) {
      status = Status::DataLoss("snapshot: checksum mismatch (record at byte " +
                                std::to_string(offset_) + ")");
      break;
    }
    status = Record(type, payload);
    pos += kRecordHeaderBytes + length;
    offset_ += kRecordHeaderBytes + length;
  }
  buffer_.erase(0, pos);
  if (status.ok() && trailer_seen_ && !buffer_.empty()) {
    status =
        Status::DataLoss("snapshot: data after the trailer (byte " + std::to_string(offset_) + ")");
  }
  failed_ = status;
  return status;
}

Status SnapshotDecoder::Finish() {
  if (!failed_.ok()) return failed_;
  if (!trailer_seen_ || !buffer_.empty()) {
    failed_ =
        Status::DataLoss("snapshot: truncated at byte " + std::to_string(offset_ + buffer_.size()));
  }
  return failed_;
}

Result<SnapshotInfo> VerifySnapshot(std::string_view stream) {
  SnapshotInfo info;
  SnapshotDecoder decoder(
      [&](const SnapshotInfo& i) {
        info = i;
        return Status::Ok();
      },
      nullptr);
  RETURN_IF_ERROR(decoder.Append(stream));
  RETURN_IF_ERROR(decoder.Finish());
  return info;
}

// ---------------------------------------------------------------------------------------------
// Installer

struct SnapshotInstaller::Impl {
  Store* store = nullptr;
  std::string side_name;  // "db-<n>" beside the store's database.
  std::string side_path;
  std::unique_ptr<Store::Db> side;
  rocksdb::WriteBatch batch;
  SnapshotInfo info;
  std::unique_ptr<SnapshotDecoder> decoder;
  bool finished = false;

  Status FlushBatch() {
    if (batch.Count() == 0) return Status::Ok();
    RETURN_IF_ERROR(internal::FromRocks(side->db->Write(rocksdb::WriteOptions(), &batch),
                                        "write snapshot entries"));
    batch.Clear();
    return Status::Ok();
  }

  Status Entry(uint8_t family, std::string_view key, std::string_view value) {
    rocksdb::ColumnFamilyHandle* cf = side->Families()[family];
    RETURN_IF_ERROR(internal::FromRocks(batch.Put(cf, rocksdb::Slice(key.data(), key.size()),
                                                  rocksdb::Slice(value.data(), value.size())),
                                        "snapshot batch"));
    if (batch.GetDataSize() >= kInstallBatchBytesMax) return FlushBatch();
    return Status::Ok();
  }
};

Result<std::unique_ptr<SnapshotInstaller>> Store::NewSnapshotInstaller() {
  BALLOT_ASSERT(!batch_open_, "snapshot install while a batch is open");
  auto impl = std::make_unique<SnapshotInstaller::Impl>();
  impl->store = this;
  // The live database is "db-<n>"; the new one is the next number.
  rocksdb::Env* env = internal::StoreEnv(options_);
  uint64_t next = std::strtoull(db_name_.c_str() + 3, nullptr, 10) + 1;
  impl->side_name = "db-" + std::to_string(next);
  impl->side_path = options_.dir + "/" + impl->side_name;
  RETURN_IF_ERROR(internal::RemoveTree(env, impl->side_path));
  ASSIGN_OR_RETURN(impl->side, internal::OpenDb(options_, impl->side_path));
  SnapshotInstaller::Impl* raw = impl.get();
  impl->decoder = std::make_unique<SnapshotDecoder>(
      [raw](const SnapshotInfo& info) {
        raw->info = info;
        return Status::Ok();
      },
      [raw](uint8_t family, std::string_view key, std::string_view value) {
        return raw->Entry(family, key, value);
      });
  return std::unique_ptr<SnapshotInstaller>(new SnapshotInstaller(std::move(impl)));
}

SnapshotInstaller::SnapshotInstaller(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SnapshotInstaller::~SnapshotInstaller() {
  if (!impl_ || impl_->finished) return;
  impl_->side.reset();
  (void)internal::RemoveTree(internal::StoreEnv(impl_->store->options()), impl_->side_path);
}

Status SnapshotInstaller::Append(std::string_view chunk) {
  BALLOT_ASSERT(!impl_->finished, "Append after Finish");
  return impl_->decoder->Append(chunk);
}

Result<SnapshotInfo> SnapshotInstaller::Finish() {
  Impl& b = *impl_;
  BALLOT_ASSERT(!b.finished, "Finish twice");
  RETURN_IF_ERROR(b.decoder->Finish());
  RETURN_IF_ERROR(b.FlushBatch());
  // The image must be a store: state records that parse and agree with the header.
  ASSIGN_OR_RETURN(StoreState state, internal::ReadState(b.side->db.get(), b.side->state, nullptr));
  if (state.applied != b.info.applied) {
    return Status::DataLoss("snapshot: header says applied index " +
                            std::to_string(b.info.applied.index) + ", the image " +
                            std::to_string(state.applied.index));
  }
  RETURN_IF_ERROR(internal::FromRocks(
      b.side->db->Flush(rocksdb::FlushOptions(), b.side->Families()), "flush snapshot"));
  b.side.reset();
  RETURN_IF_ERROR(internal::SyncDir(internal::StoreEnv(b.store->options()), b.side_path));
  RETURN_IF_ERROR(b.store->SwapTo(b.side_name));
  b.finished = true;
  return b.info;
}

Status Store::SwapTo(const std::string& db_dir_name) {
  std::unique_lock lock(swap_mutex_);
  {
    std::unique_lock pin(pin_mutex_);
    pin_cv_.wait(pin, [this] { return pins_ == 0; });
  }
  std::string dir = options_.dir;
  rocksdb::Env* env = internal::StoreEnv(options_);
  // The new database is opened while the old one is still live, so that a failure on either side
  // of the commit point (a full or dead disk) leaves the store with a database: closing the old one
  // first and failing to reopen one left db_ null, and the next reader crashed the process.
  ASSIGN_OR_RETURN(std::unique_ptr<Db> next, internal::OpenDb(options_, dir + "/" + db_dir_name));
  // The commit point: from here on, Open finds the new database. On failure the old database is
  // still the live one (`next` is closed; Open removes its directory as debris).
  RETURN_IF_ERROR(internal::WriteFileAtomically(env, dir, "CURRENT_DB", db_dir_name));
  std::string old_name = db_name_;
  db_name_ = db_dir_name;
  db_ = std::move(next);  // Closes the old database.
  // Debris only: a failure to remove it is retried by the next Open.
  (void)internal::RemoveTree(env, dir + "/" + old_name);
  RETURN_IF_ERROR(LoadState());
  durable_index_.store(state_->applied.index);
  // Readers go on meanwhile: the index is the writer's (this thread's) alone.
  lock.unlock();
  return LoadKeyIndex();
}

}  // namespace ballot::mvcc
