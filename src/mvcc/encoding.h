// How the store lays out its records in RocksDB (docs/mvcc.md, "Data layout"). Internal to mvcc/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "mvcc/kv.h"

namespace ballot::mvcc::internal {

// A revision: `main` counts mutating requests, `sub` the changes within one.
struct Rev {
  Revision main = 0;
  int64_t sub = 0;
  auto operator<=>(const Rev&) const = default;
};

void PutFixed64BE(std::string* out, uint64_t v);
uint64_t GetFixed64BE(const char* p);
void PutFixed64LE(std::string* out, uint64_t v);
uint64_t GetFixed64LE(const char* p);

// The user key, order-preserving and prefix-free: every 0x00 becomes 0x00 0xFF, and 0x00 0x01
// ends it. So a < b as byte strings iff Enc(a) < Enc(b), and no encoded key is a prefix of another.
std::string EncodeUserKey(std::string_view key);
// Past every kv-record key of `key` and before those of any greater user key.
std::string UserKeyUpperBound(std::string_view key);

// kv column family: Enc(key) | BE64(~main) | BE64(~sub): a key's versions are contiguous,
// newest first.
std::string KvKey(std::string_view key, Rev rev);
// Where the versions of `key` at or below `rev` begin.
std::string KvSeekKey(std::string_view key, Rev rev);
// Returns false on a malformed key.
bool ParseKvKey(std::string_view encoded, std::string* key, Rev* rev);

// rev column family: BE64(main) | BE64(sub) -> the user key.
std::string RevKey(Rev rev);
bool ParseRevKey(std::string_view encoded, Rev* rev);

// kv record: a version or a tombstone.
//   put:       0x00 | LE64 create_revision | LE64 version | LE64 lease | value
//   tombstone: 0x01
std::string EncodePutRecord(const KeyValue& kv);
std::string EncodeTombstoneRecord();
enum class RecordKind { kPut, kTombstone, kMalformed };
RecordKind PeekRecord(std::string_view record);
// Fills kv's value/create_revision/version/lease from a put record. False if malformed.
bool DecodePutRecord(std::string_view record, KeyValue* kv);
// The same but the value (left as it is).
bool DecodePutRecordMeta(std::string_view record, KeyValue* kv);

}  // namespace ballot::mvcc::internal
