// Cluster operations of the member: MemberUpdate (through the log, on every member), Hash (equal
// on members with the same applied state), Defragment, and snapshot restore into a new data
// directory that boots as a new cluster. Three members in one process over an in-process network;
// nothing listens on a port.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

#include "config/data_dir.h"
#include "config/identity.h"
#include "mvcc/store.h"
#include "server/errors.h"
#include "server/member.h"
#include "server/restore.h"
#include "server_test_util.h"

namespace ballot::server {
namespace {

using consensus::NodeId;
using testing::In;
using testing::LocalNetwork;
using testing::TempDir;

std::string PeerUrl(int port) { return "http://127.0.0.1:" + std::to_string(port); }

MemberOptions BaseOptions(NodeId id, uint64_t cluster_id, const std::string& dir) {
  MemberOptions o;
  o.node.id = id;
  o.node.cluster_id = cluster_id;
  o.node.name = "m" + std::to_string(id);
  o.node.wal_dir = dir + "/wal";
  o.node.snap_dir = dir + "/snap";
  o.node.tick_ms = 10;
  o.node.election_ticks = 10;
  o.node.seed = id * 31 + 7;
  o.store_dir = dir + "/db";
  o.request_timeout_ms = 3000;
  o.election_timeout_ms = 100;
  return o;
}

class OpsCluster {
 public:
  OpsCluster() {
    for (NodeId id : {1, 2, 3}) {
      MemberInfo m;
      m.id = id;
      m.name = "m" + std::to_string(id);
      m.peer_urls = {PeerUrl(31780 + static_cast<int>(id))};
      initial_.push_back(m);
    }
    for (NodeId id : {1, 2, 3}) {
      MemberOptions o = BaseOptions(id, 42, dir_.path() + "/m" + std::to_string(id));
      o.node.initial_voters = {1, 2, 3};
      o.initial_members = initial_;
      o.on_members_changed = [this, id](const std::vector<MemberInfo>& members) {
        std::lock_guard<std::mutex> lock(mu_);
        seen_[id] = members;
      };
      auto m = Member::Open(std::move(o), net_.EndpointFor(id));
      EXPECT_TRUE(m.ok()) << m.status().ToString();
      if (!m.ok()) continue;
      members_[id] = std::move(m).value();
      Member* raw = members_[id].get();
      net_.Attach(id, raw);
    }
  }
  ~OpsCluster() {
    for (auto& [id, m] : members_) {
      net_.Detach(id);
      m.reset();
    }
  }
  Member* Leader() {
    for (Deadline end = In(5000); Clock::now() < end;) {
      for (auto& [id, m] : members_) {
        if (m->node_status().soft.role == consensus::Role::kLeader) return m.get();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return nullptr;
  }
  // Puts through the leader, retrying only a lost leadership.
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
      if (!last.IsUnavailable() && !IsNotLeader(last)) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return last;
  }
  // Waits until every member applied as far as the leader has.
  bool WaitConverged() {
    Member* leader = Leader();
    if (leader == nullptr) return false;
    const consensus::Index target = leader->node_status().applied;
    for (Deadline end = In(5000); Clock::now() < end;) {
      bool all = true;
      for (auto& [id, m] : members_) all = all && m->node_status().applied >= target;
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  // Waits until every member has applied the same index and nothing more for a while (members
  // publish their attributes through the log on their own schedule).
  bool WaitQuiet() {
    consensus::Index last = 0;
    Clock::time_point since = Clock::now();
    for (Deadline end = In(5000); Clock::now() < end;) {
      std::set<consensus::Index> applied;
      for (auto& [id, m] : members_) applied.insert(m->node_status().applied);
      if (applied.size() == 1 && *applied.begin() == last) {
        if (Clock::now() - since > std::chrono::milliseconds(300)) return true;
      } else {
        last = applied.size() == 1 ? *applied.begin() : 0;
        since = Clock::now();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  std::vector<MemberInfo> Seen(NodeId id) {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_[id];
  }

  LocalNetwork net_;
  TempDir dir_;
  std::vector<MemberInfo> initial_;
  std::map<NodeId, std::unique_ptr<Member>> members_;
  std::mutex mu_;
  std::map<NodeId, std::vector<MemberInfo>> seen_;  // Guarded by mu_.
};

etcdserverpb::MemberUpdateRequest Update(NodeId id, std::vector<std::string> urls) {
  etcdserverpb::MemberUpdateRequest r;
  r.set_id(id);
  for (auto& u : urls) r.add_peerurls(u);
  return r;
}

std::vector<std::string> PeerUrlsOf(const std::vector<MemberInfo>& members, NodeId id) {
  for (const auto& m : members) {
    if (m.id == id) return m.peer_urls;
  }
  return {};
}

TEST(ServerOps, MemberUpdateChangesPeerUrlsOnEveryMember) {
  OpsCluster c;
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  const NodeId target = leader->id() % 3 + 1;  // Another member.
  auto resp = leader->MemberUpdate(Update(target, {PeerUrl(31790)}));
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  ASSERT_EQ(resp->members_size(), 3);
  bool found = false;
  for (const auto& m : resp->members()) {
    if (m.id() != target) continue;
    found = true;
    ASSERT_EQ(m.peerurls_size(), 1);
    EXPECT_EQ(m.peerurls(0), PeerUrl(31790));
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE(c.WaitConverged());
  for (auto& [id, m] : c.members_) {
    EXPECT_EQ(PeerUrlsOf(m->Members(), target), std::vector<std::string>{PeerUrl(31790)})
        << "member " << id;
    // The transport hook saw the new address on every member.
    EXPECT_EQ(PeerUrlsOf(c.Seen(id), target), std::vector<std::string>{PeerUrl(31790)})
        << "member " << id;
  }
  // The cluster still takes writes (the engines address members by id).
  EXPECT_TRUE(c.Put("after-update", "v").ok());
}

TEST(ServerOps, MemberUpdateErrorsFollowEtcd) {
  OpsCluster c;
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  auto unknown = leader->MemberUpdate(Update(12345, {PeerUrl(31791)}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(unknown.status().message(), kErrMemberNotFound);

  // Member 1's URL for member 2.
  auto taken = leader->MemberUpdate(Update(2, {PeerUrl(31781)}));
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(taken.status().message(), kErrPeerUrlExists);

  for (const char* bad : {"not a url", "http://127.0.0.1", "ftp//x:1", ""}) {
    auto r = leader->MemberUpdate(Update(2, {bad}));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto none = leader->MemberUpdate(Update(2, {}));
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);

  // A member may keep its own URL.
  auto same = leader->MemberUpdate(Update(2, {PeerUrl(31782)}));
  EXPECT_TRUE(same.ok()) << same.status().ToString();
  // Nothing above changed anyone's URLs.
  ASSERT_TRUE(c.WaitConverged());
  for (auto& [id, m] : c.members_) {
    for (NodeId other : {1, 2, 3}) {
      EXPECT_EQ(PeerUrlsOf(m->Members(), other),
                std::vector<std::string>{PeerUrl(31780 + static_cast<int>(other))});
    }
  }
}

TEST(ServerOps, HashIsEqualOnMembersWithTheSameAppliedState) {
  OpsCluster c;
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(c.Put("k" + std::to_string(i % 7), "v" + std::to_string(i)).ok());
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(60);
  ASSERT_TRUE(leader->LeaseGrant(grant).ok());
  etcdserverpb::CompactionRequest compact;
  compact.set_revision(10);
  ASSERT_TRUE(leader->Compact(compact).ok());
  ASSERT_TRUE(c.WaitQuiet());
  auto h1 = c.members_[1]->Hash();
  ASSERT_TRUE(h1.ok()) << h1.status().ToString();
  for (NodeId id : {2, 3}) {
    auto h = c.members_[id]->Hash();
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->hash(), h1->hash()) << "member " << id;
    EXPECT_EQ(h->header().revision(), h1->header().revision());
  }
  // Defragment (physical compaction, RocksDB's) changes nothing the hash covers.
  ASSERT_TRUE(c.members_[2]->Defragment().ok());
  EXPECT_EQ(c.members_[2]->Hash()->hash(), h1->hash());
  // A write changes it.
  ASSERT_TRUE(c.Put("k-new", "x").ok());
  ASSERT_TRUE(c.WaitQuiet());
  EXPECT_NE(c.members_[1]->Hash()->hash(), h1->hash());
}

int64_t DbBytes(Member* m) {
  auto st = m->MaintenanceStatus();
  return st.ok() ? st->dbsize() : -1;
}

TEST(ServerOps, DefragmentAfterDeleteAllAndCompactReclaimsSpace) {
  OpsCluster c;
  const std::string value(8000, 'x');
  for (int i = 0; i < 150; ++i) ASSERT_TRUE(c.Put("big" + std::to_string(i), value).ok());
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(std::string(1, '\0'));
  del.set_range_end(std::string(1, '\0'));
  auto deleted = leader->DeleteRange(del);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_EQ(deleted->deleted(), 150);
  etcdserverpb::CompactionRequest compact;
  compact.set_revision(deleted->header().revision());
  ASSERT_TRUE(leader->Compact(compact).ok());
  const int64_t before = DbBytes(leader);
  auto defrag = leader->Defragment();
  ASSERT_TRUE(defrag.ok()) << defrag.status().ToString();
  EXPECT_EQ(defrag->header().member_id(), leader->id());
  const int64_t after = DbBytes(leader);
  std::cout << "db size before defragment " << before << " bytes, after " << after << "\n";
  ASSERT_GT(before, 0);
  // 150 values of 8000 bytes were written (1.2 MB); after defragmenting, their history is gone
  // from the files.
  EXPECT_LT(after, before) << "before " << before << " after " << after;
  EXPECT_LT(after, 600 * 1000) << "before " << before << " after " << after;
  // Still serves.
  EXPECT_TRUE(c.Put("after-defrag", "v").ok());
}

// ---- Snapshot restore ----

config::ClusterMember ClusterMemberOf(const std::string& name, int port) {
  config::ClusterMember m;
  m.name = name;
  m.peer_urls = {*config::ParseUrl(PeerUrl(port))};
  return m;
}

RestoreOptions RestoreTo(const std::string& data_dir) {
  RestoreOptions o;
  o.data_dir = data_dir;
  o.name = "r1";
  o.initial_cluster = {ClusterMemberOf("r1", 31795)};
  o.initial_cluster_token = "restored";
  return o;
}

TEST(ServerOps, SnapshotRestoreRoundTripBootsANewClusterWithTheData) {
  TempDir out;
  std::string image;
  etcdserverpb::HashKVResponse source_hash;
  int64_t source_revision = 0;
  {
    OpsCluster c;
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(c.Put("key" + std::to_string(i), "v" + std::to_string(i)).ok());
    ASSERT_TRUE(c.Put("key3", "overwritten").ok());
    Member* leader = c.Leader();
    ASSERT_NE(leader, nullptr);
    auto stream = leader->SnapshotStream();
    ASSERT_TRUE(stream.ok());
    image = *stream;
    auto h = leader->HashKV(etcdserverpb::HashKVRequest{});
    ASSERT_TRUE(h.ok());
    source_hash = *h;
    source_revision = h->header().revision();
  }
  ASSERT_EQ(source_revision, 22);

  const std::string data_dir = out.path() + "/r1.data";
  RestoreOptions options = RestoreTo(data_dir);
  auto report = RestoreSnapshot(image, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->revision, source_revision);
  const uint64_t id = config::ComputeMemberId(options.initial_cluster[0].peer_urls, "restored");
  EXPECT_EQ(report->member_id, id);
  EXPECT_EQ(report->cluster_id, config::ComputeClusterId({id}));
  EXPECT_FALSE(std::filesystem::exists(data_dir + ".restore-" + std::to_string(::getpid())));

  // The store alone: same revision, keys and HashKV; no membership of the old cluster.
  {
    mvcc::StoreOptions so;
    so.dir = data_dir + "/member/db";
    auto store = mvcc::Store::Open(so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    EXPECT_EQ((*store)->CurrentRevision(), source_revision);
    auto h = (*store)->HashKV(mvcc::HashKVRequest{});
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(h->hash, source_hash.hash());
    EXPECT_TRUE((*store)->ScanMeta("member/")->empty());
  }

  // Boot it as a new one-member cluster, as `ballot serve` would with the same flags.
  LocalNetwork net;
  config::DataDirIdentity identity;
  identity.cluster_id = report->cluster_id;
  identity.member_id = report->member_id;
  identity.name = "r1";
  auto dir = config::DataDir::Open(data_dir, identity);
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_FALSE((*dir)->created());
  MemberOptions o = BaseOptions(id, report->cluster_id, data_dir + "/member");
  o.node.initial_voters = {id};
  MemberInfo self;
  self.id = id;
  self.name = "r1";
  self.peer_urls = {PeerUrl(31795)};
  o.initial_members = {self};
  auto member = Member::Open(std::move(o), net.EndpointFor(id));
  ASSERT_TRUE(member.ok()) << member.status().ToString();
  Member* m = member->get();
  net.Attach(id, m);
  etcdserverpb::RangeRequest get;
  get.set_key("key3");
  Result<etcdserverpb::RangeResponse> got = m->Range(get);
  for (Deadline end = In(5000); !got.ok() && Clock::now() < end;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    got = m->Range(get);
  }
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "overwritten");
  EXPECT_EQ(got->header().revision(), source_revision);
  // The name comes with the member's published attributes, a log entry of its own after start.
  auto list = m->MemberList();
  for (int i = 0;
       i < 500 && list.ok() && list->members_size() == 1 && list->members(0).name() != "r1"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    list = m->MemberList();
  }
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->members_size(), 1);
  EXPECT_EQ(list->members(0).name(), "r1");
  etcdserverpb::PutRequest put;
  put.set_key("new");
  put.set_value("1");
  auto written = m->Put(put);
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  EXPECT_EQ(written->header().revision(), source_revision + 1);
  net.Detach(id);
  member->reset();
}

std::string SourceImage() {
  OpsCluster c;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(c.Put("k" + std::to_string(i), "v").ok());
  Member* leader = c.Leader();
  if (leader == nullptr) return "";
  auto stream = leader->SnapshotStream();
  return stream.ok() ? *stream : "";
}

TEST(ServerOps, SnapshotRestoreRefusesCorruptFilesAndLeavesNothing) {
  const std::string image = SourceImage();
  ASSERT_FALSE(image.empty());
  TempDir out;
  const std::string data_dir = out.path() + "/r.data";
  std::string flipped = image;
  flipped[flipped.size() / 3] ^= 0x01;
  std::vector<std::pair<std::string, std::string>> cases = {
      {"flipped byte", flipped},
      {"truncated", image.substr(0, image.size() - 100)},
      {"truncated to a multiple of 512 + 32", image.substr(0, 512 + 32)},
      {"empty", ""},
      {"garbage", std::string(1056, 'g')},
  };
  for (const auto& [what, bytes] : cases) {
    auto r = RestoreSnapshot(bytes, RestoreTo(data_dir));
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << what << ": " << r.status().ToString();
    EXPECT_FALSE(std::filesystem::exists(data_dir)) << what;
    EXPECT_TRUE(std::filesystem::is_empty(out.path())) << what;
  }
  // --skip-hash-check still checks the stream's own checksums.
  RestoreOptions skip = RestoreTo(data_dir);
  skip.skip_hash_check = true;
  EXPECT_FALSE(RestoreSnapshot(flipped, skip).ok());
  EXPECT_TRUE(std::filesystem::is_empty(out.path()));
  // ... and accepts a bare stream (no padding, no SHA-256).
  auto stream = ExtractSnapshotStream(image, /*skip_hash_check=*/false);
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  EXPECT_TRUE(RestoreSnapshot(*stream, skip).ok());
  EXPECT_TRUE(std::filesystem::exists(data_dir + "/member/identity"));
}

TEST(ServerOps, SnapshotRestoreRefusesANonEmptyDataDirAndBadFlags) {
  const std::string image = SourceImage();
  ASSERT_FALSE(image.empty());
  TempDir out;
  const std::string data_dir = out.path() + "/r.data";
  std::filesystem::create_directories(data_dir);
  std::ofstream(data_dir + "/something") << "x";
  auto r = RestoreSnapshot(image, RestoreTo(data_dir));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(std::filesystem::exists(data_dir + "/something"));
  EXPECT_FALSE(std::filesystem::exists(data_dir + "/member"));

  // An empty directory is fine.
  std::filesystem::remove(data_dir + "/something");
  RestoreOptions wrong_name = RestoreTo(data_dir);
  wrong_name.name = "nobody";
  EXPECT_EQ(RestoreSnapshot(image, wrong_name).status().code(), StatusCode::kInvalidArgument);
  RestoreOptions wrong_urls = RestoreTo(data_dir);
  wrong_urls.initial_advertise_peer_urls = {*config::ParseUrl(PeerUrl(31799))};
  EXPECT_EQ(RestoreSnapshot(image, wrong_urls).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(RestoreSnapshot(image, RestoreTo(data_dir)).ok());
  EXPECT_TRUE(std::filesystem::exists(data_dir + "/member/wal"));
}

}  // namespace
}  // namespace ballot::server
