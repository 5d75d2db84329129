#include "lincheck/checker.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "base/assert.h"

namespace ballot::lincheck {
namespace {

using Clock = std::chrono::steady_clock;

// The search reads the clock once per this many steps: often enough to stop within about a
// millisecond of the deadline, rarely enough not to show in a profile.
constexpr uint64_t kStepsPerClockCheck = 1024;
// Upper bound on the memory of one key's memo table. A search that needs more gives up as if it
// had timed out, instead of exhausting the machine's memory first.
constexpr size_t kMemoBytesMax = size_t{2} << 30;
// Upper bound on the time spent shrinking a violation to its culprits (the check's own deadline
// also applies).
constexpr double kShrinkSecondsMax = 30;

// Register states and values are interned per key into small integers, so that stepping the
// model and memoizing a state cost no string work. kAbsent is the state of a missing key.
constexpr int32_t kAbsent = -1;
// Step's answer when the operation cannot take effect in the given state.
constexpr int32_t kRejected = -2;
// No event-list node: the search has no choice left.
constexpr int32_t kNoEntry = -1;

// One operation of a key's sub-history, as the search sees it. `certain` means the operation
// took effect exactly once between its call and its return (status ok). An uncertain operation
// may take effect at any time after its call, or never.
struct KeyOp {
  const Operation* op;
  bool certain;
};

enum class Outcome { kLinearizable, kViolation, kTimedOut };

uint64_t Mix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The set of (linearized operations, register state) configurations already explored, in one
// flat arena: each entry is the bitset's words followed by the state. Open addressing with
// linear probing, at most half full.
class MemoTable {
 public:
  explicit MemoTable(size_t words) : words_(words), slots_(1024, 0) {}

  // Inserts the configuration; false if it was already present. `hash` must be a function of
  // (bits, state) alone.
  bool Insert(const std::vector<uint64_t>& bits, int32_t state, uint64_t hash) {
    BALLOT_ASSERT(bits.size() == words_);
    size_t mask = slots_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const uint32_t slot = slots_[i];
      if (slot == 0) break;
      if (hashes_[slot - 1] == hash && Equals(slot - 1, bits, state)) return false;
    }
    hashes_.push_back(hash);
    arena_.insert(arena_.end(), bits.begin(), bits.end());
    arena_.push_back(static_cast<uint64_t>(static_cast<int64_t>(state)));
    BALLOT_ASSERT(hashes_.size() < std::numeric_limits<uint32_t>::max(), "memo entries overflow");
    if (hashes_.size() * 2 > slots_.size()) {
      Grow();
    } else {
      Place(static_cast<uint32_t>(hashes_.size()));
    }
    return true;
  }

  size_t size() const { return hashes_.size(); }
  size_t bytes() const {
    return arena_.capacity() * sizeof(uint64_t) + hashes_.capacity() * sizeof(uint64_t) +
           slots_.capacity() * sizeof(uint32_t);
  }

 private:
  bool Equals(size_t entry, const std::vector<uint64_t>& bits, int32_t state) const {
    const uint64_t* stored = &arena_[entry * (words_ + 1)];
    return static_cast<int32_t>(static_cast<int64_t>(stored[words_])) == state &&
           std::equal(bits.begin(), bits.end(), stored);
  }

  // Puts entry number `slot - 1` into the first free slot of its probe sequence.
  void Place(uint32_t slot) {
    const size_t mask = slots_.size() - 1;
    size_t i = hashes_[slot - 1] & mask;
    while (slots_[i] != 0) i = (i + 1) & mask;
    slots_[i] = slot;
  }

  void Grow() {
    slots_.assign(slots_.size() * 2, 0);
    for (uint32_t slot = 1; slot <= hashes_.size(); ++slot) Place(slot);
  }

  size_t words_;
  std::vector<uint32_t> slots_;  // 0 = empty, else entry index + 1
  std::vector<uint64_t> hashes_;
  std::vector<uint64_t> arena_;
};

// Wing & Gong's search with Lowe's memoization over one key's sub-history. Single use: construct,
// then Run once.
class KeySearch {
 public:
  KeySearch(const std::vector<KeyOp>& ops, Clock::time_point deadline)
      : deadline_(deadline), memo_((ops.size() + 63) / 64) {
    InternOps(ops);
    BuildEventList(ops);
    bits_.assign((ops.size() + 63) / 64, 0);
    uint64_t seed = 0x6a09e667f3bcc909ull;
    zobrist_.reserve(ops.size());
    for (size_t i = 0; i < ops.size(); ++i)
      zobrist_.push_back(Mix64(seed += 0x9e3779b97f4a7c15ull));
  }

