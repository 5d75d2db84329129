// The Member: three members in one process over an in-process network, each with a real WAL,
// RocksDB store, lessor and watch hub in a temp directory.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "server/errors.h"
#include "server/member.h"
#include "server_test_util.h"

namespace ballot::server {
namespace {

using consensus::NodeId;
using testing::In;
using testing::LocalNetwork;
using testing::TempDir;

class MemberCluster {
 public:
  explicit MemberCluster(uint64_t snapshot_count = 100000, int64_t quota_backend_bytes = 0)
      : snapshot_count_(snapshot_count), quota_backend_bytes_(quota_backend_bytes) {
    for (NodeId id : {1, 2, 3}) {
      MemberInfo m;
      m.id = id;
      m.name = "m" + std::to_string(id);
      m.peer_urls = {"http://127.0.0.1:" + std::to_string(33100 + id)};
      initial_.push_back(m);
    }
    for (NodeId id : {1, 2, 3}) Start(id);
  }
  ~MemberCluster() {
    for (auto& [id, m] : members_) {
      net_.Detach(id);
      m.reset();
    }
  }

  void Start(NodeId id) {
    MemberOptions o;
    const std::string dir = dir_.path() + "/m" + std::to_string(id);
    o.node.id = id;
    o.node.cluster_id = 99;
    o.node.name = "m" + std::to_string(id);
    o.node.wal_dir = dir + "/wal";
    o.node.snap_dir = dir + "/snap";
    o.node.initial_voters = {1, 2, 3};
    o.node.tick_ms = 10;
    o.node.election_ticks = 10;
    o.node.snapshot_count = snapshot_count_;
    o.node.wal_segment_bytes = 4096;
    o.node.seed = id * 77 + restarts_++;
    o.node.on_fatal = [this](const Status& s) { fatal_ = s.ToString(); };
    o.store_dir = dir + "/db";
    o.initial_members = initial_;
    o.request_timeout_ms = 3000;
    o.election_timeout_ms = 100;
    o.quota_backend_bytes = quota_backend_bytes_;
    auto m = Member::Open(std::move(o), net_.EndpointFor(id));
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    members_[id] = std::move(m).value();
    Member* raw = members_[id].get();
    net_.Attach(id, raw);
  }
  void Kill(NodeId id) {
    net_.Detach(id);
    members_[id].reset();
  }
  Member* Leader(int timeout_ms = 5000) {
    Deadline end = In(timeout_ms);
    while (Clock::now() < end) {
      for (auto& [id, m] : members_) {
        if (m && m->node_status().soft.role == consensus::Role::kLeader) return m.get();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return nullptr;
  }
  Member* Follower() {
    Member* leader = Leader();
    for (auto& [id, m] : members_) {
      if (m && m.get() != leader) return m.get();
    }
    return nullptr;
  }
  Result<etcdserverpb::PutResponse> Put(const std::string& k, const std::string& v,
                                        int64_t lease = 0) {
    etcdserverpb::PutRequest r;
    r.set_key(k);
    r.set_value(v);
    r.set_lease(lease);
    r.set_prev_kv(true);
    Deadline end = In(5000);
    Status last = Status::Unavailable("no leader");
    while (Clock::now() < end) {
      Member* leader = Leader();
      if (leader == nullptr) break;
      auto resp = leader->Put(r);
      if (resp.ok()) return resp;
      last = resp.status();
      // Only a lost leadership is worth another try; the request's own errors are its answer.
      if (!last.IsUnavailable() && !IsNotLeader(last)) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return last;
  }

  LocalNetwork net_;
  TempDir dir_;
  std::vector<MemberInfo> initial_;
  uint64_t snapshot_count_;
  int64_t quota_backend_bytes_ = 0;
  int restarts_ = 0;
  std::map<NodeId, std::unique_ptr<Member>> members_;
  std::string fatal_;
};

etcdserverpb::RangeRequest Get(const std::string& key, bool serializable = false) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_serializable(serializable);
  return r;
}

TEST(ServerMember, PutsAreReadOnEveryMember) {
  MemberCluster c;
  auto put = c.Put("foo", "bar");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_FALSE(put->has_prev_kv());
  EXPECT_EQ(put->header().cluster_id(), 99u);
  EXPECT_GT(put->header().raft_term(), 0u);
  auto second = c.Put("foo", "baz");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->prev_kv().value(), "bar");
  EXPECT_EQ(second->header().revision(), put->header().revision() + 1);
  for (auto& [id, m] : c.members_) {
    // Linearizable reads on followers go through the leader's read index.
    auto got = m->Range(Get("foo"));
    ASSERT_TRUE(got.ok()) << "member " << id << ": " << got.status().ToString();
    ASSERT_EQ(got->kvs_size(), 1);
    EXPECT_EQ(got->kvs(0).value(), "baz");
    EXPECT_EQ(got->kvs(0).version(), 2);
    EXPECT_EQ(got->header().member_id(), id);
  }
}

TEST(ServerMember, TxnAndDeleteFollowEtcd) {
  MemberCluster c;
  ASSERT_TRUE(c.Put("k", "1").ok());
  Member* leader = c.Leader();
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("k");
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_value("1");
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key("k");
  put->set_value("2");
  txn.add_failure()->mutable_request_range()->set_key("k");
  auto t = leader->Txn(txn);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(t->succeeded());
  auto again = leader->Txn(txn);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->succeeded());
  ASSERT_EQ(again->responses_size(), 1);
  EXPECT_EQ(again->responses(0).response_range().kvs(0).value(), "2");

