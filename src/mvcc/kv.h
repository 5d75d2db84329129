// The key space's value types, shared by mvcc/ (which stores them), watch/ (which streams them)
// and rpc/ (which converts them to etcd's mvccpb messages).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace ballot::mvcc {

// A main revision: every mutating request applied to the key space increments it by one. The
// first revision of a new key space is 1 (etcd's convention: an empty store is at revision 1).
using Revision = int64_t;
using LeaseId = int64_t;  // 0: no lease.

// One version of a key, as etcd's mvccpb.KeyValue.
struct KeyValue {
  std::string key;
  std::string value;
  Revision create_revision = 0;  // The revision that created the key (since its last deletion).
  Revision mod_revision = 0;     // The revision of this version.
  int64_t version = 0;           // 1 at creation, +1 on every put; a deletion resets it.
  LeaseId lease = 0;

  bool operator==(const KeyValue&) const = default;
};

enum class EventType : uint8_t { kPut = 0, kDelete = 1 };

// One change to one key, as etcd's mvccpb.Event. For a deletion, kv holds the key and its
// mod_revision is the revision of the deletion (all other fields zero). prev_kv is the version
// just before the change (absent when the key did not exist).
//
// A put applied by the store does not read the version it replaces: its prev_kv has every field
// but the value, and prev_value_unread is set. Whoever passes prev_kv on (the watch hub, for a
// watcher that asked for it) reads the value by Store::ReadPrevValues, as etcd's watch server
// reads it at send time.
struct Event {
  EventType type = EventType::kPut;
  KeyValue kv;
  std::optional<KeyValue> prev_kv;
  bool prev_value_unread = false;

  bool operator==(const Event&) const = default;
};

}  // namespace ballot::mvcc
