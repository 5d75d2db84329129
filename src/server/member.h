// Member: one Ballot member with etcd's semantics, the server side of every etcd v3 request.
//
// It composes the consensus host (Node: engine, WAL, snapshots), the key space (mvcc::Store), the
// lessor and the watch hub. Writes are proposed as log entries (proto/internal.proto: a request id
// and one etcd request) and answered once this member has applied them; reads are served from the
// local store after a read index (linearizable) or at once (serializable). See docs/server.md.
//
// Threads: the Node's engine and apply threads; one housekeeping thread (lessor promotion and
// expiry, lease checkpoints, watch catch-up and progress, publishing this member's attributes);
// callers' threads (gRPC) block in the synchronous request methods for at most the request
// timeout; the *Async methods never block (writes and linearizable waits hold no thread while
// consensus runs); a small pool waits out elections for them.
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "internal.pb.h"
#include "lease/lessor.h"
#include "mvcc/store.h"
#include "rpc.pb.h"
#include "server/forwarder.h"
#include "server/node.h"
#include "server/wait.h"
#include "server/worker_pool.h"
#include "watch/watch_hub.h"

namespace ballot::server {

struct MemberInfo {
  consensus::NodeId id = consensus::kNoNode;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool is_learner = false;
};

struct MemberOptions {
  NodeOptions node;  // id, cluster id, name, engine, WAL and snapshot dirs, ticks, snapshot count.
  std::string store_dir;
  // RocksDB's Env for the store (borrowed; must outlive the member). Null: the real file system.
  // Crash tests pass one that loses unsynced writes.
  rocksdb::Env* store_env = nullptr;
  std::vector<std::string> client_urls;  // Published to the cluster once a leader is known.
  std::vector<std::string> peer_urls;
  // The members of a new cluster (etcd's --initial-cluster); their voters are node.initial_voters.
  std::vector<MemberInfo> initial_members;
  size_t max_txn_ops = 128;
  uint64_t max_request_bytes = 1536 * 1024;
  int request_timeout_ms = 5000;
  // etcd's --quota-backend-bytes: past it, writes that add data raise the NOSPACE alarm and are
  // refused until it is disarmed. <= 0: no quota.
  int64_t quota_backend_bytes = 0;
  int election_timeout_ms = 1000;  // The lessor's minimum TTL and promotion extension.
  watch::WatchOptions watch;
  // etcd's --auto-compaction-*: the leader proposes compactions. At most one of these is set.
  int64_t auto_compaction_revisions = 0;  // Keep this many revisions (revision mode).
  int64_t auto_compaction_period_ms = 0;  // Keep this much history (periodic mode).
  // Called when the set of peers changes (after a membership change is applied), with every
  // member; the serve command updates the transport. From the apply thread.
  std::function<void(const std::vector<MemberInfo>&)> on_members_changed;
};

class Member : private StateMachine, private watch::EventSource {
 public:
  // Opens the store, restores the lessor, opens the Node (which replays the log from the store's
  // applied index) and starts the housekeeping thread. `peers` must outlive the member.
  static Result<std::unique_ptr<Member>> Open(MemberOptions options, PeerSender* peers);
  ~Member() override;
  Member(const Member&) = delete;
  Member& operator=(const Member&) = delete;

  void Stop();
  // A consensus message from a peer (the transport's handler).
  void Step(consensus::Message message) { node_->Step(std::move(message)); }
  // A member message from a peer (the transport's member handler): a request a follower forwards
  // to this member as the leader, or the leader's answer to one this member forwarded (see
  // proto/internal.proto, PeerMessage). Never blocks; an undecodable message is logged and dropped.
  void StepMember(consensus::NodeId from, std::string payload);

  // Asynchronous requests: `done` runs exactly once, on a member or gRPC thread, and must not
  // block.
  template <typename Response>
  using Done = std::function<void(Result<Response>)>;

