#include "compare.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "cluster.h"

namespace ballot::sim {
namespace {

constexpr int64_t kTickMs = 10;
constexpr int kClients = 8;

ClusterOptions Steady(consensus::EngineKind engine, int members, uint64_t seed, double loss) {
  ClusterOptions o;
  o.engine = engine;
  o.seed = seed;
  o.members = members;
  o.tick_ms = kTickMs;
  o.network.loss = loss;
  o.network.duplicate = 0;
  o.network.delay_min_ms = 1;
  o.network.delay_max_ms = 3;
  o.disk_sync_ms_min = 0;
  o.disk_sync_ms_max = 2;
  o.snapshot_every_entries = 1000;
  o.max_inflight_messages = 16;
  return o;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

NodeId WaitForLeader(Cluster& c, int64_t max_ms) {
  c.RunUntil([&] { return c.Leader() != consensus::kNoNode; }, max_ms);
  return c.Leader();
}

// Closed-loop writers: each of kClients puts a new value as soon as its last one returned, to the
// member that leads (or, with none, waits a millisecond).
void DriveWriters(Cluster& c, int64_t until_ms, uint64_t* next_value) {
  while (c.now_ms() < until_ms) {
    const NodeId leader = c.Leader();
    for (int client = 0; client < kClients && leader != consensus::kNoNode; ++client) {
      if (c.ClientBusy(client)) continue;
      lincheck::Operation op;
      op.kind = lincheck::OpKind::kPut;
      op.key = "k" + std::to_string(client % 4);
      op.value = "v" + std::to_string((*next_value)++);
      c.StartClientOp(client, op, leader, /*timeout_ms=*/300);
    }
    c.Step();
  }
}

struct SteadyRun {
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t committed = 0;
  uint64_t writes_ok = 0;
  std::vector<double> latencies_ticks;
};

SteadyRun RunSteady(consensus::EngineKind engine, int members, uint64_t seed, double loss,
                    int64_t run_ms) {
  Cluster c(Steady(engine, members, seed, loss));
  SteadyRun out;
  if (WaitForLeader(c, 5000) == consensus::kNoNode) return out;
  c.RunFor(200);  // Let the new leader's first entries settle.
  const auto before = c.network().stats();
  const uint64_t committed_before = c.committed_entries();
  const size_t history_before = c.history().size();
  uint64_t next_value = 1;
  DriveWriters(c, c.now_ms() + run_ms, &next_value);
  const auto after = c.network().stats();
  out.messages = after.sent - before.sent;
  out.bytes = after.bytes - before.bytes;
  out.committed = c.committed_entries() - committed_before;
  for (size_t i = history_before; i < c.history().size(); ++i) {
    const auto& op = c.history()[i];
    if (op.status != lincheck::OpStatus::kOk) continue;
    ++out.writes_ok;
    out.latencies_ticks.push_back(static_cast<double>(op.ret - op.call) / kTickMs);
  }
  return out;
}

// Ticks from crashing the leader until a write proposed to its successor is applied.
double RunRecovery(consensus::EngineKind engine, int members, uint64_t seed) {
  Cluster c(Steady(engine, members, seed, 0));
  const NodeId leader = WaitForLeader(c, 5000);
  if (leader == consensus::kNoNode) return -1;
  uint64_t next_value = 1;
  DriveWriters(c, c.now_ms() + 500, &next_value);
  c.Crash(leader);
  const int64_t crashed_at = c.now_ms();
  const uint64_t marker = 1;
  const bool done = c.RunUntil(
      [&] {
        const NodeId now_leader = c.Leader();
        if (now_leader != consensus::kNoNode && now_leader != leader &&
            !c.MarkerIndex(marker).has_value()) {
          (void)c.ProposeMarker(now_leader, marker);
        }
        return c.MarkerIndex(marker).has_value();
      },
      10000);
  if (!done) return -1;
  return static_cast<double>(c.now_ms() - crashed_at) / kTickMs;
}

}  // namespace

EngineFigures Measure(consensus::EngineKind engine, const CompareConfig& config) {
  EngineFigures f;
  uint64_t messages = 0, bytes = 0, committed = 0, ok_calm = 0, ok5 = 0, ok20 = 0;
  std::vector<double> latencies;
  for (uint64_t seed = 1; seed <= config.seeds; ++seed) {
    SteadyRun calm = RunSteady(engine, config.members, seed, 0, config.run_ms);
    messages += calm.messages;
    bytes += calm.bytes;
    committed += calm.committed;
    ok_calm += calm.writes_ok;
    latencies.insert(latencies.end(), calm.latencies_ticks.begin(), calm.latencies_ticks.end());
    ok5 += RunSteady(engine, config.members, seed, 0.05, config.run_ms).writes_ok;
    ok20 += RunSteady(engine, config.members, seed, 0.20, config.run_ms).writes_ok;
  }
  std::vector<double> recoveries;
  for (uint64_t seed = 1; seed <= 4 * config.seeds; ++seed) {
    const double r = RunRecovery(engine, config.members, seed);
    if (r >= 0) recoveries.push_back(r);
  }
  const double seconds = static_cast<double>(config.seeds * config.run_ms) / 1000.0;
  f.messages_per_entry = committed == 0 ? 0 : static_cast<double>(messages) / committed;
  f.bytes_per_entry = committed == 0 ? 0 : static_cast<double>(bytes) / committed;
  f.commit_ticks_median = Percentile(latencies, 0.5);
  f.commit_ticks_p99 = Percentile(latencies, 0.99);
  f.recovery_ticks_median = Percentile(recoveries, 0.5);
  f.recovery_ticks_p99 = Percentile(recoveries, 0.99);
  f.writes_per_second_calm = static_cast<double>(ok_calm) / seconds;
  f.writes_per_second_loss5 = static_cast<double>(ok5) / seconds;
  f.writes_per_second_loss20 = static_cast<double>(ok20) / seconds;
  return f;
}

std::string CompareTable(const CompareConfig& config) {
  const EngineFigures raft = Measure(consensus::EngineKind::kRaft, config);
  const EngineFigures paxos = Measure(consensus::EngineKind::kMultiPaxos, config);
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line),
                "members=%d seeds=%lu run=%ldms tick=%ldms clients=%d (closed loop, puts)\n",
                config.members, static_cast<unsigned long>(config.seeds),
                static_cast<long>(config.run_ms), static_cast<long>(kTickMs), kClients);
  out += line;
  std::snprintf(line, sizeof(line), "| %-44s | %12s | %12s |\n", "figure", "raft", "multipaxos");
  out += line;
  out +=
      "|" + std::string(46, '-') + "|" + std::string(14, '-') + "|" + std::string(14, '-') + "|\n";
  auto row = [&](const char* name, double a, double b, const char* fmt) {
    char va[32], vb[32];
    std::snprintf(va, sizeof(va), fmt, a);
    std::snprintf(vb, sizeof(vb), fmt, b);
    std::snprintf(line, sizeof(line), "| %-44s | %12s | %12s |\n", name, va, vb);
    out += line;
  };
  row("messages per committed entry", raft.messages_per_entry, paxos.messages_per_entry, "%.2f");
  row("bytes per committed entry", raft.bytes_per_entry, paxos.bytes_per_entry, "%.0f");
  row("commit latency, median (ticks)", raft.commit_ticks_median, paxos.commit_ticks_median,
      "%.2f");
  row("commit latency, p99 (ticks)", raft.commit_ticks_p99, paxos.commit_ticks_p99, "%.2f");
  row("recovery after leader crash, median (ticks)", raft.recovery_ticks_median,
      paxos.recovery_ticks_median, "%.1f");
  row("recovery after leader crash, p99 (ticks)", raft.recovery_ticks_p99, paxos.recovery_ticks_p99,
      "%.1f");
  row("throughput, no loss (writes/s)", raft.writes_per_second_calm, paxos.writes_per_second_calm,
      "%.0f");
  row("throughput, 5% loss (writes/s)", raft.writes_per_second_loss5, paxos.writes_per_second_loss5,
      "%.0f");
  row("throughput, 20% loss (writes/s)", raft.writes_per_second_loss20,
      paxos.writes_per_second_loss20, "%.0f");
  return out;
}

}  // namespace ballot::sim
