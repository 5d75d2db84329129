// WalOptions::on_sync: the host's fsync-latency hook sees every fdatasync of segment records.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>

#include "wal/wal.h"

namespace ballot::wal {
namespace {

using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;

TEST(WalSyncHook, CalledOncePerSyncWithItsDuration) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("ballot-wal-hook-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::atomic<int> calls{0};
  std::atomic<int64_t> total_ns{0};
  WalOptions options;
  options.segment_bytes = 4096;  // Small: the appends below roll segments too.
  options.on_sync = [&](std::chrono::nanoseconds d) {
    ++calls;
    total_ns += d.count();
  };
  const Identity identity{11, 1, "raft", kFormatVersion};
  auto wal = Wal::Open(Env::Default(), dir.string(), options, identity);
  ASSERT_TRUE(wal.ok()) << wal.status().ToString();
  const int after_open = calls.load();

  HardState hs{1, 0, 0};
  ASSERT_TRUE((*wal)->Save(&hs, {Entry{1, 1, EntryType::kNormal, "x"}}, /*sync=*/true).ok());
  EXPECT_EQ(calls.load(), after_open + 1);
  ASSERT_TRUE((*wal)->Save(nullptr, {Entry{1, 2, EntryType::kNormal, "y"}}, /*sync=*/false).ok());
  EXPECT_EQ(calls.load(), after_open + 1);  // Nothing synced yet.
  ASSERT_TRUE((*wal)->Sync().ok());
  EXPECT_EQ(calls.load(), after_open + 2);
  ASSERT_TRUE((*wal)->Sync().ok());  // Nothing new written: no fdatasync.
  EXPECT_EQ(calls.load(), after_open + 2);

  // Roll over several segments: each roll syncs the full segment first.
  const int before_roll = calls.load();
  const size_t segments_before = (*wal)->SegmentNames().size();
  for (consensus::Index i = 3; i < 40; ++i) {
    ASSERT_TRUE((*wal)
                    ->Save(nullptr, {Entry{1, i, EntryType::kNormal, std::string(500, 'z')}}, false)
                    .ok());
  }
  const size_t rolls = (*wal)->SegmentNames().size() - segments_before;
  ASSERT_GT(rolls, 0u);
  EXPECT_EQ(calls.load(), before_roll + static_cast<int>(rolls));
  EXPECT_GT(total_ns.load(), 0);
  wal->reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ballot::wal
