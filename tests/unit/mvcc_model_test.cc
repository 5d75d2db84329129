// Model-based randomized test of the mvcc store: random Range/Put/DeleteRange/Txn/Compact
// sequences, grouped into random apply batches, with close/reopen and physical compaction steps,
// must give the same answers, events and errors as a plain in-memory model of etcd's semantics
// written here (a history per key, read by scanning it). Two stores fed the same log with
// different batch groupings and compaction progress must agree on HashKV.
#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>

#include "mvcc/store.h"

namespace ballot::mvcc {
namespace {

const std::string kNul(1, '\0');

// ---------------------------------------------------------------------------------------------
// The model.

struct Version {
  Revision main = 0;
  int64_t sub = 0;
  bool tombstone = false;
  KeyValue kv;  // For a put.
};

class Model {
 public:
  Model(size_t max_txn_ops, std::set<LeaseId> leases)
      : max_txn_ops_(max_txn_ops), leases_(std::move(leases)) {}

  Revision current() const { return current_; }

  Result<RangeResponse> Range(const RangeRequest& req) { return RangeAt(req, current_); }

  Result<WriteResult<PutResponse>> Put(const PutRequest& p) {
    RETURN_IF_ERROR(CheckPutRequest(p));
    if (p.lease != 0 && !leases_.count(p.lease)) return ErrLeaseNotFound();
    if ((p.ignore_value || p.ignore_lease) && !Live(p.key, current_)) return ErrKeyNotFound();
    Begin();
    PutResponse resp = DoPut(p);
    return WriteResult<PutResponse>{resp, End()};
  }

  Result<WriteResult<DeleteRangeResponse>> Delete(const DeleteRangeRequest& d) {
    RETURN_IF_ERROR(CheckDeleteRangeRequest(d));
    Begin();
    DeleteRangeResponse resp = DoDelete(d);
    return WriteResult<DeleteRangeResponse>{resp, End()};
  }

  Result<WriteResult<TxnResponse>> Txn(const TxnRequest& t) {
    // The request checks are the store's CheckTxnRequest (unit-tested on their own).
    RETURN_IF_ERROR(CheckTxnRequest(t, max_txn_ops_));
    RETURN_IF_ERROR(Precheck(t));
    Begin();
    TxnResponse resp = DoTxn(t, /*nested=*/false);
    resp.header.revision = changes_ > 0 ? current_ + 1 : current_;
    return WriteResult<TxnResponse>{resp, End()};
  }

  Result<CompactionResponse> Compact(Revision rev) {
    if (rev <= compact_) return ErrCompacted();
    if (rev > current_) return ErrFutureRev();
    compact_ = rev;
    CompactionResponse resp;
    resp.header.revision = current_;
    return resp;
  }

  Result<EventsResponse> Events(const EventsRequest& req) const {
    Revision from = std::max<Revision>(req.from_revision, 1);
    if (from < compact_) return ErrCompacted();
    Revision to = req.to_revision <= 0 || req.to_revision > current_ ? current_ : req.to_revision;
    std::vector<std::pair<std::pair<Revision, int64_t>, Event>> all;
    for (const auto& [key, versions] : history_) {
      if (!InRange(key, req.key, req.range_end)) continue;
      for (size_t i = 0; i < versions.size(); ++i) {
        const Version& v = versions[i];
        if (v.main < from || v.main > to) continue;
        Event e;
        e.type = v.tombstone ? EventType::kDelete : EventType::kPut;
        e.kv = v.tombstone ? KeyValue{key, "", 0, v.main, 0, 0} : v.kv;
        if (i > 0 && !versions[i - 1].tombstone) e.prev_kv = versions[i - 1].kv;
        all.push_back({{v.main, v.sub}, e});
      }
    }
    std::sort(all.begin(), all.end(),
              [](const auto& a, const auto& b) { return a.first < b.first; });
    EventsResponse resp;
    resp.current_revision = current_;
    resp.next_revision = to + 1;
    Revision last = 0;
    for (auto& [rev, e] : all) {
      if (rev.first != last && req.limit > 0 && resp.events.size() >= req.limit) {
        resp.next_revision = rev.first;
        break;
      }
      last = rev.first;
      resp.events.push_back(e);
    }
    return resp;
  }

