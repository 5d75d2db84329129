#include "bench/runner.h"

#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/keys.h"
#include "rpc.grpc.pb.h"
#include "v3lock.grpc.pb.h"

namespace ballot::bench {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// How often a worker looks up from its queue to see whether the run is being stopped.
constexpr auto kTick = 20ms;
// After the end of a timed run, operations still in flight get this long before being cancelled.
constexpr auto kDrainGrace = 2s;
// Watch: how long to wait for the last puts' events after the last put completed.
constexpr auto kWatchDrainMax = 3s;
constexpr auto kWatchersReadyTimeout = 20s;
constexpr size_t kErrorSamplesMax = 5;
constexpr int kSetupThreads = 32;

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::chrono::system_clock::time_point ToSystem(Clock::time_point t) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(t - Clock::now());
}

std::string Describe(const grpc::Status& status) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  const int code = status.error_code();
  const std::string name = code >= 0 && code < 17 ? kNames[code] : std::to_string(code);
  return name + ": " + status.error_message();
}

// State shared by all workers. Written by the main thread before `started`, read after.
struct Shared {
  explicit Shared(const Options& o) : options(o) {}

  const Options& options;
  Clock::time_point start;
  Clock::time_point deadline = Clock::time_point::max();
  std::atomic<bool> started{false};
  std::atomic<bool> cancel_all{false};
  std::atomic<uint64_t> reserved{0};
  std::atomic<int> live_requesters{0};
  // watch
  std::atomic<int> watchers_created{0};
  std::atomic<int> watchers_failed{0};
  std::atomic<uint64_t> puts_ok{0};
  std::atomic<uint64_t> events{0};

  // Reserves the next operation; false when the run is over. *send_at is when to send it.
  bool Reserve(Clock::time_point* send_at) {
    const Clock::time_point now = Clock::now();
    if (cancel_all.load() || now >= deadline) return false;
    const uint64_t n = reserved.fetch_add(1);
    if (options.total > 0 && n >= options.total) return false;
    *send_at = now;
    if (options.rate > 0) {
      *send_at = start + std::chrono::duration_cast<Clock::duration>(
                             std::chrono::duration<double>(static_cast<double>(n) / options.rate));
      if (*send_at >= deadline) return false;
    }
    return true;
  }
};

class Client;

// One completion queue, its thread and its clients. Everything here is touched only by the
// worker's thread, except `clients` being filled before the thread starts.
struct Worker {
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<Client>> clients;
  int live = 0;
  Histogram latency;
  uint64_t ok = 0;
  uint64_t errors = 0;
  uint64_t conflicts = 0;
  std::map<std::string, uint64_t> error_samples;
  Clock::time_point last_completion{};

  void RecordOk(uint64_t latency_ns) {
    ++ok;
    latency.Record(latency_ns);
    last_completion = Clock::now();
  }
  void RecordError(const std::string& message) {
    ++errors;
    auto it = error_samples.find(message);
    if (it != error_samples.end()) {
      ++it->second;
    } else if (error_samples.size() < kErrorSamplesMax) {
      error_samples.emplace(message, 1);
    }
  }
  void Loop(Shared& shared);
};

// A client has at most one completion pending on the queue at a time (an RPC step or its alarm),
// so `this` is the tag. Lifetime: owned by its Worker, outlives every pending tag because the
// worker drains its queue before the clients are destroyed.
class Client {
 public:
  Client(Shared& shared, Worker& worker, bool requester)
      : shared_(shared), worker_(worker), requester_(requester) {
    ++worker_.live;
    if (requester_) ++shared_.live_requesters;
  }
  virtual ~Client() = default;

  // Called once on the worker's thread.
  virtual void Start() { Next(); }

  void Proceed(bool ok) {
    if (waiting_) {
      waiting_ = false;
      if (!ok || shared_.cancel_all.load()) return RunOver();
      // A wait for the start has no slot reserved yet; a wait for the rate has one.
      if (!slot_reserved_) return Next();
      slot_reserved_ = false;
      return Issue();
    }
    OnEvent(ok);
  }

  void Cancel() {
    if (done_) return;
    if (waiting_) {
      alarm_.Cancel();
    } else if (context_) {
      context_->TryCancel();
    }
  }

