#include "images/oracle/crc32.h"

#include <array>
#include <cstdio>

namespace vs::oracle {
namespace {

constexpr std::uint32_t kReflectedPolynomial = 0xEDB88320;

// Byte-at-a-time table, built at compile time so there is no mutable state.
constexpr std::array<std::uint32_t, 256> MakeTable() {
  std::array<std::uint32_t, 256> table{};
  for (std::uint32_t byte = 0; byte < 256; ++byte) {
    std::uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc & 1) ? (crc >> 1) ^ kReflectedPolynomial : crc >> 1;
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<std::uint32_t, 256> kTable = MakeTable();

}  // namespace

std::uint32_t Crc32(std::string_view bytes) {
  std::uint32_t crc = 0xFFFFFFFFu;
  for (char c : bytes) crc = (crc >> 8) ^ kTable[(crc ^ static_cast<std::uint8_t>(c)) & 0xFF];
  return ~crc;
}

std::string Crc32Hex(std::string_view bytes) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", Crc32(bytes));
  return hex;
}

}  // namespace vs::oracle
