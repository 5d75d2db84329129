#include <gtest/gtest.h>

#include <set>
#include <string>

#include "bench/keys.h"

namespace ballot::bench {
namespace {

TEST(BenchKeys, KeysHaveExactSizeAndSortInIndexOrder) {
  Result<KeySpace> space = KeySpace::Make("bench/", 1000, 256);
  ASSERT_TRUE(space.ok()) << space.status().ToString();
  std::string previous;
  for (uint64_t i = 0; i < 1000; ++i) {
    const std::string key = space->Key(i);
    ASSERT_EQ(key.size(), 256u);
    ASSERT_EQ(key.rfind("bench/", 0), 0u);
    ASSERT_LT(previous, key);
    previous = key;
  }
  EXPECT_EQ(space->Key(42).substr(250), "000042");
}

TEST(BenchKeys, KeySizeMustHoldPrefixAndIndex) {
  EXPECT_TRUE(KeySpace::Make("p/", 100, 4).ok());             // "p/99"
  Result<KeySpace> too_small = KeySpace::Make("p/", 101, 4);  // "p/100" needs 5
  ASSERT_FALSE(too_small.ok());
  EXPECT_NE(too_small.status().message().find("needs 5 bytes"), std::string::npos);
  EXPECT_FALSE(KeySpace::Make("p/", 0, 10).ok());
}

TEST(BenchKeys, SequentialPickerWrapsAround) {
  KeyPicker picker(5, /*sequential=*/true, /*first=*/3, /*seed=*/1);
  std::vector<uint64_t> got;
  for (int i = 0; i < 7; ++i) got.push_back(picker.Next());
  EXPECT_EQ(got, (std::vector<uint64_t>{3, 4, 0, 1, 2, 3, 4}));
}

TEST(BenchKeys, RandomPickerStaysInSpaceAndCoversIt) {
  KeyPicker picker(10, /*sequential=*/false, 0, /*seed=*/9);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const uint64_t index = picker.Next();
    ASSERT_LT(index, 10u);
    seen.insert(index);
  }
  EXPECT_EQ(seen.size(), 10u);
}

TEST(BenchKeys, PrefixEnd) {
  EXPECT_EQ(PrefixEnd("bench/"), "bench0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(PrefixEnd(std::string("\xff\xff", 2)), std::string(1, '\0'));
  // Every key of a space lies in [prefix, PrefixEnd(prefix)).
  Result<KeySpace> space = KeySpace::Make("k/", 50, 8);
  ASSERT_TRUE(space.ok());
  for (uint64_t i = 0; i < 50; ++i) {
    EXPECT_GE(space->Key(i), "k/");
    EXPECT_LT(space->Key(i), PrefixEnd("k/"));
  }
}

TEST(BenchKeys, ValuesHaveTheSizeAskedAndVary) {
  const std::string value = MakeValue(1024, 3);
  EXPECT_EQ(value.size(), 1024u);
  EXPECT_GT(std::set<char>(value.begin(), value.end()).size(), 10u);
  EXPECT_EQ(MakeValue(0, 3), "");
  EXPECT_EQ(MakeValue(64, 3), MakeValue(64, 3));
}

TEST(BenchKeys, StampRoundTripsAndRejectsGarbage) {
  std::string value = MakeValue(64, 1);
  WriteStamp(value, 1234567890123456789ull);
  EXPECT_EQ(value.size(), 64u);
  EXPECT_EQ(ReadStamp(value), 1234567890123456789ull);
  WriteStamp(value, 0);
  EXPECT_EQ(ReadStamp(value), 0u);
  EXPECT_EQ(ReadStamp("12345"), std::nullopt);                 // too short
  EXPECT_EQ(ReadStamp("0000000000000000000x"), std::nullopt);  // not a digit
  EXPECT_EQ(ReadStamp("99999999999999999999"), std::nullopt);  // beyond 64 bits
  EXPECT_EQ(ReadStamp(MakeValue(64, 1)), std::nullopt);        // letters
}

}  // namespace
}  // namespace ballot::bench
