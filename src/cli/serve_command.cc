// `ballot serve`: one member of a Ballot cluster, with etcd's flags (src/config/), speaking etcd's
// v3 gRPC API on its client URLs and the peer protocol on its peer URLs. Stops cleanly on SIGTERM
// or SIGINT; stops the process (exit code 1) on a fatal error such as a failed WAL write.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <set>

#include "base/logging.h"
#include "cli/command.h"
#include "config/data_dir.h"
#include "config/identity.h"
#include "config/serve_config.h"
#include "metrics/http_server.h"
#include "metrics/metrics.h"
#include "rpc/rpc_server.h"
#include "server/join.h"
#include "server/member.h"
#include "server/server_metrics.h"
#include "transport/transport.h"

namespace ballot::cli {
namespace {

// The transport is made before the member (the member sends through it) and delivers to the
// member once it exists.
class TransportSender : public server::PeerSender {
 public:
  explicit TransportSender(transport::Transport* t) : transport_(t) {}
  void Send(std::vector<consensus::Message> messages) override {
    transport_->Send(std::move(messages));
  }
  void SendMember(consensus::NodeId to, std::string payload) override {
    transport_->SendMember(to, std::move(payload));
  }

 private:
  transport::Transport* transport_;
};

std::atomic<server::Member*> g_member{nullptr};

// etcd's per-peer transport counters, read at scrape time (`transport` outlives the scrapes).
void AddTransportMetrics(metrics::Registry& registry, transport::Transport* transport) {
  auto per_peer = [transport](uint64_t transport::PeerStats::*field) {
    return [transport, field] {
      std::vector<metrics::Sample> out;
      for (const auto& [id, stats] : transport->GetStats()) {
        out.push_back({{{"To", config::IdToHex(id)}}, static_cast<double>(stats.*field)});
      }
      return out;
    };
  };
  registry.AddCallback("etcd_network_peer_sent_failures_total",
                       "The total number of send failures from peers (messages dropped).",
                       metrics::Type::kCounter, per_peer(&transport::PeerStats::dropped_messages));
  registry.AddCallback("etcd_network_peer_sent_bytes_total",
                       "The total number of bytes sent to peers.", metrics::Type::kCounter,
                       per_peer(&transport::PeerStats::sent_bytes));
}

// The metrics listener's addresses: IP literals, as the peer and client listeners take them.
Result<std::vector<metrics::HttpServerOptions::Address>> MetricsAddresses(
    const std::vector<config::Url>& urls) {
  std::vector<metrics::HttpServerOptions::Address> out;
  for (const auto& u : urls) {
    RETURN_IF_ERROR(config::GrpcListenAddress(u).status());  // IP or localhost only.
    std::string host = u.host.empty() ? "0.0.0.0" : u.host == "localhost" ? "127.0.0.1" : u.host;
    out.push_back({std::move(host), u.port});
  }
  return out;
}

// How long a joining member keeps asking the others for the member list.
constexpr int kJoinDiscoveryMs = 30000;

void FatalExit(const Status& s) {
  spdlog::critical("ballot serve: stopping: {}", s.ToString());
  spdlog::default_logger()->flush();
  std::cerr << "ballot serve: stopping: " << s.ToString() << std::endl;
  // The WAL refuses every write after an I/O error; the member must restart from what is on
  // disk, never continue.
  std::_Exit(1);
}

class ServeCommand : public Command {
 public:
  explicit ServeCommand(CLI::App* app) : app_(app) { config::AddServeFlags(*app, config_); }

  int Run() override {
    std::vector<std::string> warnings;
    auto resolved = config::Finalize(*app_, config_, config::ProcessEnvironment(), &warnings);
    if (!resolved.ok()) {
      std::cerr << "ballot serve: " << resolved.status().message() << "\n";
      return kExitError;
    }
    const config::ServeConfig& cfg = *resolved;
    logging::SetTag(cfg.name);
    if (!logging::SetLevel(cfg.log_level)) {
      std::cerr << "ballot serve: unknown log level " << cfg.log_level << "\n";
      return kExitError;
    }
    for (const auto& w : warnings) BLOG_WARN("ballot serve: {}", w);
    Status s = Serve(cfg);
    if (!s.ok()) {
      std::cerr << "ballot serve: " << s.ToString() << "\n";
      return kExitError;
    }
    return kExitOk;
  }

