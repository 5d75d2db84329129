// RpcServer: etcd's v3 gRPC API (KV, Watch, Lease, Cluster, Maintenance, grpc.health.v1) and
// Ballot's internal Forward service, served over one Member on the client URLs.
//
// Every service uses gRPC's callback API. Unary calls are handed to a bounded pool of worker
// threads (a member call blocks until its entry is applied, and gRPC's own callback threads must
// stay free for the peer transport); Watch and LeaseKeepAlive streams are reactors that hold no
// thread while idle: watch responses are pushed by one pump thread when the hub wakes a stream.
// See docs/server.md.
//
// Thread-safety: Start and Stop from one thread; the services run on gRPC's and the pool's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "server/member.h"

namespace grpc {
class Server;
}

namespace ballot::rpc {

struct RpcServerOptions {
  // "host:port" each; port 0 picks a free port (see ports()).
  std::vector<std::string> listen_addresses;
  // Calls that may wait for consensus (lease, lock, membership, maintenance steps) hold one of
  // these while they wait.
  int worker_threads = 16;
  size_t worker_queue_max = 10000;  // Unary calls waiting for a worker; more: ResourceExhausted.
  // The local part of reads, after their consistency wait: it never waits for consensus, so it
  // needs no more threads than cores, and fewer threads switch less. 0: the machine's cores.
  int read_threads = 0;
  // gRPC's receive limit: etcd's max request bytes plus room for the envelope, so that an
  // oversized request reaches the member and gets etcd's "request is too large".
  uint64_t max_receive_bytes = 1536 * 1024 + 512 * 1024;
};

class RpcServer {
 public:
  // `member` is borrowed and must outlive the server.
  static Result<std::unique_ptr<RpcServer>> Start(server::Member* member, RpcServerOptions options);
  ~RpcServer();
  RpcServer(const RpcServer&) = delete;
  RpcServer& operator=(const RpcServer&) = delete;

  // Cancels every call and stream, then stops the workers. Idempotent.
  void Stop();
  // The bound ports, in the order of listen_addresses.
  const std::vector<int>& ports() const { return ports_; }

 private:
  struct Impl;
  explicit RpcServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::vector<int> ports_;
};

}  // namespace ballot::rpc
