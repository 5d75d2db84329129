// etcd's v3lockpb.Lock service, and the queue both Lock and Election's Campaign wait in.
//
// A locker (or candidate) puts name/<lease id hex> with its lease (or reads it back if it exists);
// the key's create revision is its place in the queue and its fencing token. It holds the lock
// once no key under name/ has a lower create revision. No step holds a thread: the txn and the
// lease checks call back when answered, and waits are parked in the QueueWaiter, whose one thread
// keeps each queue's keys from one watch on its prefix and re-checks the queue's waits when that
// watch fires (and every kRecheckMs, to notice cancelled calls). Before answering, the lease is
// checked again: a lease that expired while waiting gets "requested lease not found", never the
// lock (etcd issue 11456). See docs/server.md.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/status.h"
#include "server/member.h"
#include "server/worker_pool.h"
#include "v3lock.grpc.pb.h"

namespace ballot::rpc {

using server::WorkerPool;

// The range end that covers every key starting with `prefix`.
std::string PrefixEnd(const std::string& prefix);
// name + "/" + lease id in lowercase hex (etcd's key format).
std::string QueueKey(const std::string& name, int64_t lease);
grpc::Status ToGrpcStatus(const Status& s);

// Puts `key` with `lease` and `value` unless it exists (then checks `lease` is alive); `done` gets
// the key's create revision, once, on any thread, after `header` is filled from the txn.
void EnterQueueAsync(server::Member* m, const std::string& key, const std::string& value,
                     int64_t lease, etcdserverpb::ResponseHeader* header,
                     std::function<void(Result<int64_t>)> done);

class QueueWaiter {
 public:
  static constexpr int kRecheckMs = 100;
  // A queue whose watch did not fire is polled this often (a missed wake-up costs no more), and a
  // queue nobody waits in is dropped after this long.
  static constexpr int kFullRecheckMs = 1000;
  explicit QueueWaiter(server::Member* m);
  ~QueueWaiter();
  QueueWaiter(const QueueWaiter&) = delete;
  QueueWaiter& operator=(const QueueWaiter&) = delete;

  // EnterQueueAsync at `key` (under name/), then waits for its turn: `done` gets the key's create
  // revision (the fencing token) once the caller holds the lock, or the error (the txn's, the lease
  // error, Cancelled when the call was cancelled, Unavailable when stopping); once, on any thread.
  void EnterAndWait(const std::string& name, const std::string& key, const std::string& value,
                    int64_t lease, grpc::CallbackServerContext* ctx,
                    etcdserverpb::ResponseHeader* header,
                    std::function<void(Result<int64_t>)> done);
  // A callback run on the waiter thread at every re-check until it returns false (Observe);
  // called once more with stopping = true by Stop (it must then release its watch stream).
  void AddTicker(std::function<bool(bool stopping)> tick);
  // Wakes the waiter thread now.
  void Wake();
  // Fails every wait and releases every watch stream (before the member goes). Idempotent.
  void Stop();

 private:
  struct Waiting;
  struct Queue;
  // Waits (without a thread) until no key under `prefix` has a create revision below
  // `create_revision`, then checks that `lease` is alive; calls `done` once, from any thread,
  // with Ok, the lease error, Cancelled (the call was cancelled) or Unavailable (stopping).
  void Wait(std::string prefix, int64_t create_revision, int64_t lease,
            grpc::CallbackServerContext* ctx, std::function<void(Status)> done);
  void Run();
  // Waiter thread: the queue of `prefix`, brought up to date with its watch's events.
  Queue& Refreshed(const std::string& prefix, uint64_t pass);
  // Waiter thread: reads the queue's keys afresh and watches the prefix from the next revision.
  void Resync(Queue& q);

  server::Member* const m_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                         // Guarded by mu_.
  bool woken_ = false;                            // Guarded by mu_.
  std::list<std::unique_ptr<Waiting>> incoming_;  // Guarded by mu_: new waits.
  std::list<std::function<bool(bool)>> tickers_;  // Guarded by mu_.
  // Waiter thread only (then Stop): the waits taken from incoming_, and the queues that waits are
  // (or were lately) in, by prefix.
  std::list<std::unique_ptr<Waiting>> waiting_;
  std::map<std::string, std::unique_ptr<Queue>> queues_;
  std::thread thread_;
};

class LockService final : public v3lockpb::Lock::CallbackService {
 public:
  explicit LockService(server::Member* m) : m_(m), waiter_(m) {}
  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* ctx, const v3lockpb::LockRequest* req,
                                 v3lockpb::LockResponse* resp) override;
  grpc::ServerUnaryReactor* Unlock(grpc::CallbackServerContext* ctx,
                                   const v3lockpb::UnlockRequest* req,
                                   v3lockpb::UnlockResponse* resp) override;
  QueueWaiter* waiter() { return &waiter_; }

 private:
  server::Member* m_;
  QueueWaiter waiter_;
};

}  // namespace ballot::rpc
