// ballot-sim: runs whole clusters in one process under random faults, one seed per run, and
// checks every safety invariant, liveness after healing, and linearizability of client histories.
//
//   ballot-sim --engine raft --seeds 500 --members 1,3,5,7
//   ballot-sim --engine raft --seed 1234 --members 3 --verbose        (replay one seed)
//   ballot-sim --engine raft --bug commit-old-term --expect-failure   (a broken variant must fail)
//   ballot-sim --compare --members 3                                   (both engines, side by side)
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "compare.h"
#include "random_run.h"

namespace {

using ballot::sim::RunConfig;
using ballot::sim::RunResult;

struct Totals {
  uint64_t runs = 0;
  uint64_t passed = 0;
  uint64_t failed = 0;
  uint64_t operations = 0;
  uint64_t ops_ok = 0, ops_failed = 0, ops_unknown = 0;
  uint64_t committed = 0;
  std::map<std::string, uint64_t> faults;
  std::vector<int64_t> recovery_ms;
};

std::string ReplayCommand(const RunConfig& c) {
  std::string cmd = "build/bin/ballot-sim --engine " +
                    std::string(ballot::consensus::EngineKindName(c.engine)) + " --seed " +
                    std::to_string(c.seed) + " --members " + std::to_string(c.members);
  if (c.bug != ballot::consensus::Bug::kNone) cmd += " --bug " + ballot::sim::BugName(c.bug);
  if (c.safety_ms != RunConfig{}.safety_ms) cmd += " --safety-ms " + std::to_string(c.safety_ms);
  return cmd + " --verbose";
}

void Report(const RunConfig& c, const RunResult& r, bool verbose) {
  std::printf("FAIL seed=%lu members=%d engine=%s%s\n", static_cast<unsigned long>(c.seed),
              c.members, std::string(ballot::consensus::EngineKindName(c.engine)).c_str(),
              c.bug == ballot::consensus::Bug::kNone
                  ? ""
                  : (" bug=" + ballot::sim::BugName(c.bug)).c_str());
  std::printf("  settings: %s\n", r.settings.c_str());
  const size_t shown = verbose ? r.violations.size() : std::min<size_t>(3, r.violations.size());
  for (size_t i = 0; i < shown; ++i) std::printf("  violation: %s\n", r.violations[i].c_str());
  if (shown < r.violations.size()) {
    std::printf("  (%zu more violations)\n", r.violations.size() - shown);
  }
  if (verbose) {
    for (const auto& line : r.trace) std::printf("  trace: %s\n", line.c_str());
  }
  std::printf("  replay: %s\n", ReplayCommand(c).c_str());
  std::fflush(stdout);
}

std::vector<int> ParseMembers(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    int m = std::stoi(item);
    if (m < 1 || m > 9) throw CLI::ValidationError("--members", "each count must be 1..9");
    out.push_back(m);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ballot-sim: deterministic cluster simulation with fault injection and checkers"};
  std::string engine_name = "raft";
  uint64_t seeds = 100;
  uint64_t first_seed = 1;
  bool single_seed = false;
  std::string members_text = "3";
  std::string bug_name = "none";
  bool expect_failure = false;
  bool verbose = false;
  int64_t safety_ms = RunConfig{}.safety_ms;
  int64_t liveness_ms = RunConfig{}.liveness_ms;
  unsigned jobs = std::max(1u, std::thread::hardware_concurrency());
  app.add_option("--engine", engine_name, "raft or multipaxos");
  app.add_option("--seeds", seeds, "number of seeds to run (from --first-seed)");
  auto* seed_opt = app.add_option("--seed", first_seed, "run this one seed only");
  app.add_option("--first-seed", first_seed, "first seed of a range");
  app.add_option("--members", members_text, "member counts, comma separated (e.g. 1,3,5,7)");
  app.add_option("--bug", bug_name, "a deliberately broken engine variant (test builds)");
  app.add_flag("--expect-failure", expect_failure,
               "succeed only if some seed fails (for broken variants); stops at the first");
  app.add_flag("--verbose", verbose, "print every violation and the event trace of failures");
  app.add_option("--safety-ms", safety_ms, "simulated milliseconds with faults per run");
  app.add_option("--liveness-ms", liveness_ms, "bound on recovery after healing");
  app.add_option("--jobs", jobs, "runs in parallel");
  std::string history_file;
  uint64_t trace_member = 0;
  app.add_option("--trace-member", trace_member,
                 "with --seed: print every message to or from this member, and its ticks");
  app.add_option("--history", history_file,
                 "with --seed: write the client history as JSON lines (see `ballot lincheck`)");
  bool compare = false;
  app.add_flag("--compare", compare,
               "run the same workloads on both engines and print a table (uses the first "
               "--members count and --seeds, default 5)");
  CLI11_PARSE(app, argc, argv);
  ballot::sim::InstallThrowingAssertHandler();
  single_seed = seed_opt->count() > 0;

  auto kind = ballot::consensus::ParseEngineKind(engine_name);
  if (!kind.ok()) {
    std::fprintf(stderr, "ballot-sim: %s\n", kind.status().message().c_str());
    return 2;
  }
  ballot::consensus::Bug bug;
  if (!ballot::sim::ParseBug(bug_name, &bug)) {
    std::fprintf(stderr, "ballot-sim: unknown --bug '%s'\n", bug_name.c_str());
    return 2;
  }
  std::vector<int> member_counts;
  try {
    member_counts = ParseMembers(members_text);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ballot-sim: bad --members '%s'\n", members_text.c_str());
    return 2;
  }
  if (compare) {
    ballot::sim::CompareConfig cc;
    cc.members = member_counts.front();
    cc.seeds = app.count("--seeds") > 0 ? seeds : 5;
    std::printf("%s", ballot::sim::CompareTable(cc).c_str());
    return 0;
  }
  if (single_seed) seeds = 1;
  if (!history_file.empty() && (seeds != 1 || member_counts.size() != 1)) {
    std::fprintf(stderr, "ballot-sim: --history needs a single run (--seed S --members M)\n");
    return 2;
  }

  std::vector<RunConfig> work;
  for (int m : member_counts) {
    for (uint64_t i = 0; i < seeds; ++i) {
      RunConfig c;
      c.engine = *kind;
      c.seed = first_seed + i;
      c.members = m;
      c.bug = bug;
      c.safety_ms = safety_ms;
      c.liveness_ms = liveness_ms;
      c.keep_history = !history_file.empty();
      c.trace_member = trace_member;
      work.push_back(c);
    }
  }

  const auto start = std::chrono::steady_clock::now();
  Totals totals;
  std::mutex mu;
  std::atomic<size_t> next{0};
  std::atomic<bool> stop{false};
  int64_t caught_seed = -1;
  uint64_t caught_after = 0;
  auto worker = [&]() {
    while (!stop) {
      size_t i = next++;
      if (i >= work.size()) return;
      RunResult r = ballot::sim::RunRandom(work[i]);
      std::lock_guard<std::mutex> lock(mu);
      ++totals.runs;
      totals.operations += r.operations_checked;
      totals.ops_ok += r.ops_ok;
      totals.ops_failed += r.ops_failed;
      totals.ops_unknown += r.ops_unknown;
      if (!history_file.empty()) {
        std::ofstream out(history_file);
        for (const auto& op : r.history) out << ballot::lincheck::ToJsonLine(op) << "\n";
      }
      totals.committed += r.committed_entries;
      for (const auto& [k, n] : r.faults) totals.faults[k] += n;
      if (r.recovery_ms >= 0) totals.recovery_ms.push_back(r.recovery_ms);
      if (r.passed) {
        ++totals.passed;
      } else {
        ++totals.failed;
        if (!expect_failure || verbose) Report(work[i], r, verbose);
        if (expect_failure && caught_seed < 0) {
          caught_seed = static_cast<int64_t>(work[i].seed);
          caught_after = i + 1;
          std::printf("caught: bug=%s seed=%lu members=%d after %lu seeds: %s\n", bug_name.c_str(),
                      static_cast<unsigned long>(work[i].seed), work[i].members,
                      static_cast<unsigned long>(caught_after),
                      r.violations.empty() ? "" : r.violations.front().substr(0, 300).c_str());
          std::printf("  replay: %s\n", ReplayCommand(work[i]).c_str());
          stop = true;
        }
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned j = 0; j < std::max(1u, jobs); ++j) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  uint64_t fault_total = 0;
  std::string breakdown;
  for (const auto& [k, n] : totals.faults) {
    fault_total += n;
    breakdown += (breakdown.empty() ? "" : " ") + k + "=" + std::to_string(n);
  }
  std::sort(totals.recovery_ms.begin(), totals.recovery_ms.end());
  auto pct = [&](double p) -> int64_t {
    if (totals.recovery_ms.empty()) return -1;
    return totals.recovery_ms[static_cast<size_t>(p * (totals.recovery_ms.size() - 1))];
  };
  std::printf("faults: %s\n", breakdown.c_str());
  std::printf("client operations: ok %lu, failed %lu, unknown %lu\n",
              static_cast<unsigned long>(totals.ops_ok),
              static_cast<unsigned long>(totals.ops_failed),
              static_cast<unsigned long>(totals.ops_unknown));
  std::printf("recovery after heal: median %ldms p99 %ldms max %ldms\n",
              static_cast<long>(pct(0.5)), static_cast<long>(pct(0.99)),
              static_cast<long>(pct(1.0)));
  std::printf(
      "ballot-sim: engine=%s members=%s runs=%lu passed=%lu failed=%lu operations_checked=%lu "
      "committed_entries=%lu faults_injected=%lu time=%.1fs\n",
      engine_name.c_str(), members_text.c_str(), static_cast<unsigned long>(totals.runs),
      static_cast<unsigned long>(totals.passed), static_cast<unsigned long>(totals.failed),
      static_cast<unsigned long>(totals.operations), static_cast<unsigned long>(totals.committed),
      static_cast<unsigned long>(fault_total), seconds);
  if (expect_failure) {
    if (caught_seed < 0) {
      std::printf("NOT CAUGHT: bug=%s survived %lu runs\n", bug_name.c_str(),
                  static_cast<unsigned long>(totals.runs));
      return 1;
    }
    return 0;
  }
  return totals.failed == 0 ? 0 : 1;
}
