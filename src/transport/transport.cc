#include "transport/transport.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <random>
#include <utility>

#include "base/logging.h"
#include "base/thread_name.h"
#include "peer.pb.h"
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

// The wire (docs/transport.md, "Connections"). A sender opens a TCP connection and writes the
// magic, then its hello: cluster id, its id, the receiver's id (big-endian u64 each). The receiver
// answers one byte, kAccepted, or a refusal. Then the sender writes frames: a big-endian u32
// length and a peer::Batch of that many bytes. The receiver writes nothing more unless it ends the
// connection on a bad frame, when it writes a refusal first. A refusal is kRefused, a u32 status
// code (StatusCode), a u32 length and that much text.
constexpr char kMagic[8] = {'B', 'A', 'L', 'L', 'O', 'T', 'P', '1'};
constexpr size_t kHelloBytes = 24;
constexpr size_t kFrameHeaderBytes = 4;
constexpr uint8_t kAccepted = 0;
constexpr uint8_t kRefused = 1;
constexpr size_t kRefusalHeaderBytes = 9;
constexpr uint32_t kRefusalTextMax = 4096;

// A peer that does not complete the connection and hello within this is given up on (a listener
// that never accepts, a member that hangs).
constexpr auto kConnectTimeout = std::chrono::seconds(3);
// How long an inbound connection may take to say what it is.
constexpr int kFirstBytesTimeoutMs = 10'000;
// After refusing, the receiver reads what the sender still writes for up to this long before
// closing, so that the refusal reaches it instead of being cut off by a reset.
constexpr int kRefusalLingerMs = 2'000;
// TCP keepalive and user timeout: a connection whose peer's machine is gone or partitioned
// breaks within about 15 s, so its queue stops growing behind a dead connection.
constexpr int kKeepaliveIdleS = 10;
constexpr int kKeepaliveIntervalS = 2;
constexpr int kKeepaliveCount = 3;
constexpr unsigned kUserTimeoutMs = 15'000;
// An inbound connection reads up to this much at a time.
constexpr size_t kReadChunkBytes = 256 << 10;
// Inbound connections served at once; more are closed at accept.
constexpr size_t kInboundConnectionsMax = 64;
// The connection thread looks at every peer at least this often, whatever it was told.
constexpr auto kScanInterval = std::chrono::milliseconds(500);

// Big-endian unsigned integers of the wire.
template <typename T>
void PutBigEndian(std::string* out, T v) {
  for (int shift = 8 * (sizeof(T) - 1); shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>(v >> shift));
  }
}
template <typename T>
T GetBigEndian(const char* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | static_cast<uint8_t>(p[i]));
  return v;
}
void PutU64(std::string* out, uint64_t v) { PutBigEndian(out, v); }
void PutU32(std::string* out, uint32_t v) { PutBigEndian(out, v); }
uint64_t GetU64(const char* p) { return GetBigEndian<uint64_t>(p); }
uint32_t GetU32(const char* p) { return GetBigEndian<uint32_t>(p); }

std::string Refusal(const Status& status) {
  std::string text = status.message().substr(0, kRefusalTextMax);
  std::string out(1, static_cast<char>(kRefused));
  PutU32(&out, static_cast<uint32_t>(status.code()));
  PutU32(&out, static_cast<uint32_t>(text.size()));
  return out + text;
}

// Parses a refusal at the start of `in`: nullopt while incomplete; a malformed one reads as
// an unknown error.
std::optional<Status> ParseRefusal(std::string_view in) {
  if (in.size() < kRefusalHeaderBytes) return std::nullopt;
  const uint32_t code = GetU32(in.data() + 1);
  const uint32_t length = GetU32(in.data() + 5);
  if (static_cast<uint8_t>(in[0]) != kRefused || length > kRefusalTextMax || code == 0 ||
      code > static_cast<uint32_t>(StatusCode::kDataLoss)) {
    return Status(StatusCode::kUnknown, "the peer sent something that is not a refusal");
  }
  if (in.size() < kRefusalHeaderBytes + length) return std::nullopt;
  return Status(static_cast<StatusCode>(code), std::string(in.substr(kRefusalHeaderBytes, length)));
}

std::string Errno(const char* what, int err) { return std::string(what) + ": " + strerror(err); }

