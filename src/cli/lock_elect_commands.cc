// `ballot lock NAME [-- COMMAND ARGS...]` and `ballot elect NAME [PROPOSAL] [--listen]`, on the
// etcd v3 Lock and Election services. Both hold a lease (--ttl) kept alive from a background thread
// for as long as they hold the lock or the leadership; if the lease is lost, so is the lock.
//
// The fencing token of a lock is the create revision of its lock key: it grows with every
// acquisition, so a resource that remembers the highest token it has seen can refuse a holder whose
// lease expired while it was paused (see docs and README, "Locks with fencing tokens").
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <iostream>
#include <mutex>
#include <string>
#include <vector>

#include "cli/client_flags.h"
#include "cli/command.h"
#include "client/format.h"

extern char** environ;

namespace ballot::cli {
namespace {

// The lease a lock or a leadership lives on, and the two ways holding it ends: the user asks
// (SIGINT/SIGTERM), or the lease is lost. Waiting callers (Lock, Campaign) are cancelled then.
class Session {
 public:
  explicit Session(std::function<void()> on_end) : on_end_(std::move(on_end)) {}

  // Grants the lease and starts keeping it alive.
  Status Start(client::Client& client, int64_t ttl_s) {
    client_ = &client;
    ASSIGN_OR_RETURN(etcdserverpb::LeaseGrantResponse lease, client.LeaseGrant(ttl_s));
    lease_id_ = lease.id();
    keep_alive_ = std::make_unique<client::KeepAlive>(client, lease_id_, lease.ttl(),
                                                      [this] { End(/*lost=*/true); });
    return Status::Ok();
  }

  // Called from the signal thread (lost=false) or the keep-alive thread (lost=true).
  void End(bool lost) {
    {
      std::lock_guard lock(mu_);
      if (ended_) return;
      ended_ = true;
      lost_ = lost;
      // Under mu_, so that Close() (which clears client_ before the client goes away) cannot
      // run in between.
      if (client_ != nullptr) client_->CancelWaits();
    }
    cv_.notify_all();
    on_end_();
  }

  void WaitForEnd() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return ended_; });
  }

  bool ended() {
    std::lock_guard lock(mu_);
    return ended_;
  }
  bool lost() {
    std::lock_guard lock(mu_);
    return lost_;
  }
  int64_t lease_id() const { return lease_id_; }

  // Stops the keep-alive and revokes the lease (which also deletes the lock or election key).
  void Close() {
    if (keep_alive_) keep_alive_->Stop();
    if (client_ != nullptr && lease_id_ != 0) (void)client_->LeaseRevoke(lease_id_);
    std::lock_guard lock(mu_);
    client_ = nullptr;
  }

 private:
  std::function<void()> on_end_;
  client::Client* client_ = nullptr;  // guarded by mu_ once Start() returned
  int64_t lease_id_ = 0;
  std::unique_ptr<client::KeepAlive> keep_alive_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ended_ = false;  // guarded by mu_
  bool lost_ = false;   // guarded by mu_
};

constexpr const char* kLostMessage = "session expired: the lease was lost";

class LockCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("NAME", name_, "Lock name")->required();
    sub.add_option("COMMAND", command_,
                   "Run this while holding the lock (put -- before it if it has options); its "
                   "exit code becomes ours");
    sub.add_option("--ttl", ttl_s_, "TTL of the lease that holds the lock, seconds")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    flags_.Add(sub);
  }

  int Run() override {
    Session session([this] {
      if (const pid_t child = child_.load(); child > 0) kill(child, SIGTERM);
    });
    SignalWaiter signals([&](int) { session.End(/*lost=*/false); });
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    if (Status started = session.Start(**client, ttl_s_); !started.ok()) {
      return PrintError(started);
    }
    const int code = Hold(**client, session);
    session.Close();
    return code;
  }

 private:
  int Hold(client::Client& client, Session& session) {
    auto locked = client.Lock(name_, session.lease_id());
    if (!locked.ok()) {
      if (session.ended() && !session.lost()) return kExitOk;  // interrupted while waiting
      return PrintError(session.lost() ? Status::Unavailable(kLostMessage) : locked.status());
    }
    const std::string& key = locked->key();
    etcdserverpb::RangeRequest get;
    get.set_key(key);
    auto held = client.Range(get);
    if (!held.ok()) return PrintError(held.status());
    if (held->kvs_size() == 0) return PrintError(Status::Unavailable(kLostMessage));
    const int64_t token = held->kvs(0).create_revision();

    int code = kExitOk;
    if (command_.empty()) {
      Print(key + "\n" + std::to_string(token) + "\n");
      session.WaitForEnd();
    } else {
      code = RunCommand(key, token, session);
    }
    if (session.lost()) {
      std::cerr << "Error: " << kLostMessage << "; the lock " << key << " is no longer held\n";
      return kExitError;
    }
    (void)client.Unlock(key);
    return code;
  }

  // Runs the command with the lock's key and token in its environment; returns its exit code.
  int RunCommand(const std::string& key, int64_t token, Session& session) {
    std::vector<std::string> extra = {
        "BALLOT_FENCING_TOKEN=" + std::to_string(token), "BALLOT_LOCK_KEY=" + key,
        // etcdctl's names, for commands written for `etcdctl lock`.
        "ETCD_LOCK_KEY=" + key, "ETCD_LOCK_REV=" + std::to_string(token)};
    std::vector<char*> env;
    for (char** e = environ; *e != nullptr; ++e) env.push_back(*e);
    for (std::string& e : extra) env.push_back(e.data());
    env.push_back(nullptr);
    std::vector<char*> argv;
    for (std::string& arg : command_) argv.push_back(arg.data());
    argv.push_back(nullptr);

    // The child gets default signal handling and an empty mask (ours blocks SIGINT and SIGTERM
    // for the signal thread).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (session.ended()) {
      posix_spawnattr_destroy(&attr);
      return kExitOk;
    }
    pid_t pid = 0;
    const int error = posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), env.data());
    posix_spawnattr_destroy(&attr);
    if (error != 0) {
      return PrintError(
          Status::InvalidArgument("cannot run " + command_[0] + ": " + std::strerror(error)));
    }
    child_.store(pid);
    if (session.ended()) kill(pid, SIGTERM);  // ended between the check and the spawn
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    child_.store(0);
    if (WIFEXITED(wstatus)) return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus)) return 128 + WTERMSIG(wstatus);
    return kExitError;
  }

  ClientFlags flags_;
  std::string name_;
  std::vector<std::string> command_;
  int64_t ttl_s_ = 10;
  std::atomic<pid_t> child_{0};
};

class ElectCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("NAME", name_, "Election name")->required();
    sub.add_option("PROPOSAL", proposal_, "Value to proclaim once elected");
    sub.add_flag("-l,--listen", listen_, "Observe: print each leader's key and value");
    sub.add_option("--ttl", ttl_s_, "TTL of the lease that holds the leadership, seconds")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    flags_.Add(sub);
  }

  int Run() override {
    if (listen_ == proposal_.has_value()) {
      return PrintError(Status::InvalidArgument(
          listen_ ? "--listen takes no PROPOSAL" : "give a PROPOSAL to campaign, or --listen"));
    }
    return listen_ ? Listen() : Campaign();
  }

 private:
  int Listen() {
    std::atomic<client::ObserveCall*> live{nullptr};
    std::atomic<bool> stopped{false};
    SignalWaiter signals([&](int) {
      stopped.store(true);
      if (client::ObserveCall* call = live.load()) call->Cancel();
    });
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto call = (*client)->Observe(name_);
    if (!call.ok()) return PrintError(call.status());
    live.store(call->get());
    if (stopped.load()) (*call)->Cancel();
    v3electionpb::LeaderResponse response;
    while ((*call)->stream().Read(&response)) Print(client::FormatKeyValue(response.kv()));
    live.store(nullptr);
    if (stopped.load()) return kExitOk;
    const Status ended = (*call)->Finish();
    return PrintError(ended.ok() ? Status::Unavailable("observe stream closed by the server")
                                 : ended);
  }

  int Campaign() {
    Session session([] {});
    SignalWaiter signals([&](int) { session.End(/*lost=*/false); });
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    if (Status started = session.Start(**client, ttl_s_); !started.ok()) {
      return PrintError(started);
    }
    int code = kExitOk;
    auto elected = (*client)->Campaign(name_, session.lease_id(), *proposal_);
    if (!elected.ok()) {
      if (!(session.ended() && !session.lost())) {
        code = PrintError(session.lost() ? Status::Unavailable(kLostMessage) : elected.status());
      }
    } else {
      Print(elected->leader().key() + "\n" + *proposal_ + "\n");
      session.WaitForEnd();
      if (session.lost()) {
        code = PrintError(Status::Unavailable(kLostMessage));
      } else {
        (void)(*client)->Resign(elected->leader());
      }
    }
    session.Close();
    return code;
  }

  ClientFlags flags_;
  std::string name_;
  std::optional<std::string> proposal_;
  bool listen_ = false;
  int64_t ttl_s_ = 10;
};

Registration RegisterLock(CLI::App& app) {
  auto command = std::make_unique<LockCommand>();
  CLI::App* sub = app.add_subcommand(
      "lock",
      "Acquire a named lock; print its key and fencing token and hold it until Ctrl-C, or run "
      "COMMAND holding it (token in BALLOT_FENCING_TOKEN)");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

Registration RegisterElect(CLI::App& app) {
  auto command = std::make_unique<ElectCommand>();
  CLI::App* sub = app.add_subcommand(
      "elect", "Campaign in a named election and hold the leadership until Ctrl-C, or observe it");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

[[maybe_unused]] const bool kLock = AddCommand(45, &RegisterLock);
[[maybe_unused]] const bool kElect = AddCommand(46, &RegisterElect);

}  // namespace
}  // namespace ballot::cli
