// Crash tests of the whole durable member (docs/server.md, "Crash tests of the whole member").
//
// Each member runs on a simulated machine: its WAL and snapshot files live in a
// wal::FaultInjectionEnv (in memory), its RocksDB store on the real disk through CrashFs
// (crash_fs.h). One power switch cuts both at an exact durable step (the nth WAL write, WAL
// fdatasync, snapshot file write, RocksDB append, ...): from then on both file systems refuse
// (WAL) or drop (RocksDB) every change. Clients write through the member's asynchronous API and
// record which writes were acknowledged, with their revision. The member is then destroyed (its
// shutdown writes nothing: the power is off), both file systems lose what was not synced (the
// FaultInjectionEnv also tears the last unsynced write on odd seeds), the member reopens on the
// same files, and the test checks:
//   - every acknowledged write is there, at the revision it was acknowledged with;
//   - nothing was applied twice: every revision 2..current belongs to exactly one write, every key
//     has version 1, and the store equals (HashKV, revision) a member that never crashed fed the
//     same writes in the same order (or, with three members, the other members);
//   - the member keeps working (a new write gets the next revision).
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "crash_fs.h"
#include "server/errors.h"
#include "server/member.h"
#include "server_test_util.h"
#include "wal/fault_injection_env.h"

namespace ballot::server {
namespace {

using consensus::NodeId;
using testfs::CrashFs;
using testing::In;
using testing::LocalNetwork;
using testing::TempDir;
using wal::FaultInjectionEnv;

// The durable steps at which the power can be cut.
enum class Step {
  kWalWrite,     // After a write to a WAL segment landed (before its fdatasync).
  kWalSync,      // After a WAL fdatasync returned (before the entries are applied).
  kWalRemove,    // After a WAL segment was removed (log compaction behind a snapshot).
  kSnapWrite,    // After a write to a snapshot file (<index>.snap.part or .tmp) landed.
  kSnapRename,   // After a snapshot file got its final name (before the WAL's marker).
  kSnapRemove,   // After an older snapshot file was removed.
  kStoreAppend,  // Before an append to RocksDB's WAL (applying a batch; never synced by apply).
  kStoreWrite,   // Before any append to a RocksDB file (also a snapshot install's new database).
  kStoreSync,    // Before a RocksDB sync (MakeDurable before a snapshot, flushes).
  kStoreRename,  // Before a rename in the store (RocksDB's CURRENT, the install's CURRENT_DB).
};

const char* StepName(Step s) {
  switch (s) {
    case Step::kWalWrite:
      return "WAL write";
    case Step::kWalSync:
      return "WAL fdatasync";
    case Step::kWalRemove:
      return "WAL segment removal";
    case Step::kSnapWrite:
      return "snapshot file write";
    case Step::kSnapRename:
      return "snapshot file rename";
    case Step::kSnapRemove:
      return "snapshot file removal";
    case Step::kStoreAppend:
      return "RocksDB WAL append";
    case Step::kStoreWrite:
      return "RocksDB file append";
    case Step::kStoreSync:
      return "RocksDB sync";
    case Step::kStoreRename:
      return "RocksDB rename";
  }
  return "?";
}

// One member's machine: two file systems on one power supply.
class Machine {
 public:
  Machine(const std::string& dir, uint64_t seed)
      : dir_(dir),
        fie_(seed),
        wal_env_(this),
        fs_(std::make_shared<CrashFs>()),
        store_env_(rocksdb::NewCompositeEnv(fs_)) {
    fs_->SetHook([this](CrashFs::Op op, const std::string& path) {
      switch (op) {
        case CrashFs::Op::kAppend:
          if (path.ends_with(".log")) Observe(Step::kStoreAppend);
          Observe(Step::kStoreWrite);
          break;
        case CrashFs::Op::kSync:
          Observe(Step::kStoreSync);
          break;
        case CrashFs::Op::kRename:
          Observe(Step::kStoreRename);
          break;
        case CrashFs::Op::kDelete:
          break;
      }
    });
  }

  std::string wal_dir() const { return dir_ + "/wal"; }
  std::string snap_dir() const { return dir_ + "/snap"; }
  std::string store_dir() const { return dir_ + "/db"; }
  wal::Env* wal_env() { return &wal_env_; }
  rocksdb::Env* store_env() { return store_env_.get(); }
  FaultInjectionEnv& fie() { return fie_; }

  // At the nth `step` from now (1: the next one), runs `action` (default: cuts the power).
  void Arm(Step step, int nth, std::function<void()> action = nullptr) {
    std::lock_guard lock(mu_);
    armed_ = true;
    step_ = step;
    left_ = nth;
    action_ = std::move(action);
  }
  bool fired() {
    std::lock_guard lock(mu_);
    return fired_;
  }
  bool off() const { return off_.load(); }

  // The power goes out: no change reaches either file system from now on.
  void Cut() {
    std::unique_lock lock(power_mu_);
    off_ = true;
    fs_->Crash();
  }
  // With every member of this machine destroyed: both file systems keep only what was synced
  // (the WAL side optionally tears the last unsynced write), and the power comes back.
  void Reboot(FaultInjectionEnv::CrashMode mode) {
    if (!off_) Cut();
    fie_.Crash(mode);
    lost_store_bytes_ = fs_->DropUnsynced();
    std::lock_guard lock(mu_);
    armed_ = false;
    fired_ = false;
    off_ = false;
  }
  uint64_t lost_store_bytes() const { return lost_store_bytes_; }

  void Observe(Step step) {
    std::function<void()> action;
    {
      std::lock_guard lock(mu_);
      if (!armed_ || step != step_ || --left_ > 0) return;
      armed_ = false;
      fired_ = true;
      action = std::move(action_);
    }
    if (action) {
      action();
    } else {
      Cut();
    }
  }