  etcdserverpb::DeleteRangeRequest del;
  del.set_key("k");
  del.set_prev_kv(true);
  auto d = leader->DeleteRange(del);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->deleted(), 1);
  EXPECT_EQ(d->prev_kvs(0).value(), "2");
  auto got = leader->Range(Get("k"));
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->kvs_size(), 0);

  // etcd's errors: a duplicate key in one txn.
  etcdserverpb::TxnRequest dup;
  for (int i = 0; i < 2; ++i) {
    auto* p = dup.add_success()->mutable_request_put();
    p->set_key("same");
    p->set_value("x");
  }
  auto bad = leader->Txn(dup);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "etcdserver: duplicate key given in txn request");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

// Forwarding needs only the peer network: no client URL is published in this test (no rpc
// servers), and a follower's write still reaches the leader and comes back with its answer.
TEST(ServerMember, ProposalOnAFollowerIsForwardedOverThePeerNetwork) {
  MemberCluster c;
  ASSERT_TRUE(c.Put("a", "1").ok());
  Member* follower = c.Follower();
  ASSERT_NE(follower, nullptr);
  const uint64_t forwarded = follower->forwarded_requests();
  etcdserverpb::PutRequest r;
  r.set_key("b");
  r.set_value("2");
  r.set_prev_kv(true);
  auto resp = follower->Put(r);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->header().member_id(), follower->id());
  EXPECT_GE(resp->header().revision(), 3);  // After the put of "a" at 2.
  EXPECT_FALSE(resp->has_prev_kv());
  // At least the put (the follower may forward its own attributes meanwhile: housekeeping
  // publishes them once, through the leader).
  EXPECT_GT(follower->forwarded_requests(), forwarded);
  etcdserverpb::RangeRequest get;
  get.set_key("b");
  auto got = c.Leader()->Range(get);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->kvs(0).value(), "2");
}

TEST(ServerMember, OversizedRequestIsRefusedWithEtcdsMessage) {
  MemberCluster c;
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  etcdserverpb::PutRequest r;
  r.set_key("big");
  r.set_value(std::string(2 << 20, 'x'));
  auto resp = leader->Put(r);
  ASSERT_FALSE(resp.ok());
  EXPECT_EQ(resp.status().message(), "etcdserver: request is too large");
  EXPECT_EQ(resp.status().code(), StatusCode::kInvalidArgument);
}

