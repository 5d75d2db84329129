#include "config/serve_config.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <type_traits>

#include "config/settings.h"

extern char** environ;

namespace ballot::config {
namespace {

using internal::Setting;
using internal::Settings;

constexpr std::string_view kConfigFileEnv = "ETCD_CONFIG_FILE";

Status FlagError(std::string_view flag, const std::string& message) {
  return Status::InvalidArgument("--" + std::string(flag) + ": " + message);
}

// ParseUrlList's errors already start with the flag.
Result<std::vector<Url>> ParseUrls(const std::string& text, std::string_view flag) {
  return ParseUrlList(text, "--" + std::string(flag));
}

Status CheckListenUrls(const std::vector<Url>& urls, std::string_view flag) {
  for (const Url& url : urls) {
    Result<std::string> address = GrpcListenAddress(url);
    if (!address.ok()) return FlagError(flag, address.status().message());
  }
  return Status::Ok();
}

// Advertised URLs are dialled by others: they need a host and a real port.
Status CheckAdvertiseUrls(const std::vector<Url>& urls, std::string_view flag) {
  for (const Url& url : urls) {
    if (url.host.empty()) return FlagError(flag, "expected a host name in URL " + url.ToString());
    if (url.port == 0) return FlagError(flag, "port 0 cannot be advertised: " + url.ToString());
  }
  return Status::Ok();
}

std::vector<std::string> SortedUrlStrings(const std::vector<Url>& urls) {
  std::vector<std::string> out;
  for (const Url& url : urls) out.push_back(url.ToString());
  std::sort(out.begin(), out.end());
  return out;
}

Status ParseEnums(ServeConfig& config) {
  ServeConfig::Parsed& p = config.parsed;
  if (config.engine == "raft") {
    p.engine = EngineKind::kRaft;
  } else if (config.engine == "multipaxos") {
    p.engine = EngineKind::kMultiPaxos;
  } else {
    return FlagError("engine", "expected raft or multipaxos, got \"" + config.engine + "\"");
  }
  if (config.initial_cluster_state == "new") {
    p.initial_cluster_state = ClusterState::kNew;
  } else if (config.initial_cluster_state == "existing") {
    p.initial_cluster_state = ClusterState::kExisting;
  } else {
    return FlagError("initial-cluster-state",
                     "expected new or existing, got \"" + config.initial_cluster_state + "\"");
  }
  if (config.auto_compaction_mode == "periodic") {
    p.auto_compaction_mode = CompactionMode::kPeriodic;
  } else if (config.auto_compaction_mode == "revision") {
    p.auto_compaction_mode = CompactionMode::kRevision;
  } else {
    return FlagError("auto-compaction-mode",
                     "expected periodic or revision, got \"" + config.auto_compaction_mode + "\"");
  }
  static const std::vector<std::string_view> kLevels = {"trace", "debug", "info",
                                                        "warn",  "error", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), config.log_level) == kLevels.end()) {
    return FlagError("log-level", "expected trace, debug, info, warn, error or off, got \"" +
                                      config.log_level + "\"");
  }
  return Status::Ok();
}

Status ParseAllUrls(ServeConfig& config) {
  ServeConfig::Parsed& p = config.parsed;
  ASSIGN_OR_RETURN(p.listen_client_urls,
                   ParseUrls(config.listen_client_urls, "listen-client-urls"));
  ASSIGN_OR_RETURN(p.advertise_client_urls,
                   ParseUrls(config.advertise_client_urls, "advertise-client-urls"));
  ASSIGN_OR_RETURN(p.listen_peer_urls, ParseUrls(config.listen_peer_urls, "listen-peer-urls"));
  ASSIGN_OR_RETURN(p.initial_advertise_peer_urls,
                   ParseUrls(config.initial_advertise_peer_urls, "initial-advertise-peer-urls"));
  // Before the default --initial-cluster is derived from them, so that an error names them.
  RETURN_IF_ERROR(CheckAdvertiseUrls(p.initial_advertise_peer_urls, "initial-advertise-peer-urls"));
  p.listen_metrics_urls.clear();
  if (!config.listen_metrics_urls.empty()) {
    ASSIGN_OR_RETURN(p.listen_metrics_urls,
                     ParseUrls(config.listen_metrics_urls, "listen-metrics-urls"));
  }
  if (config.initial_cluster.empty()) {
    // etcd's InitialClusterFromName: this member alone, at its advertised peer URLs.
    for (const Url& url : p.initial_advertise_peer_urls) {
      if (!config.initial_cluster.empty()) config.initial_cluster += ",";
      config.initial_cluster += config.name + "=" + url.ToString();
    }
  }
  Result<std::vector<ClusterMember>> cluster = ParseInitialCluster(config.initial_cluster);
  if (!cluster.ok()) return FlagError("initial-cluster", cluster.status().message());
  p.initial_cluster = std::move(*cluster);
  return Status::Ok();
}

}  // namespace

