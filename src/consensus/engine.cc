#include "consensus/engine.h"

#include "consensus/paxos/paxos.h"
#include "consensus/raft/raft.h"

namespace ballot::consensus {

std::string_view EngineKindName(EngineKind kind) {
  switch (kind) {
    case EngineKind::kRaft:
      return "raft";
    case EngineKind::kMultiPaxos:
      return "multipaxos";
  }
  return "unknown";
}

Result<EngineKind> ParseEngineKind(std::string_view name) {
  if (name == "raft") return EngineKind::kRaft;
  if (name == "multipaxos") return EngineKind::kMultiPaxos;
  return Status::InvalidArgument("unknown engine '" + std::string(name) +
                                 "': expected raft or multipaxos");
}

Status Config::Validate() const {
  if (id == kNoNode) return Status::InvalidArgument("config: id must not be 0");
  if (storage == nullptr) return Status::InvalidArgument("config: storage is required");
  if (heartbeat_ticks < 1) return Status::InvalidArgument("config: heartbeat_ticks must be >= 1");
  if (election_ticks <= heartbeat_ticks) {
    return Status::InvalidArgument("config: election_ticks must exceed heartbeat_ticks");
  }
  if (read_mode == ReadMode::kLease) {
    if (!check_quorum) return Status::InvalidArgument("config: lease reads need check_quorum");
    if (lease_drift_ticks < 1 || lease_drift_ticks >= election_ticks) {
      return Status::InvalidArgument("config: lease_drift_ticks must be in [1, election_ticks)");
    }
  }
  if (max_inflight_messages < 1) {
    return Status::InvalidArgument("config: max_inflight_messages must be >= 1");
  }
  if (snapshot_chunk_bytes < 1) {
    return Status::InvalidArgument("config: snapshot_chunk_bytes must be >= 1");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Engine>> NewEngine(EngineKind kind, const Config& config, Bug bug) {
  RETURN_IF_ERROR(config.Validate());
#ifndef BALLOT_BROKEN_VARIANTS
  if (bug != Bug::kNone) {
    return Status::Unimplemented("broken engine variants exist only in test builds");
  }
#endif
  switch (kind) {
    case EngineKind::kRaft:
      return raft::NewRaft(config, bug);
    case EngineKind::kMultiPaxos:
      return paxos::NewMultiPaxos(config, bug);
  }
  return Status::InvalidArgument("unknown engine kind");
}

}  // namespace ballot::consensus
