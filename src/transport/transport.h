// Transport: consensus messages between the members of one cluster, over TCP connections.
//
// Each member runs one Transport. It listens for its peers' connections and opens one connection
// to each peer it knows (AddPeer); Send() queues messages per peer and returns at once; a peer's
// connection carries them in batches (length-prefixed peer::Batch frames), in the order they were
// sent. Messages that do not fit a peer's bounded queue, or that are cut off when a connection
// breaks, are dropped and counted: the engines tolerate loss and retransmit. A broken connection is
// reopened with bounded exponential backoff. Connections to the peer port that are not a peer's
// are handed to the gRPC services given in Options. See docs/transport.md for the wire format,
// the limits and the threads.
//
// Threads: a connection thread and an accepting thread per running transport, and a thread per
// inbound connection. No call of this class waits for the network: Send() writes to a socket only
// what it takes at once. Stop(), RemovePeer() and UpdatePeer() (to a new address) close
// connections at once, whether or not the peer answers.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/status.h"
#include "consensus/types.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace ballot::peer {
class Batch;
}  // namespace ballot::peer

namespace ballot::transport {

// "http://host:port" (etcd's peer URL form) or "host:port" -> "host:port". https:// and other
// schemes are refused: the transport speaks plaintext only for now.
Result<std::string> ParsePeerUrl(std::string_view url);

// Counters of one outbound peer, since AddPeer.
struct PeerStats {
  uint64_t sent_messages = 0;     // Written to the connection (the socket took the whole frame).
  uint64_t sent_bytes = 0;        // Encoded bytes of those messages.
  uint64_t batches = 0;           // Batches written.
  uint64_t dropped_messages = 0;  // Queue full, too large, cut off by a broken connection, Stop().
  uint64_t reconnects = 0;        // Connections accepted by the peer after the first one.
  uint64_t stream_failures = 0;   // Connections that ended or failed to open (not counting Stop).
  uint64_t queued_messages = 0;   // Waiting now.
  bool connected = false;         // The peer has accepted the current connection.
  std::string last_error;         // Why the last connection ended, "" if none did.
};

// Counters of the receiving side, since the transport was made.
struct ReceiveStats {
  uint64_t streams = 0;          // Peer connections accepted (the magic arrived).
  uint64_t batches = 0;          // Batches delivered to the handler.
  uint64_t messages = 0;         // Messages delivered to the handler.
  uint64_t refused_batches = 0;  // Wrong cluster id or addressee (hello or batch): refused.
  uint64_t invalid_batches = 0;  // A batch or message failed validation: refused.
};

class Transport {
 public:
  struct Options {
    uint64_t cluster_id = 0;
    consensus::NodeId self = consensus::kNoNode;
    // Where peers reach this member, etcd style ("http://127.0.0.1:2380"). Port 0 picks a free
    // port; port() tells which.
    std::string listen_url = "http://127.0.0.1:0";
    // A batch holds messages up to this many encoded bytes (a larger message goes alone).
    uint64_t max_batch_bytes = 1 << 20;
    // The largest batch (frame) this member accepts and sends.
    // Send() drops a message that would not fit alone.
    uint64_t max_message_bytes = 32 << 20;
    // Per peer: messages and encoded bytes waiting; a message beyond either bound is dropped.
    uint64_t queue_messages_max = 4096;
    uint64_t queue_bytes_max = 64 << 20;
    // Per peer: snapshot chunks waiting in their own lane (see docs/transport.md).
    uint64_t snapshot_queue_messages_max = 8;
    // Delay before reconnecting: doubles from initial to max; reset when the connection that
    // broke had lasted at least the max.
    int reconnect_backoff_initial_ms = 50;
    int reconnect_backoff_max_ms = 2000;
    // gRPC services served on the peer port (borrowed; they must outlive the transport), e.g. the
    // member list a joining member asks for (server/join.h): they get the connections that do not
    // begin with a peer's magic.
    std::vector<grpc::Service*> extra_services;

    Status Validate() const;
  };

  // Receives the messages of one batch, in order. Called on a connection's thread, never for two
  // batches at once; it must not block for long (the member enqueues and returns), since a
  // connection reads its next batch only after the handler returns. It may call Send, never Stop.
  using Handler = std::function<void(std::vector<consensus::Message>)>;
  // Receives one member-layer message (see SendMember) from the peer `from`, after the consensus
  // messages of its batch, with the same rules as Handler (one at a time, must not block).
  using MemberHandler = std::function<void(consensus::NodeId from, std::string payload)>;

