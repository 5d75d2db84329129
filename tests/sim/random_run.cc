#include "random_run.h"

#include <algorithm>
#include <set>

#include "base/random.h"
#include "cluster.h"
#include "lincheck/checker.h"

namespace ballot::sim {
namespace {

using consensus::ConfChangeType;
using consensus::Index;
using consensus::Role;
using consensus::Term;

template <typename T>
const T& Pick(Random& rng, const std::vector<T>& items) {
  BALLOT_ASSERT(!items.empty());
  return items[rng.Uniform(items.size())];
}

// Settings drawn from the seed: each run explores a different corner.
ClusterOptions OptionsFor(const RunConfig& config, Random& rng) {
  ClusterOptions o;
  o.engine = config.engine;
  o.seed = rng.Fork();
  o.members = config.members;
  o.bug = config.bug;
  o.trace_member = config.trace_member;
  o.sync_every_hard_state = config.sync_every_hard_state;
  o.read_mode = rng.Chance(0.3) ? consensus::ReadMode::kLease : consensus::ReadMode::kReadIndex;
  o.check_quorum = o.read_mode == consensus::ReadMode::kLease || rng.Chance(0.85);
  o.pre_vote = rng.Chance(0.85);
  o.max_message_bytes = Pick<uint64_t>(rng, {1, 200, 1024, 8192, 65536});  // 1: an entry each.
  o.max_inflight_messages = static_cast<int>(Pick<uint64_t>(rng, {1, 2, 4, 16, 64}));
  // One entry per append with a tiny window cannot catch a member up within the liveness bound
  // (a few entries a round trip, each behind a sync of up to 25 ms): pair tiny appends with a
  // wide window.
  if (o.max_message_bytes == 1) o.max_inflight_messages = std::max(o.max_inflight_messages, 16);
  o.snapshot_chunk_bytes = Pick<uint64_t>(rng, {16, 64, 256, 4096});
  o.snapshot_every_entries = Pick<uint64_t>(rng, {20, 50, 100, 300});
  o.snapshot_keep_entries = Pick<uint64_t>(rng, {0, 5, 20});
  // A lease of E - d leader ticks must end before any follower, whose clock may run faster, can
  // count E - 1 whole ticks since it acknowledged the round (one tick goes to phase):
  // (E - d) / (1 - rho) <= (E - 1) / (1 + rho). With E = 10 and d = 3 that holds for drift rho up
  // to 1/8, so every drift drawn here is within the bound the lease is configured for.
  o.clock_drift = Pick<double>(rng, {0.0, 0.02, 0.05, 0.1});
  o.lease_drift_ticks = 3;
  o.disk_sync_ms_max = static_cast<int64_t>(Pick<uint64_t>(rng, {0, 1, 3, 8, 25}));
  o.network.loss = Pick<double>(rng, {0.0, 0.01, 0.05, 0.15});
  o.network.duplicate = Pick<double>(rng, {0.0, 0.01, 0.05});
  o.network.delay_min_ms = 1;
  o.network.delay_max_ms = static_cast<int64_t>(Pick<uint64_t>(rng, {2, 5, 15}));
  o.network.spike = Pick<double>(rng, {0.0, 0.01, 0.05});
  o.network.spike_max_ms = 150;
  return o;
}

std::string Describe(const ClusterOptions& o) {
  char buf[512];
  std::snprintf(buf, sizeof(buf),
                "read_mode=%s check_quorum=%d pre_vote=%d max_msg=%lu inflight=%d chunk=%lu "
                "snap_every=%lu keep=%lu drift=%.2f sync_max=%ldms loss=%.2f dup=%.2f "
                "delay=1..%ldms spike=%.2f",
                o.read_mode == consensus::ReadMode::kLease ? "lease" : "read-index", o.check_quorum,
                o.pre_vote, static_cast<unsigned long>(o.max_message_bytes),
                o.max_inflight_messages, static_cast<unsigned long>(o.snapshot_chunk_bytes),
                static_cast<unsigned long>(o.snapshot_every_entries),
                static_cast<unsigned long>(o.snapshot_keep_entries), o.clock_drift,
                static_cast<long>(o.disk_sync_ms_max), o.network.loss, o.network.duplicate,
                static_cast<long>(o.network.delay_max_ms), o.network.spike);
  return buf;
}

class RandomRun {
 public:
  RandomRun(const RunConfig& config)
      : config_(config), rng_(config.seed), cluster_(OptionsFor(config, rng_)) {
    clients_ = static_cast<int>(rng_.Range(2, 6));
    keys_ = static_cast<int>(rng_.Range(2, 6));
    fault_every_ms_ = Pick<int64_t>(rng_, {20, 50, 150, 400});
    crash_mid_sync_ = Pick<double>(rng_, {0.0, 0.05, 0.2});
    churn_ = Pick<double>(rng_, {0.0, 0.3, 0.6, 0.9});
    churn_ms_ = Pick<int64_t>(rng_, {3, 10, 30});
  }

