#include <gtest/gtest.h>

#include "base/crc32c.h"
#include "base/random.h"
#include "wal/record.h"

namespace ballot::wal {
namespace {

using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;
using consensus::SnapshotMeta;
using Outcome = RecordReader::Outcome;

TEST(WalRecord, RoundTripsEveryPayload) {
  const SegmentHeader header{Identity{7, 3, "raft", kFormatVersion}, 42};
  EXPECT_EQ(*DecodeSegmentHeader(EncodeSegmentHeader(header)), header);
  const Entry entry{5, 9, EntryType::kConfChange, std::string("a\0b", 3)};
  EXPECT_EQ(*DecodeEntry(EncodeEntry(entry)), entry);
  const Entry empty{1, 1, EntryType::kNoop, ""};
  EXPECT_EQ(*DecodeEntry(EncodeEntry(empty)), empty);
  const HardState hs{4, 2, 17};
  EXPECT_EQ(*DecodeHardState(EncodeHardState(hs)), hs);
  const SnapshotMeta meta{100, 6, ConfState{{1, 2, 3}, {9}}};
  EXPECT_EQ(*DecodeSnapshotMeta(EncodeSnapshotMeta(meta)), meta);
}

TEST(WalRecord, StrictDecodingRejectsMalformedPayloads) {
  const std::string hs = EncodeHardState(HardState{1, 2, 3});
  EXPECT_EQ(DecodeHardState(hs.substr(0, 23)).status().code(), StatusCode::kDataLoss);
  EXPECT_FALSE(DecodeHardState(hs + "x").ok());
  std::string entry = EncodeEntry(Entry{1, 2, EntryType::kNormal, "d"});
  EXPECT_FALSE(DecodeEntry(entry.substr(0, 16)).ok());
  entry[16] = 9;  // Unknown entry type.
  EXPECT_FALSE(DecodeEntry(entry).ok());
  EXPECT_FALSE(DecodeEntry(EncodeEntry(Entry{1, 0, EntryType::kNormal, ""})).ok()) << "index 0";
  // Voters out of order: {2, 1}.
  std::string meta = EncodeSnapshotMeta(SnapshotMeta{5, 1, ConfState{{1, 2}, {}}});
  std::swap(meta[16 + 4], meta[16 + 4 + 8]);
  EXPECT_FALSE(DecodeSnapshotMeta(meta).ok());
  // A member count far beyond the payload must not be trusted.
  std::string huge = EncodeSnapshotMeta(SnapshotMeta{5, 1, ConfState{}});
  huge[16] = '\xff';
  huge[17] = '\xff';
  EXPECT_FALSE(DecodeSnapshotMeta(huge).ok());
  std::string header = EncodeSegmentHeader(SegmentHeader{Identity{1, 1, "raft"}, 1});
  EXPECT_FALSE(DecodeSegmentHeader(header.substr(0, header.size() - 1)).ok());
}

std::string ThreeRecords() {
  std::string data;
  AppendRecord(&data, RecordType::kEntry, EncodeEntry(Entry{1, 1, EntryType::kNormal, "one"}));
  AppendRecord(&data, RecordType::kHardState, EncodeHardState(HardState{1, 1, 1}));
  AppendRecord(&data, RecordType::kEntry, EncodeEntry(Entry{1, 2, EntryType::kNormal, "two"}));
  return data;
}

TEST(WalRecord, ReaderReadsRecordsThenEndsAtZeros) {
  const std::string data = ThreeRecords() + std::string(100, '\0');
  RecordReader reader(data);
  EXPECT_EQ(reader.Next().type, RecordType::kEntry);
  RecordReader::Item hs = reader.Next();
  ASSERT_EQ(hs.outcome, Outcome::kRecord);
  EXPECT_EQ(*DecodeHardState(hs.payload), (HardState{1, 1, 1}));
  EXPECT_EQ(reader.Next().outcome, Outcome::kRecord);
  RecordReader::Item end = reader.Next();
  EXPECT_EQ(end.outcome, Outcome::kEnd);
  EXPECT_EQ(end.offset, ThreeRecords().size());
  EXPECT_EQ(reader.Next().outcome, Outcome::kEnd);
}

TEST(WalRecord, ReaderTellsTornTailFromCorruption) {
  const std::string good = ThreeRecords();
  const uint64_t last = good.size() - (kRecordHeaderBytes + 17 + 3);
  // Every prefix of the last record, padded with zeros or not, is a torn tail (or nothing).
  for (uint64_t cut = last; cut < good.size(); ++cut) {
    for (bool pad : {false, true}) {
      std::string data =
          good.substr(0, cut) + (pad ? std::string(good.size() - cut + 50, '\0') : "");
      RecordReader reader(data);
      reader.Next();
      reader.Next();
      RecordReader::Item item = reader.Next();
      EXPECT_NE(item.outcome, Outcome::kCorrupt) << "cut " << cut;
      EXPECT_NE(item.outcome, Outcome::kRecord) << "cut " << cut;
      EXPECT_EQ(item.offset, last);
    }
  }
  // A flipped payload byte in the first record, with records after it: corruption.
  std::string data = good;
  data[kRecordHeaderBytes + 3] ^= 0x10;
  RecordReader::Item item = RecordReader(data).Next();
  EXPECT_EQ(item.outcome, Outcome::kCorrupt);
  EXPECT_EQ(item.offset, 0u);
  EXPECT_EQ(item.problem, "checksum mismatch");
}

TEST(WalRecord, ReaderRejectsLengthOverMaximum) {
  std::string data = ThreeRecords();
  const uint32_t length = kRecordBytesMax + 1;
  for (int i = 0; i < 4; ++i) data[4 + i] = static_cast<char>((length >> (8 * i)) & 0xff);
  EXPECT_EQ(RecordReader(data).Next().outcome, Outcome::kCorrupt);
}

TEST(WalRecord, FuzzedInputNeverCrashesTheReaderOrDecoders) {
  Random random(20240601);
  const std::string base = ThreeRecords();
  for (int round = 0; round < 5000; ++round) {
    std::string data = base;
    if (random.Chance(0.3)) {
      data.resize(random.Uniform(64));
      for (char& c : data) c = static_cast<char>(random.Uniform(256));
    } else {
      const int flips = 1 + static_cast<int>(random.Uniform(4));
      for (int i = 0; i < flips; ++i)
        data[random.Uniform(data.size())] ^= static_cast<char>(1 + random.Uniform(255));
      data.resize(random.Uniform(data.size() + 1));
    }
    RecordReader reader(data);
    for (int i = 0; i < 10; ++i) {
      RecordReader::Item item = reader.Next();
      if (item.outcome != Outcome::kRecord) break;
      (void)DecodeEntry(item.payload);
      (void)DecodeHardState(item.payload);
      (void)DecodeSnapshotMeta(item.payload);
      (void)DecodeSegmentHeader(item.payload);
    }
    (void)DecodeSnapshotMeta(data);
    (void)DecodeSegmentHeader(data);
    (void)DecodeEntry(data);
  }
}

}  // namespace
}  // namespace ballot::wal
