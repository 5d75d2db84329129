// `ballot bench WORKLOAD`: load generator for the etcd v3 gRPC API, against etcd or Ballot
// (docs/benchmarks.md).
#include <iostream>
#include <string>

#include "bench/options.h"
#include "bench/report.h"
#include "bench/runner.h"
#include "cli/command.h"

namespace ballot::cli {
namespace {

class BenchCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    // A later flag overrides an earlier one, so scripts can append to a common set of flags.
    sub.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    sub.add_option("WORKLOAD", workload_, "put | range | txn | lock | watch | lease-keepalive")
        ->required();
    sub.add_option("--endpoints", options_.endpoints, "Comma-separated host:port list")
        ->delimiter(',')
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
        ->capture_default_str();
    sub.add_option("--clients", options_.clients, "Concurrent requests (or streams)")
        ->capture_default_str();
    sub.add_option("--conns", options_.conns, "gRPC connections, spread over the endpoints")
        ->capture_default_str();
    sub.add_option("--threads", options_.threads, "Completion-queue threads")
        ->capture_default_str();
    sub.add_option("--total", options_.total, "Requests to issue (instead of --duration)");
    sub.add_option("--duration", options_.duration_s, "Seconds to run (default 10)");
    sub.add_option("--rate", options_.rate, "Requests per second over all clients; 0: no limit")
        ->capture_default_str();
    sub.add_option("--timeout-ms", options_.timeout_ms, "Per-request deadline")
        ->capture_default_str();
    sub.add_option("--connect-timeout-ms", options_.connect_timeout_ms,
                   "Give up if a connection is not up within this")
        ->capture_default_str();
    sub.add_option("--key-size", options_.key_size, "Key size in bytes")->capture_default_str();
    sub.add_option("--value-size", options_.value_size, "Value size in bytes")
        ->capture_default_str();
    sub.add_option("--key-space", options_.key_count, "Number of distinct keys")
        ->capture_default_str();
    sub.add_flag("--sequential-keys", options_.sequential_keys,
                 "Walk the key space in order (default: uniformly random keys)");
    sub.add_option("--key-prefix", options_.key_prefix, "Prefix of every key")
        ->capture_default_str();
    sub.add_flag("--serializable", options_.serializable,
                 "range: serializable (member-local) reads instead of linearizable");
    sub.add_flag("--prefix", options_.prefix_read,
                 "range: read the whole key space's prefix instead of one key");
    sub.add_option("--range-limit", options_.range_limit, "range --prefix: at most this many keys")
        ->capture_default_str();
    sub.add_option("--locks", options_.locks, "lock: number of distinct locks")
        ->capture_default_str();
    sub.add_option("--lease-ttl", options_.lease_ttl_s, "lock, lease-keepalive: lease TTL (s)")
        ->capture_default_str();
    sub.add_option("--watchers", options_.watchers, "watch: number of watch streams")
        ->capture_default_str();
    sub.add_option("--leases", options_.leases, "lease-keepalive: number of leases")
        ->capture_default_str();
    sub.add_option("--seed", options_.seed, "Seed of keys and values")->capture_default_str();
    sub.add_flag("--json", options_.json, "Print the result as one JSON object");
  }

  int Run() override {
    Result<bench::Workload> workload = bench::ParseWorkload(workload_);
    if (!workload.ok()) return Fail(workload.status());
    options_.workload = *workload;
    if (Status status = bench::Validate(options_); !status.ok()) return Fail(status);
    Result<bench::Report> report = bench::Run(options_);
    if (!report.ok()) return Fail(report.status());
    if (options_.json) {
      std::cout << bench::ToJson(*report, options_).dump() << "\n";
    } else {
      std::cout << bench::FormatText(*report, options_);
    }
    return kExitOk;
  }

 private:
  static int Fail(const Status& status) {
    std::cerr << "ballot bench: " << status.message() << "\n";
    return kExitError;
  }

  std::string workload_;
  bench::Options options_;
};

}  // namespace

Registration RegisterBench(CLI::App& app) {
  auto command = std::make_unique<BenchCommand>();
  CLI::App* sub = app.add_subcommand(
      "bench", "Load an etcd v3 gRPC endpoint (etcd or Ballot) and report throughput and latency");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

[[maybe_unused]] const bool kRegistered = AddCommand(80, &RegisterBench);

}  // namespace ballot::cli
