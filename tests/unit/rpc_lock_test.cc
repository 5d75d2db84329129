// v3lockpb.Lock over one- and three-member clusters on 127.0.0.1 (ports 31600-31649): mutual
// exclusion, FIFO order, fencing tokens, revoked holders, and a waiter whose lease expires.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <thread>

#include "rpc.grpc.pb.h"
#include "rpc/rpc_server.h"
#include "server/member.h"
#include "server_test_util.h"
#include "v3lock.grpc.pb.h"

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

// Three members in one process (in-process peer network), each serving on 31610 + id.
class ThreeMembers {
 public:
  explicit ThreeMembers(int base_port = 31610, uint64_t snapshot_count = 100000)
      : base_port_(base_port) {
    std::vector<MemberInfo> initial;
    for (consensus::NodeId id : {1, 2, 3}) {
      MemberInfo m;
      m.id = id;
      m.name = "t" + std::to_string(id);
      m.peer_urls = {"http://127.0.0.1:1"};
      initial.push_back(m);
    }
    for (consensus::NodeId id : {1, 2, 3}) {
      MemberOptions o;
      const std::string dir = dir_.path() + "/m" + std::to_string(id);
      o.node.id = id;
      o.node.cluster_id = 8;
      o.node.name = "t" + std::to_string(id);
      o.node.wal_dir = dir + "/wal";
      o.node.snap_dir = dir + "/snap";
      o.node.initial_voters = {1, 2, 3};
      o.node.tick_ms = 10;
      o.node.election_ticks = 10;
      o.node.seed = id;
      o.node.snapshot_count = snapshot_count;
      o.store_dir = dir + "/db";
      o.initial_members = initial;
      o.client_urls = {"http://127.0.0.1:" + std::to_string(Port(id))};
      o.request_timeout_ms = 3000;
      o.election_timeout_ms = 100;
      auto m = Member::Open(std::move(o), net_.EndpointFor(id));
      EXPECT_TRUE(m.ok()) << m.status().ToString();
      members_[id] = std::move(m).value();
      Member* raw = members_[id].get();
      net_.Attach(id, raw);
      RpcServerOptions ro;
      ro.listen_addresses = {"127.0.0.1:" + std::to_string(Port(id))};
      ro.worker_threads = 4;
      auto s = RpcServer::Start(raw, ro);
      EXPECT_TRUE(s.ok()) << s.status().ToString();
      servers_[id] = std::move(s).value();
    }
  }
  ~ThreeMembers() {
    for (auto& [id, s] : servers_) s->Stop();
    for (auto& [id, m] : members_) {
      net_.Detach(id);
      m.reset();
    }
  }
  int Port(consensus::NodeId id) const { return base_port_ + static_cast<int>(id); }
  server::testing::LocalNetwork& net() { return net_; }
  // A lease granted through member `id`.
  int64_t Grant(consensus::NodeId id, int64_t ttl_s) {
    auto stub = etcdserverpb::Lease::NewStub(Channel(id));
    etcdserverpb::LeaseGrantRequest req;
    req.set_ttl(ttl_s);
    etcdserverpb::LeaseGrantResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    EXPECT_TRUE(stub->LeaseGrant(&ctx, req, &resp).ok());
    return resp.id();
  }
  consensus::NodeId Leader() {
    for (int i = 0; i < 250; ++i) {
      for (auto& [id, m] : members_) {
        if (m->node_status().soft.role == consensus::Role::kLeader) return id;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return consensus::kNoNode;
  }
  // Every member published its client URL (forwarding to the leader needs it).
  bool WaitPublished() {
    for (int i = 0; i < 250; ++i) {
      bool all = true;
      for (const auto& m : members_[1]->Members()) all = all && !m.client_urls.empty();
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  std::shared_ptr<grpc::Channel> Channel(consensus::NodeId id) {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(Port(id)),
                               grpc::InsecureChannelCredentials());
  }

 private:
  const int base_port_;
  server::testing::LocalNetwork net_;
  server::testing::TempDir dir_;
  std::map<consensus::NodeId, std::unique_ptr<Member>> members_;
  std::map<consensus::NodeId, std::unique_ptr<RpcServer>> servers_;
};

struct LockResult {
  grpc::Status status;
  std::string key;
};

LockResult LockNow(std::shared_ptr<grpc::Channel> ch, const std::string& name, int64_t lease,
                   int timeout_ms = 10000) {
  auto stub = v3lockpb::Lock::NewStub(ch);
  v3lockpb::LockRequest req;
  req.set_name(name);
  req.set_lease(lease);
  v3lockpb::LockResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  LockResult r;
  r.status = stub->Lock(&ctx, req, &resp);
  r.key = resp.key();
  return r;
}

void Unlock(std::shared_ptr<grpc::Channel> ch, const std::string& key) {
  auto stub = v3lockpb::Lock::NewStub(ch);
  v3lockpb::UnlockRequest req;
  req.set_key(key);
  v3lockpb::UnlockResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = stub->Unlock(&ctx, req, &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(resp.header().revision(), 0);
}

std::string Hex(int64_t id) {
  char b[32];
  std::snprintf(b, sizeof(b), "%llx", static_cast<unsigned long long>(id));
  return b;
}

TEST(RpcLock, SecondLockerWaitsForUnlockAndGetsAHigherFencingToken) {
  OneMember c(31601);
  const int64_t a = c.Grant(30), b = c.Grant(30);
  LockResult ra = LockNow(c.channel(), "m", a);
  ASSERT_TRUE(ra.status.ok()) << ra.status.error_message();
  EXPECT_EQ(ra.key, "m/" + Hex(a));
  const int64_t ta = c.CreateRevision(ra.key);
  EXPECT_GT(ta, 0);
  auto fb = std::async(std::launch::async, [&] { return LockNow(c.channel(), "m", b); });
  ASSERT_TRUE(c.WaitForKey("m/" + Hex(b)));
  EXPECT_EQ(fb.wait_for(std::chrono::milliseconds(400)), std::future_status::timeout)
      << "two holders at once";
  Unlock(c.channel(), ra.key);
  ASSERT_EQ(fb.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  LockResult rb = fb.get();
  ASSERT_TRUE(rb.status.ok()) << rb.status.error_message();
  EXPECT_EQ(rb.key, "m/" + Hex(b));
  // The fencing token (create revision) of each later holder is higher.
  const int64_t tb = c.CreateRevision(rb.key);
  EXPECT_GT(tb, ta);
  Unlock(c.channel(), rb.key);
  LockResult ra2 = LockNow(c.channel(), "m", a);
  ASSERT_TRUE(ra2.status.ok());
  EXPECT_GT(c.CreateRevision(ra2.key), tb);
  ra = LockNow(c.channel(), "other", a);  // A different name is an independent lock.
  EXPECT_TRUE(ra.status.ok());
}

TEST(RpcLock, WaitersAreGrantedInFifoOrder) {
  OneMember c(31602);
  const int64_t h = c.Grant(30);
  const int64_t w[3] = {c.Grant(30), c.Grant(30), c.Grant(30)};
  ASSERT_TRUE(LockNow(c.channel(), "q", h).status.ok());
  std::mutex mu;
  std::vector<int> order;
  std::vector<int64_t> tokens;
  std::vector<std::thread> threads;
  for (int i : {2, 0, 1}) {  // Enter the queue in this order.
    threads.emplace_back([&, i] {
      LockResult r = LockNow(c.channel(), "q", w[i]);
      ASSERT_TRUE(r.status.ok()) << r.status.error_message();
      {
        std::lock_guard<std::mutex> lock(mu);
        order.push_back(i);
        tokens.push_back(c.CreateRevision(r.key));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
      Unlock(c.channel(), r.key);
    });
    ASSERT_TRUE(c.WaitForKey("q/" + Hex(w[i])));
  }
  Unlock(c.channel(), "q/" + Hex(h));
  for (auto& t : threads) t.join();
  EXPECT_EQ(order, (std::vector<int>{2, 0, 1}));
  ASSERT_EQ(tokens.size(), 3u);
  EXPECT_LT(tokens[0], tokens[1]);
  EXPECT_LT(tokens[1], tokens[2]);
}

TEST(RpcLock, WaiterProceedsWhenTheHoldersLeaseIsRevoked) {
  OneMember c(31603);
  const int64_t a = c.Grant(30), b = c.Grant(30);
  ASSERT_TRUE(LockNow(c.channel(), "r", a).status.ok());
  auto fb = std::async(std::launch::async, [&] { return LockNow(c.channel(), "r", b); });
  ASSERT_TRUE(c.WaitForKey("r/" + Hex(b)));
  EXPECT_EQ(fb.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  c.Revoke(a);
  ASSERT_EQ(fb.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_TRUE(fb.get().status.ok());
  EXPECT_EQ(c.CreateRevision("r/" + Hex(a)), 0);
}

TEST(RpcLock, WaiterWhoseLeaseExpiredGetsAnErrorNotTheLock) {
  OneMember c(31604);
  const int64_t holder = c.Grant(30), waiter = c.Grant(1);
  LockResult rh = LockNow(c.channel(), "e", holder);
  ASSERT_TRUE(rh.status.ok());
  auto fw = std::async(std::launch::async, [&] { return LockNow(c.channel(), "e", waiter); });
  ASSERT_TRUE(c.WaitForKey("e/" + Hex(waiter)))
      << (fw.wait_for(std::chrono::seconds(0)) == std::future_status::ready
              ? fw.get().status.error_message()
              : "still waiting");
  // The waiter's lease (1 s, never kept alive) expires and deletes its key.
  for (int i = 0; i < 400 && c.CreateRevision("e/" + Hex(waiter)) != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(c.CreateRevision("e/" + Hex(waiter)), 0) << "lease did not expire";
  Unlock(c.channel(), rh.key);
  ASSERT_EQ(fw.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  LockResult rw = fw.get();
  EXPECT_FALSE(rw.status.ok());
  EXPECT_EQ(rw.status.error_message(), "etcdserver: requested lease not found");
  EXPECT_TRUE(rw.key.empty());
}

TEST(RpcLock, UnknownLeaseFailsAtOnce) {
  OneMember c(31605);
  c.Grant(30);  // Waits for the member to be ready.
  LockResult r = LockNow(c.channel(), "u", 0x1234);
  EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(r.status.error_message(), "etcdserver: requested lease not found");
  EXPECT_EQ(c.CreateRevision("u/1234"), 0);
}

TEST(RpcLock, CancelledWaitEndsAndLeavesTheKeyLikeEtcdsServer) {
  OneMember c(31606);
  const int64_t a = c.Grant(30), b = c.Grant(30);
  ASSERT_TRUE(LockNow(c.channel(), "c", a).status.ok());
  const auto start = std::chrono::steady_clock::now();
  LockResult rb = LockNow(c.channel(), "c", b, 300);
  EXPECT_EQ(rb.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  // etcd's server does not delete the waiter's key (its client does).
  EXPECT_NE(c.CreateRevision("c/" + Hex(b)), 0);
  // Many waits at once hold no worker thread: more waiters than the 4 workers, then a put.
  std::vector<std::future<LockResult>> fs;
  for (int i = 0; i < 8; ++i) {
    const int64_t l = c.Grant(30);
    fs.push_back(
        std::async(std::launch::async, [&, l] { return LockNow(c.channel(), "c", l, 1500); }));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto kv = etcdserverpb::KV::NewStub(c.channel());
  etcdserverpb::PutRequest put;
  put.set_key("free");
  etcdserverpb::PutResponse pr;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
  const grpc::Status put_status = kv->Put(&ctx, put, &pr);
  EXPECT_TRUE(put_status.ok()) << put_status.error_message();
  for (auto& f : fs) EXPECT_EQ(f.get().status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
}

TEST(RpcLock, ThreeMembersLockersOnDifferentMembersExcludeEachOther) {
  ThreeMembers c;
  ASSERT_TRUE(c.WaitPublished());
  const int64_t a = c.Grant(1, 30), b = c.Grant(2, 30);
  LockResult ra = LockNow(c.Channel(1), "x", a);
  ASSERT_TRUE(ra.status.ok()) << ra.status.error_message();
  auto fb = std::async(std::launch::async, [&] { return LockNow(c.Channel(3), "x", b); });
  EXPECT_EQ(fb.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
      << "two holders at once";
  Unlock(c.Channel(2), ra.key);
  ASSERT_EQ(fb.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  LockResult rb = fb.get();
  ASSERT_TRUE(rb.status.ok()) << rb.status.error_message();
  EXPECT_EQ(rb.key, "x/" + Hex(b));
}

// A follower whose log lags (the leader's appends to it are dropped, its heartbeats are not, so it
// still forwards to the leader) must not grant a lock from its own store before that store has
// seen the caller's key: until then it does not see the holder either.
TEST(RpcLock, ALaggingFollowerDoesNotGrantALockBeforeItSeesTheQueue) {
  ThreeMembers c(31620);
  ASSERT_TRUE(c.WaitPublished());
  const consensus::NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  const consensus::NodeId lagging = leader == 1 ? 2 : 1;
  const int64_t a = c.Grant(leader, 30), b = c.Grant(leader, 30);
  c.net().SetFilter([lagging](const consensus::Message& m) {
    return m.to == lagging && m.type == consensus::MessageType::kAppend;
  });
  LockResult held = LockNow(c.Channel(leader), "x", a);
  ASSERT_TRUE(held.status.ok()) << held.status.error_message();

  // The lagging member queues b (the txn is forwarded and committed) but its store has neither
  // key: it must wait, not answer from a view without the holder.
  LockResult early = LockNow(c.Channel(lagging), "x", b, /*timeout_ms=*/1500);
  EXPECT_FALSE(early.status.ok()) << "granted while " << held.key << " holds the lock";
  EXPECT_EQ(early.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  // Caught up, it grants b (whose key stayed queued) once a unlocks.
  c.net().SetFilter(nullptr);
  auto later = std::async(std::launch::async, [&] { return LockNow(c.Channel(lagging), "x", b); });
  EXPECT_EQ(later.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
      << "two holders at once";
  Unlock(c.Channel(leader), held.key);
  ASSERT_EQ(later.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  LockResult got = later.get();
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.key, "x/" + Hex(b));
}

// A follower keeps each lock queue's keys from a watch on its prefix. Cut off while the holder
// unlocks, and behind the leader's compacted history and log, it catches up by a snapshot, and the
// watch it had is cancelled ("compacted"): the queue must be read again, or the waiter on that
// follower would wait for a holder that is long gone.
TEST(RpcLock, AWaiterOnAFollowerGetsTheLockAfterItsStoreWasReplacedByASnapshot) {
  ThreeMembers c(31640, /*snapshot_count=*/8);
  ASSERT_TRUE(c.WaitPublished());
  const consensus::NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  const consensus::NodeId f = leader == 1 ? 2 : 1;
  const int64_t a = c.Grant(leader, 30), b = c.Grant(leader, 30);
  LockResult held = LockNow(c.Channel(leader), "z", a);
  ASSERT_TRUE(held.status.ok()) << held.status.error_message();
  auto later = std::async(std::launch::async, [&] { return LockNow(c.Channel(f), "z", b); });
  ASSERT_EQ(later.wait_for(std::chrono::milliseconds(500)), std::future_status::timeout)
      << "two holders at once";

  c.net().SetFilter([f](const consensus::Message& m) { return m.to == f || m.from == f; });
  Unlock(c.Channel(leader), held.key);
  auto kv = etcdserverpb::KV::NewStub(c.Channel(leader));
  int64_t revision = 0;
  for (int i = 0; i < 30; ++i) {
    etcdserverpb::PutRequest put;
    put.set_key("fill/" + std::to_string(i));
    put.set_value("v");
    etcdserverpb::PutResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(kv->Put(&ctx, put, &resp).ok());
    revision = resp.header().revision();
  }
  etcdserverpb::CompactionRequest compact;
  compact.set_revision(revision);
  compact.set_physical(true);
  etcdserverpb::CompactionResponse compacted;
  grpc::ClientContext compact_ctx;
  ASSERT_TRUE(kv->Compact(&compact_ctx, compact, &compacted).ok());
  EXPECT_EQ(later.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout);

  c.net().SetFilter(nullptr);
  ASSERT_EQ(later.wait_for(std::chrono::seconds(8)), std::future_status::ready)
      << "the waiter never saw the holder go";
  LockResult got = later.get();
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.key, "z/" + Hex(b));
}

// The lease checks of a lock on a follower are the leader's answers, asked without holding a
// thread: TimeToLive on a follower, a waiter whose lease expires on a follower, and a second Lock
// with the same lease (the read-back branch) on another follower.
TEST(RpcLock, AFollowerAsksTheLeaderAboutLeases) {
  ThreeMembers c(31630);
  ASSERT_TRUE(c.WaitPublished());
  const consensus::NodeId leader = c.Leader();
  ASSERT_NE(leader, consensus::kNoNode);
  const consensus::NodeId f1 = leader == 1 ? 2 : 1, f2 = leader == 3 ? 2 : 3;
  const int64_t holder = c.Grant(leader, 30);

  auto lease = etcdserverpb::Lease::NewStub(c.Channel(f1));
  etcdserverpb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(holder);
  etcdserverpb::LeaseTimeToLiveResponse got;
  grpc::ClientContext ctx;
  ASSERT_TRUE(lease->LeaseTimeToLive(&ctx, ttl, &got).ok());
  EXPECT_EQ(got.grantedttl(), 30);
  EXPECT_GT(got.ttl(), 25);
  ttl.set_id(0x5151);
  grpc::ClientContext unknown_ctx;
  ASSERT_TRUE(lease->LeaseTimeToLive(&unknown_ctx, ttl, &got).ok());
  EXPECT_EQ(got.ttl(), -1);

  LockResult held = LockNow(c.Channel(f1), "y", holder);
  ASSERT_TRUE(held.status.ok()) << held.status.error_message();
  LockResult again = LockNow(c.Channel(f2), "y", holder);  // The same lease: the same key.
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  EXPECT_EQ(again.key, held.key);

  const int64_t waiter = c.Grant(leader, 1);
  auto late = std::async(std::launch::async, [&] { return LockNow(c.Channel(f2), "y", waiter); });
  // The waiter's lease (1 s, never kept alive) expires while the holder keeps the lock.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  Unlock(c.Channel(f1), held.key);
  ASSERT_EQ(late.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  LockResult lost = late.get();
  EXPECT_EQ(lost.status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(lost.status.error_message(), "etcdserver: requested lease not found");
}

}  // namespace
}  // namespace ballot::rpc