 protected:
  // Sends the next operation when the rate allows, or ends the client when the run is over.
  void Next() {
    if (!shared_.started.load()) return WaitUntil(Clock::now() + 5ms);
    Clock::time_point send_at;
    if (!shared_.Reserve(&send_at)) return RunOver();
    if (send_at > Clock::now() + 50us) {
      slot_reserved_ = true;
      return WaitUntil(send_at);
    }
    Issue();
  }

  void WaitUntil(Clock::time_point t) {
    waiting_ = true;
    alarm_.Set(&worker_.cq, ToSystem(t), this);
  }

  // The run is over for this client: unary clients are done; streams close first.
  virtual void RunOver() { MarkDone(); }

  void MarkDone() {
    BALLOT_ASSERT(!done_, "client finished twice");
    done_ = true;
    --worker_.live;
    if (requester_) --shared_.live_requesters;
  }

  // True if the RPC succeeded; otherwise records an error, unless the run is being stopped.
  bool CheckStatus(const grpc::Status& status) {
    if (status.ok()) return true;
    // `deadline` is written before `started` is set, so it is only read after seeing `started`.
    const bool stopping =
        shared_.cancel_all.load() || (shared_.started.load() && Clock::now() >= shared_.deadline);
    if (!(stopping && status.error_code() == grpc::StatusCode::CANCELLED)) {
      worker_.RecordError(Describe(status));
    }
    return false;
  }

  grpc::ClientContext* NewContext(Clock::time_point deadline) {
    context_ = std::make_unique<grpc::ClientContext>();
    if (deadline != Clock::time_point::max()) context_->set_deadline(ToSystem(deadline));
    return context_.get();
  }

  Clock::time_point RequestDeadline() const {
    return Clock::now() + std::chrono::milliseconds(shared_.options.timeout_ms);
  }

  virtual void Issue() = 0;
  virtual void OnEvent(bool ok) = 0;

  Shared& shared_;
  Worker& worker_;
  std::unique_ptr<grpc::ClientContext> context_;
  uint64_t op_start_ns_ = 0;

 public:
  bool done() const { return done_; }

 private:
  const bool requester_;
  bool waiting_ = false;
  bool slot_reserved_ = false;
  bool done_ = false;
  grpc::Alarm alarm_;
};

