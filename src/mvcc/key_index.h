// KeyIndex: the newest version of every live key, without its value, in memory.
//
// A put must know the version it replaces (create_revision and version carry over; the lease is
// detached; mod_revision names it). Looking that up in RocksDB (a seek through the memtable and
// every level) was most of the cost of applying a put, so the store keeps the answer here, as
// etcd keeps its treeIndex. Only the newest version is kept: reads at a revision still go to
// RocksDB. Memory: one allocation per key (the fields below plus the key's bytes) and a pointer
// slot in an open-addressing table, about 100 bytes per 32-byte key.
//
// Not thread-safe: the store's writer (the apply thread) owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "mvcc/kv.h"

namespace ballot::mvcc {

// A live key's newest version, less its key and value.
struct KeyMeta {
  Revision mod_revision = 0;
  Revision create_revision = 0;
  int64_t version = 0;
  LeaseId lease = 0;
  bool operator==(const KeyMeta&) const = default;
};

class KeyIndex {
 public:
  KeyIndex() = default;
  ~KeyIndex();
  KeyIndex(const KeyIndex&) = delete;
  KeyIndex& operator=(const KeyIndex&) = delete;

  std::optional<KeyMeta> Find(std::string_view key) const;
  // Inserts or replaces `key`'s entry.
  void Set(std::string_view key, const KeyMeta& meta);
  // Removes `key` (a deletion); absent is fine.
  void Erase(std::string_view key);
  void Clear();

  size_t size() const { return entries_.size(); }

 private:
  struct Entry;  // KeyMeta, the key's length, then its bytes: one allocation.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view key) const;
    size_t operator()(const Entry* e) const;
  };
  struct Eq {
    using is_transparent = void;
    bool operator()(const Entry* a, const Entry* b) const;
    bool operator()(const Entry* a, std::string_view b) const;
    bool operator()(std::string_view a, const Entry* b) const { return (*this)(b, a); }
  };
  static Entry* NewEntry(std::string_view key, const KeyMeta& meta);
  static void FreeEntry(Entry* e);

  absl::flat_hash_set<Entry*, Hash, Eq> entries_;  // Owns the entries.
};

}  // namespace ballot::mvcc
