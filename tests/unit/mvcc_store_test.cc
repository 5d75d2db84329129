// Unit tests of the mvcc store: every operation, option and error, with etcd's expected answers.
#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include <atomic>
#include <string>
#include <thread>

#include "mvcc/snapshot.h"
#include "mvcc/store.h"

namespace ballot::mvcc {
namespace {

RangeRequest Get(std::string key, std::string range_end = "") {
  RangeRequest r;
  r.key = std::move(key);
  r.range_end = std::move(range_end);
  return r;
}

PutRequest PutReq(std::string key, std::string value, LeaseId lease = 0) {
  PutRequest p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  return p;
}

DeleteRangeRequest Del(std::string key, std::string range_end = "") {
  DeleteRangeRequest d;
  d.key = std::move(key);
  d.range_end = std::move(range_end);
  return d;
}

Compare Cmp(std::string key, Compare::CompareTarget target, Compare::CompareResult result) {
  Compare c;
  c.key = std::move(key);
  c.target = target;
  c.result = result;
  return c;
}

std::vector<std::string> Keys(const RangeResponse& r) {
  std::vector<std::string> keys;
  for (const KeyValue& kv : r.kvs) keys.push_back(kv.key);
  return keys;
}

class MvccStoreTest : public ::testing::Test {
 protected:
  // RocksDB runs in memory here (the crash tests use the disk): the store's semantics do not
  // depend on it, and tests stay fast.
  void SetUp() override {
    dir_ = "/mvcc_store_test";
    Open();
  }
  void TearDown() override { store_.reset(); }

  void Open() {
    StoreOptions options;
    options.dir = dir_;
    options.env = env_.get();
    options.max_txn_ops = max_txn_ops_;
    options.lease_exists = [this](LeaseId id) { return leases_.count(id) > 0; };
    auto store = Store::Open(options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }
  void Reopen() {
    store_.reset();
    Open();
  }

  LogPosition Next() { return LogPosition{++index_, 1}; }

  // Each write is one log entry in its own batch.
  Result<WriteResult<PutResponse>> Put(const PutRequest& p) {
    ApplyBatch b = store_->NewBatch();
    auto r = b.Put(Next(), p);
    EXPECT_TRUE(b.Commit().ok());
    return r;
  }
  WriteResult<PutResponse> MustPut(std::string key, std::string value, LeaseId lease = 0) {
    auto r = Put(PutReq(std::move(key), std::move(value), lease));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : WriteResult<PutResponse>{};
  }
  Result<WriteResult<DeleteRangeResponse>> Delete(const DeleteRangeRequest& d) {
    ApplyBatch b = store_->NewBatch();
    auto r = b.DeleteRange(Next(), d);
    EXPECT_TRUE(b.Commit().ok());
    return r;
  }
  Result<WriteResult<TxnResponse>> Txn(const TxnRequest& t) {
    ApplyBatch b = store_->NewBatch();
    auto r = b.Txn(Next(), t);
    EXPECT_TRUE(b.Commit().ok());
    return r;
  }
  Result<CompactionResponse> Compact(Revision rev) {
    ApplyBatch b = store_->NewBatch();
    auto r = b.Compact(Next(), CompactionRequest{rev, false});
    EXPECT_TRUE(b.Commit().ok());
    return r;
  }
  RangeResponse MustRange(const RangeRequest& r) {
    auto resp = store_->Range(r);
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    return resp.ok() ? std::move(resp).value() : RangeResponse{};
  }

  // Records in the store's image (all column families), counted through a snapshot.
  uint64_t ImageEntries() {
    auto writer = store_->NewSnapshotWriter("");
    EXPECT_TRUE(writer.ok());
    auto stream = (*writer)->ReadAll();
    EXPECT_TRUE(stream.ok());
    SnapshotDecoder decoder(nullptr, nullptr);
    EXPECT_TRUE(decoder.Append(*stream).ok());
    EXPECT_TRUE(decoder.Finish().ok());
    return decoder.entries();
  }

  std::unique_ptr<rocksdb::Env> env_{rocksdb::NewMemEnv(rocksdb::Env::Default())};
  std::string dir_;
  size_t max_txn_ops_ = 128;
  std::set<LeaseId> leases_{7};
  std::unique_ptr<Store> store_;
  uint64_t index_ = 0;
};

TEST_F(MvccStoreTest, EmptyStoreIsAtRevisionOne) {
  EXPECT_EQ(store_->CurrentRevision(), 1);
  EXPECT_EQ(store_->CompactRevision(), 0);
  EXPECT_EQ(store_->Applied(), LogPosition{});
  RangeResponse r = MustRange(Get("a", std::string(1, '\0')));
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 0);
  EXPECT_EQ(r.header.revision, 1);
}

TEST_F(MvccStoreTest, PutSetsRevisionsAndVersions) {
  auto first = MustPut("a", "1");
  EXPECT_EQ(first.response.header.revision, 2);
  EXPECT_FALSE(first.response.prev_kv.has_value());
  ASSERT_EQ(first.events.size(), 1u);
  EXPECT_EQ(first.events[0].type, EventType::kPut);
  EXPECT_EQ(first.events[0].kv, (KeyValue{"a", "1", 2, 2, 1, 0}));
  EXPECT_FALSE(first.events[0].prev_kv.has_value());

  PutRequest again = PutReq("a", "2", 7);
  again.prev_kv = true;
  auto second = Put(again);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->response.header.revision, 3);
  ASSERT_TRUE(second->response.prev_kv.has_value());
  EXPECT_EQ(*second->response.prev_kv, (KeyValue{"a", "1", 2, 2, 1, 0}));
  EXPECT_EQ(second->events[0].kv, (KeyValue{"a", "2", 2, 3, 2, 7}));
  // The event's prev_kv comes from the key index: all but the value, read on demand.
  std::vector<Event> events = second->events;
  EXPECT_EQ(events[0].prev_kv, (KeyValue{"a", "", 2, 2, 1, 0}));
  EXPECT_TRUE(events[0].prev_value_unread);
  ASSERT_TRUE(store_->ReadPrevValues(&events).ok());
  EXPECT_EQ(events[0].prev_kv, (KeyValue{"a", "1", 2, 2, 1, 0}));
  EXPECT_FALSE(events[0].prev_value_unread);

