#include "rpc/rpc_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "base/logging.h"
#include "base/thread_name.h"
#include "internal.pb.h"
#include "rpc.grpc.pb.h"
#include "rpc/election_service.h"
#include "rpc/lock_service.h"
#include "server/convert.h"
#include "server/errors.h"
#include "server/worker_pool.h"

namespace ballot::rpc {

namespace {

using server::Member;
using server::WorkerPool;

constexpr size_t kWatchPollMax = 16;  // Responses taken from a stream's outbox per write round.

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

// Runs `call` on the pool and finishes the unary reactor with its result.
template <typename Response, typename Call>
grpc::ServerUnaryReactor* RunUnary(WorkerPool* pool, grpc::CallbackServerContext* ctx,
                                   Response* response, Call call) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const bool queued = pool->Submit([reactor, response, call = std::move(call)]() mutable {
    Result<Response> r = call();
    if (r.ok()) *response = std::move(r).value();
    reactor->Finish(ToGrpc(r.ok() ? Status::Ok() : r.status()));
  });
  if (!queued) reactor->Finish(ToGrpc(server::ErrTooManyRequests()));
  return reactor;
}

// Starts an asynchronous member request whose answer finishes the unary reactor; the calling
// gRPC thread does not wait.
template <typename Response, typename Start>
grpc::ServerUnaryReactor* RunAsync(grpc::CallbackServerContext* ctx, Response* response,
                                   Start start) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  start([reactor, response](Result<Response> r) {
    if (r.ok()) *response = std::move(r).value();
    reactor->Finish(ToGrpc(r.ok() ? Status::Ok() : r.status()));
  });
  return reactor;
}

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  // Reads run on `reads`, the calls that may block on `p`.
  KvService(Member* m, WorkerPool* reads, WorkerPool* p) : m_(m), reads_(reads), p_(p) {}
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::RangeRequest* req,
                                  etcdserverpb::RangeResponse* resp) override {
    // The consistency wait holds no thread. A serializable read of one key runs here, on the gRPC
    // thread: it waits for nothing and costs one lookup, less than handing it to a worker (unless
    // a snapshot install holds the store: gRPC's threads must not wait for that). Every other read
    // runs on the read pool, since a range's size is unbounded and a linearizable read's wait ends
    // on the engine or apply thread, which must not do reads.
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    auto answer = [reactor, resp](Result<etcdserverpb::RangeResponse> r) {
      if (r.ok()) *resp = std::move(r).value();
      reactor->Finish(ToGrpc(r.ok() ? Status::Ok() : r.status()));
    };
    auto read = [m = m_, req, answer] { answer(m->RangeLocal(*req)); };
    if (req->serializable() && req->range_end().empty()) {
      m_->RangeReadyAsync(*req, [m = m_, p = reads_, reactor, req, answer, read](Status ready) {
        if (!ready.ok()) return reactor->Finish(ToGrpc(ready));
        std::optional<Result<etcdserverpb::RangeResponse>> r = m->TryRangeLocal(*req);
        if (r) return answer(std::move(*r));
        if (!p->Submit(read)) reactor->Finish(ToGrpc(server::ErrTooManyRequests()));
      });
      return reactor;
    }
    m_->RangeReadyAsync(*req, [p = reads_, reactor, read](Status ready) {
      if (!ready.ok()) return reactor->Finish(ToGrpc(ready));
      if (!p->Submit(read)) reactor->Finish(ToGrpc(server::ErrTooManyRequests()));
    });
    return reactor;
  }
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::PutRequest* req,
                                etcdserverpb::PutResponse* resp) override {
    return RunAsync(ctx, resp, [m = m_, req](auto done) { m->PutAsync(*req, std::move(done)); });
  }
  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::DeleteRangeRequest* req,
                                        etcdserverpb::DeleteRangeResponse* resp) override {
    return RunAsync(ctx, resp,
                    [m = m_, req](auto done) { m->DeleteRangeAsync(*req, std::move(done)); });
  }
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx,
                                const etcdserverpb::TxnRequest* req,
                                etcdserverpb::TxnResponse* resp) override {
    return RunAsync(ctx, resp, [m = m_, req](auto done) { m->TxnAsync(*req, std::move(done)); });
  }
  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const etcdserverpb::CompactionRequest* req,
                                    etcdserverpb::CompactionResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->Compact(*req); });
  }

 private:
  Member* m_;
  WorkerPool* reads_;
  WorkerPool* p_;
};

