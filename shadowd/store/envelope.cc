#include "shadowd/store/envelope.h"

#include <array>
#include <cstdio>

namespace vs::store {
namespace {

constexpr std::string_view kMagic = "VSE1";

// Byte-at-a-time table for the reflected Castagnoli polynomial, built at compile time so there
// is no lazily-initialised global. Values are small (heartbeats, state records): speed is moot.
constexpr std::array<uint32_t, 256> MakeCrc32cTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t crc = i;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1) ? 0x82F63B78u : 0u);
    table[i] = crc;
  }
  return table;
}
constexpr std::array<uint32_t, 256> kCrc32cTable = MakeCrc32cTable();

void AppendLittleEndian32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
}

uint32_t ReadLittleEndian32(std::string_view bytes) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return v;
}

std::string Hex32(uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

}  // namespace

uint32_t Crc32c(std::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (char c : data) crc = kCrc32cTable[(crc ^ static_cast<uint8_t>(c)) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

std::string EncodeEnvelope(std::string_view payload) {
  std::string out;
  out.reserve(kEnvelopeHeaderBytes + payload.size());
  out += kMagic;
  out += static_cast<char>(kEnvelopeFormatVersion);
  AppendLittleEndian32(out, static_cast<uint32_t>(payload.size()));
  AppendLittleEndian32(out, Crc32c(payload));
  out += payload;
  return out;
}

StatusOr<std::string> DecodeEnvelope(std::string_view key, std::string_view stored) {
  const std::string where = "value of key '" + std::string(key) + "'";
  if (stored.size() < kEnvelopeHeaderBytes) {
    return DataLoss(where + " is truncated: " + std::to_string(stored.size()) + " bytes, shorter than the " +
                    std::to_string(kEnvelopeHeaderBytes) + "-byte envelope header");
  }
  if (stored.substr(0, kMagic.size()) != kMagic) {
    return DataLoss(where + " does not start with the envelope magic \"VSE1\": corrupt, or not written by shadowd");
  }
  const uint8_t format = static_cast<uint8_t>(stored[4]);
  if (format != kEnvelopeFormatVersion) {
    return DataLoss(where + " has envelope format " + std::to_string(format) + "; this shadowd reads format " +
                    std::to_string(kEnvelopeFormatVersion));
  }
  const uint32_t length = ReadLittleEndian32(stored.substr(5, 4));
  const std::string_view payload = stored.substr(kEnvelopeHeaderBytes);
  if (payload.size() != length) {
    return DataLoss(where + " has " + std::to_string(payload.size()) + " payload bytes but its header says " +
                    std::to_string(length) + " (truncated or overwritten)");
  }
  const uint32_t stored_crc = ReadLittleEndian32(stored.substr(9, 4));
  const uint32_t actual_crc = Crc32c(payload);
  if (stored_crc != actual_crc) {
    return DataLoss(where + " fails its checksum: stored CRC32C " + Hex32(stored_crc) + ", computed " +
                    Hex32(actual_crc));
  }
  return std::string(payload);
}

}  // namespace vs::store
