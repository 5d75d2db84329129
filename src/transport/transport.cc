#include "transport/transport.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <random>
#include <utility>

#include "base/logging.h"
#include "base/thread_name.h"
#include "peer.grpc.pb.h"
#include "transport/codec.h"

namespace ballot::transport {
namespace {

using Clock = std::chrono::steady_clock;
using consensus::Message;
using consensus::MessageType;
using consensus::NodeId;

// Bytes a batch adds around its messages: the header (tag, length, three varints) and, per
// message, a tag and a length.
constexpr uint64_t kBatchHeaderBytesMax = 2 + 3 * 11;
constexpr uint64_t kMessageFramingBytesMax = 1 + 5;
// HTTP/2 keepalive: a peer that stops answering (a partition, SIGSTOP) breaks the stream within
// time + timeout, so its queue stops growing behind a dead connection.
constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 5'000;
// A correct peer has one stream to us per connection, two during a reconnection.
constexpr int kInboundStreamsPerConnectionMax = 8;
// The reconnection thread looks at every peer at least this often, whatever it was told.
constexpr auto kReconnectScanInterval = std::chrono::milliseconds(500);

std::string GrpcStatusText(const grpc::Status& status) {
  std::string code = std::string(StatusCodeName(static_cast<StatusCode>(status.error_code())));
  return status.error_message().empty() ? code : code + ": " + status.error_message();
}

}  // namespace

Result<std::string> ParsePeerUrl(std::string_view url) {
  std::string_view rest = url;
  if (size_t scheme_end = rest.find("://"); scheme_end != std::string_view::npos) {
    std::string_view scheme = rest.substr(0, scheme_end);
    if (scheme != "http") {
      return Status::InvalidArgument("peer URL \"" + std::string(url) + "\": scheme \"" +
                                     std::string(scheme) +
                                     "\" is not supported (the transport speaks plain http)");
    }
    rest.remove_prefix(scheme_end + 3);
  }
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  const size_t colon = rest.rfind(':');
  if (rest.empty() || rest.find('/') != std::string_view::npos || colon == std::string_view::npos ||
      colon == 0) {
    return Status::InvalidArgument("peer URL \"" + std::string(url) +
                                   "\" is not of the form http://host:port");
  }
  std::string_view host = rest.substr(0, colon);
  std::string_view port = rest.substr(colon + 1);
  if (host.front() == '[' && host.back() != ']') {
    return Status::InvalidArgument("peer URL \"" + std::string(url) + "\": unclosed [ in host");
  }
  uint32_t port_number = 0;
  for (char c : port) {
    if (c < '0' || c > '9' || port_number > 65535) {
      port_number = 65536;
      break;
    }
    port_number = port_number * 10 + static_cast<uint32_t>(c - '0');
  }
  if (port.empty() || port_number > 65535) {
    return Status::InvalidArgument("peer URL \"" + std::string(url) + "\": bad port \"" +
                                   std::string(port) + "\"");
  }
  return std::string(rest);
}

Status Transport::Options::Validate() const {
  if (self == consensus::kNoNode)
    return Status::InvalidArgument("transport: self id must not be 0");
  if (max_message_bytes < 1024 || max_message_bytes > (uint64_t{1} << 31)) {
    return Status::InvalidArgument("transport: max_message_bytes must be in [1 KiB, 2 GiB]");
  }
  if (max_batch_bytes == 0 || max_batch_bytes > max_message_bytes) {
    return Status::InvalidArgument("transport: max_batch_bytes must be in [1, max_message_bytes]");
  }
  if (queue_messages_max == 0 || queue_bytes_max == 0 || snapshot_queue_messages_max == 0) {
    return Status::InvalidArgument("transport: queue bounds must be at least 1");
  }
  if (reconnect_backoff_initial_ms < 1 || reconnect_backoff_max_ms < reconnect_backoff_initial_ms) {
    return Status::InvalidArgument(
        "transport: need 1 <= reconnect_backoff_initial_ms <= reconnect_backoff_max_ms");
  }
  return ParsePeerUrl(listen_url).status();
}

// ---------------------------------------------------------------------------------------------
// Sending side.

// One attempt at a stream to a peer. It deletes itself in OnDone; until then its link points to
// it. The link takes a hold on it while it is usable (`stream_live_`), so the link may start
// writes and reads on it under the link's mutex without racing OnDone.
class Transport::OutStream : public grpc::ClientBidiReactor<peer::Batch, peer::StreamAck> {
 public:
  explicit OutStream(PeerLink* link) : link_(link) {}

