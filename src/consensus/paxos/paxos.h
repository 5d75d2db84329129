// The Multi-Paxos engine, behind the engine contract (consensus/engine.h).
#pragma once

#include <memory>

#include "base/status.h"
#include "consensus/engine.h"

namespace ballot::consensus::paxos {

// Member ids must be in [1, 2^20): a ballot packs (round, member id) into the contract's term.
Result<std::unique_ptr<Engine>> NewMultiPaxos(const Config& config, Bug bug);

}  // namespace ballot::consensus::paxos