TEST(ServerMember, LeaseRevokeDeletesItsKeys) {
  MemberCluster c;
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  etcdserverpb::LeaseGrantRequest g;
  g.set_ttl(60);
  auto grant = leader->LeaseGrant(g);
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  EXPECT_NE(grant->id(), 0);
  ASSERT_TRUE(c.Put("leased", "v", grant->id()).ok());
  etcdserverpb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(grant->id());
  ttl.set_keys(true);
  auto t = c.Leader()->LeaseTimeToLive(ttl);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->grantedttl(), 60);
  ASSERT_EQ(t->keys_size(), 1);
  EXPECT_EQ(t->keys(0), "leased");
  // A put naming an unknown lease.
  auto bad = c.Put("x", "y", 12345);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "etcdserver: requested lease not found");

  etcdserverpb::LeaseRevokeRequest rev;
  rev.set_id(grant->id());
  ASSERT_TRUE(c.Leader()->LeaseRevoke(rev).ok());
  for (auto& [id, m] : c.members_) {
    auto got = m->Range(Get("leased"));
    ASSERT_TRUE(got.ok());
    EXPECT_EQ(got->kvs_size(), 0) << "member " << id;
  }
  auto gone = c.Leader()->LeaseTimeToLive(ttl);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->ttl(), -1);
}

TEST(ServerMember, ExpiredLeaseIsRevokedThroughTheLog) {
  MemberCluster c;
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  etcdserverpb::LeaseGrantRequest g;
  g.set_ttl(1);
  auto grant = leader->LeaseGrant(g);
  ASSERT_TRUE(grant.ok());
  ASSERT_TRUE(c.Put("short", "v", grant->id()).ok());
  Deadline end = In(6000);
  bool gone = false;
  while (Clock::now() < end && !gone) {
    auto got = c.members_[1]->Range(Get("short", /*serializable=*/true));
    gone = got.ok() && got->kvs_size() == 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone);
}

TEST(ServerMember, WatchSeesPutsInOrder) {
  MemberCluster c;
  Member* follower = c.Follower();
  ASSERT_NE(follower, nullptr);
  auto stream = follower->watch_hub()->OpenStream([] {});
  watch::WatchRequest w;
  w.key = "w";
  w.range_end = "x";
  ASSERT_TRUE(stream->Watch(w).ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.Put("w" + std::to_string(i), "v").ok());
  std::vector<mvcc::Event> events;
  Deadline end = In(3000);
  while (Clock::now() < end && events.size() < 3) {
    for (auto& r : stream->Poll(10)) {
      for (auto& e : r.events) events.push_back(e);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(events.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(events[i].kv.key, "w" + std::to_string(i));
  EXPECT_LT(events[0].kv.mod_revision, events[2].kv.mod_revision);
}

TEST(ServerMember, RestartedMemberKeepsItsDataAndAppliesOnce) {
  MemberCluster c;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.Put("r" + std::to_string(i), "v").ok());
  NodeId victim = c.Leader()->id() == 3 ? 2 : 3;
  c.Kill(victim);
  int64_t last_revision = 0;
  for (int i = 0; i < 10; ++i) {
    auto p = c.Put("s" + std::to_string(i), "v");
    ASSERT_TRUE(p.ok());
    last_revision = p->header().revision();
  }
  c.Start(victim);
  auto got = c.members_[victim]->Range(Get("s9"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->kvs_size(), 1);
  // Exactly once: 20 puts on a fresh store, revisions 2..21, on the restarted member too.
  EXPECT_EQ(got->header().revision(), last_revision);
  EXPECT_EQ(last_revision, 21);
  EXPECT_EQ(c.fatal_, "");
}

TEST(ServerMember, MemberBehindCompactionInstallsTheStoreSnapshot) {
  MemberCluster c(/*snapshot_count=*/8);
  ASSERT_TRUE(c.Put("first", "1").ok());
  NodeId victim = c.Leader()->id() == 3 ? 2 : 3;
  c.net_.Cut(victim, true);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(c.Put("k" + std::to_string(i), std::string(200, 'v')).ok());
  }
  c.net_.Cut(victim, false);
  auto last = c.Put("last", "1");
  ASSERT_TRUE(last.ok());
  auto got = c.members_[victim]->Range(Get("k39"));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->kvs_size(), 1);
  EXPECT_EQ(got->header().revision(), last->header().revision());
  // The installed store restarts.
  c.Kill(victim);
  c.Start(victim);
  auto again = c.members_[victim]->Range(Get("last"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->kvs_size(), 1);
  EXPECT_EQ(c.fatal_, "");
}

TEST(ServerMember, MemberListAndStatus) {
  MemberCluster c;
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  auto list = c.members_[1]->MemberList();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->members_size(), 3);
  EXPECT_EQ(list->members(0).name(), "m1");
  EXPECT_EQ(list->members(0).peerurls(0), "http://127.0.0.1:33101");
  // A follower learns the leader from its first append or heartbeat.
  Result<etcdserverpb::StatusResponse> st = c.members_[2]->MaintenanceStatus();
  for (Deadline end = In(2000); Clock::now() < end && st.ok() && st->leader() == 0;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    st = c.members_[2]->MaintenanceStatus();
  }
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->leader(), leader->id());
  EXPECT_GT(st->raftterm(), 0u);
}

