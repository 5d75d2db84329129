// --config-file: etcd's YAML keys, and etcd's rule that a file replaces flags and environment.
#include <gtest/gtest.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "config/serve_config.h"

namespace ballot::config {
namespace {

class ConfigFileTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ballot-config-file-" + std::to_string(::getpid()) + "-" +
            testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& text) {
    const std::string path = (dir_ / "ballot.yml").string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

constexpr const char* kEtcdStyle = R"(# As in etcd's etcd.conf.yml.sample
name: 'infra1'
data-dir: /var/lib/ballot/infra1
snapshot-count: 10000
heartbeat-interval: 50
election-timeout: 500
quota-backend-bytes: 4294967296
max-request-bytes: 2097152
listen-peer-urls: http://10.0.0.1:2380
listen-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379
initial-advertise-peer-urls: http://10.0.0.1:2380
advertise-client-urls: http://10.0.0.1:2379
initial-cluster: infra1=http://10.0.0.1:2380,infra2=http://10.0.0.2:2380
initial-cluster-token: 'cluster-7'
initial-cluster-state: 'new'
auto-compaction-mode: periodic
auto-compaction-retention: "1h"
log-level: warn
engine: multipaxos
lease-reads: true
)";

TEST_F(ConfigFileTest, ReadsEtcdKeysAndBallotsOwn) {
  Result<ServeConfig> loaded = LoadConfigFile(Write(kEtcdStyle));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  Result<ServeConfig> config = Resolve(*loaded);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->name, "infra1");
  EXPECT_EQ(config->data_dir, "/var/lib/ballot/infra1");
  EXPECT_EQ(config->snapshot_count, 10000u);
  EXPECT_EQ(config->heartbeat_interval_ms, 50);
  EXPECT_EQ(config->parsed.quota_backend_bytes, 4294967296LL);
  EXPECT_EQ(config->max_request_bytes, 2097152u);
  EXPECT_EQ(config->parsed.listen_client_urls.size(), 2u);
  EXPECT_EQ(config->parsed.initial_cluster.size(), 2u);
  EXPECT_EQ(config->initial_cluster_token, "cluster-7");
  EXPECT_EQ(config->parsed.auto_compaction_period_ms, 3600000);
  EXPECT_EQ(config->log_level, "warn");
  EXPECT_EQ(config->parsed.engine, EngineKind::kMultiPaxos);
  EXPECT_TRUE(config->lease_reads);
}

TEST_F(ConfigFileTest, FileReplacesFlagsAndEnvironmentLikeEtcd) {
  const std::string path = Write("name: fromfile\n");
  CLI::App app;
  ServeConfig config;
  AddServeFlags(app, config);
  const std::vector<const char*> argv = {"serve",    "--config-file",    path.c_str(), "--name",
                                         "fromflag", "--snapshot-count", "3"};
  app.parse(static_cast<int>(argv.size()), argv.data());
  std::vector<std::string> warnings;
  Result<ServeConfig> final_config =
      Finalize(app, config, {{"ETCD_HEARTBEAT_INTERVAL", "10"}}, &warnings);
  ASSERT_TRUE(final_config.ok()) << final_config.status().ToString();
  EXPECT_EQ(final_config->name, "fromfile");
  EXPECT_EQ(final_config->snapshot_count, 100000u);     // The flag is ignored...
  EXPECT_EQ(final_config->heartbeat_interval_ms, 100);  // ...and so is the environment.
  EXPECT_EQ(final_config->config_file, path);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("flags ignored: --name --snapshot-count"), std::string::npos)
      << warnings[0];
}

TEST_F(ConfigFileTest, EtcdConfigFileEnvironmentVariable) {
  const std::string path = Write("name: viaenv\n");
  CLI::App app;
  ServeConfig config;
  AddServeFlags(app, config);
  const std::vector<const char*> argv = {"serve"};
  app.parse(static_cast<int>(argv.size()), argv.data());
  Result<ServeConfig> final_config = Finalize(app, config, {{"ETCD_CONFIG_FILE", path}});
  ASSERT_TRUE(final_config.ok()) << final_config.status().ToString();
  EXPECT_EQ(final_config->name, "viaenv");
}

TEST_F(ConfigFileTest, EmptyFileMeansDefaults) {
  Result<ServeConfig> loaded = LoadConfigFile(Write(""));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->name, "default");
  EXPECT_TRUE(Resolve(*loaded).ok());
}

void ExpectYamlError(std::string_view yaml, std::string_view needle) {
  Result<ServeConfig> config = ParseConfigYaml(yaml, "test.yml");
  ASSERT_FALSE(config.ok()) << yaml;
  EXPECT_EQ(config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find(needle), std::string::npos)
      << "wanted \"" << needle << "\" in: " << config.status().message();
  EXPECT_EQ(config.status().message().rfind("test.yml: ", 0), 0u) << config.status().message();
}

TEST_F(ConfigFileTest, BadFilesAreErrorsNamingTheKey) {
  ExpectYamlError("nmae: x\n", "key \"nmae\": unknown key");
  ExpectYamlError("wal-dir: /x\n", "key \"wal-dir\": etcd setting not supported by Ballot");
  ExpectYamlError("heartbeat-interval: fast\n",
                  "key \"heartbeat-interval\": invalid value \"fast\": expected an integer");
  ExpectYamlError("snapshot-count: -1\n", "key \"snapshot-count\": invalid value \"-1\"");
  ExpectYamlError("lease-reads: sometimes\n", "key \"lease-reads\": invalid value");
  ExpectYamlError("listen-client-urls:\n  - http://a:1\n",
                  "key \"listen-client-urls\": expected a "
                  "single value");
  ExpectYamlError("client-transport-security:\n  cert-file: x\n",
                  "etcd setting not supported by Ballot");
  ExpectYamlError("- name\n- x\n", "expected a mapping");
  ExpectYamlError("name: [unclosed\n", "not valid YAML");
  ExpectYamlError("config-file: other.yml\n", "key \"config-file\": unknown key");
  ExpectYamlError("name: a\nname: b\n", "key \"name\": given twice");
}

TEST_F(ConfigFileTest, BadValuesInAFileFailResolveNamingTheSetting) {
  Result<ServeConfig> loaded = ParseConfigYaml("listen-peer-urls: https://127.0.0.1:2380\n", "f");
  ASSERT_TRUE(loaded.ok());
  Result<ServeConfig> config = Resolve(*loaded);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("--listen-peer-urls: invalid URL"), std::string::npos)
      << config.status().message();
}

TEST_F(ConfigFileTest, MissingFile) {
  Result<ServeConfig> config = LoadConfigFile((dir_ / "absent.yml").string());
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), StatusCode::kNotFound);
  EXPECT_NE(config.status().message().find("absent.yml"), std::string::npos);
}

TEST_F(ConfigFileTest, HugeFileIsRefused) {
  Result<ServeConfig> config = LoadConfigFile(Write("# " + std::string(2 << 20, 'x') + "\n"));
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.status().message().find("larger than 1 MiB"), std::string::npos);
}

}  // namespace
}  // namespace ballot::config
