// State machine snapshots of the store: a byte stream of checksummed records (format in
// docs/mvcc.md, "Snapshot format"), produced in bounded chunks and installed atomically.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "mvcc/store.h"

namespace rocksdb {
class Snapshot;
class Iterator;
}  // namespace rocksdb

namespace ballot::mvcc {

inline constexpr size_t kSnapshotChunkBytesDefault = 1 << 20;
// No record (one key and its value) may be larger: a length above it is corruption.
inline constexpr uint32_t kSnapshotRecordBytesMax = 64u << 20;

// What a snapshot's header says.
struct SnapshotInfo {
  LogPosition applied;   // The last log entry the image includes.
  std::string metadata;  // The member's blob (membership), opaque to the store.
};

// Produces one snapshot stream. It pins the store's database (an install waits for every
// live writer to be destroyed), so do not keep one on the apply thread across an install.
class SnapshotWriter {
 public:
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  const SnapshotInfo& info() const { return info_; }
  // The next piece of the stream, at most `chunk_bytes_max` long; false when the stream has ended
  // (and `chunk` is empty). Any thread, one at a time.
  Result<bool> Next(std::string* chunk, size_t chunk_bytes_max = kSnapshotChunkBytesDefault);
  // The whole stream at once.
  Result<std::string> ReadAll();
  // Memory held for the pieces to come: about one piece and one record, whatever the image size.
  size_t BufferedBytes() const { return pending_.capacity(); }

 private:
  friend class Store;
  struct Cursor;
  SnapshotWriter(const Store* store, std::string metadata);
  Status Fill(size_t bytes);

  const Store* store_;
  const rocksdb::Snapshot* snapshot_ = nullptr;
  SnapshotInfo info_;
  std::unique_ptr<Cursor> cursor_;
  std::string pending_;  // Encoded records not handed out yet.
  bool trailer_written_ = false;
};

// Strict streaming decoder of the format: feed it chunks cut anywhere; it calls `on_header` once,
// then `on_entry` for every record, and Finish() checks the trailer. Any malformation (bad crc,
// length, type, order, count, truncation, bytes after the trailer) is a DataLoss status naming the
// byte offset; it never crashes and never reads past its input.
class SnapshotDecoder {
 public:
  using HeaderFn = std::function<Status(const SnapshotInfo&)>;
  // family: 0 state, 1 kv, 2 rev, 3 meta.
  using EntryFn =
      std::function<Status(uint8_t family, std::string_view key, std::string_view value)>;
  SnapshotDecoder(HeaderFn on_header, EntryFn on_entry);

  Status Append(std::string_view chunk);
  Status Finish();
  uint64_t entries() const { return entries_; }

 private:
  Status Record(uint8_t type, std::string_view payload);

  HeaderFn on_header_;
  EntryFn on_entry_;
  std::string buffer_;
  uint64_t offset_ = 0;  // Stream offset of buffer_[0].
  bool header_seen_ = false;
  bool trailer_seen_ = false;
  uint64_t entries_ = 0;
  uint32_t entries_crc_ = 0;
  Status failed_;
};

// Checks a whole snapshot stream without installing it.
Result<SnapshotInfo> VerifySnapshot(std::string_view stream);

// Builds a new database from a snapshot stream beside the store's, then swaps it in.
class SnapshotInstaller {
 public:
  ~SnapshotInstaller();  // Without Finish: the side directory is removed; the store is unchanged.
  SnapshotInstaller(const SnapshotInstaller&) = delete;
  SnapshotInstaller& operator=(const SnapshotInstaller&) = delete;

  Status Append(std::string_view chunk);
  // Checks the end of the stream, makes the new database durable and replaces the store's by it
  // (a crash at any point leaves the old or the new one). Returns the snapshot's header.
  Result<SnapshotInfo> Finish();

 private:
  friend class Store;
  struct Impl;
  explicit SnapshotInstaller(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace internal {
// The record framing of the format: masked crc32c, length, type, payload (docs/mvcc.md). Exposed
// for tests that forge streams.
void AppendSnapshotRecord(std::string* out, uint8_t type, std::string_view payload);
}  // namespace internal

}  // namespace ballot::mvcc
