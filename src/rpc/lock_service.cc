#include "rpc/lock_service.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>

#include "base/thread_name.h"
#include "lease/lessor.h"
#include "server/errors.h"

namespace ballot::rpc {

using server::Member;
using Clock = std::chrono::steady_clock;

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // Every key.
}

std::string QueueKey(const std::string& name, int64_t lease) {
  char hex[32];
  std::snprintf(hex, sizeof(hex), "%llx", static_cast<unsigned long long>(lease));
  return name + "/" + hex;
}

grpc::Status ToGrpcStatus(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), s.message());
}

namespace {

Status LeaseNotFound() { return Status::NotFound(lease::kLeaseNotFoundMessage); }

// Ok when `lease` is alive (granted and not expired); `done` runs once, on any thread. The leader
// decides expiry: a follower asks it, without holding a thread.
void CheckLeaseAsync(Member* m, int64_t lease, std::function<void(Status)> done) {
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(lease);
  m->LeaseTimeToLiveAsync(req, [done = std::move(done)](
                                   Result<etcdserverpb::LeaseTimeToLiveResponse> r) {
    if (!r.ok()) return done(r.status().IsNotFound() ? LeaseNotFound() : r.status());
    done(r->ttl() < 0 ? LeaseNotFound() : Status::Ok());  // 0: under a second left, still alive.
  });
}

// The oldest key of a queue as this member's store has it: the view's revision and the lowest
// create revision under the prefix (0: none). One read serves every wait on that queue.
//
// IsFirst: whether the key with `create_revision` is first under the prefix (no key there has a
// lower create revision; not a count with max_create_revision: etcd's count ignores that filter).
// Exact, not merely possibly stale, once the view read has `create_revision` itself: every key
// with a lower create revision was created before it and so is in the view too, and a key's
// deletion is final (a key put again gets a new, higher create revision). A lagging store can
// only still show a holder that is gone, which makes the caller wait, never a holder missing. An
// older view answers "not yet": the watch on the prefix fires when the store applies the key. So
// no ReadIndex is needed here.
struct QueueHead {
  bool ok = false;
  int64_t revision = 0;
  int64_t first_create = 0;
  bool IsFirst(int64_t create_revision) const {
    return ok && revision >= create_revision &&
           (first_create == 0 || first_create >= create_revision);
  }
};

QueueHead ReadQueueHead(Member* m, const std::string& prefix) {
  etcdserverpb::RangeRequest req;
  req.set_key(prefix);
  req.set_range_end(PrefixEnd(prefix));
  req.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  req.set_sort_order(etcdserverpb::RangeRequest::ASCEND);
  req.set_limit(1);
  req.set_keys_only(true);
  req.set_serializable(true);
  Result<etcdserverpb::RangeResponse> r = m->Range(req);
  if (!r.ok()) return QueueHead{};
  return QueueHead{true, r->header().revision(),
                   r->kvs_size() == 0 ? 0 : r->kvs(0).create_revision()};
}

}  // namespace

void EnterQueueAsync(Member* m, const std::string& key, const std::string& value, int64_t lease,
                     etcdserverpb::ResponseHeader* header,
                     std::function<void(Result<int64_t>)> done) {
  // etcd's server checks nothing before the txn: the put fails on an unknown lease when it is
  // applied. The read-back branch (the key exists: the same lease is queued already) would not,
  // so only that branch checks the lease, after the txn: one round trip fewer per lock.
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_target(etcdserverpb::Compare::CREATE);
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_create_revision(0);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(value);
  put->set_lease(lease);
  txn.add_failure()->mutable_request_range()->set_key(key);
  m->TxnAsync(txn, [m, lease, header, done = std::move(done)](Result<etcdserverpb::TxnResponse> r) {
    if (!r.ok()) return done(r.status());
    if (header) *header = r->header();
    if (r->succeeded()) return done(r->header().revision());
    const auto& range = r->responses(0).response_range();
    if (range.kvs_size() == 0) return done(Status::Aborted("lock key vanished; retry"));
    CheckLeaseAsync(m, lease, [done, rev = range.kvs(0).create_revision()](Status s) {
      if (s.ok()) return done(rev);
      done(s);
    });
  });
}

struct QueueWaiter::Waiting {
  // Set by the watch on the prefix: something changed there since the last check.
  std::atomic<bool> changed{true};
  Clock::time_point checked;  // The last check (waiter thread only).
  std::string prefix;
  int64_t create_revision = 0;
  int64_t lease = 0;
  grpc::CallbackServerContext* ctx = nullptr;
  std::function<void(Status)> done;
  std::unique_ptr<watch::WatchStream> stream;  // Wakes the waiter on any change under prefix.
};

QueueWaiter::QueueWaiter(Member* m)
    : m_(m), thread_([this] {
        SetThreadName("ballot-lockwait");
        Run();
      }) {}

QueueWaiter::~QueueWaiter() { Stop(); }

void QueueWaiter::Stop() {
  std::list<std::shared_ptr<Waiting>> waits;
  std::list<std::function<bool(bool)>> tickers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    waits.swap(waits_);
    tickers.swap(tickers_);
  }
  for (auto& w : waits) w->done(server::ErrStopped());
  for (auto& t : tickers) (void)t(true);
}

void QueueWaiter::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_one();
}