  // ---- etcdserverpb.KV ----
  Result<etcdserverpb::RangeResponse> Range(const etcdserverpb::RangeRequest& request);
  // Checks `request` and, unless it is serializable, waits for a linearizable read point; `ready`
  // gets OK when RangeLocal may serve it (on an engine or apply thread: hand the read to a pool).
  void RangeReadyAsync(const etcdserverpb::RangeRequest& request,
                       std::function<void(Status)> ready);
  // The read itself, from the local store, with no consistency wait.
  Result<etcdserverpb::RangeResponse> RangeLocal(const etcdserverpb::RangeRequest& request);
  // RangeLocal, or nullopt at once when it would wait for a snapshot install (gRPC's threads).
  std::optional<Result<etcdserverpb::RangeResponse>> TryRangeLocal(
      const etcdserverpb::RangeRequest& request);
  void PutAsync(const etcdserverpb::PutRequest& request, Done<etcdserverpb::PutResponse> done);
  void DeleteRangeAsync(const etcdserverpb::DeleteRangeRequest& request,
                        Done<etcdserverpb::DeleteRangeResponse> done);
  void TxnAsync(const etcdserverpb::TxnRequest& request, Done<etcdserverpb::TxnResponse> done);
  Result<etcdserverpb::PutResponse> Put(const etcdserverpb::PutRequest& request);
  Result<etcdserverpb::DeleteRangeResponse> DeleteRange(
      const etcdserverpb::DeleteRangeRequest& request);
  Result<etcdserverpb::TxnResponse> Txn(const etcdserverpb::TxnRequest& request);
  Result<etcdserverpb::CompactionResponse> Compact(const etcdserverpb::CompactionRequest& request);

  // ---- etcdserverpb.Lease ----
  Result<etcdserverpb::LeaseGrantResponse> LeaseGrant(
      const etcdserverpb::LeaseGrantRequest& request);
  Result<etcdserverpb::LeaseRevokeResponse> LeaseRevoke(
      const etcdserverpb::LeaseRevokeRequest& request);
  // Leader only: ErrNotLeader elsewhere (rpc/ forwards it).
  Result<etcdserverpb::LeaseKeepAliveResponse> LeaseKeepAlive(
      const etcdserverpb::LeaseKeepAliveRequest& request);
  // Renews here on the leader, forwards elsewhere; never waits on the calling thread.
  void LeaseKeepAliveAsync(const etcdserverpb::LeaseKeepAliveRequest& request,
                           Done<etcdserverpb::LeaseKeepAliveResponse> done);
  Result<etcdserverpb::LeaseTimeToLiveResponse> LeaseTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request);
  // Answers here on the leader, forwards elsewhere; never waits on the calling thread.
  void LeaseTimeToLiveAsync(const etcdserverpb::LeaseTimeToLiveRequest& request,
                            Done<etcdserverpb::LeaseTimeToLiveResponse> done);
  Result<etcdserverpb::LeaseLeasesResponse> LeaseLeases();

  // ---- etcdserverpb.Cluster ----
  Result<etcdserverpb::MemberListResponse> MemberList();
  Result<etcdserverpb::MemberAddResponse> MemberAdd(const etcdserverpb::MemberAddRequest& request);
  Result<etcdserverpb::MemberRemoveResponse> MemberRemove(
      const etcdserverpb::MemberRemoveRequest& request);
  Result<etcdserverpb::MemberPromoteResponse> MemberPromote(
      const etcdserverpb::MemberPromoteRequest& request);
  // Changes a member's peer URLs through the log; every member's transport follows on apply.
  // Errors: "member not found" (NotFound), "Peer URLs already exists" (FailedPrecondition),
  // "given member URLs are invalid" (InvalidArgument).
  Result<etcdserverpb::MemberUpdateResponse> MemberUpdate(
      const etcdserverpb::MemberUpdateRequest& request);

