#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "base/random.h"
#include "bench/histogram.h"

namespace ballot::bench {
namespace {

TEST(BenchHistogram, EmptyReportsZeros) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.max_ns(), 0u);
  EXPECT_EQ(h.min_ns(), 0u);
  EXPECT_EQ(h.mean_ns(), 0);
}

TEST(BenchHistogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(90), 90u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_EQ(h.Percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean_ns(), 50.5);
}

TEST(BenchHistogram, LargeValuesWithinBucketPrecision) {
  Histogram h;
  // 1 ms .. 100 ms in 1 us steps: the true p-th percentile is p% of the way.
  for (uint64_t us = 1000; us <= 100'000; ++us) h.Record(us * 1000);
  const double count = 99'001;
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const double truth = (1000 + std::ceil(p / 100 * count) - 1) * 1000;
    const double got = static_cast<double>(h.Percentile(p));
    EXPECT_GE(got, truth) << "p" << p;  // reported bound never below the true value
    EXPECT_LE(got, truth * (1 + 1.0 / 64)) << "p" << p;
  }
  EXPECT_EQ(h.max_ns(), 100'000'000u);
  EXPECT_EQ(h.min_ns(), 1'000'000u);
}

TEST(BenchHistogram, PercentileIsClampedToMax) {
  Histogram h;
  h.Record(1'000'001);  // falls in a bucket whose upper bound is larger
  EXPECT_EQ(h.Percentile(99.9), 1'000'001u);
  EXPECT_EQ(h.Percentile(50), 1'000'001u);
}

TEST(BenchHistogram, OutlierShowsOnlyInHighPercentiles) {
  Histogram h;
  for (int i = 0; i < 999; ++i) h.Record(1'000'000);  // 1 ms
  h.Record(2'000'000'000);                            // 2 s
  EXPECT_LE(h.Percentile(99), 1'020'000u);
  EXPECT_GE(h.Percentile(99.99), 1'900'000'000u);
  EXPECT_EQ(h.max_ns(), 2'000'000'000u);
}

TEST(BenchHistogram, MergeEqualsRecordingEverythingInOne) {
  Random random(7);
  Histogram a, b, all;
  for (int i = 0; i < 10'000; ++i) {
    const uint64_t v = random.Uniform(50'000'000);
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max_ns(), all.max_ns());
  EXPECT_EQ(a.min_ns(), all.min_ns());
  for (double p : {10.0, 50.0, 99.0, 99.9}) EXPECT_EQ(a.Percentile(p), all.Percentile(p));
}

TEST(BenchHistogram, BucketsAreMonotoneAndCoverEverything) {
  int previous = -1;
  for (int shift = 0; shift < 64; ++shift) {
    for (uint64_t v : {uint64_t{1} << shift, (uint64_t{1} << shift) + (uint64_t{1} << shift) / 3}) {
      const int bucket = Histogram::BucketOf(v);
      EXPECT_GE(bucket, previous);
      EXPECT_LT(bucket, Histogram::kBucketCount);
      EXPECT_GE(Histogram::BucketUpperBound(bucket), v);
      previous = bucket;
    }
  }
  EXPECT_EQ(Histogram::BucketOf(UINT64_MAX), Histogram::kBucketCount - 1);
  EXPECT_EQ(Histogram::BucketUpperBound(Histogram::kBucketCount - 1), UINT64_MAX);
  // Each bucket's upper bound is the last value before the next bucket.
  for (int b = 0; b + 1 < Histogram::kBucketCount; ++b) {
    const uint64_t bound = Histogram::BucketUpperBound(b);
    ASSERT_EQ(Histogram::BucketOf(bound), b);
    ASSERT_EQ(Histogram::BucketOf(bound + 1), b + 1);
  }
}

}  // namespace
}  // namespace ballot::bench
