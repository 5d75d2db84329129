#include "server/forwarder.h"

#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

namespace ballot::server {

Result<std::string> ClientUrlToTarget(const std::string& url) {
  constexpr std::string_view kHttp = "http://";
  std::string target = url;
  if (target.starts_with(kHttp)) {
    target = target.substr(kHttp.size());
  } else if (target.find("://") != std::string::npos) {
    return Status::InvalidArgument("unsupported client URL scheme: " + url);
  }
  while (!target.empty() && target.back() == '/') target.pop_back();
  if (target.empty()) return Status::InvalidArgument("empty client URL");
  return target;
}

internal::Forward::Stub* Forwarder::StubFor(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& channel = channels_[target];
  if (!channel) channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto& stub = stubs_[target];
  if (!stub) stub = internal::Forward::NewStub(channel);
  return stub.get();
}

bool Forwarder::BeginCall(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  if (stopped_) return false;
  ++calls_;
  unanswered_.insert(ctx);
  return true;
}

void Forwarder::CallAnswered(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> lock(calls_mu_);
  unanswered_.erase(ctx);
}

void Forwarder::CallReleased() {
  std::lock_guard<std::mutex> lock(calls_mu_);
  if (--calls_ == 0) calls_cv_.notify_all();
}

void Forwarder::Stop() {
  std::unique_lock<std::mutex> lock(calls_mu_);
  stopped_ = true;
  for (grpc::ClientContext* ctx : unanswered_) ctx->TryCancel();
  calls_cv_.wait(lock, [this] { return calls_ == 0; });
}

etcdserverpb::Cluster::Stub* Forwarder::ClusterStubFor(const std::string& target) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& channel = channels_[target];
  if (!channel) channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  auto& stub = cluster_stubs_[target];
  if (!stub) stub = etcdserverpb::Cluster::NewStub(channel);
  return stub.get();
}

// One blocking unary call to the leader, trying its URLs in turn. `call(stub, ctx, response)`
// makes the call. With `leader_errors_are_answers`, a failure other than UNAVAILABLE is the
// leader's own answer (an etcd error from its Cluster service) and is returned as it is; every
// other failure moves on to the next URL.
template <typename Stub, typename Response, typename Call>
Result<Response> Forwarder::CallLeader(const std::vector<std::string>& urls, Deadline deadline,
                                       Stub* (Forwarder::*stub_for)(const std::string&),
                                       bool leader_errors_are_answers, Call call) {
  Status last = Status::Unavailable("the leader has published no client URL yet");
  for (const std::string& url : urls) {
    auto target = ClientUrlToTarget(url);
    if (!target.ok()) {
      last = target.status();
      continue;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + (deadline - Clock::now()));
    Response response;
    grpc::Status s = call((this->*stub_for)(*target), &ctx, &response);
    if (s.ok()) return response;
    if (leader_errors_are_answers && s.error_code() != grpc::StatusCode::UNAVAILABLE) {
      return Status(static_cast<StatusCode>(s.error_code()), s.error_message());
    }
    last = Status::Unavailable("forwarding to the leader at " + url + ": " + s.error_message());
  }
  return last;
}

Result<etcdserverpb::MemberAddResponse> Forwarder::MemberAdd(
    const std::vector<std::string>& urls, const etcdserverpb::MemberAddRequest& request,
    Deadline deadline) {
  return CallLeader<etcdserverpb::Cluster::Stub, etcdserverpb::MemberAddResponse>(
      urls, deadline, &Forwarder::ClusterStubFor, /*leader_errors_are_answers=*/true,
      [&](auto* stub, auto* ctx, auto* resp) { return stub->MemberAdd(ctx, request, resp); });
}

Result<etcdserverpb::MemberRemoveResponse> Forwarder::MemberRemove(
    const std::vector<std::string>& urls, const etcdserverpb::MemberRemoveRequest& request,
    Deadline deadline) {
  return CallLeader<etcdserverpb::Cluster::Stub, etcdserverpb::MemberRemoveResponse>(
      urls, deadline, &Forwarder::ClusterStubFor, /*leader_errors_are_answers=*/true,
      [&](auto* stub, auto* ctx, auto* resp) { return stub->MemberRemove(ctx, request, resp); });
}

