// Forwarder: a follower's client for the leader's ballot.internal.Forward service (see
// proto/internal.proto and docs/server.md, "Forwarding").
//
// Thread-safety: every method may be called from any thread. Channels are cached per address.
#pragma once

#include <grpcpp/channel.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
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
  Forwarder() = default;
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;
  ~Forwarder() { Stop(); }

  // Cancels the asynchronous calls in flight and returns once gRPC has let go of each (their
  // `done` callbacks have run); later asynchronous calls fail at once with UNAVAILABLE. Until
  // then the forwarder keeps its channels, so that no grpc::Channel is released on a gRPC thread:
  // gRPC 1.51 would join that thread from itself and use a completion queue it freed.
  void Stop();

  // Propose without blocking: `done` runs once, on a gRPC thread, and must not block. Tries `urls`
  // in order while they are unreachable. Proposals are sent in batches (ProposeBatch): at most
  // kBatchesInFlightMax calls at a time, and what arrives meanwhile goes in the next one, so an
  // idle follower adds no delay and a busy one makes one call per many proposals.
  void ProposeAsync(const std::vector<std::string>& urls, const internal::InternalRequest& request,
                    Deadline deadline, std::function<void(Result<internal::ForwardResponse>)> done);
  void LeaseKeepAliveAsync(const std::vector<std::string>& urls,
                           const etcdserverpb::LeaseKeepAliveRequest& request, Deadline deadline,
                           std::function<void(Result<internal::ForwardResponse>)> done);
  void LeaseTimeToLiveAsync(const std::vector<std::string>& urls,
                            const etcdserverpb::LeaseTimeToLiveRequest& request, Deadline deadline,
                            std::function<void(Result<internal::ForwardResponse>)> done);
  // Proposals forwarded asynchronously, and the batch calls that carried them.
  struct BatchStats {
    uint64_t proposals = 0;
    uint64_t batches = 0;
  };
  BatchStats batch_stats() const {
    std::lock_guard<std::mutex> lock(batch_mu_);
    return stats_;
  }
  // The cached stub for `target` ("host:port").
  internal::Forward::Stub* StubFor(const std::string& target);

  // For the asynchronous calls (forwarder.cc): a call is registered before it starts (false once
  // stopped: do not start it), leaves the set Stop cancels when its callback begins, and is
  // released after its ClientContext is destroyed.
  bool BeginCall(grpc::ClientContext* ctx);
  void CallAnswered(grpc::ClientContext* ctx);
  void CallReleased();
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

 private:
  static constexpr int kBatchesInFlightMax = 2;
  static constexpr size_t kBatchBytesMax = 512 * 1024;  // Below the leader's receive limit.
  static constexpr size_t kQueuedMax = 100000;          // More are refused: too many requests.
  struct Queued {
    internal::InternalRequest request;
    size_t bytes = 0;
    Deadline deadline;
    std::function<void(Result<internal::ForwardResponse>)> done;
  };
  void SendBatch(const std::vector<std::string>& urls, std::vector<Queued> batch);
  // A batch call returned: sends what queued meanwhile, or frees its slot.
  void BatchDone();

  mutable std::mutex batch_mu_;
  BatchStats stats_;                      // Guarded by batch_mu_.
  int batches_in_flight_ = 0;             // Guarded by batch_mu_.
  std::vector<Queued> queued_;            // Guarded by batch_mu_.
  std::vector<std::string> queued_urls_;  // Guarded by batch_mu_: the latest leader's URLs.

  etcdserverpb::Cluster::Stub* ClusterStubFor(const std::string& target);
  template <typename Stub, typename Response, typename Call>
  Result<Response> CallLeader(const std::vector<std::string>& urls, Deadline deadline,
                              Stub* (Forwarder::*stub_for)(const std::string&),
                              bool leader_errors_are_answers, Call call);

  std::mutex calls_mu_;
  std::condition_variable calls_cv_;
  bool stopped_ = false;                       // Guarded by calls_mu_.
  size_t calls_ = 0;                           // Guarded by calls_mu_: not yet released.
  std::set<grpc::ClientContext*> unanswered_;  // Guarded by calls_mu_.

  std::mutex mu_;
  std::map<std::string, std::unique_ptr<internal::Forward::Stub>> stubs_;  // Guarded by mu_.
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;         // Guarded by mu_.
  std::map<std::string, std::unique_ptr<etcdserverpb::Cluster::Stub>> cluster_stubs_;  // mu_.
};

}  // namespace ballot::server