std::string_view EngineName(EngineKind engine) {
  return engine == EngineKind::kRaft ? "raft" : "multipaxos";
}

Environment ProcessEnvironment() {
  Environment env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

void AddServeFlags(CLI::App& app, ServeConfig& config) {
  for (const Setting& setting : Settings()) {
    const std::string flag = "--" + std::string(setting.name);
    const std::string help(setting.help);
    std::visit(
        [&](auto member) {
          auto& field = config.*member;
          using T = std::remove_reference_t<decltype(field)>;
          if constexpr (std::is_same_v<T, bool>) {
            app.add_flag(flag, field, help)->capture_default_str();
          } else {
            CLI::Option* option = app.add_option(flag, field, help);
            if constexpr (std::is_same_v<T, std::string>) {
              if (!field.empty()) option->capture_default_str();
            } else {
              if constexpr (std::is_unsigned_v<T>) option->check(CLI::NonNegativeNumber);
              option->capture_default_str();
            }
          }
        },
        setting.field);
  }
  app.add_option("--config-file", config.config_file,
                 "Path to a YAML file with the settings (etcd's keys); when given, every other "
                 "flag and environment variable is ignored, as in etcd");
  app.footer(
      "Settings come from --config-file (or ETCD_CONFIG_FILE) alone when a file is named, as in "
      "etcd; otherwise from the flags, then from environment variables for the flags not given "
      "(ETCD_<FLAG> for etcd's flags, e.g. ETCD_INITIAL_CLUSTER; BALLOT_<FLAG> for Ballot's own: "
      "BALLOT_ENGINE, BALLOT_LEASE_READS, BALLOT_LEASE_READS_CLOCK_DRIFT_MS), then the defaults. "
      "A variable for a flag that is also given is an error, as in etcd. "
      "See docs/configuration.md.");
}

Status ApplyEnvironment(const Environment& env, ServeConfig& config,
                        std::vector<std::string>* warnings) {
  std::set<std::string> known = {std::string(kConfigFileEnv)};
  for (const Setting& setting : Settings()) {
    const std::string key = internal::EnvironmentName(setting);
    known.insert(key);
    const auto it = env.find(key);
    if (it == env.end()) continue;
    const std::string name(setting.name);
    if (config.explicitly_set.count(name) != 0) {
      // etcd 3.4 refuses this too (pkg/flags: a fatal error, not a warning).
      return Status::InvalidArgument("conflicting environment variable " + key +
                                     " is shadowed by corresponding command-line flag --" + name +
                                     " (either unset environment variable or disable flag)");
    }
    Status status = internal::SetFromText(setting, it->second, config);
    if (!status.ok()) {
      return Status::InvalidArgument("environment variable " + key + ": " + status.message());
    }
    config.explicitly_set.insert(name);
  }
  if (warnings != nullptr) {
    for (const auto& [key, value] : env) {
      const bool ours = key.rfind("ETCD_", 0) == 0 || key.rfind("BALLOT_", 0) == 0;
      if (ours && known.count(key) == 0) {
        warnings->push_back("unrecognized environment variable " + key + " (ignored)");
      }
    }
  }
  return Status::Ok();
}

Result<ServeConfig> Finalize(const CLI::App& app, ServeConfig config, const Environment& env,
                             std::vector<std::string>* warnings) {
  std::vector<std::string> given;
  for (const Setting& setting : Settings()) {
    const CLI::Option* option = app.get_option_no_throw("--" + std::string(setting.name));
    if (option != nullptr && option->count() > 0) {
      config.explicitly_set.insert(std::string(setting.name));
      given.push_back("--" + std::string(setting.name));
    }
  }
  std::string file = config.config_file;
  if (file.empty()) {
    const auto it = env.find(std::string(kConfigFileEnv));
    if (it != env.end()) file = it->second;
  }
  if (!file.empty()) {
    ASSIGN_OR_RETURN(ServeConfig from_file, LoadConfigFile(file));
    from_file.config_file = file;
    if (warnings != nullptr && !given.empty()) {
      std::string list;
      for (const std::string& flag : given) list += (list.empty() ? "" : " ") + flag;
      warnings->push_back("the config file " + file + " is in use; flags ignored: " + list);
    }
    return Resolve(std::move(from_file));
  }
  RETURN_IF_ERROR(ApplyEnvironment(env, config, warnings));
  return Resolve(std::move(config));
}

Result<ServeConfig> Resolve(ServeConfig config) {
  if (config.name.empty()) return FlagError("name", "must not be empty");
  if (config.data_dir.empty()) config.data_dir = config.name + ".etcd";
  // etcdserver.NewServer: "updated snapshot count to default".
  if (config.snapshot_count == 0) config.snapshot_count = kDefaultSnapshotCount;
  RETURN_IF_ERROR(ParseEnums(config));
  RETURN_IF_ERROR(ParseAllUrls(config));
  ServeConfig::Parsed& p = config.parsed;
  Result<CompactionRetention> retention =
      ParseCompactionRetention(p.auto_compaction_mode, config.auto_compaction_retention);
  if (!retention.ok()) {
    return FlagError("auto-compaction-retention", retention.status().message());
  }
  p.auto_compaction_period_ms = retention->period_ms;
  p.auto_compaction_revisions = retention->revisions;
  p.quota_backend_bytes =
      config.quota_backend_bytes == 0 ? kDefaultQuotaBackendBytes : config.quota_backend_bytes;
  // Only for values ValidateTiming can accept; others keep the defaults and are refused there.
  if (config.heartbeat_interval_ms > 0 && config.election_timeout_ms <= kElectionTimeoutMsMax &&
      config.lease_reads_clock_drift_ms >= 0 &&
      config.lease_reads_clock_drift_ms <= kElectionTimeoutMsMax) {
    p.election_ticks = static_cast<int>(config.election_timeout_ms / config.heartbeat_interval_ms);
    // Round the drift up: a lease that ends early is safe, one that ends late is not.
    p.lease_drift_ticks =
        static_cast<int>((config.lease_reads_clock_drift_ms + config.heartbeat_interval_ms - 1) /
                         config.heartbeat_interval_ms);
  }
  config.resolved = true;
  RETURN_IF_ERROR(Validate(config));
  return config;
}

namespace {

// etcd's embed.Config.Validate, in its order and with its messages.
Status ValidateTiming(const ServeConfig& config) {
  const int64_t heartbeat_ms = config.heartbeat_interval_ms;
  const int64_t election_ms = config.election_timeout_ms;
  if (heartbeat_ms <= 0) {
    return FlagError("heartbeat-interval",
                     "must be > 0 (set to " + std::to_string(heartbeat_ms) + "ms)");
  }
  if (election_ms <= 0) {
    return FlagError("election-timeout",
                     "must be > 0 (set to " + std::to_string(election_ms) + "ms)");
  }
  if (heartbeat_ms > election_ms / 5) {  // 5 * heartbeat > election, without overflow.
    return FlagError("election-timeout",
                     std::to_string(election_ms) +
                         "ms should be at least 5 times --heartbeat-interval (" +
                         std::to_string(heartbeat_ms) + "ms)");
  }
  if (election_ms > kElectionTimeoutMsMax) {
    return FlagError("election-timeout", std::to_string(election_ms) +
                                             "ms is too long, and should be set less than " +
                                             std::to_string(kElectionTimeoutMsMax) + "ms");
  }
  const int64_t drift_ms = config.lease_reads_clock_drift_ms;
  if (drift_ms < 0) return FlagError("lease-reads-clock-drift-ms", "must be >= 0");
  const ServeConfig::Parsed& p = config.parsed;
  if (config.lease_reads && (drift_ms > election_ms || p.lease_drift_ticks < 1 ||
                             p.lease_drift_ticks >= p.election_ticks)) {
    return FlagError("lease-reads-clock-drift-ms",
                     "must be more than 0 and less than --election-timeout minus one "
                     "--heartbeat-interval, got " +
                         std::to_string(drift_ms) + "ms");
  }
  return Status::Ok();
}

Status ValidateUrls(const ServeConfig& config) {
  const ServeConfig::Parsed& p = config.parsed;
  if (config.explicitly_set.count("listen-client-urls") != 0 &&
      config.explicitly_set.count("advertise-client-urls") == 0) {
    return FlagError("advertise-client-urls",
                     "is required when --listen-client-urls is set explicitly");
  }
  RETURN_IF_ERROR(CheckListenUrls(p.listen_client_urls, "listen-client-urls"));
  RETURN_IF_ERROR(CheckListenUrls(p.listen_peer_urls, "listen-peer-urls"));
  RETURN_IF_ERROR(CheckListenUrls(p.listen_metrics_urls, "listen-metrics-urls"));
  RETURN_IF_ERROR(CheckAdvertiseUrls(p.advertise_client_urls, "advertise-client-urls"));
  RETURN_IF_ERROR(CheckAdvertiseUrls(p.initial_advertise_peer_urls, "initial-advertise-peer-urls"));
  for (const Url& client : p.listen_client_urls) {
    for (const Url& peer : p.listen_peer_urls) {
      if (client.port != 0 && client.port == peer.port && client.host == peer.host) {
        return FlagError("listen-peer-urls", peer.ToString() + " is also in --listen-client-urls");
      }
    }
  }
  return Status::Ok();
}

// etcd's ServerConfig.VerifyBootstrap: this member is in the initial cluster, at exactly the URLs
// it advertises.
Status ValidateMembership(const ServeConfig& config) {
  const ServeConfig::Parsed& p = config.parsed;
  const ClusterMember* self = nullptr;
  for (const ClusterMember& member : p.initial_cluster) {
    if (member.name == config.name) self = &member;
  }
  if (self == nullptr) {
    return FlagError("initial-cluster", "couldn't find local name \"" + config.name +
                                            "\" (--name) in the initial cluster configuration \"" +
                                            config.initial_cluster + "\"");
  }
  if (SortedUrlStrings(self->peer_urls) != SortedUrlStrings(p.initial_advertise_peer_urls)) {
    return FlagError("initial-cluster", "has " + config.name + "=" + JoinUrls(self->peer_urls) +
                                            " but --initial-advertise-peer-urls is " +
                                            JoinUrls(p.initial_advertise_peer_urls) +
                                            "; they must list the same URLs");
  }
  return Status::Ok();
}

Status ValidateLimits(const ServeConfig& config) {
  if (config.quota_backend_bytes < 0) {
    return FlagError("quota-backend-bytes", "must be >= 0 (0 means the default, 2 GiB)");
  }
  if (config.max_request_bytes == 0 || config.max_request_bytes > kMaxRequestBytesMax) {
    return FlagError("max-request-bytes",
                     "must be from 1 to " + std::to_string(kMaxRequestBytesMax) +
                         " (64 MiB), got " + std::to_string(config.max_request_bytes));
  }
  return Status::Ok();
}

}  // namespace

Status Validate(const ServeConfig& config) {
  if (!config.resolved) return Status::FailedPrecondition("config not resolved (call Resolve)");
  if (config.name.empty()) return FlagError("name", "must not be empty");
  if (config.initial_cluster_token.empty()) {
    return FlagError("initial-cluster-token", "must not be empty");
  }
  RETURN_IF_ERROR(ValidateTiming(config));
  RETURN_IF_ERROR(ValidateUrls(config));
  RETURN_IF_ERROR(ValidateMembership(config));
  return ValidateLimits(config);
}

Result<std::vector<ClusterMember>> ParseInitialCluster(std::string_view text) {
  std::vector<ClusterMember> members;
  std::set<std::string> seen_urls;
  if (text.empty()) return Status::InvalidArgument("must not be empty");
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string_view::npos) comma = text.size();
    const std::string_view item = text.substr(start, comma - start);
    start = comma + 1;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return Status::InvalidArgument("expected name=url, got \"" + std::string(item) + "\"");
    }
    const std::string name(item.substr(0, eq));
    Result<Url> url = ParseUrl(item.substr(eq + 1));
    if (!url.ok()) return Status::InvalidArgument("member " + name + ": " + url.status().message());
    if (url->host.empty() || url->port == 0) {
      return Status::InvalidArgument("member " + name + ": " + url->ToString() +
                                     " needs a host and a port other than 0");
    }
    if (!seen_urls.insert(url->ToString()).second) {
      return Status::InvalidArgument("has duplicate url " + url->ToString());
    }
    auto it = std::find_if(members.begin(), members.end(),
                           [&](const ClusterMember& m) { return m.name == name; });
    if (it == members.end()) {
      members.push_back({name, {}});
      it = members.end() - 1;
    }
    it->peer_urls.push_back(std::move(*url));
  }
  return members;
}

