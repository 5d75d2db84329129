// etcd's v3electionpb.Election service. Campaign waits in the same queue as Lock (QueueWaiter:
// the candidate whose key under name/ has the lowest create revision leads); Observe is a server
// stream re-checked by the waiter thread (on a watch wake-up or every QueueWaiter::kRecheckMs),
// which writes the leader's key-value whenever the leader or its value changes.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include "rpc/lock_service.h"
#include "server/member.h"
#include "server/worker_pool.h"
#include "v3election.grpc.pb.h"

namespace ballot::rpc {

using server::WorkerPool;

inline constexpr char kErrElectionNotLeader[] = "election: not leader";
inline constexpr char kErrElectionNoLeader[] = "election: no leader";

class ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  ElectionService(server::Member* m, WorkerPool* p, QueueWaiter* w) : m_(m), p_(p), w_(w) {}
  grpc::ServerUnaryReactor* Campaign(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::CampaignRequest* req,
                                     v3electionpb::CampaignResponse* resp) override;
  grpc::ServerUnaryReactor* Proclaim(grpc::CallbackServerContext* ctx,
                                     const v3electionpb::ProclaimRequest* req,
                                     v3electionpb::ProclaimResponse* resp) override;
  grpc::ServerUnaryReactor* Leader(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::LeaderRequest* req,
                                   v3electionpb::LeaderResponse* resp) override;
  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) override;
  grpc::ServerUnaryReactor* Resign(grpc::CallbackServerContext* ctx,
                                   const v3electionpb::ResignRequest* req,
                                   v3electionpb::ResignResponse* resp) override;

 private:
  server::Member* m_;
  WorkerPool* p_;
  QueueWaiter* w_;
};

// The current leader's key-value under name/ (lowest create revision); NotFound when none.
Result<mvccpb::KeyValue> ElectionLeader(server::Member* m, const std::string& name,
                                        bool serializable);

}  // namespace ballot::rpc
