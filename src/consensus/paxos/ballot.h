// Ballots: (round, member tag), packed into the contract's 64-bit term so that HardState and
// Message need no new fields. Ordering the packed value orders ballots by round, then by member:
// every proposer's ballots are unique, and any two are comparable (Paxos Made Simple, 2.2).
//
// A member's tag is its id when the id fits in kBallotIdBits (the simulator's ids), else 20 bits
// mixed from the whole id (the server's ids are etcd's 64-bit hashes). Ballots stay unique as long
// as no two members share a tag: the engine refuses to start with, or to add, a member whose tag
// another member of the configuration holds (see docs/multipaxos.md, "Member ids and ballots").
#pragma once

#include <cstdint>

#include "consensus/types.h"

namespace ballot::consensus::paxos {

inline constexpr int kBallotIdBits = 20;
inline constexpr NodeId kBallotIdMax = (NodeId{1} << kBallotIdBits) - 1;

inline constexpr NodeId BallotTag(NodeId id) {
  if (id <= kBallotIdMax) return id;
  uint64_t x = id;  // splitmix64's finalizer: every bit of the id moves the tag.
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  x ^= x >> 31;
  const NodeId tag = x & kBallotIdMax;
  return tag == 0 ? 1 : tag;
}

inline constexpr Term MakeBallot(uint64_t round, NodeId id) {
  return (round << kBallotIdBits) | BallotTag(id);
}
inline constexpr uint64_t BallotRound(Term ballot) { return ballot >> kBallotIdBits; }
// The owner's tag (BallotTag of its id).
inline constexpr NodeId BallotOwner(Term ballot) { return ballot & kBallotIdMax; }

}  // namespace ballot::consensus::paxos
