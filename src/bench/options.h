// What `ballot bench` runs: the workload and its parameters, with their validation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace ballot::bench {

enum class Workload { kPut, kRange, kTxn, kLock, kWatch, kLeaseKeepAlive };

// "put", "range", "txn", "lock", "watch", "lease-keepalive".
Result<Workload> ParseWorkload(const std::string& name);
const char* WorkloadName(Workload workload);

// Limits that keep a typo from exhausting the machine or from sending what etcd refuses anyway.
inline constexpr uint32_t kClientsMax = 100'000;
inline constexpr uint32_t kConnsMax = 1'000;
inline constexpr uint32_t kThreadsMax = 64;
inline constexpr uint32_t kKeySizeMax = 64 * 1024;
// etcd's default --max-request-bytes is 1.5 MiB; a value above it could never succeed.
inline constexpr uint32_t kValueSizeMax = 1536 * 1024;
inline constexpr uint64_t kKeyCountMax = 100'000'000;
inline constexpr uint32_t kWatchersMax = 100'000;
inline constexpr uint32_t kLeasesMax = 1'000'000;
inline constexpr uint32_t kLocksMax = 100'000;
inline constexpr double kDurationSecondsMax = 24 * 3600;

struct Options {
  Workload workload = Workload::kPut;
  // Host:port pairs; "http://" is accepted and stripped (etcd's flag style). TLS is not supported.
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  uint32_t clients = 100;        // concurrent requests (streams, for watch and lease-keepalive)
  uint32_t conns = 10;           // gRPC channels (TCP connections), spread over the endpoints
  uint32_t threads = 2;          // completion-queue threads
  uint64_t total = 0;            // requests to issue; 0: run for duration_s instead
  double duration_s = 0;         // how long to run; 0 with total 0: 10 s
  double rate = 0;               // requests per second over all clients; 0: as fast as possible
  uint32_t timeout_ms = 10'000;  // per-request deadline (lock waits are bounded by the run instead)
  uint32_t connect_timeout_ms = 5'000;  // every channel must connect within this

  // Keys and values (put, range, txn, watch).
  uint32_t key_size = 256;
  uint32_t value_size = 1024;
  uint64_t key_count = 10'000;  // the key space
  bool sequential_keys = false;
  std::string key_prefix = "bench/";

  // range
  bool serializable = false;
  bool prefix_read = false;  // read the key space's prefix in one range, not a single key
  int64_t range_limit = 0;   // limit of a prefix read; 0: no limit

  // lock
  uint32_t locks = 1;
  int64_t lease_ttl_s = 60;

  // watch: watchers on the key space; `clients` putters feed them.
  uint32_t watchers = 100;

  // lease-keepalive: leases spread over `clients` keep-alive streams.
  uint32_t leases = 1'000;

  uint64_t seed = 1;
  bool json = false;
};

// Checks ranges and combinations, normalizes endpoints, and fills defaults that depend on other
// options (a 10 s duration when neither total nor duration is given). Errors name the flag.
Status Validate(Options& options);

// "http://host:port" or "host:port" -> "host:port"; an error for anything else.
Result<std::string> NormalizeEndpoint(const std::string& endpoint);

}  // namespace ballot::bench
