// One randomized simulator run: a seed decides the cluster's settings, the workload and the faults;
// a safety phase with faults is followed by a liveness phase without them, and the recorded client
// history is checked for linearizability at the end.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "consensus/engine.h"
#include "lincheck/history.h"

namespace ballot::sim {

struct RunConfig {
  consensus::EngineKind engine = consensus::EngineKind::kRaft;
  uint64_t seed = 1;
  int members = 3;
  consensus::Bug bug = consensus::Bug::kNone;
  int64_t safety_ms = 12000;   // Simulated time with faults.
  int64_t liveness_ms = 5000;  // Bound on the time to recover after everything is healed.
  double lincheck_timeout_seconds = 20;
  bool keep_history = false;           // Return the client history in RunResult::history.
  uint64_t trace_member = 0;           // Print every message to or from this member, and its ticks.
  bool sync_every_hard_state = false;  // ClusterOptions::sync_every_hard_state.
};

struct RunResult {
  bool passed = false;
  std::vector<std::string> violations;
  uint64_t operations_checked = 0;
  uint64_t committed_entries = 0;
  int64_t recovery_ms = -1;                  // Time from heal to a converged cluster that commits.
  std::map<std::string, uint64_t> faults;    // Faults injected, by kind.
  std::string settings;                      // The seed's derived settings, for a failure report.
  std::vector<std::string> trace;            // Notable events, for a failure report.
  std::vector<lincheck::Operation> history;  // When RunConfig::keep_history.
  uint64_t ops_ok = 0, ops_failed = 0, ops_unknown = 0;

  uint64_t FaultCount() const;
};

RunResult RunRandom(const RunConfig& config);

// Thrown from assertions once InstallThrowingAssertHandler() ran: the simulator reports a broken
// invariant inside an engine as a failed run instead of stopping. Test builds only.
class InvariantBroken : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
void InstallThrowingAssertHandler();

// Bug names as the command line spells them ("commit-old-term", ...), and back.
std::string BugName(consensus::Bug bug);
bool ParseBug(const std::string& name, consensus::Bug* bug);
std::vector<consensus::Bug> AllBugs();

}  // namespace ballot::sim