 private:
  static bool InRange(const std::string& key, const std::string& begin, const std::string& end) {
    if (end.empty()) return key == begin;
    if (end == kNul) return key >= begin;
    return key >= begin && key < end;
  }

  std::optional<KeyValue> Live(const std::string& key, Revision rev) const {
    auto it = history_.find(key);
    if (it == history_.end()) return std::nullopt;
    for (auto v = it->second.rbegin(); v != it->second.rend(); ++v) {
      if (v->main > rev) continue;
      if (v->tombstone) return std::nullopt;
      return v->kv;
    }
    return std::nullopt;
  }

  std::vector<KeyValue> LiveRange(const std::string& begin, const std::string& end,
                                  Revision rev) const {
    std::vector<KeyValue> out;
    for (const auto& [key, versions] : history_) {
      if (!InRange(key, begin, end)) continue;
      if (auto kv = Live(key, rev)) out.push_back(*kv);
    }
    return out;
  }

  // etcd's Range, written from its description: fetch, filter, sort, truncate.
  Result<RangeResponse> RangeAt(const RangeRequest& req, Revision cur) const {
    RETURN_IF_ERROR(CheckRangeRequest(req));
    if (req.revision > cur) return ErrFutureRev();
    Revision rev = req.revision <= 0 ? cur : req.revision;
    if (rev < compact_) return ErrCompacted();
    std::vector<KeyValue> all = LiveRange(req.key, req.range_end, rev);
    RangeResponse resp;
    resp.header.revision = cur;
    resp.count = static_cast<int64_t>(all.size());
    if (req.count_only) return resp;
    using Order = RangeRequest::SortOrder;
    using Target = RangeRequest::SortTarget;
    bool fetch_all = req.sort_order != Order::kNone || req.min_mod_revision != 0 ||
                     req.max_mod_revision != 0 || req.min_create_revision != 0 ||
                     req.max_create_revision != 0;
    std::vector<KeyValue> kvs = all;
    if (!fetch_all && req.limit > 0 && static_cast<int64_t>(kvs.size()) > req.limit + 1) {
      kvs.resize(req.limit + 1);
    }
    std::vector<KeyValue> kept;
    for (const KeyValue& kv : kvs) {
      if (req.max_mod_revision != 0 && kv.mod_revision > req.max_mod_revision) continue;
      if (req.min_mod_revision != 0 && kv.mod_revision < req.min_mod_revision) continue;
      if (req.max_create_revision != 0 && kv.create_revision > req.max_create_revision) continue;
      if (req.min_create_revision != 0 && kv.create_revision < req.min_create_revision) continue;
      kept.push_back(kv);
    }
    Order order = req.sort_order;
    if (order == Order::kNone && req.sort_target != Target::kKey) order = Order::kAscend;
    if (order != Order::kNone) {
      auto field = [&](const KeyValue& kv) -> std::string {
        auto num = [](int64_t v) {  // order-preserving for the small values used here
          char buf[32];
          std::snprintf(buf, sizeof(buf), "%020lld", static_cast<long long>(v));
          return std::string(buf);
        };
        switch (req.sort_target) {
          case Target::kKey:
            return kv.key;
          case Target::kVersion:
            return num(kv.version);
          case Target::kCreate:
            return num(kv.create_revision);
          case Target::kMod:
            return num(kv.mod_revision);
          case Target::kValue:
            return kv.value;
        }
        return "";
      };
      std::stable_sort(kept.begin(), kept.end(), [&](const KeyValue& a, const KeyValue& b) {
        return order == Order::kAscend ? field(a) < field(b) : field(b) < field(a);
      });
    }
    if (req.limit > 0 && static_cast<int64_t>(kept.size()) > req.limit) {
      kept.resize(req.limit);
      resp.more = true;
    }
    if (req.keys_only) {
      for (KeyValue& kv : kept) kv.value.clear();
    }
    resp.kvs = kept;
    return resp;
  }

