// The member's metrics and health: a one-member member in process with its registry served over
// HTTP (what `ballot serve --listen-metrics-urls` wires), and `ballot serve` itself for the flag's
// errors. Ports: 31760-31779 (below Linux's ephemeral range).
#include "server/server_metrics.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "http_test_client.h"
#include "metrics/http_server.h"
#include "server/member.h"
#include "server_test_util.h"

namespace ballot::server {
namespace {

using ballot::testing::HttpGet;
using testing::In;
using testing::LocalNetwork;
using testing::TempDir;

// ctest runs tests in parallel: every test has ports of its own.
struct ServePorts {
  int client = 0;
  int peer = 0;
  int metrics = 0;
};

// The value of the sample `name` (with its labels, e.g. `x{a="b"}`) in a /metrics body; -1 when
// absent.
double Sample(const std::string& body, const std::string& name) {
  const std::string prefix = name + " ";
  size_t pos = 0;
  while ((pos = body.find(prefix, pos)) != std::string::npos) {
    if (pos == 0 || body[pos - 1] == '\n') {
      return std::stod(body.substr(pos + prefix.size(), body.find('\n', pos) - pos));
    }
    pos += prefix.size();
  }
  return -1;
}

class ServerMetrics : public ::testing::Test {
 protected:
  // Opens the member and serves its metrics on `metrics_port`. With `voters` {1, 2} (member 2
  // never runs) there is no quorum, so no leader.
  void Start(int metrics_port, std::set<consensus::NodeId> voters = {1}) {
    port_ = metrics_port;
    MemberOptions o;
    o.node.id = 1;
    o.node.cluster_id = 7;
    o.node.name = "solo";
    o.node.wal_dir = dir_.path() + "/wal";
    o.node.snap_dir = dir_.path() + "/snap";
    o.node.initial_voters = voters;
    o.node.tick_ms = 10;
    o.node.election_ticks = 10;
    o.node.metrics = AddServerMetrics(registry_);
    o.store_dir = dir_.path() + "/db";
    for (consensus::NodeId id : voters) {
      MemberInfo m;
      m.id = id;
      m.name = id == 1 ? "solo" : "absent";
      o.initial_members.push_back(m);
    }
    o.request_timeout_ms = voters.size() == 1 ? 3000 : 300;
    o.election_timeout_ms = 100;
    auto m = Member::Open(std::move(o), net_.EndpointFor(1));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    member_ = std::move(*m);
    AddMemberMetrics(registry_, member_.get());

    metrics::HttpServerOptions h;
    h.listen.push_back({"127.0.0.1", port_});
    h.render = [this] { return registry_.Render(); };
    h.health = [this] { return CheckHealth(member_.get()); };
    auto http = metrics::HttpServer::Start(std::move(h));
    ASSERT_TRUE(http.ok()) << http.status().ToString();
    http_ = std::move(*http);
  }
  void TearDown() override {
    if (http_) http_->Stop();  // Scrapes read the member: stop them first.
    if (member_) member_->Stop();
  }

