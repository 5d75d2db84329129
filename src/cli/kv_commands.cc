// The key-value client commands, with etcdctl's arguments and output:
//   ballot put KEY VALUE [--lease HEX] [--prev-kv]
//   ballot get KEY [RANGE_END] [--prefix|--from-key] [--limit N] [--rev N] [--keys-only]
//              [--count-only] [--print-value-only] [--consistency l|s] [-w simple|json]
//   ballot del KEY [RANGE_END] [--prefix|--from-key] [--prev-kv]
//   ballot txn                 (etcdctl's format on stdin; see client/requests.h)
//   ballot watch KEY [RANGE_END] [--prefix] [--rev N] [--prev-kv]
//   ballot compact REVISION [--physical]
#include <unistd.h>

#include <iostream>
#include <optional>
#include <string>

#include "cli/client_flags.h"
#include "cli/command.h"
#include "client/format.h"
#include "client/requests.h"

namespace ballot::cli {
namespace {

class PutCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("KEY", key_, "Key")->required();
    sub.add_option("VALUE", value_, "Value")->required();
    sub.add_option("--lease", lease_, "Attach the key to this lease (hexadecimal ID)");
    sub.add_flag("--prev-kv", prev_kv_, "Print the previous key-value pair");
    flags_.Add(sub);
  }

  int Run() override {
    etcdserverpb::PutRequest request;
    request.set_key(key_);
    request.set_value(value_);
    request.set_prev_kv(prev_kv_);
    if (!lease_.empty()) {
      Result<uint64_t> id = ParseHexId(lease_, "lease ID");
      if (!id.ok()) return PrintError(id.status());
      request.set_lease(static_cast<int64_t>(*id));
    }
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->Put(request);
    if (!response.ok()) return PrintError(response.status());
    Print(client::FormatPut(*response));
    return kExitOk;
  }

 private:
  ClientFlags flags_;
  std::string key_, value_, lease_;
  bool prev_kv_ = false;
};

class GetCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("KEY", key_, "Key, or the start of the range")->required();
    sub.add_option("RANGE_END", range_end_, "End of the range [KEY, RANGE_END)");
    sub.add_flag("--prefix", prefix_, "Get every key with the prefix KEY");
    sub.add_flag("--from-key", from_key_, "Get every key at or after KEY (byte order)");
    sub.add_option("--limit", limit_, "Return at most this many keys (0: no limit)")
        ->check(CLI::NonNegativeNumber);
    sub.add_option("--rev", revision_, "Read at this revision (0: the latest)")
        ->check(CLI::NonNegativeNumber);
    sub.add_flag("--keys-only", keys_only_, "Get keys only");
    sub.add_flag("--count-only", count_only_, "Get only the number of keys (use -w json)");
    sub.add_flag("--print-value-only", value_only_, "Print values only (simple output)");
    sub.add_option("--consistency", consistency_, "l (linearizable) or s (serializable)")
        ->check(CLI::IsMember({"l", "s"}))
        ->capture_default_str();
    sub.add_option("-w,--write-out", write_out_, "Output format: simple or json")
        ->check(CLI::IsMember({"simple", "json"}))
        ->capture_default_str();
    flags_.Add(sub);
  }

  int Run() override {
    Result<client::KeyRange> range = client::MakeKeyRange(key_, range_end_, prefix_, from_key_);
    if (!range.ok()) return PrintError(range.status());
    etcdserverpb::RangeRequest request;
    request.set_key(range->key);
    request.set_range_end(range->range_end);
    request.set_limit(limit_);
    request.set_revision(revision_);
    request.set_keys_only(keys_only_);
    request.set_count_only(count_only_);
    request.set_serializable(consistency_ == "s");
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->Range(request);
    if (!response.ok()) return PrintError(response.status());
    Print(write_out_ == "json" ? client::FormatGetJson(*response)
                               : client::FormatGet(*response, {.print_value_only = value_only_}));
    return kExitOk;
  }

 private:
  ClientFlags flags_;
  std::string key_;
  std::optional<std::string> range_end_;
  bool prefix_ = false, from_key_ = false, keys_only_ = false, count_only_ = false;
  bool value_only_ = false;
  int64_t limit_ = 0, revision_ = 0;
  std::string consistency_ = "l", write_out_ = "simple";
};

class DelCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("KEY", key_, "Key, or the start of the range")->required();
    sub.add_option("RANGE_END", range_end_, "End of the range [KEY, RANGE_END)");
    sub.add_flag("--prefix", prefix_, "Delete every key with the prefix KEY");
    sub.add_flag("--from-key", from_key_, "Delete every key at or after KEY (byte order)");
    sub.add_flag("--prev-kv", prev_kv_, "Print the deleted key-value pairs");
    flags_.Add(sub);
  }

  int Run() override {
    Result<client::KeyRange> range = client::MakeKeyRange(key_, range_end_, prefix_, from_key_);
    if (!range.ok()) return PrintError(range.status());
    etcdserverpb::DeleteRangeRequest request;
    request.set_key(range->key);
    request.set_range_end(range->range_end);
    request.set_prev_kv(prev_kv_);
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->DeleteRange(request);
    if (!response.ok()) return PrintError(response.status());
    Print(client::FormatDelete(*response));
    return kExitOk;
  }

 private:
  ClientFlags flags_;
  std::string key_;
  std::optional<std::string> range_end_;
  bool prefix_ = false, from_key_ = false, prev_kv_ = false;
};

class TxnCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) { flags_.Add(sub); }

  int Run() override {
    // On a terminal, say what each section is, as etcdctl txn -i does.
    const bool interactive = isatty(STDIN_FILENO) != 0;
    if (interactive) {
      std::cerr << "compares, then an empty line; success requests (get, put, del), then an empty "
                   "line; failure requests, then an empty line:\n";
    }
    Result<etcdserverpb::TxnRequest> request = client::ParseTxn(std::cin);
    if (!request.ok()) return PrintError(request.status());
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->Txn(*request);
    if (!response.ok()) return PrintError(response.status());
    Print(client::FormatTxn(*response));
    return kExitOk;
  }

 private:
  ClientFlags flags_;
};

class WatchCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("KEY", key_, "Key, or the start of the range")->required();
    sub.add_option("RANGE_END", range_end_, "End of the range [KEY, RANGE_END)");
    sub.add_flag("--prefix", prefix_, "Watch every key with the prefix KEY");
    sub.add_option("--rev", revision_, "Start at this revision (history included)")
        ->check(CLI::NonNegativeNumber);
    sub.add_flag("--prev-kv", prev_kv_, "Print the previous key-value pair of each event");
    flags_.Add(sub);
  }

  int Run() override {
    Result<client::KeyRange> range = client::MakeKeyRange(key_, range_end_, prefix_, false);
    if (!range.ok()) return PrintError(range.status());
    etcdserverpb::WatchCreateRequest create;
    create.set_key(range->key);
    create.set_range_end(range->range_end);
    create.set_start_revision(revision_);
    create.set_prev_kv(prev_kv_);

    std::atomic<client::WatchCall*> live{nullptr};
    SignalWaiter signals([&](int) {
      if (client::WatchCall* call = live.load()) call->Cancel();
    });
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto call = (*client)->Watch(create);
    if (!call.ok()) return PrintError(call.status());
    live.store(call->get());
    if (signals.received() != 0) (*call)->Cancel();

    etcdserverpb::WatchResponse response;
    while ((*call)->stream().Read(&response)) {
      if (response.canceled()) {
        std::string reason = response.cancel_reason();
        if (reason.empty() && response.compact_revision() != 0) {
          reason = "etcdserver: mvcc: required revision has been compacted";
        }
        std::cerr << "watch was canceled (" << reason << ")\n";
        (*call)->Cancel();
        return PrintError(Status(StatusCode::kCancelled, "watch is canceled by the server"));
      }
      for (const mvccpb::Event& event : response.events()) Print(client::FormatWatchEvent(event));
    }
    live.store(nullptr);
    if (signals.received() != 0) return kExitOk;  // stopped by the user
    const Status ended = (*call)->Finish();
    return PrintError(ended.ok() ? Status::Unavailable("watch stream closed by the server")
                                 : ended);
  }

 private:
  ClientFlags flags_;
  std::string key_;
  std::optional<std::string> range_end_;
  bool prefix_ = false, prev_kv_ = false;
  int64_t revision_ = 0;
};

class CompactCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.add_option("REVISION", revision_, "Discard history before this revision")
        ->required()
        ->check(CLI::PositiveNumber);
    sub.add_flag("--physical", physical_, "Wait until the space is reclaimed");
    flags_.Add(sub);
  }

  int Run() override {
    etcdserverpb::CompactionRequest request;
    request.set_revision(revision_);
    request.set_physical(physical_);
    auto client = flags_.Connect();
    if (!client.ok()) return PrintError(client.status());
    auto response = (*client)->Compact(request);
    if (!response.ok()) return PrintError(response.status());
    Print("compacted revision " + std::to_string(revision_) + "\n");
    return kExitOk;
  }

 private:
  ClientFlags flags_;
  int64_t revision_ = 0;
  bool physical_ = false;
};

template <typename T>
Registration Register(CLI::App& app, const char* name, const char* description) {
  auto command = std::make_unique<T>();
  CLI::App* sub = app.add_subcommand(name, description);
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

Registration RegisterPut(CLI::App& app) {
  return Register<PutCommand>(app, "put", "Put a key-value pair (etcd v3 API)");
}
Registration RegisterGet(CLI::App& app) {
  return Register<GetCommand>(app, "get", "Get a key or a range of keys");
}
Registration RegisterDel(CLI::App& app) {
  return Register<DelCommand>(app, "del", "Delete a key or a range of keys");
}
Registration RegisterTxn(CLI::App& app) {
  return Register<TxnCommand>(app, "txn",
                              "Run a transaction read from stdin in etcdctl's txn format");
}
Registration RegisterWatch(CLI::App& app) {
  return Register<WatchCommand>(app, "watch", "Print the events on a key or range until Ctrl-C");
}
Registration RegisterCompact(CLI::App& app) {
  return Register<CompactCommand>(app, "compact",
                                  "Discard the key space's history before a revision");
}

[[maybe_unused]] const bool kPut = AddCommand(30, &RegisterPut);
[[maybe_unused]] const bool kGet = AddCommand(31, &RegisterGet);
[[maybe_unused]] const bool kDel = AddCommand(32, &RegisterDel);
[[maybe_unused]] const bool kTxn = AddCommand(33, &RegisterTxn);
[[maybe_unused]] const bool kWatch = AddCommand(34, &RegisterWatch);
[[maybe_unused]] const bool kCompact = AddCommand(35, &RegisterCompact);

}  // namespace
}  // namespace ballot::cli
