// Transports talking to each other on 127.0.0.1 (ephemeral ports): delivery, order, failures.
#include <arpa/inet.h>
#include <google/protobuf/util/message_differencer.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <thread>

#include "net_test_util.h"
#include "rpc.grpc.pb.h"
#include "server/join.h"
#include "transport/codec.h"
#include "transport/transport.h"

namespace ballot::transport {
namespace {

using consensus::Entry;
using consensus::EntryType;
using consensus::Message;
using consensus::MessageType;
using consensus::NodeId;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using testing::Blackhole;
using testing::ClosedPort;

constexpr uint64_t kCluster = 0xba110c;
constexpr auto kDeliveryTimeout = std::chrono::seconds(10);

// Collects what a transport delivers.
class Inbox {
 public:
  Transport::Handler Handler() {
    return [this](std::vector<Message> batch) {
      std::lock_guard lock(mu_);
      for (Message& m : batch) got_.push_back(std::move(m));
      cv_.notify_all();
    };
  }
  // True once at least `n` messages arrived; false after `timeout`.
  bool WaitFor(size_t n, Clock::duration timeout = kDeliveryTimeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return got_.size() >= n; });
  }
  std::vector<Message> Get() {
    std::lock_guard lock(mu_);
    return got_;
  }
  size_t size() {
    std::lock_guard lock(mu_);
    return got_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Message> got_;
};

Transport::Options MakeOptions(NodeId self, uint64_t cluster = kCluster) {
  Transport::Options o;
  o.cluster_id = cluster;
  o.self = self;
  o.listen_url = "http://127.0.0.1:0";
  o.reconnect_backoff_initial_ms = 10;
  o.reconnect_backoff_max_ms = 200;
  return o;
}

struct Member {
  explicit Member(Transport::Options options)
      : transport(std::make_unique<Transport>(std::move(options), inbox.Handler())) {}
  Inbox inbox;
  std::unique_ptr<Transport> transport;
};

// A message whose every field depends on (from, to, seq), so a mixed-up field shows.
Message Make(NodeId from, NodeId to, uint64_t seq) {
  Message m;
  m.type = seq % 3 == 0 ? MessageType::kHeartbeat : MessageType::kAppend;
  m.from = from;
  m.to = to;
  m.term = 5;
  m.log_term = 4;
  m.index = seq;
  m.commit = seq / 2;
  for (uint64_t i = 0; i < seq % 4; ++i) {
    m.entries.push_back(Entry{4, seq * 10 + i, i % 2 ? EntryType::kNoop : EntryType::kNormal,
                              std::string(seq % 50, static_cast<char>('a' + i))});
  }
  m.reject = seq % 5 == 0;
  m.reject_hint = seq + 1;
  m.reject_term = 3;
  m.context = "ctx-" + std::to_string(seq);
  return m;
}

bool SameOnWire(const Message& a, const Message& b) {
  peer::Message pa, pb;
  EncodeMessage(a, &pa);
  EncodeMessage(b, &pb);
  return google::protobuf::util::MessageDifferencer::Equals(pa, pb);
}

int ThreadCount() {
  int count = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/self/task")) {
    ++count;
  }
  return count;
}

std::string UrlOfPort(int port) { return "http://127.0.0.1:" + std::to_string(port); }