  RangeResponse r = MustRange(Get("a"));
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0], (KeyValue{"a", "2", 2, 3, 2, 7}));
  EXPECT_EQ(r.header.revision, 3);
  EXPECT_EQ(store_->CurrentRevision(), 3);
}

// A put learns the version it replaces from the key index (key_index.h): it must follow every
// commit, ignore a dropped batch, forget a deleted key and be rebuilt at reopen.
TEST_F(MvccStoreTest, PutsFindTheReplacedVersionAcrossDropsDeletesAndReopens) {
  MustPut("a", "1", 7);  // revision 2
  MustPut("b", "1");     // 3
  {
    ApplyBatch dropped = store_->NewBatch();
    ASSERT_TRUE(dropped.Put(Next(), PutReq("a", "x")).ok());
    ASSERT_TRUE(dropped.DeleteRange(Next(), Del("b")).ok());
  }
  index_ = store_->Applied().index;
  auto a = MustPut("a", "2");  // 4
  EXPECT_EQ(a.events[0].kv, (KeyValue{"a", "2", 2, 4, 2, 0}));
  EXPECT_EQ(a.events[0].prev_kv, (KeyValue{"a", "", 2, 2, 1, 7}));  // the lease, for the lessor
  auto b = MustPut("b", "2");                                       // 5
  EXPECT_EQ(b.events[0].kv, (KeyValue{"b", "2", 3, 5, 2, 0}));

  ASSERT_TRUE(Delete(Del("b")).ok());  // 6
  b = MustPut("b", "3");               // 7
  EXPECT_EQ(b.events[0].kv, (KeyValue{"b", "3", 7, 7, 1, 0}));
  EXPECT_FALSE(b.events[0].prev_kv.has_value());
  EXPECT_FALSE(b.events[0].prev_value_unread);

  // In one batch: a put, a delete and a put again of the same key.
  {
    ApplyBatch batch = store_->NewBatch();
    ASSERT_TRUE(batch.Put(Next(), PutReq("c", "1")).ok());  // 8
    ASSERT_TRUE(batch.DeleteRange(Next(), Del("c")).ok());  // 9
    auto c = batch.Put(Next(), PutReq("c", "2"));           // 10
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->events[0].kv, (KeyValue{"c", "2", 10, 10, 1, 0}));
    auto again = batch.Put(Next(), PutReq("c", "3"));  // 11
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->events[0].prev_kv, (KeyValue{"c", "", 10, 10, 1, 0}));
    ASSERT_TRUE(batch.Commit().ok());
  }

  Reopen();
  a = MustPut("a", "3");  // 12
  EXPECT_EQ(a.events[0].kv, (KeyValue{"a", "3", 2, 12, 3, 0}));
  auto c = MustPut("c", "4");  // 13
  EXPECT_EQ(c.events[0].kv, (KeyValue{"c", "4", 10, 13, 3, 0}));
  ASSERT_TRUE(Delete(Del("a")).ok());  // 14
  Reopen();
  a = MustPut("a", "4");  // 15
  EXPECT_EQ(a.events[0].kv, (KeyValue{"a", "4", 15, 15, 1, 0}));
  EXPECT_FALSE(a.events[0].prev_kv.has_value());
}

// A prev_kv value is read at its version. Compaction keeps the version that an event at or above
// the compact revision replaced; an event below it may lose its prev_kv (etcd's watch server
// does the same).
TEST_F(MvccStoreTest, PrevValuesAreReadAtTheirVersionOrDroppedWhenCompacted) {
  MustPut("a", "1");                // 2
  auto second = MustPut("a", "2");  // 3
  auto third = MustPut("a", "3");   // 4
  std::vector<Event> events = {second.events[0], third.events[0]};
  ASSERT_TRUE(store_->ReadPrevValues(&events).ok());
  EXPECT_EQ(events[0].prev_kv, (KeyValue{"a", "1", 2, 2, 1, 0}));
  EXPECT_EQ(events[1].prev_kv, (KeyValue{"a", "2", 2, 3, 2, 0}));

  ASSERT_TRUE(Compact(4).ok());
  while (!std::move(store_->RunCompaction(1000)).value()) {
  }
  events = {second.events[0], third.events[0]};
  ASSERT_TRUE(store_->ReadPrevValues(&events).ok());
  EXPECT_FALSE(events[0].prev_kv.has_value());  // event 3 < compact revision 4: version 2 gone
  EXPECT_FALSE(events[0].prev_value_unread);
  EXPECT_EQ(events[1].prev_kv, (KeyValue{"a", "2", 2, 3, 2, 0}));  // event 4 keeps its prev
}

