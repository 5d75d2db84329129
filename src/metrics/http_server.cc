#include "metrics/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <nlohmann/json.hpp>

namespace ballot::metrics {

namespace {

constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kJsonContentType = "application/json";
constexpr int kReadTimeoutS = 2;
constexpr int kWriteTimeoutS = 5;
// How long Start waits for an accept thread to be running before giving up on it.
constexpr auto kListenStartMax = std::chrono::seconds(5);

// cpp-httplib's default also sets SO_REUSEPORT, which would let a second server share a port that
// is already in use; only SO_REUSEADDR here (restarts must not wait out TIME_WAIT).
void SocketOptions(socket_t sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

void MethodNotAllowed(const httplib::Request&, httplib::Response& res) {
  res.status = 405;
  res.set_header("Allow", "GET");
  res.set_content("method not allowed\n", "text/plain; charset=utf-8");
}

// Runs before cpp-httplib reads a request body, so a POST without Content-Length also gets 405
// (not 400).
httplib::Server::HandlerResponse RefuseOtherMethods(const httplib::Request& req,
                                                    httplib::Response& res) {
  if ((req.path == "/metrics" || req.path == "/health") && req.method != "GET" &&
      req.method != "HEAD") {
    MethodNotAllowed(req, res);
    return httplib::Server::HandlerResponse::Handled;
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

}  // namespace

std::string HealthJson(const Health& h) {
  nlohmann::ordered_json j;
  j["health"] = h.healthy ? "true" : "false";
  if (!h.healthy) j["reason"] = h.reason;
  return j.dump();
}

HttpServer::HttpServer(HttpServerOptions options) : options_(std::move(options)) {}

HttpServer::~HttpServer() { Stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options) {
  if (options.listen.empty()) return Status::InvalidArgument("metrics: no address to listen on");
  if (!options.render || !options.health) {
    return Status::InvalidArgument("metrics: render and health callbacks are required");
  }
  if (options.workers_per_address == 0) options.workers_per_address = 1;
  std::unique_ptr<HttpServer> http(new HttpServer(std::move(options)));
  const HttpServerOptions& o = http->options_;

  // Bind everything first, so that a port in use fails the start before anything is served.
  for (const auto& address : o.listen) {
    auto server = std::make_unique<httplib::Server>();
    server->set_socket_options(SocketOptions);
    server->set_keep_alive_max_count(1);
    server->set_read_timeout(kReadTimeoutS, 0);
    server->set_write_timeout(kWriteTimeoutS, 0);
    const size_t workers = o.workers_per_address;
    server->new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
    server->set_pre_routing_handler(RefuseOtherMethods);
    server->Get("/metrics", [render = o.render](const httplib::Request&, httplib::Response& res) {
      res.set_content(render(), kMetricsContentType);
    });
    server->Get("/health", [health = o.health](const httplib::Request&, httplib::Response& res) {
      const Health h = health();
      res.status = h.healthy ? 200 : 503;
      res.set_content(HealthJson(h), kJsonContentType);
    });
    server->set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.status == 404) res.set_content("404 page not found\n", "text/plain; charset=utf-8");
    });
    int port = address.port;
    bool bound = false;
    if (port == 0) {
      port = server->bind_to_any_port(address.host);
      bound = port > 0;
    } else {
      bound = server->bind_to_port(address.host, port);
    }
    if (!bound) {
      return Status::Unavailable("cannot listen for metrics on " + address.host + ":" +
                                 std::to_string(address.port) + " (address in use or not local)");
    }
    http->ports_.push_back(port);
    http->servers_.push_back(std::move(server));
  }
  for (auto& server : http->servers_) {
    httplib::Server* s = server.get();
    http->threads_.emplace_back([s] { s->listen_after_bind(); });
  }
  // Stop() on a server whose accept loop has not started yet would not end that loop later.
  const auto deadline = std::chrono::steady_clock::now() + kListenStartMax;
  for (auto& server : http->servers_) {
    while (!server->is_running()) {
      if (std::chrono::steady_clock::now() > deadline) {
        return Status::Internal("metrics: the HTTP accept loop did not start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }
  return http;
}

void HttpServer::Stop() {
  for (auto& server : servers_) server->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace ballot::metrics
