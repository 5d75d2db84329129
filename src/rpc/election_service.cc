#include "rpc/election_service.h"

#include <atomic>

#include "server/errors.h"

namespace ballot::rpc {

using server::Member;

namespace {

template <typename Response, typename Call>
grpc::ServerUnaryReactor* Unary(WorkerPool* pool, grpc::CallbackServerContext* ctx,
                                Response* response, Call call) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const bool queued = pool->Submit([reactor, response, call = std::move(call)]() mutable {
    Result<Response> r = call();
    if (r.ok()) *response = std::move(r).value();
    reactor->Finish(ToGrpcStatus(r.ok() ? Status::Ok() : r.status()));
  });
  if (!queued) reactor->Finish(ToGrpcStatus(server::ErrTooManyRequests()));
  return reactor;
}

// A txn whose compare is "leader's key has create revision `rev`".
etcdserverpb::TxnRequest IfLeader(const v3electionpb::LeaderKey& l) {
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key(l.key());
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(l.rev());
  return txn;
}

// Observe: writes the leader whenever (key, mod revision) changes; ticked by the waiter thread.
class ObserveReactor final : public grpc::ServerWriteReactor<v3electionpb::LeaderResponse> {
 public:
  ObserveReactor(Member* m, QueueWaiter* w, std::string name)
      : m_(m), w_(w), name_(std::move(name)) {
    // Wakes the waiter on any change under the prefix, so a new leader is seen at once.
    stream_ = m_->watch_hub()->OpenStream([w] { w->Wake(); });
    watch::WatchRequest req;
    req.key = name_ + "/";
    req.range_end = PrefixEnd(req.key);
    (void)stream_->Watch(req);
    refs_ = 2;  // The ticker and gRPC (OnDone).
    w_->AddTicker([this](bool stopping) { return Tick(stopping); });
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) Done();
  }
  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    Done();
  }
  void OnDone() override { Unref(); }

 private:
  // Waiter thread. False: stop ticking.
  bool Tick(bool stopping) {
    (void)stream_->Poll(1024);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || stopping) stream_.reset();
    }
    if (!stream_) {
      Unref();
      return false;
    }
    Result<mvccpb::KeyValue> kv = ElectionLeader(m_, name_, true);
    if (!kv.ok()) return true;  // No leader (yet): etcd's Observe waits for one.
    std::lock_guard<std::mutex> lock(mu_);
    if (writing_ || finished_) return true;  // Re-checked at the next tick.
    if (kv.value().key() == last_key_ && kv.value().mod_revision() == last_mod_) return true;
    last_key_ = kv.value().key();
    last_mod_ = kv.value().mod_revision();
    out_.Clear();
    m_->FillHeader(out_.mutable_header());
    *out_.mutable_kv() = kv.value();
    writing_ = true;
    StartWrite(&out_);
    return true;
  }
  void Done() {  // Under mu_.
    if (finished_) return;
    finished_ = true;
    Finish(grpc::Status::OK);
  }
  void Unref() {
    if (refs_.fetch_sub(1) == 1) delete this;
  }

  Member* const m_;
  QueueWaiter* const w_;
  const std::string name_;
  std::unique_ptr<watch::WatchStream> stream_;  // Waiter thread only (after construction).
  std::atomic<int> refs_{0};
  std::mutex mu_;
  bool writing_ = false;   // Guarded by mu_.
  bool finished_ = false;  // Guarded by mu_.
  std::string last_key_;   // Guarded by mu_.
  int64_t last_mod_ = 0;   // Guarded by mu_.
  v3electionpb::LeaderResponse out_;
};

}  // namespace

Result<mvccpb::KeyValue> ElectionLeader(Member* m, const std::string& name, bool serializable) {
  etcdserverpb::RangeRequest req;
  const std::string prefix = name + "/";
  req.set_key(prefix);
  req.set_range_end(PrefixEnd(prefix));
  req.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  req.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  req.set_limit(1);
  req.set_serializable(serializable);
  ASSIGN_OR_RETURN(etcdserverpb::RangeResponse r, m->Range(req));
  if (r.kvs_size() == 0) return Status::NotFound(kErrElectionNoLeader);
  return r.kvs(0);
}

grpc::ServerUnaryReactor* ElectionService::Campaign(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::CampaignRequest* req,
                                                    v3electionpb::CampaignResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::string key = QueueKey(req->name(), req->lease());
  w_->EnterAndWait(req->name(), key, req->value(), req->lease(), ctx, resp->mutable_header(),
                   [this, reactor, resp, req, key](Result<int64_t> rev) {
                     if (rev.ok()) {
                       m_->FillHeader(resp->mutable_header());
                       auto* l = resp->mutable_leader();
                       l->set_name(req->name());
                       l->set_key(key);
                       l->set_rev(rev.value());
                       l->set_lease(req->lease());
                     }
                     reactor->Finish(ToGrpcStatus(rev.status()));
                   });
  return reactor;
}

grpc::ServerUnaryReactor* ElectionService::Proclaim(grpc::CallbackServerContext* ctx,
                                                    const v3electionpb::ProclaimRequest* req,
                                                    v3electionpb::ProclaimResponse* resp) {
  return Unary(p_, ctx, resp, [m = m_, req]() -> Result<v3electionpb::ProclaimResponse> {
    etcdserverpb::TxnRequest txn = IfLeader(req->leader());
    auto* put = txn.add_success()->mutable_request_put();
    put->set_key(req->leader().key());
    put->set_value(req->value());
    put->set_lease(req->leader().lease());
    ASSIGN_OR_RETURN(etcdserverpb::TxnResponse r, m->Txn(txn));
    if (!r.succeeded()) return Status::FailedPrecondition(kErrElectionNotLeader);
    v3electionpb::ProclaimResponse out;
    *out.mutable_header() = r.header();
    return out;
  });
}

grpc::ServerUnaryReactor* ElectionService::Leader(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::LeaderRequest* req,
                                                  v3electionpb::LeaderResponse* resp) {
  return Unary(p_, ctx, resp, [m = m_, req]() -> Result<v3electionpb::LeaderResponse> {
    ASSIGN_OR_RETURN(mvccpb::KeyValue kv, ElectionLeader(m, req->name(), false));
    v3electionpb::LeaderResponse out;
    m->FillHeader(out.mutable_header());
    *out.mutable_kv() = std::move(kv);
    return out;
  });
}

grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* ElectionService::Observe(
    grpc::CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) {
  return new ObserveReactor(m_, w_, req->name());
}

grpc::ServerUnaryReactor* ElectionService::Resign(grpc::CallbackServerContext* ctx,
                                                  const v3electionpb::ResignRequest* req,
                                                  v3electionpb::ResignResponse* resp) {
  return Unary(p_, ctx, resp, [m = m_, req]() -> Result<v3electionpb::ResignResponse> {
    etcdserverpb::TxnRequest txn = IfLeader(req->leader());
    txn.add_success()->mutable_request_delete_range()->set_key(req->leader().key());
    ASSIGN_OR_RETURN(etcdserverpb::TxnResponse r, m->Txn(txn));
    // etcd answers a resign of a key that is no longer ours with success (nothing to give up).
    v3electionpb::ResignResponse out;
    *out.mutable_header() = r.header();
    return out;
  });
}

}  // namespace ballot::rpc