  Outcome Run();
  uint64_t states_explored() const { return memo_.size(); }

 private:
  struct ModelOp {
    OpKind kind;
    bool certain;
    // A certain get or failed cas: it never changes the state, so when it can be linearized it
    // may as well be linearized at once (see FirstCandidate).
    bool read_only;
    bool cas_succeeded;
    int32_t value;     // put, cas
    int32_t expected;  // cas
    int32_t output;    // get
  };
  struct Frame {
    int32_t call_node;
    int32_t state_before;
  };

  int32_t Intern(std::string_view value);
  void InternOps(const std::vector<KeyOp>& ops);
  void BuildEventList(const std::vector<KeyOp>& ops);
  int32_t Step(const ModelOp& op, int32_t state) const;
  // The call to try first in a new configuration. A read-only operation that can be linearized
  // now is taken alone, without trying the other candidates: if any linearization of the rest
  // exists, moving that operation to the front gives another, because it changes no state and
  // every operation that must precede it is already linearized (it is before the first return).
  // This partial-order reduction stops reads from multiplying the configurations.
  int32_t FirstCandidate() const;
  // Undoes the latest choices up to one whose alternatives remain; returns the entry to resume
  // the scan from, or kNoEntry if every choice is exhausted (the history is not linearizable).
  int32_t Backtrack();
  void Lift(int32_t call_node);
  void Unlift(int32_t call_node);
  void Flip(uint32_t op) {
    bits_[op / 64] ^= uint64_t{1} << (op % 64);
    bits_hash_ ^= zobrist_[op];
  }
  uint64_t ConfigHash(int32_t state) const {
    return bits_hash_ ^ Mix64(static_cast<uint64_t>(static_cast<int64_t>(state) + 3));
  }

  Clock::time_point deadline_;
  std::unordered_map<std::string_view, int32_t> interned_;
  std::vector<ModelOp> model_ops_;
  size_t uncertain_count_ = 0;

  // The doubly-linked event list: node 0 is the head, the last node the tail, and between them
  // each operation's call and return in time order. Lifting an operation unlinks both of its
  // nodes; the stack of lifted calls is undone in LIFO order, which restores the links exactly.
  std::vector<int32_t> next_;
  std::vector<int32_t> prev_;
  std::vector<uint32_t> node_op_;
  std::vector<int32_t> match_;  // call node -> its return node; -1 for return nodes
  int32_t tail_ = 0;

  std::vector<uint64_t> bits_;  // operations linearized so far
  std::vector<uint64_t> zobrist_;
  uint64_t bits_hash_ = 0;  // xor of zobrist_ over bits_: updated in O(1) per flip
  MemoTable memo_;
  std::vector<Frame> stack_;
  int32_t state_ = kAbsent;
  size_t certain_left_ = 0;  // certain operations not yet linearized
};

int32_t KeySearch::Intern(std::string_view value) {
  auto [it, inserted] = interned_.try_emplace(value, static_cast<int32_t>(interned_.size()));
  return it->second;
}

void KeySearch::InternOps(const std::vector<KeyOp>& ops) {
  model_ops_.reserve(ops.size());
  for (const KeyOp& key_op : ops) {
    const Operation& op = *key_op.op;
    const bool read_only = key_op.certain && (op.kind == OpKind::kGet ||
                                              (op.kind == OpKind::kCas && !op.cas_succeeded));
    ModelOp model{op.kind, key_op.certain, read_only, op.cas_succeeded, kAbsent, kAbsent, kAbsent};
    switch (op.kind) {
      case OpKind::kGet:
        BALLOT_ASSERT(key_op.certain, "uncertain gets constrain nothing and are dropped earlier");
        if (op.output.has_value()) model.output = Intern(*op.output);
        break;
      case OpKind::kPut:
        model.value = Intern(op.value);
        break;
      case OpKind::kCas:
        model.value = Intern(op.value);
        model.expected = Intern(op.expected);
        break;
      case OpKind::kDelete:
        break;
    }
    if (!key_op.certain) ++uncertain_count_;
    model_ops_.push_back(model);
  }
}

void KeySearch::BuildEventList(const std::vector<KeyOp>& ops) {
  struct Event {
    bool infinite;  // the return of an uncertain operation: after every finite time
    int64_t time;
    bool is_return;
    uint32_t op;
  };
  std::vector<Event> events;
  events.reserve(ops.size() * 2);
  for (uint32_t i = 0; i < ops.size(); ++i) {
    events.push_back({false, ops[i].op->call, false, i});
    events.push_back({!ops[i].certain, ops[i].certain ? ops[i].op->ret : 0, true, i});
  }
  // At equal times calls sort before returns: operations that touch are concurrent, the
  // permissive reading of a clock whose ticks are coarser than the operations.
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    return std::tie(a.infinite, a.time, a.is_return, a.op) <
           std::tie(b.infinite, b.time, b.is_return, b.op);
  });

  const int32_t nodes = static_cast<int32_t>(events.size()) + 2;
  tail_ = nodes - 1;
  next_.resize(nodes);
  prev_.resize(nodes);
  node_op_.assign(nodes, 0);
  match_.assign(nodes, -1);
  std::vector<int32_t> call_node(ops.size(), -1);
  for (int32_t node = 0; node < nodes; ++node) {
    next_[node] = node + 1;
    prev_[node] = node - 1;
  }
  for (int32_t i = 0; i < static_cast<int32_t>(events.size()); ++i) {
    const int32_t node = i + 1;
    node_op_[node] = events[i].op;
    if (events[i].is_return) {
      BALLOT_ASSERT(call_node[events[i].op] >= 0, "an operation's return sorts after its call");
      match_[call_node[events[i].op]] = node;
    } else {
      call_node[events[i].op] = node;
    }
  }
}

