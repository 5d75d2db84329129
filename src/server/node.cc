#include "server/node.h"

#include <algorithm>
#include <utility>

#include "base/logging.h"
#include "base/thread_name.h"
#include "server/snapshot_file.h"

namespace ballot::server {

using consensus::ConfChange;
using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::Index;
using consensus::Message;
using consensus::NodeId;
using consensus::Ready;
using consensus::Role;
using consensus::SoftState;

namespace {

using Promise = std::promise<Result<Index>>;

std::string Hex(uint64_t id) { return fmt::format("{:x}", id); }

}  // namespace

Result<std::unique_ptr<Node>> Node::Open(NodeOptions options, StateMachine* sm, PeerSender* peers) {
  if (options.id == consensus::kNoNode) return Status::InvalidArgument("node id must not be 0");
  if (options.tick_ms <= 0) return Status::InvalidArgument("tick_ms must be positive");
  if (options.snapshot_count == 0) return Status::InvalidArgument("snapshot_count must be >= 1");
  std::unique_ptr<Node> node(new Node(std::move(options), sm, peers));
  RETURN_IF_ERROR(node->Init());
  node->engine_thread_ = std::thread([n = node.get()] {
    SetThreadName("ballot-engine");
    n->EngineLoop();
  });
  node->apply_thread_ = std::thread([n = node.get()] {
    SetThreadName("ballot-apply");
    n->ApplyLoop();
  });
  return node;
}

Node::Node(NodeOptions options, StateMachine* sm, PeerSender* peers)
    : options_(std::move(options)),
      sm_(sm),
      peers_(peers),
      env_(options_.env != nullptr ? options_.env : wal::Env::Default()),
      apply_queue_(options_.apply_queue_max) {}

Node::~Node() { Stop(); }

Status Node::Init() {
  wal::Env* env = env_;
  wal::Identity identity;
  identity.cluster_id = options_.cluster_id;
  identity.member_id = options_.id;
  identity.engine = std::string(consensus::EngineKindName(options_.engine));
  wal::WalOptions wal_options;
  wal_options.segment_bytes = options_.wal_segment_bytes;
  if (metrics::Histogram* fsync = options_.metrics.wal_fsync_seconds) {
    wal_options.on_sync = [fsync](std::chrono::nanoseconds d) {
      fsync->Observe(std::chrono::duration<double>(d).count());
    };
  }
  ASSIGN_OR_RETURN(auto wal, wal::Wal::Open(env, options_.wal_dir, wal_options, identity));
  if (wal->recovery().truncated) {
    BLOG_WARN("member {}: WAL recovery cut a torn record in {} at byte {}: {}", options_.name,
              wal->recovery().file, wal->recovery().offset, wal->recovery().problem);
  }
  storage_ = std::make_unique<wal::WalStorage>(std::move(wal));
  RETURN_IF_ERROR(env->CreateDir(options_.snap_dir));

  const consensus::SnapshotMeta snap = storage_->GetSnapshotMeta();
  if (snap.index > 0 && sm_->applied_index() < snap.index) {
    // A snapshot received from the leader may be durable in the WAL but not yet installed.
    ASSIGN_OR_RETURN(std::string data, ReadSnapshotFile(env, options_.snap_dir, snap.index));
    BLOG_INFO("member {}: restoring the state machine from snapshot {}", options_.name, snap.index);
    RETURN_IF_ERROR(sm_->Restore(data, snap.index));
    storage_->SetSnapshotData(std::move(data));
  } else if (snap.index > 0) {
    // The state machine has it already: the data is read only if a member needs it sent.
    ASSIGN_OR_RETURN(uint64_t bytes,
                     env->FileSize(options_.snap_dir + "/" + SnapshotFileName(snap.index)));
    (void)bytes;  // Present; its checksum is verified when it is read.
    LoadSnapshotLazily();
  } else {
    ConfState conf;
    conf.voters = options_.initial_voters;
    storage_->SetInitialConfState(conf);
  }
  last_snapshot_index_ = snap.index;

  const Index applied = sm_->applied_index();
  if (applied > storage_->LastIndex()) {
    return Status::FailedPrecondition(
        fmt::format("the state machine has applied index {} but the WAL ends at {}: the WAL of "
                    "this member was lost or replaced",
                    applied, storage_->LastIndex()));
  }
  consensus::Config config;
  config.id = options_.id;
  config.election_ticks = options_.election_ticks;
  config.heartbeat_ticks = options_.heartbeat_ticks;
  config.pre_vote = options_.pre_vote;
  config.check_quorum = options_.check_quorum;
  config.read_mode = options_.read_mode;
  config.lease_drift_ticks = options_.lease_drift_ticks;
  config.max_message_bytes = options_.max_message_bytes;
  config.max_uncommitted_bytes = options_.max_uncommitted_bytes;
  config.applied = applied;
  config.seed = options_.seed;
  config.storage = storage_.get();
  ASSIGN_OR_RETURN(engine_, consensus::NewEngine(options_.engine, config));
  applied_conf_ = engine_->conf_state();

  std::lock_guard<std::mutex> lock(status_mu_);
  status_.soft = engine_->soft_state();
  status_.committed = engine_->committed_index();
  status_.applied = applied;
  status_.conf = engine_->conf_state();
  BLOG_INFO("member {} ({}): {} engine started at term {}, applied {}, last index {}, voters {}",
            options_.name, Hex(options_.id), consensus::EngineKindName(options_.engine),
            engine_->hard_state().term, applied, storage_->LastIndex(),
            engine_->conf_state().ToString());
  return Status::Ok();
}

void Node::Stop() {
  stop_requested_ = true;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    stopping_ = true;
  }
  inbox_cv_.notify_all();
  apply_queue_.Close();
  if (engine_thread_.joinable()) engine_thread_.join();
  if (apply_thread_.joinable()) apply_thread_.join();
  if (snapshot_thread_.joinable()) snapshot_thread_.join();
  applied_cv_.notify_all();
  ReleaseApplied(0, /*stopped=*/true);
}

