// Snapshot files: a member's own snapshot streamed into a .part file, then published.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "server/snapshot_file.h"
#include "server_test_util.h"

namespace ballot::server {
namespace {

namespace fs = std::filesystem;

// Hands out `pieces` one by one; then, with `fail`, an error instead of the end.
SnapshotSource Pieces(std::vector<std::string> pieces, bool fail = false) {
  return [pieces = std::move(pieces), next = size_t{0},
          fail](std::string* chunk) mutable -> Result<bool> {
    if (next < pieces.size()) {
      *chunk = pieces[next++];
      return true;
    }
    if (fail) return Status::Internal("the store could not be read");
    return false;
  };
}

TEST(SnapshotFile, AStreamedImageIsPublishedWholeAndChecked) {
  testing::TempDir dir;
  wal::Env* env = wal::Env::Default();
  const std::string snap = dir.path() + "/snap";
  ASSERT_TRUE(WriteSnapshotPart(env, snap, 42, Pieces({"alpha ", "", "beta ", "gamma"})).ok());
  // Not a snapshot until published, and removal of older snapshots leaves the part alone.
  EXPECT_FALSE(ReadSnapshotFile(env, snap, 42).ok());
  ASSERT_TRUE(RemoveSnapshotFilesBefore(env, snap, 100).ok());
  ASSERT_TRUE(PublishSnapshotPart(env, snap, 42).ok());
  auto data = ReadSnapshotFile(env, snap, 42);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(*data, "alpha beta gamma");
  // The same bytes written whole give the same file.
  ASSERT_TRUE(WriteSnapshotFile(env, snap, 43, "alpha beta gamma").ok());
  auto whole = [&](uint64_t index) {
    std::ifstream in(snap + "/" + SnapshotFileName(index), std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  EXPECT_EQ(whole(42), whole(43));
  // A flipped byte is DataLoss.
  {
    std::fstream f(snap + "/" + SnapshotFileName(42),
                   std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(7);
    f.put('X');
  }
  EXPECT_EQ(ReadSnapshotFile(env, snap, 42).status().code(), StatusCode::kDataLoss);
}

TEST(SnapshotFile, AFailedBuildPublishesNothingAndItsPartIsRemovedByTheNext) {
  testing::TempDir dir;
  wal::Env* env = wal::Env::Default();
  const std::string snap = dir.path() + "/snap";
  EXPECT_FALSE(WriteSnapshotPart(env, snap, 7, Pieces({"half"}, /*fail=*/true)).ok());
  EXPECT_TRUE(fs::exists(snap + "/" + SnapshotFileName(7) + ".part"));  // As after a crash.
  EXPECT_FALSE(ReadSnapshotFile(env, snap, 7).ok());
  ASSERT_TRUE(WriteSnapshotPart(env, snap, 9, Pieces({"next"})).ok());
  EXPECT_FALSE(fs::exists(snap + "/" + SnapshotFileName(7) + ".part"));
  ASSERT_TRUE(PublishSnapshotPart(env, snap, 9).ok());
  EXPECT_EQ(*ReadSnapshotFile(env, snap, 9), "next");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(snap)) names.push_back(e.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{SnapshotFileName(9)});
}

}  // namespace
}  // namespace ballot::server