  void Begin() {
    changes_ = 0;
    events_.clear();
  }
  std::vector<Event> End() {
    if (changes_ > 0) ++current_;
    return std::move(events_);
  }
  Revision ReadRev() const { return changes_ > 0 ? current_ + 1 : current_; }

  void Write(const std::string& key, bool tombstone, KeyValue kv) {
    Version v{current_ + 1, changes_++, tombstone, kv};
    history_[key].push_back(v);
  }

  PutResponse DoPut(const PutRequest& p) {
    PutResponse resp;
    std::optional<KeyValue> prev = Live(p.key, ReadRev());
    KeyValue kv{p.key, p.value, 0, current_ + 1, 1, p.lease};
    if (p.ignore_value) kv.value = prev->value;
    if (p.ignore_lease) kv.lease = prev->lease;
    if (prev) {
      kv.create_revision = prev->create_revision;
      kv.version = prev->version + 1;
    } else {
      kv.create_revision = current_ + 1;
    }
    if (p.prev_kv) resp.prev_kv = prev;
    Write(p.key, false, kv);
    events_.push_back(Event{EventType::kPut, kv, prev});
    resp.header.revision = current_ + 1;
    return resp;
  }

  DeleteRangeResponse DoDelete(const DeleteRangeRequest& d) {
    DeleteRangeResponse resp;
    std::vector<KeyValue> live = LiveRange(d.key, d.range_end, ReadRev());
    if (d.prev_kv) resp.prev_kvs = live;
    for (const KeyValue& prev : live) {
      Write(prev.key, true, {});
      events_.push_back(
          Event{EventType::kDelete, KeyValue{prev.key, "", 0, current_ + 1, 0, 0}, prev});
    }
    resp.deleted = static_cast<int64_t>(live.size());
    resp.header.revision = changes_ > 0 ? current_ + 1 : current_;
    return resp;
  }

  bool Compares(const std::vector<Compare>& cs) const {
    for (const Compare& c : cs) {
      std::vector<KeyValue> kvs = LiveRange(c.key, c.range_end, current_);
      if (kvs.empty()) {
        if (c.target == Compare::CompareTarget::kValue) return false;
        kvs.push_back(KeyValue{});
      }
      for (const KeyValue& kv : kvs) {
        int r = 0;
        switch (c.target) {
          case Compare::CompareTarget::kValue:
            r = kv.value < c.value ? -1 : kv.value > c.value ? 1 : 0;
            break;
          case Compare::CompareTarget::kVersion:
            r = kv.version < c.version ? -1 : kv.version > c.version ? 1 : 0;
            break;
          case Compare::CompareTarget::kCreate:
            r = kv.create_revision < c.create_revision   ? -1
                : kv.create_revision > c.create_revision ? 1
                                                         : 0;
            break;
          case Compare::CompareTarget::kMod:
            r = kv.mod_revision < c.mod_revision ? -1 : kv.mod_revision > c.mod_revision ? 1 : 0;
            break;
          case Compare::CompareTarget::kLease:
            r = kv.lease < c.lease ? -1 : kv.lease > c.lease ? 1 : 0;
            break;
        }
        bool ok = false;
        switch (c.result) {
          case Compare::CompareResult::kEqual:
            ok = r == 0;
            break;
          case Compare::CompareResult::kNotEqual:
            ok = r != 0;
            break;
          case Compare::CompareResult::kGreater:
            ok = r > 0;
            break;
          case Compare::CompareResult::kLess:
            ok = r < 0;
            break;
        }
        if (!ok) return false;
      }
    }
    return true;
  }

