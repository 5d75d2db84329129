// The mvcc store's issue 4 targets, on the local disk:
//   1. single-threaded puts per second without consensus, by ApplyBatch size (target 100,000/s),
//      with the time split between building the batch (ApplyBatch::Put) and Commit;
//   2. a store of `keys` keys (24-byte keys, 100-byte values, one revision each): the load rate,
//      memory per key after the load, disk bytes per key, and the time to reopen it (Store::Open on
//      the existing directory, in a fresh process: the member's restart; target under 10 s) with
//      the memory per key after the reopen.
//
//   build/bin/ballot-mvcc-restart-bench [keys (default 1000000)] [load_batch (default 1000)]
//   (data under $TMPDIR or /tmp, removed at exit). Prints figures; asserts nothing about time.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "mvcc/store.h"

namespace ballot::mvcc {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kValueBytes = 100;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

// VmRSS of this process, bytes.
uint64_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  return 0;
}

uint64_t DiskBytes(const std::string& dir) {
  uint64_t total = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) total += e.file_size();
  }
  return total;
}

// 24 bytes: "key/" and 20 digits.
std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key/%020llu", static_cast<unsigned long long>(i));
  return buf;
}

std::unique_ptr<Store> OpenStore(const std::string& dir) {
  StoreOptions options;
  options.dir = dir;
  auto store = Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open %s: %s\n", dir.c_str(), store.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(store).value();
}

void Check(const Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, s.ToString().c_str());
    std::exit(1);
  }
}

struct PutStats {
  uint64_t puts = 0;
  double seconds = 0;
  double put_seconds = 0;     // Inside ApplyBatch::Put (building the batch, reads included).
  double commit_seconds = 0;  // Inside ApplyBatch::Commit (the RocksDB write).
};

// Puts `order[i]`'s keys, `per_batch` log entries (one put each) per ApplyBatch.
PutStats Load(Store* store, const std::vector<uint64_t>& order, size_t per_batch, uint64_t* index) {
  PutStats st;
  PutRequest put;
  put.value = std::string(kValueBytes, 'v');
  auto t0 = Clock::now();
  for (size_t i = 0; i < order.size(); i += per_batch) {
    auto tb = Clock::now();
    ApplyBatch batch = store->NewBatch();
    for (size_t k = i; k < std::min(order.size(), i + per_batch); ++k) {
      put.key = Key(order[k]);
      auto r = batch.Put(LogPosition{++*index, 1}, put);
      Check(r.status(), "put");
    }
    auto tc = Clock::now();
    st.put_seconds += std::chrono::duration<double>(tc - tb).count();
    Check(batch.Commit(), "commit");
    st.commit_seconds += Since(tc);
  }
  st.seconds = Since(t0);
  st.puts = order.size();
  return st;
}

std::string TempRoot() {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr ? tmp : "/tmp") + "/ballot_mvcc_restart_bench_" +
         std::to_string(::getpid());
}

// Child mode: reopen `dir`, which holds `keys` keys, and report.
int Reopen(const std::string& dir, uint64_t keys) {
  uint64_t rss0 = RssBytes();
  auto t0 = Clock::now();
  auto store = OpenStore(dir);
  double open_s = Since(t0);
  uint64_t rss_open = RssBytes();

  // The first reads after the restart (cold block cache): one key, then a count of the whole key
  // space (what a client's "how many keys" would cost).
  auto t1 = Clock::now();
  RangeRequest get;
  get.key = Key(keys / 2);
  auto r = store->Range(get);
  Check(r.status(), "range");
  if (r->kvs.size() != 1) {
    std::fprintf(stderr, "reopened store lost key %s\n", get.key.c_str());
    return 1;
  }
  double first_get_s = Since(t1);
  auto t2 = Clock::now();
  RangeRequest all;
  all.key = std::string(1, '\0');
  all.range_end = std::string(1, '\0');
  all.count_only = true;
  auto c = store->Range(all);
  Check(c.status(), "count");
  double count_s = Since(t2);
  if (static_cast<uint64_t>(c->count) != keys) {
    std::fprintf(stderr, "reopened store counts %lld keys, want %llu\n",
                 static_cast<long long>(c->count), static_cast<unsigned long long>(keys));
    return 1;
  }
  uint64_t rss_after_reads = RssBytes();
  std::printf("reopen (fresh process): Store::Open %.3f s, applied index %llu, revision %lld\n",
              open_s, static_cast<unsigned long long>(store->Applied().index),
              static_cast<long long>(store->CurrentRevision()));
  std::printf("  first get %.1f ms, count_only of all %llu keys %.2f s\n", first_get_s * 1e3,
              static_cast<unsigned long long>(keys), count_s);
  std::printf(
      "  RSS: process before open %.1f MiB, after open %.1f MiB (%.1f B/key), after the "
      "reads %.1f MiB (%.1f B/key)\n",
      rss0 / 1048576.0, rss_open / 1048576.0,
      static_cast<double>(rss_open) / static_cast<double>(keys), rss_after_reads / 1048576.0,
      static_cast<double>(rss_after_reads) / static_cast<double>(keys));
  std::printf("  loadavg %s\n", LoadAverage().c_str());
  return 0;
}