void Worker::Loop(Shared& shared) {
  for (auto& client : clients) client->Start();
  bool cancelled = false;
  while (live > 0) {
    void* tag = nullptr;
    bool ok = false;
    const auto status = cq.AsyncNext(&tag, &ok, std::chrono::system_clock::now() + kTick);
    if (status == grpc::CompletionQueue::GOT_EVENT) static_cast<Client*>(tag)->Proceed(ok);
    if (status == grpc::CompletionQueue::SHUTDOWN) break;
    if (!cancelled && shared.cancel_all.load()) {
      cancelled = true;
      for (auto& client : clients) client->Cancel();
    }
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

// put (and the watch workload's putters, which stamp their values and count in `puts_ok`).
class PutClient : public Client {
 public:
  PutClient(Shared& shared, Worker& worker, std::shared_ptr<grpc::Channel> channel,
            const KeySpace& keys, uint64_t index, bool stamp)
      : Client(shared, worker, true),
        stub_(etcdserverpb::KV::NewStub(channel)),
        keys_(keys),
        picker_(keys.key_count(), shared.options.sequential_keys,
                index * (keys.key_count() / std::max<uint64_t>(1, shared.options.clients)),
                shared.options.seed * 7919 + index),
        stamp_(stamp) {
    request_.set_value(MakeValue(shared.options.value_size, shared.options.seed + index));
  }

 private:
  void Issue() override {
    request_.set_key(keys_.Key(picker_.Next()));
    op_start_ns_ = NowNs();
    if (stamp_) WriteStamp(*request_.mutable_value(), op_start_ns_);
    reader_ = stub_->PrepareAsyncPut(NewContext(RequestDeadline()), request_, &worker_.cq);
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }

  void OnEvent(bool) override {
    if (CheckStatus(status_)) {
      if (stamp_) {
        ++shared_.puts_ok;
      } else {
        worker_.RecordOk(NowNs() - op_start_ns_);
      }
    }
    Next();
  }

  std::unique_ptr<etcdserverpb::KV::Stub> stub_;
  const KeySpace& keys_;
  KeyPicker picker_;
  const bool stamp_;
  etcdserverpb::PutRequest request_;
  etcdserverpb::PutResponse response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> reader_;
};

class RangeClient : public Client {
 public:
  RangeClient(Shared& shared, Worker& worker, std::shared_ptr<grpc::Channel> channel,
              const KeySpace& keys, uint64_t index)
      : Client(shared, worker, true),
        stub_(etcdserverpb::KV::NewStub(channel)),
        keys_(keys),
        picker_(keys.key_count(), shared.options.sequential_keys, index,
                shared.options.seed * 7919 + index) {
    request_.set_serializable(shared.options.serializable);
    if (shared.options.prefix_read) {
      request_.set_key(keys.prefix());
      request_.set_range_end(PrefixEnd(keys.prefix()));
      request_.set_limit(shared.options.range_limit);
    }
  }

 private:
  void Issue() override {
    if (!shared_.options.prefix_read) request_.set_key(keys_.Key(picker_.Next()));
    op_start_ns_ = NowNs();
    reader_ = stub_->PrepareAsyncRange(NewContext(RequestDeadline()), request_, &worker_.cq);
    reader_->StartCall();
    reader_->Finish(&response_, &status_, this);
  }

  void OnEvent(bool) override {
    if (CheckStatus(status_)) {
      if (response_.kvs_size() == 0) {
        worker_.RecordError("range returned no key (was the key space populated?)");
      } else {
        worker_.RecordOk(NowNs() - op_start_ns_);
      }
    }
    Next();
  }

  std::unique_ptr<etcdserverpb::KV::Stub> stub_;
  const KeySpace& keys_;
  KeyPicker picker_;
  etcdserverpb::RangeRequest request_;
  etcdserverpb::RangeResponse response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> reader_;
};

// Read-modify-write: read a key, then write it back only if its mod_revision is unchanged. One
// operation is one attempt; a lost race counts as a conflict.
class TxnClient : public Client {
 public:
  TxnClient(Shared& shared, Worker& worker, std::shared_ptr<grpc::Channel> channel,
            const KeySpace& keys, uint64_t index)
      : Client(shared, worker, true),
        stub_(etcdserverpb::KV::NewStub(channel)),
        keys_(keys),
        picker_(keys.key_count(), shared.options.sequential_keys, index,
                shared.options.seed * 7919 + index),
        value_(MakeValue(shared.options.value_size, shared.options.seed + index)) {}

 private:
  void Issue() override {
    op_start_ns_ = NowNs();
    key_ = keys_.Key(picker_.Next());
    etcdserverpb::RangeRequest read;
    read.set_key(key_);
    reading_ = true;
    range_reader_ = stub_->PrepareAsyncRange(NewContext(RequestDeadline()), read, &worker_.cq);
    range_reader_->StartCall();
    range_reader_->Finish(&range_response_, &status_, this);
  }

  void Write(int64_t mod_revision, const std::string& old_value) {
    etcdserverpb::TxnRequest txn;
    etcdserverpb::Compare* compare = txn.add_compare();
    compare->set_key(key_);
    compare->set_target(etcdserverpb::Compare::MOD);
    compare->set_result(etcdserverpb::Compare::EQUAL);
    compare->set_mod_revision(mod_revision);
    etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key_);
    // The modification: the first byte cycles, so every successful write changes the value.
    std::string value = old_value.empty() ? value_ : old_value;
    if (!value.empty()) value[0] = static_cast<char>('a' + (value[0] - 'a' + 1 + 26) % 26);
    put->set_value(std::move(value));
    reading_ = false;
    txn_reader_ = stub_->PrepareAsyncTxn(NewContext(RequestDeadline()), txn, &worker_.cq);
    txn_reader_->StartCall();
    txn_reader_->Finish(&txn_response_, &status_, this);
  }

  void OnEvent(bool) override {
    if (!CheckStatus(status_)) return Next();
    if (reading_) {
      const int64_t mod_revision =
          range_response_.kvs_size() > 0 ? range_response_.kvs(0).mod_revision() : 0;
      return Write(mod_revision,
                   range_response_.kvs_size() > 0 ? range_response_.kvs(0).value() : "");
    }
    if (!txn_response_.succeeded()) ++worker_.conflicts;
    worker_.RecordOk(NowNs() - op_start_ns_);
    Next();
  }

  std::unique_ptr<etcdserverpb::KV::Stub> stub_;
  const KeySpace& keys_;
  KeyPicker picker_;
  const std::string value_;
  std::string key_;
  bool reading_ = false;
  grpc::Status status_;
  etcdserverpb::RangeResponse range_response_;
  etcdserverpb::TxnResponse txn_response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> range_reader_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::TxnResponse>> txn_reader_;
};

// Acquire then release one of `locks` named locks through v3lock, holding the client's lease.
class LockClient : public Client {
 public:
  LockClient(Shared& shared, Worker& worker, std::shared_ptr<grpc::Channel> channel,
             int64_t lease_id, uint64_t index)
      : Client(shared, worker, true),
        stub_(v3lockpb::Lock::NewStub(channel)),
        lease_id_(lease_id),
        picker_(shared.options.locks, shared.options.sequential_keys, index,
                shared.options.seed * 7919 + index) {}

 private:
  void Issue() override {
    op_start_ns_ = NowNs();
    v3lockpb::LockRequest lock;
    lock.set_name(shared_.options.key_prefix + "lock/" + std::to_string(picker_.Next()));
    lock.set_lease(lease_id_);
    locking_ = true;
    // A waiter may queue behind many holders: bound it by the run, not by one request's timeout.
    Clock::time_point deadline = RequestDeadline();
    if (shared_.deadline != Clock::time_point::max()) {
      deadline = std::max(deadline, shared_.deadline + kDrainGrace);
    }
    lock_reader_ = stub_->PrepareAsyncLock(NewContext(deadline), lock, &worker_.cq);
    lock_reader_->StartCall();
    lock_reader_->Finish(&lock_response_, &status_, this);
  }

  void OnEvent(bool) override {
    if (!CheckStatus(status_)) return Next();
    if (locking_) {
      v3lockpb::UnlockRequest unlock;
      unlock.set_key(lock_response_.key());
      locking_ = false;
      // Release even if the run is ending: a held lock would stall the next run until its lease
      // expires.
      unlock_reader_ =
          stub_->PrepareAsyncUnlock(NewContext(RequestDeadline()), unlock, &worker_.cq);
      unlock_reader_->StartCall();
      unlock_reader_->Finish(&unlock_response_, &status_, this);
      return;
    }
    worker_.RecordOk(NowNs() - op_start_ns_);
    Next();
  }

  std::unique_ptr<v3lockpb::Lock::Stub> stub_;
  const int64_t lease_id_;
  KeyPicker picker_;
  bool locking_ = false;
  grpc::Status status_;
  v3lockpb::LockResponse lock_response_;
  v3lockpb::UnlockResponse unlock_response_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v3lockpb::LockResponse>> lock_reader_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<v3lockpb::UnlockResponse>> unlock_reader_;
};

// A watcher on the whole key space; every event's latency is measured from its put's stamp.
class WatchClient : public Client {
 public:
  WatchClient(Shared& shared, Worker& worker, std::shared_ptr<grpc::Channel> channel,
              const KeySpace& keys)
      : Client(shared, worker, false), stub_(etcdserverpb::Watch::NewStub(channel)) {
    etcdserverpb::WatchCreateRequest* create = create_.mutable_create_request();
    create->set_key(keys.prefix());
    create->set_range_end(PrefixEnd(keys.prefix()));
  }

  void Start() override {
    step_ = Step::kStarting;
    stream_ = stub_->PrepareAsyncWatch(NewContext(Clock::time_point::max()), &worker_.cq);
    stream_->StartCall(this);
  }

 private:
  enum class Step { kStarting, kCreating, kReading, kFinishing };

  void Issue() override { BALLOT_UNREACHABLE("watchers are driven by their stream"); }

  void OnEvent(bool ok) override {
    if (!ok && step_ != Step::kFinishing) return Close();
    switch (step_) {
      case Step::kStarting:
        step_ = Step::kCreating;
        return stream_->Write(create_, this);
      case Step::kCreating:
      case Step::kReading:
        if (step_ == Step::kReading) Consume();
        step_ = Step::kReading;
        return stream_->Read(&response_, this);
      case Step::kFinishing:
        if (!created_) ++shared_.watchers_failed;
        CheckStatus(status_);
        return MarkDone();
    }
  }

  void Consume() {
    if (response_.created()) {
      created_ = true;
      ++shared_.watchers_created;
    }
    if (response_.canceled()) {
      worker_.RecordError("watch canceled by the server: " + response_.cancel_reason());
    }
    const uint64_t now_ns = NowNs();
    for (const mvccpb::Event& event : response_.events()) {
      const std::optional<uint64_t> sent_ns = ReadStamp(event.kv().value());
      if (!sent_ns || *sent_ns > now_ns) {
        worker_.RecordError("watch event without a valid send stamp");
        continue;
      }
      worker_.RecordOk(now_ns - *sent_ns);
      ++shared_.events;
    }
  }

  void Close() {
    step_ = Step::kFinishing;
    context_->TryCancel();
    stream_->Finish(&status_, this);
  }

  void RunOver() override { BALLOT_UNREACHABLE("watchers are driven by their stream"); }

  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  etcdserverpb::WatchRequest create_;
  etcdserverpb::WatchResponse response_;
  grpc::Status status_;
  Step step_ = Step::kStarting;
  bool created_ = false;
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      stream_;
};

// One keep-alive stream cycling through its share of the leases; one keep-alive in flight.
class KeepAliveClient : public Client {
 public:
  KeepAliveClient(Shared& shared, Worker& worker, std::shared_ptr<grpc::Channel> channel,
                  std::vector<int64_t> lease_ids)
      : Client(shared, worker, true),
        stub_(etcdserverpb::Lease::NewStub(channel)),
        lease_ids_(std::move(lease_ids)) {
    BALLOT_ASSERT(!lease_ids_.empty());
  }

  void Start() override {
    step_ = Step::kStarting;
    stream_ = stub_->PrepareAsyncLeaseKeepAlive(NewContext(Clock::time_point::max()), &worker_.cq);
    stream_->StartCall(this);
  }

 private:
  enum class Step { kStarting, kWriting, kReading, kFinishing };

  void Issue() override {
    request_.set_id(lease_ids_[next_++ % lease_ids_.size()]);
    op_start_ns_ = NowNs();
    step_ = Step::kWriting;
    stream_->Write(request_, this);
  }

  void OnEvent(bool ok) override {
    if (!ok && step_ != Step::kFinishing) {
      step_ = Step::kFinishing;
      stream_->Finish(&status_, this);
      return;
    }
    switch (step_) {
      case Step::kStarting:
        return Next();
      case Step::kWriting:
        step_ = Step::kReading;
        return stream_->Read(&response_, this);
      case Step::kReading:
        if (response_.ttl() > 0 && response_.id() == request_.id()) {
          worker_.RecordOk(NowNs() - op_start_ns_);
        } else {
          worker_.RecordError("keep-alive answered TTL " + std::to_string(response_.ttl()) +
                              " for lease " + std::to_string(response_.id()));
        }
        return Next();
      case Step::kFinishing:
        if (!closing_) {
          // The stream ended without being asked to.
          if (status_.ok()) {
            worker_.RecordError("keep-alive stream closed by the server");
          } else {
            CheckStatus(status_);
          }
        }
        return MarkDone();
    }
  }

  void RunOver() override {
    closing_ = true;
    step_ = Step::kFinishing;
    context_->TryCancel();
    stream_->Finish(&status_, this);
  }

  std::unique_ptr<etcdserverpb::Lease::Stub> stub_;
  const std::vector<int64_t> lease_ids_;
  size_t next_ = 0;
  Step step_ = Step::kStarting;
  bool closing_ = false;
  etcdserverpb::LeaseKeepAliveRequest request_;
  etcdserverpb::LeaseKeepAliveResponse response_;
  grpc::Status status_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                                etcdserverpb::LeaseKeepAliveResponse>>
      stream_;
};

using Channels = std::vector<std::shared_ptr<grpc::Channel>>;

Result<Channels> Connect(const Options& options) {
  Channels channels;
  for (uint32_t i = 0; i < options.conns; ++i) {
    grpc::ChannelArguments args;
    // Without these, gRPC would share one TCP connection between channels to the same address.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt("ballot.bench.conn", static_cast<int>(i));
    args.SetMaxReceiveMessageSize(-1);
    const std::string& endpoint = options.endpoints[i % options.endpoints.size()];
    auto channel = grpc::CreateCustomChannel(endpoint, grpc::InsecureChannelCredentials(), args);
    if (!channel->WaitForConnected(std::chrono::system_clock::now() +
                                   std::chrono::milliseconds(options.connect_timeout_ms))) {
      return Status::Unavailable("cannot connect to " + endpoint + " within " +
                                 std::to_string(options.connect_timeout_ms) + " ms");
    }
    channels.push_back(std::move(channel));
  }
  return channels;
}

// User plus system CPU time of this process so far.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// Runs fn(i) for i in [0, n) on a few threads; the first error wins.
Status ParallelFor(uint64_t n, const std::function<Status(uint64_t, int)>& fn) {
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  Status first_error;
  std::vector<std::thread> threads;
  for (int t = 0; t < kSetupThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i; (i = next.fetch_add(1)) < n;) {
        Status status = fn(i, t);
        if (!status.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.ok()) first_error = std::move(status);
          next = n;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return first_error;
}

Status FromGrpc(const std::string& what, const grpc::Status& status) {
  return Status::Unavailable(what + ": " + Describe(status));
}

std::unique_ptr<grpc::ClientContext> SetupContext() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + 30s);
  return context;
}