  // The checks etcd runs on the chosen branches before the txn writes anything.
  Status Precheck(const TxnRequest& t) const {
    for (const RequestOp& op : Compares(t.compare) ? t.success : t.failure) {
      if (auto* p = std::get_if<PutRequest>(&op.request)) {
        if ((p->ignore_value || p->ignore_lease) && !Live(p->key, current_)) {
          return ErrKeyNotFound();
        }
        if (p->lease != 0 && !leases_.count(p->lease)) return ErrLeaseNotFound();
      } else if (auto* r = std::get_if<RangeRequest>(&op.request)) {
        if (r->revision > current_) return ErrFutureRev();
        if (r->revision != 0 && r->revision < (compact_ > 0 ? compact_ : -1)) {
          return ErrCompacted();
        }
      } else if (auto* n = std::get_if<Box<TxnRequest>>(&op.request)) {
        RETURN_IF_ERROR(Precheck(**n));
      }
    }
    return Status::Ok();
  }

  // Branches are chosen on the state before the txn: compute them all first.
  void Path(const TxnRequest& t, std::vector<bool>* path) const {
    bool ok = Compares(t.compare);
    path->push_back(ok);
    for (const RequestOp& op : ok ? t.success : t.failure) {
      if (auto* n = std::get_if<Box<TxnRequest>>(&op.request)) Path(**n, path);
    }
  }

  TxnResponse DoTxn(const TxnRequest& t, bool nested) {
    if (!nested) {
      path_.clear();
      Path(t, &path_);
      path_pos_ = 0;
    }
    TxnResponse resp;
    resp.succeeded = path_[path_pos_++];
    for (const RequestOp& op : resp.succeeded ? t.success : t.failure) {
      ResponseOp out;
      if (auto* r = std::get_if<RangeRequest>(&op.request)) {
        out.response = RangeAt(*r, ReadRev()).value();
      } else if (auto* p = std::get_if<PutRequest>(&op.request)) {
        out.response = DoPut(*p);
      } else if (auto* d = std::get_if<DeleteRangeRequest>(&op.request)) {
        out.response = DoDelete(*d);
      } else if (auto* n = std::get_if<Box<TxnRequest>>(&op.request)) {
        out.response = Box<TxnResponse>(DoTxn(**n, true));
      }
      resp.responses.push_back(std::move(out));
    }
    return resp;
  }

  size_t max_txn_ops_;
  std::set<LeaseId> leases_;
  std::map<std::string, std::vector<Version>> history_;
  Revision current_ = 1;
  Revision compact_ = 0;
  int64_t changes_ = 0;
  std::vector<Event> events_;
  std::vector<bool> path_;
  size_t path_pos_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Random requests.

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  int Int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(int percent) { return Int(0, 99) < percent; }

  std::string Key() {
    static const std::vector<std::string> keys = {
        "a", "b", "c", "ab", "abc", std::string("a\0", 2), "b\xff", "d", "e", "\xff"};
    return keys[Int(0, keys.size() - 1)];
  }
  std::string Value() { return Chance(10) ? "" : "v" + std::to_string(Int(0, 9)); }

  std::pair<std::string, std::string> Range() {
    int kind = Int(0, 9);
    if (kind < 4) return {Key(), ""};
    if (kind < 7) return {Key(), Key()};
    if (kind < 9) return {Key(), kNul};
    return {kNul, kNul};
  }

  Revision Rev(Revision current) {
    if (Chance(60)) return 0;
    return Int(-1, static_cast<int>(current) + 1);
  }

  RangeRequest MakeRange(Revision current) {
    RangeRequest r;
    std::tie(r.key, r.range_end) = Range();
    if (Chance(30)) r.limit = Int(1, 3);
    r.revision = Rev(current);
    if (Chance(30)) r.sort_order = static_cast<RangeRequest::SortOrder>(Int(0, 2));
    if (Chance(30)) r.sort_target = static_cast<RangeRequest::SortTarget>(Int(0, 4));
    r.keys_only = Chance(15);
    r.count_only = Chance(10);
    if (Chance(10)) r.min_mod_revision = Int(1, static_cast<int>(current));
    if (Chance(10)) r.max_mod_revision = Int(1, static_cast<int>(current));
    if (Chance(10)) r.min_create_revision = Int(1, static_cast<int>(current));
    if (Chance(10)) r.max_create_revision = Int(1, static_cast<int>(current));
    return r;
  }