int32_t KeySearch::Step(const ModelOp& op, int32_t state) const {
  switch (op.kind) {
    case OpKind::kGet:
      return op.output == state ? state : kRejected;
    case OpKind::kPut:
      return op.value;
    case OpKind::kDelete:
      return kAbsent;
    case OpKind::kCas:
      // An uncertain cas is linearized only where it succeeds: a cas that fails has no effect,
      // which is the same as leaving it out, and leaving out is always allowed for it.
      if (!op.certain || op.cas_succeeded) return state == op.expected ? op.value : kRejected;
      return state != op.expected ? state : kRejected;
  }
  BALLOT_UNREACHABLE("OpKind out of range");
}

void KeySearch::Lift(int32_t call_node) {
  const int32_t return_node = match_[call_node];
  next_[prev_[call_node]] = next_[call_node];
  prev_[next_[call_node]] = prev_[call_node];
  next_[prev_[return_node]] = next_[return_node];
  prev_[next_[return_node]] = prev_[return_node];
}

void KeySearch::Unlift(int32_t call_node) {
  const int32_t return_node = match_[call_node];
  next_[prev_[return_node]] = return_node;
  prev_[next_[return_node]] = return_node;
  next_[prev_[call_node]] = call_node;
  prev_[next_[call_node]] = call_node;
}

int32_t KeySearch::FirstCandidate() const {
  for (int32_t entry = next_[0]; match_[entry] >= 0; entry = next_[entry]) {
    const ModelOp& model = model_ops_[node_op_[entry]];
    if (model.read_only && Step(model, state_) != kRejected) return entry;
  }
  return next_[0];
}

int32_t KeySearch::Backtrack() {
  while (!stack_.empty()) {
    const Frame frame = stack_.back();
    stack_.pop_back();
    const uint32_t op = node_op_[frame.call_node];
    Flip(op);
    state_ = frame.state_before;
    Unlift(frame.call_node);
    if (model_ops_[op].certain) ++certain_left_;
    // A read-only operation was the only candidate tried in its configuration (see
    // FirstCandidate), so its failure is the configuration's failure.
    if (!model_ops_[op].read_only) return next_[frame.call_node];
  }
  return kNoEntry;
}

Outcome KeySearch::Run() {
  certain_left_ = model_ops_.size() - uncertain_count_;
  state_ = kAbsent;
  int32_t entry = FirstCandidate();
  for (uint64_t steps = 1;; ++steps) {
    // Uncertain operations need not be linearized: they may never have happened.
    if (certain_left_ == 0) return Outcome::kLinearizable;
    if (entry == kNoEntry) return Outcome::kViolation;
    if (steps % kStepsPerClockCheck == 0 &&
        (Clock::now() >= deadline_ || memo_.bytes() > kMemoBytesMax)) {
      return Outcome::kTimedOut;
    }
    BALLOT_ASSERT(entry != tail_, "the list ends with returns, and a return stops the scan");
    const uint32_t op = node_op_[entry];
    const ModelOp& model = model_ops_[op];
    if (match_[entry] < 0) {
      // A return: this operation must be linearized before anything that follows, and no
      // pending call could be. Undo the latest choice and try the next candidate after it.
      BALLOT_ASSERT(model.certain, "uncertain returns sort after every certain one");
      entry = Backtrack();
      continue;
    }
    // A call: try to linearize the operation here, unless that configuration was seen.
    const int32_t next_state = Step(model, state_);
    if (next_state != kRejected) {
      Flip(op);
      if (memo_.Insert(bits_, next_state, ConfigHash(next_state))) {
        stack_.push_back({entry, state_});
        state_ = next_state;
        Lift(entry);
        if (model.certain) --certain_left_;
        entry = FirstCandidate();
        continue;
      }
      Flip(op);
      if (model.read_only) {
        entry = Backtrack();
        continue;
      }
    }
    entry = next_[entry];
  }
}