void SetSocketOptions(int fd) {
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &kKeepaliveIdleS, sizeof(kKeepaliveIdleS));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &kKeepaliveIntervalS, sizeof(kKeepaliveIntervalS));
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &kKeepaliveCount, sizeof(kKeepaliveCount));
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &kUserTimeoutMs, sizeof(kUserTimeoutMs));
}

// "host:port" (host possibly "[v6]") -> its addresses.
Result<std::vector<sockaddr_storage>> Resolve(const std::string& address, bool passive) {
  const size_t colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  // etcd's default URLs say localhost: listen and connect on the same address, whatever order
  // the resolver gives ::1 and 127.0.0.1 in.
  if (host == "localhost") host = "127.0.0.1";
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = passive ? AI_PASSIVE : 0;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) {
    return Status::Unavailable("cannot resolve " + address + ": " + gai_strerror(rc));
  }
  std::vector<sockaddr_storage> out;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    sockaddr_storage s{};
    std::memcpy(&s, a->ai_addr, a->ai_addrlen);
    out.push_back(s);
  }
  ::freeaddrinfo(found);
  if (out.empty()) return Status::Unavailable("no address for " + address);
  return out;
}

socklen_t AddressLength(const sockaddr_storage& a) {
  return a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

int PortOf(const sockaddr_storage& a) {
  return a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port)
                                 : ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
}

