#include "server/member.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <utility>

#include "base/logging.h"
#include "base/thread_name.h"
#include "config/url.h"
#include "mvcc/snapshot.h"
#include "server/convert.h"
#include "server/errors.h"
#include "server/sha256.h"

namespace ballot::server {

using consensus::ConfChange;
using consensus::ConfChangeType;
using consensus::Entry;
using consensus::EntryType;
using consensus::Index;
using consensus::NodeId;
using internal::InternalRequest;

namespace {

constexpr size_t kExpiredLeasesPerRoundMax = 16;
constexpr size_t kCheckpointsPerRoundMax = 1000;  // etcd's maxLeaseCheckpointBatchSize.
constexpr int kHousekeepingIntervalMs = 100;
// Keys whose compacted revisions one applied batch removes (mvcc::Store::RunCompaction).
constexpr size_t kCompactionKeysPerApplyMax = 1000;
constexpr size_t kSnapshotAlignBytes = 512;
// A follower can forward its publication only once the leader published its own client URLs;
// retry soon, so that the member list is complete shortly after the cluster is healthy.
constexpr int kPublishRetryMs = 100;
constexpr char kMemberPrefix[] = "member/";
constexpr char kRemovedPrefix[] = "removed/";
constexpr char kLeasePrefix[] = "lease/";
constexpr char kAlarmPrefix[] = "alarm/";  // alarm/<member id hex>/<AlarmType number>

// Whether a txn may add data (etcd's quota charges only puts).
bool TxnHasPut(const etcdserverpb::TxnRequest& txn) {
  for (const auto* ops : {&txn.success(), &txn.failure()}) {
    for (const etcdserverpb::RequestOp& op : *ops) {
      if (op.has_request_put()) return true;
      if (op.has_request_txn() && TxnHasPut(op.request_txn())) return true;
    }
  }
  return false;
}

// Keep serving this long after applying our own removal, so a removed leader can hand off.
constexpr int kRemovedExitDelayMs = 1000;

std::string Hex16(uint64_t v) { return fmt::format("{:016x}", v); }

std::string JoinStrings(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

int64_t UnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

internal::MemberRecord ToRecord(const MemberInfo& m) {
  internal::MemberRecord r;
  r.set_id(m.id);
  r.set_name(m.name);
  for (const auto& u : m.peer_urls) r.add_peer_urls(u);
  for (const auto& u : m.client_urls) r.add_client_urls(u);
  r.set_is_learner(m.is_learner);
  return r;
}

MemberInfo FromRecord(const internal::MemberRecord& r) {
  MemberInfo m;
  m.id = r.id();
  m.name = r.name();
  m.peer_urls.assign(r.peer_urls().begin(), r.peer_urls().end());
  m.client_urls.assign(r.client_urls().begin(), r.client_urls().end());
  m.is_learner = r.is_learner();
  return m;
}

void ToProto(const MemberInfo& m, etcdserverpb::Member* out) {
  out->set_id(m.id);
  out->set_name(m.name);
  for (const auto& u : m.peer_urls) out->add_peerurls(u);
  for (const auto& u : m.client_urls) out->add_clienturls(u);
  out->set_islearner(m.is_learner);
}

internal::PeerMessage KeepAliveAsk(const etcdserverpb::LeaseKeepAliveRequest& request) {
  internal::PeerMessage m;
  *m.mutable_lease_keep_alive() = request;
  return m;
}

internal::PeerMessage TimeToLiveAsk(const etcdserverpb::LeaseTimeToLiveRequest& request) {
  internal::PeerMessage m;
  *m.mutable_lease_time_to_live() = request;
  return m;
}

Status FromForward(const internal::ForwardResponse& r) {
  return Status(static_cast<StatusCode>(r.code()), r.message());
}

internal::ForwardResponse ToForward(const Status& s, const google::protobuf::Message* response) {
  internal::ForwardResponse r;
  r.set_code(static_cast<int32_t>(s.code()));
  r.set_message(s.message());
  if (s.ok() && response) r.set_response(response->SerializeAsString());
  return r;
}

// The response message a request's apply produces.
std::shared_ptr<google::protobuf::Message> NewResponseFor(const InternalRequest& request) {
  switch (request.request_case()) {
    case InternalRequest::kPut:
      return std::make_shared<etcdserverpb::PutResponse>();
    case InternalRequest::kDeleteRange:
      return std::make_shared<etcdserverpb::DeleteRangeResponse>();
    case InternalRequest::kTxn:
      return std::make_shared<etcdserverpb::TxnResponse>();
    case InternalRequest::kCompaction:
      return std::make_shared<etcdserverpb::CompactionResponse>();
    case InternalRequest::kLeaseGrant:
      return std::make_shared<etcdserverpb::LeaseGrantResponse>();
    case InternalRequest::kLeaseRevoke:
      return std::make_shared<etcdserverpb::LeaseRevokeResponse>();
    case InternalRequest::kLeaseCheckpoint:
      return std::make_shared<etcdserverpb::LeaseCheckpointResponse>();
    case InternalRequest::kAlarm:
      return std::make_shared<etcdserverpb::AlarmResponse>();
    default:
      return nullptr;
  }
}

}  // namespace

struct Member::Applied {
  std::vector<std::pair<uint64_t, ApplyResult>> results;
  std::vector<std::pair<mvcc::Revision, std::vector<mvcc::Event>>> notifies;
  bool members_changed = false;
  std::set<NodeId> conf_nodes;  // Members this batch's conf changes touched (members_ lags).
};

Result<std::unique_ptr<Member>> Member::Open(MemberOptions options, PeerSender* peers) {
  std::unique_ptr<Member> member(new Member(std::move(options)));
  RETURN_IF_ERROR(member->Init(peers));
  return member;
}

Member::Member(MemberOptions options) : options_(std::move(options)) {}

Member::~Member() { Stop(); }

Status Member::Init(PeerSender* peers) {
  lease::LessorOptions lessor_options;
  // etcd's minLeaseTTL: ceil(3 * election timeout / 2) seconds.
  lessor_options.min_ttl_s =
      std::max<int64_t>(1, (3 * static_cast<int64_t>(options_.election_timeout_ms) + 1999) / 2000);
  lessor_ = std::make_unique<lease::Lessor>(lessor_options);

  mvcc::StoreOptions store_options;
  store_options.dir = options_.store_dir;
  store_options.env = options_.store_env;
  store_options.max_txn_ops = options_.max_txn_ops;
  store_options.lease_exists = [this](mvcc::LeaseId id) { return lessor_->Exists(id); };
  ASSIGN_OR_RETURN(store_, mvcc::Store::Open(std::move(store_options)));
  RETURN_IF_ERROR(RestoreLessor());
  LoadMembers();
  LoadAlarms();
  hub_ = std::make_unique<watch::WatchHub>(static_cast<watch::EventSource*>(this), options_.watch);

  const int64_t unix_ms = UnixMs();
  lease_ids_ = std::make_unique<lease::LeaseIdGenerator>(options_.node.id, unix_ms);
  next_request_id_ = ((options_.node.id & 0xffff) << 48) |
                     ((static_cast<uint64_t>(unix_ms) & ((1ull << 40) - 1)) << 8);
  // Likewise call ids start past those of an earlier run of this member, whose answers a leader
  // may still deliver after a restart.
  first_call_ = (static_cast<uint64_t>(unix_ms) & ((1ull << 44) - 1)) << 20;
  next_call_ = first_call_;

  peers_ = peers;
  NodeOptions node_options = options_.node;
  // The lessor follows leadership at once, so that a new leader renews leases without a gap.
  node_options.on_soft_state = [this](const consensus::SoftState& soft) {
    const bool leader = soft.role == consensus::Role::kLeader;
    if (leader && !lessor_->primary()) {
      lessor_->Promote(NowMs(), options_.election_timeout_ms);
    } else if (!leader && lessor_->primary()) {
      lessor_->Demote();
    }
  };
  ASSIGN_OR_RETURN(node_,
                   Node::Open(std::move(node_options), static_cast<StateMachine*>(this), peers));
  housekeeping_thread_ = std::thread([this] {
    SetThreadName("ballot-housekp");
    Housekeeping();
  });
  return Status::Ok();
}

void Member::Stop() {
  closing_ = true;
  {
    std::lock_guard<std::mutex> lock(housekeeping_mu_);
    stopping_ = true;
  }
  housekeeping_cv_.notify_all();
  // Housekeeping may wait for a forwarded proposal (publishing this member's attributes). No call
  // registers after this one: AskLeader answers at once once closing_ is set (before this line).
  leader_answers_.Expire(Clock::time_point::max(), ErrStopped());
  if (housekeeping_thread_.joinable()) housekeeping_thread_.join();
  if (node_) node_->Stop();
  // Every asynchronous request still waiting gets its answer before the member goes.
  slow_pool_.Stop();
  wait_.Expire(Clock::time_point::max(), ErrStopped());
}

int64_t Member::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

Deadline Member::RequestDeadline() const {
  return Clock::now() + std::chrono::milliseconds(options_.request_timeout_ms);
}

Status Member::CheckRequestSize(const google::protobuf::Message& request) const {
  if (request.ByteSizeLong() > options_.max_request_bytes) return ErrRequestTooLarge();
  return Status::Ok();
}

void Member::FillHeader(etcdserverpb::ResponseHeader* header, int64_t revision) const {
  header->set_cluster_id(options_.node.cluster_id);
  header->set_member_id(options_.node.id);
  header->set_revision(revision > 0 ? revision : store_->CurrentRevision());
  header->set_raft_term(node_->status().soft.term);
}

// ---- Proposals ----

Status Member::MapProposeError(const Status& s) const {
  switch (s.code()) {
    case StatusCode::kUnavailable: {
      const NodeStatus st = node_->status();
      if (!st.fatal.ok()) return ErrStopped();
      if (st.soft.leader == consensus::kNoNode) return ErrNoLeader();
      if (st.soft.leader != options_.node.id) return ErrNotLeader();
      return ErrNoLeader();
    }
    case StatusCode::kDeadlineExceeded:
      return ErrTimeout();
    case StatusCode::kResourceExhausted:
      return ErrTooManyRequests();
    default:
      return s;
  }
}

// A proposal's way: forwarded at once when another member leads; otherwise handed to the engine
// and answered by the apply thread (Wait). Nothing here blocks the calling thread: waiting for an
// election to end happens on the member's small pool for that (slow_pool_).
struct Member::Proposal {
  InternalRequest request;
  std::string data;
  Deadline deadline;
  bool may_forward = true;
  ApplyCallback done;  // Moved into wait_ while the engine has the proposal.
};

void Member::ProposeAsync(InternalRequest request, bool may_forward, ApplyCallback done) {
  auto p = std::make_shared<Proposal>();
  p->deadline = RequestDeadline();
  p->may_forward = may_forward;
  request.set_id(next_request_id_.fetch_add(1));
  p->data = request.SerializeAsString();
  if (p->data.size() > options_.max_request_bytes) return done(ErrRequestTooLarge());
  p->request = std::move(request);
  p->done = std::move(done);
  Attempt(std::move(p));
}

void Member::Attempt(std::shared_ptr<Proposal> p) {
  const NodeStatus st = node_->status();
  if (!st.fatal.ok() || closing_.load()) return p->done(ErrStopped());
  const consensus::NodeId leader = st.soft.leader;
  if (Clock::now() >= p->deadline) {
    if (options_.node.metrics.proposals_failed != nullptr)
      options_.node.metrics.proposals_failed->Inc();
    return p->done(leader == consensus::kNoNode ? ErrNoLeader() : ErrTimeout());
  }
  if (leader != consensus::kNoNode && leader != options_.node.id) {
    if (p->may_forward) return ForwardAsync(std::move(p));
    return p->done(ErrNotLeader());
  }
  if (leader == consensus::kNoNode) return RetryLater(std::move(p));
  const uint64_t id = p->request.id();
  // etcd's proposals_pending / proposals_failed, counted as its processInternalRaftRequest does.
  const ServerMetrics& metrics = options_.node.metrics;
  if (metrics.proposals_pending != nullptr) metrics.proposals_pending->Add(1);
  wait_.Register(id, p->deadline, [metrics, done = p->done](Result<ApplyResult> r) {
    if (metrics.proposals_pending != nullptr) metrics.proposals_pending->Sub(1);
    if (!r.ok() && metrics.proposals_failed != nullptr) metrics.proposals_failed->Inc();
    done(std::move(r));
  });
  node_->ProposeAsync(p->data, p->deadline, [this, p, id](Status s) {
    if (s.ok()) return;  // The apply thread (or the deadline) answers.
    if (!wait_.Take(id)) return;
    const ServerMetrics& metrics = options_.node.metrics;
    if (metrics.proposals_pending != nullptr) metrics.proposals_pending->Sub(1);
    // The engine thread runs this: anything that may wait goes elsewhere.
    if (s.IsUnavailable()) return RetryLater(std::move(p));
    if (metrics.proposals_failed != nullptr) metrics.proposals_failed->Inc();
    p->done(MapProposeError(s));
  });
}

void Member::RetryLater(std::shared_ptr<Proposal> p) {
  // Without a known leader (an election in progress), wait for one, as etcd does; a leader that
  // just lost its role is asked again after a tick.
  const bool queued = slow_pool_.Submit([this, p]() mutable {
    if (!WaitForLeader(p->deadline)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::max(1, options_.node.tick_ms)));
    }
    Attempt(std::move(p));
  });
  if (!queued) p->done(closing_.load() ? ErrStopped() : ErrTooManyRequests());
}

