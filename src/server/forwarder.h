// Forwarder: a follower's client for the leader's etcdserverpb.Cluster service, where membership
// changes made on a follower go (docs/server.md, "Forwarding"; other requests are forwarded over
// the peer connections, see Member::AskLeader).
//
// Thread-safety: every method may be called from any thread. Channels are cached per address.
#pragma once

#include <grpcpp/channel.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "rpc.grpc.pb.h"
#include "server/node.h"

namespace ballot::server {

// "http://host:port" or "host:port" -> "host:port"; InvalidArgument for other schemes.
Result<std::string> ClientUrlToTarget(const std::string& url);

class Forwarder {
 public:
  Forwarder() = default;
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  // Membership changes go to the leader's own etcdserverpb.Cluster service (blocking calls of at
  // most `deadline`, trying `urls` in order while they are unreachable).
  Result<etcdserverpb::MemberAddResponse> MemberAdd(const std::vector<std::string>& urls,
                                                    const etcdserverpb::MemberAddRequest& request,
                                                    Deadline deadline);
  Result<etcdserverpb::MemberRemoveResponse> MemberRemove(
      const std::vector<std::string>& urls, const etcdserverpb::MemberRemoveRequest& request,
      Deadline deadline);
  Result<etcdserverpb::MemberPromoteResponse> MemberPromote(
      const std::vector<std::string>& urls, const etcdserverpb::MemberPromoteRequest& request,
      Deadline deadline);
  Result<etcdserverpb::MemberUpdateResponse> MemberUpdate(
      const std::vector<std::string>& urls, const etcdserverpb::MemberUpdateRequest& request,
      Deadline deadline);

 private:
  etcdserverpb::Cluster::Stub* ClusterStubFor(const std::string& target);
  template <typename Response, typename Call>
  Result<Response> CallLeader(const std::vector<std::string>& urls, Deadline deadline, Call call);

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;                     // mu_.
  std::map<std::string, std::unique_ptr<etcdserverpb::Cluster::Stub>> cluster_stubs_;  // mu_.
};

}  // namespace ballot::server
