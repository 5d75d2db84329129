// The vocabulary shared by every consensus engine, the storage beneath it and the hosts above it.
//
// Both engines (raft/, paxos/) speak these types, so the member, the simulator and the tests can
// drive either without knowing which. Everything here is a plain value: copyable, no I/O.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace ballot::consensus {

using NodeId = uint64_t;  // 0 means "none".
using Term = uint64_t;    // Raft term; Multi-Paxos ballot round.
using Index = uint64_t;   // Log position (Raft index, Paxos slot), from 1.

constexpr NodeId kNoNode = 0;

enum class EntryType : uint8_t {
  kNormal = 0,      // Application data: apply it.
  kNoop = 1,        // Appended by a new leader (Raft) or a hole filler (Paxos): skip it.
  kConfChange = 2,  // An encoded ConfChange: the engine applies it; hosts update their peer lists.
};

struct Entry {
  Term term = 0;
  Index index = 0;
  EntryType type = EntryType::kNormal;
  std::string data;

  // Bytes this entry costs in a message, for batching limits and accounting.
  uint64_t SizeBytes() const { return data.size() + 24; }
  friend bool operator==(const Entry&, const Entry&) = default;
};

// What must be durable before certain messages leave the member (see Ready).
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;  // Raft: vote in `term`. Paxos: the proposer of the promised ballot.
  Index commit = 0;
  friend bool operator==(const HardState&, const HardState&) = default;
  bool IsEmpty() const { return term == 0 && vote == kNoNode && commit == 0; }
};

// The membership of the cluster: voters decide, learners only receive the log.
struct ConfState {
  std::set<NodeId> voters;
  std::set<NodeId> learners;
  friend bool operator==(const ConfState&, const ConfState&) = default;
  bool Contains(NodeId id) const { return voters.count(id) > 0 || learners.count(id) > 0; }
  std::string ToString() const;
};

enum class ConfChangeType : uint8_t {
  kAddLearner = 0,  // Add a non-voting member (a new member always starts as one, or directly:)
  kAddVoter = 1,    // Add a voter, or promote a learner to voter.
  kRemove = 2,      // Remove a voter or learner.
};

struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddLearner;
  NodeId node = kNoNode;
  std::string context;  // Opaque to the engine (e.g. the new member's peer URLs).

  std::string Encode() const;
  // Returns false on malformed input.
  static bool Decode(std::string_view data, ConfChange* out);
  friend bool operator==(const ConfChange&, const ConfChange&) = default;
};

// Applies `cc` to `conf`; the rule every engine and host uses. Changes that make no sense (remove
// an absent node) leave `conf` as it was.
ConfState ApplyConfChange(const ConfState& conf, const ConfChange& cc);

struct SnapshotMeta {
  Index index = 0;  // Last entry the snapshot covers.
  Term term = 0;    // Term of that entry.
  ConfState conf;   // Membership as of `index`.
  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

struct Snapshot {
  SnapshotMeta meta;
  std::string data;  // The state machine's image, opaque to the engine.
  bool IsEmpty() const { return meta.index == 0; }
};

enum class MessageType : uint8_t {
  // Raft.
  kAppend = 0,          // Leader -> follower: entries after (log_term, index).
  kAppendResponse = 1,  // index = last matching index, or reject with hint.
  kVote = 2,            // Candidate -> voter: index/log_term describe the candidate's last entry.
  kVoteResponse = 3,
  kPreVote = 4,  // As kVote, for the pre-vote phase (term = the term it would campaign in).
  kPreVoteResponse = 5,
  kHeartbeat = 6,  // Leader -> follower: commit = min(leader commit, follower match).
  kHeartbeatResponse = 7,
  kSnapshot = 8,          // Leader -> follower: one chunk of a snapshot (see snapshot_* fields).
  kSnapshotResponse = 9,  // index = bytes received so far (or reject).
  kReadIndex = 10,        // Follower -> leader: forward a read index request (context).
  kReadIndexResponse = 11,
  kTimeoutNow = 12,  // Leadership transfer: campaign at once, skipping pre-vote.
  // Multi-Paxos (the Paxos engine's own meaning of the shared fields).
  kPrepare = 32,
  kPromise = 33,
  kAccept = 34,
  kAccepted = 35,
  // 36 was kCommit, never used: the commit point rides on accepts and heartbeats.
  kCatchUp = 37,          // Acknowledges a kCatchUpResponse chunk (index = bytes held).
  kCatchUpResponse = 38,  // A chunk of an acceptor's snapshot, for a proposer behind it.
};

std::string_view MessageTypeName(MessageType type);

// One message between members. A single flat struct serves both engines; each type uses the fields
// its comment names and leaves the rest at their defaults.
struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;
  Term log_term = 0;
  Index index = 0;
  Index commit = 0;
  std::vector<Entry> entries;
  bool reject = false;
  Index reject_hint = 0;  // Raft fast backtracking: the follower's conflict index.
  Term reject_term = 0;   // Raft fast backtracking: the follower's term at the conflict index.
  std::string context;    // Read index request id; campaign reason.
  // Snapshot transfer (kSnapshot): meta, the byte offset of `snapshot_chunk`, and whether it ends.
  SnapshotMeta snapshot_meta;
  uint64_t snapshot_offset = 0;
  std::string snapshot_chunk;
  bool snapshot_done = false;
  uint64_t snapshot_size = 0;  // Total bytes of the snapshot data.

  // Approximate encoded size in bytes, for batching and the simulator's accounting.
  uint64_t SizeBytes() const;
  std::string ToString() const;
};

enum class Role : uint8_t { kFollower = 0, kPreCandidate = 1, kCandidate = 2, kLeader = 3 };
std::string_view RoleName(Role role);

// What a host may show or route by; changes do not need to be persisted.
struct SoftState {
  Role role = Role::kFollower;
  NodeId leader = kNoNode;
  Term term = 0;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

// A read index became safe: once the host has applied `index`, a read issued under `context` may
// be served from local state and is linearizable.
struct ReadState {
  Index index = 0;
  std::string context;
};

}  // namespace ballot::consensus
