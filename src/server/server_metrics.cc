#include "server/server_metrics.h"

#include <fmt/format.h>

#include "server/member.h"

namespace ballot::server {

namespace {

using metrics::Sample;
using metrics::Type;

std::vector<Sample> One(double v) { return {Sample{{}, v}}; }

}  // namespace

ServerMetrics AddServerMetrics(metrics::Registry& registry) {
  ServerMetrics m;
  // etcd's buckets: 1 ms to 8.192 s, doubling.
  m.wal_fsync_seconds = &registry.AddHistogram("etcd_disk_wal_fsync_duration_seconds",
                                               "The latency distributions of fsync called by WAL.",
                                               metrics::ExponentialBuckets(0.001, 2, 14));
  // etcd 3.5's etcd_server_apply_duration_seconds buckets (0.1 ms to 52 s); one observation per
  // batch of committed entries (one Ready), not per request as in etcd.
  m.apply_seconds = &registry.AddHistogram(
      "ballot_server_apply_duration_seconds",
      "The latency distributions of applying one batch of committed entries to the state machine.",
      metrics::ExponentialBuckets(0.0001, 2, 20));
  m.leader_changes = &registry.AddCounter("etcd_server_leader_changes_seen_total",
                                          "The number of leader changes seen.");
  m.proposals_failed = &registry.AddCounter("etcd_server_proposals_failed_total",
                                            "The total number of failed proposals seen.");
  m.proposals_pending = &registry.AddGauge("etcd_server_proposals_pending",
                                           "The current number of pending proposals to commit.");
  return m;
}

void AddMemberMetrics(metrics::Registry& registry, Member* member) {
  registry.AddCallback(
      "etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
      Type::kGauge,
      [member] { return One(member->node_status().soft.leader != consensus::kNoNode); });
  registry.AddCallback(
      "etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
      Type::kGauge,
      [member] { return One(member->node_status().soft.role == consensus::Role::kLeader); });
  // etcd sets both from the raft log's commit and applied indexes (gauges despite `_total`).
  registry.AddCallback(
      "etcd_server_proposals_committed_total", "The total number of consensus proposals committed.",
      Type::kGauge, [member] { return One(static_cast<double>(member->node_status().committed)); });
  registry.AddCallback(
      "etcd_server_proposals_applied_total", "The total number of consensus proposals applied.",
      Type::kGauge, [member] { return One(static_cast<double>(member->node_status().applied)); });
  registry.AddCallback(
      "etcd_debugging_mvcc_watcher_total", "Total number of watchers.", Type::kGauge,
      [member] { return One(static_cast<double>(member->watch_hub()->watcher_count())); });
  registry.AddCallback("ballot_lease_active", "The number of leases this member's lessor holds.",
                       Type::kGauge, [member] {
                         auto leases = member->LeaseLeases();
                         return leases.ok() ? One(leases->leases_size()) : std::vector<Sample>{};
                       });
  // The size the Status RPC reports (the RocksDB directory). etcd has the two names.
  auto db_size = [member] {
    auto status = member->MaintenanceStatus();
    return status.ok() ? One(static_cast<double>(status->dbsize())) : std::vector<Sample>{};
  };
  const char* db_help = "Total size of the underlying database physically allocated in bytes.";
  registry.AddCallback("etcd_mvcc_db_total_size_in_bytes", db_help, Type::kGauge, db_size);
  registry.AddCallback("etcd_debugging_mvcc_db_total_size_in_bytes", db_help, Type::kGauge,
                       db_size);
  registry.AddCallback(
      "etcd_server_id",
      "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
      Type::kGauge, [member] {
        return std::vector<Sample>{{{{"server_id", fmt::format("{:x}", member->id())}}, 1}};
      });
  const std::string engine(consensus::EngineKindName(member->options().node.engine));
  registry.AddCallback("ballot_engine_info",
                       "The replication engine of this member. 1 for 'engine' label.", Type::kGauge,
                       [engine] {
                         return std::vector<Sample>{{{{"engine", engine}}, 1}};
                       });
}

metrics::Health CheckHealth(Member* member) {
  const NodeStatus st = member->node_status();
  if (!st.fatal.ok()) return {false, "STOPPED: " + st.fatal.message()};
  if (st.soft.leader == consensus::kNoNode) return {false, "RAFT NO LEADER"};
  etcdserverpb::RangeRequest request;
  request.set_key("health");
  request.set_keys_only(true);
  // A learner serves only serializable reads; its health is its own store answering.
  request.set_serializable(st.conf.learners.count(member->id()) > 0);
  auto r = member->Range(request);
  if (!r.ok()) return {false, "QGET ERROR: " + r.status().message()};
  return {};
}

}  // namespace ballot::server
