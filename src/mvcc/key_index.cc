#include "mvcc/key_index.h"

#include <cstring>
#include <new>

#include "absl/hash/hash.h"
#include "base/assert.h"

namespace ballot::mvcc {

struct KeyIndex::Entry {
  KeyMeta meta;
  uint32_t key_bytes = 0;
  char* key_data() { return reinterpret_cast<char*>(this + 1); }
  std::string_view key() const { return {reinterpret_cast<const char*>(this + 1), key_bytes}; }
};

size_t KeyIndex::Hash::operator()(std::string_view key) const {
  return absl::Hash<std::string_view>()(key);
}
size_t KeyIndex::Hash::operator()(const Entry* e) const { return (*this)(e->key()); }

bool KeyIndex::Eq::operator()(const Entry* a, const Entry* b) const { return a->key() == b->key(); }
bool KeyIndex::Eq::operator()(const Entry* a, std::string_view b) const { return a->key() == b; }

KeyIndex::Entry* KeyIndex::NewEntry(std::string_view key, const KeyMeta& meta) {
  // etcd caps a request at 1.5 MiB by default; a key near 4 GiB cannot reach the store.
  BALLOT_ASSERT(key.size() <= UINT32_MAX, "key index: key too long");
  void* raw = ::operator new(sizeof(Entry) + key.size());
  Entry* e = new (raw) Entry{meta, static_cast<uint32_t>(key.size())};
  std::memcpy(e->key_data(), key.data(), key.size());
  return e;
}

void KeyIndex::FreeEntry(Entry* e) {
  e->~Entry();
  ::operator delete(e);
}

KeyIndex::~KeyIndex() { Clear(); }

std::optional<KeyMeta> KeyIndex::Find(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) return std::nullopt;
  return (*it)->meta;
}

void KeyIndex::Set(std::string_view key, const KeyMeta& meta) {
  auto it = entries_.find(key);
  if (it != entries_.end()) {
    (*it)->meta = meta;
    return;
  }
  entries_.insert(NewEntry(key, meta));
}

void KeyIndex::Erase(std::string_view key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;
  Entry* e = *it;
  entries_.erase(it);
  FreeEntry(e);
}

void KeyIndex::Clear() {
  for (Entry* e : entries_) FreeEntry(e);
  entries_.clear();
}

}  // namespace ballot::mvcc