Outcome SearchKey(const std::vector<KeyOp>& ops, Clock::time_point deadline,
                  uint64_t* states_explored) {
  KeySearch search(ops, deadline);
  const Outcome outcome = search.Run();
  if (states_explored != nullptr) *states_explored += search.states_explored();
  return outcome;
}

// An operation that certainly or possibly changed the register.
bool MayWrite(const KeyOp& key_op) {
  const Operation& op = *key_op.op;
  if (op.kind == OpKind::kCas) return !key_op.certain || op.cas_succeeded;
  return op.kind == OpKind::kPut || op.kind == OpKind::kDelete;
}

// The value an operation claims to have seen, if it claims one (a read of "absent" is explained
// by the initial state, so it needs no writer).
const std::string* ValueRead(const KeyOp& key_op) {
  const Operation& op = *key_op.op;
  if (op.kind == OpKind::kGet && op.output.has_value()) return &*op.output;
  if (op.kind == OpKind::kCas && key_op.certain && op.cas_succeeded) return &op.expected;
  return nullptr;
}

// True if some read in `rest` has lost the last writer of its value that `before` had.
bool OrphansARead(const std::vector<KeyOp>& before, const std::vector<KeyOp>& rest) {
  std::unordered_map<std::string_view, int> writers_before, writers_rest;
  for (const KeyOp& op : before) {
    if (MayWrite(op) && op.op->kind != OpKind::kDelete) ++writers_before[op.op->value];
  }
  for (const KeyOp& op : rest) {
    if (MayWrite(op) && op.op->kind != OpKind::kDelete) ++writers_rest[op.op->value];
  }
  for (const KeyOp& op : rest) {
    const std::string* value = ValueRead(op);
    if (value != nullptr && writers_rest[*value] == 0 && writers_before[*value] > 0) return true;
  }
  return false;
}

enum class RemoveOutcome { kRemoved, kKept, kOutOfTime };

// Removes the ops marked in `in_chunk` if the history stays non-linearizable with them merely
// weakened (certain writes made uncertain, everything else dropped), and if no remaining read
// loses the last writer of its value. Both rules keep a removal from manufacturing a different,
// misleading violation, such as a read of a value "never written" or "stale" only because its
// writer was taken away.
RemoveOutcome TryRemove(std::vector<KeyOp>& ops, const std::vector<bool>& in_chunk,
                        Clock::time_point deadline) {
  std::vector<KeyOp> weakened, rest;
  for (size_t i = 0; i < ops.size(); ++i) {
    if (!in_chunk[i]) {
      rest.push_back(ops[i]);
      weakened.push_back(ops[i]);
    } else if (ops[i].certain && MayWrite(ops[i])) {
      weakened.push_back({ops[i].op, false});
    }
  }
  if (OrphansARead(ops, rest)) return RemoveOutcome::kKept;
  switch (SearchKey(weakened, deadline, nullptr)) {
    case Outcome::kTimedOut:
      return RemoveOutcome::kOutOfTime;
    case Outcome::kLinearizable:
      return RemoveOutcome::kKept;
    case Outcome::kViolation:
      ops = std::move(rest);
      return RemoveOutcome::kRemoved;
  }
  BALLOT_UNREACHABLE("Outcome out of range");
}

