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

internal::Forward::Stub* Forwarder::StubFor(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& channel = channels_[target];
  if (!channel) channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto& stub = stubs_[target];
  if (!stub) stub = internal::Forward::NewStub(channel);
  return stub.get();
}

etcdserverpb::Cluster::Stub* Forwarder::ClusterStubFor(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& channel = channels_[target];
  if (!channel) channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto& stub = cluster_stubs_[target];
  if (!stub) stub = etcdserverpb::Cluster::NewStub(channel);
  return stub.get();
}

template <typename Request, typename Response, typename Call>
Result<Response> Forwarder::SendCluster(const std::vector<std::string>& urls,
                                        const Request& request, Deadline deadline, Call call) {
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
    grpc::Status s = call(ClusterStubFor(*target), &ctx, request, &response);
    if (s.ok()) return response;
    // The leader's own answer (an etcd error) is the client's answer.
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
  return SendCluster<etcdserverpb::MemberAddRequest, etcdserverpb::MemberAddResponse>(
      urls, request, deadline, [](auto* stub, auto* ctx, const auto& req, auto* resp) {
        return stub->MemberAdd(ctx, req, resp);
      });
}

Result<etcdserverpb::MemberRemoveResponse> Forwarder::MemberRemove(
    const std::vector<std::string>& urls, const etcdserverpb::MemberRemoveRequest& request,
    Deadline deadline) {
  return SendCluster<etcdserverpb::MemberRemoveRequest, etcdserverpb::MemberRemoveResponse>(
      urls, request, deadline, [](auto* stub, auto* ctx, const auto& req, auto* resp) {
        return stub->MemberRemove(ctx, req, resp);
      });
}

Result<etcdserverpb::MemberPromoteResponse> Forwarder::MemberPromote(
    const std::vector<std::string>& urls, const etcdserverpb::MemberPromoteRequest& request,
    Deadline deadline) {
  return SendCluster<etcdserverpb::MemberPromoteRequest, etcdserverpb::MemberPromoteResponse>(
      urls, request, deadline, [](auto* stub, auto* ctx, const auto& req, auto* resp) {
        return stub->MemberPromote(ctx, req, resp);
      });
}

Result<etcdserverpb::MemberUpdateResponse> Forwarder::MemberUpdate(
    const std::vector<std::string>& urls, const etcdserverpb::MemberUpdateRequest& request,
    Deadline deadline) {
  return SendCluster<etcdserverpb::MemberUpdateRequest, etcdserverpb::MemberUpdateResponse>(
      urls, request, deadline, [](auto* stub, auto* ctx, const auto& req, auto* resp) {
        return stub->MemberUpdate(ctx, req, resp);
      });
}

template <typename Request, typename Call>
Result<internal::ForwardResponse> Forwarder::Send(const std::vector<std::string>& urls,
                                                  const Request& request, Deadline deadline,
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
    internal::ForwardResponse response;
    grpc::Status s = call(StubFor(*target), &ctx, request, &response);
    if (s.ok()) return response;
    last = Status::Unavailable("forwarding to the leader at " + url + ": " + s.error_message());
  }
  return last;
}

Result<internal::ForwardResponse> Forwarder::Propose(const std::vector<std::string>& urls,
                                                     const internal::InternalRequest& request,
                                                     Deadline deadline) {
  return Send(urls, request, deadline, [](auto* stub, auto* ctx, const auto& req, auto* resp) {
    return stub->Propose(ctx, req, resp);
  });
}

Result<internal::ForwardResponse> Forwarder::LeaseKeepAlive(
    const std::vector<std::string>& urls, const etcdserverpb::LeaseKeepAliveRequest& request,
    Deadline deadline) {
  return Send(urls, request, deadline, [](auto* stub, auto* ctx, const auto& req, auto* resp) {
    return stub->LeaseKeepAlive(ctx, req, resp);
  });
}

Result<internal::ForwardResponse> Forwarder::LeaseTimeToLive(
    const std::vector<std::string>& urls, const etcdserverpb::LeaseTimeToLiveRequest& request,
    Deadline deadline) {
  return Send(urls, request, deadline, [](auto* stub, auto* ctx, const auto& req, auto* resp) {
    return stub->LeaseTimeToLive(ctx, req, resp);
  });
}

}  // namespace ballot::server
