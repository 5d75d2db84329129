// The contract between `ballot`'s main and its subcommands. Each subcommand lives in its own file
// in src/cli/ with one registration function, which the file hands to AddCommand at static
// initialization; adding a command touches nothing else.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <vector>

namespace ballot::cli {

// Process exit codes, shared by every subcommand so that scripts can rely on them.
inline constexpr int kExitOk = 0;
// The command ran and its answer is "no" (for lincheck: the history is not linearizable).
inline constexpr int kExitNegative = 1;
// The command could not answer: bad command line, unreadable or malformed input, timeout.
inline constexpr int kExitError = 2;

class Command {
 public:
  virtual ~Command() = default;
  // Runs after the whole command line parsed without error; returns the process exit code.
  virtual int Run() = 0;
};

struct Registration {
  CLI::App* subcommand;  // owned by the parent App
  // Owns the storage the subcommand's options are bound to, so it must outlive parsing.
  std::unique_ptr<Command> command;
};

// One per command file: adds the subcommand to `app` and returns what to run if it is chosen.
using RegisterFn = Registration (*)(CLI::App& app);

// Makes a command part of `ballot`; `order` is its place in `ballot --help` (lower first). Call it
// from a namespace-scope initializer in the command's file:
//   [[maybe_unused]] const bool kRegistered = AddCommand(10, &RegisterServe);
// Command files are compiled into the executable itself, so the initializer always runs.
bool AddCommand(int order, RegisterFn register_fn);

// Every added command, in `order`.
std::vector<RegisterFn> Commands();

}  // namespace ballot::cli
