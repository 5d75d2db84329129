// Joining a running cluster: discovery of the member id over the peer port's Cluster.MemberList,
// and a member that starts with no membership catching up from the leader (appends, then a
// snapshot). Ports 31700-31799.
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include <thread>

#include "server/join.h"
#include "server/member.h"
#include "server_test_util.h"

namespace ballot::server {
namespace {

using consensus::NodeId;
using testing::In;
using testing::LocalNetwork;
using testing::TempDir;

etcdserverpb::MemberListResponse FakeList() {
  etcdserverpb::MemberListResponse r;
  r.mutable_header()->set_cluster_id(0xc1);
  auto* a = r.add_members();
  a->set_id(0xa1);
  a->set_name("m1");
  a->add_peerurls("http://127.0.0.1:31711");
  auto* b = r.add_members();
  b->set_id(0xb2);  // Added, not started: no name yet.
  b->add_peerurls("http://127.0.0.1:31712");
  return r;
}

class PeerPort {
 public:
  explicit PeerPort(int port, PeerClusterService::ListFn fn) : service_(std::move(fn)) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials());
    b.RegisterService(&service_);
    server_ = b.BuildAndStart();
  }
  ~PeerPort() { server_->Shutdown(); }
  bool ok() const { return server_ != nullptr; }

 private:
  PeerClusterService service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST(ServerJoin, DiscoveryFindsTheIdTheClusterAssigned) {
  PeerPort peer(31711, [] { return Result<etcdserverpb::MemberListResponse>(FakeList()); });
  ASSERT_TRUE(peer.ok());
  // The first URL has nobody listening: the next one answers.
  auto info = DiscoverCluster({"http://127.0.0.1:31719", "http://127.0.0.1:31711"},
                              {"http://127.0.0.1:31712"}, In(5000));
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->cluster_id, 0xc1u);
  EXPECT_EQ(info->self_id, 0xb2u);
  ASSERT_EQ(info->members.size(), 2u);
  EXPECT_EQ(info->members[0].name, "m1");
}

TEST(ServerJoin, DiscoveryRefusesAMemberThatWasNotAdded) {
  PeerPort peer(31713, [] { return Result<etcdserverpb::MemberListResponse>(FakeList()); });
  ASSERT_TRUE(peer.ok());
  auto info = DiscoverCluster({"http://127.0.0.1:31713"}, {"http://127.0.0.1:31799"}, In(5000));
  EXPECT_EQ(info.status().code(), StatusCode::kNotFound) << info.status().ToString();
}

TEST(ServerJoin, DiscoveryFailsWhenNobodyAnswersOrNothingIsNamed) {
  PeerPort down(31714, [] {
    return Result<etcdserverpb::MemberListResponse>(Status::Unavailable("member not started"));
  });
  ASSERT_TRUE(down.ok());
  const auto start = Clock::now();
  auto info = DiscoverCluster({"http://127.0.0.1:31714", "http://127.0.0.1:31715"},
                              {"http://127.0.0.1:31712"}, In(600));
  EXPECT_EQ(info.status().code(), StatusCode::kUnavailable) << info.status().ToString();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(DiscoverCluster({}, {"http://127.0.0.1:31712"}, In(100)).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DiscoverCluster({"https://x:1"}, {"http://127.0.0.1:31712"}, In(100)).status().code(),
            StatusCode::kInvalidArgument);
}

