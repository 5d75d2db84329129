// `ballot snapshot save <file>` and `ballot snapshot restore <file> --data-dir ...`: etcdctl's
// snapshot commands for Ballot's snapshot image (docs/server.md, "Snapshot restore"). save streams
// Maintenance.Snapshot from the first endpoint into <file> (via <file>.part, checked, renamed);
// restore writes a new member's data directory from such a file (server/restore.h).
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/client_flags.h"
#include "cli/command.h"
#include "config/identity.h"
#include "config/serve_config.h"
#include "rpc.grpc.pb.h"
#include "server/forwarder.h"
#include "server/restore.h"

namespace ballot::cli {
namespace {

// A snapshot image may not be larger than this (it is read into memory whole).
constexpr uint64_t kSnapshotFileBytesMax = uint64_t{8} << 30;

Result<std::string> ReadWholeFile(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) return Status::NotFound("cannot read " + path + ": " + ec.message());
  if (size > kSnapshotFileBytesMax) {
    return Status::InvalidArgument(path + " is larger than " +
                                   std::to_string(kSnapshotFileBytesMax) + " bytes");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot open " + path);
  std::string data(size, '\0');
  if (!in.read(data.data(), static_cast<std::streamsize>(size))) {
    return Status::Internal("cannot read " + path);
  }
  return data;
}

class SnapshotCommand : public Command {
 public:
  void AddOptions(CLI::App& sub) {
    sub.require_subcommand(1);
    save_ = sub.add_subcommand("save", "Stream a member's snapshot into a file (etcdctl's)");
    save_->add_option("file", save_file_, "Where to write the snapshot")->required();
    flags_.Add(*save_);

    restore_ = sub.add_subcommand(
        "restore", "Write a new member's data directory from a snapshot file (etcdctl's flags)");
    restore_->add_option("file", restore_file_, "A file written by `snapshot save`")->required();
    restore_->add_option("--data-dir", data_dir_, "The new data directory (must not exist)");
    restore_->add_option("--name", name_, "This member's name")->capture_default_str();
    restore_
        ->add_option("--initial-cluster", initial_cluster_, "The new cluster: name=peer-url,...")
        ->capture_default_str();
    restore_->add_option("--initial-cluster-token", token_, "The new cluster's token")
        ->capture_default_str();
    restore_
        ->add_option("--initial-advertise-peer-urls", advertise_peer_urls_,
                     "This member's peer URLs")
        ->capture_default_str();
    restore_->add_option("--engine", engine_, "raft or multipaxos (as `ballot serve --engine`)")
        ->check(CLI::IsMember({"raft", "multipaxos"}))
        ->capture_default_str();
    restore_->add_flag("--skip-hash-check", skip_hash_check_,
                       "Accept a file without (or with a wrong) SHA-256 trailer");
  }

  int Run() override {
    if (save_->parsed()) return Save();
    return Restore();
  }

 private:
  int Save() {
    auto client = flags_.Connect();  // Only to parse the flags the way every command does.
    if (!client.ok()) return PrintError(client.status());
    const std::string endpoint = (*client)->options().endpoints.at(0);
    auto target = server::ClientUrlToTarget(endpoint);
    if (!target.ok()) return PrintError(target.status());
    auto channel = grpc::CreateChannel(*target, grpc::InsecureChannelCredentials());
    auto stub = etcdserverpb::Maintenance::NewStub(channel);
    grpc::ClientContext ctx;
    etcdserverpb::SnapshotRequest request;
    auto reader = stub->Snapshot(&ctx, request);
    std::string image;
    etcdserverpb::SnapshotResponse chunk;
    while (reader->Read(&chunk)) {
      if (image.size() + chunk.blob().size() > kSnapshotFileBytesMax) {
        ctx.TryCancel();
        return PrintError(Status::ResourceExhausted("snapshot larger than the bound"));
      }
      image += chunk.blob();
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) {
      return PrintError(Status(static_cast<StatusCode>(s.error_code()), s.error_message()));
    }
    auto stream = server::ExtractSnapshotStream(image, /*skip_hash_check=*/false);
    if (!stream.ok()) return PrintError(stream.status());
    const std::string part = save_file_ + ".part";
    {
      std::ofstream out(part, std::ios::binary | std::ios::trunc);
      out.write(image.data(), static_cast<std::streamsize>(image.size()));
      out.flush();
      if (!out) {
        std::filesystem::remove(part);
        return PrintError(Status::Internal("cannot write " + part));
      }
    }
    std::error_code ec;
    std::filesystem::rename(part, save_file_, ec);
    if (ec) return PrintError(Status::Internal("cannot rename " + part + ": " + ec.message()));
    Print("Snapshot saved at " + save_file_ + "\n");
    return kExitOk;
  }

  int Restore() {
    server::RestoreOptions options;
    options.name = name_;
    options.data_dir = data_dir_.empty() ? name_ + ".etcd" : data_dir_;  // etcdctl's default.
    options.initial_cluster_token = token_;
    options.skip_hash_check = skip_hash_check_;
    options.engine =
        engine_ == "raft" ? config::EngineKind::kRaft : config::EngineKind::kMultiPaxos;
    auto advertise = config::ParseUrlList(advertise_peer_urls_, "--initial-advertise-peer-urls");
    if (!advertise.ok()) return PrintError(advertise.status());
    options.initial_advertise_peer_urls = *advertise;
    const std::string cluster =
        initial_cluster_.empty() ? name_ + "=" + advertise_peer_urls_ : initial_cluster_;
    auto members = config::ParseInitialCluster(cluster);
    if (!members.ok()) return PrintError(members.status());
    options.initial_cluster = *members;
    auto image = ReadWholeFile(restore_file_);
    if (!image.ok()) return PrintError(image.status());
    auto report = server::RestoreSnapshot(*image, options);
    if (!report.ok()) return PrintError(report.status());
    Print("restored snapshot " + restore_file_ + " into " + options.data_dir + ": member " +
          config::IdToHex(report->member_id) + " of cluster " +
          config::IdToHex(report->cluster_id) + ", revision " + std::to_string(report->revision) +
          ", log starting at index " + std::to_string(report->applied_index) + "\n");
    return kExitOk;
  }

  CLI::App* save_ = nullptr;
  CLI::App* restore_ = nullptr;
  ClientFlags flags_;
  std::string save_file_;
  std::string restore_file_;
  std::string data_dir_;
  // etcdctl's defaults.
  std::string name_ = "default";
  std::string initial_cluster_;
  std::string token_ = "etcd-cluster";
  std::string advertise_peer_urls_ = "http://localhost:2380";
  std::string engine_ = "raft";
  bool skip_hash_check_ = false;
};

Registration RegisterSnapshot(CLI::App& app) {
  auto command = std::make_unique<SnapshotCommand>();
  CLI::App* sub = app.add_subcommand("snapshot",
                                     "Save a member's snapshot; restore one into a "
                                     "new data directory (etcdctl's commands)");
  command->AddOptions(*sub);
  return {sub, std::move(command)};
}

[[maybe_unused]] const bool kRegistered = AddCommand(57, &RegisterSnapshot);

}  // namespace
}  // namespace ballot::cli