TEST_F(MvccStoreTest, KeysWithZeroBytesAndPrefixesStayApart) {
  MustPut(std::string("a\0b", 3), "x");
  MustPut("a", "y");
  MustPut(std::string("a\0", 2), "z");
  MustPut("ab", "w");
  RangeResponse all = MustRange(Get(std::string(1, '\0'), std::string(1, '\0')));
  EXPECT_EQ(Keys(all),
            (std::vector<std::string>{"a", std::string("a\0", 2), std::string("a\0b", 3), "ab"}));
  RangeResponse one = MustRange(Get(std::string("a\0", 2)));
  ASSERT_EQ(one.kvs.size(), 1u);
  EXPECT_EQ(one.kvs[0].value, "z");
}

TEST_F(MvccStoreTest, DeleteRangeResetsVersionAndCountsDeletions) {
  MustPut("a", "1");
  MustPut("b", "2");
  MustPut("c", "3");
  DeleteRangeRequest d = Del("a", "c");
  d.prev_kv = true;
  auto r = Delete(d);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->response.deleted, 2);
  EXPECT_EQ(r->response.header.revision, 5);
  ASSERT_EQ(r->response.prev_kvs.size(), 2u);
  EXPECT_EQ(r->response.prev_kvs[1], (KeyValue{"b", "2", 3, 3, 1, 0}));
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_EQ(r->events[0].type, EventType::kDelete);
  EXPECT_EQ(r->events[0].kv, (KeyValue{"a", "", 0, 5, 0, 0}));
  EXPECT_EQ(r->events[0].prev_kv, (KeyValue{"a", "1", 2, 2, 1, 0}));

  // Deleting nothing does not move the revision.
  auto none = Delete(Del("zz"));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->response.deleted, 0);
  EXPECT_EQ(none->response.header.revision, 5);
  EXPECT_TRUE(none->events.empty());
  EXPECT_EQ(store_->CurrentRevision(), 5);

  // Re-creation starts a new generation.
  auto again = MustPut("a", "new");
  EXPECT_EQ(again.events[0].kv, (KeyValue{"a", "new", 6, 6, 1, 0}));
  EXPECT_FALSE(again.events[0].prev_kv.has_value());

  // History is still readable.
  RangeRequest old = Get("a", "d");
  old.revision = 4;
  EXPECT_EQ(Keys(MustRange(old)), (std::vector<std::string>{"a", "b", "c"}));
  old.revision = 5;
  EXPECT_EQ(Keys(MustRange(old)), (std::vector<std::string>{"c"}));
}

TEST_F(MvccStoreTest, RangeOptions) {
  MustPut("k1", "c");  // rev 2
  MustPut("k2", "b");  // rev 3
  MustPut("k3", "a");  // rev 4
  MustPut("k1", "d");  // rev 5: k1 version 2
  MustPut("x", "z");   // rev 6

  // Prefix [k, l), from-key, single key.
  EXPECT_EQ(Keys(MustRange(Get("k", "l"))), (std::vector<std::string>{"k1", "k2", "k3"}));
  EXPECT_EQ(Keys(MustRange(Get("k2", std::string(1, '\0')))),
            (std::vector<std::string>{"k2", "k3", "x"}));
  EXPECT_EQ(Keys(MustRange(Get("k2"))), (std::vector<std::string>{"k2"}));
  EXPECT_TRUE(MustRange(Get("k3", "k1")).kvs.empty());  // range_end before key

  // Limit: `more` and `count` (count ignores the limit).
  RangeRequest lim = Get("k", "l");
  lim.limit = 2;
  RangeResponse r = MustRange(lim);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_TRUE(r.more);
  EXPECT_EQ(r.count, 3);
  lim.limit = 3;
  r = MustRange(lim);
  EXPECT_FALSE(r.more);
  EXPECT_EQ(r.kvs.size(), 3u);

  // Sort by value descending with a limit: sorted first, then truncated.
  RangeRequest sorted = Get("k", "l");
  sorted.sort_order = RangeRequest::SortOrder::kDescend;
  sorted.sort_target = RangeRequest::SortTarget::kValue;
  sorted.limit = 2;
  r = MustRange(sorted);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"k1", "k2"}));  // values d, b
  EXPECT_TRUE(r.more);
  sorted.sort_order = RangeRequest::SortOrder::kAscend;
  EXPECT_EQ(Keys(MustRange(sorted)), (std::vector<std::string>{"k3", "k2"}));  // a, b
  // A target other than KEY with order NONE sorts ascending (etcd).
  RangeRequest by_mod = Get("k", "l");
  by_mod.sort_target = RangeRequest::SortTarget::kMod;
  EXPECT_EQ(Keys(MustRange(by_mod)), (std::vector<std::string>{"k2", "k3", "k1"}));
  by_mod.sort_order = RangeRequest::SortOrder::kDescend;
  by_mod.sort_target = RangeRequest::SortTarget::kKey;
  EXPECT_EQ(Keys(MustRange(by_mod)), (std::vector<std::string>{"k3", "k2", "k1"}));
  RangeRequest by_version = Get("k", "l");
  by_version.sort_target = RangeRequest::SortTarget::kVersion;
  by_version.sort_order = RangeRequest::SortOrder::kDescend;
  EXPECT_EQ(Keys(MustRange(by_version)).front(), "k1");
  RangeRequest by_create = Get("k", "l");
  by_create.sort_target = RangeRequest::SortTarget::kCreate;
  by_create.sort_order = RangeRequest::SortOrder::kDescend;
  EXPECT_EQ(Keys(MustRange(by_create)), (std::vector<std::string>{"k3", "k2", "k1"}));

  // keys_only, count_only.
  RangeRequest keys_only = Get("k1");
  keys_only.keys_only = true;
  r = MustRange(keys_only);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "");
  EXPECT_EQ(r.kvs[0].version, 2);
  RangeRequest count_only = Get("k", "l");
  count_only.count_only = true;
  r = MustRange(count_only);
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 3);
  EXPECT_FALSE(r.more);

  // min/max mod and create revision filters; count stays the range's.
  RangeRequest f = Get("k", "l");
  f.min_mod_revision = 3;
  f.max_mod_revision = 4;
  r = MustRange(f);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"k2", "k3"}));
  EXPECT_EQ(r.count, 3);
  f = Get("k", "l");
  f.max_create_revision = 2;
  EXPECT_EQ(Keys(MustRange(f)), (std::vector<std::string>{"k1"}));
  f = Get("k", "l");
  f.min_create_revision = 3;
  f.limit = 1;
  r = MustRange(f);
  EXPECT_EQ(Keys(r), (std::vector<std::string>{"k2"}));
  EXPECT_TRUE(r.more);

  // A past revision, and the header's revision stays the current one.
  RangeRequest past = Get("k1");
  past.revision = 4;
  r = MustRange(past);
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "c");
  EXPECT_EQ(r.header.revision, 6);
  past.revision = 1;
  EXPECT_TRUE(MustRange(past).kvs.empty());
  past.revision = -3;  // <= 0: current
  EXPECT_EQ(MustRange(past).kvs[0].value, "d");
  // serializable is the caller's business.
  RangeRequest ser = Get("k1");
  ser.serializable = true;
  EXPECT_EQ(MustRange(ser).kvs.size(), 1u);
}

