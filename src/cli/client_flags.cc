#include "cli/client_flags.h"

#include <pthread.h>
#include <signal.h>

#include <iostream>

#include "cli/command.h"
#include "client/format.h"

namespace ballot::cli {

void ClientFlags::Add(CLI::App& sub) {
  sub.add_option("--endpoints", endpoints, "gRPC endpoints, comma-separated (host:port)")
      ->capture_default_str();
  sub.add_option("--dial-timeout", dial_timeout, "Timeout for connecting to an endpoint")
      ->capture_default_str();
  sub.add_option("--command-timeout", command_timeout,
                 "Timeout for a short request (not for lock, elect and watch, which wait)")
      ->capture_default_str();
}

Result<std::unique_ptr<client::Client>> ClientFlags::Connect() const {
  client::Options options;
  ASSIGN_OR_RETURN(options.endpoints, client::SplitEndpoints(endpoints));
  ASSIGN_OR_RETURN(options.dial_timeout, client::ParseDuration(dial_timeout));
  ASSIGN_OR_RETURN(options.command_timeout, client::ParseDuration(command_timeout));
  return client::Client::Create(std::move(options));
}

Result<uint64_t> ParseHexId(const std::string& hex, std::string_view what) {
  if (hex.empty() || hex.size() > 16 ||
      hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
    return Status::InvalidArgument("bad " + std::string(what) + " \"" + hex +
                                   "\" (expected up to 16 hexadecimal digits)");
  }
  return std::stoull(hex, nullptr, 16);
}

int PrintError(const Status& status) {
  // A server may answer with a bare code (UNIMPLEMENTED with no text): name the code then.
  std::cerr << "Error: "
            << (status.message().empty() ? std::string(StatusCodeName(status.code()))
                                         : status.message())
            << "\n";
  return kExitError;
}

void Print(std::string_view text) { std::cout << text << std::flush; }

namespace {

sigset_t WaitedSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);  // only to wake the waiter when it is no longer needed
  return set;
}

}  // namespace

SignalWaiter::SignalWaiter(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
  const sigset_t set = WaitedSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  thread_ = std::thread([this, set] {
    int signal = 0;
    while (sigwait(&set, &signal) == 0) {
      if (done_.load()) return;
      if (signal == SIGUSR1) continue;
      received_.store(signal);
      on_signal_(signal);
      return;
    }
  });
}

SignalWaiter::~SignalWaiter() {
  done_.store(true);
  if (received_.load() == 0) pthread_kill(thread_.native_handle(), SIGUSR1);
  thread_.join();
}

}  // namespace ballot::cli
