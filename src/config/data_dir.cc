#include "config/data_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <map>

#include "base/crc32c.h"
#include "config/identity.h"

namespace ballot::config {
namespace {

constexpr std::string_view kMagic = "ballot-data-dir";
constexpr size_t kIdentityBytesMax = 4096;

Status Errno(const std::string& what, const std::string& path) {
  return Status::Internal(what + " " + path + ": " + std::strerror(errno));
}

// Creates `path` and its missing parents with mode 0700 (etcd's MkdirAll with its private mode).
Status MakeDir(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return Errno("cannot create directory", prefix);
    }
    if (slash == std::string::npos) break;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Errno("cannot stat", path);
  if (!S_ISDIR(st.st_mode)) return Status::FailedPrecondition(path + " is not a directory");
  return Status::Ok();
}

Status SyncPath(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open", path);
  const int rc = ::fsync(fd);
  ::close(fd);
  return rc == 0 ? Status::Ok() : Errno("cannot fsync", path);
}

// True when the directory has an entry other than . and .. (a missing directory is empty).
Result<bool> HasEntries(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) {
    if (errno == ENOENT) return false;
    return Errno("cannot list", path);
  }
  bool found = false;
  while (dirent* entry = ::readdir(dir)) {
    const std::string_view name(entry->d_name);
    if (name != "." && name != "..") {
      found = true;
      break;
    }
  }
  ::closedir(dir);
  return found;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("cannot write", path);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

// Writes `data` to `path` atomically: a temporary file, fsync, rename, fsync of the directory.
Status WriteFileAtomically(const std::string& dir, const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot create", tmp);
  Status status = WriteAll(fd, data, tmp);
  if (status.ok() && ::fsync(fd) != 0) status = Errno("cannot fsync", tmp);
  ::close(fd);
  RETURN_IF_ERROR(status);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot rename to", path);
  return SyncPath(dir);
}

// Reads at most kIdentityBytesMax + 1 bytes; NotFound when the file does not exist.
Result<std::string> ReadSmallFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Errno("cannot open", path);
  }
  std::string out;
  char buf[1024];
  while (out.size() <= kIdentityBytesMax) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status status = Errno("cannot read", path);
      ::close(fd);
      return status;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Result<uint64_t> ParseHex(std::string_view text) {
  uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument("bad hex number \"" + std::string(text) + "\"");
  }
  return value;
}

std::string Describe(const DataDirIdentity& id) {
  return "cluster " + IdToHex(id.cluster_id) + ", member " + IdToHex(id.member_id) + " (" +
         id.name + "), engine " + std::string(EngineName(id.engine));
}

}  // namespace

std::string SerializeIdentity(const DataDirIdentity& identity) {
  std::string body = std::string(kMagic) + " " + std::to_string(identity.format_version) + "\n";
  body += "cluster-id " + IdToHex(identity.cluster_id) + "\n";
  body += "member-id " + IdToHex(identity.member_id) + "\n";
  body += "name " + identity.name + "\n";
  body += "engine " + std::string(EngineName(identity.engine)) + "\n";
  char crc[16];
  std::snprintf(crc, sizeof(crc), "%08x", crc32c::Value(body));
  return body + "crc32c " + crc + "\n";
}

Result<DataDirIdentity> ParseIdentity(std::string_view text, const std::string& path) {
  auto corrupt = [&](const std::string& why) {
    return Status::DataLoss("identity file " + path + " is corrupt: " + why);
  };
  if (text.size() > kIdentityBytesMax) return corrupt("larger than 4096 bytes");
  const size_t crc_at = text.rfind("crc32c ");
  if (crc_at == std::string_view::npos || (crc_at != 0 && text[crc_at - 1] != '\n')) {
    return corrupt("no checksum line");
  }
  std::string_view crc_text = text.substr(crc_at + 7);
  if (crc_text.empty() || crc_text.back() != '\n') return corrupt("truncated checksum line");
  crc_text.remove_suffix(1);
  Result<uint64_t> stored = ParseHex(crc_text);
  const std::string_view body = text.substr(0, crc_at);
  if (!stored.ok() || crc_text.size() != 8) return corrupt("malformed checksum");
  if (*stored != crc32c::Value(body)) return corrupt("checksum mismatch");

  std::map<std::string, std::string, std::less<>> fields;
  size_t start = 0;
  std::string first_key;
  while (start < body.size()) {
    const size_t end = body.find('\n', start);
    const std::string_view line = body.substr(start, end - start);
    start = end + 1;
    const size_t space = line.find(' ');
    if (space == std::string_view::npos)
      return corrupt("malformed line \"" + std::string(line) + "\"");
    const std::string key(line.substr(0, space));
    if (first_key.empty()) first_key = key;
    if (!fields.emplace(key, std::string(line.substr(space + 1))).second) {
      return corrupt("key " + key + " appears twice");
    }
  }
  if (first_key != kMagic) return corrupt("not a Ballot identity file");
  for (const char* key : {"cluster-id", "member-id", "name", "engine"}) {
    if (fields.count(key) == 0) return corrupt(std::string("missing ") + key);
  }
  DataDirIdentity identity;
  const std::string& version = fields[std::string(kMagic)];
  if (version != std::to_string(kDataDirFormatVersion)) {
    return Status::FailedPrecondition("identity file " + path + " has format version " + version +
                                      "; this Ballot reads version " +
                                      std::to_string(kDataDirFormatVersion));
  }
  Result<uint64_t> cluster_id = ParseHex(fields["cluster-id"]);
  Result<uint64_t> member_id = ParseHex(fields["member-id"]);
  if (!cluster_id.ok()) return corrupt("cluster-id: " + cluster_id.status().message());
  if (!member_id.ok()) return corrupt("member-id: " + member_id.status().message());
  identity.cluster_id = *cluster_id;
  identity.member_id = *member_id;
  identity.name = fields["name"];
  if (fields["engine"] == "raft") {
    identity.engine = EngineKind::kRaft;
  } else if (fields["engine"] == "multipaxos") {
    identity.engine = EngineKind::kMultiPaxos;
  } else {
    return corrupt("unknown engine \"" + fields["engine"] + "\"");
  }
  return identity;
}