TEST_F(MvccStoreTest, RangeErrors) {
  MustPut("a", "1");
  RangeRequest r = Get("a");
  r.revision = 3;
  auto future = store_->Range(r);
  EXPECT_EQ(future.status(), ErrFutureRev());
  EXPECT_EQ(future.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(store_->Range(Get("")).status(), ErrEmptyKey());
  RangeRequest bad_sort = Get("a");
  bad_sort.sort_order = static_cast<RangeRequest::SortOrder>(9);
  EXPECT_EQ(store_->Range(bad_sort).status(), ErrInvalidSortOption());
}

TEST_F(MvccStoreTest, PutErrorsAndIgnoreFlags) {
  PutRequest iv = PutReq("a", "");
  iv.ignore_value = true;
  EXPECT_EQ(Put(iv).status(), ErrKeyNotFound());
  PutRequest il = PutReq("a", "v");
  il.ignore_lease = true;
  EXPECT_EQ(Put(il).status(), ErrKeyNotFound());
  EXPECT_EQ(Put(PutReq("", "v")).status(), ErrEmptyKey());
  PutRequest value_given = PutReq("a", "v");
  value_given.ignore_value = true;
  EXPECT_EQ(Put(value_given).status(), ErrValueProvided());
  PutRequest lease_given = PutReq("a", "v", 7);
  lease_given.ignore_lease = true;
  EXPECT_EQ(Put(lease_given).status(), ErrLeaseProvided());
  auto no_lease = Put(PutReq("a", "v", 99));
  EXPECT_EQ(no_lease.status(), ErrLeaseNotFound());
  EXPECT_EQ(no_lease.status().code(), StatusCode::kNotFound);
  // None of them changed anything, yet every entry is applied.
  EXPECT_EQ(store_->CurrentRevision(), 1);
  EXPECT_EQ(store_->Applied().index, index_);

  MustPut("a", "v1", 7);
  iv.key = "a";
  auto kept_value = Put(iv);
  ASSERT_TRUE(kept_value.ok());
  EXPECT_EQ(kept_value->events[0].kv, (KeyValue{"a", "v1", 2, 3, 2, 0}));
  PutRequest keep_lease = PutReq("a", "v2");
  keep_lease.ignore_lease = true;
  MustPut("a", "v1", 7);
  auto kept_lease = Put(keep_lease);
  ASSERT_TRUE(kept_lease.ok());
  EXPECT_EQ(kept_lease->events[0].kv.lease, 7);
  EXPECT_EQ(kept_lease->events[0].kv.value, "v2");
}

TEST_F(MvccStoreTest, TxnSharesOneRevisionWithIncreasingSubRevisions) {
  MustPut("a", "1");  // rev 2
  TxnRequest t;
  t.compare.push_back(Cmp("a", Compare::CompareTarget::kValue, Compare::CompareResult::kEqual));
  t.compare.back().value = "1";
  t.success.push_back(MakeOp(PutReq("b", "2")));
  t.success.push_back(MakeOp(PutReq("c", "3")));
  t.success.push_back(MakeOp(Get("b")));  // sees the put before it
  DeleteRangeRequest d = Del("a");
  d.prev_kv = true;
  t.success.push_back(MakeOp(d));
  t.failure.push_back(MakeOp(PutReq("f", "x")));
  auto r = Txn(t);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->response.succeeded);
  EXPECT_EQ(r->response.header.revision, 3);
  ASSERT_EQ(r->response.responses.size(), 4u);
  auto& range = std::get<RangeResponse>(r->response.responses[2].response);
  ASSERT_EQ(range.kvs.size(), 1u);
  EXPECT_EQ(range.kvs[0], (KeyValue{"b", "2", 3, 3, 1, 0}));
  EXPECT_EQ(range.header.revision, 3);
  EXPECT_EQ(std::get<PutResponse>(r->response.responses[0].response).header.revision, 3);
  auto& del = std::get<DeleteRangeResponse>(r->response.responses[3].response);
  EXPECT_EQ(del.deleted, 1);
  ASSERT_EQ(del.prev_kvs.size(), 1u);
  ASSERT_EQ(r->events.size(), 3u);
  for (const Event& e : r->events) EXPECT_EQ(e.kv.mod_revision, 3);
  EXPECT_EQ(r->events[2].type, EventType::kDelete);
  EXPECT_EQ(store_->CurrentRevision(), 3);

  // The events of the revision come back in sub-revision order from storage too.
  auto events = store_->ReadEvents(EventsRequest{3, 3, std::string(1, '\0'), std::string(1, '\0')});
  ASSERT_TRUE(events.ok());
  EXPECT_EQ(events->events, r->events);

  // Failure branch.
  auto f = Txn(t);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->response.succeeded);
  EXPECT_EQ(f->response.header.revision, 4);
  EXPECT_EQ(MustRange(Get("f")).kvs.size(), 1u);
}