 private:
  Status Serve(const config::ServeConfig& cfg) {
    ASSIGN_OR_RETURN(config::InitialMembershipInfo membership, config::InitialMembership(cfg));
    const bool joining = cfg.parsed.initial_cluster_state == config::ClusterState::kExisting;
    std::vector<server::MemberInfo> joined_members;
    if (joining) {
      // The cluster assigned this member's id in MemberAdd; its cluster id is the running
      // cluster's, not one computed from --initial-cluster (which names this member too).
      std::vector<std::string> self_urls;
      std::vector<std::string> others;
      for (const auto& u : cfg.parsed.initial_advertise_peer_urls)
        self_urls.push_back(u.ToString());
      for (const auto& m : membership.members) {
        if (m.id == membership.self_id) continue;
        for (const auto& u : m.peer_urls) others.push_back(u.ToString());
      }
      auto info = server::DiscoverCluster(
          others, self_urls, server::Clock::now() + std::chrono::milliseconds(kJoinDiscoveryMs));
      if (!info.ok()) {
        return Status(info.status().code(),
                      "joining an existing cluster: " + info.status().message());
      }
      membership.cluster_id = info->cluster_id;
      membership.self_id = info->self_id;
      joined_members = std::move(info->members);
      for (auto& m : joined_members) {
        if (m.id == membership.self_id && m.name.empty()) m.name = cfg.name;
      }
      spdlog::info("member {}: joining cluster {} as member {} ({} members)", cfg.name,
                   config::IdToHex(membership.cluster_id), config::IdToHex(membership.self_id),
                   joined_members.size());
    }
    config::DataDirIdentity identity;
    identity.cluster_id = membership.cluster_id;
    identity.member_id = membership.self_id;
    identity.name = cfg.name;
    identity.engine = cfg.parsed.engine;
    ASSIGN_OR_RETURN(auto data_dir, config::DataDir::Open(cfg.data_dir, identity));

    // Signals are taken by sigwait below; every thread started from here on inherits the mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);

    transport::Transport::Options topts;
    topts.cluster_id = membership.cluster_id;
    topts.self = membership.self_id;
    ASSIGN_OR_RETURN(topts.listen_url, config::GrpcListenAddress(cfg.parsed.listen_peer_urls[0]));
    topts.listen_url = "http://" + topts.listen_url;
    topts.max_message_bytes = std::max<uint64_t>(32 << 20, 2 * cfg.max_request_bytes);
    // Members joining later ask for the member list on the peer port (server/join.h).
    server::PeerClusterService peer_cluster_service(
        []() -> Result<etcdserverpb::MemberListResponse> {
          server::Member* m = g_member.load();
          if (m == nullptr) return Status::Unavailable("member not started");
          return m->MemberList();
        });
    topts.extra_services.push_back(&peer_cluster_service);
    transport::Transport transport(
        topts,
        [](std::vector<consensus::Message> messages) {
          server::Member* m = g_member.load();
          if (m == nullptr) return;  // Not started yet: the engine retransmits.
          for (auto& msg : messages) m->Step(std::move(msg));
        },
        [](consensus::NodeId from, std::string payload) {
          server::Member* m = g_member.load();
          if (m == nullptr) return;  // Not started yet: the asking member times out.
          m->StepMember(from, std::move(payload));
        });
    std::mutex peers_mu;
    std::set<consensus::NodeId> peers;  // Guarded by peers_mu.
    auto sync_peers = [&](const std::vector<server::MemberInfo>& members) {
      std::lock_guard<std::mutex> lock(peers_mu);
      std::set<consensus::NodeId> now;
      for (const auto& m : members) now.insert(m.id);
      for (consensus::NodeId gone : peers) {
        if (now.count(gone) == 0) (void)transport.RemovePeer(gone);
      }
      peers = now;
      for (const auto& m : members) {
        if (m.id == membership.self_id || m.peer_urls.empty()) continue;
        Status added = transport.AddPeer(m.id, m.peer_urls[0]);
        if (added.code() == StatusCode::kAlreadyExists)
          (void)transport.UpdatePeer(m.id, m.peer_urls[0]);
      }
    };
    TransportSender sender(&transport);
    // Declared before the member, which keeps pointers to its instruments.
    metrics::Registry registry;

    server::MemberOptions mopts;
    server::NodeOptions& n = mopts.node;
    n.id = membership.self_id;
    n.cluster_id = membership.cluster_id;
    n.name = cfg.name;
    n.engine = cfg.parsed.engine == config::EngineKind::kRaft ? consensus::EngineKind::kRaft
                                                              : consensus::EngineKind::kMultiPaxos;
    n.wal_dir = data_dir->wal_dir();
    n.snap_dir = data_dir->snap_dir();
    n.tick_ms = static_cast<int>(cfg.heartbeat_interval_ms);
    n.election_ticks = cfg.parsed.election_ticks;
    n.heartbeat_ticks = 1;
    n.read_mode = cfg.lease_reads ? consensus::ReadMode::kLease : consensus::ReadMode::kReadIndex;
    n.lease_drift_ticks = cfg.parsed.lease_drift_ticks;
    n.snapshot_count = std::max<uint64_t>(1, cfg.snapshot_count);
    n.max_message_bytes = 1 << 20;
    n.seed = std::random_device{}() ^ membership.self_id;
    n.on_fatal = &FatalExit;
    n.metrics = server::AddServerMetrics(registry);
    if (joining) {
      // No membership of its own: the engine learns it from the leader (it cannot campaign
      // before), and the member list starts as the cluster's.
      mopts.initial_members = joined_members;
    } else {
      for (const auto& m : membership.members) {
        n.initial_voters.insert(m.id);
        server::MemberInfo info;
        info.id = m.id;
        info.name = m.name;
        for (const auto& u : m.peer_urls) info.peer_urls.push_back(u.ToString());
        mopts.initial_members.push_back(std::move(info));
      }
    }
    mopts.store_dir = data_dir->db_dir();
    for (const auto& u : cfg.parsed.advertise_client_urls)
      mopts.client_urls.push_back(u.ToString());
    for (const auto& u : cfg.parsed.initial_advertise_peer_urls) {
      mopts.peer_urls.push_back(u.ToString());
    }
    mopts.max_request_bytes = cfg.max_request_bytes;
    mopts.election_timeout_ms = static_cast<int>(cfg.election_timeout_ms);
    mopts.request_timeout_ms = 5000 + 2 * static_cast<int>(cfg.election_timeout_ms);
    mopts.quota_backend_bytes = cfg.parsed.quota_backend_bytes;
    mopts.on_members_changed = sync_peers;
    if (cfg.parsed.auto_compaction_mode == config::CompactionMode::kRevision) {
      mopts.auto_compaction_revisions = cfg.parsed.auto_compaction_revisions;
    } else {
      mopts.auto_compaction_period_ms = cfg.parsed.auto_compaction_period_ms;
    }

    sync_peers(mopts.initial_members);
    RETURN_IF_ERROR(transport.Start());
    auto member = server::Member::Open(std::move(mopts), &sender);
    if (!member.ok()) {
      transport.Stop();
      return member.status();
    }
    g_member = member->get();
    sync_peers((*member)->Members());
    server::AddMemberMetrics(registry, member->get());
    AddTransportMetrics(registry, &transport);
    std::unique_ptr<metrics::HttpServer> metrics_http;
    if (!cfg.parsed.listen_metrics_urls.empty()) {
      metrics::HttpServerOptions hopts;
      auto addresses = MetricsAddresses(cfg.parsed.listen_metrics_urls);
      if (addresses.ok()) hopts.listen = std::move(*addresses);
      hopts.render = [&registry] { return registry.Render(); };
      hopts.health = [m = member->get()] { return server::CheckHealth(m); };
      auto started = addresses.ok()
                         ? metrics::HttpServer::Start(std::move(hopts))
                         : Result<std::unique_ptr<metrics::HttpServer>>(addresses.status());
      if (!started.ok()) {
        g_member = nullptr;
        transport.Stop();
        (*member)->Stop();
        return Status(started.status().code(),
                      "--listen-metrics-urls: " + started.status().message());
      }
      metrics_http = std::move(*started);
    }

    rpc::RpcServerOptions ropts;
    for (const auto& u : cfg.parsed.listen_client_urls) {
      ASSIGN_OR_RETURN(std::string address, config::GrpcListenAddress(u));
      ropts.listen_addresses.push_back(address);
    }
    ropts.max_receive_bytes = cfg.max_request_bytes + 512 * 1024;
    auto rpc = rpc::RpcServer::Start(member->get(), ropts);
    if (!rpc.ok()) {
      if (metrics_http) metrics_http->Stop();
      g_member = nullptr;
      transport.Stop();
      (*member)->Stop();
      return rpc.status();
    }
    spdlog::info("member {} ({}) of cluster {} serving clients on {}, peers on {}", cfg.name,
                 config::IdToHex(membership.self_id), config::IdToHex(membership.cluster_id),
                 config::JoinUrls(cfg.parsed.listen_client_urls),
                 config::JoinUrls(cfg.parsed.listen_peer_urls));
    if (metrics_http) {
      spdlog::info("member {}: serving /metrics and /health on {}", cfg.name,
                   config::JoinUrls(cfg.parsed.listen_metrics_urls));
    }

    int signal_number = 0;
    sigwait(&signals, &signal_number);
    spdlog::info("member {}: {} received, stopping", cfg.name,
                 signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
    // Scrapes read the member and the transport: the metrics listener stops first.
    if (metrics_http) metrics_http->Stop();
    (*rpc)->Stop();
    g_member = nullptr;
    transport.Stop();
    (*member)->Stop();
    spdlog::info("member {} stopped", cfg.name);
    return Status::Ok();
  }

  CLI::App* app_;
  config::ServeConfig config_;
};

Registration RegisterServe(CLI::App& app) {
  CLI::App* sub = app.add_subcommand(
      "serve", "Run one member of a Ballot cluster (etcd's flags; etcd v3 API on client URLs)");
  return {sub, std::make_unique<ServeCommand>(sub)};
}

}  // namespace

[[maybe_unused]] const bool kRegistered = AddCommand(10, &RegisterServe);

}  // namespace ballot::cli