Result<ApplyResult> Member::ProposeAndWait(InternalRequest request, bool may_forward) {
  auto promise = std::make_shared<std::promise<Result<ApplyResult>>>();
  std::future<Result<ApplyResult>> future = promise->get_future();
  ProposeAsync(std::move(request), may_forward,
               [promise](Result<ApplyResult> r) { promise->set_value(std::move(r)); });
  // The callback always runs (the deadline is enforced by Housekeeping's Expire); the margin
  // covers that round.
  const Deadline latest =
      RequestDeadline() + std::chrono::milliseconds(2 * kHousekeepingIntervalMs);
  if (future.wait_until(latest) != std::future_status::ready) return ErrTimeout();
  return future.get();
}

bool Member::WaitForLeader(Deadline deadline) {
  const auto step = std::chrono::milliseconds(std::max(1, options_.node.tick_ms));
  if (node_->status().soft.leader != consensus::kNoNode) return false;
  while (Clock::now() + step < deadline && !closing_.load()) {
    std::this_thread::sleep_for(step);
    const NodeStatus st = node_->status();
    if (!st.fatal.ok()) return false;
    if (st.soft.leader != consensus::kNoNode) return true;
  }
  return false;
}

Result<ApplyResult> Member::FromForwarded(const InternalRequest& request,
                                          const internal::ForwardResponse& fr) {
  ApplyResult result;
  result.status = FromForward(fr);
  if (result.status.ok()) {
    result.response = NewResponseFor(request);
    if (result.response && !result.response->ParseFromString(fr.response())) {
      return Status::Internal("the leader sent an undecodable forwarded response");
    }
  }
  return result;
}

void Member::ForwardAsync(std::shared_ptr<Proposal> p) {
  const consensus::NodeId leader = node_->status().soft.leader;
  if (leader == consensus::kNoNode || leader == options_.node.id) return p->done(ErrNoLeader());
  internal::PeerMessage ask;
  *ask.mutable_propose() = p->request;
  AskLeader(leader, std::move(ask), p->deadline, [p](Result<internal::ForwardResponse> fr) {
    p->done(fr.ok() ? FromForwarded(p->request, *fr) : Result<ApplyResult>(fr.status()));
  });
}

void Member::AskLeader(consensus::NodeId leader, internal::PeerMessage ask, Deadline deadline,
                       std::function<void(Result<internal::ForwardResponse>)> done) {
  if (closing_.load()) return done(ErrStopped());
  const uint64_t call = next_call_.fetch_add(1) + 1;
  ask.set_call(call);
  leader_answers_.Register(call, deadline, std::move(done));
  // A member that began to stop after the check above may have expired the table already.
  if (closing_.load()) leader_answers_.Expire(Clock::time_point::max(), ErrStopped());
  peers_->SendMember(leader, ask.SerializeAsString());
}

void Member::AnswerPeer(consensus::NodeId to, uint64_t call, internal::ForwardResponse answer) {
  internal::PeerMessage m;
  m.set_call(call);
  *m.mutable_answer() = std::move(answer);
  peers_->SendMember(to, m.SerializeAsString());
}

void Member::StepMember(consensus::NodeId from, std::string payload) {
  internal::PeerMessage m;
  if (!m.ParseFromString(payload)) {
    BLOG_WARN("member {}: dropped an undecodable member message from member {:x}",
              options_.node.name, from);
    return;
  }
  const uint64_t call = m.call();
  switch (m.body_case()) {
    case internal::PeerMessage::kPropose:
      return HandleForwardedPropose(m.propose(), [this, from, call](internal::ForwardResponse fr) {
        AnswerPeer(from, call, std::move(fr));
      });
    case internal::PeerMessage::kLeaseKeepAlive:
    case internal::PeerMessage::kLeaseTimeToLive: {
      std::function<internal::ForwardResponse()> here;
      if (m.has_lease_keep_alive()) {
        here = [this, r = m.lease_keep_alive()] { return HandleForwardedKeepAlive(r); };
      } else {
        here = [this, r = m.lease_time_to_live()] { return HandleForwardedTimeToLive(r); };
      }
      return AnswerFromLessor(here, [this, from, call](internal::ForwardResponse r) {
        AnswerPeer(from, call, std::move(r));
      });
    }
    case internal::PeerMessage::kAnswer:
      return leader_answers_.Trigger(call, std::move(*m.mutable_answer()));
    case internal::PeerMessage::BODY_NOT_SET:
      break;
  }
  BLOG_WARN("member {}: dropped a member message of an unknown kind from member {:x}",
            options_.node.name, from);
}