 private:
  // The WAL's and snapshot files' Env: FaultInjectionEnv behind the power switch. Every change
  // holds the switch shared, so none straddles a cut; the step it was is observed after it.
  class PowerFile final : public wal::File {
   public:
    PowerFile(std::unique_ptr<wal::File> file, Machine* m, bool wal)
        : File(file->path()), file_(std::move(file)), m_(m), wal_(wal) {}
    Result<std::string> ReadAt(uint64_t offset, size_t size_bytes) override {
      return file_->ReadAt(offset, size_bytes);
    }
    Status WriteAt(uint64_t offset, std::string_view data) override {
      RETURN_IF_ERROR(m_->Change("write", path(), [&] { return file_->WriteAt(offset, data); }));
      m_->Observe(wal_ ? Step::kWalWrite : Step::kSnapWrite);
      return Status::Ok();
    }
    Status Sync() override {
      RETURN_IF_ERROR(m_->Change("fdatasync", path(), [&] { return file_->Sync(); }));
      if (wal_) m_->Observe(Step::kWalSync);
      return Status::Ok();
    }
    Status Truncate(uint64_t size_bytes) override {
      return m_->Change("truncate", path(), [&] { return file_->Truncate(size_bytes); });
    }
    Status Preallocate(uint64_t size_bytes) override {
      return m_->Change("fallocate", path(), [&] { return file_->Preallocate(size_bytes); });
    }
    Result<uint64_t> Size() override { return file_->Size(); }

   private:
    std::unique_ptr<wal::File> file_;
    Machine* m_;
    bool wal_;
  };

  class PowerEnv final : public wal::Env {
   public:
    explicit PowerEnv(Machine* m) : m_(m) {}
    Result<std::unique_ptr<wal::File>> Open(const std::string& path, bool create) override {
      // A creation is durable at once in the FaultInjectionEnv: none may follow a cut.
      std::shared_lock lock(m_->power_mu_);
      if (create && m_->off()) return wal::IoError("create", path, EIO);
      ASSIGN_OR_RETURN(auto file, m_->fie_.Open(path, create));
      lock.unlock();
      const bool wal = path.starts_with(m_->wal_dir() + "/");
      return std::unique_ptr<wal::File>(std::make_unique<PowerFile>(std::move(file), m_, wal));
    }
    Status CreateDir(const std::string& path) override {
      return m_->Change("mkdir", path, [&] { return m_->fie_.CreateDir(path); });
    }
    Result<std::vector<std::string>> ListDir(const std::string& path) override {
      return m_->fie_.ListDir(path);
    }
    Status Rename(const std::string& from, const std::string& to) override {
      RETURN_IF_ERROR(m_->Change("rename", from, [&] { return m_->fie_.Rename(from, to); }));
      if (to.starts_with(m_->snap_dir() + "/")) m_->Observe(Step::kSnapRename);
      return Status::Ok();
    }
    Status Remove(const std::string& path) override {
      RETURN_IF_ERROR(m_->Change("remove", path, [&] { return m_->fie_.Remove(path); }));
      m_->Observe(path.starts_with(m_->wal_dir() + "/") ? Step::kWalRemove : Step::kSnapRemove);
      return Status::Ok();
    }
    Status SyncDir(const std::string& path) override {
      return m_->Change("fsync directory", path, [&] { return m_->fie_.SyncDir(path); });
    }
    Result<uint64_t> FileSize(const std::string& path) override { return m_->fie_.FileSize(path); }

   private:
    Machine* m_;
  };

  // Runs `change` unless the power is off (then EIO, as a dead disk would answer).
  Status Change(std::string_view op, const std::string& path, const std::function<Status()>& f) {
    std::shared_lock lock(power_mu_);
    if (off_) return wal::IoError(op, path, EIO);
    return f();
  }

