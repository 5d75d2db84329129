#include "wal/record.h"

#include <algorithm>

#include "base/crc32c.h"

namespace ballot::wal {

using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;
using consensus::SnapshotMeta;

namespace {

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t LoadLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// Bounds-checked reads over a payload; after the first failure every read fails.
class Decoder {
 public:
  explicit Decoder(std::string_view data) : data_(data) {}
  bool U8(uint8_t* v) { return Fixed(1, v); }
  bool U32(uint32_t* v) { return Fixed(4, v); }
  bool U64(uint64_t* v) { return Fixed(8, v); }
  bool Bytes(size_t n, std::string_view* v) {
    if (!ok_ || data_.size() - pos_ < n) return ok_ = false;
    *v = data_.substr(pos_, n);
    pos_ += n;
    return true;
  }
  std::string_view Rest() {
    std::string_view rest = data_.substr(pos_);
    pos_ = data_.size();
    return rest;
  }
  bool Done() const { return ok_ && pos_ == data_.size(); }

 private:
  template <typename T>
  bool Fixed(size_t n, T* v) {
    if (!ok_ || data_.size() - pos_ < n) return ok_ = false;
    *v = static_cast<T>(LoadLe(data_.data() + pos_, static_cast<int>(n)));
    pos_ += n;
    return true;
  }

  std::string_view data_;
  size_t pos_ = 0;
  bool ok_ = true;
};

Status Malformed(std::string_view what, std::string_view why) {
  return Status::DataLoss("malformed " + std::string(what) + " record: " + std::string(why));
}

void PutConfState(std::string* out, const ConfState& conf) {
  BALLOT_ASSERT(conf.voters.size() + conf.learners.size() <= kConfMembersMax);
  for (const auto* ids : {&conf.voters, &conf.learners}) {
    PutU32(out, static_cast<uint32_t>(ids->size()));
    for (uint64_t id : *ids) PutU64(out, id);
  }
}

// Member ids strictly increasing and non-zero (the encoder writes a std::set), at most
// kConfMembersMax in all.
bool GetConfState(Decoder* d, ConfState* conf) {
  uint32_t members = 0;
  for (auto* ids : {&conf->voters, &conf->learners}) {
    uint32_t count = 0;
    if (!d->U32(&count) || count > kConfMembersMax - members) return false;
    members += count;
    uint64_t prev = 0;
    for (uint32_t i = 0; i < count; ++i) {
      uint64_t id = 0;
      if (!d->U64(&id) || id <= prev) return false;
      ids->insert(ids->end(), id);
      prev = id;
    }
  }
  for (uint64_t id : conf->learners) {
    if (conf->voters.count(id) > 0) return false;
  }
  return true;
}

}  // namespace

std::string Identity::ToString() const {
  return "cluster " + std::to_string(cluster_id) + ", member " + std::to_string(member_id) +
         ", engine \"" + engine + "\", format " + std::to_string(format_version);
}

void AppendRecord(std::string* out, RecordType type, std::string_view payload) {
  BALLOT_ASSERT(payload.size() <= kRecordBytesMax, "WAL record over kRecordBytesMax");
  const char type_byte = static_cast<char>(type);
  uint32_t crc = crc32c::Extend(0, &type_byte, 1);
  crc = crc32c::Extend(crc, payload.data(), payload.size());
  PutU32(out, crc32c::Mask(crc));
  PutU32(out, static_cast<uint32_t>(payload.size()));
  PutU8(out, static_cast<uint8_t>(type));
  out->append(payload);
}

std::string EncodeSegmentHeader(const SegmentHeader& header) {
  BALLOT_ASSERT(header.identity.engine.size() <= kEngineNameBytesMax);
  std::string out;
  PutU32(&out, header.identity.format_version);
  PutU64(&out, header.identity.cluster_id);
  PutU64(&out, header.identity.member_id);
  PutU64(&out, header.first_index);
  PutU8(&out, static_cast<uint8_t>(header.identity.engine.size()));
  out.append(header.identity.engine);
  return out;
}

Result<SegmentHeader> DecodeSegmentHeader(std::string_view payload) {
  Decoder d(payload);
  SegmentHeader h;
  uint8_t engine_bytes = 0;
  std::string_view engine;
  if (!d.U32(&h.identity.format_version) || !d.U64(&h.identity.cluster_id) ||
      !d.U64(&h.identity.member_id) || !d.U64(&h.first_index) || !d.U8(&engine_bytes) ||
      engine_bytes > kEngineNameBytesMax || !d.Bytes(engine_bytes, &engine) || !d.Done()) {
    return Malformed("segment header", "bad length or field");
  }
  if (h.first_index == 0) return Malformed("segment header", "first index 0");
  h.identity.engine = std::string(engine);
  return h;
}

std::string EncodeEntry(const Entry& entry) {
  std::string out;
  out.reserve(17 + entry.data.size());
  PutU64(&out, entry.term);
  PutU64(&out, entry.index);
  PutU8(&out, static_cast<uint8_t>(entry.type));
  out.append(entry.data);
  return out;
}

Result<Entry> DecodeEntry(std::string_view payload) {
  Decoder d(payload);
  Entry e;
  uint8_t type = 0;
  if (!d.U64(&e.term) || !d.U64(&e.index) || !d.U8(&type)) return Malformed("entry", "too short");
  if (type > static_cast<uint8_t>(EntryType::kConfChange))
    return Malformed("entry", "unknown type");
  if (e.index == 0) return Malformed("entry", "index 0");
  e.type = static_cast<EntryType>(type);
  e.data = std::string(d.Rest());
  return e;
}

std::string EncodeEntryBatch(const std::vector<Entry>& entries) {
  BALLOT_ASSERT(!entries.empty(), "empty entry batch");
  std::string out;
  PutU32(&out, static_cast<uint32_t>(entries.size()));
  for (const Entry& entry : entries) {
    const std::string encoded = EncodeEntry(entry);
    PutU32(&out, static_cast<uint32_t>(encoded.size()));
    out.append(encoded);
  }
  return out;
}

Result<std::vector<Entry>> DecodeEntryBatch(std::string_view payload) {
  Decoder d(payload);
  uint32_t count = 0;
  // Each entry takes at least 4 + 17 bytes, which bounds count by the payload before reserving.
  if (!d.U32(&count) || count == 0 || count > payload.size() / 21) {
    return Malformed("entry batch", "bad count");
  }
  std::vector<Entry> entries;
  entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t bytes = 0;
    std::string_view encoded;
    if (!d.U32(&bytes) || !d.Bytes(bytes, &encoded)) return Malformed("entry batch", "too short");
    ASSIGN_OR_RETURN(Entry entry, DecodeEntry(encoded));
    if (i > 0 && entry.index != entries.back().index + 1) {
      return Malformed("entry batch", "entries not contiguous");
    }
    entries.push_back(std::move(entry));
  }
  if (!d.Done()) return Malformed("entry batch", "trailing bytes");
  return entries;
}

