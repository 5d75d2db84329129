// `ballot lincheck FILE`: checks a recorded history for linearizability (docs/lincheck.md).
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/logging.h"
#include "cli/command.h"
#include "lincheck/checker.h"
#include "lincheck/history.h"

namespace ballot::cli {
namespace {

CLI::Validator PositiveSeconds() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        char* end = nullptr;
        const double seconds = std::strtod(input.c_str(), &end);
        if (end == input.c_str() || *end != '\0' || !(seconds > 0) || seconds > 1e9) {
          return "expected a number of seconds greater than 0, got \"" + input + "\"";
        }
        return "";
      },
      "SECONDS>0");
}

class LincheckCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("FILE", path_, "History in JSON lines, one operation per line; - for stdin")
        ->required();
    sub.add_option("--timeout-seconds", timeout_seconds_,
                   "Give up (exit 2) if the check is undecided after this long")
        ->check(PositiveSeconds())
        ->capture_default_str();
  }

  int Run() override {
    Result<std::vector<lincheck::Operation>> history = Read();
    if (!history.ok()) {
      std::cerr << "ballot lincheck: " << DisplayPath() << ": " << history.status().message()
                << "\n";
      return kExitError;
    }
    const auto start = std::chrono::steady_clock::now();
    const lincheck::CheckResult result =
        lincheck::Check(*history, {.timeout_seconds = timeout_seconds_});
    BLOG_DEBUG("lincheck: {} operations checked, {} states explored in {:.3f} s",
               result.operations_checked, result.states_explored,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    switch (result.verdict) {
      case lincheck::CheckResult::Verdict::kLinearizable:
        std::cout << "linearizable: " << history->size() << " operations, " << CountKeys(*history)
                  << " keys\n";
        return kExitOk;
      case lincheck::CheckResult::Verdict::kNotLinearizable:
        std::cout << result.Explain() << "\n";
        return kExitNegative;
      case lincheck::CheckResult::Verdict::kTimedOut:
        std::cerr << "ballot lincheck: " << DisplayPath() << ": undecided after "
                  << timeout_seconds_ << " s and " << result.states_explored
                  << " states explored (raise --timeout-seconds)\n";
        return kExitError;
    }
    BALLOT_UNREACHABLE("Verdict out of range");
  }

 private:
  Result<std::vector<lincheck::Operation>> Read() const {
    if (path_ == "-") return lincheck::ParseHistory(std::cin);
    std::ifstream file(path_);
    if (!file.is_open()) {
      return Status::NotFound(std::string("cannot open: ") + std::strerror(errno));
    }
    return lincheck::ParseHistory(file);
  }

  std::string DisplayPath() const { return path_ == "-" ? "<stdin>" : path_; }

  static size_t CountKeys(const std::vector<lincheck::Operation>& history) {
    std::set<std::string_view> keys;
    for (const lincheck::Operation& op : history) keys.insert(op.key);
    return keys.size();
  }

  std::string path_;
  double timeout_seconds_ = lincheck::CheckOptions{}.timeout_seconds;
};

}  // namespace

Registration RegisterLincheck(CLI::App& app) {
  auto command = std::make_unique<LincheckCommand>();
  CLI::App* sub = app.add_subcommand(
      "lincheck",
      "Check that a recorded client history is linearizable (exit 0 yes, 1 no, 2 error)");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

[[maybe_unused]] const bool kRegistered = AddCommand(90, &RegisterLincheck);

}  // namespace ballot::cli
