// Snapshots of the mvcc store: round trip, restore + rest of the log == everything applied,
// atomic install (every interruption leaves the old or the new store), and strict decoding under
// randomized corruption.
#include <gtest/gtest.h>
#include <rocksdb/env.h>

#include <chrono>
#include <future>
#include <random>
#include <thread>

#include "base/crc32c.h"
#include "mvcc/snapshot.h"
#include "mvcc/store.h"

namespace ballot::mvcc {
namespace {

const std::string kNul(1, '\0');

PutRequest PutReq(std::string key, std::string value) {
  PutRequest p;
  p.key = std::move(key);
  p.value = std::move(value);
  return p;
}

RangeRequest All() {
  RangeRequest r;
  r.key = kNul;
  r.range_end = kNul;
  return r;
}

// A deterministic log of writes: puts, deletes, txns, one compaction.
struct Entry {
  int kind;  // 0 put, 1 delete, 2 txn, 3 compact
  std::string key;
  std::string value;
  Revision compact = 0;
};

std::vector<Entry> MakeLog(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<Entry> log;
  for (int i = 0; i < n; ++i) {
    Entry e;
    int r = static_cast<int>(rng() % 100);
    e.kind = r < 60 ? 0 : r < 75 ? 1 : r < 97 ? 2 : 3;
    e.key = "k" + std::to_string(rng() % 12);
    e.value = std::string(rng() % 40, static_cast<char>('a' + rng() % 26));
    e.compact = static_cast<Revision>(i / 2);
    log.push_back(e);
  }
  return log;
}

void Apply(ApplyBatch& b, uint64_t index, const Entry& e) {
  LogPosition at{index, 1 + index / 10};
  switch (e.kind) {
    case 0:
      (void)b.Put(at, PutReq(e.key, e.value));
      break;
    case 1: {
      DeleteRangeRequest d;
      d.key = e.key;
      (void)b.DeleteRange(at, d);
      break;
    }
    case 2: {
      TxnRequest t;
      Compare c;
      c.key = e.key;
      c.target = Compare::CompareTarget::kVersion;
      c.result = Compare::CompareResult::kGreater;
      t.compare.push_back(c);
      t.success = {MakeOp(PutReq(e.key, e.value + "!")), MakeOp(PutReq(e.key + "/t", e.value))};
      DeleteRangeRequest d;
      d.key = e.key;
      d.range_end = e.key + "0";
      t.failure = {MakeOp(d)};
      (void)b.Txn(at, t);
      break;
    }
    case 3:
      (void)b.Compact(at, CompactionRequest{e.compact, false});
      break;
  }
  if (index % 5 == 0) b.PutMeta(at, "lease/" + std::to_string(index % 3), e.value);
}

// Applies log entries [from, to) (1-based indexes) in batches of `per_batch`.
void ApplyRange(Store& store, const std::vector<Entry>& log, uint64_t from, uint64_t to,
                size_t per_batch) {
  uint64_t i = from;
  while (i < to) {
    ApplyBatch b = store.NewBatch();
    for (size_t n = 0; n < per_batch && i < to; ++n, ++i) Apply(b, i, log[i - 1]);
    ASSERT_TRUE(b.Commit().ok());
  }
}

class MvccSnapshotTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open(const std::string& dir) {
    StoreOptions options;
    options.dir = dir;
    options.env = env_.get();
    auto store = Store::Open(options);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return std::move(store).value();
  }

  std::string Stream(Store& store, const std::string& metadata) {
    auto writer = store.NewSnapshotWriter(metadata);
    EXPECT_TRUE(writer.ok());
    auto all = (*writer)->ReadAll();
    EXPECT_TRUE(all.ok());
    return *all;
  }

  // Installs `stream` in pieces of random sizes.
  Result<SnapshotInfo> Install(Store& store, std::string_view stream, uint64_t seed) {
    std::mt19937_64 rng(seed);
    ASSIGN_OR_RETURN(auto installer, store.NewSnapshotInstaller());
    size_t pos = 0;
    while (pos < stream.size()) {
      size_t n = std::min<size_t>(stream.size() - pos, 1 + rng() % 300);
      RETURN_IF_ERROR(installer->Append(stream.substr(pos, n)));
      pos += n;
    }
    return installer->Finish();
  }

  static uint32_t Hash(Store& store, Revision rev = 0) {
    auto h = store.HashKV(HashKVRequest{rev});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    return h.ok() ? h->hash : 0;
  }

