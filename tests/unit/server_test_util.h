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
    void SendMember(consensus::NodeId to, std::string payload) override {
      net_->DeliverMember(id_, to, std::move(payload));
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
  // A member: its consensus messages and its member messages (Member::StepMember).
  template <typename M>
  requires requires(M* m, std::string s) { m->StepMember(consensus::NodeId{}, std::move(s)); }
  void Attach(consensus::NodeId id, M* member) {
    Attach(id, [member](consensus::Message m) { member->Step(std::move(m)); });
    std::lock_guard<std::mutex> lock(mu_);
    members_[id] = [member](consensus::NodeId from, std::string payload) {
      member->StepMember(from, std::move(payload));
    };
  }
  void Attach(consensus::NodeId id, std::function<void(consensus::Message)> deliver) {
    std::lock_guard<std::mutex> lock(mu_);
    nodes_[id] = std::move(deliver);
  }
  void Detach(consensus::NodeId id) {
    std::lock_guard<std::mutex> lock(mu_);
    nodes_.erase(id);
    members_.erase(id);
  }
  // Drops the member messages it returns true for (from, to).
  void SetMemberFilter(std::function<bool(consensus::NodeId, consensus::NodeId)> drop) {
    std::lock_guard<std::mutex> lock(mu_);
    drop_member_ = std::move(drop);
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

  // Outside the lock: a member may answer (and so send) from within StepMember.
  void DeliverMember(consensus::NodeId from, consensus::NodeId to, std::string payload) {
    std::function<void(consensus::NodeId, std::string)> deliver;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cut_.count(from) || cut_.count(to)) return;
      if (drop_member_ && drop_member_(from, to)) return;
      auto it = members_.find(to);
      if (it == members_.end()) return;
      deliver = it->second;
    }
    deliver(from, std::move(payload));
  }

  std::mutex mu_;
  std::map<consensus::NodeId, std::unique_ptr<Endpoint>> endpoints_;
  std::map<consensus::NodeId, std::function<void(consensus::NodeId, std::string)>> members_;
  std::function<bool(consensus::NodeId, consensus::NodeId)> drop_member_;
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