  PutRequest MakePut() {
    PutRequest p;
    p.key = Key();
    p.value = Value();
    static const std::vector<LeaseId> leases = {0, 0, 0, 7, 8, 99};
    p.lease = leases[Int(0, leases.size() - 1)];
    p.prev_kv = Chance(50);
    if (Chance(10)) {
      p.ignore_value = true;
      if (!Chance(20)) p.value.clear();
    }
    if (Chance(10)) {
      p.ignore_lease = true;
      if (!Chance(20)) p.lease = 0;
    }
    return p;
  }

  DeleteRangeRequest MakeDelete() {
    DeleteRangeRequest d;
    std::tie(d.key, d.range_end) = Range();
    d.prev_kv = Chance(50);
    return d;
  }

  Compare MakeCompare(Revision current) {
    Compare c;
    std::tie(c.key, c.range_end) = Chance(70) ? std::make_pair(Key(), std::string()) : Range();
    c.target = static_cast<Compare::CompareTarget>(Int(0, 4));
    c.result = static_cast<Compare::CompareResult>(Int(0, 3));
    c.version = Int(0, 3);
    c.create_revision = Int(0, static_cast<int>(current));
    c.mod_revision = Int(0, static_cast<int>(current));
    c.value = Value();
    c.lease = Chance(50) ? 0 : 7;
    return c;
  }

  TxnRequest MakeTxn(Revision current, int depth) {
    TxnRequest t;
    int compares = Int(0, 2);
    for (int i = 0; i < compares; ++i) t.compare.push_back(MakeCompare(current));
    for (auto* ops : {&t.success, &t.failure}) {
      int n = Int(0, 3);
      for (int i = 0; i < n; ++i) {
        int kind = Int(0, 9);
        if (kind < 3) {
          ops->push_back(MakeOp(MakeRange(current)));
        } else if (kind < 6) {
          ops->push_back(MakeOp(MakePut()));
        } else if (kind < 8) {
          ops->push_back(MakeOp(MakeDelete()));
        } else if (depth < 2) {
          ops->push_back(MakeOp(MakeTxn(current, depth + 1)));
        }
      }
    }
    return t;
  }

