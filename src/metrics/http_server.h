// HttpServer: the metrics listener of `ballot serve` (etcd's --listen-metrics-urls).
//
// GET /metrics  -> 200, the registry in the Prometheus text format (text/plain; version=0.0.4).
// GET /health   -> 200 {"health":"true"}, or 503 {"health":"false","reason":"..."} (etcd's
//                  etcdhttp health handler; the reason is etcd 3.5's addition).
// Another method on those paths -> 405 with "Allow: GET"; any other path -> 404. HEAD is GET
// without a body.
//
// One listening socket and accept thread per address, plus a small worker pool each (cpp-httplib).
// Connections are not kept alive, so Stop() returns once the requests in progress are answered
// (a client that sends nothing is dropped after the read timeout, 2 s).
//
// Thread-safety: Start/Stop from one thread; `render` and `health` are called on worker threads,
// concurrently, until Stop returns.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"

namespace httplib {
class Server;
}

namespace ballot::metrics {

struct Health {
  bool healthy = true;
  std::string reason;  // Why not, when !healthy ("RAFT NO LEADER").
};

struct HttpServerOptions {
  struct Address {
    std::string host;  // An IP literal ("127.0.0.1", "0.0.0.0", "::1").
    int port = 0;      // 0 picks a free port; ports() tells which.
  };
  std::vector<Address> listen;
  std::function<std::string()> render;  // The /metrics body.
  std::function<Health()> health;       // The /health answer; may block briefly.
  size_t workers_per_address = 2;
};

class HttpServer {
 public:
  // Binds every address (before serving any): InvalidArgument for no address or missing
  // callbacks, Unavailable naming the address when it cannot be bound (in use, not local).
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options);
  ~HttpServer();  // Stops.
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Stops listening, answers the requests in progress and joins every thread. Idempotent.
  void Stop();
  // The bound ports, in the order of options.listen.
  std::vector<int> ports() const { return ports_; }

 private:
  explicit HttpServer(HttpServerOptions options);

  const HttpServerOptions options_;
  std::vector<std::unique_ptr<httplib::Server>> servers_;
  std::vector<std::thread> threads_;
  std::vector<int> ports_;
};

// The /health body for `h` (etcd's JSON).
std::string HealthJson(const Health& h);

}  // namespace ballot::metrics
