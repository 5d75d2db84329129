#include "kv.h"

#include <vector>

namespace ballot::sim {
namespace {

constexpr char kFieldSep = '\x1f';
constexpr char kRecordSep = '\x1e';

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    if (pos == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, pos - start));
    start = pos + 1;
  }
}

uint64_t Fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

std::string Command::Encode() const {
  std::string out;
  out += static_cast<char>('0' + static_cast<int>(kind));
  out += kFieldSep;
  out += std::to_string(op_id);
  out += kFieldSep;
  out += key;
  out += kFieldSep;
  out += value;
  out += kFieldSep;
  out += expected;
  return out;
}

std::optional<Command> Command::Decode(std::string_view data) {
  auto fields = Split(data, kFieldSep);
  if (fields.size() != 5 || fields[0].size() != 1) return std::nullopt;
  int kind = fields[0][0] - '0';
  if (kind < 0 || kind > static_cast<int>(CommandKind::kMarker)) return std::nullopt;
  Command c;
  c.kind = static_cast<CommandKind>(kind);
  c.op_id = std::stoull(std::string(fields[1]));
  c.key = fields[2];
  c.value = fields[3];
  c.expected = fields[4];
  return c;
}

ApplyResult KvStore::Apply(const Command& command) {
  ApplyResult result;
  switch (command.kind) {
    case CommandKind::kPut:
      data_[command.key] = command.value;
      break;
    case CommandKind::kDelete:
      data_.erase(command.key);
      break;
    case CommandKind::kCas: {
      auto it = data_.find(command.key);
      if (it != data_.end() && it->second == command.expected) {
        it->second = command.value;
        result.cas_succeeded = true;
      }
      break;
    }
    case CommandKind::kMarker:
      // Markers leave a trace in the state, so that snapshots have something to carry.
      data_["marker/" + command.value] = command.value;
      break;
  }
  return result;
}

std::optional<std::string> KvStore::Get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::string KvStore::Serialize() const {
  std::string out;
  for (const auto& [k, v] : data_) {
    out += k;
    out += kFieldSep;
    out += v;
    out += kRecordSep;
  }
  return out;
}

bool KvStore::Restore(std::string_view data) {
  std::map<std::string, std::string> restored;
  for (std::string_view record : Split(data, kRecordSep)) {
    if (record.empty()) continue;
    auto kv = Split(record, kFieldSep);
    if (kv.size() != 2) return false;
    restored.emplace(std::string(kv[0]), std::string(kv[1]));
  }
  data_ = std::move(restored);
  return true;
}

uint64_t KvStore::Fingerprint() const { return Fnv1a(0xcbf29ce484222325ull, Serialize()); }

}  // namespace ballot::sim