std::string EncodeHardState(const HardState& hs) {
  std::string out;
  PutU64(&out, hs.term);
  PutU64(&out, hs.vote);
  PutU64(&out, hs.commit);
  return out;
}

Result<HardState> DecodeHardState(std::string_view payload) {
  Decoder d(payload);
  HardState hs;
  if (!d.U64(&hs.term) || !d.U64(&hs.vote) || !d.U64(&hs.commit) || !d.Done()) {
    return Malformed("hard state", "length is not 24 bytes");
  }
  return hs;
}

std::string EncodeSnapshotMeta(const SnapshotMeta& meta) {
  std::string out;
  PutU64(&out, meta.index);
  PutU64(&out, meta.term);
  PutConfState(&out, meta.conf);
  return out;
}

Result<SnapshotMeta> DecodeSnapshotMeta(std::string_view payload) {
  Decoder d(payload);
  SnapshotMeta meta;
  if (!d.U64(&meta.index) || !d.U64(&meta.term) || !GetConfState(&d, &meta.conf) || !d.Done()) {
    return Malformed("snapshot", "bad length or membership");
  }
  return meta;
}

bool RecordReader::ZeroFrom(uint64_t offset) const {
  if (offset >= data_.size()) return true;
  return std::all_of(data_.begin() + static_cast<std::ptrdiff_t>(offset), data_.end(),
                     [](char c) { return c == 0; });
}

RecordReader::Item RecordReader::Next() {
  Item item;
  item.offset = offset_;
  const uint64_t remaining = data_.size() - offset_;
  if (ZeroFrom(offset_)) return item;  // kEnd: the end, or the preallocated zeros after it.
  auto fail = [&](Outcome outcome, std::string problem) {
    item.outcome = outcome;
    item.problem = std::move(problem);
    return item;
  };
  if (remaining < kRecordHeaderBytes) return fail(Outcome::kTorn, "short record header");
  const char* p = data_.data() + offset_;
  const uint32_t stored_crc = static_cast<uint32_t>(LoadLe(p, 4));
  const uint32_t length = static_cast<uint32_t>(LoadLe(p + 4, 4));
  if (length > kRecordBytesMax) {
    return fail(Outcome::kCorrupt, "record length " + std::to_string(length) + " over the maximum");
  }
  if (length > remaining - kRecordHeaderBytes) {
    return fail(Outcome::kTorn,
                "record of " + std::to_string(length) + " bytes runs past the end of the file");
  }
  const uint64_t end = offset_ + kRecordHeaderBytes + length;
  const uint32_t crc = crc32c::Extend(0, p + 8, 1 + length);
  if (crc32c::Unmask(stored_crc) != crc) {
    // A write torn by a crash leaves only zeros after it (segments are preallocated with zeros);
    // anything else after a bad checksum is damage to data that had been written.
    return fail(ZeroFrom(end) ? Outcome::kTorn : Outcome::kCorrupt, "checksum mismatch");
  }
  const uint8_t type = static_cast<uint8_t>(p[8]);
  if (type < static_cast<uint8_t>(RecordType::kSegmentHeader) ||
      type > static_cast<uint8_t>(RecordType::kEntryBatch)) {
    return fail(Outcome::kCorrupt, "unknown record type " + std::to_string(type));
  }
  item.outcome = Outcome::kRecord;
  item.type = static_cast<RecordType>(type);
  item.payload = data_.substr(offset_ + kRecordHeaderBytes, length);
  offset_ = end;
  return item;
}

}  // namespace ballot::wal
