// The gRPC services: three members in one process (in-process peer network, real WAL and store),
// each serving etcd's API on 127.0.0.1; the test talks to them with etcd's generated stubs.
#include "rpc/rpc_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "rpc.grpc.pb.h"
#include "server/errors.h"
#include "server/member.h"
#include "server_test_util.h"

namespace ballot::rpc {
namespace {

using consensus::NodeId;
using server::Clock;
using server::Deadline;
using server::Member;
using server::MemberInfo;
using server::MemberOptions;
using server::testing::In;

// Each test has its own ports: ctest runs tests in parallel, and a port in use fails the start.
int base_port = 0;
int ClientPort(NodeId id) { return base_port + static_cast<int>(id); }

class RpcCluster {
 public:
  explicit RpcCluster(int base) {
    base_port = base;
    std::vector<MemberInfo> initial;
    for (NodeId id : {1, 2, 3}) {
      MemberInfo m;
      m.id = id;
      m.name = "r" + std::to_string(id);
      m.peer_urls = {"http://127.0.0.1:1"};  // Unused: the peer network is in-process.
      initial.push_back(m);
    }
    for (NodeId id : {1, 2, 3}) {
      MemberOptions o;
      const std::string dir = dir_.path() + "/m" + std::to_string(id);
      o.node.id = id;
      o.node.cluster_id = 5;
      o.node.name = "r" + std::to_string(id);
      o.node.wal_dir = dir + "/wal";
      o.node.snap_dir = dir + "/snap";
      o.node.initial_voters = {1, 2, 3};
      o.node.tick_ms = 10;
      o.node.election_ticks = 30;  // 300 ms: fewer spurious elections on a loaded machine.
      o.node.seed = id;
      o.store_dir = dir + "/db";
      o.initial_members = initial;
      o.client_urls = {"http://127.0.0.1:" + std::to_string(ClientPort(id))};
      o.request_timeout_ms = 3000;
      o.election_timeout_ms = 100;
      auto m = Member::Open(std::move(o), net_.EndpointFor(id));
      EXPECT_TRUE(m.ok()) << m.status().ToString();
      members_[id] = std::move(m).value();
      Member* raw = members_[id].get();
      net_.Attach(id, raw);
      RpcServerOptions ro;
      ro.listen_addresses = {"127.0.0.1:" + std::to_string(ClientPort(id))};
      ro.worker_threads = 4;
      auto s = RpcServer::Start(raw, ro);
      EXPECT_TRUE(s.ok()) << s.status().ToString();
      servers_[id] = std::move(s).value();
    }
  }
  ~RpcCluster() {
    for (auto& [id, s] : servers_) s->Stop();
    for (auto& [id, m] : members_) {
      net_.Detach(id);
      m.reset();
    }
  }
  NodeId Leader() {
    Deadline end = In(5000);
    while (Clock::now() < end) {
      for (auto& [id, m] : members_) {
        if (m->node_status().soft.role == consensus::Role::kLeader) return id;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return consensus::kNoNode;
  }
  // Waits until every member published its client URL (forwarding needs the leader's). The bound
  // is generous: under a loaded CI machine, 5 s once was not enough.
  bool WaitPublished() {
    Deadline end = In(15000);
    while (Clock::now() < end) {
      bool all = true;
      for (const auto& m : members_[1]->Members()) all = all && !m.client_urls.empty();
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  std::shared_ptr<grpc::Channel> Channel(NodeId id) {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(ClientPort(id)),
                               grpc::InsecureChannelCredentials());
  }

  server::testing::LocalNetwork net_;
  server::testing::TempDir dir_;
  std::map<NodeId, std::unique_ptr<Member>> members_;
  std::map<NodeId, std::unique_ptr<RpcServer>> servers_;
};

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return ctx;
}

TEST(RpcServer, PutOnAFollowerIsForwardedAndReadEverywhere) {
  RpcCluster c(31520);
  NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  ASSERT_TRUE(c.WaitPublished());
  NodeId follower = leader == 1 ? 2 : 1;
  auto kv = etcdserverpb::KV::NewStub(c.Channel(follower));
  etcdserverpb::PutRequest put;
  put.set_key("hello");
  put.set_value("world");
  etcdserverpb::PutResponse put_resp;
  grpc::Status s = kv->Put(Ctx().get(), put, &put_resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The header is the answering member's own.
  EXPECT_EQ(put_resp.header().member_id(), follower);
  EXPECT_EQ(put_resp.header().cluster_id(), 5u);
  EXPECT_EQ(put_resp.header().revision(), 2);
  for (NodeId id : {1, 2, 3}) {
    auto stub = etcdserverpb::KV::NewStub(c.Channel(id));
    etcdserverpb::RangeRequest get;
    get.set_key("hello");
    etcdserverpb::RangeResponse got;
    ASSERT_TRUE(stub->Range(Ctx().get(), get, &got).ok());
    ASSERT_EQ(got.kvs_size(), 1) << "member " << id;
    EXPECT_EQ(got.kvs(0).value(), "world");
  }
}

TEST(RpcServer, ConcurrentPutsOnAFollowerAreForwardedToTheLeader) {
  RpcCluster c(31556);
  NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  ASSERT_TRUE(c.WaitPublished());
  NodeId follower = leader == 1 ? 2 : 1;
  auto kv = etcdserverpb::KV::NewStub(c.Channel(follower));
  constexpr int kPuts = 300;
  struct Call {
    grpc::ClientContext ctx;
    etcdserverpb::PutRequest request;
    etcdserverpb::PutResponse response;
    grpc::Status status;
  };
  std::vector<std::unique_ptr<Call>> calls;
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  for (int i = 0; i < kPuts; ++i) {
    auto call = std::make_unique<Call>();
    call->ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    call->request.set_key("batch/" + std::to_string(i));
    call->request.set_value(std::string(100, 'v'));
    Call* raw = call.get();
    calls.push_back(std::move(call));
    kv->async()->Put(&raw->ctx, &raw->request, &raw->response, [&, raw](grpc::Status s) {
      std::lock_guard<std::mutex> lock(mu);
      raw->status = std::move(s);
      ++done;
      cv.notify_all();
    });
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return done == kPuts; }));
  }
  std::set<int64_t> revisions;
  for (const auto& call : calls) {
    ASSERT_TRUE(call->status.ok()) << call->status.error_message();
    EXPECT_EQ(call->response.header().member_id(), follower);
    revisions.insert(call->response.header().revision());
  }
  EXPECT_EQ(revisions.size(), static_cast<size_t>(kPuts));  // Each its own revision.
  // Each went to the leader over the peer streams (and the member's own requests, if any).
  EXPECT_GE(c.members_[follower]->forwarded_requests(), static_cast<uint64_t>(kPuts));
  etcdserverpb::RangeRequest count;
  count.set_key("batch/");
  count.set_range_end("batch0");
  count.set_count_only(true);
  etcdserverpb::RangeResponse counted;
  ASSERT_TRUE(
      etcdserverpb::KV::NewStub(c.Channel(leader))->Range(Ctx().get(), count, &counted).ok());
  EXPECT_EQ(counted.count(), kPuts);
}

// A forwarded request whose message to the leader is lost gets etcd's timeout at its deadline,
// and one still waiting when the member stops gets "server stopped" at once.
TEST(RpcServer, AForwardedRequestWithoutAnAnswerEndsAtItsDeadlineOrAtStop) {
  RpcCluster c(31570);
  NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  ASSERT_TRUE(c.WaitPublished());
  NodeId follower = leader == 1 ? 2 : 1;
  c.net_.SetMemberFilter([follower](NodeId from, NodeId) { return from == follower; });
  struct Answer {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Status> status;
    void Set(Status s) {
      std::lock_guard<std::mutex> lock(mu);
      status = std::move(s);
      cv.notify_all();
    }
    std::optional<Status> WaitFor(std::chrono::milliseconds d) {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait_for(lock, d, [&] { return status.has_value(); });
      return status;
    }
  };
  etcdserverpb::PutRequest put;
  put.set_key("lost");
  put.set_value("v");
  const auto start = Clock::now();
  auto timed_out = std::make_shared<Answer>();
  c.members_[follower]->PutAsync(
      put, [timed_out](Result<etcdserverpb::PutResponse> r) { timed_out->Set(r.status()); });
  etcdserverpb::LeaseKeepAliveRequest keep;
  keep.set_id(12345);
  auto keep_timed_out = std::make_shared<Answer>();
  c.members_[follower]->LeaseKeepAliveAsync(
      keep, [keep_timed_out](Result<etcdserverpb::LeaseKeepAliveResponse> r) {
        keep_timed_out->Set(r.status());
      });
  // request_timeout_ms is 3 s; housekeeping looks every 100 ms.
  std::optional<Status> s = timed_out->WaitFor(std::chrono::seconds(10));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->message(), std::string(server::kErrTimeout));
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(2900));
  s = keep_timed_out->WaitFor(std::chrono::seconds(2));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->message(), std::string(server::kErrTimeout));

  // The leader hears again, but only the follower's later requests: nothing answers twice.
  c.net_.SetMemberFilter(nullptr);
  etcdserverpb::PutResponse got;
  auto kv = etcdserverpb::KV::NewStub(c.Channel(follower));
  ASSERT_TRUE(kv->Put(Ctx().get(), put, &got).ok());

  c.net_.SetMemberFilter([follower](NodeId from, NodeId) { return from == follower; });
  auto stopped = std::make_shared<Answer>();
  c.members_[follower]->PutAsync(
      put, [stopped](Result<etcdserverpb::PutResponse> r) { stopped->Set(r.status()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(stopped->WaitFor(std::chrono::milliseconds(0)).has_value());
  c.servers_[follower]->Stop();
  const auto stop_start = Clock::now();
  c.members_[follower]->Stop();
  s = stopped->WaitFor(std::chrono::seconds(1));
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->message(), std::string(server::kErrStopped));
  EXPECT_LT(Clock::now() - stop_start, std::chrono::seconds(2));  // Not the 3 s deadline.
}

TEST(RpcServer, SerializableReadsAreAnsweredByEachMemberWithErrorsAsEtcds) {
  RpcCluster c(31566);
  NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  auto leader_kv = etcdserverpb::KV::NewStub(c.Channel(leader));
  for (const char* key : {"s/a", "s/b", "s/c"}) {
    etcdserverpb::PutRequest put;
    put.set_key(key);
    put.set_value(std::string("v-") + key);
    etcdserverpb::PutResponse put_resp;
    ASSERT_TRUE(leader_kv->Put(Ctx().get(), put, &put_resp).ok());
  }
  for (NodeId id : {1, 2, 3}) {
    auto kv = etcdserverpb::KV::NewStub(c.Channel(id));
    // A point read (answered on the gRPC thread) and a range (on the pool): each member's own
    // store, once it has applied the puts.
    etcdserverpb::RangeRequest point;
    point.set_key("s/b");
    point.set_serializable(true);
    etcdserverpb::RangeRequest range = point;
    range.set_key("s/");
    range.set_range_end("s0");
    etcdserverpb::RangeResponse got;
    const Deadline until = Clock::now() + std::chrono::seconds(10);
    do {
      got.Clear();
      ASSERT_TRUE(kv->Range(Ctx().get(), range, &got).ok());
    } while (got.kvs_size() < 3 && Clock::now() < until);
    ASSERT_EQ(got.kvs_size(), 3) << "member " << id;
    EXPECT_EQ(got.header().member_id(), id);
    got.Clear();
    ASSERT_TRUE(kv->Range(Ctx().get(), point, &got).ok());
    ASSERT_EQ(got.kvs_size(), 1);
    EXPECT_EQ(got.kvs(0).value(), "v-s/b");
    EXPECT_EQ(got.header().member_id(), id);

    // The point path returns the request's errors too.
    etcdserverpb::RangeRequest future = point;
    future.set_revision(1000);
    grpc::Status s = kv->Range(Ctx().get(), future, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision is a future revision");
    etcdserverpb::RangeRequest no_key;
    no_key.set_serializable(true);
    s = kv->Range(Ctx().get(), no_key, &got);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "etcdserver: key is not provided");
  }
}

TEST(RpcServer, ErrorsCarryEtcdsCodesAndMessages) {
  RpcCluster c(31530);
  NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  auto kv = etcdserverpb::KV::NewStub(c.Channel(leader));
  etcdserverpb::PutRequest big;
  big.set_key("big");
  big.set_value(std::string(1600 * 1024, 'x'));
  etcdserverpb::PutResponse resp;
  grpc::Status s = kv->Put(Ctx().get(), big, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: request is too large");

  etcdserverpb::PutRequest empty;
  s = kv->Put(Ctx().get(), empty, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: key is not provided");

  auto lease = etcdserverpb::Lease::NewStub(c.Channel(leader));
  etcdserverpb::LeaseRevokeRequest revoke;
  revoke.set_id(424242);
  etcdserverpb::LeaseRevokeResponse revoke_resp;
  s = lease->LeaseRevoke(Ctx().get(), revoke, &revoke_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "etcdserver: requested lease not found");

  etcdserverpb::RangeRequest future;
  future.set_key("a");
  future.set_revision(1000);
  etcdserverpb::RangeResponse range_resp;
  s = kv->Range(Ctx().get(), future, &range_resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision is a future revision");
}

TEST(RpcServer, WatchStreamDeliversEventsFromAnotherMembersWrites) {
  RpcCluster c(31540);
  NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  NodeId follower = leader == 3 ? 2 : 3;
  auto watch = etcdserverpb::Watch::NewStub(c.Channel(follower));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = watch->Watch(&ctx);
  etcdserverpb::WatchRequest create;
  create.mutable_create_request()->set_key("w/");
  create.mutable_create_request()->set_range_end("w0");
  create.mutable_create_request()->set_prev_kv(true);
  ASSERT_TRUE(stream->Write(create));
  etcdserverpb::WatchResponse created;
  ASSERT_TRUE(stream->Read(&created));
  EXPECT_TRUE(created.created());
  const int64_t watch_id = created.watch_id();

  auto kv = etcdserverpb::KV::NewStub(c.Channel(leader));
  for (const char* v : {"1", "2"}) {
    etcdserverpb::PutRequest put;
    put.set_key("w/a");
    put.set_value(v);
    etcdserverpb::PutResponse resp;
    ASSERT_TRUE(kv->Put(Ctx().get(), put, &resp).ok());
  }
  std::vector<mvccpb::Event> events;
  while (events.size() < 2) {
    etcdserverpb::WatchResponse r;
    ASSERT_TRUE(stream->Read(&r));
    EXPECT_EQ(r.watch_id(), watch_id);
    EXPECT_EQ(r.header().member_id(), follower);
    for (const auto& e : r.events()) events.push_back(e);
  }
  EXPECT_EQ(events[0].kv().value(), "1");
  EXPECT_EQ(events[1].kv().value(), "2");
  EXPECT_EQ(events[1].prev_kv().value(), "1");
  EXPECT_EQ(events[1].kv().mod_revision(), events[0].kv().mod_revision() + 1);
  ctx.TryCancel();
}

TEST(RpcServer, KeepAliveOnAFollowerRenewsTheLeadersLease) {
  RpcCluster c(31550);
  NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  ASSERT_TRUE(c.WaitPublished());
  NodeId follower = leader == 1 ? 3 : 1;
  auto lease = etcdserverpb::Lease::NewStub(c.Channel(follower));
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(30);
  etcdserverpb::LeaseGrantResponse granted;
  ASSERT_TRUE(lease->LeaseGrant(Ctx().get(), grant, &granted).ok());
  EXPECT_EQ(granted.ttl(), 30);

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto stream = lease->LeaseKeepAlive(&ctx);
  etcdserverpb::LeaseKeepAliveRequest ka;
  ka.set_id(granted.id());
  ASSERT_TRUE(stream->Write(ka));
  etcdserverpb::LeaseKeepAliveResponse kr;
  ASSERT_TRUE(stream->Read(&kr));
  EXPECT_EQ(kr.id(), granted.id());
  EXPECT_EQ(kr.ttl(), 30);
  // An unknown lease: TTL 0, as etcd answers.
  ka.set_id(777);
  ASSERT_TRUE(stream->Write(ka));
  ASSERT_TRUE(stream->Read(&kr));
  EXPECT_EQ(kr.ttl(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace ballot::rpc