TEST_F(MvccStoreTest, ReadOnlyTxnKeepsTheRevision) {
  MustPut("a", "1");
  TxnRequest t;
  t.success.push_back(MakeOp(Get("a")));
  t.success.push_back(MakeOp(Del("nothing")));
  auto r = Txn(t);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->response.succeeded);  // no compares: success
  EXPECT_EQ(r->response.header.revision, 2);
  EXPECT_TRUE(r->events.empty());
  EXPECT_EQ(store_->CurrentRevision(), 2);
}

TEST_F(MvccStoreTest, TxnCompares) {
  using T = Compare::CompareTarget;
  using R = Compare::CompareResult;
  MustPut("a", "5", 7);  // rev 2
  MustPut("b", "6");     // rev 3
  auto run = [&](Compare c) {
    TxnRequest t;
    t.compare.push_back(std::move(c));
    auto r = Txn(t);
    EXPECT_TRUE(r.ok());
    return r.ok() && r->response.succeeded;
  };
  Compare c = Cmp("a", T::kVersion, R::kEqual);
  c.version = 1;
  EXPECT_TRUE(run(c));
  c.result = R::kGreater;
  c.version = 0;
  EXPECT_TRUE(run(c));
  c.result = R::kLess;
  EXPECT_FALSE(run(c));
  c.result = R::kNotEqual;
  EXPECT_TRUE(run(c));
  c = Cmp("a", T::kCreate, R::kEqual);
  c.create_revision = 2;
  EXPECT_TRUE(run(c));
  c = Cmp("a", T::kMod, R::kLess);
  c.mod_revision = 3;
  EXPECT_TRUE(run(c));
  c = Cmp("a", T::kLease, R::kEqual);
  c.lease = 7;
  EXPECT_TRUE(run(c));
  c = Cmp("a", T::kValue, R::kGreater);
  c.value = "4";
  EXPECT_TRUE(run(c));
  // Only the union member named by the target is read.
  c = Cmp("a", T::kVersion, R::kEqual);
  c.mod_revision = 1;  // ignored; version compared with 0
  EXPECT_FALSE(run(c));
  // Absent key: value compares fail; the others compare with zeros.
  c = Cmp("zz", T::kValue, R::kEqual);
  EXPECT_FALSE(run(c));
  c = Cmp("zz", T::kVersion, R::kEqual);
  EXPECT_TRUE(run(c));
  c = Cmp("zz", T::kCreate, R::kEqual);
  EXPECT_TRUE(run(c));
  // Ranges: every key must satisfy it.
  c = Cmp("a", T::kValue, R::kGreater);
  c.range_end = "c";
  c.value = "5";
  EXPECT_FALSE(run(c));  // "5" is not > "5"
  c.value = "4";
  EXPECT_TRUE(run(c));
  c = Cmp("a", T::kVersion, R::kEqual);
  c.range_end = std::string(1, '\0');
  c.version = 1;
  EXPECT_TRUE(run(c));
  EXPECT_EQ(store_->CurrentRevision(), 3);  // nothing written
}

TEST_F(MvccStoreTest, NestedTxnsChooseBranchesOnTheStateBeforeTheTxn) {
  MustPut("a", "1");  // rev 2
  TxnRequest inner;
  // Evaluated before the outer put of "a": version is 1, not 2.
  Compare c = Cmp("a", Compare::CompareTarget::kVersion, Compare::CompareResult::kEqual);
  c.version = 1;
  inner.compare.push_back(c);
  inner.success.push_back(MakeOp(PutReq("then", "x")));
  inner.failure.push_back(MakeOp(PutReq("else", "x")));
  TxnRequest outer;
  outer.success.push_back(MakeOp(PutReq("a", "2")));
  outer.success.push_back(MakeOp(inner));
  auto r = Txn(outer);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->response.responses.size(), 2u);
  const TxnResponse& nested = *std::get<Box<TxnResponse>>(r->response.responses[1].response);
  EXPECT_TRUE(nested.succeeded);
  EXPECT_EQ(nested.header.revision, 0);  // etcd leaves nested headers empty
  ASSERT_EQ(nested.responses.size(), 1u);
  EXPECT_EQ(std::get<PutResponse>(nested.responses[0].response).header.revision, 3);
  EXPECT_EQ(MustRange(Get("then")).kvs.size(), 1u);
  EXPECT_TRUE(MustRange(Get("else")).kvs.empty());
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_EQ(r->events[1].kv.key, "then");
}

