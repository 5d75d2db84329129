// Checks the things that would silently break wire compatibility with etcd 3.4/3.5 clients: gRPC
// method paths, field numbers and types, and decoding of bytes laid out as etcd puts them on the
// wire. Also checks that Debian's gRPC serves grpc.health.v1 by itself (EnableDefaultHealthCheck-
// Service), which etcd clients and load balancers probe.
#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kv.pb.h"
#include "rpc.grpc.pb.h"
#include "rpc.pb.h"
#include "v3election.grpc.pb.h"
#include "v3lock.grpc.pb.h"

namespace ballot {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::ServiceDescriptor;

std::set<std::string> MethodPaths(const ServiceDescriptor* service) {
  std::set<std::string> paths;
  for (int i = 0; i < service->method_count(); ++i) {
    paths.insert("/" + service->full_name() + "/" + service->method(i)->name());
  }
  return paths;
}

std::set<std::string> AllMethodPaths() {
  std::set<std::string> paths;
  const auto* rpc_file = etcdserverpb::RangeRequest::descriptor()->file();
  for (int i = 0; i < rpc_file->service_count(); ++i) {
    paths.merge(MethodPaths(rpc_file->service(i)));
  }
  paths.merge(MethodPaths(v3lockpb::LockRequest::descriptor()->file()->service(0)));
  paths.merge(MethodPaths(v3electionpb::CampaignRequest::descriptor()->file()->service(0)));
  return paths;
}

// The full list of etcd 3.5's gRPC paths (etcd 3.4 has the same minus Downgrade and AuthStatus).
TEST(ProtoCompat, MethodPathsAreEtcds) {
  const std::set<std::string> expected = {
      "/etcdserverpb.KV/Range",
      "/etcdserverpb.KV/Put",
      "/etcdserverpb.KV/DeleteRange",
      "/etcdserverpb.KV/Txn",
      "/etcdserverpb.KV/Compact",
      "/etcdserverpb.Watch/Watch",
      "/etcdserverpb.Lease/LeaseGrant",
      "/etcdserverpb.Lease/LeaseRevoke",
      "/etcdserverpb.Lease/LeaseKeepAlive",
      "/etcdserverpb.Lease/LeaseTimeToLive",
      "/etcdserverpb.Lease/LeaseLeases",
      "/etcdserverpb.Cluster/MemberAdd",
      "/etcdserverpb.Cluster/MemberRemove",
      "/etcdserverpb.Cluster/MemberUpdate",
      "/etcdserverpb.Cluster/MemberList",
      "/etcdserverpb.Cluster/MemberPromote",
      "/etcdserverpb.Maintenance/Alarm",
      "/etcdserverpb.Maintenance/Status",
      "/etcdserverpb.Maintenance/Defragment",
      "/etcdserverpb.Maintenance/Hash",
      "/etcdserverpb.Maintenance/HashKV",
      "/etcdserverpb.Maintenance/Snapshot",
      "/etcdserverpb.Maintenance/MoveLeader",
      "/etcdserverpb.Maintenance/Downgrade",
      "/etcdserverpb.Auth/AuthEnable",
      "/etcdserverpb.Auth/AuthDisable",
      "/etcdserverpb.Auth/AuthStatus",
      "/etcdserverpb.Auth/Authenticate",
      "/etcdserverpb.Auth/UserAdd",
      "/etcdserverpb.Auth/UserGet",
      "/etcdserverpb.Auth/UserList",
      "/etcdserverpb.Auth/UserDelete",
      "/etcdserverpb.Auth/UserChangePassword",
      "/etcdserverpb.Auth/UserGrantRole",
      "/etcdserverpb.Auth/UserRevokeRole",
      "/etcdserverpb.Auth/RoleAdd",
      "/etcdserverpb.Auth/RoleGet",
      "/etcdserverpb.Auth/RoleList",
      "/etcdserverpb.Auth/RoleDelete",
      "/etcdserverpb.Auth/RoleGrantPermission",
      "/etcdserverpb.Auth/RoleRevokePermission",
      "/v3lockpb.Lock/Lock",
      "/v3lockpb.Lock/Unlock",
      "/v3electionpb.Election/Campaign",
      "/v3electionpb.Election/Proclaim",
      "/v3electionpb.Election/Leader",
      "/v3electionpb.Election/Observe",
      "/v3electionpb.Election/Resign",
  };
  EXPECT_EQ(AllMethodPaths(), expected);
  EXPECT_STREQ(etcdserverpb::KV::service_full_name(), "etcdserverpb.KV");
  EXPECT_STREQ(v3lockpb::Lock::service_full_name(), "v3lockpb.Lock");
}

TEST(ProtoCompat, StreamingShapesAreEtcds) {
  const auto* watch = etcdserverpb::WatchRequest::descriptor()->file()->FindServiceByName("Watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->method(0)->client_streaming());
  EXPECT_TRUE(watch->method(0)->server_streaming());
  const auto* lease = watch->file()->FindServiceByName("Lease");
  const auto* keep_alive = lease->FindMethodByName("LeaseKeepAlive");
  EXPECT_TRUE(keep_alive->client_streaming() && keep_alive->server_streaming());
  const auto* snapshot =
      watch->file()->FindServiceByName("Maintenance")->FindMethodByName("Snapshot");
  EXPECT_FALSE(snapshot->client_streaming());
  EXPECT_TRUE(snapshot->server_streaming());
  const auto* observe =
      v3electionpb::LeaderRequest::descriptor()->file()->service(0)->FindMethodByName("Observe");
  EXPECT_FALSE(observe->client_streaming());
  EXPECT_TRUE(observe->server_streaming());
}

struct FieldSpec {
  const google::protobuf::Descriptor* message;
  const char* name;
  int number;
  FieldDescriptor::Type type;
};

TEST(ProtoCompat, FieldNumbersAndTypesAreEtcds) {
  using FD = FieldDescriptor;
  const std::vector<FieldSpec> fields = {
      {mvccpb::KeyValue::descriptor(), "key", 1, FD::TYPE_BYTES},
      {mvccpb::KeyValue::descriptor(), "create_revision", 2, FD::TYPE_INT64},
      {mvccpb::KeyValue::descriptor(), "mod_revision", 3, FD::TYPE_INT64},
      {mvccpb::KeyValue::descriptor(), "version", 4, FD::TYPE_INT64},
      {mvccpb::KeyValue::descriptor(), "value", 5, FD::TYPE_BYTES},
      {mvccpb::KeyValue::descriptor(), "lease", 6, FD::TYPE_INT64},
      {mvccpb::Event::descriptor(), "prev_kv", 3, FD::TYPE_MESSAGE},
      {etcdserverpb::ResponseHeader::descriptor(), "cluster_id", 1, FD::TYPE_UINT64},
      {etcdserverpb::ResponseHeader::descriptor(), "revision", 3, FD::TYPE_INT64},
      {etcdserverpb::ResponseHeader::descriptor(), "raft_term", 4, FD::TYPE_UINT64},
      {etcdserverpb::RangeRequest::descriptor(), "serializable", 7, FD::TYPE_BOOL},
      {etcdserverpb::RangeRequest::descriptor(), "max_create_revision", 13, FD::TYPE_INT64},
      {etcdserverpb::PutRequest::descriptor(), "ignore_lease", 6, FD::TYPE_BOOL},
      {etcdserverpb::Compare::descriptor(), "value", 7, FD::TYPE_BYTES},
      {etcdserverpb::Compare::descriptor(), "lease", 8, FD::TYPE_INT64},
      {etcdserverpb::Compare::descriptor(), "range_end", 64, FD::TYPE_BYTES},
      {etcdserverpb::RequestOp::descriptor(), "request_txn", 4, FD::TYPE_MESSAGE},
      {etcdserverpb::WatchRequest::descriptor(), "progress_request", 3, FD::TYPE_MESSAGE},
      {etcdserverpb::WatchCreateRequest::descriptor(), "filters", 5, FD::TYPE_ENUM},
      {etcdserverpb::WatchCreateRequest::descriptor(), "fragment", 8, FD::TYPE_BOOL},
      {etcdserverpb::WatchResponse::descriptor(), "cancel_reason", 6, FD::TYPE_STRING},
      {etcdserverpb::WatchResponse::descriptor(), "events", 11, FD::TYPE_MESSAGE},
      {etcdserverpb::LeaseGrantRequest::descriptor(), "TTL", 1, FD::TYPE_INT64},
      {etcdserverpb::LeaseGrantResponse::descriptor(), "error", 4, FD::TYPE_STRING},
      {etcdserverpb::LeaseTimeToLiveResponse::descriptor(), "keys", 5, FD::TYPE_BYTES},
      {etcdserverpb::Member::descriptor(), "isLearner", 5, FD::TYPE_BOOL},
      {etcdserverpb::StatusResponse::descriptor(), "isLearner", 10, FD::TYPE_BOOL},
      {etcdserverpb::HashKVResponse::descriptor(), "hash", 2, FD::TYPE_UINT32},
      {etcdserverpb::AuthUserAddRequest::descriptor(), "hashedPassword", 4, FD::TYPE_STRING},
      {v3lockpb::LockResponse::descriptor(), "key", 2, FD::TYPE_BYTES},
      {v3electionpb::LeaderKey::descriptor(), "rev", 3, FD::TYPE_INT64},
  };
  for (const FieldSpec& spec : fields) {
    SCOPED_TRACE(spec.message->full_name() + "." + spec.name);
    const FieldDescriptor* field = spec.message->FindFieldByName(spec.name);
    ASSERT_NE(field, nullptr);
    EXPECT_EQ(field->number(), spec.number);
    EXPECT_EQ(field->type(), spec.type);
  }
  // Enum values travel as numbers: a shifted enum would flip meanings silently.
  EXPECT_EQ(etcdserverpb::Compare::NOT_EQUAL, 3);
  EXPECT_EQ(etcdserverpb::Compare::LEASE, 4);
  EXPECT_EQ(etcdserverpb::RangeRequest::DESCEND, 2);
  EXPECT_EQ(etcdserverpb::CORRUPT, 2);
  EXPECT_EQ(mvccpb::Event::DELETE, 1);
  EXPECT_EQ(etcdserverpb::WatchCreateRequest::NODELETE, 1);
}

std::string Bytes(std::initializer_list<unsigned> bytes) {
  std::string out;
  for (unsigned b : bytes) out.push_back(static_cast<char>(b));
  return out;
}

// Bytes laid out as etcd's gogoproto marshalers write them (field order by number, proto3
// defaults omitted). Each example names the wire tags it exercises.
TEST(ProtoCompat, DecodesEtcdPutRequest) {
  // PutRequest{key:"foo", value:"bar", lease:0x1234, prev_kv:true}: tags 0x0a, 0x12, 0x18, 0x20.
  const std::string wire =
      Bytes({0x0a, 3, 'f', 'o', 'o', 0x12, 3, 'b', 'a', 'r', 0x18, 0xb4, 0x24, 0x20, 1});
  etcdserverpb::PutRequest put;
  ASSERT_TRUE(put.ParseFromString(wire));
  EXPECT_EQ(put.key(), "foo");
  EXPECT_EQ(put.value(), "bar");
  EXPECT_EQ(put.lease(), 0x1234);
  EXPECT_TRUE(put.prev_kv());
  EXPECT_EQ(put.SerializeAsString(), wire);
}

TEST(ProtoCompat, DecodesEtcdRangeRequestAndResponse) {
  // RangeRequest{key:"a", range_end:"b", limit:10, serializable:true}.
  const std::string request_wire = Bytes({0x0a, 1, 'a', 0x12, 1, 'b', 0x18, 10, 0x38, 1});
  etcdserverpb::RangeRequest range;
  ASSERT_TRUE(range.ParseFromString(request_wire));
  EXPECT_EQ(range.range_end(), "b");
  EXPECT_EQ(range.limit(), 10);
  EXPECT_TRUE(range.serializable());

  // RangeResponse{header{cluster_id:1, member_id:2, revision:7, raft_term:3},
  //               kvs[{key:"a", create_revision:5, mod_revision:7, version:2, value:"v"}], count:1}
  const std::string response_wire =
      Bytes({0x0a, 8,  0x08, 1, 0x10, 2,    0x18, 7,    0x20, 3,                      // header
             0x12, 12, 0x0a, 1, 'a',  0x10, 5,    0x18, 7,    0x20, 2, 0x2a, 1, 'v',  // kvs[0]
             0x20, 1});                                                               // count
  etcdserverpb::RangeResponse response;
  ASSERT_TRUE(response.ParseFromString(response_wire));
  EXPECT_EQ(response.header().cluster_id(), 1u);
  EXPECT_EQ(response.header().member_id(), 2u);
  EXPECT_EQ(response.header().revision(), 7);
  EXPECT_EQ(response.header().raft_term(), 3u);
  ASSERT_EQ(response.kvs_size(), 1);
  EXPECT_EQ(response.kvs(0).key(), "a");
  EXPECT_EQ(response.kvs(0).create_revision(), 5);
  EXPECT_EQ(response.kvs(0).mod_revision(), 7);
  EXPECT_EQ(response.kvs(0).version(), 2);
  EXPECT_EQ(response.kvs(0).value(), "v");
  EXPECT_EQ(response.count(), 1);
}

TEST(ProtoCompat, DecodesEtcdTxnCompareWithRangeEnd) {
  // TxnRequest{compare[{result:NOT_EQUAL, target:MOD, key:"k", mod_revision:9, range_end:"l"}],
  //            success[{request_put{key:"k", value:"x"}}]}. range_end is field 64: tag 0x82 0x04.
  const std::string wire =
      Bytes({0x0a, 13, 0x08, 3, 0x10, 2, 0x1a, 1,    'k', 0x30, 9, 0x82, 0x04, 1,
             'l',                                                 // compare
             0x12, 8,  0x12, 6, 0x0a, 1, 'k',  0x12, 1,   'x'});  // success
  etcdserverpb::TxnRequest txn;
  ASSERT_TRUE(txn.ParseFromString(wire));
  ASSERT_EQ(txn.compare_size(), 1);
  const etcdserverpb::Compare& cmp = txn.compare(0);
  EXPECT_EQ(cmp.result(), etcdserverpb::Compare::NOT_EQUAL);
  EXPECT_EQ(cmp.target(), etcdserverpb::Compare::MOD);
  EXPECT_EQ(cmp.key(), "k");
  EXPECT_EQ(cmp.target_union_case(), etcdserverpb::Compare::kModRevision);
  EXPECT_EQ(cmp.mod_revision(), 9);
  EXPECT_EQ(cmp.range_end(), "l");
  ASSERT_EQ(txn.success_size(), 1);
  ASSERT_TRUE(txn.success(0).has_request_put());
  EXPECT_EQ(txn.success(0).request_put().value(), "x");
  EXPECT_EQ(txn.SerializeAsString(), wire);
}

TEST(ProtoCompat, DecodesEtcdWatchResponseEvents) {
  // WatchResponse{watch_id:1, events[{type:DELETE, kv{key:"k", mod_revision:4}}]}: events are
  // field 11, tag 0x5a.
  const std::string wire = Bytes({0x10, 1, 0x5a, 9, 0x08, 1, 0x12, 5, 0x0a, 1, 'k', 0x18, 4});
  etcdserverpb::WatchResponse response;
  ASSERT_TRUE(response.ParseFromString(wire));
  EXPECT_EQ(response.watch_id(), 1);
  ASSERT_EQ(response.events_size(), 1);
  EXPECT_EQ(response.events(0).type(), mvccpb::Event::DELETE);
  EXPECT_EQ(response.events(0).kv().key(), "k");
  EXPECT_EQ(response.events(0).kv().mod_revision(), 4);
}

TEST(ProtoCompat, DecodesEtcdLeaseAndLockMessages) {
  // LeaseGrantResponse{ID:0x694d7a8b3c2d1e0f, TTL:60}: a lease ID as etcd mints them (63 bits).
  etcdserverpb::LeaseGrantResponse grant;
  grant.set_id(0x694d7a8b3c2d1e0f);
  grant.set_ttl(60);
  const std::string wire = grant.SerializeAsString();
  EXPECT_EQ(static_cast<unsigned char>(wire[0]), 0x10u);  // ID is field 2, varint
  etcdserverpb::LeaseGrantResponse decoded;
  ASSERT_TRUE(decoded.ParseFromString(wire));
  EXPECT_EQ(decoded.id(), 0x694d7a8b3c2d1e0f);
  EXPECT_EQ(decoded.ttl(), 60);

  // LockRequest{name:"m", lease:5}.
  v3lockpb::LockRequest lock;
  ASSERT_TRUE(lock.ParseFromString(Bytes({0x0a, 1, 'm', 0x10, 5})));
  EXPECT_EQ(lock.name(), "m");
  EXPECT_EQ(lock.lease(), 5);
}

TEST(ProtoCompat, UnknownFieldsFromNewerEtcdAreSkipped) {
  // StatusResponse from etcd 3.6 carries dbSizeQuota (field 12), which these files leave out.
  etcdserverpb::StatusResponse status;
  ASSERT_TRUE(status.ParseFromString(Bytes({0x12, 5, '3', '.', '6', '.', '0', 0x60, 0x80, 0x08})));
  EXPECT_EQ(status.version(), "3.6.0");
}

TEST(ProtoCompat, MalformedBytesAreRejected) {
  etcdserverpb::PutRequest put;
  // Length 5 but only 2 bytes follow.
  EXPECT_FALSE(put.ParseFromString(Bytes({0x0a, 5, 'a', 'b'})));
  // Field number 0 is invalid.
  EXPECT_FALSE(put.ParseFromString(Bytes({0x00, 1})));
}

// A server with the default health service answers grpc.health.v1.Health/Check SERVING for "",
// and a registered but unimplemented etcd method answers UNIMPLEMENTED, not a decoding error.
TEST(ProtoCompat, DefaultHealthServiceAndUnimplementedMethods) {
  grpc::EnableDefaultHealthCheckService(true);
  etcdserverpb::Maintenance::Service maintenance;  // every method: UNIMPLEMENTED
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&maintenance);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_GT(port, 0);
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());

