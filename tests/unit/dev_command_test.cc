// `ballot dev` with a stub in place of `ballot serve`: the flags each member gets, log forwarding,
// the stop on SIGTERM, SIGKILL after the bound, and the reaction to a member that dies.
//
// Runs the `ballot` executable next to this test binary (build/bin/ballot); the stub is a shell
// script that records its arguments and idles until SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr const char* kStub = R"(#!/bin/sh
name=""
prev=""
for a in "$@"; do
  [ "$prev" = "--name" ] && name="$a"
  prev="$a"
done
printf '%s\n' "$@" > "$STUB_DIR/$name.args"
trap 'echo "$name got SIGTERM"; touch "$STUB_DIR/$name.stopped"; exit 0' TERM
[ -n "$STUB_IGNORE_TERM" ] && trap '' TERM
echo "hello from $name"
i=0
while true; do
  sleep 0.05
  i=$((i+1))
  if [ "$name" = "$STUB_DIE_NAME" ] && [ $i -ge 10 ]; then echo "$name dying"; exit 3; fi
done
)";

std::string ReadFile(const fs::path& path) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  return text.str();
}

class DevCommandTest : public testing::Test {
 protected:
  void SetUp() override {
    char self[4096];
    const ssize_t n = ::readlink("/proc/self/exe", self, sizeof(self) - 1);
    ASSERT_GT(n, 0);
    ballot_ = fs::path(std::string(self, static_cast<size_t>(n))).parent_path() / "ballot";
    ASSERT_TRUE(fs::exists(ballot_)) << ballot_ << " is missing: build the `ballot` target";
    dir_ =
        fs::temp_directory_path() / ("ballot-dev-" + std::to_string(::getpid()) + "-" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    stub_ = dir_ / "stub.sh";
    std::ofstream(stub_) << kStub;
    fs::permissions(stub_, fs::perms::owner_all);
  }

  void TearDown() override {
    if (pid_ > 0) {  // The test failed before dev ended: do not leave it running.
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    fs::remove_all(dir_);
  }

  // Starts `ballot dev <args> --serve-binary stub` with stdout and stderr in files.
  void StartDev(std::vector<std::string> args, std::vector<std::string> env = {}) {
    args.insert(args.begin(), {ballot_.string(), "dev", "--serve-binary", stub_.string(),
                               "--data-dir", (dir_ / "data").string()});
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
      ::setenv("STUB_DIR", dir_.c_str(), 1);
      for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
      const std::string out = (dir_ / "out.txt").string();
      const std::string err = (dir_ / "err.txt").string();
      if (!std::freopen(out.c_str(), "w", stdout) || !std::freopen(err.c_str(), "w", stderr)) {
        ::_exit(99);
      }
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(98);
    }
  }

  bool WaitForFiles(const std::vector<std::string>& names, milliseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      bool all = true;
      for (const std::string& name : names) all = all && fs::exists(dir_ / name);
      if (all) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  // The exit code of dev, or -1 if it did not end within `timeout`.
  int WaitForExit(milliseconds timeout) {
    const auto deadline = steady_clock::now() + timeout;
    while (steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return -1;
  }

  std::vector<std::string> Args(const std::string& member) {
    std::vector<std::string> lines;
    std::istringstream in(ReadFile(dir_ / (member + ".args")));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  fs::path ballot_;
  fs::path dir_;
  fs::path stub_;
  pid_t pid_ = -1;
};

TEST_F(DevCommandTest, StartsMembersWithEtcdFlagsAndStopsThemOnSigterm) {
  StartDev({"--members", "3", "--base-port", "34100", "--engine", "multipaxos"});
  ASSERT_TRUE(WaitForFiles({"infra1.args", "infra2.args", "infra3.args"}, milliseconds(5000)));
  const std::string data = (dir_ / "data").string();
  const std::vector<std::string> expected = {
      "serve",
      "--name",
      "infra2",
      "--data-dir",
      data + "/infra2",
      "--listen-client-urls",
      "http://127.0.0.1:34102",
      "--advertise-client-urls",
      "http://127.0.0.1:34102",
      "--listen-peer-urls",
      "http://127.0.0.1:34103",
      "--initial-advertise-peer-urls",
      "http://127.0.0.1:34103",
      "--initial-cluster-token",
      "ballot-dev-cluster",
      "--initial-cluster",
      "infra1=http://127.0.0.1:34101,infra2=http://127.0.0.1:34103,infra3=http://127.0.0.1:34105",
      "--initial-cluster-state",
      "new",
      "--engine",
      "multipaxos"};
  EXPECT_EQ(Args("infra2"), expected);
  EXPECT_EQ(Args("infra1")[6], "http://127.0.0.1:34100");
  EXPECT_EQ(Args("infra3")[12], "http://127.0.0.1:34105");

  std::this_thread::sleep_for(milliseconds(200));  // Let the greetings be forwarded.
  ASSERT_EQ(::kill(pid_, SIGTERM), 0);
  EXPECT_EQ(WaitForExit(milliseconds(5000)), 0);
  for (const char* name : {"infra1", "infra2", "infra3"}) {
    EXPECT_TRUE(fs::exists(dir_ / (std::string(name) + ".stopped"))) << name;
  }
  const std::string out = ReadFile(dir_ / "out.txt");
  EXPECT_NE(out.find("etcdctl --endpoints=127.0.0.1:34100,127.0.0.1:34102,127.0.0.1:34104 put "
                     "hello world"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("infra2 | hello from infra2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("infra3 | infra3 got SIGTERM\n"), std::string::npos) << out;
  EXPECT_NE(ReadFile(dir_ / "err.txt").find("all members stopped"), std::string::npos);
}

TEST_F(DevCommandTest, AMemberDyingStopsTheOthersAndFails) {
  StartDev({"--members", "3", "--base-port", "34110"}, {"STUB_DIE_NAME=infra2"});
  const int code = WaitForExit(milliseconds(8000));
  EXPECT_EQ(code, 2);
  const std::string err = ReadFile(dir_ / "err.txt");
  EXPECT_NE(err.find("member infra2 (pid "), std::string::npos) << err;
  EXPECT_NE(err.find("exited with code 3 unexpectedly"), std::string::npos) << err;
  EXPECT_TRUE(fs::exists(dir_ / "infra1.stopped"));
  EXPECT_TRUE(fs::exists(dir_ / "infra3.stopped"));
  EXPECT_FALSE(fs::exists(dir_ / "infra2.stopped"));
  EXPECT_NE(ReadFile(dir_ / "out.txt").find("infra2 | infra2 dying"), std::string::npos);
}

TEST_F(DevCommandTest, AMemberIgnoringSigtermIsKilledAfterTheBound) {
  StartDev({"--members", "1", "--base-port", "34120", "--stop-timeout-ms", "300"},
           {"STUB_IGNORE_TERM=1"});
  ASSERT_TRUE(WaitForFiles({"infra1.args"}, milliseconds(5000)));
  std::this_thread::sleep_for(milliseconds(100));
  const auto start = steady_clock::now();
  ASSERT_EQ(::kill(pid_, SIGINT), 0);
  EXPECT_EQ(WaitForExit(milliseconds(5000)), 2);
  EXPECT_GE(steady_clock::now() - start, milliseconds(300));
  const std::string err = ReadFile(dir_ / "err.txt");
  EXPECT_NE(err.find("interrupted"), std::string::npos) << err;
  EXPECT_NE(err.find("did not stop within 300 ms of SIGTERM; sending SIGKILL"), std::string::npos)
      << err;
}

TEST_F(DevCommandTest, AProgramThatCannotRunIsReported) {
  stub_ = dir_ / "absent";
  StartDev({"--members", "1", "--base-port", "34130"});
  EXPECT_EQ(WaitForExit(milliseconds(5000)), 2);
  EXPECT_NE(ReadFile(dir_ / "out.txt").find("infra1 | cannot run "), std::string::npos);
  EXPECT_NE(ReadFile(dir_ / "err.txt").find("exited with code 127"), std::string::npos);
}

TEST_F(DevCommandTest, BadFlagsAreRefused) {
  for (std::vector<std::string> args :
       std::vector<std::vector<std::string>>{{"--members", "0"},
                                             {"--members", "10"},
                                             {"--engine", "zab"},
                                             {"--base-port", "65534", "--members", "3"}}) {
    StartDev(args);
    EXPECT_EQ(WaitForExit(milliseconds(5000)), 2) << testing::PrintToString(args);
    EXPECT_FALSE(fs::exists(dir_ / "infra1.args"));
  }
}

}  // namespace
