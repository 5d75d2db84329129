// A latency histogram with bounded relative error, for `ballot bench`.
//
// Values (nanoseconds) below 128 are kept exactly; above, each power of two is split into 64
// buckets, so a reported percentile is within 1/64 (1.6%) of the true value. min, max, count and
// sum are exact. One histogram per worker thread, merged at the end: no locking inside.
#pragma once

#include <array>
#include <cstdint>

namespace ballot::bench {

class Histogram {
 public:
  void Record(uint64_t value_ns);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  uint64_t min_ns() const { return count_ == 0 ? 0 : min_ns_; }
  uint64_t max_ns() const { return max_ns_; }
  double mean_ns() const { return count_ == 0 ? 0 : static_cast<double>(sum_ns_) / count_; }

  // The smallest recorded value v such that at least `percent`% of the values are <= v (up to
  // the bucket precision), clamped to [min, max]. 0 for an empty histogram. percent in [0, 100].
  uint64_t Percentile(double percent) const;

  // Bucket layout, exposed for tests.
  static constexpr int kExactBits = 7;                   // values < 128 are exact
  static constexpr int kSubBucketBits = kExactBits - 1;  // 64 buckets per power of two
  static constexpr int kBucketCount = (1 << kExactBits) + (64 - kExactBits) * (1 << kSubBucketBits);
  static int BucketOf(uint64_t value);
  // The largest value that falls in `bucket`.
  static uint64_t BucketUpperBound(int bucket);

 private:
  std::array<uint64_t, kBucketCount> buckets_{};
  uint64_t count_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t min_ns_ = UINT64_MAX;
  uint64_t max_ns_ = 0;
};

}  // namespace ballot::bench
