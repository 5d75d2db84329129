// The member's metrics (docs/server.md, "Metrics and health"), with etcd's names where etcd has
// the metric.
//
// Two kinds: instruments the node and the member update on their hot paths (ServerMetrics,
// handed to them in NodeOptions), and families read from the member when /metrics is scraped
// (AddMemberMetrics). The consensus engine knows nothing of either.
#pragma once

#include <string>

#include "metrics/http_server.h"
#include "metrics/metrics.h"

namespace ballot::server {

class Member;

// Borrowed from a metrics::Registry that outlives the node; a null pointer is "not measured".
struct ServerMetrics {
  metrics::Histogram* wal_fsync_seconds = nullptr;  // Every WAL fdatasync.
  metrics::Histogram* apply_seconds = nullptr;      // Every batch of committed entries applied.
  metrics::Counter* leader_changes = nullptr;       // A new (non-empty) leader seen.
  metrics::Counter* proposals_failed = nullptr;     // Refused, timed out or lost proposals.
  metrics::Gauge* proposals_pending = nullptr;      // Proposals waiting to be applied.
};

// Makes the hot-path instruments in `registry` (etcd_disk_wal_fsync_duration_seconds,
// etcd_server_leader_changes_seen_total, etcd_server_proposals_failed_total,
// etcd_server_proposals_pending, ballot_server_apply_duration_seconds).
ServerMetrics AddServerMetrics(metrics::Registry& registry);

// Adds the families read from `member` at scrape time: has_leader, is_leader, proposals
// committed and applied, watchers, leases, database size, and ballot_engine_info{engine=...}.
// `member` must outlive every Render of `registry` (stop the HTTP server before the member).
void AddMemberMetrics(metrics::Registry& registry, Member* member);

// etcd's /health: unhealthy without a leader ("RAFT NO LEADER"), when the member stopped on an
// error ("STOPPED: ..."), or when a linearizable read (etcd's QGET; serializable on a learner)
// fails ("QGET ERROR: ..."); that read waits at most the member's request timeout.
metrics::Health CheckHealth(Member* member);

}  // namespace ballot::server
