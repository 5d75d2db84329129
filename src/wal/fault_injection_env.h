// FaultInjectionEnv: an in-memory Env for crash tests (after leveldb's fault_injection_test.cc).
//
// Each file keeps the content a crash would leave (what was synced) apart from what has only been
// written. Crash() throws away everything not synced, optionally keeping all unsynced writes but
// the last and a random prefix of the last (a torn write, drawn from the seed). Sync can be made to
// fail with EIO. File creations, renames and removals are durable at once (the WAL still calls
// SyncDir, which is counted).
//
// Thread-safety: every method may be called from any thread (one mutex).
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/random.h"
#include "wal/env.h"

namespace ballot::wal {

class FaultInjectionEnv final : public Env {
 public:
  explicit FaultInjectionEnv(uint64_t seed = 1) : random_(seed) {}

  Result<std::unique_ptr<File>> Open(const std::string& path, bool create) override;
  Status CreateDir(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Remove(const std::string& path) override;
  Status SyncDir(const std::string& path) override;
  Result<uint64_t> FileSize(const std::string& path) override;

  enum class CrashMode {
    kDropUnsynced,   // Every file returns to its last synced content.
    kTearLastWrite,  // Unsynced writes survive, except the last, of which a random prefix does.
  };
  // Simulates a power loss. Files opened before are detached: their later calls fail.
  void Crash(CrashMode mode);

  // While set, every fdatasync fails with EIO (and makes nothing durable).
  void SetSyncError(bool fail);
  uint64_t sync_count() const { return sync_count_.load(); }
  // Each fdatasync takes this long (outside the Env's lock), as a disk's would.
  void SetSyncDelay(uint64_t delay_us) { sync_delay_us_.store(delay_us); }

  // Test access to a file's current content (what a read would see).
  std::string Content(const std::string& path);
  void SetContent(const std::string& path, std::string content);

 private:
  friend class FaultFile;
  struct Op {  // One unsynced change to a file.
    std::string path;
    uint64_t offset = 0;
    std::string data;       // A write of `data` at `offset`.
    bool truncate = false;  // Or a resize to `offset`.
  };
  struct Node {
    std::string current;  // What reads see.
    std::string durable;  // What survives a crash.
  };
  static void ApplyOp(const Op& op, std::string* content);

  std::mutex mu_;
  Random random_;                      // Guarded by mu_.
  std::map<std::string, Node> files_;  // Guarded by mu_.
  std::set<std::string> dirs_;         // Guarded by mu_.
  std::vector<Op> unsynced_;           // Guarded by mu_. In write order, across files.
  uint64_t generation_ = 0;            // Guarded by mu_. Bumped by Crash.
  bool sync_error_ = false;            // Guarded by mu_.
  std::atomic<uint64_t> sync_count_{0};
  std::atomic<uint64_t> sync_delay_us_{0};
};

}  // namespace ballot::wal