  bool WaitLeader() {
    const Deadline end = In(5000);
    while (Clock::now() < end) {
      if (member_->node_status().soft.role == consensus::Role::kLeader) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  TempDir dir_;
  LocalNetwork net_;
  metrics::Registry registry_;  // Outlives the member, which holds its instruments.
  std::unique_ptr<Member> member_;
  std::unique_ptr<metrics::HttpServer> http_;
  int port_ = 0;
};

TEST_F(ServerMetrics, PutsAdvanceProposalsAndFsyncs) {
  ASSERT_NO_FATAL_FAILURE(Start(31760));
  ASSERT_TRUE(WaitLeader());
  const std::string before = HttpGet(port_, "/metrics").body;
  const double committed0 = Sample(before, "etcd_server_proposals_committed_total");
  const double applied0 = Sample(before, "etcd_server_proposals_applied_total");
  const double fsyncs0 = Sample(before, "etcd_disk_wal_fsync_duration_seconds_count");
  ASSERT_GE(committed0, 0);  // Present (the leader's no-op may not be committed yet).
  ASSERT_GE(fsyncs0, 0);

  constexpr int kPuts = 5;
  for (int i = 0; i < kPuts; ++i) {
    etcdserverpb::PutRequest r;
    r.set_key("k" + std::to_string(i));
    r.set_value("v");
    ASSERT_TRUE(member_->Put(r).ok());
  }
  // A put is answered while its batch is applied, before the node counts the batch: the counters
  // may trail the last answer for a moment.
  auto reply = HttpGet(port_, "/metrics");
  for (int i = 0;
       i < 200 && Sample(reply.body, "etcd_server_proposals_applied_total") < applied0 + kPuts;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    reply = HttpGet(port_, "/metrics");
  }
  ASSERT_EQ(reply.status, 200);
  const std::string& body = reply.body;
  EXPECT_GE(Sample(body, "etcd_server_proposals_committed_total"), committed0 + kPuts) << body;
  EXPECT_GE(Sample(body, "etcd_server_proposals_applied_total"), applied0 + kPuts) << body;
  EXPECT_GE(Sample(body, "etcd_disk_wal_fsync_duration_seconds_count"), fsyncs0 + 1) << body;
  EXPECT_GT(Sample(body, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"}"), 0);
  EXPECT_GE(Sample(body, "ballot_server_apply_duration_seconds_count"), 1);
  EXPECT_EQ(Sample(body, "etcd_server_has_leader"), 1);
  EXPECT_EQ(Sample(body, "etcd_server_is_leader"), 1);
  EXPECT_EQ(Sample(body, "etcd_server_leader_changes_seen_total"), 1);
  // The member's own publication of its attributes may be in flight.
  EXPECT_LE(Sample(body, "etcd_server_proposals_pending"), 1);
  EXPECT_GE(Sample(body, "etcd_server_proposals_pending"), 0);
  EXPECT_EQ(Sample(body, "etcd_server_proposals_failed_total"), 0);
  EXPECT_EQ(Sample(body, "ballot_engine_info{engine=\"raft\"}"), 1);
  EXPECT_EQ(Sample(body, "etcd_server_id{server_id=\"1\"}"), 1);
  EXPECT_GT(Sample(body, "etcd_mvcc_db_total_size_in_bytes"), 0);
  // Read separately, so RocksDB may have written in between: both present, not equal.
  EXPECT_GT(Sample(body, "etcd_debugging_mvcc_db_total_size_in_bytes"), 0);
  EXPECT_EQ(Sample(body, "etcd_debugging_mvcc_watcher_total"), 0);
  EXPECT_EQ(Sample(body, "ballot_lease_active"), 0);
  EXPECT_NE(body.find("# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n"),
            std::string::npos);
}

TEST_F(ServerMetrics, WatchersAndLeasesAreCounted) {
  ASSERT_NO_FATAL_FAILURE(Start(31764));
  ASSERT_TRUE(WaitLeader());
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(60);
  ASSERT_TRUE(member_->LeaseGrant(grant).ok());
  grant.set_id(0);
  ASSERT_TRUE(member_->LeaseGrant(grant).ok());
  auto stream = member_->watch_hub()->OpenStream([] {});
  watch::WatchRequest w;
  w.key = "a";
  ASSERT_TRUE(stream->Watch(w).ok());
  const std::string body = HttpGet(port_, "/metrics").body;
  EXPECT_EQ(Sample(body, "ballot_lease_active"), 2) << body;
  EXPECT_EQ(Sample(body, "etcd_debugging_mvcc_watcher_total"), 1) << body;
  stream.reset();
  EXPECT_EQ(Sample(HttpGet(port_, "/metrics").body, "etcd_debugging_mvcc_watcher_total"), 0);
}

TEST_F(ServerMetrics, HealthIsTrueWithALeader) {
  ASSERT_NO_FATAL_FAILURE(Start(31765));
  ASSERT_TRUE(WaitLeader());
  auto r = HttpGet(port_, "/health");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"health\":\"true\"}");
}

TEST_F(ServerMetrics, WithoutALeaderProposalsFailAndHealthIs503) {
  ASSERT_NO_FATAL_FAILURE(Start(31774, {1, 2}));
  etcdserverpb::PutRequest r;
  r.set_key("k");
  r.set_value("v");
  EXPECT_FALSE(member_->Put(r).ok());
  const std::string body = HttpGet(port_, "/metrics").body;
  EXPECT_EQ(Sample(body, "etcd_server_proposals_failed_total"), 1) << body;
  EXPECT_EQ(Sample(body, "etcd_server_proposals_pending"), 0) << body;
  EXPECT_EQ(Sample(body, "etcd_server_has_leader"), 0) << body;
  EXPECT_EQ(Sample(body, "etcd_server_is_leader"), 0) << body;
  EXPECT_EQ(Sample(body, "etcd_server_leader_changes_seen_total"), 0) << body;
  auto health = HttpGet(port_, "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_EQ(health.body, "{\"health\":\"false\",\"reason\":\"RAFT NO LEADER\"}");
}

TEST_F(ServerMetrics, PortInUseFailsTheSecondListener) {
  ASSERT_NO_FATAL_FAILURE(Start(31766));
  metrics::HttpServerOptions h;
  h.listen.push_back({"127.0.0.1", port_});
  h.render = [] { return std::string(); };
  h.health = [] { return metrics::Health{}; };
  auto second = metrics::HttpServer::Start(std::move(h));
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("31766"), std::string::npos);
}

TEST_F(ServerMetrics, LeaderChangesAreLoggedWithNameAndTerm) {
  // Added before the member's threads start and removed after they stopped (sinks are not
  // thread-safe to change while logging).
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000);
  spdlog::default_logger()->sinks().push_back(sink);
  ASSERT_NO_FATAL_FAILURE(Start(31773));
  const bool leader = WaitLeader();
  http_->Stop();
  member_->Stop();
  spdlog::default_logger()->sinks().pop_back();
  ASSERT_TRUE(leader);
  bool found = false;
  for (const std::string& line : sink->last_formatted()) {
    if (line.find("member solo (1): became leader at term 1 (previous leader none)") !=
        std::string::npos) {
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

// ---- `ballot serve` with --listen-metrics-urls ----

std::filesystem::path BallotBinary() {
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
  return std::filesystem::path(std::string(self, static_cast<size_t>(std::max<ssize_t>(n, 0))))
             .parent_path() /
         "ballot";
}

// Runs `ballot serve` with `metrics_urls`; returns its exit status and stderr, or -1 when it is
// still running after `wait_ms` (then it is left running and `pid` says which process).
struct ServeRun {
  int exit_code = -1;
  std::string stderr_text;
  pid_t pid = 0;
};
ServeRun Serve(const TempDir& dir, const ServePorts& ports, const std::string& metrics_urls,
               int wait_ms) {
  ServeRun run;
  const std::string err = dir.path() + "/stderr";
  const std::string client = "http://127.0.0.1:" + std::to_string(ports.client);
  const std::string peer = "http://127.0.0.1:" + std::to_string(ports.peer);
  std::vector<std::string> args = {BallotBinary().string(),
                                   "serve",
                                   "--name",
                                   "m1",
                                   "--data-dir",
                                   dir.path() + "/data",
                                   "--listen-client-urls",
                                   client,
                                   "--advertise-client-urls",
                                   client,
                                   "--listen-peer-urls",
                                   peer,
                                   "--initial-advertise-peer-urls",
                                   peer,
                                   "--initial-cluster",
                                   "m1=" + peer,
                                   "--listen-metrics-urls",
                                   metrics_urls};
  run.pid = ::fork();
  if (run.pid == 0) {
    FILE* f = std::freopen(err.c_str(), "w", stderr);
    (void)f;
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::_Exit(127);
  }
  const Deadline end = In(wait_ms);
  while (Clock::now() < end) {
    int status = 0;
    if (::waitpid(run.pid, &status, WNOHANG) == run.pid) {
      run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
      run.pid = 0;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::ifstream in(err);
  run.stderr_text.assign(std::istreambuf_iterator<char>(in), {});
  return run;
}

void StopServe(ServeRun& run) {
  if (run.pid == 0) return;
  ::kill(run.pid, SIGTERM);
  int status = 0;
  for (int i = 0; i < 500 && ::waitpid(run.pid, &status, WNOHANG) != run.pid; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (::kill(run.pid, 0) == 0) {
    ::kill(run.pid, SIGKILL);
    ::waitpid(run.pid, &status, 0);
  }
  run.pid = 0;
}

TEST(ServeMetricsFlag, ServesMetricsAndHealth) {
  const ServePorts ports{31761, 31762, 31763};
  ASSERT_TRUE(std::filesystem::exists(BallotBinary())) << "build the `ballot` target";
  TempDir dir;
  ServeRun run = Serve(dir, ports, "http://127.0.0.1:" + std::to_string(ports.metrics), 0);
  std::string body;
  const Deadline end = In(10000);
  while (Clock::now() < end) {
    body = HttpGet(ports.metrics, "/metrics").body;
    if (Sample(body, "etcd_server_is_leader") == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto health = HttpGet(ports.metrics, "/health");
  StopServe(run);
  EXPECT_EQ(Sample(body, "etcd_server_is_leader"), 1) << body;
  EXPECT_EQ(Sample(body, "etcd_server_has_leader"), 1);
  EXPECT_EQ(Sample(body, "ballot_engine_info{engine=\"raft\"}"), 1);
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "{\"health\":\"true\"}");
}

TEST(ServeMetricsFlag, PortInUseStopsTheStartWithAClearError) {
  const ServePorts ports{31767, 31768, 31769};
  ASSERT_TRUE(std::filesystem::exists(BallotBinary())) << "build the `ballot` target";
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int yes = 1;  // The previous test's connections may linger in TIME_WAIT on this port.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(ports.metrics);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  TempDir dir;
  ServeRun run = Serve(dir, ports, "http://127.0.0.1:" + std::to_string(ports.metrics), 10000);
  StopServe(run);
  ::close(fd);
  EXPECT_EQ(run.exit_code, 2) << run.stderr_text;  // Serve() failed: kExitError.
  EXPECT_NE(run.stderr_text.find("--listen-metrics-urls"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find(std::to_string(ports.metrics)), std::string::npos)
      << run.stderr_text;
}

TEST(ServeMetricsFlag, HttpsIsRefused) {
  const ServePorts ports{31770, 31771, 31772};
  ASSERT_TRUE(std::filesystem::exists(BallotBinary())) << "build the `ballot` target";
  TempDir dir;
  ServeRun run = Serve(dir, ports, "https://127.0.0.1:" + std::to_string(ports.metrics), 10000);
  StopServe(run);
  EXPECT_EQ(run.exit_code, 2) << run.stderr_text;  // A bad flag: the CLI's kExitError.
  EXPECT_NE(run.stderr_text.find("listen-metrics-urls"), std::string::npos) << run.stderr_text;
  EXPECT_NE(run.stderr_text.find("TLS"), std::string::npos) << run.stderr_text;
}

}  // namespace
}  // namespace ballot::server