Result<std::unique_ptr<DataDir>> DataDir::Open(const std::string& path,
                                               const DataDirIdentity& expected) {
  if (path.empty()) return Status::InvalidArgument("--data-dir must not be empty");
  RETURN_IF_ERROR(MakeDir(path));
  const std::string lock_path = path + "/LOCK";
  const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("cannot open", lock_path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int lock_errno = errno;
    char holder[32] = {0};
    const ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
    ::close(fd);
    if (lock_errno == EWOULDBLOCK) {
      std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return Status::FailedPrecondition("data directory " + path + " is in use by another process" +
                                        (pid.empty() ? "" : " (pid " + pid + ")") + ": " +
                                        lock_path + " is locked");
    }
    errno = lock_errno;
    return Errno("cannot lock", lock_path);
  }
  // From here the DataDir owns the lock: an early return releases it.
  std::unique_ptr<DataDir> dir(new DataDir(path, fd));
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0) return Errno("cannot truncate", lock_path);
  RETURN_IF_ERROR(WriteAll(fd, pid, lock_path));
  RETURN_IF_ERROR(dir->Prepare(expected));
  return dir;
}

Status DataDir::Prepare(const DataDirIdentity& expected) {
  RETURN_IF_ERROR(MakeDir(member_dir()));
  Result<std::string> text = ReadSmallFile(identity_path());
  if (!text.ok() && !text.status().IsNotFound()) return text.status();
  if (!text.ok()) {
    // First start. Anything already in member/ was not written by Ballot after an identity.
    for (const std::string& sub : {wal_dir(), db_dir(), snap_dir()}) {
      ASSIGN_OR_RETURN(const bool used, HasEntries(sub));
      if (used) {
        return Status::FailedPrecondition("data directory " + path_ + " holds data in " + sub +
                                          " but no identity file " + identity_path() +
                                          "; it was not created by this version of Ballot");
      }
    }
    if (expected.cluster_id == 0 || expected.member_id == 0 || expected.name.empty()) {
      return Status::InvalidArgument("a new data directory needs a cluster id, member id and name");
    }
    RETURN_IF_ERROR(
        WriteFileAtomically(member_dir(), identity_path(), SerializeIdentity(expected)));
    identity_ = expected;
    created_ = true;
  } else {
    ASSIGN_OR_RETURN(identity_, ParseIdentity(*text, identity_path()));
    const bool same_cluster =
        expected.cluster_id == 0 || expected.cluster_id == identity_.cluster_id;
    const bool same_member = expected.member_id == identity_.member_id;
    const bool same_name = expected.name.empty() || expected.name == identity_.name;
    const std::string both = ": the directory belongs to " + Describe(identity_) +
                             ", the flags describe " + Describe(expected);
    if (!same_cluster) {
      return Status::FailedPrecondition("data directory " + path_ + " belongs to another cluster" +
                                        both);
    }
    if (!same_member || !same_name) {
      return Status::FailedPrecondition("data directory " + path_ + " belongs to another member" +
                                        both);
    }
    if (expected.engine != identity_.engine) {
      return Status::FailedPrecondition(
          "data directory " + path_ + " was created with --engine " +
          std::string(EngineName(identity_.engine)) + " but --engine is " +
          std::string(EngineName(expected.engine)) +
          "; the engine is fixed when a member's data directory is created");
    }
  }
  for (const std::string& sub : {wal_dir(), db_dir(), snap_dir()}) RETURN_IF_ERROR(MakeDir(sub));
  return Status::Ok();
}

DataDir::~DataDir() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

}  // namespace ballot::config