Result<int64_t> ParseGoDurationMs(std::string_view text) {
  const std::string original(text);
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("invalid duration \"" + original + "\": " + std::string(why));
  };
  if (text.empty()) return bad("empty");
  if (text.front() == '-') return bad("must not be negative");
  if (text.front() == '+') text.remove_prefix(1);
  if (text == "0") return int64_t{0};
  static const std::vector<std::pair<std::string_view, double>> kUnitsMs = {
      {"ns", 1e-6}, {"us", 1e-3}, {"\xC2\xB5s", 1e-3}, {"\xCE\xBCs", 1e-3},
      {"ms", 1.0},  {"s", 1e3},   {"m", 6e4},          {"h", 3.6e6}};
  double total_ms = 0;
  if (text.empty()) return bad("empty");
  while (!text.empty()) {
    size_t digits = 0;
    bool seen_digit = false;
    while (digits < text.size() &&
           ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
      seen_digit = seen_digit || text[digits] != '.';
      ++digits;
    }
    if (!seen_digit) return bad("expected a number");
    const std::string number(text.substr(0, digits));
    if (std::count(number.begin(), number.end(), '.') > 1) return bad("malformed number");
    text.remove_prefix(digits);
    double unit_ms = 0;
    for (const auto& [unit, ms] : kUnitsMs) {
      // Longest match first matters only for "ms" against "m": "ms" is listed before "m".
      if (text.substr(0, unit.size()) == unit) {
        unit_ms = ms;
        text.remove_prefix(unit.size());
        break;
      }
    }
    if (unit_ms == 0) return bad("missing or unknown unit (use ns, us, ms, s, m or h)");
    total_ms += std::strtod(number.c_str(), nullptr) * unit_ms;  // Never throws, unlike stod.
    if (!(total_ms <= 9.2e15)) return bad("too large");          // Also catches inf and nan.
  }
  return static_cast<int64_t>(std::floor(total_ms));
}

Result<CompactionRetention> ParseCompactionRetention(CompactionMode mode, std::string_view text) {
  CompactionRetention out;
  if (text.empty()) return out;  // etcd treats "" as "0".
  int64_t integer = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), integer);
  if (ec == std::errc() && end == text.data() + text.size()) {
    if (integer < 0) return Status::InvalidArgument("must not be negative");
    if (mode == CompactionMode::kRevision) {
      out.revisions = integer;
    } else {
      if (integer > 24 * 365 * 100) return Status::InvalidArgument("more than 100 years");
      out.period_ms = integer * 3600 * 1000;
    }
    return out;
  }
  if (mode == CompactionMode::kRevision) {
    return Status::InvalidArgument("invalid value \"" + std::string(text) +
                                   "\": revision mode takes an integer number of revisions");
  }
  ASSIGN_OR_RETURN(out.period_ms, ParseGoDurationMs(text));
  return out;
}

}  // namespace ballot::config
