#include "rpc/lock_service.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <utility>
#include <vector>

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
  std::string prefix;
  int64_t create_revision = 0;
  int64_t lease = 0;
  grpc::CallbackServerContext* ctx = nullptr;
  std::function<void(Status)> done;
};

// One queue (a lock's or an election's prefix) as this member's store has it: the live keys under
// the prefix and their create revisions at `revision`, read once and then kept by the events of
// one watch on the prefix, which every wait in the queue shares.
//
// IsFirst: whether the key with `create_revision` is first (no live key has a lower create
// revision). Exact, not merely possibly stale, once `revision` >= `create_revision`: every key
// with a lower create revision was created at an earlier revision, so it is in the read or came
// as an event before the ones of `revision` (a watch delivers each revision once, in order, with
// no gap), and a key's deletion is final (a key put again gets a new, higher create revision). A
// lagging store can only still show a holder that is gone, which makes the caller wait, never a
// holder missing. An older view answers "not yet": the waiting key's own put is still to come as
// an event. So no ReadIndex is needed here.
struct QueueWaiter::Queue {
  std::string prefix;
  std::atomic<bool> changed{false};  // Set by the watch: events are waiting in the stream.
  std::unique_ptr<watch::WatchStream> stream;
  bool known = false;  // The keys below are the store's at `revision`; false: to be read again.
  int64_t revision = 0;
  std::map<std::string, int64_t> create_of;             // Live key -> its create revision.
  std::set<std::pair<int64_t, std::string>> by_create;  // The same, oldest first.
  uint64_t refreshed_pass = 0;
  Clock::time_point polled;
  Clock::time_point used;  // The last pass a wait was in this queue.

  bool IsFirst(int64_t create_revision) const {
    return known && revision >= create_revision &&
           (by_create.empty() || by_create.begin()->first >= create_revision);
  }
  void Put(const std::string& key, int64_t create_revision) {
    auto [it, added] = create_of.try_emplace(key, create_revision);
    if (!added) {
      if (it->second == create_revision) return;
      by_create.erase({it->second, key});
      it->second = create_revision;
    }
    by_create.emplace(create_revision, key);
  }
  void Delete(const std::string& key) {
    auto it = create_of.find(key);
    if (it == create_of.end()) return;
    by_create.erase({it->second, key});
    create_of.erase(it);
  }
};

QueueWaiter::QueueWaiter(Member* m)
    : m_(m), thread_([this] {
        SetThreadName("ballot-lockwait");
        Run();
      }) {}

QueueWaiter::~QueueWaiter() { Stop(); }

void QueueWaiter::Stop() {
  std::list<std::unique_ptr<Waiting>> waits;
  std::list<std::function<bool(bool)>> tickers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  waits.swap(waiting_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    waits.splice(waits.end(), incoming_);
    tickers.swap(tickers_);
  }
  for (auto& w : waits) w->done(server::ErrStopped());
  for (auto& t : tickers) (void)t(true);
  queues_.clear();  // The thread is gone: their watch streams go before the hub.
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
  auto w = std::make_unique<Waiting>();
  w->prefix = std::move(prefix);
  w->create_revision = create_revision;
  w->lease = lease;
  w->ctx = ctx;
  w->done = std::move(done);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      incoming_.push_back(std::move(w));
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
  uint64_t pass = 0;
  while (true) {
    std::list<std::function<bool(bool)>> tickers;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(kRecheckMs),
                   [&] { return stopping_ || woken_; });
      if (stopping_) return;
      woken_ = false;
      waiting_.splice(waiting_.end(), incoming_);
      tickers.swap(tickers_);
    }
    // Outside mu_: the hub's wake callback takes mu_ under the hub's lock. Each queue is brought
    // up to date once per pass, whatever number of waits it holds; cancellation is noticed on
    // every pass.
    ++pass;
    const Clock::time_point now = Clock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      Waiting* w = it->get();
      bool ready = false;
      Status fail;
      if (w->ctx->IsCancelled()) {
        fail = Status(StatusCode::kCancelled, "lock wait cancelled");
      } else {
        Queue& q = Refreshed(w->prefix, pass);
        q.used = now;
        ready = q.IsFirst(w->create_revision);
      }
      if (!ready && fail.ok()) {
        ++it;
        continue;
      }
      if (!fail.ok()) {
        w->done(fail);
      } else {
        // etcd issue 11456: the lease may have expired (deleting our key) while we waited.
        CheckLeaseAsync(m_, w->lease, std::move(w->done));
      }
      it = waiting_.erase(it);
    }
    std::erase_if(queues_, [&](const auto& entry) {
      return now - entry.second->used >= std::chrono::milliseconds(kFullRecheckMs);
    });
    std::list<std::function<bool(bool)>> keep;
    for (auto& t : tickers) {
      if (t(false)) keep.push_back(std::move(t));
    }
    std::lock_guard<std::mutex> lock(mu_);
    tickers_.splice(tickers_.end(), keep);
  }
}

QueueWaiter::Queue& QueueWaiter::Refreshed(const std::string& prefix, uint64_t pass) {
  auto it = queues_.find(prefix);
  if (it == queues_.end()) {
    auto q = std::make_unique<Queue>();
    q->prefix = prefix;
    it = queues_.emplace(prefix, std::move(q)).first;
  }
  Queue& q = *it->second;
  if (q.refreshed_pass == pass) return q;
  q.refreshed_pass = pass;
  const Clock::time_point now = Clock::now();
  if (q.known &&
      (q.changed.exchange(false) || now - q.polled >= std::chrono::milliseconds(kFullRecheckMs))) {
    q.polled = now;
    for (std::vector<watch::WatchResponse> rs = q.stream->Poll(1024); !rs.empty() && q.known;
         rs = q.stream->Poll(1024)) {
      for (const watch::WatchResponse& r : rs) {
        if (r.canceled) {
          q.known = false;  // Compacted past (a snapshot was installed): read it again.
          break;
        }
        for (const mvcc::Event& e : r.events) {
          if (e.type == mvcc::EventType::kPut) {
            q.Put(e.kv.key, e.kv.create_revision);
          } else {
            q.Delete(e.kv.key);
          }
          q.revision = std::max(q.revision, e.kv.mod_revision);
        }
      }
    }
  }
  if (!q.known) Resync(q);
  return q;
}

void QueueWaiter::Resync(Queue& q) {
  // A fresh stream: the old one's watcher and undelivered events go with it.
  q.stream = m_->watch_hub()->OpenStream([this, raw = &q] {
    raw->changed.store(true);
    Wake();
  });
  q.create_of.clear();
  q.by_create.clear();
  q.changed.store(false);
  q.polled = Clock::now();
  etcdserverpb::RangeRequest req;
  req.set_key(q.prefix);
  req.set_range_end(PrefixEnd(q.prefix));
  req.set_keys_only(true);
  req.set_serializable(true);
  Result<etcdserverpb::RangeResponse> r = m_->Range(req);
  if (!r.ok()) return;  // Not known: the next pass tries again.
  for (const auto& kv : r->kvs()) q.Put(kv.key(), kv.create_revision());
  q.revision = r->header().revision();
  watch::WatchRequest watch;
  watch.key = q.prefix;
  watch.range_end = PrefixEnd(q.prefix);
  watch.start_revision = q.revision + 1;
  q.known = q.stream->Watch(watch).ok();
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