void Node::Fail(const Status& s) {
  // Errors caused by Stop() itself (a closed queue) are not failures.
  if (stop_requested_.load() || failed_.exchange(true)) return;
  BLOG_ERROR("member {}: stopping on an error: {}", options_.name, s.ToString());
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status_.fatal = s;
  }
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    stopping_ = true;
  }
  inbox_cv_.notify_all();
  apply_queue_.Close();
  applied_cv_.notify_all();
  ReleaseApplied(0, /*stopped=*/true);
  if (options_.on_fatal) options_.on_fatal(s);
}

// ---- Requests from other threads ----

void Node::Step(Message message) {
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (stopping_ || inbound_.size() >= options_.inbound_queue_max) return;
    inbound_.push_back(std::move(message));
  }
  inbox_cv_.notify_one();
}

Result<Index> Node::Submit(Request request) {
  auto done = std::make_shared<Promise>();
  auto future = done->get_future();
  const Deadline deadline = request.deadline;
  request.done = [done](Result<Index> r) { done->set_value(std::move(r)); };
  SubmitAsync(std::move(request));
  if (future.wait_until(deadline) != std::future_status::ready) {
    return Status(StatusCode::kDeadlineExceeded, "request timed out");
  }
  return future.get();
}

void Node::SubmitAsync(Request request) {
  Status refused;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    if (stopping_) {
      refused = Status::Unavailable("the member is stopping");
    } else if (requests_.size() >= options_.request_queue_max) {
      refused = Status::ResourceExhausted("too many requests waiting for the consensus engine");
    } else {
      requests_.push_back(std::move(request));
    }
  }
  if (!refused.ok()) {
    request.done(refused);
    return;
  }
  inbox_cv_.notify_one();
}

void Node::ProposeAsync(std::string data, Deadline deadline, std::function<void(Status)> accepted) {
  Request r;
  r.kind = RequestKind::kPropose;
  r.data = std::move(data);
  r.deadline = deadline;
  r.done = [accepted = std::move(accepted)](Result<Index> result) {
    accepted(result.ok() ? Status::Ok() : result.status());
  };
  SubmitAsync(std::move(r));
}

void Node::ReadIndexAsync(Deadline deadline, std::function<void(Result<Index>)> done) {
  Request r;
  r.kind = RequestKind::kRead;
  r.deadline = deadline;
  r.done = std::move(done);
  SubmitAsync(std::move(r));
}

