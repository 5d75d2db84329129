// The cluster operations over gRPC on one member: Maintenance.Hash and Defragment, Cluster.
// MemberUpdate (success and etcd's codes). Port 31798.
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <thread>

#include "rpc.grpc.pb.h"
#include "rpc/rpc_server.h"
#include "server/errors.h"
#include "server/member.h"
#include "server_test_util.h"

namespace ballot::rpc {
namespace {

using server::Clock;
using server::Member;
using server::MemberOptions;
using server::testing::In;

constexpr char kAddress[] = "127.0.0.1:31798";

std::unique_ptr<grpc::ClientContext> Ctx() {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  return ctx;
}

TEST(RpcOps, HashDefragmentAndMemberUpdateAreServed) {
  server::testing::LocalNetwork net;
  server::testing::TempDir dir;
  MemberOptions o;
  o.node.id = 1;
  o.node.cluster_id = 6;
  o.node.name = "s1";
  o.node.wal_dir = dir.path() + "/wal";
  o.node.snap_dir = dir.path() + "/snap";
  o.node.initial_voters = {1};
  o.node.tick_ms = 10;
  o.node.election_ticks = 10;
  o.store_dir = dir.path() + "/db";
  server::MemberInfo self;
  self.id = 1;
  self.name = "s1";
  self.peer_urls = {"http://127.0.0.1:31799"};
  o.initial_members = {self};
  o.request_timeout_ms = 3000;
  o.election_timeout_ms = 100;
  auto member = Member::Open(std::move(o), net.EndpointFor(1));
  ASSERT_TRUE(member.ok()) << member.status().ToString();
  Member* m = member->get();
  net.Attach(1, m);
  RpcServerOptions ro;
  ro.listen_addresses = {kAddress};
  ro.worker_threads = 2;
  auto rpc = RpcServer::Start(m, ro);
  ASSERT_TRUE(rpc.ok()) << rpc.status().ToString();

  etcdserverpb::PutRequest put;
  put.set_key("k");
  put.set_value("v");
  Result<etcdserverpb::PutResponse> r = Status::Unavailable("not tried");
  for (auto end = In(5000); Clock::now() < end && !r.ok();) {
    r = m->Put(put);
    if (!r.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(r.ok()) << r.status().ToString();

  auto channel = grpc::CreateChannel(kAddress, grpc::InsecureChannelCredentials());
  auto maintenance = etcdserverpb::Maintenance::NewStub(channel);
  auto cluster = etcdserverpb::Cluster::NewStub(channel);

  etcdserverpb::HashResponse hash;
  grpc::Status s = maintenance->Hash(Ctx().get(), etcdserverpb::HashRequest(), &hash);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(hash.hash(), m->Hash()->hash());
  EXPECT_EQ(hash.header().revision(), r->header().revision());
  EXPECT_EQ(hash.header().cluster_id(), 6u);

  etcdserverpb::DefragmentResponse defrag;
  s = maintenance->Defragment(Ctx().get(), etcdserverpb::DefragmentRequest(), &defrag);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(defrag.header().member_id(), 1u);

  etcdserverpb::MemberUpdateRequest update;
  update.set_id(1);
  update.add_peerurls("http://127.0.0.1:31797");
  etcdserverpb::MemberUpdateResponse updated;
  s = cluster->MemberUpdate(Ctx().get(), update, &updated);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(updated.members_size(), 1);
  ASSERT_EQ(updated.members(0).peerurls_size(), 1);
  EXPECT_EQ(updated.members(0).peerurls(0), "http://127.0.0.1:31797");
  // The membership record is meta: the hash covers it.
  EXPECT_NE(m->Hash()->hash(), hash.hash());

  update.set_id(77);
  s = cluster->MemberUpdate(Ctx().get(), update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), server::kErrMemberNotFound);
  update.set_id(1);
  update.set_peerurls(0, "127.0.0.1");
  s = cluster->MemberUpdate(Ctx().get(), update, &updated);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  (*rpc)->Stop();
  net.Detach(1);
}

}  // namespace
}  // namespace ballot::rpc