  // ---- etcdserverpb.Maintenance ----
  Result<etcdserverpb::StatusResponse> MaintenanceStatus();
  // GET lists the active alarms (of `alarm`'s type; NONE: all); ACTIVATE and DEACTIVATE go through
  // the log and answer the alarm they changed.
  Result<etcdserverpb::AlarmResponse> Alarm(const etcdserverpb::AlarmRequest& request);
  Result<etcdserverpb::HashKVResponse> HashKV(const etcdserverpb::HashKVRequest& request);
  // Maintenance.Hash: mvcc::Store::Hash (history that compaction keeps, and the meta records):
  // equal on members with the same applied state, not comparable with etcd's.
  Result<etcdserverpb::HashResponse> Hash();
  // Maintenance.Defragment: compacts the store's RocksDB files (mvcc::Store::Defragment).
  Result<etcdserverpb::DefragmentResponse> Defragment();
  // Maintenance.Snapshot: this member's store snapshot stream (mvcc/snapshot.h) as of now,
  // zero-padded to a multiple of 512 bytes and followed by its SHA-256 (the 32-byte trailer
  // etcdctl checks). Any thread; it does not wait for the log.
  Result<std::string> SnapshotStream();
  Status MoveLeader(consensus::NodeId to);

  // ---- Requests a follower forwarded (never forwarded again) ----
  void HandleForwardedPropose(const internal::InternalRequest& request,
                              std::function<void(internal::ForwardResponse)> done);
  internal::ForwardResponse HandleForwardedKeepAlive(
      const etcdserverpb::LeaseKeepAliveRequest& request);
  internal::ForwardResponse HandleForwardedTimeToLive(
      const etcdserverpb::LeaseTimeToLiveRequest& request);

  watch::WatchHub* watch_hub() { return hub_.get(); }
  // cluster id, member id, raft term; and `revision` (the store's current one when 0).
  void FillHeader(etcdserverpb::ResponseHeader* header, int64_t revision = 0) const;

  // Every member, from the applied membership (names and client URLs once published).
  std::vector<MemberInfo> Members() const;
  // The leader's client URLs, for forwarding; empty when no leader is known or it is this member.
  std::vector<std::string> LeaderClientUrls() const;
  NodeStatus node_status() const { return node_->status(); }
  // Requests this member forwarded to the leader (proposals, keep-alives, lease checks).
  uint64_t forwarded_requests() const { return next_call_.load() - first_call_; }
  consensus::NodeId id() const { return options_.node.id; }
  uint64_t cluster_id() const { return options_.node.cluster_id; }
  const MemberOptions& options() const { return options_; }

 private:
  explicit Member(MemberOptions options);
  Status Init(PeerSender* peers);

