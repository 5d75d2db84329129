#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "wal/env.h"
#include "wal/fault_injection_env.h"

namespace ballot::wal {
namespace {

using CrashMode = FaultInjectionEnv::CrashMode;

class EnvPosix : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ballot-env-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(env_->CreateDir(dir_).ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Env* env_ = Env::Default();
  std::string dir_;
};

TEST_F(EnvPosix, WriteReadPreallocateTruncateRenameRemove) {
  const std::string path = dir_ + "/f";
  auto file = env_->Open(path, /*create=*/true);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE((*file)->WriteAt(0, "hello").ok());
  ASSERT_TRUE((*file)->Append(" world").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  EXPECT_EQ(*env_->ReadFile(path), "hello world");
  ASSERT_TRUE((*file)->Preallocate(4096).ok());
  EXPECT_EQ(*(*file)->Size(), 4096u);
  EXPECT_EQ(*(*file)->ReadAt(11, 5), std::string(5, '\0'));
  ASSERT_TRUE((*file)->Truncate(5).ok());
  EXPECT_EQ(*env_->FileSize(path), 5u);
  ASSERT_TRUE(env_->Rename(path, dir_ + "/g").ok());
  ASSERT_TRUE(env_->SyncDir(dir_).ok());
  EXPECT_EQ(*env_->ListDir(dir_), std::vector<std::string>{"g"});
  ASSERT_TRUE(env_->Remove(dir_ + "/g").ok());
  EXPECT_TRUE(env_->ListDir(dir_)->empty());
}

TEST_F(EnvPosix, ErrorsNameThePathAndTheErrno) {
  auto missing = env_->Open(dir_ + "/nope", /*create=*/false);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find(dir_ + "/nope"), std::string::npos);
  EXPECT_NE(missing.status().message().find("No such file or directory"), std::string::npos);
  ASSERT_TRUE(env_->Open(dir_ + "/x", true).ok());
  Status exists = env_->Open(dir_ + "/x", true).status();
  EXPECT_NE(exists.message().find("File exists"), std::string::npos) << exists.ToString();
}

TEST(EnvFaultInjection, CrashDropsWhatWasNotSynced) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.CreateDir("/d").ok());
  auto file = env.Open("/d/f", true);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->WriteAt(0, "durable").ok());
  ASSERT_TRUE((*file)->Sync().ok());
  ASSERT_TRUE((*file)->WriteAt(7, "-lost").ok());
  EXPECT_EQ(env.Content("/d/f"), "durable-lost");
  env.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ(env.Content("/d/f"), "durable");
  EXPECT_FALSE((*file)->WriteAt(0, "x").ok()) << "handles die with the crash";
  EXPECT_EQ(env.sync_count(), 1u);
}

TEST(EnvFaultInjection, TearKeepsAPrefixOfTheLastWrite) {
  bool saw_partial = false;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    FaultInjectionEnv env(seed);
    ASSERT_TRUE(env.CreateDir("/d").ok());
    auto file = env.Open("/d/f", true);
    ASSERT_TRUE((*file)->WriteAt(0, "first.").ok());
    ASSERT_TRUE((*file)->WriteAt(6, "second").ok());
    env.Crash(CrashMode::kTearLastWrite);
    const std::string content = env.Content("/d/f");
    ASSERT_GE(content.size(), 6u);
    EXPECT_EQ(content, std::string("first.second").substr(0, content.size()));
    saw_partial |= content.size() > 6 && content.size() < 12;
  }
  EXPECT_TRUE(saw_partial);
}

TEST(EnvFaultInjection, SyncFailsWithEioOnDemand) {
  FaultInjectionEnv env;
  ASSERT_TRUE(env.CreateDir("/d").ok());
  auto file = env.Open("/d/f", true);
  ASSERT_TRUE((*file)->WriteAt(0, "data").ok());
  env.SetSyncError(true);
  Status s = (*file)->Sync();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Input/output error"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("/d/f"), std::string::npos);
  env.Crash(CrashMode::kDropUnsynced);
  EXPECT_EQ(env.Content("/d/f"), "") << "a failed sync makes nothing durable";
}

}  // namespace
}  // namespace ballot::wal