  grpc::ClientContext context;
  // The batch being written and what it holds; touched only under the link's mutex.
  peer::Batch batch;
  uint64_t batch_messages = 0;
  uint64_t batch_bytes = 0;
  peer::StreamAck ack;  // The receiver writes none; see proto/peer.proto.

  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  PeerLink* const link_;
};

// The outbound half for one peer: its channel, its queues, its current stream and its counters.
class Transport::PeerLink {
 public:
  struct Queued {
    std::unique_ptr<peer::Message> message;  // Null for a member message.
    std::string member_payload;
    uint64_t bytes = 0;  // Encoded, with framing.
    bool snapshot = false;
  };

  PeerLink(Transport* owner, NodeId id, std::string target) : owner_(owner), id_(id), rng_(id) {
    std::lock_guard lock(mu_);
    SetTargetLocked(std::move(target));
  }
  ~PeerLink() { BALLOT_ASSERT(stream_ == nullptr, "PeerLink destroyed with a live stream"); }

  // Queues messages for this peer, dropping (and counting) those beyond the bounds.
  void Enqueue(std::vector<Queued> messages) {
    std::lock_guard lock(mu_);
    const Options& o = owner_->options_;
    for (Queued& q : messages) {
      if (q.bytes + kBatchHeaderBytesMax > o.max_message_bytes) {
        BLOG_ERROR(
            "transport {}: dropped a {} message of {} bytes for member {}: larger than "
            "max_message_bytes {}",
            o.self,
            q.message == nullptr
                ? "member"
                : consensus::MessageTypeName(static_cast<MessageType>(q.message->type())),
            q.bytes, id_, o.max_message_bytes);
        ++stats_.dropped_messages;
        continue;
      }
      std::deque<Queued>& lane = q.snapshot ? snapshots_ : normal_;
      const uint64_t lane_max = q.snapshot ? o.snapshot_queue_messages_max : o.queue_messages_max;
      if (closed_ || lane.size() >= lane_max || queued_bytes_ + q.bytes > o.queue_bytes_max) {
        ++stats_.dropped_messages;
        continue;
      }
      queued_bytes_ += q.bytes;
      lane.push_back(std::move(q));
    }
    MaybeWriteLocked();
  }

  // Allows streams again and asks for one at once.
  void Open() {
    std::lock_guard lock(mu_);
    closed_ = false;
    backoff_ms_ = owner_->options_.reconnect_backoff_initial_ms;
    next_attempt_ = Clock::now();
  }

  // Cancels the stream and waits for it to end (gRPC ends a cancelled call promptly, reachable
  // peer or not). With `drop_queue`, drops what is queued.
  void Close(bool drop_queue) {
    std::unique_lock lock(mu_);
    closed_ = true;
    TeardownLocked();
    done_cv_.wait(lock, [this] { return stream_ == nullptr; });
    if (drop_queue) {
      stats_.dropped_messages += normal_.size() + snapshots_.size();
      normal_.clear();
      snapshots_.clear();
      queued_bytes_ = 0;
    }
  }

  // Between Close and Open only.
  void SetTarget(std::string target) {
    std::lock_guard lock(mu_);
    BALLOT_ASSERT(closed_ && stream_ == nullptr, "PeerLink::SetTarget on an open link");
    SetTargetLocked(std::move(target));
  }

  // Opens a stream if none is open and the backoff has passed; returns when to look again.
  Clock::time_point MaybeConnect(Clock::time_point now) {
    std::lock_guard lock(mu_);
    if (closed_ || stream_ != nullptr) return Clock::time_point::max();
    if (now < next_attempt_) return next_attempt_;
    StartStreamLocked();
    return Clock::time_point::max();
  }

  std::string target() const {
    std::lock_guard lock(mu_);
    return target_;
  }

  PeerStats Stats() const {
    std::lock_guard lock(mu_);
    PeerStats s = stats_;
    s.queued_messages = normal_.size() + snapshots_.size();
    return s;
  }

