#include "mvcc/encoding.h"

namespace ballot::mvcc::internal {

void PutFixed64BE(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, 8);
}

uint64_t GetFixed64BE(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void PutFixed64LE(std::string* out, uint64_t v) {
  char buf[8];
  for (int i = 0; i < 8; ++i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, 8);
}

uint64_t GetFixed64LE(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

std::string EncodeUserKey(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 2 + 16);
  for (char c : key) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xff');
  }
  out.push_back('\0');
  out.push_back('\x01');
  return out;
}

std::string UserKeyUpperBound(std::string_view key) {
  std::string out = EncodeUserKey(key);
  out.back() = '\x02';
  return out;
}

std::string KvKey(std::string_view key, Rev rev) {
  std::string out = EncodeUserKey(key);
  PutFixed64BE(&out, ~static_cast<uint64_t>(rev.main));
  PutFixed64BE(&out, ~static_cast<uint64_t>(rev.sub));
  return out;
}

std::string KvSeekKey(std::string_view key, Rev rev) { return KvKey(key, rev); }

bool ParseKvKey(std::string_view encoded, std::string* key, Rev* rev) {
  key->clear();
  size_t i = 0;
  while (true) {
    if (i >= encoded.size()) return false;
    char c = encoded[i++];
    if (c != '\0') {
      key->push_back(c);
      continue;
    }
    if (i >= encoded.size()) return false;
    char next = encoded[i++];
    if (next == '\xff') {
      key->push_back('\0');
    } else if (next == '\x01') {
      break;
    } else {
      return false;
    }
  }
  if (encoded.size() - i != 16) return false;
  rev->main = static_cast<Revision>(~GetFixed64BE(encoded.data() + i));
  rev->sub = static_cast<int64_t>(~GetFixed64BE(encoded.data() + i + 8));
  return true;
}

std::string RevKey(Rev rev) {
  std::string out;
  PutFixed64BE(&out, static_cast<uint64_t>(rev.main));
  PutFixed64BE(&out, static_cast<uint64_t>(rev.sub));
  return out;
}

bool ParseRevKey(std::string_view encoded, Rev* rev) {
  if (encoded.size() != 16) return false;
  rev->main = static_cast<Revision>(GetFixed64BE(encoded.data()));
  rev->sub = static_cast<int64_t>(GetFixed64BE(encoded.data() + 8));
  return true;
}

std::string EncodePutRecord(const KeyValue& kv) {
  std::string out;
  out.reserve(25 + kv.value.size());
  out.push_back('\0');
  PutFixed64LE(&out, static_cast<uint64_t>(kv.create_revision));
  PutFixed64LE(&out, static_cast<uint64_t>(kv.version));
  PutFixed64LE(&out, static_cast<uint64_t>(kv.lease));
  out.append(kv.value);
  return out;
}

std::string EncodeTombstoneRecord() { return std::string(1, '\x01'); }

RecordKind PeekRecord(std::string_view record) {
  if (record.empty()) return RecordKind::kMalformed;
  if (record[0] == '\0') return record.size() >= 25 ? RecordKind::kPut : RecordKind::kMalformed;
  if (record[0] == '\x01')
    return record.size() == 1 ? RecordKind::kTombstone : RecordKind::kMalformed;
  return RecordKind::kMalformed;
}

bool DecodePutRecordMeta(std::string_view record, KeyValue* kv) {
  if (PeekRecord(record) != RecordKind::kPut) return false;
  kv->create_revision = static_cast<Revision>(GetFixed64LE(record.data() + 1));
  kv->version = static_cast<int64_t>(GetFixed64LE(record.data() + 9));
  kv->lease = static_cast<LeaseId>(GetFixed64LE(record.data() + 17));
  return true;
}

bool DecodePutRecord(std::string_view record, KeyValue* kv) {
  if (!DecodePutRecordMeta(record, kv)) return false;
  kv->value.assign(record.data() + 25, record.size() - 25);
  return true;
}

}  // namespace ballot::mvcc::internal