TEST_F(MvccStoreTest, TxnErrorsHaveNoEffect) {
  MustPut("a", "1");
  auto expect_error = [&](const TxnRequest& t, const Status& error) {
    auto r = Txn(t);
    EXPECT_EQ(r.status(), error);
    EXPECT_EQ(store_->CurrentRevision(), 2);
    EXPECT_EQ(store_->Applied().index, index_);
  };
  TxnRequest dup;
  dup.success = {MakeOp(PutReq("x", "1")), MakeOp(PutReq("x", "2"))};
  expect_error(dup, ErrDuplicateKey());
  TxnRequest put_del;
  put_del.success = {MakeOp(PutReq("x", "1")), MakeOp(Del("a", "z"))};
  expect_error(put_del, ErrDuplicateKey());
  TxnRequest from_key;
  from_key.failure = {MakeOp(Del("a", std::string(1, '\0'))), MakeOp(PutReq("x", "1"))};
  expect_error(from_key, ErrDuplicateKey());
  TxnRequest nested_dup;
  TxnRequest inner;
  inner.success = {MakeOp(PutReq("x", "1"))};
  nested_dup.success = {MakeOp(PutReq("x", "2")), MakeOp(inner)};
  expect_error(nested_dup, ErrDuplicateKey());

  // Allowed: two deletes overlapping; the same key in a nested txn's two branches.
  TxnRequest ok;
  ok.success = {MakeOp(Del("a")), MakeOp(Del("a", "b"))};
  TxnRequest branches;
  branches.success = {MakeOp(PutReq("y", "1"))};
  branches.failure = {MakeOp(PutReq("y", "2"))};
  ok.success.push_back(MakeOp(branches));
  auto r = Txn(ok);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->events.size(), 2u);  // delete a, put y
  EXPECT_EQ(std::get<DeleteRangeResponse>(r->response.responses[1].response).deleted, 0);
  MustPut("a", "1");

  TxnRequest bad_lease;
  bad_lease.success = {MakeOp(PutReq("x", "1", 99))};
  auto lease = Txn(bad_lease);
  EXPECT_EQ(lease.status(), ErrLeaseNotFound());
  TxnRequest ignore_absent;
  PutRequest p = PutReq("absent", "");
  p.ignore_value = true;
  ignore_absent.success = {MakeOp(PutReq("x", "1")), MakeOp(p)};
  EXPECT_EQ(Txn(ignore_absent).status(), ErrKeyNotFound());
  TxnRequest future;
  RangeRequest fr = Get("a");
  fr.revision = 100;
  future.success = {MakeOp(PutReq("x", "1")), MakeOp(fr)};
  EXPECT_EQ(Txn(future).status(), ErrFutureRev());
  TxnRequest empty_key;
  empty_key.compare.push_back(
      Cmp("", Compare::CompareTarget::kVersion, Compare::CompareResult::kEqual));
  EXPECT_EQ(Txn(empty_key).status(), ErrEmptyKey());
  EXPECT_EQ(store_->CurrentRevision(), 4);
  EXPECT_TRUE(MustRange(Get("x")).kvs.empty());
}

TEST_F(MvccStoreTest, TxnOpLimitIsConfigurable) {
  max_txn_ops_ = 3;
  Reopen();
  TxnRequest t;
  for (int i = 0; i < 4; ++i) t.success.push_back(MakeOp(PutReq("k" + std::to_string(i), "v")));
  EXPECT_EQ(Txn(t).status(), ErrTooManyOps());
  t.success.pop_back();
  EXPECT_TRUE(Txn(t).ok());
  // A nested txn counts against what its parent leaves: 2 ops + nested 2 > 3.
  TxnRequest inner;
  inner.success = {MakeOp(Get("a")), MakeOp(Get("b"))};
  TxnRequest outer;
  outer.success = {MakeOp(Get("a")), MakeOp(inner)};
  EXPECT_EQ(Txn(outer).status(), ErrTooManyOps());
  EXPECT_EQ(CheckTxnRequest(outer, 4), Status::Ok());
}

TEST_F(MvccStoreTest, CompactErrorsAndReadsBelowIt) {
  MustPut("a", "1");                   // 2
  MustPut("a", "2");                   // 3
  MustPut("b", "1");                   // 4
  ASSERT_TRUE(Delete(Del("b")).ok());  // 5
  MustPut("a", "3");                   // 6
  EXPECT_EQ(Compact(7).status(), ErrFutureRev());
  auto c = Compact(5);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->header.revision, 6);
  EXPECT_EQ(store_->CompactRevision(), 5);
  EXPECT_EQ(Compact(5).status(), ErrCompacted());
  EXPECT_EQ(Compact(4).status(), ErrCompacted());

  RangeRequest r = Get("a");
  r.revision = 4;
  EXPECT_EQ(store_->Range(r).status(), ErrCompacted());
  r.revision = 5;
  auto at = store_->Range(r);
  ASSERT_TRUE(at.ok());
  ASSERT_EQ(at->kvs.size(), 1u);
  EXPECT_EQ(at->kvs[0].value, "2");
  EXPECT_EQ(at->kvs[0].version, 2);
  EXPECT_EQ(MustRange(Get("a")).kvs[0].version, 3);
  EXPECT_TRUE(MustRange(Get("b")).kvs.empty());

  EXPECT_EQ(store_->ReadEvents(EventsRequest{4, 0, "a", "z"}).status(), ErrCompacted());
  auto events = store_->ReadEvents(EventsRequest{5, 0, "a", "z"});
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->events.size(), 2u);  // delete b at 5 (kept), put a at 6
  EXPECT_EQ(events->events[0].type, EventType::kDelete);
  EXPECT_EQ(events->events[0].prev_kv, (KeyValue{"b", "1", 4, 4, 1, 0}));
  EXPECT_EQ(events->events[1].prev_kv, (KeyValue{"a", "2", 2, 3, 2, 0}));

  // A txn's range below the compact revision.
  TxnRequest t;
  RangeRequest old = Get("a");
  old.revision = 3;
  t.success = {MakeOp(old)};
  EXPECT_EQ(Txn(t).status(), ErrCompacted());
}

