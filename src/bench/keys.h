// Key generation for `ballot bench`: keys of an exact size drawn from a key space of N keys,
// sequentially or uniformly at random.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/random.h"
#include "base/status.h"

namespace ballot::bench {

// Key i of the space is `prefix` followed by i in decimal, zero-padded so that every key is
// exactly `key_size` bytes; keys therefore sort in index order and all share the prefix.
class KeySpace {
 public:
  // Fails if the key size cannot hold the prefix and the largest index, or the space is empty.
  static Result<KeySpace> Make(std::string prefix, uint64_t key_count, uint32_t key_size);

  std::string Key(uint64_t index) const;
  uint64_t key_count() const { return key_count_; }
  const std::string& prefix() const { return prefix_; }

 private:
  KeySpace(std::string prefix, uint64_t key_count, uint32_t key_size)
      : prefix_(std::move(prefix)), key_count_(key_count), key_size_(key_size) {}

  std::string prefix_;
  uint64_t key_count_;
  uint32_t key_size_;
};

// Picks key indexes: sequential ones start at `first` and wrap around the space; random ones are
// uniform. One per client, so no locking.
class KeyPicker {
 public:
  KeyPicker(uint64_t key_count, bool sequential, uint64_t first, uint64_t seed)
      : key_count_(key_count), sequential_(sequential), next_(first % key_count), random_(seed) {}

  uint64_t Next() {
    if (!sequential_) return random_.Uniform(key_count_);
    const uint64_t index = next_;
    next_ = (next_ + 1) % key_count_;
    return index;
  }

 private:
  uint64_t key_count_;
  bool sequential_;
  uint64_t next_;
  Random random_;
};

// The smallest key greater than every key with `prefix` (etcd's "prefix end"): the prefix with
// its last byte below 0xff incremented and the rest dropped; "\0" if the prefix is all 0xff.
std::string PrefixEnd(const std::string& prefix);

// A value of `size` bytes, deterministic and not all one byte (so compression does not flatter).
std::string MakeValue(uint32_t size, uint64_t seed);

// The watch workload carries a put's send time in the first kStampSize bytes of its value, in
// zero-padded decimal nanoseconds (of the steady clock, so only the same process can read it).
inline constexpr size_t kStampSize = 20;
// Overwrites the first kStampSize bytes of `value`, which must be at least that long.
void WriteStamp(std::string& value, uint64_t time_ns);
// The stamp at the start of `value`, or nullopt if there is none.
std::optional<uint64_t> ReadStamp(std::string_view value);

}  // namespace ballot::bench
