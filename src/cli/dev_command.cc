// `ballot dev`: a local cluster for trying Ballot with etcdctl. It starts N `ballot serve` members
// as child processes (of this very executable), forwards their logs with a member prefix, and
// stops them all on Ctrl-C or SIGTERM: SIGTERM to every member, then SIGKILL to whatever is left
// after --stop-timeout-ms. If a member dies on its own, the others are stopped and the command
// exits with kExitError naming the member and how it ended.
//
// Ports: member i (1-based) listens for clients on base + 2(i-1) and for peers on base + 2(i-1) +
// 1, all on 127.0.0.1: with the default base 2379, member 1 has etcd's default ports (2379, 2380),
// so a bare `etcdctl put a b` reaches it; members 2 and 3 use 2381/2382 and 2383/2384.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "cli/command.h"

namespace ballot::cli {
namespace {

constexpr int kMembersMax = 9;
constexpr size_t kLineBytesMax = 16 * 1024;  // A longer line is forwarded in pieces.
constexpr int kPollIntervalMs = 100;

// Set by the signal handler; the self-pipe wakes the poll loop at once.
volatile sig_atomic_t g_stop_signal = 0;
int g_wake_write_fd = -1;

void OnStopSignal(int signal) {
  g_stop_signal = signal;
  const int saved_errno = errno;
  const char byte = 0;
  if (g_wake_write_fd >= 0) (void)!::write(g_wake_write_fd, &byte, 1);
  errno = saved_errno;
}

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int signal = WTERMSIG(status);
    const char* name = ::sigabbrev_np(signal);
    return "was killed by signal " + std::to_string(signal) +
           (name != nullptr ? std::string(" (SIG") + name + ")" : "");
  }
  return "ended with wait status " + std::to_string(status);
}

struct Member {
  std::string name;
  int client_port = 0;
  int peer_port = 0;
  std::string data_dir;
  pid_t pid = -1;
  int output_fd = -1;   // Read end of the pipe carrying the member's stdout and stderr.
  std::string partial;  // Output after the last newline.
  bool running = false;
  int wait_status = 0;

  std::string ClientUrl() const { return "http://127.0.0.1:" + std::to_string(client_port); }
  std::string PeerUrl() const { return "http://127.0.0.1:" + std::to_string(peer_port); }
};

class DevCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("--members", members_, "Number of members")
        ->check(CLI::Range(1, kMembersMax))
        ->capture_default_str();
    sub.add_option("--engine", engine_, "Replication engine: raft or multipaxos")
        ->check(CLI::IsMember({"raft", "multipaxos"}))
        ->capture_default_str();
    sub.add_option("--data-dir", data_dir_,
                   "Directory holding one data directory per member (<dir>/infra1, ...); an "
                   "existing one is reused, so the cluster restarts with its data")
        ->capture_default_str();
    sub.add_option("--base-port", base_port_,
                   "Member i listens for clients on base+2(i-1) and for peers on base+2(i-1)+1")
        ->check(CLI::Range(1, 65535))
        ->capture_default_str();
    sub.add_option("--stop-timeout-ms", stop_timeout_ms_,
                   "After SIGTERM, how long members get to stop before SIGKILL")
        ->check(CLI::Range(1, 600000))
        ->capture_default_str();
    // For tests: the program started as "<program> serve <flags>" instead of this executable.
    sub.add_option("--serve-binary", serve_binary_)->group("");
  }

  int Run() override {
    if (base_port_ + 2 * members_ - 1 > 65535) {
      std::cerr << "ballot dev: --base-port " << base_port_ << " leaves no room for " << members_
                << " members (ports up to " << base_port_ + 2 * members_ - 1 << ")\n";
      return kExitError;
    }
    if (serve_binary_.empty()) serve_binary_ = SelfPath();
    if (!MakeDirs(data_dir_)) return kExitError;
    Plan();
    if (!InstallSignalHandlers()) return kExitError;
    for (Member& member : members_list_) {
      if (!Start(member)) {
        StopAll();
        return kExitError;
      }
    }
    PrintBanner();
    const bool failed = Supervise();
    const bool clean = StopAll();
    return failed || !clean ? kExitError : kExitOk;
  }

 private:
  static std::string SelfPath() {
    char buf[4096];
    const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "/proc/self/exe";
  }

  static bool MakeDirs(const std::string& path) {
    for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
      const std::string prefix = path.substr(0, slash);
      if (::mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
        std::cerr << "ballot dev: cannot create " << prefix << ": " << std::strerror(errno) << "\n";
        return false;
      }
      if (slash == std::string::npos) return true;
    }
  }

  void Plan() {
    for (int i = 0; i < members_; ++i) {
      Member member;
      member.name = "infra" + std::to_string(i + 1);
      member.client_port = base_port_ + 2 * i;
      member.peer_port = base_port_ + 2 * i + 1;
      member.data_dir = data_dir_ + "/" + member.name;
      members_list_.push_back(member);
    }
  }

  std::vector<std::string> ServeArgs(const Member& member) const {
    std::string cluster;
    for (const Member& m : members_list_) {
      cluster += (cluster.empty() ? "" : ",") + m.name + "=" + m.PeerUrl();
    }
    // As etcd's Procfile: --initial-cluster-state new also on a restart, since a member with
    // data ignores the initial-cluster flags.
    return {serve_binary_,
            "serve",
            "--name",
            member.name,
            "--data-dir",
            member.data_dir,
            "--listen-client-urls",
            member.ClientUrl(),
            "--advertise-client-urls",
            member.ClientUrl(),
            "--listen-peer-urls",
            member.PeerUrl(),
            "--initial-advertise-peer-urls",
            member.PeerUrl(),
            "--initial-cluster-token",
            "ballot-dev-cluster",
            "--initial-cluster",
            cluster,
            "--initial-cluster-state",
            "new",
            "--engine",
            engine_};
  }

  bool InstallSignalHandlers() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      std::cerr << "ballot dev: pipe: " << std::strerror(errno) << "\n";
      return false;
    }
    wake_read_fd_ = fds[0];
    g_wake_write_fd = fds[1];
    struct sigaction action {};
    action.sa_handler = OnStopSignal;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGTERM, &action, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    return true;
  }

  bool Start(Member& member) {
    const std::vector<std::string> args = ServeArgs(member);
    std::vector<char*> argv;
    for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      std::cerr << "ballot dev: pipe: " << std::strerror(errno) << "\n";
      return false;
    }
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::cerr << "ballot dev: cannot start " << member.name << ": " << std::strerror(errno)
                << "\n";
      ::close(fds[0]);
      ::close(fds[1]);
      return false;
    }
    if (pid == 0) {
      // Own process group: a terminal's Ctrl-C reaches only `ballot dev`, which then stops the
      // members itself, in order. If `ballot dev` is killed outright, the members get SIGTERM.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) ::_exit(1);
      ::signal(SIGPIPE, SIG_DFL);
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      ::execv(argv[0], argv.data());
      const std::string message = "cannot run " + args[0] + ": " + std::strerror(errno) + "\n";
      (void)!::write(STDERR_FILENO, message.data(), message.size());
      ::_exit(127);
    }
    ::close(fds[1]);
    ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
    member.pid = pid;
    member.output_fd = fds[0];
    member.running = true;
    return true;
  }

  void PrintBanner() const {
    std::string endpoints;
    for (const Member& m : members_list_) {
      endpoints += (endpoints.empty() ? "" : ",") + std::string("127.0.0.1:") +
                   std::to_string(m.client_port);
    }
    std::cout << "ballot dev: " << members_ << " member" << (members_ == 1 ? "" : "s")
              << ", engine " << engine_ << ", data in " << data_dir_ << "\n";
    for (const Member& m : members_list_) {
      std::cout << "  " << m.name << "  client " << m.ClientUrl() << "  peer " << m.PeerUrl()
                << "  data " << m.data_dir << "  pid " << m.pid << "\n";
    }
    std::cout << "Try:\n"
              << "  etcdctl --endpoints=" << endpoints << " put hello world\n"
              << "  etcdctl --endpoints=" << endpoints << " get hello\n"
              << "  etcdctl --endpoints=" << endpoints << " member list -w table\n"
              << "Ctrl-C stops the cluster.\n"
              << std::flush;
  }

  // Forwards complete lines (and, at the end, whatever is left) with the member's prefix.
  void Forward(Member& member, bool final) {
    char buf[4096];
    while (member.output_fd >= 0) {
      const ssize_t n = ::read(member.output_fd, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (n == 0 || final) {  // EOF, or the member is gone and nothing more is waiting.
          ::close(member.output_fd);
          member.output_fd = -1;
        }
        break;
      }
      member.partial.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = member.partial.find('\n', start)) != std::string::npos;
           start = nl + 1) {
        Emit(member, std::string_view(member.partial).substr(start, nl - start));
      }
      member.partial.erase(0, start);
      if (member.partial.size() > kLineBytesMax) {
        Emit(member, member.partial);
        member.partial.clear();
      }
    }
    if (final && !member.partial.empty()) {
      Emit(member, member.partial);
      member.partial.clear();
    }
    std::cout << std::flush;
  }

  void Emit(const Member& member, std::string_view line) const {
    std::cout << member.name << " | " << line << "\n";
  }

  // Waits without blocking for members that ended; returns the first that ended.
  Member* Reap() {
    Member* ended = nullptr;
    for (Member& member : members_list_) {
      if (!member.running) continue;
      int status = 0;
      const pid_t r = ::waitpid(member.pid, &status, WNOHANG);
      if (r == member.pid) {
        member.running = false;
        member.wait_status = status;
        Forward(member, /*final=*/true);
        if (ended == nullptr) ended = &member;
      }
    }
    return ended;
  }

  void PollOnce(int timeout_ms) {
    std::vector<pollfd> fds = {{wake_read_fd_, POLLIN, 0}};
    std::vector<Member*> owners = {nullptr};
    for (Member& member : members_list_) {
      if (member.output_fd < 0) continue;
      fds.push_back({member.output_fd, POLLIN, 0});
      owners.push_back(&member);
    }
    const int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready <= 0) return;  // Timeout or EINTR: the caller looks at the flags.
    char drain[64];
    while (::read(wake_read_fd_, drain, sizeof(drain)) > 0) {
    }
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents != 0) Forward(*owners[i], /*final=*/false);
    }
  }

  // Runs until a stop signal (returns false) or a member ends on its own (returns true).
  bool Supervise() {
    while (true) {
      PollOnce(kPollIntervalMs);
      if (Member* ended = Reap()) {
        failed_ = ended;
        std::cerr << "ballot dev: member " << ended->name << " (pid " << ended->pid << ") "
                  << DescribeWaitStatus(ended->wait_status)
                  << " unexpectedly; stopping the others\n";
        return true;
      }
      if (g_stop_signal != 0) {
        std::cerr << "ballot dev: " << (g_stop_signal == SIGINT ? "interrupted" : "terminated")
                  << "; stopping " << members_ << " member" << (members_ == 1 ? "" : "s") << "\n";
        return false;
      }
    }
  }

  // SIGTERM to every running member, SIGKILL after the bound. Returns true when every member
  // stopped within the bound.
  bool StopAll() {
    for (Member& member : members_list_) {
      if (member.running) ::kill(member.pid, SIGTERM);
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(stop_timeout_ms_);
    bool clean = true;
    while (true) {
      Reap();
      bool any_running = false;
      for (const Member& member : members_list_) any_running = any_running || member.running;
      if (!any_running) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        for (Member& member : members_list_) {
          if (!member.running) continue;
          std::cerr << "ballot dev: member " << member.name << " (pid " << member.pid
                    << ") did not stop within " << stop_timeout_ms_
                    << " ms of SIGTERM; sending SIGKILL\n";
          ::kill(member.pid, SIGKILL);
          ::waitpid(member.pid, &member.wait_status, 0);
          member.running = false;
          Forward(member, /*final=*/true);
          clean = false;
        }
        break;
      }
      PollOnce(kPollIntervalMs);
    }
    for (Member& member : members_list_) {
      if (member.output_fd >= 0) Forward(member, /*final=*/true);
    }
    for (const Member& member : members_list_) {
      const int status = member.wait_status;
      const bool stopped_well = (WIFEXITED(status) && WEXITSTATUS(status) == 0) ||
                                (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
      if (!stopped_well && &member != failed_) {
        std::cerr << "ballot dev: member " << member.name << " " << DescribeWaitStatus(status)
                  << "\n";
      }
    }
    if (clean) std::cerr << "ballot dev: all members stopped\n";
    return clean;
  }

  int members_ = 3;
  std::string engine_ = "raft";
  std::string data_dir_ = "ballot-data";
  int base_port_ = 2379;
  int64_t stop_timeout_ms_ = 10000;
  std::string serve_binary_;
  std::vector<Member> members_list_;
  int wake_read_fd_ = -1;
  const Member* failed_ = nullptr;  // The member that ended on its own, already reported.
};

}  // namespace

Registration RegisterDev(CLI::App& app) {
  auto command = std::make_unique<DevCommand>();
  CLI::App* sub = app.add_subcommand(
      "dev", "Run a local cluster of `ballot serve` members for trying Ballot with etcdctl");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

[[maybe_unused]] const bool kRegistered = AddCommand(20, &RegisterDev);

}  // namespace ballot::cli
