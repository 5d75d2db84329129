// Snapshot chunks, shared by both engines: cut with FillSnapshotChunk, reassembled in order.
#include <gtest/gtest.h>

#include <string>

#include "consensus/snapshot_assembly.h"

namespace ballot::consensus {
namespace {

Snapshot Image(Index index, std::string data) {
  Snapshot s;
  s.meta.index = index;
  s.meta.term = 3;
  s.meta.conf.voters = {1, 2, 3};
  s.data = std::move(data);
  return s;
}

Message Chunk(const Snapshot& s, uint64_t offset, uint64_t bytes, NodeId from = 1) {
  Message m;
  m.from = from;
  m.term = 7;
  FillSnapshotChunk(s, offset, bytes, &m);
  return m;
}

TEST(SnapshotAssembler, ChunksInOrderMakeTheSnapshot) {
  const Snapshot s = Image(40, "abcdefghij");
  SnapshotAssembler a;
  uint64_t offset = 0;
  int chunks = 0;
  SnapshotAssembler::Outcome outcome = SnapshotAssembler::Outcome::kInProgress;
  while (outcome == SnapshotAssembler::Outcome::kInProgress) {
    Message m = Chunk(s, offset, 3);
    EXPECT_LE(m.snapshot_chunk.size(), 3u);
    EXPECT_EQ(m.snapshot_done, offset + m.snapshot_chunk.size() == s.data.size());
    outcome = a.Add(m);
    offset += m.snapshot_chunk.size();
    EXPECT_EQ(a.received_bytes(), offset);
    ++chunks;
  }
  EXPECT_EQ(outcome, SnapshotAssembler::Outcome::kComplete);
  EXPECT_EQ(chunks, 4);
  Snapshot got = a.Take();
  EXPECT_EQ(got.meta, s.meta);
  EXPECT_EQ(got.data, s.data);
  EXPECT_FALSE(a.assembling());
}

TEST(SnapshotAssembler, GapsAndOtherSendersAreRefused) {
  const Snapshot s = Image(40, "abcdefghij");
  SnapshotAssembler a;
  EXPECT_EQ(a.Add(Chunk(s, 0, 4)), SnapshotAssembler::Outcome::kInProgress);
  // A chunk past the bytes held: refused, the 4 bytes are kept for the sender to resume from.
  EXPECT_EQ(a.Add(Chunk(s, 8, 2)), SnapshotAssembler::Outcome::kRefused);
  EXPECT_EQ(a.received_bytes(), 4u);
  // A repeated chunk changes nothing; the start repeated does not start over.
  EXPECT_EQ(a.Add(Chunk(s, 2, 2)), SnapshotAssembler::Outcome::kInProgress);
  EXPECT_EQ(a.Add(Chunk(s, 0, 4)), SnapshotAssembler::Outcome::kInProgress);
  EXPECT_EQ(a.received_bytes(), 4u);
  EXPECT_EQ(a.from(), 1u);
  // Another sender's chunk in the middle: refused, and the assembly is dropped.
  EXPECT_EQ(a.Add(Chunk(s, 4, 2, /*from=*/2)), SnapshotAssembler::Outcome::kRefused);
  EXPECT_EQ(a.received_bytes(), 0u);
  // Another snapshot's start starts over.
  const Snapshot newer = Image(50, "0123");
  EXPECT_EQ(a.Add(Chunk(s, 0, 4)), SnapshotAssembler::Outcome::kInProgress);
  EXPECT_EQ(a.Add(Chunk(newer, 0, 4)), SnapshotAssembler::Outcome::kComplete);
  EXPECT_EQ(a.Take().data, "0123");
}

// The declared size is reserved at the first chunk (so the image is not reallocated as it grows),
// within a bound a bogus size cannot pass; bytes past the declared size are refused.
TEST(SnapshotAssembler, TheDeclaredSizeIsReservedAndNeverExceeded) {
  const Snapshot s = Image(40, std::string(100000, 'x'));
  SnapshotAssembler a;
  EXPECT_EQ(a.Add(Chunk(s, 0, 1000)), SnapshotAssembler::Outcome::kInProgress);
  Message past = Chunk(s, 1000, 1000);
  past.snapshot_size = 1500;
  EXPECT_EQ(a.Add(past), SnapshotAssembler::Outcome::kRefused);  // another size: another image
  EXPECT_FALSE(a.assembling());

  Message first = Chunk(s, 0, 1000);
  first.snapshot_size = 1500;
  EXPECT_EQ(a.Add(first), SnapshotAssembler::Outcome::kInProgress);
  Message over = Chunk(s, 1000, 1000);
  over.snapshot_size = 1500;
  EXPECT_EQ(a.Add(over), SnapshotAssembler::Outcome::kRefused);  // 2000 bytes of a 1500-byte one
  EXPECT_FALSE(a.assembling());

  Message bogus = Chunk(s, 0, 1000);
  bogus.snapshot_size = uint64_t{1} << 62;
  EXPECT_EQ(a.Add(bogus), SnapshotAssembler::Outcome::kInProgress);
  EXPECT_EQ(a.received_bytes(), 1000u);
}

TEST(SnapshotAssembler, AnEmptySnapshotIsOneChunk) {
  const Snapshot s = Image(40, "");
  Message m = Chunk(s, 0, 8);
  EXPECT_TRUE(m.snapshot_done);
  SnapshotAssembler a;
  EXPECT_EQ(a.Add(m), SnapshotAssembler::Outcome::kComplete);
  EXPECT_EQ(a.Take().meta.index, 40u);
}

}  // namespace
}  // namespace ballot::consensus