void Node::WhenApplied(Index index, Deadline deadline, std::function<void(Status)> done) {
  Status now;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (applied_waiters_closed_) {
      now = Status::Unavailable("the member stopped");
    } else if (status_.applied < index) {
      applied_waiters_.emplace(index, AppliedWaiter{deadline, std::move(done)});
      return;
    }
  }
  done(now);
}

void Node::ReleaseApplied(Index applied, bool stopped) {
  std::vector<std::function<void(Status)>> ready;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (stopped) applied_waiters_closed_ = true;
    auto end = stopped ? applied_waiters_.end() : applied_waiters_.upper_bound(applied);
    for (auto it = applied_waiters_.begin(); it != end; ++it) {
      ready.push_back(std::move(it->second.done));
    }
    applied_waiters_.erase(applied_waiters_.begin(), end);
  }
  const Status s = stopped ? Status::Unavailable("the member stopped") : Status::Ok();
  for (auto& done : ready) done(s);
}

void Node::ExpireAppliedWaiters(Clock::time_point now) {
  if (now < next_applied_expiry_) return;  // A scan per tick is enough.
  next_applied_expiry_ = now + std::chrono::milliseconds(options_.tick_ms);
  std::vector<std::function<void(Status)>> expired;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    for (auto it = applied_waiters_.begin(); it != applied_waiters_.end();) {
      if (it->second.deadline > now) {
        ++it;
        continue;
      }
      expired.push_back(std::move(it->second.done));
      it = applied_waiters_.erase(it);
    }
  }
  for (auto& done : expired) {
    done(Status(StatusCode::kDeadlineExceeded, "request timed out waiting to apply"));
  }
}

Status Node::Propose(std::string data, Deadline deadline) {
  Request r;
  r.kind = RequestKind::kPropose;
  r.data = std::move(data);
  r.deadline = deadline;
  auto result = Submit(std::move(r));
  return result.ok() ? Status::Ok() : result.status();
}

Status Node::ProposeConfChange(const ConfChange& change, Deadline deadline) {
  Request r;
  r.kind = RequestKind::kConfChange;
  r.change = change;
  r.deadline = deadline;
  auto result = Submit(std::move(r));
  return result.ok() ? Status::Ok() : result.status();
}

Status Node::TransferLeadership(NodeId to, Deadline deadline) {
  Request r;
  r.kind = RequestKind::kTransfer;
  r.to = to;
  r.deadline = deadline;
  auto result = Submit(std::move(r));
  return result.ok() ? Status::Ok() : result.status();
}

Result<Index> Node::ReadIndex(Deadline deadline) {
  Request r;
  r.kind = RequestKind::kRead;
  r.deadline = deadline;
  return Submit(std::move(r));
}

Status Node::WaitApplied(Index index, Deadline deadline) {
  std::unique_lock<std::mutex> lock(status_mu_);
  const bool reached = applied_cv_.wait_until(lock, deadline, [&] {
    return status_.applied >= index || !status_.fatal.ok() || failed_.load();
  });
  if (!status_.fatal.ok())
    return Status::Unavailable("the member stopped: " + status_.fatal.message());
  if (!reached) return Status(StatusCode::kDeadlineExceeded, "request timed out waiting to apply");
  return Status::Ok();
}

NodeStatus Node::status() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return status_;
}

// ---- The engine thread ----

