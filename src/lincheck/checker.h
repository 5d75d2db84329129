// Linearizability checking of a key-value history (see docs/lincheck.md).
//
// Each key is an independent register (absent initially), so the history is checked key by key
// (Herlihy & Wing's locality). Each key's history is searched with Wing & Gong's algorithm as
// improved by Lowe ("Testing for linearizability", 2017) and implemented in Porcupine: a
// depth-first search over a linked list of call/return events, memoizing (set of linearized
// operations, register state) so that no configuration is explored twice.
//
// The checker is pure apart from reading the steady clock for its timeout, and it is
// single-threaded: Check may be called from several threads on different histories.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lincheck/history.h"

namespace ballot::lincheck {

struct CheckOptions {
  // Wall-clock budget for the whole check. Shrinking a violation to a minimal culprit set uses
  // what is left of it, capped at a few seconds; a shrink cut short returns a smaller but not
  // necessarily minimal set.
  double timeout_seconds = 60;
};

struct CheckResult {
  enum class Verdict { kLinearizable, kNotLinearizable, kTimedOut } verdict;
  std::string key;                  // for a violation: the key whose history failed
  std::vector<Operation> culprits;  // for a violation: a minimal set of ops that cannot be ordered
  uint64_t operations_checked = 0;
  uint64_t states_explored = 0;
  std::string Explain() const;  // human-readable, lists culprits one per line as JSON
};

// Decides whether `history` is linearizable with respect to a map of registers. Failed
// operations and unknown gets are ignored; unknown writes may take effect at any time after their
// call, or never. A violation found in any key is reported even if other keys were not decided.
//
// Culprits are 1-minimal in this sense: weakening any one of them (dropping a read or an unknown
// operation, making an ok write unknown) makes the set linearizable, except a write kept because
// it is the last writer of a value a remaining read returned. So a stale read is reported with
// the writes that make it stale rather than as a read of a value never written.
CheckResult Check(const std::vector<Operation>& history, const CheckOptions& options = {});

}  // namespace ballot::lincheck
