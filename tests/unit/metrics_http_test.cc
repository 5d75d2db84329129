// The metrics HTTP listener: routes, status codes, health JSON, port conflicts, clean stop.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http_test_client.h"
#include "metrics/http_server.h"
#include "metrics/metrics.h"

namespace ballot::metrics {
namespace {

using ballot::testing::HttpGet;
using ballot::testing::HttpRequest;

class MetricsHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    counter_ = &registry_.AddCounter("ballot_test_requests_total", "Requests.");
    counter_->Inc(3);
    HttpServerOptions o;
    o.listen.push_back({"127.0.0.1", 0});
    o.render = [this] { return registry_.Render(); };
    o.health = [this] { return health_ok_ ? Health{} : Health{false, "RAFT NO LEADER"}; };
    auto server = HttpServer::Start(std::move(o));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    port_ = server_->ports().at(0);
    ASSERT_GT(port_, 0);
  }

  Registry registry_;
  Counter* counter_ = nullptr;
  std::atomic<bool> health_ok_{true};
  std::unique_ptr<HttpServer> server_;
  int port_ = 0;
};

TEST_F(MetricsHttp, ServesTheRegistry) {
  auto r = HttpGet(port_, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.headers.find("text/plain; version=0.0.4"), std::string::npos) << r.headers;
  EXPECT_EQ(r.body,
            "# HELP ballot_test_requests_total Requests.\n"
            "# TYPE ballot_test_requests_total counter\n"
            "ballot_test_requests_total 3\n");
  counter_->Inc();
  EXPECT_NE(HttpGet(port_, "/metrics").body.find("ballot_test_requests_total 4\n"),
            std::string::npos);
}

TEST_F(MetricsHttp, HealthIsEtcdsJson) {
  auto ok = HttpGet(port_, "/health");
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "{\"health\":\"true\"}");
  health_ok_ = false;
  auto bad = HttpGet(port_, "/health");
  EXPECT_EQ(bad.status, 503);
  EXPECT_EQ(bad.body, "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}");
}

TEST_F(MetricsHttp, BadRequestsGetErrorsNotCrashes) {
  EXPECT_EQ(HttpGet(port_, "/nope").status, 404);
  EXPECT_EQ(HttpGet(port_, "/metrics/extra").status, 404);
  auto post = HttpRequest(port_, "POST", "/metrics");
  EXPECT_EQ(post.status, 405);
  EXPECT_NE(post.headers.find("Allow: GET"), std::string::npos) << post.headers;
  EXPECT_EQ(HttpRequest(port_, "DELETE", "/health").status, 405);
  // Garbage instead of a request line: an error answer or a closed connection, never a crash.
  auto garbage = HttpRequest(port_, "", "", std::string("\x01\x02 not http\r\n\r\n", 16));
  EXPECT_TRUE(garbage.status == 0 || garbage.status >= 400) << garbage.status;
  // HEAD is GET without a body.
  auto head = HttpRequest(port_, "HEAD", "/health");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.body, "");
  // Still serving.
  EXPECT_EQ(HttpGet(port_, "/metrics").status, 200);
}

TEST_F(MetricsHttp, ConcurrentScrapesWhileCounting) {
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop) counter_->Inc();
  });
  std::vector<std::thread> scrapers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    scrapers.emplace_back([&] {
      for (int j = 0; j < 10; ++j) ok += HttpGet(port_, "/metrics").status == 200 ? 1 : 0;
    });
  }
  for (auto& t : scrapers) t.join();
  stop = true;
  writer.join();
  EXPECT_EQ(ok.load(), 40);
}

TEST_F(MetricsHttp, PortInUseFailsTheStartWithAClearError) {
  HttpServerOptions o;
  o.listen.push_back({"127.0.0.1", port_});
  o.render = [] { return std::string(); };
  o.health = [] { return Health{}; };
  auto second = HttpServer::Start(std::move(o));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(second.status().message().find(std::to_string(port_)), std::string::npos)
      << second.status().message();
  // The first one is untouched.
  EXPECT_EQ(HttpGet(port_, "/health").status, 200);
}

TEST_F(MetricsHttp, StopClosesTheListenerAndIsIdempotent) {
  server_->Stop();
  EXPECT_EQ(HttpGet(port_, "/metrics").status, 0);
  server_->Stop();
}

TEST(MetricsHttpStart, RefusesBadOptions) {
  HttpServerOptions none;
  none.render = [] { return std::string(); };
  none.health = [] { return Health{}; };
  EXPECT_EQ(HttpServer::Start(none).status().code(), StatusCode::kInvalidArgument);
  HttpServerOptions no_callbacks;
  no_callbacks.listen.push_back({"127.0.0.1", 0});
  EXPECT_EQ(HttpServer::Start(no_callbacks).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ballot::metrics