Result<etcdserverpb::MemberPromoteResponse> Forwarder::MemberPromote(
    const std::vector<std::string>& urls, const etcdserverpb::MemberPromoteRequest& request,
    Deadline deadline) {
  return CallLeader<etcdserverpb::Cluster::Stub, etcdserverpb::MemberPromoteResponse>(
      urls, deadline, &Forwarder::ClusterStubFor, /*leader_errors_are_answers=*/true,
      [&](auto* stub, auto* ctx, auto* resp) { return stub->MemberPromote(ctx, request, resp); });
}

Result<etcdserverpb::MemberUpdateResponse> Forwarder::MemberUpdate(
    const std::vector<std::string>& urls, const etcdserverpb::MemberUpdateRequest& request,
    Deadline deadline) {
  return CallLeader<etcdserverpb::Cluster::Stub, etcdserverpb::MemberUpdateResponse>(
      urls, deadline, &Forwarder::ClusterStubFor, /*leader_errors_are_answers=*/true,
      [&](auto* stub, auto* ctx, auto* resp) { return stub->MemberUpdate(ctx, request, resp); });
}

namespace {

// One asynchronous forward: the request and the gRPC call's state live as long as its callback.
// `start` begins the call on a stub: start(stub, ctx, request, response, on_done).
template <typename Request, typename Response>
struct AsyncForward : std::enable_shared_from_this<AsyncForward<Request, Response>> {
  using Start = std::function<void(internal::Forward::Stub*, grpc::ClientContext*, const Request*,
                                   Response*, std::function<void(grpc::Status)>)>;
  Forwarder* forwarder = nullptr;
  std::vector<std::string> urls;
  size_t next = 0;  // The URL to try next.
  Request request;
  Deadline deadline;
  Start start;
  std::function<void(Result<Response>)> done;
  Status last = Status::Unavailable("the leader has published no client URL yet");

  // Tries the next URL whose address parses. etcd's errors travel inside the response, so a gRPC
  // error means that address did not answer: the next one is tried.
  void TryNext() {
    while (next < urls.size()) {
      const std::string& url = urls[next++];
      auto target = ClientUrlToTarget(url);
      if (!target.ok()) {
        last = target.status();
        continue;
      }
      struct Call {
        // Declared first, so destroyed last: tells the forwarder once the context is gone.
        struct Release {
          Forwarder* forwarder;
          ~Release() {
            if (forwarder != nullptr) forwarder->CallReleased();
          }
        } release;
        grpc::ClientContext ctx;
        Response response;
      };
      auto call = std::shared_ptr<Call>(new Call{{forwarder}, {}, {}});
      if (!forwarder->BeginCall(&call->ctx)) {
        call->release.forwarder = nullptr;
        done(Status::Unavailable("forwarding to the leader: the member is stopping"));
        return;
      }
      call->ctx.set_deadline(std::chrono::system_clock::now() + (deadline - Clock::now()));
      auto self = this->shared_from_this();
      start(forwarder->StubFor(*target), &call->ctx, &request, &call->response,
            [self, call, url](grpc::Status s) {
              self->forwarder->CallAnswered(&call->ctx);
              if (s.ok()) return self->done(std::move(call->response));
              self->last = Status::Unavailable("forwarding to the leader at " + url + ": " +
                                               s.error_message());
              self->TryNext();
            });
      return;
    }
    done(last);
  }
};

template <typename Request, typename Response>
void ForwardAsync(Forwarder* forwarder, const std::vector<std::string>& urls, Request request,
                  Deadline deadline, typename AsyncForward<Request, Response>::Start start,
                  std::function<void(Result<Response>)> done) {
  auto f = std::make_shared<AsyncForward<Request, Response>>();
  f->forwarder = forwarder;
  f->urls = urls;
  f->request = std::move(request);
  f->deadline = deadline;
  f->start = std::move(start);
  f->done = std::move(done);
  f->TryNext();
}

}  // namespace