  // Without a member handler, received member messages are ignored.
  Transport(Options options, Handler handler, MemberHandler member_handler = nullptr);
  ~Transport();  // Stops.
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Listens and connects to the peers added so far. InvalidArgument for bad options,
  // Unavailable when the address cannot be bound, FailedPrecondition when already running.
  Status Start();
  // Closes every connection, stops listening, drops what is queued and joins the transport's
  // threads.
  // Returns in bounded time even when peers are unreachable. A stopped transport may Start again.
  void Stop();
  bool running() const;

  // The bound port while running (useful with port 0), else 0.
  int port() const;
  // "http://<host>:<port>" with the bound port, for AddPeer on other transports.
  std::string url() const;

  // AlreadyExists / NotFound for an id that is / is not known; InvalidArgument for a bad URL, or
  // for id 0 or self. Peers stay across Stop and Start.
  Status AddPeer(consensus::NodeId id, std::string_view url);
  // Reconnects if the address changed (a no-op otherwise); keeps the queue.
  Status UpdatePeer(consensus::NodeId id, std::string_view url);
  Status RemovePeer(consensus::NodeId id);  // Drops its queue.

  // Queues each message for its `to`. Never waits for the network. A message with from == 0 is
  // sent as from self. Messages for unknown peers, for self, or from another member are dropped
  // and counted in dropped_unroutable(); messages beyond a peer's queue bounds or larger than
  // max_message_bytes are dropped and counted in its PeerStats::dropped_messages.
  void Send(std::vector<consensus::Message> messages);
  // Queues one message of the member layer for `to`: bytes the transport carries as they are, in
  // the same queue, batches, order and bounds as the consensus messages sent to that peer (and
  // dropped and counted by the same rules). The member forwards requests to the leader this way.
  void SendMember(consensus::NodeId to, std::string payload);

  std::optional<PeerStats> GetPeerStats(consensus::NodeId id) const;
  std::map<consensus::NodeId, PeerStats> GetStats() const;
  ReceiveStats GetReceiveStats() const;
  uint64_t dropped_unroutable() const;

 private:
  class PeerLink;
  class Inbound;
  friend class PeerLink;
  friend class Inbound;

  void ConnectionLoop();
  void WakeConnectionLoop();
  void AcceptLoop();
  // The receiving side's checks: a connection's hello (and each batch's header), then a batch's
  // messages, which it delivers. Not OK: the connection is refused with that status.
  Status CheckHeader(uint64_t cluster_id, consensus::NodeId from, consensus::NodeId to,
                     const std::string& address);
  Status AcceptBatch(peer::Batch* batch, const std::string& address);
  void Count(uint64_t ReceiveStats::*field, uint64_t n);
  void Deliver(std::vector<consensus::Message> messages);
  void DeliverMember(consensus::NodeId from, std::string payload);

  const Options options_;
  const Handler handler_;
  const MemberHandler member_handler_;

  std::mutex lifecycle_mu_;  // Serializes Start and Stop.

  mutable std::mutex mu_;  // Guards the fields below (not the links' own state).
  bool running_ = false;
  int port_ = 0;
  std::string host_;
  std::map<consensus::NodeId, std::unique_ptr<PeerLink>> peers_;
  uint64_t dropped_unroutable_ = 0;
  std::unique_ptr<grpc::Server> server_;  // The peer port's gRPC services.
  // Set by Start and closed by Stop, with the threads that use them not running.
  int listen_fd_ = -1;
  std::atomic<int> wake_fd_{-1};  // An eventfd: wakes the connection thread.
  int accept_wake_fd_ = -1;       // An eventfd: wakes the accepting thread (Stop).

  std::mutex loop_mu_;  // Guards loop_stop_.
  bool loop_stop_ = false;
  std::thread loop_thread_;    // Connects, and writes what a socket had no room for.
  std::thread accept_thread_;  // Accepts inbound connections.

  std::mutex inbound_mu_;  // Guards inbound_.
  std::list<std::unique_ptr<Inbound>> inbound_;

  std::mutex handler_mu_;  // Serializes calls of handler_.

  mutable std::mutex receive_mu_;  // Guards receive_stats_.
  ReceiveStats receive_stats_;
};

}  // namespace ballot::transport
