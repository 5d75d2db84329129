#include "bench/keys.h"

#include <string>

namespace ballot::bench {

namespace {
int DecimalDigits(uint64_t n) {
  int digits = 1;
  while (n >= 10) {
    n /= 10;
    ++digits;
  }
  return digits;
}
}  // namespace

Result<KeySpace> KeySpace::Make(std::string prefix, uint64_t key_count, uint32_t key_size) {
  if (key_count == 0) return Status::InvalidArgument("the key space must hold at least 1 key");
  const uint64_t needed = prefix.size() + DecimalDigits(key_count - 1);
  if (key_size < needed) {
    return Status::InvalidArgument(
        "key size " + std::to_string(key_size) + " cannot hold the prefix \"" + prefix + "\" and " +
        std::to_string(key_count) + " distinct keys (needs " + std::to_string(needed) + " bytes)");
  }
  return KeySpace(std::move(prefix), key_count, key_size);
}

std::string KeySpace::Key(uint64_t index) const {
  BALLOT_ASSERT(index < key_count_, "key index outside the key space");
  const std::string digits = std::to_string(index);
  std::string key;
  key.reserve(key_size_);
  key.append(prefix_);
  key.append(key_size_ - prefix_.size() - digits.size(), '0');
  key.append(digits);
  BALLOT_ASSERT(key.size() == key_size_);
  return key;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

std::string MakeValue(uint32_t size, uint64_t seed) {
  Random random(seed);
  std::string value(size, '\0');
  for (char& c : value) c = static_cast<char>('a' + random.Uniform(26));
  return value;
}

void WriteStamp(std::string& value, uint64_t time_ns) {
  BALLOT_ASSERT(value.size() >= kStampSize, "value too short for a stamp");
  for (size_t i = kStampSize; i-- > 0;) {
    value[i] = static_cast<char>('0' + time_ns % 10);
    time_ns /= 10;
  }
}

std::optional<uint64_t> ReadStamp(std::string_view value) {
  if (value.size() < kStampSize) return std::nullopt;
  uint64_t time_ns = 0;
  for (size_t i = 0; i < kStampSize; ++i) {
    const char c = value[i];
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (time_ns > (UINT64_MAX - digit) / 10) return std::nullopt;  // does not fit 64 bits
    time_ns = time_ns * 10 + digit;
  }
  return time_ns;
}

}  // namespace ballot::bench
