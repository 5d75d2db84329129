#include "consensus/snapshot_assembly.h"

#include <algorithm>
#include <utility>

#include "base/assert.h"

namespace ballot::consensus {

uint64_t FillSnapshotChunk(const Snapshot& snapshot, uint64_t offset, uint64_t chunk_bytes_max,
                           Message* m) {
  BALLOT_ASSERT(chunk_bytes_max >= 1, "snapshot chunks hold at least one byte");
  const uint64_t size = snapshot.data.size();
  offset = std::min(offset, size);
  const uint64_t length = std::min(chunk_bytes_max, size - offset);
  m->snapshot_meta = snapshot.meta;
  m->snapshot_offset = offset;
  m->snapshot_chunk = snapshot.data.substr(offset, length);
  m->snapshot_size = size;
  m->snapshot_done = offset + length == size;
  return offset + length;
}

namespace {
// The first chunk reserves the declared size, up to this bound: appending to a string that
// doubles would hold up to three times the image while it reallocates (at 1,000,000 keys the
// image is ~265 MB). Past the bound, a bogus size from a peer costs nothing until bytes arrive.
constexpr uint64_t kReserveBytesMax = uint64_t{1} << 30;
}  // namespace

SnapshotAssembler::Outcome SnapshotAssembler::Add(const Message& m) {
  Incoming* in = in_ ? &*in_ : nullptr;
  const bool same = in != nullptr && in->from == m.from && in->term == m.term &&
                    in->meta == m.snapshot_meta && in->size == m.snapshot_size;
  if (m.snapshot_offset == 0 && !(same && !in->data.empty())) {
    in_ = Incoming{m.from, m.term, m.snapshot_meta, m.snapshot_size, {}};
    in = &*in_;
    in->data.reserve(std::min(m.snapshot_size, kReserveBytesMax));
  } else if (!same) {
    in_.reset();
    return Outcome::kRefused;
  }
  if (m.snapshot_offset + m.snapshot_chunk.size() > in->size) {  // Past the declared size.
    in_.reset();
    return Outcome::kRefused;
  }
  const uint64_t have = in->data.size();
  if (m.snapshot_offset > have) return Outcome::kRefused;
  if (m.snapshot_offset + m.snapshot_chunk.size() > have) {
    in->data.append(m.snapshot_chunk, have - m.snapshot_offset, std::string::npos);
  }
  if (in->data.size() < in->size || !m.snapshot_done) return Outcome::kInProgress;
  return Outcome::kComplete;
}

Snapshot SnapshotAssembler::Take() {
  BALLOT_ASSERT(in_.has_value(), "no snapshot assembled");
  Snapshot snapshot{std::move(in_->meta), std::move(in_->data)};
  in_.reset();
  return snapshot;
}

}  // namespace ballot::consensus
