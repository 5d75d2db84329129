// Snapshot transfer in chunks, shared by both engines: the sender cuts a chunk at an offset, the
// receiver reassembles them in order.
//
// Both Raft's and Multi-Paxos's leaders send kSnapshot chunks, and a Multi-Paxos acceptor sends
// kCatchUpResponse chunks to a proposer behind its compaction point; all use the snapshot_* fields
// of Message the same way: snapshot_meta, snapshot_offset, snapshot_chunk, snapshot_size,
// snapshot_done.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "consensus/types.h"

namespace ballot::consensus {

// Fills the snapshot_* fields of `m` with the chunk of `snapshot` that starts at `offset` (clamped
// to the snapshot's size) and holds at most `chunk_bytes_max` bytes; returns the offset after it.
uint64_t FillSnapshotChunk(const Snapshot& snapshot, uint64_t offset, uint64_t chunk_bytes_max,
                           Message* m);

// Reassembles one snapshot from chunks, in order. A chunk at offset 0 starts over (unless it
// repeats the start of the snapshot being assembled); a chunk of another snapshot (sender, ballot
// or term, meta, size), or past the bytes held, is refused: the receiver answers with
// received_bytes() and the sender resumes from there (or from 0).
class SnapshotAssembler {
 public:
  enum class Outcome : uint8_t { kRefused, kInProgress, kComplete };

  // The chunk `m` (its from, term and snapshot_* fields). After kComplete, Take() the snapshot.
  Outcome Add(const Message& m);
  // Bytes held of the snapshot being assembled; 0 when none.
  uint64_t received_bytes() const { return in_ ? in_->data.size() : 0; }
  bool assembling() const { return in_.has_value(); }
  // The sender of the snapshot being assembled; kNoNode when none.
  NodeId from() const { return in_ ? in_->from : kNoNode; }
  // The assembled snapshot; the assembler is empty afterwards.
  Snapshot Take();
  void Reset() { in_.reset(); }

 private:
  struct Incoming {
    NodeId from = kNoNode;
    Term term = 0;
    SnapshotMeta meta;
    uint64_t size = 0;
    std::string data;
  };
  std::optional<Incoming> in_;
};

}  // namespace ballot::consensus