// Reads exactly n bytes, waiting at most timeout_ms for each read. False on EOF, error, timeout.
bool ReadExactly(int fd, char* p, size_t n, int timeout_ms) {
  while (n > 0) {
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return false;
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t w = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    done += static_cast<size_t>(w);
  }
  return true;
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

// The outbound half for one peer: its queues, its connection and its counters. Everything here
// runs under the link's mutex: Send's callers write frames on their own thread when the
// connection is idle (non-blocking), and the transport's connection thread does the rest
// (connecting, the hello, the rest of a frame the socket had no room for, reading a refusal).
class Transport::PeerLink {
 public:
  struct Queued {
    std::unique_ptr<peer::Message> message;  // Null for a member message.
    std::string member_payload;
    uint64_t bytes = 0;  // Encoded, with framing.
    bool snapshot = false;
  };
  // What the connection thread should wait for on this link's socket.
  struct PollSpec {
    int fd = -1;
    short events = 0;
    uint64_t generation = 0;
    std::string connect_to;  // Not empty: the link wants a connection to this address.
  };

  PeerLink(Transport* owner, NodeId id, std::string target)
      : owner_(owner), id_(id), target_(std::move(target)), rng_(id) {}
  ~PeerLink() {
    std::lock_guard lock(mu_);
    CloseSocketLocked();
  }

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
    WriteLocked();
  }

  // Allows connections again and asks for one at once.
  void Open() {
    std::lock_guard lock(mu_);
    closed_ = false;
    backoff_ms_ = owner_->options_.reconnect_backoff_initial_ms;
    next_attempt_ = Clock::now();
  }

  // Closes the connection (at once: nothing waits for the peer). With `drop_queue`, drops what is
  // queued.
  void Close(bool drop_queue) {
    std::lock_guard lock(mu_);
    closed_ = true;
    CloseSocketLocked();
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
    target_ = std::move(target);
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

  // On the connection thread: starts a connection when none is open and the backoff has passed,
  // gives up on one that took too long, and says what to wait for. `next` is lowered to when the
  // link wants to be looked at again.
  PollSpec Prepare(Clock::time_point now, Clock::time_point* next) {
    std::lock_guard lock(mu_);
    if (closed_) return {};
    if (state_ == State::kIdle) {
      *next = std::min(*next, next_attempt_);
      PollSpec spec;
      if (now >= next_attempt_) spec.connect_to = target_;  // Resolved outside the locks.
      return spec;
    }
    if (state_ != State::kReady) {
      if (now >= connect_deadline_) {
        FailLocked(Status::Unavailable("timed out connecting to " + target_), false);
        *next = std::min(*next, next_attempt_);
        return {};
      }
      *next = std::min(*next, connect_deadline_);
    }
    PollSpec spec;
    spec.fd = fd_;
    spec.generation = generation_;
    spec.events = POLLIN;
    if (state_ == State::kConnecting || !out_.empty()) spec.events |= POLLOUT;
    return spec;
  }

  // On the connection thread: `revents` happened on the socket of connection `generation`.
  void OnEvents(uint64_t generation, short revents) {
    std::lock_guard lock(mu_);
    if (generation != generation_ || fd_ < 0) return;  // Closed or replaced meanwhile.
    if (state_ == State::kConnecting) {
      if ((revents & (POLLOUT | POLLERR | POLLHUP)) == 0) return;
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) return FailLocked(Status::Unavailable(Errno("connect", err)), false);
      // The hello fits an empty socket buffer: one send.
      std::string hello(kMagic, sizeof(kMagic));
      PutU64(&hello, owner_->options_.cluster_id);
      PutU64(&hello, owner_->options_.self);
      PutU64(&hello, id_);
      const ssize_t w = ::send(fd_, hello.data(), hello.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w != static_cast<ssize_t>(hello.size())) {
        return FailLocked(Status::Unavailable(Errno("writing the hello", errno)), false);
      }
      state_ = State::kHello;
      return;
    }
    if ((revents & (POLLIN | POLLERR | POLLHUP)) != 0 && !ReadLocked()) return;
    if ((revents & POLLOUT) != 0 && state_ == State::kReady) WriteLocked();
  }

  // On the connection thread: starts connecting to `target` (resolved to `addresses`), unless the
  // link closed, connected or changed its target meanwhile.
  void Connect(const std::string& target, const Result<std::vector<sockaddr_storage>>& addresses) {
    std::lock_guard lock(mu_);
    if (closed_ || state_ != State::kIdle || target != target_) return;
    if (!addresses.ok()) return FailLocked(addresses.status(), false);
    StartConnectLocked(addresses->front(), Clock::now());
  }

 private:
  enum class State {
    kIdle,        // No connection.
    kConnecting,  // connect() in progress.
    kHello,       // Hello sent, waiting for the answer.
    kReady,       // Accepted: frames may be written.
  };

  NodeId Self() const { return owner_->options_.self; }

  void StartConnectLocked(const sockaddr_storage& a, Clock::time_point now) {
    const int fd = ::socket(a.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return FailLocked(Status::Unavailable(Errno("socket", errno)), false);
    SetSocketOptions(fd);
    fd_ = fd;
    ++generation_;
    in_.clear();
    connect_deadline_ = now + kConnectTimeout;
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), AddressLength(a)) != 0 &&
        errno != EINPROGRESS) {
      return FailLocked(Status::Unavailable(Errno("connect", errno)), false);
    }
    state_ = State::kConnecting;
  }

  // Reads what the peer wrote: the hello's answer, or a refusal. False once the connection ended.
  bool ReadLocked() {
    char buf[1024];
    while (true) {
      const ssize_t r = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (r > 0) {
        in_.append(buf, static_cast<size_t>(r));
        if (in_.size() > kRefusalHeaderBytes + kRefusalTextMax + 1) break;
        continue;
      }
      if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      if (r < 0 && errno == EINTR) continue;
      // End of stream or error: a refusal read before it says why.
      if (state_ == State::kHello && !in_.empty() && static_cast<uint8_t>(in_[0]) == kAccepted) {
        in_.erase(0, 1);
      }
      std::optional<Status> why = in_.empty() ? std::nullopt : ParseRefusal(in_);
      if (why) {
        FailLocked(*why, true);
      } else if (r == 0) {
        FailLocked(Status::Unavailable("the peer closed the connection"), false);
      } else {
        FailLocked(Status::Unavailable(Errno("read", errno)), false);
      }
      return false;
    }
    if (state_ == State::kHello && !in_.empty() && static_cast<uint8_t>(in_[0]) == kAccepted) {
      in_.erase(0, 1);
      state_ = State::kReady;
      if (ever_connected_) ++stats_.reconnects;
      ever_connected_ = true;
      stats_.connected = true;
      established_at_ = Clock::now();
      if (failing_ && !refused_) {
        BLOG_INFO("transport {}: connected to member {} at {}", Self(), id_, target_);
      }
      failing_ = false;
      WriteLocked();
    }
    if (!in_.empty()) {  // Anything else is a refusal: wait for all of it.
      if (std::optional<Status> why = ParseRefusal(in_)) {
        FailLocked(*why, true);
        return false;
      }
    }
    return fd_ >= 0;
  }

  // Writes queued messages while the socket takes them; what it does not take waits for the
  // connection thread (POLLOUT). Only once the peer accepted the connection: until then messages
  // wait in the bounded queue, where they are counted.
  void WriteLocked() {
    while (state_ == State::kReady) {
      if (out_.empty()) {
        if (normal_.empty() && snapshots_.empty()) return;
        FillFrameLocked();
      }
      const ssize_t w = ::send(fd_, out_.data() + out_written_, out_.size() - out_written_,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        owner_->WakeConnectionLoop();  // To wait for room.
        return;
      }
      if (w < 0) return FailLocked(Status::Unavailable(Errno("write", errno)), false);
      out_written_ += static_cast<size_t>(w);
      if (out_written_ < out_.size()) continue;
      stats_.sent_messages += out_messages_;
      stats_.sent_bytes += out_bytes_;
      ++stats_.batches;
      out_.clear();
      out_written_ = 0;
      out_messages_ = 0;
      out_bytes_ = 0;
    }
  }

  // A batch holds at most one snapshot chunk, first, then ordinary messages in order while they
  // fit max_batch_bytes; so a heartbeat queued behind a snapshot transfer waits one batch at most.
  // A batch holds at least one message, whatever its size.
  void FillFrameLocked() {
    const Options& o = owner_->options_;
    peer::Batch batch;
    peer::BatchHeader* header = batch.mutable_header();
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
        batch.add_member_messages(std::move(q.member_payload));
      } else {
        batch.mutable_messages()->AddAllocated(q.message.release());
      }
      lane.pop_front();
    };
    if (!snapshots_.empty()) take(snapshots_);
    // The header too must fit the send limit (Enqueue let in no message that would not).
    const uint64_t budget = std::min(o.max_batch_bytes, o.max_message_bytes - kBatchHeaderBytesMax);
    while (!normal_.empty() && (count == 0 || bytes + normal_.front().bytes <= budget)) {
      take(normal_);
    }
    out_.clear();
    PutU32(&out_, static_cast<uint32_t>(batch.ByteSizeLong()));
    batch.AppendToString(&out_);
    out_written_ = 0;
    out_messages_ = count;
    out_bytes_ = bytes;
  }

  void CloseSocketLocked() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    ++generation_;
    state_ = State::kIdle;
    stats_.connected = false;
    in_.clear();
    // A frame cut off may or may not have arrived whole; the engine cannot tell either.
    stats_.dropped_messages += out_messages_;
    out_.clear();
    out_written_ = 0;
    out_messages_ = 0;
    out_bytes_ = 0;
  }

  // The connection ended (or never began) for `why`; `refused`: the peer said so.
  void FailLocked(const Status& why, bool refused) {
    const bool was_connected = state_ == State::kReady;
    CloseSocketLocked();
    ++stats_.stream_failures;
    stats_.last_error = why.ToString();
    refused_ = refused;
    if (refused) {
      BLOG_ERROR("transport {}: member {} at {} refused our connection: {}", Self(), id_, target_,
                 stats_.last_error);
    } else if (was_connected || !failing_) {
      BLOG_WARN("transport {}: connection to member {} at {} ended: {}", Self(), id_, target_,
                stats_.last_error);
    } else {
      BLOG_DEBUG("transport {}: connection to member {} at {} failed: {}", Self(), id_, target_,
                 stats_.last_error);
    }
    failing_ = true;
    // Only a connection that lasted resets the backoff: one the peer refuses right after
    // accepting it (wrong cluster, too large a batch) must not be retried at the initial rate.
    const Options& o = owner_->options_;
    if (was_connected &&
        Clock::now() - established_at_ >= std::chrono::milliseconds(o.reconnect_backoff_max_ms)) {
      backoff_ms_ = o.reconnect_backoff_initial_ms;
    }
    const int jitter_ms = static_cast<int>(rng_() % (backoff_ms_ / 4 + 1));
    next_attempt_ = Clock::now() + std::chrono::milliseconds(backoff_ms_ + jitter_ms);
    backoff_ms_ = std::min(backoff_ms_ * 2, o.reconnect_backoff_max_ms);
    owner_->WakeConnectionLoop();
  }

  Transport* const owner_;
  const NodeId id_;

  mutable std::mutex mu_;
  std::string target_;
  std::deque<Queued> normal_;
  std::deque<Queued> snapshots_;  // kSnapshot messages: their own lane, see FillFrameLocked.
  uint64_t queued_bytes_ = 0;
  int fd_ = -1;
  uint64_t generation_ = 0;  // Changes with every socket, so a late event finds nothing.
  State state_ = State::kIdle;
  std::string in_;   // Read from the peer: the hello's answer, a refusal.
  std::string out_;  // The frame being written, and how much of it the socket took.
  size_t out_written_ = 0;
  uint64_t out_messages_ = 0;
  uint64_t out_bytes_ = 0;
  bool closed_ = true;  // No connections: the transport is stopped or the peer is being removed.
  bool ever_connected_ = false;
  bool failing_ = false;  // The last connection failed; repeated failures log at debug level.
  bool refused_ = false;  // The last connection was refused: reconnecting is not news.
  int backoff_ms_ = 1;
  Clock::time_point established_at_;  // When the current connection was accepted.
  Clock::time_point connect_deadline_;
  Clock::time_point next_attempt_;
  std::minstd_rand rng_;  // Backoff jitter.
  PeerStats stats_;
};

