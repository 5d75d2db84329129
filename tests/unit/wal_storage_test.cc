#include "wal/wal_storage.h"

#include <gtest/gtest.h>

#include "base/random.h"
#include "consensus/memory_storage.h"
#include "wal/fault_injection_env.h"

namespace ballot::wal {
namespace {

using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;
using consensus::Index;
using consensus::MemoryStorage;
using consensus::Snapshot;
using consensus::Storage;
using consensus::Term;

const Identity kIdentity{1, 1, "raft", kFormatVersion};

std::unique_ptr<WalStorage> OpenStorage(FaultInjectionEnv* env) {
  auto wal = Wal::Open(env, "/d", WalOptions{2048}, kIdentity);
  EXPECT_TRUE(wal.ok()) << wal.status().ToString();
  return std::make_unique<WalStorage>(std::move(wal).value());
}

void ExpectSameAnswers(const Storage& want, const Storage& got) {
  ASSERT_EQ(got.FirstIndex(), want.FirstIndex());
  ASSERT_EQ(got.LastIndex(), want.LastIndex());
  EXPECT_EQ(got.InitialHardState(), want.InitialHardState());
  EXPECT_EQ(got.InitialConfState(), want.InitialConfState());
  EXPECT_EQ(got.GetSnapshot().meta, want.GetSnapshot().meta);
  for (Index i = 0; i <= want.LastIndex() + 2; ++i) {
    auto a = want.TermAt(i), b = got.TermAt(i);
    ASSERT_EQ(a.ok(), b.ok()) << "TermAt " << i;
    if (a.ok()) {
      EXPECT_EQ(*a, *b) << "TermAt " << i;
    }
  }
  for (Index lo = want.FirstIndex() - 1; lo <= want.LastIndex() + 1; ++lo) {
    for (Index hi = lo; hi <= want.LastIndex() + 2; ++hi) {
      for (uint64_t max_bytes : {uint64_t{1}, uint64_t{100}, UINT64_MAX}) {
        auto a = want.Entries(lo, hi, max_bytes), b = got.Entries(lo, hi, max_bytes);
        ASSERT_EQ(a.ok(), b.ok()) << lo << ".." << hi;
        if (a.ok()) {
          EXPECT_EQ(*a, *b) << lo << ".." << hi;
        } else {
          EXPECT_EQ(a.status().message(), b.status().message());
        }
      }
    }
  }
}

TEST(WalStorage, AnswersLikeMemoryStorageBeforeAndAfterRestart) {
  FaultInjectionEnv env;
  MemoryStorage memory;
  auto storage = OpenStorage(&env);
  Random random(3);
  Term term = 1;
  for (int step = 0; step < 60; ++step) {
    // Append a few entries, sometimes overwriting a suffix with a higher term.
    Index from = memory.LastIndex() + 1;
    if (random.Chance(0.2) && memory.LastIndex() >= memory.FirstIndex()) {
      from = memory.FirstIndex() + random.Uniform(memory.LastIndex() - memory.FirstIndex() + 1);
      ++term;
    }
    std::vector<Entry> entries;
    for (Index i = from; i < from + 1 + random.Uniform(4); ++i) {
      entries.push_back(Entry{term, i, EntryType::kNormal, std::string(random.Uniform(30), 'x')});
    }
    const HardState hs{term, 1, entries.back().index - 1};
    ASSERT_TRUE(memory.Append(entries).ok());
    memory.SetHardState(hs);
    ASSERT_TRUE(storage->Save(&hs, entries, random.Chance(0.5)).ok());
    if (random.Chance(0.1)) {
      // A snapshot at a committed index, then the log behind it compacted (MemoryStorage
      // keeps them apart; the WAL drops covered entries from memory at once).
      const Index at = memory.LastIndex() - random.Uniform(2);
      if (at >= memory.FirstIndex()) {
        ASSERT_TRUE(memory.CreateSnapshot(at, ConfState{{1, 2}, {}}, "img").ok());
        ASSERT_TRUE(memory.Compact(at).ok());
        ASSERT_TRUE(storage->SaveSnapshot(memory.GetSnapshot()).ok());
        ASSERT_TRUE(storage->wal()->Compact(at).ok());
      }
    }
    ExpectSameAnswers(memory, *storage);
  }
  ASSERT_TRUE(storage->wal()->Sync().ok());
  storage.reset();
  env.Crash(FaultInjectionEnv::CrashMode::kDropUnsynced);
  storage = OpenStorage(&env);
  storage->SetSnapshotData(memory.GetSnapshot().data);
  ExpectSameAnswers(memory, *storage);
  EXPECT_EQ(storage->GetSnapshot().data, memory.GetSnapshot().data);
}

TEST(WalStorage, BootstrapMembershipComesFromTheHostUntilASnapshot) {
  FaultInjectionEnv env;
  auto storage = OpenStorage(&env);
  storage->SetInitialConfState(ConfState{{1, 2, 3}, {}});
  EXPECT_EQ(storage->InitialConfState(), (ConfState{{1, 2, 3}, {}}));
  ASSERT_TRUE(storage->Save(nullptr, {Entry{1, 1, EntryType::kNormal, "a"}}, true).ok());
  Snapshot snap;
  snap.meta = {1, 1, ConfState{{1, 2}, {3}}};
  ASSERT_TRUE(storage->SaveSnapshot(snap).ok());
  EXPECT_EQ(storage->InitialConfState(), snap.meta.conf);
}

// After a restart the host gives a loader instead of the data: it runs once, only when the data
// is asked for; the metadata never needs it; a failed load leaves the data empty.
TEST(WalStorage, SnapshotDataIsLoadedOnlyWhenAskedFor) {
  FaultInjectionEnv env;
  auto storage = OpenStorage(&env);
  ASSERT_TRUE(storage->Save(nullptr, {Entry{1, 1, EntryType::kNormal, "a"}}, true).ok());
  Snapshot snap;
  snap.meta = {1, 1, ConfState{{1}, {}}};
  snap.data = "image";
  ASSERT_TRUE(storage->SaveSnapshot(snap).ok());
  int loads = 0;
  storage->SetSnapshotLoader([&](Index index) -> Result<std::string> {
    ++loads;
    EXPECT_EQ(index, 1u);
    return std::string("from file");
  });
  EXPECT_EQ(storage->GetSnapshotMeta(), snap.meta);
  EXPECT_EQ(storage->InitialConfState(), snap.meta.conf);
  EXPECT_EQ(loads, 0);
  EXPECT_EQ(storage->GetSnapshot().data, "from file");
  EXPECT_EQ(storage->GetSnapshot().data, "from file");
  EXPECT_EQ(loads, 1);

  storage->SetSnapshotLoader([&](Index) -> Result<std::string> {
    ++loads;
    return Status::DataLoss("checksum mismatch");
  });
  EXPECT_TRUE(storage->GetSnapshot().data.empty());
  EXPECT_EQ(storage->GetSnapshot().meta, snap.meta);
  EXPECT_EQ(loads, 2);  // Not retried.
  snap.meta.index = 1;
  snap.data = "new";
  ASSERT_TRUE(storage->SaveSnapshot(snap).ok());  // A saved snapshot with data replaces the loader.
  EXPECT_EQ(storage->GetSnapshot().data, "new");
  EXPECT_EQ(loads, 2);
}

}  // namespace
}  // namespace ballot::wal
