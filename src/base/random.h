// A small deterministic pseudo-random generator (xoshiro256**, seeded through splitmix64).
//
// Engines and the simulator take one of these, seeded by the caller, instead of any global or
// library-defined source: the same seed gives the same sequence on every platform and library
// version, which is what makes a simulator seed replayable.
#pragma once

#include <cstdint>

#include "base/assert.h"

namespace ballot {

class Random {
 public:
  explicit Random(uint64_t seed) {
    uint64_t x = seed;
    for (auto& word : state_) word = SplitMix64(x);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, n). n must be positive.
  uint64_t Uniform(uint64_t n) {
    BALLOT_ASSERT(n > 0);
    // Lemire's multiply-shift; the tiny bias is irrelevant for simulation.
    return static_cast<uint64_t>((static_cast<unsigned __int128>(Next()) * n) >> 64);
  }

  // Uniform in [lo, hi], inclusive.
  int64_t Range(int64_t lo, int64_t hi) {
    BALLOT_ASSERT(lo <= hi);
    return lo + static_cast<int64_t>(Uniform(static_cast<uint64_t>(hi - lo) + 1));
  }

  // True with probability p (0 <= p <= 1).
  bool Chance(double p) { return static_cast<double>(Next() >> 11) * 0x1.0p-53 < p; }

  // A fresh seed for a sub-generator, so that components draw independent streams.
  uint64_t Fork() { return Next() ^ 0x9e3779b97f4a7c15ull; }

 private:
  static uint64_t SplitMix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

  uint64_t state_[4];
};

}  // namespace ballot