  void OnConnected(OutStream* s, bool ok) {
    std::lock_guard lock(mu_);
    BALLOT_ASSERT(s == stream_, "OnConnected for a stream the link does not hold");
    if (!ok) {
      TeardownLocked();
      return;
    }
    if (!stream_live_) return;  // Closed meanwhile; OnDone follows.
    if (ever_connected_) ++stats_.reconnects;
    ever_connected_ = true;
    stats_.connected = true;
    established_at_ = Clock::now();
    if (failing_ && !refused_) {
      BLOG_INFO("transport {}: connected to member {} at {}", Self(), id_, target_);
    }
    failing_ = false;
    MaybeWriteLocked();
  }

  void OnReadDone(OutStream* s, bool ok) {
    std::lock_guard lock(mu_);
    BALLOT_ASSERT(s == stream_, "OnReadDone for a stream the link does not hold");
    if (ok && stream_live_) {
      s->StartRead(&s->ack);
    } else {
      TeardownLocked();
    }
  }

  void OnWriteDone(OutStream* s, bool ok) {
    std::lock_guard lock(mu_);
    BALLOT_ASSERT(s == stream_ && write_in_flight_, "OnWriteDone without a write in flight");
    write_in_flight_ = false;
    if (ok) {
      stats_.sent_messages += s->batch_messages;
      stats_.sent_bytes += s->batch_bytes;
      ++stats_.batches;
    } else {
      // The batch may or may not have arrived; the engine cannot tell either, and retransmits.
      stats_.dropped_messages += s->batch_messages;
      TeardownLocked();
    }
    s->batch.Clear();
    s->batch_messages = 0;
    s->batch_bytes = 0;
    MaybeWriteLocked();
  }

  // `stream` is the address of the stream, deleted already.
  void OnStreamDone(uintptr_t stream, const grpc::Status& status) {
    std::lock_guard lock(mu_);
    BALLOT_ASSERT(stream == reinterpret_cast<uintptr_t>(stream_),
                  "OnStreamDone for a stream the link does not hold");
    const bool was_connected = stats_.connected;
    stream_ = nullptr;
    stream_live_ = false;
    write_in_flight_ = false;
    stats_.connected = false;
    if (!closed_) {
      ++stats_.stream_failures;
      stats_.last_error = GrpcStatusText(status);
      LogFailureLocked(status, was_connected);
      // Only a stream that lasted resets the backoff: one the peer refuses right after accepting
      // it (wrong cluster, too large a batch) must not be retried at the initial rate forever.
      const Options& o = owner_->options_;
      if (was_connected &&
          Clock::now() - established_at_ >= std::chrono::milliseconds(o.reconnect_backoff_max_ms)) {
        backoff_ms_ = o.reconnect_backoff_initial_ms;
      }
      const int jitter_ms = static_cast<int>(rng_() % (backoff_ms_ / 4 + 1));
      next_attempt_ = Clock::now() + std::chrono::milliseconds(backoff_ms_ + jitter_ms);
      backoff_ms_ = std::min(backoff_ms_ * 2, o.reconnect_backoff_max_ms);
      owner_->WakeReconnectLoop();
    }
    done_cv_.notify_all();
  }

 private:
  NodeId Self() const { return owner_->options_.self; }

  void SetTargetLocked(std::string target) {
    const Options& o = owner_->options_;
    target_ = std::move(target);
    grpc::ChannelArguments args;
    args.SetMaxSendMessageSize(static_cast<int>(o.max_message_bytes));
    args.SetMaxReceiveMessageSize(64 << 10);  // Acknowledgements only.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    // The channel's own reconnection (a stream waits for it: wait_for_ready) backs off within the
    // same bounds as the link's.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, o.reconnect_backoff_initial_ms);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, o.reconnect_backoff_max_ms);
    // Each link gets its own connection, even to an address another link in the process uses.
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args);
    stub_ = peer::Peer::NewStub(channel_);
  }

  void StartStreamLocked() {
    auto* s = new OutStream(this);
    // The stream waits for the channel to connect (the channel backs off between attempts), so a
    // peer that is down costs one pending call, not a failure every backoff period.
    s->context.set_wait_for_ready(true);
    stub_->async()->Stream(&s->context, s);
    s->AddHold();  // Released by TeardownLocked.
    s->StartRead(&s->ack);
    stream_ = s;
    stream_live_ = true;
    write_in_flight_ = false;
    s->StartCall();
  }