// The asynchronous request path: every callback runs exactly once, also at a timeout or a stop.
struct AsyncCount {
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  int ok = 0;
  std::vector<int64_t> revisions;
  std::vector<std::string> errors;

  Member::Done<etcdserverpb::PutResponse> Callback() {
    return [this](Result<etcdserverpb::PutResponse> r) {
      std::lock_guard<std::mutex> lock(mu);
      ++answered;
      if (r.ok()) {
        ++ok;
        revisions.push_back(r->header().revision());
      } else {
        errors.push_back(r.status().ToString());
      }
      cv.notify_all();
    };
  }
  bool WaitFor(int n, int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return answered >= n; });
  }
};

etcdserverpb::PutRequest PutOf(const std::string& key) {
  etcdserverpb::PutRequest r;
  r.set_key(key);
  r.set_value("v");
  return r;
}

TEST(ServerMember, ManyAsyncPutsFromOneThreadAreEachAnsweredOnce) {
  MemberCluster c;
  ASSERT_TRUE(c.Put("warm", "up").ok());
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  constexpr int kPuts = 1000;
  AsyncCount count;
  // One thread starts them all: none of the calls waits for its apply.
  const auto start = Clock::now();
  for (int i = 0; i < kPuts; ++i)
    leader->PutAsync(PutOf("k" + std::to_string(i)), count.Callback());
  const auto started_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  EXPECT_LT(started_ms, 2000);  // Waiting for each apply in turn would take far longer.
  ASSERT_TRUE(count.WaitFor(kPuts, 20000)) << count.answered << " answered";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::lock_guard<std::mutex> lock(count.mu);
  EXPECT_EQ(count.answered, kPuts);  // Not more: each callback once.
  // A burst may cost the leader its role (this harness ticks every 10 ms), and what it had not
  // committed then fails; everything acknowledged must be there, once.
  EXPECT_GT(count.ok, 0);
  for (const std::string& e : count.errors) {
    EXPECT_TRUE(e.find("timed out") != std::string::npos || e.find("leader") != std::string::npos)
        << e;
  }
  std::sort(count.revisions.begin(), count.revisions.end());
  EXPECT_EQ(std::adjacent_find(count.revisions.begin(), count.revisions.end()),
            count.revisions.end());  // One revision per put.
  auto all = leader->Range([] {
    etcdserverpb::RangeRequest r;
    r.set_key("k");
    r.set_range_end("l");
    r.set_count_only(true);
    return r;
  }());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->count(), count.ok);
}

TEST(ServerMember, AsyncPutWithoutQuorumTimesOutAndPendingOnesAreAnsweredAtStop) {
  MemberCluster c;
  ASSERT_TRUE(c.Put("warm", "up").ok());
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  // Cut the leader off: nothing it proposes can commit.
  for (auto& [id, m] : c.members_) {
    if (m.get() != leader) c.net_.Detach(id);
  }
  AsyncCount timed;
  const auto start = Clock::now();
  leader->PutAsync(PutOf("lost"), timed.Callback());
  ASSERT_TRUE(timed.WaitFor(1, 6000));
  const auto waited_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  EXPECT_EQ(timed.ok, 0);
  EXPECT_GE(waited_ms, 2900);  // request_timeout_ms is 3000; housekeeping runs every 100 ms.
  EXPECT_LE(waited_ms, 4500);

  AsyncCount pending;
  constexpr int kPending = 50;
  for (int i = 0; i < kPending; ++i)
    leader->PutAsync(PutOf("p" + std::to_string(i)), pending.Callback());
  for (auto& [id, m] : c.members_) {
    if (m.get() == leader) {
      c.net_.Detach(id);
      m.reset();  // Stop: every request still waiting is answered before the member goes.
      break;
    }
  }
  std::lock_guard<std::mutex> lock(pending.mu);
  EXPECT_EQ(pending.answered, kPending);
  EXPECT_EQ(pending.ok, 0);
}

