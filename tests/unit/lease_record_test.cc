// Lease records: round trip, and strict decoding of anything else.
#include <gtest/gtest.h>

#include <string>

#include "base/crc32c.h"
#include "base/random.h"
#include "lease/lessor.h"

namespace ballot::lease {
namespace {

TEST(LeaseRecordTest, RoundTrip) {
  for (const LeaseRecord& r : {LeaseRecord{1, 1, 0}, LeaseRecord{-5, 60, 59},
                               LeaseRecord{INT64_MAX, kLeaseTtlSecondsMax, kLeaseTtlSecondsMax},
                               LeaseRecord{0x1234567890, 3600, 0}}) {
    const std::string bytes = EncodeLeaseRecord(r);
    EXPECT_EQ(bytes.size(), kLeaseRecordBytes);
    auto decoded = DecodeLeaseRecord(bytes);
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(*decoded, r);
  }
}

TEST(LeaseRecordTest, RejectsWrongLengthVersionAndChecksum) {
  const std::string good = EncodeLeaseRecord({7, 30, 10});
  EXPECT_EQ(DecodeLeaseRecord("").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeLeaseRecord(good.substr(0, 28)).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeLeaseRecord(good + "x").status().code(), StatusCode::kDataLoss);
  std::string version = good;
  version[0] = 2;
  EXPECT_NE(DecodeLeaseRecord(version).status().message().find("version"), std::string::npos);
  for (size_t i = 1; i < good.size(); ++i) {
    std::string flipped = good;
    flipped[i] ^= 0x10;
    EXPECT_EQ(DecodeLeaseRecord(flipped).status().code(), StatusCode::kDataLoss) << i;
  }
}

// The fields are checked even under a valid checksum (a record written by a buggy or hostile
// writer).
TEST(LeaseRecordTest, RejectsInvalidFieldsUnderAValidChecksum) {
  auto forge = [](int64_t id, int64_t ttl, int64_t remaining) {
    std::string out(1, '\x01');
    for (int64_t v : {id, ttl, remaining}) {
      for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((uint64_t(v) >> (8 * i)) & 0xff));
    }
    const uint32_t crc = crc32c::Mask(crc32c::Value(out));
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
    return out;
  };
  EXPECT_TRUE(DecodeLeaseRecord(forge(1, 10, 0)).ok());
  EXPECT_FALSE(DecodeLeaseRecord(forge(0, 10, 0)).ok());
  EXPECT_FALSE(DecodeLeaseRecord(forge(1, 0, 0)).ok());
  EXPECT_FALSE(DecodeLeaseRecord(forge(1, -1, 0)).ok());
  EXPECT_FALSE(DecodeLeaseRecord(forge(1, kLeaseTtlSecondsMax + 1, 0)).ok());
  EXPECT_FALSE(DecodeLeaseRecord(forge(1, 10, -1)).ok());
}

// Random bytes, and random mutations of valid records: decoding returns a value or DataLoss and
// never crashes; whatever it accepts re-encodes to the same bytes.
TEST(LeaseRecordTest, FuzzDecodeNeverCrashes) {
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    Random rng(seed);
    for (int i = 0; i < 200; ++i) {
      std::string bytes;
      if (rng.Chance(0.5)) {
        bytes = EncodeLeaseRecord({rng.Range(1, INT64_MAX), rng.Range(1, kLeaseTtlSecondsMax),
                                   rng.Range(0, kLeaseTtlSecondsMax)});
        const int mutations = static_cast<int>(rng.Range(0, 3));
        for (int m = 0; m < mutations; ++m) {
          switch (rng.Uniform(3)) {
            case 0:
              bytes[rng.Uniform(bytes.size())] ^= static_cast<char>(1 + rng.Uniform(255));
              break;
            case 1:
              bytes.resize(rng.Uniform(bytes.size() + 1));
              if (bytes.empty()) bytes = "x";
              break;
            default:
              bytes.push_back(static_cast<char>(rng.Uniform(256)));
          }
        }
      } else {
        bytes.resize(rng.Uniform(40));
        for (char& c : bytes) c = static_cast<char>(rng.Uniform(256));
      }
      auto decoded = DecodeLeaseRecord(bytes);
      if (decoded.ok()) {
        EXPECT_EQ(EncodeLeaseRecord(*decoded), bytes) << "seed " << seed;
      } else {
        EXPECT_EQ(decoded.status().code(), StatusCode::kDataLoss) << "seed " << seed;
      }
    }
  }
}

}  // namespace
}  // namespace ballot::lease
