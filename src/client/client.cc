#include "client/client.h"

#include <algorithm>
#include <condition_variable>
#include <utility>

namespace ballot::client {
namespace {

using Clock = std::chrono::system_clock;

// A server-side error in etcd's API starts with "etcdserver:" (or "mvcc:" / "lease:" inside
// it); a failure of the connection itself is reported by gRPC with its own words.
bool FromServer(const grpc::Status& status) {
  return status.error_message().rfind("etcdserver:", 0) == 0;
}

}  // namespace

Result<std::string> EndpointTarget(std::string_view endpoint) {
  std::string_view rest = endpoint;
  if (size_t scheme = rest.find("://"); scheme != std::string_view::npos) {
    std::string_view name = rest.substr(0, scheme);
    if (name != "http") {
      return Status::InvalidArgument("endpoint \"" + std::string(endpoint) + "\": scheme " +
                                     std::string(name) + " is not supported (use host:port)");
    }
    rest.remove_prefix(scheme + 3);
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  if (rest.empty() || colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size() ||
      rest.substr(colon + 1).find_first_not_of("0123456789") != std::string_view::npos) {
    return Status::InvalidArgument("endpoint \"" + std::string(endpoint) +
                                   "\": expected host:port");
  }
  return std::string(rest);
}

Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return Status::Ok();
  return Status(static_cast<StatusCode>(status.error_code()), status.error_message());
}

Result<std::unique_ptr<Client>> Client::Create(Options options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("no endpoints");
  std::vector<std::unique_ptr<Connection>> connections;
  for (const std::string& endpoint : options.endpoints) {
    ASSIGN_OR_RETURN(std::string target, EndpointTarget(endpoint));
    auto connection = std::make_unique<Connection>();
    connection->target = target;
    grpc::ChannelArguments args;
    // Reconnect quickly after a member restarts (gRPC's default backoff grows to 120 s).
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetMaxReceiveMessageSize(-1);
    connection->channel =
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    connection->kv = etcdserverpb::KV::NewStub(connection->channel);
    connection->lease = etcdserverpb::Lease::NewStub(connection->channel);
    connection->cluster = etcdserverpb::Cluster::NewStub(connection->channel);
    connection->maintenance = etcdserverpb::Maintenance::NewStub(connection->channel);
    connection->watch = etcdserverpb::Watch::NewStub(connection->channel);
    connection->lock = v3lockpb::Lock::NewStub(connection->channel);
    connection->election = v3electionpb::Election::NewStub(connection->channel);
    connections.push_back(std::move(connection));
  }
  return std::unique_ptr<Client>(new Client(std::move(options), std::move(connections)));
}

Client::Client(Options options, std::vector<std::unique_ptr<Connection>> connections)
    : options_(std::move(options)), connections_(std::move(connections)) {}

Status Client::EnsureConnected(Connection& connection) {
  if (connection.connected_once) return Status::Ok();
  if (!connection.channel->WaitForConnected(Clock::now() + options_.dial_timeout)) {
    return Status::Unavailable("cannot connect to " + connection.target + " within " +
                               std::to_string(options_.dial_timeout.count()) + " ms");
  }
  connection.connected_once = true;
  return Status::Ok();
}

size_t Client::Current() {
  std::lock_guard lock(mu_);
  return current_;
}

void Client::MoveOn(size_t failed) {
  std::lock_guard lock(mu_);
  if (current_ == failed) current_ = (current_ + 1) % connections_.size();
}

template <typename Response, typename Invoke>
Result<Response> Client::Unary(Retry retry, Deadline deadline, Invoke invoke) {
  Status last = Status::Unavailable("no endpoint answered");
  size_t index = Current();
  for (size_t attempt = 0; attempt < connections_.size(); ++attempt) {
    Connection& connection = *connections_[index];
    if (Status dialed = EnsureConnected(connection); !dialed.ok()) {
      last = dialed;
      MoveOn(index);
      index = (index + 1) % connections_.size();
      continue;
    }
    grpc::ClientContext context;
    if (deadline == Deadline::kCommand) {
      context.set_deadline(Clock::now() + options_.command_timeout);
    } else {
      std::lock_guard lock(mu_);
      if (waits_cancelled_) return Status(StatusCode::kCancelled, "cancelled");
      waiting_contexts_.push_back(&context);
    }
    Response response;
    const grpc::Status status = invoke(connection, &context, &response);
    if (deadline == Deadline::kNone) {
      std::lock_guard lock(mu_);
      std::erase(waiting_contexts_, &context);
    }
    if (status.ok()) return response;
    last = FromGrpc(status);
    const bool retryable = status.error_code() == grpc::StatusCode::UNAVAILABLE &&
                           (retry == Retry::kAnyUnavailable || !FromServer(status));
    if (!retryable) return last;
    MoveOn(index);
    index = (index + 1) % connections_.size();
  }
  return last;
}

void Client::CancelWaits() {
  std::lock_guard lock(mu_);
  waits_cancelled_ = true;
  for (grpc::ClientContext* context : waiting_contexts_) context->TryCancel();
}

Result<etcdserverpb::RangeResponse> Client::Range(const etcdserverpb::RangeRequest& request) {
  return Unary<etcdserverpb::RangeResponse>(
      Retry::kAnyUnavailable, Deadline::kCommand,
      [&](Connection& c, auto* ctx, auto* resp) { return c.kv->Range(ctx, request, resp); });
}

Result<etcdserverpb::PutResponse> Client::Put(const etcdserverpb::PutRequest& request) {
  return Unary<etcdserverpb::PutResponse>(
      Retry::kConnectionOnly, Deadline::kCommand,
      [&](Connection& c, auto* ctx, auto* resp) { return c.kv->Put(ctx, request, resp); });
}

Result<etcdserverpb::DeleteRangeResponse> Client::DeleteRange(
    const etcdserverpb::DeleteRangeRequest& request) {
  return Unary<etcdserverpb::DeleteRangeResponse>(
      Retry::kConnectionOnly, Deadline::kCommand,
      [&](Connection& c, auto* ctx, auto* resp) { return c.kv->DeleteRange(ctx, request, resp); });
}

Result<etcdserverpb::TxnResponse> Client::Txn(const etcdserverpb::TxnRequest& request) {
  return Unary<etcdserverpb::TxnResponse>(
      Retry::kConnectionOnly, Deadline::kCommand,
      [&](Connection& c, auto* ctx, auto* resp) { return c.kv->Txn(ctx, request, resp); });
}

Result<etcdserverpb::CompactionResponse> Client::Compact(
    const etcdserverpb::CompactionRequest& request) {
  return Unary<etcdserverpb::CompactionResponse>(
      Retry::kConnectionOnly, Deadline::kCommand,
      [&](Connection& c, auto* ctx, auto* resp) { return c.kv->Compact(ctx, request, resp); });
}

Result<etcdserverpb::LeaseGrantResponse> Client::LeaseGrant(int64_t ttl_s, int64_t id) {
  etcdserverpb::LeaseGrantRequest request;
  request.set_ttl(ttl_s);
  request.set_id(id);
  return Unary<etcdserverpb::LeaseGrantResponse>(Retry::kConnectionOnly, Deadline::kCommand,
                                                 [&](Connection& c, auto* ctx, auto* resp) {
                                                   return c.lease->LeaseGrant(ctx, request, resp);
                                                 });
}

Result<etcdserverpb::LeaseRevokeResponse> Client::LeaseRevoke(int64_t id) {
  etcdserverpb::LeaseRevokeRequest request;
  request.set_id(id);
  return Unary<etcdserverpb::LeaseRevokeResponse>(Retry::kAnyUnavailable, Deadline::kCommand,
                                                  [&](Connection& c, auto* ctx, auto* resp) {
                                                    return c.lease->LeaseRevoke(ctx, request, resp);
                                                  });
}

Result<etcdserverpb::LeaseTimeToLiveResponse> Client::LeaseTimeToLive(int64_t id, bool keys) {
  etcdserverpb::LeaseTimeToLiveRequest request;
  request.set_id(id);
  request.set_keys(keys);
  return Unary<etcdserverpb::LeaseTimeToLiveResponse>(
      Retry::kAnyUnavailable, Deadline::kCommand, [&](Connection& c, auto* ctx, auto* resp) {
        return c.lease->LeaseTimeToLive(ctx, request, resp);
      });
}

Result<etcdserverpb::LeaseLeasesResponse> Client::LeaseLeases() {
  etcdserverpb::LeaseLeasesRequest request;
  return Unary<etcdserverpb::LeaseLeasesResponse>(Retry::kAnyUnavailable, Deadline::kCommand,
                                                  [&](Connection& c, auto* ctx, auto* resp) {
                                                    return c.lease->LeaseLeases(ctx, request, resp);
                                                  });
}

Result<etcdserverpb::LeaseKeepAliveResponse> Client::LeaseKeepAliveOnce(int64_t id) {
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(id);
  return Unary<etcdserverpb::LeaseKeepAliveResponse>(
      Retry::kAnyUnavailable, Deadline::kCommand,
      [&](Connection& c, grpc::ClientContext* ctx, etcdserverpb::LeaseKeepAliveResponse* resp) {
        auto stream = c.lease->LeaseKeepAlive(ctx);
        if (!stream->Write(request) || !stream->Read(resp)) {
          stream->WritesDone();
          grpc::Status status = stream->Finish();
          return status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                            "keep-alive stream closed without an answer")
                             : status;
        }
        stream->WritesDone();
        ctx->TryCancel();  // the answer is in; do not wait for the server to close the stream
        stream->Finish();
        return grpc::Status::OK;
      });
}