  // Ends the current stream's usable life: no new operations; OnDone follows once gRPC is done.
  void TeardownLocked() {
    if (!stream_live_) return;
    stream_live_ = false;
    stream_->context.TryCancel();
    stream_->RemoveHold();
  }

  // Writes only on an established stream: until then messages wait in the bounded queue, where
  // they are counted, rather than in gRPC's hands.
  void MaybeWriteLocked() {
    if (!stream_live_ || !stats_.connected || write_in_flight_ ||
        (normal_.empty() && snapshots_.empty())) {
      return;
    }
    FillBatchLocked(stream_);
    write_in_flight_ = true;
    stream_->StartWrite(&stream_->batch);
  }

  // A batch holds at most one snapshot chunk, first, then ordinary messages in order while they
  // fit max_batch_bytes; so a heartbeat queued behind a snapshot transfer waits one batch at most.
  // A batch holds at least one message, whatever its size.
  void FillBatchLocked(OutStream* s) {
    const Options& o = owner_->options_;
    s->batch.Clear();
    peer::BatchHeader* header = s->batch.mutable_header();
    header->set_cluster_id(o.cluster_id);
    header->set_from(o.self);
    header->set_to(id_);
    uint64_t bytes = 0;
    uint64_t count = 0;
    auto take = [&](std::deque<Queued>& lane) {
      Queued& q = lane.front();
      bytes += q.bytes;
      ++count;
      queued_bytes_ -= q.bytes;
      if (q.message == nullptr) {
        s->batch.add_member_messages(std::move(q.member_payload));
      } else {
        s->batch.mutable_messages()->AddAllocated(q.message.release());
      }
      lane.pop_front();
    };
    if (!snapshots_.empty()) take(snapshots_);
    // The header too must fit the send limit (Enqueue let in no message that would not).
    const uint64_t budget = std::min(o.max_batch_bytes, o.max_message_bytes - kBatchHeaderBytesMax);
    while (!normal_.empty() && (count == 0 || bytes + normal_.front().bytes <= budget)) {
      take(normal_);
    }
    s->batch_messages = count;
    s->batch_bytes = bytes;
  }

  void LogFailureLocked(const grpc::Status& status, bool was_connected) {
    const std::string text = GrpcStatusText(status);
    refused_ = status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
               status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
               status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
    if (refused_) {
      BLOG_ERROR("transport {}: member {} at {} refused our stream: {}", Self(), id_, target_,
                 text);
    } else if (was_connected || !failing_) {
      BLOG_WARN("transport {}: stream to member {} at {} ended: {}", Self(), id_, target_, text);
    } else {
      BLOG_DEBUG("transport {}: stream to member {} at {} ended: {}", Self(), id_, target_, text);
    }
    failing_ = true;
  }

  Transport* const owner_;
  const NodeId id_;

  mutable std::mutex mu_;
  std::condition_variable done_cv_;  // Signalled when stream_ becomes null.
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<peer::Peer::Stub> stub_;
  std::deque<Queued> normal_;
  std::deque<Queued> snapshots_;  // kSnapshot messages: their own lane, see FillBatchLocked.
  uint64_t queued_bytes_ = 0;
  OutStream* stream_ = nullptr;  // Until its OnDone.
  bool stream_live_ = false;     // stream_ carries our hold: operations may start on it.
  bool write_in_flight_ = false;
  bool closed_ = true;  // No streams: the transport is stopped or the peer is being removed.
  bool ever_connected_ = false;
  bool failing_ = false;  // The last stream failed; repeated failures log at debug level.
  bool refused_ = false;  // The last stream was refused: reconnecting is not news.
  int backoff_ms_ = 1;
  Clock::time_point established_at_;  // When the current stream was established.
  Clock::time_point next_attempt_;
  std::minstd_rand rng_;  // Backoff jitter.
  PeerStats stats_;
};

