// The settings of `ballot serve`, named and meaning as etcd 3.4/3.5's flags.
//
// Where settings come from, in etcd's order (etcdmain/config.go):
//   1. --config-file (or ETCD_CONFIG_FILE): a YAML file with etcd's keys. When a file is given,
//      every other flag and environment variable is ignored, as in etcd.
//   2. otherwise command-line flags, then environment variables for the flags not given:
//      ETCD_<FLAG> for etcd's flags (ETCD_INITIAL_CLUSTER), BALLOT_<FLAG> for Ballot's own
//      (BALLOT_ENGINE, BALLOT_LEASE_READS), then the defaults below.
// Resolve() then derives what etcd derives (data dir "<name>.etcd", the one-member initial
// cluster), parses every URL and checks the whole; errors name the flag and the value.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/url.h"

namespace CLI {
class App;
}

namespace ballot::config {

enum class EngineKind { kRaft, kMultiPaxos };
enum class ClusterState { kNew, kExisting };
enum class CompactionMode { kPeriodic, kRevision };

std::string_view EngineName(EngineKind engine);  // "raft", "multipaxos"

struct ClusterMember {
  std::string name;
  std::vector<Url> peer_urls;  // In the order given; etcd allows several per member.
};

inline constexpr uint64_t kDefaultSnapshotCount = 100000;
inline constexpr int64_t kElectionTimeoutMsMax = 50000;          // etcd's maxElectionMs.
inline constexpr uint64_t kDefaultMaxRequestBytes = 1572864;     // 1.5 MiB, etcd's default.
inline constexpr int64_t kDefaultQuotaBackendBytes = 2LL << 30;  // etcd's default for 0.
inline constexpr int64_t kQuotaBackendBytesMax = 8LL << 30;      // etcd's suggested maximum.
inline constexpr uint64_t kMaxRequestBytesMax = 64ULL << 20;     // Ballot's bound.

struct ServeConfig {
  // --- Settings, as given (flags bind here). Defaults are etcd's. ---
  std::string name = "default";
  std::string data_dir;  // "" means "<name>.etcd".
  std::string listen_client_urls = "http://localhost:2379";
  std::string advertise_client_urls = "http://localhost:2379";
  std::string listen_peer_urls = "http://localhost:2380";
  std::string initial_advertise_peer_urls = "http://localhost:2380";
  std::string initial_cluster;  // "" means "<name>=<each initial-advertise-peer-url>".
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "etcd-cluster";
  int64_t heartbeat_interval_ms = 100;
  int64_t election_timeout_ms = 1000;
  uint64_t snapshot_count = kDefaultSnapshotCount;  // 0 means the default.
  int64_t quota_backend_bytes = 0;                  // 0 means kDefaultQuotaBackendBytes.
  uint64_t max_request_bytes = kDefaultMaxRequestBytes;
  std::string auto_compaction_mode = "periodic";
  std::string auto_compaction_retention = "0";  // "0" disables auto compaction.
  std::string listen_metrics_urls;              // "" means no separate metrics listener.
  std::string log_level = "info";
  std::string config_file;
  // Ballot's own.
  std::string engine = "raft";
  bool lease_reads = false;
  // Lease reads: how much faster a follower's clock may run than the leader's; the leader lease
  // is the election timeout minus this.
  int64_t lease_reads_clock_drift_ms = 200;

  // Names of the settings given explicitly (flag, environment or file), e.g. "listen-client-urls".
  // Resolve() applies etcd's rules that depend on it.
  std::set<std::string> explicitly_set;

  // --- Filled by Resolve(); empty before. ---
  struct Parsed {
    std::vector<Url> listen_client_urls;
    std::vector<Url> advertise_client_urls;
    std::vector<Url> listen_peer_urls;
    std::vector<Url> initial_advertise_peer_urls;
    std::vector<Url> listen_metrics_urls;  // May be empty.
    std::vector<ClusterMember> initial_cluster;
    ClusterState initial_cluster_state = ClusterState::kNew;
    EngineKind engine = EngineKind::kRaft;
    CompactionMode auto_compaction_mode = CompactionMode::kPeriodic;
    // Periodic mode: the retention window (0: disabled). Revision mode: revisions to keep.
    int64_t auto_compaction_period_ms = 0;
    int64_t auto_compaction_revisions = 0;
    int64_t quota_backend_bytes = kDefaultQuotaBackendBytes;
    // The engine's clock: one tick per heartbeat interval, as in etcd.
    int election_ticks = 10;
    int lease_drift_ticks = 2;
  } parsed;
  bool resolved = false;
};

// Environment variables, injectable for tests. ProcessEnvironment() reads the real one.
using Environment = std::map<std::string, std::string>;
Environment ProcessEnvironment();

// Binds every setting to a flag of `app` (the `serve` subcommand) with help text. `config` must
// outlive parsing.
void AddServeFlags(CLI::App& app, ServeConfig& config);

// After `app` parsed into `config`: records which flags were given, then takes the settings from
// the config file if one is named (ignoring the other flags and `env`), or else applies `env` to
// the flags not given; then Resolve(). `warnings` (optional) receives notes for the log, such as an
// environment variable shadowed by a flag or one Ballot does not know.
Result<ServeConfig> Finalize(const CLI::App& app, ServeConfig config, const Environment& env,
                             std::vector<std::string>* warnings = nullptr);

// Derives defaults, parses and checks; returns the config with `parsed` filled and resolved set.
Result<ServeConfig> Resolve(ServeConfig config);

// Checks a resolved config (Resolve calls it); for callers that edit a resolved config.
Status Validate(const ServeConfig& config);

// Applies environment variables (ETCD_*, BALLOT_*) to the settings not in config.explicitly_set.
Status ApplyEnvironment(const Environment& env, ServeConfig& config,
                        std::vector<std::string>* warnings);

// Reads settings from a YAML file (etcd's keys; Ballot's own with their flag names), starting from
// the defaults. Unknown keys and malformed values are InvalidArgument naming file and key.
Result<ServeConfig> LoadConfigFile(const std::string& path);
Result<ServeConfig> ParseConfigYaml(std::string_view yaml, std::string_view source_name);

// etcd's --initial-cluster: "a=http://h1:2380,b=http://h2:2380"; a name may repeat to give a
// member several URLs. A URL used twice is an error.
Result<std::vector<ClusterMember>> ParseInitialCluster(std::string_view text);

// etcd's --auto-compaction-retention: an integer means hours (periodic) or revisions (revision);
// otherwise a Go duration ("5m", "1h30m", "1.5h") in periodic mode only.
struct CompactionRetention {
  int64_t period_ms = 0;
  int64_t revisions = 0;
};
Result<CompactionRetention> ParseCompactionRetention(CompactionMode mode, std::string_view text);

// Go's time.ParseDuration, to milliseconds (rounded down); negative durations are refused.
Result<int64_t> ParseGoDurationMs(std::string_view text);

}  // namespace ballot::config
