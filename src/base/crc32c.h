// CRC-32C (Castagnoli), the checksum of every record Ballot writes to disk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ballot::crc32c {

// Extends `crc` (the CRC-32C of some prefix) with `data`. Extend(0, x) is the CRC-32C of x.
uint32_t Extend(uint32_t crc, const void* data, size_t size);

// The table-driven implementation Extend falls back to without SSE 4.2 (tests compare the two).
uint32_t ExtendPortableForTest(uint32_t crc, const void* data, size_t size);

inline uint32_t Value(std::string_view data) { return Extend(0, data.data(), data.size()); }

// A stored CRC is masked so that a CRC over data that itself embeds CRCs stays strong
// (the same reason leveldb masks its record checksums).
inline uint32_t Mask(uint32_t crc) {
  constexpr uint32_t kMaskDelta = 0xa282ead8u;
  return ((crc >> 15) | (crc << 17)) + kMaskDelta;
}
inline uint32_t Unmask(uint32_t masked) {
  constexpr uint32_t kMaskDelta = 0xa282ead8u;
  uint32_t rot = masked - kMaskDelta;
  return (rot >> 17) | (rot << 15);
}

}  // namespace ballot::crc32c
