// The consensus host: three nodes in one process over an in-process network, with real WALs and
// snapshot files in a temp directory and a small file-backed state machine that records every
// index it applies (so a double apply is visible).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "server/node.h"
#include "server_test_util.h"
#include "wal/env.h"

namespace ballot::server {
namespace {

using consensus::Entry;
using consensus::EntryType;
using consensus::Index;
using consensus::NodeId;
using testing::In;
using testing::LocalNetwork;
using testing::TempDir;

// State: "k=v" lines applied in order, the applied index, and how many times each index was
// applied (across restarts: it is all saved in one file, replaced atomically per batch).
class FileStateMachine : public StateMachine {
 public:
  explicit FileStateMachine(std::string path) : path_(std::move(path)) { Load(); }

  Index applied_index() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return applied_;
  }
  Status Apply(const std::vector<Entry>& entries) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Entry& e : entries) {
      if (e.index != applied_ + 1) return Status::Internal("gap");
      applied_ = e.index;
      ++apply_count_[e.index];
      if (e.type == EntryType::kNormal) {
        auto eq = e.data.find('=');
        if (eq != std::string::npos) kv_[e.data.substr(0, eq)] = e.data.substr(eq + 1);
      }
    }
    return SaveLocked();
  }
  Result<std::string> Snapshot() override {
    std::lock_guard<std::mutex> lock(mu_);
    return Encode(false);
  }
  Status Restore(const std::string& data, Index index) override {
    std::lock_guard<std::mutex> lock(mu_);
    kv_.clear();
    std::istringstream in(data);
    std::string k, v;
    while (in >> k >> v) kv_[k] = v;
    applied_ = index;
    ++restores_;
    return SaveLocked();
  }

  std::string Get(const std::string& k) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = kv_.find(k);
    return it == kv_.end() ? "" : it->second;
  }
  int MaxApplyCount() const {
    std::lock_guard<std::mutex> lock(mu_);
    int m = 0;
    for (auto& [i, c] : apply_count_) m = std::max(m, c);
    return m;
  }
  int restores() const {
    std::lock_guard<std::mutex> lock(mu_);
    return restores_;
  }

 private:
  std::string Encode(bool with_counts) const {
    std::ostringstream out;
    for (auto& [k, v] : kv_) out << k << " " << v << "\n";
    if (with_counts) {
      out << "# " << applied_ << " " << restores_ << "\n";
      for (auto& [i, c] : apply_count_) out << "@ " << i << " " << c << "\n";
    }
    return out.str();
  }
  Status SaveLocked() {
    std::string tmp = path_ + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << Encode(true);
      if (!out) return Status::Internal("write " + tmp);
    }
    std::filesystem::rename(tmp, path_);
    return Status::Ok();
  }
  void Load() {
    std::ifstream in(path_);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string a;
      ls >> a;
      if (a == "#") {
        ls >> applied_ >> restores_;
      } else if (a == "@") {
        Index i;
        int c;
        ls >> i >> c;
        apply_count_[i] = c;
      } else if (!a.empty()) {
        std::string v;
        ls >> v;
        kv_[a] = v;
      }
    }
  }

  const std::string path_;
  mutable std::mutex mu_;
  std::map<std::string, std::string> kv_;
  std::map<Index, int> apply_count_;
  Index applied_ = 0;
  int restores_ = 0;
};

class NodeCluster {
 public:
  explicit NodeCluster(int size, uint64_t snapshot_count = 100000)
      : snapshot_count_(snapshot_count) {
    for (int i = 1; i <= size; ++i) voters_.insert(i);
    for (NodeId id : voters_) Start(id);
  }
  ~NodeCluster() {
    for (auto& [id, n] : nodes_) {
      net_.Detach(id);
      n.reset();
    }
  }

  void Start(NodeId id) {
    std::string dir = dir_.path() + "/m" + std::to_string(id);
    std::filesystem::create_directories(dir);
    sms_[id] = std::make_unique<FileStateMachine>(dir + "/sm");
    NodeOptions o;
    o.id = id;
    o.cluster_id = 7;
    o.name = "m" + std::to_string(id);
    o.wal_dir = dir + "/wal";
    o.snap_dir = dir + "/snap";
    o.initial_voters = voters_;
    o.tick_ms = 10;
    o.election_ticks = 10;
    o.snapshot_count = snapshot_count_;
    o.wal_segment_bytes = 4096;
    o.seed = id * 1000 + restarts_++;
    o.on_fatal = [this](const Status& s) { fatal_ = s.ToString(); };
    auto node = Node::Open(o, sms_[id].get(), net_.EndpointFor(id));
    ASSERT_TRUE(node.ok()) << node.status().ToString();
    nodes_[id] = std::move(node).value();
    net_.Attach(id, nodes_[id].get());
  }
  void Kill(NodeId id) {
    net_.Detach(id);
    nodes_[id].reset();
    sms_[id].reset();
  }

