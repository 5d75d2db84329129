// `ballot lease grant TTL | revoke ID | timetolive ID [--keys] | keep-alive ID [--once] | list`,
// with etcdctl's output. IDs are hexadecimal, as etcdctl prints them.
#include <condition_variable>
#include <mutex>
#include <string>

#include "cli/client_flags.h"
#include "cli/command.h"
#include "client/format.h"

namespace ballot::cli {
namespace {

class LeaseCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.require_subcommand(1);
    grant_ = sub.add_subcommand("grant", "Create a lease with a TTL in seconds");
    grant_->add_option("TTL", ttl_s_, "Time to live, seconds")
        ->required()
        ->check(CLI::PositiveNumber);
    revoke_ = sub.add_subcommand("revoke", "Revoke a lease (deletes its keys)");
    revoke_->add_option("ID", id_, "Lease ID (hexadecimal)")->required();
    timetolive_ = sub.add_subcommand("timetolive", "Print a lease's granted and remaining TTL");
    timetolive_->add_option("ID", id_, "Lease ID (hexadecimal)")->required();
    timetolive_->add_flag("--keys", keys_, "Also print the keys attached to the lease");
    keep_alive_ = sub.add_subcommand(
        "keep-alive", "Keep a lease alive until Ctrl-C (exit 1 if it expires or is revoked)");
    keep_alive_->add_option("ID", id_, "Lease ID (hexadecimal)")->required();
    keep_alive_->add_flag("--once", once_, "Renew once and exit");
    list_ = sub.add_subcommand("list", "List the live leases");
    for (CLI::App* app : {grant_, revoke_, timetolive_, keep_alive_, list_}) flags_.Add(*app);
  }

  int Run() override {
    if (grant_->parsed()) return Grant();
    if (list_->parsed()) return List();
    Result<uint64_t> id = ParseHexId(id_, "lease ID");
    if (!id.ok()) return PrintError(id.status());
    const auto lease_id = static_cast<int64_t>(*id);
    if (revoke_->parsed()) return Revoke(lease_id);
    if (timetolive_->parsed()) return TimeToLive(lease_id);
    return KeepAlive(lease_id);
  }

 private:
  int Grant() {
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->LeaseGrant(ttl_s_);
    if (!response.ok()) return PrintError(response.status());
    if (!response->error().empty()) return PrintError(Status::Internal(response->error()));
    Print(client::FormatLeaseGrant(*response));
    return kExitOk;
  }

  int List() {
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->LeaseLeases();
    if (!response.ok()) return PrintError(response.status());
    Print(client::FormatLeaseList(*response));
    return kExitOk;
  }

  int Revoke(int64_t id) {
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->LeaseRevoke(id);
    if (!response.ok()) return PrintError(response.status());
    Print(client::FormatLeaseRevoke(id));
    return kExitOk;
  }

  int TimeToLive(int64_t id) {
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->LeaseTimeToLive(id, keys_);
    if (!response.ok()) return PrintError(response.status());
    Print(client::FormatLeaseTimeToLive(*response));
    return kExitOk;
  }

  // Renews every third of the TTL the server reports, printing each renewal, until Ctrl-C or
  // until the lease is gone.
  int KeepAlive(int64_t id) {
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    SignalWaiter signals([&](int) {
      std::lock_guard lock(mu);
      stop = true;
      cv.notify_all();
    });
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    while (true) {
      auto response = (*client)->LeaseKeepAliveOnce(id);
      if (!response.ok()) {
        if (response.status().code() != StatusCode::kNotFound) return PrintError(response.status());
      } else if (response->ttl() > 0) {
        Print(client::FormatLeaseKeepAlive(*response));
        if (once_) return kExitOk;
      }
      if (!response.ok() || response->ttl() <= 0) {
        if (once_) return PrintError(Status::NotFound("etcdserver: requested lease not found"));
        Print("lease " + client::FormatLeaseId(id) + " expired or revoked.\n");
        return kExitNegative;
      }
      std::unique_lock lock(mu);
      const auto period =
          std::chrono::milliseconds(std::max<int64_t>(response->ttl() * 1000 / 3, 200));
      if (cv.wait_for(lock, period, [&] { return stop; })) return kExitOk;
    }
  }

  ClientFlags flags_;
  CLI::App* grant_ = nullptr;
  CLI::App* revoke_ = nullptr;
  CLI::App* timetolive_ = nullptr;
  CLI::App* keep_alive_ = nullptr;
  CLI::App* list_ = nullptr;
  int64_t ttl_s_ = 0;
  std::string id_;
  bool keys_ = false, once_ = false;
};

Registration RegisterLease(CLI::App& app) {
  auto command = std::make_unique<LeaseCommand>();
  CLI::App* sub = app.add_subcommand("lease", "Grant, revoke, inspect and keep alive leases");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

[[maybe_unused]] const bool kRegistered = AddCommand(40, &RegisterLease);

}  // namespace
}  // namespace ballot::cli