void Node::EngineLoop() {
  const auto tick = std::chrono::milliseconds(options_.tick_ms);
  Clock::time_point next_tick = Clock::now() + tick;
  while (true) {
    std::vector<Message> inbound;
    std::vector<Request> requests;
    std::optional<MadeSnapshot> made;
    {
      std::unique_lock<std::mutex> lock(inbox_mu_);
      inbox_cv_.wait_until(lock, next_tick, [&] {
        return stopping_ || !inbound_.empty() || !requests_.empty() || made_snapshot_;
      });
      if (stopping_) break;
      inbound.swap(inbound_);
      requests.swap(requests_);
      made.swap(made_snapshot_);
    }
    // Every missed tick first, so that a pause cannot stretch a leader lease.
    const Clock::time_point now = Clock::now();
    while (now >= next_tick) {
      engine_->Tick();
      next_tick += tick;
    }
    for (const Message& m : inbound) {
      Status s = engine_->Step(m);
      if (!s.ok())
        BLOG_DEBUG("member {}: dropped {}: {}", options_.name, m.ToString(), s.ToString());
    }
    HandleRequests(std::move(requests));
    Status s = made ? SaveLocalSnapshot(std::move(*made)) : Status::Ok();
    while (s.ok() && engine_->HasReady()) s = HandleReady();
    if (!s.ok()) {
      Fail(s);
      break;
    }
    ExpireReads(now);
    ExpireAppliedWaiters(now);
    PublishStatus();
  }
  // Fail every request still waiting, so no caller hangs until its deadline.
  std::vector<Request> left;
  {
    std::lock_guard<std::mutex> lock(inbox_mu_);
    left.swap(requests_);
  }
  for (Request& r : left) r.done(Status::Unavailable("the member is stopping"));
  for (auto& [ctx, read] : pending_reads_) {
    for (auto& w : read.waiters) w(Status::Unavailable("the member is stopping"));
  }
  pending_reads_.clear();
}

void Node::HandleRequests(std::vector<Request> requests) {
  PendingRead reads;
  for (Request& r : requests) {
    switch (r.kind) {
      case RequestKind::kPropose: {
        Status s = engine_->Propose(std::move(r.data));
        r.done(s.ok() ? Result<Index>(0) : Result<Index>(s));
        break;
      }
      case RequestKind::kConfChange: {
        Status s = engine_->ProposeConfChange(r.change);
        r.done(s.ok() ? Result<Index>(0) : Result<Index>(s));
        break;
      }
      case RequestKind::kTransfer: {
        Status s = engine_->TransferLeadership(r.to);
        r.done(s.ok() ? Result<Index>(0) : Result<Index>(s));
        break;
      }
      case RequestKind::kRead:
        reads.deadline = std::max(reads.deadline, r.deadline);
        reads.waiters.push_back(std::move(r.done));
        break;
    }
  }
  if (reads.waiters.empty()) return;
  // One engine read index serves every read that arrived before it was asked for.
  std::string context = std::to_string(next_read_context_++);
  Status s = engine_->ReadIndex(context);
  if (!s.ok()) {
    for (auto& w : reads.waiters) w(s);
    return;
  }
  pending_reads_.emplace(std::move(context), std::move(reads));
}

void Node::ExpireReads(Clock::time_point now) {
  for (auto it = pending_reads_.begin(); it != pending_reads_.end();) {
    if (it->second.deadline > now) {
      ++it;
      continue;
    }
    for (auto& w : it->second.waiters) {
      w(Status(StatusCode::kDeadlineExceeded, "read index timed out"));
    }
    it = pending_reads_.erase(it);
  }
}

Status Node::HandleReady() {
  Ready rd = engine_->GetReady();
  if (rd.soft_state) {
    SoftState old_soft;
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      old_soft = status_.soft;
      status_.soft = *rd.soft_state;
    }
    LogSoftState(old_soft, *rd.soft_state);
    // etcd's leader_changes_seen: a new leader, not the loss of one.
    if (options_.metrics.leader_changes != nullptr && rd.soft_state->leader != consensus::kNoNode &&
        rd.soft_state->leader != old_soft.leader) {
      options_.metrics.leader_changes->Inc();
    }
    if (options_.on_soft_state) options_.on_soft_state(*rd.soft_state);
  }
  // 1. Appends and heartbeats promise nothing durable: send them while we write.
  if (!rd.messages.empty()) peers_->Send(std::move(rd.messages));
  // 2. Snapshot, entries, hard state, durable in that order.
  if (rd.snapshot) {
    std::lock_guard<std::mutex> files(snap_files_mu_);
    RETURN_IF_ERROR(
        WriteSnapshotFile(env_, options_.snap_dir, rd.snapshot->meta.index, rd.snapshot->data));
    consensus::Snapshot marker;  // The data stays in the file (and goes to the apply thread).
    marker.meta = rd.snapshot->meta;
    RETURN_IF_ERROR(storage_->SaveSnapshot(std::move(marker)));
    LoadSnapshotLazily();
  }
  if (!rd.entries.empty() || rd.hard_state) {
    // A commit index alone is written without a sync (etcd's MustSync): half the fsyncs of a
    // follower, which learns each commit index in a message of its own.
    RETURN_IF_ERROR(storage_->Save(rd.hard_state ? &*rd.hard_state : nullptr, rd.entries,
                                   /*sync=*/rd.MustSync()));
  } else if (rd.snapshot) {
    RETURN_IF_ERROR(storage_->wal()->Sync());
  }
  if (rd.snapshot) {
    std::lock_guard<std::mutex> files(snap_files_mu_);
    RETURN_IF_ERROR(RemoveSnapshotFilesBefore(env_, options_.snap_dir, rd.snapshot->meta.index));
  }
  // 3. Votes and acknowledgements promise durability: only now.
  if (!rd.messages_after_persist.empty()) peers_->Send(std::move(rd.messages_after_persist));
  for (const consensus::ReadState& rs : rd.read_states) {
    auto it = pending_reads_.find(rs.context);
    if (it == pending_reads_.end()) continue;
    for (auto& w : it->second.waiters) w(rs.index);
    pending_reads_.erase(it);
  }
  // 4. Apply, on the apply thread, in order. Waits when the apply thread is far behind.
  if (rd.snapshot || !rd.committed_entries.empty()) {
    ApplyTask task;
    task.snapshot = std::move(rd.snapshot);
    task.entries = std::move(rd.committed_entries);
    if (!apply_queue_.Push(std::move(task))) return Status::Unavailable("the member is stopping");
  }
  engine_->Advance();
  return Status::Ok();
}

