// Durable append throughput of the WAL (issue 4's target: 50,000 appends of 1 KiB per second with
// group commit), on the local disk through Env::Default() (real fdatasync).
//
//   build/bin/ballot-wal-bench [seconds_per_case]   (data under $TMPDIR or /tmp, removed at exit)
//
// Cases, each in a fresh log directory, each run for a fixed wall time:
//   single        one thread: Save(1 entry, sync=true) per append (one fdatasync per append).
//   threads=N     N (8, 32, 128) threads; each appends one entry (Save without sync, under the
//   bench's own
//                 mutex so indexes stay contiguous, as the member's single log writer would) and
//                 then calls Sync(), which concurrent callers share (group commit).
//   batch=N       one thread: Save(N entries, sync=true) per call (N = 64, 256).
//   raw           the disk's floor: pwrite 1 KiB + fdatasync in a loop, without the WAL.
// Prints appends/s, fdatasync-bound latency per durable append, and the load average.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "wal/env.h"
#include "wal/wal.h"

namespace ballot::wal {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kEntryBytes = 1024;

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

std::unique_ptr<Wal> OpenWal(const std::string& dir) {
  Identity id;
  id.cluster_id = 1;
  id.member_id = 1;
  id.engine = "raft";
  auto wal = Wal::Open(Env::Default(), dir, WalOptions{}, id);
  Check(wal.status(), "open");
  return std::move(wal).value();
}

consensus::Entry MakeEntry(consensus::Index index) {
  consensus::Entry e;
  e.term = 1;
  e.index = index;
  e.data.assign(kEntryBytes, static_cast<char>('a' + index % 26));
  return e;
}

struct CaseResult {
  std::string name;
  uint64_t appends = 0;
  double seconds = 0;
  uint64_t durable_calls = 0;  // Save(sync) or Sync() calls that returned.
  double mean_latency_us = 0;  // Per durable call, as the caller sees it.
  std::string load;
};

// The member drops entries from the in-memory log when a snapshot covers them; the bench does the
// same every so often so a long run does not hold gigabytes of entries in memory.
void TrimLocked(Wal* wal, consensus::Index last) {
  consensus::SnapshotMeta meta;
  meta.index = last;
  meta.term = 1;
  Check(wal->SaveSnapshot(meta), "snapshot");
}

CaseResult RunSingle(const std::string& dir, double seconds, int per_call) {
  auto wal = OpenWal(dir);
  consensus::Index next = wal->last_index() + 1;
  std::vector<consensus::Entry> entries;
  CaseResult r;
  r.name = per_call == 1 ? "single (1 thread, sync each)" : "batch=" + std::to_string(per_call);
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  while (Clock::now() < deadline) {
    entries.clear();
    for (int i = 0; i < per_call; ++i) entries.push_back(MakeEntry(next++));
    Check(wal->Save(nullptr, entries, /*sync=*/true), "save");
    r.appends += per_call;
    ++r.durable_calls;
    if (r.appends % 8192 < static_cast<uint64_t>(per_call)) TrimLocked(wal.get(), next - 1);
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.mean_latency_us = r.seconds * 1e6 / static_cast<double>(r.durable_calls);
  r.load = LoadAverage();
  return r;
}

CaseResult RunThreads(const std::string& dir, double seconds, int threads) {
  auto wal = OpenWal(dir);
  std::mutex order_mu;  // Keeps indexes contiguous across threads.
  consensus::Index next = wal->last_index() + 1;
  std::atomic<uint64_t> appends{0};
  std::atomic<uint64_t> latency_ns{0};
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      std::vector<consensus::Entry> one(1);
      while (Clock::now() < deadline) {
        auto t0 = Clock::now();
        {
          std::lock_guard<std::mutex> lock(order_mu);
          one[0] = MakeEntry(next);
          Check(wal->Save(nullptr, one, /*sync=*/false), "save");
          ++next;
          if (next % 8192 == 0) TrimLocked(wal.get(), next - 1);
        }
        Check(wal->Sync(), "sync");
        latency_ns +=
            std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
        ++appends;
      }
    });
  }
  for (auto& w : workers) w.join();
  CaseResult r;
  r.name = "threads=" + std::to_string(threads) + " (Save + Sync each)";
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.appends = appends.load();
  r.durable_calls = r.appends;
  r.mean_latency_us = static_cast<double>(latency_ns.load()) / 1e3 / static_cast<double>(r.appends);
  r.load = LoadAverage();
  return r;
}

// The disk's floor: pwrite of 1 KiB at the end of a preallocated file, then fdatasync, without
// the WAL (one thread).
CaseResult RunRaw(const std::string& dir, double seconds) {
  std::string path = dir + "/raw";
  std::filesystem::create_directories(dir);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0644);
  if (fd < 0 || ::posix_fallocate(fd, 0, 64 << 20) != 0 || ::fdatasync(fd) != 0) {
    std::perror("raw file");
    std::exit(1);
  }
  std::string block(kEntryBytes, 'r');
  CaseResult r;
  r.name = "raw pwrite+fdatasync (no WAL)";
  auto start = Clock::now();
  auto deadline = start + std::chrono::duration<double>(seconds);
  uint64_t offset = 0;
  while (Clock::now() < deadline && offset + kEntryBytes <= (64u << 20)) {
    if (::pwrite(fd, block.data(), block.size(), static_cast<off_t>(offset)) !=
            static_cast<ssize_t>(block.size()) ||
        ::fdatasync(fd) != 0) {
      std::perror("raw write");
      std::exit(1);
    }
    offset += kEntryBytes;
    ++r.appends;
  }
  ::close(fd);
  r.durable_calls = r.appends;
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  r.mean_latency_us = r.seconds * 1e6 / static_cast<double>(r.durable_calls);
  r.load = LoadAverage();
  return r;
}

}  // namespace
}  // namespace ballot::wal

int main(int argc, char** argv) {
  using namespace ballot::wal;
  double seconds = argc > 1 ? std::atof(argv[1]) : 3.0;
  if (seconds <= 0 || seconds > 60) {
    std::fprintf(stderr, "usage: %s [seconds_per_case in (0, 60]]\n", argv[0]);
    return 2;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string root = std::string(tmp != nullptr ? tmp : "/tmp") + "/ballot_wal_bench_" +
                     std::to_string(::getpid());
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);

  std::vector<CaseResult> results;
  int n = 0;
  auto dir = [&] { return root + "/case" + std::to_string(n++); };
  results.push_back(RunRaw(dir(), seconds));
  results.push_back(RunSingle(dir(), seconds, 1));
  results.push_back(RunThreads(dir(), seconds, 8));
  results.push_back(RunThreads(dir(), seconds, 32));
  results.push_back(RunThreads(dir(), seconds, 128));
  results.push_back(RunSingle(dir(), seconds, 64));
  results.push_back(RunSingle(dir(), seconds, 256));
  std::filesystem::remove_all(root);

  std::printf("%-34s %12s %10s %14s %16s  %s\n", "case (1 KiB entries, fdatasync)", "appends",
              "seconds", "appends/s", "us/durable call", "loadavg after");
  for (const auto& r : results) {
    std::printf("%-34s %12llu %10.2f %14.0f %16.0f  %s\n", r.name.c_str(),
                static_cast<unsigned long long>(r.appends), r.seconds,
                static_cast<double>(r.appends) / r.seconds, r.mean_latency_us, r.load.c_str());
  }
  return 0;
}
