// `ballot`: the one program of Ballot. main only assembles the subcommands and maps command-line
// errors to exit codes; each subcommand's work lives in its own file (see command.h).
#include <absl/synchronization/mutex.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "base/logging.h"
#include "cli/command.h"

namespace ballot::cli {
namespace {

std::vector<std::pair<int, RegisterFn>>& Registry() {
  static std::vector<std::pair<int, RegisterFn>> registry;
  return registry;
}

}  // namespace

bool AddCommand(int order, RegisterFn register_fn) {
  Registry().emplace_back(order, register_fn);
  return true;
}

std::vector<RegisterFn> Commands() {
  auto sorted = Registry();
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<RegisterFn> fns;
  for (const auto& [order, fn] : sorted) fns.push_back(fn);
  return fns;
}

}  // namespace ballot::cli

using ballot::cli::Registration;

int main(int argc, char** argv) {
  // Debian builds abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on: every
  // lock gRPC takes then records itself in a global graph (about 1.5 % of a member's CPU under a
  // put load, in absl's GraphCycles). Ballot's own code uses std::mutex.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // glibc gives each busy thread its own malloc arena (up to 8 per core) and keeps what they free:
  // a member loading 1,000,000 keys held 572-650 MB after the load (peak 841-984 MB); with two
  // arenas, 351 MB (peak 551 MB), throughput within noise. MALLOC_ARENA_MAX still overrides.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  CLI::App app("Ballot: a coordination service (replicated key-value store with leases).",
               "ballot");
  // At most one subcommand; none is reported below with a friendlier message than CLI11's, and
  // an unknown word is rejected by CLI11 as an unexpected argument.
  app.require_subcommand(0, 1);
  std::string log_level = "warn";
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->capture_default_str();

  std::vector<Registration> commands;
  for (auto* registration : ballot::cli::Commands()) commands.push_back(registration(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // app.exit prints the help text (for --help) or the error and a hint (for anything else).
    return app.exit(e) == 0 ? ballot::cli::kExitOk : ballot::cli::kExitError;
  }
  if (!ballot::logging::SetLevel(log_level)) {
    std::cerr << "ballot: unknown --log-level \"" << log_level << "\"\n";
    return ballot::cli::kExitError;
  }
  for (Registration& command : commands) {
    if (command.subcommand->parsed()) return command.command->Run();
  }
  std::cerr << "ballot: a command is required\n" << app.help();
  return ballot::cli::kExitError;
}