  // Proposes `request` (its id is set here); `done` gets the outcome of its apply. On a follower
  // it is forwarded to the leader when `may_forward`, refused with ErrNotLeader otherwise.
  struct Proposal;
  void ProposeAsync(internal::InternalRequest request, bool may_forward, ApplyCallback done);
  void Attempt(std::shared_ptr<Proposal> p);
  void RetryLater(std::shared_ptr<Proposal> p);
  void ForwardAsync(std::shared_ptr<Proposal> p);
  // Sends `ask` (its call id is set here) to `leader` over the peer connections; `done` runs once,
  // with the answer, with ErrTimeout at `deadline` if none came (a lost message, a leader that
  // stopped), or with ErrStopped when this member stops.
  void AskLeader(consensus::NodeId leader, internal::PeerMessage ask, Deadline deadline,
                 std::function<void(Result<internal::ForwardResponse>)> done);
  // Sends the answer to call `call` of member `to`.
  void AnswerPeer(consensus::NodeId to, uint64_t call, internal::ForwardResponse answer);
  static Result<ApplyResult> FromForwarded(const internal::InternalRequest& request,
                                           const internal::ForwardResponse& fr);
  // ProposeAsync, waited for.
  Result<ApplyResult> ProposeAndWait(internal::InternalRequest request, bool may_forward = true);
  template <typename Response>
  Result<Response> Answer(Result<ApplyResult> result);
  template <typename Response>
  void AnswerAsync(internal::InternalRequest request, Done<Response> done);
  // Runs `start` (which starts an asynchronous request) and waits for its answer.
  template <typename Response>
  Result<Response> Await(const std::function<void(Done<Response>)>& start);
  void LinearizableWaitAsync(std::function<void(Status)> ready);
  Result<etcdserverpb::LeaseKeepAliveResponse> KeepAliveAnswer(
      const internal::ForwardResponse& fr) const;
  Result<etcdserverpb::LeaseTimeToLiveResponse> TimeToLiveAnswer(
      const etcdserverpb::LeaseTimeToLiveRequest& request,
      const internal::ForwardResponse& fr) const;
  // `reply` gets `here()` (an answer of this member's lessor). When that is "not leader" but this
  // member leads, its lessor is not primary yet (just elected, or a snapshot install restored it):
  // `here()` is asked again once housekeeping promotes it, from the slow pool; "not leader" is the
  // answer if that has not happened by the request deadline.
  void AnswerFromLessor(const std::function<internal::ForwardResponse()>& here,
                        std::function<void(internal::ForwardResponse)> reply);

  // A request only the leader's lessor answers: AnswerFromLessor(`here`) on this member, and when
  // this member does not lead, `ask` goes to the leader. `answer` turns either into the client's
  // response; `done` runs once.
  template <typename Response>
  void AskLessorAsync(
      const std::function<internal::ForwardResponse()>& here,
      const std::function<Result<Response>(const internal::ForwardResponse&)>& answer,
      internal::PeerMessage ask, Done<Response> done);
  Status MapProposeError(const Status& s) const;
  // One membership change: `propose` proposes it (an etcd error, or ErrNotLeader on a follower,
  // which then sends the request to the leader with `forward`); then waits until `applied()`
  // (at most the request timeout) and answers the member list.
  template <typename Response>
  Result<Response> ChangeMembership(
      const std::function<Status(Deadline)>& propose, const std::function<bool()>& applied,
      const std::function<Result<Response>(const std::vector<std::string>&, Deadline)>& forward);
  Status ProposeConfChangeMapped(const consensus::ConfChange& cc, Deadline deadline);
  bool IsMember(consensus::NodeId id) const;
  Deadline RequestDeadline() const;
  Status CheckRequestSize(const google::protobuf::Message& request) const;
  // While no leader is known, waits for one; true when one appeared before `deadline`.
  bool WaitForLeader(Deadline deadline);
  // On the leader, waits until the lessor is promoted; false elsewhere.
  bool WaitForPrimary(Deadline deadline);

  // StateMachine (apply thread).
  consensus::Index applied_index() const override;
  Status Apply(const std::vector<consensus::Entry>& entries) override;
  Result<std::string> Snapshot() override;
  Result<SnapshotSource> SnapshotLater() override;
  Status Restore(const std::string& data, consensus::Index index) override;

  // watch::EventSource (any thread).
  Result<std::vector<mvcc::Event>> ReadEvents(mvcc::Revision from, mvcc::Revision to,
                                              std::string_view key, std::string_view range_end,
                                              size_t limit_events) override;
  Status ReadPrevValues(std::vector<mvcc::Event>* events) override {
    return store_->ReadPrevValues(events);
  }
  mvcc::Revision CurrentRevision() override { return store_->CurrentRevision(); }
  mvcc::Revision CompactRevision() override { return store_->CompactRevision(); }

  // The client's answer to a store range (its header this member's).
  Result<etcdserverpb::RangeResponse> RangeAnswer(Result<mvcc::RangeResponse> range);