  std::unique_ptr<rocksdb::Env> env_{rocksdb::NewMemEnv(rocksdb::Env::Default())};
};

TEST_F(MvccSnapshotTest, RoundTripCarriesEverything) {
  auto a = Open("/a");
  std::vector<Entry> log = MakeLog(1, 200);
  ApplyRange(*a, log, 1, 201, 7);
  std::string stream = Stream(*a, "membership:1,2,3");

  // Chunks are bounded and concatenate to the stream.
  auto writer = a->NewSnapshotWriter("membership:1,2,3");
  ASSERT_TRUE(writer.ok());
  std::string joined, chunk;
  int chunks = 0;
  while (*(*writer)->Next(&chunk, 512)) {
    EXPECT_LE(chunk.size(), 512u);
    // The writer streams: it holds about a piece and a record (under 512 bytes here), not the
    // image.
    EXPECT_LE((*writer)->BufferedBytes(), 2048u);
    joined += chunk;
    ++chunks;
  }
  writer->reset();
  EXPECT_EQ(joined, stream);
  EXPECT_GT(chunks, 3);
  EXPECT_GT(stream.size(), 8u * 1024);

  auto b = Open("/b");
  ApplyRange(*b, MakeLog(99, 30), 1, 31, 5);  // unrelated content, replaced by the install
  auto info = Install(*b, stream, 7);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->metadata, "membership:1,2,3");
  EXPECT_EQ(info->applied, (LogPosition{200, 21}));
  EXPECT_EQ(b->Applied(), a->Applied());
  EXPECT_EQ(b->CurrentRevision(), a->CurrentRevision());
  EXPECT_EQ(b->CompactRevision(), a->CompactRevision());
  EXPECT_EQ(Hash(*b), Hash(*a));
  EXPECT_TRUE(*b->Range(All()) == *a->Range(All()));
  EXPECT_EQ(*b->ScanMeta(""), *a->ScanMeta(""));
  EXPECT_EQ(b->DurableAppliedIndex(), 200u);

  // Survives a reopen.
  b.reset();
  b = Open("/b");
  EXPECT_EQ(Hash(*b), Hash(*a));
  EXPECT_EQ(b->Applied(), a->Applied());
}

TEST_F(MvccSnapshotTest, RestoredStorePlusRestOfLogEqualsFullReplay) {
  std::vector<Entry> log = MakeLog(2, 400);
  auto full = Open("/full");
  ApplyRange(*full, log, 1, 401, 13);

  auto leader = Open("/leader");
  ApplyRange(*leader, log, 1, 251, 4);
  auto writer = leader->NewSnapshotWriter("m");
  ASSERT_TRUE(writer.ok());
  // The leader keeps applying while the snapshot is read: the image stays at index 250.
  ApplyRange(*leader, log, 251, 301, 4);
  auto stream = (*writer)->ReadAll();
  ASSERT_TRUE(stream.ok());
  writer->reset();

  auto follower = Open("/follower");
  auto info = Install(*follower, *stream, 3);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->applied.index, 250u);
  EXPECT_EQ(follower->Applied().index, 250u);
  ApplyRange(*follower, log, 251, 401, 9);

  EXPECT_EQ(follower->CurrentRevision(), full->CurrentRevision());
  EXPECT_EQ(follower->CompactRevision(), full->CompactRevision());
  for (Revision rev = full->CompactRevision(); rev <= full->CurrentRevision(); ++rev) {
    if (rev < 1) continue;
    ASSERT_EQ(Hash(*follower, rev), Hash(*full, rev)) << "revision " << rev;
  }
  EXPECT_TRUE(*follower->Range(All()) == *full->Range(All()));
  EXPECT_EQ(*follower->ScanMeta(""), *full->ScanMeta(""));
}

