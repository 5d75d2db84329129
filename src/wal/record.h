// The WAL's record framing and payload encodings (docs/wal-format.md is the reference).
//
// A record is [masked crc32c u32 | payload length u32 | type u8 | payload], little-endian, with the
// crc over type and payload. Decoding is strict: every read is bounds-checked and a malformed
// payload is a DataLoss status, never a crash or an out-of-bounds read.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "consensus/types.h"

namespace ballot::wal {

enum class RecordType : uint8_t {
  kSegmentHeader = 1,  // First record of every segment: identity and the segment's first index.
  kEntry = 2,
  kHardState = 3,
  kSnapshot = 4,  // A snapshot marker: the meta of a snapshot whose data the caller stores.
  // Several contiguous entries in one record, so that they become durable all or nothing: used
  // when a write overwrites entries already in the log (a Paxos acceptor rewriting accepted
  // slots must never lose the old values to a torn write without having the new ones).
  kEntryBatch = 5,
};

constexpr size_t kRecordHeaderBytes = 9;
// Checked by the writer (an assertion: callers bound what they propose) and by the reader (a
// length above it is corruption).
constexpr uint32_t kRecordBytesMax = 64u << 20;
constexpr size_t kEngineNameBytesMax = 64;
// Voters plus learners in one ConfState.
constexpr uint32_t kConfMembersMax = 4096;
constexpr uint32_t kFormatVersion = 1;

// Who a data directory belongs to; every segment starts with it.
struct Identity {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  std::string engine;  // "raft", "paxos": an engine cannot read another's log.
  uint32_t format_version = kFormatVersion;
  friend bool operator==(const Identity&, const Identity&) = default;
  std::string ToString() const;
};

struct SegmentHeader {
  Identity identity;
  consensus::Index first_index = 0;  // Also the segment's file name.
  friend bool operator==(const SegmentHeader&, const SegmentHeader&) = default;
};

// Appends one framed record to `out`.
void AppendRecord(std::string* out, RecordType type, std::string_view payload);

std::string EncodeSegmentHeader(const SegmentHeader& header);
std::string EncodeEntry(const consensus::Entry& entry);
std::string EncodeHardState(const consensus::HardState& hs);
std::string EncodeSnapshotMeta(const consensus::SnapshotMeta& meta);

Result<SegmentHeader> DecodeSegmentHeader(std::string_view payload);
Result<consensus::Entry> DecodeEntry(std::string_view payload);
// [u32 count | count x (u32 length | entry as EncodeEntry)]; the entries contiguous, count >= 1.
std::string EncodeEntryBatch(const std::vector<consensus::Entry>& entries);
Result<std::vector<consensus::Entry>> DecodeEntryBatch(std::string_view payload);
Result<consensus::HardState> DecodeHardState(std::string_view payload);
Result<consensus::SnapshotMeta> DecodeSnapshotMeta(std::string_view payload);

// Reads the records of one segment image, front to back.
class RecordReader {
 public:
  enum class Outcome {
    kRecord,   // A record with a good crc and a known type.
    kEnd,      // No more records: the end of the data, or only zeros from here on.
    kTorn,     // A damaged record with nothing but zeros after it: an interrupted last write.
    kCorrupt,  // Damage with data after it.
  };
  struct Item {
    Outcome outcome = Outcome::kEnd;
    RecordType type = RecordType::kEntry;
    std::string_view payload;  // Points into the data given to the reader.
    uint64_t offset = 0;       // Where the record (or the damage) starts.
    std::string problem;       // What is wrong, for kTorn and kCorrupt.
  };

  // `data` must outlive the reader and its items.
  explicit RecordReader(std::string_view data) : data_(data) {}

  // After kEnd, kTorn or kCorrupt, every later call returns the same.
  Item Next();

 private:
  bool ZeroFrom(uint64_t offset) const;

  std::string_view data_;
  uint64_t offset_ = 0;
};

}  // namespace ballot::wal