TEST_F(MvccStoreTest, PhysicalCompactionKeepsWhatReadsNeedAndTheHash) {
  for (int i = 0; i < 20; ++i) {
    MustPut("k" + std::to_string(i % 5), "v" + std::to_string(i));
    if (i % 7 == 6) {
      ASSERT_TRUE(Delete(Del("k" + std::to_string(i % 5))).ok());
    }
  }
  Revision current = store_->CurrentRevision();
  Revision compact_at = current - 6;
  // The answers at and above the compact revision, before compaction.
  std::vector<RangeResponse> before;
  for (Revision rev = compact_at; rev <= current; ++rev) {
    RangeRequest r = Get("k", "l");
    r.revision = rev;
    before.push_back(MustRange(r));
  }
  auto events_before = store_->ReadEvents(EventsRequest{compact_at, 0, "k", "l"});
  ASSERT_TRUE(events_before.ok());

  store_.reset();
  {
    StoreOptions options;
    options.dir = dir_;
    options.env = env_.get();
    options.compaction_keys_per_step = 1;  // one key per commit: many steps
    store_ = std::move(Store::Open(options)).value();
  }
  uint64_t entries_before = ImageEntries();
  ASSERT_TRUE(Compact(compact_at).ok());
  auto hash_mid = store_->HashKV({});
  ASSERT_TRUE(hash_mid.ok());
  int steps = 0;
  while (true) {
    auto done = store_->RunCompaction(1);
    ASSERT_TRUE(done.ok());
    ++steps;
    if (*done) break;
    ASSERT_LT(steps, 100);
  }
  EXPECT_GE(steps, 2);
  auto hash_after = store_->HashKV({});
  ASSERT_TRUE(hash_after.ok());
  EXPECT_EQ(hash_mid->hash, hash_after->hash);
  for (Revision rev = compact_at; rev <= current; ++rev) {
    RangeRequest r = Get("k", "l");
    r.revision = rev;
    EXPECT_EQ(MustRange(r), before[rev - compact_at]) << "revision " << rev;
  }
  auto events_after = store_->ReadEvents(EventsRequest{compact_at, 0, "k", "l"});
  ASSERT_TRUE(events_after.ok());
  EXPECT_EQ(events_after->events, events_before->events);
  // Superseded versions are physically gone: the image holds fewer records.
  EXPECT_LT(ImageEntries(), entries_before);
}

TEST_F(MvccStoreTest, HashKvIsDeterministicAndCoversHistory) {
  auto hash = [&](Revision rev = 0) {
    auto h = store_->HashKV(HashKVRequest{rev});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? h->hash : 0;
  };
  uint32_t empty = hash();
  MustPut("a", "1");
  uint32_t one = hash();
  EXPECT_NE(empty, one);
  EXPECT_EQ(hash(1), empty);
  MustPut("a", "2");
  EXPECT_EQ(hash(2), one);
  auto h = store_->HashKV(HashKVRequest{0});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->header.revision, 3);
  EXPECT_EQ(h->hash_revision, 3);
  EXPECT_EQ(h->compact_revision, 0);
  EXPECT_EQ(store_->HashKV(HashKVRequest{4}).status(), ErrFutureRev());
  ASSERT_TRUE(Compact(3).ok());
  EXPECT_EQ(store_->HashKV(HashKVRequest{2}).status(), ErrCompacted());
  EXPECT_NE(hash(), h->hash);  // the compact revision is part of the hash
}

TEST_F(MvccStoreTest, ReadEventsFiltersAndStopsAtRevisionBoundaries) {
  MustPut("a", "1");  // 2
  MustPut("b", "1");  // 3
  TxnRequest t;
  t.success = {MakeOp(PutReq("a", "2")), MakeOp(PutReq("c", "1"))};  // 4
  ASSERT_TRUE(Txn(t).ok());
  MustPut("a", "3");  // 5
  auto r = store_->ReadEvents(EventsRequest{0, 0, "a", ""});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->events.size(), 3u);
  EXPECT_EQ(r->events[1].kv.value, "2");
  EXPECT_EQ(r->events[1].prev_kv->value, "1");
  EXPECT_EQ(r->next_revision, 6);
  r = store_->ReadEvents(EventsRequest{3, 4, "a", "z"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 3u);
  EXPECT_EQ(r->next_revision, 5);
  // limit 2 stops after revision 3's event... and revision 4 is never split.
  r = store_->ReadEvents(EventsRequest{2, 0, "a", "z", 2});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 2u);
  EXPECT_EQ(r->next_revision, 4);
  r = store_->ReadEvents(EventsRequest{4, 0, "a", "z", 1});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 2u);
  EXPECT_EQ(r->next_revision, 5);
}

