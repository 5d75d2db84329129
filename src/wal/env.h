// Env: the only way the write-ahead log touches the file system.
//
// Everything the WAL does to files goes through an Env, so that tests can swap in
// FaultInjectionEnv (fault_injection_env.h), which loses unsynced data on a simulated crash, tears
// writes and fails fdatasync on demand. Every error is a Status naming the path and the errno text.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ballot::wal {

// An open file, readable and writable at any offset. Closed when destroyed.
// Thread-safety: concurrent calls on one File are allowed (POSIX pread/pwrite/fdatasync).
class File {
 public:
  virtual ~File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Up to `size_bytes` bytes from `offset`; fewer only at the end of the file.
  virtual Result<std::string> ReadAt(uint64_t offset, size_t size_bytes) = 0;
  // Writes all of `data` at `offset`, growing the file if needed. Not durable before Sync().
  virtual Status WriteAt(uint64_t offset, std::string_view data) = 0;
  // fdatasync: the data written so far, and the size, survive a crash once this returns OK.
  virtual Status Sync() = 0;
  virtual Status Truncate(uint64_t size_bytes) = 0;
  // Grows the file to at least `size_bytes`, reading as zeros (fallocate, or writing zeros).
  virtual Status Preallocate(uint64_t size_bytes) = 0;
  virtual Result<uint64_t> Size() = 0;

  // Writes `data` at the current end of the file.
  Status Append(std::string_view data);

  const std::string& path() const { return path_; }

 protected:
  explicit File(std::string path) : path_(std::move(path)) {}

 private:
  std::string path_;
};

class Env {
 public:
  virtual ~Env() = default;

  // The POSIX file system. Never destroyed.
  static Env* Default();

  // Opens `path` for reading and writing. With `create`, the file must not exist yet (O_EXCL);
  // without it, it must.
  virtual Result<std::unique_ptr<File>> Open(const std::string& path, bool create) = 0;
  // Creates the directory; OK if it exists already.
  virtual Status CreateDir(const std::string& path) = 0;
  // The names (not paths) in the directory, without "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
  // Atomically replaces `to` by `from`. Durable after SyncDir of the directory.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Remove(const std::string& path) = 0;
  // fsync of a directory: makes creations, renames and removals in it durable.
  virtual Status SyncDir(const std::string& path) = 0;
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;

  // The whole content of a file.
  Result<std::string> ReadFile(const std::string& path);
};

// "<op> <path>: <strerror(err)>", the message of every I/O error.
Status IoError(std::string_view op, const std::string& path, int err);

}  // namespace ballot::wal
