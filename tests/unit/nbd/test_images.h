// Helpers for the tests that run the real qemu-img and qemu-nbd on images in a temp directory:
// recognisable data, whole-device reads and the checks every map must pass. Test-only; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "shadowd/replication/block_device.h"

namespace vs::replication {
// For gtest's messages (found by argument-dependent lookup).
inline void PrintTo(const MappedExtent& extent, std::ostream* out) {
  *out << "{offset " << extent.offset << ", length " << extent.length << ", flags " << extent.flags << "}";
}
}  // namespace vs::replication

namespace vs::nbd::testing {

inline constexpr uint64_t kKiB = 1024;
inline constexpr uint64_t kMiB = 1024 * kKiB;

// `length` bytes that differ from any other (offset, seed) pair nearby, and are never all zero.
inline std::vector<std::byte> Pattern(uint64_t length, uint8_t seed) {
  std::vector<std::byte> bytes(length);
  for (uint64_t i = 0; i < length; ++i) {
    uint64_t x = (i + uint64_t{seed} * 0x1000003) * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    bytes[i] = static_cast<std::byte>((x >> 56) | 1);
  }
  return bytes;
}

inline std::vector<std::byte> ReadAll(replication::BlockDevice& device, uint64_t offset, uint64_t length) {
  std::vector<std::byte> out(length);
  Status status = device.Read(offset, out);
  EXPECT_TRUE(status.ok()) << status.ToString();
  return out;
}

inline bool AllZero(const std::vector<std::byte>& bytes) {
  for (std::byte b : bytes) {
    if (b != std::byte{0}) return false;
  }
  return true;
}

// What BlockDevice::Map promises: extents in order, contiguous, covering [0, size), merged.
inline void ExpectWellFormedMap(const std::vector<replication::MappedExtent>& map, uint64_t size) {
  uint64_t next = 0;
  for (size_t i = 0; i < map.size(); ++i) {
    EXPECT_EQ(map[i].offset, next) << "extent " << i;
    EXPECT_GT(map[i].length, 0u) << "extent " << i;
    if (i > 0) {
      EXPECT_NE(map[i].flags, map[i - 1].flags) << "extents " << i - 1 << " and " << i << " not merged";
    }
    next = map[i].offset + map[i].length;
  }
  EXPECT_EQ(next, size);
}

inline uint32_t FlagsAt(const std::vector<replication::MappedExtent>& map, uint64_t offset) {
  for (const auto& extent : map) {
    if (offset >= extent.offset && offset - extent.offset < extent.length) return extent.flags;
  }
  ADD_FAILURE() << "offset " << offset << " is not mapped";
  return 0;
}

}  // namespace vs::nbd::testing
