// Restoring a `snapshot save` file into the data directory of a member of a new cluster (etcdctl
// snapshot restore's meaning; docs/server.md, "Snapshot restore").
//
// The file is Maintenance.Snapshot's image: the store's snapshot stream (docs/mvcc.md), zero
// padding to a multiple of 512 bytes, then the SHA-256 of everything before it. The new data
// directory holds: the identity of the new cluster (ids computed from --initial-cluster and the
// token as etcd computes them); the store restored from the stream, with the membership records
// of the old cluster removed (members come from --initial-cluster) and its applied index moved one
// past the image's; a snapshot file at that index; and a WAL that starts there (a snapshot marker
// with the new voters, hard state commit = that index). `ballot serve --initial-cluster-state new`
// with the same flags then boots the members as a new cluster holding the data.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/serve_config.h"

namespace ballot::server {

struct RestoreOptions {
  std::string data_dir;
  std::string name;                                    // This member, one of `initial_cluster`.
  std::vector<config::ClusterMember> initial_cluster;  // The new cluster.
  std::string initial_cluster_token = "etcd-cluster";
  // When not empty, must equal this member's URLs in initial_cluster (etcdctl's check).
  std::vector<config::Url> initial_advertise_peer_urls;
  config::EngineKind engine = config::EngineKind::kRaft;
  // Accept a file without the SHA-256 trailer (or with a wrong one); the stream's own checksums
  // are still checked.
  bool skip_hash_check = false;
};

// The store stream inside a `snapshot save` image, after checking its SHA-256 trailer (unless
// `skip_hash_check`), its padding and every record of the stream. DataLoss naming what is wrong.
Result<std::string> ExtractSnapshotStream(std::string_view image, bool skip_hash_check);

// What a restore produced.
struct RestoreReport {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  uint64_t applied_index = 0;  // Where the new WAL starts.
  int64_t revision = 0;        // The store's current revision.
};

// Verifies `image`, then writes options.data_dir. Refuses (FailedPrecondition) an existing
// data_dir that is not an empty directory. Builds everything in a sibling temporary directory and
// renames it into place at the end, so an error leaves nothing behind.
Result<RestoreReport> RestoreSnapshot(std::string_view image, const RestoreOptions& options);

}  // namespace ballot::server