template <typename Response>
Result<Response> Member::Answer(Result<ApplyResult> result) {
  if (!result.ok()) return result.status();
  if (!result->status.ok()) return result->status;
  auto* typed = dynamic_cast<Response*>(result->response.get());
  if (typed == nullptr) return Status::Internal("apply produced no response");
  Response response = *typed;
  FillHeader(response.mutable_header(), response.header().revision());
  return response;
}

void Member::HandleForwardedPropose(const InternalRequest& request,
                                    std::function<void(internal::ForwardResponse)> done) {
  ProposeAsync(request, /*may_forward=*/false, [done = std::move(done)](Result<ApplyResult> r) {
    if (!r.ok()) return done(ToForward(r.status(), nullptr));
    done(ToForward(r->status, r->response.get()));
  });
}

internal::ForwardResponse Member::HandleForwardedKeepAlive(
    const etcdserverpb::LeaseKeepAliveRequest& request) {
  Result<int64_t> ttl = lessor_->KeepAlive(request.id(), NowMs());
  if (!ttl.ok()) {
    return ToForward(lease::IsNotPrimary(ttl.status()) ? ErrNotLeader() : ttl.status(), nullptr);
  }
  etcdserverpb::LeaseKeepAliveResponse response;
  FillHeader(response.mutable_header());
  response.set_id(request.id());
  response.set_ttl(*ttl);
  return ToForward(Status::Ok(), &response);
}

internal::ForwardResponse Member::HandleForwardedTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request) {
  auto info = lessor_->TimeToLive(request.id(), NowMs(), request.keys());
  if (!info.ok()) {
    return ToForward(lease::IsNotPrimary(info.status()) ? ErrNotLeader() : info.status(), nullptr);
  }
  etcdserverpb::LeaseTimeToLiveResponse response;
  FillHeader(response.mutable_header());
  response.set_id(info->id);
  response.set_ttl(info->remaining_ttl_s);
  response.set_grantedttl(info->granted_ttl_s);
  for (const auto& k : info->keys) response.add_keys(k);
  return ToForward(Status::Ok(), &response);
}

// ---- KV ----

template <typename Response>
void Member::AnswerAsync(InternalRequest request, Done<Response> done) {
  ProposeAsync(std::move(request), /*may_forward=*/true,
               [this, done = std::move(done)](Result<ApplyResult> r) {
                 done(Answer<Response>(std::move(r)));
               });
}

template <typename Response>
Result<Response> Member::Await(const std::function<void(Done<Response>)>& start) {
  auto promise = std::make_shared<std::promise<Result<Response>>>();
  std::future<Result<Response>> future = promise->get_future();
  start([promise](Result<Response> r) { promise->set_value(std::move(r)); });
  const Deadline latest =
      RequestDeadline() + std::chrono::milliseconds(2 * kHousekeepingIntervalMs);
  if (future.wait_until(latest) != std::future_status::ready) return ErrTimeout();
  return future.get();
}

void Member::LinearizableWaitAsync(std::function<void(Status)> ready) {
  // etcd serves a learner only serializable reads (and status).
  if (node_->status().conf.learners.count(options_.node.id) > 0) {
    return ready(ErrNotSupportedForLearner());
  }
  const Deadline deadline = RequestDeadline();
  struct Read {
    Member* member;
    Deadline deadline;
    std::function<void(Status)> ready;
    // Asks the engine; while it knows no leader, asks again every tick (from the slow pool: the
    // engine thread runs the answer). The status the member publishes may lag the engine, so
    // the engine's answer decides.
    static void Ask(std::shared_ptr<Read> r) {
      Member* m = r->member;
      m->node_->ReadIndexAsync(r->deadline, [r](Result<consensus::Index> index) {
        Member* m = r->member;
        if (!index.ok()) {
          const auto step = std::chrono::milliseconds(std::max(1, m->options_.node.tick_ms));
          if (index.status().IsUnavailable() && Clock::now() + step < r->deadline &&
              m->node_->status().fatal.ok() && !m->closing_.load()) {
            const bool queued = m->slow_pool_.Submit([r, step] {
              std::this_thread::sleep_for(step);
              Ask(r);
            });
            if (queued) return;
          }
          return r->ready(index.status().IsUnavailable() ? ErrNoLeader()
                                                         : m->MapProposeError(index.status()));
        }
        m->node_->WhenApplied(*index, r->deadline, [r](Status s) {
          r->ready(s.ok() ? s : r->member->MapProposeError(s));
        });
      });
    }
  };
  Read::Ask(std::make_shared<Read>(Read{this, deadline, std::move(ready)}));
}

void Member::RangeReadyAsync(const etcdserverpb::RangeRequest& request,
                             std::function<void(Status)> ready) {
  Status s = CheckRequestSize(request);
  if (s.ok()) s = mvcc::CheckRangeRequest(FromProto(request));
  if (!s.ok() || request.serializable()) return ready(s);
  LinearizableWaitAsync(std::move(ready));
}

Result<etcdserverpb::RangeResponse> Member::RangeLocal(const etcdserverpb::RangeRequest& request) {
  return RangeAnswer(store_->Range(FromProto(request)));
}

std::optional<Result<etcdserverpb::RangeResponse>> Member::TryRangeLocal(
    const etcdserverpb::RangeRequest& request) {
  std::optional<Result<mvcc::RangeResponse>> range = store_->TryRange(FromProto(request));
  if (!range) return std::nullopt;
  return RangeAnswer(std::move(*range));
}

Result<etcdserverpb::RangeResponse> Member::RangeAnswer(Result<mvcc::RangeResponse> range) {
  RETURN_IF_ERROR(range.status());
  etcdserverpb::RangeResponse response;
  ToProto(*range, &response);
  FillHeader(response.mutable_header(), range->header.revision);
  return response;
}

Result<etcdserverpb::RangeResponse> Member::Range(const etcdserverpb::RangeRequest& request) {
  auto ready = std::make_shared<std::promise<Status>>();
  std::future<Status> future = ready->get_future();
  RangeReadyAsync(request, [ready](Status s) { ready->set_value(std::move(s)); });
  const Deadline latest =
      RequestDeadline() + std::chrono::milliseconds(2 * kHousekeepingIntervalMs);
  if (future.wait_until(latest) != std::future_status::ready) return ErrTimeout();
  RETURN_IF_ERROR(future.get());
  return RangeLocal(request);
}

void Member::PutAsync(const etcdserverpb::PutRequest& request,
                      Done<etcdserverpb::PutResponse> done) {
  Status s = CheckRequestSize(request);
  if (s.ok()) s = mvcc::CheckPutRequest(FromProto(request));
  if (s.ok()) s = CheckSpace();
  if (!s.ok()) return done(s);
  InternalRequest ir;
  *ir.mutable_put() = request;
  AnswerAsync<etcdserverpb::PutResponse>(std::move(ir), std::move(done));
}

void Member::DeleteRangeAsync(const etcdserverpb::DeleteRangeRequest& request,
                              Done<etcdserverpb::DeleteRangeResponse> done) {
  Status s = CheckRequestSize(request);
  if (s.ok()) s = mvcc::CheckDeleteRangeRequest(FromProto(request));
  if (!s.ok()) return done(s);
  InternalRequest ir;
  *ir.mutable_delete_range() = request;
  AnswerAsync<etcdserverpb::DeleteRangeResponse>(std::move(ir), std::move(done));
}

void Member::TxnAsync(const etcdserverpb::TxnRequest& request,
                      Done<etcdserverpb::TxnResponse> done) {
  Status s = CheckRequestSize(request);
  if (s.ok()) s = mvcc::CheckTxnRequest(FromProto(request), options_.max_txn_ops);
  if (s.ok() && TxnHasPut(request)) s = CheckSpace();
  if (!s.ok()) return done(s);
  InternalRequest ir;
  *ir.mutable_txn() = request;
  AnswerAsync<etcdserverpb::TxnResponse>(std::move(ir), std::move(done));
}