TEST(TransportStream, ThreeMembersDeliverEverythingInOrderPerPair) {
  const int threads_before = ThreadCount();
  std::map<NodeId, std::unique_ptr<Member>> members;
  for (NodeId id : {1, 2, 3}) {
    members[id] = std::make_unique<Member>(MakeOptions(id));
    ASSERT_TRUE(members[id]->transport->Start().ok());
    EXPECT_NE(members[id]->transport->port(), 0);
  }
  for (auto& [id, m] : members) {
    for (auto& [other, o] : members) {
      if (other != id) {
        ASSERT_TRUE(m->transport->AddPeer(other, o->transport->url()).ok());
      }
    }
  }
  constexpr uint64_t kPerPair = 600;
  // Interleave the sends: every Send carries messages for both peers.
  for (uint64_t seq = 1; seq <= kPerPair; seq += 20) {
    for (auto& [id, m] : members) {
      std::vector<Message> out;
      for (uint64_t s = seq; s < seq + 20; ++s) {
        for (NodeId to : {1, 2, 3}) {
          if (to != id) out.push_back(Make(id, to, s));
        }
      }
      m->transport->Send(std::move(out));
    }
  }
  for (auto& [id, m] : members) {
    ASSERT_TRUE(m->inbox.WaitFor(2 * kPerPair)) << "member " << id << " got " << m->inbox.size();
    std::map<NodeId, uint64_t> next_seq = {{1, 1}, {2, 1}, {3, 1}};
    for (const Message& got : m->inbox.Get()) {
      ASSERT_EQ(got.to, id);
      ASSERT_EQ(got.index, next_seq[got.from]) << "out of order from " << got.from;
      ASSERT_TRUE(SameOnWire(got, Make(got.from, id, got.index))) << got.ToString();
      ++next_seq[got.from];
    }
    EXPECT_EQ(m->inbox.size(), 2 * kPerPair);  // Nothing duplicated.
    EXPECT_EQ(m->transport->GetReceiveStats().messages, 2 * kPerPair);
  }
  // A write's completion may lag its delivery a little: poll the senders' counters.
  for (auto& [id, m] : members) {
    for (NodeId peer : {1, 2, 3}) {
      if (peer == id) continue;
      const auto deadline = Clock::now() + kDeliveryTimeout;
      while (m->transport->GetPeerStats(peer)->sent_messages < kPerPair &&
             Clock::now() < deadline) {
        std::this_thread::sleep_for(milliseconds(5));
      }
      PeerStats stats = m->transport->GetPeerStats(peer).value();
      EXPECT_EQ(stats.sent_messages, kPerPair);
      EXPECT_EQ(stats.dropped_messages, 0u);
      EXPECT_TRUE(stats.connected);
      EXPECT_GE(stats.batches, 1u);
      EXPECT_LE(stats.batches, kPerPair);
      EXPECT_EQ(stats.queued_messages, 0u);
    }
  }
  std::cout << "threads with three transports running: " << ThreadCount()
            << " (before: " << threads_before << ")\n";
  for (auto& [id, m] : members) m->transport->Stop();
}

TEST(TransportStream, DownPeerIsBoundedAndSlowsNoOne) {
  Transport::Options o = MakeOptions(1);
  o.queue_messages_max = 100;
  Member sender(o);
  Member up(MakeOptions(2));
  Blackhole hung;
  ASSERT_TRUE(sender.transport->Start().ok());
  ASSERT_TRUE(up.transport->Start().ok());
  ASSERT_TRUE(sender.transport->AddPeer(2, up.transport->url()).ok());
  ASSERT_TRUE(sender.transport->AddPeer(3, UrlOfPort(ClosedPort())).ok());
  ASSERT_TRUE(sender.transport->AddPeer(4, hung.url()).ok());

  // Rounds of 10 messages per peer; each round must reach the live peer before the next starts,
  // so the live peer's queue never overflows and each round's latency shows.
  constexpr uint64_t kMessages = 1000;
  Clock::duration slowest_send{};
  Clock::duration slowest_round{};
  for (uint64_t seq = 1; seq <= kMessages; seq += 10) {
    std::vector<Message> out;
    for (uint64_t s = seq; s < seq + 10; ++s) {
      for (NodeId to : {2, 3, 4}) out.push_back(Make(1, to, s));
    }
    const auto start = Clock::now();
    sender.transport->Send(std::move(out));
    slowest_send = std::max(slowest_send, Clock::now() - start);
    ASSERT_TRUE(up.inbox.WaitFor(seq + 9)) << seq;
    slowest_round = std::max(slowest_round, Clock::now() - start);
  }
  std::vector<Message> got = up.inbox.Get();
  ASSERT_EQ(got.size(), kMessages);
  for (uint64_t i = 0; i < kMessages; ++i) ASSERT_EQ(got[i].index, i + 1);
  // Send never waits for the network, and the live peer is not held up by the dead ones; generous
  // bounds that a blocking Send or a shared queue would break.
  EXPECT_LT(slowest_send, milliseconds(200));
  EXPECT_LT(slowest_round, milliseconds(1000));

  for (NodeId down : {3, 4}) {
    PeerStats s = sender.transport->GetPeerStats(down).value();
    EXPECT_FALSE(s.connected) << down;
    EXPECT_EQ(s.sent_messages, 0u) << down;
    EXPECT_LE(s.queued_messages, 100u) << down;
    // Nothing is handed to gRPC before a stream is established: the queue holds its bound, the
    // rest was dropped and counted.
    EXPECT_EQ(s.queued_messages, 100u) << down;
    EXPECT_EQ(s.dropped_messages, kMessages - 100) << down;
  }
  EXPECT_EQ(sender.transport->GetPeerStats(2)->dropped_messages, 0u);

  const auto stop_start = Clock::now();
  sender.transport->Stop();
  EXPECT_LT(Clock::now() - stop_start, std::chrono::seconds(2));
  up.transport->Stop();
}