void Node::LoadSnapshotLazily() {
  storage_->SetSnapshotLoader([this](Index index) -> Result<std::string> {
    Result<std::string> data = ReadSnapshotFile(env_, options_.snap_dir, index);
    if (!data.ok()) Fail(data.status());  // A member behind compaction cannot be caught up.
    return data;
  });
}

Status Node::SaveLocalSnapshot(MadeSnapshot made) {
  const Index current = storage_->GetSnapshotMeta().index;
  if (made.index <= current) return Status::Ok();  // A received snapshot overtook it.
  auto term = storage_->TermAt(made.index);
  if (!term.ok()) return Status::Ok();  // Compacted or replaced meanwhile; the next one will do.
  wal::Env* env = env_;
  consensus::Snapshot snap;
  snap.meta.index = made.index;
  snap.meta.term = *term;
  snap.meta.conf = std::move(made.conf);
  RETURN_IF_ERROR(storage_->SaveSnapshot(std::move(snap)));
  LoadSnapshotLazily();  // The file has it; memory need not (it may be hundreds of MiB).
  // Compact syncs first, so the marker that allows dropping these segments is durable.
  RETURN_IF_ERROR(storage_->wal()->Compact(made.index));
  {
    std::lock_guard<std::mutex> files(snap_files_mu_);
    RETURN_IF_ERROR(RemoveSnapshotFilesBefore(env, options_.snap_dir, made.index));
  }
  BLOG_INFO("member {}: saved snapshot at index {} term {}", options_.name, made.index, *term);
  return Status::Ok();
}

void Node::PublishStatus() {
  std::lock_guard<std::mutex> lock(status_mu_);
  status_.soft = engine_->soft_state();
  status_.committed = engine_->committed_index();
  status_.conf = engine_->conf_state();
}

void Node::LogSoftState(const SoftState& old_soft, const SoftState& soft) {
  auto name = [](NodeId id) { return id == consensus::kNoNode ? std::string("none") : Hex(id); };
  if (soft.role == Role::kCandidate &&
      (old_soft.role != Role::kCandidate || soft.term != old_soft.term)) {
    BLOG_INFO("member {} ({}): campaigning at term {}", options_.name, Hex(options_.id), soft.term);
  }
  if (soft.role == Role::kLeader && old_soft.role != Role::kLeader) {
    BLOG_INFO("member {} ({}): became leader at term {} (previous leader {})", options_.name,
              Hex(options_.id), soft.term, name(old_soft.leader));
  } else if (soft.leader != old_soft.leader) {
    if (soft.leader == consensus::kNoNode) {
      BLOG_INFO("member {} ({}): lost the leader {} at term {}", options_.name, Hex(options_.id),
                name(old_soft.leader), soft.term);
    } else {
      BLOG_INFO("member {} ({}): leader changed to {} at term {} (previous leader {})",
                options_.name, Hex(options_.id), Hex(soft.leader), soft.term,
                name(old_soft.leader));
    }
  }
}

