// Malformed input never crashes the config parsers: random mutations of valid inputs go through
// every parser, which must answer with a value or an error. A crash or an exception fails the run.
#include <gtest/gtest.h>

#include "base/random.h"
#include "config/data_dir.h"
#include "config/serve_config.h"

namespace ballot::config {
namespace {

constexpr int kIterations = 3000;

std::string Mutate(Random& random, std::string text) {
  static const std::string kAlphabet = "=,:/[]@.-_ \n\t'\"{}#0123456789abchmsx\xC2\xB5\xff";
  const int edits = static_cast<int>(random.Range(1, 4));
  for (int i = 0; i < edits; ++i) {
    const size_t at = text.empty() ? 0 : random.Uniform(text.size() + 1);
    switch (random.Uniform(4)) {
      case 0:
        text.insert(at, 1, kAlphabet[random.Uniform(kAlphabet.size())]);
        break;
      case 1:
        if (at < text.size()) text.erase(at, 1 + random.Uniform(4));
        break;
      case 2:
        if (at < text.size()) text[at] = static_cast<char>(random.Uniform(256));
        break;
      default:
        text.insert(at, text.substr(0, random.Uniform(text.size() + 1)));
        break;
    }
  }
  return text;
}

TEST(ConfigFuzz, ParsersNeverCrashOnMutatedInput) {
  Random random(20261127);
  const std::vector<std::string> urls = {"http://127.0.0.1:2379,http://[::1]:2380",
                                         "http://infra1.example.com:2380"};
  const std::string cluster = "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,a=http://h:1";
  const std::vector<std::string> durations = {"1h30m", "1.5h", "250ms", "10", "5\xC2\xB5s"};
  const std::string yaml =
      "name: a\nheartbeat-interval: 50\nelection-timeout: 500\n"
      "listen-client-urls: http://127.0.0.1:2379\nlease-reads: true\n"
      "initial-cluster: a=http://localhost:2380\n";
  const std::string identity = SerializeIdentity({.cluster_id = 0x127a597e0f685a6bULL,
                                                  .member_id = 0x5fbb3a8679b0cd10ULL,
                                                  .name = "a",
                                                  .engine = EngineKind::kMultiPaxos});
  int accepted = 0;
  for (int i = 0; i < kIterations; ++i) {
    const std::string url = Mutate(random, urls[random.Uniform(urls.size())]);
    accepted += ParseUrlList(url, "--x").ok();
    accepted += ParseInitialCluster(Mutate(random, cluster)).ok();
    const std::string duration = Mutate(random, durations[random.Uniform(durations.size())]);
    accepted += ParseGoDurationMs(duration).ok();
    accepted += ParseCompactionRetention(CompactionMode::kPeriodic, duration).ok();
    Result<ServeConfig> parsed = ParseConfigYaml(Mutate(random, yaml), "fuzz.yml");
    if (parsed.ok()) accepted += Resolve(*parsed).ok();
    accepted += ParseIdentity(Mutate(random, identity), "identity").ok();
  }
  // The mutations are small: some inputs stay valid, so the parsers were not all refusing.
  EXPECT_GT(accepted, kIterations / 10);
}

TEST(ConfigFuzz, HugeNumbersAreRefusedNotOverflowed) {
  EXPECT_FALSE(ParseGoDurationMs(std::string(400, '9') + "h").ok());
  EXPECT_FALSE(ParseGoDurationMs("9223372036854775807h").ok());
  ServeConfig config;
  config.heartbeat_interval_ms = INT64_MAX;
  config.election_timeout_ms = INT64_MAX;
  config.lease_reads = true;
  config.lease_reads_clock_drift_ms = INT64_MAX;
  Result<ServeConfig> resolved = Resolve(config);
  ASSERT_FALSE(resolved.ok());
  EXPECT_NE(resolved.status().message().find("--election-timeout"), std::string::npos)
      << resolved.status().message();
}

}  // namespace
}  // namespace ballot::config