Result<etcdserverpb::PutResponse> Member::Put(const etcdserverpb::PutRequest& request) {
  return Await<etcdserverpb::PutResponse>(
      [&](Done<etcdserverpb::PutResponse> done) { PutAsync(request, std::move(done)); });
}

Result<etcdserverpb::DeleteRangeResponse> Member::DeleteRange(
    const etcdserverpb::DeleteRangeRequest& request) {
  return Await<etcdserverpb::DeleteRangeResponse>(
      [&](Done<etcdserverpb::DeleteRangeResponse> done) {
        DeleteRangeAsync(request, std::move(done));
      });
}

Result<etcdserverpb::TxnResponse> Member::Txn(const etcdserverpb::TxnRequest& request) {
  return Await<etcdserverpb::TxnResponse>(
      [&](Done<etcdserverpb::TxnResponse> done) { TxnAsync(request, std::move(done)); });
}

Result<etcdserverpb::CompactionResponse> Member::Compact(
    const etcdserverpb::CompactionRequest& request) {
  InternalRequest ir;
  *ir.mutable_compaction() = request;
  return Answer<etcdserverpb::CompactionResponse>(ProposeAndWait(std::move(ir)));
}

// ---- Lease ----

Result<etcdserverpb::LeaseGrantResponse> Member::LeaseGrant(
    const etcdserverpb::LeaseGrantRequest& request) {
  if (request.ttl() > lease::kLeaseTtlSecondsMax) return lease::LeaseTtlTooLargeError();
  RETURN_IF_ERROR(CheckSpace());
  InternalRequest ir;
  *ir.mutable_lease_grant() = request;
  // The id is chosen before proposing, so that every member grants the same one.
  if (request.id() == 0) ir.mutable_lease_grant()->set_id(lease_ids_->Next());
  return Answer<etcdserverpb::LeaseGrantResponse>(ProposeAndWait(std::move(ir)));
}

Result<etcdserverpb::LeaseRevokeResponse> Member::LeaseRevoke(
    const etcdserverpb::LeaseRevokeRequest& request) {
  InternalRequest ir;
  *ir.mutable_lease_revoke() = request;
  return Answer<etcdserverpb::LeaseRevokeResponse>(ProposeAndWait(std::move(ir)));
}

