// The client machinery of `ballot bench` against an in-process KV server: exact operation counts,
// error accounting, the rate limit and the end of a timed run. (Workloads against a real etcd run
// in bench/smoke.sh.)
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "bench/options.h"
#include "bench/runner.h"
#include "rpc.grpc.pb.h"

namespace ballot::bench {
namespace {

class FakeKv : public etcdserverpb::KV::Service {
 public:
  grpc::Status Put(grpc::ServerContext*, const etcdserverpb::PutRequest* request,
                   etcdserverpb::PutResponse*) override {
    const uint64_t n = puts.fetch_add(1);
    if (request->key().size() != expected_key_size) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "wrong key size");
    }
    if (fail_every > 0 && n % fail_every == 0) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "injected");
    }
    return grpc::Status::OK;
  }

  std::atomic<uint64_t> puts{0};
  uint64_t fail_every = 0;
  size_t expected_key_size = 256;
};

class BenchRunner : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&kv_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(); }

  Options PutOptions() {
    Options options;
    options.workload = Workload::kPut;
    options.endpoints = {"127.0.0.1:" + std::to_string(port_)};
    options.clients = 50;
    options.conns = 4;
    options.value_size = 16;
    return options;
  }

  FakeKv kv_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(BenchRunner, TotalIsExact) {
  Options options = PutOptions();
  options.total = 1000;
  ASSERT_TRUE(Validate(options).ok());
  Result<Report> report = bench::Run(options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->ok, 1000u);
  EXPECT_EQ(report->errors, 0u);
  EXPECT_EQ(kv_.puts.load(), 1000u);
  EXPECT_EQ(report->latency.count(), 1000u);
  EXPECT_GT(report->throughput(), 0);
}

TEST_F(BenchRunner, FewerOperationsThanClients) {
  Options options = PutOptions();
  options.total = 7;
  ASSERT_TRUE(Validate(options).ok());
  Result<Report> report = bench::Run(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->ok, 7u);
  EXPECT_EQ(kv_.puts.load(), 7u);
}

TEST_F(BenchRunner, ErrorsAreCountedWithTheirMessage) {
  kv_.fail_every = 4;  // calls 0, 4, 8, ... fail
  Options options = PutOptions();
  options.total = 400;
  ASSERT_TRUE(Validate(options).ok());
  Result<Report> report = bench::Run(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->errors, 100u);
  EXPECT_EQ(report->ok, 300u);
  ASSERT_EQ(report->error_samples.size(), 1u);
  EXPECT_EQ(report->error_samples.begin()->first, "UNAVAILABLE: injected");
  EXPECT_EQ(report->error_samples.begin()->second, 100u);
}

TEST_F(BenchRunner, RateLimitsThroughput) {
  Options options = PutOptions();
  options.total = 100;
  options.rate = 200;  // 100 operations at 200/s: about 0.5 s
  ASSERT_TRUE(Validate(options).ok());
  Result<Report> report = bench::Run(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->ok, 100u);
  EXPECT_GE(report->elapsed_s, 0.45);
  EXPECT_LT(report->throughput(), 225);
}

TEST_F(BenchRunner, TimedRunStopsAtItsDuration) {
  Options options = PutOptions();
  options.duration_s = 0.5;
  ASSERT_TRUE(Validate(options).ok());
  Result<Report> report = bench::Run(options);
  ASSERT_TRUE(report.ok());
  EXPECT_GT(report->ok, 0u);
  EXPECT_EQ(report->errors, 0u);
  EXPECT_GE(report->elapsed_s, 0.45);
  EXPECT_LT(report->elapsed_s, 2.0);
  // The process's CPU over the measured window: some, and no more than all its cores could give.
  EXPECT_GT(report->client_cpu_s, 0.0);
  EXPECT_LT(report->client_cpu_s,
            report->elapsed_s * std::max(1u, std::thread::hardware_concurrency()) + 0.1);
}

TEST_F(BenchRunner, KeysHaveTheConfiguredSize) {
  kv_.expected_key_size = 40;
  Options options = PutOptions();
  options.total = 50;
  options.key_size = 40;
  ASSERT_TRUE(Validate(options).ok());
  Result<Report> report = bench::Run(options);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->errors, 0u);
  EXPECT_EQ(report->ok, 50u);
}

TEST_F(BenchRunner, SetupFailureSaysWhy) {
  // The fake serves only KV: a lease workload cannot even set up, and says why.
  Options options = PutOptions();
  options.workload = Workload::kLeaseKeepAlive;
  options.clients = 2;
  options.conns = 1;
  options.leases = 4;
  options.total = 10;
  ASSERT_TRUE(Validate(options).ok());
  Result<Report> report = bench::Run(options);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("UNIMPLEMENTED"), std::string::npos)
      << report.status().message();
}

TEST(BenchRunnerNoServer, UnreachableEndpointFailsFast) {
  Options options;
  options.endpoints = {"127.0.0.1:1"};
  options.total = 1;
  options.clients = 1;
  options.conns = 1;
  options.connect_timeout_ms = 300;
  ASSERT_TRUE(Validate(options).ok());
  Result<Report> report = bench::Run(options);
  ASSERT_FALSE(report.ok());
  EXPECT_NE(report.status().message().find("cannot connect"), std::string::npos);
}

}  // namespace
}  // namespace ballot::bench
