#include "wal/fault_injection_env.h"

#include <cerrno>
#include <chrono>
#include <thread>

namespace ballot::wal {

// A handle on a FaultInjectionEnv file; dead after a Crash.
class FaultFile final : public File {
 public:
  FaultFile(std::string path, FaultInjectionEnv* env, uint64_t generation)
      : File(std::move(path)), env_(env), generation_(generation) {}

  Result<std::string> ReadAt(uint64_t offset, size_t size_bytes) override {
    std::lock_guard lock(env_->mu_);
    ASSIGN_OR_RETURN(FaultInjectionEnv::Node * node, Find("read"));
    if (offset >= node->current.size()) return std::string();
    return node->current.substr(offset, size_bytes);
  }

  Status WriteAt(uint64_t offset, std::string_view data) override {
    return Change(FaultInjectionEnv::Op{path(), offset, std::string(data), false}, "write");
  }

  Status Truncate(uint64_t size_bytes) override {
    return Change(FaultInjectionEnv::Op{path(), size_bytes, {}, true}, "truncate");
  }

  Status Preallocate(uint64_t size_bytes) override {
    std::lock_guard lock(env_->mu_);
    ASSIGN_OR_RETURN(FaultInjectionEnv::Node * node, Find("fallocate"));
    if (node->current.size() >= size_bytes) return Status::Ok();
    FaultInjectionEnv::Op op{path(), size_bytes, {}, true};
    FaultInjectionEnv::ApplyOp(op, &node->current);
    env_->unsynced_.push_back(std::move(op));
    return Status::Ok();
  }

  Status Sync() override {
    if (const uint64_t delay_us = env_->sync_delay_us_.load(); delay_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    }
    std::lock_guard lock(env_->mu_);
    ASSIGN_OR_RETURN(FaultInjectionEnv::Node * node, Find("fdatasync"));
    env_->sync_count_.fetch_add(1);
    if (env_->sync_error_) return IoError("fdatasync", path(), EIO);
    node->durable = node->current;
    std::erase_if(env_->unsynced_,
                  [&](const FaultInjectionEnv::Op& op) { return op.path == path(); });
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    std::lock_guard lock(env_->mu_);
    ASSIGN_OR_RETURN(FaultInjectionEnv::Node * node, Find("stat"));
    return static_cast<uint64_t>(node->current.size());
  }

 private:
  // Requires env_->mu_.
  Result<FaultInjectionEnv::Node*> Find(std::string_view op) {
    if (generation_ != env_->generation_) return IoError(op, path(), EBADF);
    auto it = env_->files_.find(path());
    if (it == env_->files_.end()) return IoError(op, path(), ENOENT);
    return &it->second;
  }

  Status Change(FaultInjectionEnv::Op op, std::string_view name) {
    std::lock_guard lock(env_->mu_);
    ASSIGN_OR_RETURN(FaultInjectionEnv::Node * node, Find(name));
    FaultInjectionEnv::ApplyOp(op, &node->current);
    env_->unsynced_.push_back(std::move(op));
    return Status::Ok();
  }

  FaultInjectionEnv* const env_;
  const uint64_t generation_;
};

void FaultInjectionEnv::ApplyOp(const Op& op, std::string* content) {
  if (op.truncate) {
    content->resize(op.offset, '\0');
    return;
  }
  if (content->size() < op.offset + op.data.size()) content->resize(op.offset + op.data.size());
  content->replace(op.offset, op.data.size(), op.data);
}

Result<std::unique_ptr<File>> FaultInjectionEnv::Open(const std::string& path, bool create) {
  std::lock_guard lock(mu_);
  const bool exists = files_.count(path) > 0;
  if (create && exists) return IoError("create", path, EEXIST);
  if (!create && !exists) return IoError("open", path, ENOENT);
  if (create) {
    const std::string parent = path.substr(0, path.rfind('/'));
    if (dirs_.count(parent) == 0) return IoError("create", path, ENOENT);
    files_[path] = Node{};
  }
  return std::unique_ptr<File>(std::make_unique<FaultFile>(path, this, generation_));
}

Status FaultInjectionEnv::CreateDir(const std::string& path) {
  std::lock_guard lock(mu_);
  dirs_.insert(path);
  return Status::Ok();
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (dirs_.count(path) == 0) return IoError("opendir", path, ENOENT);
  std::vector<std::string> names;
  const std::string prefix = path + "/";
  for (const auto& [name, node] : files_) {
    if (name.starts_with(prefix) && name.find('/', prefix.size()) == std::string::npos) {
      names.push_back(name.substr(prefix.size()));
    }
  }
  return names;
}

Status FaultInjectionEnv::Rename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  auto it = files_.find(from);
  if (it == files_.end()) return IoError("rename", from + " to " + to, ENOENT);
  Node node = std::move(it->second);
  files_.erase(it);
  files_[to] = std::move(node);
  for (Op& op : unsynced_) {
    if (op.path == from) op.path = to;
  }
  return Status::Ok();
}

Status FaultInjectionEnv::Remove(const std::string& path) {
  std::lock_guard lock(mu_);
  if (files_.erase(path) == 0) return IoError("remove", path, ENOENT);
  std::erase_if(unsynced_, [&](const Op& op) { return op.path == path; });
  return Status::Ok();
}

Status FaultInjectionEnv::SyncDir(const std::string& path) {
  std::lock_guard lock(mu_);
  if (dirs_.count(path) == 0) return IoError("fsync directory", path, ENOENT);
  return Status::Ok();
}

Result<uint64_t> FaultInjectionEnv::FileSize(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = files_.find(path);
  if (it == files_.end()) return IoError("stat", path, ENOENT);
  return static_cast<uint64_t>(it->second.current.size());
}

void FaultInjectionEnv::Crash(CrashMode mode) {
  std::lock_guard lock(mu_);
  ++generation_;
  for (auto& [path, node] : files_) node.current = node.durable;
  if (mode == CrashMode::kTearLastWrite && !unsynced_.empty()) {
    for (size_t i = 0; i + 1 < unsynced_.size(); ++i) {
      ApplyOp(unsynced_[i], &files_[unsynced_[i].path].current);
    }
    Op last = unsynced_.back();
    if (!last.truncate) last.data.resize(random_.Uniform(last.data.size() + 1));
    ApplyOp(last, &files_[last.path].current);
  }
  unsynced_.clear();
  for (auto& [path, node] : files_) node.durable = node.current;
}

void FaultInjectionEnv::SetSyncError(bool fail) {
  std::lock_guard lock(mu_);
  sync_error_ = fail;
}

std::string FaultInjectionEnv::Content(const std::string& path) {
  std::lock_guard lock(mu_);
  return files_[path].current;
}

void FaultInjectionEnv::SetContent(const std::string& path, std::string content) {
  std::lock_guard lock(mu_);
  files_[path] = Node{content, content};
}

}  // namespace ballot::wal
