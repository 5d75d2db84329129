#include "wal/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ballot::wal {

Status IoError(std::string_view op, const std::string& path, int err) {
  std::string message = std::string(op) + " " + path + ": " + std::strerror(err);
  // Out of space or quota is an operating condition a person can fix; everything else is data
  // that cannot be trusted to be where we put it.
  if (err == ENOSPC || err == EDQUOT) return Status::ResourceExhausted(std::move(message));
  if (err == ENOENT) return Status::NotFound(std::move(message));
  return Status::Internal(std::move(message));
}

Status File::Append(std::string_view data) {
  ASSIGN_OR_RETURN(uint64_t size, Size());
  return WriteAt(size, data);
}

Result<std::string> Env::ReadFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<File> file, Open(path, /*create=*/false));
  ASSIGN_OR_RETURN(uint64_t size, file->Size());
  return file->ReadAt(0, size);
}

namespace {

class PosixFile final : public File {
 public:
  PosixFile(std::string path, int fd) : File(std::move(path)), fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }

  Result<std::string> ReadAt(uint64_t offset, size_t size_bytes) override {
    std::string out(size_bytes, '\0');
    size_t done = 0;
    while (done < size_bytes) {
      ssize_t n =
          ::pread(fd_, out.data() + done, size_bytes - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("read", path(), errno);
      }
      if (n == 0) break;
      done += static_cast<size_t>(n);
    }
    out.resize(done);
    return out;
  }

  Status WriteAt(uint64_t offset, std::string_view data) override {
    size_t done = 0;
    while (done < data.size()) {
      ssize_t n =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return IoError("write", path(), errno);
      }
      done += static_cast<size_t>(n);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return IoError("fdatasync", path(), errno);
    return Status::Ok();
  }

  Status Truncate(uint64_t size_bytes) override {
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) {
      return IoError("truncate", path(), errno);
    }
    return Status::Ok();
  }

  Status Preallocate(uint64_t size_bytes) override {
    ASSIGN_OR_RETURN(uint64_t size, Size());
    if (size >= size_bytes) return Status::Ok();
    if (::fallocate(fd_, 0, static_cast<off_t>(size), static_cast<off_t>(size_bytes - size)) == 0) {
      return Status::Ok();
    }
    if (errno != EOPNOTSUPP && errno != ENOSYS) return IoError("fallocate", path(), errno);
    // The file system cannot allocate without writing: write the zeros ourselves.
    constexpr size_t kChunkBytes = 1 << 20;
    const std::string zeros(kChunkBytes, '\0');
    while (size < size_bytes) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kChunkBytes, size_bytes - size));
      RETURN_IF_ERROR(WriteAt(size, std::string_view(zeros).substr(0, n)));
      size += n;
    }
    return Status::Ok();
  }

  Result<uint64_t> Size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return IoError("stat", path(), errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  const int fd_;
};

class PosixEnv final : public Env {
 public:
  Result<std::unique_ptr<File>> Open(const std::string& path, bool create) override {
    const int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0);
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return IoError(create ? "create" : "open", path, errno);
    return std::unique_ptr<File>(std::make_unique<PosixFile>(path, fd));
  }

  Status CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return IoError("mkdir", path, errno);
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return IoError("opendir", path, errno);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* ent = ::readdir(dir)) {
      std::string name = ent->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    const int err = errno;
    ::closedir(dir);
    if (err != 0) return IoError("readdir", path, err);
    return names;
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return IoError("rename", from + " to " + to, errno);
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return IoError("remove", path, errno);
    return Status::Ok();
  }

  Status SyncDir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return IoError("open directory", path, errno);
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    if (rc != 0) return IoError("fsync directory", path, err);
    return Status::Ok();
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) return IoError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }
};

}  // namespace

Env* Env::Default() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

}  // namespace ballot::wal