bool Member::WaitForPrimary(Deadline deadline) {
  while (Clock::now() < deadline) {
    const NodeStatus st = node_->status();
    if (st.soft.role != consensus::Role::kLeader) return false;
    if (lessor_->primary()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

Result<etcdserverpb::LeaseKeepAliveResponse> Member::LeaseKeepAlive(
    const etcdserverpb::LeaseKeepAliveRequest& request) {
  return Await<etcdserverpb::LeaseKeepAliveResponse>(
      [&](Done<etcdserverpb::LeaseKeepAliveResponse> done) {
        LeaseKeepAliveAsync(request, std::move(done));
      });
}

Result<etcdserverpb::LeaseKeepAliveResponse> Member::KeepAliveAnswer(
    const internal::ForwardResponse& fr) const {
  RETURN_IF_ERROR(FromForward(fr));
  etcdserverpb::LeaseKeepAliveResponse response;
  if (!response.ParseFromString(fr.response())) return Status::Internal("bad keepalive answer");
  FillHeader(response.mutable_header());
  return response;
}

void Member::AnswerFromLessor(const std::function<internal::ForwardResponse()>& here,
                              std::function<void(internal::ForwardResponse)> reply) {
  internal::ForwardResponse fr = here();
  if (!IsNotLeader(FromForward(fr)) || node_->status().soft.role != consensus::Role::kLeader) {
    return reply(std::move(fr));
  }
  // This member leads but its lessor is not primary: just elected, or demoted for a moment by a
  // snapshot install (Lessor::Restore). Housekeeping promotes it within a round; wait for that off
  // this thread, as often as it takes until the deadline.
  const bool queued = slow_pool_.Submit([this, here, reply] {
    const Deadline deadline = RequestDeadline();
    internal::ForwardResponse again = here();
    while (IsNotLeader(FromForward(again)) && WaitForPrimary(deadline)) again = here();
    reply(std::move(again));
  });
  if (!queued) reply(ToForward(closing_.load() ? ErrStopped() : ErrTooManyRequests(), nullptr));
}

template <typename Response>
void Member::AskLessorAsync(
    const std::function<internal::ForwardResponse()>& here,
    const std::function<Result<Response>(const internal::ForwardResponse&)>& answer,
    internal::PeerMessage ask, Done<Response> done) {
  AnswerFromLessor(here, [this, answer, ask = std::move(ask),
                          done = std::move(done)](internal::ForwardResponse fr) mutable {
    // Not leader, after waiting if this member leads: the leader's lessor answers.
    if (!IsNotLeader(FromForward(fr))) return done(answer(fr));
    const consensus::NodeId leader = node_->status().soft.leader;
    if (leader == options_.node.id) return done(answer(fr));  // Its lessor never got promoted.
    if (leader == consensus::kNoNode) return done(ErrNoLeader());
    AskLeader(leader, std::move(ask), RequestDeadline(),
              [answer, done](Result<internal::ForwardResponse> r) {
                done(r.ok() ? answer(*r) : Result<Response>(r.status()));
              });
  });
}

void Member::LeaseKeepAliveAsync(const etcdserverpb::LeaseKeepAliveRequest& request,
                                 Done<etcdserverpb::LeaseKeepAliveResponse> done) {
  AskLessorAsync<etcdserverpb::LeaseKeepAliveResponse>(
      [this, request] { return HandleForwardedKeepAlive(request); },
      [this](const internal::ForwardResponse& fr) { return KeepAliveAnswer(fr); },
      KeepAliveAsk(request), std::move(done));
}

Result<etcdserverpb::LeaseTimeToLiveResponse> Member::LeaseTimeToLive(
    const etcdserverpb::LeaseTimeToLiveRequest& request) {
  return Await<etcdserverpb::LeaseTimeToLiveResponse>(
      [&](Done<etcdserverpb::LeaseTimeToLiveResponse> done) {
        LeaseTimeToLiveAsync(request, std::move(done));
      });
}

Result<etcdserverpb::LeaseTimeToLiveResponse> Member::TimeToLiveAnswer(
    const etcdserverpb::LeaseTimeToLiveRequest& request,
    const internal::ForwardResponse& fr) const {
  etcdserverpb::LeaseTimeToLiveResponse response;
  Status s = FromForward(fr);
  if (s.IsNotFound()) {
    // etcd answers an unknown lease with TTL -1, not an error.
    response.set_id(request.id());
    response.set_ttl(-1);
  } else {
    RETURN_IF_ERROR(s);
    if (!response.ParseFromString(fr.response())) return Status::Internal("bad ttl answer");
  }
  FillHeader(response.mutable_header());
  return response;
}

void Member::LeaseTimeToLiveAsync(const etcdserverpb::LeaseTimeToLiveRequest& request,
                                  Done<etcdserverpb::LeaseTimeToLiveResponse> done) {
  AskLessorAsync<etcdserverpb::LeaseTimeToLiveResponse>(
      [this, request] { return HandleForwardedTimeToLive(request); },
      [this, request](const internal::ForwardResponse& fr) {
        return TimeToLiveAnswer(request, fr);
      },
      TimeToLiveAsk(request), std::move(done));
}

Result<etcdserverpb::LeaseLeasesResponse> Member::LeaseLeases() {
  etcdserverpb::LeaseLeasesResponse response;
  FillHeader(response.mutable_header());
  for (mvcc::LeaseId id : lessor_->Leases()) response.add_leases()->set_id(id);
  return response;
}

// ---- Cluster ----

std::vector<MemberInfo> Member::Members() const {
  const consensus::ConfState conf = node_ ? node_->status().conf : consensus::ConfState{};
  std::lock_guard<std::mutex> lock(members_mu_);
  std::vector<MemberInfo> out;
  for (const auto& [id, m] : members_) {
    MemberInfo copy = m;
    if (conf.learners.count(id)) copy.is_learner = true;
    if (conf.voters.count(id)) copy.is_learner = false;
    out.push_back(std::move(copy));
  }
  return out;
}

std::vector<std::string> Member::LeaderClientUrls() const {
  const NodeId leader = node_->status().soft.leader;
  if (leader == consensus::kNoNode || leader == options_.node.id) return {};
  std::lock_guard<std::mutex> lock(members_mu_);
  auto it = members_.find(leader);
  return it == members_.end() ? std::vector<std::string>{} : it->second.client_urls;
}

Result<etcdserverpb::MemberListResponse> Member::MemberList() {
  etcdserverpb::MemberListResponse response;
  FillHeader(response.mutable_header());
  for (const MemberInfo& m : Members()) ToProto(m, response.add_members());
  return response;
}

namespace {

// etcd checks peer URLs with types.NewURLs: scheme://host:port, no path.
Status CheckPeerUrls(const google::protobuf::RepeatedPtrField<std::string>& urls) {
  if (urls.empty()) return ErrMemberBadUrls();
  for (const std::string& u : urls) {
    if (!config::ParseUrl(u).ok()) return ErrMemberBadUrls();
  }
  return Status::Ok();
}

// The member (other than `except`) that already uses one of `urls`, if any.
bool PeerUrlTaken(const std::vector<MemberInfo>& members, NodeId except,
                  const google::protobuf::RepeatedPtrField<std::string>& urls) {
  for (const MemberInfo& m : members) {
    if (m.id == except) continue;
    for (const auto& u : m.peer_urls) {
      if (std::find(urls.begin(), urls.end(), u) != urls.end()) return true;
    }
  }
  return false;
}

}  // namespace

Status Member::ProposeConfChangeMapped(const ConfChange& cc, Deadline deadline) {
  Status s = node_->ProposeConfChange(cc, deadline);
  if (s.code() == StatusCode::kFailedPrecondition) return ErrUnhealthy();
  return s.ok() ? s : MapProposeError(s);
}

template <typename Response>
Result<Response> Member::ChangeMembership(
    const std::function<Status(Deadline)>& propose, const std::function<bool()>& applied,
    const std::function<Result<Response>(const std::vector<std::string>&, Deadline)>& forward) {
  const Deadline deadline = RequestDeadline();
  Status s = propose(deadline);
  if (IsNotLeader(s)) {
    const std::vector<std::string> urls = LeaderClientUrls();
    if (urls.empty()) return ErrNoLeader();
    ASSIGN_OR_RETURN(Response forwarded, forward(urls, deadline));
    FillHeader(forwarded.mutable_header());
    return forwarded;
  }
  RETURN_IF_ERROR(s);
  while (Clock::now() < deadline && !applied()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Response response;
  FillHeader(response.mutable_header());
  for (const MemberInfo& m : Members()) ToProto(m, response.add_members());
  return response;
}

bool Member::IsMember(NodeId id) const {
  std::lock_guard<std::mutex> lock(members_mu_);
  return members_.count(id) > 0;
}

Result<etcdserverpb::MemberAddResponse> Member::MemberAdd(
    const etcdserverpb::MemberAddRequest& request) {
  RETURN_IF_ERROR(CheckPeerUrls(request.peerurls()));
  if (PeerUrlTaken(Members(), consensus::kNoNode, request.peerurls())) return ErrPeerUrlExists();
  MemberInfo added;
  std::random_device rd;
  added.id = (static_cast<uint64_t>(rd()) << 32 | rd()) & 0x7fffffffffffffffull;
  if (added.id == 0) added.id = 1;
  added.peer_urls.assign(request.peerurls().begin(), request.peerurls().end());
  added.is_learner = request.islearner();
  ConfChange cc;
  cc.type = request.islearner() ? ConfChangeType::kAddLearner : ConfChangeType::kAddVoter;
  cc.node = added.id;
  cc.context = ToRecord(added).SerializeAsString();
  ASSIGN_OR_RETURN(etcdserverpb::MemberAddResponse response,
                   ChangeMembership<etcdserverpb::MemberAddResponse>(
                       [&](Deadline deadline) { return ProposeConfChangeMapped(cc, deadline); },
                       [&] { return IsMember(added.id); },
                       [&](const std::vector<std::string>& urls, Deadline deadline) {
                         return forwarder_.MemberAdd(urls, request, deadline);
                       }));
  if (!response.has_member()) ToProto(added, response.mutable_member());
  return response;
}

Result<etcdserverpb::MemberRemoveResponse> Member::MemberRemove(
    const etcdserverpb::MemberRemoveRequest& request) {
  if (!IsMember(request.id())) return ErrMemberNotFound();
  ConfChange cc;
  cc.type = ConfChangeType::kRemove;
  cc.node = request.id();
  return ChangeMembership<etcdserverpb::MemberRemoveResponse>(
      [&](Deadline deadline) { return ProposeConfChangeMapped(cc, deadline); },
      [&] { return !IsMember(request.id()); },
      [&](const std::vector<std::string>& urls, Deadline deadline) {
        return forwarder_.MemberRemove(urls, request, deadline);
      });
}

Result<etcdserverpb::MemberPromoteResponse> Member::MemberPromote(
    const etcdserverpb::MemberPromoteRequest& request) {
  std::optional<MemberInfo> target;
  for (const MemberInfo& m : Members()) {
    if (m.id == request.id()) target = m;
  }
  if (!target) return ErrMemberNotFound();
  if (!target->is_learner) return ErrMemberNotLearner();
  ConfChange cc;
  cc.type = ConfChangeType::kAddVoter;
  cc.node = request.id();
  return ChangeMembership<etcdserverpb::MemberPromoteResponse>(
      [&](Deadline deadline) { return ProposeConfChangeMapped(cc, deadline); },
      [&] { return node_->status().conf.voters.count(request.id()) > 0; },
      [&](const std::vector<std::string>& urls, Deadline deadline) {
        return forwarder_.MemberPromote(urls, request, deadline);
      });
}

// A normal entry, not a conf change: the engines address members by id, so only the membership
// records and the transports (on_members_changed, when each member applies it) need the URLs.
Result<etcdserverpb::MemberUpdateResponse> Member::MemberUpdate(
    const etcdserverpb::MemberUpdateRequest& request) {
  RETURN_IF_ERROR(CheckPeerUrls(request.peerurls()));
  if (!IsMember(request.id())) return ErrMemberNotFound();
  if (PeerUrlTaken(Members(), request.id(), request.peerurls())) return ErrPeerUrlExists();
  InternalRequest ir;
  *ir.mutable_member_update() = request;
  return ChangeMembership<etcdserverpb::MemberUpdateResponse>(
      [&](Deadline) -> Status {
        // Applied (or refused by the apply, identically on every member) when it returns.
        ASSIGN_OR_RETURN(ApplyResult r, ProposeAndWait(ir, /*may_forward=*/false));
        return r.status;
      },
      [] { return true; },
      [&](const std::vector<std::string>& urls, Deadline deadline) {
        return forwarder_.MemberUpdate(urls, request, deadline);
      });
}

// ---- Maintenance ----

void Member::LoadAlarms() {
  std::set<std::pair<NodeId, int>> alarms;
  auto records = store_->ScanMeta(kAlarmPrefix);
  if (records.ok()) {
    for (const auto& [key, value] : *records) {
      // alarm/<16 hex digits>/<type>
      const std::string rest = key.substr(std::string_view(kAlarmPrefix).size());
      const size_t slash = rest.find('/');
      if (slash != 16) continue;
      NodeId id = 0;
      int type = 0;
      try {
        id = std::stoull(rest.substr(0, 16), nullptr, 16);
        type = std::stoi(rest.substr(17));
      } catch (const std::exception&) {
        BLOG_ERROR("member {}: ignoring a malformed alarm record {}", options_.node.name, key);
        continue;
      }
      alarms.insert({id, type});
    }
  }
  std::lock_guard<std::mutex> lock(alarms_mu_);
  alarms_ = std::move(alarms);
  bool nospace = false;
  for (const auto& [member, type] : alarms_) nospace = nospace || type == etcdserverpb::NOSPACE;
  nospace_ = nospace;
}

int64_t Member::StoreBytes() const {
  std::error_code ec;
  int64_t bytes = 0;
  for (const auto& f : std::filesystem::recursive_directory_iterator(options_.store_dir, ec)) {
    if (f.is_regular_file(ec)) bytes += static_cast<int64_t>(f.file_size(ec));
  }
  return bytes;
}

Status Member::CheckSpace() {
  if (nospace_.load()) return ErrNoSpace();
  if (options_.quota_backend_bytes <= 0 || store_bytes_.load() <= options_.quota_backend_bytes) {
    return Status::Ok();
  }
  // Over the quota: raise NOSPACE through the log (once at a time), refuse this request.
  if (!raising_nospace_.exchange(true)) {
    InternalRequest ir;
    ir.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
    ir.mutable_alarm()->set_memberid(options_.node.id);
    ir.mutable_alarm()->set_alarm(etcdserverpb::NOSPACE);
    ProposeAsync(std::move(ir), /*may_forward=*/true,
                 [this](Result<ApplyResult>) { raising_nospace_ = false; });
  }
  return ErrNoSpace();
}

Result<etcdserverpb::AlarmResponse> Member::Alarm(const etcdserverpb::AlarmRequest& request) {
  if (request.action() == etcdserverpb::AlarmRequest::GET) {
    etcdserverpb::AlarmResponse response;
    FillHeader(response.mutable_header());
    std::lock_guard<std::mutex> lock(alarms_mu_);
    for (const auto& [member, type] : alarms_) {
      if (request.alarm() != etcdserverpb::NONE && request.alarm() != type) continue;
      auto* m = response.add_alarms();
      m->set_memberid(member);
      m->set_alarm(static_cast<etcdserverpb::AlarmType>(type));
    }
    return response;
  }
  if (request.action() != etcdserverpb::AlarmRequest::ACTIVATE &&
      request.action() != etcdserverpb::AlarmRequest::DEACTIVATE) {
    return Status::InvalidArgument("etcdserver: unknown alarm action");
  }
  InternalRequest ir;
  *ir.mutable_alarm() = request;
  return Answer<etcdserverpb::AlarmResponse>(ProposeAndWait(std::move(ir)));
}

Result<etcdserverpb::StatusResponse> Member::MaintenanceStatus() {
  const NodeStatus st = node_->status();
  etcdserverpb::StatusResponse response;
  FillHeader(response.mutable_header());
  response.set_version("3.4.0");
  const int64_t db_bytes = StoreBytes();
  response.set_dbsize(db_bytes);
  response.set_dbsizeinuse(db_bytes);
  response.set_leader(st.soft.leader);
  response.set_raftindex(st.committed);
  response.set_raftterm(st.soft.term);
  response.set_raftappliedindex(st.applied);
  response.set_islearner(st.conf.learners.count(options_.node.id) > 0);
  if (!st.fatal.ok()) response.add_errors(st.fatal.message());
  return response;
}

Result<etcdserverpb::HashKVResponse> Member::HashKV(const etcdserverpb::HashKVRequest& request) {
  mvcc::HashKVRequest r;
  r.revision = request.revision();
  ASSIGN_OR_RETURN(mvcc::HashKVResponse h, store_->HashKV(r));
  etcdserverpb::HashKVResponse response;
  FillHeader(response.mutable_header(), h.header.revision);
  response.set_hash(h.hash);
  response.set_compact_revision(h.compact_revision);
  return response;
}

Result<etcdserverpb::HashResponse> Member::Hash() {
  ASSIGN_OR_RETURN(mvcc::HashResponse h, store_->Hash());
  etcdserverpb::HashResponse response;
  FillHeader(response.mutable_header(), h.revision);
  response.set_hash(h.hash);
  return response;
}

Result<etcdserverpb::DefragmentResponse> Member::Defragment() {
  {
    // Removes what a compaction left (what the apply thread did not get to), then lets RocksDB
    // rewrite its files without those records.
    std::lock_guard<std::mutex> store_write(store_write_mu_);
    bool done = false;
    while (!done) {
      ASSIGN_OR_RETURN(done, store_->RunCompaction(kCompactionKeysPerApplyMax));
    }
  }
  RETURN_IF_ERROR(store_->Defragment());
  etcdserverpb::DefragmentResponse response;
  FillHeader(response.mutable_header());
  return response;
}

Status Member::MoveLeader(NodeId to) {
  Status s = node_->TransferLeadership(to, RequestDeadline());
  return s.ok() ? s : MapProposeError(s);
}

// ---- Apply (the node's apply thread) ----

Index Member::applied_index() const { return store_->Applied().index; }

namespace {

void AddNotifies(const std::vector<mvcc::Event>& events,
                 std::vector<std::pair<mvcc::Revision, std::vector<mvcc::Event>>>& out) {
  for (const mvcc::Event& e : events) {
    if (out.empty() || out.back().first != e.kv.mod_revision)
      out.push_back({e.kv.mod_revision, {}});
    out.back().second.push_back(e);
  }
}

}  // namespace

Status Member::Apply(const std::vector<Entry>& entries) {
  std::lock_guard<std::mutex> store_write(store_write_mu_);
  mvcc::ApplyBatch batch = store_->NewBatch();
  Applied out;
  for (const Entry& e : entries) {
    batch.Skip(mvcc::LogPosition{e.index, e.term});
    if (e.type == EntryType::kConfChange) {
      out.conf_nodes.insert(ApplyConfChange(batch, e));
      out.members_changed = true;
    } else if (e.type == EntryType::kNormal) {
      ApplyRequest(batch, e, out);
    }
  }
  RETURN_IF_ERROR(batch.Commit());
  // Physical compaction after a Compact entry, a bounded share per batch (etcd compacts in
  // batches too); Defragment finishes what is left.
  RETURN_IF_ERROR(store_->RunCompaction(kCompactionKeysPerApplyMax).status());
  // The membership first, so that a waiting membership change answers with it.
  if (out.members_changed) {
    LoadMembers();
    if (options_.on_members_changed) options_.on_members_changed(Members());
  }
  for (auto& [revision, events] : out.notifies) hub_->Notify(events, revision);
  for (auto& [id, result] : out.results) wait_.Trigger(id, std::move(result));
  return Status::Ok();
}

void Member::ApplyRequest(mvcc::ApplyBatch& batch, const Entry& entry, Applied& out) {
  const mvcc::LogPosition at{entry.index, entry.term};
  InternalRequest request;
  if (!request.ParseFromString(entry.data)) {
    // Every member refuses it the same way; the cluster goes on.
    BLOG_ERROR("member {}: skipping undecodable entry at index {}", options_.node.name,
               entry.index);
    return;
  }
  ApplyResult result;
  auto attach = [this, &entry](const std::vector<mvcc::Event>& events) {
    Status s = lessor_->ApplyEvents(events);
    if (!s.ok()) {
      BLOG_WARN("member {}: lease bookkeeping at index {}: {}", options_.node.name, entry.index,
                s.ToString());
    }
  };
  auto finish_write = [&](auto written, auto response) {
    if (!written.ok()) {
      result.status = written.status();
      return;
    }
    attach(written->events);
    AddNotifies(written->events, out.notifies);
    ToProto(written->response, response.get());
    result.response = std::move(response);
  };
  // etcd's applierV3Capped: with NOSPACE raised, nothing that adds data applies (decided from the
  // applied log, so every member refuses the same entries).
  const bool adds_data = request.has_put() || request.has_lease_grant() ||
                         (request.has_txn() && TxnHasPut(request.txn()));
  if (adds_data && nospace_.load()) {
    result.status = ErrNoSpace();
    result.revision = batch.CurrentRevision();
    out.results.emplace_back(request.id(), std::move(result));
    return;
  }
  switch (request.request_case()) {
    case InternalRequest::kAlarm: {
      const etcdserverpb::AlarmRequest& a = request.alarm();
      auto response = std::make_shared<etcdserverpb::AlarmResponse>();
      const std::string key = std::string(kAlarmPrefix) + Hex16(a.memberid()) + "/" +
                              std::to_string(static_cast<int>(a.alarm()));
      const std::pair<NodeId, int> alarm{a.memberid(), static_cast<int>(a.alarm())};
      bool changed = false;
      {
        std::lock_guard<std::mutex> lock(alarms_mu_);
        if (a.action() == etcdserverpb::AlarmRequest::ACTIVATE && a.alarm() != etcdserverpb::NONE) {
          changed = alarms_.insert(alarm).second;
          if (changed) batch.PutMeta(at, key, "");
        } else if (a.action() == etcdserverpb::AlarmRequest::DEACTIVATE) {
          changed = alarms_.erase(alarm) > 0;
          if (changed) batch.DeleteMeta(at, key);
        }
        bool nospace = false;
        for (const auto& [member, type] : alarms_)
          nospace = nospace || type == etcdserverpb::NOSPACE;
        nospace_ = nospace;
      }
      if (changed) {
        auto* m = response->add_alarms();
        m->set_memberid(a.memberid());
        m->set_alarm(a.alarm());
        BLOG_WARN("member {}: alarm {} {} for member {}", options_.node.name,
                  a.action() == etcdserverpb::AlarmRequest::ACTIVATE ? "raised" : "cleared",
                  etcdserverpb::AlarmType_Name(a.alarm()), Hex16(a.memberid()));
      }
      result.response = std::move(response);
      break;
    }
    case InternalRequest::kPut:
      finish_write(batch.Put(at, FromProto(request.put())),
                   std::make_shared<etcdserverpb::PutResponse>());
      break;
    case InternalRequest::kDeleteRange:
      finish_write(batch.DeleteRange(at, FromProto(request.delete_range())),
                   std::make_shared<etcdserverpb::DeleteRangeResponse>());
      break;
    case InternalRequest::kTxn:
      finish_write(batch.Txn(at, FromProto(request.txn())),
                   std::make_shared<etcdserverpb::TxnResponse>());
      break;
    case InternalRequest::kCompaction: {
      auto c = batch.Compact(at, FromProto(request.compaction()));
      if (!c.ok()) {
        result.status = c.status();
      } else {
        auto response = std::make_shared<etcdserverpb::CompactionResponse>();
        response->mutable_header()->set_revision(batch.CurrentRevision());
        result.response = std::move(response);
      }
      break;
    }
    case InternalRequest::kLeaseGrant: {
      const auto& g = request.lease_grant();
      auto record = lessor_->Grant(g.id(), g.ttl(), NowMs());
      if (!record.ok()) {
        result.status = record.status();
        break;
      }
      batch.PutMeta(at, kLeasePrefix + Hex16(g.id()), lease::EncodeLeaseRecord(*record));
      auto response = std::make_shared<etcdserverpb::LeaseGrantResponse>();
      response->set_id(g.id());
      response->set_ttl(record->ttl_s);
      result.response = std::move(response);
      break;
    }
    case InternalRequest::kLeaseRevoke: {
      const mvcc::LeaseId id = request.lease_revoke().id();
      auto keys = lessor_->Revoke(id);
      if (!keys.ok()) {
        result.status = keys.status();
        break;
      }
      if (!keys->empty()) {
        auto deleted = batch.DeleteKeys(at, *keys);
        if (deleted.ok()) AddNotifies(deleted->events, out.notifies);
      }
      batch.DeleteMeta(at, kLeasePrefix + Hex16(id));
      result.response = std::make_shared<etcdserverpb::LeaseRevokeResponse>();
      break;
    }
    case InternalRequest::kLeaseCheckpoint: {
      for (const auto& cp : request.lease_checkpoint().checkpoints()) {
        auto record = lessor_->Checkpoint(cp.id(), cp.remaining_ttl());
        if (record.ok()) {
          batch.PutMeta(at, kLeasePrefix + Hex16(cp.id()), lease::EncodeLeaseRecord(*record));
        }
      }
      result.response = std::make_shared<etcdserverpb::LeaseCheckpointResponse>();
      break;
    }
    case InternalRequest::kMemberAttributes: {
      const auto& a = request.member_attributes();
      const std::string key = kMemberPrefix + Hex16(a.id());
      internal::MemberRecord record;
      auto existing = batch.GetMeta(key);
      if (existing.ok() && existing->has_value()) {
        (void)record.ParseFromString(**existing);
      } else {
        std::lock_guard<std::mutex> lock(members_mu_);
        auto it = members_.find(a.id());
        if (it == members_.end()) break;  // Not (or no longer) a member.
        record = ToRecord(it->second);
      }
      record.set_id(a.id());
      record.set_name(a.name());
      record.mutable_client_urls()->CopyFrom(a.client_urls());
      batch.PutMeta(at, key, record.SerializeAsString());
      out.members_changed = true;
      break;
    }
    case InternalRequest::kMemberUpdate:
      result.status = ApplyMemberUpdate(batch, at, request.member_update(), out.conf_nodes);
      out.members_changed = out.members_changed || result.status.ok();
      break;
    default:
      BLOG_ERROR("member {}: skipping an entry with no request at index {}", options_.node.name,
                 entry.index);
      return;
  }
  result.revision = batch.CurrentRevision();
  out.results.emplace_back(request.id(), std::move(result));
}

std::map<NodeId, internal::MemberRecord> Member::MembersAsOf(mvcc::ApplyBatch& batch,
                                                             const std::set<NodeId>& conf_nodes) {
  std::map<NodeId, internal::MemberRecord> view;
  std::set<NodeId> ids = conf_nodes;
  {
    std::lock_guard<std::mutex> lock(members_mu_);
    for (const auto& [id, m] : members_) {
      ids.insert(id);
      view[id] = ToRecord(m);
    }
  }
  for (NodeId id : ids) {
    auto record = batch.GetMeta(kMemberPrefix + Hex16(id));
    auto removed = batch.GetMeta(kRemovedPrefix + Hex16(id));
    if (record.ok() && record->has_value()) {
      (void)view[id].ParseFromString(**record);
    } else if (removed.ok() && removed->has_value()) {
      view.erase(id);
    }
  }
  view.erase(consensus::kNoNode);
  return view;
}

Status Member::ApplyMemberUpdate(mvcc::ApplyBatch& batch, const mvcc::LogPosition& at,
                                 const etcdserverpb::MemberUpdateRequest& update,
                                 const std::set<NodeId>& conf_nodes) {
  // Checked again here, in log order: the checks at proposal time may race with other changes.
  // The view must not depend on how entries were cut into batches (members_ is reloaded only
  // after a batch), or members would decide differently.
  std::map<NodeId, internal::MemberRecord> view = MembersAsOf(batch, conf_nodes);
  auto it = view.find(update.id());
  if (it == view.end()) return ErrMemberNotFound();
  std::vector<MemberInfo> others;
  for (const auto& [id, r] : view) others.push_back(FromRecord(r));
  if (PeerUrlTaken(others, update.id(), update.peerurls())) return ErrPeerUrlExists();
  const std::string key = kMemberPrefix + Hex16(update.id());
  internal::MemberRecord record = it->second;
  record.set_id(update.id());
  record.mutable_peer_urls()->CopyFrom(update.peerurls());
  batch.PutMeta(at, key, record.SerializeAsString());
  BLOG_INFO("member {}: member {:x} now has peer URLs {}", options_.node.name, update.id(),
            JoinStrings(update.peerurls()));
  return Status::Ok();
}

NodeId Member::ApplyConfChange(mvcc::ApplyBatch& batch, const Entry& entry) {
  const mvcc::LogPosition at{entry.index, entry.term};
  ConfChange cc;
  if (!ConfChange::Decode(entry.data, &cc)) {
    BLOG_ERROR("member {}: undecodable conf change at index {}", options_.node.name, entry.index);
    return consensus::kNoNode;
  }
  const std::string key = kMemberPrefix + Hex16(cc.node);
  internal::MemberRecord record;
  auto existing = batch.GetMeta(key);
  if (existing.ok() && existing->has_value()) {
    (void)record.ParseFromString(**existing);
  } else if (!cc.context.empty()) {
    (void)record.ParseFromString(cc.context);
  } else {
    std::lock_guard<std::mutex> lock(members_mu_);
    auto it = members_.find(cc.node);
    if (it != members_.end()) record = ToRecord(it->second);
  }
  record.set_id(cc.node);
  switch (cc.type) {
    case ConfChangeType::kAddLearner:
    case ConfChangeType::kAddVoter:
      record.set_is_learner(cc.type == ConfChangeType::kAddLearner);
      batch.PutMeta(at, key, record.SerializeAsString());
      BLOG_INFO("member {}: member {:x} added as {}", options_.node.name, cc.node,
                record.is_learner() ? "learner" : "voter");
      break;
    case ConfChangeType::kRemove:
      batch.DeleteMeta(at, key);
      batch.PutMeta(at, kRemovedPrefix + Hex16(cc.node), "");
      BLOG_INFO("member {}: member {:x} removed", options_.node.name, cc.node);
      if (cc.node == options_.node.id) removed_self_ = true;
      break;
  }
  return cc.node;
}

Result<std::string> Member::SnapshotStream() {
  ASSIGN_OR_RETURN(auto writer, store_->NewSnapshotWriter(""));
  ASSIGN_OR_RETURN(std::string data, writer->ReadAll());
  // etcdctl's `snapshot save` takes the last 32 bytes as a SHA-256 of the rest and requires
  // size % 512 == 32 (etcd's image is a page-aligned bbolt file): pad with zeros to a multiple of
  // 512, then append the hash. The store stream is the prefix; its own framing ends it.
  data.resize((data.size() + kSnapshotAlignBytes - 1) / kSnapshotAlignBytes * kSnapshotAlignBytes,
              '\0');
  const std::array<uint8_t, 32> sum = Sha256(data);
  data.append(reinterpret_cast<const char*>(sum.data()), sum.size());
  return data;
}

Result<SnapshotSource> Member::SnapshotLater() {
  (void)store_->MakeDurable();
  // The writer reads through a RocksDB snapshot and pins the store (an install waits for it).
  ASSIGN_OR_RETURN(std::unique_ptr<mvcc::SnapshotWriter> writer, store_->NewSnapshotWriter(""));
  std::shared_ptr<mvcc::SnapshotWriter> shared = std::move(writer);
  return SnapshotSource([shared](std::string* chunk) { return shared->Next(chunk); });
}

Result<std::string> Member::Snapshot() {
  (void)store_->MakeDurable();
  ASSIGN_OR_RETURN(auto writer, store_->NewSnapshotWriter(""));
  return writer->ReadAll();
}

Status Member::Restore(const std::string& data, Index index) {
  std::lock_guard<std::mutex> store_write(store_write_mu_);
  ASSIGN_OR_RETURN(auto installer, store_->NewSnapshotInstaller());
  RETURN_IF_ERROR(installer->Append(data));
  RETURN_IF_ERROR(installer->Finish().status());
  if (store_->Applied().index != index) {
    return Status::DataLoss(fmt::format("snapshot at index {} holds a store applied to {}", index,
                                        store_->Applied().index));
  }
  RETURN_IF_ERROR(RestoreLessor());
  LoadMembers();
  LoadAlarms();
  if (hub_) hub_->Restored();
  if (options_.on_members_changed && node_) options_.on_members_changed(Members());
  return Status::Ok();
}

Status Member::RestoreLessor() {
  ASSIGN_OR_RETURN(auto records, store_->ScanMeta(kLeasePrefix));
  std::vector<lease::LeaseRecord> leases;
  for (const auto& [key, value] : records) {
    ASSIGN_OR_RETURN(lease::LeaseRecord r, lease::DecodeLeaseRecord(value));
    leases.push_back(r);
  }
  // Keys name their lease; finding them takes a scan of every key (2.6 s at 1,000,000 keys),
  // which no key needs while no lease exists (revoking a lease deletes its keys).
  if (leases.empty()) return lessor_->Restore(leases, {}).status();
  mvcc::RangeRequest all;
  all.key = std::string(1, '\0');
  all.range_end = std::string(1, '\0');
  all.keys_only = true;
  ASSIGN_OR_RETURN(mvcc::RangeResponse range, store_->Range(all));
  std::vector<std::pair<std::string, mvcc::LeaseId>> key_leases;
  for (const auto& kv : range.kvs) {
    if (kv.lease != 0) key_leases.emplace_back(kv.key, kv.lease);
  }
  ASSIGN_OR_RETURN(lease::RestoreReport report, lessor_->Restore(leases, key_leases));
  for (const auto& [key, id] : report.orphan_keys) {
    BLOG_WARN("member {}: key {} names lease {:x}, which does not exist", options_.node.name, key,
              id);
  }
  return Status::Ok();
}

void Member::LoadMembers() {
  std::map<NodeId, MemberInfo> members;
  std::set<NodeId> removed;
  for (const MemberInfo& m : options_.initial_members) members[m.id] = m;
  auto records = store_->ScanMeta(kMemberPrefix);
  if (records.ok()) {
    for (const auto& [key, value] : *records) {
      internal::MemberRecord r;
      if (r.ParseFromString(value)) members[r.id()] = FromRecord(r);
    }
  }
  auto gone = store_->ScanMeta(kRemovedPrefix);
  if (gone.ok()) {
    for (const auto& [key, value] : *gone) {
      const NodeId id = std::stoull(key.substr(sizeof(kRemovedPrefix) - 1), nullptr, 16);
      removed.insert(id);
      members.erase(id);
    }
  }
  std::lock_guard<std::mutex> lock(members_mu_);
  members_ = std::move(members);
  removed_ = std::move(removed);
}

Result<std::vector<mvcc::Event>> Member::ReadEvents(mvcc::Revision from, mvcc::Revision to,
                                                    std::string_view key,
                                                    std::string_view range_end,
                                                    size_t limit_events) {
  mvcc::EventsRequest r;
  r.from_revision = from;
  r.to_revision = to;
  r.key = std::string(key);
  r.range_end = std::string(range_end);
  r.limit = limit_events;
  ASSIGN_OR_RETURN(mvcc::EventsResponse events, store_->ReadEvents(r));
  return std::move(events.events);
}

// ---- Housekeeping ----

// etcd's compactors, simplified: revision mode keeps the last N revisions (checked every 5 s);
// periodic mode samples the revision every period/10 and compacts to the sample one period old.
void Member::AutoCompact(int64_t now_ms) {
  constexpr int64_t kRevisionCheckMs = 5000;
  const mvcc::Revision current = store_->CurrentRevision();
  mvcc::Revision target = 0;
  if (options_.auto_compaction_revisions > 0) {
    if (now_ms - last_compaction_ms_ < kRevisionCheckMs) return;
    target = current - options_.auto_compaction_revisions;
  } else if (options_.auto_compaction_period_ms > 0) {
    const int64_t interval_ms = std::max<int64_t>(1000, options_.auto_compaction_period_ms / 10);
    if (revision_samples_.empty() || now_ms - revision_samples_.back().first >= interval_ms) {
      revision_samples_.emplace_back(now_ms, current);
    }
    while (revision_samples_.size() > 1 &&
           now_ms - revision_samples_[1].first >= options_.auto_compaction_period_ms) {
      revision_samples_.pop_front();
    }
    if (now_ms - revision_samples_.front().first < options_.auto_compaction_period_ms) return;
    if (now_ms - last_compaction_ms_ < interval_ms) return;
    target = revision_samples_.front().second;
  } else {
    return;
  }
  last_compaction_ms_ = now_ms;
  if (target <= store_->CompactRevision() || target <= 0) return;
  InternalRequest ir;
  ir.set_id(next_request_id_.fetch_add(1));
  ir.mutable_compaction()->set_revision(target);
  if (node_->Propose(ir.SerializeAsString(), RequestDeadline()).ok()) {
    BLOG_INFO("member {}: auto compaction to revision {}", options_.node.name, target);
  }
}

void Member::Housekeeping() {
  Clock::time_point next_publish = Clock::now();
  Clock::time_point removed_at{};
  bool published = false;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(housekeeping_mu_);
      housekeeping_cv_.wait_for(lock, std::chrono::milliseconds(kHousekeepingIntervalMs),
                                [&] { return stopping_; });
      if (stopping_) return;
    }
    const NodeStatus st = node_->status();
    if (!st.fatal.ok()) {
      // The node stopped on an error: nothing more will be applied, so every asynchronous request
      // still waiting for its entry is answered now rather than only at Stop (a client of a member
      // that is not exited on on_fatal would otherwise hang).
      wait_.Expire(Clock::time_point::max(), ErrStopped());
      leader_answers_.Expire(Clock::time_point::max(), ErrStopped());
      continue;
    }
    const int64_t now_ms = NowMs();
    const bool leader = st.soft.role == consensus::Role::kLeader;
    if (leader && !lessor_->primary()) {
      lessor_->Promote(now_ms, options_.election_timeout_ms);
    } else if (!leader && lessor_->primary()) {
      lessor_->Demote();
    }
    if (leader) {
      // Expiry and checkpoints take effect only through the log; a lost proposal is retried
      // (the lessor returns an expired lease again after its retry interval).
      for (mvcc::LeaseId id : lessor_->Expired(now_ms, kExpiredLeasesPerRoundMax)) {
        InternalRequest ir;
        ir.set_id(next_request_id_.fetch_add(1));
        ir.mutable_lease_revoke()->set_id(id);
        (void)node_->Propose(ir.SerializeAsString(), RequestDeadline());
      }
      auto checkpoints = lessor_->Checkpoints(now_ms, kCheckpointsPerRoundMax);
      if (!checkpoints.empty()) {
        InternalRequest ir;
        ir.set_id(next_request_id_.fetch_add(1));
        for (const auto& cp : checkpoints) {
          auto* c = ir.mutable_lease_checkpoint()->add_checkpoints();
          c->set_id(cp.id);
          c->set_remaining_ttl(cp.remaining_ttl_s);
        }
        (void)node_->Propose(ir.SerializeAsString(), RequestDeadline());
      }
    }
    if (leader) AutoCompact(now_ms);
    if (options_.quota_backend_bytes > 0) store_bytes_ = StoreBytes();
    wait_.Expire(Clock::now(), ErrTimeout());
    leader_answers_.Expire(Clock::now(), ErrTimeout());
    hub_->SyncUnsynced();
    hub_->Tick(now_ms);

    if (!published && st.soft.leader != consensus::kNoNode && Clock::now() >= next_publish) {
      next_publish = Clock::now() + std::chrono::milliseconds(kPublishRetryMs);
      InternalRequest ir;
      auto* a = ir.mutable_member_attributes();
      a->set_id(options_.node.id);
      a->set_name(options_.node.name);
      for (const auto& u : options_.client_urls) a->add_client_urls(u);
      auto r = ProposeAndWait(std::move(ir));
      if (r.ok() && r->status.ok()) {
        published = true;
        BLOG_INFO("member {}: published its client URLs to the cluster", options_.node.name);
      }
    }
    if (removed_self_.load()) {
      if (removed_at == Clock::time_point{}) removed_at = Clock::now();
      if (Clock::now() - removed_at > std::chrono::milliseconds(kRemovedExitDelayMs) &&
          options_.node.on_fatal) {
        options_.node.on_fatal(
            Status::FailedPrecondition("this member was removed from the cluster"));
        return;
      }
    }
  }
}

}  // namespace ballot::server