  NodeId WaitLeader(int timeout_ms = 5000) {
    Deadline end = In(timeout_ms);
    while (Clock::now() < end) {
      for (auto& [id, n] : nodes_) {
        if (n && n->status().soft.role == consensus::Role::kLeader) return id;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return consensus::kNoNode;
  }
  // Proposes on the leader, retrying across elections.
  Status Put(const std::string& k, const std::string& v) {
    Deadline end = In(5000);
    while (Clock::now() < end) {
      NodeId leader = WaitLeader();
      if (leader == consensus::kNoNode) break;
      if (nodes_[leader]->Propose(k + "=" + v, In(1000)).ok()) return Status::Ok();
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Status::Unavailable("no leader took the proposal");
  }
  // A proposal is only accepted when Put returns: wait for it to be applied.
  bool WaitValue(NodeId id, const std::string& k, const std::string& v, int timeout_ms = 5000) {
    Deadline end = In(timeout_ms);
    while (Clock::now() < end) {
      if (sms_[id] && sms_[id]->Get(k) == v) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  LocalNetwork net_;
  TempDir dir_;
  std::set<NodeId> voters_;
  uint64_t snapshot_count_;
  int restarts_ = 0;
  std::map<NodeId, std::unique_ptr<FileStateMachine>> sms_;
  std::map<NodeId, std::unique_ptr<Node>> nodes_;
  std::string fatal_;
};

TEST(ServerNode, ElectsALeaderAndReplicatesPuts) {
  NodeCluster c(3);
  ASSERT_NE(c.WaitLeader(), consensus::kNoNode);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.Put("k" + std::to_string(i), std::to_string(i)).ok());
  for (NodeId id : {1, 2, 3}) {
    EXPECT_TRUE(c.WaitValue(id, "k19", "19")) << "member " << id;
    EXPECT_EQ(c.sms_[id]->MaxApplyCount(), 1);
  }
  EXPECT_EQ(c.fatal_, "");
}

TEST(ServerNode, ReadIndexOnAFollowerCoversEarlierWrites) {
  NodeCluster c(3);
  NodeId leader = c.WaitLeader();
  ASSERT_NE(leader, consensus::kNoNode);
  ASSERT_TRUE(c.Put("a", "1").ok());
  // Wait until the write is applied on the leader, so it is committed.
  ASSERT_TRUE(c.WaitValue(leader, "a", "1"));
  NodeId follower = leader == 1 ? 2 : 1;
  auto index = c.nodes_[follower]->ReadIndex(In(2000));
  ASSERT_TRUE(index.ok()) << index.status().ToString();
  ASSERT_TRUE(c.nodes_[follower]->WaitApplied(*index, In(2000)).ok());
  EXPECT_EQ(c.sms_[follower]->Get("a"), "1");
}

TEST(ServerNode, ProposalOnAFollowerIsRefused) {
  NodeCluster c(3);
  NodeId leader = c.WaitLeader();
  ASSERT_NE(leader, consensus::kNoNode);
  NodeId follower = leader == 1 ? 2 : 1;
  Status s = c.nodes_[follower]->Propose("x=1", In(1000));
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
}

TEST(ServerNode, RestartedMemberCatchesUpAndAppliesExactlyOnce) {
  NodeCluster c(3);
  ASSERT_NE(c.WaitLeader(), consensus::kNoNode);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Put("a" + std::to_string(i), "x").ok());
  for (NodeId id : {1, 2, 3}) ASSERT_TRUE(c.WaitValue(id, "a9", "x"));
  NodeId victim = c.WaitLeader() == 3 ? 2 : 3;
  Index before = c.nodes_[victim]->status().applied;
  c.Kill(victim);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Put("b" + std::to_string(i), "y").ok());
  c.Start(victim);
  // It restarts from its own applied index, not from 0.
  EXPECT_GE(c.nodes_[victim]->status().applied, before);
  EXPECT_TRUE(c.WaitValue(victim, "b9", "y"));
  EXPECT_EQ(c.sms_[victim]->MaxApplyCount(), 1);
  EXPECT_EQ(c.fatal_, "");
}

TEST(ServerNode, MemberBehindCompactionGetsASnapshot) {
  NodeCluster c(3, /*snapshot_count=*/5);
  ASSERT_NE(c.WaitLeader(), consensus::kNoNode);
  NodeId victim = c.WaitLeader() == 3 ? 2 : 3;
  c.net_.Cut(victim, true);
  // Enough entries for several snapshots (and WAL segments of 4 KiB) on the other two.
  for (int i = 0; i < 60; ++i) {
    ASSERT_TRUE(c.Put("c" + std::to_string(i), std::string(100, 'z')).ok());
  }
  NodeId leader = c.WaitLeader();
  ASSERT_NE(leader, consensus::kNoNode);
  ASSERT_TRUE(c.nodes_[leader]->WaitApplied(c.nodes_[leader]->status().committed, In(2000)).ok());
  // The leader's log no longer holds what the victim needs.
  c.net_.Cut(victim, false);
  ASSERT_TRUE(c.Put("after", "1").ok());
  Deadline end = In(5000);
  while (Clock::now() < end && c.sms_[victim]->Get("after") != "1") {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(c.sms_[victim]->Get("c59"), std::string(100, 'z'));
  EXPECT_EQ(c.sms_[victim]->Get("after"), "1");
  EXPECT_GE(c.sms_[victim]->restores(), 1);
  // And it restarts from that snapshot and its log.
  c.Kill(victim);
  c.Start(victim);
  ASSERT_TRUE(c.Put("later", "2").ok());
  end = In(5000);
  while (Clock::now() < end && c.sms_[victim]->Get("later") != "2") {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(c.sms_[victim]->Get("later"), "2");
  EXPECT_EQ(c.sms_[victim]->MaxApplyCount(), 1);
  EXPECT_EQ(c.fatal_, "");
}

}  // namespace
}  // namespace ballot::server
