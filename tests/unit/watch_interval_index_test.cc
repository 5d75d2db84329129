// The interval index of range watchers, against a brute-force list.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "base/random.h"
#include "watch/interval_index.h"

namespace ballot::watch {
namespace {

struct Interval {
  std::string start;
  std::string end;
  bool unbounded = false;
};

std::vector<uint64_t> StabIds(const IntervalIndex& index, std::string_view key) {
  std::vector<uint64_t> out;
  index.Stab(key, [&](void* v) { out.push_back(reinterpret_cast<uintptr_t>(v)); });
  std::sort(out.begin(), out.end());
  return out;
}

TEST(WatchIntervalIndexTest, StabsHalfOpenAndUnboundedIntervals) {
  IntervalIndex index;
  index.Insert("b", "d", false, 1, reinterpret_cast<void*>(1));
  index.Insert("c", "", true, 2, reinterpret_cast<void*>(2));
  index.Insert("a", "b", false, 3, reinterpret_cast<void*>(3));
  EXPECT_EQ(StabIds(index, "a"), (std::vector<uint64_t>{3}));
  EXPECT_EQ(StabIds(index, "b"), (std::vector<uint64_t>{1}));  // [a, b) ends before b.
  EXPECT_EQ(StabIds(index, "c"), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(StabIds(index, "d"), (std::vector<uint64_t>{2}));
  EXPECT_EQ(StabIds(index, "zzz"), (std::vector<uint64_t>{2}));
  EXPECT_EQ(StabIds(index, ""), (std::vector<uint64_t>{}));
  EXPECT_TRUE(index.Erase("c", 2));
  EXPECT_FALSE(index.Erase("c", 2));
  EXPECT_FALSE(index.Erase("b", 3));  // Wrong start.
  EXPECT_EQ(StabIds(index, "zzz"), (std::vector<uint64_t>{}));
  EXPECT_EQ(index.size(), 2u);
}

TEST(WatchIntervalIndexTest, RandomAgainstBruteForce) {
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Random rng(seed);
    IntervalIndex index;
    std::map<uint64_t, Interval> live;
    uint64_t next_id = 1;
    auto key = [&] {
      std::string k;
      const size_t n = rng.Uniform(4);
      for (size_t i = 0; i < n; ++i) k.push_back(static_cast<char>('a' + rng.Uniform(4)));
      return k;
    };
    for (int step = 0; step < 2000; ++step) {
      const uint64_t op = rng.Uniform(10);
      if (op < 4 || live.empty()) {
        Interval iv{key(), key(), rng.Chance(0.2)};
        if (!iv.unbounded && iv.end <= iv.start) iv.end = iv.start + "z";
        const uint64_t id = next_id++;
        index.Insert(iv.start, iv.unbounded ? "" : iv.end, iv.unbounded, id,
                     reinterpret_cast<void*>(id));
        live[id] = iv;
      } else if (op < 6) {
        auto it = std::next(live.begin(), static_cast<long>(rng.Uniform(live.size())));
        ASSERT_TRUE(index.Erase(it->second.start, it->first));
        live.erase(it);
      } else {
        const std::string k = key();
        std::vector<uint64_t> expected;
        for (const auto& [id, iv] : live) {
          if (k >= iv.start && (iv.unbounded || k < iv.end)) expected.push_back(id);
        }
        ASSERT_EQ(StabIds(index, k), expected) << "seed " << seed << " key " << k;
      }
      ASSERT_EQ(index.size(), live.size());
    }
    size_t visited = 0;
    index.ForEach([&](void*) { ++visited; });
    EXPECT_EQ(visited, live.size());
  }
}

}  // namespace
}  // namespace ballot::watch
