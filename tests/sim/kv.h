// The simulator's replicated state machine: a small key-value map driven by encoded commands.
//
// It is durable the way DESIGN.md asks of the real one: the map and the applied index change
// together, atomically, so a restarted member resumes from its applied index.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace ballot::sim {

enum class CommandKind : uint8_t { kPut, kCas, kDelete, kMarker };

struct Command {
  CommandKind kind = CommandKind::kPut;
  uint64_t op_id = 0;  // Unique per client operation; 0 for markers.
  std::string key;
  std::string value;
  std::string expected;  // kCas only.

  std::string Encode() const;
  static std::optional<Command> Decode(std::string_view data);
};

struct ApplyResult {
  bool cas_succeeded = false;
};

class KvStore {
 public:
  ApplyResult Apply(const Command& command);
  std::optional<std::string> Get(const std::string& key) const;

  std::string Serialize() const;
  // Returns false on malformed data (and leaves the store unchanged).
  bool Restore(std::string_view data);

  uint64_t Fingerprint() const;

 private:
  std::map<std::string, std::string> data_;
};

}  // namespace ballot::sim
