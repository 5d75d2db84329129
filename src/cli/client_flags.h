// What the `ballot` client commands (put, get, del, txn, watch, compact, lease, lock, elect,
// member, status) share: the connection flags etcdctl has (--endpoints, --dial-timeout,
// --command-timeout), error printing, and signal handling for the commands that wait.
#pragma once

#include <CLI/CLI.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "base/status.h"
#include "client/client.h"

namespace ballot::cli {

struct ClientFlags {
  std::string endpoints = "127.0.0.1:2379";
  std::string dial_timeout = "2s";
  std::string command_timeout = "5s";

  void Add(CLI::App& sub);
  // The client for these flags (it connects on its first call).
  Result<std::unique_ptr<client::Client>> Connect() const;
};

// A lease or member ID as etcdctl prints it: up to 16 hexadecimal digits. `what` names it in the
// error ("lease ID").
Result<uint64_t> ParseHexId(const std::string& hex, std::string_view what);

// Prints "Error: MESSAGE" to stderr, as etcdctl does (the server's own message passes through),
// and returns the exit code for "could not answer".
int PrintError(const Status& status);

// Writes `text` to stdout and flushes, so that output piped to a file or a pipe is there at once
// (watch and lock are often read by another process while they run).
void Print(std::string_view text);

// Turns SIGINT and SIGTERM into a call of `on_signal` on a thread of its own, once. Construct it
// before the first gRPC channel: gRPC's threads inherit the signal mask of the thread that
// creates them, and the signals must be blocked in all of them for sigwait to see them.
class SignalWaiter {
 public:
  explicit SignalWaiter(std::function<void(int signal)> on_signal);
  ~SignalWaiter();
  SignalWaiter(const SignalWaiter&) = delete;
  SignalWaiter& operator=(const SignalWaiter&) = delete;
  // The signal that arrived, or 0.
  int received() const { return received_.load(); }

 private:
  std::function<void(int)> on_signal_;
  std::atomic<int> received_{0};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace ballot::cli
