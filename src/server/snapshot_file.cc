#include "server/snapshot_file.h"

#include <cinttypes>
#include <cstdio>
#include <string_view>

#include "base/crc32c.h"

namespace ballot::server {

namespace {

constexpr size_t kHeaderBytes = 4;
constexpr std::string_view kSuffix = ".snap";

constexpr std::string_view kPartSuffix = ".part";

std::string EncodeHeaderOfCrc(uint32_t crc_of_data) {
  const uint32_t crc = crc32c::Mask(crc_of_data);
  std::string header(kHeaderBytes, '\0');
  for (size_t i = 0; i < kHeaderBytes; ++i) header[i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  return header;
}

std::string EncodeHeader(std::string_view data) { return EncodeHeaderOfCrc(crc32c::Value(data)); }

// Writes the header and then everything `next` hands out to `path`, and fdatasyncs it.
Status WriteImage(wal::Env* env, const std::string& path, const SnapshotSource& next) {
  ASSIGN_OR_RETURN(auto file, env->Open(path, /*create=*/true));
  uint64_t offset = kHeaderBytes;
  uint32_t crc = 0;
  std::string chunk;
  while (true) {
    ASSIGN_OR_RETURN(bool more, next(&chunk));
    if (!more) break;
    RETURN_IF_ERROR(file->WriteAt(offset, chunk));
    crc = crc32c::Extend(crc, chunk.data(), chunk.size());
    offset += chunk.size();
  }
  RETURN_IF_ERROR(file->WriteAt(0, EncodeHeaderOfCrc(crc)));
  return file->Sync();
}

}  // namespace

std::string SnapshotFileName(consensus::Index index) {
  char name[32];
  std::snprintf(name, sizeof(name), "%016" PRIx64 ".snap", index);
  return name;
}

Status WriteSnapshotFile(wal::Env* env, const std::string& dir, consensus::Index index,
                         const std::string& data) {
  RETURN_IF_ERROR(env->CreateDir(dir));
  const std::string path = dir + "/" + SnapshotFileName(index);
  const std::string tmp = path + ".tmp";
  (void)env->Remove(tmp);  // A leftover from a crash; absent is fine.
  {
    ASSIGN_OR_RETURN(auto file, env->Open(tmp, /*create=*/true));
    RETURN_IF_ERROR(file->WriteAt(0, EncodeHeader(data)));
    RETURN_IF_ERROR(file->WriteAt(kHeaderBytes, data));
    RETURN_IF_ERROR(file->Sync());
  }
  RETURN_IF_ERROR(env->Rename(tmp, path));
  return env->SyncDir(dir);
}

Status WriteSnapshotPart(wal::Env* env, const std::string& dir, consensus::Index index,
                         const SnapshotSource& next) {
  RETURN_IF_ERROR(env->CreateDir(dir));
  ASSIGN_OR_RETURN(auto names, env->ListDir(dir));
  for (const std::string& name : names) {
    if (name.ends_with(kPartSuffix)) RETURN_IF_ERROR(env->Remove(dir + "/" + name));
  }
  return WriteImage(env, dir + "/" + SnapshotFileName(index) + std::string(kPartSuffix), next);
}

Status PublishSnapshotPart(wal::Env* env, const std::string& dir, consensus::Index index) {
  const std::string path = dir + "/" + SnapshotFileName(index);
  RETURN_IF_ERROR(env->Rename(path + std::string(kPartSuffix), path));
  return env->SyncDir(dir);
}

Result<std::string> ReadSnapshotFile(wal::Env* env, const std::string& dir,
                                     consensus::Index index) {
  const std::string path = dir + "/" + SnapshotFileName(index);
  ASSIGN_OR_RETURN(std::string content, env->ReadFile(path));
  if (content.size() < kHeaderBytes) {
    return Status::DataLoss(path + ": snapshot file shorter than its header");
  }
  if (std::string_view(content).substr(0, kHeaderBytes) !=
      EncodeHeader(std::string_view(content).substr(kHeaderBytes))) {
    return Status::DataLoss(path + ": snapshot file checksum mismatch");
  }
  content.erase(0, kHeaderBytes);  // In place: a snapshot may be hundreds of MiB.
  return content;
}

Status RemoveSnapshotFilesBefore(wal::Env* env, const std::string& dir,
                                 consensus::Index keep_from_index) {
  ASSIGN_OR_RETURN(auto names, env->ListDir(dir));
  const std::string keep_name = SnapshotFileName(keep_from_index);
  for (const std::string& name : names) {
    const bool tmp = name.size() > 4 && name.ends_with(".tmp");
    const bool snap = name.size() == keep_name.size() && name.ends_with(kSuffix);
    // Same-width hex names sort like their indexes.
    if (tmp || (snap && name < keep_name)) RETURN_IF_ERROR(env->Remove(dir + "/" + name));
  }
  return env->SyncDir(dir);
}

}  // namespace ballot::server
