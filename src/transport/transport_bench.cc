// ballot-transport-bench: messages/s and bytes/s between two transports on loopback.
//
// One sender, one receiver, in one process. The sender keeps at most a window of messages
// unacknowledged by the receiver's handler (below the per-peer queue bound, so nothing is dropped:
// the benchmark checks), in Send calls of 64 messages, like a leader's Ready. Each message is an
// append with one entry of the given size.
#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "base/logging.h"
#include "transport/transport.h"

namespace ballot::transport {
namespace {

using consensus::Entry;
using consensus::EntryType;
using consensus::Message;
using consensus::MessageType;

constexpr uint64_t kMessagesPerSend = 64;
constexpr uint64_t kWindowMessages = 2048;
constexpr uint64_t kWindowBytes = 32 << 20;

class Counter {
 public:
  void Add(uint64_t messages, uint64_t bytes) {
    std::lock_guard lock(mu_);
    messages_ += messages;
    bytes_ += bytes;
    cv_.notify_all();
  }
  // Waits until at least `messages` arrived or no progress for a second; returns the count.
  uint64_t WaitFor(uint64_t messages) {
    std::unique_lock lock(mu_);
    while (messages_ < messages) {
      const uint64_t before = messages_;
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return messages_ >= messages; });
      if (messages_ == before) break;
    }
    return messages_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t messages_ = 0;
  uint64_t bytes_ = 0;
};

void BM_Transfer(benchmark::State& state) {
  const uint64_t entry_bytes = state.range(0);
  Counter received;
  Transport::Options ro;
  ro.cluster_id = 1;
  ro.self = 2;
  Transport receiver(ro, [&](std::vector<Message> batch) {
    uint64_t bytes = 0;
    for (const Message& m : batch) bytes += m.SizeBytes();
    received.Add(batch.size(), bytes);
  });
  Transport::Options so = ro;
  so.self = 1;
  Transport sender(so, [](std::vector<Message>) {});
  if (!receiver.Start().ok() || !sender.Start().ok() || !sender.AddPeer(2, receiver.url()).ok()) {
    state.SkipWithError("cannot start transports");
    return;
  }
  const uint64_t window = std::min(kWindowMessages, kWindowBytes / (entry_bytes + 64));
  const std::string data(entry_bytes, 'x');
  uint64_t sent = 0;
  for (auto _ : state) {
    std::vector<Message> out(kMessagesPerSend);
    for (Message& m : out) {
      m.type = MessageType::kAppend;
      m.to = 2;
      m.term = 3;
      m.index = ++sent;
      m.entries = {Entry{3, sent, EntryType::kNormal, data}};
    }
    sender.Send(std::move(out));
    if (sent > window && received.WaitFor(sent - window) < sent - window) {
      state.SkipWithError("messages lost");
      break;
    }
  }
  if (received.WaitFor(sent) < sent) state.SkipWithError("messages lost");
  const PeerStats stats = sender.GetPeerStats(2).value();
  state.SetItemsProcessed(static_cast<int64_t>(sent));
  state.SetBytesProcessed(static_cast<int64_t>(stats.sent_bytes));
  state.counters["batches"] = static_cast<double>(stats.batches);
  state.counters["msgs_per_batch"] =
      stats.batches ? static_cast<double>(stats.sent_messages) / stats.batches : 0;
  state.counters["dropped"] = static_cast<double>(stats.dropped_messages);
  sender.Stop();
  receiver.Stop();
}
BENCHMARK(BM_Transfer)
    ->Arg(0)
    ->Arg(128)
    ->Arg(1 << 10)
    ->Arg(16 << 10)
    ->Arg(256 << 10)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// One heartbeat there and its response back, one at a time: the latency a member adds to a round
// of consensus on loopback.
void BM_RoundTrip(benchmark::State& state) {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t answered = 0;
  Transport::Options ao;
  ao.cluster_id = 1;
  ao.self = 1;
  Transport a(ao, [&](std::vector<Message> batch) {
    std::lock_guard lock(mu);
    answered += batch.size();
    cv.notify_all();
  });
  Transport::Options bo = ao;
  bo.self = 2;
  Transport* b_ptr = nullptr;
  Transport b(bo, [&](std::vector<Message> batch) {
    for (Message& m : batch) {
      m.type = MessageType::kHeartbeatResponse;
      m.to = 1;
      m.from = 2;
    }
    b_ptr->Send(std::move(batch));  // A handler may Send.
  });
  b_ptr = &b;
  if (!a.Start().ok() || !b.Start().ok() || !a.AddPeer(2, b.url()).ok() ||
      !b.AddPeer(1, a.url()).ok()) {
    state.SkipWithError("cannot start transports");
    return;
  }
  uint64_t sent = 0;
  for (auto _ : state) {
    Message m;
    m.type = MessageType::kHeartbeat;
    m.to = 2;
    m.term = 1;
    m.commit = ++sent;
    a.Send({m});
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return answered >= sent; })) {
      state.SkipWithError("no answer within 5 s");
      break;
    }
  }
  a.Stop();
  b.Stop();
}
BENCHMARK(BM_RoundTrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

// The floor under BM_RoundTrip: the same exchange over a bare loopback TCP connection, with the
// same hand-offs (the answer is written by the receiving thread; the reply is read by a third
// thread that wakes the benchmark's through a condition variable), but without the transport's
// framing, queues and checks.
bool ReadFull(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

void BM_RoundTripSocket(benchmark::State& state) {
  constexpr size_t kBytes = 64;  // About a heartbeat's encoded size.
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    state.SkipWithError("cannot listen");
    ::close(listener);
    return;
  }
  const int a = ::socket(AF_INET, SOCK_STREAM, 0);
  const bool connected = ::connect(a, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  const int b = connected ? ::accept(listener, nullptr, nullptr) : -1;
  ::close(listener);
  if (b < 0) {
    state.SkipWithError("cannot connect");
    ::close(a);
    return;
  }
  const int one = 1;
  ::setsockopt(a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::thread answerer([b] {
    char buf[kBytes];
    while (ReadFull(b, buf, sizeof(buf))) {
      if (::send(b, buf, sizeof(buf), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(buf))) return;
    }
  });
  std::mutex mu;
  std::condition_variable cv;
  uint64_t answered = 0;
  std::thread reader([&] {
    char buf[kBytes];
    while (ReadFull(a, buf, sizeof(buf))) {
      std::lock_guard lock(mu);
      ++answered;
      cv.notify_all();
    }
  });
  const char out[kBytes] = {};
  uint64_t sent = 0;
  for (auto _ : state) {
    ++sent;
    if (::send(a, out, sizeof(out), MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof(out))) {
      state.SkipWithError("send failed");
      break;
    }
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return answered >= sent; })) {
      state.SkipWithError("no answer within 5 s");
      break;
    }
  }
  ::shutdown(a, SHUT_RDWR);
  ::shutdown(b, SHUT_RDWR);
  answerer.join();
  reader.join();
  ::close(a);
  ::close(b);
}
BENCHMARK(BM_RoundTripSocket)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace ballot::transport

int main(int argc, char** argv) {
  ballot::logging::SetLevel("warn");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
