// Maintenance.Snapshot over gRPC: one member, its store snapshot streamed in chunks with
// remaining_bytes counting down to 0; the bytes are a valid store snapshot stream. Port 31730.
#include <fmt/format.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>

#include <thread>

#include "mvcc/snapshot.h"
#include "rpc.grpc.pb.h"
#include "rpc/rpc_server.h"
#include "server/member.h"
#include "server/sha256.h"
#include "server_test_util.h"

namespace ballot::rpc {
namespace {

using server::Clock;
using server::Member;
using server::MemberOptions;
using server::testing::In;

TEST(RpcSnapshot, StreamsTheStoreSnapshotInChunksWithRemainingBytes) {
  server::testing::LocalNetwork net;
  server::testing::TempDir dir;
  MemberOptions o;
  o.node.id = 1;
  o.node.cluster_id = 5;
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
  self.peer_urls = {"http://127.0.0.1:1"};
  o.initial_members = {self};
  o.request_timeout_ms = 3000;
  o.election_timeout_ms = 100;
  auto member = Member::Open(std::move(o), net.EndpointFor(1));
  ASSERT_TRUE(member.ok()) << member.status().ToString();
  Member* m = member->get();
  net.Attach(1, m);
  RpcServerOptions ro;
  ro.listen_addresses = {"127.0.0.1:31730"};
  ro.worker_threads = 2;
  auto rpc = RpcServer::Start(m, ro);
  ASSERT_TRUE(rpc.ok()) << rpc.status().ToString();

  // Enough data for several 32 KiB chunks.
  etcdserverpb::PutRequest put;
  put.set_value(std::string(4000, 'v'));
  for (int i = 0; i < 50; ++i) {
    put.set_key("k" + std::to_string(i));
    Result<etcdserverpb::PutResponse> r = Status::Unavailable("not tried");
    for (auto end = In(5000); Clock::now() < end && !r.ok();) {
      r = m->Put(put);
      if (!r.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }

  auto stub = etcdserverpb::Maintenance::NewStub(
      grpc::CreateChannel("127.0.0.1:31730", grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto reader = stub->Snapshot(&ctx, etcdserverpb::SnapshotRequest());
  etcdserverpb::SnapshotResponse chunk;
  std::string bytes;
  int chunks = 0;
  uint64_t last_remaining = UINT64_MAX;
  while (reader->Read(&chunk)) {
    ++chunks;
    bytes += chunk.blob();
    EXPECT_LT(chunk.remaining_bytes(), last_remaining);
    last_remaining = chunk.remaining_bytes();
    EXPECT_EQ(chunk.header().cluster_id(), 5u);
  }
  grpc::Status s = reader->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(last_remaining, 0u);
  EXPECT_GT(chunks, 3);
  EXPECT_GT(bytes.size(), 200000u);
  // etcdctl's framing: a 512-byte aligned image followed by its SHA-256.
  ASSERT_EQ(bytes.size() % 512, 32u);
  const std::string image = bytes.substr(0, bytes.size() - 32);
  const std::array<uint8_t, 32> sum = server::Sha256(image);
  EXPECT_EQ(bytes.substr(bytes.size() - 32), std::string(sum.begin(), sum.end()));
  // The image is the store's snapshot stream, then zero padding (< 512 bytes).
  bool verified = false;
  for (size_t cut = 0; cut < 512 && !verified; ++cut) {
    Result<mvcc::SnapshotInfo> info = mvcc::VerifySnapshot(image.substr(0, image.size() - cut));
    if (info.ok()) {
      verified = true;
      EXPECT_GE(info->applied.index, 50u);
    }
  }
  EXPECT_TRUE(verified);

  (*rpc)->Stop();
  net.Detach(1);
}

TEST(RpcSnapshot, Sha256MatchesFips180Vectors) {
  auto hex = [](const std::array<uint8_t, 32>& d) {
    std::string out;
    for (uint8_t b : d) out += fmt::format("{:02x}", b);
    return out;
  };
  EXPECT_EQ(hex(server::Sha256("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(server::Sha256("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(hex(server::Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

}  // namespace
}  // namespace ballot::rpc