  struct Applied;  // What one batch produced: answers for waiters, events for watchers.
  void ApplyRequest(mvcc::ApplyBatch& batch, const consensus::Entry& entry, Applied& out);
  // Returns the member the change is about (kNoNode if it does not decode).
  consensus::NodeId ApplyConfChange(mvcc::ApplyBatch& batch, const consensus::Entry& entry);
  Status ApplyMemberUpdate(mvcc::ApplyBatch& batch, const mvcc::LogPosition& at,
                           const etcdserverpb::MemberUpdateRequest& update,
                           const std::set<consensus::NodeId>& conf_nodes);
  // The membership as of the batch's last entry: members_ (as of the previous batch) amended by
  // this batch's own records.
  std::map<consensus::NodeId, internal::MemberRecord> MembersAsOf(
      mvcc::ApplyBatch& batch, const std::set<consensus::NodeId>& conf_nodes);
  Status RestoreLessor();
  void LoadMembers();
  void LoadAlarms();
  // The space quota (etcd's quotaKVServer): ErrNoSpace while the NOSPACE alarm is active, or when
  // the store is over the quota (then the alarm is raised through the log).
  Status CheckSpace();
  int64_t StoreBytes() const;
  void Housekeeping();
  void AutoCompact(int64_t now_ms);
  int64_t NowMs() const;

  static constexpr int kSlowPoolThreads = 4;
  static constexpr size_t kSlowPoolQueueMax = 100000;

  const MemberOptions options_;
  std::unique_ptr<mvcc::Store> store_;
  std::unique_ptr<lease::Lessor> lessor_;
  std::unique_ptr<watch::WatchHub> hub_;
  std::unique_ptr<Node> node_;
  std::unique_ptr<lease::LeaseIdGenerator> lease_ids_;
  Forwarder forwarder_;  // Membership changes on a follower go to the leader's Cluster service.
  PeerSender* peers_ = nullptr;
  // Requests forwarded to the leader, waiting for its answer (by call id).
  BasicWait<internal::ForwardResponse> leader_answers_;
  uint64_t first_call_ = 0;  // Set by Init.
  std::atomic<uint64_t> next_call_{0};
  // Waits for a leader on behalf of asynchronous requests (see RetryLater).
  WorkerPool slow_pool_{"ballot-retry", kSlowPoolThreads, kSlowPoolQueueMax};
  Wait wait_;
  std::atomic<uint64_t> next_request_id_{0};

  // The store's writes (apply, snapshot install, physical compaction) are one at a time: the
  // apply thread's, and Defragment's from a worker.
  std::mutex store_write_mu_;
  mutable std::mutex members_mu_;
  std::map<consensus::NodeId, MemberInfo> members_;  // Guarded by members_mu_.
  std::set<consensus::NodeId> removed_;              // Guarded by members_mu_.

  std::mutex housekeeping_mu_;
  std::condition_variable housekeeping_cv_;
  bool stopping_ = false;                  // Guarded by housekeeping_mu_.
  std::atomic<bool> removed_self_{false};  // Set by the apply thread.
  std::atomic<bool> closing_{false};       // Stop began: no new waits for a leader.

  // Active alarms (member id, etcdserverpb::AlarmType), as of the applied log; written by the apply
  // thread. `nospace_` mirrors "any NOSPACE alarm" for the request path.
  mutable std::mutex alarms_mu_;
  std::set<std::pair<consensus::NodeId, int>> alarms_;  // Guarded by alarms_mu_.
  std::atomic<bool> nospace_{false};
  std::atomic<int64_t> store_bytes_{0};       // The store's size, sampled by housekeeping.
  std::atomic<bool> raising_nospace_{false};  // An activation is in flight.
  std::thread housekeeping_thread_;
  // Housekeeping thread only: (time, revision) samples for periodic compaction, and when the
  // last compaction was proposed.
  std::deque<std::pair<int64_t, mvcc::Revision>> revision_samples_;
  int64_t last_compaction_ms_ = 0;
};

}  // namespace ballot::server
