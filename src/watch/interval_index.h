// The synced range watchers, indexed by key interval: which intervals contain a given key, in
// O(log n + matches) (etcd keeps its range watchers in an interval tree for the same reason).
//
// A treap ordered by (start key, id), each node holding the largest end key of its subtree, so a
// stabbing query skips every subtree whose intervals all end at or below the key. Not
// thread-safe: the hub guards it with its own lock.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace ballot::watch {

class IntervalIndex {
 public:
  IntervalIndex();
  ~IntervalIndex();
  IntervalIndex(const IntervalIndex&) = delete;
  IntervalIndex& operator=(const IntervalIndex&) = delete;

  // Adds [start, end), or [start, +inf) when `unbounded`. `id` must be unique in the index; the
  // caller keeps `value` alive while it is indexed.
  void Insert(std::string start, std::string end, bool unbounded, uint64_t id, void* value);
  // Removes the interval added with this start and id; false if there is none.
  bool Erase(std::string_view start, uint64_t id);
  // Calls `fn(value)` for every interval containing `key`.
  void Stab(std::string_view key, const std::function<void(void*)>& fn) const;

  // Calls `fn(value)` for every interval, in no particular order.
  void ForEach(const std::function<void(void*)>& fn) const;

  size_t size() const { return size_; }

 private:
  struct Node;
  using NodePtr = std::unique_ptr<Node>;
  static void Update(Node& n);
  static NodePtr Merge(NodePtr a, NodePtr b);
  // Splits into (< (start, id)) and (>= (start, id)).
  static void Split(NodePtr t, std::string_view start, uint64_t id, NodePtr& lo, NodePtr& hi);
  static bool EraseFrom(NodePtr& t, std::string_view start, uint64_t id);
  static void StabFrom(const Node* n, std::string_view key, const std::function<void(void*)>& fn);

  NodePtr root_;
  size_t size_ = 0;
  uint64_t priority_state_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace ballot::watch
