#include "bench/options.h"

#include <cmath>
#include <string>

#include "bench/keys.h"

namespace ballot::bench {

namespace {

struct WorkloadEntry {
  Workload workload;
  const char* name;
};
constexpr WorkloadEntry kWorkloads[] = {
    {Workload::kPut, "put"},     {Workload::kRange, "range"},
    {Workload::kTxn, "txn"},     {Workload::kLock, "lock"},
    {Workload::kWatch, "watch"}, {Workload::kLeaseKeepAlive, "lease-keepalive"},
};

Status OutOfRange(const std::string& flag, const std::string& expected) {
  return Status::InvalidArgument(flag + ": expected " + expected);
}

}  // namespace

Result<Workload> ParseWorkload(const std::string& name) {
  for (const auto& entry : kWorkloads) {
    if (name == entry.name) return entry.workload;
  }
  return Status::InvalidArgument("unknown workload \"" + name +
                                 "\" (expected put, range, txn, lock, watch or lease-keepalive)");
}

const char* WorkloadName(Workload workload) {
  for (const auto& entry : kWorkloads) {
    if (workload == entry.workload) return entry.name;
  }
  BALLOT_UNREACHABLE("Workload out of range");
}

Result<std::string> NormalizeEndpoint(const std::string& endpoint) {
  std::string rest = endpoint;
  if (rest.rfind("https://", 0) == 0) {
    return Status::InvalidArgument("endpoint \"" + endpoint + "\": TLS is not supported");
  }
  if (rest.rfind("http://", 0) == 0) rest = rest.substr(7);
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == rest.size()) {
    return Status::InvalidArgument("endpoint \"" + endpoint + "\": expected host:port");
  }
  const std::string port = rest.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port) == 0 || std::stoul(port) > 65535) {
    return Status::InvalidArgument("endpoint \"" + endpoint + "\": port must be 1..65535");
  }
  if (rest.find('/') != std::string::npos) {
    return Status::InvalidArgument("endpoint \"" + endpoint + "\": expected host:port");
  }
  return rest;
}

Status Validate(Options& options) {
  if (options.endpoints.empty()) return OutOfRange("--endpoints", "at least one endpoint");
  for (std::string& endpoint : options.endpoints) {
    ASSIGN_OR_RETURN(endpoint, NormalizeEndpoint(endpoint));
  }
  if (options.clients == 0 || options.clients > kClientsMax) {
    return OutOfRange("--clients", "1.." + std::to_string(kClientsMax));
  }
  if (options.conns == 0 || options.conns > kConnsMax) {
    return OutOfRange("--conns", "1.." + std::to_string(kConnsMax));
  }
  if (options.conns > options.clients) {
    return OutOfRange("--conns", "at most --clients (" + std::to_string(options.clients) + ")");
  }
  if (options.threads == 0 || options.threads > kThreadsMax) {
    return OutOfRange("--threads", "1.." + std::to_string(kThreadsMax));
  }
  if (options.total > 0 && options.duration_s > 0) {
    return Status::InvalidArgument("--total and --duration: give one, not both");
  }
  if (!(options.duration_s >= 0) || options.duration_s > kDurationSecondsMax) {
    return OutOfRange("--duration", "0.." + std::to_string(kDurationSecondsMax) + " seconds");
  }
  if (options.total == 0 && options.duration_s == 0) options.duration_s = 10;
  if (!(options.rate >= 0) || !std::isfinite(options.rate)) {
    return OutOfRange("--rate", "a non-negative number of requests per second");
  }
  if (options.timeout_ms == 0) return OutOfRange("--timeout-ms", "a positive number");
  if (options.connect_timeout_ms == 0) {
    return OutOfRange("--connect-timeout-ms", "a positive number");
  }
  if (options.key_size == 0 || options.key_size > kKeySizeMax) {
    return OutOfRange("--key-size", "1.." + std::to_string(kKeySizeMax) + " bytes");
  }
  if (options.value_size > kValueSizeMax) {
    return OutOfRange("--value-size", "0.." + std::to_string(kValueSizeMax) + " bytes");
  }
  if (options.key_count == 0 || options.key_count > kKeyCountMax) {
    return OutOfRange("--key-space", "1.." + std::to_string(kKeyCountMax) + " keys");
  }
  if (options.key_prefix.size() >= options.key_size) {
    return OutOfRange("--key-prefix", "shorter than --key-size");
  }
  RETURN_IF_ERROR(KeySpace::Make(options.key_prefix, options.key_count, options.key_size).status());
  if (options.range_limit < 0) return OutOfRange("--range-limit", "a non-negative number of keys");
  if (options.locks == 0 || options.locks > kLocksMax) {
    return OutOfRange("--locks", "1.." + std::to_string(kLocksMax));
  }
  if (options.lease_ttl_s < 1 || options.lease_ttl_s > 1'000'000) {
    return OutOfRange("--lease-ttl", "1..1000000 seconds");
  }
  if (options.watchers == 0 || options.watchers > kWatchersMax) {
    return OutOfRange("--watchers", "1.." + std::to_string(kWatchersMax));
  }
  if (options.leases == 0 || options.leases > kLeasesMax) {
    return OutOfRange("--leases", "1.." + std::to_string(kLeasesMax));
  }
  if (options.workload == Workload::kLeaseKeepAlive && options.clients > options.leases) {
    return OutOfRange("--clients", "at most --leases for lease-keepalive (one stream per lease)");
  }
  if (options.workload == Workload::kWatch && options.value_size < 24) {
    // The put's send time travels in the value.
    return OutOfRange("--value-size", "at least 24 bytes for watch");
  }
  return Status::Ok();
}

}  // namespace ballot::bench
