// The data directory: layout, identity written once and checked at every start, the lock.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/data_dir.h"

namespace ballot::config {
namespace {

namespace fs = std::filesystem;

class ConfigDataDirTest : public testing::Test {
 protected:
  void SetUp() override {
    root_ =
        fs::temp_directory_path() / ("ballot-data-dir-" + std::to_string(::getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    path_ = (root_ / "node.etcd").string();
  }
  void TearDown() override { fs::remove_all(root_); }

  static DataDirIdentity Identity() {
    return {.cluster_id = 0x127a597e0f685a6bULL,
            .member_id = 0x5fbb3a8679b0cd10ULL,
            .name = "a",
            .engine = EngineKind::kRaft};
  }

  std::string ReadIdentityFile() {
    std::ifstream file(path_ + "/member/identity");
    std::stringstream text;
    text << file.rdbuf();
    return text.str();
  }
  void WriteIdentityFile(const std::string& text) {
    std::ofstream(path_ + "/member/identity", std::ios::trunc) << text;
  }

  fs::path root_;
  std::string path_;
};

TEST_F(ConfigDataDirTest, CreatesTheLayoutAndTheIdentity) {
  Result<std::unique_ptr<DataDir>> dir = DataDir::Open(path_, Identity());
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_TRUE((*dir)->created());
  for (const char* sub : {"member/wal", "member/db", "member/snap"}) {
    EXPECT_TRUE(fs::is_directory(fs::path(path_) / sub)) << sub;
  }
  EXPECT_TRUE(fs::exists(fs::path(path_) / "LOCK"));
  EXPECT_FALSE(fs::exists(fs::path(path_) / "member/identity.tmp"));
  const std::string text = ReadIdentityFile();
  EXPECT_NE(text.find("cluster-id 127a597e0f685a6b\n"), std::string::npos) << text;
  EXPECT_NE(text.find("member-id 5fbb3a8679b0cd10\n"), std::string::npos) << text;
  EXPECT_NE(text.find("engine raft\n"), std::string::npos) << text;
  EXPECT_EQ((fs::status(path_).permissions() & fs::perms::others_all), fs::perms::none);
}

TEST_F(ConfigDataDirTest, ReopensWithTheSameIdentity) {
  { ASSERT_TRUE(DataDir::Open(path_, Identity()).ok()); }
  Result<std::unique_ptr<DataDir>> dir = DataDir::Open(path_, Identity());
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  EXPECT_FALSE((*dir)->created());
  EXPECT_EQ((*dir)->identity(), Identity());
  // A member that joined an existing cluster does not know the cluster id from its flags.
  DataDirIdentity no_cluster = Identity();
  no_cluster.cluster_id = 0;
  dir = Result<std::unique_ptr<DataDir>>(Status::Internal("released"));
  EXPECT_TRUE(DataDir::Open(path_, no_cluster).ok());
}

void ExpectRefused(const Result<std::unique_ptr<DataDir>>& dir, std::vector<std::string> needles) {
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), StatusCode::kFailedPrecondition);
  for (const std::string& needle : needles) {
    EXPECT_NE(dir.status().message().find(needle), std::string::npos)
        << "wanted \"" << needle << "\" in: " << dir.status().message();
  }
}

TEST_F(ConfigDataDirTest, RefusesAnotherClusterMemberOrEngine) {
  { ASSERT_TRUE(DataDir::Open(path_, Identity()).ok()); }
  DataDirIdentity other = Identity();
  other.cluster_id = 0xcdf818194e3a8c32ULL;
  ExpectRefused(
      DataDir::Open(path_, other),
      {"belongs to another cluster", "cluster 127a597e0f685a6b", "cluster cdf818194e3a8c32"});
  other = Identity();
  other.member_id = 0x8e9e05c52164694dULL;
  ExpectRefused(
      DataDir::Open(path_, other),
      {"belongs to another member", "member 5fbb3a8679b0cd10 (a)", "member 8e9e05c52164694d (a)"});
  other = Identity();
  other.name = "b";
  ExpectRefused(DataDir::Open(path_, other), {"another member", "(a)", "(b)"});
  other = Identity();
  other.engine = EngineKind::kMultiPaxos;
  ExpectRefused(DataDir::Open(path_, other),
                {"created with --engine raft but --engine is multipaxos"});
  // Refusals leave the identity untouched.
  EXPECT_TRUE(DataDir::Open(path_, Identity()).ok());
}

TEST_F(ConfigDataDirTest, SecondOpenerIsRefusedWhileTheFirstHoldsTheLock) {
  Result<std::unique_ptr<DataDir>> first = DataDir::Open(path_, Identity());
  ASSERT_TRUE(first.ok());
  ExpectRefused(
      DataDir::Open(path_, Identity()),
      {"is in use by another process (pid " + std::to_string(::getpid()) + ")", "LOCK is locked"});
  // Another process is refused as well (flock is per open file, so this holds across processes).
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Result<std::unique_ptr<DataDir>> dir = DataDir::Open(path_, Identity());
    ::_exit(!dir.ok() && dir.status().code() == StatusCode::kFailedPrecondition ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  first = Result<std::unique_ptr<DataDir>>(Status::Internal("released"));
  EXPECT_TRUE(DataDir::Open(path_, Identity()).ok());
}

TEST_F(ConfigDataDirTest, CorruptIdentityIsAnErrorNamingTheFile) {
  { ASSERT_TRUE(DataDir::Open(path_, Identity()).ok()); }
  const std::string good = ReadIdentityFile();
  std::vector<std::string> corruptions = {
      "",
      "garbage",
      good.substr(0, good.size() / 2),
      good.substr(0, good.size() - 1),
      std::string(100000, 'x'),
  };
  std::string flipped = good;
  flipped[good.find("raft")] = 'R';
  corruptions.push_back(flipped);
  for (const std::string& text : corruptions) {
    WriteIdentityFile(text);
    Result<std::unique_ptr<DataDir>> dir = DataDir::Open(path_, Identity());
    ASSERT_FALSE(dir.ok()) << text;
    EXPECT_EQ(dir.status().code(), StatusCode::kDataLoss) << dir.status().ToString();
    EXPECT_NE(dir.status().message().find(path_ + "/member/identity"), std::string::npos)
        << dir.status().message();
  }
}

TEST_F(ConfigDataDirTest, ParseIdentityRoundTripsAndChecksEveryField) {
  const DataDirIdentity identity = Identity();
  Result<DataDirIdentity> parsed = ParseIdentity(SerializeIdentity(identity), "f");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(*parsed, identity);
  DataDirIdentity paxos = identity;
  paxos.engine = EngineKind::kMultiPaxos;
  EXPECT_EQ(*ParseIdentity(SerializeIdentity(paxos), "f"), paxos);
  // A newer format is refused as such, not as corruption.
  DataDirIdentity newer = identity;
  newer.format_version = 2;
  Result<DataDirIdentity> refused = ParseIdentity(SerializeIdentity(newer), "f");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("format version 2"), std::string::npos);
}

TEST_F(ConfigDataDirTest, RefusesDataWithoutAnIdentity) {
  fs::create_directories(fs::path(path_) / "member/wal");
  std::ofstream(path_ + "/member/wal/0000000000000000-0000000000000000.wal") << "x";
  ExpectRefused(DataDir::Open(path_, Identity()), {"holds data in", "no identity file"});
  EXPECT_FALSE(fs::exists(fs::path(path_) / "member/identity"));
}

TEST_F(ConfigDataDirTest, NewDirectoryNeedsIds) {
  Result<std::unique_ptr<DataDir>> dir = DataDir::Open(path_, DataDirIdentity{});
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ConfigDataDirTest, PathThatIsAFile) {
  fs::create_directories(root_);
  std::ofstream(path_) << "not a directory";
  Result<std::unique_ptr<DataDir>> dir = DataDir::Open(path_, Identity());
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("is not a directory"), std::string::npos)
      << dir.status().message();
}

}  // namespace
}  // namespace ballot::config
