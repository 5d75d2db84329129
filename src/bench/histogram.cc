#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "base/assert.h"

namespace ballot::bench {

int Histogram::BucketOf(uint64_t value) {
  const int bits = std::bit_width(value);
  if (bits <= kExactBits) return static_cast<int>(value);
  const int shift = bits - kExactBits;       // >= 1
  const uint64_t mantissa = value >> shift;  // in [64, 128)
  const int bucket = (1 << kExactBits) + (shift - 1) * (1 << kSubBucketBits) +
                     static_cast<int>(mantissa - (1u << kSubBucketBits));
  BALLOT_ASSERT(bucket >= 0 && bucket < kBucketCount);
  return bucket;
}

uint64_t Histogram::BucketUpperBound(int bucket) {
  BALLOT_ASSERT(bucket >= 0 && bucket < kBucketCount);
  if (bucket < (1 << kExactBits)) return static_cast<uint64_t>(bucket);
  const int above = bucket - (1 << kExactBits);
  const int shift = above / (1 << kSubBucketBits) + 1;
  const uint64_t mantissa = (1u << kSubBucketBits) + above % (1 << kSubBucketBits);
  // The last bucket's bound would overflow: it holds everything up to UINT64_MAX.
  if (shift >= 64 - kSubBucketBits - 1 && mantissa == (1u << kExactBits) - 1) return UINT64_MAX;
  return ((mantissa + 1) << shift) - 1;
}

void Histogram::Record(uint64_t value_ns) {
  ++buckets_[BucketOf(value_ns)];
  ++count_;
  sum_ns_ += value_ns;
  min_ns_ = std::min(min_ns_, value_ns);
  max_ns_ = std::max(max_ns_, value_ns);
}

void Histogram::Merge(const Histogram& other) {
  for (int i = 0; i < kBucketCount; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  sum_ns_ += other.sum_ns_;
  min_ns_ = std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
}

uint64_t Histogram::Percentile(double percent) const {
  BALLOT_ASSERT(percent >= 0 && percent <= 100, "percentile out of [0, 100]");
  if (count_ == 0) return 0;
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (int i = 0; i < kBucketCount; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::clamp(BucketUpperBound(i), min_ns_, max_ns_);
  }
  return max_ns_;
}

}  // namespace ballot::bench
