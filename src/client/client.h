// A small synchronous client for the etcd v3 gRPC API, used by the `ballot` client commands. It
// speaks to Ballot and to etcd alike.
//
// Endpoints are tried in order: a call that fails with UNAVAILABLE moves on to the next endpoint
// (each endpoint at most once per call). Reads are retried on any UNAVAILABLE; writes only when the
// failure came from the connection, not from the server (a server's "etcdserver: request timed
// out" may mean the write was applied, so it is returned instead). Every unary call has the command
// deadline; the calls that wait by design (Lock, Campaign) and the streams have none.
//
// Errors are ballot::Status with the server's gRPC code and message passed through unchanged
// ("etcdserver: requested lease not found"), so the commands print what etcdctl would.
//
// Thread-safety: a Client may be used from several threads (gRPC stubs are thread-safe; the
// endpoint cursor is guarded by a mutex).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "rpc.grpc.pb.h"
#include "v3election.grpc.pb.h"
#include "v3lock.grpc.pb.h"

namespace ballot::client {

struct Options {
  std::vector<std::string> endpoints = {"127.0.0.1:2379"};
  std::chrono::milliseconds dial_timeout{2000};
  std::chrono::milliseconds command_timeout{5000};
};

// "127.0.0.1:2379" or "http://127.0.0.1:2379" -> "127.0.0.1:2379". https and other schemes are
// refused (no TLS yet), as is an endpoint without a port.
Result<std::string> EndpointTarget(std::string_view endpoint);

// The gRPC status as a ballot::Status: same code, same message.
Status FromGrpc(const grpc::Status& status);

// A server-streaming or bidirectional call in progress. Cancel() may be called from any thread
// (for example a signal handler thread) and makes a blocked Read return false.
template <typename Stream>
class Call {
 public:
  Call(std::unique_ptr<grpc::ClientContext> context, std::unique_ptr<Stream> stream)
      : context_(std::move(context)), stream_(std::move(stream)) {}
  Stream& stream() { return *stream_; }
  void Cancel() { context_->TryCancel(); }
  // After Read returned false: why the stream ended.
  Status Finish() { return FromGrpc(stream_->Finish()); }

 private:
  std::unique_ptr<grpc::ClientContext> context_;  // must outlive stream_
  std::unique_ptr<Stream> stream_;
};

using WatchCall =
    Call<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>;
using KeepAliveCall = Call<grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                                    etcdserverpb::LeaseKeepAliveResponse>>;
using ObserveCall = Call<grpc::ClientReader<v3electionpb::LeaderResponse>>;

class Client {
 public:
  // Checks the endpoints; connects lazily, on the first call.
  static Result<std::unique_ptr<Client>> Create(Options options);

  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Options& options() const { return options_; }

  // KV
  Result<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  Result<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request);
  Result<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& request);
  Result<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);
  Result<etcdserverpb::CompactionResponse> Compact(const etcdserverpb::CompactionRequest& request);

  // Lease
  Result<etcdserverpb::LeaseGrantResponse> LeaseGrant(int64_t ttl_s, int64_t id = 0);
  Result<etcdserverpb::LeaseRevokeResponse> LeaseRevoke(int64_t id);
  Result<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(int64_t id, bool keys);
  Result<etcdserverpb::LeaseLeasesResponse> LeaseLeases();
  // One keep-alive round trip on a fresh stream (etcdctl's keep-alive --once).
  Result<etcdserverpb::LeaseKeepAliveResponse> LeaseKeepAliveOnce(int64_t id);
  Result<std::unique_ptr<KeepAliveCall>> LeaseKeepAliveStream();

  // Cluster
  Result<etcdserverpb::MemberListResponse> MemberList();
  Result<etcdserverpb::MemberAddResponse> MemberAdd(const std::vector<std::string>& peer_urls,
                                                    bool learner);
  Result<etcdserverpb::MemberRemoveResponse> MemberRemove(uint64_t id);
  Result<etcdserverpb::MemberPromoteResponse> MemberPromote(uint64_t id);

  // Maintenance: Status of one endpoint (no failover: the caller asks each member in turn).
  Result<etcdserverpb::StatusResponse> StatusOf(const std::string& endpoint);

  // Lock and Election: Lock and Campaign wait (without deadline) until granted.
  Result<v3lockpb::LockResponse> Lock(const std::string& name, int64_t lease_id);
  Result<v3lockpb::UnlockResponse> Unlock(const std::string& key);
  Result<v3electionpb::CampaignResponse> Campaign(const std::string& name, int64_t lease_id,
                                                  const std::string& value);
  Result<v3electionpb::ResignResponse> Resign(const v3electionpb::LeaderKey& leader);
  Result<std::unique_ptr<ObserveCall>> Observe(const std::string& name);

  // Watch: opens a stream and sends the create request; the caller reads the responses.
  Result<std::unique_ptr<WatchCall>> Watch(const etcdserverpb::WatchCreateRequest& create);

  // Cancels the calls that wait without deadline (Lock, Campaign) from another thread.
  void CancelWaits();

 private:
  struct Connection {
    std::string target;
    std::shared_ptr<grpc::Channel> channel;   // shared with the stubs: gRPC's ownership model
    std::atomic<bool> connected_once{false};  // set by whichever thread dials first
    std::unique_ptr<etcdserverpb::KV::Stub> kv;
    std::unique_ptr<etcdserverpb::Lease::Stub> lease;
    std::unique_ptr<etcdserverpb::Cluster::Stub> cluster;
    std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
    std::unique_ptr<etcdserverpb::Watch::Stub> watch;
    std::unique_ptr<v3lockpb::Lock::Stub> lock;
    std::unique_ptr<v3electionpb::Election::Stub> election;
  };
  enum class Retry { kAnyUnavailable, kConnectionOnly };
  enum class Deadline { kCommand, kNone };

  explicit Client(Options options, std::vector<std::unique_ptr<Connection>> connections);

  // Dials `connection` if it never connected, within the dial timeout.
  Status EnsureConnected(Connection& connection);
  // The endpoint to try first, and moving past one that failed.
  size_t Current();
  void MoveOn(size_t failed);

  // Runs `invoke(connection, context, response)` against the endpoints with failover.
  template <typename Response, typename Invoke>
  Result<Response> Unary(Retry retry, Deadline deadline, Invoke invoke);

  Options options_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::mutex mu_;
  size_t current_ = 0;                                  // guarded by mu_
  std::vector<grpc::ClientContext*> waiting_contexts_;  // guarded by mu_
  bool waits_cancelled_ = false;                        // guarded by mu_
};

// Keeps a lease alive from a background thread until Stop() or until the lease is lost (the
// server says it expired, or no renewal succeeded for a whole TTL); then calls on_lost once.
class KeepAlive {
 public:
  KeepAlive(Client& client, int64_t lease_id, int64_t ttl_s, std::function<void()> on_lost);
  ~KeepAlive();  // stops
  KeepAlive(const KeepAlive&) = delete;
  KeepAlive& operator=(const KeepAlive&) = delete;
  void Stop();

 private:
  void Loop();

  Client& client_;
  const int64_t lease_id_;
  const int64_t ttl_s_;
  std::function<void()> on_lost_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace ballot::client