// ---------------------------------------------------------------------------------------------
// Receiving side.

// One inbound connection, on its own thread: says what it is (a peer's frames, or HTTP/2 for the
// gRPC services of the peer port), then reads frames, checks them and hands them over.
class Transport::Inbound {
 public:
  Inbound(Transport* owner, int fd, std::string address)
      : owner_(owner), fd_(fd), address_(std::move(address)) {
    thread_ = std::thread([this] {
      SetThreadName("ballot-peer-in");
      Run();
      {
        std::lock_guard lock(mu_);
        if (!handed_to_grpc_) ::close(fd_);
        closed_ = true;
      }
      done_ = true;
    });
  }
  ~Inbound() {
    Shutdown();
    thread_.join();
  }
  // Ends the connection's reads at once (Stop).
  void Shutdown() {
    std::lock_guard lock(mu_);
    if (!closed_ && !handed_to_grpc_) ::shutdown(fd_, SHUT_RDWR);
    shut_down_ = true;
  }
  bool done() const { return done_; }

 private:
  void Run() {
    char first[sizeof(kMagic)];
    if (!PeekFirstBytes(first)) return;
    // Not a peer's frames: HTTP/2, for the gRPC services of the peer port (gRPC rejects
    // anything else itself). The bytes were only peeked: gRPC reads the connection from its start.
    if (std::memcmp(first, kMagic, sizeof(kMagic)) != 0) return HandOff();
    if (!ReadExactly(fd_, first, sizeof(first), kFirstBytesTimeoutMs)) return;
    owner_->Count(&ReceiveStats::streams, 1);
    char hello[kHelloBytes];
    if (!ReadExactly(fd_, hello, sizeof(hello), kFirstBytesTimeoutMs)) return;
    const Options& o = owner_->options_;
    cluster_id_ = GetU64(hello);
    from_ = GetU64(hello + 8);
    const uint64_t to = GetU64(hello + 16);
    if (Status s = owner_->CheckHeader(cluster_id_, from_, to, address_); !s.ok()) {
      return Refuse(s);
    }
    const char accepted = static_cast<char>(kAccepted);
    if (::send(fd_, &accepted, 1, MSG_NOSIGNAL) != 1) return;
    // Frames are read in chunks of what the socket has (one recv for many small frames), from a
    // buffer that grows to the largest frame seen.
    std::string buf(kReadChunkBytes, '\0');
    size_t begin = 0;
    size_t end = 0;
    peer::Batch batch;
    // Until `n` bytes are buffered from `begin`; false when the connection ended.
    auto fill = [&](size_t n) {
      if (buf.size() - begin < n) {  // Move the partial frame to the front, and make room.
        std::memmove(buf.data(), buf.data() + begin, end - begin);
        end -= begin;
        begin = 0;
        if (buf.size() < n) buf.resize(n);
      }
      while (end - begin < n) {
        const ssize_t r = ::recv(fd_, buf.data() + end, buf.size() - end, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        end += static_cast<size_t>(r);
      }
      return true;
    };
    while (true) {
      if (begin == end) begin = end = 0;
      if (!fill(kFrameHeaderBytes)) return;
      const uint32_t length = GetU32(buf.data() + begin);
      if (length > o.max_message_bytes) {
        return Refuse(Status::ResourceExhausted(
            fmt::format("a batch of {} bytes from member {} at {} is larger than this member's "
                        "max_message_bytes {}",
                        length, from_, address_, o.max_message_bytes)));
      }
      if (!fill(kFrameHeaderBytes + length)) return;
      const char* frame = buf.data() + begin + kFrameHeaderBytes;
      begin += kFrameHeaderBytes + length;
      if (!batch.ParseFromArray(frame, static_cast<int>(length))) {
        owner_->Count(&ReceiveStats::invalid_batches, 1);
        return Refuse(Status::InvalidArgument(
            fmt::format("an undecodable batch from member {} at {}", from_, address_)));
      }
      const peer::BatchHeader& h = batch.header();
      if (h.cluster_id() != cluster_id_ || h.from() != from_ || h.to() != o.self) {
        if (Status s = owner_->CheckHeader(h.cluster_id(), h.from(), h.to(), address_); !s.ok()) {
          return Refuse(s);
        }
        owner_->Count(&ReceiveStats::invalid_batches, 1);
        return Refuse(Status::InvalidArgument(
            fmt::format("a batch from member {} on the connection of member {} at {}", h.from(),
                        from_, address_)));
      }
      if (Status s = owner_->AcceptBatch(&batch, address_); !s.ok()) return Refuse(s);
      batch.Clear();
    }
  }

  // Tells the sender why, then closes once it has read that (or after a while).
  void Refuse(const Status& why) {
    if (!WriteAll(fd_, Refusal(why))) return;
    ::shutdown(fd_, SHUT_WR);
    char sink[4096];
    const auto until = Clock::now() + std::chrono::milliseconds(kRefusalLingerMs);
    while (Clock::now() < until) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, kRefusalLingerMs) <= 0) return;
      if (::recv(fd_, sink, sizeof(sink), 0) <= 0) return;
    }
  }

  // Waits until the connection's first bytes are there, without consuming them.
  bool PeekFirstBytes(char* first) {
    const auto until = Clock::now() + std::chrono::milliseconds(kFirstBytesTimeoutMs);
    while (Clock::now() < until) {
      pollfd pfd{fd_, POLLIN, 0};
      if (::poll(&pfd, 1, kFirstBytesTimeoutMs) <= 0) return false;
      const ssize_t r = ::recv(fd_, first, sizeof(kMagic), MSG_PEEK);
      if (r == static_cast<ssize_t>(sizeof(kMagic))) return true;
      if (r <= 0) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // A part came: wait for more.
    }
    return false;
  }

  void HandOff() {
    std::lock_guard lock(mu_);
    if (shut_down_ || owner_->server_ == nullptr) return;  // Closed by the thread.
    ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) | O_NONBLOCK);
    grpc::AddInsecureChannelFromFd(owner_->server_.get(), fd_);
    handed_to_grpc_ = true;  // gRPC owns the socket now and closes it.
  }

  Transport* const owner_;
  const int fd_;
  const std::string address_;
  uint64_t cluster_id_ = 0;
  NodeId from_ = consensus::kNoNode;
  std::mutex mu_;  // Guards the socket's end: Stop may shut it down meanwhile.
  bool shut_down_ = false;
  bool closed_ = false;
  bool handed_to_grpc_ = false;
  std::atomic<bool> done_{false};
  std::thread thread_;
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

  ASSIGN_OR_RETURN(std::vector<sockaddr_storage> addresses, Resolve(address, /*passive=*/true));
  const sockaddr_storage& a = addresses.front();
  const int listen_fd = ::socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd < 0) return Status::Unavailable(Errno("transport: socket", errno));
  // Rebinding right after a restart (connections in TIME_WAIT) is fine; two members on one port
  // is not, and SO_REUSEADDR does not allow that on Linux.
  const int one = 1;
  ::setsockopt(listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_storage bound = a;
  socklen_t bound_len = sizeof(bound);
  if (::bind(listen_fd, reinterpret_cast<const sockaddr*>(&a), AddressLength(a)) != 0 ||
      ::listen(listen_fd, 64) != 0 ||
      ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&bound), &bound_len) != 0) {
    const int err = errno;
    ::close(listen_fd);
    return Status::Unavailable("transport: cannot listen on " + options_.listen_url + ": " +
                               strerror(err));
  }
  const int port = PortOf(bound);

  // The gRPC services of the peer port get the connections that are not a peer's frames.
  std::unique_ptr<grpc::Server> server;
  if (!options_.extra_services.empty()) {
    grpc::ServerBuilder builder;
    for (grpc::Service* service : options_.extra_services) builder.RegisterService(service);
    builder.SetMaxReceiveMessageSize(4 << 20);
    server = builder.BuildAndStart();
    if (server == nullptr) {
      ::close(listen_fd);
      return Status::Unavailable("transport: cannot start the peer port's gRPC services");
    }
  }
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  const int accept_wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

  {
    std::lock_guard lock(mu_);
    running_ = true;
    port_ = port;
    host_ = address.substr(0, address.rfind(':'));
    server_ = std::move(server);
    listen_fd_ = listen_fd;
    wake_fd_ = wake_fd;
    accept_wake_fd_ = accept_wake_fd;
    for (auto& [id, link] : peers_) link->Open();
  }
  {
    std::lock_guard lock(loop_mu_);
    loop_stop_ = false;
  }
  accept_thread_ = std::thread([this] {
    SetThreadName("ballot-peer-acc");
    AcceptLoop();
  });
  loop_thread_ = std::thread([this] {
    SetThreadName("ballot-peer-out");
    ConnectionLoop();
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
  WakeConnectionLoop();
  const uint64_t one = 1;
  (void)!::write(accept_wake_fd_, &one, sizeof(one));
  loop_thread_.join();
  accept_thread_.join();

  std::unique_ptr<grpc::Server> server;
  std::list<std::unique_ptr<Inbound>> inbound;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, link] : peers_) link->Close(/*drop_queue=*/true);
    port_ = 0;
  }
  {
    std::lock_guard lock(inbound_mu_);
    inbound.swap(inbound_);
  }
  for (auto& in : inbound) in->Shutdown();
  inbound.clear();  // Joins their threads: no handler call runs after this.
  {
    std::lock_guard lock(mu_);
    server = std::move(server_);
    ::close(listen_fd_);
    ::close(wake_fd_.exchange(-1));
    ::close(accept_wake_fd_);
    listen_fd_ = -1;
    accept_wake_fd_ = -1;
  }
  if (server != nullptr) {  // Ends the connections handed to gRPC at once.
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    server.reset();
  }
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
  WakeConnectionLoop();
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
  WakeConnectionLoop();
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

