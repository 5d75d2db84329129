// The member's data directory:
//
//   <data-dir>/LOCK              flock'ed by the one process using the directory; holds its pid
//   <data-dir>/member/identity   who this directory belongs to (written once, atomically)
//   <data-dir>/member/wal/       the write-ahead log
//   <data-dir>/member/db/        the key space (RocksDB)
//   <data-dir>/member/snap/      snapshots
//
// The identity file is text, one "key value" line each, ending with a crc32c of everything before
// it (docs/configuration.md gives the format). It is written at first start, before anything else
// goes into the directory, and checked at every start: a directory of another cluster, another
// member or another engine is refused with a message naming both.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"
#include "config/serve_config.h"

namespace ballot::config {

inline constexpr uint32_t kDataDirFormatVersion = 1;

struct DataDirIdentity {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  std::string name;
  EngineKind engine = EngineKind::kRaft;
  uint32_t format_version = kDataDirFormatVersion;

  friend bool operator==(const DataDirIdentity&, const DataDirIdentity&) = default;
};

// The identity file's bytes, and back. Parse errors are DataLoss naming `path`.
std::string SerializeIdentity(const DataDirIdentity& identity);
Result<DataDirIdentity> ParseIdentity(std::string_view text, const std::string& path);

// An open data directory: holds the lock until destroyed. Not copyable; one per process and
// directory.
class DataDir {
 public:
  // Locks `path` (creating it, mode 0700, if absent), lays out member/{wal,db,snap}, then:
  // - no identity file yet: writes `expected` (which must have nonzero ids) and sets created();
  //   if member/ already holds data without an identity file, refuses (FailedPrecondition).
  // - an identity file: checks it against `expected` and refuses a mismatch (FailedPrecondition)
  //   naming both sides. A zero cluster_id in `expected` skips the cluster check (a member joining
  //   an existing cluster learns its cluster id later); an empty name skips the name check.
  // Errors: FailedPrecondition when another process holds the lock; DataLoss naming the file for
  // a corrupt identity file; Internal for I/O errors, naming the path and errno text.
  static Result<std::unique_ptr<DataDir>> Open(const std::string& path,
                                               const DataDirIdentity& expected);
  ~DataDir();
  DataDir(const DataDir&) = delete;
  DataDir& operator=(const DataDir&) = delete;

  const std::string& path() const { return path_; }
  std::string member_dir() const { return path_ + "/member"; }
  std::string wal_dir() const { return path_ + "/member/wal"; }
  std::string db_dir() const { return path_ + "/member/db"; }
  std::string snap_dir() const { return path_ + "/member/snap"; }
  std::string identity_path() const { return path_ + "/member/identity"; }
  // The identity on disk (as written now, or as found).
  const DataDirIdentity& identity() const { return identity_; }
  // True when this Open wrote the identity: the member starts for the first time.
  bool created() const { return created_; }

 private:
  DataDir(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}

  Status Prepare(const DataDirIdentity& expected);

  std::string path_;
  int lock_fd_;  // Owned; closing it releases the flock.
  DataDirIdentity identity_;
  bool created_ = false;
};

}  // namespace ballot::config