// Puts every key of the space, so that reads and compare-and-swaps find them.
Status Populate(const Channels& channels, const KeySpace& keys, const Options& options) {
  const std::string value = MakeValue(options.value_size, options.seed);
  return ParallelFor(keys.key_count(), [&](uint64_t i, int thread) {
    auto stub = etcdserverpb::KV::NewStub(channels[thread % channels.size()]);
    etcdserverpb::PutRequest put;
    put.set_key(keys.Key(i));
    put.set_value(value);
    etcdserverpb::PutResponse response;
    const grpc::Status status = stub->Put(SetupContext().get(), put, &response);
    return status.ok() ? Status::Ok() : FromGrpc("populating the key space", status);
  });
}

Result<std::vector<int64_t>> GrantLeases(const Channels& channels, uint64_t count, int64_t ttl_s) {
  std::vector<int64_t> ids(count);
  RETURN_IF_ERROR(ParallelFor(count, [&](uint64_t i, int thread) {
    auto stub = etcdserverpb::Lease::NewStub(channels[thread % channels.size()]);
    etcdserverpb::LeaseGrantRequest grant;
    grant.set_ttl(ttl_s);
    etcdserverpb::LeaseGrantResponse response;
    const grpc::Status status = stub->LeaseGrant(SetupContext().get(), grant, &response);
    if (!status.ok()) return FromGrpc("granting leases", status);
    if (response.id() == 0) return Status::Internal("lease grant: " + response.error());
    ids[i] = response.id();
    return Status::Ok();
  }));
  return ids;
}

