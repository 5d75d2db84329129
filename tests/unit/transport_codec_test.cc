// consensus::Message <-> peer.proto: every field survives the round trip; bad input is refused.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <mutex>
#include <tuple>
#include <utility>

#include "base/random.h"
#include "peer.pb.h"
#include "transport/codec.h"
#include "transport/transport.h"

namespace ballot::transport {
namespace {

using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::Message;
using consensus::MessageType;
using consensus::SnapshotMeta;

constexpr MessageType kAllTypes[] = {
    MessageType::kAppend,
    MessageType::kAppendResponse,
    MessageType::kVote,
    MessageType::kVoteResponse,
    MessageType::kPreVote,
    MessageType::kPreVoteResponse,
    MessageType::kHeartbeat,
    MessageType::kHeartbeatResponse,
    MessageType::kSnapshot,
    MessageType::kSnapshotResponse,
    MessageType::kReadIndex,
    MessageType::kReadIndexResponse,
    MessageType::kTimeoutNow,
    MessageType::kPrepare,
    MessageType::kPromise,
    MessageType::kAccept,
    MessageType::kAccepted,
    MessageType::kCatchUp,
    MessageType::kCatchUpResponse,
};
constexpr EntryType kAllEntryTypes[] = {EntryType::kNormal, EntryType::kNoop,
                                        EntryType::kConfChange};

// Every field of Message, as a tuple. The structured bindings stop compiling when Message (or
// one of the structs it holds) gains a field: then extend RandomMessage too.
auto Fields(const Message& m) {
  const auto& [type, from, to, term, log_term, index, commit, entries, reject, reject_hint,
               reject_term, context, snapshot_meta, snapshot_offset, snapshot_chunk, snapshot_done,
               snapshot_size] = m;
  const auto& [meta_index, meta_term, conf] = snapshot_meta;
  const auto& [voters, learners] = conf;
  return std::tie(type, from, to, term, log_term, index, commit, entries, reject, reject_hint,
                  reject_term, context, meta_index, meta_term, voters, learners, snapshot_offset,
                  snapshot_chunk, snapshot_done, snapshot_size);
}
[[maybe_unused]] void EntryChecklist(const Entry& e) {
  [[maybe_unused]] const auto& [term, index, type, data] = e;  // Entry's == compares all four.
}

std::string RandomBytes(Random& rng, size_t max) {
  std::string s(rng.Uniform(max + 1), '\0');
  for (char& c : s) c = static_cast<char>(rng.Uniform(256));  // Any byte, NULs included.
  return s;
}

uint64_t RandomU64(Random& rng) {
  // Mix small values with values that need every varint byte.
  switch (rng.Uniform(3)) {
    case 0:
      return 0;
    case 1:
      return rng.Uniform(1000);
    default:
      return rng.Next();
  }
}

Message RandomMessage(Random& rng) {
  Message m;
  m.type = kAllTypes[rng.Uniform(std::size(kAllTypes))];
  m.from = RandomU64(rng);
  m.to = RandomU64(rng);
  m.term = RandomU64(rng);
  m.log_term = RandomU64(rng);
  m.index = RandomU64(rng);
  m.commit = RandomU64(rng);
  const uint64_t entries = rng.Uniform(5);
  for (uint64_t i = 0; i < entries; ++i) {
    m.entries.push_back(Entry{RandomU64(rng), RandomU64(rng),
                              kAllEntryTypes[rng.Uniform(std::size(kAllEntryTypes))],
                              RandomBytes(rng, 64)});
  }
  m.reject = rng.Chance(0.5);
  m.reject_hint = RandomU64(rng);
  m.reject_term = RandomU64(rng);
  m.context = RandomBytes(rng, 16);
  if (rng.Chance(0.7)) {
    m.snapshot_meta.index = RandomU64(rng);
    m.snapshot_meta.term = RandomU64(rng);
    for (uint64_t i = rng.Uniform(6); i > 0; --i)
      m.snapshot_meta.conf.voters.insert(1 + rng.Next() % 100);
    for (uint64_t i = rng.Uniform(3); i > 0; --i) {
      m.snapshot_meta.conf.learners.insert(1 + rng.Next() % 100);
    }
  }
  m.snapshot_chunk = RandomBytes(rng, 128);
  m.snapshot_size = m.snapshot_chunk.size() + rng.Uniform(1 << 20);
  m.snapshot_offset = rng.Uniform(m.snapshot_size - m.snapshot_chunk.size() + 1);
  m.snapshot_done = rng.Chance(0.5);
  return m;
}

using FieldTuple = decltype(Fields(std::declval<const Message&>()));
constexpr size_t kFieldCount = std::tuple_size_v<FieldTuple>;

template <size_t... I>
void CountNonDefault(const FieldTuple& m, const FieldTuple& defaults,
                     std::array<int, kFieldCount>* counts, std::index_sequence<I...>) {
  (((*counts)[I] += !(std::get<I>(m) == std::get<I>(defaults))), ...);
}

TEST(TransportCodec, RandomMessagesSurviveTheRoundTrip) {
  Random rng(20261127);
  const Message defaults;
  std::array<int, kFieldCount> non_default{};
  for (int i = 0; i < 2000; ++i) {
    const Message want = RandomMessage(rng);
    CountNonDefault(Fields(want), Fields(defaults), &non_default,
                    std::make_index_sequence<kFieldCount>());
    peer::Message wire;
    if (i % 2 == 0) {
      EncodeMessage(want, &wire);
    } else {
      Message moved = want;
      EncodeMessage(std::move(moved), &wire);
    }
    // Through bytes, as on the network.
    peer::Message parsed;
    ASSERT_TRUE(parsed.ParseFromString(wire.SerializeAsString()));
    Result<Message> got = i % 3 == 0 ? DecodeMessage(parsed) : DecodeMessage(std::move(parsed));
    ASSERT_TRUE(got.ok()) << got.status().ToString() << " " << want.ToString();
    ASSERT_TRUE(Fields(*got) == Fields(want)) << i << ": " << want.ToString();
  }
  // The generator exercised every field (a field it forgets would pass the round trip unseen).
  for (size_t f = 0; f < kFieldCount; ++f) EXPECT_GT(non_default[f], 100) << "field " << f;
}

// A valid message to break one field at a time.
peer::Message ValidWire() {
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = 1;
  m.to = 2;
  m.entries = {Entry{1, 1, EntryType::kNormal, "x"}};
  m.snapshot_meta.index = 9;
  m.snapshot_meta.conf.voters = {1, 2};
  m.snapshot_chunk = "abcd";
  m.snapshot_offset = 4;
  m.snapshot_size = 8;
  peer::Message wire;
  EncodeMessage(m, &wire);
  return wire;
}

void ExpectRefused(const peer::Message& wire, const std::string& words) {
  Result<Message> got = DecodeMessage(wire);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(got.status().message().find(words), std::string::npos) << got.status().ToString();
}

TEST(TransportCodec, BadInputIsRefusedWithAReason) {
  ASSERT_TRUE(DecodeMessage(ValidWire()).ok());

  for (int bad : {13, 31, 36, 39, 255, 256, -1, 1 << 30}) {  // 36: the retired COMMIT.
    peer::Message w = ValidWire();
    w.set_type(static_cast<peer::MessageType>(bad));
    ExpectRefused(w, "unknown message type");
  }
  for (int bad : {3, 255, -7}) {
    peer::Message w = ValidWire();
    w.mutable_entries(0)->set_type(static_cast<peer::EntryType>(bad));
    ExpectRefused(w, "entry 0 has unknown type");
  }
  {
    peer::Message w = ValidWire();
    w.mutable_snapshot_meta()->mutable_conf()->add_voters(2);
    ExpectRefused(w, "voters holds member 2 twice");
  }
  {
    peer::Message w = ValidWire();
    w.mutable_snapshot_meta()->mutable_conf()->add_learners(0);
    ExpectRefused(w, "learners holds member id 0");
  }
  {
    peer::Message w = ValidWire();
    for (uint64_t i = 0; i < kConfMembersMax; ++i) {
      w.mutable_snapshot_meta()->mutable_conf()->add_learners(100 + i);
    }
    ExpectRefused(w, "more than the bound");
  }
  {
    peer::Message w = ValidWire();
    w.set_snapshot_offset(5);  // 5 + 4 > 8.
    ExpectRefused(w, "outside a snapshot of 8 bytes");
  }
  {
    peer::Message w = ValidWire();
    w.set_snapshot_offset(~uint64_t{0});  // Would overflow offset + size.
    w.set_snapshot_size(~uint64_t{0});
    ExpectRefused(w, "outside a snapshot");
  }
  {
    peer::Message w = ValidWire();
    w.clear_entries();
    w.mutable_entries()->Reserve(kEntriesPerMessageMax + 1);
    for (uint64_t i = 0; i <= kEntriesPerMessageMax; ++i) w.add_entries();
    Result<Message> got = DecodeMessage(std::move(w));
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.status().message().find("entries, more than the bound"), std::string::npos);
  }
  // Garbage bytes do not parse, and a parse failure is not a crash either.
  peer::Message junk;
  EXPECT_FALSE(junk.ParseFromString(std::string("\xff\xff\xff\xff\xff\xff", 6)));
}

// Over the wire: a hand-made sender writes what a correct transport never would
// (docs/transport.md, "Connections": magic, hello, then length-prefixed batches).
class RawClient {
 public:
  explicit RawClient(const std::string& url) : port_(std::stoi(url.substr(url.rfind(':') + 1))) {}
  // Connects with the first batch's header as its hello, writes the batches, then returns how the
  // receiver ended the connection: OK when it closed without refusing, else its refusal.
  Status SendAll(const std::vector<peer::Batch>& batches) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      return Status::Unavailable("connect failed");
    }
    std::string out = "BALLOTP1";
    const peer::BatchHeader& h = batches.front().header();
    for (uint64_t v : {h.cluster_id(), h.from(), h.to()}) {
      for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
    }
    for (const peer::Batch& b : batches) {
      const std::string body = b.SerializeAsString();
      const uint32_t n = static_cast<uint32_t>(body.size());
      for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
      out += body;
    }
    (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);  // Ends the connection cleanly once the receiver read it all.
    std::string in;
    char buf[4096];
    timeval timeout{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    for (ssize_t r; (r = ::recv(fd, buf, sizeof(buf), 0)) > 0;) in.append(buf, r);
    ::close(fd);
    if (!in.empty() && in[0] == 0) in.erase(0, 1);  // Accepted.
    if (in.size() < 9 || in[0] != 1) return Status::Ok();
    auto u32 = [&](size_t at) {
      uint32_t v = 0;
      for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[at + i]);
      return v;
    };
    return Status(static_cast<StatusCode>(u32(1)), in.substr(9, u32(5)));
  }

 private:
  const int port_;
};