void Transport::ConnectionLoop() {
  std::vector<pollfd> fds;
  std::vector<std::pair<NodeId, uint64_t>> owners;  // Per entry of fds after the first.
  while (true) {
    {
      std::lock_guard lock(loop_mu_);
      if (loop_stop_) return;
    }
    const Clock::time_point now = Clock::now();
    Clock::time_point next = now + kScanInterval;
    fds.assign(1, pollfd{wake_fd_, POLLIN, 0});
    owners.clear();
    std::vector<std::pair<NodeId, std::string>> connects;
    {
      std::lock_guard lock(mu_);
      for (auto& [id, link] : peers_) {
        PeerLink::PollSpec spec = link->Prepare(now, &next);
        if (!spec.connect_to.empty()) connects.emplace_back(id, std::move(spec.connect_to));
        if (spec.fd < 0) continue;
        fds.push_back(pollfd{spec.fd, spec.events, 0});
        owners.emplace_back(id, spec.generation);
      }
    }
    if (!connects.empty()) {
      // A host name may take the resolver a while: no lock is held meanwhile.
      std::vector<Result<std::vector<sockaddr_storage>>> resolved;
      for (const auto& [id, target] : connects) resolved.push_back(Resolve(target, false));
      std::lock_guard lock(mu_);
      for (size_t i = 0; i < connects.size(); ++i) {
        auto it = peers_.find(connects[i].first);
        if (it != peers_.end()) it->second->Connect(connects[i].second, resolved[i]);
      }
      continue;  // Look again: the new sockets are to be polled.
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count();
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(wait, 0)));
    if (ready <= 0) continue;
    if (fds[0].revents != 0) {
      uint64_t drained = 0;
      (void)!::read(wake_fd_, &drained, sizeof(drained));
    }
    std::lock_guard lock(mu_);
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto it = peers_.find(owners[i - 1].first);
      if (it != peers_.end()) it->second->OnEvents(owners[i - 1].second, fds[i].revents);
    }
  }
}