void Transport::OutStream::OnReadInitialMetadataDone(bool ok) { link_->OnConnected(this, ok); }
void Transport::OutStream::OnReadDone(bool ok) { link_->OnReadDone(this, ok); }
void Transport::OutStream::OnWriteDone(bool ok) { link_->OnWriteDone(this, ok); }
void Transport::OutStream::OnDone(const grpc::Status& status) {
  // The stream is deleted before the link hears of it: its ClientContext holds a reference to the
  // channel, and once the link hears, a Close may return and the link drop the channel. The last
  // reference to a grpc::Channel must not go on a gRPC callback thread: gRPC 1.51 then joins that
  // thread from itself and goes on using the completion queue it freed (seen as "assertion failed:
  // prior > 0" or a double free in grpc_cq_internal_unref at exit).
  PeerLink* link = link_;
  const grpc::Status copy = status;
  const auto id = reinterpret_cast<uintptr_t>(this);
  delete this;  // gRPC touches the reactor no more after OnDone.
  link->OnStreamDone(id, copy);
}

// ---------------------------------------------------------------------------------------------
// Receiving side.

class Transport::Receiver : public peer::Peer::CallbackService {
 public:
  explicit Receiver(Transport* owner) : owner_(owner) {}

  grpc::ServerBidiReactor<peer::Batch, peer::StreamAck>* Stream(
      grpc::CallbackServerContext* context) override {
    Count(&ReceiveStats::streams, 1);
    return new InStream(this, context->peer());
  }

 private:
  // One inbound stream: reads a batch, checks it, hands it over, reads the next.
  class InStream : public grpc::ServerBidiReactor<peer::Batch, peer::StreamAck> {
   public:
    InStream(Receiver* receiver, std::string peer) : receiver_(receiver), peer_(std::move(peer)) {
      StartSendInitialMetadata();  // Tells the sender the stream is established.
      StartRead(&batch_);
    }
    void OnReadDone(bool ok) override {
      if (!ok) {  // The sender ended or cancelled the stream.
        Finish(grpc::Status::OK);
        return;
      }
      grpc::Status status = receiver_->Accept(&batch_, peer_);
      if (!status.ok()) {
        Finish(status);
        return;
      }
      batch_.Clear();
      StartRead(&batch_);
    }
    void OnDone() override { delete this; }

   private:
    Receiver* const receiver_;
    const std::string peer_;  // The sender's address, for logs.
    peer::Batch batch_;
  };

  // Checks that the batch is for this cluster and member, decodes it, and delivers it whole; a
  // batch with any bad message is refused whole.
  grpc::Status Accept(peer::Batch* batch, const std::string& address) {
    const Options& o = owner_->options_;
    const peer::BatchHeader& h = batch->header();
    std::string refusal;
    if (h.cluster_id() != o.cluster_id) {
      refusal = fmt::format(
          "batch from member {} at {} is for cluster {:x}, but this member (id {}) is in "
          "cluster {:x}",
          h.from(), address, h.cluster_id(), o.self, o.cluster_id);
    } else if (h.to() != o.self) {
      refusal =
          fmt::format("batch from member {} at {} is addressed to member {}, but this is member {}",
                      h.from(), address, h.to(), o.self);
    }
    if (!refusal.empty()) {
      BLOG_ERROR("transport {}: refused a stream: {}", o.self, refusal);
      Count(&ReceiveStats::refused_batches, 1);
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, refusal);
    }
    std::vector<Message> messages;
    messages.reserve(batch->messages_size());
    for (int i = 0; i < batch->messages_size(); ++i) {
      Result<Message> m = DecodeMessage(std::move(*batch->mutable_messages(i)));
      Status bad = m.ok() ? Status::Ok() : m.status();
      if (bad.ok() && (m->from != h.from() || m->to != h.to())) {
        bad = Status::InvalidArgument(
            fmt::format("message {}->{} in a batch {}->{}", m->from, m->to, h.from(), h.to()));
      }
      if (!bad.ok()) {
        const std::string text = fmt::format("message {} of a batch from member {} at {}: {}", i,
                                             h.from(), address, bad.ToString());
        BLOG_ERROR("transport {}: refused a stream: {}", o.self, text);
        Count(&ReceiveStats::invalid_batches, 1);
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, text);
      }
      messages.push_back(std::move(m).value());
    }
    Count(&ReceiveStats::batches, 1);
    Count(&ReceiveStats::messages, messages.size());
    owner_->Deliver(std::move(messages));
    for (std::string& payload : *batch->mutable_member_messages()) {
      owner_->DeliverMember(h.from(), std::move(payload));
    }
    return grpc::Status::OK;
  }

  void Count(uint64_t ReceiveStats::*field, uint64_t n) {
    std::lock_guard lock(owner_->receive_mu_);
    owner_->receive_stats_.*field += n;
  }

  Transport* const owner_;
};