  RunResult Run();
  const std::vector<std::string>& trace() const { return cluster_.trace(); }

 private:
  void SafetyPhase();
  bool LivenessPhase();
  void Workload();
  void StartOp(int client);
  void InjectFault();
  void CrashMidSync();
  void ChurnLeaders();
  void EndFaults(bool all);
  NodeId RandomLiveMember();
  void ChangeMembership();
  void Count(const std::string& kind) { ++result_.faults[kind]; }

  struct Undo {
    int64_t at_ms;
    enum Kind { kHeal, kRestart } kind;
    NodeId node;
  };

  RunConfig config_;
  Random rng_;
  Cluster cluster_;
  RunResult result_;
  int clients_;
  int keys_;
  int64_t fault_every_ms_;
  double crash_mid_sync_;
  std::set<std::pair<NodeId, uint64_t>> considered_sync_;
  double churn_;
  int64_t churn_ms_;  // A churned leader is crashed within this many ms of its election.
  std::set<std::pair<NodeId, Term>> seen_leaders_;
  std::map<NodeId, Index> leader_commit_seen_;
  std::set<std::pair<NodeId, Term>> first_commits_;
  struct ChurnCrash {
    int64_t at_ms;
    NodeId node;
    Term term;
  };
  std::vector<ChurnCrash> churn_crashes_;
  std::vector<Undo> undo_;
  std::map<int, int64_t> next_start_ms_;
  std::map<std::string, std::vector<std::string>> written_;  // key -> values written
  uint64_t next_value_ = 1;
};

NodeId RandomRun::RandomLiveMember() {
  std::vector<NodeId> live;
  for (NodeId id : cluster_.node_ids()) {
    if (!cluster_.IsRemoved(id)) live.push_back(id);
  }
  return live.empty() ? consensus::kNoNode : Pick(rng_, live);
}

void RandomRun::StartOp(int client) {
  lincheck::Operation op;
  op.key = "k" + std::to_string(rng_.Uniform(static_cast<uint64_t>(keys_)));
  const uint64_t dice = rng_.Uniform(100);
  if (dice < 40) {
    op.kind = lincheck::OpKind::kGet;
  } else if (dice < 70) {
    op.kind = lincheck::OpKind::kPut;
  } else if (dice < 90) {
    op.kind = lincheck::OpKind::kCas;
    auto& seen = written_[op.key];
    op.expected = seen.empty()
                      ? "none"
                      : seen[seen.size() - 1 - rng_.Uniform(std::min<uint64_t>(seen.size(), 3))];
  } else {
    op.kind = lincheck::OpKind::kDelete;
  }
  if (op.kind == lincheck::OpKind::kPut || op.kind == lincheck::OpKind::kCas) {
    op.value = "v" + std::to_string(next_value_++);
    written_[op.key].push_back(op.value);
  }
  // Writes go to the leader when there is one (a member that is not the leader refuses them);
  // reads also go to followers, which forward their read index requests.
  // Clients cache the leader, so some talk to a deposed one that does not know it yet.
  NodeId target = cluster_.Leader();
  const auto believers = cluster_.SelfBelievedLeaders();
  if (believers.size() > 1 && rng_.Chance(0.3)) target = Pick(rng_, believers);
  const double elsewhere = op.kind == lincheck::OpKind::kGet ? 0.5 : 0.1;
  if (target == consensus::kNoNode || rng_.Chance(elsewhere)) target = RandomLiveMember();
  if (target == consensus::kNoNode) return;
  cluster_.StartClientOp(client, std::move(op), target, /*timeout_ms=*/300);
}

void RandomRun::Workload() {
  // Each client thinks 2 to 20 ms between operations, so a refused operation is not retried in
  // a tight loop.
  for (int c = 0; c < clients_; ++c) {
    if (cluster_.ClientBusy(c) || cluster_.now_ms() < next_start_ms_[c]) continue;
    next_start_ms_[c] = cluster_.now_ms() + rng_.Range(2, 20);
    StartOp(c);
  }
}

void RandomRun::ChangeMembership() {
  NodeId leader = cluster_.Leader();
  if (leader == consensus::kNoNode) return;
  auto& engine = cluster_.engine(leader);
  const auto conf = engine.conf_state();
  const int voters = static_cast<int>(conf.voters.size());
  const int members = config_.members;
  ConfChange cc;
  if (!conf.learners.empty() && rng_.Chance(0.6)) {
    cc.type = ConfChangeType::kAddVoter;
    cc.node = *std::next(conf.learners.begin(),
                         static_cast<std::ptrdiff_t>(rng_.Uniform(conf.learners.size())));
  } else if (voters >= 2 && voters >= members && rng_.Chance(0.5)) {
    cc.type = ConfChangeType::kRemove;
    cc.node = *std::next(conf.voters.begin(),
                         static_cast<std::ptrdiff_t>(rng_.Uniform(conf.voters.size())));
  } else if (voters + static_cast<int>(conf.learners.size()) < members + 2) {
    cc.type = ConfChangeType::kAddLearner;
    cc.node = cluster_.CreateJoiningNode();
  } else {
    return;
  }
  Status s = engine.ProposeConfChange(cc);
  if (s.ok()) {
    Count("conf_change");
  } else if (cc.type == ConfChangeType::kAddLearner) {
    cluster_.Decommission(cc.node);  // It never joined.
  }
}

void RandomRun::InjectFault() {
  const int64_t now = cluster_.now_ms();
  const uint64_t dice = rng_.Uniform(100);
  const auto ids = cluster_.node_ids();
  NodeId a = RandomLiveMember();
  if (a == consensus::kNoNode) return;
  NodeId leader = cluster_.Leader();
  if (leader != consensus::kNoNode && rng_.Chance(0.4)) a = leader;
  if (dice < 18) {  // Crash, often tearing the unsynced write; restart later.
    // Crashing in the middle of a sync is where durability bugs show: prefer it.
    const auto syncing = cluster_.SyncingMembers();
    if (!syncing.empty() && rng_.Chance(0.5)) a = Pick(rng_, syncing);
    if (!cluster_.IsUp(a)) return;
    const bool tear = rng_.Chance(0.5);
    cluster_.Crash(a, tear);
    Count("crash");
    undo_.push_back(
        {now + (rng_.Chance(0.5) ? rng_.Range(5, 100) : rng_.Range(100, 1500)), Undo::kRestart, a});
  } else if (dice < 30) {  // Isolate one member.
    cluster_.Isolate(a);
    Count("partition");
    undo_.push_back({now + rng_.Range(50, 2000), Undo::kHeal, 0});
  } else if (dice < 40) {  // Split in two random groups.
    std::set<NodeId> left, right;
    for (NodeId id : ids) (rng_.Chance(0.5) ? left : right).insert(id);
    cluster_.Partition({left, right});
    Count("partition");
    undo_.push_back({now + rng_.Range(50, 2000), Undo::kHeal, 0});
  } else if (dice < 48) {  // Asymmetric: a hears nobody, or nobody hears a.
    const bool inbound = rng_.Chance(0.5);
    for (NodeId other : ids) {
      if (other == a) continue;
      if (inbound) {
        cluster_.network().Cut(other, a);
      } else {
        cluster_.network().Cut(a, other);
      }
    }
    Count("asymmetric_partition");
    undo_.push_back({now + rng_.Range(50, 1500), Undo::kHeal, 0});
  } else if (dice < 56) {  // Partial: a and b cannot talk, both still reach the others.
    NodeId b = RandomLiveMember();
    if (b == a) return;
    cluster_.network().Cut(a, b);
    cluster_.network().Cut(b, a);
    Count("partial_partition");
    undo_.push_back({now + rng_.Range(100, 2500), Undo::kHeal, 0});
  } else if (dice < 64) {  // Clog one direction of a link.
    NodeId b = RandomLiveMember();
    if (b == a) return;
    cluster_.network().Clog(a, b, rng_.Range(30, 400), now + rng_.Range(100, 1500));
    Count("clog");
  } else if (dice < 72) {  // Pause (a long GC, a stopped VM).
    cluster_.Pause(a, now + rng_.Range(20, 800));
    Count("pause");
  } else if (dice < 86) {
    ChangeMembership();
  } else if (dice < 94) {  // Leadership transfer.
    if (leader == consensus::kNoNode) return;
    const auto& voters = cluster_.engine(leader).conf_state().voters;
    if (voters.size() < 2) return;
    NodeId to =
        *std::next(voters.begin(), static_cast<std::ptrdiff_t>(rng_.Uniform(voters.size())));
    if (to == leader) return;
    if (cluster_.engine(leader).TransferLeadership(to).ok()) Count("transfer");
  } else {  // Heal everything early.
    EndFaults(/*all=*/true);
  }
}

void RandomRun::EndFaults(bool all) {
  const int64_t now = cluster_.now_ms();
  std::vector<Undo> keep;
  for (const Undo& u : undo_) {
    if (!all && u.at_ms > now) {
      keep.push_back(u);
      continue;
    }
    if (u.kind == Undo::kHeal) {
      cluster_.HealNetwork();
    } else if (!cluster_.IsRemoved(u.node)) {
      cluster_.Restart(u.node);
    }
  }
  undo_ = std::move(keep);
}

void RandomRun::SafetyPhase() {
  while (cluster_.now_ms() < config_.safety_ms) {
    Workload();
    if (rng_.Uniform(static_cast<uint64_t>(fault_every_ms_)) == 0) InjectFault();
    CrashMidSync();
    ChurnLeaders();
    EndFaults(/*all=*/false);
    cluster_.Step();
  }
}

// Leader churn: a new leader is sometimes crashed within a few milliseconds of its election,
// before its own entries reach a majority. Repeated, this leaves members with logs that diverge
// in several terms, the ground on which Raft's Figure 8 is played.
void RandomRun::ChurnLeaders() {
  if (churn_ == 0) return;
  const int64_t now = cluster_.now_ms();
  for (NodeId id : cluster_.SelfBelievedLeaders()) {
    const Term term = cluster_.engine(id).soft_state().term;
    // A leader that just advanced its commit index has not yet told its followers; its first
    // advance in a term is the one that decides what a new leader may commit (paper 5.4.2).
    const Index commit = cluster_.engine(id).committed_index();
    Index& seen_commit = leader_commit_seen_[id];
    if (commit > seen_commit && seen_leaders_.count({id, term}) > 0) {
      const bool first = first_commits_.insert({id, term}).second;
      if (rng_.Chance(first ? churn_ / 2 : churn_ / 10)) churn_crashes_.push_back({now, id, term});
    }
    seen_commit = commit;
    if (!seen_leaders_.insert({id, term}).second) continue;
    if (rng_.Chance(churn_)) churn_crashes_.push_back({now + rng_.Range(0, churn_ms_), id, term});
  }
  for (auto it = churn_crashes_.begin(); it != churn_crashes_.end();) {
    if (it->at_ms > now) {
      ++it;
      continue;
    }
    if (cluster_.IsUp(it->node) && cluster_.engine(it->node).soft_state().term == it->term) {
      cluster_.Crash(it->node, /*tear=*/rng_.Chance(0.5));
      Count("leader_churn");
      undo_.push_back({now + rng_.Range(5, 100), Undo::kRestart, it->node});
    }
    it = churn_crashes_.erase(it);
  }
}

// Crashes timed at writes: each write that must be synced may be the one a crash interrupts, and
// a write that records a vote or a new term (what the persistence rule protects) is the likeliest.
// The member comes back after a short while, as under a supervisor.
void RandomRun::CrashMidSync() {
  if (crash_mid_sync_ == 0) return;
  for (NodeId id : cluster_.SyncingMembers()) {
    const uint64_t seq = cluster_.ReadySeq(id);
    if (!considered_sync_.insert({id, seq}).second) continue;
    const auto* rd = cluster_.PendingReady(id);
    const auto durable = cluster_.storage(id).InitialHardState();
    const bool votes = rd->hard_state && (rd->hard_state->term != durable.term ||
                                          rd->hard_state->vote != durable.vote);
    if (!rng_.Chance(votes ? crash_mid_sync_ : crash_mid_sync_ / 50)) continue;
    cluster_.Crash(id, /*tear=*/rng_.Chance(0.5));
    Count("crash_mid_sync");
    undo_.push_back({cluster_.now_ms() + rng_.Range(1, 40), Undo::kRestart, id});
  }
}

bool RandomRun::LivenessPhase() {
  // Heal everything: network, crashed and paused members, message loss.
  EndFaults(/*all=*/true);
  cluster_.HealNetwork();
  NetworkOptions calm = cluster_.network().options();
  calm.loss = 0;
  calm.duplicate = 0;
  calm.spike = 0;
  cluster_.network().set_options(calm);
  for (NodeId id : cluster_.node_ids()) {
    if (!cluster_.IsRemoved(id)) {
      cluster_.Restart(id);
      cluster_.Pause(id, 0);
    }
  }
  const int64_t start = cluster_.now_ms();
  const int64_t deadline = start + config_.liveness_ms;
  const uint64_t marker = 1;
  int64_t next_proposal = start;
  auto converged = [&]() {
    auto index = cluster_.MarkerIndex(marker);
    NodeId leader = cluster_.Leader();
    if (!index || leader == consensus::kNoNode) return false;
    for (NodeId id : cluster_.node_ids()) {
      if (!cluster_.engine(leader).conf_state().Contains(id)) continue;
      if (!cluster_.IsUp(id) || cluster_.kv_applied(id) != cluster_.kv_applied(leader) ||
          cluster_.kv_applied(id) < *index ||
          cluster_.kv_applied(leader) != cluster_.engine(leader).committed_index()) {
        return false;
      }
    }
    return true;
  };
  while (cluster_.now_ms() < deadline) {
    if (converged()) {
      result_.recovery_ms = cluster_.now_ms() - start;
      cluster_.CheckConvergence();
      return true;
    }
    if (!cluster_.MarkerIndex(marker) && cluster_.now_ms() >= next_proposal) {
      NodeId leader = cluster_.Leader();
      if (leader != consensus::kNoNode) (void)cluster_.ProposeMarker(leader, marker);
      next_proposal = cluster_.now_ms() + 100;
    }
    cluster_.Step();
  }
  NodeId leader = cluster_.Leader();
  std::string why = "liveness: not converged " + std::to_string(config_.liveness_ms) +
                    "ms after healing; leader " + std::to_string(leader) + ", marker " +
                    (cluster_.MarkerIndex(marker) ? "committed" : "not committed");
  for (NodeId id : cluster_.node_ids()) {
    if (cluster_.IsRemoved(id)) continue;
    auto ss = cluster_.engine(id).soft_state();
    why += "; member " + std::to_string(id) + " " + std::string(consensus::RoleName(ss.role)) +
           " term " + std::to_string(ss.term) + " applied " +
           std::to_string(cluster_.kv_applied(id)) + " commit " +
           std::to_string(cluster_.engine(id).committed_index()) + " last " +
           std::to_string(cluster_.engine(id).last_index()) + " stored " +
           std::to_string(cluster_.storage(id).FirstIndex()) + ".." +
           std::to_string(cluster_.storage(id).LastIndex()) +
           (cluster_.engine(id).HasReady() ? " has-ready" : "") + " [" + cluster_.DescribeHost(id) +
           "] conf " + cluster_.engine(id).conf_state().ToString();
  }
  cluster_.Violation(why);
  return false;
}

RunResult RandomRun::Run() {
  result_.settings = "clients=" + std::to_string(clients_) + " keys=" + std::to_string(keys_) +
                     " fault_every=" + std::to_string(fault_every_ms_) + "ms" +
                     " crash_mid_sync=" + std::to_string(crash_mid_sync_) +
                     " leader_churn=" + std::to_string(churn_) + "/" + std::to_string(churn_ms_) +
                     "ms " + Describe(cluster_.options());
  SafetyPhase();
  const bool live = LivenessPhase();
  // Let operations in flight finish, then close the history.
  if (live) cluster_.RunFor(400);
  cluster_.AbandonClientOps();
  lincheck::CheckOptions check_options;
  check_options.timeout_seconds = config_.lincheck_timeout_seconds;
  auto verdict = lincheck::Check(cluster_.history(), check_options);
  for (const auto& op : cluster_.history()) {
    if (op.status == lincheck::OpStatus::kOk) ++result_.ops_ok;
    if (op.status == lincheck::OpStatus::kFail) ++result_.ops_failed;
    if (op.status == lincheck::OpStatus::kUnknown) ++result_.ops_unknown;
  }
  // Failed operations certainly had no effect: the checker drops them, so they do not count.
  result_.operations_checked = result_.ops_ok + result_.ops_unknown;
  if (config_.keep_history) result_.history = cluster_.history();
  if (verdict.verdict == lincheck::CheckResult::Verdict::kNotLinearizable) {
    cluster_.Violation("linearizability: " + verdict.Explain());
  } else if (verdict.verdict == lincheck::CheckResult::Verdict::kTimedOut) {
    cluster_.Violation("linearizability: the checker timed out (undecided)");
  }
  const auto& net = cluster_.network().stats();
  result_.faults["message_loss"] += net.dropped_loss;
  result_.faults["message_duplicate"] += net.duplicated;
  result_.faults["message_delay"] += net.delayed;
  result_.faults["torn_write"] += cluster_.torn_writes();
  result_.violations = cluster_.violations();
  result_.committed_entries = cluster_.committed_entries();
  result_.passed = result_.violations.empty();
  if (!result_.passed) result_.trace = cluster_.trace();
  return result_;
}

}  // namespace

uint64_t RunResult::FaultCount() const {
  uint64_t total = 0;
  for (const auto& [kind, n] : faults) total += n;
  return total;
}

RunResult RunRandom(const RunConfig& config) {
  std::unique_ptr<RandomRun> run;
  try {
    run = std::make_unique<RandomRun>(config);
    return run->Run();
  } catch (const InvariantBroken& e) {
    // An engine stopped on one of its own assertions: a failed run, reported with its seed and
    // the events that led to it.
    RunResult result;
    result.violations.push_back(std::string("engine invariant broken: ") + e.what());
    if (run) result.trace = run->trace();
    return result;
  }
}

void InstallThrowingAssertHandler() {
  internal::SetAssertHandler(
      [](const char* expr, std::string_view message, const char* file, int line) {
        throw InvariantBroken(std::string(expr) + (message.empty() ? "" : ": ") +
                              std::string(message) + " at " + file + ":" + std::to_string(line));
      });
}

namespace {
const std::vector<std::pair<consensus::Bug, std::string>>& BugNames() {
  static const std::vector<std::pair<consensus::Bug, std::string>> kNames = {
      {consensus::Bug::kNone, "none"},
      {consensus::Bug::kCommitOldTermByCount, "commit-old-term"},
      {consensus::Bug::kVoteBeforePersist, "vote-before-persist"},
      {consensus::Bug::kReadIndexWithoutQuorum, "read-without-quorum"},
      {consensus::Bug::kAppendWithoutLogMatching, "append-without-log-matching"},
      {consensus::Bug::kIgnoreHigherTerm, "ignore-higher-term"},
      {consensus::Bug::kReapplyAfterRestart, "reapply-after-restart"},
      {consensus::Bug::kPaxosAcceptLowerBallot, "paxos-accept-lower-ballot"},
      {consensus::Bug::kPaxosIgnorePromisedValues, "paxos-ignore-promised-values"},
      {consensus::Bug::kPaxosPromiseBeforePersist, "paxos-promise-before-persist"},
      {consensus::Bug::kPaxosChosenWithoutQuorum, "paxos-chosen-without-quorum"},
      {consensus::Bug::kPaxosSkipGap, "paxos-skip-gap"},
      {consensus::Bug::kPaxosReadWithoutQuorum, "paxos-read-without-quorum"},
      {consensus::Bug::kPaxosSharedBallotTag, "paxos-shared-ballot-tag"},
  };
  return kNames;
}
}  // namespace

std::string BugName(consensus::Bug bug) {
  for (const auto& [b, name] : BugNames()) {
    if (b == bug) return name;
  }
  return "unknown";
}

bool ParseBug(const std::string& name, consensus::Bug* bug) {
  for (const auto& [b, n] : BugNames()) {
    if (n == name) {
      *bug = b;
      return true;
    }
  }
  return false;
}

std::vector<consensus::Bug> AllBugs() {
  std::vector<consensus::Bug> out;
  for (const auto& [b, name] : BugNames()) {
    if (b != consensus::Bug::kNone) out.push_back(b);
  }
  return out;
}

}  // namespace ballot::sim
