#include "watch/interval_index.h"

#include <tuple>
#include <utility>
#include <vector>

#include "base/assert.h"

namespace ballot::watch {

struct IntervalIndex::Node {
  std::string start;
  std::string end;
  bool unbounded = false;
  uint64_t id = 0;
  void* value = nullptr;
  uint64_t priority = 0;
  // The largest end in this subtree (max_unbounded: some interval in it has no end).
  std::string max_end;
  bool max_unbounded = false;
  NodePtr left;
  NodePtr right;
};

namespace {
bool Less(std::string_view a_start, uint64_t a_id, std::string_view b_start, uint64_t b_id) {
  return std::tie(a_start, a_id) < std::tie(b_start, b_id);
}
}  // namespace

IntervalIndex::IntervalIndex() = default;

IntervalIndex::~IntervalIndex() {
  // Tear down iteratively: a degenerate treap must not overflow the stack through unique_ptr's
  // recursive destruction.
  std::vector<NodePtr> stack;
  if (root_) stack.push_back(std::move(root_));
  while (!stack.empty()) {
    NodePtr n = std::move(stack.back());
    stack.pop_back();
    if (n->left) stack.push_back(std::move(n->left));
    if (n->right) stack.push_back(std::move(n->right));
  }
}

void IntervalIndex::Update(Node& n) {
  n.max_unbounded = n.unbounded;
  n.max_end = n.unbounded ? std::string() : n.end;
  for (const NodePtr* child : {&n.left, &n.right}) {
    const Node* c = child->get();
    if (c == nullptr || n.max_unbounded) continue;
    if (c->max_unbounded) {
      n.max_unbounded = true;
      n.max_end.clear();
    } else if (c->max_end > n.max_end) {
      n.max_end = c->max_end;
    }
  }
}

IntervalIndex::NodePtr IntervalIndex::Merge(NodePtr a, NodePtr b) {
  if (!a) return b;
  if (!b) return a;
  if (a->priority > b->priority) {
    a->right = Merge(std::move(a->right), std::move(b));
    Update(*a);
    return a;
  }
  b->left = Merge(std::move(a), std::move(b->left));
  Update(*b);
  return b;
}

void IntervalIndex::Split(NodePtr t, std::string_view start, uint64_t id, NodePtr& lo,
                          NodePtr& hi) {
  if (!t) {
    lo.reset();
    hi.reset();
    return;
  }
  if (Less(t->start, t->id, start, id)) {
    NodePtr right_lo;
    Split(std::move(t->right), start, id, right_lo, hi);
    t->right = std::move(right_lo);
    Update(*t);
    lo = std::move(t);
  } else {
    NodePtr left_hi;
    Split(std::move(t->left), start, id, lo, left_hi);
    t->left = std::move(left_hi);
    Update(*t);
    hi = std::move(t);
  }
}

void IntervalIndex::Insert(std::string start, std::string end, bool unbounded, uint64_t id,
                           void* value) {
  auto node = std::make_unique<Node>();
  node->start = std::move(start);
  node->end = std::move(end);
  node->unbounded = unbounded;
  node->id = id;
  node->value = value;
  // Priorities from a splitmix64 sequence: deterministic, and balanced in expectation.
  uint64_t z = (priority_state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  node->priority = z ^ (z >> 31);
  Update(*node);
  NodePtr lo, hi;
  Split(std::move(root_), node->start, node->id, lo, hi);
  BALLOT_ASSERT(!hi || hi->id != node->id || hi->start != node->start, "IntervalIndex: duplicate");
  root_ = Merge(Merge(std::move(lo), std::move(node)), std::move(hi));
  ++size_;
}

bool IntervalIndex::EraseFrom(NodePtr& t, std::string_view start, uint64_t id) {
  if (!t) return false;
  if (t->id == id && t->start == start) {
    t = Merge(std::move(t->left), std::move(t->right));
    return true;
  }
  const bool found = Less(start, id, t->start, t->id) ? EraseFrom(t->left, start, id)
                                                      : EraseFrom(t->right, start, id);
  if (found) Update(*t);
  return found;
}

bool IntervalIndex::Erase(std::string_view start, uint64_t id) {
  if (!EraseFrom(root_, start, id)) return false;
  --size_;
  return true;
}

void IntervalIndex::StabFrom(const Node* n, std::string_view key,
                             const std::function<void(void*)>& fn) {
  while (n != nullptr) {
    // Every interval below ends at or before `key`: none contains it.
    if (!n->max_unbounded && n->max_end <= key) return;
    StabFrom(n->left.get(), key, fn);
    // Everything from here rightwards starts at or after n->start.
    if (n->start > key) return;
    if (n->unbounded || key < n->end) fn(n->value);
    n = n->right.get();
  }
}

void IntervalIndex::ForEach(const std::function<void(void*)>& fn) const {
  std::vector<const Node*> stack;
  if (root_) stack.push_back(root_.get());
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    fn(n->value);
    if (n->left) stack.push_back(n->left.get());
    if (n->right) stack.push_back(n->right.get());
  }
}

void IntervalIndex::Stab(std::string_view key, const std::function<void(void*)>& fn) const {
  StabFrom(root_.get(), key, fn);
}

}  // namespace ballot::watch
