// ballot-sim --compare: the same simulated workloads on both engines, measured side by side.
#pragma once

#include <cstdint>
#include <string>

#include "consensus/engine.h"

namespace ballot::sim {

struct CompareConfig {
  int members = 3;
  uint64_t seeds = 5;  // Runs per workload and engine (recovery uses 4x as many).
  int64_t run_ms = 5000;
};

struct EngineFigures {
  double messages_per_entry = 0;
  double bytes_per_entry = 0;
  double commit_ticks_median = 0;
  double commit_ticks_p99 = 0;
  double recovery_ticks_median = 0;
  double recovery_ticks_p99 = 0;
  double writes_per_second_loss5 = 0;
  double writes_per_second_loss20 = 0;
  double writes_per_second_calm = 0;
};

EngineFigures Measure(consensus::EngineKind engine, const CompareConfig& config);
// The table, one row per figure and one column per engine.
std::string CompareTable(const CompareConfig& config);

}  // namespace ballot::sim