Result<std::unique_ptr<KeepAliveCall>> Client::LeaseKeepAliveStream() {
  const size_t index = Current();
  Connection& connection = *connections_[index];
  if (Status dialed = EnsureConnected(connection); !dialed.ok()) {
    MoveOn(index);
    return dialed;
  }
  auto context = std::make_unique<grpc::ClientContext>();
  auto stream = connection.lease->LeaseKeepAlive(context.get());
  return std::make_unique<KeepAliveCall>(std::move(context), std::move(stream));
}

Result<etcdserverpb::MemberListResponse> Client::MemberList() {
  etcdserverpb::MemberListRequest request;
  return Unary<etcdserverpb::MemberListResponse>(Retry::kAnyUnavailable, Deadline::kCommand,
                                                 [&](Connection& c, auto* ctx, auto* resp) {
                                                   return c.cluster->MemberList(ctx, request, resp);
                                                 });
}

Result<etcdserverpb::MemberAddResponse> Client::MemberAdd(const std::vector<std::string>& peer_urls,
                                                          bool learner) {
  etcdserverpb::MemberAddRequest request;
  for (const std::string& url : peer_urls) request.add_peerurls(url);
  request.set_islearner(learner);
  return Unary<etcdserverpb::MemberAddResponse>(Retry::kConnectionOnly, Deadline::kCommand,
                                                [&](Connection& c, auto* ctx, auto* resp) {
                                                  return c.cluster->MemberAdd(ctx, request, resp);
                                                });
}

