// `ballot serve`'s flags and environment: etcd's names, defaults and checks.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include "config/serve_config.h"

namespace ballot::config {
namespace {

Result<ServeConfig> Parse(std::vector<std::string> args, const Environment& env = {},
                          std::vector<std::string>* warnings = nullptr) {
  CLI::App app;
  ServeConfig config;
  AddServeFlags(app, config);
  std::vector<const char*> argv = {"serve"};
  for (const std::string& arg : args) argv.push_back(arg.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return Finalize(app, config, env, warnings);
}

void ExpectError(std::vector<std::string> args, std::string_view needle,
                 const Environment& env = {}) {
  Result<ServeConfig> config = Parse(args, env);
  ASSERT_FALSE(config.ok()) << "no error for " << testing::PrintToString(args);
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find(needle), std::string::npos)
      << "wanted \"" << needle << "\" in: " << config.status().message();
}

TEST(ConfigFlags, EtcdDefaults) {
  Result<ServeConfig> config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->name, "default");
  EXPECT_EQ(config->data_dir, "default.etcd");
  EXPECT_EQ(config->initial_cluster, "default=http://localhost:2380");
  EXPECT_EQ(config->initial_cluster_token, "etcd-cluster");
  EXPECT_EQ(config->heartbeat_interval_ms, 100);
  EXPECT_EQ(config->election_timeout_ms, 1000);
  EXPECT_EQ(config->snapshot_count, 100000u);
  EXPECT_EQ(config->max_request_bytes, 1572864u);
  const ServeConfig::Parsed& p = config->parsed;
  EXPECT_EQ(p.listen_client_urls, (std::vector<Url>{{"http", "localhost", 2379}}));
  EXPECT_EQ(p.listen_peer_urls, (std::vector<Url>{{"http", "localhost", 2380}}));
  EXPECT_EQ(p.engine, EngineKind::kRaft);
  EXPECT_EQ(p.initial_cluster_state, ClusterState::kNew);
  EXPECT_EQ(p.auto_compaction_mode, CompactionMode::kPeriodic);
  EXPECT_EQ(p.auto_compaction_period_ms, 0);
  EXPECT_EQ(p.quota_backend_bytes, 2LL << 30);
  EXPECT_EQ(p.election_ticks, 10);
  EXPECT_TRUE(p.listen_metrics_urls.empty());
  EXPECT_FALSE(config->lease_reads);
  EXPECT_TRUE(config->resolved);
}

TEST(ConfigFlags, ThreeMemberClusterLikeEtcdsProcfile) {
  Result<ServeConfig> config = Parse(
      {"--name",
       "infra2",
       "--listen-client-urls",
       "http://127.0.0.1:32379",
       "--advertise-client-urls",
       "http://127.0.0.1:32379",
       "--listen-peer-urls",
       "http://127.0.0.1:32380",
       "--initial-advertise-peer-urls",
       "http://127.0.0.1:32380",
       "--initial-cluster-token",
       "etcd-cluster-1",
       "--initial-cluster",
       "infra1=http://127.0.0.1:12380,infra2=http://127.0.0.1:32380,infra3=http://127.0.0.1:22380",
       "--initial-cluster-state",
       "new",
       "--engine",
       "multipaxos",
       "--lease-reads",
       "--heartbeat-interval",
       "50",
       "--election-timeout",
       "500",
       "--snapshot-count",
       "5000",
       "--auto-compaction-mode",
       "revision",
       "--auto-compaction-retention",
       "1000",
       "--listen-metrics-urls",
       "http://127.0.0.1:32381",
       "--log-level",
       "debug"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->data_dir, "infra2.etcd");
  const ServeConfig::Parsed& p = config->parsed;
  ASSERT_EQ(p.initial_cluster.size(), 3u);
  EXPECT_EQ(p.initial_cluster[2].name, "infra3");
  EXPECT_EQ(p.initial_cluster[2].peer_urls[0].port, 22380);
  EXPECT_EQ(p.engine, EngineKind::kMultiPaxos);
  EXPECT_TRUE(config->lease_reads);
  EXPECT_EQ(p.election_ticks, 10);
  EXPECT_EQ(p.lease_drift_ticks, 4);  // 200 ms at 50 ms a tick.
  EXPECT_EQ(p.auto_compaction_mode, CompactionMode::kRevision);
  EXPECT_EQ(p.auto_compaction_revisions, 1000);
  EXPECT_EQ(p.listen_metrics_urls.size(), 1u);
  EXPECT_EQ(config->snapshot_count, 5000u);
}

TEST(ConfigFlags, NameDerivesDataDirAndInitialCluster) {
  Result<ServeConfig> config =
      Parse({"--name", "n1", "--initial-advertise-peer-urls", "http://10.0.0.1:2380"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->data_dir, "n1.etcd");
  EXPECT_EQ(config->initial_cluster, "n1=http://10.0.0.1:2380");
}

TEST(ConfigFlags, EveryValidationErrorNamesItsFlag) {
  ExpectError({"--name", ""}, "--name: must not be empty");
  ExpectError({"--listen-client-urls", "https://127.0.0.1:2379", "--advertise-client-urls",
               "http://127.0.0.1:2379"},
              "--listen-client-urls: invalid URL \"https://127.0.0.1:2379\": TLS is not supported");
  ExpectError({"--listen-peer-urls", "http://127.0.0.1"}, "--listen-peer-urls: invalid URL");
  ExpectError({"--listen-client-urls", "http://example.com:2379", "--advertise-client-urls",
               "http://example.com:2379"},
              "--listen-client-urls: expected an IP address or localhost");
  ExpectError({"--listen-client-urls", "http://127.0.0.1:2379"},
              "--advertise-client-urls: is required when --listen-client-urls is set");
  ExpectError({"--advertise-client-urls", "http://:2379"},
              "--advertise-client-urls: expected a host name");
  ExpectError({"--initial-advertise-peer-urls", "http://10.0.0.1:0"}, "port 0");
  ExpectError({"--name", "x", "--initial-cluster", "a=http://10.0.0.1:2380"},
              "couldn't find local name \"x\"");
  ExpectError({"--initial-cluster", "default=http://localhost:2380,b=http://localhost:2380"},
              "--initial-cluster: has duplicate url http://localhost:2380");
  ExpectError({"--initial-cluster", "default=http://localhost:2380,=http://b:2380"},
              "--initial-cluster: expected name=url");
  ExpectError({"--initial-cluster", "default=http://localhost:2380,b"}, "expected name=url");
  ExpectError({"--initial-cluster", "default=http://10.9.9.9:2380"},
              "but --initial-advertise-peer-urls is http://localhost:2380");
  ExpectError({"--initial-cluster-state", "old"}, "--initial-cluster-state: expected new or");
  ExpectError({"--initial-cluster-token", ""}, "--initial-cluster-token: must not be empty");
  ExpectError({"--heartbeat-interval", "0"}, "--heartbeat-interval: must be > 0");
  ExpectError({"--election-timeout", "0"}, "--election-timeout: must be > 0");
  ExpectError({"--heartbeat-interval", "300", "--election-timeout", "1000"},
              "should be at least 5 times --heartbeat-interval (300ms)");
  ExpectError({"--heartbeat-interval", "1000", "--election-timeout", "1000"}, "at least 5 times");
  ExpectError({"--election-timeout", "50001"}, "is too long");
  ExpectError({"--quota-backend-bytes", "-1"}, "--quota-backend-bytes: must be >= 0");
  ExpectError({"--max-request-bytes", "0"}, "--max-request-bytes: must be from 1");
  ExpectError({"--max-request-bytes", "100000000"}, "--max-request-bytes: must be from 1");
  ExpectError({"--auto-compaction-mode", "hourly"}, "--auto-compaction-mode: expected periodic");
  ExpectError({"--auto-compaction-retention", "1x"}, "--auto-compaction-retention: invalid");
  ExpectError({"--auto-compaction-mode", "revision", "--auto-compaction-retention", "5m"},
              "revision mode takes an integer");
  ExpectError({"--auto-compaction-retention", "-1"}, "must not be negative");
  ExpectError({"--engine", "paxos"}, "--engine: expected raft or multipaxos");
  ExpectError({"--log-level", "loud"}, "--log-level: expected trace");
  ExpectError({"--listen-metrics-urls", "http://localhost"}, "--listen-metrics-urls: invalid");
  ExpectError({"--lease-reads", "--lease-reads-clock-drift-ms", "1000"},
              "--lease-reads-clock-drift-ms: must be more than 0");
  ExpectError({"--lease-reads", "--lease-reads-clock-drift-ms", "0"},
              "--lease-reads-clock-drift-ms: must be more than 0");
  ExpectError({"--listen-client-urls", "http://127.0.0.1:2380", "--advertise-client-urls",
               "http://127.0.0.1:2380", "--listen-peer-urls", "http://127.0.0.1:2380"},
              "is also in --listen-client-urls");
}

TEST(ConfigFlags, MalformedNumbersAreRejectedByTheParser) {
  EXPECT_THROW(Parse({"--heartbeat-interval", "fast"}), CLI::ParseError);
  EXPECT_THROW(Parse({"--snapshot-count", "-5"}), CLI::ParseError);
}

TEST(ConfigFlags, RepeatedNameGivesAMemberSeveralUrls) {
  Result<ServeConfig> config =
      Parse({"--initial-advertise-peer-urls", "http://10.0.0.1:2380,http://10.0.0.2:2380",
             "--initial-cluster", "default=http://10.0.0.2:2380,default=http://10.0.0.1:2380"});
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->parsed.initial_cluster.size(), 1u);
  EXPECT_EQ(config->parsed.initial_cluster[0].peer_urls.size(), 2u);
}

TEST(ConfigFlags, CompactionRetentionAsEtcdReadsIt) {
  struct Case {
    CompactionMode mode;
    std::string text;
    int64_t period_ms;
    int64_t revisions;
  };
  const std::vector<Case> cases = {
      {CompactionMode::kPeriodic, "", 0, 0},
      {CompactionMode::kPeriodic, "0", 0, 0},
      {CompactionMode::kPeriodic, "1", 3600000, 0},  // An integer is hours.
      {CompactionMode::kPeriodic, "5m", 300000, 0},
      {CompactionMode::kPeriodic, "1h30m", 5400000, 0},
      {CompactionMode::kPeriodic, "1.5h", 5400000, 0},
      {CompactionMode::kPeriodic, "90s", 90000, 0},
      {CompactionMode::kPeriodic, "250ms", 250, 0},
      {CompactionMode::kRevision, "10", 0, 10},
  };
  for (const Case& c : cases) {
    Result<CompactionRetention> r = ParseCompactionRetention(c.mode, c.text);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.status().ToString();
    EXPECT_EQ(r->period_ms, c.period_ms) << c.text;
    EXPECT_EQ(r->revisions, c.revisions) << c.text;
  }
  for (std::string_view bad : {"h", "5", "5x", "1..5h", "-5m", "5m-"}) {
    EXPECT_FALSE(ParseGoDurationMs(bad).ok()) << bad;
  }
}

TEST(ConfigFlags, EnvironmentFillsFlagsNotGiven) {
  std::vector<std::string> warnings;
  const Environment env = {{"ETCD_NAME", "envname"},
                           {"ETCD_HEARTBEAT_INTERVAL", "20"},
                           {"ETCD_ELECTION_TIMEOUT", "400"},
                           {"BALLOT_ENGINE", "multipaxos"},
                           {"BALLOT_LEASE_READS", "true"},
                           {"ETCD_UNHEARD_OF", "1"},
                           {"ETCDCTL_API", "3"},
                           {"PATH", "/bin"}};
  Result<ServeConfig> config = Parse({"--snapshot-count", "0"}, env, &warnings);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->name, "envname");
  EXPECT_EQ(config->data_dir, "envname.etcd");
  EXPECT_EQ(config->heartbeat_interval_ms, 20);
  EXPECT_EQ(config->parsed.engine, EngineKind::kMultiPaxos);
  EXPECT_TRUE(config->lease_reads);
  EXPECT_EQ(config->snapshot_count, 100000u);  // 0 means etcd's default.
  ASSERT_EQ(warnings.size(), 1u) << testing::PrintToString(warnings);
  EXPECT_EQ(warnings[0], "unrecognized environment variable ETCD_UNHEARD_OF (ignored)");
}

TEST(ConfigFlags, EnvironmentShadowedByAFlagIsAnErrorAsInEtcd) {
  // etcd 3.4.23: "conflicting environment variable "ETCD_NAME" is shadowed by corresponding
  // command-line flag (either unset environment variable or disable flag)".
  ExpectError({"--name", "y"}, "conflicting environment variable ETCD_NAME is shadowed by",
              {{"ETCD_NAME", "x"}});
}

TEST(ConfigFlags, EnvironmentErrorsNameTheVariable) {
  ExpectError({}, "environment variable ETCD_HEARTBEAT_INTERVAL: invalid value \"x\"",
              {{"ETCD_HEARTBEAT_INTERVAL", "x"}});
  ExpectError({}, "environment variable BALLOT_LEASE_READS: invalid value \"maybe\"",
              {{"BALLOT_LEASE_READS", "maybe"}});
  ExpectError({}, "--engine: expected raft or multipaxos", {{"BALLOT_ENGINE", "zab"}});
  // Ballot's own settings are not read from ETCD_ names.
  Result<ServeConfig> config = Parse({}, {{"ETCD_ENGINE", "multipaxos"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->parsed.engine, EngineKind::kRaft);
}

TEST(ConfigFlags, EnvironmentListenClientUrlsNeedsAdvertiseToo) {
  ExpectError({}, "--advertise-client-urls: is required",
              {{"ETCD_LISTEN_CLIENT_URLS", "http://127.0.0.1:2379"}});
}

TEST(ConfigFlags, HelpListsEveryFlagAndThePrecedence) {
  CLI::App app;
  ServeConfig config;
  AddServeFlags(app, config);
  const std::string help = app.help();
  for (std::string_view flag : {"--name",
                                "--data-dir",
                                "--listen-client-urls",
                                "--advertise-client-urls",
                                "--listen-peer-urls",
                                "--initial-advertise-peer-urls",
                                "--initial-cluster ",
                                "--initial-cluster-state",
                                "--initial-cluster-token",
                                "--heartbeat-interval",
                                "--election-timeout",
                                "--snapshot-count",
                                "--quota-backend-bytes",
                                "--max-request-bytes",
                                "--auto-compaction-mode",
                                "--auto-compaction-retention",
                                "--listen-metrics-urls",
                                "--log-level",
                                "--config-file",
                                "--engine",
                                "--lease-reads",
                                "--lease-reads-clock-drift-ms",
                                "ETCD_INITIAL_CLUSTER",
                                "BALLOT_ENGINE",
                                "every other flag and environment variable is ignored"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

TEST(ConfigFlags, ValidateRefusesAnUnresolvedConfig) {
  EXPECT_EQ(Validate(ServeConfig{}).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace ballot::config
