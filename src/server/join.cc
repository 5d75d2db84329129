#include "server/join.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <algorithm>
#include <thread>

#include "base/logging.h"
#include "server/forwarder.h"

namespace ballot::server {
namespace {

constexpr auto kAskTimeout = std::chrono::milliseconds(1000);
constexpr auto kRetryPause = std::chrono::milliseconds(200);

MemberInfo FromProto(const etcdserverpb::Member& m) {
  MemberInfo info;
  info.id = m.id();
  info.name = m.name();
  info.peer_urls.assign(m.peerurls().begin(), m.peerurls().end());
  info.client_urls.assign(m.clienturls().begin(), m.clienturls().end());
  info.is_learner = m.islearner();
  return info;
}

}  // namespace

Result<JoinInfo> DiscoverCluster(const std::vector<std::string>& peer_urls,
                                 const std::vector<std::string>& self_peer_urls,
                                 Deadline deadline) {
  if (peer_urls.empty()) {
    return Status::InvalidArgument(
        "--initial-cluster-state existing needs --initial-cluster to name at least one other "
        "member");
  }
  std::vector<std::unique_ptr<etcdserverpb::Cluster::Stub>> stubs;
  for (const std::string& url : peer_urls) {
    ASSIGN_OR_RETURN(std::string target, ClientUrlToTarget(url));
    stubs.push_back(etcdserverpb::Cluster::NewStub(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials())));
  }
  std::string last_error = "no member answered";
  while (true) {
    for (size_t i = 0; i < stubs.size(); ++i) {
      grpc::ClientContext context;
      const auto wait = std::min(deadline, Clock::now() + kAskTimeout) - Clock::now();
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::duration_cast<std::chrono::milliseconds>(wait));
      etcdserverpb::MemberListRequest request;
      etcdserverpb::MemberListResponse response;
      grpc::Status s = stubs[i]->MemberList(&context, request, &response);
      if (!s.ok()) {
        last_error = peer_urls[i] + ": " + s.error_message();
        continue;
      }
      JoinInfo info;
      info.cluster_id = response.header().cluster_id();
      for (const auto& m : response.members()) {
        info.members.push_back(FromProto(m));
        for (const auto& u : m.peerurls()) {
          if (std::find(self_peer_urls.begin(), self_peer_urls.end(), u) != self_peer_urls.end()) {
            info.self_id = m.id();
          }
        }
      }
      if (info.cluster_id == 0) {
        last_error = peer_urls[i] + ": the member list names no cluster id";
        continue;
      }
      if (info.self_id == consensus::kNoNode) {
        return Status::NotFound(
            "the cluster (asked at " + peer_urls[i] +
            ") has no member with this member's peer URLs; add it with `member add` first");
      }
      return info;
    }
    if (Clock::now() + kRetryPause >= deadline) break;
    std::this_thread::sleep_for(kRetryPause);
  }
  return Status::Unavailable("could not fetch the cluster's member list: " + last_error);
}

grpc::ServerUnaryReactor* PeerClusterService::MemberList(
    grpc::CallbackServerContext* context, const etcdserverpb::MemberListRequest*,
    etcdserverpb::MemberListResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Result<etcdserverpb::MemberListResponse> list = list_();  // Local: it waits for nothing.
  if (!list.ok()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, list.status().message()));
  } else {
    *response = std::move(list).value();
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

}  // namespace ballot::server
