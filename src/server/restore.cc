#include "server/restore.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "config/data_dir.h"
#include "config/identity.h"
#include "consensus/engine.h"
#include "mvcc/snapshot.h"
#include "mvcc/store.h"
#include "server/sha256.h"
#include "server/snapshot_file.h"
#include "wal/wal.h"

namespace ballot::server {

namespace {

constexpr size_t kSha256Bytes = 32;
constexpr size_t kImageAlignBytes = 512;  // Maintenance.Snapshot pads the stream to this.
constexpr size_t kRecordHeaderBytes = 9;  // masked crc32c, length, type (docs/mvcc.md).
constexpr uint8_t kTrailerRecordType = 3;
// The membership of the old cluster in the meta namespace (server/member.cc).
constexpr std::string_view kMetaPrefixesReplaced[] = {"member/", "removed/"};

uint32_t LoadLe32(std::string_view bytes, size_t offset) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i)
    v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[offset + i])) << (8 * i);
  return v;
}

// Where the store stream in `bytes` ends: just after its trailer record. The records themselves
// are checked afterwards by mvcc::VerifySnapshot.
Result<size_t> StreamEnd(std::string_view bytes) {
  size_t offset = 0;
  while (offset + kRecordHeaderBytes <= bytes.size()) {
    const uint64_t length = LoadLe32(bytes, offset + 4);
    if (length > mvcc::kSnapshotRecordBytesMax) {
      return Status::DataLoss("snapshot: record length " + std::to_string(length) +
                              " over the bound at byte " + std::to_string(offset));
    }
    const uint8_t type = static_cast<uint8_t>(bytes[offset + 8]);
    const size_t end = offset + kRecordHeaderBytes + length;
    if (end > bytes.size()) break;
    if (type == kTrailerRecordType) return end;
    offset = end;
  }
  return Status::DataLoss("snapshot: the file ends before the snapshot's trailer (truncated at " +
                          std::to_string(bytes.size()) + " bytes?)");
}

std::string Hex(uint64_t id) { return config::IdToHex(id); }

Status FromErrorCode(const std::error_code& ec, const std::string& what) {
  return Status::Internal(what + ": " + ec.message());
}

// Refuses anything at `path` but an empty directory.
Status CheckTarget(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::Ok();
  if (!std::filesystem::is_directory(path, ec)) {
    return Status::FailedPrecondition("data dir " + path + " exists and is not a directory");
  }
  if (!std::filesystem::is_empty(path, ec)) {
    return Status::FailedPrecondition("data dir " + path +
                                      " exists and is not empty; restore into a new directory");
  }
  return ec ? FromErrorCode(ec, "checking " + path) : Status::Ok();
}

// Restores the store into `db_dir`, replaces the old membership and moves the applied index one
// past the image's; returns the new store's snapshot stream and its applied position.
struct RestoredStore {
  mvcc::LogPosition applied;
  int64_t revision = 0;
  std::string stream;
};

Result<RestoredStore> RestoreStore(const std::string& db_dir, std::string_view stream) {
  mvcc::StoreOptions store_options;
  store_options.dir = db_dir;
  ASSIGN_OR_RETURN(auto store, mvcc::Store::Open(std::move(store_options)));
  ASSIGN_OR_RETURN(auto installer, store->NewSnapshotInstaller());
  RETURN_IF_ERROR(installer->Append(stream));
  ASSIGN_OR_RETURN(mvcc::SnapshotInfo info, installer->Finish());
  installer.reset();
  // The new cluster's log starts right after the image: this entry removes the old membership.
  const mvcc::LogPosition at{info.applied.index + 1, std::max<uint64_t>(1, info.applied.term)};
  mvcc::ApplyBatch batch = store->NewBatch();
  batch.Skip(at);
  for (std::string_view prefix : kMetaPrefixesReplaced) {
    ASSIGN_OR_RETURN(auto records, store->ScanMeta(prefix));
    for (const auto& [key, value] : records) batch.DeleteMeta(at, key);
  }
  RETURN_IF_ERROR(batch.Commit());
  RETURN_IF_ERROR(store->MakeDurable().status());
  RestoredStore out;
  out.applied = store->Applied();
  out.revision = store->CurrentRevision();
  ASSIGN_OR_RETURN(auto writer, store->NewSnapshotWriter(""));
  ASSIGN_OR_RETURN(out.stream, writer->ReadAll());
  return out;
}

Status WriteNewLog(const config::DataDir& dir, const config::DataDirIdentity& identity,
                   const std::set<consensus::NodeId>& voters, const RestoredStore& restored) {
  wal::Env* env = wal::Env::Default();
  wal::Identity wal_identity;
  wal_identity.cluster_id = identity.cluster_id;
  wal_identity.member_id = identity.member_id;
  wal_identity.engine = std::string(consensus::EngineKindName(
      identity.engine == config::EngineKind::kRaft ? consensus::EngineKind::kRaft
                                                   : consensus::EngineKind::kMultiPaxos));
  ASSIGN_OR_RETURN(auto wal, wal::Wal::Open(env, dir.wal_dir(), wal::WalOptions{}, wal_identity));
  // As a member that received this snapshot from a leader: the file, then the WAL's marker.
  RETURN_IF_ERROR(WriteSnapshotFile(env, dir.snap_dir(), restored.applied.index, restored.stream));
  consensus::SnapshotMeta meta;
  meta.index = restored.applied.index;
  meta.term = restored.applied.term;
  meta.conf.voters = voters;
  RETURN_IF_ERROR(wal->SaveSnapshot(meta));
  consensus::HardState hs;
  hs.term = restored.applied.term;
  hs.commit = restored.applied.index;
  return wal->Save(&hs, {}, /*sync=*/true);
}

}  // namespace

