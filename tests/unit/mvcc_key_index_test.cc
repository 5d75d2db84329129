// KeyIndex: a map from key to its newest version's fields, checked against std::map.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>

#include "mvcc/key_index.h"

namespace ballot::mvcc {
namespace {

TEST(MvccKeyIndex, SetFindEraseAndClear) {
  KeyIndex index;
  EXPECT_FALSE(index.Find("a").has_value());
  index.Set("a", KeyMeta{2, 2, 1, 0});
  index.Set("b", KeyMeta{3, 3, 1, 7});
  index.Set("a", KeyMeta{4, 2, 2, 0});  // replaces
  EXPECT_EQ(index.size(), 2u);
  EXPECT_EQ(index.Find("a"), (KeyMeta{4, 2, 2, 0}));
  EXPECT_EQ(index.Find("b"), (KeyMeta{3, 3, 1, 7}));
  index.Erase("a");
  index.Erase("absent");
  EXPECT_FALSE(index.Find("a").has_value());
  EXPECT_EQ(index.size(), 1u);
  index.Clear();
  EXPECT_EQ(index.size(), 0u);
  EXPECT_FALSE(index.Find("b").has_value());
}

// Keys are bytes: embedded zeros, prefixes of one another, the empty key and long keys stay apart.
TEST(MvccKeyIndex, KeysAreComparedAsWholeByteStrings) {
  KeyIndex index;
  const std::string keys[] = {
      "",   std::string(1, '\0'),    std::string("a\0", 2), "a", std::string("a\0b", 3),
      "ab", std::string(100000, 'k')};
  int64_t i = 1;
  for (const std::string& k : keys) {
    index.Set(k, KeyMeta{i, i, i, i});
    ++i;
  }
  i = 1;
  for (const std::string& k : keys) {
    EXPECT_EQ(index.Find(k), (KeyMeta{i, i, i, i})) << "key of " << k.size() << " bytes";
    ++i;
  }
  EXPECT_FALSE(index.Find(std::string(99999, 'k')).has_value());
}

TEST(MvccKeyIndex, RandomOperationsMatchAMap) {
  std::mt19937_64 rng(7);
  KeyIndex index;
  std::map<std::string, KeyMeta> model;
  for (int step = 0; step < 200000; ++step) {
    const std::string key = "k" + std::to_string(rng() % 5000);
    switch (rng() % 4) {
      case 0:
      case 1: {
        const auto r = static_cast<int64_t>(step);
        index.Set(key, KeyMeta{r, r / 2, r % 17, r % 3});
        model[key] = KeyMeta{r, r / 2, r % 17, r % 3};
        break;
      }
      case 2:
        index.Erase(key);
        model.erase(key);
        break;
      default: {
        auto it = model.find(key);
        const std::optional<KeyMeta> want =
            it == model.end() ? std::nullopt : std::optional<KeyMeta>(it->second);
        ASSERT_EQ(index.Find(key), want) << "step " << step;
      }
    }
  }
  ASSERT_EQ(index.size(), model.size());
  for (const auto& [key, meta] : model) ASSERT_EQ(index.Find(key), meta);
}

}  // namespace
}  // namespace ballot::mvcc