// ---- Watch ----

class WatchPump;

class WatchReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse> {
 public:
  WatchReactor(Member* member, WatchPump* pump);
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override {}
  void OnDone() override;
  // Writes the next response if none is in flight. Called by the pump and by OnWriteDone.
  void TryWrite();

 private:
  void HandleRequest();
  void FinishLocked(const grpc::Status& s);

  Member* const member_;
  WatchPump* const pump_;
  uint64_t id_ = 0;
  std::unique_ptr<watch::WatchStream> stream_;
  etcdserverpb::WatchRequest request_;
  std::mutex mu_;
  bool writing_ = false;    // Guarded by mu_.
  bool finishing_ = false;  // Guarded by mu_. Finish when the write in flight is done.
  bool finished_ = false;   // Guarded by mu_.
  std::deque<watch::WatchResponse> pending_;  // Guarded by mu_.
  etcdserverpb::WatchResponse out_;           // Guarded by mu_ (the write in flight).
};

// Wakes watch reactors whose outbox became non-empty. The hub's wake callback runs under the
// hub's lock, so it only queues the reactor's id; this thread does the polling and writing.
class WatchPump {
 public:
  WatchPump()
      : thread_([this] {
          SetThreadName("ballot-watchpmp");
          Run();
        }) {}
  ~WatchPump() { Stop(); }

  uint64_t Register(WatchReactor* r) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t id = next_id_++;
    reactors_[id] = r;
    return id;
  }
  void Unregister(uint64_t id) {
    std::lock_guard<std::mutex> lock(mu_);
    reactors_.erase(id);
  }
  void Wake(uint64_t id) {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      ready_.insert(id);
    }
    cv_.notify_one();
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(queue_mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    while (true) {
      std::set<uint64_t> ready;
      {
        std::unique_lock<std::mutex> lock(queue_mu_);
        cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
        if (stopping_) return;
        ready.swap(ready_);
      }
      // mu_ is held while writing so that a reactor cannot be destroyed meanwhile (OnDone
      // unregisters under mu_).
      std::lock_guard<std::mutex> lock(mu_);
      for (uint64_t id : ready) {
        auto it = reactors_.find(id);
        if (it != reactors_.end()) it->second->TryWrite();
      }
    }
  }

  std::mutex mu_;
  std::map<uint64_t, WatchReactor*> reactors_;  // Guarded by mu_.
  uint64_t next_id_ = 1;                        // Guarded by mu_.
  std::mutex queue_mu_;
  std::condition_variable cv_;
  std::set<uint64_t> ready_;  // Guarded by queue_mu_.
  bool stopping_ = false;     // Guarded by queue_mu_.
  std::thread thread_;
};

WatchReactor::WatchReactor(Member* member, WatchPump* pump) : member_(member), pump_(pump) {
  id_ = pump_->Register(this);
  stream_ = member_->watch_hub()->OpenStream([pump = pump_, id = id_] { pump->Wake(id); });
  StartRead(&request_);
}

void WatchReactor::OnReadDone(bool ok) {
  if (!ok) {
    // The client closed its side (or the call ended): end the stream.
    std::lock_guard<std::mutex> lock(mu_);
    FinishLocked(grpc::Status::OK);
    return;
  }
  HandleRequest();
  StartRead(&request_);
}

void WatchReactor::HandleRequest() {
  switch (request_.request_union_case()) {
    case etcdserverpb::WatchRequest::kCreateRequest: {
      const auto& c = request_.create_request();
      watch::WatchRequest w;
      w.key = c.key();
      w.range_end = c.range_end();
      w.start_revision = c.start_revision();
      w.progress_notify = c.progress_notify();
      for (int f : c.filters()) {
        if (f == etcdserverpb::WatchCreateRequest::NOPUT) w.filter_noput = true;
        if (f == etcdserverpb::WatchCreateRequest::NODELETE) w.filter_nodelete = true;
      }
      w.prev_kv = c.prev_kv();
      w.watch_id = c.watch_id();
      w.fragment = c.fragment();
      // The hub queues the created (or refused) response itself.
      (void)stream_->Watch(w);
      break;
    }
    case etcdserverpb::WatchRequest::kCancelRequest:
      (void)stream_->Cancel(request_.cancel_request().watch_id());
      break;
    case etcdserverpb::WatchRequest::kProgressRequest:
      (void)stream_->RequestProgress();
      break;
    default:
      break;
  }
}

