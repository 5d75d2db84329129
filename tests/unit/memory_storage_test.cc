#include "consensus/memory_storage.h"

#include <gtest/gtest.h>

namespace ballot::consensus {
namespace {

std::vector<Entry> Make(Index from, Index to, Term term) {
  std::vector<Entry> out;
  for (Index i = from; i <= to; ++i) out.push_back(Entry{term, i, EntryType::kNormal, "x"});
  return out;
}

TEST(MemoryStorage, EmptyLog) {
  MemoryStorage s;
  EXPECT_EQ(s.FirstIndex(), 1u);
  EXPECT_EQ(s.LastIndex(), 0u);
  EXPECT_EQ(*s.TermAt(0), 0u);
  EXPECT_TRUE(s.TermAt(1).status().IsOutOfRange());
}

TEST(MemoryStorage, AppendOverwritesSuffix) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Make(1, 5, 1)).ok());
  ASSERT_TRUE(s.Append(Make(3, 4, 2)).ok());
  EXPECT_EQ(s.LastIndex(), 4u);
  EXPECT_EQ(*s.TermAt(2), 1u);
  EXPECT_EQ(*s.TermAt(3), 2u);
  EXPECT_FALSE(s.Append(Make(7, 7, 2)).ok()) << "a gap must be refused";
}

TEST(MemoryStorage, EntriesRespectsMaxBytesButReturnsOne) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Make(1, 10, 1)).ok());
  auto all = s.Entries(1, 11, 1 << 20);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 10u);
  auto one = s.Entries(3, 11, 1);
  ASSERT_TRUE(one.ok());
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].index, 3u);
  EXPECT_TRUE(s.Entries(1, 12, 100).status().IsOutOfRange());
}

TEST(MemoryStorage, SnapshotAndCompact) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Make(1, 10, 3)).ok());
  ConfState conf{{1, 2, 3}, {}};
  ASSERT_TRUE(s.CreateSnapshot(6, conf, "image").ok());
  EXPECT_EQ(s.GetSnapshot().meta.index, 6u);
  EXPECT_EQ(s.FirstIndex(), 1u) << "creating a snapshot keeps the log";
  EXPECT_FALSE(s.Compact(7).ok()) << "compaction past the snapshot must be refused";
  ASSERT_TRUE(s.Compact(4).ok());
  EXPECT_EQ(s.FirstIndex(), 5u);
  EXPECT_EQ(*s.TermAt(4), 3u) << "the term of the last compacted entry stays known";
  EXPECT_TRUE(s.Entries(4, 6, 100).status().IsOutOfRange());
  EXPECT_EQ(s.InitialConfState(), conf);
  EXPECT_FALSE(s.Append(Make(3, 3, 4)).ok()) << "cannot overwrite compacted entries";
}

TEST(MemoryStorage, ApplySnapshotReplacesEverything) {
  MemoryStorage s;
  ASSERT_TRUE(s.Append(Make(1, 3, 1)).ok());
  Snapshot snap;
  snap.meta = SnapshotMeta{20, 4, ConfState{{1}, {2}}};
  snap.data = "state";
  ASSERT_TRUE(s.ApplySnapshot(snap).ok());
  EXPECT_EQ(s.FirstIndex(), 21u);
  EXPECT_EQ(s.LastIndex(), 20u);
  EXPECT_EQ(*s.TermAt(20), 4u);
  snap.meta.index = 10;
  EXPECT_FALSE(s.ApplySnapshot(snap).ok()) << "an older snapshot must be refused";
}

TEST(ConfChange, EncodeDecodeAndApply) {
  ConfChange cc{ConfChangeType::kAddLearner, 9, "peer-urls"};
  ConfChange back;
  ASSERT_TRUE(ConfChange::Decode(cc.Encode(), &back));
  EXPECT_EQ(back, cc);
  EXPECT_FALSE(ConfChange::Decode("short", &back));
  ConfState conf{{1, 2, 3}, {}};
  conf = ApplyConfChange(conf, cc);
  EXPECT_TRUE(conf.learners.count(9));
  conf = ApplyConfChange(conf, ConfChange{ConfChangeType::kAddVoter, 9, ""});
  EXPECT_TRUE(conf.voters.count(9));
  EXPECT_FALSE(conf.learners.count(9));
  conf = ApplyConfChange(conf, ConfChange{ConfChangeType::kRemove, 2, ""});
  EXPECT_EQ(conf.voters, (std::set<NodeId>{1, 3, 9}));
}

}  // namespace
}  // namespace ballot::consensus
