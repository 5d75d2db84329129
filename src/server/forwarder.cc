#include "server/forwarder.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

namespace ballot::server {

Result<std::string> ClientUrlToTarget(const std::string& url) {
  constexpr std::string_view kHttp = "http://";
  std::string target = url;
  if (target.starts_with(kHttp)) {
    target = target.substr(kHttp.size());
  } else if (target.find("://") != std::string::npos) {
    return Status::InvalidArgument("unsupported client URL scheme: " + url);
  }
  while (!target.empty() && target.back() == '/') target.pop_back();
  if (target.empty()) return Status::InvalidArgument("empty client URL");
  return target;
}

etcdserverpb::Cluster::Stub* Forwarder::ClusterStubFor(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& channel = channels_[target];
  if (!channel) channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto& stub = cluster_stubs_[target];
  if (!stub) stub = etcdserverpb::Cluster::NewStub(channel);
  return stub.get();
}

// One blocking unary call to the leader, trying its URLs in turn. `call(stub, ctx, response)`
// makes the call. A failure other than UNAVAILABLE is the leader's own answer (an etcd error from
// its Cluster service) and is returned as it is; UNAVAILABLE moves on to the next URL.
template <typename Response, typename Call>
Result<Response> Forwarder::CallLeader(const std::vector<std::string>& urls, Deadline deadline,
                                       Call call) {
  Status last = Status::Unavailable("the leader has published no client URL yet");
  for (const std::string& url : urls) {
    auto target = ClientUrlToTarget(url);
    if (!target.ok()) {
      last = target.status();
      continue;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + (deadline - Clock::now()));
    Response response;
    grpc::Status s = call(ClusterStubFor(*target), &ctx, &response);
    if (s.ok()) return response;
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return Status(static_cast<StatusCode>(s.error_code()), s.error_message());
    }
    last = Status::Unavailable("forwarding to the leader at " + url + ": " + s.error_message());
  }
  return last;
}

Result<etcdserverpb::MemberAddResponse> Forwarder::MemberAdd(
    const std::vector<std::string>& urls, const etcdserverpb::MemberAddRequest& request,
    Deadline deadline) {
  return CallLeader<etcdserverpb::MemberAddResponse>(
      urls, deadline,
      [&](auto* stub, auto* ctx, auto* resp) { return stub->MemberAdd(ctx, request, resp); });
}

Result<etcdserverpb::MemberRemoveResponse> Forwarder::MemberRemove(
    const std::vector<std::string>& urls, const etcdserverpb::MemberRemoveRequest& request,
    Deadline deadline) {
  return CallLeader<etcdserverpb::MemberRemoveResponse>(
      urls, deadline,
      [&](auto* stub, auto* ctx, auto* resp) { return stub->MemberRemove(ctx, request, resp); });
}

Result<etcdserverpb::MemberPromoteResponse> Forwarder::MemberPromote(
    const std::vector<std::string>& urls, const etcdserverpb::MemberPromoteRequest& request,
    Deadline deadline) {
  return CallLeader<etcdserverpb::MemberPromoteResponse>(
      urls, deadline,
      [&](auto* stub, auto* ctx, auto* resp) { return stub->MemberPromote(ctx, request, resp); });
}

Result<etcdserverpb::MemberUpdateResponse> Forwarder::MemberUpdate(
    const std::vector<std::string>& urls, const etcdserverpb::MemberUpdateRequest& request,
    Deadline deadline) {
  return CallLeader<etcdserverpb::MemberUpdateResponse>(
      urls, deadline,
      [&](auto* stub, auto* ctx, auto* resp) { return stub->MemberUpdate(ctx, request, resp); });
}

}  // namespace ballot::server
