// Ballots: (round, member id), packed into the contract's 64-bit term so that HardState and
// Message need no new fields. Ordering the packed value orders ballots by round, then by member:
// every proposer's ballots are unique, and any two are comparable (Paxos Made Simple, 2.2).
#pragma once

#include <cstdint>

#include "consensus/types.h"

namespace ballot::consensus::paxos {

inline constexpr int kBallotIdBits = 20;
inline constexpr NodeId kBallotIdMax = (NodeId{1} << kBallotIdBits) - 1;

inline constexpr Term MakeBallot(uint64_t round, NodeId id) {
  return (round << kBallotIdBits) | id;
}
inline constexpr uint64_t BallotRound(Term ballot) { return ballot >> kBallotIdBits; }
inline constexpr NodeId BallotOwner(Term ballot) { return ballot & kBallotIdMax; }

}  // namespace ballot::consensus::paxos
