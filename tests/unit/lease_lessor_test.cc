// The lessor: grants, revocation, attachment, expiry on the primary only, promotion, checkpoints.
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lease/lessor.h"

namespace ballot::lease {
namespace {

LessorOptions Options(int64_t min_ttl_s = 1, int64_t checkpoint_interval_ms = 0) {
  LessorOptions options;
  options.min_ttl_s = min_ttl_s;
  options.checkpoint_interval_ms = checkpoint_interval_ms;
  options.expired_retry_ms = 3000;
  return options;
}

TEST(LeaseLessorTest, GrantAppliesTheMinimumTtlAndRefusesBadRequests) {
  Lessor lessor(Options(/*min_ttl_s=*/5));
  auto record = lessor.Grant(7, 2, 0);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(*record, (LeaseRecord{7, 5, 0}));
  EXPECT_EQ(lessor.Grant(8, 60, 0)->ttl_s, 60);

  auto exists = lessor.Grant(7, 10, 0);
  EXPECT_EQ(exists.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(exists.status().message(), "etcdserver: lease already exists");
  auto zero = lessor.Grant(0, 10, 0);
  EXPECT_EQ(zero.status().message(), "etcdserver: requested lease not found");
  auto large = lessor.Grant(9, kLeaseTtlSecondsMax + 1, 0);
  EXPECT_EQ(large.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(large.status().message(), "etcdserver: too large lease TTL");
  EXPECT_TRUE(lessor.Grant(9, kLeaseTtlSecondsMax, 0).ok());
  EXPECT_EQ(lessor.Leases(), (std::vector<LeaseId>{7, 8, 9}));
}

TEST(LeaseLessorTest, RevokeReturnsTheAttachedKeysAndForgetsThem) {
  Lessor lessor(Options());
  ASSERT_TRUE(lessor.Grant(1, 10, 0).ok());
  ASSERT_TRUE(lessor.Grant(2, 10, 0).ok());
  ASSERT_TRUE(lessor.Attach("b", 1).ok());
  ASSERT_TRUE(lessor.Attach("a", 1).ok());
  ASSERT_TRUE(lessor.Attach("c", 2).ok());
  auto keys = lessor.Revoke(1);
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, (std::vector<std::string>{"a", "b"}));
  EXPECT_FALSE(lessor.Exists(1));
  EXPECT_FALSE(lessor.LeaseOfKey("a").has_value());
  EXPECT_EQ(lessor.LeaseOfKey("c"), 2);
  EXPECT_TRUE(lessor.Revoke(1).status().IsNotFound());
  EXPECT_TRUE(lessor.Attach("a", 1).IsNotFound());
}

TEST(LeaseLessorTest, AttachMovesAKeyAndDetachNeedsTheRightLease) {
  Lessor lessor(Options());
  lessor.Promote(0, 0);
  ASSERT_TRUE(lessor.Grant(1, 10, 0).ok());
  ASSERT_TRUE(lessor.Grant(2, 10, 0).ok());
  ASSERT_TRUE(lessor.Attach("k", 1).ok());
  ASSERT_TRUE(lessor.Attach("k", 1).ok());  // Idempotent.
  ASSERT_TRUE(lessor.Attach("k", 2).ok());  // A put with another lease moves the key.
  EXPECT_TRUE(lessor.TimeToLive(1, 0, true)->keys.empty());
  EXPECT_EQ(lessor.TimeToLive(2, 0, true)->keys, (std::vector<std::string>{"k"}));
  lessor.Detach("k", 1);  // Not its lease: nothing happens.
  EXPECT_EQ(lessor.LeaseOfKey("k"), 2);
  lessor.Detach("k", 2);
  EXPECT_FALSE(lessor.LeaseOfKey("k").has_value());
  EXPECT_TRUE(lessor.TimeToLive(2, 0, true)->keys.empty());
  EXPECT_EQ(*lessor.Revoke(2), std::vector<std::string>());
}

mvcc::Event PutEvent(const std::string& key, LeaseId lease, std::optional<LeaseId> prev) {
  mvcc::Event e;
  e.kv.key = key;
  e.kv.lease = lease;
  if (prev) {
    e.prev_kv = mvcc::KeyValue{};
    e.prev_kv->key = key;
    e.prev_kv->lease = *prev;
  }
  return e;
}

TEST(LeaseLessorTest, ApplyEventsFollowsPutsAndDeletes) {
  Lessor lessor(Options());
  ASSERT_TRUE(lessor.Grant(1, 10, 0).ok());
  ASSERT_TRUE(lessor.Grant(2, 10, 0).ok());
  std::vector<mvcc::Event> revision = {PutEvent("a", 1, std::nullopt), PutEvent("b", 1, {}),
                                       PutEvent("c", 2, std::nullopt)};
  ASSERT_TRUE(lessor.ApplyEvents(revision).ok());
  EXPECT_EQ(lessor.LeaseOfKey("a"), 1);
  // b is put again without a lease; c moves to lease 1; a is deleted.
  mvcc::Event del;
  del.type = mvcc::EventType::kDelete;
  del.kv.key = "a";
  del.prev_kv = mvcc::KeyValue{};
  del.prev_kv->lease = 1;
  revision = {PutEvent("b", 0, 1), PutEvent("c", 1, 2), del};
  ASSERT_TRUE(lessor.ApplyEvents(revision).ok());
  EXPECT_FALSE(lessor.LeaseOfKey("a").has_value());
  EXPECT_FALSE(lessor.LeaseOfKey("b").has_value());
  EXPECT_EQ(lessor.LeaseOfKey("c"), 1);
  EXPECT_EQ(*lessor.Revoke(1), (std::vector<std::string>{"c"}));
  EXPECT_EQ(*lessor.Revoke(2), std::vector<std::string>());
  // A put naming a lease that does not exist: the error, and the other events still count.
  ASSERT_TRUE(lessor.Grant(3, 10, 0).ok());
  revision = {PutEvent("x", 99, std::nullopt), PutEvent("y", 3, std::nullopt)};
  EXPECT_TRUE(lessor.ApplyEvents(revision).IsNotFound());
  EXPECT_EQ(lessor.LeaseOfKey("y"), 3);
  EXPECT_FALSE(lessor.LeaseOfKey("x").has_value());
}

TEST(LeaseLessorTest, OnlyThePrimaryRenewsAndAnswersTimeToLive) {
  Lessor lessor(Options());
  ASSERT_TRUE(lessor.Grant(1, 10, 0).ok());
  EXPECT_TRUE(IsNotPrimary(lessor.KeepAlive(1, 0).status()));
  EXPECT_EQ(lessor.KeepAlive(1, 0).status().message(), "etcdserver: not leader");
  EXPECT_TRUE(IsNotPrimary(lessor.TimeToLive(1, 0, false).status()));
  lessor.Promote(0, 0);
  EXPECT_EQ(*lessor.KeepAlive(1, 0), 10);
  EXPECT_TRUE(lessor.KeepAlive(2, 0).status().IsNotFound());
  EXPECT_TRUE(lessor.TimeToLive(2, 0, false).status().IsNotFound());
}

TEST(LeaseLessorTest, ExpiryFollowsTheInjectedClock) {
  Lessor lessor(Options());
  lessor.Promote(0, 0);
  ASSERT_TRUE(lessor.Grant(1, 10, 1000).ok());  // Expires at 11000.
  ASSERT_TRUE(lessor.Grant(2, 5, 1000).ok());   // Expires at 6000.
  EXPECT_TRUE(lessor.Expired(5999, 10).empty());
  auto info = lessor.TimeToLive(2, 3500, false);
  EXPECT_EQ(info->granted_ttl_s, 5);
  EXPECT_EQ(info->remaining_ttl_s, 2);  // 2.5 s, truncated like etcd.
  EXPECT_EQ(lessor.Expired(6000, 10), (std::vector<LeaseId>{2}));
  // Returned once; again only after the retry interval, in case the revocation was lost.
  EXPECT_TRUE(lessor.Expired(6001, 10).empty());
  EXPECT_EQ(lessor.Expired(9000, 10), (std::vector<LeaseId>{2}));
  // An expired lease cannot be renewed: its revocation is on its way.
  EXPECT_TRUE(lessor.KeepAlive(2, 9000).status().IsNotFound());
  EXPECT_EQ(lessor.TimeToLive(2, 9000, false)->remaining_ttl_s, 0);
  // A renewal pushes the expiry back.
  EXPECT_EQ(*lessor.KeepAlive(1, 10000), 10);
  EXPECT_EQ(lessor.Expired(19999, 10), (std::vector<LeaseId>{2}));
  EXPECT_EQ(lessor.Expired(25000, 10), (std::vector<LeaseId>{1, 2}));  // By due time.
  // The lessor never deletes by itself: both leases live until revoked through the log.
  EXPECT_EQ(lessor.Leases().size(), 2u);
  ASSERT_TRUE(lessor.Revoke(2).ok());
  EXPECT_EQ(lessor.Expired(40000, 10), (std::vector<LeaseId>{1}));
}

TEST(LeaseLessorTest, ExpiredIsBoundedAndEarliestFirst) {
  Lessor lessor(Options());
  lessor.Promote(0, 0);
  for (LeaseId id = 1; id <= 10; ++id) ASSERT_TRUE(lessor.Grant(id, 11 - id, 0).ok());
  EXPECT_EQ(lessor.Expired(100000, 3), (std::vector<LeaseId>{10, 9, 8}));
  EXPECT_EQ(lessor.Expired(100000, 3), (std::vector<LeaseId>{7, 6, 5}));
}

TEST(LeaseLessorTest, DemoteStopsExpiryAndPromoteExtends) {
  Lessor lessor(Options());
  lessor.Promote(0, 0);
  ASSERT_TRUE(lessor.Grant(1, 10, 0).ok());
  lessor.Demote();
  EXPECT_FALSE(lessor.primary());
  EXPECT_TRUE(lessor.Expired(1'000'000, 10).empty());  // A follower never expires anything.
  // A new term: the full TTL again, plus the extension (etcd's Promote(electionTimeout)).
  lessor.Promote(1'000'000, 2000);
  EXPECT_TRUE(lessor.Expired(1'011'999, 10).empty());
  EXPECT_EQ(lessor.Expired(1'012'000, 10), (std::vector<LeaseId>{1}));
}

TEST(LeaseLessorTest, GrantOnAFollowerNeverExpiresUntilPromoted) {
  Lessor lessor(Options());
  ASSERT_TRUE(lessor.Grant(1, 10, 0).ok());
  EXPECT_TRUE(lessor.Expired(1'000'000, 10).empty());
  lessor.Promote(2'000'000, 500);
  EXPECT_TRUE(lessor.Expired(2'010'499, 10).empty());
  EXPECT_EQ(lessor.Expired(2'010'500, 10), (std::vector<LeaseId>{1}));
}

TEST(LeaseLessorTest, CheckpointsOfLongLeasesThenPromoteUsesThem) {
  Lessor lessor(Options(1, /*checkpoint_interval_ms=*/60'000));
  lessor.Promote(0, 0);
  ASSERT_TRUE(lessor.Grant(1, 600, 0).ok());  // Long: checkpointed.
  ASSERT_TRUE(lessor.Grant(2, 30, 0).ok());   // Shorter than one interval: never.
  EXPECT_TRUE(lessor.Checkpoints(59'999, 100).empty());
  auto due = lessor.Checkpoints(60'000, 100);
  EXPECT_EQ(due, (std::vector<LeaseCheckpoint>{{1, 540}}));
  EXPECT_TRUE(lessor.Checkpoints(60'001, 100).empty());  // Next one an interval later.
  EXPECT_EQ(lessor.Checkpoints(120'000, 100), (std::vector<LeaseCheckpoint>{{1, 480}}));
  // Applied through the log (on every member).
  auto record = lessor.Checkpoint(1, 480);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(*record, (LeaseRecord{1, 600, 480}));
  EXPECT_TRUE(lessor.Checkpoint(99, 10).status().IsNotFound());
  // Leadership moves: the new primary uses the checkpointed 480 s, not the granted 600 s.
  lessor.Demote();
  lessor.Promote(130'000, 1000);
  EXPECT_TRUE(lessor.Expired(130'000 + 1000 + 480'000 - 1, 10).size() == 1u);  // Lease 2.
  EXPECT_EQ(lessor.Expired(130'000 + 1000 + 480'000, 10), (std::vector<LeaseId>{1}));
}

TEST(LeaseLessorTest, RenewalClearsAStaleCheckpoint) {
  Lessor lessor(Options(1, 60'000));
  lessor.Promote(0, 0);
  ASSERT_TRUE(lessor.Grant(1, 600, 0).ok());
  ASSERT_TRUE(lessor.Checkpoint(1, 100).ok());
  ASSERT_TRUE(lessor.KeepAlive(1, 5000).ok());
  // Etcd proposes a checkpoint of 0 at once, so a later leader uses the full TTL.
  EXPECT_EQ(lessor.Checkpoints(5000, 10), (std::vector<LeaseCheckpoint>{{1, 0}}));
  ASSERT_TRUE(lessor.Checkpoint(1, 0).ok());
  EXPECT_EQ(lessor.Record(1)->remaining_ttl_s, 0);
  lessor.Demote();
  lessor.Promote(10'000, 0);
  EXPECT_TRUE(lessor.Expired(10'000 + 600'000 - 1, 10).empty());
}

TEST(LeaseLessorTest, CheckpointsAreBounded) {
  Lessor lessor(Options(1, 1000));
  lessor.Promote(0, 0);
  for (LeaseId id = 1; id <= 5; ++id) ASSERT_TRUE(lessor.Grant(id, 100, 0).ok());
  EXPECT_EQ(lessor.Checkpoints(1000, 2).size(), 2u);
  EXPECT_EQ(lessor.Checkpoints(1000, 10).size(), 3u);
  EXPECT_TRUE(lessor.Checkpoints(1000, 10).empty());
  Lessor disabled(Options(1, /*checkpoint_interval_ms=*/0));
  disabled.Promote(0, 0);
  ASSERT_TRUE(disabled.Grant(1, 100, 0).ok());
  EXPECT_TRUE(disabled.Checkpoints(1'000'000, 10).empty());
}

TEST(LeaseLessorTest, RestoreRebuildsLeasesAndKeysAndReportsOrphans) {
  Lessor lessor(Options());
  lessor.Promote(0, 0);
  ASSERT_TRUE(lessor.Grant(50, 10, 0).ok());  // Replaced by the restore.
  auto report = lessor.Restore({{1, 10, 0}, {2, 100, 40}},
                               {{"a", 1}, {"b", 2}, {"c", 2}, {"d", 3}, {"e", 0}});
  ASSERT_TRUE(report.ok());
  ASSERT_EQ(report->orphan_keys.size(), 1u);
  EXPECT_EQ(report->orphan_keys[0], (std::pair<std::string, LeaseId>{"d", 3}));
  EXPECT_EQ(lessor.Leases(), (std::vector<LeaseId>{1, 2}));
  EXPECT_FALSE(lessor.primary());
  EXPECT_EQ(lessor.Record(2), (LeaseRecord{2, 100, 40}));
  lessor.Promote(0, 0);
  EXPECT_EQ(lessor.TimeToLive(2, 0, true)->keys, (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(lessor.TimeToLive(2, 0, false)->remaining_ttl_s, 40);  // The checkpoint counts.
  EXPECT_EQ(*lessor.Revoke(1), (std::vector<std::string>{"a"}));

  auto dup = lessor.Restore({{1, 10, 0}, {1, 20, 0}}, {});
  EXPECT_EQ(dup.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(lessor.Leases(), (std::vector<LeaseId>{2}));  // A failed restore changes nothing.
  EXPECT_EQ(lessor.Restore({{1, 0, 0}}, {}).status().code(), StatusCode::kDataLoss);
}

TEST(LeaseLessorTest, IdGeneratorGivesDistinctPositiveIds) {
  LeaseIdGenerator a(1, 1'700'000'000'000);
  LeaseIdGenerator b(2, 1'700'000'000'000);
  std::set<LeaseId> seen;
  for (int i = 0; i < 10000; ++i) {
    for (LeaseId id : {a.Next(), b.Next()}) {
      EXPECT_GT(id, 0);
      EXPECT_TRUE(seen.insert(id).second) << id;
    }
  }
  // A member restarted a second later does not repeat its earlier ids.
  LeaseIdGenerator a2(1, 1'700'000'001'000);
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(seen.contains(a2.Next()));
  // The highest member id bit would make the id negative: it is cleared.
  LeaseIdGenerator high(0xffff, 0);
  EXPECT_GT(high.Next(), 0);
}

TEST(LeaseLessorTest, ConcurrentKeepAlivesWhileApplying) {
  Lessor lessor(Options());
  lessor.Promote(0, 0);
  for (LeaseId id = 1; id <= 20; ++id) ASSERT_TRUE(lessor.Grant(id, 10, 0).ok());
  std::thread renewer([&] {
    for (int i = 0; i < 5000; ++i) (void)lessor.KeepAlive(1 + i % 20, i);
  });
  for (int i = 0; i < 5000; ++i) {
    ASSERT_TRUE(lessor.Attach("k" + std::to_string(i % 100), 1 + i % 20).ok());
    (void)lessor.Expired(i, 5);
  }
  renewer.join();
  size_t keys = 0;
  for (LeaseId id : lessor.Leases()) keys += lessor.TimeToLive(id, 5000, true)->keys.size();
  EXPECT_EQ(keys, 100u);
}

}  // namespace
}  // namespace ballot::lease