void QueueWaiter::Wait(std::string prefix, int64_t create_revision, int64_t lease,
                       grpc::CallbackServerContext* ctx, std::function<void(Status)> done) {
  auto w = std::make_shared<Waiting>();
  w->prefix = std::move(prefix);
  w->create_revision = create_revision;
  w->lease = lease;
  w->ctx = ctx;
  w->done = std::move(done);
  // The hub calls `wake` under its own lock: it only flags the wait and the waiter thread. (The
  // stream lives in the wait, so the raw pointer cannot outlive it.)
  w->stream = m_->watch_hub()->OpenStream([this, raw = w.get()] {
    raw->changed.store(true);
    Wake();
  });
  watch::WatchRequest req;
  req.key = w->prefix;
  req.range_end = PrefixEnd(w->prefix);
  (void)w->stream->Watch(req);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      waits_.push_back(w);
      woken_ = true;
      cv_.notify_one();
      return;
    }
  }
  w->done(server::ErrStopped());
}

void QueueWaiter::AddTicker(std::function<bool(bool)> tick) {
  std::lock_guard<std::mutex> lock(mu_);
  tickers_.push_back(std::move(tick));
  woken_ = true;
  cv_.notify_one();
}

void QueueWaiter::Run() {
  while (true) {
    std::list<std::shared_ptr<Waiting>> waits;
    std::list<std::function<bool(bool)>> tickers;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(kRecheckMs),
                   [&] { return stopping_ || woken_; });
      if (stopping_) return;
      woken_ = false;
      waits = waits_;
      tickers.swap(tickers_);
    }
    // Outside mu_: the hub's wake callback takes mu_ under the hub's lock. Only the waits whose
    // prefix changed are read again (every wait at least every kFullRecheckMs, in case a wake-up
    // was missed); cancellation is noticed on every pass.
    const Clock::time_point now = Clock::now();
    // Waits on one queue share one read per pass (four lockers per lock read it once, not four
    // times: most of this thread's work under lock-cycles).
    std::map<std::string, QueueHead> heads;
    for (auto& w : waits) {
      bool ready = false;
      Status fail;
      if (w->ctx->IsCancelled()) {
        fail = Status(StatusCode::kCancelled, "lock wait cancelled");
      } else if (w->changed.exchange(false) ||
                 now - w->checked >= std::chrono::milliseconds(kFullRecheckMs)) {
        (void)w->stream->Poll(1024);  // Drained: only the wake-up matters.
        w->checked = now;
        auto head = heads.find(w->prefix);
        if (head == heads.end()) {
          head = heads.emplace(w->prefix, ReadQueueHead(m_, w->prefix)).first;
        }
        ready = head->second.IsFirst(w->create_revision);
      }
      if (!ready && fail.ok()) continue;
      {
        std::lock_guard<std::mutex> lock(mu_);
        waits_.remove(w);
      }
      if (!fail.ok()) {
        w->done(fail);
      } else {
        // etcd issue 11456: the lease may have expired (deleting our key) while we waited.
        CheckLeaseAsync(m_, w->lease, std::move(w->done));
      }
    }
    std::list<std::function<bool(bool)>> keep;
    for (auto& t : tickers) {
      if (t(false)) keep.push_back(std::move(t));
    }
    std::lock_guard<std::mutex> lock(mu_);
    tickers_.splice(tickers_.end(), keep);
  }
}

void QueueWaiter::EnterAndWait(const std::string& name, const std::string& key,
                               const std::string& value, int64_t lease,
                               grpc::CallbackServerContext* ctx,
                               etcdserverpb::ResponseHeader* header,
                               std::function<void(Result<int64_t>)> done) {
  EnterQueueAsync(m_, key, value, lease, header,
                  [this, prefix = name + "/", lease, ctx, done](Result<int64_t> rev) {
                    if (!rev.ok()) return done(rev.status());
                    Wait(prefix, rev.value(), lease, ctx, [done, rev = rev.value()](Status s) {
                      if (s.ok()) return done(rev);
                      done(s);
                    });
                  });
}

grpc::ServerUnaryReactor* LockService::Lock(grpc::CallbackServerContext* ctx,
                                            const v3lockpb::LockRequest* req,
                                            v3lockpb::LockResponse* resp) {
  // Nothing here holds a thread: the txn, the wait and the lease check each call back.
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::string key = QueueKey(req->name(), req->lease());
  waiter_.EnterAndWait(req->name(), key, "", req->lease(), ctx, resp->mutable_header(),
                       [this, reactor, resp, key](Result<int64_t> rev) {
                         if (rev.ok()) {
                           m_->FillHeader(resp->mutable_header());
                           resp->set_key(key);
                         }
                         reactor->Finish(ToGrpcStatus(rev.status()));
                       });
  return reactor;
}

grpc::ServerUnaryReactor* LockService::Unlock(grpc::CallbackServerContext* ctx,
                                              const v3lockpb::UnlockRequest* req,
                                              v3lockpb::UnlockResponse* resp) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  etcdserverpb::DeleteRangeRequest del;
  del.set_key(req->key());
  m_->DeleteRangeAsync(del, [reactor, resp](Result<etcdserverpb::DeleteRangeResponse> r) {
    if (r.ok()) *resp->mutable_header() = r->header();
    reactor->Finish(ToGrpcStatus(r.status()));
  });
  return reactor;
}

}  // namespace ballot::rpc