peer::Batch MakeBatch(uint64_t cluster, uint64_t from, uint64_t to, const peer::Message& m) {
  peer::Batch b;
  b.mutable_header()->set_cluster_id(cluster);
  b.mutable_header()->set_from(from);
  b.mutable_header()->set_to(to);
  *b.add_messages() = m;
  return b;
}

TEST(TransportCodec, ReceiverRefusesBadBatchesAndKeepsServing) {
  std::vector<Message> delivered;
  std::mutex mu;
  Transport::Options o;
  o.cluster_id = 5;
  o.self = 2;
  Transport t(o, [&](std::vector<Message> batch) {
    std::lock_guard lock(mu);
    for (Message& m : batch) delivered.push_back(std::move(m));
  });
  ASSERT_TRUE(t.Start().ok());
  RawClient client(t.url());
  const peer::Message good = ValidWire();  // from 1 to 2.

  peer::Message bad_type = good;
  bad_type.set_type(static_cast<peer::MessageType>(99));
  Status s = client.SendAll(
      {MakeBatch(5, 1, 2, good), MakeBatch(5, 1, 2, bad_type), MakeBatch(5, 1, 2, good)});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("unknown message type 99"), std::string::npos) << s.message();

  peer::Message forged = good;
  forged.set_from(3);  // Says it is from 3 inside a batch from 1.
  s = client.SendAll({MakeBatch(5, 1, 2, forged)});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);

  s = client.SendAll({MakeBatch(6, 1, 2, good)});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  s = client.SendAll({MakeBatch(5, 1, 3, good)});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);

  // A well-behaved connection still works, and ends cleanly when the sender closes it.
  s = client.SendAll({MakeBatch(5, 1, 2, good), MakeBatch(5, 1, 2, good)});
  EXPECT_TRUE(s.ok()) << s.ToString();

  ReceiveStats stats = t.GetReceiveStats();
  EXPECT_EQ(stats.invalid_batches, 2u);
  EXPECT_EQ(stats.refused_batches, 2u);
  EXPECT_EQ(stats.batches, 3u);  // The first good one, and the last two.
  EXPECT_EQ(stats.streams, 5u);
  t.Stop();
  std::lock_guard lock(mu);
  ASSERT_EQ(delivered.size(), 3u);
  for (const Message& m : delivered) EXPECT_EQ(m.snapshot_chunk, "abcd");
}

TEST(TransportCodec, PeerUrls) {
  EXPECT_EQ(ParsePeerUrl("http://127.0.0.1:2380").value(), "127.0.0.1:2380");
  EXPECT_EQ(ParsePeerUrl("http://10.0.0.1:2380/").value(), "10.0.0.1:2380");
  EXPECT_EQ(ParsePeerUrl("127.0.0.1:0").value(), "127.0.0.1:0");
  EXPECT_EQ(ParsePeerUrl("http://[::1]:2380").value(), "[::1]:2380");
  EXPECT_EQ(ParsePeerUrl("http://node-a.example:2380").value(), "node-a.example:2380");
  for (const char* bad :
       {"", "http://", "https://127.0.0.1:2380", "unix:///tmp/x", "http://127.0.0.1",
        "http://127.0.0.1:", "http://127.0.0.1:65536", "http://127.0.0.1:23a",
        "http://127.0.0.1:2380/path", "http://:2380", "http://[::1:2380"}) {
    EXPECT_FALSE(ParsePeerUrl(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace ballot::transport