Result<etcdserverpb::MemberRemoveResponse> Client::MemberRemove(uint64_t id) {
  etcdserverpb::MemberRemoveRequest request;
  request.set_id(id);
  return Unary<etcdserverpb::MemberRemoveResponse>(
      Retry::kConnectionOnly, Deadline::kCommand, [&](Connection& c, auto* ctx, auto* resp) {
        return c.cluster->MemberRemove(ctx, request, resp);
      });
}

Result<etcdserverpb::MemberPromoteResponse> Client::MemberPromote(uint64_t id) {
  etcdserverpb::MemberPromoteRequest request;
  request.set_id(id);
  return Unary<etcdserverpb::MemberPromoteResponse>(
      Retry::kConnectionOnly, Deadline::kCommand, [&](Connection& c, auto* ctx, auto* resp) {
        return c.cluster->MemberPromote(ctx, request, resp);
      });
}

Result<etcdserverpb::StatusResponse> Client::StatusOf(const std::string& endpoint) {
  ASSIGN_OR_RETURN(std::string target, EndpointTarget(endpoint));
  for (auto& connection : connections_) {
    if (connection->target != target) continue;
    RETURN_IF_ERROR(EnsureConnected(*connection));
    grpc::ClientContext context;
    context.set_deadline(Clock::now() + options_.command_timeout);
    etcdserverpb::StatusResponse response;
    const grpc::Status status =
        connection->maintenance->Status(&context, etcdserverpb::StatusRequest(), &response);
    if (!status.ok()) return FromGrpc(status);
    return response;
  }
  return Status::InvalidArgument("endpoint " + endpoint + " is not among the client's endpoints");
}

Result<v3lockpb::LockResponse> Client::Lock(const std::string& name, int64_t lease_id) {
  v3lockpb::LockRequest request;
  request.set_name(name);
  request.set_lease(lease_id);
  return Unary<v3lockpb::LockResponse>(
      Retry::kConnectionOnly, Deadline::kNone,
      [&](Connection& c, auto* ctx, auto* resp) { return c.lock->Lock(ctx, request, resp); });
}

