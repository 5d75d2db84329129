// Crash and exactly-once tests of the mvcc store. RocksDB runs on the disk through a file system
// (CrashFs, crash_fs.h) that remembers how much of every file was synced; a "crash" freezes it
// (later writes, syncs, renames and removals are dropped), closes the store, and cuts every file
// back to its synced length, as a power failure would. The store is reopened, the log is replayed
// from the persisted applied index, and the result must equal a store that never crashed: same
// revision (an entry applied twice would move it), same HashKV, same key space and meta. The
// applied index found must be at least the last MakeDurable() answer (what the member may compact
// its log to).
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>

#include "crash_fs.h"
#include "mvcc/snapshot.h"
#include "mvcc/store.h"

namespace ballot::mvcc {
namespace {

using testfs::CrashFs;

struct Entry {
  int kind;  // 0 put, 1 delete range, 2 txn, 3 meta only, 4 skip
  std::string key;
  std::string value;
};

std::vector<Entry> MakeLog(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<Entry> log;
  for (int i = 0; i < n; ++i) {
    int r = static_cast<int>(rng() % 100);
    Entry e;
    e.kind = r < 55 ? 0 : r < 70 ? 1 : r < 90 ? 2 : r < 95 ? 3 : 4;
    e.key = "key" + std::to_string(rng() % 50);
    e.value = std::string(20 + rng() % 200, static_cast<char>('a' + rng() % 26));
    log.push_back(std::move(e));
  }
  return log;
}

void Apply(ApplyBatch& b, uint64_t index, const Entry& e) {
  LogPosition at{index, 1};
  PutRequest p;
  p.key = e.key;
  p.value = e.value;
  switch (e.kind) {
    case 0:
      ASSERT_TRUE(b.Put(at, p).ok());
      break;
    case 1: {
      DeleteRangeRequest d;
      d.key = e.key;
      d.range_end = e.key + "5";
      ASSERT_TRUE(b.DeleteRange(at, d).ok());
      break;
    }
    case 2: {
      TxnRequest t;
      Compare c;
      c.key = e.key;
      c.target = Compare::CompareTarget::kVersion;
      c.result = Compare::CompareResult::kLess;
      c.version = 3;
      t.compare.push_back(c);
      PutRequest other = p;
      other.key += "/txn";
      t.success = {MakeOp(p), MakeOp(other)};
      DeleteRangeRequest d;
      d.key = e.key;
      t.failure = {MakeOp(d)};
      ASSERT_TRUE(b.Txn(at, t).ok());
      break;
    }
    case 3:
      b.PutMeta(at, "lease/" + e.key, e.value);
      break;
    case 4:
      b.Skip(at);
      break;
  }
}

// Applies entries [from, to] (1-based) in batches of random sizes.
void ApplyLog(Store& store, const std::vector<Entry>& log, uint64_t from, uint64_t to,
              std::mt19937_64& rng) {
  uint64_t i = from;
  while (i <= to) {
    ApplyBatch b = store.NewBatch();
    uint64_t n = 1 + rng() % 16;
    for (uint64_t k = 0; k < n && i <= to; ++k, ++i) Apply(b, i, log[i - 1]);
    ASSERT_TRUE(b.Commit().ok());
  }
}

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/mvcc_crash_" + name + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  return dir;
}

struct Fingerprint {
  Revision revision;
  uint32_t hash;
  RangeResponse all;
  std::vector<std::pair<std::string, std::string>> meta;
};

Fingerprint Take(Store& store) {
  RangeRequest all;
  all.key = std::string(1, '\0');
  all.range_end = std::string(1, '\0');
  return {store.CurrentRevision(), store.HashKV({})->hash, *store.Range(all), *store.ScanMeta("")};
}

TEST(MvccCrashTest, ReplayFromThePersistedAppliedIndexEqualsNoCrash) {
  const int n = 600;
  std::string dir = TempDir("replay");
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::vector<Entry> log = MakeLog(seed, n);
    std::mt19937_64 rng(seed);

    // The reference: everything applied, no crash (in memory).
    std::unique_ptr<rocksdb::Env> mem(rocksdb::NewMemEnv(rocksdb::Env::Default()));
    StoreOptions ref_options;
    ref_options.dir = "/ref";
    ref_options.env = mem.get();
    auto reference = std::move(Store::Open(ref_options)).value();
    ApplyLog(*reference, log, 1, n, rng);
    Fingerprint expected = Take(*reference);

    auto fs = std::make_shared<CrashFs>();
    std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
    StoreOptions options;
    options.dir = dir + "/" + std::to_string(seed);
    options.env = env.get();
    // Small memtables on some seeds, so that flushes to SST files happen between syncs.
    options.write_buffer_bytes = seed % 2 == 0 ? 64 << 10 : 0;
    auto store = std::move(Store::Open(options)).value();

    uint64_t durable_point = 100 + rng() % 200;
    uint64_t crash_point = durable_point + 50 + rng() % 200;
    ApplyLog(*store, log, 1, durable_point, rng);
    auto durable = store->MakeDurable();
    ASSERT_TRUE(durable.ok());
    EXPECT_EQ(*durable, durable_point);
    ApplyLog(*store, log, durable_point + 1, crash_point, rng);
    ASSERT_EQ(store->Applied().index, crash_point);

    fs->Crash();
    store.reset();
    uint64_t lost = fs->DropUnsynced();

    store = std::move(Store::Open(options)).value();
    uint64_t recovered = store->Applied().index;
    std::printf("seed %llu: durable %llu, crash at %llu, recovered %llu, %llu bytes lost\n",
                static_cast<unsigned long long>(seed),
                static_cast<unsigned long long>(durable_point),
                static_cast<unsigned long long>(crash_point),
                static_cast<unsigned long long>(recovered), static_cast<unsigned long long>(lost));
    EXPECT_GE(recovered, durable_point);
    EXPECT_LE(recovered, crash_point);
    EXPECT_EQ(store->DurableAppliedIndex(), recovered);

    // The member replays its log from the applied index on.
    ApplyLog(*store, log, recovered + 1, n, rng);
    Fingerprint got = Take(*store);
    EXPECT_EQ(got.revision, expected.revision);
    EXPECT_EQ(got.hash, expected.hash);
    EXPECT_TRUE(got.all == expected.all);
    EXPECT_EQ(got.meta, expected.meta);
    store.reset();
  }
  std::filesystem::remove_all(dir);
}

