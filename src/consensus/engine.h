// The engine contract: what the member, the simulator and every test know of a consensus engine.
//
// An engine is a deterministic state machine. It performs no I/O, starts no threads, reads no
// clock and uses no global random source: time is Tick(), randomness is the seed in Config, and all
// effects leave through Ready. Given the same seed and the same sequence of calls, an engine makes
// the same Readies. See docs/engine-contract.md for the host's loop in full.
//
// Thread-safety: none. One thread owns an engine and makes every call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "consensus/storage.h"
#include "consensus/types.h"

namespace ballot::consensus {

enum class EngineKind : uint8_t { kRaft = 0, kMultiPaxos = 1 };
std::string_view EngineKindName(EngineKind kind);
// "raft" or "multipaxos".
Result<EngineKind> ParseEngineKind(std::string_view name);

enum class ReadMode : uint8_t {
  kReadIndex = 0,  // Linearizable: a quorum round confirms leadership for each read (thesis 6.4).
  kLease = 1,      // Opt-in: the leader answers alone while its leader lease holds (thesis 6.4.1).
};

struct Config {
  NodeId id = kNoNode;
  // Ticks without hearing from a leader before a follower campaigns; the actual timeout is drawn
  // uniformly from [election_ticks, 2 * election_ticks) each time.
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  bool pre_vote = true;      // Thesis 9.6.
  bool check_quorum = true;  // A leader steps down after an election timeout without a quorum.
  ReadMode read_mode = ReadMode::kReadIndex;
  // Lease reads: the lease is election_ticks - lease_drift_ticks after the quorum round that
  // started it, so that followers whose clocks run faster (by up to this bound) cannot elect a new
  // leader while the old one still serves reads. Must be >= 1 and < election_ticks.
  int lease_drift_ticks = 2;
  uint64_t max_message_bytes = 1 << 20;       // Bytes of entries in one append, at least one entry.
  int max_inflight_messages = 64;             // Unacknowledged appends to one follower.
  uint64_t max_uncommitted_bytes = 64 << 20;  // Proposals beyond this are refused.
  uint64_t snapshot_chunk_bytes = 256 << 10;  // Bytes of snapshot data in one message.
  // The index the host's state machine has applied (it restarts from there); 0 for a fresh member.
  Index applied = 0;
  uint64_t seed = 1;  // Seeds the engine's random source (election timeouts).
  // Borrowed; must outlive the engine. The engine reads it; the host writes it (see Ready).
  Storage* storage = nullptr;

  Status Validate() const;
};

// Everything the engine asks the host to do, handed out together. The host must:
//   1. send `messages` (they need nothing durable: leader appends and heartbeats);
//   2. write `snapshot` (if any), then `entries`, then `hard_state` (if any), in that order, and
//      make them durable when MustSync() (entries may overwrite a suffix from entries.front().index
//      on). The order matters when a crash tears the write: a durable commit index must never
//      cover entries not yet written. A hard state whose term and vote are unchanged (a new commit
//      index only) may stay unsynced: it becomes durable with the next sync, and if a crash loses
//      it the engine learns the commit index again (entries already applied stay committed:
//      EngineConfig::applied);
//   3. only then send `messages_after_persist` (votes, acknowledgements: they promise durability);
//   4. apply `snapshot` to the state machine, then apply `committed_entries` in order;
//   5. call Advance().
struct Ready {
  std::optional<SoftState> soft_state;  // Set when it changed since the last Ready.
  std::optional<HardState> hard_state;  // Set when it changed since the last Ready.
  std::optional<Snapshot> snapshot;     // A snapshot received from the leader, to install.
  std::vector<Entry> entries;           // To append to the stable log.
  std::vector<Message> messages;
  std::vector<Message> messages_after_persist;
  std::vector<Entry> committed_entries;  // To apply; all are already durable locally.
  std::vector<ReadState> read_states;
  // The term or vote in `hard_state` changed: it must be durable before messages_after_persist.
  bool hard_state_must_sync = false;

  bool MustSync() const { return hard_state_must_sync || snapshot || !entries.empty(); }
};

// A broken variant is a deliberate bug that exists only in test builds, so that the simulator's
// power to find bugs is itself tested (see tests/sim). kNone in every production build.
enum class Bug : uint8_t {
  kNone = 0,
  kCommitOldTermByCount,      // Commit an old-term entry by counting replicas (paper 5.4.2).
  kVoteBeforePersist,         // Send a vote reply before the vote is durable.
  kReadIndexWithoutQuorum,    // Answer a read index without confirming leadership.
  kAppendWithoutLogMatching,  // Accept an append without checking the previous entry.
  kIgnoreHigherTerm,          // Do not step down when a message carries a higher term.
  kReapplyAfterRestart,       // Hand out already applied entries again after a restart.
  // Multi-Paxos.
  kPaxosAcceptLowerBallot,     // An acceptor accepts a ballot below the one it promised.
  kPaxosIgnorePromisedValues,  // A new leader ignores the values reported in phase 1.
  kPaxosPromiseBeforePersist,  // A promise is sent before it is durable.
  kPaxosChosenWithoutQuorum,   // A slot is declared chosen one acceptance short of a quorum.
  kPaxosSkipGap,               // A member learns past a gap (a hole) instead of waiting for it.
  kPaxosReadWithoutQuorum,     // A read index is answered without the quorum round.
  kPaxosSharedBallotTag,       // Members sharing a ballot tag may both use one ballot.
};

class Engine {
 public:
  virtual ~Engine() = default;

  // One unit of logical time.
  virtual void Tick() = 0;
  // Delivers a message from another member. Errors are for malformed or misrouted messages; the
  // engine stays consistent whatever is delivered, in whatever order, duplicated or not.
  virtual Status Step(const Message& message) = 0;
  // Appends `data` as a normal entry. Unavailable when this member is not the leader (the host
  // retries on the leader); ResourceExhausted past max_uncommitted_bytes. An accepted proposal may
  // still be lost if leadership changes: the host learns the outcome only by applying.
  virtual Status Propose(std::string data) = 0;
  // Proposes a membership change. FailedPrecondition while another change is in flight or before
  // the leader has committed an entry of its own term.
  virtual Status ProposeConfChange(const ConfChange& change) = 0;
  // Asks for a read index; the answer comes as a ReadState with the same context. Unavailable when
  // no leader is known. A request that cannot be served (leadership lost) is dropped silently: the
  // host times it out.
  virtual Status ReadIndex(std::string context) = 0;
  // Asks the leader to hand leadership to `to` (thesis 3.10).
  virtual Status TransferLeadership(NodeId to) = 0;

  virtual bool HasReady() const = 0;
  // Takes the pending Ready. Call Advance() once it has been handled as Ready's comment says.
  virtual Ready GetReady() = 0;
  virtual void Advance() = 0;

  // Inspection, for hosts, checkers and tests.
  virtual NodeId id() const = 0;
  virtual SoftState soft_state() const = 0;
  virtual HardState hard_state() const = 0;
  virtual const ConfState& conf_state() const = 0;  // As of the applied index.
  virtual Index committed_index() const = 0;
  virtual Index applied_index() const = 0;
  virtual Index last_index() const = 0;
  // The term of the entry at `index` in this member's log (stable or not); nullopt when absent or
  // compacted.
  virtual std::optional<Term> TermAt(Index index) const = 0;
};

// Makes an engine of the given kind. `bug` must be kNone outside test builds.
Result<std::unique_ptr<Engine>> NewEngine(EngineKind kind, const Config& config,
                                          Bug bug = Bug::kNone);

}  // namespace ballot::consensus