  const std::string dir_;
  FaultInjectionEnv fie_;
  PowerEnv wal_env_;
  std::shared_ptr<CrashFs> fs_;
  std::unique_ptr<rocksdb::Env> store_env_;
  std::shared_mutex power_mu_;  // Shared by each WAL-side change, exclusive to cut the power.
  std::atomic<bool> off_{false};
  std::mutex mu_;
  bool armed_ = false;  // Guarded by mu_.
  bool fired_ = false;  // Guarded by mu_.
  Step step_ = Step::kWalWrite;
  int left_ = 0;
  std::function<void()> action_;
  uint64_t lost_store_bytes_ = 0;
};

// A single member sends nothing; a peer message would be dropped.
class NullPeers final : public PeerSender {
 public:
  void Send(std::vector<consensus::Message>) override {}
  void SendMember(consensus::NodeId, std::string) override {}
};
NullPeers null_peers;

// What on_fatal reported (it outlives the members that call it).
class Fatal {
 public:
  std::function<void(const Status&)> Callback() {
    return [this](const Status& s) {
      std::lock_guard lock(mu_);
      if (message_.empty()) message_ = s.ToString();
      cv_.notify_all();
    };
  }
  bool Wait(int timeout_ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return !message_.empty(); });
  }
  std::string message() {
    std::lock_guard lock(mu_);
    return message_;
  }
  void Clear() {
    std::lock_guard lock(mu_);
    message_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string message_;
};

struct Tuning {
  int tick_ms = 5;
  int election_ticks = 6;
  consensus::EngineKind engine = consensus::EngineKind::kRaft;
};

MemberOptions CrashMemberOptions(Machine& machine, NodeId id, const std::vector<MemberInfo>& all,
                                 uint64_t snapshot_count, uint64_t seed, Fatal* fatal,
                                 Tuning tuning = {}) {
  MemberOptions o;
  o.node.id = id;
  o.node.cluster_id = 7;
  o.node.name = "m" + std::to_string(id);
  o.node.wal_dir = machine.wal_dir();
  o.node.snap_dir = machine.snap_dir();
  o.node.env = machine.wal_env();
  for (const MemberInfo& m : all) o.node.initial_voters.insert(m.id);
  o.node.engine = tuning.engine;
  o.node.tick_ms = tuning.tick_ms;
  o.node.election_ticks = tuning.election_ticks;
  o.node.snapshot_count = snapshot_count;
  o.node.wal_segment_bytes = 4096;  // Many segments, so that compaction removes some.
  o.node.seed = seed;
  o.node.on_fatal = fatal->Callback();
  o.store_dir = machine.store_dir();
  o.store_env = machine.store_env();
  o.initial_members = all;
  o.request_timeout_ms = 2000;
  o.election_timeout_ms = 100;
  return o;
}

std::vector<MemberInfo> Infos(std::initializer_list<NodeId> ids) {
  std::vector<MemberInfo> all;
  for (NodeId id : ids) {
    MemberInfo m;
    m.id = id;
    m.name = "m" + std::to_string(id);
    m.peer_urls = {"http://127.0.0.1:" + std::to_string(31800 + id)};  // Never dialled.
    all.push_back(m);
  }
  return all;
}

bool WaitLeader(Member* m, int timeout_ms = 5000) {
  const Deadline end = In(timeout_ms);
  while (Clock::now() < end) {
    if (m->node_status().soft.role == consensus::Role::kLeader) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

// ---- The clients ----

struct Op {
  enum Kind { kPut, kTxn, kDelete, kLease } kind = kPut;
  std::string key;   // kPut, kTxn (its first key), kDelete (the key it deletes).
  std::string key2;  // kTxn: its second key.
  std::string value;
  int target = -1;  // kDelete: the put whose key it deletes.
  bool answered = false;
  bool acked = false;
  int64_t revision = 0;  // The acknowledged revision.
  int64_t lease = 0;     // kLease: the granted id.
  std::string problem;   // An acknowledgement that contradicts the request.
};

// Clients writing through the async API: unique keys (each put or txn key written once, each
// delete removes one acknowledged put's key), so that a write's effect is recognisable.
class Workload {
 public:
  explicit Workload(uint64_t seed) : rng_(seed), tag_(std::to_string(seed)) {}

  ~Workload() { JoinLeases(); }

  // Issues requests to `target()` (at most kWindowMax in flight, `pause_us` apart) until `stop()`
  // or `ops_max` requests were issued.
  void Run(const std::function<Member*()>& target, const std::function<bool()>& stop, int ops_max,
           int pause_us = 0) {
    for (int n = 0; n < ops_max && !stop(); ++n) {
      {
        std::unique_lock lock(mu_);
        while (in_flight_ >= kWindowMax) {
          cv_.wait_for(lock, std::chrono::milliseconds(10));
          if (in_flight_ >= kWindowMax && stop()) return;
        }
      }
      Member* m = target();
      if (m == nullptr) return;
      Issue(m);
      if (pause_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(pause_us));
    }
  }
  // The member has no asynchronous lease grant: each runs on a thread of its own, joined here
  // (after Member::Stop, which answers it, and before the member is destroyed).
  void JoinLeases() {
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      threads.swap(lease_threads_);
    }
    for (std::thread& t : threads) t.join();
  }
  // Waits until nothing is in flight (or the timeout).
  bool WaitIdle(int timeout_ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                        [&] { return in_flight_ == 0; });
  }
  std::vector<Op> ops() {
    std::lock_guard lock(mu_);
    return {ops_.begin(), ops_.end()};
  }

 private:
  static constexpr int kWindowMax = 8;

  void Issue(Member* m) {
    size_t i;
    Op op;
    {
      std::lock_guard lock(mu_);
      i = ops_.size();
      const int r = static_cast<int>(rng_() % 100);
      op.value = "v" + std::to_string(i) + "-" + tag_;
      if (r < 5) {
        op.kind = Op::kLease;
      } else if (r < 20 && !deletable_.empty()) {
        const size_t pick = rng_() % deletable_.size();
        op.kind = Op::kDelete;
        op.target = static_cast<int>(deletable_[pick]);
        op.key = ops_[deletable_[pick]].key;
        deletable_.erase(deletable_.begin() + static_cast<std::ptrdiff_t>(pick));
      } else if (r < 40) {
        op.kind = Op::kTxn;
        op.key = "t" + std::to_string(i) + "a";
        op.key2 = "t" + std::to_string(i) + "b";
      } else {
        op.kind = Op::kPut;
        op.key = "p" + std::to_string(i);
      }
      ops_.push_back(op);
      ++in_flight_;
    }
    switch (op.kind) {
      case Op::kPut: {
        etcdserverpb::PutRequest r;
        r.set_key(op.key);
        r.set_value(op.value);
        m->PutAsync(r, [this, i](Result<etcdserverpb::PutResponse> resp) {
          Answer(i, resp.ok(), resp.ok() ? resp->header().revision() : 0, "");
        });
        break;
      }
      case Op::kTxn: {
        etcdserverpb::TxnRequest t;
        auto* c = t.add_compare();
        c->set_key(op.key);
        c->set_target(etcdserverpb::Compare::VERSION);
        c->set_result(etcdserverpb::Compare::EQUAL);
        c->set_version(0);
        for (const std::string& k : {op.key, op.key2}) {
          auto* put = t.add_success()->mutable_request_put();
          put->set_key(k);
          put->set_value(op.value);
        }
        m->TxnAsync(t, [this, i](Result<etcdserverpb::TxnResponse> resp) {
          Answer(i, resp.ok(), resp.ok() ? resp->header().revision() : 0,
                 resp.ok() && !resp->succeeded() ? "txn compare failed" : "");
        });
        break;
      }
      case Op::kDelete: {
        etcdserverpb::DeleteRangeRequest d;
        d.set_key(op.key);
        m->DeleteRangeAsync(d, [this, i](Result<etcdserverpb::DeleteRangeResponse> resp) {
          Answer(i, resp.ok(), resp.ok() ? resp->header().revision() : 0,
                 resp.ok() && resp->deleted() != 1 ? "deleted " + std::to_string(resp->deleted())
                                                   : "");
        });
        break;
      }
      case Op::kLease: {
        std::lock_guard lock(mu_);
        lease_threads_.emplace_back([this, m, i] {
          etcdserverpb::LeaseGrantRequest g;
          g.set_ttl(3600);
          auto resp = m->LeaseGrant(g);
          std::lock_guard lock(mu_);
          ops_[i].answered = true;
          ops_[i].acked = resp.ok();
          if (resp.ok()) {
            ops_[i].lease = resp->id();
            ops_[i].revision = resp->header().revision();
          }
          --in_flight_;
          cv_.notify_all();
        });
        break;
      }
    }
  }

  void Answer(size_t i, bool ok, int64_t revision, std::string problem) {
    std::lock_guard lock(mu_);
    Op& op = ops_[i];
    op.answered = true;
    op.acked = ok;
    op.revision = revision;
    op.problem = std::move(problem);
    if (ok && op.kind == Op::kPut) deletable_.push_back(i);
    --in_flight_;
    cv_.notify_all();
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::mt19937_64 rng_;
  const std::string tag_;
  std::deque<Op> ops_;             // Guarded by mu_.
  std::vector<size_t> deletable_;  // Guarded by mu_: acknowledged puts no delete targets yet.
  int in_flight_ = 0;              // Guarded by mu_.
  std::vector<std::thread> lease_threads_;  // Guarded by mu_.
};

// ---- Checks ----

struct Kv {
  std::string value;
  int64_t create = 0;
  int64_t mod = 0;
  int64_t version = 0;
};

etcdserverpb::RangeRequest Get(const std::string& key, int64_t revision = 0) {
  etcdserverpb::RangeRequest r;
  r.set_key(key);
  r.set_revision(revision);
  r.set_serializable(true);
  return r;
}

std::optional<Kv> GetAt(Member* m, const std::string& key, int64_t revision) {
  auto r = m->Range(Get(key, revision));
  EXPECT_TRUE(r.ok()) << key << "@" << revision << ": " << r.status().ToString();
  if (!r.ok() || r->kvs_size() == 0) return std::nullopt;
  const auto& kv = r->kvs(0);
  return Kv{kv.value(), kv.create_revision(), kv.mod_revision(), kv.version()};
}

// Waits until `m` has applied everything committed before now (a linearizable read), then reads
// every key at the current revision.
std::map<std::string, Kv> ReadAll(Member* m, int64_t* revision) {
  etcdserverpb::RangeRequest all;
  all.set_key(std::string(1, '\0'));
  all.set_range_end(std::string(1, '\0'));
  Result<etcdserverpb::RangeResponse> r = Status::Unavailable("not tried");
  for (int attempt = 0; attempt < 100; ++attempt) {
    r = m->Range(all);
    if (r.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::string, Kv> out;
  if (!r.ok()) return out;
  *revision = r->header().revision();
  for (const auto& kv : r->kvs()) {
    out[kv.key()] = Kv{kv.value(), kv.create_revision(), kv.mod_revision(), kv.version()};
  }
  return out;
}

// Checks the acknowledged writes and exactly-once on `m`; returns the ops that were applied, in
// revision order (the log order), for a reference member to replay.
std::vector<Op> CheckRecovered(Member* m, const std::vector<Op>& ops, bool check_leases,
                               int64_t* current_out) {
  int64_t current = 0;
  const std::map<std::string, Kv> all = ReadAll(m, &current);
  *current_out = current;

  // 1. Every acknowledged write, at its revision.
  int acked = 0;
  for (const Op& op : ops) {
    EXPECT_EQ(op.problem, "") << op.key;
    EXPECT_TRUE(op.answered) << op.key << " never answered";
    if (!op.acked) continue;
    ++acked;
    switch (op.kind) {
      case Op::kPut:
      case Op::kTxn:
        for (const std::string& k : {op.key, op.key2}) {
          if (k.empty()) continue;
          auto kv = GetAt(m, k, op.revision);
          EXPECT_TRUE(kv.has_value())
              << "acknowledged write of " << k << " at revision " << op.revision << " lost";
          if (!kv) continue;
          EXPECT_EQ(kv->value, op.value) << k;
          EXPECT_EQ(kv->mod, op.revision) << k;
          EXPECT_EQ(kv->create, op.revision) << k;
          EXPECT_EQ(kv->version, 1) << k << " written twice";
        }
        break;
      case Op::kDelete:
        EXPECT_FALSE(GetAt(m, op.key, op.revision).has_value())
            << "acknowledged delete of " << op.key << " at " << op.revision << " lost";
        EXPECT_TRUE(GetAt(m, op.key, op.revision - 1).has_value()) << op.key;
        break;
      case Op::kLease:
        if (check_leases) {
          etcdserverpb::LeaseTimeToLiveRequest t;
          t.set_id(op.lease);
          auto r = m->LeaseTimeToLive(t);
          EXPECT_TRUE(r.ok()) << r.status().ToString();
          if (!r.ok()) break;
          EXPECT_GT(r->ttl(), 0) << "acknowledged lease " << op.lease << " lost";
          EXPECT_EQ(r->grantedttl(), 3600);
        }
        break;
    }
  }

  // 2. Which writes were applied, and at which revision: each revision exactly once.
  std::map<int, int> deleted_by;  // put -> its delete
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind == Op::kDelete) deleted_by[ops[i].target] = static_cast<int>(i);
  }
  std::map<int64_t, size_t> by_revision;
  auto claim = [&](int64_t revision, size_t i) {
    auto [it, fresh] = by_revision.emplace(revision, i);
    EXPECT_TRUE(fresh) << "revision " << revision
                       << " belongs to two writes: " << ops[it->second].key << " and "
                       << ops[i].key;
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    switch (op.kind) {
      case Op::kPut:
      case Op::kTxn: {
        auto it = all.find(op.key);
        if (it != all.end()) {
          EXPECT_EQ(it->second.value, op.value);
          EXPECT_EQ(it->second.version, 1) << op.key << " applied twice";
          EXPECT_EQ(it->second.create, it->second.mod) << op.key;
          if (op.kind == Op::kTxn) {
            auto it2 = all.find(op.key2);
            EXPECT_TRUE(it2 != all.end() && it2->second.mod == it->second.mod) << op.key2;
          }
          claim(it->second.mod, i);
        } else if (op.acked) {
          // Gone: only its delete may have removed it.
          EXPECT_TRUE(op.kind == Op::kPut && deleted_by.count(static_cast<int>(i)))
              << "acknowledged " << op.key << " vanished";
          claim(op.revision, i);
        } else {
          EXPECT_EQ(all.count(op.key2), 0u) << op.key2;
        }
        break;
      }
      case Op::kDelete: {
        if (all.count(op.key)) break;  // Not applied.
        int64_t revision = op.revision;
        if (!op.acked) {  // Applied but unanswered: the first revision without the key.
          int64_t lo = ops[op.target].revision + 1, hi = current;
          while (lo < hi) {
            const int64_t mid = lo + (hi - lo) / 2;
            if (GetAt(m, op.key, mid).has_value()) {
              lo = mid + 1;
            } else {
              hi = mid;
            }
          }
          revision = lo;
        }
        claim(revision, i);
        break;
      }
      case Op::kLease:
        break;
    }
  }
  EXPECT_EQ(static_cast<int64_t>(by_revision.size()), current - 1)
      << "the store is at revision " << current << " but " << by_revision.size()
      << " writes were applied (a fresh store is at 1)";
  std::vector<Op> applied;
  int64_t expect = 2;
  for (const auto& [revision, i] : by_revision) {
    EXPECT_EQ(revision, expect) << "revision " << expect << " belongs to no write";
    expect = revision + 1;
    applied.push_back(ops[i]);
  }
  std::printf("  recovered at revision %lld: %d writes acknowledged, %zu applied\n",
              static_cast<long long>(current), acked, applied.size());
  return applied;
}

uint32_t HashAt(Member* m, int64_t revision) {
  etcdserverpb::HashKVRequest h;
  h.set_revision(revision);
  auto r = m->HashKV(h);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r->hash() : 0;
}

// Replays `applied` on a member that never crashed; its hash and revision must equal `m`'s.
void CheckAgainstReference(Member* m, const std::vector<Op>& applied, int64_t current) {
  TempDir dir;
  Machine machine(dir.path() + "/ref", 99);
  Fatal fatal;
  // Its store in memory: it never crashes, and real fsyncs only slow the suite down.
  std::unique_ptr<rocksdb::Env> mem(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  MemberOptions o = CrashMemberOptions(machine, 1, Infos({1}), 100000, 5, &fatal);
  o.store_env = mem.get();
  auto ref = Member::Open(std::move(o), &null_peers);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  ASSERT_TRUE(WaitLeader(ref->get()));
  int64_t revision = 1;
  for (const Op& op : applied) {
    ++revision;
    switch (op.kind) {
      case Op::kPut: {
        etcdserverpb::PutRequest r;
        r.set_key(op.key);
        r.set_value(op.value);
        auto resp = (*ref)->Put(r);
        ASSERT_TRUE(resp.ok()) << resp.status().ToString();
        ASSERT_EQ(resp->header().revision(), revision);
        break;
      }
      case Op::kTxn: {
        etcdserverpb::TxnRequest t;
        for (const std::string& k : {op.key, op.key2}) {
          auto* put = t.add_success()->mutable_request_put();
          put->set_key(k);
          put->set_value(op.value);
        }
        auto resp = (*ref)->Txn(t);
        ASSERT_TRUE(resp.ok()) << resp.status().ToString();
        ASSERT_EQ(resp->header().revision(), revision);
        break;
      }
      case Op::kDelete: {
        etcdserverpb::DeleteRangeRequest d;
        d.set_key(op.key);
        auto resp = (*ref)->DeleteRange(d);
        ASSERT_TRUE(resp.ok()) << resp.status().ToString();
        ASSERT_EQ(resp->header().revision(), revision);
        break;
      }
      case Op::kLease:
        break;
    }
  }
  EXPECT_EQ(revision, current);
  EXPECT_EQ(HashAt(ref->get(), current), HashAt(m, current))
      << "the recovered store differs from one that never crashed";
  EXPECT_EQ(fatal.message(), "");
}

// The member keeps working: a new write gets the next revision.
void CheckWritable(Member* m, int64_t current) {
  etcdserverpb::PutRequest r;
  r.set_key("after-crash");
  r.set_value("x");
  auto resp = m->Put(r);
  ASSERT_TRUE(resp.ok()) << resp.status().ToString();
  EXPECT_EQ(resp->header().revision(), current + 1);
}

// Runs `f` when destroyed: stops the members before the clients their callbacks use go.
class StopFirst {
 public:
  explicit StopFirst(std::function<void()> f) : f_(std::move(f)) {}
  ~StopFirst() { f_(); }

 private:
  std::function<void()> f_;
};

// After the power cut: until nothing is in flight, or the member stopped on the dead disk (what
// was durable before the cut may still be acknowledged meanwhile). At most 300 ms.
void WaitSettled(Workload& w, Fatal& fatal) {
  const Deadline end = In(300);
  while (Clock::now() < end && !w.WaitIdle(0)) {
    if (!fatal.message().empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

FaultInjectionEnv::CrashMode ModeFor(uint64_t seed) {
  return seed % 2 == 1 ? FaultInjectionEnv::CrashMode::kTearLastWrite
                       : FaultInjectionEnv::CrashMode::kDropUnsynced;
}

// ---- One member ----

struct CrashPoint {
  Step step;
  int nth_min;
  int nth_max;
  uint64_t snapshot_count;
  consensus::EngineKind engine = consensus::EngineKind::kRaft;
};

constexpr int kOpsMax = 2000;
// Two seeds: one crash with the last unsynced WAL write torn, one with every unsynced write lost.
constexpr uint64_t kSeeds = 2;

void CrashOneMember(const CrashPoint& p, uint64_t seed) {
  std::mt19937_64 rng(seed * 1000 + static_cast<uint64_t>(p.step));
  const int nth = p.nth_min + static_cast<int>(rng() % (p.nth_max - p.nth_min + 1));
  const auto mode = ModeFor(seed);
  SCOPED_TRACE(fmt::format(
      "seed {}: power cut at {} #{}, {}", seed, StepName(p.step), nth,
      mode == FaultInjectionEnv::CrashMode::kTearLastWrite ? "torn write" : "unsynced lost"));
  TempDir dir;
  Machine machine(dir.path() + "/m1", seed);
  Fatal fatal;
  Workload w(seed);
  const std::vector<MemberInfo> all = Infos({1});
  auto open = [&] {
    return Member::Open(CrashMemberOptions(machine, 1, all, p.snapshot_count, seed, &fatal,
                                           Tuning{.engine = p.engine}),
                        &null_peers);
  };
  auto m = open();
  StopFirst stop_first([&] {
    if (m.ok() && *m) (*m)->Stop();
    w.JoinLeases();
  });
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_TRUE(WaitLeader(m->get()));

  machine.Arm(p.step, nth);
  Member* target = m->get();
  w.Run([&] { return target; }, [&] { return machine.off(); }, kOpsMax);
  ASSERT_TRUE(machine.off()) << "the crash point was not reached in " << kOpsMax << " writes";
  // Writes made durable before the cut may still be acknowledged meanwhile.
  WaitSettled(w, fatal);
  (*m)->Stop();  // Nothing it writes while stopping reaches a disk.
  w.JoinLeases();
  m->reset();
  ASSERT_TRUE(w.WaitIdle(0)) << "a request was never answered";
  machine.Reboot(mode);
  std::printf("  the store lost %llu unsynced bytes\n",
              static_cast<unsigned long long>(machine.lost_store_bytes()));
  fatal.Clear();

  m = open();
  ASSERT_TRUE(m.ok()) << "reopen after the crash: " << m.status().ToString();
  ASSERT_TRUE(WaitLeader(m->get()));
  int64_t current = 0;
  const std::vector<Op> applied = CheckRecovered(m->get(), w.ops(), true, &current);
  if (::testing::Test::HasFatalFailure()) return;
  CheckAgainstReference(m->get(), applied, current);
  CheckWritable(m->get(), current);
  EXPECT_EQ(fatal.message(), "");
}

void CrashOneMemberSeeds(const CrashPoint& p) {
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    CrashOneMember(p, seed);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

TEST(ServerCrash, DuringWalAppendBeforeItsSync) {
  CrashOneMemberSeeds({Step::kWalWrite, 5, 60, 100000});
}

TEST(ServerCrash, AfterWalSyncBeforeApply) { CrashOneMemberSeeds({Step::kWalSync, 5, 60, 100000}); }

TEST(ServerCrash, InTheMiddleOfApplyingUnsyncedStoreWrite) {
  CrashOneMemberSeeds({Step::kStoreAppend, 5, 60, 100000});
}

TEST(ServerCrash, WhileWritingASnapshotFile) { CrashOneMemberSeeds({Step::kSnapWrite, 1, 6, 12}); }

TEST(ServerCrash, AfterTheSnapshotFileBeforeTheWalMarker) {
  CrashOneMemberSeeds({Step::kSnapRename, 1, 3, 12});
}

TEST(ServerCrash, WhileMakingTheStoreDurableForASnapshot) {
  CrashOneMemberSeeds({Step::kStoreSync, 1, 4, 12});
}

TEST(ServerCrash, AfterLogCompactionRemovedSegments) {
  CrashOneMemberSeeds({Step::kWalRemove, 1, 3, 12});
}

TEST(ServerCrash, AfterOldSnapshotFilesWereRemoved) {
  CrashOneMemberSeeds({Step::kSnapRemove, 1, 2, 12});
}

// fdatasync failing with EIO stops the member; nothing it acknowledged is lost after a reboot.
TEST(ServerCrash, FailedWalSyncStopsTheMemberAndLosesNoAcknowledgedWrite) {
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir dir;
    Machine machine(dir.path() + "/m1", seed);
    Fatal fatal;
    Workload w(seed);
    const std::vector<MemberInfo> all = Infos({1});
    auto open = [&] {
      return Member::Open(CrashMemberOptions(machine, 1, all, 20, seed, &fatal), &null_peers);
    };
    auto m = open();
    StopFirst stop_first([&] {
      if (m.ok() && *m) (*m)->Stop();
      w.JoinLeases();
    });
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE(WaitLeader(m->get()));
    machine.Arm(Step::kWalWrite, 10 + static_cast<int>(seed) * 7,
                [&] { machine.fie().SetSyncError(true); });
    Member* target = m->get();
    std::atomic<bool> failed{false};
    w.Run([&] { return target; },
          [&] {
            if (!fatal.message().empty()) failed = true;
            return failed.load();
          },
          kOpsMax);
    ASSERT_TRUE(machine.fired()) << "the sync error was never switched on";
    ASSERT_TRUE(fatal.Wait(3000)) << "a failed fdatasync did not stop the member";
    // Every request in flight gets an answer without waiting for Stop.
    EXPECT_TRUE(w.WaitIdle(1000)) << "requests still unanswered after the member stopped";
    EXPECT_NE(fatal.message().find("fdatasync"), std::string::npos) << fatal.message();
    EXPECT_FALSE((*m)->node_status().fatal.ok());
    // A stopped member refuses writes.
    etcdserverpb::PutRequest r;
    r.set_key("refused");
    r.set_value("x");
    EXPECT_FALSE((*m)->Put(r).ok());
    WaitSettled(w, fatal);
    (*m)->Stop();
    w.JoinLeases();
    m->reset();
    ASSERT_TRUE(w.WaitIdle(0));
    // The disk comes back healthy after the reboot; the unsynced tail is gone.
    machine.fie().SetSyncError(false);
    machine.Reboot(FaultInjectionEnv::CrashMode::kDropUnsynced);
    fatal.Clear();
    m = open();
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ASSERT_TRUE(WaitLeader(m->get()));
    int64_t current = 0;
    const std::vector<Op> applied = CheckRecovered(m->get(), w.ops(), true, &current);
    if (HasFatalFailure()) return;
    CheckAgainstReference(m->get(), applied, current);
    CheckWritable(m->get(), current);
  }
}

// ---- Three members: a follower crashes while installing the leader's snapshot ----

class Cluster3 {
 public:
  Cluster3(const std::string& dir, uint64_t seed,
           consensus::EngineKind engine = consensus::EngineKind::kRaft)
      : seed_(seed), engine_(engine), all_(Infos({1, 2, 3})) {
    for (NodeId id : {1, 2, 3}) {
      machines_[id] = std::make_unique<Machine>(dir + "/m" + std::to_string(id), seed * 10 + id);
    }
    for (NodeId id : {1, 2, 3}) Start(id);
  }
  ~Cluster3() {
    for (auto& [id, m] : members_) {
      net_.Detach(id);
      m.reset();
    }
  }
  void Start(NodeId id) {
    // Longer ticks than one member's: three members on a loaded machine must not flap.
    MemberOptions o = CrashMemberOptions(*machines_[id], id, all_, /*snapshot_count=*/8,
                                         seed_ * 10 + id + 100 * restarts_++, &fatal_[id],
                                         Tuning{10, 10, engine_});
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
    const Deadline end = In(timeout_ms);
    while (Clock::now() < end) {
      for (auto& [id, m] : members_) {
        if (m && m->node_status().soft.role == consensus::Role::kLeader) return m.get();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return nullptr;
  }
  // Waits until `m` serves revision `revision` locally.
  bool WaitRevision(Member* m, int64_t revision, int timeout_ms = 5000) {
    const Deadline end = In(timeout_ms);
    while (Clock::now() < end) {
      auto r = m->Range(Get("\x01"));
      if (r.ok() && r->header().revision() >= revision) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }

  const uint64_t seed_;
  const consensus::EngineKind engine_;
  const std::vector<MemberInfo> all_;
  LocalNetwork net_;
  std::map<NodeId, std::unique_ptr<Machine>> machines_;
  std::map<NodeId, Fatal> fatal_;
  std::map<NodeId, std::unique_ptr<Member>> members_;
  int restarts_ = 0;
};

// After member `rebooted` of `c` came back from its crash: the leader holds every acknowledged
// write of `w`, the rebooted member catches up to the same revision and holds them too, every
// member's store equals the leader's (HashKV), a new write reaches the rebooted member, and no
// member stopped on an error.
void ExpectRecoveredCluster(Cluster3& c, Workload& w, NodeId rebooted) {
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  int64_t current = 0;
  CheckRecovered(leader, w.ops(), /*check_leases=*/true, &current);
  Member* back = c.members_[rebooted].get();
  ASSERT_TRUE(c.WaitRevision(back, current)) << "the rebooted member did not catch up";
  if (back != leader) {
    int64_t back_current = 0;
    CheckRecovered(back, w.ops(), /*check_leases=*/false, &back_current);
    EXPECT_EQ(back_current, current);
  }
  const uint32_t hash = HashAt(leader, current);
  for (auto& [id, m] : c.members_) {
    ASSERT_TRUE(c.WaitRevision(m.get(), current));
    EXPECT_EQ(HashAt(m.get(), current), hash) << "member " << id << " differs from the leader";
  }
  CheckWritable(leader, current);
  EXPECT_TRUE(c.WaitRevision(back, current + 1));
  for (auto& [id, fatal] : c.fatal_) EXPECT_EQ(fatal.message(), "") << "member " << id;
}

void CrashFollowerInstallingASnapshot(Step step, int nth_min, int nth_max, uint64_t seed) {
  std::mt19937_64 rng(seed * 1000 + static_cast<uint64_t>(step));
  const int nth = nth_min + static_cast<int>(rng() % (nth_max - nth_min + 1));
  const auto mode = ModeFor(seed);
  SCOPED_TRACE(fmt::format(
      "seed {}: follower's power cut at {} #{}, {}", seed, StepName(step), nth,
      mode == FaultInjectionEnv::CrashMode::kTearLastWrite ? "torn write" : "unsynced lost"));
  TempDir dir;
  Workload w(seed);
  Cluster3 c(dir.path(), seed);
  StopFirst stop_first([&] {
    for (auto& [id, m] : c.members_) {
      if (m) m->Stop();
    }
    w.JoinLeases();
  });
  if (::testing::Test::HasFatalFailure()) return;
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  const NodeId f = leader->id() == 3 ? 2 : 3;
  Machine& fm = *c.machines_[f];
  auto to_leader = [&] { return c.Leader(); };
  auto never = [] { return false; };
  w.Run(to_leader, never, 5);
  ASSERT_TRUE(w.WaitIdle(5000));
  // Cut off, the follower falls behind the leader's log compaction (a snapshot every 8 entries).
  c.net_.Cut(f, true);
  w.Run(to_leader, never, 40);
  ASSERT_TRUE(w.WaitIdle(5000));
  std::printf("  follower %llu cut off at applied %llu, leader at %llu\n",
              static_cast<unsigned long long>(f),
              static_cast<unsigned long long>(c.members_[f]->node_status().applied),
              static_cast<unsigned long long>(c.Leader()->node_status().applied));
  fm.Arm(step, nth);
  // Paced, so that the follower's install happens while writes go on. One install may not reach
  // the nth step (a loaded machine lets the follower catch up by entries after it): then the
  // follower is cut off again until it needs another snapshot, up to a few times.
  for (int round = 0; round < 4 && !fm.off(); ++round) {
    if (round > 0) {
      c.net_.Cut(f, true);
      w.Run(to_leader, never, 40);
      ASSERT_TRUE(w.WaitIdle(5000));
    }
    c.net_.Cut(f, false);
    const Deadline end = In(5000);
    w.Run(
        to_leader, [&] { return fm.off() || Clock::now() > end; }, 5000, /*pause_us=*/1000);
  }
  ASSERT_TRUE(fm.off()) << "the follower never reached the crash point";
  ASSERT_TRUE(w.WaitIdle(5000));
  w.JoinLeases();
  c.Kill(f);
  fm.Reboot(mode);
  c.fatal_[f].Clear();
  c.Start(f);
  if (::testing::Test::HasFatalFailure()) return;
  ExpectRecoveredCluster(c, w, f);
}

TEST(ServerCrash, FollowerWhileWritingTheReceivedSnapshotFile) {
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    CrashFollowerInstallingASnapshot(Step::kSnapWrite, 1, 2, seed);
    if (HasFatalFailure()) return;
  }
}

TEST(ServerCrash, FollowerAfterTheSnapshotMarkerWrite) {
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    CrashFollowerInstallingASnapshot(Step::kWalWrite, 1, 2, seed);
    if (HasFatalFailure()) return;
  }
}

TEST(ServerCrash, FollowerWhileInstallingTheStore) {
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    CrashFollowerInstallingASnapshot(Step::kStoreWrite, 1, 30, seed);
    if (HasFatalFailure()) return;
  }
}

TEST(ServerCrash, FollowerAtTheStoreSwitch) {
  for (uint64_t seed = 1; seed <= 2; ++seed) {
    CrashFollowerInstallingASnapshot(Step::kStoreRename, 1, 3, seed);
    if (HasFatalFailure()) return;
  }
}

// ---- Three members: the leader crashes ----

// Acknowledged means committed on a quorum: the writes the leader acknowledged survive on the
// other two whatever the leader lost, and the rebooted leader (now a follower) must come back to
// the same store, not apply its replayed or replaced entries twice.
void CrashLeaderOfThree(Step step, int nth_min, int nth_max, uint64_t seed,
                        consensus::EngineKind engine = consensus::EngineKind::kRaft) {
  std::mt19937_64 rng(seed * 1000 + static_cast<uint64_t>(step));
  const int nth = nth_min + static_cast<int>(rng() % (nth_max - nth_min + 1));
  const auto mode = ModeFor(seed);
  SCOPED_TRACE(fmt::format(
      "seed {}: leader's power cut at {} #{}, {}", seed, StepName(step), nth,
      mode == FaultInjectionEnv::CrashMode::kTearLastWrite ? "torn write" : "unsynced lost"));
  TempDir dir;
  Workload w(seed);
  Cluster3 c(dir.path(), seed, engine);
  StopFirst stop_first([&] {
    for (auto& [id, m] : c.members_) {
      if (m) m->Stop();
    }
    w.JoinLeases();
  });
  if (::testing::Test::HasFatalFailure()) return;
  Member* leader = c.Leader();
  ASSERT_NE(leader, nullptr);
  const NodeId l = leader->id();
  Machine& lm = *c.machines_[l];
  lm.Arm(step, nth);
  w.Run([&] { return leader; }, [&] { return lm.off(); }, kOpsMax);
  ASSERT_TRUE(lm.off()) << "the leader never reached the crash point";
  WaitSettled(w, c.fatal_[l]);
  leader->Stop();
  w.JoinLeases();
  ASSERT_TRUE(w.WaitIdle(0)) << "a request was never answered";
  c.Kill(l);
  lm.Reboot(mode);
  c.fatal_[l].Clear();
  c.Start(l);
  if (::testing::Test::HasFatalFailure()) return;
  ExpectRecoveredCluster(c, w, l);
}

TEST(ServerCrash, LeaderOfThreeDuringWalAppend) {
  CrashLeaderOfThree(Step::kWalWrite, 5, 40, 1);
  if (HasFatalFailure()) return;
  CrashLeaderOfThree(Step::kWalWrite, 5, 40, 2);
}

TEST(ServerCrash, LeaderOfThreeAfterWalSync) { CrashLeaderOfThree(Step::kWalSync, 5, 40, 3); }

TEST(ServerCrash, LeaderOfThreeWhileApplying) { CrashLeaderOfThree(Step::kStoreAppend, 5, 40, 4); }

// The same durability contract with the other engine behind the same Node.
TEST(ServerCrash, MultiPaxosOneMemberAtWalWriteWalSyncAndApply) {
  constexpr auto kPaxos = consensus::EngineKind::kMultiPaxos;
  CrashOneMember({Step::kWalWrite, 5, 60, 100000, kPaxos}, 1);
  if (HasFatalFailure()) return;
  CrashOneMember({Step::kWalSync, 5, 60, 100000, kPaxos}, 2);
  if (HasFatalFailure()) return;
  CrashOneMember({Step::kStoreAppend, 5, 60, 12, kPaxos}, 3);
}

TEST(ServerCrash, MultiPaxosLeaderOfThreeAfterWalSync) {
  CrashLeaderOfThree(Step::kWalSync, 5, 40, 5, consensus::EngineKind::kMultiPaxos);
}

}  // namespace
}  // namespace ballot::server