Result<v3lockpb::UnlockResponse> Client::Unlock(const std::string& key) {
  v3lockpb::UnlockRequest request;
  request.set_key(key);
  return Unary<v3lockpb::UnlockResponse>(
      Retry::kAnyUnavailable, Deadline::kCommand,
      [&](Connection& c, auto* ctx, auto* resp) { return c.lock->Unlock(ctx, request, resp); });
}

Result<v3electionpb::CampaignResponse> Client::Campaign(const std::string& name, int64_t lease_id,
                                                        const std::string& value) {
  v3electionpb::CampaignRequest request;
  request.set_name(name);
  request.set_lease(lease_id);
  request.set_value(value);
  return Unary<v3electionpb::CampaignResponse>(Retry::kConnectionOnly, Deadline::kNone,
                                               [&](Connection& c, auto* ctx, auto* resp) {
                                                 return c.election->Campaign(ctx, request, resp);
                                               });
}

Result<v3electionpb::ResignResponse> Client::Resign(const v3electionpb::LeaderKey& leader) {
  v3electionpb::ResignRequest request;
  *request.mutable_leader() = leader;
  return Unary<v3electionpb::ResignResponse>(
      Retry::kAnyUnavailable, Deadline::kCommand,
      [&](Connection& c, auto* ctx, auto* resp) { return c.election->Resign(ctx, request, resp); });
}

Result<std::unique_ptr<ObserveCall>> Client::Observe(const std::string& name) {
  const size_t index = Current();
  Connection& connection = *connections_[index];
  if (Status dialed = EnsureConnected(connection); !dialed.ok()) {
    MoveOn(index);
    return dialed;
  }
  v3electionpb::LeaderRequest request;
  request.set_name(name);
  auto context = std::make_unique<grpc::ClientContext>();
  auto stream = connection.election->Observe(context.get(), request);
  return std::make_unique<ObserveCall>(std::move(context), std::move(stream));
}

Result<std::unique_ptr<WatchCall>> Client::Watch(const etcdserverpb::WatchCreateRequest& create) {
  Status last = Status::Unavailable("no endpoint answered");
  size_t index = Current();
  for (size_t attempt = 0; attempt < connections_.size(); ++attempt) {
    Connection& connection = *connections_[index];
    if (Status dialed = EnsureConnected(connection); !dialed.ok()) {
      last = dialed;
      MoveOn(index);
      index = (index + 1) % connections_.size();
      continue;
    }
    auto context = std::make_unique<grpc::ClientContext>();
    auto stream = connection.watch->Watch(context.get());
    etcdserverpb::WatchRequest request;
    *request.mutable_create_request() = create;
    if (stream->Write(request)) {
      return std::make_unique<WatchCall>(std::move(context), std::move(stream));
    }
    last = FromGrpc(stream->Finish());
    if (last.ok()) last = Status::Unavailable("watch stream to " + connection.target + " closed");
    MoveOn(index);
    index = (index + 1) % connections_.size();
  }
  return last;
}

KeepAlive::KeepAlive(Client& client, int64_t lease_id, int64_t ttl_s, std::function<void()> on_lost)
    : client_(client), lease_id_(lease_id), ttl_s_(ttl_s), on_lost_(std::move(on_lost)) {
  thread_ = std::thread([this] { Loop(); });
}

KeepAlive::~KeepAlive() { Stop(); }

void KeepAlive::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void KeepAlive::Loop() {
  // Renew every third of the TTL, as etcd's clients do; retry every half second after a failure.
  const auto period = std::chrono::milliseconds(std::max<int64_t>(ttl_s_ * 1000 / 3, 200));
  auto last_renewed = std::chrono::steady_clock::now();
  auto wait = period;
  while (true) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, wait, [this] { return stop_; })) return;
    }
    Result<etcdserverpb::LeaseKeepAliveResponse> renewed = client_.LeaseKeepAliveOnce(lease_id_);
    const auto now = std::chrono::steady_clock::now();
    if (renewed.ok() && renewed->ttl() > 0) {
      last_renewed = now;
      wait = period;
      continue;
    }
    const bool expired = renewed.ok() || renewed.status().code() == StatusCode::kNotFound;
    if (expired || now - last_renewed >= std::chrono::seconds(ttl_s_)) {
      on_lost_();
      return;
    }
    wait = std::chrono::milliseconds(500);
  }
}

}  // namespace ballot::client