// ---------------------------------------------------------------------------------------------
// Transport.

Transport::Transport(Options options, Handler handler, MemberHandler member_handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      member_handler_(std::move(member_handler)) {}

Transport::~Transport() {
  Stop();
  std::lock_guard lock(mu_);
  peers_.clear();  // All closed by Stop (or never opened).
}

Status Transport::Start() {
  std::lock_guard lifecycle(lifecycle_mu_);
  RETURN_IF_ERROR(options_.Validate());
  if (!handler_) return Status::InvalidArgument("transport: no handler for received messages");
  {
    std::lock_guard lock(mu_);
    if (running_) return Status::FailedPrecondition("transport: already running");
  }
  ASSIGN_OR_RETURN(std::string address, ParsePeerUrl(options_.listen_url));

  auto receiver = std::make_unique<Receiver>(this);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(receiver.get());
  for (grpc::Service* service : options_.extra_services) builder.RegisterService(service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(options_.max_message_bytes));
  builder.SetMaxSendMessageSize(64 << 10);
  // Two members on one port is a configuration error, not load balancing.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, kInboundStreamsPerConnectionMax);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kKeepaliveTimeMs / 2);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) {
    return Status::Unavailable("transport: cannot listen on " + options_.listen_url +
                               " (address in use or not local?)");
  }

  {
    std::lock_guard lock(mu_);
    running_ = true;
    port_ = port;
    host_ = address.substr(0, address.rfind(':'));
    server_ = std::move(server);
    receiver_ = std::move(receiver);
    for (auto& [id, link] : peers_) link->Open();
  }
  {
    std::lock_guard lock(loop_mu_);
    loop_stop_ = false;
    loop_wake_ = true;
  }
  loop_thread_ = std::thread([this] {
    SetThreadName("ballot-reconnct");
    ReconnectLoop();
  });
  BLOG_INFO("transport {}: listening on {} (cluster {:x})", options_.self, url(),
            options_.cluster_id);
  return Status::Ok();
}

void Transport::Stop() {
  std::lock_guard lifecycle(lifecycle_mu_);
  {
    std::lock_guard lock(mu_);
    if (!running_) return;
    running_ = false;
  }
  {
    std::lock_guard lock(loop_mu_);
    loop_stop_ = true;
  }
  loop_cv_.notify_all();
  loop_thread_.join();

  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<Receiver> receiver;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, link] : peers_) link->Close(/*drop_queue=*/true);
    server = std::move(server_);
    receiver = std::move(receiver_);
    port_ = 0;
  }
  // Cancels the inbound streams at once and returns when their reactors are done; the receiver
  // (the service) must outlive the server.
  server->Shutdown(std::chrono::system_clock::now());
  server->Wait();
  server.reset();
  receiver.reset();
  BLOG_INFO("transport {}: stopped", options_.self);
}

bool Transport::running() const {
  std::lock_guard lock(mu_);
  return running_;
}

int Transport::port() const {
  std::lock_guard lock(mu_);
  return port_;
}

std::string Transport::url() const {
  std::lock_guard lock(mu_);
  if (!running_) return "";
  return "http://" + host_ + ":" + std::to_string(port_);
}

Status Transport::AddPeer(NodeId id, std::string_view url) {
  if (id == consensus::kNoNode || id == options_.self) {
    return Status::InvalidArgument("transport: cannot add member " + std::to_string(id) +
                                   " as a peer");
  }
  ASSIGN_OR_RETURN(std::string target, ParsePeerUrl(url));
  {
    std::lock_guard lock(mu_);
    if (peers_.count(id) > 0) {
      return Status::AlreadyExists("transport: member " + std::to_string(id) +
                                   " is already a peer");
    }
    auto link = std::make_unique<PeerLink>(this, id, std::move(target));
    if (running_) link->Open();
    peers_.emplace(id, std::move(link));
  }
  WakeReconnectLoop();
  return Status::Ok();
}

