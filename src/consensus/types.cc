#include "consensus/types.h"

#include <cstring>

namespace ballot::consensus {

std::string ConfState::ToString() const {
  std::string out = "voters=[";
  for (NodeId v : voters) out += (out.back() == '[' ? "" : ",") + std::to_string(v);
  out += "] learners=[";
  for (NodeId l : learners) out += (out.back() == '[' ? "" : ",") + std::to_string(l);
  return out + "]";
}

// Encoding: [type u8][node u64 little-endian][context bytes].
std::string ConfChange::Encode() const {
  std::string out(9, '\0');
  out[0] = static_cast<char>(type);
  for (int i = 0; i < 8; ++i) out[1 + i] = static_cast<char>((node >> (8 * i)) & 0xff);
  out += context;
  return out;
}

bool ConfChange::Decode(std::string_view data, ConfChange* out) {
  if (data.size() < 9) return false;
  const auto type = static_cast<uint8_t>(data[0]);
  if (type > static_cast<uint8_t>(ConfChangeType::kRemove)) return false;
  uint64_t node = 0;
  for (int i = 0; i < 8; ++i)
    node |= static_cast<uint64_t>(static_cast<uint8_t>(data[1 + i])) << (8 * i);
  if (node == kNoNode) return false;
  out->type = static_cast<ConfChangeType>(type);
  out->node = node;
  out->context = std::string(data.substr(9));
  return true;
}

ConfState ApplyConfChange(const ConfState& conf, const ConfChange& cc) {
  ConfState next = conf;
  switch (cc.type) {
    case ConfChangeType::kAddLearner:
      if (next.voters.count(cc.node) == 0) next.learners.insert(cc.node);
      break;
    case ConfChangeType::kAddVoter:
      next.learners.erase(cc.node);
      next.voters.insert(cc.node);
      break;
    case ConfChangeType::kRemove:
      next.voters.erase(cc.node);
      next.learners.erase(cc.node);
      break;
  }
  return next;
}

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kAppend:
      return "Append";
    case MessageType::kAppendResponse:
      return "AppendResponse";
    case MessageType::kVote:
      return "Vote";
    case MessageType::kVoteResponse:
      return "VoteResponse";
    case MessageType::kPreVote:
      return "PreVote";
    case MessageType::kPreVoteResponse:
      return "PreVoteResponse";
    case MessageType::kHeartbeat:
      return "Heartbeat";
    case MessageType::kHeartbeatResponse:
      return "HeartbeatResponse";
    case MessageType::kSnapshot:
      return "Snapshot";
    case MessageType::kSnapshotResponse:
      return "SnapshotResponse";
    case MessageType::kReadIndex:
      return "ReadIndex";
    case MessageType::kReadIndexResponse:
      return "ReadIndexResponse";
    case MessageType::kTimeoutNow:
      return "TimeoutNow";
    case MessageType::kPrepare:
      return "Prepare";
    case MessageType::kPromise:
      return "Promise";
    case MessageType::kAccept:
      return "Accept";
    case MessageType::kAccepted:
      return "Accepted";
    case MessageType::kCatchUp:
      return "CatchUp";
    case MessageType::kCatchUpResponse:
      return "CatchUpResponse";
  }
  return "Unknown";
}

uint64_t Message::SizeBytes() const {
  uint64_t bytes = 64 + context.size() + snapshot_chunk.size();
  for (const Entry& e : entries) bytes += e.SizeBytes();
  return bytes;
}

std::string Message::ToString() const {
  std::string out(MessageTypeName(type));
  out += " " + std::to_string(from) + "->" + std::to_string(to) + " term=" + std::to_string(term) +
         " log_term=" + std::to_string(log_term) + " index=" + std::to_string(index) +
         " commit=" + std::to_string(commit) + " entries=" + std::to_string(entries.size());
  if (reject)
    out += " reject hint=" + std::to_string(reject_hint) + "/" + std::to_string(reject_term);
  return out;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kFollower:
      return "follower";
    case Role::kPreCandidate:
      return "pre-candidate";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "unknown";
}

}  // namespace ballot::consensus
