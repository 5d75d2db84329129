// Raft engine: snapshots sent in chunks to followers behind compaction, and installed.
#include <gtest/gtest.h>

#include <deque>
#include <string>

#include "raft_harness.h"

namespace ballot::consensus::raft::testing {
namespace {

Cluster::Tweak SmallChunks() {
  return [](Config& cfg) { cfg.snapshot_chunk_bytes = 10; };
}

// Member `id`'s Raft engine over `storage`, driven by hand: messages in, Ready out, no cluster.
std::unique_ptr<Engine> BareRaft(MemoryStorage& storage, NodeId id) {
  Config config;
  config.id = id;
  config.storage = &storage;
  return NewEngine(EngineKind::kRaft, config).value();
}

// Node 3 misses entries that the leader then compacts away behind a 95-byte snapshot.
void LeaveNode3BehindCompaction(Cluster& c) {
  c.Elect(1);
  c.Isolate(3);
  for (int i = 0; i < 5; ++i) c.Propose(1, "e" + std::to_string(i));
  c.Tick(1);
  const Index applied = c.member(1).applied_index;
  ASSERT_EQ(applied, 6u);
  MemoryStorage& storage = *c.member(1).storage;
  ASSERT_TRUE(storage.CreateSnapshot(applied, c.engine(1).conf_state(), std::string(95, 's')).ok());
  ASSERT_TRUE(storage.Compact(applied).ok());
  ASSERT_GT(storage.FirstIndex(), c.engine(3).last_index() + 1);
}

TEST(RaftSnapshot, SentInChunksToFollowerBehindCompaction) {
  Cluster c(3, SmallChunks());
  LeaveNode3BehindCompaction(c);
  c.Heal();
  c.ClearSent();
  c.Tick(1, 3);
  const auto chunks = c.SentOf(MessageType::kSnapshot, 1, 3);
  ASSERT_EQ(chunks.size(), 10u);
  for (size_t i = 0; i < chunks.size(); ++i) {
    EXPECT_EQ(chunks[i].snapshot_offset, 10 * i);
    EXPECT_LE(chunks[i].snapshot_chunk.size(), 10u);
    EXPECT_EQ(chunks[i].snapshot_size, 95u);
    EXPECT_EQ(chunks[i].snapshot_done, i == 9);
  }
  ASSERT_EQ(c.member(3).installed_snapshots.size(), 1u);
  EXPECT_EQ(c.member(3).installed_snapshots[0].data, std::string(95, 's'));
  EXPECT_EQ(c.member(3).installed_snapshots[0].meta.index, 6u);
  EXPECT_EQ(c.engine(3).applied_index(), 6u);
  EXPECT_EQ(c.engine(3).conf_state(), c.engine(1).conf_state());
  EXPECT_EQ(c.engine(3).TermAt(6), c.engine(1).TermAt(6));  // The snapshot's term.
  EXPECT_EQ(c.engine(3).TermAt(5), std::nullopt);           // Covered by the snapshot.
  c.Propose(1, "after");
  c.Tick(1);
  EXPECT_EQ(c.AppliedData(3), std::vector<std::string>{"after"});
  EXPECT_EQ(c.raft(1).progress(3)->state(), ProgressState::kReplicate);
}

TEST(RaftSnapshot, LostChunkIsResent) {
  Cluster c(3, SmallChunks());
  LeaveNode3BehindCompaction(c);
  c.Heal();
  bool dropped = false;
  c.SetDropRule([&dropped](const Message& m) {
    if (m.type != MessageType::kSnapshot || m.snapshot_offset != 30 || dropped) return false;
    dropped = true;
    return true;
  });
  c.Tick(1, 3);
  ASSERT_TRUE(dropped);
  EXPECT_TRUE(c.member(3).installed_snapshots.empty());  // Stalled at byte 30.
  c.Tick(1, 12);  // After an election timeout without progress the leader resends.
  ASSERT_EQ(c.member(3).installed_snapshots.size(), 1u);
  EXPECT_EQ(c.member(3).installed_snapshots[0].data, std::string(95, 's'));
  EXPECT_EQ(c.engine(3).committed_index(), c.engine(1).committed_index());
}

// The host may take a newer snapshot while one is being streamed (here: after every chunk). The
// leader keeps sending the one it started, so the follower still gets a whole, consistent
// snapshot; restarting from byte 0 on every newer snapshot would starve it for as long as the
// host snapshots faster than a transfer completes.
TEST(RaftSnapshot, TransferFinishesWhileTheHostTakesNewerSnapshots) {
  Cluster c(3, SmallChunks());
  LeaveNode3BehindCompaction(c);
  c.Heal();
  std::deque<Message> held;  // Chunks to node 3, delivered one at a time.
  c.SetDropRule([&held](const Message& m) {
    if (m.type != MessageType::kSnapshot || m.to != 3) return false;
    held.push_back(m);
    return true;
  });
  c.Tick(1);
  for (int i = 0; i < 30 && c.member(3).installed_snapshots.empty(); ++i) {
    ASSERT_FALSE(held.empty()) << "transfer stalled";
    const Message chunk = held.front();
    held.pop_front();
    ASSERT_TRUE(c.engine(3).Step(chunk).ok());
    c.Stabilize();
    // Meanwhile the leader's host applies more and takes a newer snapshot.
    c.Propose(1, "n" + std::to_string(i));
    MemoryStorage& storage = *c.member(1).storage;
    const Index applied = c.member(1).applied_index;
    const std::string data(95, static_cast<char>('a' + i % 26));
    ASSERT_TRUE(storage.CreateSnapshot(applied, c.engine(1).conf_state(), data).ok());
    ASSERT_TRUE(storage.Compact(applied).ok());
  }
  ASSERT_EQ(c.member(3).installed_snapshots.size(), 1u) << "snapshot never installed";
  const Snapshot& installed = c.member(3).installed_snapshots[0];
  EXPECT_EQ(installed.meta.index, 6u);              // The one the transfer started with...
  EXPECT_EQ(installed.data, std::string(95, 's'));  // ...whole, not mixed with newer ones.
  // Node 3 then catches up, with newer snapshots since the log was compacted past 6.
  c.ClearDropRule();
  for (const Message& m : held) ASSERT_TRUE(c.engine(3).Step(m).ok());
  c.Tick(1, 3);
  EXPECT_EQ(c.engine(3).committed_index(), c.engine(1).committed_index());
  EXPECT_GE(c.member(3).installed_snapshots.size(), 2u);
}

TEST(RaftSnapshot, ChunkAtWrongOffsetIsRejectedWithBytesHeld) {
  MemoryStorage storage;
  storage.SetInitialConfState(ConfState{{1, 2}, {}});
  auto engine = BareRaft(storage, 2);
  Message chunk;
  chunk.type = MessageType::kSnapshot;
  chunk.from = 1;
  chunk.to = 2;
  chunk.term = 1;
  chunk.snapshot_meta = SnapshotMeta{10, 1, ConfState{{1, 2}, {}}};
  chunk.snapshot_size = 20;
  chunk.snapshot_chunk = std::string(10, 'a');
  ASSERT_TRUE(engine->Step(chunk).ok());
  chunk.snapshot_offset = 15;  // A gap: bytes 10..14 are missing.
  chunk.snapshot_chunk = std::string(5, 'b');
  ASSERT_TRUE(engine->Step(chunk).ok());
  Ready rd = engine->GetReady();
  ASSERT_EQ(rd.messages_after_persist.size(), 2u);
  EXPECT_FALSE(rd.messages_after_persist[0].reject);
  EXPECT_EQ(rd.messages_after_persist[0].index, 10u);
  EXPECT_TRUE(rd.messages_after_persist[1].reject);
  EXPECT_EQ(rd.messages_after_persist[1].index, 10u);
  EXPECT_FALSE(rd.snapshot.has_value());
  engine->Advance();
  // A chunk of another snapshot, not at offset 0, restarts assembly: the reply says 0 bytes.
  chunk.snapshot_meta.index = 12;
  chunk.snapshot_offset = 10;
  ASSERT_TRUE(engine->Step(chunk).ok());
  rd = engine->GetReady();
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  EXPECT_TRUE(rd.messages_after_persist[0].reject);
  EXPECT_EQ(rd.messages_after_persist[0].index, 0u);
}

TEST(RaftSnapshot, FollowerHoldingSnapshotEntryOnlyAdvancesCommit) {
  MemoryStorage storage;
  storage.SetInitialConfState(ConfState{{1, 2}, {}});
  std::vector<Entry> entries;
  for (Index i = 1; i <= 5; ++i) entries.push_back(Entry{1, i, EntryType::kNormal, "x"});
  ASSERT_TRUE(storage.Append(entries).ok());
  storage.SetHardState(HardState{1, 1, 1});
  auto engine = BareRaft(storage, 2);
  Message chunk;
  chunk.type = MessageType::kSnapshot;
  chunk.from = 1;
  chunk.to = 2;
  chunk.term = 1;
  chunk.snapshot_meta = SnapshotMeta{3, 1, ConfState{{1, 2}, {}}};
  chunk.snapshot_size = 4;
  chunk.snapshot_chunk = "data";
  chunk.snapshot_done = true;
  ASSERT_TRUE(engine->Step(chunk).ok());
  EXPECT_EQ(engine->committed_index(), 3u);
  EXPECT_EQ(engine->last_index(), 5u);  // The entries after the snapshot are kept.
  Ready rd = engine->GetReady();
  EXPECT_FALSE(rd.snapshot.has_value());
  EXPECT_EQ(rd.committed_entries.size(), 3u);
}

// Found by the soak (seed 814862, 5 members): a conflicting append arrived while a write was in
// flight, so the write's last entry changed; the whole write was then handed out again, and a torn
// rewrite of it cut the durable log below entries the member had applied.
TEST(RaftPersistence, ConflictDuringWriteRewritesOnlyTheReplacedSuffix) {
  MemoryStorage storage;
  storage.SetInitialConfState(ConfState{{1, 2, 3}, {}});
  auto engine = BareRaft(storage, 2);
  Message append;
  append.type = MessageType::kAppend;
  append.from = 1;
  append.to = 2;
  append.term = 1;
  append.commit = 2;
  for (Index i = 1; i <= 5; ++i) append.entries.push_back(Entry{1, i, EntryType::kNormal, "a"});
  ASSERT_TRUE(engine->Step(append).ok());
  Ready first = engine->GetReady();
  ASSERT_EQ(first.entries.size(), 5u);
  // While the host writes entries 1..5, the leader of term 2 replaces 4 and 5.
  Message conflict = append;
  conflict.from = 3;
  conflict.term = 2;
  conflict.index = 3;
  conflict.log_term = 1;
  conflict.entries = {Entry{2, 4, EntryType::kNormal, "b"}};
  ASSERT_TRUE(engine->Step(conflict).ok());
  ASSERT_TRUE(storage.Append(first.entries).ok());
  storage.SetHardState(*first.hard_state);
  engine->Advance();
  Ready second = engine->GetReady();
  ASSERT_EQ(second.entries.size(), 1u) << "entries 1..3 are durable and unchanged";
  EXPECT_EQ(second.entries[0].index, 4u);
  EXPECT_EQ(second.entries[0].term, 2u);
  ASSERT_TRUE(storage.Append(second.entries).ok());
  engine->Advance();
  EXPECT_EQ(engine->last_index(), 4u);
  EXPECT_EQ(engine->TermAt(5), std::nullopt);
  EXPECT_FALSE(engine->HasReady() && !engine->GetReady().entries.empty());
}

TEST(RaftSnapshot, SnapshotArrivingWhileEntriesAreUnstable) {
  MemoryStorage storage;
  storage.SetInitialConfState(ConfState{{1, 2}, {}});
  auto engine = BareRaft(storage, 2);
  Message append;
  append.type = MessageType::kAppend;
  append.from = 1;
  append.to = 2;
  append.term = 2;
  append.entries = {Entry{2, 1, EntryType::kNormal, "a"}, Entry{2, 2, EntryType::kNormal, "b"}};
  ASSERT_TRUE(engine->Step(append).ok());  // Not persisted yet: no Ready taken.
  Message chunk;
  chunk.type = MessageType::kSnapshot;
  chunk.from = 1;
  chunk.to = 2;
  chunk.term = 2;
  chunk.snapshot_meta = SnapshotMeta{10, 2, ConfState{{1, 2, 3}, {}}};
  chunk.snapshot_size = 3;
  chunk.snapshot_chunk = "img";
  chunk.snapshot_done = true;
  ASSERT_TRUE(engine->Step(chunk).ok());
  append.index = 10;
  append.log_term = 2;
  append.commit = 11;
  append.entries = {Entry{2, 11, EntryType::kNormal, "c"}};
  ASSERT_TRUE(engine->Step(append).ok());
  EXPECT_EQ(engine->last_index(), 11u);
  EXPECT_EQ(engine->TermAt(10), std::optional<Term>(2));
  EXPECT_EQ(engine->TermAt(2), std::nullopt);

  Ready rd = engine->GetReady();
  ASSERT_TRUE(rd.snapshot.has_value());
  EXPECT_EQ(rd.snapshot->meta.index, 10u);
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].index, 11u);
  EXPECT_TRUE(rd.committed_entries.empty());  // Nothing is applied before the snapshot is.
  ASSERT_TRUE(storage.ApplySnapshot(*rd.snapshot).ok());
  storage.SetHardState(*rd.hard_state);
  ASSERT_TRUE(storage.Append(rd.entries).ok());
  EXPECT_EQ(engine->conf_state().voters.size(), 2u);  // Not applied yet.
  engine->Advance();
  EXPECT_EQ(engine->conf_state(), (ConfState{{1, 2, 3}, {}}));
  EXPECT_EQ(engine->applied_index(), 10u);
  rd = engine->GetReady();
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].data, "c");
  EXPECT_TRUE(rd.entries.empty());
  engine->Advance();
  EXPECT_EQ(engine->applied_index(), 11u);
  EXPECT_FALSE(engine->HasReady());
}

TEST(RaftSnapshot, RestartFromSnapshot) {
  Cluster c(3, SmallChunks());
  LeaveNode3BehindCompaction(c);
  c.Heal();
  c.Tick(1, 3);
  ASSERT_EQ(c.member(3).installed_snapshots.size(), 1u);
  c.Restart(3, c.member(3).applied_index);
  EXPECT_EQ(c.engine(3).applied_index(), 6u);
  EXPECT_EQ(c.engine(3).TermAt(6), c.engine(1).TermAt(6));
  EXPECT_EQ(c.engine(3).conf_state(), c.engine(1).conf_state());
  const size_t applied = c.member(3).applied.size();
  c.Propose(1, "post-restart");
  c.Tick(1, 2);
  EXPECT_EQ(c.member(3).applied.size(), applied + 1);
  EXPECT_EQ(c.AppliedData(3).back(), "post-restart");
}

}  // namespace
}  // namespace ballot::consensus::raft::testing
