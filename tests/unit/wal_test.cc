#include "wal/wal.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "base/random.h"

namespace ballot::wal {
namespace {

using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;
using consensus::Index;
using consensus::SnapshotMeta;
using consensus::Term;

const Identity kIdentity{11, 1, "raft", kFormatVersion};

std::vector<Entry> Make(Index from, Index to, Term term, size_t data_bytes = 8) {
  std::vector<Entry> out;
  for (Index i = from; i <= to; ++i) {
    out.push_back(Entry{term, i, EntryType::kNormal, std::string(data_bytes, 'a' + i % 26)});
  }
  return out;
}

std::vector<Entry> All(const Wal& wal) {
  auto entries = wal.Entries(wal.first_index(), wal.last_index() + 1, UINT64_MAX);
  EXPECT_TRUE(entries.ok()) << entries.status().ToString();
  return entries.ok() ? *entries : std::vector<Entry>{};
}

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void WriteBytes(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

class WalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ballot-wal-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Result<std::unique_ptr<Wal>> Open(const Identity& id = kIdentity) {
    return Wal::Open(Env::Default(), dir_, options_, id);
  }
  std::unique_ptr<Wal> MustOpen() {
    auto wal = Open();
    EXPECT_TRUE(wal.ok()) << wal.status().ToString();
    return wal.ok() ? std::move(wal).value() : nullptr;
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
  WalOptions options_{.segment_bytes = 4096};
};

TEST_F(WalTest, NewDirectoryStartsEmptyWithOneSegment) {
  auto wal = MustOpen();
  EXPECT_EQ(wal->first_index(), 1u);
  EXPECT_EQ(wal->last_index(), 0u);
  EXPECT_TRUE(wal->hard_state().IsEmpty());
  EXPECT_EQ(wal->SegmentNames(), std::vector<std::string>{"0000000000000001.wal"});
  EXPECT_EQ(std::filesystem::file_size(Path("0000000000000001.wal")), 4096u) << "preallocated";
}

TEST_F(WalTest, EveryRecordTypeSurvivesACleanClose) {
  const HardState hs{3, 2, 4};
  const SnapshotMeta meta{2, 1, ConfState{{1, 2, 3}, {4}}};
  {
    auto wal = MustOpen();
    ASSERT_TRUE(wal->Save(&hs, Make(1, 5, 1), true).ok());
    ASSERT_TRUE(wal->SaveSnapshot(meta).ok());
    ASSERT_TRUE(wal->Sync().ok());
  }
  auto wal = MustOpen();
  EXPECT_EQ(wal->hard_state(), hs);
  EXPECT_EQ(wal->snapshot(), meta);
  EXPECT_EQ(wal->first_index(), 3u);
  EXPECT_EQ(All(*wal), Make(3, 5, 1));
  EXPECT_EQ(*wal->TermAt(2), 1u);
  EXPECT_FALSE(wal->recovery().truncated);
}

TEST_F(WalTest, OverwriteTruncatesTheSuffixAndHardStateLastWins) {
  {
    auto wal = MustOpen();
    const HardState first{1, 1, 0}, second{2, 3, 2};
    ASSERT_TRUE(wal->Save(&first, Make(1, 6, 1), false).ok());
    ASSERT_TRUE(wal->Save(&second, Make(3, 4, 2), true).ok());
    EXPECT_EQ(wal->last_index(), 4u);
  }
  auto wal = MustOpen();
  std::vector<Entry> want = Make(1, 2, 1);
  for (const Entry& e : Make(3, 4, 2)) want.push_back(e);
  EXPECT_EQ(All(*wal), want);
  EXPECT_EQ(wal->hard_state(), (HardState{2, 3, 2}));
  // The reopened log keeps going after recovery.
  ASSERT_TRUE(wal->Save(nullptr, Make(5, 5, 2), true).ok());
  wal.reset();
  EXPECT_EQ(MustOpen()->last_index(), 5u);
}

TEST_F(WalTest, RefusesGapsAndIndexesTheSnapshotCovers) {
  auto wal = MustOpen();
  ASSERT_TRUE(wal->Save(nullptr, Make(1, 3, 1), false).ok());
  EXPECT_EQ(wal->Save(nullptr, Make(5, 5, 1), false).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(wal->SaveSnapshot(SnapshotMeta{2, 1, {}}).ok());
  EXPECT_EQ(wal->Save(nullptr, Make(2, 2, 1), false).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(wal->SaveSnapshot(SnapshotMeta{1, 1, {}}).code(), StatusCode::kFailedPrecondition);
}

TEST_F(WalTest, RollsOverSegmentsAndRecoversAcrossThem) {
  const HardState hs{7, 1, 150};
  {
    auto wal = MustOpen();
    for (Index i = 1; i <= 200; i += 10) {
      ASSERT_TRUE(wal->Save(&hs, Make(i, i + 9, 7, 100), false).ok());
    }
    ASSERT_TRUE(wal->Sync().ok());
    EXPECT_GT(wal->SegmentNames().size(), 3u);
  }
  auto wal = MustOpen();
  EXPECT_EQ(All(*wal), Make(1, 200, 7, 100));
  EXPECT_EQ(wal->hard_state(), hs);
  // Segment names are the first index each segment was started at, in order.
  Index prev = 0;
  for (const std::string& name : wal->SegmentNames()) {
    const Index first = std::stoull(name.substr(0, 16), nullptr, 16);
    EXPECT_GT(first, prev);
    prev = first;
  }
}

TEST_F(WalTest, CompactionRemovesOnlyWholeSegmentsTheSnapshotCovers) {
  auto wal = MustOpen();
  const HardState hs{1, 1, 1};
  ASSERT_TRUE(wal->Save(&hs, Make(1, 200, 1, 100), true).ok());
  const std::vector<std::string> before = wal->SegmentNames();
  ASSERT_GT(before.size(), 4u);
  EXPECT_EQ(wal->Compact(100).code(), StatusCode::kFailedPrecondition) << "past the snapshot";
  ASSERT_TRUE(wal->SaveSnapshot(SnapshotMeta{100, 1, ConfState{{1}, {}}}).ok());
  ASSERT_TRUE(wal->Compact(100).ok());
  const std::vector<std::string> after = wal->SegmentNames();
  ASSERT_LT(after.size(), before.size());
  // Every removed segment held only entries <= 100; the first kept one starts at or before 101.
  const Index first_kept = std::stoull(after.front().substr(0, 16), nullptr, 16);
  EXPECT_LE(first_kept, 101u);
  const size_t removed = before.size() - after.size();
  const Index next_after_removed = std::stoull(before[removed].substr(0, 16), nullptr, 16);
  EXPECT_EQ(next_after_removed, first_kept);
  for (size_t i = 0; i < removed; ++i) EXPECT_FALSE(std::filesystem::exists(Path(before[i])));
  wal.reset();
  wal = MustOpen();
  EXPECT_EQ(wal->snapshot().index, 100u);
  EXPECT_EQ(All(*wal), Make(101, 200, 1, 100));
  EXPECT_EQ(wal->hard_state(), hs);
  EXPECT_EQ(*wal->TermAt(100), 1u);
}

TEST_F(WalTest, CompactionWithAnOlderSnapshotInTheKeptSegmentRecovers) {
  auto wal = MustOpen();
  ASSERT_TRUE(wal->Save(nullptr, Make(1, 10, 1, 100), true).ok());
  ASSERT_TRUE(wal->SaveSnapshot(SnapshotMeta{5, 1, {}}).ok());
  ASSERT_TRUE(wal->Save(nullptr, Make(11, 200, 1, 100), true).ok());
  ASSERT_TRUE(wal->SaveSnapshot(SnapshotMeta{150, 1, {}}).ok());
  ASSERT_TRUE(wal->Compact(150).ok());
  wal.reset();
  wal = MustOpen();
  EXPECT_EQ(wal->first_index(), 151u);
  EXPECT_EQ(All(*wal), Make(151, 200, 1, 100));
}

TEST_F(WalTest, TornLastRecordIsTruncatedAtEveryCutPoint) {
  { ASSERT_TRUE(MustOpen()->Save(nullptr, Make(1, 3, 1), true).ok()); }
  const std::string path = Path("0000000000000001.wal");
  const std::string full = ReadBytes(path);
  const uint64_t header_bytes =
      kRecordHeaderBytes + EncodeSegmentHeader(SegmentHeader{kIdentity, 1}).size();
  const uint64_t entry_bytes = kRecordHeaderBytes + EncodeEntry(Make(1, 1, 1)[0]).size();
  const uint64_t last_offset = header_bytes + 2 * entry_bytes;
  const uint64_t last_bytes = kRecordHeaderBytes + EncodeEntry(Make(3, 3, 1)[0]).size();
  for (uint64_t cut = 0; cut < last_bytes; ++cut) {
    for (bool short_file : {false, true}) {
      std::string torn = full;
      if (short_file) {
        torn.resize(last_offset + cut);
      } else {
        std::fill(torn.begin() + static_cast<std::ptrdiff_t>(last_offset + cut),
                  torn.begin() + static_cast<std::ptrdiff_t>(last_offset + last_bytes), '\0');
      }
      WriteBytes(path, torn);
      auto wal = Open();
      ASSERT_TRUE(wal.ok()) << "cut " << cut << ": " << wal.status().ToString();
      EXPECT_EQ(All(**wal), Make(1, 2, 1)) << "cut " << cut;
      EXPECT_EQ((*wal)->recovery().truncated, cut > 0) << "cut " << cut;
      if (cut > 0) {
        EXPECT_EQ((*wal)->recovery().offset, last_offset);
      }
      // Writing after the truncation gives a clean log.
      ASSERT_TRUE((*wal)->Save(nullptr, Make(3, 3, 2), true).ok());
      wal->reset();
      auto again = MustOpen();
      EXPECT_EQ(again->last_index(), 3u);
      EXPECT_EQ(*again->TermAt(3), 2u);
    }
  }
}

TEST_F(WalTest, CorruptionInTheMiddleNamesFileAndOffset) {
  { ASSERT_TRUE(MustOpen()->Save(nullptr, Make(1, 5, 1), true).ok()); }
  const std::string path = Path("0000000000000001.wal");
  std::string data = ReadBytes(path);
  // The second entry record: after the header record and the first entry record.
  const uint64_t header_bytes =
      kRecordHeaderBytes + EncodeSegmentHeader(SegmentHeader{kIdentity, 1}).size();
  const uint64_t entry_bytes = kRecordHeaderBytes + EncodeEntry(Make(1, 1, 1)[0]).size();
  const uint64_t second = header_bytes + entry_bytes;
  data[second + kRecordHeaderBytes + 12] ^= 0x01;
  WriteBytes(path, data);
  auto wal = Open();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(wal.status().message().find(path + " at byte " + std::to_string(second)),
            std::string::npos)
      << wal.status().ToString();
}

TEST_F(WalTest, DamageInAnEarlierSegmentIsNeverRepaired) {
  {
    auto wal = MustOpen();
    ASSERT_TRUE(wal->Save(nullptr, Make(1, 100, 1, 100), true).ok());
  }
  const std::vector<std::string> names = MustOpen()->SegmentNames();
  ASSERT_GE(names.size(), 2u);
  const std::string first = Path(names[0]);
  std::string data = ReadBytes(first);
  data.resize(data.size() - 5);  // Torn, but not the last segment.
  WriteBytes(first, data);
  auto wal = Open();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(wal.status().message().find(first), std::string::npos) << wal.status().ToString();
}

TEST_F(WalTest, AMissingSegmentIsAGap) {
  { ASSERT_TRUE(MustOpen()->Save(nullptr, Make(1, 100, 1, 100), true).ok()); }
  const std::vector<std::string> names = MustOpen()->SegmentNames();
  ASSERT_GE(names.size(), 3u);
  std::filesystem::remove(Path(names[1]));
  auto wal = Open();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(wal.status().message().find(names[2]), std::string::npos) << wal.status().ToString();
}

TEST_F(WalTest, ASegmentUnderAnotherNameIsRefused) {
  { ASSERT_TRUE(MustOpen()->Save(nullptr, Make(1, 100, 1, 100), true).ok()); }
  const std::vector<std::string> names = MustOpen()->SegmentNames();
  std::filesystem::rename(Path(names.back()), Path(Wal::SegmentName(1000)));
  auto wal = Open();
  ASSERT_FALSE(wal.ok());
  EXPECT_EQ(wal.status().code(), StatusCode::kDataLoss) << wal.status().ToString();
}

TEST_F(WalTest, AnotherIdentityIsRefusedNamingBoth) {
  { ASSERT_TRUE(MustOpen()->Save(nullptr, Make(1, 1, 1), true).ok()); }
  for (const Identity& other :
       {Identity{12, 1, "raft"}, Identity{11, 2, "raft"}, Identity{11, 1, "paxos"}}) {
    auto wal = Open(other);
    ASSERT_FALSE(wal.ok());
    EXPECT_EQ(wal.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(wal.status().message().find(kIdentity.ToString()), std::string::npos);
    EXPECT_NE(wal.status().message().find(other.ToString()), std::string::npos);
  }
  EXPECT_TRUE(Open().ok());
}

TEST_F(WalTest, RandomDamageNeverCrashesOpen) {
  {
    auto wal = MustOpen();
    const HardState hs{2, 1, 3};
    ASSERT_TRUE(wal->Save(&hs, Make(1, 30, 1, 100), false).ok());
    ASSERT_TRUE(wal->SaveSnapshot(SnapshotMeta{10, 1, ConfState{{1, 2}, {3}}}).ok());
    ASSERT_TRUE(wal->Save(&hs, Make(25, 40, 2, 100), true).ok());
  }
  std::map<std::string, std::string> original;
  for (const auto& f : std::filesystem::directory_iterator(dir_)) {
    original[f.path().string()] = ReadBytes(f.path().string());
  }
  Random random(7);
  int ok = 0, failed = 0;
  for (int round = 0; round < 300; ++round) {
    for (const auto& [path, data] : original) WriteBytes(path, data);
    auto it = original.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(random.Uniform(original.size())));
    std::string data = it->second;
    const uint64_t used = std::min<uint64_t>(data.size(), 2000);
    switch (random.Uniform(3)) {
      case 0:
        for (int i = 0; i < 3; ++i) {
          data[random.Uniform(used)] ^= static_cast<char>(1 + random.Uniform(255));
        }
        break;
      case 1:
        data.resize(random.Uniform(data.size() + 1));
        break;
      default:
        for (uint64_t i = random.Uniform(used); i < used; ++i) {
          data[i] = static_cast<char>(random.Next());
        }
    }
    WriteBytes(it->first, data);
    auto wal = Open();
    (wal.ok() ? ok : failed)++;
  }
  EXPECT_GT(failed, 0);
  EXPECT_GT(ok, 0);
}

}  // namespace
}  // namespace ballot::wal