Result<std::string> ExtractSnapshotStream(std::string_view image, bool skip_hash_check) {
  std::string_view body = image;
  if (!skip_hash_check) {
    if (image.size() < kSha256Bytes || (image.size() - kSha256Bytes) % kImageAlignBytes != 0) {
      return Status::DataLoss("snapshot: " + std::to_string(image.size()) +
                              " bytes is not a snapshot image (a multiple of 512 bytes and a "
                              "32-byte SHA-256); truncated? (--skip-hash-check skips this check)");
    }
    body = image.substr(0, image.size() - kSha256Bytes);
    const std::array<uint8_t, kSha256Bytes> sum = Sha256(body);
    if (std::memcmp(sum.data(), image.data() + body.size(), kSha256Bytes) != 0) {
      return Status::DataLoss("snapshot: SHA-256 mismatch: the file is corrupt");
    }
  }
  ASSIGN_OR_RETURN(size_t end, StreamEnd(body));
  if (!skip_hash_check) {
    const std::string_view padding = body.substr(end);
    if (padding.size() >= kImageAlignBytes ||
        padding.find_first_not_of('\0') != std::string_view::npos) {
      return Status::DataLoss("snapshot: unexpected bytes after the snapshot's trailer");
    }
  }
  const std::string_view stream = body.substr(0, end);
  RETURN_IF_ERROR(mvcc::VerifySnapshot(stream).status());
  return std::string(stream);
}

Result<RestoreReport> RestoreSnapshot(std::string_view image, const RestoreOptions& options) {
  if (options.data_dir.empty()) return Status::InvalidArgument("--data-dir is required");
  ASSIGN_OR_RETURN(std::string stream, ExtractSnapshotStream(image, options.skip_hash_check));

  // The new cluster's ids, as etcd computes them (config/identity.h).
  RestoreReport report;
  std::vector<uint64_t> ids;
  std::set<consensus::NodeId> voters;
  for (const config::ClusterMember& m : options.initial_cluster) {
    const uint64_t id = config::ComputeMemberId(m.peer_urls, options.initial_cluster_token);
    if (voters.count(id)) {
      return Status::InvalidArgument("--initial-cluster: member " + m.name +
                                     " has the same id as another member: " + Hex(id));
    }
    ids.push_back(id);
    voters.insert(id);
    if (m.name == options.name) {
      report.member_id = id;
      if (!options.initial_advertise_peer_urls.empty()) {
        auto sorted = [](std::vector<config::Url> urls) {
          std::vector<std::string> out;
          for (const auto& u : urls) out.push_back(u.ToString());
          std::sort(out.begin(), out.end());
          return out;
        };
        if (sorted(m.peer_urls) != sorted(options.initial_advertise_peer_urls)) {
          return Status::InvalidArgument("--initial-cluster has " + config::JoinUrls(m.peer_urls) +
                                         " for " + m.name +
                                         " but --initial-advertise-peer-urls is " +
                                         config::JoinUrls(options.initial_advertise_peer_urls));
        }
      }
    }
  }
  if (report.member_id == 0) {
    return Status::InvalidArgument("--initial-cluster: local name \"" + options.name +
                                   "\" not found");
  }
  report.cluster_id = config::ComputeClusterId(ids);

  RETURN_IF_ERROR(CheckTarget(options.data_dir));
  std::string target = options.data_dir;
  while (target.size() > 1 && target.back() == '/') target.pop_back();
  const std::string tmp = target + ".restore-" + std::to_string(::getpid());
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  auto build = [&]() -> Status {
    config::DataDirIdentity identity;
    identity.cluster_id = report.cluster_id;
    identity.member_id = report.member_id;
    identity.name = options.name;
    identity.engine = options.engine;
    ASSIGN_OR_RETURN(auto dir, config::DataDir::Open(tmp, identity));
    ASSIGN_OR_RETURN(RestoredStore restored, RestoreStore(dir->db_dir(), stream));
    RETURN_IF_ERROR(WriteNewLog(*dir, identity, voters, restored));
    report.applied_index = restored.applied.index;
    report.revision = restored.revision;
    return Status::Ok();  // The DataDir (its lock) is released here, before the rename.
  };
  Status built = build();
  if (built.ok()) {
    // An empty target directory is replaced (CheckTarget allowed only that).
    std::filesystem::remove(target, ec);
    std::filesystem::rename(tmp, target, ec);
    if (ec) built = FromErrorCode(ec, "renaming " + tmp + " to " + target);
  }
  if (!built.ok()) {
    std::filesystem::remove_all(tmp, ec);
    return built;
  }
  return report;
}

}  // namespace ballot::server
