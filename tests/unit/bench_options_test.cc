#include <gtest/gtest.h>

#include <string>

#include "bench/options.h"

namespace ballot::bench {
namespace {

// The error for `options`, or "" if it is valid.
std::string ErrorOf(Options options) {
  const Status status = Validate(options);
  return status.ok() ? "" : status.message();
}

TEST(BenchOptions, DefaultsAreValidAndRunTenSeconds) {
  Options options;
  ASSERT_TRUE(Validate(options).ok());
  EXPECT_EQ(options.duration_s, 10);
  EXPECT_EQ(options.key_size, 256u);
  EXPECT_EQ(options.value_size, 1024u);
}

TEST(BenchOptions, TotalReplacesDuration) {
  Options options;
  options.total = 500;
  ASSERT_TRUE(Validate(options).ok());
  EXPECT_EQ(options.duration_s, 0);
  options.duration_s = 5;
  EXPECT_NE(ErrorOf(options).find("--total and --duration"), std::string::npos);
}

TEST(BenchOptions, RejectsOutOfRangeFlagsNamingThem) {
  auto with = [](auto change) {
    Options options;
    change(options);
    return ErrorOf(options);
  };
  EXPECT_NE(with([](Options& o) { o.clients = 0; }).find("--clients"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.conns = 0; }).find("--conns"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.conns = 200; }).find("at most --clients"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.threads = 0; }).find("--threads"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.rate = -1; }).find("--rate"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.duration_s = -1; }).find("--duration"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.key_size = 0; }).find("--key-size"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.value_size = 2 << 20; }).find("--value-size"),
            std::string::npos);
  EXPECT_NE(with([](Options& o) { o.key_count = 0; }).find("--key-space"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.range_limit = -1; }).find("--range-limit"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.locks = 0; }).find("--locks"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.lease_ttl_s = 0; }).find("--lease-ttl"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.watchers = 0; }).find("--watchers"), std::string::npos);
  EXPECT_NE(with([](Options& o) { o.connect_timeout_ms = 0; }).find("--connect-timeout-ms"),
            std::string::npos);
  // 10 bytes cannot hold "bench/" and 10000 distinct indexes.
  EXPECT_NE(with([](Options& o) { o.key_size = 8; }).find("cannot hold"), std::string::npos);
}

TEST(BenchOptions, WorkloadSpecificChecks) {
  Options keepalive;
  keepalive.workload = Workload::kLeaseKeepAlive;
  keepalive.leases = 10;
  keepalive.clients = 20;
  keepalive.conns = 2;
  EXPECT_NE(ErrorOf(keepalive).find("at most --leases"), std::string::npos);
  Options watch;
  watch.workload = Workload::kWatch;
  watch.value_size = 10;
  EXPECT_NE(ErrorOf(watch).find("at least 24"), std::string::npos);
  watch.value_size = 24;
  EXPECT_EQ(ErrorOf(watch), "");
}

TEST(BenchOptions, EndpointsAreNormalized) {
  Options options;
  options.endpoints = {"http://127.0.0.1:2379", "localhost:22379/"};
  ASSERT_TRUE(Validate(options).ok());
  EXPECT_EQ(options.endpoints, (std::vector<std::string>{"127.0.0.1:2379", "localhost:22379"}));
  for (const char* bad : {"127.0.0.1", "https://127.0.0.1:2379", "host:0", "host:99999",
                          "host:port", ":2379", "http://h:1/x"}) {
    EXPECT_FALSE(NormalizeEndpoint(bad).ok()) << bad;
  }
  options.endpoints = {};
  EXPECT_NE(ErrorOf(options).find("--endpoints"), std::string::npos);
}

TEST(BenchOptions, WorkloadNamesRoundTrip) {
  for (const char* name : {"put", "range", "txn", "lock", "watch", "lease-keepalive"}) {
    Result<Workload> workload = ParseWorkload(name);
    ASSERT_TRUE(workload.ok()) << name;
    EXPECT_STREQ(WorkloadName(*workload), name);
  }
  EXPECT_FALSE(ParseWorkload("get").ok());
}

}  // namespace
}  // namespace ballot::bench