int Main(int argc, char** argv) {
  if (argc >= 2 && std::strcmp(argv[1], "--reopen") == 0) {
    if (argc != 4) return 2;
    return Reopen(argv[2], std::strtoull(argv[3], nullptr, 10));
  }
  uint64_t keys = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1000000;
  size_t load_batch = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000;
  if (keys < 1000 || keys > 100000000 || load_batch < 1 || load_batch > 1000000) {
    std::fprintf(stderr, "usage: %s [keys in [1000, 1e8]] [load_batch in [1, 1e6]]\n", argv[0]);
    return 2;
  }
  std::string root = TempRoot();
  std::filesystem::remove_all(root);
  std::filesystem::create_directories(root);

  // 1. Put throughput by batch size: 100,000 random keys of 200,000 (some overwrites), on a
  // fresh store each time.
  std::printf("puts by ApplyBatch size (24-byte keys, 100-byte values, RocksDB WAL unsynced):\n");
  std::printf("%10s %10s %12s %12s %12s %12s  %s\n", "per batch", "puts", "seconds", "puts/s",
              "Put() us", "Commit() us", "loadavg");
  int n = 0;
  for (size_t per_batch : {1, 16, 128, 1024, 8192}) {
    std::string dir = root + "/puts" + std::to_string(n++);
    auto store = OpenStore(dir);
    std::mt19937_64 rng(per_batch);
    std::vector<uint64_t> order(per_batch == 1 ? 30000 : 100000);
    for (auto& k : order) k = rng() % 200000;
    uint64_t index = 0;
    PutStats st = Load(store.get(), order, per_batch, &index);
    std::printf("%10zu %10llu %12.2f %12.0f %12.2f %12.2f  %s\n", per_batch,
                static_cast<unsigned long long>(st.puts), st.seconds, st.puts / st.seconds,
                st.put_seconds * 1e6 / st.puts, st.commit_seconds * 1e6 / st.puts,
                LoadAverage().c_str());
    store.reset();
    std::filesystem::remove_all(dir);
  }

  // 2. The big store.
  std::string dir = root + "/big";
  uint64_t rss_before = RssBytes();
  auto store = OpenStore(dir);
  std::vector<uint64_t> order(keys);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(42));
  uint64_t index = 0;
  PutStats st = Load(store.get(), order, load_batch, &index);
  order = {};
  Check(store->MakeDurable().status(), "durable");
  uint64_t rss_loaded = RssBytes();
  std::printf(
      "\nload: %llu keys (24-byte keys, 100-byte values) in batches of %zu: %.1f s, "
      "%.0f puts/s (Put() %.2f us, Commit() %.2f us per put); loadavg %s\n",
      static_cast<unsigned long long>(keys), load_batch, st.seconds, keys / st.seconds,
      st.put_seconds * 1e6 / keys, st.commit_seconds * 1e6 / keys, LoadAverage().c_str());
  std::printf("  RSS after load: %.1f MiB (%.1f MiB before opening the store): %.1f B/key\n",
              rss_loaded / 1048576.0, rss_before / 1048576.0,
              static_cast<double>(rss_loaded - rss_before) / static_cast<double>(keys));
  auto tc = Clock::now();
  store.reset();
  double close_s = Since(tc);
  uint64_t disk = DiskBytes(dir);
  std::printf("  close %.2f s; disk after close: %.1f MiB, %.1f B/key (key+value = %zu B)\n",
              close_s, disk / 1048576.0, static_cast<double>(disk) / static_cast<double>(keys),
              24 + kValueBytes);
  std::fflush(stdout);

  // Reopen in a fresh process, so its memory is the restarted member's, not this one's heap.
  pid_t pid = ::fork();
  if (pid == 0) {
    std::string keys_arg = std::to_string(keys);
    ::execl("/proc/self/exe", argv[0], "--reopen", dir.c_str(), keys_arg.c_str(),
            static_cast<char*>(nullptr));
    std::perror("exec");
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::filesystem::remove_all(root);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

}  // namespace
}  // namespace ballot::mvcc

int main(int argc, char** argv) { return ballot::mvcc::Main(argc, argv); }
