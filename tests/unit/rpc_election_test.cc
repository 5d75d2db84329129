// v3electionpb.Election over a one-member cluster served on 127.0.0.1 (ports 31650-31699):
// Campaign queues behind the leader, Leader, Proclaim (only by the leader), Resign, Observe.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "rpc.grpc.pb.h"
#include "rpc/rpc_server.h"
#include "server/member.h"
#include "server_test_util.h"
#include "v3election.grpc.pb.h"

namespace ballot::rpc {
namespace {

using server::Member;
using server::MemberInfo;
using server::MemberOptions;

class OneMember {
 public:
  explicit OneMember(int port) : port_(port) {
    MemberInfo info;
    info.id = 1;
    info.name = "l1";
    info.peer_urls = {"http://127.0.0.1:1"};
    MemberOptions o;
    o.node.id = 1;
    o.node.cluster_id = 7;
    o.node.name = "l1";
    o.node.wal_dir = dir_.path() + "/wal";
    o.node.snap_dir = dir_.path() + "/snap";
    o.node.initial_voters = {1};
    o.node.tick_ms = 10;
    o.node.election_ticks = 10;
    o.node.seed = 1;
    o.store_dir = dir_.path() + "/db";
    o.initial_members = {info};
    o.client_urls = {"http://127.0.0.1:" + std::to_string(port)};
    o.request_timeout_ms = 3000;
    o.election_timeout_ms = 100;
    auto m = Member::Open(std::move(o), net_.EndpointFor(1));
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    member_ = std::move(m).value();
    Member* raw = member_.get();
    net_.Attach(1, raw);
    RpcServerOptions ro;
    ro.listen_addresses = {"127.0.0.1:" + std::to_string(port)};
    ro.worker_threads = 4;
    auto s = RpcServer::Start(raw, ro);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
  }
  ~OneMember() {
    server_->Stop();
    net_.Detach(1);
    member_.reset();
  }
  int64_t Grant(int64_t ttl_s) {
    auto stub = etcdserverpb::Lease::NewStub(channel_);
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl_s);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Status s = stub->LeaseGrant(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.id();
  }
  void Revoke(int64_t id) {
    auto stub = etcdserverpb::Lease::NewStub(channel_);
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(id);
    etcdserverpb::LeaseRevokeResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(stub->LeaseRevoke(&ctx, req, &resp).ok());
  }
  int64_t CreateRevision(const std::string& key) {
    auto stub = etcdserverpb::KV::NewStub(channel_);
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    etcdserverpb::RangeResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(stub->Range(&ctx, req, &resp).ok());
    return resp.kvs_size() == 0 ? 0 : resp.kvs(0).create_revision();
  }
  // Waits until `key` exists (a waiter has entered the queue).
  bool WaitForKey(const std::string& key) {
    for (int i = 0; i < 300; ++i) {
      if (CreateRevision(key) != 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }

 private:
  int port_;
  server::testing::LocalNetwork net_;
  server::testing::TempDir dir_;
  std::unique_ptr<Member> member_;
  std::unique_ptr<RpcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

grpc::Status Campaign(std::shared_ptr<grpc::Channel> ch, const std::string& name, int64_t lease,
                      const std::string& value, v3electionpb::LeaderKey* out) {
  auto stub = v3electionpb::Election::NewStub(ch);
  v3electionpb::CampaignRequest req;
  req.set_name(name);
  req.set_lease(lease);
  req.set_value(value);
  v3electionpb::CampaignResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status s = stub->Campaign(&ctx, req, &resp);
  *out = resp.leader();
  return s;
}

grpc::Status Leader(std::shared_ptr<grpc::Channel> ch, const std::string& name,
                    mvccpb::KeyValue* kv) {
  auto stub = v3electionpb::Election::NewStub(ch);
  v3electionpb::LeaderRequest req;
  req.set_name(name);
  v3electionpb::LeaderResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub->Leader(&ctx, req, &resp);
  *kv = resp.kv();
  return s;
}

grpc::Status Proclaim(std::shared_ptr<grpc::Channel> ch, const v3electionpb::LeaderKey& l,
                      const std::string& value) {
  auto stub = v3electionpb::Election::NewStub(ch);
  v3electionpb::ProclaimRequest req;
  *req.mutable_leader() = l;
  req.set_value(value);
  v3electionpb::ProclaimResponse resp;
  grpc::ClientContext ctx;
  return stub->Proclaim(&ctx, req, &resp);
}

grpc::Status Resign(std::shared_ptr<grpc::Channel> ch, const v3electionpb::LeaderKey& l) {
  auto stub = v3electionpb::Election::NewStub(ch);
  v3electionpb::ResignRequest req;
  *req.mutable_leader() = l;
  v3electionpb::ResignResponse resp;
  grpc::ClientContext ctx;
  return stub->Resign(&ctx, req, &resp);
}

TEST(RpcElection, CampaignLeaderProclaimResign) {
  OneMember c(31651);
  const int64_t a = c.Grant(30), b = c.Grant(30);
  mvccpb::KeyValue kv;
  grpc::Status s = Leader(c.channel(), "e", &kv);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_message(), "election: no leader");

  v3electionpb::LeaderKey la;
  ASSERT_TRUE(Campaign(c.channel(), "e", a, "alpha", &la).ok());
  EXPECT_EQ(la.name(), "e");
  EXPECT_EQ(la.lease(), a);
  EXPECT_EQ(la.rev(), c.CreateRevision(la.key()));
  ASSERT_TRUE(Leader(c.channel(), "e", &kv).ok());
  EXPECT_EQ(kv.key(), la.key());
  EXPECT_EQ(kv.value(), "alpha");

  v3electionpb::LeaderKey lb;
  auto fb =
      std::async(std::launch::async, [&] { return Campaign(c.channel(), "e", b, "beta", &lb); });
  ASSERT_TRUE(c.WaitForKey(la.key().substr(0, 2) + [&] {
    char h[32];
    std::snprintf(h, sizeof(h), "%llx", static_cast<unsigned long long>(b));
    return std::string(h);
  }()));
  EXPECT_EQ(fb.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);
  // The waiting candidate is not the leader: its value is not reported.
  ASSERT_TRUE(Leader(c.channel(), "e", &kv).ok());
  EXPECT_EQ(kv.value(), "alpha");

  ASSERT_TRUE(Proclaim(c.channel(), la, "alpha2").ok());
  ASSERT_TRUE(Leader(c.channel(), "e", &kv).ok());
  EXPECT_EQ(kv.value(), "alpha2");
  v3electionpb::LeaderKey stale = la;
  stale.set_rev(la.rev() + 1000);
  s = Proclaim(c.channel(), stale, "x");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.error_message(), "election: not leader");

  ASSERT_TRUE(Resign(c.channel(), la).ok());
  ASSERT_EQ(fb.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ASSERT_TRUE(fb.get().ok());
  EXPECT_GT(lb.rev(), la.rev());
  ASSERT_TRUE(Leader(c.channel(), "e", &kv).ok());
  EXPECT_EQ(kv.value(), "beta");
  // The old leader can no longer proclaim.
  EXPECT_FALSE(Proclaim(c.channel(), la, "late").ok());
}

TEST(RpcElection, ObserveSeesTheLeaderAndEveryChange) {
  OneMember c(31652);
  const int64_t a = c.Grant(30), b = c.Grant(30);
  v3electionpb::LeaderKey la, lb;
  ASSERT_TRUE(Campaign(c.channel(), "o", a, "v1", &la).ok());

  auto stub = v3electionpb::Election::NewStub(c.channel());
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v3electionpb::LeaderRequest req;
  req.set_name("o");
  auto reader = stub->Observe(&ctx, req);
  v3electionpb::LeaderResponse r;
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.kv().value(), "v1");
  EXPECT_EQ(r.kv().key(), la.key());

  ASSERT_TRUE(Proclaim(c.channel(), la, "v2").ok());
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.kv().value(), "v2");

  auto fb =
      std::async(std::launch::async, [&] { return Campaign(c.channel(), "o", b, "w1", &lb); });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ASSERT_TRUE(Resign(c.channel(), la).ok());
  ASSERT_TRUE(reader->Read(&r));
  EXPECT_EQ(r.kv().value(), "w1");
  ASSERT_TRUE(fb.get().ok());
  EXPECT_EQ(r.kv().key(), lb.key());
  ctx.TryCancel();
  (void)reader->Finish();
}

}  // namespace
}  // namespace ballot::rpc