  // HealthCheckRequest{service:""} is empty; HealthCheckResponse{status:SERVING} is 08 01.
  grpc::GenericStub generic(channel);
  grpc::ClientContext context;
  // An empty message, as one slice: a ByteBuffer with no slices is not a valid message to send.
  grpc::Slice empty_slice(std::string{});
  grpc::ByteBuffer request(&empty_slice, 1);
  grpc::ByteBuffer response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status health_status;
  generic.UnaryCall(&context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request,
                    &response, [&](grpc::Status s) {
                      std::lock_guard<std::mutex> lock(mu);
                      health_status = std::move(s);
                      done = true;
                      cv.notify_all();
                    });
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done; }));
  }
  ASSERT_TRUE(health_status.ok()) << health_status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string body;
  for (const auto& slice : slices)
    body.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  EXPECT_EQ(body, Bytes({0x08, 0x01}));

  auto stub = etcdserverpb::Maintenance::NewStub(channel);
  grpc::ClientContext status_context;
  status_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  etcdserverpb::StatusResponse status_response;
  const grpc::Status unimplemented =
      stub->Status(&status_context, etcdserverpb::StatusRequest(), &status_response);
  EXPECT_EQ(unimplemented.error_code(), grpc::StatusCode::UNIMPLEMENTED);

  auto kv = etcdserverpb::KV::NewStub(channel);  // KV not registered on this server at all
  grpc::ClientContext range_context;
  range_context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  etcdserverpb::RangeResponse range_response;
  EXPECT_EQ(kv->Range(&range_context, etcdserverpb::RangeRequest(), &range_response).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  server->Shutdown();
  grpc::EnableDefaultHealthCheckService(false);
}

}  // namespace
}  // namespace ballot
