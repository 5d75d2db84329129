// CrashFs: a RocksDB file system for crash tests (shared by mvcc_crash_test.cc and
// server_crash_test.cc).
//
// RocksDB runs on the real disk through it; it remembers how much of every file was synced. A
// "crash" (Crash()) freezes it: from then on appends, syncs, renames and removals are dropped
// (they report success but never reach the disk) and new files cannot be created, as if the power
// had gone out. Once the store above is closed, DropUnsynced() cuts every file back to its synced
// length and lets writes through again (the machine rebooted). Renames and removals done before
// the crash are durable at once (directory fsyncs are not modelled).
//
// A hook, if set, sees every append, sync, rename and removal before it happens (outside the file
// system's lock), so a test can crash at an exact step: an operation whose hook called Crash() is
// dropped.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace ballot::testfs {

class CrashFs : public rocksdb::FileSystemWrapper {
 public:
  enum class Op { kAppend, kSync, kRename, kDelete };
  // Called before each operation with the file's path (for a rename, the source).
  using Hook = std::function<void(Op, const std::string&)>;

  CrashFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "CrashFs"; }

  // Set before the file system is used.
  void SetHook(Hook hook) { hook_ = std::move(hook); }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& from, const std::string& to,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    Before(Op::kRename, from);
    std::lock_guard lock(mu_);
    if (crashed_) return rocksdb::IOStatus::OK();  // Never happened.
    rocksdb::IOStatus s = target()->RenameFile(from, to, o, dbg);
    if (s.ok() && files_.count(from)) {
      files_[to] = files_[from];
      files_.erase(from);
    }
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    Before(Op::kDelete, f);
    std::lock_guard lock(mu_);
    if (crashed_) return rocksdb::IOStatus::OK();  // Never happened.
    files_.erase(f);
    return target()->DeleteFile(f, o, dbg);
  }

  void Before(Op op, const std::string& f) {
    if (hook_) hook_(op, f);
  }
  void Appended(const std::string& f, uint64_t n) {
    std::lock_guard lock(mu_);
    if (!crashed_) files_[f].size += n;
  }
  void Truncated(const std::string& f, uint64_t size) {
    std::lock_guard lock(mu_);
    if (crashed_) return;
    files_[f].size = size;
    files_[f].synced = std::min(files_[f].synced, size);
  }
  void Synced(const std::string& f) {
    std::lock_guard lock(mu_);
    if (!crashed_) files_[f].synced = files_[f].size;
  }
  bool crashed() {
    std::lock_guard lock(mu_);
    return crashed_;
  }

  // The power goes out: nothing that happens from now on reaches the disk.
  void Crash() {
    std::lock_guard lock(mu_);
    crashed_ = true;
  }
  // After the store is closed: every file back to what was synced. Returns the bytes lost.
  uint64_t DropUnsynced() {
    std::lock_guard lock(mu_);
    uint64_t lost = 0;
    for (auto& [name, file] : files_) {
      std::error_code ec;
      uint64_t on_disk = std::filesystem::file_size(name, ec);
      if (ec) continue;
      if (on_disk > file.synced) {
        lost += on_disk - file.synced;
        std::filesystem::resize_file(name, file.synced, ec);
      }
      file.size = file.synced;
    }
    crashed_ = false;
    return lost;
  }

 private:
  struct FileState {
    uint64_t size = 0;
    uint64_t synced = 0;
  };
  std::mutex mu_;
  bool crashed_ = false;
  std::map<std::string, FileState> files_;
  Hook hook_;
};

// A writable file that reports its appends and syncs to its file system.
class TrackedFile : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  TrackedFile(std::unique_ptr<rocksdb::FSWritableFile> target, CrashFs* fs, std::string name)
      : FSWritableFileOwnerWrapper(std::move(target)), fs_(fs), name_(std::move(name)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           rocksdb::IODebugContext* dbg) override {
    fs_->Before(CrashFs::Op::kAppend, name_);
    if (fs_->crashed()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Append(data, o, dbg);
    if (s.ok()) fs_->Appended(name_, data.size());
    return s;
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    fs_->Before(CrashFs::Op::kAppend, name_);
    if (fs_->crashed()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Append(data, o, info, dbg);
    if (s.ok()) fs_->Appended(name_, data.size());
    return s;
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
    if (fs_->crashed()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Truncate(size, o, dbg);
    if (s.ok()) fs_->Truncated(name_, size);
    return s;
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    fs_->Before(CrashFs::Op::kSync, name_);
    if (fs_->crashed()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Sync(o, dbg);
    if (s.ok()) fs_->Synced(name_);
    return s;
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    fs_->Before(CrashFs::Op::kSync, name_);
    if (fs_->crashed()) return rocksdb::IOStatus::OK();
    rocksdb::IOStatus s = FSWritableFileOwnerWrapper::Fsync(o, dbg);
    if (s.ok()) fs_->Synced(name_);
    return s;
  }

 private:
  CrashFs* fs_;
  std::string name_;
};

inline rocksdb::IOStatus CrashFs::NewWritableFile(const std::string& f,
                                                  const rocksdb::FileOptions& o,
                                                  std::unique_ptr<rocksdb::FSWritableFile>* r,
                                                  rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  if (crashed_) return rocksdb::IOStatus::IOError("crashed");
  rocksdb::IOStatus s = target()->NewWritableFile(f, o, r, dbg);
  if (s.ok()) {
    files_[f] = {0, 0};
    *r = std::make_unique<TrackedFile>(std::move(*r), this, f);
  }
  return s;
}

inline rocksdb::IOStatus CrashFs::ReopenWritableFile(const std::string& f,
                                                     const rocksdb::FileOptions& o,
                                                     std::unique_ptr<rocksdb::FSWritableFile>* r,
                                                     rocksdb::IODebugContext* dbg) {
  std::lock_guard lock(mu_);
  if (crashed_) return rocksdb::IOStatus::IOError("crashed");
  rocksdb::IOStatus s = target()->ReopenWritableFile(f, o, r, dbg);
  if (s.ok()) {
    uint64_t size = std::filesystem::file_size(f);
    if (!files_.count(f)) files_[f] = {size, size};
    *r = std::make_unique<TrackedFile>(std::move(*r), this, f);
  }
  return s;
}

}  // namespace ballot::testfs
