// Joining a running cluster (etcd's --initial-cluster-state existing).
//
// A member added with MemberAdd got its id from the cluster. When it starts, it asks the other
// members named in --initial-cluster for the member list (Cluster.MemberList, served on their
// peer URLs by PeerClusterService, as etcd serves /members on its peer port), and finds itself
// by peer URL: that gives its member id, the cluster id and the current members. It then starts
// with no membership of its own and learns the rest from the leader's appends or snapshot.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "rpc.grpc.pb.h"
#include "server/member.h"

namespace ballot::server {

struct JoinInfo {
  uint64_t cluster_id = 0;
  consensus::NodeId self_id = consensus::kNoNode;
  std::vector<MemberInfo> members;  // Including this member (its name may still be empty).
};

// The member list from the first of `peer_urls` ("http://host:port") that answers, matched
// against `self_peer_urls`. Retries every URL until `deadline`. Errors: NotFound if a member
// answered but none of its members has one of `self_peer_urls` (the member was not added with
// MemberAdd); Unavailable if none answered; InvalidArgument for a bad URL.
Result<JoinInfo> DiscoverCluster(const std::vector<std::string>& peer_urls,
                                 const std::vector<std::string>& self_peer_urls, Deadline deadline);

// Serves Cluster.MemberList (only) on the peer port, for joining members. `list` returns the
// local member list (at once: it runs on a gRPC callback thread); Unavailable while this member is
// not running. A callback service: a synchronous one would add gRPC's synchronous-server threads,
// which take part in polling every gRPC connection of the process (9 us of CPU per put under
// put-500 when the peer transport stopped using gRPC, docs/benchmarks.md).
class PeerClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  using ListFn = std::function<Result<etcdserverpb::MemberListResponse>()>;
  explicit PeerClusterService(ListFn list) : list_(std::move(list)) {}
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* context,
                                       const etcdserverpb::MemberListRequest* request,
                                       etcdserverpb::MemberListResponse* response) override;

 private:
  ListFn list_;
};

}  // namespace ballot::server
