// What a `ballot bench` run measured, and how it is printed.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "bench/histogram.h"
#include "bench/options.h"

namespace ballot::bench {

struct Report {
  Workload workload = Workload::kPut;
  uint64_t ok = 0;         // operations that completed as intended
  uint64_t errors = 0;     // failed RPCs, missing watch events, keep-alives of unknown leases
  uint64_t conflicts = 0;  // txn: compare-and-swaps that lost the race (not errors)
  uint64_t puts = 0;       // watch: puts that fed the watchers
  double elapsed_s = 0;    // first request to last completion
  // CPU time (user + system) this load generator spent while it measured: on a machine it shares
  // with the servers, what it leaves them.
  double client_cpu_s = 0;
  Histogram latency;  // per operation; watch: from the put's send to the event's arrival
  // A few distinct error messages with their counts, to say what went wrong.
  std::map<std::string, uint64_t> error_samples;

  double throughput() const { return elapsed_s > 0 ? static_cast<double>(ok) / elapsed_s : 0; }
};

// Human-readable summary, several lines.
std::string FormatText(const Report& report, const Options& options);
nlohmann::json ToJson(const Report& report, const Options& options);

}  // namespace ballot::bench