void WatchReactor::TryWrite() {
  std::lock_guard<std::mutex> lock(mu_);
  if (writing_ || finished_ || finishing_) return;
  if (pending_.empty()) {
    for (auto& r : stream_->Poll(kWatchPollMax)) pending_.push_back(std::move(r));
  }
  if (pending_.empty()) return;
  watch::WatchResponse r = std::move(pending_.front());
  pending_.pop_front();
  out_.Clear();
  member_->FillHeader(out_.mutable_header(), r.header_revision);
  out_.set_watch_id(r.watch_id);
  out_.set_created(r.created);
  out_.set_canceled(r.canceled);
  out_.set_compact_revision(r.compact_revision);
  out_.set_cancel_reason(r.cancel_reason);
  out_.set_fragment(r.fragment);
  for (const auto& e : r.events) server::ToProto(e, out_.add_events());
  writing_ = true;
  StartWrite(&out_);
}

void WatchReactor::OnWriteDone(bool ok) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (finishing_) {
      FinishLocked(grpc::Status::OK);
      return;
    }
  }
  TryWrite();
}

void WatchReactor::FinishLocked(const grpc::Status& s) {
  if (finished_) return;
  if (writing_) {
    finishing_ = true;
    return;
  }
  finished_ = true;
  Finish(s);
}

void WatchReactor::OnDone() {
  pump_->Unregister(id_);
  stream_.reset();
  delete this;
}

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  WatchService(Member* m, WatchPump* pump) : m_(m), pump_(pump) {}
  grpc::ServerBidiReactor<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx) override {
    return new WatchReactor(m_, pump_);
  }

 private:
  Member* m_;
  WatchPump* pump_;
};

// ---- Lease ----

// One keep-alive at a time: read a request, renew it, write the answer, read the next.
class KeepAliveReactor final
    : public grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                                     etcdserverpb::LeaseKeepAliveResponse> {
 public:
  KeepAliveReactor(Member* m, WorkerPool* p) : m_(m), p_(p) { StartRead(&request_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    // Renewed inline on the leader, forwarded without blocking elsewhere.
    m_->LeaseKeepAliveAsync(request_, [this](Result<etcdserverpb::LeaseKeepAliveResponse> r) {
      if (!r.ok() && !r.status().IsNotFound()) {
        Finish(ToGrpc(r.status()));
        return;
      }
      if (r.ok()) {
        response_ = std::move(r).value();
      } else {
        // etcd answers a keep-alive of an unknown or expired lease with TTL 0.
        response_.Clear();
        m_->FillHeader(response_.mutable_header());
        response_.set_id(request_.id());
        response_.set_ttl(0);
      }
      StartWrite(&response_);
    });
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    StartRead(&request_);
  }
  void OnDone() override { delete this; }

 private:
  Member* m_;
  WorkerPool* p_;
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
};

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  LeaseService(Member* m, WorkerPool* p) : m_(m), p_(p) {}
  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::LeaseGrantRequest* req,
                                       etcdserverpb::LeaseGrantResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->LeaseGrant(*req); });
  }
  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseRevokeRequest* req,
                                        etcdserverpb::LeaseRevokeResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->LeaseRevoke(*req); });
  }
  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* ctx,
                                            const etcdserverpb::LeaseTimeToLiveRequest* req,
                                            etcdserverpb::LeaseTimeToLiveResponse* resp) override {
    return RunAsync(ctx, resp,
                    [m = m_, req](auto done) { m->LeaseTimeToLiveAsync(*req, std::move(done)); });
  }
  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* ctx,
                                        const etcdserverpb::LeaseLeasesRequest* req,
                                        etcdserverpb::LeaseLeasesResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_] { return m->LeaseLeases(); });
  }
  grpc::ServerBidiReactor<etcdserverpb::LeaseKeepAliveRequest,
                          etcdserverpb::LeaseKeepAliveResponse>*
  LeaseKeepAlive(grpc::CallbackServerContext* ctx) override {
    return new KeepAliveReactor(m_, p_);
  }

 private:
  Member* m_;
  WorkerPool* p_;
};