// ---- The apply thread ----

void Node::ApplyLoop() {
  while (true) {
    std::optional<ApplyTask> task = apply_queue_.Pop();
    if (!task) return;
    Status s = ApplyTaskNow(std::move(*task));
    if (!s.ok()) return Fail(s);
  }
}

Status Node::ApplyTaskNow(ApplyTask task) {
  if (task.snapshot) {
    const Index index = task.snapshot->meta.index;
    if (index > sm_->applied_index()) {
      RETURN_IF_ERROR(sm_->Restore(task.snapshot->data, index));
      applied_conf_ = task.snapshot->meta.conf;
      last_snapshot_index_ = index;
      BLOG_INFO("member {}: installed the leader's snapshot at index {}", options_.name, index);
    }
  }
  // Entries at or below the applied index were applied already (before a snapshot or a restart).
  const Index applied = sm_->applied_index();
  std::vector<Entry> todo;
  for (Entry& e : task.entries) {
    if (e.index > applied) todo.push_back(std::move(e));
  }
  if (!todo.empty()) {
    if (todo.front().index != applied + 1) {
      return Status::Internal(
          fmt::format("apply gap: applied {} but handed index {}", applied, todo.front().index));
    }
    const Clock::time_point start = Clock::now();
    RETURN_IF_ERROR(sm_->Apply(todo));
    if (options_.metrics.apply_seconds != nullptr) {
      options_.metrics.apply_seconds->Observe(
          std::chrono::duration<double>(Clock::now() - start).count());
    }
    for (const Entry& e : todo) {
      if (e.type != EntryType::kConfChange) continue;
      ConfChange cc;
      if (ConfChange::Decode(e.data, &cc))
        applied_conf_ = consensus::ApplyConfChange(applied_conf_, cc);
    }
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status_.applied = sm_->applied_index();
  }
  applied_cv_.notify_all();
  ReleaseApplied(sm_->applied_index(), /*stopped=*/false);

  // Building a snapshot reads the whole store (~265 MB at 1,000,000 keys): on the apply thread it
  // held every write back for seconds, and writing its file held the engine thread's Ready loop.
  const Index now_applied = sm_->applied_index();
  if (now_applied >= last_snapshot_index_ + options_.snapshot_count && !snapshot_building_) {
    ASSIGN_OR_RETURN(auto build, sm_->SnapshotLater());
    last_snapshot_index_ = now_applied;
    if (snapshot_thread_.joinable()) snapshot_thread_.join();  // Finished: the flag is down.
    snapshot_building_ = true;
    snapshot_thread_ =
        std::thread([this, now_applied, conf = applied_conf_, build = std::move(build)]() mutable {
          SetThreadName("ballot-snapshot");
          BuildSnapshot(now_applied, std::move(conf), std::move(build));
        });
  }
  return Status::Ok();
}

void Node::BuildSnapshot(Index index, consensus::ConfState conf, SnapshotSource source) {
  // Streamed into <name>.part without the files lock (the engine thread may need it meanwhile);
  // only the rename takes it.
  Status s = WriteSnapshotPart(env_, options_.snap_dir, index, source);
  source = nullptr;  // Releases the state machine's view (a Restore may be waiting for it).
  if (s.ok()) {
    std::lock_guard<std::mutex> files(snap_files_mu_);
    s = PublishSnapshotPart(env_, options_.snap_dir, index);
  }
  if (s.ok()) {
    {
      std::lock_guard<std::mutex> lock(inbox_mu_);
      made_snapshot_ = MadeSnapshot{index, std::move(conf)};
    }
    inbox_cv_.notify_one();
  }
  snapshot_building_ = false;
  if (!s.ok()) Fail(s);
}

Result<SnapshotSource> StateMachine::SnapshotLater() {
  ASSIGN_OR_RETURN(std::string data, Snapshot());
  return SnapshotSource(
      [data = std::move(data), handed = false](std::string* chunk) mutable -> Result<bool> {
        if (handed) return false;
        handed = true;
        *chunk = std::move(data);
        return true;
      });
}

}  // namespace ballot::server