// An install swaps the database under an exclusive lock, and first waits for live snapshot
// writers. Range waits for it; TryRange (gRPC's threads use it) answers "not now" at once.
TEST_F(MvccSnapshotTest, TryRangeDoesNotWaitForAnInstall) {
  auto a = Open("/src");
  ApplyRange(*a, MakeLog(3, 50), 1, 51, 5);
  std::string stream = Stream(*a, "x");
  auto b = Open("/dst");
  ApplyRange(*b, MakeLog(4, 20), 1, 21, 5);
  ASSERT_TRUE(b->TryRange(All()).has_value());

  auto pin = b->NewSnapshotWriter("pin");  // Holds the install at the swap.
  ASSERT_TRUE(pin.ok());
  auto installed = std::async(std::launch::async, [&] { return Install(*b, stream, 3); });
  bool refused = false;
  std::future<bool> tried;
  for (int i = 0; i < 2000 && !refused; ++i) {
    tried = std::async(std::launch::async, [&] { return b->TryRange(All()).has_value(); });
    if (tried.wait_for(std::chrono::seconds(2)) == std::future_status::timeout) break;
    refused = !tried.get();
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  const bool waited = tried.valid();  // Not taken: TryRange was still waiting.
  EXPECT_FALSE(waited) << "TryRange waited for the install";
  EXPECT_TRUE(refused) << "the install never held the store";
  EXPECT_EQ(installed.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  pin->reset();
  if (waited) tried.wait();
  ASSERT_EQ(installed.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  ASSERT_TRUE(installed.get().ok());
  std::optional<Result<RangeResponse>> after = b->TryRange(All());
  ASSERT_TRUE(after.has_value());
  ASSERT_TRUE(after->ok());
  EXPECT_TRUE(**after == *a->Range(All()));
}

TEST_F(MvccSnapshotTest, InterruptedInstallLeavesTheOldStore) {
  auto a = Open("/src");
  ApplyRange(*a, MakeLog(3, 50), 1, 51, 5);
  std::string stream = Stream(*a, "x");

  auto b = Open("/dst");
  ApplyRange(*b, MakeLog(4, 20), 1, 21, 5);
  uint32_t before = Hash(*b);
  {
    // Half the stream, then the installer goes away (no Finish).
    auto installer = b->NewSnapshotInstaller();
    ASSERT_TRUE(installer.ok()) << installer.status().ToString();
    ASSERT_TRUE((*installer)->Append(std::string_view(stream).substr(0, stream.size() / 2)).ok());
  }
  EXPECT_EQ(Hash(*b), before);
  EXPECT_EQ(b->Applied().index, 20u);
  // A truncated stream is refused at Finish, and the store is untouched.
  {
    auto installer = b->NewSnapshotInstaller();
    ASSERT_TRUE(installer.ok()) << installer.status().ToString();
    ASSERT_TRUE((*installer)->Append(std::string_view(stream).substr(0, stream.size() - 3)).ok());
    auto finished = (*installer)->Finish();
    EXPECT_EQ(finished.status().code(), StatusCode::kDataLoss);
  }
  EXPECT_EQ(Hash(*b), before);

  // A crash while the side database was being built: it is debris at the next open.
  b.reset();
  ASSERT_TRUE(env_->CreateDirIfMissing("/dst/db-2").ok());
  ASSERT_TRUE(rocksdb::WriteStringToFile(env_.get(), "junk", "/dst/db-2/000001.log", true).ok());
  ASSERT_TRUE(rocksdb::WriteStringToFile(env_.get(), "db-2", "/dst/CURRENT_DB.tmp", true).ok());
  b = Open("/dst");
  EXPECT_EQ(Hash(*b), before);
  EXPECT_TRUE(env_->FileExists("/dst/db-2").IsNotFound());
  EXPECT_TRUE(env_->FileExists("/dst/CURRENT_DB.tmp").IsNotFound());

  // A crash after the swap, before the old database was removed: the new one is live.
  auto info = Install(*b, stream, 1);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  uint32_t after = Hash(*b);
  EXPECT_EQ(after, Hash(*a));
  b.reset();
  ASSERT_TRUE(env_->CreateDirIfMissing("/dst/db-1").ok());
  ASSERT_TRUE(rocksdb::WriteStringToFile(env_.get(), "old", "/dst/db-1/CURRENT", true).ok());
  b = Open("/dst");
  EXPECT_EQ(Hash(*b), after);
  EXPECT_TRUE(env_->FileExists("/dst/db-1").IsNotFound());
}

TEST_F(MvccSnapshotTest, CorruptStreamsAreRejected) {
  auto a = Open("/fuzz");
  ApplyRange(*a, MakeLog(5, 60), 1, 61, 6);
  std::string stream = Stream(*a, "meta");
  ASSERT_TRUE(VerifySnapshot(stream).ok());

  std::mt19937_64 rng(42);
  int rejected = 0;
  const int trials = 3000;
  for (int t = 0; t < trials; ++t) {
    std::string bad = stream;
    switch (t % 5) {
      case 0: {  // flip bits in 1..4 bytes
        int n = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < n; ++i) bad[rng() % bad.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      }
      case 1:  // truncate
        bad.resize(rng() % bad.size());
        break;
      case 2: {  // insert garbage
        std::string junk(1 + rng() % 20, '\0');
        for (char& c : junk) c = static_cast<char>(rng());
        bad.insert(rng() % bad.size(), junk);
        break;
      }
      case 3: {  // append garbage
        std::string junk(1 + rng() % 20, '\0');
        for (char& c : junk) c = static_cast<char>(rng());
        bad += junk;
        break;
      }
      case 4: {  // pure garbage, sometimes with a plausible first record header
        bad.assign(rng() % 200, '\0');
        for (char& c : bad) c = static_cast<char>(rng());
        if (bad.size() > 9 && rng() % 2) std::copy(stream.begin(), stream.begin() + 9, bad.begin());
        break;
      }
    }
    if (bad == stream) continue;
    // Fed in random pieces through the streaming decoder.
    SnapshotDecoder decoder(nullptr, nullptr);
    Status s;
    size_t pos = 0;
    while (s.ok() && pos < bad.size()) {
      size_t n = std::min<size_t>(bad.size() - pos, 1 + rng() % 500);
      s = decoder.Append(std::string_view(bad).substr(pos, n));
      pos += n;
    }
    if (s.ok()) s = decoder.Finish();
    EXPECT_FALSE(s.ok()) << "trial " << t << " accepted a corrupt stream";
    if (!s.ok()) {
      EXPECT_EQ(s.code(), StatusCode::kDataLoss);
      EXPECT_FALSE(s.message().empty());
      ++rejected;
    }
  }
  EXPECT_GT(rejected, trials * 9 / 10);

  // Through the installer: refused, and the store keeps its content.
  auto b = Open("/fuzz_dst");
  ApplyRange(*b, MakeLog(6, 10), 1, 11, 5);
  uint32_t before = Hash(*b);
  for (int t = 0; t < 20; ++t) {
    std::string bad = stream;
    bad[rng() % bad.size()] ^= 0x40;
    EXPECT_FALSE(Install(*b, bad, t).ok());
  }
  EXPECT_EQ(Hash(*b), before);
}

TEST_F(MvccSnapshotTest, ImageMustAgreeWithItsHeader) {
  // Re-frame a real image under a forged header (applied index 99 instead of 20): every checksum
  // is right, but the image's own state records say 20, so the install is refused.
  auto a = Open("/img");
  ApplyRange(*a, MakeLog(7, 20), 1, 21, 5);
  std::string stream = Stream(*a, "m");
  std::string forged;
  uint64_t entries = 0;
  uint32_t entries_crc = 0;
  SnapshotDecoder decoder(
      [&](const SnapshotInfo& info) {
        EXPECT_EQ(info.applied.index, 20u);
        std::string header = "ballot-mvcc-snapshot";
        header.append("\x01\0\0\0", 4);          // format version 1
        header.append("\x63\0\0\0\0\0\0\0", 8);  // applied index 99
        header.append(std::string(8, '\0'));     // term 0
        internal::AppendSnapshotRecord(&forged, 1, header);
        return Status::Ok();
      },
      [&](uint8_t family, std::string_view key, std::string_view value) {
        std::string payload(1, static_cast<char>(family));
        uint32_t size = static_cast<uint32_t>(key.size());
        payload.append(reinterpret_cast<const char*>(&size), 4);  // little-endian host
        payload.append(key);
        payload.append(value);
        entries_crc = crc32c::Extend(entries_crc, payload.data(), payload.size());
        ++entries;
        internal::AppendSnapshotRecord(&forged, 2, payload);
        return Status::Ok();
      });
  ASSERT_TRUE(decoder.Append(stream).ok());
  ASSERT_TRUE(decoder.Finish().ok());
  std::string trailer;
  trailer.append(reinterpret_cast<const char*>(&entries), 8);
  trailer.append(reinterpret_cast<const char*>(&entries_crc), 4);
  internal::AppendSnapshotRecord(&forged, 3, trailer);
  auto verified = VerifySnapshot(forged);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->applied.index, 99u);

  auto b = Open("/img_dst");
  ApplyRange(*b, MakeLog(8, 5), 1, 6, 5);
  uint32_t before = Hash(*b);
  auto refused = Install(*b, forged, 1);
  EXPECT_EQ(refused.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(Hash(*b), before);
  EXPECT_EQ(b->Applied().index, 5u);
}

}  // namespace
}  // namespace ballot::mvcc