TEST(TransportStream, SenderReconnectsWhenPeerRestartsOnSamePort) {
  Member sender(MakeOptions(1));
  auto receiver = std::make_unique<Member>(MakeOptions(2));
  ASSERT_TRUE(sender.transport->Start().ok());
  ASSERT_TRUE(receiver->transport->Start().ok());
  const int port = receiver->transport->port();
  ASSERT_TRUE(sender.transport->AddPeer(2, receiver->transport->url()).ok());
  sender.transport->Send({Make(1, 2, 1)});
  ASSERT_TRUE(receiver->inbox.WaitFor(1));

  receiver->transport->Stop();
  receiver.reset();
  // Sent while the peer is down: queued or dropped, never blocking.
  sender.transport->Send({Make(1, 2, 2)});

  Transport::Options o = MakeOptions(2);
  o.listen_url = UrlOfPort(port);
  receiver = std::make_unique<Member>(o);
  ASSERT_TRUE(receiver->transport->Start().ok());
  ASSERT_EQ(receiver->transport->port(), port);

  // The engine retransmits; so does this loop, until delivery resumes.
  const auto deadline = Clock::now() + kDeliveryTimeout;
  uint64_t seq = 3;
  while (receiver->inbox.size() == 0 && Clock::now() < deadline) {
    sender.transport->Send({Make(1, 2, seq++)});
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_GT(receiver->inbox.size(), 0u);
  PeerStats s = sender.transport->GetPeerStats(2).value();
  EXPECT_TRUE(s.connected);
  EXPECT_GE(s.reconnects, 1u);
  EXPECT_GE(s.stream_failures, 1u);
  // Later messages arrive in order after the reconnection.
  std::vector<Message> got = receiver->inbox.Get();
  for (size_t i = 1; i < got.size(); ++i) EXPECT_LT(got[i - 1].index, got[i].index);
  sender.transport->Stop();
  receiver->transport->Stop();
}

TEST(TransportStream, WrongClusterIsRefused) {
  Member sender(MakeOptions(1, /*cluster=*/7));
  Member other(MakeOptions(2, /*cluster=*/8));
  ASSERT_TRUE(sender.transport->Start().ok());
  ASSERT_TRUE(other.transport->Start().ok());
  ASSERT_TRUE(sender.transport->AddPeer(2, other.transport->url()).ok());
  const auto deadline = Clock::now() + kDeliveryTimeout;
  while (other.transport->GetReceiveStats().refused_batches == 0 && Clock::now() < deadline) {
    sender.transport->Send({Make(1, 2, 1)});
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GE(other.transport->GetReceiveStats().refused_batches, 1u);
  EXPECT_EQ(other.transport->GetReceiveStats().messages, 0u);
  EXPECT_EQ(other.inbox.size(), 0u);
  // The sender learns why.
  while (sender.transport->GetPeerStats(2)->stream_failures == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  PeerStats s = sender.transport->GetPeerStats(2).value();
  EXPECT_NE(s.last_error.find("cluster"), std::string::npos) << s.last_error;
  EXPECT_NE(s.last_error.find("FAILED_PRECONDITION"), std::string::npos) << s.last_error;
  // Refused streams are retried with a growing backoff (10 ms doubling to 200 ms here), not at
  // the initial rate: about 9 attempts in a second of steady sending rather than about 80.
  const uint64_t failures_before = s.stream_failures;
  for (const auto end = Clock::now() + std::chrono::seconds(1); Clock::now() < end;) {
    sender.transport->Send({Make(1, 2, 1)});
    std::this_thread::sleep_for(milliseconds(2));
  }
  const uint64_t failures = sender.transport->GetPeerStats(2)->stream_failures - failures_before;
  EXPECT_GE(failures, 2u);
  EXPECT_LE(failures, 20u);
  sender.transport->Stop();
  other.transport->Stop();
}

TEST(TransportStream, WrongAddresseeIsRefused) {
  Member sender(MakeOptions(1));
  Member other(MakeOptions(2));
  ASSERT_TRUE(sender.transport->Start().ok());
  ASSERT_TRUE(other.transport->Start().ok());
  // The sender believes member 3 lives at member 2's address.
  ASSERT_TRUE(sender.transport->AddPeer(3, other.transport->url()).ok());
  const auto deadline = Clock::now() + kDeliveryTimeout;
  while (sender.transport->GetPeerStats(3)->stream_failures == 0 && Clock::now() < deadline) {
    sender.transport->Send({Make(1, 3, 1)});
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GE(other.transport->GetReceiveStats().refused_batches, 1u);
  EXPECT_EQ(other.inbox.size(), 0u);
  const std::string error = sender.transport->GetPeerStats(3)->last_error;
  EXPECT_NE(error.find("addressed to member 3"), std::string::npos) << error;
  sender.transport->Stop();
  other.transport->Stop();
}

TEST(TransportStream, LargeEntriesAndSnapshotChunksGoThrough) {
  Member sender(MakeOptions(1));
  Member receiver(MakeOptions(2));
  ASSERT_TRUE(sender.transport->Start().ok());
  ASSERT_TRUE(receiver.transport->Start().ok());
  ASSERT_TRUE(sender.transport->AddPeer(2, receiver.transport->url()).ok());

  Message append = Make(1, 2, 1);
  append.entries.clear();
  for (uint64_t i = 0; i < 4; ++i) {
    append.entries.push_back(
        Entry{4, 100 + i, EntryType::kNormal, std::string(1 << 20, static_cast<char>('k' + i))});
  }
  std::vector<Message> out = {append};
  constexpr uint64_t kChunkBytes = 256 << 10;
  for (uint64_t c = 0; c < 4; ++c) {
    Message chunk;
    chunk.type = MessageType::kSnapshot;
    chunk.from = 1;
    chunk.to = 2;
    chunk.term = 5;
    chunk.snapshot_meta.index = 1000;
    chunk.snapshot_meta.term = 4;
    chunk.snapshot_meta.conf.voters = {1, 2, 3};
    chunk.snapshot_meta.conf.learners = {9};
    chunk.snapshot_size = 4 * kChunkBytes;
    chunk.snapshot_offset = c * kChunkBytes;
    chunk.snapshot_chunk = std::string(kChunkBytes, static_cast<char>('0' + c));
    chunk.snapshot_done = c == 3;
    out.push_back(chunk);
  }
  out.push_back(Make(1, 2, 2));
  std::vector<Message> sent = out;
  sender.transport->Send(std::move(out));
  ASSERT_TRUE(receiver.inbox.WaitFor(sent.size()));
  std::vector<Message> got = receiver.inbox.Get();
  // Snapshot chunks travel in their own lane: compare per lane, each in order.
  auto lane = [](const std::vector<Message>& v, bool snapshot) {
    std::vector<Message> out;
    for (const Message& m : v) {
      if ((m.type == MessageType::kSnapshot) == snapshot) out.push_back(m);
    }
    return out;
  };
  for (bool snapshot : {false, true}) {
    std::vector<Message> want = lane(sent, snapshot);
    std::vector<Message> have = lane(got, snapshot);
    ASSERT_EQ(want.size(), have.size());
    for (size_t i = 0; i < want.size(); ++i) EXPECT_TRUE(SameOnWire(want[i], have[i])) << i;
  }
  sender.transport->Stop();
  receiver.transport->Stop();
}

TEST(TransportStream, OversizedMessagesAreRejectedWithoutHarm) {
  Transport::Options so = MakeOptions(1);
  so.max_message_bytes = 8 << 20;
  Member sender(so);
  Transport::Options ro = MakeOptions(2);
  ro.max_message_bytes = 1 << 20;
  ro.max_batch_bytes = 256 << 10;
  Member receiver(ro);
  ASSERT_TRUE(sender.transport->Start().ok());
  ASSERT_TRUE(receiver.transport->Start().ok());
  ASSERT_TRUE(sender.transport->AddPeer(2, receiver.transport->url()).ok());

  // Larger than the sender's own limit: dropped at Send, counted.
  Message huge = Make(1, 2, 1);
  huge.entries = {Entry{4, 1, EntryType::kNormal, std::string(9 << 20, 'h')}};
  sender.transport->Send({huge});
  EXPECT_EQ(sender.transport->GetPeerStats(2)->dropped_messages, 1u);

  // Within the sender's limit, beyond the receiver's: gRPC refuses it, the stream breaks.
  Message big = Make(1, 2, 2);
  big.entries = {Entry{4, 2, EntryType::kNormal, std::string(2 << 20, 'b')}};
  sender.transport->Send({big});
  const auto deadline = Clock::now() + kDeliveryTimeout;
  while (sender.transport->GetPeerStats(2)->stream_failures == 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  const std::string error = sender.transport->GetPeerStats(2)->last_error;
  EXPECT_NE(error.find("RESOURCE_EXHAUSTED"), std::string::npos) << error;

  // Then small messages flow again on a new stream.
  uint64_t seq = 3;
  while (receiver.inbox.size() == 0 && Clock::now() < deadline) {
    sender.transport->Send({Make(1, 2, seq++)});
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_GT(receiver.inbox.size(), 0u);
  for (const Message& m : receiver.inbox.Get()) EXPECT_GE(m.index, 3u);
  sender.transport->Stop();
  receiver.transport->Stop();
}

// Records each delivered batch separately.
class BatchLog {
 public:
  Transport::Handler Handler() {
    return [this](std::vector<Message> batch) {
      std::lock_guard lock(mu_);
      total_ += batch.size();
      batches_.push_back(std::move(batch));
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t messages) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeliveryTimeout, [&] { return total_ >= messages; });
  }
  std::vector<std::vector<Message>> Get() {
    std::lock_guard lock(mu_);
    return batches_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t total_ = 0;
  std::vector<std::vector<Message>> batches_;
};

uint64_t EncodedBytes(const Message& m) {
  peer::Message wire;
  EncodeMessage(m, &wire);
  return wire.ByteSizeLong();
}

TEST(TransportStream, BatchesStayWithinMaxBatchBytes) {
  Transport::Options so = MakeOptions(1);
  so.max_batch_bytes = 64 << 10;
  Transport sender(so, [](std::vector<Message>) {});
  BatchLog log;
  Transport receiver(MakeOptions(2), log.Handler());
  ASSERT_TRUE(sender.Start().ok());
  ASSERT_TRUE(receiver.Start().ok());
  ASSERT_TRUE(sender.AddPeer(2, receiver.url()).ok());
  std::vector<Message> out;
  for (uint64_t seq = 1; seq <= 200; ++seq) {
    Message m = Make(1, 2, seq);
    m.entries = {Entry{4, seq, EntryType::kNormal, std::string(10 << 10, 'e')}};
    out.push_back(std::move(m));
  }
  sender.Send(std::move(out));
  ASSERT_TRUE(log.WaitFor(200));
  uint64_t seq = 0;
  for (const std::vector<Message>& batch : log.Get()) {
    uint64_t bytes = 0;
    for (const Message& m : batch) {
      bytes += EncodedBytes(m);
      EXPECT_EQ(m.index, ++seq);
    }
    EXPECT_LE(bytes, so.max_batch_bytes);
    EXPECT_GE(batch.size(), 1u);
  }
  // 200 messages of ~10 KiB cannot go in fewer than 200 * 10 / 64 batches.
  EXPECT_GE(log.Get().size(), 200u * 10 / 64);
  EXPECT_EQ(sender.GetPeerStats(2)->batches, log.Get().size());
  sender.Stop();
  receiver.Stop();
}

TEST(TransportStream, HeartbeatsOvertakeQueuedSnapshotChunks) {
  Transport sender(MakeOptions(1), [](std::vector<Message>) {});
  BatchLog log;
  Transport receiver(MakeOptions(2), log.Handler());
  ASSERT_TRUE(sender.Start().ok());
  ASSERT_TRUE(receiver.Start().ok());
  ASSERT_TRUE(sender.AddPeer(2, receiver.url()).ok());
  // Eight chunks of 256 KiB, then a heartbeat, in one Send: with one FIFO the heartbeat would
  // come last; with the snapshot lane it rides in the first batch.
  std::vector<Message> out;
  constexpr uint64_t kChunks = 8;
  constexpr uint64_t kChunkBytes = 256 << 10;
  for (uint64_t c = 0; c < kChunks; ++c) {
    Message chunk;
    chunk.type = MessageType::kSnapshot;
    chunk.from = 1;
    chunk.to = 2;
    chunk.snapshot_meta.index = 50;
    chunk.snapshot_size = kChunks * kChunkBytes;
    chunk.snapshot_offset = c * kChunkBytes;
    chunk.snapshot_chunk = std::string(kChunkBytes, 's');
    out.push_back(std::move(chunk));
  }
  Message heartbeat = Make(1, 2, 3);
  ASSERT_EQ(heartbeat.type, MessageType::kHeartbeat);
  out.push_back(heartbeat);
  sender.Send(std::move(out));
  ASSERT_TRUE(log.WaitFor(kChunks + 1));
  std::vector<Message> order;
  for (auto& batch : log.Get()) {
    EXPECT_LE(batch.size(), 2u);  // At most one chunk per batch (plus the heartbeat).
    for (Message& m : batch) order.push_back(m);
  }
  ASSERT_EQ(order.size(), kChunks + 1);
  size_t heartbeat_at = 0;
  uint64_t next_offset = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    if (order[i].type == MessageType::kHeartbeat) {
      heartbeat_at = i;
      continue;
    }
    EXPECT_EQ(order[i].snapshot_offset, next_offset);  // Chunks keep their order.
    next_offset += kChunkBytes;
  }
  EXPECT_LE(heartbeat_at, 1u);
  sender.Stop();
  receiver.Stop();
}

TEST(TransportStream, StopIsPromptWithUnreachablePeersAndRestartable) {
  Blackhole hung;
  Member member(MakeOptions(1));
  ASSERT_TRUE(member.transport->AddPeer(2, UrlOfPort(ClosedPort())).ok());
  ASSERT_TRUE(member.transport->AddPeer(3, hung.url()).ok());
  for (int round = 0; round < 5; ++round) {
    ASSERT_TRUE(member.transport->Start().ok()) << round;
    EXPECT_FALSE(member.transport->Start().ok());  // Already running.
    for (uint64_t seq = 1; seq <= 50; ++seq) {
      member.transport->Send({Make(1, 2, seq), Make(1, 3, seq)});
    }
    std::this_thread::sleep_for(milliseconds(30));
    const auto start = Clock::now();
    member.transport->Stop();
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(1)) << round;
    EXPECT_FALSE(member.transport->running());
    EXPECT_EQ(member.transport->port(), 0);
  }
  // Stopped: sends are dropped and counted, nothing is kept.
  member.transport->Send({Make(1, 2, 99)});
  EXPECT_EQ(member.transport->GetPeerStats(2)->queued_messages, 0u);
}

TEST(TransportStream, PeersAreManagedAndMisroutedMessagesCounted) {
  Member a(MakeOptions(1));
  Member b(MakeOptions(2));
  ASSERT_TRUE(a.transport->Start().ok());
  ASSERT_TRUE(b.transport->Start().ok());
  EXPECT_FALSE(a.transport->AddPeer(1, b.transport->url()).ok());  // Self.
  EXPECT_FALSE(a.transport->AddPeer(0, b.transport->url()).ok());
  EXPECT_FALSE(a.transport->AddPeer(2, "https://127.0.0.1:1").ok());
  EXPECT_FALSE(a.transport->AddPeer(2, "127.0.0.1").ok());
  EXPECT_EQ(a.transport->UpdatePeer(2, b.transport->url()).code(), StatusCode::kNotFound);
  // First at a wrong address, then corrected: the queue survives the update.
  ASSERT_TRUE(a.transport->AddPeer(2, UrlOfPort(ClosedPort())).ok());
  EXPECT_EQ(a.transport->AddPeer(2, b.transport->url()).code(), StatusCode::kAlreadyExists);
  a.transport->Send({Make(1, 2, 1), Make(1, 2, 2)});
  ASSERT_TRUE(a.transport->UpdatePeer(2, b.transport->url()).ok());
  a.transport->Send({Make(1, 2, 3)});
  ASSERT_TRUE(b.inbox.WaitFor(3));
  EXPECT_EQ(b.inbox.Get().back().index, 3u);
  // The same address again (the member resyncs its peer list often): the stream is kept.
  ASSERT_TRUE(a.transport->GetPeerStats(2)->connected);
  ASSERT_TRUE(a.transport->UpdatePeer(2, b.transport->url()).ok());
  EXPECT_TRUE(a.transport->GetPeerStats(2)->connected);

  // Unknown peer, self, and a forged sender are not sent.
  Message forged = Make(7, 2, 4);
  a.transport->Send({Make(1, 5, 4), Make(1, 1, 4), forged});
  EXPECT_EQ(a.transport->dropped_unroutable(), 3u);
  // from == 0 means self.
  Message anonymous = Make(0, 2, 5);
  a.transport->Send({anonymous});
  ASSERT_TRUE(b.inbox.WaitFor(4));
  EXPECT_EQ(b.inbox.Get().back().from, 1u);

  ASSERT_TRUE(a.transport->RemovePeer(2).ok());
  EXPECT_EQ(a.transport->RemovePeer(2).code(), StatusCode::kNotFound);
  EXPECT_FALSE(a.transport->GetPeerStats(2).has_value());
  a.transport->Stop();
  b.transport->Stop();
}

// Senders on several threads while the peer set and the transport itself change under them:
// nothing crashes or deadlocks, bounds hold, and messages flow once things settle.
TEST(TransportStream, ChurnWhileSendingFromManyThreads) {
  Transport::Options o = MakeOptions(1);
  o.queue_messages_max = 64;
  Member a(o);
  Member b(MakeOptions(2));
  Member c(MakeOptions(3));
  ASSERT_TRUE(a.transport->Start().ok());
  ASSERT_TRUE(b.transport->Start().ok());
  ASSERT_TRUE(c.transport->Start().ok());
  const std::string b_url = b.transport->url();
  const std::string c_url = c.transport->url();
  ASSERT_TRUE(a.transport->AddPeer(2, b_url).ok());
  ASSERT_TRUE(a.transport->AddPeer(3, c_url).ok());

  std::atomic<bool> stop{false};
  std::vector<std::thread> senders;
  for (int t = 0; t < 3; ++t) {
    senders.emplace_back([&, t] {
      uint64_t seq = 0;
      while (!stop.load()) {
        a.transport->Send({Make(1, 2, ++seq), Make(1, 3, seq), Make(1, 4, seq)});
        if (seq % 50 == 0) std::this_thread::sleep_for(milliseconds(1));
        (void)t;
      }
    });
  }
  for (int round = 0; round < 10; ++round) {
    switch (round % 5) {
      case 0:
        ASSERT_TRUE(a.transport->RemovePeer(3).ok());
        ASSERT_TRUE(a.transport->AddPeer(3, c_url).ok());
        break;
      case 1:
        ASSERT_TRUE(a.transport->UpdatePeer(2, UrlOfPort(ClosedPort())).ok());
        break;
      case 2:
        ASSERT_TRUE(a.transport->UpdatePeer(2, b_url).ok());
        break;
      case 3:
        a.transport->Stop();
        break;
      case 4:
        ASSERT_TRUE(a.transport->Start().ok());
        break;
    }
    for (NodeId peer : {2, 3}) EXPECT_LE(a.transport->GetPeerStats(peer)->queued_messages, 64u);
    std::this_thread::sleep_for(milliseconds(20));
  }
  stop = true;
  for (std::thread& t : senders) t.join();
  // Settled (running, both peers at their addresses): a fresh message reaches each peer.
  ASSERT_TRUE(a.transport->running());
  const size_t b_before = b.inbox.size();
  const size_t c_before = c.inbox.size();
  const auto deadline = Clock::now() + kDeliveryTimeout;
  while ((b.inbox.size() == b_before || c.inbox.size() == c_before) && Clock::now() < deadline) {
    a.transport->Send({Make(1, 2, 1), Make(1, 3, 1)});
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_GT(b.inbox.size(), b_before);
  EXPECT_GT(c.inbox.size(), c_before);
  EXPECT_GT(a.transport->dropped_unroutable(), 0u);  // Member 4 was never a peer.
  a.transport->Stop();
  b.transport->Stop();
  c.transport->Stop();
}

// The peer port also serves gRPC (the member list a joining member asks for): a connection that
// does not begin with the peer magic goes to gRPC, unread; peer frames keep flowing beside it, and
// a connection that is neither closes without harm.
TEST(TransportStream, PeerPortAlsoServesGrpcServices) {
  server::PeerClusterService service([]() -> Result<etcdserverpb::MemberListResponse> {
    etcdserverpb::MemberListResponse r;
    r.add_members()->set_name("served-on-the-peer-port");
    return r;
  });
  Transport::Options ro = MakeOptions(2);
  ro.extra_services = {&service};
  Member receiver(ro);
  Member sender(MakeOptions(1));
  ASSERT_TRUE(receiver.transport->Start().ok());
  ASSERT_TRUE(sender.transport->Start().ok());
  ASSERT_TRUE(sender.transport->AddPeer(2, receiver.transport->url()).ok());
  sender.transport->Send({Make(1, 2, 1)});
  ASSERT_TRUE(receiver.inbox.WaitFor(1));

  auto stub = etcdserverpb::Cluster::NewStub(grpc::CreateChannel(
      ParsePeerUrl(receiver.transport->url()).value(), grpc::InsecureChannelCredentials()));
  for (int call = 0; call < 3; ++call) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    etcdserverpb::MemberListResponse response;
    grpc::Status status = stub->MemberList(&context, {}, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(response.members_size(), 1);
    EXPECT_EQ(response.members(0).name(), "served-on-the-peer-port");
  }

  // Neither the magic nor HTTP/2: gRPC drops it; the transport goes on.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(receiver.transport->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL), static_cast<ssize_t>(junk.size()));
  char buf[256];
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  while (::recv(fd, buf, sizeof(buf), 0) > 0) {
  }
  ::close(fd);

  sender.transport->Send({Make(1, 2, 2)});
  ASSERT_TRUE(receiver.inbox.WaitFor(2));
  EXPECT_EQ(receiver.transport->GetReceiveStats().streams, 1u);
  sender.transport->Stop();
  receiver.transport->Stop();
}

TEST(TransportStream, StartRefusesBadOptionsAndBusyPorts) {
  Member a(MakeOptions(1));
  ASSERT_TRUE(a.transport->Start().ok());
  Transport::Options o = MakeOptions(2);
  o.listen_url = a.transport->url();
  Member b(o);
  EXPECT_EQ(b.transport->Start().code(), StatusCode::kUnavailable);
  o = MakeOptions(0);
  EXPECT_EQ(Member(o).transport->Start().code(), StatusCode::kInvalidArgument);
  o = MakeOptions(2);
  o.max_batch_bytes = o.max_message_bytes + 1;
  EXPECT_EQ(Member(o).transport->Start().code(), StatusCode::kInvalidArgument);
  o = MakeOptions(2);
  o.listen_url = "https://127.0.0.1:0";
  EXPECT_EQ(Member(o).transport->Start().code(), StatusCode::kInvalidArgument);
  a.transport->Stop();
}

}  // namespace
}  // namespace ballot::transport