 private:
  std::mt19937_64 rng_;
};

std::string Describe(const KeyValue& kv) {
  return "{" + kv.key + "=" + kv.value + " c" + std::to_string(kv.create_revision) + " m" +
         std::to_string(kv.mod_revision) + " v" + std::to_string(kv.version) + " l" +
         std::to_string(kv.lease) + "}";
}
std::string Describe(const EventsResponse& r) {
  std::string out = "next " + std::to_string(r.next_revision) + " current " +
                    std::to_string(r.current_revision) + ":";
  for (const Event& e : r.events) {
    out += e.type == EventType::kPut ? " PUT" : " DEL";
    out += Describe(e.kv);
    if (e.prev_kv) out += "<-" + Describe(*e.prev_kv);
  }
  return out;
}
template <typename T>
std::string Describe(const T&) {
  return "";
}

template <typename T>
void ExpectSame(const Result<T>& store, const Result<T>& model, const std::string& what) {
  ASSERT_EQ(store.ok(), model.ok())
      << what << ": store " << store.status().ToString() << ", model " << model.status().ToString();
  if (!store.ok()) {
    EXPECT_EQ(store.status(), model.status()) << what;
    return;
  }
  EXPECT_TRUE(*store == *model) << what << "\nstore: " << Describe(*store)
                                << "\nmodel: " << Describe(*model);
}

// A batch's write events from the store and the model. The store leaves a put's prev_kv value
// unread until Store::ReadPrevValues (after the commit), so they are compared then.
struct BatchEvents {
  std::vector<Event> store;
  std::vector<Event> model;
  std::vector<std::string> what;
};

template <typename T>
void ExpectSameWrite(const Result<WriteResult<T>>& store, const Result<WriteResult<T>>& model,
                     const std::string& what, BatchEvents* events) {
  ASSERT_EQ(store.ok(), model.ok())
      << what << ": store " << store.status().ToString() << ", model " << model.status().ToString();
  if (!store.ok()) {
    EXPECT_EQ(store.status(), model.status()) << what;
    return;
  }
  EXPECT_TRUE(store->response == model->response) << what << ": response";
  ASSERT_EQ(store->events.size(), model->events.size()) << what << ": events";
  for (size_t i = 0; i < store->events.size(); ++i) {
    events->store.push_back(store->events[i]);
    events->model.push_back(model->events[i]);
    events->what.push_back(what + " event " + std::to_string(i));
  }
}

// After the batch's commit: every put that replaced a version left its value unread, and reading
// it gives the model's; only for an event below the compact revision may it be gone (no prev_kv).
void ExpectSameEvents(const Store& store, BatchEvents* events) {
  for (size_t i = 0; i < events->store.size(); ++i) {
    const bool replaced =
        events->model[i].type == EventType::kPut && events->model[i].prev_kv.has_value();
    EXPECT_EQ(events->store[i].prev_value_unread, replaced) << events->what[i];
  }
  ASSERT_TRUE(store.ReadPrevValues(&events->store).ok());
  for (size_t i = 0; i < events->store.size(); ++i) {
    Event& m = events->model[i];
    if (!events->store[i].prev_kv && m.kv.mod_revision < store.CompactRevision()) m.prev_kv.reset();
    EXPECT_TRUE(events->store[i] == m) << events->what[i];
  }
  *events = BatchEvents();
}

// One logged request, so that a second store can replay the same log.
struct LogEntry {
  enum Kind { kPut, kDelete, kTxn, kCompact } kind;
  PutRequest put;
  DeleteRangeRequest del;
  TxnRequest txn;
  Revision compact = 0;
};

void ApplyEntry(ApplyBatch& b, LogPosition at, const LogEntry& e) {
  switch (e.kind) {
    case LogEntry::kPut:
      (void)b.Put(at, e.put);
      break;
    case LogEntry::kDelete:
      (void)b.DeleteRange(at, e.del);
      break;
    case LogEntry::kTxn:
      (void)b.Txn(at, e.txn);
      break;
    case LogEntry::kCompact:
      (void)b.Compact(at, CompactionRequest{e.compact, false});
      break;
  }
}

void RunSeed(uint64_t seed, int ops) {
  SCOPED_TRACE("seed " + std::to_string(seed));
  Gen gen(seed);
  const std::set<LeaseId> leases = {7, 8};
  const size_t max_txn_ops = 8;
  Model model(max_txn_ops, leases);
  // In memory (RocksDB's MemEnv): the reopen still goes through RocksDB's files and recovery.
  std::unique_ptr<rocksdb::Env> env(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  StoreOptions options;
  options.dir = "/model";
  options.env = env.get();
  options.max_txn_ops = max_txn_ops;
  options.lease_exists = [&](LeaseId id) { return leases.count(id) > 0; };
  options.compaction_keys_per_step = static_cast<size_t>(gen.Int(1, 4));
  auto store = std::move(Store::Open(options)).value();
  std::vector<LogEntry> log;
  uint64_t index = 0;

  int done = 0;
  while (done < ops) {
    ApplyBatch batch = store->NewBatch();
    BatchEvents written;
    int in_batch = gen.Int(1, 5);
    for (int i = 0; i < in_batch && done < ops; ++i, ++done) {
      std::string what = "op " + std::to_string(done);
      LogPosition at{++index, 1};
      int kind = gen.Int(0, 99);
      if (kind < 25) {
        RangeRequest r = gen.MakeRange(model.current());
        ExpectSame(batch.Range(r), model.Range(r), what + " range (in batch)");
        --index;  // a read is not a log entry
        continue;
      }
      LogEntry e{};
      if (kind < 55) {
        e.kind = LogEntry::kPut;
        e.put = gen.MakePut();
        ExpectSameWrite(batch.Put(at, e.put), model.Put(e.put), what + " put", &written);
      } else if (kind < 70) {
        e.kind = LogEntry::kDelete;
        e.del = gen.MakeDelete();
        ExpectSameWrite(batch.DeleteRange(at, e.del), model.Delete(e.del), what + " delete",
                        &written);
      } else if (kind < 95) {
        e.kind = LogEntry::kTxn;
        e.txn = gen.MakeTxn(model.current(), 0);
        ExpectSameWrite(batch.Txn(at, e.txn), model.Txn(e.txn), what + " txn", &written);
      } else {
        e.kind = LogEntry::kCompact;
        e.compact = gen.Int(0, static_cast<int>(model.current()) + 1);
        ExpectSame(batch.Compact(at, CompactionRequest{e.compact, false}), model.Compact(e.compact),
                   what + " compact");
      }
      log.push_back(std::move(e));
      if (::testing::Test::HasFailure()) return;
    }
    ASSERT_TRUE(batch.Commit().ok());
    ASSERT_EQ(store->Applied().index, index);
    ASSERT_EQ(store->CurrentRevision(), model.current());
    ExpectSameEvents(*store, &written);

    // Committed reads, events, and sometimes a reopen.
    RangeRequest r = gen.MakeRange(model.current());
    ExpectSame(store->Range(r), model.Range(r), "committed range");
    EventsRequest ev;
    std::tie(ev.key, ev.range_end) = gen.Range();
    ev.from_revision = gen.Int(0, static_cast<int>(model.current()));
    ev.to_revision = gen.Chance(50) ? 0 : gen.Int(0, static_cast<int>(model.current()) + 1);
    ev.limit = gen.Chance(50) ? 0 : static_cast<size_t>(gen.Int(1, 4));
    ExpectSame(store->ReadEvents(ev), model.Events(ev), "events");
    if (gen.Chance(5)) {
      auto hash = store->HashKV({});
      ASSERT_TRUE(hash.ok());
      store.reset();
      store = std::move(Store::Open(options)).value();
      ASSERT_EQ(store->Applied().index, index);
      auto again = store->HashKV({});
      ASSERT_TRUE(again.ok());
      ASSERT_EQ(again->hash, hash->hash) << "hash changed across reopen";
    }
    if (::testing::Test::HasFailure()) return;
  }

  // A second store fed the same log in other batch groupings, compaction run to completion,
  // must agree on HashKV at every revision the first one can still hash.
  while (!std::move(store->RunCompaction(1000)).value()) {
  }
  StoreOptions options2 = options;
  options2.dir = "/replica";
  options2.compaction_keys_per_step = 1000;
  auto replica = std::move(Store::Open(options2)).value();
  uint64_t replayed = 0;
  while (replayed < log.size()) {
    ApplyBatch b = replica->NewBatch();
    size_t n = static_cast<size_t>(gen.Int(1, 20));
    for (size_t i = 0; i < n && replayed < log.size(); ++i, ++replayed) {
      ApplyEntry(b, LogPosition{replayed + 1, 1}, log[replayed]);
    }
    ASSERT_TRUE(b.Commit().ok());
  }
  for (Revision rev = store->CompactRevision(); rev <= model.current(); ++rev) {
    if (rev <= 0) continue;
    auto a = store->HashKV({rev});
    auto b = replica->HashKV({rev});
    ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << " " << b.status().ToString();
    EXPECT_EQ(a->hash, b->hash) << "revision " << rev;
  }
  store.reset();
  replica.reset();
}

TEST(MvccModelTest, RandomOperationsMatchTheModel) {
  // Bounded by time as well as by seeds, so a slow machine still finishes quickly.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  int seeds = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    RunSeed(seed, 150);
    ++seeds;
    if (HasFailure() || std::chrono::steady_clock::now() > deadline) break;
  }
  EXPECT_GE(seeds, 5);
  std::printf("mvcc model: %d seeds\n", seeds);
}

}  // namespace
}  // namespace ballot::mvcc