void Forwarder::ProposeAsync(const std::vector<std::string>& urls,
                             const internal::InternalRequest& request, Deadline deadline,
                             std::function<void(Result<internal::ForwardResponse>)> done) {
  const size_t bytes = request.ByteSizeLong();
  {
    std::unique_lock<std::mutex> lock(batch_mu_);
    if (queued_.size() >= kQueuedMax) {
      lock.unlock();
      return done(Status::ResourceExhausted("etcdserver: too many requests"));
    }
    if (batches_in_flight_ >= kBatchesInFlightMax) {
      // Sent with the next batch, when a call in flight returns.
      queued_.push_back(Queued{request, bytes, deadline, std::move(done)});
      queued_urls_ = urls;
      return;
    }
    ++batches_in_flight_;
  }
  std::vector<Queued> batch;
  batch.push_back(Queued{request, bytes, deadline, std::move(done)});
  SendBatch(urls, std::move(batch));
}

void Forwarder::SendBatch(const std::vector<std::string>& urls, std::vector<Queued> batch) {
  {
    std::lock_guard<std::mutex> lock(batch_mu_);
    stats_.proposals += batch.size();
    ++stats_.batches;
  }
  internal::ProposalBatch request;
  Deadline deadline = batch.front().deadline;
  for (Queued& q : batch) {
    *request.add_requests() = std::move(q.request);
    deadline = std::max(deadline, q.deadline);
  }
  auto dones =
      std::make_shared<std::vector<std::function<void(Result<internal::ForwardResponse>)>>>();
  for (Queued& q : batch) dones->push_back(std::move(q.done));
  ForwardAsync<internal::ProposalBatch, internal::ProposalBatchResponse>(
      this, urls, std::move(request), deadline,
      [](auto* stub, auto* ctx, const auto* req, auto* resp, auto on_done) {
        stub->async()->ProposeBatch(ctx, req, resp, std::move(on_done));
      },
      [this, dones](Result<internal::ProposalBatchResponse> r) {
        if (r.ok() && r->responses_size() != static_cast<int>(dones->size())) {
          r = Status::Internal("the leader answered " + std::to_string(r->responses_size()) +
                               " of " + std::to_string(dones->size()) + " forwarded proposals");
        }
        for (size_t i = 0; i < dones->size(); ++i) {
          (*dones)[i](r.ok() ? Result<internal::ForwardResponse>(
                                   std::move(*r->mutable_responses(static_cast<int>(i))))
                             : Result<internal::ForwardResponse>(r.status()));
        }
        BatchDone();
      });
}

void Forwarder::BatchDone() {
  std::vector<Queued> batch;
  std::vector<std::string> urls;
  {
    std::lock_guard<std::mutex> lock(batch_mu_);
    if (queued_.empty()) {
      --batches_in_flight_;
      return;
    }
    // Everything that waited, up to the size bound (at least one).
    size_t bytes = 0;
    size_t n = 0;
    while (n < queued_.size() && (n == 0 || bytes + queued_[n].bytes <= kBatchBytesMax)) {
      bytes += queued_[n].bytes;
      ++n;
    }
    batch.assign(std::make_move_iterator(queued_.begin()),
                 std::make_move_iterator(queued_.begin() + static_cast<std::ptrdiff_t>(n)));
    queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(n));
    urls = queued_urls_;
  }
  SendBatch(urls, std::move(batch));
}

void Forwarder::LeaseKeepAliveAsync(const std::vector<std::string>& urls,
                                    const etcdserverpb::LeaseKeepAliveRequest& request,
                                    Deadline deadline,
                                    std::function<void(Result<internal::ForwardResponse>)> done) {
  ForwardAsync<etcdserverpb::LeaseKeepAliveRequest, internal::ForwardResponse>(
      this, urls, request, deadline,
      [](auto* stub, auto* ctx, const auto* req, auto* resp, auto on_done) {
        stub->async()->LeaseKeepAlive(ctx, req, resp, std::move(on_done));
      },
      std::move(done));
}

void Forwarder::LeaseTimeToLiveAsync(const std::vector<std::string>& urls,
                                     const etcdserverpb::LeaseTimeToLiveRequest& request,
                                     Deadline deadline,
                                     std::function<void(Result<internal::ForwardResponse>)> done) {
  ForwardAsync<etcdserverpb::LeaseTimeToLiveRequest, internal::ForwardResponse>(
      this, urls, request, deadline,
      [](auto* stub, auto* ctx, const auto* req, auto* resp, auto on_done) {
        stub->async()->LeaseTimeToLive(ctx, req, resp, std::move(on_done));
      },
      std::move(done));
}

}  // namespace ballot::server