// Delta debugging restricted to the ops `eligible` accepts: tries removing chunks of them, of
// halving size, then single ops until no single removal is possible. Returns false if the
// deadline cut it short.
bool ShrinkPhase(std::vector<KeyOp>& ops, bool (*eligible)(const KeyOp&),
                 Clock::time_point deadline) {
  size_t eligible_count = 0;
  for (const KeyOp& op : ops) eligible_count += eligible(op) ? 1 : 0;
  size_t chunk = std::max<size_t>(1, eligible_count / 2);
  while (true) {
    bool removed_in_pass = false;
    for (size_t kept = 0;;) {  // eligible ops this pass already decided to keep
      if (Clock::now() >= deadline) return false;
      std::vector<bool> in_chunk(ops.size(), false);
      size_t seen = 0, taken = 0;
      for (size_t i = 0; i < ops.size() && taken < chunk; ++i) {
        if (!eligible(ops[i])) continue;
        if (seen++ >= kept) {
          in_chunk[i] = true;
          ++taken;
        }
      }
      if (taken == 0) break;
      switch (TryRemove(ops, in_chunk, deadline)) {
        case RemoveOutcome::kOutOfTime:
          return false;
        case RemoveOutcome::kRemoved:
          removed_in_pass = true;
          break;
        case RemoveOutcome::kKept:
          kept += taken;
          break;
      }
    }
    if (chunk > 1) {
      chunk /= 2;
    } else if (!removed_in_pass) {
      return true;
    }
  }
}

bool IsPureRead(const KeyOp& op) { return !MayWrite(op); }
bool AnyOp(const KeyOp&) { return true; }

// Shrinks a non-linearizable sub-history to a small one that is still non-linearizable. Reads
// go first, while every write is still present: otherwise removing, say, a delete could leave a
// read of "absent" that looks wrong, and the read rather than the real culprit would be kept.
std::vector<KeyOp> Shrink(std::vector<KeyOp> ops, Clock::time_point deadline) {
  if (ShrinkPhase(ops, &IsPureRead, deadline)) ShrinkPhase(ops, &AnyOp, deadline);
  return ops;
}

std::string QuoteJson(std::string_view text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string CheckResult::Explain() const {
  switch (verdict) {
    case Verdict::kLinearizable:
      return "linearizable: " + std::to_string(operations_checked) + " operations checked, " +
             std::to_string(states_explored) + " states explored";
    case Verdict::kTimedOut:
      return "timed out: undecided after " + std::to_string(states_explored) +
             " states explored (" + std::to_string(operations_checked) + " operations checked)";
    case Verdict::kNotLinearizable:
      break;
  }
  std::vector<const Operation*> sorted;
  for (const Operation& op : culprits) sorted.push_back(&op);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Operation* a, const Operation* b) { return a->call < b->call; });
  std::string text = "NOT linearizable: key " + QuoteJson(key) + ": these " +
                     std::to_string(culprits.size()) +
                     " operations cannot be ordered consistently (by call time):";
  for (const Operation* op : sorted) text += "\n  " + ToJsonLine(*op);
  return text;
}

CheckResult Check(const std::vector<Operation>& history, const CheckOptions& options) {
  const Clock::time_point start = Clock::now();
  const auto budget = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(std::max(0.0, options.timeout_seconds)));
  const Clock::time_point deadline = start + budget;

  // Failed operations had no effect and unknown gets observed nothing: neither constrains.
  std::map<std::string_view, std::vector<KeyOp>> by_key;
  for (const Operation& op : history) {
    if (op.status == OpStatus::kFail) continue;
    if (op.status == OpStatus::kUnknown && op.kind == OpKind::kGet) continue;
    by_key[op.key].push_back({&op, op.status == OpStatus::kOk});
  }

  CheckResult result;
  result.verdict = CheckResult::Verdict::kLinearizable;
  for (const auto& [key, ops] : by_key) {
    result.operations_checked += ops.size();
    // Past the deadline each key still gets up to kStepsPerClockCheck steps, which decides small
    // keys: a violation found there is reported rather than a timeout.
    switch (SearchKey(ops, deadline, &result.states_explored)) {
      case Outcome::kLinearizable:
        break;
      case Outcome::kTimedOut:
        result.verdict = CheckResult::Verdict::kTimedOut;
        break;
      case Outcome::kViolation: {
        result.verdict = CheckResult::Verdict::kNotLinearizable;
        result.key = std::string(key);
        const auto shrink_budget = std::chrono::duration_cast<Clock::duration>(
            std::chrono::duration<double>(kShrinkSecondsMax));
        const Clock::time_point shrink_deadline = std::min(deadline, Clock::now() + shrink_budget);
        for (const KeyOp& culprit : Shrink(ops, shrink_deadline)) {
          result.culprits.push_back(*culprit.op);
        }
        std::stable_sort(result.culprits.begin(), result.culprits.end(),
                         [](const Operation& a, const Operation& b) { return a.call < b.call; });
        return result;
      }
    }
  }
  return result;
}

}  // namespace ballot::lincheck