void Transport::WakeConnectionLoop() {
  const uint64_t one = 1;
  const int fd = wake_fd_.load();
  if (fd >= 0) (void)!::write(fd, &one, sizeof(one));
}

void Transport::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {accept_wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(kScanInterval.count())) < 0 && errno != EINTR) return;
    {
      std::lock_guard lock(loop_mu_);
      if (loop_stop_) return;
    }
    {
      std::lock_guard lock(inbound_mu_);  // Joins the connections that ended.
      inbound_.remove_if([](const std::unique_ptr<Inbound>& in) { return in->done(); });
    }
    if ((fds[0].revents & POLLIN) == 0) continue;
    sockaddr_storage from{};
    socklen_t from_len = sizeof(from);
    const int fd =
        ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&from), &from_len, SOCK_CLOEXEC);
    if (fd < 0) continue;
    char host[NI_MAXHOST] = "?";
    char port[NI_MAXSERV] = "?";
    ::getnameinfo(reinterpret_cast<sockaddr*>(&from), from_len, host, sizeof(host), port,
                  sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
    SetSocketOptions(fd);
    std::lock_guard lock(inbound_mu_);
    if (inbound_.size() >= kInboundConnectionsMax) {
      BLOG_WARN("transport {}: closed a connection from {}: {} connections open already",
                options_.self, host, inbound_.size());
      ::close(fd);
      continue;
    }
    inbound_.push_back(
        std::make_unique<Inbound>(this, fd, std::string(host) + ":" + std::string(port)));
  }
}

