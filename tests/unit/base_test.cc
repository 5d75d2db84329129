#include <gtest/gtest.h>

#include <set>
#include <string>

#include "base/crc32c.h"
#include "base/random.h"
#include "base/status.h"

namespace ballot {
namespace {

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = Status::NotFound("no key 'a'");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.ToString(), "NOT_FOUND: no key 'a'");
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Result, PropagatesErrors) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

Status CheckPositive(int x) {
  if (x <= 0) return Status::OutOfRange("not positive");
  return Status::Ok();
}

Status Both(int a, int b) {
  RETURN_IF_ERROR(CheckPositive(a));
  RETURN_IF_ERROR(CheckPositive(b));
  return Status::Ok();
}

TEST(Result, ReturnIfError) {
  EXPECT_TRUE(Both(1, 2).ok());
  EXPECT_TRUE(Both(1, -2).IsOutOfRange());
}

TEST(Result, ValueOnErrorDies) {
  Result<int> r = Status::Internal("boom");
  EXPECT_DEATH((void)r.value(), "invariant broken");
}

// Known answers from RFC 3720 (iSCSI) B.4.
TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(crc32c::Value(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(crc32c::Value(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(crc32c::Value(ascending), 0x46dd794eu);
  EXPECT_EQ(crc32c::Value("123456789"), 0xe3069283u);
}

TEST(Crc32c, ExtendEqualsWhole) {
  const std::string data = "hello, replicated world";
  uint32_t part = crc32c::Extend(0, data.data(), 7);
  EXPECT_EQ(crc32c::Extend(part, data.data() + 7, data.size() - 7), crc32c::Value(data));
}

// Extend uses the SSE 4.2 instruction where the CPU has it: it must agree with the tables at every
// length, alignment and starting crc.
TEST(Crc32c, HardwareAndTablesAgree) {
  std::string data(4096 + 16, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (char& c : data) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    c = static_cast<char>(x);
  }
  for (size_t offset = 0; offset < 9; ++offset) {
    for (size_t n : {0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 1000, 4096}) {
      const uint32_t seed = static_cast<uint32_t>(n * 2654435761u + offset);
      EXPECT_EQ(crc32c::Extend(seed, data.data() + offset, n),
                crc32c::ExtendPortableForTest(seed, data.data() + offset, n))
          << "offset " << offset << " length " << n;
    }
  }
}

TEST(Crc32c, MaskRoundTrips) {
  const uint32_t crc = crc32c::Value("foo");
  EXPECT_NE(crc32c::Mask(crc), crc);
  EXPECT_EQ(crc32c::Unmask(crc32c::Mask(crc)), crc);
}

TEST(Random, SameSeedSameSequence) {
  Random a(42), b(42), c(43);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.Next();
    EXPECT_EQ(x, b.Next());
    differs |= x != c.Next();
  }
  EXPECT_TRUE(differs);
}

TEST(Random, UniformStaysInRangeAndCoversIt) {
  Random r(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    uint64_t x = r.Uniform(10);
    ASSERT_LT(x, 10u);
    seen.insert(x);
  }
  EXPECT_EQ(seen.size(), 10u);
  for (int i = 0; i < 1000; ++i) {
    int64_t y = r.Range(-3, 3);
    ASSERT_GE(y, -3);
    ASSERT_LE(y, 3);
  }
}

}  // namespace
}  // namespace ballot
