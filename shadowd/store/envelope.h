// The versioned, checksummed envelope around every value shadowd persists.
//
// Layout (13-byte header, integers little-endian, then the payload):
//   offset 0  magic "VSE1"     4 bytes   tells a store value from anything else
//   offset 4  format version   1 byte    kEnvelopeFormatVersion
//   offset 5  payload length   4 bytes   uint32
//   offset 9  CRC32C           4 bytes   Castagnoli CRC of the payload
//   offset 13 payload
// Store implementations encode on Write and decode on Get/Scan, so callers only see payloads.
// The envelope is separate from the schema version: it describes how one value is framed,
// the schema describes what the payloads mean.
//
// Failure modes: DecodeEnvelope returns DataLoss naming the key for anything but an intact
// envelope (too short, wrong magic, unknown format, length mismatch, checksum mismatch); it
// never crashes and never returns a damaged payload.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vs::store {

inline constexpr uint8_t kEnvelopeFormatVersion = 1;
inline constexpr size_t kEnvelopeHeaderBytes = 13;

// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI and ext4.
uint32_t Crc32c(std::string_view data);

// Precondition: payload.size() fits in uint32 (Store::Write enforces kMaxValueBytes first).
std::string EncodeEnvelope(std::string_view payload);

// The payload of `stored`, the bytes found under `key` (named in errors only).
StatusOr<std::string> DecodeEnvelope(std::string_view key, std::string_view stored);

}  // namespace vs::store
