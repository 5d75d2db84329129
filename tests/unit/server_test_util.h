// Test helpers for the member: an in-process peer transport that can cut members off, and temp
// directories.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "server/node.h"

namespace ballot::server::testing {

// Delivers messages between nodes of one process by calling Step. A cut-off member neither sends
// nor receives; a filter drops the messages it returns true for.
class LocalNetwork {
 public:
  class Endpoint : public PeerSender {
   public:
    Endpoint(LocalNetwork* net, consensus::NodeId id) : net_(net), id_(id) {}
    void Send(std::vector<consensus::Message> messages) override {
      for (auto& m : messages) net_->Deliver(id_, std::move(m));
    }

   private:
    LocalNetwork* net_;
    consensus::NodeId id_;
  };

  Endpoint* EndpointFor(consensus::NodeId id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& e = endpoints_[id];
    if (!e) e = std::make_unique<Endpoint>(this, id);
    return e.get();
  }
  void Attach(consensus::NodeId id, Node* node) {
    Attach(id, [node](consensus::Message m) { node->Step(std::move(m)); });
  }
  void Attach(consensus::NodeId id, std::function<void(consensus::Message)> deliver) {
    std::lock_guard<std::mutex> lock(mu_);
    nodes_[id] = std::move(deliver);
  }
  void Detach(consensus::NodeId id) {
    std::lock_guard<std::mutex> lock(mu_);
    nodes_.erase(id);
  }
  void SetFilter(std::function<bool(const consensus::Message&)> drop) {
    std::lock_guard<std::mutex> lock(mu_);
    drop_ = std::move(drop);
  }
  void Cut(consensus::NodeId id, bool cut) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cut) {
      cut_.insert(id);
    } else {
      cut_.erase(id);
    }
  }

 private:
  void Deliver(consensus::NodeId from, consensus::Message m) {
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_.count(from) || cut_.count(m.to)) return;
    if (drop_ && drop_(m)) return;
    auto it = nodes_.find(m.to);
    if (it != nodes_.end()) it->second(std::move(m));
  }

  std::mutex mu_;
  std::map<consensus::NodeId, std::unique_ptr<Endpoint>> endpoints_;
  std::map<consensus::NodeId, std::function<void(consensus::Message)>> nodes_;
  std::set<consensus::NodeId> cut_;
  std::function<bool(const consensus::Message&)> drop_;
};

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ballot-server-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Deadline In(int ms) { return Clock::now() + std::chrono::milliseconds(ms); }

}  // namespace ballot::server::testing
