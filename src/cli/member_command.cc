// `ballot member list | add NAME --peer-urls URLS [--learner] | remove ID | promote ID`, with
// etcdctl's output. IDs are hexadecimal, as member list prints them.
#include <string>

#include "cli/client_flags.h"
#include "cli/command.h"
#include "client/format.h"

namespace ballot::cli {
namespace {

std::string HexId(uint64_t id) {
  char buffer[24];
  std::snprintf(buffer, sizeof buffer, "%16llx", static_cast<unsigned long long>(id));
  return buffer;
}

class MemberCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.require_subcommand(1);
    list_ = sub.add_subcommand("list", "List the cluster's members");
    add_ = sub.add_subcommand("add", "Add a member (then start it with the printed settings)");
    add_->add_option("NAME", name_, "Name of the new member")->required();
    add_->add_option("--peer-urls", peer_urls_, "The new member's peer URLs, comma-separated")
        ->required();
    add_->add_flag("--learner", learner_, "Add it as a learner (replicates, does not vote)");
    remove_ = sub.add_subcommand("remove", "Remove a member");
    remove_->add_option("ID", id_, "Member ID (hexadecimal)")->required();
    promote_ = sub.add_subcommand("promote", "Promote a learner to a voting member");
    promote_->add_option("ID", id_, "Member ID (hexadecimal)")->required();
    for (CLI::App* app : {list_, add_, remove_, promote_}) flags_.Add(*app);
  }

  int Run() override {
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    if (list_->parsed()) {
      auto response = (*client)->MemberList();
      if (!response.ok()) return PrintError(response.status());
      Print(client::FormatMemberList(*response));
      return kExitOk;
    }
    if (add_->parsed()) {
      Result<std::vector<std::string>> urls = client::SplitEndpoints(peer_urls_);
      if (!urls.ok()) return PrintError(urls.status());
      auto response = (*client)->MemberAdd(*urls, learner_);
      if (!response.ok()) return PrintError(response.status());
      Print(client::FormatMemberAdd(*response, name_));
      return kExitOk;
    }
    Result<uint64_t> id = ParseHexId(id_, "member ID");
    if (!id.ok()) return PrintError(id.status());
    if (remove_->parsed()) {
      auto response = (*client)->MemberRemove(*id);
      if (!response.ok()) return PrintError(response.status());
      Print("Member " + HexId(*id) + " removed from cluster " +
            HexId(response->header().cluster_id()) + "\n");
      return kExitOk;
    }
    auto response = (*client)->MemberPromote(*id);
    if (!response.ok()) return PrintError(response.status());
    Print("Member " + HexId(*id) + " promoted in cluster " +
          HexId(response->header().cluster_id()) + "\n");
    return kExitOk;
  }

 private:
  ClientFlags flags_;
  CLI::App* list_ = nullptr;
  CLI::App* add_ = nullptr;
  CLI::App* remove_ = nullptr;
  CLI::App* promote_ = nullptr;
  std::string name_, peer_urls_, id_;
  bool learner_ = false;
};

Registration RegisterMember(CLI::App& app) {
  auto command = std::make_unique<MemberCommand>();
  CLI::App* sub = app.add_subcommand("member", "List, add, remove and promote cluster members");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

[[maybe_unused]] const bool kRegistered = AddCommand(50, &RegisterMember);

}  // namespace
}  // namespace ballot::cli