TEST(MvccCrashTest, UnsyncedTailIsLostButTheStoreIsAPrefix) {
  // Without MakeDurable, a crash may lose every batch since the last flush: the store must come
  // back at some earlier applied index with exactly the effects of the entries up to it.
  std::string dir = TempDir("prefix");
  std::vector<Entry> log = MakeLog(9, 300);
  auto fs = std::make_shared<CrashFs>();
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  StoreOptions options;
  options.dir = dir;
  options.env = env.get();
  options.write_buffer_bytes = 32 << 10;
  std::mt19937_64 rng(9);
  auto store = std::move(Store::Open(options)).value();
  ApplyLog(*store, log, 1, 300, rng);
  fs->Crash();
  store.reset();
  uint64_t lost = fs->DropUnsynced();
  EXPECT_GT(lost, 0u);  // the WAL tail was never synced
  store = std::move(Store::Open(options)).value();
  uint64_t recovered = store->Applied().index;
  EXPECT_LE(recovered, 300u);

  std::unique_ptr<rocksdb::Env> mem(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  StoreOptions ref_options;
  ref_options.dir = "/prefix_ref";
  ref_options.env = mem.get();
  auto reference = std::move(Store::Open(ref_options)).value();
  ApplyLog(*reference, log, 1, recovered, rng);
  Fingerprint want = Take(*reference);
  Fingerprint got = Take(*store);
  EXPECT_EQ(got.revision, want.revision);
  EXPECT_EQ(got.hash, want.hash);
  EXPECT_EQ(got.meta, want.meta);
  store.reset();
  std::filesystem::remove_all(dir);
}

// A snapshot install whose disk dies at the commit point (the CURRENT_DB write) must leave the
// store with a database: the old swap closed the live database first and, when the new one could
// not be opened on the dead disk, left none, so the next reader (the member's housekeeping thread)
// crashed the process. After the reboot the store is the old or the new one, whole.
TEST(MvccCrashTest, SnapshotInstallOnADyingDiskLeavesAReadableStore) {
  std::string dir = TempDir("install");
  std::vector<Entry> log = MakeLog(21, 200);
  std::mt19937_64 rng(21);
  std::unique_ptr<rocksdb::Env> mem(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  StoreOptions source_options;
  source_options.dir = "/source";
  source_options.env = mem.get();
  auto source = std::move(Store::Open(source_options)).value();
  ApplyLog(*source, log, 1, 200, rng);
  std::string image = std::move(source->NewSnapshotWriter("").value()->ReadAll()).value();
  Fingerprint source_print = Take(*source);

  auto fs = std::make_shared<CrashFs>();
  std::atomic<bool> armed{false};
  fs->SetHook([&](CrashFs::Op op, const std::string& path) {
    if (op == CrashFs::Op::kAppend && path.find("CURRENT_DB") != std::string::npos &&
        armed.exchange(false)) {
      fs->Crash();
    }
  });
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  StoreOptions options;
  options.dir = dir;
  options.env = env.get();
  auto store = std::move(Store::Open(options)).value();
  ApplyLog(*store, log, 1, 50, rng);
  ASSERT_TRUE(store->MakeDurable().ok());
  Fingerprint old_print = Take(*store);

  auto installer = std::move(store->NewSnapshotInstaller()).value();
  ASSERT_TRUE(installer->Append(image).ok());
  armed = true;
  auto finished = installer->Finish();
  ASSERT_TRUE(fs->crashed());
  // Whatever Finish answered, the store still serves reads (it did not lose its database).
  Fingerprint now = Take(*store);
  EXPECT_TRUE(now.revision == old_print.revision || now.revision == source_print.revision);
  installer.reset();
  store.reset();
  fs->DropUnsynced();

  store = std::move(Store::Open(options)).value();
  Fingerprint after = Take(*store);
  const bool is_old = after.hash == old_print.hash && after.revision == old_print.revision;
  const bool is_new = after.hash == source_print.hash && after.revision == source_print.revision;
  EXPECT_TRUE(is_old || is_new) << "revision " << after.revision << " finished "
                                << finished.status().ToString();
  store.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ballot::mvcc