// Three members in one process, plus one added with MemberAdd and started with no membership.
class JoinCluster {
 public:
  explicit JoinCluster(uint64_t snapshot_count) : snapshot_count_(snapshot_count) {
    for (NodeId id : {1, 2, 3}) {
      MemberInfo m;
      m.id = id;
      m.name = "m" + std::to_string(id);
      m.peer_urls = {"http://127.0.0.1:" + std::to_string(31720 + id)};
      initial_.push_back(m);
    }
    for (NodeId id : {1, 2, 3}) Start(id, {1, 2, 3}, initial_);
  }
  ~JoinCluster() {
    for (auto& [id, m] : members_) {
      net_.Detach(id);
      m.reset();
    }
  }
  void Start(NodeId id, std::set<NodeId> voters, std::vector<MemberInfo> members,
             const std::string& name = "") {
    MemberOptions o;
    const std::string dir = dir_.path() + "/m" + std::to_string(id);
    o.node.id = id;
    o.node.cluster_id = 99;
    o.node.name = name.empty() ? "m" + std::to_string(id) : name;
    o.node.wal_dir = dir + "/wal";
    o.node.snap_dir = dir + "/snap";
    o.node.initial_voters = std::move(voters);
    o.node.tick_ms = 10;
    o.node.election_ticks = 10;
    o.node.snapshot_count = snapshot_count_;
    o.node.seed = id * 31;
    o.node.on_fatal = [this](const Status& s) { fatal_ = s.ToString(); };
    o.store_dir = dir + "/db";
    o.initial_members = std::move(members);
    o.request_timeout_ms = 3000;
    o.election_timeout_ms = 100;
    auto m = Member::Open(std::move(o), net_.EndpointFor(id));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    members_[id] = std::move(m).value();
    Member* raw = members_[id].get();
    net_.Attach(id, raw);
  }
  Member* Leader() {
    for (Deadline end = In(5000); Clock::now() < end;) {
      for (auto& [id, m] : members_) {
        if (m && m->node_status().soft.role == consensus::Role::kLeader) return m.get();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return nullptr;
  }
  Status Put(const std::string& k, const std::string& v) {
    etcdserverpb::PutRequest r;
    r.set_key(k);
    r.set_value(v);
    Status last = Status::Unavailable("no leader");
    for (Deadline end = In(5000); Clock::now() < end;) {
      Member* leader = Leader();
      if (leader == nullptr) break;
      auto resp = leader->Put(r);
      if (resp.ok()) return Status::Ok();
      last = resp.status();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return last;
  }
  // Adds a member with MemberAdd (retried while the cluster is not ready), starts it the way
  // `ballot serve --initial-cluster-state existing` does, and returns its id.
  NodeId AddAndStart(const std::string& peer_url) {
    etcdserverpb::MemberAddRequest add;
    add.add_peerurls(peer_url);
    Result<etcdserverpb::MemberAddResponse> added = Status::Unavailable("not tried");
    for (Deadline end = In(5000); Clock::now() < end && !added.ok();) {
      added = Leader()->MemberAdd(add);
      if (!added.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(added.ok()) << added.status().ToString();
    if (!added.ok()) return 0;
    const NodeId id = added->member().id();
    auto list = Leader()->MemberList();
    EXPECT_TRUE(list.ok());
    std::vector<MemberInfo> members;
    for (const auto& m : list->members()) {
      MemberInfo info;
      info.id = m.id();
      info.name = m.id() == id ? "joiner" : m.name();
      info.peer_urls.assign(m.peerurls().begin(), m.peerurls().end());
      members.push_back(info);
    }
    Start(id, /*voters=*/{}, members, "joiner");
    return id;
  }

  LocalNetwork net_;
  TempDir dir_;
  std::vector<MemberInfo> initial_;
  uint64_t snapshot_count_;
  std::map<NodeId, std::unique_ptr<Member>> members_;
  std::string fatal_;
};

bool Eventually(const std::function<bool()>& f, int timeout_ms = 5000) {
  for (Deadline end = In(timeout_ms); Clock::now() < end;) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return f();
}

std::string LocalGet(Member* m, const std::string& key) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_serializable(true);
  auto got = m->Range(r);
  if (!got.ok() || got->kvs_size() != 1) return "";
  return got->kvs(0).value();
}

void ExpectJoinerCaughtUp(JoinCluster& c, NodeId joiner) {
  Member* j = c.members_[joiner].get();
  ASSERT_NE(j, nullptr);
  ASSERT_TRUE(c.Put("after", "2").ok());
  EXPECT_TRUE(Eventually([&] { return LocalGet(j, "before") == "1"; }));
  EXPECT_TRUE(Eventually([&] { return LocalGet(j, "after") == "2"; }));
  // It learned the membership, itself a voter, and never led.
  EXPECT_TRUE(Eventually([&] { return j->node_status().conf.voters.count(joiner) == 1; }));
  EXPECT_EQ(j->node_status().conf.voters.size(), 4u);
  EXPECT_NE(j->node_status().soft.role, consensus::Role::kLeader);
  auto list = j->MemberList();
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->members_size(), 4);
  // A linearizable read through it works: it is a full member.
  etcdserverpb::RangeRequest r;
  r.set_key("after");
  auto got = j->Range(r);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(c.fatal_, "");
}

TEST(ServerJoin, AddedMemberWithNoMembershipCatchesUpByAppends) {
  JoinCluster c(/*snapshot_count=*/100000);
  ASSERT_TRUE(c.Put("before", "1").ok());
  const NodeId joiner = c.AddAndStart("http://127.0.0.1:31724");
  ASSERT_NE(joiner, 0u);
  ExpectJoinerCaughtUp(c, joiner);
}

TEST(ServerJoin, AddedMemberWithNoMembershipCatchesUpByASnapshot) {
  JoinCluster c(/*snapshot_count=*/8);
  ASSERT_TRUE(c.Put("before", "1").ok());
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(c.Put("k" + std::to_string(i), "v").ok());
  const NodeId joiner = c.AddAndStart("http://127.0.0.1:31725");
  ASSERT_NE(joiner, 0u);
  ExpectJoinerCaughtUp(c, joiner);
  EXPECT_TRUE(Eventually([&] { return LocalGet(c.members_[joiner].get(), "k29") == "v"; }));
}

}  // namespace
}  // namespace ballot::server