// ---- Cluster, Maintenance ----

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  ClusterService(Member* m, WorkerPool* p) : m_(m), p_(p) {}
  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MemberListRequest* req,
                                       etcdserverpb::MemberListResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_] { return m->MemberList(); });
  }
  grpc::ServerUnaryReactor* MemberAdd(grpc::CallbackServerContext* ctx,
                                      const etcdserverpb::MemberAddRequest* req,
                                      etcdserverpb::MemberAddResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->MemberAdd(*req); });
  }
  grpc::ServerUnaryReactor* MemberRemove(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::MemberRemoveRequest* req,
                                         etcdserverpb::MemberRemoveResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->MemberRemove(*req); });
  }
  grpc::ServerUnaryReactor* MemberPromote(grpc::CallbackServerContext* ctx,
                                          const etcdserverpb::MemberPromoteRequest* req,
                                          etcdserverpb::MemberPromoteResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->MemberPromote(*req); });
  }
  grpc::ServerUnaryReactor* MemberUpdate(grpc::CallbackServerContext* ctx,
                                         const etcdserverpb::MemberUpdateRequest* req,
                                         etcdserverpb::MemberUpdateResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->MemberUpdate(*req); });
  }

 private:
  Member* m_;
  WorkerPool* p_;
};

// Maintenance.Snapshot: the member's store snapshot stream, sent in chunks with the bytes left
// after each (etcd's remaining_bytes); etcdctl writes the chunks to a file. The stream is read
// whole on the worker pool first (as the member's own snapshots are), so the total is known.
class SnapshotReactor final : public grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  static constexpr size_t kChunkBytesMax = 32 * 1024;  // etcd's snapshotSendBufferSize.

  SnapshotReactor(Member* m, WorkerPool* p) : member_(m) {
    const bool queued = p->Submit([this] {
      Result<std::string> data = member_->SnapshotStream();
      if (!data.ok()) {
        Finish(ToGrpc(data.status()));
        return;
      }
      data_ = std::move(data).value();
      WriteNext();
    });
    if (!queued) Finish(ToGrpc(server::ErrTooManyRequests()));
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream cancelled"));
      return;
    }
    if (sent_ >= data_.size()) {
      Finish(grpc::Status::OK);
      return;
    }
    WriteNext();
  }
  void OnDone() override { delete this; }

 private:
  void WriteNext() {
    const size_t n = std::min(kChunkBytesMax, data_.size() - sent_);
    response_.Clear();
    member_->FillHeader(response_.mutable_header());
    response_.set_blob(data_.substr(sent_, n));
    sent_ += n;
    response_.set_remaining_bytes(data_.size() - sent_);
    StartWrite(&response_);
  }

  Member* member_;
  std::string data_;
  size_t sent_ = 0;
  etcdserverpb::SnapshotResponse response_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  MaintenanceService(Member* m, WorkerPool* p) : m_(m), p_(p) {}
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::StatusRequest* req,
                                   etcdserverpb::StatusResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_] { return m->MaintenanceStatus(); });
  }
  grpc::ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      grpc::CallbackServerContext* ctx, const etcdserverpb::SnapshotRequest* req) override {
    return new SnapshotReactor(m_, p_);
  }
  grpc::ServerUnaryReactor* HashKV(grpc::CallbackServerContext* ctx,
                                   const etcdserverpb::HashKVRequest* req,
                                   etcdserverpb::HashKVResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->HashKV(*req); });
  }
  grpc::ServerUnaryReactor* Hash(grpc::CallbackServerContext* ctx,
                                 const etcdserverpb::HashRequest* req,
                                 etcdserverpb::HashResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_] { return m->Hash(); });
  }
  grpc::ServerUnaryReactor* Defragment(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::DefragmentRequest* req,
                                       etcdserverpb::DefragmentResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_] { return m->Defragment(); });
  }
  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* ctx,
                                  const etcdserverpb::AlarmRequest* req,
                                  etcdserverpb::AlarmResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req] { return m->Alarm(*req); });
  }
  grpc::ServerUnaryReactor* MoveLeader(grpc::CallbackServerContext* ctx,
                                       const etcdserverpb::MoveLeaderRequest* req,
                                       etcdserverpb::MoveLeaderResponse* resp) override {
    return RunUnary(p_, ctx, resp, [m = m_, req]() -> Result<etcdserverpb::MoveLeaderResponse> {
      RETURN_IF_ERROR(m->MoveLeader(req->targetid()));
      etcdserverpb::MoveLeaderResponse r;
      m->FillHeader(r.mutable_header());
      return r;
    });
  }

 private:
  Member* m_;
  WorkerPool* p_;
};

}  // namespace

