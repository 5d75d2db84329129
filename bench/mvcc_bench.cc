// Throughput of the mvcc store on the local disk: puts applied in batches of log entries (as the
// apply thread does), point reads and short range reads from reader threads.
//
//   build/bin/ballot-mvcc-bench [--benchmark_filter=...] (data under $TMPDIR or /tmp)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>

#include "mvcc/store.h"

namespace ballot::mvcc {
namespace {

constexpr int kKeys = 100000;
constexpr size_t kValueBytes = 256;

std::string BenchDir(const std::string& name) {
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = std::string(tmp != nullptr ? tmp : "/tmp") + "/ballot_mvcc_bench_" + name +
                    "_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

std::string Key(uint64_t i) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "key/%08llu", static_cast<unsigned long long>(i));
  return buf;
}

std::unique_ptr<Store> OpenStore(const std::string& dir) {
  StoreOptions options;
  options.dir = dir;
  auto store = Store::Open(options);
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    std::abort();
  }
  return std::move(store).value();
}

// Puts of 256-byte values to random keys; state.range(0) log entries per ApplyBatch commit.
void BM_Put(benchmark::State& state) {
  std::string dir = BenchDir("put");
  auto store = OpenStore(dir);
  std::mt19937_64 rng(1);
  const int per_batch = static_cast<int>(state.range(0));
  uint64_t index = 0;
  PutRequest put;
  put.value = std::string(kValueBytes, 'v');
  for (auto _ : state) {
    ApplyBatch batch = store->NewBatch();
    for (int i = 0; i < per_batch; ++i) {
      put.key = Key(rng() % kKeys);
      auto r = batch.Put(LogPosition{++index, 1}, put);
      benchmark::DoNotOptimize(r);
    }
    if (!batch.Commit().ok()) state.SkipWithError("commit failed");
  }
  state.SetItemsProcessed(state.iterations() * per_batch);
  state.SetBytesProcessed(state.iterations() * per_batch * kValueBytes);
  store.reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Put)->Arg(1)->Arg(16)->Arg(128)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A store of kKeys keys (each written twice, one revision per put), shared by the read
// benchmarks; removed at exit.
struct ReadFixture {
  std::string dir = BenchDir("read");
  std::unique_ptr<Store> store;
  ReadFixture() {
    store = OpenStore(dir);
    uint64_t index = 0;
    PutRequest put;
    put.value = std::string(kValueBytes, 'r');
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < kKeys; i += 256) {
        ApplyBatch batch = store->NewBatch();
        for (int k = i; k < std::min(kKeys, i + 256); ++k) {
          put.key = Key(k);
          (void)batch.Put(LogPosition{++index, 1}, put);
        }
        if (!batch.Commit().ok()) std::abort();
      }
    }
  }
  ~ReadFixture() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

Store* ReadStore() {
  static ReadFixture fixture;
  return fixture.store.get();
}

void BM_RangeOneKey(benchmark::State& state) {
  Store* store = ReadStore();
  std::mt19937_64 rng(state.thread_index() + 1);
  RangeRequest get;
  for (auto _ : state) {
    get.key = Key(rng() % kKeys);
    auto r = store->Range(get);
    if (!r.ok() || r->kvs.size() != 1) state.SkipWithError("bad read");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RangeOneKey)->Threads(1)->Threads(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

// [key, +100 keys) with limit 10 (count still covers the 100 keys, as etcd's does).
void BM_RangeLimit10(benchmark::State& state) {
  Store* store = ReadStore();
  std::mt19937_64 rng(state.thread_index() + 7);
  RangeRequest range;
  range.limit = 10;
  for (auto _ : state) {
    uint64_t first = rng() % (kKeys - 100);
    range.key = Key(first);
    range.range_end = Key(first + 100);
    auto r = store->Range(range);
    if (!r.ok() || r->kvs.size() != 10 || r->count != 100) state.SkipWithError("bad range");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RangeLimit10)->Threads(1)->Threads(2)->UseRealTime()->Unit(benchmark::kMicrosecond);

// A past revision: every key read seeks past its newer version.
void BM_RangeOneKeyPastRevision(benchmark::State& state) {
  Store* store = ReadStore();
  std::mt19937_64 rng(3);
  RangeRequest get;
  get.revision = store->CurrentRevision() - kKeys;  // every key's first version
  for (auto _ : state) {
    get.key = Key(rng() % kKeys);
    auto r = store->Range(get);
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RangeOneKeyPastRevision)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ballot::mvcc

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