Status Transport::UpdatePeer(NodeId id, std::string_view url) {
  ASSIGN_OR_RETURN(std::string target, ParsePeerUrl(url));
  {
    std::lock_guard lock(mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) {
      return Status::NotFound("transport: member " + std::to_string(id) + " is not a peer");
    }
    PeerLink& link = *it->second;
    if (link.target() == target) return Status::Ok();  // Nothing to reopen.
    link.Close(/*drop_queue=*/false);
    link.SetTarget(std::move(target));
    if (running_) link.Open();
  }
  WakeReconnectLoop();
  return Status::Ok();
}

Status Transport::RemovePeer(NodeId id) {
  std::lock_guard lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) {
    return Status::NotFound("transport: member " + std::to_string(id) + " is not a peer");
  }
  it->second->Close(/*drop_queue=*/true);
  peers_.erase(it);
  return Status::Ok();
}

void Transport::Send(std::vector<Message> messages) {
  // Encode outside any lock: the byte fields are moved, not copied.
  std::map<NodeId, std::vector<PeerLink::Queued>> by_peer;
  uint64_t unroutable = 0;
  for (Message& m : messages) {
    if (m.from == consensus::kNoNode) m.from = options_.self;
    if (m.from != options_.self || m.to == options_.self || m.to == consensus::kNoNode) {
      BLOG_DEBUG("transport {}: not sending {}", options_.self, m.ToString());
      ++unroutable;
      continue;
    }
    const NodeId to = m.to;
    PeerLink::Queued q;
    q.snapshot = m.type == MessageType::kSnapshot;
    q.message = std::make_unique<peer::Message>();
    EncodeMessage(std::move(m), q.message.get());
    q.bytes = q.message->ByteSizeLong() + kMessageFramingBytesMax;
    by_peer[to].push_back(std::move(q));
  }
  std::lock_guard lock(mu_);
  for (auto& [to, queued] : by_peer) {
    auto it = peers_.find(to);
    if (it == peers_.end()) {
      BLOG_DEBUG("transport {}: no peer {}; dropped {} messages", options_.self, to, queued.size());
      unroutable += queued.size();
      continue;
    }
    it->second->Enqueue(std::move(queued));
  }
  dropped_unroutable_ += unroutable;
}

void Transport::SendMember(NodeId to, std::string payload) {
  PeerLink::Queued q;
  q.bytes = payload.size() + kMessageFramingBytesMax;
  q.member_payload = std::move(payload);
  std::lock_guard lock(mu_);
  auto it = peers_.find(to);
  if (it == peers_.end()) {
    BLOG_DEBUG("transport {}: no peer {}; dropped a member message", options_.self, to);
    ++dropped_unroutable_;
    return;
  }
  std::vector<PeerLink::Queued> one;
  one.push_back(std::move(q));
  it->second->Enqueue(std::move(one));
}

std::optional<PeerStats> Transport::GetPeerStats(NodeId id) const {
  std::lock_guard lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return std::nullopt;
  return it->second->Stats();
}

std::map<NodeId, PeerStats> Transport::GetStats() const {
  std::lock_guard lock(mu_);
  std::map<NodeId, PeerStats> out;
  for (const auto& [id, link] : peers_) out.emplace(id, link->Stats());
  return out;
}

ReceiveStats Transport::GetReceiveStats() const {
  std::lock_guard lock(receive_mu_);
  return receive_stats_;
}

uint64_t Transport::dropped_unroutable() const {
  std::lock_guard lock(mu_);
  return dropped_unroutable_;
}

void Transport::ReconnectLoop() {
  std::unique_lock loop_lock(loop_mu_);
  while (!loop_stop_) {
    loop_wake_ = false;
    loop_lock.unlock();
    const Clock::time_point now = Clock::now();
    Clock::time_point next = now + kReconnectScanInterval;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, link] : peers_) next = std::min(next, link->MaybeConnect(now));
    }
    loop_lock.lock();
    if (!loop_stop_ && !loop_wake_) loop_cv_.wait_until(loop_lock, next);
  }
}

void Transport::WakeReconnectLoop() {
  {
    std::lock_guard lock(loop_mu_);
    loop_wake_ = true;
  }
  loop_cv_.notify_all();
}

void Transport::Deliver(std::vector<Message> messages) {
  std::lock_guard lock(handler_mu_);
  handler_(std::move(messages));
}

void Transport::DeliverMember(NodeId from, std::string payload) {
  if (member_handler_) member_handler_(from, std::move(payload));
}

}  // namespace ballot::transport
