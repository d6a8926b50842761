// CRC-32 of zlib and gzip (IEEE 802.3 polynomial, reflected): the checksum the test guest stores in every
// record (docs/record-format.md), computed there by busybox `crc32`, which prints it as 8 lowercase hex digits.
//
// Pure functions: no state, thread-safe, cannot fail.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace vs::oracle {

std::uint32_t Crc32(std::string_view bytes);
// As busybox `crc32` prints it: 8 lowercase hex digits, e.g. "cbf43926" for "123456789".
std::string Crc32Hex(std::string_view bytes);

}  // namespace vs::oracle