// etcd's space quota: over --quota-backend-bytes a write raises NOSPACE through the log and is
// refused ("database space exceeded") on every member until the alarm is disarmed; reads and
// deletes still work.
TEST(ServerMember, OverTheQuotaWritesRaiseNospaceUntilDisarmed) {
  MemberCluster c(100000, /*quota_backend_bytes=*/1);  // Any store is over one byte.
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // Housekeeping samples the size.
  Member* follower = c.Follower();
  ASSERT_NE(follower, nullptr);
  // (This harness publishes no client URLs, so only the leader can raise it: a follower forwards.)
  auto refused = leader->Put(PutOf("k"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(refused.status().message(), "etcdserver: mvcc: database space exceeded");
  // The alarm reaches every member through the log.
  etcdserverpb::AlarmRequest get;
  get.set_action(etcdserverpb::AlarmRequest::GET);
  for (auto& [id, m] : c.members_) {
    Result<etcdserverpb::AlarmResponse> alarms = m->Alarm(get);
    for (Deadline end = In(3000);
         Clock::now() < end && alarms.ok() && alarms->alarms_size() == 0;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      alarms = m->Alarm(get);
    }
    ASSERT_TRUE(alarms.ok());
    ASSERT_EQ(alarms->alarms_size(), 1) << "member " << id;
    EXPECT_EQ(alarms->alarms(0).memberid(), leader->id());
    EXPECT_EQ(alarms->alarms(0).alarm(), etcdserverpb::NOSPACE);
  }
  // With the alarm up, a put is refused wherever it lands; reads and deletes are served.
  auto on_follower = follower->Put(PutOf("k2"));
  ASSERT_FALSE(on_follower.ok());
  EXPECT_EQ(on_follower.status().message(), "etcdserver: mvcc: database space exceeded");
  EXPECT_TRUE(leader->Range(Get("k")).ok());
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("k");
  EXPECT_TRUE(leader->DeleteRange(del).ok());
  etcdserverpb::LeaseGrantRequest grant;
  grant.set_ttl(60);
  EXPECT_EQ(leader->LeaseGrant(grant).status().message(),
            "etcdserver: mvcc: database space exceeded");
  // Disarm (what `etcdctl alarm disarm` sends): the alarm is gone on every member.
  etcdserverpb::AlarmRequest disarm;
  disarm.set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
  disarm.set_memberid(leader->id());
  disarm.set_alarm(etcdserverpb::NOSPACE);
  auto cleared = leader->Alarm(disarm);
  ASSERT_TRUE(cleared.ok()) << cleared.status().ToString();
  ASSERT_EQ(cleared->alarms_size(), 1);
  for (auto& [id, m] : c.members_) {
    Result<etcdserverpb::AlarmResponse> alarms = m->Alarm(get);
    for (Deadline end = In(3000); Clock::now() < end && alarms.ok() && alarms->alarms_size() > 0;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      alarms = m->Alarm(get);
    }
    ASSERT_TRUE(alarms.ok());
    EXPECT_EQ(alarms->alarms_size(), 0) << "member " << id;
  }
  // Still over the quota: the next write raises it again.
  EXPECT_EQ(leader->Put(PutOf("k3")).status().message(),
            "etcdserver: mvcc: database space exceeded");
  EXPECT_EQ(c.fatal_, "");
}

TEST(ServerMember, MoveLeaderHandsLeadershipToTheTarget) {
  MemberCluster c;
  ASSERT_TRUE(c.Put("warm", "up").ok());
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  Member* target = c.Follower();
  ASSERT_NE(target, nullptr);
  ASSERT_TRUE(leader->MoveLeader(target->id()).ok());
  Deadline end = In(5000);
  while (Clock::now() < end && target->node_status().soft.role != consensus::Role::kLeader) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(target->node_status().soft.role, consensus::Role::kLeader);
  ASSERT_TRUE(c.Put("after", "move").ok());
}

}  // namespace
}  // namespace ballot::server
