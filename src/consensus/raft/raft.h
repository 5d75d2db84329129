// Raft, after Ongaro and Ousterhout's paper and Ongaro's thesis, as a pure engine (engine.h).
#pragma once

#include <memory>

#include "consensus/engine.h"

namespace ballot::consensus::raft {

// Makes a Raft engine that restarts from config.storage. `bug` is kNone outside test builds.
Result<std::unique_ptr<Engine>> NewRaft(const Config& config, Bug bug);

}  // namespace ballot::consensus::raft