struct RpcServer::Impl {
  Impl(Member* m, const RpcServerOptions& o)
      : pool("ballot-rpc", o.worker_threads, o.worker_queue_max),
        read_pool("ballot-read", ReadThreads(o), o.worker_queue_max),
        kv(m, &read_pool, &pool),
        watch(m, &pump),
        lease(m, &pool),
        cluster(m, &pool),
        maintenance(m, &pool),
        lock(m),
        election(m, &pool, lock.waiter()) {}

  static int ReadThreads(const RpcServerOptions& o) {
    if (o.read_threads > 0) return o.read_threads;
    return std::max(2, static_cast<int>(std::thread::hardware_concurrency()));
  }

  WorkerPool pool;
  WorkerPool read_pool;
  WatchPump pump;
  KvService kv;
  WatchService watch;
  LeaseService lease;
  ClusterService cluster;
  MaintenanceService maintenance;
  LockService lock;  // Owns the queue waiter that Election shares.
  ElectionService election;
  std::unique_ptr<grpc::Server> server;
  bool stopped = false;
};

RpcServer::RpcServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

RpcServer::~RpcServer() { Stop(); }

Result<std::unique_ptr<RpcServer>> RpcServer::Start(Member* member, RpcServerOptions options) {
  if (options.listen_addresses.empty()) return Status::InvalidArgument("no address to listen on");
  grpc::EnableDefaultHealthCheckService(true);
  auto impl = std::make_unique<Impl>(member, options);
  grpc::ServerBuilder builder;
  std::vector<std::unique_ptr<int>> ports;
  for (const std::string& address : options.listen_addresses) {
    ports.push_back(std::make_unique<int>(0));
    builder.AddListeningPort(address, grpc::InsecureServerCredentials(), ports.back().get());
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_receive_bytes));
  builder.SetMaxSendMessageSize(std::numeric_limits<int>::max());
  // gRPC sets SO_REUSEPORT by default: a second member started on the same client port would
  // silently share it and receive half the connections. Refuse it instead ("address in use").
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&impl->kv);
  builder.RegisterService(&impl->watch);
  builder.RegisterService(&impl->lease);
  builder.RegisterService(&impl->cluster);
  builder.RegisterService(&impl->maintenance);
  builder.RegisterService(&impl->lock);
  builder.RegisterService(&impl->election);
  impl->server = builder.BuildAndStart();
  if (!impl->server) {
    return Status::Unavailable("cannot listen for clients on " + options.listen_addresses[0]);
  }
  std::unique_ptr<RpcServer> server(new RpcServer(std::move(impl)));
  for (size_t i = 0; i < ports.size(); ++i) {
    if (*ports[i] == 0) {
      server->Stop();
      return Status::Unavailable("cannot listen for clients on " + options.listen_addresses[i]);
    }
    server->ports_.push_back(*ports[i]);
  }
  auto* health = server->impl_->server->GetHealthCheckService();
  if (health) health->SetServingStatus(true);
  return server;
}

void RpcServer::Stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->server) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  impl_->pool.Stop();
  impl_->read_pool.Stop();
  impl_->pump.Stop();
  if (impl_->server) impl_->server->Wait();
  impl_->lock.waiter()->Stop();  // Its watch streams must go before the member.
}

}  // namespace ballot::rpc