// Best effort: revoking releases the locks the leases hold and keeps the server tidy.
void RevokeLeases(const Channels& channels, const std::vector<int64_t>& ids) {
  (void)ParallelFor(ids.size(), [&](uint64_t i, int thread) {
    auto stub = etcdserverpb::Lease::NewStub(channels[thread % channels.size()]);
    etcdserverpb::LeaseRevokeRequest revoke;
    revoke.set_id(ids[i]);
    etcdserverpb::LeaseRevokeResponse response;
    (void)stub->LeaseRevoke(SetupContext().get(), revoke, &response);
    return Status::Ok();
  });
}

}  // namespace

Result<Report> Run(const Options& options) {
  ASSIGN_OR_RETURN(const KeySpace keys,
                   KeySpace::Make(options.key_prefix, options.key_count, options.key_size));
  ASSIGN_OR_RETURN(const Channels channels, Connect(options));

  std::vector<int64_t> lease_ids;
  switch (options.workload) {
    case Workload::kRange:
    case Workload::kTxn:
      RETURN_IF_ERROR(Populate(channels, keys, options));
      break;
    case Workload::kLock: {
      ASSIGN_OR_RETURN(lease_ids, GrantLeases(channels, options.clients, options.lease_ttl_s));
      break;
    }
    case Workload::kLeaseKeepAlive: {
      ASSIGN_OR_RETURN(lease_ids, GrantLeases(channels, options.leases, options.lease_ttl_s));
      break;
    }
    case Workload::kPut:
    case Workload::kWatch:
      break;
  }

  Shared shared(options);
  std::vector<std::unique_ptr<Worker>> workers;
  for (uint32_t t = 0; t < options.threads; ++t) workers.push_back(std::make_unique<Worker>());
  auto add = [&](uint64_t i, auto make) {
    Worker& worker = *workers[i % workers.size()];
    worker.clients.push_back(make(worker, channels[i % channels.size()]));
  };
  if (options.workload == Workload::kWatch) {
    for (uint64_t i = 0; i < options.watchers; ++i) {
      add(i, [&](Worker& w, auto channel) {
        return std::make_unique<WatchClient>(shared, w, channel, keys);
      });
    }
  }
  for (uint64_t i = 0; i < options.clients; ++i) {
    add(i, [&](Worker& w, auto channel) -> std::unique_ptr<Client> {
      switch (options.workload) {
        case Workload::kPut:
          return std::make_unique<PutClient>(shared, w, channel, keys, i, false);
        case Workload::kWatch:
          return std::make_unique<PutClient>(shared, w, channel, keys, i, true);
        case Workload::kRange:
          return std::make_unique<RangeClient>(shared, w, channel, keys, i);
        case Workload::kTxn:
          return std::make_unique<TxnClient>(shared, w, channel, keys, i);
        case Workload::kLock:
          return std::make_unique<LockClient>(shared, w, channel, lease_ids[i], i);
        case Workload::kLeaseKeepAlive: {
          std::vector<int64_t> mine;
          for (uint64_t l = i; l < lease_ids.size(); l += options.clients) {
            mine.push_back(lease_ids[l]);
          }
          return std::make_unique<KeepAliveClient>(shared, w, channel, std::move(mine));
        }
      }
      BALLOT_UNREACHABLE("Workload out of range");
    });
  }

  std::vector<std::thread> threads;
  for (auto& worker : workers) {
    threads.emplace_back([&shared, w = worker.get()] { w->Loop(shared); });
  }
  auto stop = [&] {
    shared.cancel_all = true;
    for (auto& thread : threads) thread.join();
  };

  if (options.workload == Workload::kWatch) {
    const Clock::time_point give_up = Clock::now() + kWatchersReadyTimeout;
    while (shared.watchers_created.load() < static_cast<int>(options.watchers)) {
      if (shared.watchers_failed.load() > 0 || Clock::now() > give_up) {
        stop();
        return Status::Unavailable(
            "watchers not created: " + std::to_string(shared.watchers_created.load()) + " of " +
            std::to_string(options.watchers) + " ready");
      }
      std::this_thread::sleep_for(5ms);
    }
  }

  const double cpu_at_start = ProcessCpuSeconds();
  shared.start = Clock::now();
  if (options.duration_s > 0) {
    shared.deadline = shared.start + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double>(options.duration_s));
  }
  shared.started = true;

  while (shared.live_requesters.load() > 0) {
    if (shared.deadline != Clock::time_point::max() &&
        Clock::now() > shared.deadline + kDrainGrace) {
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  uint64_t missing_events = 0;
  if (options.workload == Workload::kWatch) {
    const uint64_t expected = shared.puts_ok.load() * options.watchers;
    const Clock::time_point give_up = Clock::now() + kWatchDrainMax;
    while (shared.events.load() < expected && Clock::now() < give_up) {
      std::this_thread::sleep_for(5ms);
    }
    missing_events = expected - std::min(expected, shared.events.load());
  }
  const double cpu_at_end = ProcessCpuSeconds();
  stop();
  RevokeLeases(channels, lease_ids);

  Report report;
  report.workload = options.workload;
  Clock::time_point last = shared.start;
  for (const auto& worker : workers) {
    report.latency.Merge(worker->latency);
    report.ok += worker->ok;
    report.errors += worker->errors;
    report.conflicts += worker->conflicts;
    for (const auto& [message, count] : worker->error_samples) {
      if (report.error_samples.size() < kErrorSamplesMax || report.error_samples.count(message)) {
        report.error_samples[message] += count;
      }
    }
    last = std::max(last, worker->last_completion);
  }
  if (missing_events > 0) {
    report.errors += missing_events;
    report.error_samples
        ["watch events missing " +
         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(kWatchDrainMax).count()) +
         " s after the last put"] = missing_events;
  }
  report.puts = shared.puts_ok.load();
  report.elapsed_s = std::chrono::duration<double>(last - shared.start).count();
  report.client_cpu_s = cpu_at_end - cpu_at_start;
  return report;
}

}  // namespace ballot::bench
