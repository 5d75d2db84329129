// Runs one `ballot bench` workload against etcd v3 gRPC endpoints (etcd itself or Ballot).
//
// Concurrency comes from gRPC's asynchronous API, not from threads: each client is a small state
// machine with at most one operation in flight, driven by one of `threads` completion queues, so
// thousands of concurrent requests need only a few threads.
#pragma once

#include "base/status.h"
#include "bench/options.h"
#include "bench/report.h"

namespace ballot::bench {

// `options` must have passed Validate. Fails (without measuring) if an endpoint is unreachable or
// the setup (populating keys, granting leases, creating watchers) fails; errors during the
// measured run are counted in the report instead.
Result<Report> Run(const Options& options);

}  // namespace ballot::bench