Status Transport::CheckHeader(uint64_t cluster_id, NodeId from, NodeId to,
                              const std::string& address) {
  const Options& o = options_;
  std::string refusal;
  if (cluster_id != o.cluster_id) {
    refusal = fmt::format(
        "batch from member {} at {} is for cluster {:x}, but this member (id {}) is in "
        "cluster {:x}",
        from, address, cluster_id, o.self, o.cluster_id);
  } else if (to != o.self) {
    refusal =
        fmt::format("batch from member {} at {} is addressed to member {}, but this is member {}",
                    from, address, to, o.self);
  }
  if (refusal.empty()) return Status::Ok();
  BLOG_ERROR("transport {}: refused a connection: {}", o.self, refusal);
  Count(&ReceiveStats::refused_batches, 1);
  return Status::FailedPrecondition(refusal);
}

Status Transport::AcceptBatch(peer::Batch* batch, const std::string& address) {
  const peer::BatchHeader& h = batch->header();
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
      BLOG_ERROR("transport {}: refused a connection: {}", options_.self, text);
      Count(&ReceiveStats::invalid_batches, 1);
      return Status::InvalidArgument(text);
    }
    messages.push_back(std::move(m).value());
  }
  Count(&ReceiveStats::batches, 1);
  Count(&ReceiveStats::messages, messages.size());
  Deliver(std::move(messages));
  for (std::string& payload : *batch->mutable_member_messages()) {
    DeliverMember(h.from(), std::move(payload));
  }
  return Status::Ok();
}

void Transport::Count(uint64_t ReceiveStats::*field, uint64_t n) {
  std::lock_guard lock(receive_mu_);
  receive_stats_.*field += n;
}

void Transport::Deliver(std::vector<Message> messages) {
  std::lock_guard lock(handler_mu_);
  handler_(std::move(messages));
}

void Transport::DeliverMember(NodeId from, std::string payload) {
  if (member_handler_) member_handler_(from, std::move(payload));
}

}  // namespace ballot::transport
