#include "config/settings.h"

#include <charconv>
#include <type_traits>

namespace ballot::config::internal {

const std::vector<Setting>& Settings() {
  static const std::vector<Setting> settings = {
      {"name", Origin::kEtcd, &ServeConfig::name, "Human-readable name for this member"},
      {"data-dir", Origin::kEtcd, &ServeConfig::data_dir,
       "Path to the data directory (default \"<name>.etcd\")"},
      {"listen-peer-urls", Origin::kEtcd, &ServeConfig::listen_peer_urls,
       "List of URLs to listen on for peer traffic (IP addresses or localhost)"},
      {"listen-client-urls", Origin::kEtcd, &ServeConfig::listen_client_urls,
       "List of URLs to listen on for client traffic (IP addresses or localhost); when set, "
       "--advertise-client-urls is required too"},
      {"initial-advertise-peer-urls", Origin::kEtcd, &ServeConfig::initial_advertise_peer_urls,
       "List of this member's peer URLs to advertise to the rest of the cluster"},
      {"advertise-client-urls", Origin::kEtcd, &ServeConfig::advertise_client_urls,
       "List of this member's client URLs to advertise to the public"},
      {"initial-cluster", Origin::kEtcd, &ServeConfig::initial_cluster,
       "Initial cluster configuration for bootstrapping: name=peer-url,... (default "
       "\"<name>=<each --initial-advertise-peer-urls>\")"},
      {"initial-cluster-state", Origin::kEtcd, &ServeConfig::initial_cluster_state,
       "Initial cluster state: new or existing"},
      {"initial-cluster-token", Origin::kEtcd, &ServeConfig::initial_cluster_token,
       "Initial cluster token, part of the cluster and member ids"},
      {"heartbeat-interval", Origin::kEtcd, &ServeConfig::heartbeat_interval_ms,
       "Time (in milliseconds) of a heartbeat interval; one engine tick"},
      {"election-timeout", Origin::kEtcd, &ServeConfig::election_timeout_ms,
       "Time (in milliseconds) for an election to timeout; at least 5 heartbeat intervals, at "
       "most 50000"},
      {"snapshot-count", Origin::kEtcd, &ServeConfig::snapshot_count,
       "Number of committed entries that trigger a snapshot"},
      {"quota-backend-bytes", Origin::kEtcd, &ServeConfig::quota_backend_bytes,
       "Raise an alarm when the key space exceeds this size (0: 2 GiB)"},
      {"max-request-bytes", Origin::kEtcd, &ServeConfig::max_request_bytes,
       "Maximum client request size in bytes the server will accept"},
      {"auto-compaction-mode", Origin::kEtcd, &ServeConfig::auto_compaction_mode,
       "periodic or revision: how --auto-compaction-retention is read"},
      {"auto-compaction-retention", Origin::kEtcd, &ServeConfig::auto_compaction_retention,
       "Auto compaction retention for the key-value history: an integer is hours (periodic) or "
       "revisions (revision); periodic also takes a duration like 5m or 1h30m; 0 disables"},
      {"listen-metrics-urls", Origin::kEtcd, &ServeConfig::listen_metrics_urls,
       "List of URLs to listen on for the metrics and health endpoints (default: none)"},
      {"log-level", Origin::kEtcd, &ServeConfig::log_level,
       "Log level: trace, debug, info, warn, error or off"},
      {"engine", Origin::kBallot, &ServeConfig::engine,
       "Replication engine: raft or multipaxos; fixed when the member's data directory is created"},
      {"lease-reads", Origin::kBallot, &ServeConfig::lease_reads,
       "Linearizable reads served by the leader alone while its leader lease holds, without a "
       "quorum round (assumes bounded clock drift; see --lease-reads-clock-drift-ms)"},
      {"lease-reads-clock-drift-ms", Origin::kBallot, &ServeConfig::lease_reads_clock_drift_ms,
       "With --lease-reads: how much faster (in milliseconds per election timeout) another "
       "member's clock may run; the leader lease is the election timeout minus this"},
  };
  return settings;
}

const Setting* FindSetting(std::string_view name) {
  for (const Setting& setting : Settings()) {
    if (setting.name == name) return &setting;
  }
  return nullptr;
}

std::string EnvironmentName(const Setting& setting) {
  std::string out = setting.origin == Origin::kEtcd ? "ETCD_" : "BALLOT_";
  for (char c : setting.name) {
    out += c == '-' ? '_' : static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  }
  return out;
}

namespace {

template <typename Int>
Status ParseInt(std::string_view text, Int& out) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
    return Status::InvalidArgument(
        "invalid value \"" + std::string(text) + "\": expected " +
        (std::is_signed_v<Int> ? "an integer" : "a non-negative integer"));
  }
  out = value;
  return Status::Ok();
}

// Go's strconv.ParseBool, which etcd's flags use.
Status ParseBool(std::string_view text, bool& out) {
  for (std::string_view t : {"1", "t", "T", "true", "TRUE", "True"}) {
    if (text == t) {
      out = true;
      return Status::Ok();
    }
  }
  for (std::string_view f : {"0", "f", "F", "false", "FALSE", "False"}) {
    if (text == f) {
      out = false;
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("invalid value \"" + std::string(text) +
                                 "\": expected true or false");
}

}  // namespace

Status SetFromText(const Setting& setting, std::string_view text, ServeConfig& config) {
  return std::visit(
      [&](auto member) -> Status {
        auto& field = config.*member;
        using T = std::remove_reference_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::string>) {
          field = std::string(text);
          return Status::Ok();
        } else if constexpr (std::is_same_v<T, bool>) {
          return ParseBool(text, field);
        } else {
          return ParseInt(text, field);
        }
      },
      setting.field);
}

}  // namespace ballot::config::internal
