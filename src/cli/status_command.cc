// `ballot status [-w table|simple|json]`: every endpoint's status (member ID, version, database
// size, leader, learner, term, index, applied index, errors), as etcdctl endpoint status prints
// it. Each endpoint is asked on its own. Exit 0 when all answered, 1 when one did not.
#include <string>
#include <vector>

#include "cli/client_flags.h"
#include "cli/command.h"
#include "client/format.h"

namespace ballot::cli {
namespace {

class StatusCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("-w,--write-out", write_out_, "Output format: table, simple or json")
        ->check(CLI::IsMember({"table", "simple", "json"}))
        ->capture_default_str();
    flags_.Add(sub);
  }

  int Run() override {
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    std::vector<client::EndpointStatus> rows;
    bool all_answered = true;
    for (const std::string& endpoint : (*client)->options().endpoints) {
      client::EndpointStatus row;
      row.endpoint = endpoint;
      auto status = (*client)->StatusOf(endpoint);
      if (status.ok()) {
        row.status = *std::move(status);
      } else {
        row.error = status.status();
        all_answered = false;
      }
      rows.push_back(std::move(row));
    }
    if (write_out_ == "json") {
      Print(client::FormatStatusJson(rows));
    } else if (write_out_ == "simple") {
      Print(client::FormatStatusSimple(rows));
    } else {
      Print(client::FormatStatusTable(rows));
    }
    for (const auto& row : rows) {
      if (!row.error.ok())
        std::cerr << "Error: " << row.endpoint << ": " << row.error.message() << "\n";
    }
    return all_answered ? kExitOk : kExitNegative;
  }

 private:
  ClientFlags flags_;
  std::string write_out_ = "table";
};

Registration RegisterStatus(CLI::App& app) {
  auto command = std::make_unique<StatusCommand>();
  CLI::App* sub = app.add_subcommand("status", "Print each endpoint's status as a table");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

[[maybe_unused]] const bool kRegistered = AddCommand(55, &RegisterStatus);

}  // namespace
}  // namespace ballot::cli