TEST_F(MvccStoreTest, BatchGroupsEntriesAndReadsItsOwnWrites) {
  ApplyBatch b = store_->NewBatch();
  ASSERT_TRUE(b.Put({1, 1}, PutReq("a", "1")).ok());
  b.Skip({2, 1});
  PutRequest p = PutReq("a", "2");
  p.prev_kv = true;
  auto second = b.Put({3, 2}, p);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->response.prev_kv->value, "1");  // the earlier entry of the batch
  b.PutMeta({4, 2}, "lease/1", "ttl=5");
  EXPECT_EQ(b.CurrentRevision(), 3);
  EXPECT_EQ(b.Range(Get("a"))->kvs[0].value, "2");
  EXPECT_EQ(*b.GetMeta("lease/1").value(), "ttl=5");
  // Readers see nothing before Commit.
  EXPECT_TRUE(MustRange(Get("a")).kvs.empty());
  EXPECT_EQ(store_->Applied().index, 0u);
  ASSERT_TRUE(b.Commit().ok());
  EXPECT_EQ(MustRange(Get("a")).kvs[0].value, "2");
  EXPECT_EQ(store_->Applied(), (LogPosition{4, 2}));
  EXPECT_EQ(*store_->GetMeta("lease/1").value(), "ttl=5");

  // Entries with no effect still advance the index; meta survives a reopen.
  ApplyBatch c = store_->NewBatch();
  c.Skip({5, 2});
  c.PutMeta({6, 2}, "lease/2", "x");
  c.PutMeta({6, 2}, "member/1", "y");
  c.DeleteMeta({7, 3}, "lease/1");
  ASSERT_TRUE(c.Commit().ok());
  Reopen();
  EXPECT_EQ(store_->Applied(), (LogPosition{7, 3}));
  EXPECT_EQ(store_->DurableAppliedIndex(), 7u);
  auto leases = store_->ScanMeta("lease/");
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases->size(), 1u);
  EXPECT_EQ((*leases)[0], (std::pair<std::string, std::string>{"lease/2", "x"}));
  EXPECT_FALSE(store_->GetMeta("lease/1")->has_value());
  EXPECT_EQ(store_->CurrentRevision(), 3);
}

TEST_F(MvccStoreTest, UncommittedBatchIsDiscarded) {
  {
    ApplyBatch b = store_->NewBatch();
    ASSERT_TRUE(b.Put({1, 1}, PutReq("a", "1")).ok());
  }
  EXPECT_TRUE(MustRange(Get("a")).kvs.empty());
  EXPECT_EQ(store_->Applied().index, 0u);
  ApplyBatch b = store_->NewBatch();  // a new batch may start again at index 1
  ASSERT_TRUE(b.Put({1, 1}, PutReq("a", "2")).ok());
  ASSERT_TRUE(b.Commit().ok());
  EXPECT_EQ(MustRange(Get("a")).kvs[0].value, "2");
}

TEST_F(MvccStoreTest, DeleteKeysRevokesAtOneRevision) {
  MustPut("l/1", "a", 7);
  MustPut("l/2", "b", 7);
  ApplyBatch b = store_->NewBatch();
  auto r = b.DeleteKeys(Next(), {"l/1", "l/2", "l/absent"});
  ASSERT_TRUE(b.Commit().ok());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->response.deleted, 2);
  ASSERT_EQ(r->events.size(), 2u);
  EXPECT_EQ(r->events[0].kv.mod_revision, 4);
  EXPECT_EQ(r->events[1].kv.mod_revision, 4);
  EXPECT_EQ(r->events[1].prev_kv->lease, 7);
}

TEST_F(MvccStoreTest, ReadersSeeWholeBatchesAtOneRevision) {
  // A writer moves two keys in lockstep; every reader must see them equal.
  MustPut("x", "0");
  MustPut("y", "0");
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto r = store_->Range(Get("x", "z"));
      // After the first txn, both keys carry the revision of the last txn, which is the
      // revision the read reports.
      if (!r.ok() || r->kvs.size() != 2 || r->kvs[0].value != r->kvs[1].value ||
          (r->kvs[0].value != "0" && (r->kvs[0].mod_revision != r->header.revision ||
                                      r->kvs[1].mod_revision != r->header.revision))) {
        ++bad;
      }
      ++reads;
    }
  });
  while (reads.load() == 0) std::this_thread::yield();
  // At least 200 txns, and on until the reader has read a good number of times during them.
  int first_reads = reads.load();
  for (int i = 1; i <= 200 || (reads.load() < first_reads + 100 && i < 100000); ++i) {
    ApplyBatch b = store_->NewBatch();
    TxnRequest t;
    t.success = {MakeOp(PutReq("x", std::to_string(i))), MakeOp(PutReq("y", std::to_string(i)))};
    ASSERT_TRUE(b.Txn(Next(), t).ok());
    ASSERT_TRUE(b.Commit().ok());
  }
  stop = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(reads.load(), first_reads + 100);
}

TEST_F(MvccStoreTest, StateSurvivesReopen) {
  MustPut("a", "1");
  MustPut("b", "2");
  ASSERT_TRUE(Compact(2).ok());
  auto hash = store_->HashKV({});
  ASSERT_TRUE(hash.ok());
  Reopen();
  EXPECT_EQ(store_->CurrentRevision(), 3);
  EXPECT_EQ(store_->CompactRevision(), 2);
  EXPECT_EQ(store_->Applied().index, index_);
  auto again = store_->HashKV({});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->hash, hash->hash);
}

TEST_F(MvccStoreTest, OpenRejectsBadOptionsAndCorruptPointer) {
  StoreOptions none;
  EXPECT_EQ(Store::Open(none).status().code(), StatusCode::kInvalidArgument);
  store_.reset();
  ASSERT_TRUE(rocksdb::WriteStringToFile(env_.get(), "../../etc", dir_ + "/CURRENT_DB", true).ok());
  StoreOptions options;
  options.dir = dir_;
  options.env = env_.get();
  EXPECT_EQ(Store::Open(options).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace ballot::mvcc
