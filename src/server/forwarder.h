// Forwarder: a follower's client for the leader's ballot.internal.Forward service (see
// proto/internal.proto and docs/server.md, "Forwarding").
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
#include "internal.grpc.pb.h"
#include "rpc.grpc.pb.h"
#include "server/node.h"

namespace ballot::server {

// "http://host:port" or "host:port" -> "host:port"; InvalidArgument for other schemes.
Result<std::string> ClientUrlToTarget(const std::string& url);

class Forwarder {
 public:
  // Sends to the first of `urls` that answers; Unavailable if none does before `deadline`.
  Result<internal::ForwardResponse> Propose(const std::vector<std::string>& urls,
                                            const internal::InternalRequest& request,
                                            Deadline deadline);
  Result<internal::ForwardResponse> LeaseKeepAlive(
      const std::vector<std::string>& urls, const etcdserverpb::LeaseKeepAliveRequest& request,
      Deadline deadline);
  // Membership changes go to the leader's own etcdserverpb.Cluster service.
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
  Result<internal::ForwardResponse> LeaseTimeToLive(
      const std::vector<std::string>& urls, const etcdserverpb::LeaseTimeToLiveRequest& request,
      Deadline deadline);

 private:
  internal::Forward::Stub* StubFor(const std::string& target);
  etcdserverpb::Cluster::Stub* ClusterStubFor(const std::string& target);
  template <typename Request, typename Response, typename Call>
  Result<Response> SendCluster(const std::vector<std::string>& urls, const Request& request,
                               Deadline deadline, Call call);
  template <typename Request, typename Call>
  Result<internal::ForwardResponse> Send(const std::vector<std::string>& urls,
                                         const Request& request, Deadline deadline, Call call);

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<internal::Forward::Stub>> stubs_;  // Guarded by mu_.
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;         // Guarded by mu_.
  std::map<std::string, std::unique_ptr<etcdserverpb::Cluster::Stub>> cluster_stubs_;  // mu_.
};

}  // namespace ballot::server
